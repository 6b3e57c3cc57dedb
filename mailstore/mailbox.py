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

Safety: every directory and file below the mail root is reached through folderdir.py, which never
follows a symlink there (the folder, `cur/`, `new/`, `tmp/` and the message files): a symlinked
`new/` lists as empty, a symlinked folder does not exist. Entries that are not regular files are
skipped and logged; a file that is hard-linked from elsewhere and owned by somebody other than the
folder's owner is not served (a planted link to someone else's file). A message that cannot be
read raises MessageUnreadable for that message alone: the rest of the folder is served.

UIDs are 32-bit and never reused within a UIDVALIDITY (RFC 3501 2.3.1.1). When they run out
(a `dovecot-uidlist` whose next UID is near 2^32, written by a damaged or hostile tool), the folder
gets a new UIDVALIDITY and its messages are numbered again from 1 in their old order (see
_renumber): every session with the folder open sees the UIDVALIDITY change at its next sync.
"""

from __future__ import annotations

import bisect
import os
import stat
import time

from mailstore import adding, log
from mailstore.content import header_end, vsize_of_file
from mailstore.errors import (
    MailError,
    MessageUnreadable,
    NotFound,
    TemporaryFailure,
    UnsafePath,
)
from mailstore.filenames import (
    CHAR_TO_FLAG,
    FLAG_TO_CHAR,
    join_name,
    sizes_of,
    unique_base,
)
from mailstore.folderdir import FolderDir
from mailstore.keywords import NAME as KEYWORDS_NAME
from mailstore.keywords import Keywords
from mailstore.lock import DotLock
from mailstore.messagefile import failure, open_file, read_all, refusal, unreadable_by_mode
from mailstore.uidlist import COURIER_NAME, UidList, UidsExhausted, record_field
from mailstore.uidlist import NAME as UIDLIST_NAME

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextlib import AbstractContextManager
    from typing import BinaryIO, Protocol

    from mailstore.dirwatch import DirWatch, Event
    from mailstore.quota import MaildirQuota

    class Hooks(Protocol):
        """What a folder's shared state (mailstore/folderstate.py) is told, the lock held."""

        def synced(self, result: SyncResult, first: bool) -> None:
            """A sync (the first load when `first`) or a change of our own, in `result`."""


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
    def known_internaldate(self) -> float | None:
        """The INTERNALDATE if it was read (Mailbox.internaldate), else None: no stat()."""
        return self._internaldate

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
    """What changed since the previous sync, in UIDs; and, for the messages removed, the last
    state the store knew them in (`ghosts`: their flags and sizes from the file name, their
    date if it was read), so that a reader that has not yet told its client of the expunge
    can still answer for them what needs no file (IMAP: RFC 2180 4.1)."""

    __slots__ = (
        "added",
        "changed",
        "ghosts",
        "highest",
        "modseqs",
        "origin",
        "removed",
        "uids",
        "uidvalidity_changed",
    )

    def __init__(self, origin: object = None) -> None:
        self.added: list[int] = []
        self.removed: list[int] = []
        self.changed: list[int] = []
        self.ghosts: dict[int, Message] = {}
        self.uidvalidity_changed = False
        # Filled by the folder's hooks (mailstore/folderstate.py) when it keeps an index: the
        # modseq of every added or changed UID, and the folder's HIGHESTMODSEQ after this.
        self.modseqs: dict[int, int] = {}
        self.highest = 0
        # Who made the change, for a change this process made itself (a STORE: that session
        # has answered it already); None for what a sync found.
        self.origin = origin
        # Set by FolderState.take: the folder's UID list as of the end of what it merged.
        self.uids: list[int] | None = None

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


class _NoLock:
    """The lock of a mailbox that one thread owns (the mda, a test): costs nothing. A folder
    shared by the sessions of a server process gets a real one (folderstate.py), and mailbox.py
    does not import `threading` for the delivery agent's sake (7 ms at start-up)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NO_LOCK = _NoLock()


class Mailbox:
    """A Maildir folder. One owner (the mda, a test), or the sessions of one server process
    sharing it (folderstate.py): then `lock` is a real lock, every change and every use of
    the folder's descriptors is made holding it, and `hooks` hears of every change."""

    def __init__(
        self,
        path: str,
        name: str,
        new_uidvalidity: Callable[[], int],
        quota: MaildirQuota | None = None,
        root: str | None = None,
    ) -> None:
        """`path` is the folder's directory: the mail root for INBOX, a directory directly in
        it for any other folder (Maildir++). `root` defaults to what that layout implies."""
        self.path = path
        self.name = name
        self._dir = FolderDir.of_path(path, root, inbox=name == "INBOX")
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
        self.lock: AbstractContextManager[object] = NO_LOCK
        self.hooks: Hooks | None = None
        self._headers: dict[str, bytes] = {}  # base -> header block (see read_header)
        self._names_table: list[str | None] | None = None
        self._names_of: dict[str, tuple[str, ...]] = {}  # see flag_names
        self._loaded = False
        self._uidvalidity = 0
        self._warned: set[str] = set()
        self._owner = -1
        self._folder_id: tuple[int, int] | None = None  # (dev, ino) of the folder directory

    @property
    def _keywords(self) -> Keywords:
        # Made on first use (every sync refreshes it, so the module is imported at the top:
        # a process that dropped its privileges may not be able to import it then).
        if self._keywords_obj is None:
            self._keywords_obj = Keywords(os.path.join(self.path, KEYWORDS_NAME))
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
        """Visible UIDs in ascending order. The list is never changed once returned (a change
        makes a new one), so sessions may hold it as their own until they differ."""
        ordered = self._sorted
        if ordered is None or not self._loaded:
            with self.lock:
                self._ensure_loaded()
                if self._sorted is None:
                    self._sorted = sorted(self._base_of)
                ordered = self._sorted
        return ordered

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
        msg = self._cache.get(uid)  # no lock: FETCH FLAGS 1:* asks for every message
        if msg is not None:
            return msg
        with self.lock:
            self._ensure_loaded()
            msg = self._cache.get(uid)
            if msg is not None:
                return msg
            base = self._base_of.get(uid)
            loc = None if base is None else self._locate(base)
            if base is None or loc is None:
                raise NotFound(f"no message with UID {uid}")
            msg = self._cache[uid] = Message(uid, base, loc[0], loc[1])
            return msg

    def all_letters(self) -> dict[int, str]:
        """The flag letters of every visible message, by UID: what the folder index compares
        with what it recorded (folderindex.py), without making a Message of each."""
        with self.lock:
            self._ensure_loaded()
            uid_of = self._uid_of
            out: dict[int, str] = {}
            for sub in SUBDIRS:  # new/ first: a base in both is cur/'s (_locate)
                for base, name in self._dirs[sub].listing.items():
                    uid = uid_of.get(base)
                    if uid is not None:
                        i = name.find(":2,")
                        out[uid] = name[i + 3 :] if i >= 0 else ""
            return out

    def letters_of(self, uid: int) -> str | None:
        """The flag letters of one message now, None when it is not visible."""
        msg = self._peek(uid)
        return None if msg is None else msg.letters

    def suspect(self) -> None:
        """The listings may be behind (the folder index saw a change recorded by another
        process that they do not show): list new/ and cur/ again at the next sync, unless
        inotify events are at hand (then the change is in the queue already)."""
        for state in self._dirs.values():
            state.dirty = True

    def recent_uids(self) -> list[int]:
        """The visible messages still in new/ (maildir(5): no reader has looked at them),
        ascending: from new/'s listing, which is short, not by asking every message."""
        with self.lock:
            self._ensure_loaded()
            uid_of = self._uid_of
            cur = self._dirs["cur"].listing
            found = [
                uid
                for base in self._dirs["new"].listing
                if (uid := uid_of.get(base)) is not None and base not in cur
            ]
        found.sort()
        return found

    def has_new(self) -> bool:
        """Whether new/ listed anything at the last sync (messages no reader has claimed)."""
        return bool(self._dirs["new"].listing)

    def first_unseen_uid(self, start: int = 0) -> int | None:
        """The lowest UID without \\Seen (SELECT's UNSEEN), looked for in UID order from
        `start`: the caller knows every message below it has \\Seen (folderstate.py keeps
        that mark, so a SELECT after a change does not walk a big folder again)."""
        with self.lock:
            self._ensure_loaded()
            ordered = self.uids()
            base_of = self._base_of
            cur = self._dirs["cur"].listing
            new = self._dirs["new"].listing
            for i in range(bisect.bisect_left(ordered, start), len(ordered)):
                uid = ordered[i]
                base = base_of[uid]
                name = cur.get(base)  # a base in both is cur/'s (_locate)
                if name is None:
                    name = new.get(base)
                    if name is None:
                        continue
                j = name.find(":2,")
                if j < 0 or "S" not in name[j + 3 :]:
                    return uid
            return None

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
        with self.lock:
            return self._sync()

    def _sync(self) -> SyncResult:
        result = SyncResult()
        first = not self._loaded
        self._check_folder()
        self._keywords.refresh()
        self._uidlist.refresh()
        if not self._uidlist.exists:
            self._create_uidlist()
        self._check_uidvalidity(result, first)
        self._loaded = True
        self._scan_dirs(force=False)
        if self._touched:
            touched, before = self._take_touched()
            self._apply(touched, before, result)
            if self._uidvalidity != self._uidlist.uidvalidity:
                # UIDs ran out while new files were given theirs: the folder was numbered
                # again under a new UIDVALIDITY (_renumber). Load it as such.
                self._check_uidvalidity(result, first)
                self._scan_dirs(force=True)
                touched, before = self._take_touched()
                self._apply(touched, before, result)
        if first:
            self._clean_tmp()
        if self.hooks is not None and (result or first):
            self.hooks.synced(result, first)
        return result

    def _check_uidvalidity(self, result: SyncResult, first: bool) -> None:
        """A uidlist with another UIDVALIDITY (rewritten by someone, restored from backup,
        renumbered): every UID of the view is gone, every message is new."""
        if self._uidvalidity == self._uidlist.uidvalidity:
            return
        if not first:
            log.warn("uidvalidity-changed", path=self.path)
            result.uidvalidity_changed = True
            result.removed = sorted(self._base_of)
            result.added = []
            result.changed = []
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

    def _check_folder(self) -> None:
        """NotFound if the folder's directory is gone or a symlink now; notice when it is
        another directory than at the last sync. One stat() when nothing changed: the kept
        descriptor is a directory that was at this place when opened, so reads through it
        stay inside the tree whatever is swapped in afterwards. Then, the directory is opened
        again (O_NOFOLLOW), and since inotify watches stay with the directories they were put
        on, wherever those were moved, they are dropped and new/ and cur/ listed again."""
        try:
            # The root may be a symlink the administrator made (followed); a folder may not.
            st = os.stat(self.path) if self._dir.name is None else os.lstat(self.path)
        except FileNotFoundError:
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot open mailbox {self.name}: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            self._warn_once("mailbox-not-a-directory", self.path)
            raise NotFound(f"mailbox {self.name} does not exist")
        if (st.st_dev, st.st_ino) == self._folder_id:
            return
        self._dir.release()
        st = os.fstat(self._folder_fd())
        folder_id = (st.st_dev, st.st_ino)
        if self._folder_id is not None and folder_id != self._folder_id:
            log.info("mailbox-directory-replaced", path=self.path)
            watch = self._watch
            for state in self._dirs.values():
                if watch is not None and state.wd >= 0 and watch.usable:
                    watch.unwatch(state)
                state.events = None
                state.identity = None
        self._folder_id = folder_id
        self._owner = st.st_uid

    def _folder_fd(self) -> int:
        """The folder's directory; NotFound when it is missing, a symlink or not a directory
        (the store lists no such folder either)."""
        try:
            return self._dir.folder_fd()
        except FileNotFoundError:
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except UnsafePath:
            self._warn_once("mailbox-not-a-directory", self.path)
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot open mailbox {self.name}: {exc.strerror}") from exc

    def _subdir_stat(self, sub: str) -> os.stat_result | None:
        """`new/` or `cur/` for a listing (inside `self._dir.hold()`), made again if missing;
        None when it is a symlink or not a directory: what it holds is not this folder's, so
        the folder shows none of it (logged once)."""
        self._folder_fd()
        for _ in range(2):
            try:
                return self._dir.stat_dir(sub)
            except FileNotFoundError:
                self._recreate_subdir(sub)
            except UnsafePath:
                self._warn_once("symlink-refused", self._dir.where(sub))
                return None
            except OSError as exc:
                raise TemporaryFailure(f"cannot read {self.name}: {exc.strerror}") from exc
        raise TemporaryFailure(f"cannot read {self.name}: {sub}/ keeps vanishing")

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
        with self._dir.hold():
            self._list_dir_held(sub, state, path, watch, force)

    def _list_dir_held(
        self, sub: str, state: _DirState, path: str, watch: DirWatch | None, force: bool
    ) -> None:
        if watch is None and not force and not state.dirty and state.identity is not None:
            # The common case without inotify: one fstatat() says nothing changed.
            try:
                quick = self._dir.lstat_dir(sub)
            except (OSError, MailError):
                quick = None
            if (
                quick is not None
                and stat.S_ISDIR(quick.st_mode)
                and (quick.st_ino, quick.st_mtime_ns) == state.identity
            ):
                return
        st = self._subdir_stat(sub)
        if st is None:
            # A symlink or not a directory: nothing in it is listed, and it is looked at
            # again at every sync (one failing open) until it is a directory again.
            if watch is not None and state.wd >= 0:
                watch.unwatch(state)
            self._set_listing(sub, state, {})
            state.identity = None
            state.dirty = True
            return
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
            elif not _same_directory(path, st):
                # inotify watches by path: a directory swapped (for a symlink) between our
                # open and the watch is not ours. List through the descriptor, watch next time.
                watch.unwatch(state)
                snapshot = None
                watch = None
        elif not force and not state.dirty and identity == state.identity:
            return
        started = time.time_ns()
        if snapshot is not None:
            listing = snapshot  # another session of this process has the folder open
        else:
            listing = self._list(sub)
            if watch is not None:
                watch.seed(state, listing)
        state.dirty = st.st_mtime_ns >= started - DIRTY_MARGIN_NS
        state.identity = identity
        self._set_listing(sub, state, listing)

    def _set_listing(self, sub: str, state: _DirState, listing: dict[str, str]) -> None:
        """Make `listing` the directory's, noting in self._touched the bases it changes."""
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

    def _recreate_subdir(self, sub: str) -> None:
        # A Maildir missing cur/ or new/ (a tool that prunes empty directories): repair it
        # rather than fail, as Dovecot does.
        try:
            self._dir.mkdir(sub)
        except FileExistsError:
            pass
        except OSError as exc:
            raise TemporaryFailure(f"cannot create {sub}/ in {self.name}: {exc.strerror}") from exc

    def _list(self, sub: str) -> dict[str, str]:
        listing: dict[str, str] = {}
        duplicates: list[str] = []
        path = self._dir.where(sub)
        try:
            with self._dir.scandir(sub) as it:
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
                        duplicates.append(max(prev, name))
                        if prev < name:
                            continue
                    listing[base] = name
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TemporaryFailure(f"cannot list {sub}/ of {self.name}: {exc.strerror}") from exc
        for name in duplicates:
            self._fix_duplicate(sub, name, listing)
        return listing

    def _fix_duplicate(self, sub: str, name: str, listing: dict[str, str]) -> None:
        """Two files with one base name (a copy made by hand, a backup restored over the
        folder): the one whose name sorts first keeps the base and its UID, and this one gets
        a base of its own, its flags kept, as Dovecot's maildir_fix_duplicate() does. Left as
        it was, it would hide behind the other until a flag change renamed that one to a name
        sorting after it, and the change would seem undone."""
        _, sep, info = name.partition(":")
        new = unique_base() + sep + info
        where = os.path.join(self._dir.where(sub), name)
        try:
            self._dir.rename(sub, name, sub, new)
        except (OSError, MailError):  # gone meanwhile (another process fixed it), or cannot be
            self._warn_once("duplicate-base", where)
            return
        log.warn("duplicate-base-renamed", path=where, to=new)
        listing[new.partition(":")[0]] = new

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
                if self._uidlist.uidvalidity != self._uidvalidity:
                    return  # renumbered: sync() loads the folder again
                touched |= more
                for sub in SUBDIRS:
                    for base, name in before[sub].old.items():
                        previous[sub].remember(base, name)
        if not self._uid_of:
            self._load_all(result.added)
            touched = set()
        uid_of, base_of, cache = self._uid_of, self._base_of, self._cache
        for base in touched:
            rec = records.get(base)
            other = base_of.get(rec[0]) if rec is not None else None
            if other is not None and other != base:
                # The uidlist gives a UID we know as another message's: it was made again
                # under the same UIDVALIDITY (the folder deleted and made again within one
                # second, a backup restored). A UID names one message for as long as its
                # UIDVALIDITY lasts (RFC 3501 2.3.1.1), so the view cannot go on: loaded
                # again as for a new UIDVALIDITY (sync() sees the mismatch).
                log.warn("uid-reused", path=self.path, uid=rec[0] if rec else 0)
                self._uidvalidity = 0
                return
        added = result.added
        for base in touched:
            loc = self._locate(base)
            uid = uid_of.get(base)
            if loc is None:
                if uid is not None:
                    del uid_of[base]
                    del base_of[uid]
                    ghost = cache.pop(uid, None)
                    if ghost is None:
                        old = previous["cur"].get(base)
                        sub = "cur" if old else "new"
                        old = old or previous["new"].get(base)
                        if old:
                            ghost = Message(uid, base, sub, old)
                    if ghost is not None:
                        result.ghosts[uid] = ghost
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
                try:
                    self._uidlist.append(ordered)
                except UidsExhausted:
                    self._renumber([])
        return touched

    def _renumber(self, entries: list[tuple[str, str]]) -> None:
        """The UIDs ran out (lock held, listings current): a new UIDVALIDITY, and every file
        of the folder (with `entries`, just linked) numbered again from 1, in its old order.

        RFC 3501 2.3.1.1 allows nothing else: UIDs may not be reused, nor go past 2^32 - 1,
        under one UIDVALIDITY. Dovecot 2.3's Maildir code has no way out here (it asserts
        `next_uid < (uint32_t)-1` in maildir_uidlist_assign_uids() and treats a record "UID too
        high" as a corrupt uidlist); its mbox code renumbers ("Out of UIDs, renumbering them
        in mbox"), which is what this does for a Maildir."""
        present: dict[str, str] = {}
        for sub in SUBDIRS:  # new, then cur: a file in both is taken from cur (_locate)
            present.update(self._dirs[sub].listing)
        for base, name in entries:
            present.setdefault(base, name)
        old = self._uidlist.uidvalidity
        uidvalidity = self._new_uidvalidity()
        count = self._uidlist.renumber(present, uidvalidity, self.tmp_dir)
        log.warn(
            "uids-exhausted-renumbered",
            path=self.path,
            old_uidvalidity=old,
            uidvalidity=self._uidlist.uidvalidity,
            messages=count,
        )

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
            with self._dir.hold(), self._dir.scandir("tmp") as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                        if st.st_mtime < limit and st.st_atime < limit:
                            self._dir.unlink("tmp", entry.name)
                    except OSError:
                        continue
        except (OSError, MailError):
            return  # no tmp/ (made at the next delivery), or a symlink: nothing of ours

    # -- reading messages -----------------------------------------------------------------
    # Every failure to open or read one file is MessageUnreadable for that message alone (see
    # messagefile.py); NotFound means the message is gone (expunged meanwhile).

    def reading(self) -> _Reading:
        """`with box.reading():` keeps `cur/` and `new/` open for a series of reads (FETCH of
        many bodies): each read then opens only its file, about 4 us less per message here.
        They are closed at the end of the block (see folderdir.py for why not longer). The
        lock is held only to count the block in and out, not between the reads."""
        return _Reading(self)

    def open_message(self, uid: int) -> BinaryIO:
        """The file of a message, opened for reading (bytes as stored: LF or CRLF)."""
        fd, _ = self._open_fd(uid)
        return os.fdopen(fd, "rb")

    def open_stored(self, msg: Message) -> BinaryIO:
        """The file of `msg`, found by its base name whatever UID it has now: a session that
        keeps Message objects (POP3's snapshot) can never be handed another message after the
        folder was renumbered under it. NotFound once it is expunged."""
        fd, _ = self._open_fd(msg.uid, msg.base)
        return os.fdopen(fd, "rb")

    def check_servable(self, msg: Message) -> None:
        """Raise MessageUnreadable when `msg`'s file would be refused or cannot be read, by
        one lstat() and without opening it: what POP3 asks of every message at login, so
        that such a message is left out instead of failing its RETR (use inside `reading()`
        for many). A file that passes may still fail at its open (an ACL, an I/O error)."""
        try:
            with self.lock:
                st = self._dir.lstat(msg.subdir, msg.name)
        except FileNotFoundError:
            return  # renamed meanwhile: the read finds it again
        except UnsafePath:
            raise MessageUnreadable(msg.uid, "its directory is a symlink") from None
        except OSError as exc:
            raise self._read_failed(msg.uid, exc) from None
        if stat.S_ISLNK(st.st_mode):
            reason: str | None = "a symlink"
            event = "symlink-refused"
        else:
            reason = refusal(st, self._owner)
            event = "foreign-file-refused"
            if reason is None:
                reason = unreadable_by_mode(st)
                event = "message-unreadable"
        if reason is not None:
            self._warn_once(event, self._dir.where(msg.subdir, msg.name))
            raise MessageUnreadable(msg.uid, reason)

    def uid_of_base(self, base: str) -> int | None:
        """The UID the message with this base name has now, None when it is not visible."""
        self._ensure_loaded()
        return self._uid_of.get(base)

    def _open_fd(self, uid: int, base: str | None = None) -> tuple[int, int]:
        """A descriptor of the message's file, and the file's size (opened holding the lock;
        the caller reads without it)."""
        with self.lock:
            return self._open_fd_held(uid, base)

    def _open_fd_held(self, uid: int, base: str | None) -> tuple[int, int]:
        for _ in range(3):
            if base is None:
                msg = self.get(uid)
                sub, name = msg.subdir, msg.name
            else:
                loc = self._locate(base) if self.uid_of_base(base) is not None else None
                if loc is None:
                    raise NotFound(f"message {uid} is no longer there")
                sub, name = loc
            try:
                return open_file(self._dir, sub, name, self._owner, uid, self._warn_once)
            except FileNotFoundError:
                self.sync()  # renamed (flags changed) or expunged by another process: look again
        raise NotFound(f"message {uid} keeps moving")

    def read_message(self, uid: int) -> bytes:
        # os.read() straight into one bytes object: no buffered file object per message. A
        # message file never changes, so its size from fstat() is the whole of it.
        fd, size = self._open_fd(uid)
        try:
            data = read_all(fd, size)
        except OSError as exc:
            raise self._read_failed(uid, exc) from None
        finally:
            os.close(fd)
        msg = self._peek(uid)
        if msg is not None and msg.base not in self._headers:
            self._remember_header(uid, data)
        return data

    def _read_failed(self, uid: int, exc: OSError) -> MailError:
        msg = self._peek(uid)
        where = self._dir.where(msg.subdir, msg.name) if msg is not None else self.path
        return failure(uid, exc, where, self._warn_once)

    def read_header(self, uid: int) -> bytes:
        """The header block (up to and with its blank line), cached: a message file never
        changes, so a SEARCH of header fields after a FETCH reads no file (as Dovecot's cache)."""
        msg = self.get(uid)
        cached = self._headers.get(msg.base)
        if cached is not None:
            return cached
        try:
            with self.open_message(uid) as f:
                data = f.read(HEADER_READ)
                while header_end(data) < 0 and len(data) < HEADER_MAX:
                    more = f.read(HEADER_READ)
                    if not more:
                        break
                    data += more
        except OSError as exc:
            raise self._read_failed(uid, exc) from None
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
        return self._measure(msg)[1] if vsize is None else vsize

    def message_size(self, msg: Message) -> int:
        """Bytes on disk, from `,S=` or computed once from the file."""
        size = msg.size
        return self._measure(msg)[0] if size is None else size

    def _measure(self, msg: Message) -> tuple[int, int]:
        """Both sizes of a message whose name lacks one: counted from the file, where the
        name says nothing (a name may carry `,W=` without `,S=`: what it says is kept, so a
        size never changes between two calls)."""
        try:
            with self.open_message(msg.uid) as f:
                size, vsize = vsize_of_file(f)
        except OSError as exc:
            raise self._read_failed(msg.uid, exc) from None
        named_size, named_vsize = sizes_of(msg.base)
        sizes = (
            size if named_size is None else named_size,
            vsize if named_vsize is None else named_vsize,
        )
        msg._sizes = sizes
        return sizes

    def internaldate(self, msg: Message) -> float:
        """The file's mtime: set at delivery/APPEND and never changed after (RFC 3501 2.3.3)."""
        for _ in range(3):
            if msg._internaldate is not None:
                return msg._internaldate
            try:
                with self.lock:
                    msg._internaldate = self._dir.lstat(msg.subdir, msg.name).st_mtime
            except FileNotFoundError:
                self.sync()
                msg = self.get(msg.uid)
            except UnsafePath:
                raise MessageUnreadable(msg.uid, "its directory is a symlink") from None
            except OSError as exc:
                raise self._read_failed(msg.uid, exc) from None
        raise NotFound(f"message {msg.uid} keeps moving")

    def save_date(self, msg: Message) -> float:
        """The save date of IMAP SAVEDATE (RFC 8514): the file's ctime, which is what Dovecot
        2.3 answers for a Maildir message its index has no save date for
        (maildir-mail.c `maildir_mail_get_save_date`), so both agree on the same files. A
        rename (a flag change) moves the ctime: not cached."""
        try:
            st = os.stat(os.path.join(self.path, msg.subdir, msg.name))
        except FileNotFoundError:
            self.sync()
            msg = self.get(msg.uid)
            st = os.stat(os.path.join(self.path, msg.subdir, msg.name))
        return st.st_ctime

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

    def store_flags(
        self, uids: Iterable[int], mode: str, flags: Iterable[str], origin: object = None
    ) -> list[int]:
        """Change flags; mode is "set", "add" or "remove". Returns the UIDs that changed.
        `origin`: who asks (a session's view), told back with the change (see SyncResult)."""
        return self.change_flags(uids, mode, flags, origin)[0]

    def change_flags(
        self,
        uids: Iterable[int],
        mode: str,
        flags: Iterable[str],
        origin: object = None,
        exact: bool = False,
    ) -> tuple[list[int], list[int]]:
        """store_flags, answering (the UIDs changed, the UIDs lost). With `exact`, a message
        whose file another process renamed since the last sync is left as it is and lost
        (STORE UNCHANGEDSINCE, RFC 7162 3.1.3: its flags changed after the check); without,
        the change is made again on its new name."""
        with self.lock:
            self._ensure_loaded()
            flags = list(flags)
            remove = mode == "remove"
            letters = self._existing_letters(flags) if remove else self.letters_for(flags)
            changed: list[int] = []
            lost: list[int] = []
            with self._dir.hold():
                for uid in uids:
                    done = self._change_letters(uid, mode, letters, exact)
                    if done is True:
                        changed.append(uid)
                    elif done is None:
                        lost.append(uid)
            if changed and self.hooks is not None:
                result = SyncResult(origin)
                result.changed = changed
                self.hooks.synced(result, False)
            return changed, lost

    def _existing_letters(self, flags: list[str]) -> str:
        out = []
        for flag in flags:
            ch = FLAG_TO_CHAR.get(_canonical_system(flag))
            if ch is None and not flag.startswith("\\"):
                ch = self._keywords.letter_for(flag)
            if ch is not None:
                out.append(ch)
        return "".join(out)

    def _change_letters(self, uid: int, mode: str, letters: str, exact: bool) -> bool | None:
        """True: changed; False: nothing to change (or gone); None: lost (see change_flags)."""
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
            try:
                self._dir.rename(msg.subdir, msg.name, "cur", name)
            except FileNotFoundError:
                self.sync()
                if exact:
                    return None
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
        moved: list[int] = []
        with self.lock, self._dir.hold():
            for uid in uids:
                msg = self._peek(uid)
                if msg is None or msg.subdir != "new":
                    continue
                name = join_name(msg.base, msg.letters)
                try:
                    self._dir.rename("new", msg.name, "cur", name)
                except FileNotFoundError:
                    continue
                except UnsafePath:
                    # cur/ (or new/) is a symlink: nothing moves there, and the messages stay
                    # in new/, readable. Not worth failing the SELECT that asked for this.
                    self._warn_once("symlink-refused", self._dir.where("cur"))
                    return moved
                except OSError as exc:
                    raise TemporaryFailure(f"cannot move message {uid}: {exc.strerror}") from exc
                self._moved(msg, "cur", name)
                moved.append(uid)
        return moved

    # -- expunge --------------------------------------------------------------------------

    def expunge(self, uids: Iterable[int], origin: object = None) -> list[int]:
        """Delete messages. Returns the UIDs removed (already gone ones are skipped).

        A message is removed with every file of its base: a twin left in new/ (a copy, a
        restore) would otherwise bring it back at the next sync under the same UID. A twin
        not listed yet is found under the name a delivery gives it (the bare base): one more
        unlink() per message, mostly failing with ENOENT."""
        with self.lock:
            return self._expunge(uids, origin)

    def _expunge(self, uids: Iterable[int], origin: object) -> list[int]:
        self._ensure_loaded()
        removed = []
        result = SyncResult(origin)
        with self._dir.hold():
            for uid in uids:
                for _ in range(3):
                    msg = self._peek(uid)
                    if msg is None:
                        break
                    try:
                        self._dir.unlink(msg.subdir, msg.name)
                    except FileNotFoundError:
                        self.sync()
                        continue
                    except OSError as exc:
                        raise TemporaryFailure(f"cannot expunge {uid}: {exc.strerror}") from exc
                    other = "new" if msg.subdir == "cur" else "cur"
                    twin = self._dirs[other].listing.pop(msg.base, None)
                    if twin is None and other == "new":
                        twin = msg.base
                    if twin is not None:
                        try:
                            self._dir.unlink(other, twin)
                        except FileNotFoundError:
                            pass
                        except OSError as exc:
                            self._dirs[other].listing[msg.base] = twin
                            raise TemporaryFailure(f"cannot expunge {uid}: {exc.strerror}") from exc
                    self._dirs[msg.subdir].listing.pop(msg.base, None)
                    del self._uid_of[msg.base]
                    del self._base_of[uid]
                    result.ghosts[uid] = self._cache.pop(uid)
                    self._sorted = None
                    removed.append(uid)
                    break
        if removed:
            if self.hooks is not None:
                result.removed = sorted(removed)
                self.hooks.synced(result, False)
            self._maybe_rewrite()
        return removed

    # -- adding messages (adding.py) -----------------------------------------------------

    def append(
        self,
        source: bytes | BinaryIO,
        flags: Iterable[str] = (),
        internaldate: float | None = None,
    ) -> int:
        """Store a message durably and give it a UID (the next sync shows it as added)."""
        return adding.append(self, source, flags, internaldate)

    def append_many(
        self, messages: Iterable[tuple[bytes | BinaryIO, Iterable[str], float | None]]
    ) -> list[int]:
        """Store several messages all or nothing (IMAP MULTIAPPEND, RFC 3502): see
        `adding.append_many`. `messages` are (source, flags, internaldate) as `append` takes
        them; returns their UIDs."""
        return adding.append_many(self, messages)

    def copy_to(self, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
        """Copy messages with their flags; returns (source UID, destination UID) pairs.

        Hard links where possible (as Dovecot's maildir_copy_with_hardlinks), a byte copy
        otherwise. Keyword letters are translated to the destination's keyword file.
        """
        return adding.copy(self, uids, dest)


class _Reading:
    """Mailbox.reading(): the folder's descriptors held, the lock only while counting."""

    __slots__ = ("box", "hold")

    def __init__(self, box: Mailbox) -> None:
        self.box = box
        self.hold = box._dir.hold()

    def __enter__(self) -> None:
        with self.box.lock:
            self.hold.__enter__()

    def __exit__(self, *exc: object) -> None:
        with self.box.lock:
            self.hold.__exit__()


HEADER_READ = 8192
HEADER_MAX = 1 << 20
HEADER_CACHE = 5_000  # messages per open mailbox: a few KiB each in practice


def _same_directory(path: str, st: os.stat_result) -> bool:
    """Whether `path` (followed) is still the directory `st` was taken of."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _letters(name: str) -> str:
    i = name.find(":2,")
    return name[i + 3 :] if i >= 0 else ""


def _canonical_system(flag: str) -> str:
    # System flags are case-insensitive (RFC 3501 section 2.3.2).
    return "\\" + flag[1:].capitalize() if flag.startswith("\\") else flag
