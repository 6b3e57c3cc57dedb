"""Comparators and match types (RFC 5228 2.7, RFC 5231 relational, RFC 4790 ascii-numeric,
draft-ietf-sieve-regex).

Comparisons are done on octets, the UTF-8 form of the strings (RFC 5228 section 2.7.2), so
that, as the RFC says, "?" matches exactly one octet under both "i;octet" and
"i;ascii-casemap". `bytes.lower()` folds only A-Z, which is exactly "i;ascii-casemap" (RFC
4790 section 9.2): non-ASCII letters are never folded.

Keys that are literals are prepared once at parse time (folded, wildcards compiled, regular
expressions compiled); keys holding variables are prepared when the test runs. Wildcard
matching is the linear two-pointer algorithm with one backtrack point, O(len(key) *
len(value)) in the worst case. Match values (RFC 5229 3.2), wanted only when the script uses
"variables", are found the way Pigeonhole finds them: each "*" but the last as short as
possible. Regular expressions backtrack (Python's `re`); what bounds them is the CPU time limit
of the whole run (`cpulimit`), which the `re` engine honours (it checks for signals).
"""

from __future__ import annotations

from .errors import SieveError
from .strings import to_octets

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable, Sequence

OCTET = "i;octet"
ASCII_CASEMAP = "i;ascii-casemap"
ASCII_NUMERIC = "i;ascii-numeric"
COMPARATORS = frozenset({OCTET, ASCII_CASEMAP, ASCII_NUMERIC})

IS = "is"
CONTAINS = "contains"
MATCHES = "matches"
REGEX = "regex"
VALUE = "value"
COUNT = "count"
MATCH_TYPES = frozenset({IS, CONTAINS, MATCHES, REGEX, VALUE, COUNT})
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})

_STAR = -1  # "*": zero or more octets
_ANY = -2  # "?": exactly one octet
_BACKSLASH = 0x5C
_ASTERISK = 0x2A
_QUESTION = 0x3F

# How many match values (${0} ... ${N}) are kept; RFC 5229 section 3.2 asks for 0 to 9.
MAX_MATCH_VALUES = 32


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


def glob_match(items: Sequence[int], value: bytes, start: int = 0, first: int = 0) -> bool:
    """Whether value[start:] matches items[first:] as a whole."""
    p = first
    v = start
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


def glob_captures(items: Sequence[int], value: bytes) -> list[tuple[int, int]]:
    """The spans of the match values of a pattern that matches `value`: the whole value, then
    what each wildcard took, "*" as short as the rest of the pattern allows (as Pigeonhole)."""
    spans = [(0, len(value))]
    v = 0
    n_value = len(value)
    for p, item in enumerate(items):
        if item == _ANY:
            spans.append((v, v + 1))
            v += 1
        elif item == _STAR:
            stop = v
            while stop <= n_value and not glob_match(items, value, stop, p + 1):
                stop += 1
            spans.append((v, stop))
            v = stop
        else:
            v += 1
    return spans


def numeric(octets: bytes) -> int | None:
    """i;ascii-numeric (RFC 4790 section 9.1): the number the leading digits spell, or None
    (positive infinity) when the string does not start with a digit."""
    end = 0
    while end < len(octets) and 0x30 <= octets[end] <= 0x39:
        end += 1
    if end == 0:
        return None
    digits = octets[:end].lstrip(b"0") or b"0"
    if len(digits) > 4000:  # int() refuses more than 4300 digits; any such is "huge"
        return 10**4000
    return int(digits)


def _compare(comparator: str, a: bytes, b: bytes) -> int:
    """-1, 0 or 1: the ordering of a and b under the comparator (a, b already folded)."""
    if comparator == ASCII_NUMERIC:
        na, nb = numeric(a), numeric(b)
        if na is None or nb is None:
            return 0 if na is None and nb is None else (1 if na is None else -1)
        return (na > nb) - (na < nb)
    return (a > b) - (a < b)


def _relation(relation: str, order: int) -> bool:
    if relation == "gt":
        return order > 0
    if relation == "ge":
        return order >= 0
    if relation == "lt":
        return order < 0
    if relation == "le":
        return order <= 0
    if relation == "eq":
        return order == 0
    return order != 0  # "ne"


def check_match(match_type: str, comparator: str, line: int) -> None:
    """A comparator that cannot do a match type is a compile-time error (RFC 4790 section
    9.1: i;ascii-numeric offers equality and ordering, no substring)."""
    if comparator == ASCII_NUMERIC and match_type in (CONTAINS, MATCHES, REGEX):
        raise SieveError(f"comparator {comparator!r} cannot be used with ':{match_type}'", line)


class Regex:
    """A ":regex" key: translated (so checked) now, compiled by `re` only when a value that
    contains its required literals comes along (`regex.py`). It lives here, not there, so
    that running a script cached compiled (`compiled.py`) imports `regex` only when a value
    passes that test: most never do."""

    __slots__ = ("compiled", "ignore_case", "literals", "pattern")

    def __init__(self, pattern: bytes, *, ignore_case: bool) -> None:
        from .regex import required_literals, translate

        translate(pattern)  # RegexError now, for a key that can never compile
        self.pattern = pattern
        self.ignore_case = ignore_case
        literals = required_literals(pattern)
        self.literals = [lit.lower() for lit in literals] if ignore_case else literals
        self.compiled: re.Pattern[bytes] | None = None

    def search(self, value: bytes) -> re.Match[bytes] | None:
        if self.literals:
            folded = value.lower() if self.ignore_case else value
            if not all(literal in folded for literal in self.literals):
                return None
        if self.compiled is None:
            from .regex import compile_regex

            self.compiled = compile_regex(self.pattern, ignore_case=self.ignore_case)
        return self.compiled.search(value)


class Matcher:
    """A match type (with its relation), a comparator and a key-list, ready to test values."""

    __slots__ = ("comparator", "keys", "match_type", "prepared", "relation")

    def __init__(
        self, match_type: str, comparator: str, keys: Iterable[str], relation: str = ""
    ) -> None:
        self.match_type = match_type
        self.comparator = comparator
        self.relation = relation
        prepared: tuple[object, ...] = ()
        if match_type == REGEX:
            # A pattern is not folded: lower-casing "\\W" would make it "\\w".
            self.keys = tuple(to_octets(k) for k in keys)
            prepared = tuple(Regex(k, ignore_case=comparator == ASCII_CASEMAP) for k in self.keys)
        else:
            self.keys = tuple(self._fold(to_octets(k)) for k in keys)
        if match_type == MATCHES:
            prepared = tuple(compile_glob(k) for k in self.keys)
        self.prepared = prepared

    @classmethod
    def build(
        cls, match_type: str, comparator: str, keys: Iterable[str], relation: str = ""
    ) -> Matcher:
        return cls(match_type, comparator, keys, relation)

    def __repr__(self) -> str:
        return f"Matcher({self.match_type!r}, {self.comparator!r}, {self.keys!r})"

    def _fold(self, octets: bytes) -> bytes:
        return octets.lower() if self.comparator == ASCII_CASEMAP else octets

    def match(self, value: str) -> bool:
        """True if `value` matches any key (never for :count, which needs all values)."""
        return self._match(to_octets(value), None)

    def _match(self, original: bytes, captures: list[str] | None) -> bool:
        """Match one value; `captures` (when wanted) receives the match values, taken from
        the original octets (folding keeps every octet where it is)."""
        match_type = self.match_type
        if match_type == REGEX:
            # Compiled with IGNORECASE for i;ascii-casemap: bytes patterns fold only ASCII.
            for pattern in self.prepared:
                found = pattern.search(original)  # type: ignore[attr-defined]
                if found is not None:
                    if captures is not None:
                        groups = [found.group(0)] + [g or b"" for g in found.groups()]
                        captures[:] = [_text(g) for g in groups[:MAX_MATCH_VALUES]]
                    return True
            return False
        octets = self._fold(original)
        if match_type == IS:
            if self.comparator == ASCII_NUMERIC:
                return any(_compare(ASCII_NUMERIC, octets, k) == 0 for k in self.keys)
            return octets in self.keys
        if match_type == CONTAINS:
            return any(k in octets for k in self.keys)
        if match_type == MATCHES:
            for glob in self.prepared:
                assert isinstance(glob, tuple)
                if glob_match(glob, octets):
                    if captures is not None:
                        spans = glob_captures(glob, octets)[:MAX_MATCH_VALUES]
                        captures[:] = [_text(original[a:b]) for a, b in spans]
                    return True
            return False
        if match_type == VALUE:
            return any(
                _relation(self.relation, _compare(self.comparator, octets, k)) for k in self.keys
            )
        return False  # COUNT: see match_values

    def match_values(self, values: Iterable[str], captures: list[str] | None = None) -> bool:
        """The "any combination" rule of RFC 5228 section 5: true if any value matches any
        key; :count compares the number of values (RFC 5231 section 4.1). When `captures` is
        given and the match type has match values, it receives them (RFC 5229 3.2)."""
        if self.match_type == COUNT:
            count = str(sum(1 for _ in values)).encode()
            return any(
                _relation(self.relation, _compare(self.comparator, count, k)) for k in self.keys
            )
        want = captures if self.match_type in (MATCHES, REGEX) else None
        return any(self._match(to_octets(value), want) for value in values)

    def match_any(self, values: Iterable[str]) -> bool:
        return self.match_values(values)


def _text(octets: bytes) -> str:
    return octets.decode("utf-8", "surrogateescape")
