"""The compiled index of a map: djb's cdb ("constant database") format, plus its upkeep.

A text map (`/etc/aliases`) is compiled into `/etc/aliases.cdb` the way sendmail's newaliases
compiles it into `aliases.db`, so that a lookup costs a handful of page reads whatever the size of
the map: `mda` runs once per message and must not parse 100,000 lines each time.

File format (public specification, https://cr.yp.to/cdb/cdb.txt), all numbers 32-bit
little-endian:

- a header of 256 (position, slot count) pairs, one per hash table;
- the records, each `key length, data length, key, data`;
- the 256 hash tables, each of `slot count` (hash, record position) pairs, with twice as many
  slots as records so that linear probing stays short.

The hash is `h = ((h << 5) + h) ^ c` over the key bytes, starting at 5381, kept to 32 bits. A key
goes in table `h % 256`, starting at slot `(h >> 8) % slots`; an empty slot (position 0) ends the
search.

Upkeep: the index stores, under a key no map can produce (it starts with a NUL byte), the schema
of the map and the (st_dev, st_ino, st_size, st_mtime_ns) of the source it was built from. One
stat of the source tells whether the index is current; when it is not, the source is parsed and
the index rewritten (temporary file in the same directory, fsync, rename, the way makemap and
postmap replace theirs). When the index cannot be written (read-only directory, not root) the
parsed map is used from memory: slower, never wrong, and nothing to log.
"""

from __future__ import annotations

import os

from mda.maps.errors import MapError
from mda.maps.safefile import default_trusted, refusal, unsafe_reason

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from types import TracebackType
    from typing import BinaryIO, Literal

    # What a map's parser returns: the entries in file order (already lowercased and deduplicated
    # the way the map's own tool does it) and the warnings a human should see.
    ParseResult = tuple[list[tuple[str, str]], list[str]]
    Parser = Callable[[str, str], ParseResult]
    Origin = Literal["index", "rebuilt", "memory"]

INDEX_SUFFIX = ".cdb"
_HEADER_SIZE = 2048  # 256 tables x (position, slot count) x 4 bytes
_LIMIT = 0xFFFFFFFF  # positions and lengths are 32-bit: a cdb file stays below 4 GiB
_META_KEY = b"\x00mda-map-index"  # a NUL-prefixed key: no text map line can produce it


class CdbFormatError(ValueError):
    """The file is not a well-formed cdb (truncated, or pointers outside the file)."""


def cdb_hash(key: bytes) -> int:
    """djb's cdb hash: h = ((h << 5) + h) ^ c, from 5381, modulo 2**32."""
    h = 5381
    for c in key:
        h = (((h << 5) + h) ^ c) & 0xFFFFFFFF
    return h


def _u32(buf: _Pread | bytes, pos: int) -> int:
    return int.from_bytes(buf[pos : pos + 4], "little")


class _Pread:
    """Slices of an open file read with pread(): a lookup reads a few dozen bytes, and the
    `mmap` module would cost the delivery agent more to import than all its lookups."""

    __slots__ = ("fd", "size")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def __getitem__(self, span: slice) -> bytes:
        start, stop = span.start, span.stop
        return os.pread(self.fd, stop - start, start)

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CdbReader:
    """O(1) lookups in a cdb file, read with pread()."""

    __slots__ = ("_header", "_mm", "path", "size", "stat")

    def __init__(self, path: str, *, nofollow: bool = False) -> None:
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        if nofollow:
            flags |= os.O_NOFOLLOW
        fd = os.open(path, flags)
        try:
            st = os.fstat(fd)
            if not _is_regular(st.st_mode):
                raise CdbFormatError(f"{path}: not a regular file")
            if st.st_size < _HEADER_SIZE:
                raise CdbFormatError(f"{path}: shorter than a cdb header")
            header = os.pread(fd, _HEADER_SIZE, 0)
        except BaseException:
            os.close(fd)
            raise
        mm = _Pread(fd, st.st_size)
        # 256 cheap checks now save a bounds check per probe later.
        for i in range(256):
            pos, slots = _u32(header, i * 8), _u32(header, i * 8 + 4)
            if slots and (pos < _HEADER_SIZE or pos + slots * 8 > len(mm)):
                mm.close()
                raise CdbFormatError(f"{path}: hash table {i} lies outside the file")
        self._header = header
        self._mm = mm
        self.path = path
        self.size = len(mm)
        self.stat = st

    def get(self, key: bytes) -> bytes | None:
        """The data of the first record with this key, or None."""
        for data in self._find(key):
            return data
        return None

    def get_all(self, key: bytes) -> list[bytes]:
        """The data of every record with this key, in insertion order (cdb allows repeats)."""
        return list(self._find(key))

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def _find(self, key: bytes) -> Iterator[bytes]:
        mm, size = self._mm, self.size
        h = cdb_hash(key)
        table = (h & 0xFF) << 3
        tpos, slots = _u32(self._header, table), _u32(self._header, table + 4)
        if not slots:
            return
        slot = (h >> 8) % slots
        klen_wanted = len(key)
        for _ in range(slots):
            sp = tpos + slot * 8
            shash, rpos = _u32(mm, sp), _u32(mm, sp + 4)
            if rpos == 0:
                return
            if shash == h:
                if rpos + 8 > size:
                    raise CdbFormatError(f"{self.path}: record outside the file")
                klen, dlen = _u32(mm, rpos), _u32(mm, rpos + 4)
                end = rpos + 8 + klen + dlen
                if end > size:
                    raise CdbFormatError(f"{self.path}: record outside the file")
                if klen == klen_wanted and mm[rpos + 8 : rpos + 8 + klen] == key:
                    yield mm[rpos + 8 + klen : end]
            slot += 1
            if slot == slots:
                slot = 0

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every record in file order (a sequential scan, for tools and tests)."""
        mm = self._mm
        end = min(
            _u32(self._header, i * 8) for i in range(256)
        )  # the first hash table ends the records
        pos = _HEADER_SIZE
        while pos < end:
            klen, dlen = _u32(mm, pos), _u32(mm, pos + 4)
            if pos + 8 + klen + dlen > end:
                raise CdbFormatError(f"{self.path}: record outside the file")
            yield mm[pos + 8 : pos + 8 + klen], mm[pos + 8 + klen : pos + 8 + klen + dlen]
            pos += 8 + klen + dlen

    def close(self) -> None:
        self._mm.close()

    def __enter__(self) -> CdbReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _dump(f: BinaryIO, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Write a cdb image to the binary file object `f` (positioned at 0)."""
    # struct is imported here, not at module level: only the rare rebuild pays for it.
    import struct

    write = f.write
    pack = struct.Struct("<II").pack
    write(b"\0" * _HEADER_SIZE)
    pos = _HEADER_SIZE
    tables: list[list[tuple[int, int]]] = [[] for _ in range(256)]
    for key, data in records:
        h = cdb_hash(key)
        tables[h & 0xFF].append((h, pos))
        write(pack(len(key), len(data)))
        write(key)
        write(data)
        pos += 8 + len(key) + len(data)
        if pos > _LIMIT:
            raise OverflowError("cdb file would exceed 4 GiB")
    header: list[bytes] = []
    for entries in tables:
        slots = len(entries) * 2
        header.append(pack(pos, slots))
        ring = [(0, 0)] * slots
        for h, rpos in entries:
            slot = (h >> 8) % slots
            while ring[slot][1]:
                slot = (slot + 1) % slots
            ring[slot] = (h, rpos)
        write(b"".join(pack(h, rpos) for h, rpos in ring))
        pos += slots * 8
        if pos > _LIMIT:
            raise OverflowError("cdb file would exceed 4 GiB")
    f.seek(0)
    write(b"".join(header))


def write_cdb(path: str, records: Iterable[tuple[bytes, bytes]], *, mode: int = 0o644) -> None:
    """Atomically replace `path` with a cdb of `records`.

    The image goes to a temporary file in the same directory (so the rename cannot cross a file
    system), is fsynced, and renamed over `path`: a reader sees the old index or the new one,
    never half of one, and a crash leaves at worst a stray temporary file. Raises OSError.
    """
    directory = os.path.dirname(path) or "."
    base = os.path.basename(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with open(fd, "wb", closefd=False) as f:
            _dump(f, records)
            f.flush()
        os.fchmod(fd, mode)  # after writing: the umask must not decide who may read the map
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not every file system lets a directory be fsynced
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _is_regular(mode: int) -> bool:
    return (mode & 0o170000) == 0o100000  # S_ISREG without importing stat


def index_path_for(source: str) -> str:
    return source + INDEX_SUFFIX


def _meta_value(schema: str, st: os.stat_result) -> bytes:
    return f"{schema}\n{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns}".encode()


def _encode(s: str) -> bytes:
    # surrogateescape: a map may hold bytes that are not UTF-8, and they must round-trip.
    return s.encode("utf-8", "surrogateescape")


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class Table:
    """Read access to a map's entries: the index or, failing that, the parsed source."""

    __slots__ = ()

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class DictTable(Table):
    """The parsed source held in memory (no usable index)."""

    __slots__ = ("_d",)

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._d = dict(entries)

    def get(self, key: str) -> str | None:
        return self._d.get(key)

    def __len__(self) -> int:
        return len(self._d)


class CdbTable(Table):
    """A current cdb index; falls back to re-parsing the source if the index proves corrupt."""

    __slots__ = ("_fallback", "_inner", "_reader")

    def __init__(self, reader: CdbReader, fallback: Callable[[], Table]) -> None:
        self._reader = reader
        self._fallback = fallback
        self._inner: Table | None = None

    def get(self, key: str) -> str | None:
        if self._inner is not None:
            return self._inner.get(key)
        try:
            data = self._reader.get(_encode(key))
        except CdbFormatError:
            # A damaged index must not turn into wrong answers or bounces: use the source.
            self._inner = self._fallback()
            return self._inner.get(key)
        return None if data is None else _decode(data)

    def __len__(self) -> int:
        if self._inner is not None:
            return len(self._inner)
        return sum(1 for k, _ in self._reader.items() if not k.startswith(b"\x00"))


class LoadedMap:
    """A map ready for lookups, with how it was obtained."""

    __slots__ = ("index_path", "origin", "source", "stat", "table", "warnings")

    def __init__(
        self,
        source: str,
        index_path: str,
        table: Table,
        stat: os.stat_result,
        origin: Origin,
        warnings: list[str],
    ) -> None:
        self.source = source
        self.index_path = index_path
        self.table = table
        self.stat = stat  # of the source: owner and mode decide what the map may do
        self.origin: Origin = origin  # "index" (current), "rebuilt" (just written) or "memory"
        self.warnings = warnings  # parser warnings; empty when the index was current

    def get(self, key: str) -> str | None:
        return self.table.get(key)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino, a.st_size, a.st_mtime_ns) == (
        b.st_dev,
        b.st_ino,
        b.st_size,
        b.st_mtime_ns,
    )


def _read_source(
    source: str, parse: Parser
) -> tuple[list[tuple[str, str]], list[str], os.stat_result, bool]:
    """Parse the source; return its entries, warnings, the fstat of the file read, and whether
    it held still while we read it (only then may an index record it as current)."""
    try:
        with open(source, "rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
            after = os.fstat(f.fileno())
    except OSError as e:
        raise MapError(source, e.strerror or str(e)) from e
    entries, warnings = parse(_decode(data), source)
    clean = []
    for key, value in entries:
        if "\x00" in key:  # NUL-prefixed keys are the index's own metadata
            warnings.append(f"{source}: key {key!r} contains a NUL byte: ignored")
            continue
        clean.append((key, value))
    stable = _same_file(before, after) and len(data) == after.st_size
    return clean, warnings, after, stable


def _open_current_index(
    index_path: str, source_stat: os.stat_result, schema: str
) -> CdbReader | None:
    """The index if it is current and trustworthy, else None (missing, stale, foreign, corrupt)."""
    try:
        reader = CdbReader(index_path, nofollow=True)
    except (OSError, CdbFormatError, ValueError):
        return None
    st = reader.stat
    # The index speaks for the source, so it must be as trustworthy: written by root or by the
    # source's owner, and writable by nobody else. Otherwise an index planted next to a
    # root-owned aliases file could smuggle in program targets.
    trusted = st.st_uid in (0, source_stat.st_uid) and not st.st_mode & 0o022
    try:
        current = trusted and reader.get(_META_KEY) == _meta_value(schema, source_stat)
    except CdbFormatError:
        current = False
    if not current:
        reader.close()
        return None
    return reader


def _index_records(
    entries: list[tuple[str, str]], schema: str, st: os.stat_result
) -> Iterator[tuple[bytes, bytes]]:
    yield _META_KEY, _meta_value(schema, st)
    for key, value in entries:
        yield _encode(key), _encode(value)


def _index_mode(source_mode: int) -> int:
    # Readable by whoever may read the source, writable only by the owner.
    return (source_mode & 0o644) | 0o600


def open_indexed(
    source: str,
    parse: Parser,
    schema: str,
    *,
    index_path: str | None = None,
    write_index: bool = True,
    trusted: frozenset[int] | None = None,
) -> LoadedMap:
    """Open a text map through its index, rebuilding the index when the source changed.

    `schema` names the map type and its parser version: an index built by another parser is
    stale. Raises MapError when the source itself cannot be read, and when it is not a file
    only `trusted` uids (default: root and ourselves) can change (`mda.maps.safefile`).
    """
    index_path = index_path or index_path_for(source)
    try:
        st = os.stat(source)
    except OSError as e:
        raise MapError(source, e.strerror or str(e)) from e
    if not _is_regular(st.st_mode):
        raise MapError(source, "not a regular file")
    _check_trusted(source, st, trusted)
    reader = _open_current_index(index_path, st, schema)
    if reader is not None:

        def fallback() -> Table:
            return DictTable(_read_source(source, parse)[0])

        return LoadedMap(source, index_path, CdbTable(reader, fallback), st, "index", [])
    # The stamp recorded is the fstat of the very file we read: if the path has been replaced
    # since, the next open sees another inode and rebuilds.
    entries, warnings, st, stable = _read_source(source, parse)
    if not _is_regular(st.st_mode):
        raise MapError(source, "not a regular file")
    _check_trusted(source, st, trusted)  # the file read, which may have replaced the one checked
    origin: Origin = "memory"
    # A source that changed while we read it is used once but not recorded as current.
    if write_index and stable:
        try:
            write_cdb(index_path, _index_records(entries, schema, st), mode=_index_mode(st.st_mode))
            origin = "rebuilt"
        except (OSError, OverflowError):
            pass  # read-only directory, not root, disk full: the parsed map still answers
    return LoadedMap(source, index_path, DictTable(entries), st, origin, warnings)


def _check_trusted(source: str, st: os.stat_result, trusted: frozenset[int] | None) -> None:
    why = unsafe_reason(source, st, default_trusted() if trusted is None else trusted)
    if why is not None:
        raise MapError(source, refusal(why))


def rebuild_index(
    source: str,
    parse: Parser,
    schema: str,
    *,
    index_path: str | None = None,
    trusted: frozenset[int] | None = None,
) -> LoadedMap:
    """Rebuild the index unconditionally, like newaliases or makemap; MapError if impossible
    (including a source that is not trusted, see `open_indexed`)."""
    index_path = index_path or index_path_for(source)
    entries, warnings, st, _ = _read_source(source, parse)
    _check_trusted(source, st, trusted)
    try:
        write_cdb(index_path, _index_records(entries, schema, st), mode=_index_mode(st.st_mode))
    except (OSError, OverflowError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MapError(index_path, f"cannot write index: {reason}") from e
    return LoadedMap(source, index_path, DictTable(entries), st, "rebuilt", warnings)
