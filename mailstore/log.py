"""Logging for the store, without importing `logging` until something is logged.

The store logs only anomalies (a corrupt uidlist, a planted symlink, a stale lock broken), so the
delivery agent's common path never pays for the `logging` import.
"""

from __future__ import annotations


def warn(event: str, **fields: object) -> None:
    _emit(30, event, fields)


def info(event: str, **fields: object) -> None:
    _emit(20, event, fields)


def _emit(level: int, event: str, fields: dict[str, object]) -> None:
    text = " ".join([event, *(f"{k}={v!r}" for k, v in fields.items())])
    try:
        import logging
    except ImportError:
        # mda after dropping to the mail user, with an installation that user cannot read
        # (mda/deliver.py preloads only what a delivery needs): stderr reaches the MTA's log.
        import sys

        sys.stderr.write(f"mailstore: {text}\n")
        return
    logging.getLogger("mailstore").log(level, text)
