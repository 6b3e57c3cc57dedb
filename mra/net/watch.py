"""Change notification for idling sessions: inotify on a mailbox's new/ and cur/.

One inotify instance per process; each watched directory keeps the set of callbacks of the
sessions idling on it, so a hundred IDLE connections on one folder cost one watch. When inotify
is missing (not Linux, or out of watches), callers fall back to polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mra import log

_EVENTS = 0x100 | 0x200 | 0x40 | 0x80 | 0x04  # CREATE, DELETE, MOVED_FROM, MOVED_TO, ATTRIB


class Watcher:
    def __init__(self) -> None:
        self._notifier: Any = None
        self._callbacks: dict[bytes, set[Callable[[], None]]] = {}
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
        if not callbacks:
            del self._callbacks[key]
            try:
                self._notifier.ignore(self._filepath.FilePath(key))
            except Exception:
                pass

    def _fired(self, _watch: object, path: Any, _mask: int) -> None:
        directory = path.parent().path if hasattr(path, "parent") else path
        for key in (directory, getattr(path, "path", b"")):
            for callback in list(self._callbacks.get(key, ())):
                callback()


_watcher: Watcher | None = None


def watcher() -> Watcher:
    global _watcher
    if _watcher is None:
        _watcher = Watcher()
    return _watcher
