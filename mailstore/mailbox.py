"""One Maildir folder: its messages, their UIDs and flags, kept in sync with the disk.

How synchronisation works (the design note; Dovecot's maildir-sync.c solves the same problem)
============================================================================================
The truth is on disk: a message exists while a file with its base name is in `new/` or `cur/`,
its flags are the `:2,` letters of that name, and its UID is the `dovecot-uidlist` record of that
base. Anything may change the disk at any time: another server process, the delivery agent,
Dovecot itself, mutt. So every command starts with `sync()`, which must be cheap when nothing
changed and proportional to one directory listing when something did:

1. `dovecot-uidlist` and `dovecot-keywords` are re-read only when their stat identity changed,
   and an appended-to uidlist is read from where we stopped (see uidlist.py).
2. `new/` is stat()ed and listed only when its mtime changed; then `cur/`, in that order. A file
   moving from new/ to cur/ between the two looks is seen in one or the other, never in neither,
   because cur/ is looked at after new/. (A file seen in both is taken from cur/.)
3. A directory's mtime has the kernel's clock granularity (a few ms): a change in the same tick
   as our listing would leave the mtime we recorded unchanged. So a listing whose mtime was not
   older than the moment the listing began (minus a margin) is remembered as "dirty" and listed
   again at the next sync. In the steady state, a sync is three stat() calls.
4. Files whose base has no UID get one under the uidlist lock, after listing new/ and cur/ again
   under that lock: every file that some other writer gave a UID is linked before it got it, so
   the listing under the lock sees all of them, and the UIDs we hand out are above every UID any
   process can have shown. UIDs therefore appear in ascending order to every session.
5. The result of a sync is a diff: UIDs added, UIDs removed, UIDs whose flags changed, the way
   pymap's SelectedMailbox diffs snapshots. Sessions turn it into EXISTS/EXPUNGE/FETCH.

Expunged messages leave dead records in the uidlist; it is rewritten (temp file + rename, under
the lock, after listing again) when they are many. A uidlist whose UIDVALIDITY changed under us
(a foreign rewrite, a restore from backup) resets the view: every UID is new.

Safety: entries that are not regular files (symlinks, devices, directories) are skipped and logged;
files are opened with O_NOFOLLOW; a file that is hard-linked from elsewhere and owned by somebody
other than the folder's owner is not served (a planted link to someone else's file).
"""

from __future__ import annotations

import errno
import os
import stat
import time

from mailstore import log
from mailstore.content import VsizeCounter, header_end, vsize_of_file
from mailstore.errors import MailError, NotFound, TemporaryFailure
from mailstore.filenames import (
    CHAR_TO_FLAG,
    FLAG_TO_CHAR,
    join_name,
    sizes_of,
    unique_base,
)
from mailstore.lock import DotLock
from mailstore.uidlist import COURIER_NAME, UidList, record_field, write_all
from mailstore.uidlist import NAME as UIDLIST_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import BinaryIO

    from mailstore.dirwatch import DirWatch, Event
    from mailstore.keywords import Keywords
    from mailstore.quota import MaildirQuota

SUBDIRS = ("new", "cur")
DIRTY_MARGIN_NS = 50_000_000  # more than the kernel's coarse clock tick (<= 10 ms at HZ=100)
TMP_MAX_AGE = 36 * 3600  # maildir(5): files in tmp/ untouched for 36 hours are garbage
REWRITE_MIN_DEAD = 64


class Message:
    """A message visible in the folder. Flags are the file name's letters.

    Sizes come from the base name's `,S=`/`,W=` on first use, not at load: a cold open of a
    100,000-message folder must not parse 100,000 names it may never be asked about.
    """

    __slots__ = ("_internaldate", "_sizes", "base", "letters", "name", "subdir", "uid")

    def __init__(self, uid: int, base: str, subdir: str, name: str) -> None:
        self.uid = uid
        self.base = base
        self.subdir = subdir
        self.name = name
        self.letters = _letters(name)
        self._sizes: tuple[int | None, int | None] | None = None
        self._internaldate: float | None = None

    @property
    def size(self) -> int | None:
        """Bytes on disk, when the name says (else see Mailbox.message_size)."""
        if self._sizes is None:
            self._sizes = sizes_of(self.base)
        return self._sizes[0]

    @property
    def vsize(self) -> int | None:
        """CRLF size, when the name says (else see Mailbox.message_vsize)."""
        if self._sizes is None:
            self._sizes = sizes_of(self.base)
        return self._sizes[1]

    @property
    def recent(self) -> bool:
        """Still in new/: no mail reader has looked at it yet (maildir(5))."""
        return self.subdir == "new"

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(CHAR_TO_FLAG[c] for c in self.letters if c in CHAR_TO_FLAG)

    @property
    def seen(self) -> bool:
        return "S" in self.letters

    @property
    def deleted(self) -> bool:
        return "T" in self.letters

    @property
    def flag_key(self) -> str:
        """Equal for messages with equal flags and keywords: a cache key for what a protocol
        derives from flags (see Mailbox.flag_names)."""
        return self.letters

    def __repr__(self) -> str:
        return f"<Message uid={self.uid} {self.subdir}/{self.name}>"


class SyncResult:
    """What changed since the previous sync, in UIDs."""

    __slots__ = ("added", "changed", "removed", "uidvalidity_changed")

    def __init__(self) -> None:
        self.added: list[int] = []
        self.removed: list[int] = []
        self.changed: list[int] = []
        self.uidvalidity_changed = False

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.uidvalidity_changed)

    def __repr__(self) -> str:
        return f"<SyncResult +{self.added} -{self.removed} ~{self.changed}>"


class _DirState:
    __slots__ = ("__weakref__", "dirty", "events", "identity", "listing", "wd")

    def __init__(self) -> None:
        self.identity: tuple[int, int] | None = None  # (ino, mtime_ns)
        self.dirty = True
        self.listing: dict[str, str] = {}  # base -> file name
        # With a DirWatch (dirwatch.py): the changes since the last sync, or None when the
        # directory must be listed (not watched yet, or its events were lost).
        self.events: list[Event] | None = None
        self.wd = -1


class _Before:
    """The listing of one directory as it was at the previous sync, for the names touched since
    (see Mailbox._apply): the old names are kept, the untouched ones are the live listing's."""

    __slots__ = ("absent", "old", "state")

    def __init__(self, state: _DirState) -> None:
        self.state = state
        self.old: dict[str, str | None] = {}
        self.absent = False  # the directory was empty then: no need to remember each name

    def remember(self, base: str, name: str | None) -> None:
        if base not in self.old:
            self.old[base] = name

    def get(self, base: str) -> str | None:
        if base in self.old:
            return self.old[base]
        return None if self.absent else self.state.listing.get(base)


# Set by dirwatch.enable() in a long-lived process (the server): mailboxes opened from then on
# learn of changes from inotify instead of listing changed directories again.
dir_watch: DirWatch | None = None


class Mailbox:
    """A Maildir folder. Not thread-safe: one owner (a server process, the mda) per object."""

    def __init__(
        self,
        path: str,
        name: str,
        new_uidvalidity: Callable[[], int],
        quota: MaildirQuota | None = None,
    ) -> None:
        self.path = path
        self.name = name
        self._new_uidvalidity = new_uidvalidity
        self.quota = quota
        self.tmp_dir = os.path.join(path, "tmp")
        self._uidlist = UidList(os.path.join(path, UIDLIST_NAME))
        self._keywords_obj: Keywords | None = None
        self._dirs = {sub: _DirState() for sub in SUBDIRS}
        watch = dir_watch
        self._watch = watch if watch is not None and watch.usable else None
        # What listings and events changed since the last _apply, and what was there before.
        self._touched: set[str] = set()
        self._before = {sub: _Before(self._dirs[sub]) for sub in SUBDIRS}
        # The visible messages: bases with a UID that are listed in new/ or cur/. Message
        # objects are made on demand (and kept): a cold open creates none.
        self._uid_of: dict[str, int] = {}
        self._base_of: dict[int, str] = {}
        self._cache: dict[int, Message] = {}
        self._sorted: list[int] | None = []
        self._journal: list[SyncResult] = []
        self._journaling = False
        self._headers: dict[str, bytes] = {}  # base -> header block (see read_header)
        self._names_table: list[str | None] | None = None
        self._names_of: dict[str, tuple[str, ...]] = {}  # see flag_names
        self._loaded = False
        self._uidvalidity = 0
        self._warned: set[str] = set()
        self._owner = -1

    @property
    def _keywords(self) -> Keywords:
        # Imported on first use: a plain delivery (no flags) never needs the keywords file.
        if self._keywords_obj is None:
            from mailstore.keywords import NAME, Keywords

            self._keywords_obj = Keywords(os.path.join(self.path, NAME))
        return self._keywords_obj

    # -- public view ----------------------------------------------------------------------

    @property
    def uidvalidity(self) -> int:
        self._ensure_loaded()
        return self._uidvalidity

    @property
    def next_uid(self) -> int:
        self._ensure_loaded()
        return self._uidlist.next_uid

    @property
    def guid(self) -> str:
        self._ensure_loaded()
        return self._uidlist.guid

    def uids(self) -> list[int]:
        """Visible UIDs in ascending order."""
        self._ensure_loaded()
        if self._sorted is None:
            self._sorted = sorted(self._base_of)
        return self._sorted

    def messages(self) -> list[Message]:
        get = self.get
        return [get(u) for u in self.uids()]

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._base_of)

    def __contains__(self, uid: int) -> bool:
        self._ensure_loaded()
        return uid in self._base_of

    def get(self, uid: int) -> Message:
        msg = self._cache.get(uid)
        if msg is not None:
            return msg
        self._ensure_loaded()
        base = self._base_of.get(uid)
        loc = None if base is None else self._locate(base)
        if base is None or loc is None:
            raise NotFound(f"no message with UID {uid}")
        msg = self._cache[uid] = Message(uid, base, loc[0], loc[1])
        return msg

    def _peek(self, uid: int) -> Message | None:
        try:
            return self.get(uid)
        except NotFound:
            return None

    def record_field(self, msg: Message, key: str) -> str | None:
        """An extension field of the message's uidlist record (`P`: a POP3 UIDL override)."""
        rec = self._uidlist.records.get(msg.base)
        return None if rec is None else record_field(rec, key)

    def all_flags(self, msg: Message) -> list[str]:
        """System flags then keywords, as IMAP FETCH FLAGS shows them."""
        return list(self.flag_names(msg.letters))

    def flag_names(self, letters: str) -> tuple[str, ...]:
        """System flags then keywords for a file name's letters. Remembered per letters: a
        folder has few distinct combinations, and FETCH FLAGS 1:* asks for every message."""
        table = self._keywords.names
        if table is not self._names_table:
            self._names_table = table  # a re-read keywords file is a new list
            self._names_of.clear()
        names = self._names_of.get(letters)
        if names is None:
            flags = sorted(CHAR_TO_FLAG[c] for c in letters if c in CHAR_TO_FLAG)
            names = tuple(flags + self._keywords.letters_to_names(letters))
            self._names_of[letters] = names
        return names

    def known_keywords(self) -> list[str]:
        self._ensure_loaded()
        return [k for k in self._keywords.names if k is not None]

    # -- sync -------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.sync()

    def sync(self) -> SyncResult:
        result = SyncResult()
        first = not self._loaded
        if first:
            self._open_checks()
        self._keywords.refresh()
        self._uidlist.refresh()
        if not self._uidlist.exists:
            self._create_uidlist()
        if self._uidvalidity != self._uidlist.uidvalidity:
            if self._loaded:
                log.warn("uidvalidity-changed", path=self.path)
                result.uidvalidity_changed = True
                result.removed = sorted(self._base_of)
            self._uidvalidity = self._uidlist.uidvalidity
            self._uid_of.clear()
            self._base_of.clear()
            self._cache.clear()
            self._sorted = []
            for state in self._dirs.values():
                state.identity = None
                state.listing = {}
                state.events = None  # listed again in full
            self._touched.clear()
            self._before = {sub: _Before(self._dirs[sub]) for sub in SUBDIRS}
        self._loaded = True
        self._scan_dirs(force=False)
        if self._touched:
            touched, before = self._take_touched()
            self._apply(touched, before, result)
        if first:
            self._clean_tmp()
        elif result and self._journaling:
            self._journal.append(result)
        return result

    def take_changes(self) -> SyncResult:
        """Everything syncs found since the last call, merged, whoever ran them.

        A sync can happen inside another call (reading a message that was renamed or
        expunged meanwhile syncs to find it again); a session's view of the mailbox must still
        hear of those changes, so they are journaled here until taken. A message that came
        and went between two calls is left out.
        """
        self._journaling = True  # from now on: a mailbox nobody views keeps no journal
        self.sync()
        merged = SyncResult()
        journal, self._journal = self._journal, []
        for r in journal:
            merged.uidvalidity_changed |= r.uidvalidity_changed
            merged.added.extend(r.added)
            merged.removed.extend(r.removed)
            merged.changed.extend(r.changed)
        if len(journal) > 1:
            both = set(merged.added) & set(merged.removed)
            merged.added = sorted(set(merged.added) - both)
            merged.removed = sorted(set(merged.removed) - both)
            merged.changed = sorted(set(merged.changed) - set(merged.removed))
        return merged

    def _open_checks(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot open mailbox {self.name}: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            log.warn("mailbox-not-a-directory", path=self.path)
            raise NotFound(f"mailbox {self.name} does not exist")
        self._owner = st.st_uid

    def _take_touched(self) -> tuple[set[str], dict[str, _Before]]:
        touched, before = self._touched, self._before
        self._touched = set()
        self._before = {sub: _Before(self._dirs[sub]) for sub in SUBDIRS}
        return touched, before

    def _scan_dirs(self, force: bool) -> None:
        """Bring the listings of new/ then cur/ up to date; the bases whose location changed
        go to self._touched. `force`: list even if the mtime did not change (with events there
        is no need: reading the queue to its end is as good as listing)."""
        watch = self._watch
        if watch is not None:
            if not watch.usable:
                self._stop_watching(watch)
                watch = None
            else:
                watch.drain()
        for sub in SUBDIRS:
            state = self._dirs[sub]
            path = os.path.join(self.path, sub)
            if watch is not None:
                events = watch.take(state)
                if events is not None:
                    if events and not self._replay(sub, state, events):
                        watch.unwatch(state)
                        self._list_dir(sub, state, path, watch)
                    continue
            self._list_dir(sub, state, path, watch, force)

    def _stop_watching(self, watch: DirWatch) -> None:
        """Sync by mtime from now on (out of watches, or the watch is not ours to read)."""
        self._watch = None
        for state in self._dirs.values():
            if state.wd >= 0 and watch.usable:
                watch.unwatch(state)
            state.events = None
            state.wd = -1
            state.identity = None  # listed again

    def _list_dir(
        self,
        sub: str,
        state: _DirState,
        path: str,
        watch: DirWatch | None,
        force: bool = True,
    ) -> None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._recreate_subdir(path)
            st = os.stat(path)
        except OSError as exc:
            raise TemporaryFailure(f"cannot read {self.name}: {exc.strerror}") from exc
        identity = (st.st_ino, st.st_mtime_ns)
        snapshot = None
        if watch is not None:
            # Watched before listing: a change during the listing is queued, and replaying it
            # over a listing that already has it changes nothing.
            if state.wd >= 0:
                watch.unwatch(state)
            ok, snapshot = watch.watch(path, state, self)
            if not ok:
                self._stop_watching(watch)  # out of watches
                watch = None
        elif not force and not state.dirty and identity == state.identity:
            return
        started = time.time_ns()
        if snapshot is not None:
            listing = snapshot  # another session of this process has the folder open
        else:
            listing = self._list(path)
            if watch is not None:
                watch.seed(state, listing)
        state.dirty = st.st_mtime_ns >= started - DIRTY_MARGIN_NS
        state.identity = identity
        old = state.listing
        before = self._before[sub]
        if not old:
            before.absent = True  # a first listing: 100,000 names need no remembering
            self._touched.update(listing)
        else:
            old_get = old.get
            changed = [b for b, n in listing.items() if old_get(b) != n]
            changed += [b for b in old if b not in listing]
            for b in changed:
                before.remember(b, old_get(b))
            self._touched.update(changed)
        state.listing = listing

    def _replay(self, sub: str, state: _DirState, events: list[Event]) -> bool:
        """Apply queued inotify events to the listing (see dirwatch.replay)."""
        from mailstore.dirwatch import replay

        before = self._before[sub]
        touched = self._touched

        def changed(base: str, old: str | None) -> None:
            before.remember(base, old)
            touched.add(base)

        path = os.path.join(self.path, sub)
        return replay(state.listing, path, events, changed, self._warn_once)

    def _recreate_subdir(self, path: str) -> None:
        # A Maildir missing cur/ or new/ (a tool that prunes empty directories): repair it
        # rather than fail, as Dovecot does.
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise TemporaryFailure(f"cannot create {path}: {exc.strerror}") from exc

    def _list(self, path: str) -> dict[str, str]:
        listing: dict[str, str] = {}
        try:
            with os.scandir(path) as it:
                for entry in it:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    # Names the line- and space-based uidlist could not store are left alone
                    # (checked inline: this loop runs once per message on a cold open).
                    if not (name.isascii() and name.isprintable()) or " " in name:
                        self._warn_once("unusable-file-name", os.path.join(path, name))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        self._warn_once("not-a-regular-file", os.path.join(path, name))
                        continue
                    base = name.partition(":")[0]
                    prev = listing.get(base)
                    if prev is not None:
                        self._warn_once("duplicate-base", os.path.join(path, name))
                        if prev < name:
                            continue
                    listing[base] = name
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TemporaryFailure(f"cannot list {path}: {exc.strerror}") from exc
        return listing

    def _warn_once(self, event: str, path: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            log.warn(event, path=path)

    def _locate(self, base: str) -> tuple[str, str] | None:
        name = self._dirs["cur"].listing.get(base)
        if name is not None:
            return "cur", name
        name = self._dirs["new"].listing.get(base)
        if name is not None:
            return "new", name
        return None

    def _apply(self, touched: set[str], previous: dict[str, _Before], result: SyncResult) -> None:
        """Turn listing changes into the visible state and the diff. `previous` holds the
        listings as they were before this sync, to tell flag changes from mere moves."""
        records = self._uidlist.records
        if not records.keys() >= touched:
            unknown = [b for b in touched if b not in records and self._locate(b) is not None]
            if unknown:
                more, before = self._assign_unknown()
                touched |= more
                for sub in SUBDIRS:
                    for base, name in before[sub].old.items():
                        previous[sub].remember(base, name)
        if not self._uid_of:
            self._load_all(result.added)
            touched = set()
        uid_of, base_of, cache = self._uid_of, self._base_of, self._cache
        added = result.added
        for base in touched:
            loc = self._locate(base)
            uid = uid_of.get(base)
            if loc is None:
                if uid is not None:
                    del uid_of[base]
                    del base_of[uid]
                    cache.pop(uid, None)
                    result.removed.append(uid)
                continue
            if uid is None:
                rec = records.get(base)
                if rec is not None:  # else it vanished again while we assigned: next time
                    uid = rec[0]
                    uid_of[base] = uid
                    base_of[uid] = base
                    added.append(uid)
                continue
            old_name = previous["cur"].get(base) or previous["new"].get(base) or ""
            if _letters(old_name) != _letters(loc[1]):
                result.changed.append(uid)
            msg = cache.get(uid)
            if msg is not None:
                msg.subdir, msg.name = loc
                msg.letters = _letters(loc[1])
        added.sort()
        ordered = self._sorted
        if result.removed:
            self._sorted = None
        elif added and ordered is not None:
            if not ordered or added[0] > ordered[-1]:
                # New mail: a copy, not a sort (callers may hold the old list).
                self._sorted = ordered + added
            else:
                self._sorted = None
        result.removed.sort()
        result.changed.sort()
        if result.removed:
            self._maybe_rewrite()

    def _load_all(self, added: list[int]) -> None:
        """The first load: every listed file with a UID is visible (no diffing, no objects)."""
        records = self._uidlist.records
        bases = self._dirs["cur"].listing.keys() | self._dirs["new"].listing.keys()
        self._uid_of = {b: records[b][0] for b in bases if b in records}
        self._base_of = {u: b for b, u in self._uid_of.items()}
        added.extend(self._base_of)

    def _assign_unknown(self) -> tuple[set[str], dict[str, _Before]]:
        """Give UIDs to every listed file that has none: under the lock, after listing again.
        Returns what that listing changed, as _take_touched."""
        with DotLock(self._uidlist.path):
            self._uidlist.refresh()
            if not self._uidlist.exists:
                self._write_new_uidlist()
            self._scan_dirs(force=True)
            touched = self._take_touched()
            records = self._uidlist.records
            new_files = []
            for sub in ("cur", "new"):
                for base, name in self._dirs[sub].listing.items():
                    if base not in records:
                        new_files.append((base, name))
            if new_files:
                # In name order, which is delivery-time order for names made per maildir(5).
                seen: set[str] = set()
                ordered = []
                for base, name in sorted(new_files):
                    if base not in seen:
                        seen.add(base)
                        ordered.append((base, name))
                self._uidlist.append(ordered)
        return touched

    def _create_uidlist(self) -> None:
        with DotLock(self._uidlist.path):
            self._uidlist.refresh()
            if not self._uidlist.exists:
                self._write_new_uidlist()

    def _write_new_uidlist(self) -> None:
        """Create the uidlist (lock held): keep our view if we had one, else adopt Courier's."""
        ul = self._uidlist
        if self._loaded and self._uidvalidity:
            # Somebody removed the file under us: write back what we know rather than
            # invalidating every client's cache with a new UIDVALIDITY.
            ul.uidvalidity = self._uidvalidity
            ul.records = {b: (u, b, "") for b, u in self._uid_of.items()}
            ul.max_uid = max(self._base_of, default=0)
        elif not ul.load_foreign(os.path.join(self.path, COURIER_NAME)):
            ul.uidvalidity = self._new_uidvalidity()
            ul.header_next_uid = 1
        if not ul.guid:
            ul.guid = os.urandom(16).hex()
        ul.rewrite(self.tmp_dir)

    def _maybe_rewrite(self) -> None:
        dead = len(self._uidlist.records) - len(self._uid_of)
        if dead < REWRITE_MIN_DEAD or dead * 4 < len(self._uid_of):
            return
        try:
            with DotLock(self._uidlist.path, timeout=2.0):
                self._uidlist.refresh()
                self._scan_dirs(force=True)
                present = set(self._dirs["new"].listing)
                present.update(self._dirs["cur"].listing)
                self._uidlist.rewrite(self.tmp_dir, keep=present)
        except MailError as exc:
            log.info("uidlist-rewrite-postponed", path=self.path, reason=exc.message)

    def _clean_tmp(self) -> None:
        limit = time.time() - TMP_MAX_AGE
        try:
            with os.scandir(self.tmp_dir) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                        if st.st_mtime < limit and st.st_atime < limit:
                            os.unlink(entry.path)
                    except OSError:
                        continue
        except OSError:
            return

    # -- reading messages -----------------------------------------------------------------

    def open_message(self, uid: int) -> BinaryIO:
        """The file of a message, opened for reading (bytes as stored: LF or CRLF)."""
        fd, _ = self._open_fd(uid)
        return os.fdopen(fd, "rb")

    def _open_fd(self, uid: int) -> tuple[int, int]:
        """A descriptor of the message's file, and the file's size."""
        msg = self.get(uid)
        for _ in range(3):
            path = os.path.join(self.path, msg.subdir, msg.name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY)
            except FileNotFoundError:
                # Renamed (flags changed) or expunged by another process: look again.
                self.sync()
                msg = self.get(uid)
                continue
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self._warn_once("symlink-refused", path)
                    raise NotFound(f"message {uid} is not readable") from None
                raise TemporaryFailure(f"cannot read message {uid}: {exc.strerror}") from exc
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_nlink > 1 and st.st_uid != self._owner):
                os.close(fd)
                self._warn_once("foreign-file-refused", path)
                raise NotFound(f"message {uid} is not readable")
            return fd, st.st_size
        raise NotFound(f"message {uid} keeps moving")

    def read_message(self, uid: int) -> bytes:
        # os.read() straight into one bytes object: no buffered file object per message. A
        # message file never changes, so its size from fstat() is the whole of it.
        fd, size = self._open_fd(uid)
        try:
            data = os.read(fd, size)
            while len(data) < size:
                more = os.read(fd, size - len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        msg = self._peek(uid)
        if msg is not None and msg.base not in self._headers:
            self._remember_header(uid, data)
        return data

    def read_header(self, uid: int) -> bytes:
        """The header block (up to and with its blank line), cached: a message file never
        changes, so a SEARCH of header fields after a FETCH reads no file (as Dovecot's cache)."""
        msg = self.get(uid)
        cached = self._headers.get(msg.base)
        if cached is not None:
            return cached
        with self.open_message(uid) as f:
            data = f.read(HEADER_READ)
            while header_end(data) < 0 and len(data) < HEADER_MAX:
                more = f.read(HEADER_READ)
                if not more:
                    break
                data += more
        return self._remember_header(uid, data)

    def _remember_header(self, uid: int, data: bytes) -> bytes:
        end = header_end(data)
        header = data if end < 0 else data[:end]
        if len(self._headers) >= HEADER_CACHE:
            self._headers.clear()  # bounded memory; refilled by the next FETCH or SEARCH
        msg = self._peek(uid)
        if msg is not None:
            self._headers[msg.base] = header
        return header

    def message_vsize(self, msg: Message) -> int:
        """CRLF size, from `,W=` or computed once from the file."""
        vsize = msg.vsize
        if vsize is None:
            with self.open_message(msg.uid) as f:
                msg._sizes = vsize_of_file(f)
            vsize = msg._sizes[1]
            assert vsize is not None
        return vsize

    def message_size(self, msg: Message) -> int:
        size = msg.size
        if size is None:
            self.message_vsize(msg)
            size = msg.size
            assert size is not None
        return size

    def internaldate(self, msg: Message) -> float:
        """The file's mtime: set at delivery/APPEND and never changed after (RFC 3501 2.3.3)."""
        if msg._internaldate is None:
            try:
                st = os.stat(os.path.join(self.path, msg.subdir, msg.name))
            except FileNotFoundError:
                self.sync()
                msg = self.get(msg.uid)
                st = os.stat(os.path.join(self.path, msg.subdir, msg.name))
            msg._internaldate = st.st_mtime
        return msg._internaldate

    # -- changing flags -------------------------------------------------------------------

    def letters_for(self, flags: Iterable[str]) -> str:
        """Maildir letters for IMAP flags (system flags and keywords; keywords get letters)."""
        system = []
        words = set()
        for flag in flags:
            ch = FLAG_TO_CHAR.get(_canonical_system(flag))
            if ch is not None:
                system.append(ch)
            elif flag.startswith("\\"):
                continue  # \Recent and unknown system flags cannot be stored
            else:
                words.add(flag)
        letters = "".join(system)
        if words:
            letters += self._keywords.letters_for(words, self.tmp_dir)
        return letters

    def store_flags(self, uids: Iterable[int], mode: str, flags: Iterable[str]) -> list[int]:
        """Change flags; mode is "set", "add" or "remove". Returns the UIDs that changed."""
        self._ensure_loaded()
        flags = list(flags)
        letters = self._existing_letters(flags) if mode == "remove" else self.letters_for(flags)
        changed = []
        for uid in uids:
            if self._change_letters(uid, mode, letters):
                changed.append(uid)
        return changed

    def _existing_letters(self, flags: list[str]) -> str:
        out = []
        for flag in flags:
            ch = FLAG_TO_CHAR.get(_canonical_system(flag))
            if ch is None and not flag.startswith("\\"):
                ch = self._keywords.letter_for(flag)
            if ch is not None:
                out.append(ch)
        return "".join(out)

    def _change_letters(self, uid: int, mode: str, letters: str) -> bool:
        for _ in range(3):
            msg = self._peek(uid)
            if msg is None:
                return False
            old = msg.letters
            if mode == "set":
                # Keep what IMAP cannot express: `P`, and letters of keywords with no name.
                kept = "".join(
                    c
                    for c in old
                    if c not in CHAR_TO_FLAG
                    and not ("a" <= c <= "z" and self._keywords.names[ord(c) - 97] is not None)
                )
                new = kept + letters
            elif mode == "add":
                new = old + letters
            else:
                new = "".join(c for c in old if c not in letters)
            new = "".join(sorted(set(new)))
            if new == old:
                return False
            name = join_name(msg.base, new)
            src = os.path.join(self.path, msg.subdir, msg.name)
            dst = os.path.join(self.path, "cur", name)
            try:
                os.rename(src, dst)
            except FileNotFoundError:
                self.sync()
                continue
            except OSError as exc:
                raise TemporaryFailure(f"cannot change flags of {uid}: {exc.strerror}") from exc
            self._moved(msg, "cur", name)
            return new != old
        return False

    def _moved(self, msg: Message, sub: str, name: str) -> None:
        """Record our own rename, so the next listing shows no change for it."""
        self._dirs[msg.subdir].listing.pop(msg.base, None)
        self._dirs[sub].listing[msg.base] = name
        msg.subdir, msg.name = sub, name
        msg.letters = _letters(name)

    def mark_seen_by_reader(self, uids: Iterable[int]) -> list[int]:
        """Move messages from new/ to cur/ (no flag change): a reader has seen them arrive.

        Returns the UIDs this call moved. The rename succeeds for one caller only, so when
        sessions race for a new message, exactly one of them gets it (IMAP's \\Recent)."""
        moved = []
        for uid in uids:
            msg = self._peek(uid)
            if msg is None or msg.subdir != "new":
                continue
            name = join_name(msg.base, msg.letters)
            try:
                os.rename(
                    os.path.join(self.path, "new", msg.name), os.path.join(self.path, "cur", name)
                )
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TemporaryFailure(f"cannot move message {uid}: {exc.strerror}") from exc
            self._moved(msg, "cur", name)
            moved.append(uid)
        return moved

    # -- expunge --------------------------------------------------------------------------

    def expunge(self, uids: Iterable[int]) -> list[int]:
        """Delete messages. Returns the UIDs removed (already gone ones are skipped)."""
        self._ensure_loaded()
        removed = []
        for uid in uids:
            for _ in range(3):
                msg = self._peek(uid)
                if msg is None:
                    break
                try:
                    os.unlink(os.path.join(self.path, msg.subdir, msg.name))
                except FileNotFoundError:
                    self.sync()
                    continue
                except OSError as exc:
                    raise TemporaryFailure(f"cannot expunge {uid}: {exc.strerror}") from exc
                self._dirs[msg.subdir].listing.pop(msg.base, None)
                del self._uid_of[msg.base]
                del self._base_of[uid]
                del self._cache[uid]
                self._sorted = None
                removed.append(uid)
                break
        if removed:
            self._maybe_rewrite()
        return removed

    # -- adding messages ------------------------------------------------------------------

    def append(
        self,
        source: bytes | BinaryIO,
        flags: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> int:
        """Store a message durably and give it a UID (the next sync shows it as added)."""
        letters = self.letters_for(flags) if flags else ""
        tmp_path, counter = self._write_tmp(source, internaldate)
        return self._commit([(tmp_path, counter.size, counter.vsize, letters)])[0]

    def append_many(
        self, messages: Iterable[tuple[bytes | BinaryIO, Iterable[str], float | None]]
    ) -> list[int]:
        """Store several messages all or nothing (IMAP MULTIAPPEND, RFC 3502): each is
        written to tmp/ and fsynced first, and only when all are there (and within the quota
        together) are they linked into the folder and given UIDs, in order, by one `_commit`,
        which takes back every link if one fails. A failure before that, the iterable's own
        included (it may make each message as it is asked for), leaves nothing but the tmp/
        files it removes. `messages` are (source, flags, internaldate) as `append` takes them;
        returns their UIDs."""
        staged: list[tuple[str, int, int, str]] = []
        try:
            for source, flags, internaldate in messages:
                letters = self.letters_for(flags) if flags else ""
                tmp_path, counter = self._write_tmp(source, internaldate)
                staged.append((tmp_path, counter.size, counter.vsize, letters))
            if self.quota is not None and len(staged) > 1:
                self.quota.check(sum(s[1] for s in staged), len(staged))
        except BaseException:
            for tmp_path, *_ in staged:
                _unlink_quietly(tmp_path)
            raise
        return self._commit(staged) if staged else []

    def _write_tmp(
        self, source: bytes | BinaryIO, internaldate: float | None
    ) -> tuple[str, VsizeCounter]:
        counter = VsizeCounter()
        for _ in range(5):
            tmp_path = os.path.join(self.tmp_dir, unique_base())
            try:
                fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise TemporaryFailure(f"cannot create a file in tmp/: {exc.strerror}") from exc
        else:
            raise TemporaryFailure("cannot find a unique file name in tmp/")
        try:
            try:
                if isinstance(source, bytes | bytearray | memoryview):
                    counter.feed(bytes(source))
                    write_all(fd, source)
                else:
                    while chunk := source.read(1 << 16):
                        counter.feed(chunk)
                        write_all(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            if internaldate is not None:
                os.utime(tmp_path, (internaldate, internaldate))
            if self.quota is not None:
                self.quota.check(counter.size, 1)
        except BaseException as exc:
            _unlink_quietly(tmp_path)
            if isinstance(exc, OSError):
                raise TemporaryFailure(f"cannot write message: {exc.strerror}") from exc
            raise
        return tmp_path, counter

    def _commit(self, files: list[tuple[str, int, int, str]]) -> list[int]:
        """Link written tmp/ files into new/ (cur/ when flagged), fsync, then assign UIDs."""
        hint = self._uidlist_hint()
        entries: list[tuple[str, str]] = []
        linked: list[str] = []
        dirs_used = set()
        try:
            for tmp_path, size, vsize, letters in files:
                sub = "cur" if letters else "new"
                for attempt in range(5):
                    unique = os.path.basename(tmp_path) if attempt == 0 else unique_base()
                    base = f"{unique},S={size},W={vsize}"
                    name = join_name(base, letters) if letters else base
                    dest = os.path.join(self.path, sub, name)
                    try:
                        # link(), not rename(): it never replaces an existing name.
                        os.link(tmp_path, dest)
                        linked.append(dest)
                        break
                    except FileExistsError:
                        continue
                else:
                    raise TemporaryFailure("cannot find a unique message file name")
                _unlink_quietly(tmp_path)
                entries.append((base, name))
                dirs_used.add(sub)
            for sub in dirs_used:
                _fsync_dir(os.path.join(self.path, sub))
        except OSError as exc:
            # Not durable, so not acknowledged: take back what was linked, and the MTA's
            # retry cannot produce a duplicate.
            for dest in linked:
                _unlink_quietly(dest)
            raise TemporaryFailure(f"cannot deliver: {exc.strerror}") from exc
        finally:
            for tmp_path, *_ in files:
                _unlink_quietly(tmp_path)
        if self.quota is not None:
            self.quota.add(sum(f[1] for f in files), len(files))
        with DotLock(self._uidlist.path):
            if hint is not None:
                uids = self._uidlist.append_after(entries, hint)
                if uids is not None:
                    return uids
            self._uidlist.refresh()
            if not self._uidlist.exists:
                self._write_new_uidlist()
            return self._uidlist.append(entries)

    def _uidlist_hint(self) -> tuple[int, int] | None:
        """(inode, size) of the uidlist before our files are linked: any UID given to them
        by another process is appended after that point (see UidList.append_after)."""
        if self._loaded:
            return None
        try:
            st = os.stat(self._uidlist.path)
        except OSError:
            return None
        return st.st_ino, st.st_size

    def copy_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        """Copy messages with their flags; returns (source UID, destination UID) pairs.

        Hard links where possible (as Dovecot's maildir_copy_with_hardlinks), a byte copy
        otherwise. Keyword letters are translated to the destination's keyword file.
        """
        self._ensure_loaded()
        staged: list[tuple[str, int, int, str]] = []
        sources: list[int] = []
        try:
            for uid in uids:
                msg = self._peek(uid)
                if msg is None:
                    continue
                flags = list(msg.flags) + self._keywords.letters_to_names(msg.letters)
                letters = dest.letters_for(flags)
                kept = "".join(c for c in msg.letters if c == "P")
                tmp_path = os.path.join(dest.tmp_dir, unique_base())
                vsize = self.message_vsize(msg)
                size = self.message_size(msg)
                try:
                    os.link(os.path.join(self.path, msg.subdir, msg.name), tmp_path)
                except FileNotFoundError:
                    self.sync()
                    if uid not in self._base_of:
                        continue
                    with self.open_message(uid) as f:
                        tmp_path, _ = dest._write_tmp(f, self.internaldate(msg))
                except OSError:
                    with self.open_message(uid) as f:
                        tmp_path, _ = dest._write_tmp(f, self.internaldate(msg))
                staged.append((tmp_path, size, vsize, letters + kept))
                sources.append(uid)
        except BaseException:
            for tmp_path, *_ in staged:
                _unlink_quietly(tmp_path)
            raise
        if not staged:
            return []
        if dest.quota is not None:
            dest.quota.check(sum(s[1] for s in staged), len(staged))
        new_uids = dest._commit(staged)
        return list(zip(sources, new_uids, strict=True))


HEADER_READ = 8192
HEADER_MAX = 1 << 20
HEADER_CACHE = 5_000  # messages per open mailbox: a few KiB each in practice


def _letters(name: str) -> str:
    i = name.find(":2,")
    return name[i + 3 :] if i >= 0 else ""


def _canonical_system(flag: str) -> str:
    # System flags are case-insensitive (RFC 3501 section 2.3.2).
    return "\\" + flag[1:].capitalize() if flag.startswith("\\") else flag


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
