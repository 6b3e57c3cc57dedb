"""Exact change tracking of a Maildir's new/ and cur/ through inotify, for long-lived readers.

Why: a directory's mtime only says that something changed, and within one clock tick not even
that (see the design note in mailbox.py), so a mailbox synced by mtime lists a changed directory
again in full. After every APPEND, flag change or delivery, a server would list 100,000 names to
learn of one. inotify tells which names changed, in order, and an event is queued before the
system call that caused it returns: so reading the queue to its end tells everything that
happened up to that moment, with no listing and no stat().

Only the server turns this on (`enable()`); the delivery agent is one short process and never
imports this module. One inotify instance serves every mailbox of the process (instances are
few per user: 128 by default), and a directory watched for several sessions is one watch.

Each watched directory has a queue of (mask, name) per interested `_DirState` (mailbox.py),
filled by `drain()` and emptied by the mailbox at its sync. When the kernel's queue overflowed,
a queue grew too long, or the directory itself went away, the state's queue becomes None: the
mailbox then lists that directory in full, as without inotify, and watches again.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading
import weakref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import _DirState

IN_MODIFY = 0x2
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

ADDED = IN_CREATE | IN_MOVED_TO
REMOVED = IN_DELETE | IN_MOVED_FROM
_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
_MASK = ADDED | REMOVED | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
_HEADER = struct.Struct("iIII")
QUEUE_MAX = 8192  # events kept per directory and mailbox; beyond, a full listing is cheaper


class DirWatch:
    """The process's inotify instance and the routing of its events."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self.fd: int = fd
        self.pid = os.getpid()
        self._states: dict[int, list[_DirState]] = {}  # wd -> states watching it
        self._lock = threading.Lock()  # reading and routing stay in order across threads
        self._released: list[tuple[int, _DirState]] = []

    def watch(self, path: str, state: _DirState, owner: object) -> bool:
        """Queue the changes of directory `path` for `state` from now on; False when the
        kernel refuses (out of watches, not a directory). Released when `owner` is gone."""
        with self._lock:
            self._forget()
            wd = self._add(self.fd, os.fsencode(path), _MASK)
            if wd < 0:
                return False
            state.events = []
            state.wd = wd
            self._states.setdefault(wd, []).append(state)
        weakref.finalize(owner, self._release, wd, state)
        return True

    def _release(self, wd: int, state: _DirState) -> None:
        # Called by the garbage collector, maybe inside drain() (holding the lock) in this
        # very thread: only queue the work, done under the lock by the next call.
        self._released.append((wd, state))

    def _forget(self) -> None:
        """Drop the released states (lock held); a directory nobody watches loses its watch."""
        while self._released:
            wd, state = self._released.pop()
            states = self._states.get(wd)
            if states is None:
                continue
            states[:] = [s for s in states if s is not state]
            if not states:
                del self._states[wd]
                if self.fd >= 0:
                    self._rm(self.fd, wd)

    def unwatch(self, state: _DirState) -> None:
        """Stop queueing for `state` (its directory is listed in full from now on)."""
        with self._lock:
            self._released.append((state.wd, state))
            self._forget()
            state.events = None
            state.wd = -1

    def drain(self) -> None:
        """Read every queued event and hand each to the states of its directory."""
        with self._lock:
            self._forget()
            while True:
                try:
                    data = os.read(self.fd, 65536)
                except BlockingIOError:
                    return
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    raise
                self._route(data)

    def _route(self, data: bytes) -> None:
        offset = 0
        end = len(data)
        while offset < end:
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset : offset + length].rstrip(b"\0")
            offset += length
            if mask & IN_Q_OVERFLOW:
                for every in self._states.values():
                    for state in every:
                        state.events = None
                continue
            states = self._states.get(wd)
            if not states:
                continue
            if mask & _GONE:
                # The directory was removed or replaced: a new one needs a new watch.
                for state in states:
                    state.events = None
                    state.wd = -1
                del self._states[wd]
                if not mask & IN_IGNORED:
                    self._rm(self.fd, wd)
                continue
            if mask & IN_ISDIR:
                continue  # not a message (a listing skips directories too)
            text = os.fsdecode(name)
            for state in states:
                events = state.events
                if events is None:
                    continue
                if len(events) >= QUEUE_MAX:
                    state.events = None
                else:
                    events.append((mask, text))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
                self._states.clear()

    @property
    def usable(self) -> bool:
        """Open, and ours: a forked child must not read (and steal) the parent's events."""
        return self.fd >= 0 and self.pid == os.getpid()

    def take(self, state: _DirState) -> list[tuple[int, str]] | None:
        """The events queued for `state` since the last take (None: list the directory)."""
        with self._lock:
            events = state.events
            if events:
                state.events = []
            return events


_shared: DirWatch | None = None


def enable() -> DirWatch | None:
    """Turn exact change tracking on for every mailbox opened from now on in this process;
    None when inotify is not available (every mailbox then syncs by mtime)."""
    global _shared
    if _shared is None or not _shared.usable:
        try:
            _shared = DirWatch()
        except (OSError, AttributeError) as exc:
            from mailstore import log

            log.info("inotify-unavailable", error=repr(exc))
            return None
        from mailstore import mailbox

        mailbox.dir_watch = _shared
    return _shared


def disable() -> None:
    """Mailboxes opened from now on sync by mtime (tests use both ways)."""
    global _shared
    from mailstore import mailbox

    mailbox.dir_watch = None
    if _shared is not None:
        _shared.close()
    _shared = None
