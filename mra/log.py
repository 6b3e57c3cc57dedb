"""Structured logging: one line per event on stderr, `key=value` pairs, never a password.

    2026-11-29T10:00:00Z info login proto=imap user=alice ip=127.0.0.1 mech=PLAIN

Values are quoted when they contain spaces or quotes, and control characters are escaped, so a
client cannot forge log lines through a user name.
"""

from __future__ import annotations

import os
import sys
import time

_pid_tag = ""
_debug = bool(os.environ.get("MRA_DEBUG"))


def set_worker(number: int | None) -> None:
    global _pid_tag
    _pid_tag = "" if number is None else f" worker={number}"


def _fmt(value: object) -> str:
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return f'"{escaped}"'


def event(level: str, name: str, **fields: object) -> None:
    if level == "debug" and not _debug:
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    parts = [stamp, level, name]
    parts.extend(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None)
    line = " ".join(parts) + _pid_tag + f" pid={os.getpid()}\n"
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def info(name: str, **fields: object) -> None:
    event("info", name, **fields)


def warn(name: str, **fields: object) -> None:
    event("warn", name, **fields)


def error(name: str, **fields: object) -> None:
    event("error", name, **fields)


def debug(name: str, **fields: object) -> None:
    event("debug", name, **fields)
