"""One Maildir folder: its messages, their UIDs and flags, kept in sync with the disk.

`Mailbox` is the face of a folder and holds its state; the work is done by one module per job,
each with the note that explains it:

- syncing.py: bringing the view up to date with new/, cur/ and the dovecot-uidlist (the design
  note on sync, the uidlist lock and why a same-tick mtime is "dirty" is at its top);
- listing.py: the listings of new/ and cur/, by mtime or inotify (dirwatch.py);
- reading.py: message files, headers, sizes and dates;
- changing.py: flags, the move from new/ to cur/, expunge; adding.py: append and copy;
- message.py: the values handed out (Message, SyncResult).

The state is one (a UID's base, its listing entry and its Message change together), so the
modules are functions of the Mailbox, as adding.py always was, rather than objects of their own;
only the listings, which know nothing of UIDs, are an object (`Listings`). Every directory and
file below the mail root is reached through folderdir.py, which never follows a symlink there.
"""

from __future__ import annotations

import bisect
import os

from mailstore import adding, changing, reading, syncing
from mailstore.errors import NotFound
from mailstore.filenames import CHAR_TO_FLAG
from mailstore.folderdir import FolderDir
from mailstore.keywords import NAME as KEYWORDS_NAME
from mailstore.keywords import Keywords
from mailstore.listing import SUBDIRS, Listings
from mailstore.message import Message, SyncResult
from mailstore.uidlist import NAME as UIDLIST_NAME
from mailstore.uidlist import UidList, record_field

__all__ = ["NO_LOCK", "Mailbox", "Message", "SyncResult", "dir_watch"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextlib import AbstractContextManager
    from typing import BinaryIO, Protocol

    from mailstore.dirwatch import DirWatch
    from mailstore.quota import MaildirQuota

    class Hooks(Protocol):
        """What a folder's shared state (mailstore/folderstate.py) is told, the lock held."""

        def synced(self, result: SyncResult, first: bool) -> None:
            """A sync (the first load when `first`) or a change of our own, in `result`."""


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
        watch = dir_watch
        self._listings = Listings(
            self._dir, path, name, watch if watch is not None and watch.usable else None
        )
        self._warn_once = self._listings.warn_once
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
            loc = None if base is None else self._listings.locate(base)
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
            for sub in SUBDIRS:  # new/ first: a base in both is cur/'s (Listings.locate)
                for base, name in self._listings.dirs[sub].listing.items():
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
        self._listings.suspect()

    def recent_uids(self) -> list[int]:
        """The visible messages still in new/ (maildir(5): no reader has looked at them),
        ascending: from new/'s listing, which is short, not by asking every message."""
        with self.lock:
            self._ensure_loaded()
            uid_of = self._uid_of
            dirs = self._listings.dirs
            cur = dirs["cur"].listing
            found = [
                uid
                for base in dirs["new"].listing
                if (uid := uid_of.get(base)) is not None and base not in cur
            ]
        found.sort()
        return found

    def has_new(self) -> bool:
        """Whether new/ listed anything at the last sync (messages no reader has claimed)."""
        return bool(self._listings.dirs["new"].listing)

    def first_unseen_uid(self, start: int = 0) -> int | None:
        """The lowest UID without \\Seen (SELECT's UNSEEN), looked for in UID order from
        `start`: the caller knows every message below it has \\Seen (folderstate.py keeps
        that mark, so a SELECT after a change does not walk a big folder again)."""
        with self.lock:
            return next(self._unseen_from(start), None)

    def unseen_count(self, start: int = 0) -> int:
        """How many messages lack \\Seen (STATUS UNSEEN), every one below `start` known to
        have it; from the listings' names, without a Message per message."""
        with self.lock:
            return sum(1 for _ in self._unseen_from(start))

    def _unseen_from(self, start: int) -> Iterator[int]:
        """The UIDs without \\Seen from `start` up, ascending (the lock held while it runs)."""
        self._ensure_loaded()
        ordered = self.uids()
        base_of = self._base_of
        cur = self._listings.dirs["cur"].listing
        new = self._listings.dirs["new"].listing
        for i in range(bisect.bisect_left(ordered, start), len(ordered)):
            uid = ordered[i]
            base = base_of[uid]
            name = cur.get(base)  # a base in both is cur/'s (Listings.locate)
            if name is None:
                name = new.get(base)
                if name is None:
                    continue
            j = name.find(":2,")
            if j < 0 or "S" not in name[j + 3 :]:
                yield uid

    def _peek(self, uid: int) -> Message | None:
        try:
            return self.get(uid)
        except NotFound:
            return None

    def uid_of_base(self, base: str) -> int | None:
        """The UID the message with this base name has now, None when it is not visible."""
        self._ensure_loaded()
        return self._uid_of.get(base)

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

    # -- sync (syncing.py, listing.py) -----------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.sync()

    def sync(self) -> SyncResult:
        """Bring the view up to date with the disk; what changed since the last sync."""
        with self.lock:
            return syncing.sync(self)

    # For adding.py, which delivers under the uidlist lock (listings current, lock held).
    def _scan_dirs(self, force: bool) -> None:
        self._listings.scan(force)

    def _renumber(self, entries: list[tuple[str, str]]) -> None:
        syncing.renumber(self, entries)

    def _write_new_uidlist(self) -> None:
        syncing.write_new_uidlist(self)

    # -- reading messages (reading.py) -----------------------------------------------------
    # Every failure to open or read one file is MessageUnreadable for that message alone (see
    # messagefile.py); NotFound means the message is gone (expunged meanwhile).

    def reading(self) -> reading.Reading:
        """`with box.reading():` keeps `cur/` and `new/` open for a series of reads (FETCH of
        many bodies): each read then opens only its file, about 4 us less per message here.
        They are closed at the end of the block (see folderdir.py for why not longer). The
        lock is held only to count the block in and out, not between the reads."""
        return reading.Reading(self)

    def open_message(self, uid: int) -> BinaryIO:
        """The file of a message, opened for reading (bytes as stored: LF or CRLF)."""
        fd, _ = reading.open_fd(self, uid)
        return os.fdopen(fd, "rb")

    def open_stored(self, msg: Message) -> BinaryIO:
        """The file of `msg`, found by its base name whatever UID it has now: a session that
        keeps Message objects (POP3's snapshot) can never be handed another message after the
        folder was renumbered under it. NotFound once it is expunged."""
        fd, _ = reading.open_fd(self, msg.uid, msg.base)
        return os.fdopen(fd, "rb")

    def check_servable(self, msg: Message) -> None:
        """Raise MessageUnreadable when `msg`'s file would be refused or cannot be read, by
        one lstat() and without opening it: what POP3 asks of every message at login, so
        that such a message is left out instead of failing its RETR (use inside `reading()`
        for many). A file that passes may still fail at its open (an ACL, an I/O error)."""
        reading.check_servable(self, msg)

    def read_message(self, uid: int) -> bytes:
        """The whole file of a message (bytes as stored)."""
        return reading.read_message(self, uid)

    def read_header(self, uid: int) -> bytes:
        """The header block (up to and with its blank line), cached: a message file never
        changes, so a SEARCH of header fields after a FETCH reads no file (as Dovecot's cache)."""
        return reading.read_header(self, uid)

    def message_vsize(self, msg: Message) -> int:
        """CRLF size, from `,W=` or computed once from the file."""
        vsize = msg.vsize
        return reading.measure(self, msg)[1] if vsize is None else vsize

    def message_size(self, msg: Message) -> int:
        """Bytes on disk, from `,S=` or computed once from the file."""
        size = msg.size
        return reading.measure(self, msg)[0] if size is None else size

    def internaldate(self, msg: Message) -> float:
        """The file's mtime: set at delivery/APPEND and never changed after (RFC 3501 2.3.3)."""
        return reading.internaldate(self, msg)

    def save_date(self, msg: Message) -> float:
        """The save date of IMAP SAVEDATE (RFC 8514): the file's ctime, which is what Dovecot
        2.3 answers for a Maildir message its index has no save date for
        (maildir-mail.c `maildir_mail_get_save_date`), so both agree on the same files. A
        rename (a flag change) moves the ctime: not cached."""
        return reading.save_date(self, msg)

    # -- changing flags, expunge (changing.py) ---------------------------------------------

    def letters_for(self, flags: Iterable[str]) -> str:
        """Maildir letters for IMAP flags (system flags and keywords; keywords get letters)."""
        return changing.letters_for(self, flags)

    def store_flags(
        self, uids: Iterable[int], mode: str, flags: Iterable[str], origin: object = None
    ) -> list[int]:
        """Change flags; mode is "set", "add" or "remove". Returns the UIDs that changed.
        `origin`: who asks (a session's view), told back with the change (see SyncResult)."""
        return changing.change_flags(self, uids, mode, flags, origin, False)[0]

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
        return changing.change_flags(self, uids, mode, flags, origin, exact)

    def mark_seen_by_reader(self, uids: Iterable[int]) -> list[int]:
        """Move messages from new/ to cur/ (no flag change): a reader has seen them arrive.

        Returns the UIDs this call moved. The rename succeeds for one caller only, so when
        sessions race for a new message, exactly one of them gets it (IMAP's \\Recent)."""
        return changing.mark_seen_by_reader(self, uids)

    def expunge(self, uids: Iterable[int], origin: object = None) -> list[int]:
        """Delete messages. Returns the UIDs removed (already gone ones are skipped).

        A message is removed with every file of its base: a twin left in new/ (a copy, a
        restore) would otherwise bring it back at the next sync under the same UID. A twin
        not listed yet is found under the name a delivery gives it (the bare base): one more
        unlink() per message, mostly failing with ENOENT."""
        with self.lock:
            return changing.expunge(self, uids, origin)

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
