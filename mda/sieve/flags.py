"""IMAP flag lists for the imap4flags extension (RFC 5232)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


# RFC 5232 section 2: only flags settable in IMAP; \Recent and unknown system flags are
# ignored. Canonical spelling of the system flags (RFC 3501 section 2.3.2).
SYSTEM_FLAGS = {f.lower(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}
# RFC 3501 section 9: atom-specials = "(" / ")" / "{" / SP / CTL / "%" / "*" / DQUOTE / "\"
# / "]"; keywords are atoms, so ASCII only.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')


def split_flags(strings: Iterable[str]) -> list[str]:
    """RFC 5232 section 2: a string holding a space-separated list of flags is the same as a
    list of those flags; empty strings and extra spaces are ignored."""
    return [flag for s in strings for flag in s.split(" ") if flag]


def normalize_flag(flag: str) -> str | None:
    """The flag as it will be stored, or None if it is not a valid IMAP flag (RFC 5232
    section 2: "If a flag validity check fails, the flag MUST be ignored")."""
    if flag.startswith("\\"):
        return SYSTEM_FLAGS.get(flag.lower())
    if any(c in _ATOM_SPECIALS or not ("\x21" <= c <= "\x7e") for c in flag):
        return None
    return flag


def valid_flags(strings: Iterable[str]) -> tuple[str, ...]:
    """The valid flags of a list-of-flags argument, normalized, duplicates removed."""
    flags = FlagSet()
    flags.add(strings)
    return flags.as_tuple()


class FlagSet:
    """A set of flags, case-insensitive (RFC 5232 section 3), in the order first added."""

    __slots__ = ("_flags",)

    def __init__(self) -> None:
        self._flags: dict[str, str] = {}

    def add(self, strings: Iterable[str]) -> None:
        for flag in split_flags(strings):
            normalized = normalize_flag(flag)
            if normalized is not None:
                self._flags.setdefault(normalized.lower(), normalized)

    def set(self, strings: Iterable[str]) -> None:
        self._flags.clear()
        self.add(strings)

    def remove(self, strings: Iterable[str]) -> None:
        for flag in split_flags(strings):
            self._flags.pop(flag.lower(), None)

    def as_tuple(self) -> tuple[str, ...]:
        return tuple(self._flags.values())

    def as_frozenset(self) -> frozenset[str]:
        return frozenset(self._flags.values())
