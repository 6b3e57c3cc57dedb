"""The i;unicode-casemap comparator (RFC 5051) that SEARCH compares strings with, as Dovecot 2.3
applies it: the comparator of I18NLEVEL=1 (RFC 5255 section 4).

A search key matches when its folded form is a substring of the folded text. Folding maps each
character on its own, as Dovecot's `uni_utf8_to_decomposed_titlecase` (src/lib/unichar.c, with
the tables src/lib/unicodemap.pl makes from UnicodeData.txt) does:

1. the character's simple titlecase mapping (UnicodeData field 14), when it has one: "a" is
   "A", "ı" and "i" are "I", "ſ" is "S", "µ" is Greek "Μ"; "ß" has none and stays "ß" (it is
   not "ss": the full mappings of SpecialCasing.txt are not used);
2. then its decomposition (field 5, canonical or compatibility, the `<tag>` dropped), one
   level deep, unless the titlecased character has a titlecase field of its own (the four
   digraphs "ǅ", "ǈ", "ǋ", "ǲ"); Hangul syllables are decomposed algorithmically. A
   decomposition into several characters is used only for characters of the BMP (Dovecot's
   table of them has 16-bit keys).

RFC 5051 section 2 asks for the two steps to be repeated until nothing changes; Dovecot takes
each once, and so do we, so that the same messages match on both servers (compared side by
side in tests/interop/test_imap_dovecot_search.py): "ǖ" folds to "Ü" + macron, which holds
no "U"; the ligature "ﬁ" folds to "fi" in lower case, which no key typed as "fi" (folded
"FI") is part of; "é" and "e" + U+0301 are both "E" + U+0301. The one difference left is
the Unicode version: Dovecot 2.3.19's tables predate Unicode 12, ours are Python's (14), so a
character added since ("ꞔ", whose capital came in Unicode 12) folds here and not there.

Speed. Most text is ASCII: folded by `str.upper()`. Other text is folded by
`unicodedata.normalize("NFKD", text.upper())`, which is the same thing, character by
character, except for the "slow" characters, where the full uppercase mapping, the recursive
decomposition or canonical reordering would differ ("ß", "ǖ", "ﬁ", combining marks, and
everything beyond the BMP, which is rare). A text without them (all Latin-1 text but "ß",
found without a scan) goes the quick way; "ß", the one of them everyday text is full of, is
set aside while it does; a text with a few others goes the quick way between them, one with
many through a table, character by character. The tables cover every character with a
mapping (all below U+30000) and are built once per process, on the first non-ASCII text (0.1
to 0.3 s): `fold` is for message text, folded off the reactor. A search key is folded when
the command is parsed, on the reactor: `fold_key` folds it character by character and never
builds the tables.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

__all__ = ["fold", "fold_char", "fold_key"]

HANGUL_FIRST = 0xAC00
HANGUL_LAST = 0xD7A3
MAPPED_BELOW = 0x30000
"""No character from here on has a titlecase mapping or a decomposition (tested)."""

# Titlecase letters whose UnicodeData line names themselves as their titlecase (field 14):
# unicodemap.pl keeps no decomposition for a character with a titlecase field.
_OWN_TITLECASE = frozenset("\u01c5\u01c8\u01cb\u01f2")


def fold_char(c: str) -> str:
    """One character folded: its simple titlecase, then its decomposition one level deep."""
    t = c.title()
    if len(t) != 1:  # a full mapping (SpecialCasing.txt): no simple titlecase
        t = c
    code = ord(t)
    if HANGUL_FIRST <= code <= HANGUL_LAST:
        return unicodedata.normalize("NFD", t)  # L V [T], as unichar.c computes it
    if t in _OWN_TITLECASE:
        return t
    decomposition = unicodedata.decomposition(t).split()
    if decomposition and decomposition[0].startswith("<"):
        del decomposition[0]  # <compat>, <font>, <super>...: used all the same
    if len(decomposition) == 1:
        return chr(int(decomposition[0], 16))
    if not decomposition or code > 0xFFFF:
        return t
    return "".join(chr(int(x, 16)) for x in decomposition)


_fold_char_cached = functools.lru_cache(maxsize=4096)(fold_char)


def fold_key(text: str) -> str:
    """A search key folded (see the module docstring): cheap for the short strings keys are."""
    if text.isascii():
        return text.upper()
    return "".join(map(_fold_char_cached, text))


class _Tables:
    """What `fold` needs for non-ASCII text, made once per process."""

    def __init__(self) -> None:
        table: dict[int, str] = {}
        slow: list[int] = []
        for code in range(MAPPED_BELOW):
            if 0xD800 <= code <= 0xDFFF:
                continue
            c = chr(code)
            folded = fold_char(c)
            if folded != c:
                table[code] = folded
            quick = unicodedata.normalize("NFKD", c.upper())
            if quick != folded or unicodedata.combining(c) or unicodedata.combining(quick[0]):
                slow.append(code)
        self.table = table
        # Every character beyond the BMP counts as slow: a class holding some of them only is
        # matched range by range, one holding them all costs one comparison. They are rare.
        bmp = _char_class([c for c in slow if c <= 0xFFFF])
        self.slow = re.compile("(" + bmp[:-1] + "\U00010000-\U0010ffff])")
        # "ß", the one of them everyday text is full of, has a way of its own (see fold).
        others = [c for c in slow if c <= 0xFFFF and chr(c) != SHARP_S]
        self.slow_but_sharp_s = re.compile(_char_class(others)[:-1] + "\U00010000-\U0010ffff]")
        self.latin1_but_sharp_s = [chr(c) for c in others if c <= 0xFF]  # none (tested)


def _char_class(codes: list[int]) -> str:
    """A regular expression character class of sorted code points, as ranges."""
    parts = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        first, last = re.escape(chr(codes[i])), re.escape(chr(codes[j]))
        parts.append(first if i == j else f"{first}-{last}")
        i = j + 1
    return "[" + "".join(parts) + "]"


SHARP_S = "\u00df"
_PLACEHOLDER = "\ue000"  # a private use character: upper() and NFKD leave it as it is
_tables: _Tables | None = None
_tables_lock = threading.Lock()


def _get_tables() -> _Tables:
    global _tables
    if _tables is None:
        with _tables_lock:
            if _tables is None:
                _tables = _Tables()
    return _tables


def _quick(text: str) -> str:
    return unicodedata.normalize("NFKD", text.upper())


def fold(text: str) -> str:
    """Message text folded (see the module docstring). The first non-ASCII text of the
    process builds the tables: call it off the reactor."""
    if text.isascii():
        return text.upper()
    tables = _get_tables()
    try:  # Latin-1 text (mostly ASCII, as here) has no slow character but "ß": no scan
        text.encode("latin-1")
        others = any(c in text for c in tables.latin1_but_sharp_s)
    except UnicodeEncodeError:
        others = tables.slow_but_sharp_s.search(text) is not None
    if not others:
        if SHARP_S not in text:
            return _quick(text)
        if _PLACEHOLDER not in text:  # upper() would make "SS" of it: out of its way
            return _quick(text.replace(SHARP_S, _PLACEHOLDER)).replace(_PLACEHOLDER, SHARP_S)
    pieces = tables.slow.split(text)
    if len(pieces) > len(text) // 32:  # Vietnamese, text written decomposed...
        return text.translate(tables.table)
    # A few of them (an emoji, a ligature): the pieces between them the quick way. They hold
    # no combining mark, so no canonical reordering crosses a piece's edge.
    table = tables.table
    return "".join(
        _quick(piece) if i % 2 == 0 else table.get(ord(piece), piece)
        for i, piece in enumerate(pieces)
    )
