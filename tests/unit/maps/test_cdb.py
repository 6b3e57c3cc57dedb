"""The cdb format, its writer and reader, and the upkeep of an index next to its source."""

from __future__ import annotations

import os
import pwd
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mda.maps import cdb
from mda.maps.cdb import (
    CdbFormatError,
    CdbReader,
    cdb_hash,
    open_indexed,
    rebuild_index,
    write_cdb,
)
from mda.maps.errors import MapError
from mda.maps.makemap import parse_makemap

SCHEMA = "test/1"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def nobody_uid() -> int:
    return pwd.getpwnam("nobody").pw_uid


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the format -----------------------------------------------------------------------------


def test_hash_follows_the_specification() -> None:
    assert cdb_hash(b"") == 5381
    # 5381 * 33 = 177573; 177573 ^ ord("a") = 177604
    assert cdb_hash(b"a") == 177604
    h = 5381
    for c in b"postmaster@example.com":
        h = ((h << 5) + h) ^ c
        h &= 0xFFFFFFFF
    assert cdb_hash(b"postmaster@example.com") == h
    assert cdb_hash(b"\xff" * 1000) < 2**32


def test_writer_output_is_byte_exact(tmp_path: Path) -> None:
    # One record a -> b, laid out by hand from cdb.txt: header, record at 2048, then the 256
    # tables; only table 177604 % 256 = 196 has entries (2 slots, the key in slot
    # (177604 >> 8) % 2 = 1), and every table's position is where it would start.
    path = str(tmp_path / "one.cdb")
    write_cdb(path, [(b"a", b"b")])
    header = b"".join(
        struct.pack("<II", 2058 if i <= 196 else 2074, 2 if i == 196 else 0) for i in range(256)
    )
    record = struct.pack("<II", 1, 1) + b"ab"
    table = struct.pack("<IIII", 0, 0, 177604, 2048)
    assert Path(path).read_bytes() == header + record + table


def test_reader_reads_a_hand_built_file(tmp_path: Path) -> None:
    header = b"".join(
        struct.pack("<II", 2058 if i <= 196 else 2074, 2 if i == 196 else 0) for i in range(256)
    )
    path = tmp_path / "hand.cdb"
    path.write_bytes(
        header + struct.pack("<II", 1, 1) + b"ab" + struct.pack("<IIII", 0, 0, 177604, 2048)
    )
    with CdbReader(str(path)) as r:
        assert r.get(b"a") == b"b"
        assert r.get(b"b") is None
        assert list(r.items()) == [(b"a", b"b")]


def test_empty_database(tmp_path: Path) -> None:
    path = str(tmp_path / "empty.cdb")
    write_cdb(path, [])
    assert os.path.getsize(path) == 2048
    with CdbReader(path) as r:
        assert r.get(b"") is None
        assert list(r.items()) == []


def test_repeated_keys_are_all_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "dup.cdb")
    write_cdb(path, [(b"k", b"1"), (b"x", b"y"), (b"k", b"2")])
    with CdbReader(path) as r:
        assert r.get(b"k") == b"1"
        assert r.get_all(b"k") == [b"1", b"2"]
        assert b"x" in r and b"z" not in r


@given(
    st.lists(st.tuples(st.binary(max_size=24), st.binary(max_size=64)), max_size=300),
    st.lists(st.binary(max_size=24), max_size=20),
)
@settings(max_examples=80, deadline=None)
def test_round_trip(records: list[tuple[bytes, bytes]], probes: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rt.cdb")
        write_cdb(path, records)
        with CdbReader(path) as r:
            assert list(r.items()) == records
            expected: dict[bytes, list[bytes]] = {}
            for k, v in records:
                expected.setdefault(k, []).append(v)
            for k, values in expected.items():
                assert r.get_all(k) == values
                assert r.get(k) == values[0]
            for p in probes:
                assert r.get_all(p) == expected.get(p, [])


@pytest.mark.parametrize("size", [0, 100, 2047])
def test_short_file_is_not_a_cdb(tmp_path: Path, size: int) -> None:
    path = tmp_path / "short.cdb"
    path.write_bytes(b"\0" * size)
    with pytest.raises(CdbFormatError):
        CdbReader(str(path))


def test_table_outside_the_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.cdb"
    path.write_bytes(struct.pack("<II", 10_000, 4) + b"\0" * 2040)
    with pytest.raises(CdbFormatError):
        CdbReader(str(path))


def test_record_outside_the_file_is_reported_at_lookup(tmp_path: Path) -> None:
    path = tmp_path / "rec.cdb"
    write_cdb(str(path), [(b"a", b"b")])
    data = bytearray(path.read_bytes())
    data[2048:2052] = struct.pack("<I", 0xFFFFFF00)  # key length far past the end
    path.write_bytes(bytes(data))
    with CdbReader(str(path)) as r, pytest.raises(CdbFormatError):
        r.get(b"a")


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = str(tmp_path / "m.cdb")
    write_cdb(path, [(b"k", b"old")])

    def failing() -> list[tuple[bytes, bytes]]:
        raise RuntimeError("boom")

    def records() -> Iterator[tuple[bytes, bytes]]:
        yield b"k", b"new"
        failing()

    with pytest.raises(RuntimeError):
        write_cdb(path, records())
    assert sorted(os.listdir(tmp_path)) == ["m.cdb"]
    with CdbReader(path) as r:
        assert r.get(b"k") == b"old"


def test_write_sets_the_requested_mode_despite_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_cdb(str(tmp_path / "m.cdb"), [], mode=0o644)
    finally:
        os.umask(old)
    assert (tmp_path / "m.cdb").stat().st_mode & 0o777 == 0o644


# --- the index next to its source ------------------------------------------------------------


def test_first_open_builds_the_index_and_the_next_uses_it(tmp_path: Path) -> None:
    src = write(tmp_path / "virt", "a@x b\nc@x d\n")
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt"
    assert m.index_path == str(src) + ".cdb"
    assert m.get("a@x") == "b"
    m2 = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m2.origin == "index"
    assert m2.get("a@x") == "b" and m2.get("c@x") == "d" and m2.get("e@x") is None
    assert len(m2.table) == 2
    assert sorted(os.listdir(tmp_path)) == ["virt", "virt.cdb"]


def test_index_mode_follows_the_source(tmp_path: Path) -> None:
    src = write(tmp_path / "secret", "a b\n")
    src.chmod(0o600)
    open_indexed(str(src), parse_makemap, SCHEMA)
    assert (tmp_path / "secret.cdb").stat().st_mode & 0o777 == 0o600
    src2 = write(tmp_path / "public", "a b\n")
    src2.chmod(0o640)
    open_indexed(str(src2), parse_makemap, SCHEMA)
    assert (tmp_path / "public.cdb").stat().st_mode & 0o777 == 0o640


def test_newer_mtime_rebuilds(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert open_indexed(str(src), parse_makemap, SCHEMA).origin == "rebuilt"
    assert open_indexed(str(src), parse_makemap, SCHEMA).origin == "index"


def test_same_size_new_content_new_mtime_rebuilds(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    st = src.stat()
    src.write_text("a 2\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt" and m.get("a") == "2"


def test_size_change_rebuilds_even_with_the_old_mtime(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    st = src.stat()
    src.write_text("a 1\nb 2\n")
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # an editor that restores mtimes
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt" and m.get("b") == "2"


def test_replaced_file_rebuilds_even_with_same_size_and_mtime(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    st = src.stat()
    new = write(tmp_path / "m.new", "a 2\n")
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(new, src)  # a new inode
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt" and m.get("a") == "2"


def test_another_schema_rebuilds(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    assert open_indexed(str(src), parse_makemap, "other/1").origin == "rebuilt"


def test_unwritable_index_falls_back_to_memory(tmp_path: Path) -> None:
    # Root ignores permission bits, so make the write fail for real: the index path is a
    # non-empty directory, which rename() cannot replace with a file.
    src = write(tmp_path / "m", "a 1\nb 2\n")
    blocker = tmp_path / "m.cdb"
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    for _ in range(2):
        m = open_indexed(str(src), parse_makemap, SCHEMA)
        assert m.origin == "memory"
        assert m.get("a") == "1" and m.get("b") == "2" and m.get("c") is None
    assert sorted(os.listdir(tmp_path)) == ["m", "m.cdb"]
    assert os.listdir(blocker) == ["keep"]


def test_index_in_a_missing_directory_falls_back_to_memory(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    m = open_indexed(str(src), parse_makemap, SCHEMA, index_path=str(tmp_path / "no" / "m.cdb"))
    assert m.origin == "memory" and m.get("a") == "1"


def test_write_index_false_never_writes(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    m = open_indexed(str(src), parse_makemap, SCHEMA, write_index=False)
    assert m.origin == "memory" and m.get("a") == "1"
    assert not (tmp_path / "m.cdb").exists()


def test_explicit_rebuild(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\na 2\n")
    m = rebuild_index(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt"
    assert len(m.table) == 1
    assert any("duplicate key" in w for w in m.warnings)
    assert open_indexed(str(src), parse_makemap, SCHEMA).origin == "index"


def test_explicit_rebuild_that_cannot_write_is_a_map_error(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    (tmp_path / "m.cdb").mkdir()
    (tmp_path / "m.cdb" / "keep").write_text("x")
    with pytest.raises(MapError, match="cannot write index"):
        rebuild_index(str(src), parse_makemap, SCHEMA)


def test_missing_source_is_a_map_error(tmp_path: Path) -> None:
    with pytest.raises(MapError) as e:
        open_indexed(str(tmp_path / "nope"), parse_makemap, SCHEMA)
    assert e.value.exit_status == 75


def test_directory_source_is_a_map_error(tmp_path: Path) -> None:
    with pytest.raises(MapError, match="not a regular file"):
        open_indexed(str(tmp_path), parse_makemap, SCHEMA)


def test_world_writable_index_is_not_trusted(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    (tmp_path / "m.cdb").chmod(0o666)
    assert open_indexed(str(src), parse_makemap, SCHEMA).origin == "rebuilt"
    assert (tmp_path / "m.cdb").stat().st_mode & 0o777 == 0o644


@needs_root
def test_forged_index_owned_by_someone_else_is_ignored(tmp_path: Path) -> None:
    # An index claiming to be current, but written by a user who does not own the source:
    # it could otherwise put words in root's aliases file.
    src = write(tmp_path / "m", "a 1\n")
    st = src.stat()
    forged = tmp_path / "m.cdb"
    write_cdb(str(forged), [(cdb._META_KEY, cdb._meta_value(SCHEMA, st)), (b"a", b"evil")])
    os.chown(forged, nobody_uid(), -1)
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.get("a") == "1"
    assert m.origin == "rebuilt"
    assert forged.stat().st_uid == 0


@needs_root
def test_index_owned_by_the_source_owner_is_trusted(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    os.chown(src, nobody_uid(), -1)
    os.chown(tmp_path / "m.cdb", nobody_uid(), -1)
    # chown changed the source's ctime only; the stamp (dev, ino, size, mtime) still matches.
    # (nobody must be trusted with the map, as `[mda] mail_uid = "nobody"` makes it.)
    trusted = frozenset({0, os.geteuid(), nobody_uid()})
    assert open_indexed(str(src), parse_makemap, SCHEMA, trusted=trusted).origin == "index"


def test_corrupt_index_at_lookup_falls_back_to_the_source(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "alpha 1\nbeta 2\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    index = tmp_path / "m.cdb"
    data = bytearray(index.read_bytes())
    at = data.find(b"alpha") - 8  # the record header of `alpha`
    data[at : at + 4] = struct.pack("<I", 0xFFFFFF00)
    index.write_bytes(bytes(data))
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "index"
    assert m.get("alpha") == "1"
    assert m.get("beta") == "2"


def test_truncated_index_is_rebuilt(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    index = tmp_path / "m.cdb"
    index.write_bytes(index.read_bytes()[:-20])  # cut into the hash tables
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "rebuilt" and m.get("a") == "1"


def test_symlinked_index_is_not_followed(tmp_path: Path) -> None:
    src = write(tmp_path / "m", "a 1\n")
    elsewhere = tmp_path / "elsewhere.cdb"
    write_cdb(str(elsewhere), [(cdb._META_KEY, cdb._meta_value(SCHEMA, src.stat())), (b"a", b"x")])
    (tmp_path / "m.cdb").symlink_to(elsewhere)
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.get("a") == "1"


def test_non_utf8_bytes_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "m"
    src.write_bytes(b"caf\xe9 \xff\xfe\n")
    open_indexed(str(src), parse_makemap, SCHEMA)
    m = open_indexed(str(src), parse_makemap, SCHEMA)
    assert m.origin == "index"
    key = b"caf\xe9".decode("utf-8", "surrogateescape")
    value = m.get(key)
    assert value is not None
    assert value.encode("utf-8", "surrogateescape") == b"\xff\xfe"


def _time_lookups(src: Path, keys: list[str]) -> float:
    best = float("inf")
    for _ in range(15):
        start = time.perf_counter()
        m = open_indexed(str(src), parse_makemap, SCHEMA)
        for k in keys:
            m.get(k)
        best = min(best, time.perf_counter() - start)
        assert m.origin == "index"
    return best


def test_a_hundred_thousand_entries(tmp_path: Path) -> None:
    n = 100_000
    big = tmp_path / "big"
    big.write_text("".join(f"user{i:06d}@example.com target{i}\n" for i in range(n)))
    built = open_indexed(str(big), parse_makemap, SCHEMA)
    assert built.origin == "rebuilt"
    m = open_indexed(str(big), parse_makemap, SCHEMA)
    assert m.origin == "index"
    for i in (0, 1, 4242, 50_000, n - 1):
        assert m.get(f"user{i:06d}@example.com") == f"target{i}"
    assert m.get("user100000@example.com") is None
    assert len(m.table) == n

    small = tmp_path / "small"
    small.write_text("".join(f"user{i:06d}@example.com target{i}\n" for i in range(10)))
    open_indexed(str(small), parse_makemap, SCHEMA)
    keys = [f"user{i:06d}@example.com" for i in range(0, 10)] + ["missing@example.com"]
    # Opening the index and looking up costs the same whatever the map's size (generous bound:
    # a parse of the big source would take hundreds of times longer).
    assert _time_lookups(big, keys) < _time_lookups(small, keys) * 5 + 0.002
