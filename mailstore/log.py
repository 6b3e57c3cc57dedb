"""The one logging path of `mailstore`, `mda` and `mra`: an event name and key=value fields.

    2026-11-29T10:00:00Z info login proto=imap user=alice ip=127.0.0.1 mech=PLAIN pid=4711

Every line is one event: its level (debug, info, warn, error), a name an administrator can
grep for, and fields. Values are quoted when they hold spaces, quotes or `=`, and control
characters are escaped, so a client cannot forge a log line through a user name. The `[log]`
settings (`configure`) choose:

* `format`: "text" (the line above) or "json" (one JSON object a line: `time`, `level`,
  `event`, `program`, `pid` and the fields), for log shippers;
* `target`: "stderr" (the default, also before anything is configured), "file" (`path`,
  opened for appending; a rotated file, one whose inode changed, is opened again), "syslog"
  (RFC 3164 datagrams to /dev/log, facility `syslog_facility`) or "journald" (the journal's
  native protocol, each field its own `MRA_*` journal field, so `journalctl MRA_USER=alice`
  finds a user's lines);
* `level`: the lowest level written ("info"; `MRA_DEBUG=1` in the environment means "debug");
* `rate_limit` lines of one warning or error event per `rate_limit_interval` seconds: past that
  they are counted, not written, and `log-suppressed event=NAME count=N` says how many when
  the next interval begins (`flush_suppressed`). A client that triggers the same error on
  every command cannot fill a disk through us.

The standard library's `logging` (which a few modules and libraries use) is forwarded here by
`forward_stdlib_logging`, so there is one stream and one format. Listeners (`subscribe`) see
every event, whatever its level, before it is filtered: the server's metrics count logins,
connections and deliveries from the same events the log shows (as Dovecot's statistics are
filters over its events), so a counter and the log never disagree.

This module is on the delivery agent's path: it imports nothing at start-up (`json` and
`socket` only when a target needs them), and writes one line with one system call.
"""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    Listener = Callable[[str, str, Mapping[str, object]], None]

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
FORMATS = ("text", "json")
TARGETS = ("stderr", "file", "syslog", "journald")
FACILITIES = {
    "mail": 2,
    "daemon": 3,
    "user": 1,
    **{f"local{n}": 16 + n for n in range(8)},
}
_SYSLOG_SEVERITY = {"debug": 7, "info": 6, "warn": 4, "error": 3}
SYSLOG_SOCKET = "/dev/log"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
RATE_LIMITED = ("warn", "error")


class _Settings:
    """What `configure` set; the defaults are what a process gets before it is configured."""

    def __init__(self) -> None:
        self.format = "text"
        self.target = "stderr"
        self.path = ""
        self.level = 10 if os.environ.get("MRA_DEBUG") else 20
        self.facility = FACILITIES["mail"]
        self.program = "mra"
        self.rate_limit = 0  # lines per event and interval; 0 = no limit
        self.rate_interval = 60.0
        self.tag = ""  # " worker=N" in the server's worker processes


_settings = _Settings()
_listeners: list[Listener] = []
_fd = -1  # the open log file (target "file")
_file_id: tuple[int, int] | None = None
_sock: object = None  # the datagram socket to syslog or journald
_windows: dict[str, list[float]] = {}  # event -> [interval start, lines written, suppressed]
_lock = None  # a _thread lock, made at the first write (threads share the stream)


def configure(
    *,
    target: str = "stderr",
    path: str = "",
    format: str = "text",
    level: str = "info",
    facility: str = "mail",
    rate_limit: int = 0,
    rate_interval: float = 60.0,
    program: str | None = None,
) -> None:
    """Set where and how events are written (the `[log]` section; see the module notes).
    Opens the file now, while the caller may still be root. Raises OSError when it cannot."""
    global _sock
    _close()
    _sock = None
    s = _settings
    s.format = format if format in FORMATS else "text"
    s.target = target if target in TARGETS else "stderr"
    s.path = path
    s.level = 10 if os.environ.get("MRA_DEBUG") else LEVELS.get(level, 20)
    s.facility = FACILITIES.get(facility, FACILITIES["mail"])
    s.rate_limit = rate_limit
    s.rate_interval = rate_interval
    if program is not None:
        s.program = program
    # What the format and target need is imported now, while the caller may still be root:
    # after mda or mra drop privileges, an interpreter under /root (pyenv) is unreadable and
    # a first `import json` would fail, silently costing every line.
    if s.format == "json" or s.target == "journald":
        import json  # noqa: F401
    if s.target in ("syslog", "journald"):
        import socket  # noqa: F401
    if s.target == "file":
        _open_file()


def configure_from(section: object, program: str | None = None) -> None:
    """`configure` from a `[log]` section (`mailstore.config.LogConfig` or its cached copy)."""
    get = section.__getattribute__
    configure(
        target=get("target"),
        path=get("path"),
        format=get("format"),
        level=get("level"),
        facility=get("syslog_facility"),
        rate_limit=get("rate_limit"),
        rate_interval=get("rate_limit_interval"),
        program=program,
    )


def set_program(program: str) -> None:
    _settings.program = program


def set_tag(tag: str) -> None:
    """Fields every line of this process carries after the others (`worker=N`)."""
    _settings.tag = tag


def target() -> str:
    return _settings.target


def subscribe(listener: Listener) -> None:
    """Call `listener(level, event, fields)` for every event from now on."""
    _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def reopen() -> None:
    """Open the log file again (after logrotate moved it: the server's SIGHUP)."""
    if _settings.target == "file":
        _open_file()


# -- the events ------------------------------------------------------------------------------


def debug(event: str, **fields: object) -> None:
    emit("debug", event, fields)


def info(event: str, **fields: object) -> None:
    emit("info", event, fields)


def warn(event: str, **fields: object) -> None:
    emit("warn", event, fields)


def error(event: str, **fields: object) -> None:
    emit("error", event, fields)


def emit(level: str, event: str, fields: Mapping[str, object]) -> None:
    for listener in _listeners:
        try:
            listener(level, event, fields)
        except Exception:
            pass  # a counter must never cost the event its line
    s = _settings
    if LEVELS.get(level, 20) < s.level:
        return
    if s.rate_limit and level in RATE_LIMITED and not _admit(event):
        return
    _write(level, event, fields)


def _admit(event: str) -> bool:
    """Whether this warning or error may be written now (the rate limit), saying first how
    many of its kind were held back in the interval that ended."""
    now = time.monotonic()
    window = _windows.get(event)
    if window is None or now - window[0] >= _settings.rate_interval:
        if window is not None and window[2]:
            _write("warn", "log-suppressed", {"event": event, "count": int(window[2])})
        if len(_windows) > 10_000:  # event names are ours, but bound the table anyway
            _windows.clear()
        _windows[event] = [now, 1, 0]
        return True
    if window[1] < _settings.rate_limit:
        window[1] += 1
        return True
    window[2] += 1
    return False


def flush_suppressed() -> None:
    """Report the events held back in intervals that have ended (called by the server now
    and then, and when it stops)."""
    now = time.monotonic()
    for event, window in list(_windows.items()):
        if window[2] and now - window[0] >= _settings.rate_interval:
            _write("warn", "log-suppressed", {"event": event, "count": int(window[2])})
            del _windows[event]


# -- formatting ------------------------------------------------------------------------------


def quote(value: object) -> str:
    """A value as the text format writes it: bare, or quoted with escapes."""
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=\\' for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return f'"{escaped}"'


def _kv(fields: Mapping[str, object]) -> str:
    return " ".join(f"{k}={quote(v)}" for k, v in fields.items() if v is not None)


def format_text(level: str, event: str, fields: Mapping[str, object], stamp: bool = True) -> str:
    parts = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())] if stamp else []
    parts += [level, event]
    if fields:
        text = _kv(fields)
        if text:
            parts.append(text)
    return " ".join(parts) + _settings.tag + f" pid={os.getpid()}"


def format_json(level: str, event: str, fields: Mapping[str, object]) -> str:
    import json

    record: dict[str, object] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": level,
        "event": event,
        "program": _settings.program,
        "pid": os.getpid(),
    }
    if _settings.tag:
        tag, _, tag_value = _settings.tag.strip().partition("=")
        record[tag] = int(tag_value) if tag_value.isascii() and tag_value.isdigit() else tag_value
    for key, value in fields.items():
        if value is None or key in ("time", "level", "event", "program", "pid"):
            continue
        record[key] = value if isinstance(value, (int, float, bool)) else str(value)
    # ensure_ascii: control characters and everything else non-ASCII are escaped.
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))


# -- the targets -----------------------------------------------------------------------------


def _write(level: str, event: str, fields: Mapping[str, object]) -> None:
    global _lock
    s = _settings
    if _lock is None:
        import _thread

        _lock = _thread.allocate_lock()
    try:
        if s.target == "journald":
            data = _journal_record(level, event, fields)
        elif s.format == "json":
            data = format_json(level, event, fields).encode("utf-8", "replace")
        else:
            data = format_text(level, event, fields, stamp=s.target != "syslog").encode(
                "utf-8", "replace"
            )
        with _lock:
            if s.target == "stderr":
                _to_stderr(data)
            elif s.target == "file":
                _to_file(data)
            elif s.target == "syslog":
                _to_syslog(level, data)
            else:
                _to_socket(JOURNAL_SOCKET, data)
    except Exception:
        pass  # logging must never take the process down


def _to_stderr(data: bytes) -> None:
    stream = sys.stderr
    if stream is None:
        return
    try:
        stream.write(data.decode("utf-8", "replace") + "\n")
        stream.flush()
    except (OSError, ValueError):
        pass


def _open_file() -> None:
    global _fd, _file_id
    fd = os.open(
        _settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640
    )
    st = os.fstat(fd)
    _close()
    _fd, _file_id = fd, (st.st_dev, st.st_ino)


def _close() -> None:
    global _fd, _file_id
    if _fd >= 0:
        try:
            os.close(_fd)
        except OSError:
            pass
    _fd, _file_id = -1, None


def _to_file(data: bytes) -> None:
    try:
        st = os.stat(_settings.path)
        rotated = (st.st_dev, st.st_ino) != _file_id
    except OSError:
        rotated = True
    if rotated or _fd < 0:
        try:
            _open_file()
        except OSError:
            pass  # keep writing where we can (a dropped server may not create the new file)
    if _fd >= 0:
        os.write(_fd, data + b"\n")
    else:
        _to_stderr(data)


def _to_syslog(level: str, data: bytes) -> None:
    priority = _settings.facility * 8 + _SYSLOG_SEVERITY.get(level, 6)
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    header = f"<{priority}>{stamp} {_settings.program}[{os.getpid()}]: ".encode()
    _to_socket(SYSLOG_SOCKET, header + data)


def _journal_record(level: str, event: str, fields: Mapping[str, object]) -> bytes:
    """The journal's native format: KEY=value lines; a value holding a newline is sent as
    KEY, a newline, its length as 64-bit little-endian, the value, a newline."""
    message = format_json(level, event, fields) if _settings.format == "json" else None
    if message is None:
        message = format_text(level, event, fields, stamp=False)
    items: list[tuple[str, str]] = [
        ("MESSAGE", message),
        ("PRIORITY", str(_SYSLOG_SEVERITY.get(level, 6))),
        ("SYSLOG_IDENTIFIER", _settings.program),
        ("SYSLOG_FACILITY", str(_settings.facility)),
        ("MRA_EVENT", event),
    ]
    for key, value in fields.items():
        if value is None:
            continue
        name = "".join(c if c.isalnum() else "_" for c in key.upper())
        items.append((f"MRA_{name}"[:64], str(value)))
    out = bytearray()
    for key, value in items:
        raw = value.encode("utf-8", "replace")
        if b"\n" in raw:
            out += key.encode() + b"\n" + len(raw).to_bytes(8, "little") + raw + b"\n"
        else:
            out += key.encode() + b"=" + raw + b"\n"
    return bytes(out)


def _to_socket(path: str, data: bytes) -> None:
    global _sock
    import socket

    sock = _sock
    if sock is None:
        sock = _sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    assert isinstance(sock, socket.socket)
    try:
        sock.sendto(data, path)
    except OSError:
        # No syslog daemon or journal listening (a container): the line goes to stderr
        # rather than nowhere.
        _to_stderr(data.split(b"\n", 1)[0] if path == JOURNAL_SOCKET else data)


# -- the standard library's logging ----------------------------------------------------------


def forward_stdlib_logging() -> None:
    """Send what modules log through the standard `logging` (the passwd-file's warnings,
    libraries) down this path, as `log` events named after the logger."""
    import logging

    class _Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = (
                "error"
                if record.levelno >= logging.ERROR
                else "warn"
                if record.levelno >= logging.WARNING
                else "info"
                if record.levelno >= logging.INFO
                else "debug"
            )
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            emit(level, "log", {"logger": record.name, "message": message})

    root = logging.getLogger()
    if not any(type(h).__name__ == "_Forward" for h in root.handlers):
        root.addHandler(_Forward())
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.DEBUG if _settings.level <= 10 else logging.INFO)
