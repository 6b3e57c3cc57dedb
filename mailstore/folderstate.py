"""One folder's state, shared by every session of a server process that has it open.

Why
===
A `Mailbox` (mailbox.py) is a folder's listings, its uidlist, its Message objects: for 100,000
messages, tens of megabytes and a quarter of a second to build. Each session used to build its
own; now the sessions of one worker process share one per folder (`SharedFolders`), so the
second SELECT of a big folder costs a sync (three stat() calls, or an inotify read) instead of
a rebuild, and a hundred sessions idling on one folder cost one state.

What is shared, what is each session's
======================================
Shared: the Mailbox, its lock, the folder index (folderindex.py: modseqs, the expunge log) and
a log of the changes (`SyncResult`s) that the syncs found or that sessions made. Each session's
view (mra/imap/selected.py) keeps its own sequence numbers, \\Recent set, pending expunges and
keyword announcements, and a `Tracker`: its place in the change log. `take(tracker)` syncs and
hands the view every change since its last take, merged, exactly once, whoever's sync found it;
a change the view itself made (a STORE: `origin`) is left out of its own `changed`, since the
command answered it.

A change seen by inotify wakes every session idling on the folder at once (mra/net/watch.py):
one sync serves them all. The watcher wakes them inside `one_sync()`, and within it each
folder syncs at most once on that thread; every other take only reads the log. Outside it
(commands, the idle poll's timer) every take syncs, since a command must see what was
delivered just before it. A take costs what the view has to learn, not the folder's size: it
hands back the folder's UID list as of its end (`SyncResult.uids`), which a view that held
the shared list and lost nothing takes as its own, instead of copying or comparing lists.

The log is kept only as far back as the slowest tracker needs, and at most `LOG_MAX` UIDs: a
view further behind (a session selected for days without a command while the folder churns) is
told what differs by comparing (`_caught_up`): the UIDs it knows that are gone, those above
its last, and the messages whose modseq is above the HIGHESTMODSEQ it last took (all of its
messages, without an index). Finding the slowest tracker walks them all, so a take trims
only once per as many takes as there are trackers: 10,000 idling views woken by one delivery
must not walk 10,000 trackers each.

Locking
=======
The Mailbox's lock (a threading.RLock once the folder is shared) is held for every change of
its state, every use of its directory descriptors, every index transaction and every take:
commands of several sessions run in the thread pool at once, and IDLE's updates on the reactor.
It is not held while message files are read or written: those are opened under it and read
or written after. The registry has a lock of its own, never held while a folder's is taken.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import weakref
from collections import OrderedDict

from mailstore import log
from mailstore.folderindex import DEFAULT_EXPUNGE_LOG, FolderIndex, IndexFailed
from mailstore.mailbox import SyncResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from mailstore.mailbox import Mailbox

LOG_MAX = 20_000  # UIDs in the change log kept for trackers that have not taken them
RETRY_AFTER = 30.0  # seconds before an index that failed is opened again
INDEX_DIR_MODE = 0o700

_round = threading.local()  # the wake-up under way on this thread: see one_sync()
_rounds = itertools.count(1)


class one_sync:  # used as a function: `with one_sync():`
    """`with one_sync():` the takes on this thread sync each folder once, then read its log:
    for waking many idling sessions after one inotify event (see the module note)."""

    __slots__ = ("outer",)

    def __enter__(self) -> None:
        self.outer = getattr(_round, "number", None)
        _round.number = next(_rounds)

    def __exit__(self, *exc: object) -> None:
        _round.number = self.outer


class Tracker:
    """One view's place in a folder's change log."""

    __slots__ = ("__weakref__", "highest", "pos")

    def __init__(self, pos: int, highest: int) -> None:
        self.pos = pos
        self.highest = highest  # the HIGHESTMODSEQ of its last take


class FolderState:
    """The shared state of one folder (see the module note). Made by `SharedFolders`, or by
    `of()` for a mailbox used alone."""

    def __init__(
        self,
        box: Mailbox,
        index_dir: str | None,
        expunge_log: int = DEFAULT_EXPUNGE_LOG,
    ) -> None:
        """`index_dir`: where the folder's index lives: "" beside the folder, a directory,
        or None for no index."""
        if not isinstance(box.lock, type(threading.RLock())):
            box.lock = threading.RLock()
        self.lock = box.lock
        self._box = weakref.ref(box)  # the box holds the state (box.hooks), not both ways
        self._index_dir = index_dir
        self._expunge_log = expunge_log
        self.index: FolderIndex | None = None
        self._retry_at = 0.0
        self._log: list[SyncResult] = []
        self._log_uids = 0
        self._base = 0  # the position of _log[0]
        self._trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()
        self.version = 0  # counts the changes: what is cached per version (`_kept`)
        # What a protocol derives from the folder and keeps with it, for as long as the state
        # lives (IMAP's SORT and THREAD keys: mra/imap/indexsource.py); its owner's to lock.
        self.derived: object = None
        # What is counted or looked for in the whole folder, kept for one version (`_kept`):
        # "first unseen" (SELECT's UNSEEN), "unseen count" (STATUS UNSEEN).
        self._kept_version = -1
        self._kept_values: dict[str, Any] = {}
        # Every visible message with a lower UID has \Seen: UNSEEN is looked for from here.
        # Lowered to the lowest UID a change touched (added, or its flags changed).
        self._seen_below = 0
        self._synced_round: int | None = None  # the one_sync() round that synced it last
        self._untrimmed = 0  # takes since the last trim
        box.hooks = self
        if box._loaded:  # a mailbox used before it was shared: its index is made now
            with self.lock:
                self._reopen(box)

    # -- the mailbox's hooks (its lock held) ------------------------------------------------

    def synced(self, result: SyncResult, first: bool) -> None:
        box = self._box()
        if box is None:
            return
        if first and self.index is None and self._index_dir is not None:
            self.index = self._open_index(box)
        index = self.index
        if index is not None:
            try:
                index.record(box, result, first)
            except IndexFailed:
                self._drop(index)
        if first or result.uidvalidity_changed:
            self._seen_below = 0
        elif result.added or result.changed:
            self._seen_below = min(self._seen_below, *result.added, *result.changed)
        if not result:
            return
        self.version += 1
        if self._trackers:
            self._log.append(result)
            self._log_uids += _size(result)
            if self._log_uids > LOG_MAX:
                self._trim()

    # -- views ------------------------------------------------------------------------------

    def open_view(self) -> tuple[Tracker, list[int]]:
        """Sync, then a tracker from now on and the UIDs as they are now (one moment)."""
        box = self._live()
        with self.lock:
            if self.index is None and self._index_dir is not None and box._loaded:
                self._reopen(box)  # (a first load opens it: `synced`)
            box.sync()
            tracker = Tracker(self._base + len(self._log), self.highest_modseq or 0)
            self._trackers.add(tracker)
            return tracker, box.uids()

    def take(self, tracker: Tracker, known: list[int]) -> SyncResult:
        """Sync, then every change since the tracker's last take, merged (see the module
        note). `known`: the UIDs the view has, for a view that fell behind the log."""
        box = self._live()
        with self.lock:
            number = getattr(_round, "number", None)
            if number is None or number != self._synced_round:
                box.sync()
                self._synced_round = number
            end = self._base + len(self._log)
            if tracker.pos < self._base:
                merged = self._caught_up(box, tracker, known)
            else:
                merged = _merge(self._log[tracker.pos - self._base :], tracker)
            tracker.pos = end
            self._untrimmed += 1
            if self._untrimmed >= len(self._trackers):
                self._trim()
            merged.uids = box.uids()
            index = self.index
            if index is not None:
                mem = index.modseq_of
                for uid in merged.added + merged.changed:
                    if uid in mem:
                        merged.modseqs[uid] = mem[uid]
                merged.highest = index.highest
            tracker.highest = merged.highest
            return merged

    def _caught_up(self, box: Mailbox, tracker: Tracker, known: list[int]) -> SyncResult:
        """What differs for a view the log no longer reaches back to."""
        out = SyncResult()
        out.removed = [u for u in known if u not in box]
        last = known[-1] if known else 0
        out.added = [u for u in box.uids() if u > last]
        index = self.index
        if index is not None and tracker.highest:
            try:
                changed = index.changed_since(tracker.highest)
            except IndexFailed:
                self._drop(index)
                changed = [u for u in known if u in box]
        else:
            changed = [u for u in known if u in box]
        out.changed = [u for u in changed if u <= last and u in box]
        return out

    def _trim(self) -> None:
        """Drop the entries every tracker has taken; past LOG_MAX, also the oldest ones (the
        trackers still behind them catch up by comparing: `_caught_up`)."""
        self._untrimmed = 0
        entries = self._log
        if self._trackers:
            drop = max(0, min(t.pos for t in self._trackers) - self._base)
        else:
            drop = len(entries)
        count = self._log_uids - sum(_size(e) for e in entries[:drop])
        while count > LOG_MAX and drop < len(entries):
            count -= _size(entries[drop])
            drop += 1
        if drop:
            del entries[:drop]
            self._base += drop
            self._log_uids = count

    def _kept(self, key: str, compute: Callable[[], Any]) -> Any:
        """`compute()`'s value, kept until the next change (the lock held)."""
        if self._kept_version != self.version:
            self._kept_version, self._kept_values = self.version, {}
        values = self._kept_values
        if key not in values:
            values[key] = compute()
        return values[key]

    def first_unseen(self) -> int | None:
        """The lowest UID without \\Seen (SELECT's UNSEEN), kept until the next change."""
        box = self._live()

        def look() -> int | None:
            uid = box.first_unseen_uid(self._seen_below)
            self._seen_below = uid if uid is not None else box.next_uid
            return uid

        with self.lock:
            return self._kept("first unseen", look)  # type: ignore[no-any-return]

    def unseen_count(self) -> int:
        """How many messages lack \\Seen (STATUS UNSEEN), kept until the next change: a
        client polls STATUS on every folder every few minutes, and a big folder that did not
        change is not walked again (17,000 messages: 7.2 ms of CPU a STATUS before, 0.10
        after; Dovecot reads its index header)."""
        box = self._live()
        with self.lock:
            return self._kept("unseen count", lambda: box.unseen_count(self._seen_below))  # type: ignore[no-any-return]

    def warm(self) -> bool:
        """A view opens without work that grows with the folder (an IMAP SELECT may then
        answer on the reactor, without a thread-pool round trip): the folder is loaded, its
        index open (or none is kept), UNSEEN known for this version, and nothing waits in
        new/ to be claimed. O(1); true only until the next change."""
        box = self._box()
        if box is None or not box._loaded:
            return False
        if self.index is None and self._index_dir is not None:
            return False
        return (
            self._kept_version == self.version
            and "first unseen" in self._kept_values
            and not box.has_new()
        )

    # -- modseqs ----------------------------------------------------------------------------

    @property
    def highest_modseq(self) -> int | None:
        """HIGHESTMODSEQ (RFC 7162 3.1.2.1) as this process has applied it; None: no index."""
        index = self.index
        return None if index is None else index.highest

    def modseq(self, uid: int) -> int | None:
        index = self.index
        return None if index is None else index.modseq_of.get(uid)

    def changed_since(self, modseq: int) -> list[int] | None:
        """UIDs whose modseq is above `modseq` (None: no index)."""
        with self.lock:
            index = self.index
            if index is None:
                return None
            try:
                return index.changed_since(modseq)
            except IndexFailed:
                self._drop(index)
                return None

    def vanished(self, modseq: int) -> list[int] | None:
        """UIDs expunged after `modseq`; None when the log does not reach back that far."""
        with self.lock:
            index = self.index
            if index is None:
                return None
            try:
                return index.vanished(modseq)
            except IndexFailed:
                self._drop(index)
                return None

    def cached_headers(self, uids: list[int]) -> dict[int, bytes]:
        """The header fields the index keeps for SEARCH (mra/imap/searchindex.py) of these
        UIDs, where it has them."""
        return self._read_blobs(FolderIndex.cached, uids)

    def cache_headers(self, blobs: dict[int, bytes]) -> None:
        """Keep header fields a SEARCH read from the files (no modseq: no state a client sees)."""
        self._keep_blobs(FolderIndex.cache, blobs)

    def sort_fields(self, uids: list[int]) -> dict[int, bytes]:
        """The encoded SORT/THREAD/PREVIEW fields the index keeps (mra/imap/indexsource.py)."""
        return self._read_blobs(FolderIndex.sort_fields, uids)

    def keep_sort_fields(self, blobs: dict[int, bytes]) -> None:
        self._keep_blobs(FolderIndex.keep_sort_fields, blobs)

    def _read_blobs(
        self, read: Callable[[FolderIndex, list[int]], dict[int, bytes]], uids: list[int]
    ) -> dict[int, bytes]:
        with self.lock:
            index = self.index
            if index is None:
                return {}
            try:
                return read(index, uids)
            except IndexFailed:
                self._drop(index)
                return {}

    def _keep_blobs(
        self, keep: Callable[[FolderIndex, dict[int, bytes]], None], blobs: dict[int, bytes]
    ) -> None:
        with self.lock:
            index = self.index
            if index is None or not blobs:
                return
            try:
                keep(index, blobs)
            except IndexFailed:
                self._drop(index)

    def exclusive(self) -> _Exclusive:
        """`with state.exclusive():` the folder's lock and one index transaction, for a
        check and a change that must be one (STORE UNCHANGEDSINCE)."""
        return _Exclusive(self)

    # -- the index --------------------------------------------------------------------------

    def _open_index(self, box: Mailbox) -> FolderIndex | None:
        """Open (or make) the index; None when it cannot be used now (logged)."""
        if time.monotonic() < self._retry_at:
            return None
        where = self._index_dir
        assert where is not None
        close = -1
        try:
            if where == "":
                directory, dir_fd, owner = box.path, box._dir.folder_fd(), box._owner
            else:
                os.makedirs(where, INDEX_DIR_MODE, exist_ok=True)
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
                directory, dir_fd, owner = where, os.open(where, flags), os.geteuid()
                close = dir_fd
            try:
                return FolderIndex.open(directory, dir_fd, owner, self._expunge_log)
            finally:
                if close >= 0:
                    os.close(close)
        except (IndexFailed, OSError) as exc:
            log.warn("index-unavailable", path=box.path, error=str(exc))
            self._retry_at = time.monotonic() + RETRY_AFTER
            return None

    def _reopen(self, box: Mailbox) -> None:
        index = self._open_index(box)
        if index is None:
            return
        try:
            index.record(box, SyncResult(), True)
        except IndexFailed:
            index.close()
            self._retry_at = time.monotonic() + RETRY_AFTER
            return
        self.index = index

    def _drop(self, index: FolderIndex) -> None:
        """Stop using a failed index (see folderindex.py: nothing is lost by it); a damaged
        file is removed, to be rebuilt at the next open."""
        index.close()
        if self.index is index:
            self.index = None
        self._retry_at = time.monotonic() + RETRY_AFTER
        box = self._box()
        if index.damaged and box is not None and self._index_dir == "":
            from mailstore.folderindex import remove_files

            try:
                remove_files(box._dir.folder_fd())
            except OSError:
                pass
        elif index.damaged and self._index_dir:
            from mailstore.folderindex import remove_files

            try:
                fd = os.open(self._index_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return
            try:
                remove_files(fd)
            finally:
                os.close(fd)

    def _live(self) -> Mailbox:
        box = self._box()
        if box is None:
            raise RuntimeError("the folder's mailbox is gone")
        return box


class _Exclusive:
    __slots__ = ("state", "tx")

    def __init__(self, state: FolderState) -> None:
        self.state = state
        self.tx: object = None

    def __enter__(self) -> FolderIndex | None:
        state = self.state
        state.lock.__enter__()
        index = state.index
        if index is not None:
            tx = index.transaction()
            try:
                tx.__enter__()
            except Exception:
                state._drop(index)
                return None
            self.tx = tx
        return state.index

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        state = self.state
        try:
            tx = self.tx
            if tx is not None:
                try:
                    tx.__exit__(kind, exc, tb)  # type: ignore[attr-defined]
                except Exception:
                    index = state.index
                    if index is not None:
                        state._drop(index)
        finally:
            state.lock.__exit__(None, None, None)


def _size(entry: SyncResult) -> int:
    return len(entry.added) + len(entry.removed) + len(entry.changed)


def _merge(entries: list[SyncResult], tracker: Tracker) -> SyncResult:
    """Entries of the log as one result for one tracker: a message that came and went is
    left out, and the tracker's own changes (origin) are not told back to it."""
    merged = SyncResult()
    if not entries:
        return merged
    for entry in entries:
        merged.uidvalidity_changed |= entry.uidvalidity_changed
        merged.added.extend(entry.added)
        merged.removed.extend(entry.removed)
        if entry.origin is not tracker:
            merged.changed.extend(entry.changed)
        merged.ghosts.update(entry.ghosts)
    if len(entries) > 1:
        both = set(merged.added) & set(merged.removed)
        merged.added = sorted(set(merged.added) - both)
        merged.removed = sorted(set(merged.removed) - both)
        merged.changed = sorted(set(merged.changed) - set(merged.removed))
    return merged


def of(box: Mailbox) -> FolderState:
    """The shared state of `box`: the one it has, or one made now without an index (a
    mailbox used alone, as in tests)."""
    hooks = box.hooks
    if isinstance(hooks, FolderState):
        return hooks
    return FolderState(box, None)


class SharedFolders:
    """The folders open in this process, one Mailbox and FolderState each (see the module
    note). Folders no session holds are kept for a while (`keep_folders`, `keep_messages`):
    the next SELECT of a big folder is then a sync, not a rebuild."""

    def __init__(
        self,
        keep_folders: int = 64,
        keep_messages: int = 400_000,
        expunge_log: int = DEFAULT_EXPUNGE_LOG,
    ) -> None:
        self.keep_folders = keep_folders
        self.keep_messages = keep_messages
        self.expunge_log = expunge_log
        self._live: weakref.WeakValueDictionary[str, Mailbox] = weakref.WeakValueDictionary()
        self._kept: OrderedDict[str, Mailbox] = OrderedDict()
        self._lock = threading.Lock()

    def mailbox(self, path: str, make: Callable[[], Mailbox], index_dir: str | None) -> Mailbox:
        """The shared Mailbox of the folder at `path`, made by `make` if none is open."""
        with self._lock:
            box = self._live.get(path)
            if box is None:
                box = make()
                FolderState(box, index_dir, self.expunge_log)
                self._live[path] = box
            self._kept[path] = box
            self._kept.move_to_end(path)
            self._evict()
            return box

    def forget(self, path: str) -> None:
        """The folder was deleted or renamed: the next open makes a new state."""
        with self._lock:
            self._live.pop(path, None)
            self._kept.pop(path, None)

    def _evict(self) -> None:
        kept = self._kept
        total = sum(len(b._base_of) for b in kept.values())
        while len(kept) > 1 and (len(kept) > self.keep_folders or total > self.keep_messages):
            _, box = kept.popitem(last=False)
            total -= len(box._base_of)
