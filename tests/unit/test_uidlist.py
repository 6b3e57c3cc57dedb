"""dovecot-uidlist parsing and writing, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore.lock import DotLock
from mailstore.uidlist import UidList, record_field

V3 = (
    "3 V1275660208 N25022 G3085f01b7f11094c501100008c4a11c1\n"
    "25006 :1276528487.M364837P9451.kurkku,S=1977,W=2022:2,S\n"
    "25017 W2481 :1276533073.M242911P3620.kurkku:2,F\n"
)


def write(path: Path, text: str) -> UidList:
    path.write_text(text)
    ul = UidList(str(path))
    ul.refresh()
    return ul


def test_parses_dovecot_v3(tmp_path: Path) -> None:
    ul = write(tmp_path / "dovecot-uidlist", V3)
    assert ul.exists and ul.version == 3
    assert ul.uidvalidity == 1275660208
    assert ul.guid == "3085f01b7f11094c501100008c4a11c1"
    assert ul.next_uid == 25022
    rec = ul.records["1276528487.M364837P9451.kurkku,S=1977,W=2022"]
    assert rec == (25006, "1276528487.M364837P9451.kurkku,S=1977,W=2022:2,S", "")
    rec = ul.records["1276533073.M242911P3620.kurkku"]
    assert rec[0] == 25017 and record_field(rec, "W") == "2481"


def test_next_uid_is_above_every_listed_uid_even_when_header_lags(tmp_path: Path) -> None:
    ul = write(tmp_path / "u", "3 V5 N2\n1 :a\n7 :b\n")
    assert ul.next_uid == 8


def test_parses_version_1_and_courier(tmp_path: Path) -> None:
    ul = write(
        tmp_path / "courierimapuiddb", "1 1100000000 4\n1 1100.M1P2.host\n3 1101.M1P2.host\n"
    )
    assert ul.version == 1 and ul.uidvalidity == 1100000000
    assert {b: r[0] for b, r in ul.records.items()} == {"1100.M1P2.host": 1, "1101.M1P2.host": 3}
    assert ul.next_uid == 4


@pytest.mark.parametrize(
    "text",
    ["", "garbage\n", "3 N5\n1 :a\n", "3 V0 N1\n", "9 V1 N1\n", "1 x y\n", "\x00\xff\n"],
)
def test_corrupt_header_is_treated_as_absent(tmp_path: Path, text: str) -> None:
    ul = write(tmp_path / "u", text)
    assert not ul.exists


def test_bad_and_out_of_order_lines_are_skipped(tmp_path: Path) -> None:
    ul = write(
        tmp_path / "u",
        "3 V9 N1\n5 :five\nxx :junk\n3 :three-out-of-order\n6 :five:2,S\n8 W1 :eight\n"
        "9 :has space\n10\n",
    )
    assert {b: r[0] for b, r in ul.records.items()} == {"five": 5, "eight": 8}
    assert ul.next_uid == 9  # UIDs seen in skipped lines are not reused either... 6 was a dup


def test_incremental_read_of_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "u"
    ul = write(path, "3 V9 N1\n1 :a\n")
    with open(path, "a") as f:
        f.write("2 :b\n3 :c")  # the last line is still being written
    assert ul.refresh()
    assert set(ul.records) == {"a", "b"}
    with open(path, "a") as f:
        f.write("\n")
    assert ul.refresh()
    assert set(ul.records) == {"a", "b", "c"}
    assert not ul.refresh()


def test_replaced_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "u"
    ul = write(path, "3 V9 N1\n1 :a\n2 :b\n")
    tmp = tmp_path / "new"
    tmp.write_text("3 V9 N3\n2 :b\n")
    os.rename(tmp, path)
    assert ul.refresh()
    assert set(ul.records) == {"b"}


def test_append_and_rewrite_round_trip(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "dovecot-uidlist"
    ul = write(path, "3 V77 N1 Gabc Xkeep\n")
    with DotLock(str(path)):
        assert ul.append([("m1", "m1:2,S"), ("m2", "m2")]) == [1, 2]
        assert ul.append([("m2", "m2"), ("m3", "m3")]) == [2, 3]
    assert path.read_text() == "3 V77 N1 Gabc Xkeep\n1 :m1\n2 :m2\n3 :m3\n"
    with DotLock(str(path)):
        ul.rewrite(str(tmp_path / "tmp"), keep={"m1", "m3"})
    assert path.read_text() == "3 V77 N4 Gabc Xkeep\n1 :m1\n3 :m3\n"
    again = UidList(str(path))
    again.refresh()
    assert again.next_uid == 4 and set(again.records) == {"m1", "m3"}
    assert os.listdir(tmp_path / "tmp") == []


def test_append_after_a_torn_last_line_keeps_the_file_parseable(tmp_path: Path) -> None:
    path = tmp_path / "u"
    ul = write(path, "3 V1 N1\n1 :a\n")
    with open(path, "a") as f:
        f.write("2 :b-torn")
    ul.refresh()
    with DotLock(str(path)):
        # The torn line is a record once ended: its UID is not given again.
        assert ul.append([("c", "c")]) == [3]
    fresh = UidList(str(path))
    fresh.refresh()
    assert {b: r[0] for b, r in fresh.records.items()} == {"a": 1, "b-torn": 2, "c": 3}


def test_append_after_reads_only_what_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "u"
    lines = "".join(f"{i} :msg{i}\n" for i in range(1, 5001))
    path.write_text("3 V1 N1\n" + lines)
    st = path.stat()
    ul = UidList(str(path))
    # Another writer gave "late" a UID after our hint was taken.
    with open(path, "a") as f:
        f.write("5001 :late:2,S\n")
    with DotLock(str(path)):
        assert ul.append_after([("late", "late"), ("mine", "mine")], (st.st_ino, st.st_size)) == [
            5001,
            5002,
        ]
    assert path.read_text().endswith("5001 :late:2,S\n5002 :mine\n")


def test_append_after_declines_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "u"
    path.write_text("3 V1 N1\n")
    st = path.stat()
    replacement = tmp_path / "r"
    replacement.write_text("3 V1 N1\n")
    os.rename(replacement, path)
    ul = UidList(str(path))
    assert ul.append_after([("x", "x")], (st.st_ino, st.st_size)) is None


def test_a_process_keeps_big_parses_and_reads_only_what_was_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "remembered", {})
    monkeypatch.setattr(uidlist, "REMEMBER_MIN", 2)
    path = tmp_path / "dovecot-uidlist"
    first = write(path, V3)
    parsed: list[str] = []
    real = UidList._parse_records

    def spy(self: UidList, text: str) -> None:
        parsed.append(text)
        real(self, text)

    monkeypatch.setattr(UidList, "_parse_records", spy)
    with path.open("a") as f:
        f.write("25030 :1276540000.M1P1.kurkku,S=10:2,\n")
    second = UidList(str(path))
    second.refresh()
    assert parsed == ["25030 :1276540000.M1P1.kurkku,S=10:2,\n"]  # only the new line
    monkeypatch.setattr(uidlist, "remembered", None)
    fresh = UidList(str(path))
    fresh.refresh()
    assert second.records == fresh.records and second.next_uid == fresh.next_uid
    assert (second.uidvalidity, second.guid) == (fresh.uidvalidity, fresh.guid)
    assert first.records != second.records  # the kept parse was a copy
    # A replaced file (new inode) is parsed whole again.
    monkeypatch.setattr(uidlist, "remembered", {str(path): uidlist._Parsed(first, os.stat(path))})
    parsed.clear()
    replacement = tmp_path / "new"
    replacement.write_text("3 V9 N3\n1 :x\n2 :y\n")
    os.replace(replacement, path)
    again = UidList(str(path))
    again.refresh()
    assert again.uidvalidity == 9 and set(again.records) == {"x", "y"}
    assert parsed == ["1 :x\n2 :y\n"]


@pytest.mark.parametrize(
    "text", ["3 V54294\u00b27295 N7\n1 :a\n", "1 \u00b2 2\n1 a\n", "1 \u0661 2\n1 a\n"]
)
def test_fuzz_unicode_digits_in_the_header_make_it_corrupt(tmp_path: Path, text: str) -> None:
    """Found by fuzz/uidlist.py: `str.isdigit()` is true for `²`, which int() refuses: a
    damaged header raised ValueError, and no mailbox with it could be opened."""
    ul = write(tmp_path / "dovecot-uidlist", text)
    assert not ul.exists


def test_fuzz_a_uid_of_unicode_digits_is_a_bad_line(tmp_path: Path) -> None:
    """Found by fuzz/uidlist.py, as above, in a record: the line is skipped, the rest read.
    (`١٢` is a number to int(): taken, it would be a UID no other program reads.)"""
    path = tmp_path / "dovecot-uidlist"
    ul = write(path, "3 V1 N\u00b2\n\u00b21 :a\n\u0661\u0662 :c\n2 :b\n")
    assert sorted(ul.records) == ["b"]
    assert (ul.max_uid, ul.next_uid) == (2, 3)  # an N that is no number is not one
    new = UidList(str(path))
    assert new.append_after([("d", "d")], (os.stat(path).st_ino, 0)) == [3]


def _uids(path: Path) -> dict[str, int]:
    fresh = UidList(str(path))
    fresh.refresh()
    return {b: r[0] for b, r in fresh.records.items()}


def _hint(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_size


def test_append_after_reads_nothing_when_the_file_is_as_this_process_left_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process delivering again and again to one folder (LMTP) remembers where its last
    append left the file and the next UID: the next append reads no byte of it."""
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "_tails", {})
    path = tmp_path / "u"
    path.write_text("3 V1 N1\n" + "".join(f"{i} :m{i}\n" for i in range(1, 300)))
    ul = UidList(str(path))
    with DotLock(str(path)):
        assert ul.append_after([("a", "a")], _hint(path)) == [300]  # reads the tail once
    reads: list[int] = []
    real = os.pread

    def spy(fd: int, n: int, offset: int) -> bytes:
        reads.append(offset)
        return real(fd, n, offset)

    monkeypatch.setattr(uidlist.os, "pread", spy)
    for i in range(3):
        with DotLock(str(path)):
            assert ul.append_after([(f"b{i}", f"b{i}")], _hint(path)) == [301 + i]
    assert reads == []
    assert path.read_text().endswith("300 :a\n301 :b0\n302 :b1\n303 :b2\n")


def test_append_after_reads_only_what_others_appended_since_its_own_last_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "_tails", {})
    path = tmp_path / "u"
    path.write_text("3 V1 N1\n1 :a\n")
    ul = UidList(str(path))
    with DotLock(str(path)):
        assert ul.append_after([("b", "b")], _hint(path)) == [2]
    with open(path, "a") as f:  # another process (Dovecot, an IMAP session) gave 3 and 7
        f.write("3 :c\n7 W10 :d:2,S\n")
    with DotLock(str(path)):
        assert ul.append_after([("d", "d"), ("e", "e")], _hint(path)) == [7, 8]
    assert _uids(path) == {"a": 1, "b": 2, "c": 3, "d": 7, "e": 8}


def test_append_after_finds_a_uid_given_to_its_file_before_another_thread_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads of one process deliver to one folder: the first takes its hint; another
    process gives its file a UID; the second thread appends (and is remembered as the last
    to write). The first thread must still see that UID, which lies before where the
    second's append left the file: it reads from its own hint, not from there."""
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "_tails", {})
    path = tmp_path / "u"
    path.write_text("3 V1 N1\n1 :a\n")
    first, second = UidList(str(path)), UidList(str(path))
    hint = _hint(path)  # the first thread's file is linked after this
    with open(path, "a") as f:
        f.write("2 :mine\n")  # a scan by another process found it
    with DotLock(str(path)):
        assert second.append_after([("theirs", "theirs")], _hint(path)) == [3]
    with DotLock(str(path)):
        assert first.append_after([("mine", "mine")], hint) == [2]
    assert _uids(path) == {"a": 1, "mine": 2, "theirs": 3}
    assert path.read_text().count(":mine") == 1


def test_append_after_a_rewrite_reads_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the process remembers is of one inode: a file replaced since (a rewrite, a
    renumbering under a new UIDVALIDITY with a higher N) is read as new."""
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "_tails", {})
    path = tmp_path / "u"
    path.write_text("3 V1 N1\n1 :a\n")
    ul = UidList(str(path))
    with DotLock(str(path)):
        assert ul.append_after([("b", "b")], _hint(path)) == [2]
    replacement = tmp_path / "r"
    replacement.write_text("3 V2 N50\n40 :a\n41 :b\n")
    os.rename(replacement, path)
    with DotLock(str(path)):
        assert ul.append_after([("c", "c")], _hint(path)) == [50]
    assert _uids(path) == {"a": 40, "b": 41, "c": 50}


def test_remembered_tails_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailstore import uidlist

    monkeypatch.setattr(uidlist, "_tails", {})
    monkeypatch.setattr(uidlist, "TAILS_MAX", 3)
    for i in range(6):
        path = tmp_path / f"u{i}"
        path.write_text("3 V1 N1\n")
        with DotLock(str(path)):
            assert UidList(str(path)).append_after([("a", "a")], _hint(path)) == [1]
    assert list(uidlist._tails) == [str(tmp_path / f"u{i}") for i in (3, 4, 5)]
