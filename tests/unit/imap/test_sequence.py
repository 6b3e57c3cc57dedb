"""Sequence sets (RFC 3501 section 9): parse, resolve by sequence number and by UID, format."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mra.imap.sequence import (
    MAX_NUMBER,
    SequenceError,
    SequenceSet,
    contains,
    count,
    format_ranges,
    format_set,
    iter_numbers,
)


def seqs(text: str, n: int) -> list[int]:
    return list(iter_numbers(SequenceSet.parse(text).resolve_seqs(n)))


def uids(text: str, uid_list: list[int]) -> list[int]:
    """The UIDs matched (not their sequence numbers), for readable assertions."""
    return [uid_list[s - 1] for s in iter_numbers(SequenceSet.parse(text).resolve_uids(uid_list))]


def test_parse() -> None:
    assert SequenceSet.parse("1,3:5,7:*,*").ranges == ((1, 1), (3, 5), (7, None), (None, None))
    assert SequenceSet.parse("5:3").ranges == ((5, 3),)
    assert str(SequenceSet.parse("1,3:5,7:*,*,*:2")) == "1,3:5,7:*,*,*:2"
    assert SequenceSet.parse("4294967295").ranges == ((MAX_NUMBER, MAX_NUMBER),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ",",
        "1,",
        ",1",
        "1:",
        ":1",
        "1::2",
        "a",
        "-1",
        "+1",
        "01",
        "1 2",
        "1:2:3",
        "$",
        "4294967296",
        "99999999999",
        "1.5",
        "**",
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(SequenceError):
        SequenceSet.parse(text)


def test_uses_star() -> None:
    assert SequenceSet.parse("1:*").uses_star
    assert not SequenceSet.parse("1:4,6").uses_star


# --- message sequence numbers --------------------------------------------------------------------


def test_resolve_seqs() -> None:
    assert seqs("1,3:5,7:*", 9) == [1, 3, 4, 5, 7, 8, 9]
    assert seqs("*", 9) == [9]
    assert seqs("3:1", 9) == [1, 2, 3]
    assert seqs("*:8", 9) == [8, 9]
    assert seqs("2,1,2:3,3", 5) == [1, 2, 3]  # overlaps merged, sorted
    assert SequenceSet.parse("1:3,4:5,7").resolve_seqs(9) == [range(1, 6), range(7, 8)]


@pytest.mark.parametrize(
    ("text", "n"),
    [("0", 5), ("0:3", 5), ("6", 5), ("2:6", 5), ("6:*", 5), ("*", 0), ("1:*", 0), ("1", 0)],
)
def test_resolve_seqs_out_of_range_is_an_error(text: str, n: int) -> None:
    # RFC 3501 section 9: BAD for a number beyond the mailbox, "*" in an empty one included.
    with pytest.raises(SequenceError):
        SequenceSet.parse(text).resolve_seqs(n)


def test_resolve_seqs_is_lazy_for_big_mailboxes() -> None:
    start = time.perf_counter()
    ranges = SequenceSet.parse("1:*").resolve_seqs(10_000_000)
    assert ranges == [range(1, 10_000_001)]
    assert count(ranges) == 10_000_000
    assert time.perf_counter() - start < 0.1


# --- UIDs ----------------------------------------------------------------------------------------

UIDS = [3, 4, 7, 10, 11, 12, 20]


def test_resolve_uids() -> None:
    assert uids("1:*", UIDS) == UIDS
    assert uids("4:11", UIDS) == [4, 7, 10, 11]
    assert uids("11:4", UIDS) == [4, 7, 10, 11]
    assert uids("5,6,8:9,100", UIDS) == []  # non-existent UIDs are ignored
    assert uids("*", UIDS) == [20]
    assert uids("0,3", UIDS) == [3]  # 0 matches nothing, without an error
    assert SequenceSet.parse("10:12,3").resolve_uids(UIDS) == [range(1, 2), range(4, 7)]


def test_uid_n_star_above_the_highest_still_includes_the_highest() -> None:
    # RFC 3501 6.4.8: Thunderbird's "UID FETCH <UIDNEXT>:*" must see the last message.
    assert uids("21:*", UIDS) == [20]
    assert uids("4000000000:*", UIDS) == [20]


def test_uid_sets_on_an_empty_mailbox() -> None:
    for text in ("*", "1:*", "5:*", "1", "1,2:3"):
        assert SequenceSet.parse(text).resolve_uids([]) == []


def test_resolve_uids_100k_messages() -> None:
    big = list(range(1, 200_001, 2))  # 100,000 UIDs
    start = time.perf_counter()
    ranges = SequenceSet.parse("1:*").resolve_uids(big)
    assert ranges == [range(1, 100_001)]
    ranges = SequenceSet.parse("100:200,199999:*,150001").resolve_uids(big)
    assert [big[s - 1] for s in iter_numbers(ranges)] == [
        *range(101, 200, 2),
        150001,
        199999,
    ]
    assert time.perf_counter() - start < 0.1


def test_contains() -> None:
    ranges = SequenceSet.parse("1:3,7,10:*").resolve_seqs(12)
    assert [n for n in range(0, 14) if contains(ranges, n)] == [1, 2, 3, 7, 10, 11, 12]
    assert not contains([], 1)


# --- formatting ----------------------------------------------------------------------------------


def test_format_set() -> None:
    assert format_set([1, 2, 3, 5]) == "1:3,5"
    assert format_set([7]) == "7"
    assert format_set([5, 1, 2, 3]) == "5,1:3"  # order kept: COPYUID pairs by position
    assert format_set([3, 2, 1]) == "3,2,1"
    assert format_set(range(1, 100_001)) == "1:100000"
    with pytest.raises(ValueError):
        format_set([])
    with pytest.raises(ValueError):
        format_set([0])
    with pytest.raises(ValueError):
        format_set([MAX_NUMBER + 1])


def test_format_ranges() -> None:
    assert format_ranges([range(1, 4), range(5, 6)]) == "1:3,5"
    with pytest.raises(ValueError):
        format_ranges([])
    with pytest.raises(ValueError):
        format_ranges([range(3, 3)])


@given(st.sets(st.integers(min_value=1, max_value=300), min_size=1))
def test_format_parse_round_trip(numbers: set[int]) -> None:
    ordered = sorted(numbers)
    text = format_set(ordered)
    assert list(iter_numbers(SequenceSet.parse(text).resolve_seqs(300))) == ordered
    assert list(iter_numbers(SequenceSet.parse(text).resolve_uids(ordered))) == list(
        range(1, len(ordered) + 1)
    )
    assert format_ranges(SequenceSet.parse(text).resolve_seqs(300)) == text


@given(
    st.lists(st.tuples(st.integers(1, 50) | st.none(), st.integers(1, 50) | st.none()), min_size=1),
    st.sets(st.integers(1, 60)),
)
def test_resolve_uids_matches_a_naive_reading(
    ranges: list[tuple[int | None, int | None]], uid_set: set[int]
) -> None:
    uid_list = sorted(uid_set)
    seq_set = SequenceSet(tuple(ranges))
    got = [uid_list[s - 1] for s in iter_numbers(seq_set.resolve_uids(uid_list))]
    expected = set()
    if uid_list:
        star = uid_list[-1]
        for lo, hi in ranges:
            a, b = sorted((star if lo is None else lo, star if hi is None else hi))
            expected |= {u for u in uid_list if a <= u <= b}
    assert got == sorted(expected)
