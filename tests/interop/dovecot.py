"""Drive the real Dovecot 2.3 on a Maildir, without a daemon, a port or authentication.

Dovecot's ``imap`` and ``pop3`` binaries, started by hand with ``-c CONFIG`` and the
environment variable ``USER`` set, run one already-authenticated session on
stdin/stdout (IMAP greets with ``* PREAUTH``; POP3 sends no greeting at all and goes
straight to the TRANSACTION state).  This module writes a private minimal
``dovecot.conf`` into a temporary directory, points ``mail_location`` at the Maildir
under test and talks to the binary over pipes.

Facts this harness relies on (checked against Debian's Dovecot 2.3.19.1):

* Run as root, Dovecot refuses to access mail as uid 0 ("Couldn't drop privileges:
  User is missing UID (see mail_uid setting)"), so when we are root the config sets
  ``mail_uid``/``mail_gid`` to the ``nobody`` user: Dovecot reads its config as root and
  then drops privileges itself.  The Maildir (and every directory above it) must
  therefore be reachable and writable by ``nobody``; see :func:`make_maildir`.
* In standalone mode Dovecot logs to stderr, not to ``log_path``; stderr is sent to
  ``dovecot.log`` in the temporary directory and quoted in every error raised here.
* ``INDEX=MEMORY`` (the default here) keeps no index files, so Dovecot has to rely on
  ``dovecot-uidlist``, ``dovecot-keywords`` and the file names alone.

Every read is bounded by a timeout: a wedged Dovecot fails the test instead of hanging
it, and the process is killed when the session is closed.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypedDict

# Where Debian puts Dovecot's service binaries; DOVECOT_LIBEXEC overrides it.
DOVECOT_LIBEXEC = Path(os.environ.get("DOVECOT_LIBEXEC", "/usr/lib/dovecot"))
DOVECOT_IMAP = DOVECOT_LIBEXEC / "imap"
DOVECOT_POP3 = DOVECOT_LIBEXEC / "pop3"
DOVECOT_CONF_BINARY = Path("/usr/bin/doveconf")  # ``imap -c`` runs it to parse the config
DOVECOT_PACKAGES = "dovecot-imapd dovecot-pop3d"
INSTALL_HINT = f"apt-get update && apt-get install -y {DOVECOT_PACKAGES}"

MAIL_USER = "nobody"  # the unprivileged user Dovecot accesses mail as when we are root
DEFAULT_TIMEOUT = 10.0

INDEX_MEMORY = "MEMORY"


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def dovecot_available() -> bool:
    """True if Dovecot's imap binary (and the doveconf it needs) can be run here."""
    return _executable(DOVECOT_IMAP) and _executable(DOVECOT_CONF_BINARY)


def dovecot_pop3_available() -> bool:
    return _executable(DOVECOT_POP3) and _executable(DOVECOT_CONF_BINARY)


def dovecot_version() -> str:
    """``doveconf --version`` output, e.g. ``2.3.19.1 (9b53102964)``."""
    out = subprocess.run(
        [str(DOVECOT_CONF_BINARY), "--version"],
        capture_output=True,
        check=True,
        timeout=DEFAULT_TIMEOUT,
    )
    return out.stdout.decode().strip()


# --------------------------------------------------------------------------------------
# Files and ownership
# --------------------------------------------------------------------------------------


def running_as_root() -> bool:
    return os.geteuid() == 0


def mail_owner() -> tuple[int, int]:
    """(uid, gid) Dovecot will access mail as: ``nobody`` when we are root, else us."""
    if running_as_root():
        pw = pwd.getpwnam(MAIL_USER)
        return pw.pw_uid, pw.pw_gid
    return os.geteuid(), os.getegid()


def chown_tree(path: str | os.PathLike[str]) -> None:
    """Give ``path`` and everything below it to the mail user (no-op unless root)."""
    if not running_as_root():
        return
    uid, gid = mail_owner()
    root = Path(path)
    os.chown(root, uid, gid, follow_symlinks=False)
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def _others_can_traverse(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def traversable_tempdir(prefix: str = "dovecot-") -> Path:
    """A fresh mode-0755 directory whose ancestors all let ``nobody`` through.

    pytest's ``tmp_path`` lives under ``/tmp/pytest-of-root`` (mode 0700), which the
    mail user cannot enter, so Maildirs and configs for Dovecot go here instead.
    The caller removes it (:func:`remove_tree`).
    """
    candidates = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    parent = next((c for c in candidates if c.is_dir() and _others_can_traverse(c)), None)
    if parent is None:
        raise DovecotError("no temporary directory that the mail user can traverse")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


def remove_tree(path: str | os.PathLike[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)


def make_maildir(path: str | os.PathLike[str]) -> Path:
    """Create an empty Maildir (``cur``, ``new``, ``tmp``) owned by the mail user."""
    root = Path(path)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    chown_tree(root)
    return root


def deliver_foreign(
    maildir: str | os.PathLike[str], filename: str, message: bytes, *, subdir: str = "new"
) -> Path:
    """Drop ``message`` into ``maildir/new`` (or ``cur``) the way another MDA would:
    written in ``tmp/``, owned by the mail user, then renamed into place."""
    root = Path(maildir)
    tmp = root / "tmp" / filename
    tmp.write_bytes(message)
    chown_tree(tmp)
    final = root / subdir / filename
    os.rename(tmp, final)
    return final


# --------------------------------------------------------------------------------------
# Modified UTF-7 (RFC 3501 section 5.1.3) and IMAP syntax helpers
# --------------------------------------------------------------------------------------


def encode_mutf7(name: str) -> str:
    """Encode a mailbox name in IMAP modified UTF-7 (``Entwürfe`` -> ``Entw&APw-rfe``)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode_mutf7(name: str) -> str:
    """Inverse of :func:`encode_mutf7`."""

    def repl(m: re.Match[str]) -> str:
        b64 = m.group(1)
        if not b64:
            return "&"
        b64 = b64.replace(",", "/")
        b64 += "=" * (-len(b64) % 4)
        return base64.b64decode(b64).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", repl, name)


def imap_quote(value: str) -> str:
    """An IMAP quoted string (ASCII only: encode mailbox names with mUTF-7 first)."""
    if any(c in value for c in "\r\n\0") or not value.isascii():
        raise ValueError(f"cannot send {value!r} as an IMAP quoted string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox_arg(name: str) -> str:
    return imap_quote(encode_mutf7(name))


# An IMAP value: atoms and strings are bytes, NIL is None, parenthesised lists are lists.
ImapValue = bytes | None | list[Any]

_ATOM_END = b" ()\r\n"


def parse_imap(data: bytes) -> list[ImapValue]:
    """Tokenise one IMAP response line (literals included) into nested values.

    ``BODY[HEADER.FIELDS (SUBJECT)]<0>``-style section atoms are kept whole.
    """
    pos = 0
    n = len(data)
    stack: list[list[ImapValue]] = [[]]
    while pos < n:
        c = data[pos : pos + 1]
        if c in (b" ", b"\r", b"\n"):
            pos += 1
        elif c == b"(":
            new: list[ImapValue] = []
            stack[-1].append(new)
            stack.append(new)
            pos += 1
        elif c == b")":
            if len(stack) == 1:
                raise ValueError(f"unbalanced ')' in {data!r}")
            stack.pop()
            pos += 1
        elif c == b'"':
            pos += 1
            buf = bytearray()
            while pos < n and data[pos : pos + 1] != b'"':
                if data[pos : pos + 1] == b"\\":
                    pos += 1
                buf += data[pos : pos + 1]
                pos += 1
            pos += 1
            stack[-1].append(bytes(buf))
        elif c in (b"{", b"~") and (m := re.match(rb"~?\{(\d+)\+?\}\r\n", data[pos:])):
            start = pos + m.end()
            size = int(m.group(1))
            stack[-1].append(data[start : start + size])
            pos = start + size
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos : pos + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                elif depth <= 0 and ch in _ATOM_END:
                    break
                pos += 1
            atom = data[start:pos]
            stack[-1].append(None if atom.upper() == b"NIL" else atom)
    if len(stack) != 1:
        raise ValueError(f"unbalanced '(' in {data!r}")
    return stack[0]


def _flag_set(value: ImapValue) -> set[str]:
    if not isinstance(value, list):
        raise ValueError(f"expected a flag list, got {value!r}")
    return {v.decode() for v in value if isinstance(v, bytes)}


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class DovecotError(Exception):
    """Dovecot misbehaved (died, timed out, refused a command); carries its log."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        if log.strip():
            message = f"{message}\n--- dovecot log ---\n{log.rstrip()}"
        super().__init__(message)


class DovecotTimeout(DovecotError):
    pass


class DovecotCommandError(DovecotError):
    """A command got NO/BAD (IMAP) or -ERR (POP3); ``lines`` holds the full response."""

    def __init__(self, command: str, lines: list[bytes], log: str = "") -> None:
        self.command = command
        self.lines = lines
        shown = b"".join(lines).decode("utf-8", "replace")
        super().__init__(f"dovecot refused {command!r}:\n{shown}", log)


# --------------------------------------------------------------------------------------
# Process and config handling shared by IMAP and POP3
# --------------------------------------------------------------------------------------


class _Session:
    binary: Path = DOVECOT_IMAP

    def __init__(
        self,
        maildir: str | os.PathLike[str],
        *,
        index: str | os.PathLike[str] | None = INDEX_MEMORY,
        location_options: str = "",
        settings: Mapping[str, str] | None = None,
        user: str = "testuser",
        timeout: float = DEFAULT_TIMEOUT,
        mail_debug: bool = False,
        keep_tempdir: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start one session on the Maildir ``maildir``.

        ``index``: ``"MEMORY"`` (default: no index files, Dovecot must rely on
        dovecot-uidlist and the file names), ``"private"`` (an on-disk index directory
        inside this session's temporary directory), any other path (an on-disk index
        directory there, created for the mail user: pass the same path to later
        sessions to keep the index between them), or None (Dovecot's default: index
        files inside the Maildir itself).
        ``location_options``: appended to ``mail_location``, e.g. ``":LAYOUT=fs"``.
        ``settings``: extra ``dovecot.conf`` lines, e.g. ``{"pop3_uidl_format": "%f"}``.
        ``env``: extra environment variables (the default has ``TZ=UTC``).
        ``keep_tempdir``: keep the config, log and home directory after :meth:`close`.
        """
        self.maildir = Path(maildir).absolute()
        self.timeout = timeout
        self.tempdir = traversable_tempdir("dovecot-session-")
        self.keep_tempdir = keep_tempdir
        self.log_path = self.tempdir / "dovecot.log"
        self.config_path = self.tempdir / "dovecot.conf"
        self.home = self.tempdir / "home"
        self.home.mkdir()
        chown_tree(self.home)
        self.index_dir: Path | None = None
        self._buf = bytearray()
        self._proc: subprocess.Popen[bytes] | None = None
        try:
            location = f"maildir:{_config_path(self.maildir)}"
            if index is not None:
                if str(index) == INDEX_MEMORY:
                    location += ":INDEX=MEMORY"
                else:
                    self.index_dir = (
                        self.tempdir / "index"
                        if str(index) == "private"
                        else Path(index).absolute()
                    )
                    self.index_dir.mkdir(parents=True, exist_ok=True)
                    chown_tree(self.index_dir)
                    location += f":INDEX={_config_path(self.index_dir)}"
            location += location_options
            self.mail_location = location
            self.config_path.write_text(self._config_text(location, settings, mail_debug))
            self.config_path.chmod(0o644)
            env = {
                "USER": user,
                "HOME": str(self.home),
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C",
                "TZ": "UTC",  # INTERNALDATEs come back in the server's zone
                **(env or {}),
            }
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    [str(self.binary), "-c", str(self.config_path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    env=env,
                    cwd=self.tempdir,
                    start_new_session=True,
                )
            self._start()
        except BaseException:
            self.close()
            raise

    # -- config ------------------------------------------------------------------------

    def _config_text(
        self, location: str, settings: Mapping[str, str] | None, mail_debug: bool
    ) -> str:
        lines = [
            "# Written by tests/interop/dovecot.py for one standalone session.",
            "protocols = imap pop3",
            "ssl = no",
            f"base_dir = {self.tempdir / 'run'}",
            f"state_dir = {self.tempdir / 'state'}",
            # Standalone processes log to stderr (captured into this same file).
            f"log_path = {self.log_path}",
            f"mail_location = {location}",
            "first_valid_uid = 0",
            f"mail_debug = {'yes' if mail_debug else 'no'}",
        ]
        if running_as_root():
            uid, gid = mail_owner()
            lines += [f"mail_uid = {uid}", f"mail_gid = {gid}"]
        for key, value in (settings or {}).items():
            lines.append(f"{key} = {value}")
        return "\n".join(lines) + "\n"

    # -- process -----------------------------------------------------------------------

    def _start(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _fail(self, message: str, cls: type[DovecotError] = DovecotError) -> DovecotError:
        if self._proc is not None and self._proc.poll() is not None:
            message += f" (dovecot exited with status {self._proc.returncode})"
        return cls(message, self.read_log())

    def _proc_or_fail(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise DovecotError("session is closed", self.read_log())
        return self._proc

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` to Dovecot's stdin; each wait for pipe space is bounded too."""
        proc = self._proc_or_fail()
        assert proc.stdin is not None
        fd = proc.stdin.fileno()
        os.set_blocking(fd, False)  # partial writes instead of blocking on a full pipe
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [fd], [], self.timeout)
            if not ready:
                self.kill()
                raise self._fail(
                    f"timed out after {self.timeout}s writing to dovecot", DovecotTimeout
                )
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise self._fail(f"cannot write to dovecot: {exc}") from exc
            view = view[written:]

    def _fill(self, what: str) -> None:
        """Read at least one more byte from Dovecot, waiting at most ``timeout``."""
        proc = self._proc_or_fail()
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            got = bytes(self._buf[:500])
            self.kill()
            raise self._fail(
                f"timed out after {self.timeout}s waiting for {what}; unread: {got!r}",
                DovecotTimeout,
            )
        chunk = os.read(fd, 65536)
        if not chunk:
            raise self._fail(f"dovecot closed the connection while we waited for {what}")
        self._buf += chunk

    def read_line(self) -> bytes:
        """One line, with its line end (CRLF or LF)."""
        while (end := self._buf.find(b"\n")) < 0:
            self._fill("a line")
        line = bytes(self._buf[: end + 1])
        del self._buf[: end + 1]
        return line

    def read_exact(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill(f"{size} bytes")
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=self.timeout)

    def close(self) -> None:
        """Close stdin (Dovecot ends the session on EOF), wait briefly, then kill."""
        proc = self._proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=min(self.timeout, 5.0))
            except subprocess.TimeoutExpired:
                self.kill()
        if not self.keep_tempdir:
            remove_tree(self.tempdir)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode if self._proc else None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _config_path(path: Path) -> str:
    text = str(path)
    if any(c.isspace() for c in text) or ":" in text or '"' in text:
        raise ValueError(f"path {text!r} cannot be used in mail_location")
    return text


# --------------------------------------------------------------------------------------
# IMAP
# --------------------------------------------------------------------------------------


class SelectInfo(TypedDict, total=False):
    flags: list[str]
    permanentflags: list[str]
    exists: int
    recent: int
    uidvalidity: int
    uidnext: int
    unseen: int
    highestmodseq: int
    nomodseq: bool
    read_write: bool


_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}\r?\n\Z")
_UNTAGGED_NUM = re.compile(rb"\* (\d+) (EXISTS|RECENT)\r\n\Z", re.IGNORECASE)
_RESP_CODE = re.compile(rb"\[([A-Z-]+)(?: ([^\]]*))?\]", re.IGNORECASE)


class DovecotImap(_Session):
    """One PREAUTH IMAP session of the real Dovecot on a Maildir.

    >>> with DovecotImap(maildir) as imap:            # doctest: +SKIP
    ...     imap.append("INBOX", b"Subject: x\\r\\n\\r\\nbody\\r\\n", flags="\\\\Seen")
    ...     imap.select("INBOX")["uidvalidity"]
    """

    binary = DOVECOT_IMAP

    def _start(self) -> None:
        self._tag = 0
        self.greeting = self.read_line()
        if not self.greeting.startswith(b"* PREAUTH"):
            raise self._fail(f"unexpected IMAP greeting {self.greeting!r}")

    # -- raw protocol ------------------------------------------------------------------

    def next_tag(self) -> str:
        self._tag += 1
        return f"A{self._tag:04d}"

    def read_response(self) -> bytes:
        """One logical response line; literals (``{n}`` + n bytes) are kept inline."""
        line = self.read_line()
        out = bytearray(line)
        while m := _LITERAL_AT_END.search(line):
            out += self.read_exact(int(m.group(1)))
            line = self.read_line()
            out += line
        return bytes(out)

    def _read_until_tagged(self, tag: str, command: str) -> list[bytes]:
        prefix = tag.encode() + b" "
        lines: list[bytes] = []
        while True:
            try:
                line = self.read_response()
            except DovecotError as exc:
                got = b"".join(lines)[-2000:].decode("utf-8", "replace")
                raise type(exc)(
                    f"{exc.args[0].split(chr(10))[0]}\n"
                    f"command: {tag} {command}\nreceived so far:\n{got}",
                    exc.log,
                ) from exc
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def command(self, line: str, *, check: bool = False) -> list[bytes]:
        """Send ``TAG line`` and return every response line up to and including the
        tagged completion.  With ``check=True`` a NO/BAD raises DovecotCommandError."""
        tag = self.next_tag()
        self.send_raw(f"{tag} {line}\r\n".encode())
        lines = self._read_until_tagged(tag, line)
        if check:
            self._check(line, tag, lines)
        return lines

    def _check(self, line: str, tag: str, lines: list[bytes]) -> None:
        if not lines[-1].upper().startswith(f"{tag} OK".encode()):
            raise DovecotCommandError(line, lines, self.read_log())

    def ok(self, line: str) -> list[bytes]:
        """:meth:`command` that raises unless the result is OK."""
        return self.command(line, check=True)

    @staticmethod
    def tagged_status(lines: Sequence[bytes]) -> str:
        """``"OK"``, ``"NO"`` or ``"BAD"`` of a :meth:`command` result."""
        return lines[-1].split(b" ", 2)[1].decode().upper()

    # -- commands ----------------------------------------------------------------------

    def append(
        self,
        mailbox: str,
        message: bytes,
        flags: str = "",
        date: str | None = None,
    ) -> int | None:
        """APPEND with a synchronizing literal; returns the APPENDUID UID.

        ``flags`` is e.g. ``"\\Seen $Forwarded"`` (parentheses optional); ``date`` an
        IMAP date-time such as ``"01-Jan-2024 12:00:00 +0000"``.
        """
        parts = ["APPEND", _mailbox_arg(mailbox)]
        flags = flags.strip()
        if flags:
            parts.append(flags if flags.startswith("(") else f"({flags})")
        if date is not None:
            parts.append(imap_quote(date))
        parts.append(f"{{{len(message)}}}")
        line = " ".join(parts)
        tag = self.next_tag()
        self.send_raw(f"{tag} {line}\r\n".encode())
        lines: list[bytes] = []
        while True:
            resp = self.read_response()
            if resp.startswith(b"+"):
                break
            lines.append(resp)
            if resp.startswith(tag.encode() + b" "):  # refused before the literal
                raise DovecotCommandError(line, lines, self.read_log())
        self.send_raw(message + b"\r\n")
        lines += self._read_until_tagged(tag, line)
        self._check(line, tag, lines)
        m = re.search(rb"\[APPENDUID \d+ (\d+)\]", lines[-1], re.IGNORECASE)
        return int(m.group(1)) if m else None

    def select(self, name: str = "INBOX", *, readonly: bool = False) -> SelectInfo:
        """SELECT (or EXAMINE) and parse the untagged data."""
        verb = "EXAMINE" if readonly else "SELECT"
        lines = self.ok(f"{verb} {_mailbox_arg(name)}")
        info: SelectInfo = {}
        for line in lines:
            if m := _UNTAGGED_NUM.match(line):
                if m.group(2).upper() == b"EXISTS":
                    info["exists"] = int(m.group(1))
                else:
                    info["recent"] = int(m.group(1))
            elif line.upper().startswith(b"* FLAGS "):
                info["flags"] = sorted(_flag_set(parse_imap(line)[2]))
            for code in _RESP_CODE.finditer(line):
                name_ = code.group(1).decode().upper()
                arg = code.group(2) or b""
                if name_ == "PERMANENTFLAGS":
                    info["permanentflags"] = sorted(_flag_set(parse_imap(arg)[0]))
                elif name_ == "UIDVALIDITY":
                    info["uidvalidity"] = int(arg)
                elif name_ == "UIDNEXT":
                    info["uidnext"] = int(arg)
                elif name_ == "UNSEEN":
                    info["unseen"] = int(arg)
                elif name_ == "HIGHESTMODSEQ":
                    info["highestmodseq"] = int(arg)
                elif name_ == "NOMODSEQ":
                    info["nomodseq"] = True
                elif name_ in ("READ-WRITE", "READ-ONLY"):
                    info["read_write"] = name_ == "READ-WRITE"
        return info

    def examine(self, name: str = "INBOX") -> SelectInfo:
        return self.select(name, readonly=True)

    def fetch(self, uid_set: str, items: str) -> dict[int, dict[str, ImapValue]]:
        """``UID FETCH uid_set items`` -> {uid: {ITEM-NAME: value}} (names upper-case)."""
        lines = self.ok(f"UID FETCH {uid_set} {items}")
        result: dict[int, dict[str, ImapValue]] = {}
        for line in lines:
            if not re.match(rb"\* \d+ FETCH ", line, re.IGNORECASE):
                continue
            tokens = parse_imap(line)
            data = tokens[3]
            if not isinstance(data, list):
                raise DovecotError(f"cannot parse FETCH response {line!r}")
            pairs: dict[str, ImapValue] = {}
            for key, value in zip(data[::2], data[1::2], strict=True):
                assert isinstance(key, bytes)
                pairs[key.decode().upper()] = value
            uid = pairs.get("UID")
            if not isinstance(uid, bytes):
                raise DovecotError(f"FETCH response without UID: {line!r}")
            result.setdefault(int(uid), {}).update(pairs)
        return result

    def uid_fetch_flags(self, uid_set: str = "1:*") -> dict[int, set[str]]:
        """UID -> flags (system flags and keywords, e.g. ``{"\\Seen", "$Label1"}``)."""
        return {
            uid: _flag_set(items.get("FLAGS", []))
            for uid, items in self.fetch(uid_set, "(UID FLAGS)").items()
        }

    def fetch_body(self, uid: int) -> bytes:
        """The message as Dovecot serves it (``BODY.PEEK[]``)."""
        items = self.fetch(str(uid), "(UID BODY.PEEK[])").get(uid)
        if items is None:
            raise DovecotError(f"no message with UID {uid}", self.read_log())
        body = items.get("BODY[]")
        if not isinstance(body, bytes):
            raise DovecotError(f"UID {uid} has no BODY[]: {items!r}", self.read_log())
        return body

    def list_entries(
        self, reference: str = "", pattern: str = "*", *, verb: str = "LIST"
    ) -> list[tuple[set[str], str | None, str]]:
        """[(attributes, delimiter, decoded name)] from LIST (or LSUB)."""
        lines = self.ok(f"{verb} {imap_quote(reference)} {imap_quote(pattern)}")
        out: list[tuple[set[str], str | None, str]] = []
        prefix = f"* {verb} ".encode()
        for line in lines:
            if not line.upper().startswith(prefix):
                continue
            _, _, attrs, delim, name = parse_imap(line)[:5]
            if not isinstance(name, bytes):
                raise DovecotError(f"cannot parse {line!r}")
            out.append(
                (
                    _flag_set(attrs),
                    delim.decode() if isinstance(delim, bytes) else None,
                    decode_mutf7(name.decode("ascii")),
                )
            )
        return out

    def list_mailboxes(self, pattern: str = "*") -> list[str]:
        """Mailbox names (decoded from modified UTF-7), in Dovecot's order."""
        return [name for _, _, name in self.list_entries("", pattern)]

    def lsub(self, pattern: str = "*") -> list[str]:
        return [name for _, _, name in self.list_entries("", pattern, verb="LSUB")]

    def create(self, name: str) -> list[bytes]:
        return self.ok(f"CREATE {_mailbox_arg(name)}")

    def delete(self, name: str) -> list[bytes]:
        return self.ok(f"DELETE {_mailbox_arg(name)}")

    def rename(self, old: str, new: str) -> list[bytes]:
        return self.ok(f"RENAME {_mailbox_arg(old)} {_mailbox_arg(new)}")

    def subscribe(self, name: str) -> list[bytes]:
        return self.ok(f"SUBSCRIBE {_mailbox_arg(name)}")

    def unsubscribe(self, name: str) -> list[bytes]:
        return self.ok(f"UNSUBSCRIBE {_mailbox_arg(name)}")

    def status(
        self,
        name: str,
        items: Iterable[str] = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"),
    ) -> dict[str, int]:
        lines = self.ok(f"STATUS {_mailbox_arg(name)} ({' '.join(items)})")
        for line in lines:
            if line.upper().startswith(b"* STATUS "):
                values = parse_imap(line)[3]
                assert isinstance(values, list)
                return {
                    k.decode().upper(): int(v)
                    for k, v in zip(values[::2], values[1::2], strict=True)
                    if isinstance(k, bytes) and isinstance(v, bytes)
                }
        raise DovecotError(f"no STATUS data in {lines!r}", self.read_log())

    def store(self, uid: int | str, op: str, flags: str) -> dict[int, set[str]]:
        """``UID STORE uid op flags`` (e.g. ``store(3, "+FLAGS", "(\\Seen)")``);
        returns the flags Dovecot reports back (empty for ``.SILENT``)."""
        if not flags.startswith("("):
            flags = f"({flags})"
        lines = self.ok(f"UID STORE {uid} {op} {flags}")
        result: dict[int, set[str]] = {}
        for line in lines:
            if re.match(rb"\* \d+ FETCH ", line, re.IGNORECASE):
                data = parse_imap(line)[3]
                assert isinstance(data, list)
                pairs = dict(zip(data[::2], data[1::2], strict=True))
                uid_value = pairs.get(b"UID")
                if isinstance(uid_value, bytes) and b"FLAGS" in pairs:
                    result[int(uid_value)] = _flag_set(pairs[b"FLAGS"])
        return result

    def uid_search(self, criteria: str = "ALL") -> list[int]:
        lines = self.ok(f"UID SEARCH {criteria}")
        for line in lines:
            if line.upper().startswith(b"* SEARCH"):
                return [int(x) for x in line.split()[2:]]
        return []

    def expunge(self) -> list[bytes]:
        return self.ok("EXPUNGE")

    def noop(self) -> list[bytes]:
        return self.ok("NOOP")

    def logout(self) -> list[bytes]:
        """LOGOUT and wait for Dovecot to exit."""
        lines = self.ok("LOGOUT")
        proc = self._proc_or_fail()
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail("dovecot did not exit after LOGOUT", DovecotTimeout) from None
        return lines


# --------------------------------------------------------------------------------------
# POP3
# --------------------------------------------------------------------------------------

_POP3_MULTILINE_ALWAYS = {"CAPA", "RETR", "TOP"}
_POP3_MULTILINE_WITHOUT_ARG = {"LIST", "UIDL"}


class DovecotPop3(_Session):
    """One POP3 session of the real Dovecot in TRANSACTION state.

    Standalone ``pop3`` sends no greeting; the session starts directly after login.
    """

    binary = DOVECOT_POP3

    def _start(self) -> None:
        # No greeting in standalone mode: check the session is alive with a NOOP.
        self.command("NOOP", check=True)

    def command(
        self, line: str, *, multiline: bool | None = None, check: bool = False
    ) -> list[bytes]:
        """Send ``line``; return the status line and, for multi-line answers
        (RETR, TOP, CAPA, LIST/UIDL without argument), every data line as sent
        (still dot-stuffed) including the terminating ``.\\r\\n``."""
        self.send_raw(f"{line}\r\n".encode())
        status = self.read_line()
        lines = [status]
        if multiline is None:
            words = line.split()
            verb = words[0].upper() if words else ""
            multiline = verb in _POP3_MULTILINE_ALWAYS or (
                verb in _POP3_MULTILINE_WITHOUT_ARG and len(words) == 1
            )
        ok = status.startswith(b"+OK")
        if ok and multiline:
            while True:
                data = self.read_line()
                lines.append(data)
                if data in (b".\r\n", b".\n"):
                    break
        if check and not ok:
            raise DovecotCommandError(line, lines, self.read_log())
        return lines

    def ok(self, line: str) -> list[bytes]:
        return self.command(line, check=True)

    @staticmethod
    def _data(lines: list[bytes]) -> list[bytes]:
        """Data lines of a multi-line answer, dot-unstuffed, line ends kept."""
        return [ln[1:] if ln.startswith(b"..") else ln for ln in lines[1:-1]]

    def stat(self) -> tuple[int, int]:
        parts = self.ok("STAT")[0].split()
        return int(parts[1]), int(parts[2])

    def list_sizes(self) -> dict[int, int]:
        """Message number -> size as Dovecot counts it (CRLF line ends)."""
        result: dict[int, int] = {}
        for ln in self._data(self.ok("LIST")):
            num, size = ln.split()
            result[int(num)] = int(size)
        return result

    def uidl(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for ln in self._data(self.ok("UIDL")):
            num, uid = ln.split(None, 1)
            result[int(num)] = uid.strip().decode()
        return result

    def retr(self, n: int) -> bytes:
        """Message ``n`` as sent (CRLF line ends, unstuffed; Dovecot ends it with CRLF
        even if the stored file does not end with a newline)."""
        return b"".join(self._data(self.ok(f"RETR {n}")))

    def top(self, n: int, lines: int = 0) -> bytes:
        return b"".join(self._data(self.ok(f"TOP {n} {lines}")))

    def dele(self, n: int) -> list[bytes]:
        return self.ok(f"DELE {n}")

    def quit(self) -> list[bytes]:
        """QUIT (commits DELE) and wait for Dovecot to exit."""
        lines = self.ok("QUIT")
        proc = self._proc_or_fail()
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise self._fail("dovecot did not exit after QUIT", DovecotTimeout) from None
        return lines


# --------------------------------------------------------------------------------------
# A factory for fixtures: starts sessions and closes them all at teardown
# --------------------------------------------------------------------------------------


class DovecotFactory:
    """``dovecot()`` / ``dovecot.imap()`` / ``dovecot.pop3()`` start sessions on
    ``default_maildir`` (or the Maildir given); :meth:`close_all` ends them."""

    def __init__(self, default_maildir: Path, **defaults: Any) -> None:
        self.default_maildir = default_maildir
        self.defaults = defaults
        self.sessions: list[_Session] = []

    def imap(self, maildir: str | os.PathLike[str] | None = None, **options: Any) -> DovecotImap:
        session = DovecotImap(maildir or self.default_maildir, **{**self.defaults, **options})
        self.sessions.append(session)
        return session

    def pop3(self, maildir: str | os.PathLike[str] | None = None, **options: Any) -> DovecotPop3:
        session = DovecotPop3(maildir or self.default_maildir, **{**self.defaults, **options})
        self.sessions.append(session)
        return session

    __call__ = imap

    def close_all(self) -> None:
        while self.sessions:
            self.sessions.pop().close()
