"""Comparators and match types (RFC 5228 sections 2.7.1 and 2.7.3).

Comparisons are done on octets, the UTF-8 form of the strings (section 2.7.2), so that, as
the RFC says, "?" matches exactly one octet under both "i;octet" and "i;ascii-casemap".
`bytes.lower()` folds only A-Z, which is exactly "i;ascii-casemap" (RFC 4790 section 9.2):
non-ASCII letters are never folded.

Keys are literals, so a `Matcher` is built once at parse time with its keys already folded
and its wildcard patterns compiled. Wildcard matching is the linear two-pointer algorithm with
one backtrack point, O(len(key) * len(value)) in the worst case; no regular expressions, so no
catastrophic backtracking on hostile headers.
"""

from __future__ import annotations

from collections.abc import Iterable

OCTET = "i;octet"
ASCII_CASEMAP = "i;ascii-casemap"
COMPARATORS = frozenset({OCTET, ASCII_CASEMAP})

IS = "is"
CONTAINS = "contains"
MATCHES = "matches"
MATCH_TYPES = frozenset({IS, CONTAINS, MATCHES})

_STAR = -1  # "*": zero or more octets
_ANY = -2  # "?": exactly one octet
_BACKSLASH = 0x5C
_ASTERISK = 0x2A
_QUESTION = 0x3F


def to_octets(value: str) -> bytes:
    """The UTF-8 octets of a string; octets smuggled in with surrogateescape come back as-is."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")


def compile_glob(pattern: bytes) -> tuple[int, ...]:
    """Turn a :matches key into items: an octet value, _STAR or _ANY.

    Section 2.7.1: "*" and "?" may be escaped with a backslash to match themselves; any other
    escaped octet is that octet. A trailing lone backslash matches a backslash (as in
    Pigeonhole). Runs of "*" collapse into one.
    """
    items: list[int] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == _BACKSLASH and i + 1 < n:
            items.append(pattern[i + 1])
            i += 2
            continue
        if c == _ASTERISK:
            if not items or items[-1] != _STAR:
                items.append(_STAR)
        elif c == _QUESTION:
            items.append(_ANY)
        else:
            items.append(c)
        i += 1
    return tuple(items)


def glob_match(items: tuple[int, ...], value: bytes) -> bool:
    """Whether the whole of `value` matches the compiled pattern."""
    p = 0
    v = 0
    n_items = len(items)
    n_value = len(value)
    star = -1  # index in items of the last "*" seen
    star_v = 0  # where in value that "*" currently stops
    while v < n_value:
        if p < n_items and (items[p] == _ANY or items[p] == value[v]):
            p += 1
            v += 1
        elif p < n_items and items[p] == _STAR:
            star = p
            star_v = v
            p += 1
        elif star >= 0:
            # Let the last "*" swallow one more octet and retry from there.
            star_v += 1
            v = star_v
            p = star + 1
        else:
            return False
    while p < n_items and items[p] == _STAR:
        p += 1
    return p == n_items


class Matcher:
    """A match type, a comparator and a key-list, ready to test values."""

    __slots__ = ("comparator", "globs", "keys", "match_type")

    def __init__(
        self,
        match_type: str,
        comparator: str,
        keys: tuple[bytes, ...],
        globs: tuple[tuple[int, ...], ...],
    ) -> None:
        self.match_type = match_type
        self.comparator = comparator
        self.keys = keys  # folded for the comparator
        self.globs = globs  # compiled keys, for :matches

    def __repr__(self) -> str:
        return f"Matcher({self.match_type!r}, {self.comparator!r}, {self.keys!r})"

    @classmethod
    def build(cls, match_type: str, comparator: str, keys: Iterable[str]) -> Matcher:
        folded = tuple(cls._fold(comparator, to_octets(k)) for k in keys)
        globs = tuple(compile_glob(k) for k in folded) if match_type == MATCHES else ()
        return cls(match_type, comparator, folded, globs)

    @staticmethod
    def _fold(comparator: str, octets: bytes) -> bytes:
        return octets.lower() if comparator == ASCII_CASEMAP else octets

    def match(self, value: str) -> bool:
        """True if `value` matches any key."""
        octets = self._fold(self.comparator, to_octets(value))
        if self.match_type == IS:
            return any(octets == k for k in self.keys)
        if self.match_type == CONTAINS:
            return any(k in octets for k in self.keys)
        return any(glob_match(g, octets) for g in self.globs)

    def match_any(self, values: Iterable[str]) -> bool:
        """True if any value matches any key (the "any combination" rule of section 5)."""
        return any(self.match(v) for v in values)
