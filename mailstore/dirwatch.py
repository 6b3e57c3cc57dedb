"""Exact change tracking of a Maildir's new/ and cur/ through inotify, for long-lived readers.

Why: a directory's mtime only says that something changed, and within one clock tick not even
that (see the design note in syncing.py), so a mailbox synced by mtime lists a changed directory
again in full. After every APPEND, flag change or delivery, a server would list 100,000 names to
learn of one. inotify tells which names changed, in order, and an event is queued before the
system call that caused it returns: so reading the queue to its end tells everything that
happened up to that moment, with no listing and no stat().

Only the server turns this on (`enable()`); the delivery agent is one short process and never
imports this module. One inotify instance serves every mailbox of the process (instances are
few per user: 128 by default), and a directory watched for several sessions is one watch.

Each watched directory has a queue of (mask, name) per interested `DirState` (listing.py),
filled by `drain()` and emptied by the mailbox at its sync. When the kernel's queue overflowed,
a queue grew too long, or the directory itself went away, the state's queue becomes None: the
mailbox then lists that directory in full, as without inotify, and watches again.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import threading
import weakref
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.listing import DirState as _DirState

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
Event = tuple[int, str, int]  # mask, file name, cookie (pairs the two halves of a rename)
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
        self._states: dict[int, list[_DirState | _Shared]] = {}  # wd -> who takes its events
        self._lock = threading.Lock()  # reading and routing stay in order across threads
        self._released: list[tuple[int, _DirState]] = []
        # wd -> the process's own copy of that directory's listing, kept current under the
        # lock: a session opening a folder that another session has open copies it instead
        # of listing 100,000 names again.
        self._known: dict[int, _Shared] = {}

    def watch(
        self, path: str, state: _DirState, owner: object
    ) -> tuple[bool, dict[str, str] | None]:
        """Queue the changes of directory `path` for `state` from now on. Returns (False,
        None) when the kernel refuses (out of watches, not a directory); else True and, when
        the process already knows the directory, its current listing (a copy) so that the
        caller need not list it; with None the caller lists it and hands the listing to
        `seed`. Released when `owner` is gone."""
        with self._lock:
            self._forget()
            wd = self._add(self.fd, os.fsencode(path), _MASK)
            if wd < 0:
                return False, None
            self._read_all()  # the shared listing is current up to this moment
            shared = self._known.get(wd)
            if shared is None:
                shared = self._known[wd] = _Shared(path, wd)
                self._states.setdefault(wd, []).append(shared)
            snapshot = None
            if shared.listing is not None:
                snapshot = dict(shared.listing)
            else:
                # Its listing will be the caller's, taken after this: the events from now on
                # bring it up to date (replaying what a listing already shows is harmless).
                shared.events = []
                shared.seeder = state
            state.events = []
            state.wd = wd
            self._states.setdefault(wd, []).append(state)
        weakref.finalize(owner, self._release, wd, state)
        return True, snapshot

    def seed(self, state: _DirState, listing: dict[str, str]) -> None:
        """The listing `state`'s owner made after `watch` returned no snapshot."""
        with self._lock:
            shared = self._known.get(state.wd)
            if shared is None or shared.seeder is not state or shared.events is None:
                return
            shared.listing = dict(listing)
            shared.seeder = None
            self._bring_up_to_date(shared)

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
            if all(isinstance(s, _Shared) for s in states):
                del self._states[wd]
                self._known.pop(wd, None)
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
            self._read_all()

    def _read_all(self) -> None:
        """drain() with the lock held; the shared listings are brought up to date."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            self._route(data)
        for wd, shared in list(self._known.items()):
            if shared.events is None:  # events lost: the next session to come lists
                self._known.pop(wd, None)
                states = self._states.get(wd)
                if states is not None:
                    states[:] = [s for s in states if s is not shared]
            elif shared.events and shared.listing is not None:
                self._bring_up_to_date(shared)

    def _bring_up_to_date(self, shared: _Shared) -> None:
        events = shared.events
        assert shared.listing is not None and events is not None
        shared.events = []
        if not replay(shared.listing, shared.path, events, None, None):
            shared.listing = None  # two files with one base: sessions list it themselves
            shared.events = None

    def _route(self, data: bytes) -> None:
        offset = 0
        end = len(data)
        while offset < end:
            wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
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
                self._known.pop(wd, None)
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
                    events.append((mask, text, cookie))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
                self._states.clear()
                self._known.clear()

    @property
    def usable(self) -> bool:
        """Open, and ours: a forked child must not read (and steal) the parent's events."""
        return self.fd >= 0 and self.pid == os.getpid()

    def take(self, state: _DirState) -> list[Event] | None:
        """The events queued for `state` since the last take (None: list the directory)."""
        with self._lock:
            events = state.events
            if events:
                state.events = []
            return events


class _Shared:
    """A directory's listing kept by the DirWatch itself (see DirWatch._known). It takes
    events like a mailbox's _DirState; `listing` is None until a session has listed."""

    __slots__ = ("__weakref__", "events", "listing", "path", "seeder", "wd")

    def __init__(self, path: str, wd: int) -> None:
        self.path = path
        self.wd = wd
        self.listing: dict[str, str] | None = None
        self.events: list[Event] | None = []
        self.seeder: _DirState | None = None


def replay(
    listing: dict[str, str],
    path: str,
    events: list[Event],
    changed: Callable[[str, str | None], None] | None,
    warn: Callable[[str, str], None] | None,
) -> bool:
    """Apply the events of directory `path` to its listing (base -> file name), in order, as
    a listing would see the result: names starting with a dot, names a uidlist cannot hold
    and anything but regular files are left out. `changed(base, old name)` is told before
    each change. False when a listing must decide instead (two files with one base name)."""
    renamed: set[int] = set()  # cookies of listed files renamed within the directory
    for mask, name, cookie in events:
        if not name or name[0] == ".":
            continue
        base = name.partition(":")[0]
        current = listing.get(base)
        if mask & REMOVED:
            if current == name:
                if changed is not None:
                    changed(base, name)
                del listing[base]
                if mask & IN_MOVED_FROM:
                    renamed.add(cookie)
            continue
        if current == name:
            continue
        full = os.path.join(path, name)
        if not (name.isascii() and name.isprintable()) or " " in name:
            if warn is not None:
                warn("unusable-file-name", full)
            continue
        if not (mask & IN_MOVED_TO and cookie in renamed):
            # A rename of a listed file (a flag change) is still a regular file; anything
            # else is looked at.
            try:
                st = os.lstat(full)
            except OSError:
                continue  # gone again: its removal is queued after this
            if not stat.S_ISREG(st.st_mode):
                if warn is not None:
                    warn("not-a-regular-file", full)
                continue
        if current is not None:
            return False
        if changed is not None:
            changed(base, None)
        listing[base] = name
    return True


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
        from mailstore import mailbox, uidlist

        mailbox.dir_watch = _shared
        uidlist.remembered = {}  # with the listings kept current, the parses are worth keeping
    return _shared


def disable() -> None:
    """Mailboxes opened from now on sync by mtime (tests use both ways)."""
    global _shared
    from mailstore import mailbox, uidlist

    mailbox.dir_watch = None
    uidlist.remembered = None
    if _shared is not None:
        _shared.close()
    _shared = None
