"""A copy whose Sieve scripts run is made in a child process: Sieve's CPU bound needs one.

`[sieve] max_cpu_time` is kept by a SIGPROF timer (mda/sieve/cpulimit.py): the signal's
handler raises in the interpreter's main thread, and Python's `re` looks for signals only there.
The server delivers in the threads of its pool, where a `:regex` that backtracks for ever (a
user's own script: anyone with a ManageSieve login writes one) could not be stopped: it would
hold a thread, and a core, for as long as it ran, and eight such deliveries the whole pool. So
a copy for a user with Sieve scripts is made in a child forked by the delivering thread (which
is the child's main, and only, thread): there the timer works as in `mda`, and the child runs
mda's library as `mda` runs it, then reports through a pipe, as `mda` reports a forked delivery
(mda/deliver.py `as_user`). Copies without a script (most) are made in the thread.

Between the fork and its exit the child takes no lock another thread of the server may have
held at the fork: it writes nothing to the log (its notes come back with its report and the
server logs them), and it leaves through `os._exit`, running no finalizer. The server's signal
handlers are put back to the default at once: a SIGTERM that stops the server ends the child
(the recipient is told to try again) rather than running the server's shutdown in the child.
The server waits at most the Sieve CPU bound and `[mda] program_timeout` (a redirect, a
vacation reply) plus a minute for the report; a child that has not answered by then is killed
and the copy is a temporary failure, so no thread waits for ever, whatever happened.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import time

from mda.errors import DeliveryError, TempFailure, classify

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Note = Callable[[str], None]

REPORT_MAX = 1 << 20  # a report: one error line and the notes of one delivery
SLACK = 60.0  # seconds a child may take beyond its CPU and program bounds


def in_child(
    work: Callable[[Note], None], quota_bounce: bool, deadline: float
) -> tuple[DeliveryError | None, list[str]]:
    """Run `work(note)` in a forked child; its failure (None: done) and what it noted.
    `deadline`: seconds before the child is killed and the copy is a temporary failure."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one thread, its main one
        status = 0
        try:
            os.close(read_fd)
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            notes: list[str] = []
            failure: tuple[int, str, str, str] | None = None
            try:
                work(notes.append)
            except BaseException as exc:
                err = classify(exc, quota_bounce)
                failure = (err.exit_code, err.dsn, err.text, err.address)
            data = marshal.dumps((failure, notes[-1000:]))[:REPORT_MAX]
            view = memoryview(data)
            while view:
                view = view[os.write(write_fd, view) :]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        report = _read(read_fd, pid, time.monotonic() + deadline)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if report is None:
        return TempFailure("the delivery process did not finish in time", dsn="4.3.0"), []
    try:
        failure, notes = marshal.loads(report)
    except (EOFError, ValueError, TypeError):
        why = f"the delivery process ended without a report (status {status})"
        return TempFailure(why, dsn="4.3.0"), []
    if failure is None:
        return None, list(notes)
    code, dsn, text, address = failure
    err = DeliveryError(text, address, dsn)
    err.exit_code = code
    return err, list(notes)


def _read(fd: int, pid: int, deadline: float) -> bytes | None:
    """Everything the child writes until it closes the pipe; None (the child killed) if that
    takes past `deadline`."""
    chunks: list[bytes] = []
    size = 0
    poller = select.poll()  # not select(): the server's descriptors go past FD_SETSIZE
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return None
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size <= REPORT_MAX:
            chunks.append(chunk)
