"""The compiled map index (mda/maps/cdb.py): a cdb file that a crash, a disk error or another
program may have left in any state, and the writer's round trip.

Input: a cdb file's octets (seeds are real indexes); the same octets read as `key value`
lines are records to write.

Properties:
- opening and reading a damaged file raises nothing but CdbFormatError (ValueError) or
  returns what it holds, and ends: every lookup probes at most the table's slots;
- what `write_cdb` writes reads back the same: every record in order (`items`), every value
  of a repeated key (`get_all`), the first value (`get`), nothing for an absent key.
"""

from __future__ import annotations

import os

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, main
    from mda.maps.cdb import CdbFormatError, CdbReader, write_cdb

_dir = fresh_dir("cdb")
RAW = os.path.join(_dir, "raw.cdb")
WRITTEN = os.path.join(_dir, "written.cdb")


def read_damaged(data: bytes) -> None:
    with open(RAW, "wb") as f:
        f.write(data)
    try:
        reader = CdbReader(RAW)
    except CdbFormatError:
        return
    with reader:
        keys = [b"", b"alice", b"\x00mda-map-index", data[2048:2056]]
        try:
            for i, (key, value) in enumerate(reader.items()):
                if not isinstance(key, bytes) or not isinstance(value, bytes):
                    raise Finding(f"items gave {key!r}, {value!r}")
                if i < 8:
                    keys.append(key)
        except CdbFormatError:
            pass
        for key in keys:
            try:
                got = reader.get_all(key)
            except CdbFormatError:
                continue
            if not all(isinstance(v, bytes) for v in got):
                raise Finding(f"get_all({key!r}) gave {got!r}")


def round_trip(data: bytes) -> None:
    records = []
    for line in data.split(b"\n")[:200]:
        key, _, value = line.partition(b" ")
        records.append((key, value))
    write_cdb(WRITTEN, records)
    with CdbReader(WRITTEN) as reader:
        if list(reader.items()) != records:
            raise Finding(f"wrote {records[:5]}..., read {list(reader.items())[:5]}...")
        # Each key once: a key written n times has n values, and looking it up n times
        # would make the check, not the reader, quadratic.
        wanted: dict[bytes, list[bytes]] = {}
        for key, value in records:
            wanted.setdefault(key, []).append(value)
        for key, want in wanted.items():
            if reader.get_all(key) != want or reader.get(key) != want[0]:
                raise Finding(f"{key!r}: wrote {want}, read {reader.get_all(key)}")
        absent = b"\xff" + max((k for k, _ in records), default=b"")
        if reader.get(absent) is not None:
            raise Finding(f"{absent!r} was never written, yet read back")


def test_one_input(data: bytes) -> None:
    read_damaged(data)
    round_trip(data)


if __name__ == "__main__":
    main(test_one_input)
