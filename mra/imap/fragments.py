"""The value fragments of IMAP responses: numbers, strings in the form each needs, flag
lists, mailbox names, dates, FETCH section keys (mra/imap/response.py places them in whole
lines and re-exports them; its note says how the form of a string is chosen)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from functools import lru_cache

from mailstore.names import INBOX, encode_mutf7
from mra.imap.values import FetchAtt

QUOTED_MAX = 1024
"""Longest string written quoted; longer ones go as literals (shorter lines, no escaping)."""
KEPT_LINES = 512
"""Lines (and flag lists) of each kind kept once made (response.py, "Kept lines")."""
KEPT_MAX = 256
"""Longest code data, flag list or text (octets, characters) a kept line may hold."""
KEPT_FLAGS = 64

_ASTRING_ATOM_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
_ATOM_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
_NOT_QUOTABLE_RE = re.compile(rb"[\x00\r\n\x80-\xff]")
_NOT_QUOTABLE_UTF8_RE = re.compile(rb"[\x00\r\n]")  # in a string known to be UTF-8
_ESCAPE_RE = re.compile(rb'(["\\])')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def number(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"IMAP numbers are unsigned: {n}")
    return b"%d" % n


def quoted(data: bytes | str) -> bytes:
    """`"..."` with `"` and `\\` escaped; ValueError if the octets cannot be quoted."""
    raw = _bytes(data)
    if _NOT_QUOTABLE_RE.search(raw):
        raise ValueError("NUL, CR, LF and 8-bit octets cannot be quoted")
    return b'"' + _ESCAPE_RE.sub(rb"\\\1", raw) + b'"'


def literal(data: bytes | str) -> bytes:
    """`{n}` CRLF and the octets."""
    raw = _bytes(data)
    return b"{%d}\r\n" % len(raw) + raw


def string(data: bytes | str) -> bytes:
    """`string`: quoted when possible, else a literal."""
    raw = _bytes(data)
    if len(raw) <= QUOTED_MAX and not _NOT_QUOTABLE_RE.search(raw):
        return b'"' + _ESCAPE_RE.sub(rb"\\\1", raw) + b'"'
    return literal(raw)


def astring(data: bytes | str) -> bytes:
    """`astring`: an atom when it can be one (and is not NIL), else a string."""
    raw = _bytes(data)
    if len(raw) <= QUOTED_MAX and _ASTRING_ATOM_RE.fullmatch(raw) and raw.upper() != b"NIL":
        return raw
    return string(raw)


def nstring(data: bytes | str | None) -> bytes:
    """`nstring`: NIL for None, else a string."""
    return b"NIL" if data is None else string(data)


def paren(items: Iterable[bytes]) -> bytes:
    """`(a b c)` from already-written fragments."""
    return b"(" + b" ".join(items) + b")"


def _flag(flag: str) -> bytes:
    raw = flag.encode("ascii", "ignore")
    if len(raw) != len(flag):
        raise ValueError(f"{flag!r} cannot be written as a flag")
    body = raw[1:] if raw.startswith(b"\\") else raw
    if raw != b"\\*" and not _ATOM_RE.fullmatch(body):
        raise ValueError(f"{flag!r} cannot be written as a flag")
    return raw


def flag_list(flags: Iterable[str]) -> bytes:
    """`(\\Seen $Forwarded)`; `\\*` is allowed for PERMANENTFLAGS. ValueError for a non-flag."""
    key = tuple(flags)
    if len(key) <= KEPT_FLAGS and sum(map(len, key)) <= KEPT_MAX:
        return _kept_flag_list(key)
    return paren(_flag(f) for f in key)


@lru_cache(maxsize=KEPT_LINES)
def _kept_flag_list(flags: tuple[str, ...]) -> bytes:
    return paren(_flag(f) for f in flags)


def mailbox(name: str, utf8: bool = False) -> bytes:
    """A mailbox name as an astring; INBOX always `INBOX`.

    The session says which form (`utf8`: it sent ENABLE UTF8=ACCEPT or IMAP4rev2): modified
    UTF-7 (RFC 3501 5.1.3), 7-bit whatever the name, for every other session; the name itself
    in UTF-8 otherwise (RFC 6855 3, RFC 9051 5.1), quoted when it can be (RFC 9051 `quoted`
    holds UTF8-2/3/4), where `&` is only a character. Nothing else chooses the form: a session
    that did not ask for UTF-8 is never sent an 8-bit name. Only the ASCII spellings of INBOX
    are INBOX: `str.upper()` also makes one of `\u0131nbox` (dotless i), a folder of its own."""
    if _is_inbox(name):
        return b"INBOX"
    if not utf8:
        return astring(encode_mutf7(name).encode("ascii"))
    raw = name.encode("utf-8")
    if raw.isascii():
        return astring(raw)
    if len(raw) <= QUOTED_MAX and not _NOT_QUOTABLE_UTF8_RE.search(raw):
        return b'"' + _ESCAPE_RE.sub(rb"\\\1", raw) + b'"'
    return literal(raw)


def date_time(dt: datetime.datetime) -> bytes:
    """`date-time` (INTERNALDATE): `"17-Jul-1996 02:44:25 -0700"`; a naive dt is taken as UTC."""
    offset = dt.utcoffset() or datetime.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    month = _MONTHS[dt.month - 1]
    text = (
        f'"{dt.day:2d}-{month}-{dt.year:04d} {dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} '
        f'{sign}{hours:02d}{mins:02d}"'
    )
    return text.encode("ascii")


def section_key(att: FetchAtt) -> bytes:
    """The FETCH response item for a request (RFC 3501 7.4.2): `BODY[1.HEADER]<0>`.

    `.PEEK` is dropped, header names are echoed as astrings, a partial request answers with its
    origin only.
    """
    name = att.name.replace(".PEEK", "").encode("ascii")
    section = att.section
    spec = b".".join(b"%d" % n for n in section.part)
    if section.text is not None:
        spec += (b"." if spec else b"") + section.text.encode("ascii")
    if section.fields:
        spec += b" " + paren(astring(f) for f in section.fields)
    key = name + b"[" + spec + b"]"
    if att.partial is not None:
        key += b"<%d>" % att.partial[0]
    return key


def _is_inbox(name: str) -> bool:
    return name.isascii() and name.upper() == INBOX
