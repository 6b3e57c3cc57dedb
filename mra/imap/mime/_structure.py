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

from collections.abc import Sequence

from mra.imap.mime._address import Address, envelope_addresses
from mra.imap.mime._parse import Part, parse
from mra.imap.mime._partdata import PartData

__all__ = ["bodystructure", "envelope", "without_nuls"]

# IMAP strings, the way Dovecot writes them (lib-imap/imap-quote.c)

_QUOTED_MAX_ESCAPES = 4


def _literal(value: bytes) -> bytes:
    return b"{%d}\r\n" % len(value) + value


def _nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal (CR, LF, 8-bit octets or too many escapes)."""
    if value is None:
        return b"NIL"
    value = value.split(b"\0", 1)[0]  # a C string
    escapes = 0
    for c in value:
        if c == 0x22 or c == 0x5C:
            escapes += 1
            if escapes > _QUOTED_MAX_ESCAPES:
                return _literal(value)
        elif c == 0x0D or c == 0x0A or c >= 0x80:
            return _literal(value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _nstring_nolf(value: bytes | None) -> bytes:
    """:func:`_nstring` after removing CR and LF (a space where a line break was not
    followed by a blank)."""
    if value is None or (b"\r" not in value and b"\n" not in value):
        return _nstring(value)
    out = bytearray()
    n = len(value)
    for i, c in enumerate(value):
        if c != 0x0D and c != 0x0A:
            out.append(c)
        elif i + 1 < n and value[i + 1] not in b" \t\r\n\0":
            out.append(0x20)
    return _nstring(bytes(out))


def _string_for_humans(src: bytes) -> bytes:
    """A string cleaned for display: blanks collapsed and trimmed, NUL as 0x80."""
    modify = False
    remove = 0
    last_lwsp = True
    ws_prefix = True
    for c in src:
        if c == 0:
            last_lwsp = False
            modify = True
        elif c in (0x0D, 0x0A, 0x09, 0x20):
            if c != 0x20:
                modify = True
            if last_lwsp:
                modify = True
                remove += 1
            last_lwsp = True
        elif c == 0x22 or c == 0x5C:
            modify = True
            last_lwsp = False
        else:
            if c & 0x80:
                modify = True
            last_lwsp = False
        if not last_lwsp:
            ws_prefix = False
    if last_lwsp and src and not ws_prefix:
        modify = True
        remove += 1
    if not modify:
        return b'"' + src + b'"'
    if len(src) == remove:
        return b'""'
    out = bytearray()
    last_lwsp = True
    ws_prefix = True
    for c in src:
        if c == 0:
            out.append(0x80)
            last_lwsp = False
        elif c in (0x0D, 0x0A, 0x09, 0x20):
            if not last_lwsp:
                out.append(0x20)
            last_lwsp = True
        else:
            out.append(c)
            last_lwsp = False
        if not last_lwsp:
            ws_prefix = False
    if last_lwsp and src and not ws_prefix:
        del out[-1]
    return _literal(bytes(out))


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
    out = [b"("]
    for a in addresses:
        out.append(b"(")
        out.append(b"NIL" if a.name is None else _string_for_humans(a.name))
        out.append(b" " + _nstring(a.route))
        out.append(b" " + _nstring(a.mailbox))
        out.append(b" " + _nstring(a.domain) + b")")
    out.append(b")")
    return b"".join(out)


def _envelope_of(part: Part) -> bytes:
    strings: dict[bytes, bytes] = {}
    addresses: dict[bytes, list[Address]] = {}
    for f in part.fields:
        if f.value_start < 0:
            continue
        if f.lname in _ENVELOPE_STRINGS:
            strings[f.lname] = f.value.split(b"\0", 1)[0]  # the last one wins
        elif f.lname in _ENVELOPE_ADDRESSES:
            addresses.setdefault(f.lname, []).extend(envelope_addresses(f.value))
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


def _bodystructure_of(part: Part, ext: bool) -> bytes:
    d = part.data
    if part.multipart:
        if part.children:
            inner = b"".join(b"(" + _bodystructure_of(c, ext) + b")" for c in part.children)
        else:
            inner = _EMPTY_BODY + (b" NIL NIL NIL NIL)" if ext else b")")
        out = inner + b" " + _nstring(d.content_subtype or b"")
        if ext:
            out += b" " + _params(d.params, False) + b" " + _extension_common(d)
        return out
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
    if text:
        out += b" %d" % part.body_lines
    elif part.rfc822:
        child = part.children[0] if part.children else Part(part.buf, part.end)
        out += b" " + _envelope_of(child) + b" (" + _bodystructure_of(child, ext) + b")"
        out += b" %d" % part.body_lines
    if ext:
        out += b" " + _nstring_nolf(d.md5) + b" " + _extension_common(d)
    return out


def bodystructure(msg: bytes | Part, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible=True``) or BODY (False) of a message or part,
    parenthesised, literals inline (RFC 3501 section 7.4.2).

    Types, subtypes and parameter names are sent as written (``"TEXT" "PLAIN"`` stays upper
    case), the defaults as Dovecot writes them (``"text" "plain" ("charset" "us-ascii")``,
    ``"7bit"``); sizes and line counts are of the body in its CRLF form.
    """
    return b"(" + _bodystructure_of(parse(msg), extensible) + b")"
