"""ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2) of a parsed message, written
byte for byte the way Dovecot 2.3 writes them (``lib-imap/imap-envelope.c``,
``imap-bodystructure.c``, ``imap-quote.c``).

The rules that make the octets match: NIL, quoted string or literal is chosen as Dovecot
chooses (a literal for CR, LF, 8-bit octets or more than 4 escapes); the Subject and the
display names are cleaned "for humans" (blanks collapsed, NUL as 0x80); types, subtypes and
parameter names are sent as written; defaults are spelled ``"text" "plain" ("charset"
"us-ascii")`` and ``"7bit"``; sizes and line counts are of the CRLF form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mra.imap.mime._address import Address, envelope_addresses
from mra.imap.mime._parse import Part, parse
from mra.imap.mime._partdata import PartData

__all__ = ["bodystructure", "envelope", "without_nuls"]

# IMAP strings, the way Dovecot writes them (lib-imap/imap-quote.c)

_QUOTED_MAX_ESCAPES = 4

# Every test below is one pass in C (re, bytes methods): a value may be megabytes long.
_PLAIN_QUOTED = re.compile(rb'[^\x00\r\n"\\\x80-\xff]*')  # quoted as it is
_NEEDS_LITERAL = re.compile(rb"[\r\n\x80-\xff]")
_BREAK_BEFORE_TEXT = re.compile(rb"[\r\n]+(?=[^ \t\r\n\x00])")
_HUMANS_MODIFY = re.compile(rb'[\x00\r\n\t"\\\x80-\xff]|  |\A | \Z')
_LWSP_TO_SPACE = bytes.maketrans(b"\t\r\n", b"   ")


def _literal(value: bytes) -> bytes:
    return b"{%d}\r\n" % len(value) + value


def _nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal (CR, LF, 8-bit octets or too many escapes)."""
    if value is None:
        return b"NIL"
    if _PLAIN_QUOTED.fullmatch(value) is not None:
        return b'"' + value + b'"'
    if b"\0" in value:
        value = value[: value.index(b"\0")]  # a C string
    if (
        _NEEDS_LITERAL.search(value) is not None
        or value.count(b'"') + value.count(b"\\") > _QUOTED_MAX_ESCAPES
    ):
        return _literal(value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _nstring_nolf(value: bytes | None) -> bytes:
    """:func:`_nstring` after removing CR and LF (a space where a line break was not
    followed by a blank)."""
    if value is None or (b"\r" not in value and b"\n" not in value):
        return _nstring(value)
    if _BREAK_BEFORE_TEXT.search(value) is not None:  # rare: a line break before text
        value = _BREAK_BEFORE_TEXT.sub(b" ", value)
    return _nstring(value.translate(None, b"\r\n"))


def _string_for_humans(src: bytes) -> bytes:
    """A string cleaned for display (imap_append_string_for_humans): quoted as it is if
    it needs no cleaning, else a literal with blanks collapsed and trimmed, NUL as 0x80."""
    if _HUMANS_MODIFY.search(src) is None:
        return b'"' + src + b'"'
    out = src.translate(_LWSP_TO_SPACE)
    while b"  " in out:  # each pass halves the runs of blanks: no object per run
        out = out.replace(b"  ", b" ")
    out = out.strip(b" ")
    if not out:
        return b'""'
    return _literal(out.replace(b"\0", b"\x80"))


def without_nuls(data: bytes) -> bytes:
    """``data`` with NUL octets replaced by 0x80, as Dovecot sends non-BINARY literals."""
    return data.replace(b"\0", b"\x80") if b"\0" in data else data


# --------------------------------------------------------------------------------------------
# ENVELOPE

_ENVELOPE_STRINGS = (b"date", b"subject", b"in-reply-to", b"message-id")
_ENVELOPE_ADDRESSES = (b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc")


def _address_list(addresses: Sequence[Address] | None) -> bytes:
    if not addresses:
        return b"NIL"
    out = [
        b"(%b %b %b %b)"
        % (
            b"NIL" if a.name is None else _string_for_humans(a.name),
            _nstring(a.route),
            _nstring(a.mailbox),
            _nstring(a.domain),
        )
        for a in addresses
    ]
    return b"(" + b"".join(out) + b")"


def _envelope_of(part: Part) -> bytes:
    strings: dict[bytes, bytes] = {}
    addresses: dict[bytes, list[Address]] = {}
    for f in part.fields:
        if f.value_start < 0:
            continue
        if f.lname in _ENVELOPE_STRINGS:
            strings[f.lname] = f.value.split(b"\0", 1)[0]  # the last one wins
        elif f.lname in _ENVELOPE_ADDRESSES:
            addresses.setdefault(f.lname, []).extend(envelope_addresses(f.value, part.work))
    subject = strings.get(b"subject")
    sender_from = addresses.get(b"from")
    fields = [
        _nstring_nolf(strings.get(b"date")),
        b"NIL" if subject is None else _string_for_humans(subject),
        _address_list(sender_from),
        _address_list(addresses.get(b"sender") or sender_from),
        _address_list(addresses.get(b"reply-to") or sender_from),
        _address_list(addresses.get(b"to")),
        _address_list(addresses.get(b"cc")),
        _address_list(addresses.get(b"bcc")),
        _nstring_nolf(strings.get(b"in-reply-to")),
        _nstring_nolf(strings.get(b"message-id")),
    ]
    return b"(" + b" ".join(fields) + b")"


def envelope(msg: bytes | Part) -> bytes:
    """The ENVELOPE of a message (RFC 3501 section 7.4.2), parenthesised, literals inline.

    Header values are sent as stored (RFC 2047 words are not decoded); Sender and
    Reply-To default to From; groups are ``(NIL NIL "name" NIL)`` ... ``(NIL NIL NIL NIL)``;
    unparseable addresses get Dovecot's ``MISSING_MAILBOX``/``MISSING_DOMAIN`` fillers.
    Pass a message/rfc822 part's child (``part.message``) for an encapsulated message.
    """
    return _envelope_of(parse(msg))


# --------------------------------------------------------------------------------------------
# BODY / BODYSTRUCTURE


def _params(params: list[tuple[bytes, bytes]] | None, default_charset: bool) -> bytes:
    if not params and not default_charset:
        return b"NIL"
    items: list[bytes] = []
    seen_charset = False
    for k, v in params or ():
        if k.lower() == b"charset":
            seen_charset = True
        items.append(_nstring(k) + b" " + _nstring(v))
    if default_charset and not seen_charset:
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")"


def _extension_common(d: PartData) -> bytes:
    out = []
    if d.disposition is None:
        out.append(b"NIL")
    else:
        out.append(
            b"(" + _nstring(d.disposition) + b" " + _params(d.disposition_params, False) + b")"
        )
    if d.language is None:
        out.append(b"NIL")
    else:
        out.append(b"(" + b" ".join(_nstring(x) for x in d.language) + b")")
    out.append(_nstring_nolf(d.location))
    return b" ".join(out)


_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0'


def _leaf_head(part: Part) -> tuple[bytes, bool]:
    """A non-multipart part up to its size, and whether it is text (then a line count
    follows)."""
    d = part.data
    text = False
    if part.rfc822:
        out = b'"message" "rfc822"'
    elif d.content_type is None:
        text = True
        out = b'"text" "plain"'
    elif d.content_type.lower() == b"multipart" or (
        d.content_type.lower() == b"message" and (d.content_subtype or b"").lower() == b"rfc822"
    ):
        # A part that says multipart (even without a subtype) or message/rfc822 but is not
        # parsed as one (broken, or past the nesting limits): Dovecot calls it
        # application/octet-stream rather than contradict the part's structure.
        out = b'"application" "octet-stream"'
    else:
        text = d.content_type.lower() == b"text"
        out = _nstring(d.content_type) + b" " + _nstring(d.content_subtype or b"")
    out += b" " + _params(d.params, text)
    out += b" " + _nstring_nolf(d.content_id) + b" " + _nstring_nolf(d.description)
    out += b" " + (_nstring(d.encoding) if d.encoding is not None else b'"7bit"')
    out += b" %d" % part.body_size
    return out, text


def _bodystructure_of(root: Part, ext: bool) -> bytes:
    """The pieces are written into one list, parts taken from a stack rather than by
    recursion: a part's text is never copied into its parent's, so the cost is the size
    of the answer whatever the nesting."""
    out: list[bytes] = []
    todo: list[Part | bytes] = [root]  # what is left to write, next on top
    while todo:
        item = todo.pop()
        if isinstance(item, bytes):
            out.append(item)
            continue
        part = item
        d = part.data
        if part.multipart:
            tail = b" " + _nstring(d.content_subtype or b"")
            if ext:
                tail += b" " + _params(d.params, False) + b" " + _extension_common(d)
            if not part.children:
                out.append(_EMPTY_BODY + (b" NIL NIL NIL NIL)" if ext else b")") + tail)
                continue
            todo.append(tail)
            for child in reversed(part.children):
                todo += (b")", child, b"(")
            continue
        head, text = _leaf_head(part)
        tail = b""
        if text or part.rfc822:
            tail = b" %d" % part.body_lines
        if ext:
            tail += b" " + _nstring_nolf(d.md5) + b" " + _extension_common(d)
        if part.rfc822:
            child = part.children[0] if part.children else Part(part.buf, part.end, part.limits)
            out.append(head + b" " + _envelope_of(child) + b" (")
            todo += (b")" + tail, child)
        else:
            out.append(head + tail)
    return b"".join(out)


def bodystructure(msg: bytes | Part, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible=True``) or BODY (False) of a message or part,
    parenthesised, literals inline (RFC 3501 section 7.4.2).

    Types, subtypes and parameter names are sent as written (``"TEXT" "PLAIN"`` stays upper
    case), the defaults as Dovecot writes them (``"text" "plain" ("charset" "us-ascii")``,
    ``"7bit"``); sizes and line counts are of the body in its CRLF form.
    """
    return b"(" + _bodystructure_of(parse(msg), extensible) + b")"
