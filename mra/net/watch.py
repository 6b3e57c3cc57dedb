"""Change notification for idling sessions: inotify on a mailbox's new/ and cur/.

One inotify instance per process; each watched directory keeps the set of callbacks of the
sessions idling on it, so a hundred IDLE connections on one folder cost one watch. When inotify
is missing (not Linux, or out of watches), callers fall back to polling.

A delivery is several events (the rename into new/, then the first reader's move to cur/), and
one folder's sessions are on two directories: the events are gathered for `NOTIFY_DELAY`, then
every session they concern is woken once, in one turn of the reactor, inside
`folderstate.one_sync()`: the first session's look syncs the folder, the others read what it
found (issue #16: 10,000 IDLE sessions woken by one delivery cost one sync, not 10,000).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailstore.folderstate import one_sync
from mra import log

NOTIFY_DELAY = 0.05  # seconds events are gathered for before the sessions are woken
_EVENTS = 0x100 | 0x200 | 0x40 | 0x80 | 0x04  # CREATE, DELETE, MOVED_FROM, MOVED_TO, ATTRIB


class Watcher:
    def __init__(self) -> None:
        self._notifier: Any = None
        self._callbacks: dict[bytes, set[Callable[[], None]]] = {}
        self._due: dict[Callable[[], None], None] = {}  # to wake, in the order they were due
        self._timer: Any = None
        self.available = True
        try:
            from twisted.internet import inotify
            from twisted.python import filepath

            self._filepath = filepath
            self._notifier = inotify.INotify()  # type: ignore[no-untyped-call]
            self._notifier.startReading()
        except Exception as exc:  # no inotify here: sessions poll instead
            log.info("inotify-unavailable", error=repr(exc))
            self.available = False

    def watch(self, path: str, callback: Callable[[], None]) -> bool:
        if not self.available:
            return False
        key = path.encode()
        callbacks = self._callbacks.get(key)
        if callbacks is None:
            try:
                self._notifier.watch(
                    self._filepath.FilePath(key), mask=_EVENTS, callbacks=[self._fired]
                )
            except Exception as exc:
                log.warn("inotify-watch-failed", path=path, error=repr(exc))
                return False
            callbacks = self._callbacks[key] = set()
        callbacks.add(callback)
        return True

    def unwatch(self, path: str, callback: Callable[[], None]) -> None:
        key = path.encode()
        callbacks = self._callbacks.get(key)
        if callbacks is None:
            return
        callbacks.discard(callback)
        self._due.pop(callback, None)  # it stopped idling (DONE, closed): not woken now
        if not callbacks:
            del self._callbacks[key]
            try:
                self._notifier.ignore(self._filepath.FilePath(key))
            except Exception:
                pass

    def _fired(self, _watch: object, path: Any, _mask: int) -> None:
        directory = path.parent().path if hasattr(path, "parent") else path
        due = self._due
        for key in (directory, getattr(path, "path", b"")):
            for callback in self._callbacks.get(key, ()):
                due[callback] = None
        if due and self._timer is None:
            from mra.net.reactor import reactor

            self._timer = reactor.callLater(NOTIFY_DELAY, self._wake)

    def _wake(self) -> None:
        """Wake every session an event concerned, once each; one sync per folder for all."""
        self._timer = None
        due, self._due = self._due, {}
        with one_sync():
            for callback in due:
                try:
                    callback()
                except Exception as exc:  # one session's failure is not the others'
                    log.error("idle-wake-failed", error=repr(exc))


_watcher: Watcher | None = None


def watcher() -> Watcher:
    global _watcher
    if _watcher is None:
        _watcher = Watcher()
    return _watcher
