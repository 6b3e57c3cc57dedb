"""The folder index: modification sequences, the expunge log and cached header fields.

Why and what (the design note)
==============================
CONDSTORE and QRESYNC (RFC 7162) need what a Maildir does not keep: a modification sequence
(modseq) per message, raised at every change of its flags, and the UIDs expunged since a given
modseq. Dovecot keeps them in its `dovecot.index*` files; we keep ours in one SQLite file per
folder, `mra.index` (WAL mode: `mra.index-wal`, `mra.index-shm` beside it), which Dovecot
ignores. It holds, per UID, the modseq and the flag letters that modseq is for; the expunge
log `gone` (UID, modseq); and, filled on demand, the header fields SEARCH compares (`hdr`,
mra/imap/searchindex.py) and the fields SORT, THREAD and PREVIEW need (`sortf`,
mra/imap/indexsource.py), both opaque octets here. UIDs are the uidlist's, always: the index
never gives one.

The truth stays on disk. Whoever changes the Maildir (this server's sessions, another worker,
Dovecot, mutt, `mda`, which never opens the index) changes files; every server process that
syncs the folder compares what it sees with what the index recorded and records the
difference with a new modseq (`record`). A change is recorded once: a process that finds the
index already holding the letters it sees takes the modseq recorded there. So the index can
be deleted at any time and is rebuilt from the Maildir at the next open, losing only time.

Modseqs are time-based: a new one is max(highest + 1, the clock in microseconds). Hence the
invariant that a client never misses a change: after the index was deleted, the rebuild starts
above every modseq handed out before (they were all at most the clock of their day, plus a few
per microsecond), so every message gets a modseq above any HIGHESTMODSEQ a client holds and a
CHANGEDSINCE from it returns everything; the expunge log starts empty with `floor` at the
rebuild's modseq, and a QRESYNC from below `floor` gets every UID of its range that is not in
the folder (RFC 7162 3.2.10 allows naming UIDs the client never knew). The one case this cannot
cover is a clock set back by more than the age of the deleted index.

What a session may be told
--------------------------
A process's view of the folder (its listings) may be behind what another process has recorded:
the other one renamed a file and recorded it, our next sync has not seen the rename yet. The
modseq this process reports as HIGHESTMODSEQ (`highest`) is therefore never above a change it
has not applied: after each sync, the records made since the last look (`_catch_up`) are
compared with what we see, and `highest` stops below the first that disagrees (the next sync
looks again). The modseq of each visible message is kept in memory (`modseq_of`), in step with
the letters the sessions show, so FETCH MODSEQ never reports a modseq for flags not yet shown;
queries that need the whole folder (CHANGEDSINCE, SEARCH MODSEQ) find candidates in SQLite and
keep those whose in-memory modseq agrees.

Writers and locks
-----------------
Every write is one transaction begun with BEGIN IMMEDIATE, which takes SQLite's write lock at
once (several worker processes write); a busy lock is waited for (`BUSY_TIMEOUT`). Within a
process the folder's lock (mailstore/folderstate.py) is held around every use of the
connection. A failure (the disk full, the lock never free) leaves the transaction rolled back
and the index closed for this process (`IndexFailed`): no change is lost by it, because the
change is still on disk and the next process to sync (or this one, at its next open) records
it with a new modseq. A file SQLite cannot read (`sqlite3.DatabaseError`: damaged, or not a
database) is deleted and rebuilt.

Safety (SECURITY.md 4)
----------------------
Beside the folder, the index lives in a directory the user may be able to write. The files are
reached through the folder's descriptor: a symlink, a hard link or a file owned by someone else
in their place is removed (unlinkat: the link, never its target) before the open; the database
file is created here with O_NOFOLLOW and opened by SQLite without the right to create it; after
the open, the file SQLite has is checked to be that one (SQLite itself refuses a symlinked
`-wal` or `-shm`). Every value read back is checked (UIDs, modseqs, letters, sizes): a value out
of range is a damaged index, deleted and rebuilt. Nothing in the index names a path.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time

from mailstore import log
from mailstore.folderdir import adopt
from mailstore.uidlist import MAX_UID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mailstore.mailbox import Mailbox, SyncResult

NAME = "mra.index"
SUFFIXES = ("", "-wal", "-shm")
SCHEMA = 2  # 2: msg.sortf
BUSY_TIMEOUT = 5.0  # seconds a writer waits for another process's transaction
MODSEQ_MAX = 2**63 - 2**40  # RFC 7162 mod-sequence-value is < 2^63; room to count on
FUTURE = 2**52  # a highest modseq this far past the clock (142 years) is not ours
LETTERS_MAX = 64  # flag letters of one message: 26 keywords, the system flags, a few more
DEFAULT_EXPUNGE_LOG = 100_000

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS msg (
    uid INTEGER PRIMARY KEY,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    hdr BLOB,
    sortf BLOB
);
CREATE INDEX IF NOT EXISTS msg_modseq ON msg (modseq);
CREATE TABLE IF NOT EXISTS gone (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS gone_modseq ON gone (modseq);
"""


class IndexFailed(Exception):
    """The index cannot be used by this process now (logged); the folder works without it."""


class _Damaged(Exception):
    """A value in the index that this code never writes: the file is rebuilt."""


def clock_modseq() -> int:
    """The clock in microseconds: the least modseq a change made now may get."""
    return time.time_ns() // 1000


def _valid_uid(value: object) -> bool:
    return type(value) is int and 0 < value <= MAX_UID


def _valid_modseq(value: object) -> bool:
    return type(value) is int and 0 < value < MODSEQ_MAX


def _valid_letters(value: object) -> bool:
    return type(value) is str and len(value) <= LETTERS_MAX and value.isascii()


class FolderIndex:
    """One folder's index, opened by one server process. Not thread-safe: the folder's lock
    is held around every call (folderstate.py)."""

    def __init__(self, conn: sqlite3.Connection, where: str, expunge_log: int) -> None:
        self._conn = conn
        self.where = where  # the database file, for log lines
        self.expunge_log = expunge_log
        self._depth = 0  # nested transactions: one BEGIN, one COMMIT
        self._next: int | None = None  # the modseq of the transaction under way, once made
        self._handled: set[int] = set()
        # What this process has applied (see the design note).
        self.modseq_of: dict[int, int] = {}
        self.highest = 0
        self.floor = 0
        self.uidvalidity = 0
        self._seen = 0
        self.loaded = False
        self.damaged = False  # the last failure was the file's, not a busy lock's

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: str, dir_fd: int, owner: int, expunge_log: int = DEFAULT_EXPUNGE_LOG
    ) -> FolderIndex:
        """The index in `directory` (reached through `dir_fd`, which the caller opened without
        following a symlink), made if missing, rebuilt if damaged. `owner`: the uid its files
        may belong to besides ours. Raises IndexFailed."""
        for attempt in range(2):
            try:
                conn = _connect(directory, dir_fd, owner)
            except OSError as exc:
                raise IndexFailed(f"cannot open {directory}/{NAME}: {exc.strerror}") from exc
            try:
                _prepare(conn)
                return cls(conn, os.path.join(directory, NAME), expunge_log)
            except sqlite3.DatabaseError as exc:
                conn.close()
                if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                    raise IndexFailed(f"{directory}/{NAME}: {exc}") from exc
                log.warn("index-damaged", path=os.path.join(directory, NAME), error=str(exc))
                remove_files(dir_fd)
                if attempt:
                    raise IndexFailed(f"cannot make {directory}/{NAME}: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()

    # -- recording changes (the folder's lock held) -------------------------------------------

    def record(self, box: Mailbox, result: SyncResult, first: bool) -> None:
        """Record what a sync found (or a change of ours), give `result` the modseqs of its
        added and changed UIDs and the folder's HIGHESTMODSEQ. Raises IndexFailed."""
        try:
            with self.transaction():
                if first or not self.loaded or result.uidvalidity_changed:
                    self._load(box)
                else:
                    self._apply(box, result)
                self._catch_up(box)
        except _Damaged as exc:
            raise self._failed(f"damaged: {exc}", damaged=True) from None
        except sqlite3.DatabaseError as exc:
            busy = isinstance(exc, sqlite3.OperationalError) and _busy(exc)
            raise self._failed(str(exc), damaged=not busy) from None
        mem = self.modseq_of
        for uid in result.added:
            if uid in mem:
                result.modseqs[uid] = mem[uid]
        for uid in result.changed:
            if uid in mem:
                result.modseqs[uid] = mem[uid]
        result.highest = self.highest

    def transaction(self) -> _Transaction:
        """`with index.transaction():` one write transaction, however deeply nested (a STORE
        UNCHANGEDSINCE holds one around its check and its renames: commands/store.py)."""
        return _Transaction(self)

    def _failed(self, why: str, damaged: bool) -> IndexFailed:
        log.warn("index-failed", path=self.where, error=why)
        self.damaged = damaged
        return IndexFailed(why)

    def _modseq(self) -> int:
        """The modseq of this transaction's changes: above everything recorded, and not
        below the clock (see the design note)."""
        if self._next is None:
            self._next = max(self._meta("highest") + 1, clock_modseq())
            if self._next >= MODSEQ_MAX:
                raise _Damaged(f"modseq {self._next} out of range")
        return self._next

    def _meta(self, key: str) -> int:
        row = self._conn.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        if row is None:
            return 0
        value = row[0]
        if type(value) is not int or not 0 <= value < MODSEQ_MAX:
            raise _Damaged(f"meta {key} = {value!r}")
        return value

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def _load(self, box: Mailbox) -> None:
        """The first look (or after a new UIDVALIDITY): every message compared."""
        conn = self._conn
        uidvalidity = box.uidvalidity
        highest = self._meta("highest")
        if highest > clock_modseq() + FUTURE:
            raise _Damaged(f"highest modseq {highest} is far in the future")
        if self._meta("uidvalidity") != uidvalidity or self._meta("schema") != SCHEMA:
            # A new folder, a new UIDVALIDITY, or a fresh file: everything is new, and
            # nothing older can be told of expunges (`floor`).
            conn.execute("DELETE FROM msg")
            conn.execute("DELETE FROM gone")
            self._set_meta("schema", SCHEMA)
            self._set_meta("uidvalidity", uidvalidity)
            self._set_meta("floor", self._modseq())
        letters = box.all_letters()
        next_uid = box.next_uid
        mem: dict[int, int] = {}
        updates: list[tuple[int, str, int]] = []
        gone: list[int] = []
        for uid, modseq, flags in conn.execute("SELECT uid, modseq, flags FROM msg"):
            if not (_valid_uid(uid) and _valid_modseq(modseq) and _valid_letters(flags)):
                raise _Damaged(f"row {uid!r} {modseq!r} {flags!r}")
            now = letters.pop(uid, None)
            if now is None:
                if uid < next_uid:
                    gone.append(uid)  # else given by another process, not seen here yet
            elif now != flags:
                updates.append((self._modseq(), now, uid))
                mem[uid] = self._modseq()
            else:
                mem[uid] = modseq
        if updates:
            conn.executemany("UPDATE msg SET modseq = ?, flags = ? WHERE uid = ?", updates)
        if letters:
            n = self._modseq()
            conn.executemany(
                _UPSERT,
                [(uid, n, now) for uid, now in letters.items()],
            )
            conn.executemany("DELETE FROM gone WHERE uid = ?", [(u,) for u in letters])
            for uid in letters:
                mem[uid] = n
        if gone:
            self._log_gone(gone)
        self.modseq_of = mem
        self.uidvalidity = uidvalidity
        self._seen = self._meta("highest") if self._next is None else self._next
        self.loaded = True

    def _apply(self, box: Mailbox, result: SyncResult) -> None:
        conn = self._conn
        mem = self.modseq_of
        touched = result.added + result.changed
        for uid in touched:
            now = box.letters_of(uid)
            if now is None:
                continue  # gone again: the sync that saw it go records that
            row = conn.execute("SELECT modseq, flags FROM msg WHERE uid = ?", (uid,)).fetchone()
            if row is not None and row[1] == now:
                if not _valid_modseq(row[0]):
                    raise _Damaged(f"modseq {row[0]!r} of {uid}")
                mem[uid] = row[0]  # another process recorded this very change
            else:
                n = self._modseq()
                conn.execute(
                    _UPSERT,
                    (uid, n, now),
                )
                mem[uid] = n
            self._handled.add(uid)
        if result.added:
            # A UID that an earlier look missed (a file renamed while it was listed) and
            # logged as expunged is back: it must never be reported as vanished.
            conn.executemany("DELETE FROM gone WHERE uid = ?", [(u,) for u in result.added])
        if result.removed:
            gone = []
            for uid in result.removed:
                mem.pop(uid, None)
                self._handled.add(uid)
                if conn.execute("DELETE FROM msg WHERE uid = ?", (uid,)).rowcount:
                    gone.append(uid)
                elif conn.execute("SELECT 1 FROM gone WHERE uid = ?", (uid,)).fetchone() is None:
                    gone.append(uid)  # never recorded here: logged now
            if gone:
                self._log_gone(gone)

    def _log_gone(self, uids: list[int]) -> None:
        conn = self._conn
        n = self._modseq()
        conn.executemany(
            "INSERT OR REPLACE INTO gone (uid, modseq) VALUES (?, ?)", [(u, n) for u in uids]
        )
        conn.executemany("DELETE FROM msg WHERE uid = ?", [(u,) for u in uids])
        (count,) = conn.execute("SELECT count(*) FROM gone").fetchone()
        if count > self.expunge_log:
            # The oldest expunges are forgotten; a client whose modseq is older than them
            # gets every UID of its range that is not in the folder (see `vanished`).
            keep = self.expunge_log // 2
            row = conn.execute(
                "SELECT modseq FROM gone ORDER BY modseq DESC LIMIT 1 OFFSET ?", (keep,)
            ).fetchone()
            if row is not None:
                cut = row[0]
                conn.execute("DELETE FROM gone WHERE modseq <= ?", (cut,))
                self._set_meta("floor", max(cut, self._meta("floor")))

    def _catch_up(self, box: Mailbox) -> None:
        """Compare what others recorded since our last look with what we see (see the design
        note); `highest` stops below the first record we have not applied."""
        conn = self._conn
        mem = self.modseq_of
        if self._next is not None:
            self._set_meta("highest", self._next)
        top = self._meta("highest")
        lag: int | None = None
        handled = self._handled
        for uid, modseq, flags in conn.execute(
            "SELECT uid, modseq, flags FROM msg WHERE modseq > ?", (self._seen,)
        ):
            if not (_valid_uid(uid) and _valid_modseq(modseq) and _valid_letters(flags)):
                raise _Damaged(f"row {uid!r} {modseq!r} {flags!r}")
            if uid in handled:
                continue
            if box.letters_of(uid) == flags:
                mem[uid] = modseq
            else:
                # Not what we see (our listing is behind), or a message we do not see yet.
                lag = modseq if lag is None else min(lag, modseq)
        for uid, modseq in conn.execute(
            "SELECT uid, modseq FROM gone WHERE modseq > ?", (self._seen,)
        ):
            if not (_valid_uid(uid) and _valid_modseq(modseq)):
                raise _Damaged(f"gone {uid!r} {modseq!r}")
            if uid not in handled and uid in mem:
                lag = modseq if lag is None else min(lag, modseq)
        self.floor = self._meta("floor")
        if lag is None:
            self.highest = top
        else:
            self.highest = max(self.highest, min(top, lag - 1))
            box.suspect()  # list the directories again at the next sync
        self._seen = self.highest

    # -- questions (the folder's lock held) -----------------------------------------------------

    def changed_since(self, modseq: int) -> list[int]:
        """The UIDs whose modseq (as this process has applied it) is above `modseq`,
        ascending. Raises IndexFailed."""
        mem = self.modseq_of
        try:
            # Sorted here, not by ORDER BY uid: with it SQLite walks the whole table in UID
            # order instead of the few rows of the modseq index (100,000 rows: 11 ms, not 0.1).
            rows = self._conn.execute("SELECT uid FROM msg WHERE modseq > ?", (modseq,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(str(exc), damaged=False) from None
        return sorted(uid for (uid,) in rows if mem.get(uid, 0) > modseq)

    def vanished(self, modseq: int) -> list[int] | None:
        """The UIDs expunged after `modseq`, ascending; None when the log does not go back
        that far (the caller then names every UID of the range not in the folder)."""
        if modseq < self.floor:
            return None
        try:
            rows = self._conn.execute("SELECT uid FROM gone WHERE modseq > ?", (modseq,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(str(exc), damaged=False) from None
        return sorted(uid for (uid,) in rows if _valid_uid(uid))

    # -- cached header fields ---------------------------------------------------------------

    def cached(self, uids: Iterable[int]) -> dict[int, bytes]:
        """The cached header fields (`hdr`) of these UIDs, where there are some."""
        return self._blobs("hdr", uids, HDR_MAX)

    def cache(self, blobs: dict[int, bytes]) -> None:
        """Keep header fields computed from the messages (no modseq changes: they are not
        state a client sees change)."""
        self._keep_blobs("hdr", blobs, HDR_MAX)

    def sort_fields(self, uids: Iterable[int]) -> dict[int, bytes]:
        """The encoded SORT/THREAD/PREVIEW fields (`sortf`, mra/imap/indexsource.py) of these
        UIDs, where there are some."""
        return self._blobs("sortf", uids, SORTF_MAX)

    def keep_sort_fields(self, blobs: dict[int, bytes]) -> None:
        self._keep_blobs("sortf", blobs, SORTF_MAX)

    def _blobs(self, column: str, uids: Iterable[int], most: int) -> dict[int, bytes]:
        """A column of blobs (a name of ours, never a client's) for these UIDs; a value that
        is not octets or is over `most` is left out (it is computed again)."""
        out: dict[int, bytes] = {}
        wanted = list(uids)
        try:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for uid, blob in self._conn.execute(
                    f"SELECT uid, {column} FROM msg WHERE {column} IS NOT NULL"
                    f" AND uid IN ({marks})",
                    chunk,
                ):
                    if type(blob) is bytes and len(blob) <= most:
                        out[uid] = blob
        except sqlite3.Error as exc:
            raise self._failed(str(exc), damaged=False) from None
        return out

    def _keep_blobs(self, column: str, blobs: dict[int, bytes], most: int) -> None:
        if not blobs:
            return
        try:
            with self.transaction():
                self._conn.executemany(
                    f"UPDATE msg SET {column} = ? WHERE uid = ?",
                    [(blob, uid) for uid, blob in blobs.items() if len(blob) <= most],
                )
        except sqlite3.Error as exc:
            raise self._failed(str(exc), damaged=False) from None

    def size_on_disk(self, dir_fd: int) -> int:
        """Octets of the index files (the database and its WAL), for the benchmark."""
        total = 0
        for suffix in SUFFIXES[:2]:
            try:
                total += os.stat(NAME + suffix, dir_fd=dir_fd, follow_symlinks=False).st_size
            except OSError:
                pass
        return total


HDR_MAX = 64 * 1024  # octets of cached header fields kept for one message
SORTF_MAX = 64 * 1024  # octets of one message's SORT/THREAD fields (mra/imap/indexsource.py)
# A message's modseq and flags, its kept fields left as they are (INSERT OR REPLACE would
# delete the row, and its kept fields with it, at every flag change).
_UPSERT = (
    "INSERT INTO msg (uid, modseq, flags) VALUES (?, ?, ?)"
    " ON CONFLICT (uid) DO UPDATE SET modseq = excluded.modseq, flags = excluded.flags"
)


class _Transaction:
    __slots__ = ("index",)

    def __init__(self, index: FolderIndex) -> None:
        self.index = index

    def __enter__(self) -> None:
        index = self.index
        if index._depth == 0:
            index._conn.execute("BEGIN IMMEDIATE")
            index._next = None
            index._handled = set()
        index._depth += 1

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        index = self.index
        index._depth -= 1
        if index._depth:
            return
        index._next = None
        index._handled = set()
        if kind is None:
            index._conn.execute("COMMIT")
        else:
            try:
                index._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def remove_files(dir_fd: int) -> None:
    """Delete the index (and its WAL) through the directory's descriptor."""
    for suffix in SUFFIXES:
        try:
            os.unlink(NAME + suffix, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warn("index-not-removed", name=NAME + suffix, error=exc.strerror)


def _check_files(dir_fd: int, owner: int) -> None:
    """Remove what is not a plain file of ours in the index's place: a symlink, a hard link
    (someone else's file linked in), a file of another owner. unlinkat removes the name only."""
    mine = os.geteuid()
    for suffix in SUFFIXES:
        name = NAME + suffix
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid in (mine, owner):
            continue
        log.warn("index-file-refused", name=name, mode=oct(st.st_mode), links=st.st_nlink)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except IsADirectoryError:
            raise OSError(21, "a directory is in the index's place") from None


def _connect(directory: str, dir_fd: int, owner: int) -> sqlite3.Connection:
    """Open the database file that is in `dir_fd` under NAME, and no other (see Safety)."""
    from urllib.parse import quote

    _check_files(dir_fd, owner)
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(NAME, flags | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        fd = os.open(NAME, flags, dir_fd=dir_fd)
    else:
        # As root, a new index is the folder owner's (folderdir.py), and SQLite gives its
        # -wal and -shm the owner of the database file (unixOpen, when running as root).
        try:
            adopt(fd, dir_fd)
        except OSError:
            os.close(fd)
            raise
    try:
        mine = os.fstat(fd)
    finally:
        os.close(fd)
    path = os.path.join(directory, NAME)
    conn = sqlite3.connect(
        f"file:{quote(path)}?mode=rw",
        uri=True,
        timeout=BUSY_TIMEOUT,
        isolation_level=None,
        check_same_thread=False,  # the folder's lock serialises the threads (folderstate.py)
    )
    try:
        files = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
        st = os.stat(files[0]) if files and files[0] else None
        if st is None or (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
            raise OSError(40, "the index file was replaced while it was opened")
    except BaseException:
        conn.close()
        raise
    return conn


def _prepare(conn: sqlite3.Connection) -> None:
    """WAL mode and the tables; raises sqlite3.DatabaseError for a file that is not ours."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise sqlite3.DatabaseError(f"journal mode {mode!r}")
    conn.execute("PRAGMA synchronous=NORMAL")  # the index can be rebuilt: no fsync per commit
    conn.execute("PRAGMA trusted_schema=OFF")  # a planted trigger or view runs nothing
    conn.executescript(_SCHEMA_SQL)
    columns = {row[1]: row[2].upper() for row in conn.execute("PRAGMA table_info(msg)")}
    if columns != {
        "uid": "INTEGER",
        "modseq": "INTEGER",
        "flags": "TEXT",
        "hdr": "BLOB",
        "sortf": "BLOB",
    }:
        raise sqlite3.DatabaseError(f"unexpected columns {sorted(columns)}")
    extra = conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'view')"
    ).fetchall()
    if extra:
        raise sqlite3.DatabaseError(f"unexpected objects {extra[:3]}")
