"""The folder index as an input (SECURITY.md 4 and 6): what a user who can write their own
Maildir can plant in the place of `mra.index`, and what a damaged or hostile index file holds.
Each must give a rebuild or a clean NOMODSEQ, never a crash, a lost change, or a write outside
the folder.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mailstore.folderindex import NAME, SUFFIXES, clock_modseq
from mailstore.folderstate import SharedFolders
from mailstore.mailbox import Mailbox
from mailstore.store import MailStore

MSG = b"From: alice@example.test\nSubject: mine\n\nmine\n"


def store(root: Path) -> MailStore:
    """A server's store of alice: shared folder states, the index beside each folder."""
    return MailStore(str(root / "alice"), folders=SharedFolders(), index_root="")


def seed(root: Path, count: int = 3) -> str:
    """Alice's INBOX with messages, written as mda writes (no index); its path."""
    plain = MailStore(str(root / "alice"))
    box = plain.mailbox("INBOX")
    for _ in range(count):
        box.append(MSG)
    return box.path


def opened(root: Path) -> Mailbox:
    box = store(root).mailbox("INBOX")
    box.sync()
    return box


def highest(box: Mailbox) -> int | None:
    hooks = box.hooks
    assert hooks is not None
    return hooks.highest_modseq  # type: ignore[attr-defined, no-any-return]


def test_attack_symlinked_index_is_not_followed(tmp_path: Path) -> None:
    """`mra.index -> /somewhere/else.db`: the link is removed, never written through."""
    path = seed(tmp_path)
    target = tmp_path / "victim.db"
    target.write_bytes(b"the victim's file")
    os.symlink(target, os.path.join(path, NAME))
    box = opened(tmp_path)
    assert highest(box)
    assert target.read_bytes() == b"the victim's file"
    assert not os.path.islink(os.path.join(path, NAME))


def test_attack_symlinked_wal_is_not_followed(tmp_path: Path) -> None:
    path = seed(tmp_path)
    target = tmp_path / "victim-wal"
    target.write_bytes(b"x")
    os.symlink(target, os.path.join(path, NAME + "-wal"))
    box = opened(tmp_path)
    assert highest(box)
    box.store_flags([1], "add", ["\\Seen"])
    assert target.read_bytes() == b"x"


def test_attack_hard_linked_index_is_replaced(tmp_path: Path) -> None:
    """Someone else's file hard-linked in as `mra.index`: the name is dropped, the file kept."""
    path = seed(tmp_path)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE precious (x)")
    conn.execute("INSERT INTO precious VALUES (42)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    os.link(other, os.path.join(path, NAME))
    box = opened(tmp_path)
    assert highest(box)
    assert other.read_bytes() == before
    assert os.stat(os.path.join(path, NAME)).st_ino != os.stat(other).st_ino


def test_attack_directory_in_the_index_place_gives_nomodseq(tmp_path: Path) -> None:
    path = seed(tmp_path)
    os.mkdir(os.path.join(path, NAME))
    box = opened(tmp_path)
    assert highest(box) is None
    assert box.uids() == [1, 2, 3]  # the folder works without its index


@pytest.mark.parametrize(
    "garbage",
    [b"", b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_attack_damaged_index_is_rebuilt(tmp_path: Path, garbage: bytes) -> None:
    path = seed(tmp_path)
    Path(path, NAME).write_bytes(garbage)
    box = opened(tmp_path)
    assert highest(box) is not None
    box.store_flags([2], "add", ["\\Flagged"])
    box.sync()
    hooks = box.hooks
    assert hooks is not None and hooks.modseq(2) == hooks.highest_modseq  # type: ignore[attr-defined]


def _plant(path: str, sql: list[str]) -> None:
    """Change an index made by a first open, as an attacker with the file would."""
    conn = sqlite3.connect(os.path.join(path, NAME))
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


def _sane(box: Mailbox, path: str, first: int) -> None:
    """What a rebuilt index holds: every message, modseqs above the old ones and not past the
    clock, nothing but what this code writes."""
    hooks = box.hooks
    assert hooks is not None
    index = hooks.index  # type: ignore[attr-defined]
    assert index is not None
    top = index.highest
    assert first < top < clock_modseq() + 10**9
    assert set(index.modseq_of) == {1, 2, 3}
    assert all(type(m) is int and 0 < m <= top for m in index.modseq_of.values())
    assert all(u > 0 for u in hooks.vanished(1) or [])  # type: ignore[attr-defined]
    conn = sqlite3.connect(os.path.join(path, NAME))
    try:
        rows = conn.execute("SELECT uid, modseq, typeof(flags) FROM msg").fetchall()
        extra = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('trigger', 'view')")
        assert extra.fetchall() == []
    finally:
        conn.close()
    assert sorted(r[0] for r in rows) == [1, 2, 3]
    assert all(type(r[1]) is int and 0 < r[1] <= top and r[2] == "text" for r in rows)


@pytest.mark.parametrize(
    "sql",
    [
        ["UPDATE msg SET modseq = 9223372036854775807"],
        ["UPDATE msg SET modseq = -5"],
        ["UPDATE msg SET modseq = 'a string'"],
        ["UPDATE msg SET uid = 4294967296 WHERE uid = 1"],
        ["UPDATE msg SET flags = x'00ff'"],
        ["UPDATE msg SET flags = '" + "S" * 5000 + "'"],
        ["UPDATE meta SET v = 9223372036854775807 WHERE k = 'highest'"],
        ["UPDATE meta SET v = 'x' WHERE k = 'floor'"],
        ["INSERT INTO gone VALUES (0, 5)", "UPDATE meta SET v = 1 WHERE k = 'floor'"],
        ["CREATE TRIGGER t AFTER UPDATE ON msg BEGIN DELETE FROM msg; END"],
        ["CREATE VIEW v AS SELECT 1"],
        ["DROP TABLE msg", "CREATE TABLE msg (uid TEXT, modseq TEXT, flags BLOB, hdr TEXT)"],
    ],
)
def test_attack_hostile_index_values_mean_a_rebuild(tmp_path: Path, sql: list[str]) -> None:
    """Values this code never writes: the file is rebuilt (new modseqs above the old ones),
    and the folder goes on; at worst this process goes without modseqs until it opens the
    index again (then rebuilt)."""
    path = seed(tmp_path)
    box = opened(tmp_path)
    first = highest(box)
    assert first is not None
    del box
    _plant(path, sql)
    box = opened(tmp_path)
    box.store_flags([1], "add", ["\\Seen"])
    box.sync()
    if highest(box) is None:  # dropped at this open: the next open rebuilds it
        box = opened(tmp_path)
    _sane(box, path, first)


def test_attack_index_files_stay_in_the_folder(tmp_path: Path) -> None:
    """Every file the index makes is in the folder's directory, named as documented."""
    path = seed(tmp_path)
    before = set(os.listdir(path))
    box = opened(tmp_path)
    box.store_flags([1], "add", ["\\Seen"])
    made = set(os.listdir(path)) - before
    assert made <= {NAME + s for s in SUFFIXES}
    assert {p.name for p in tmp_path.iterdir()} == {"alice"}
