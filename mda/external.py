"""Copies that leave the Maildir: `|program` aliases, mail handed back to the MTA, mbox files.

Each runs as an unprivileged user (see `mda.deliver.as_user`). What they share
(SECURITY.md, heading 5):

- A child starts clean: descriptors 0-2 only (`close_fds`, and mda closed whatever it
  inherited at start-up), the environment `clean_env()` builds, `/` as its directory, no shell
  unless `[mda] program_shell`, and the default action for every signal.
- The message goes to its stdin from the one buffer mda holds (`Payload.chunks`), and what it
  writes on stdout and stderr (one pipe, as Postfix gives its commands) is read as it comes
  and thrown away but for its last `[mda] max_program_output` bytes, kept for the error line
  only. A program printing 300 MB used to make mda hold 600 MB.
- `[mda] program_timeout` bounds the whole run; a signal to mda kills the child first.
"""

from __future__ import annotations

import os
import time

from mda.address import visible
from mda.errors import Refused, TempFailure
from mda.message import CHUNK

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator

    from mailstore.config import Config
    from mda.message import Payload

SAFE_PATH = "/usr/bin:/bin"


def clean_env() -> dict[str, str]:
    return {"PATH": SAFE_PATH, "LANG": "C"}


class PipeResult:
    __slots__ = ("output", "returncode")

    def __init__(self, returncode: int, output: bytes) -> None:
        self.returncode = returncode
        self.output = output  # the last bytes the program wrote, at most the configured cap

    def last_line(self) -> str:
        lines = self.output.decode("utf-8", "replace").strip().splitlines()
        return visible(lines[-1].strip()) if lines else ""


def pipe_to(
    argv: list[str], payload: Payload, env: dict[str, str], timeout: float, keep: int
) -> PipeResult:
    """Run `argv` with the message on its stdin; its status and the tail of its output.

    Raises OSError if it cannot be started, TempFailure when it overruns `timeout` (it is
    killed). Any exception on the way (a signal's Interrupted) kills it before going on.
    """
    import select
    import subprocess

    from mda.interrupt import block, child_defaults, installed, unblock

    mask = block()  # a signal now must find the `try` below, which stops the program
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/",
            close_fds=True,
            # mda's signal set-up undone in the child; the server (LMTP, several threads)
            # changed nothing, and must not run Python between fork and exec.
            preexec_fn=child_defaults if installed() else None,
        )
    except BaseException:
        unblock(mask)
        raise
    assert proc.stdin is not None and proc.stdout is not None
    deadline = time.monotonic() + timeout
    tail = b""
    try:
        unblock(mask)
        stdin_fd, stdout_fd = proc.stdin.fileno(), proc.stdout.fileno()
        os.set_blocking(stdin_fd, False)
        poller = select.poll()
        poller.register(stdin_fd, select.POLLOUT)
        poller.register(stdout_fd, select.POLLIN)
        src: int | None = stdin_fd  # None once closed
        out: int | None = stdout_fd
        chunks: Iterator[memoryview] = payload.chunks()
        pending = next(chunks, None)
        if pending is None:
            poller.unregister(stdin_fd)
            proc.stdin.close()
            src = None
        while src is not None or out is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(argv, timeout)
            for fd, _ in poller.poll(left * 1000):
                if fd == out:
                    data = os.read(out, CHUNK)
                    if not data:
                        poller.unregister(out)
                        out = None
                    elif keep:
                        tail = (tail + data)[-keep:]
                    continue
                if fd != src or pending is None:
                    continue
                try:
                    pending = pending[os.write(src, pending) :]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = None  # the program does not want (the rest of) the message
                if pending is not None and not pending:
                    pending = next(chunks, None)
                if pending is None:
                    poller.unregister(src)
                    proc.stdin.close()
                    src = None
        returncode = proc.wait(max(deadline - time.monotonic(), 0.001))
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise TempFailure(f"program {argv[0]} timed out", dsn="4.3.0") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        for pipe in (proc.stdin, proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass
    return PipeResult(returncode, tail)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()


def forward(config: Config, sender: str, address: str, payload: Payload) -> None:
    """Hand a copy back to the MTA: `sendmail -i -f SENDER -- RCPT`. Any failure is
    temporary: the MTA keeps the message and tries again."""
    cmd = [config.mda.sendmail, "-i", "-f", sender or "<>", "--", address]
    mda = config.mda
    try:
        result = pipe_to(cmd, payload, clean_env(), mda.program_timeout, mda.max_program_output)
    except OSError as exc:
        raise TempFailure(f"cannot forward to {address}: {exc.strerror}", dsn="4.3.0") from exc
    if result.returncode != 0:
        raise TempFailure(
            f"forwarding to {address} failed ({result.returncode}): {result.last_line()}",
            dsn="4.3.0",
        )


def run_program(config: Config, command: str, payload: Payload, sender: str) -> None:
    """An aliases `|program` target: run without a shell (unless configured), with a timeout."""
    if config.mda.program_shell:
        argv = ["/bin/sh", "-c", command]
    else:
        import shlex

        argv = shlex.split(command)
    env = clean_env()
    env["SENDER"] = sender
    mda = config.mda
    try:
        result = pipe_to(argv, payload, env, mda.program_timeout, mda.max_program_output)
    except OSError as exc:
        raise TempFailure(f"cannot run {argv[0]}: {exc.strerror}", dsn="4.3.0") from exc
    said = result.last_line()
    said = f": {said}" if said else ""
    if result.returncode in (75, 71):
        raise TempFailure(f"program {argv[0]} asked to retry ({result.returncode}){said}")
    if result.returncode != 0:
        raise Refused(f"program {argv[0]} failed ({result.returncode}){said}", dsn="5.3.0")


def append_mbox(path: str, payload: Payload, sender: str) -> None:
    """An aliases `/file` target: append in mbox format (mboxrd quoting of `>*From ` lines,
    CRLF as LF), locked, fsynced, and truncated back if anything interrupts it."""
    import fcntl

    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise TempFailure(f"cannot open {path}: {exc.strerror}", dsn="4.3.0") from exc
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, f"From {sender or 'MAILER-DAEMON'} {stamp}\n".encode())
            for block in _mbox_body(payload.chunks()):
                _write_all(fd, block)
            os.fsync(fd)
        except BaseException as exc:
            os.ftruncate(fd, start)  # no partial message left in the mbox
            if isinstance(exc, OSError):
                raise TempFailure(f"cannot write {path}: {exc.strerror}", dsn="4.3.0") from exc
            raise
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _mbox_body(chunks: Iterator[memoryview]) -> Iterator[bytes]:
    """The message as an mbox entry's body, in blocks of about CHUNK bytes: LF line ends,
    `From ` lines (after any `>`) quoted with one more `>`, trailing empty lines dropped and
    the entry ended by one empty line."""
    out = bytearray()
    first = True
    blank = 0  # empty lines seen and not yet written: trailing ones are dropped
    for line in _lines(chunks):
        if not line:
            blank += 1
            continue
        if line.lstrip(b">").startswith(b"From "):
            line = b">" + line
        for _ in range(blank):
            out += b"" if first else b"\n"
            first = False
        blank = 0
        if not first:
            out += b"\n"
        out += line
        first = False
        if len(out) >= CHUNK:
            yield bytes(out)
            out.clear()
    out += b"\n\n"
    yield bytes(out)


def _lines(chunks: Iterator[memoryview]) -> Iterator[bytes]:
    """Lines across chunk boundaries, without their LF (or CRLF); the last one may be empty."""
    carry = b""
    for chunk in chunks:
        parts = (carry + bytes(chunk)).split(b"\n")
        carry = parts.pop()
        for part in parts:
            yield part[:-1] if part.endswith(b"\r") else part
    yield carry
