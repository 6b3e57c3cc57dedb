"""SORT (RFC 5256 section 3) and SORT=DISPLAY (RFC 5957): the sort program and the order it
gives, over the fields of mra/imap/sortfields.py.

A program is a list of keys, each maybe after REVERSE; messages equal on every key keep the
order of their sequence numbers (RFC 5256 3: "ties are broken by sequence number"), whatever
REVERSE says. As Dovecot (cmd-sort.c): a key named twice counts the first time only, REVERSE
REVERSE is no REVERSE, and a program ending with REVERSE or naming an unknown key is BAD.

ARRIVAL and DATE compare to the second, as Dovecot's time_t does: two messages delivered in
the same second keep their sequence order. DATE is the sent date, or the INTERNALDATE when the
message has no Date field Dovecot can parse (RFC 5256 2.2). SIZE is RFC822.SIZE. The strings
are folded (sortfields.py), compared code point by code point.

The order is made by one stable sort per key, from the last key to the first (C code: about
25 ms a key for 100,000 messages), so it costs O(k n log n) and no comparison function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mra.imap.sortfields import SortFields

__all__ = ["KEYS", "SortError", "parse_program", "sort_uids"]


class SortError(Exception):
    """A malformed sort program: answer BAD."""


def _seconds(value: float) -> int:
    return int(value // 1)


KEYS: dict[str, Callable[[SortFields], int | str]] = {
    "ARRIVAL": lambda f: _seconds(f.arrival),
    "CC": lambda f: f.cc,
    "DATE": lambda f: _seconds(f.arrival if f.date is None else f.date),
    "FROM": lambda f: f.from_,
    "SIZE": lambda f: f.size,
    "SUBJECT": lambda f: f.subject,
    "TO": lambda f: f.to,
    # SORT=DISPLAY (RFC 5957)
    "DISPLAYFROM": lambda f: f.from_display,
    "DISPLAYTO": lambda f: f.to_display,
}


def parse_program(names: Sequence[str]) -> list[tuple[str, bool]]:
    """(key, reverse) pairs of a sort program given as its atoms."""
    if not names:
        raise SortError("empty sort program")
    program: list[tuple[str, bool]] = []
    seen: set[str] = set()
    reverse = False
    for raw in names:
        name = raw.upper()
        if name == "REVERSE":
            reverse = not reverse
            continue
        if name not in KEYS:
            raise SortError(f"unknown sort key {raw[:20]!r}")
        if name not in seen:
            seen.add(name)
            program.append((name, reverse))
        reverse = False
    if names[-1].upper() == "REVERSE":
        raise SortError("sort program ends with REVERSE")
    return program


def sort_uids(fields: Sequence[SortFields], program: Sequence[tuple[str, bool]]) -> list[int]:
    """The UIDs of `fields` (given in sequence order) in the program's order."""
    order = list(fields)
    for name, reverse in reversed(program):
        order.sort(key=KEYS[name], reverse=reverse)  # stable, also reversed
    return [f.uid for f in order]
