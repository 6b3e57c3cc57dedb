"""`dovecot-uidlist`: the UID <-> file name map of one Maildir folder.

Format (Dovecot's maildir-uidlist.c, version 3, what Dovecot 1.1+ writes):

    3 V<uidvalidity> N<nextuid> G<mailbox guid hex> [other <key><value> fields, kept]
    <uid> [<key><value> ...] :<file name>

Version 1 (Dovecot 1.0, and Courier's `courierimapuiddb`, which is the same format) is read too:

    1 <uidvalidity> <nextuid>
    <uid> <file name>

so that UIDs survive a migration; we always write version 3. Records are in ascending UID order.
A message is matched by its base name (the file name up to `:`), since the flags part changes.

How writers cooperate (see lock.py): every writer holds `dovecot-uidlist.lock`; new UIDs are
*appended* as whole lines with one write() (the hot path: a delivery costs one short append), and
the header's N is not rewritten then, exactly as Dovecot does; so the next UID is the larger of N
and the highest UID listed plus one. A full rewrite (dropping expunged records) goes through a
temporary file and rename(), so readers, who never lock, see either the old or the new file.
Readers remember the inode and the offset they parsed up to and, when only appends happened, read
just the new bytes.

UIDs are at most MAX_UID (2^32 - 2): RFC 3501's nz-number ends at 2^32 - 1, UIDNEXT must be one
too, and Dovecot never gives 2^32 - 1 (its "no UID"). A record above that is skipped like a
malformed one; when the next UIDs would pass it, `append` raises UidsExhausted and the mailbox
renumbers the folder under a new UIDVALIDITY (`renumber`, see mailbox.py).

A damaged file never stops the mailbox from opening: an unreadable header means the file is
treated as absent (new UIDVALIDITY, logged), a malformed or out-of-order record line is skipped
(logged).
"""

from __future__ import annotations

import os

from mailstore import log
from mailstore.errors import TemporaryFailure

NAME = "dovecot-uidlist"
COURIER_NAME = "courierimapuiddb"
MAX_UID = 2**32 - 2


class UidsExhausted(TemporaryFailure):
    """The next UID would pass MAX_UID: the folder must be renumbered (Mailbox._renumber)."""


def pop3_uidl(uid: int, uidvalidity: int) -> str:
    """A message's POP3 UIDL by Dovecot's default `pop3_uidl_format = %08Xu%08Xv`, unless its
    record has a `P` field. Here because renumbering keeps every message's UIDL (as `P`)."""
    return f"{uid:08x}{uidvalidity:08x}"


# A record is a plain (uid, file name, raw extension fields) tuple: a cold open of a big folder
# builds one per message, and tuples cost a fraction of objects.
TYPE_CHECKING = False
if TYPE_CHECKING:
    Record = tuple[int, str, str]


def record_line(rec: Record) -> str:
    uid, name, ext = rec
    return f"{uid} {ext} :{name}\n" if ext else f"{uid} :{name}\n"


def record_field(rec: Record, key: str) -> str | None:
    """The value of one `<key><value>` extension field (e.g. `W` the CRLF size, `P` UIDL)."""
    for item in rec[2].split():
        if item[:1] == key:
            return item[1:]
    return None


# A long-lived process (the server, see dirwatch.enable) keeps the parse of big uidlists, so
# that the next session opening the folder copies it instead of parsing 100,000 lines again.
# None: nothing is kept (mda, one delivery per process).
remembered: dict[str, _Parsed] | None = None
REMEMBER_MIN = 5_000  # records; a smaller file parses in a few milliseconds
REMEMBER_MAX = 400_000  # records kept in all (about 200 bytes each), oldest dropped first


class _Parsed:
    """A uidlist as parsed up to `offset`, while the file is the same (inode) and not shorter:
    Dovecot and we only ever append to a uidlist or replace it (a new inode)."""

    def __init__(self, ul: UidList, st: os.stat_result) -> None:
        self.dev, self.ino = st.st_dev, st.st_ino
        self.offset = ul._offset
        self.header = (ul.version, ul.uidvalidity, ul.header_next_uid, ul.guid)
        self.header_extra = list(ul.header_extra)
        self.records = dict(ul.records)
        self.max_uid = ul.max_uid

    def same_file(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) == (self.dev, self.ino) and st.st_size >= self.offset

    def restore(self, ul: UidList) -> None:
        ul.version, ul.uidvalidity, ul.header_next_uid, ul.guid = self.header
        ul.header_extra = list(self.header_extra)
        ul.records = dict(self.records)
        ul.max_uid = self.max_uid
        ul._offset = self.offset
        ul.exists = True


class UidList:
    """The parsed state of one uidlist file, kept up to date incrementally."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.exists = False
        self.uidvalidity = 0
        self.header_next_uid = 1
        self.guid = ""
        self.header_extra: list[str] = []
        self.version = 3
        self.records: dict[str, Record] = {}  # base -> record
        self.max_uid = 0
        self._identity: tuple[int, int, int, int] | None = None  # dev, ino, size, mtime_ns
        self._offset = 0  # bytes parsed, always at a line boundary

    @property
    def next_uid(self) -> int:
        return max(self.header_next_uid, self.max_uid + 1)

    # -- reading ---------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Bring the state up to date with the file; True when anything changed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.exists or self._identity is not None:
                self._reset()
                return True
            return False
        except OSError as exc:
            raise TemporaryFailure(f"cannot stat {NAME}: {exc.strerror}") from exc
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if identity == self._identity:
            return False
        old = self._identity
        if old is not None and old[:2] == identity[:2] and st.st_size >= self._offset > 0:
            self._read_appended()
        else:
            self._read_all()
        return True

    def _reset(self) -> None:
        self.__init__(self.path)  # type: ignore[misc]

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise TemporaryFailure(f"cannot read {NAME}: {exc.strerror}") from exc

    def _read_all(self) -> None:
        self._reset()
        fd = self._open()
        if fd < 0:
            return
        try:
            st = os.fstat(fd)
            kept = remembered.get(self.path) if remembered is not None else None
            if kept is not None and kept.same_file(st):
                # Parsed before in this process: that state, and the lines added since.
                kept.restore(self)
                data = _read_fd(fd, self._offset)
            else:
                kept = None
                data = _read_fd(fd, 0)
        finally:
            os.close(fd)
        self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if kept is not None:
            end = data.rfind(b"\n") + 1
            self._parse_records(data[:end].decode("utf-8", "surrogateescape"))
            self._offset += end
            return
        end = data.rfind(b"\n") + 1
        text = data[:end].decode("utf-8", "surrogateescape")
        header, _, body = text.partition("\n")
        if not self._parse_header(header):
            log.warn("uidlist-corrupt-header", path=self.path, header=header[:80])
            self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            self.exists = False
            return
        self.exists = True
        self._parse_records(body)
        self._offset = end
        if remembered is not None and REMEMBER_MIN <= len(self.records) <= REMEMBER_MAX:
            remembered.pop(self.path, None)
            total = sum(len(p.records) for p in remembered.values())
            while remembered and total + len(self.records) > REMEMBER_MAX:
                total -= len(remembered.pop(next(iter(remembered))).records)
            remembered[self.path] = _Parsed(self, st)

    def _read_appended(self) -> None:
        fd = self._open()
        if fd < 0:
            self._reset()
            return
        try:
            st = os.fstat(fd)
            data = _read_fd(fd, self._offset)
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1
        self._parse_records(data[:end].decode("utf-8", "surrogateescape"))
        self._offset += end
        self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _parse_header(self, header: str) -> bool:
        parts = header.split()
        if not parts:
            return False
        if parts[0] == "1" and len(parts) >= 3 and _number(parts[1]) and _number(parts[2]):
            self.version = 1
            self.uidvalidity, self.header_next_uid = int(parts[1]), int(parts[2])
        elif parts[0] == "3":
            self.version = 3
            for field in parts[1:]:
                key, value = field[:1], field[1:]
                if key == "V" and _number(value):
                    self.uidvalidity = int(value)
                elif key == "N" and _number(value):
                    self.header_next_uid = int(value)
                elif key == "G":
                    self.guid = value
                else:
                    self.header_extra.append(field)
        else:
            return False
        return 0 < self.uidvalidity < 2**32 and 0 < self.header_next_uid < 2**32

    def _parse_records(self, text: str) -> None:
        # Written for speed: this runs once per message on a cold open of a big folder.
        records = self.records
        max_uid = self.max_uid
        v1 = self.version == 1
        # One check of the whole text spares a per-name one in the common, clean case.
        clean = text.isascii() and text.replace("\n", "").isprintable()
        for line in text.split("\n"):
            if not line:
                continue
            if v1:
                uid_text, _, name = line.partition(" ")
                ext = ""
            else:
                head, _, name = line.partition(" :")
                uid_text, _, ext = head.partition(" ")
            if (
                not uid_text.isdigit()
                or not (clean or uid_text.isascii())
                or not name
                or " " in name
                or name[0] == "."
                or not (clean or (name.isascii() and name.isprintable()))
            ):
                log.warn("uidlist-bad-line", path=self.path, line=line[:120])
                continue
            uid = int(uid_text)
            if uid <= max_uid or uid > MAX_UID:
                log.warn("uidlist-uid-out-of-order", path=self.path, line=line[:120])
                continue
            max_uid = uid
            base = name.partition(":")[0]
            if base in records:
                # Dovecot keeps the first UID a base got; a later duplicate is corruption.
                log.warn("uidlist-duplicate-file", path=self.path, uid=uid)
                continue
            records[base] = (uid, name, ext)
        self.max_uid = max_uid

    def load_foreign(self, path: str) -> bool:
        """Adopt a version 1 file at `path` (Courier's courierimapuiddb) as our state."""
        other = UidList(path)
        other.refresh()
        if not other.exists:
            return False
        self.uidvalidity = other.uidvalidity
        self.header_next_uid = other.header_next_uid
        self.records = other.records
        self.max_uid = other.max_uid
        self.version = 3
        self.exists = True
        return True

    # -- writing (the caller holds the dot-lock) --------------------------------------------

    def append(self, entries: list[tuple[str, str]]) -> list[int]:
        """Give each (base, name) not yet listed the next UID, appending one line each.

        Bases that got a UID from another writer meanwhile keep it. Returns the UIDs in order.
        """
        self.refresh()
        if not self.exists:
            raise TemporaryFailure(f"{NAME} vanished while locked")
        uids: list[int] = []
        lines: list[str] = []
        next_uid = self.next_uid
        torn = self._identity is not None and self._identity[2] != self._offset
        if torn:
            # A writer died mid-line. Once ended, that line is a record: never reuse its UID.
            next_uid = max(next_uid, self._torn_uid() + 1)
        wanted = sum(1 for base, _name in dict(entries).items() if base not in self.records)
        if next_uid + wanted - 1 > MAX_UID:
            raise UidsExhausted(f"{NAME}: no UIDs left after {next_uid - 1}")
        for base, _name in entries:
            rec = self.records.get(base)
            if rec is None:
                # The base, without flags: what Dovecot writes (flags live in the file name).
                rec = (next_uid, base, "")
                next_uid += 1
                self.records[base] = rec
                lines.append(record_line(rec))
            uids.append(rec[0])
        if lines:
            if torn:
                lines.insert(0, "\n")
            data = "".join(lines).encode("utf-8", "surrogateescape")
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
                try:
                    write_all(fd, data)
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise TemporaryFailure(f"cannot append to {NAME}: {exc.strerror}") from exc
            self.max_uid = next_uid - 1
            self._offset += len(data)
            self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        return uids

    def _torn_uid(self) -> int:
        fd = self._open()
        if fd < 0:
            return 0
        try:
            tail = os.pread(fd, 32, self._offset)
        finally:
            os.close(fd)
        digits = tail.split(b" ", 1)[0]
        return int(digits) if digits.isdigit() and len(digits) < 11 else 0

    def append_after(
        self, entries: list[tuple[str, str]], hint: tuple[int, int]
    ) -> list[int] | None:
        """`append` without reading the whole file: the delivery agent's hot path.

        `hint` is the (inode, size) of the file taken before the entries' files were linked.
        Another process can only have given them UIDs after they were linked, by appending
        after `hint`'s size, so reading from there suffices. What the highest UID is comes
        from what this process remembers of its own last append to the file (`_tails`), when
        the file is the same one (device, inode) and no shorter: then only what was appended
        since (usually nothing: one LMTP connection delivering to one mailbox reads no byte
        of it); otherwise from the header and the last 4 KiB. Returns None when that does
        not hold (file replaced since the hint, damaged tail): the caller then takes the
        full path. Leaves this object unloaded.
        """
        try:
            # Read and append through one descriptor (pread() ignores O_APPEND).
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_ino != hint[0] or st.st_size < hint[1]:
                return None
            kept = _tails.pop(self.path, None)
            if (
                kept is not None
                and (kept[0], kept[1]) == (st.st_dev, st.st_ino)
                and (kept[2] <= st.st_size)
            ):
                seen = _appended_since(fd, min(hint[1], kept[2]), st.st_size)
                if seen is None:
                    return None
                found, last = seen
                next_uid = max(kept[3], last + 1)
            else:
                start = self._start_of_tail(fd, hint[1], st.st_size)
                if start < 0:
                    return None
                seen = _appended_since(fd, start, st.st_size)
                if seen is None:
                    return None
                found, last = seen
                next_uid = max(self.header_next_uid, last + 1)
            if next_uid + len(entries) - 1 > MAX_UID:
                return None  # the full path renumbers
            uids: list[int] = []
            lines: list[str] = []
            for base, _name in entries:
                uid = found.get(base)
                if uid is None:
                    uid = next_uid
                    next_uid += 1
                    lines.append(record_line((uid, base, "")))
                uids.append(uid)
            end = st.st_size
            if lines:
                write_all(fd, "".join(lines).encode("utf-8", "surrogateescape"))
                # Where our lines end (O_APPEND: the end of the file once written): under the
                # lock no one else writes, so the file is as we leave it until the next writer.
                end = os.lseek(fd, 0, os.SEEK_CUR)
            _remember_tail(self.path, (st.st_dev, st.st_ino, end, next_uid))
            return uids
        except OSError as exc:
            raise TemporaryFailure(f"cannot append to {NAME}: {exc.strerror}") from exc
        finally:
            os.close(fd)
            self._reset()

    def _start_of_tail(self, fd: int, hint_size: int, size: int) -> int:
        """Read the header (the next UID it says) and return where to read records from to
        know the highest UID and whatever was appended since `hint_size`: the last 4 KiB, or
        from the hint if that is earlier. -1 when the header is not a version 3 one."""
        head = os.pread(fd, 1024, 0)
        header_end = head.find(b"\n") + 1
        if header_end <= 0:
            return -1
        self._reset()
        ok = self._parse_header(head[: header_end - 1].decode("ascii", "replace"))
        if not ok or self.version != 3:
            self._reset()
            return -1
        return max(header_end, min(hint_size, size - 4096))

    def renumber(self, present: dict[str, str], uidvalidity: int, tmp_dir: str) -> int:
        """Number the files `present` (base -> name) 1, 2, 3... under a new `uidvalidity`:
        those with a record in their old UID order, then the others in name order (delivery
        order). Each message keeps its POP3 UIDL as a `P` field, so POP3 clients download
        nothing again. Rewrites the file (the caller holds the lock); returns the count."""
        if uidvalidity == self.uidvalidity:
            uidvalidity = uidvalidity % (2**32 - 1) + 1
        old_validity = self.uidvalidity
        known = sorted(
            ((b, r) for b, r in self.records.items() if b in present), key=lambda br: br[1][0]
        )
        records: dict[str, Record] = {}
        for base, rec in known:
            uid, name, ext = rec
            if record_field(rec, "P") is None:
                ext = f"{ext} P{pop3_uidl(uid, old_validity)}".strip()
            records[base] = (len(records) + 1, name, ext)
        for base in sorted(b for b in present if b not in self.records):
            records[base] = (len(records) + 1, base, "")
        self.records = records
        self.max_uid = len(records)
        self.uidvalidity = uidvalidity
        self.header_next_uid = len(records) + 1
        self.rewrite(tmp_dir)
        return len(records)

    def rewrite(self, tmp_dir: str, keep: set[str] | None = None) -> None:
        """Write the whole file anew (dropping records whose base is not in `keep`)."""
        if keep is not None:
            self.records = {b: r for b, r in self.records.items() if b in keep}
        header = [f"3 V{self.uidvalidity} N{self.next_uid}"]
        if self.guid:
            header.append(f"G{self.guid}")
        header.extend(self.header_extra)
        parts = [" ".join(header), "\n"]
        parts.extend(record_line(r) for r in sorted(self.records.values(), key=_uid_key))
        data = "".join(parts).encode("utf-8", "surrogateescape")
        replace_file(self.path, data, tmp_dir)
        self.header_next_uid = self.next_uid
        self.version = 3
        self.exists = True
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        self._offset = len(data)


# What this process wrote last to each uidlist: (device, inode, the size just after its lines,
# the next UID then). A long-lived process (the server's LMTP) delivers to the same folders
# again and again; when a folder's file is the one it wrote last and no shorter, the next
# `append_after` reads only what others appended since (nothing, when no one did) instead of
# the header and the last 4 KiB. Entries are read and replaced only under the file's dot-lock;
# the oldest go first past TAILS_MAX. A stale entry costs a read, never a wrong UID: it is
# only used while the file is that inode, and every byte after it is read.
TAILS_MAX = 10_000
_tails: dict[str, tuple[int, int, int, int]] = {}


def _remember_tail(path: str, tail: tuple[int, int, int, int]) -> None:
    _tails[path] = tail
    if len(_tails) > TAILS_MAX:
        try:
            del _tails[next(iter(_tails))]
        except (KeyError, RuntimeError, StopIteration):
            pass  # another thread changed the dict meanwhile: trimmed next time


def _appended_since(fd: int, start: int, size: int) -> tuple[dict[str, int], int] | None:
    """The records from `start` (where a line should begin) to the end of the file: base ->
    UID, and the highest UID among them (0: none). The byte before `start` is read too, and
    a line that began before `start` is skipped. None when the file does not end with a
    whole line (a writer died mid-line: the full path deals with it) or `start` is 0."""
    found: dict[str, int] = {}
    if start >= size:
        return found, 0
    if start < 1:
        return None
    data = _read_fd(fd, start - 1)
    if not data.endswith(b"\n"):
        return None
    last = 0
    text = data.decode("utf-8", "surrogateescape").partition("\n")[2]
    for line in text.splitlines():
        uid_text, _, rest = line.partition(" ")
        if _number(uid_text):
            uid = int(uid_text)
            if uid > last:
                last = uid
            name = rest[1:] if rest[:1] == ":" else rest.partition(" :")[2]
            found[name.partition(":")[0]] = uid
    return found, last


def _number(text: str) -> bool:
    # ASCII digits: str.isdigit() is also true for "²", which int() refuses, and for "١",
    # which it reads as 1 (a file no other program would read the same way).
    return text.isascii() and text.isdigit()


def _uid_key(rec: Record) -> int:
    return rec[0]


def _read_fd(fd: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def replace_file(path: str, data: bytes, tmp_dir: str, mode: int = 0o600) -> None:
    """Atomically replace `path` with `data`: temp file in `tmp_dir`, fsync, rename().

    The temporary file lives in the folder's own `tmp/` (same file system, so rename() is
    atomic) and is named like any Maildir temporary file, so a crash leaves nothing that the
    usual tmp/ clean-up does not remove.
    """
    from mailstore.filenames import unique_base
    from mailstore.folderdir import adopt

    tmp = os.path.join(tmp_dir, unique_base() + "." + os.path.basename(path))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            adopt(fd, os.path.dirname(path))  # as root: the folder owner's (folderdir.py)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException as exc:  # a signal's exception too: no temporary file left behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if not isinstance(exc, OSError):
            raise
        raise TemporaryFailure(f"cannot write {os.path.basename(path)}: {exc.strerror}") from exc
