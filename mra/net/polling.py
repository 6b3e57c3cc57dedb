"""IMAP IDLE's side of a connection (mra/net/adapter.py): inotify watches on the directories
the session names and the poll timer behind them, so that `mailbox_changed()` is called as
soon as a delivery lands, and at the latest every `poll_interval` seconds.

A base of `SessionProtocol`, kept apart so that the adapter holds one job fewer; it
uses the adapter's timers (`_arm`, `_disarm`) and outputs (`_perform`), named in `_Host`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from twisted.internet.base import DelayedCall

from mra import log
from mra.session import Output, Session

WATCHED_POLL = 30.0  # seconds between polls of a directory inotify watches anyway


class _Host(Protocol):
    """What of the adapter's connection the polling uses."""

    session: Session | None
    _closed: bool
    _busy: bool
    _blocked: bool
    _timers: dict[str, DelayedCall]
    _watched: Sequence[str]

    def _arm(self, name: str, seconds: float, fn: Callable[[], None]) -> None: ...
    def _disarm(self, name: str) -> None: ...
    def _armed(self, name: str) -> bool: ...
    def _perform(self, outputs: list[Output]) -> None: ...
    def _poll(self) -> None: ...
    def _unwatch(self) -> None: ...
    def _notified(self) -> None: ...
    def _polled(self) -> None: ...


class Polling:
    __slots__ = ()
    _watched: Sequence[str]  # the directories inotify watches for us (a slot of the adapter)

    def _poll(self: _Host) -> None:
        """A session that asks to be polled (IMAP IDLE: `poll_interval`, `watch_paths`) gets
        inotify watches on those directories, which call `mailbox_changed()` at once, and a
        timer as the fallback (every `poll_interval` without inotify, every 30 s with it).
        The store's sync costs three stat() calls when nothing changed."""
        interval = getattr(self.session, "poll_interval", None)
        if interval is None or self._closed:
            if self._watched or "poll" in self._timers:
                self._disarm("poll")
                self._unwatch()
            return
        paths = list(getattr(self.session, "watch_paths", ()))
        if paths and not self._watched:
            from mra.net.watch import watcher

            w = watcher()
            if all(w.watch(p, self._notified) for p in paths):
                self._watched = paths
                log.debug("watching", paths=",".join(paths))
                # A change made after the session's last look and before the watch existed
                # (a delivery just before IDLE, or between IDLE's "+", which goes out at
                # once, and now) gives no event: look once more, now that any later change
                # will. Else it waited for the poll below, 30 s.
                if self.session is not None and not self._busy and not self._blocked:
                    self._perform(self.session.mailbox_changed())  # which calls _poll again
                    return
            else:
                for p in paths:
                    w.unwatch(p, self._notified)
        if self._watched:
            from mailstore.shared import idle_check_interval

            # inotify misses what other hosts write to shared storage: poll within the bound.
            interval = max(interval, idle_check_interval(WATCHED_POLL))
        if not self._armed("poll"):
            self._arm("poll", interval, self._polled)

    def _unwatch(self: _Host) -> None:
        if self._watched:
            from mra.net.watch import watcher

            for p in self._watched:
                watcher().unwatch(p, self._notified)
            self._watched = ()

    def _notified(self: _Host) -> None:
        """inotify saw a change: look now (the watcher gathered the events of a delivery and
        wakes all its sessions at once, with one sync: mra/net/watch.py)."""
        if self._closed:
            return
        self._disarm("poll")
        self._polled()

    def _polled(self: _Host) -> None:
        self._timers.pop("poll", None)
        if self.session is None or self._closed:
            return
        if not self._busy and not self._blocked:  # a client not reading gets no pushes
            self._perform(self.session.mailbox_changed())
        self._poll()
