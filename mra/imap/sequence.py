"""Sequence sets (RFC 3501 section 9 `sequence-set`): parse, resolve, format.

A set like `1,3:5,7:*` names messages either by message sequence number (FETCH, STORE, COPY,
SEARCH keys) or by UID (the UID variants, `SEARCH UID ...`). Parsing knows nothing of the mailbox;
resolving does, and the two kinds resolve differently:

* sequence numbers (`resolve_seqs(count)`): `*` is `count`. RFC 3501 section 9 (`seq-number`):
  "The server should respond with a tagged BAD response to a command that uses a message sequence
  number greater than the number of messages in the selected mailbox. This includes "*" if the
  selected mailbox is empty." So 0, a number above `count`, and `*` on an empty mailbox raise
  `SequenceError` (answer BAD), as Dovecot does ("Invalid messageset").
* UIDs (`resolve_uids(uids)`): `*` is the highest UID in use. UIDs that do not exist are simply
  not matched (6.4.8: "a non-existent unique identifier is ignored without any error message"),
  so 0 is tolerated and matches nothing. `n:*` with n above the highest UID still includes the
  highest (6.4.8 note): Thunderbird's `UID FETCH <uidnext>:*` sees the last message. `*` on an
  empty mailbox matches nothing.

Both accept reversed ranges (`3:1` is `1:3`, section 9 `seq-range`) and answer sorted, merged
`range` objects of 1-based sequence numbers. Nothing is expanded into a list: `1:*` over 100,000
messages is one `range`, and UIDs are found by bisection of the sorted UID list (O(k log n) for k
ranges). `$` (RFC 5182 SEARCHRES) is not a set of numbers but the saved result of a SEARCH:
the selected view resolves it (mra/imap/selected.py, searching.py), `parse` rejects it.

`format_set` writes numbers back compactly (`1:3,5`) for COPYUID, APPENDUID (RFC 4315) and
ESEARCH; it keeps the order it is given, since COPYUID pairs source and destination UIDs by
position.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_NUMBER",
    "SequenceError",
    "SequenceSet",
    "contains",
    "count",
    "format_ranges",
    "format_set",
    "iter_numbers",
]

MAX_NUMBER = 2**32 - 1
"""RFC 3501 section 9: `number` (and so every UID and sequence number) is an unsigned 32-bit."""

# 0 is allowed by the syntax here (see the module docstring); other numbers have no leading zero.
_ITEM_RE = re.compile(r"(\*|0|[1-9][0-9]{0,9})(?::(\*|0|[1-9][0-9]{0,9}))?")


class SequenceError(ValueError):
    """The client's set is malformed or out of range: answer `BAD` with the message."""


Bound = int | None
"""One end of a range: a number, or None for `*`."""


def _bound(text: str) -> Bound:
    if text == "*":
        return None
    value = int(text)
    if value > MAX_NUMBER:
        raise SequenceError(f"{text} is larger than a 32-bit number")
    return value


def _merge(ranges: list[range]) -> list[range]:
    """Sort and coalesce overlapping or adjacent ranges (all with step 1, non-empty)."""
    if len(ranges) <= 1:
        return ranges
    ranges.sort(key=lambda r: r.start)
    out = [ranges[0]]
    for r in ranges[1:]:
        last = out[-1]
        if r.start <= last.stop:
            if r.stop > last.stop:
                out[-1] = range(last.start, r.stop)
        else:
            out.append(r)
    return out


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed `sequence-set`: its ranges as written, `None` standing for `*`.

    A single number `n` is the range `(n, n)`; ranges keep the order and direction the client
    wrote (`3:1` stays `(3, 1)`); resolving normalises.
    """

    ranges: tuple[tuple[Bound, Bound], ...]

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse `1,3:5,7:*`; raise `SequenceError` on anything else (empty items, signs...)."""
        if not text:
            raise SequenceError("empty sequence set")
        ranges: list[tuple[Bound, Bound]] = []
        for item in text.split(","):
            m = _ITEM_RE.fullmatch(item)
            if m is None:
                raise SequenceError(f"invalid sequence set {text[:50]!r}")
            lo = _bound(m.group(1))
            hi = lo if m.group(2) is None else _bound(m.group(2))
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        parts = []
        for lo, hi in self.ranges:
            a = "*" if lo is None else str(lo)
            parts.append(a if lo == hi else f"{a}:{'*' if hi is None else hi}")
        return ",".join(parts)

    @property
    def uses_star(self) -> bool:
        """True if the set mentions `*`, so its meaning changes as messages arrive."""
        return any(lo is None or hi is None for lo, hi in self.ranges)

    def resolve_seqs(self, count: int, *, strict: bool = True) -> list[range]:
        """The message sequence numbers named, in a mailbox of `count` messages.

        Sorted, merged ranges of 1-based numbers. Raises `SequenceError` for 0, for a number
        above `count` and for `*` when the mailbox is empty (RFC 3501 section 9: answer BAD).
        Not `strict` (a SEARCH key, which names messages to match rather than messages to
        act on, as in Dovecot), numbers above `count` and `*` of an empty mailbox name no
        message; `5:*` of two messages is still `2:5`, message 2; 0 is still an error.
        """
        out: list[range] = []
        for lo, hi in self.ranges:
            a = count if lo is None else lo
            b = count if hi is None else hi
            if a > b:
                a, b = b, a
            if a == 0:
                if count == 0 and (lo is None or hi is None):
                    if not strict:
                        continue
                    raise SequenceError("the mailbox is empty: there is no message *")
                raise SequenceError("0 is not a message sequence number")
            if b > count:
                if strict:
                    raise SequenceError(f"message {b} does not exist: the mailbox has {count}")
                b = count
                if a > b:
                    continue
            out.append(range(a, b + 1))
        return _merge(out)

    def resolve_uids(self, uids: Sequence[int]) -> list[range]:
        """The messages named by UID, as sorted merged ranges of 1-based sequence numbers.

        `uids` is the mailbox's UID list in ascending order (index i holds the UID of message
        i + 1). UIDs not in it are ignored; `*` is `uids[-1]`, so `n:*` with n above it still
        names the last message; on an empty mailbox nothing matches. Never raises.
        """
        if not uids:
            return []
        last = uids[-1]
        out: list[range] = []
        for lo, hi in self.ranges:
            a = last if lo is None else lo
            b = last if hi is None else hi
            if a > b:
                a, b = b, a
            i = bisect.bisect_left(uids, a)
            j = bisect.bisect_right(uids, b, lo=i)
            if i < j:
                out.append(range(i + 1, j + 1))
        return _merge(out)


def iter_numbers(ranges: Iterable[range]) -> Iterator[int]:
    """Every number of the ranges, in order (lazily: `1:*` is not built as a list)."""
    for r in ranges:
        yield from r


def count(ranges: Iterable[range]) -> int:
    """How many numbers the (non-overlapping) ranges hold."""
    return sum(len(r) for r in ranges)


def contains(ranges: Sequence[range], number: int) -> bool:
    """Whether `number` is in sorted, non-overlapping `ranges` (as resolve_* return): bisect."""
    i = bisect.bisect_right(ranges, number, key=lambda r: r.start) - 1
    return i >= 0 and number in ranges[i]


def format_set(numbers: Iterable[int]) -> str:
    """Write numbers as a compact sequence set, keeping their order: [1, 2, 3, 5] -> `1:3,5`.

    Runs of consecutive ascending numbers become `a:b`; nothing is sorted or deduplicated, so
    COPYUID's two sets stay paired by position. Raises ValueError for no numbers (a set is never
    empty) or a number outside 1..2**32-1.
    """
    parts: list[str] = []
    start = prev = -1
    for n in numbers:
        if not 0 < n <= MAX_NUMBER:
            raise ValueError(f"{n} cannot be written in a sequence set")
        if prev >= 0 and n == prev + 1:
            prev = n
            continue
        if prev >= 0:
            parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if prev < 0:
        raise ValueError("an empty sequence set cannot be written")
    parts.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(parts)


def format_ranges(ranges: Iterable[range]) -> str:
    """Write ranges (step 1, non-empty) as a sequence set: [range(1, 4), range(5, 6)] -> `1:3,5`."""
    parts: list[str] = []
    for r in ranges:
        if r.step != 1 or not r:
            raise ValueError(f"{r!r} is not a non-empty range with step 1")
        if r.start <= 0 or r.stop - 1 > MAX_NUMBER:
            raise ValueError(f"{r!r} cannot be written in a sequence set")
        parts.append(str(r.start) if len(r) == 1 else f"{r.start}:{r.stop - 1}")
    if not parts:
        raise ValueError("an empty sequence set cannot be written")
    return ",".join(parts)
