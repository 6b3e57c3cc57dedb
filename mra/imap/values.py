"""The values of an IMAP command as the reader (parser.py) gives them: the generic token tree.

Values (`Value` = Atom | String | ParenList | FetchAtt)
------------------------------------------------------
`Atom(value: str)`
    Any run of non-special CHARs, as sent (not upper-cased): keywords, flags (`\\Seen`), numbers,
    sequence sets (`1:*`), LIST patterns (`%`), dates (`1-Feb-1994`), mailbox names. The reader
    cannot tell `12` the number from `12` the set or the mailbox, so it does not try: the
    `as_*` helpers (arguments.py) interpret a value in the place the command gives it.
`Nil(value: str)`
    An `Atom` spelling NIL in any case. It is an Atom, so `as_astring(Nil("nil"))` is b"nil", a
    mailbox named nil; match `Nil()` before `Atom()` where NIL means nil.
`String(value: bytes, is_literal: bool, binary: bool)`
    A quoted string (escapes removed) or a literal, synchronizing or not; `binary` for a
    literal8 `~{n}` (RFC 3516), which the reader takes only in APPEND.
`ParenList(items: tuple[Value, ...])`
    A parenthesized list.
`FetchAtt(name, section, partial)`
    `BODY[...]`, `BODY.PEEK[...]`, `BINARY[...]`, `BINARY.PEEK[...]`, `BINARY.SIZE[...]`, whose
    brackets hold spaces and a list and so cannot be an atom: `Section(part, text, fields)` and
    `partial = (origin, count)` for `<origin.count>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Atom", "FetchAtt", "Nil", "ParenList", "Section", "String", "Value"]


@dataclass(frozen=True, slots=True)
class Atom:
    """An atom as sent (ASCII, case kept)."""

    value: str


@dataclass(frozen=True, slots=True)
class Nil(Atom):
    """The atom NIL (any case): nil where the grammar has `nstring`, else the atom itself."""


@dataclass(frozen=True, slots=True)
class String:
    """A quoted string (escapes removed) or a literal."""

    value: bytes
    is_literal: bool = False
    binary: bool = False
    """A literal8 (`~{n}`, RFC 3516 4.4): its octets may be binary content (NUL included)."""


@dataclass(frozen=True, slots=True)
class Section:
    """The inside of `BODY[...]` (RFC 3501 `section`); `BODY[]` is `Section()`.

    `part` is the MIME part path (`1.2` -> (1, 2)); `text` is None, "HEADER", "HEADER.FIELDS",
    "HEADER.FIELDS.NOT", "TEXT" or "MIME" (upper-cased); `fields` the header names of
    HEADER.FIELDS[.NOT], as sent.
    """

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """A FETCH item with a section: `BODY.PEEK[1.HEADER]<0.100>`.

    `name` is upper-case: BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE; `partial` is
    `(origin, count)` (count > 0) or None.
    """

    name: str
    section: Section
    partial: tuple[int, int] | None = None

    @property
    def peek(self) -> bool:
        """True for the .PEEK forms, which do not set \\Seen."""
        return self.name.endswith(".PEEK")


Value: TypeAlias = "Atom | String | ParenList | FetchAtt"


@dataclass(frozen=True, slots=True)
class ParenList:
    """A parenthesized list."""

    items: tuple[Value, ...]
