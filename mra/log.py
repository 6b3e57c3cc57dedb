"""The server's events, written by the one logging path (mailstore/log.py): never a password.

    2026-11-29T10:00:00Z info login proto=imap user=alice ip=127.0.0.1 mech=PLAIN pid=4711

Where the lines go and in which format is `[log]`'s (README: Logging); this module only keeps
the names the server's code calls.
"""

from __future__ import annotations

from mailstore import log as _backend
from mailstore.log import debug, emit, error, info, quote, warn

__all__ = ["debug", "error", "event", "info", "set_worker", "warn"]

_fmt = quote  # the name older code and tests know


def set_worker(number: int | None) -> None:
    _backend.set_tag("" if number is None else f" worker={number}")


def event(level: str, name: str, **fields: object) -> None:
    emit(level, name, fields)
