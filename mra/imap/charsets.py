"""The charsets SEARCH decodes its strings from (`SEARCH CHARSET name ...`, RFC 3501 6.4.4):
every text encoding Python's codecs know, under any of the names Python knows it by.

`decoder(name)` gives the function that turns a search string of that charset into text, or
None for a charset we cannot decode (answer `NO [BADCHARSET (...)]` with `PREFERRED`). As
Dovecot (lib-charset `charset_is_utf8`), UTF-8, UTF8, US-ASCII and ASCII all decode as UTF-8,
so a US-ASCII search with 8-bit octets matches what it matches there. Octets that are not
valid in the charset make the string invalid: the command answers BAD, as Dovecot's "Invalid
search key".

Names are compared as Python compares them (case and punctuation aside: "ISO_8859-1:1987",
"iso-8859-1" and "Latin1" are one charset), but looked up in a table made once from the
`encodings` package's own module names and aliases, and `codecs.lookup()` only ever sees a
name from that table. Asked for a name it does not know, `encodings.search_function` remembers
the miss for the life of the process: a client sending one unknown charset name after another
would grow that cache without bound (tests/unit/imap/test_ext_search_i18n.py,
`test_attack_unknown_charset_names_do_not_grow_the_codec_cache`). The codecs that are not
charsets (base64, zlib, rot13, Python's escapes, IDNA, punycode) are not offered.
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import pkgutil
import re
from collections.abc import Callable

__all__ = ["PREFERRED", "decoder"]

PREFERRED = (
    "UTF-8",
    "US-ASCII",
    *(f"ISO-8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
    *(f"WINDOWS-{n}" for n in range(1250, 1259)),
    "KOI8-R",
    "KOI8-U",
    "SHIFT_JIS",
    "EUC-JP",
    "ISO-2022-JP",
    "GB2312",
    "GBK",
    "GB18030",
    "BIG5",
    "BIG5-HKSCS",
    "EUC-KR",
    "ISO-2022-KR",
    "TIS-620",
    "UTF-16",
    "UTF-16BE",
    "UTF-16LE",
    "UTF-32",
    "UTF-7",
)
"""Listed in `NO [BADCHARSET (...)]`: the MIME names of the charsets mail is mostly written
in. Any other name Python knows is accepted too (the list would be 300 names long)."""

_AS_UTF8 = frozenset({"utf_8", "utf8", "us_ascii", "ascii"})
_NOT_CHARSETS = frozenset(
    {"aliases", "charmap", "idna", "punycode", "raw_unicode_escape", "undefined"}
    | {"unicode_escape", "mbcs", "oem"}
)
_PUNCTUATION = re.compile(r"[^0-9a-z]+")
MAX_NAME = 64
"""Longer names are unknown without a look: the longest of Python's is 20 characters."""


def _normal(name: str) -> str:
    return _PUNCTUATION.sub("_", name.lower()).strip("_")


def _names() -> dict[str, str]:
    """Every name Python knows a codec by (normalised) -> the codec module's name."""
    names: dict[str, str] = {}
    for module in pkgutil.iter_modules(encodings.__path__):
        names[_normal(module.name)] = module.name
    for alias, module_name in encodings.aliases.aliases.items():
        names.setdefault(_normal(alias), module_name)
    return {k: v for k, v in names.items() if v not in _NOT_CHARSETS}


_NAMES = _names()


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8")


def decoder(name: str) -> Callable[[bytes], str] | None:
    """How to decode a search string written in the charset `name`, or None if it is none
    we know. The function raises ValueError (UnicodeDecodeError) for octets that are not
    valid in the charset."""
    if len(name) > MAX_NAME:
        return None
    key = _normal(name)
    if key in _AS_UTF8:
        return _utf8
    module = _NAMES.get(key)
    if module is None:
        return None
    try:
        info = codecs.lookup(module)  # a name from our table: the codec caches stay bounded
    except LookupError:  # mbcs and its like exist on Windows only
        return None
    if not info._is_text_encoding:  # base64, zlib...
        return None
    decode = info.decode

    def decode_strict(raw: bytes) -> str:
        return decode(raw, "strict")[0]

    return decode_strict
