"""BINARY (RFC 3516): content-transfer decoding for FETCH BINARY, and the storing of APPEND's
binary content (literal8) in a form every IMAP client can read.

FETCH BINARY[part]<partial>, BINARY.PEEK and BINARY.SIZE
--------------------------------------------------------
`BINARY[n]` is the body of part n (numbered as for BODY[n], RFC 3501 6.4.5) with its transfer
encoding removed; `BINARY[]` is the whole message so decoded. As Dovecot 2.3 does it
(`index-mail-binary.c`), decoding goes down the tree: a part with children (a multipart, a
message/rfc822) keeps its boundaries and text between the children and decodes each child, and
a child decoded from base64 or quoted-printable gets its Content-Transfer-Encoding field
replaced by `Content-Transfer-Encoding: binary`, at the end of its header. `<origin.count>`
counts in the decoded octets (RFC 3516 4.2); BINARY.SIZE is the decoded length, what BINARY
would send (4.3). A part that does not exist is empty, as Dovecot answers.

The encoding is the last Content-Transfer-Encoding field of the part's header (Dovecot's
`message_decoder_parse_cte`: one token, blanks and a `;...` after it allowed, MIME-Version not
needed): 7bit, 8bit and binary are sent as stored, base64 and quoted-printable decoded, and
anything else is `NO [UNKNOWN-CTE]` (RFC 3516 4.3 "MUST fail"). Data that does not decode is
`NO [PARSE]`: a base64 character outside the alphabet (blanks and line ends are skipped), a
missing or misplaced `=` padding, a `=` in quoted-printable not followed by two hex digits or
a line end. SEARCH decodes differently on purpose (mime.py's text decoding never fails: a
broken part is still searched as written), which is why this module has decoders of its own.

Quoted-printable follows RFC 2045 6.7 as Dovecot's `qp-decoder.c` reads it: line ends become
CRLF, blanks at the end of a line are dropped, `=` at the end of a line (blanks after it
allowed) joins it to the next, lower-case hex digits are accepted.

The response (RFC 3516 4.3): decoded data holding NUL goes as a literal8 `~{n}`, anything else
as a literal, "SHOULD return the data in a <string>". Dovecot sends `~{n}` for any part it
decoded, NUL or not (README: IMAP extensions).

APPEND with a literal8 (RFC 3516 4.4)
-------------------------------------
The client may send binary content: a part declared `Content-Transfer-Encoding: binary`,
perhaps with NUL in it. BODYSTRUCTURE and BODY must still describe and carry the message in an
encoding IMAP4rev1 allows (RFC 3516 6), and a literal cannot hold NUL, so such a part is
stored base64-encoded (76 characters a line), its field saying `base64` in place of `binary`:
the transformation loses nothing (4.4 "MUST NOT result in a loss of data"), and BINARY gives
the octets back. This is Dovecot's `istream-binary-converter.c` rule, so a message appended to
either server is stored the same. Only a part without children is converted (a multipart or a
message/rfc822 that says binary describes its children, which say for themselves).
"""

from __future__ import annotations

import binascii
import bisect
import re

from mra.imap import mime
from mra.imap import response as r
from mra.imap.values import FetchAtt

__all__ = ["decode", "fetch_item", "section", "store_form", "transfer_encoding"]

IDENTITY = frozenset({b"7bit", b"8bit", b"binary"})
DECODED = frozenset({b"base64", b"quoted-printable"})

_CTE = b"content-transfer-encoding"
_BINARY_FIELD = b"Content-Transfer-Encoding: binary\r\n"
_BASE64_FIELD = b"Content-Transfer-Encoding: base64\r\n"
_BASE64_LINE = 57  # input octets of a 76-character line
# RFC 2045 token: any CHAR but SPACE, CTLs and tspecials; blanks, folding and comments around it.
_COMMENT = re.compile(rb"\([^()]*\)")
_TOKEN = re.compile(
    rb'[ \t\r\n]*([^\x00-\x20\x7f-\xff()<>@,;:\\"/\[\]?=]+)[ \t\r\n]*(?:;.*)?', re.S
)
_BLANKS = b" \t\r\n"
_HEX = re.compile(rb"[0-9A-Fa-f]{2}")
_BARE_LF = re.compile(rb"(?<!\r)\n")


# --- transfer encodings -------------------------------------------------------------------------


def transfer_encoding(part: mime.Part) -> bytes:
    """The part's encoding, lower-cased ("7bit" when it names none); NO [UNKNOWN-CTE] for one
    this server cannot decode, or a field that is not one token."""
    value = None
    for f in part.fields:
        if f.lname == _CTE and f.value_start >= 0:
            value = part.buf[f.value_start : f.end]
    if value is None:
        return b"7bit"
    m = _TOKEN.fullmatch(_COMMENT.sub(b" ", value))
    encoding = m.group(1).lower() if m is not None else b""
    if encoding not in IDENTITY and encoding not in DECODED:
        raise r.Refusal(r.UNKNOWN_CTE)
    return encoding


def decode(encoding: bytes, data: bytes) -> bytes:
    """`data` with `encoding` removed; NO [PARSE] when it does not decode."""
    if encoding == b"base64":
        return _base64(data)
    if encoding == b"quoted-printable":
        return _quoted_printable(data)
    return data


def _base64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data.translate(None, _BLANKS), strict_mode=True)
    except binascii.Error:
        raise r.Refusal(r.INVALID_MIME_DATA) from None


def _quoted_printable(data: bytes) -> bytes:
    out = bytearray()
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i < last and line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line:  # a CR that does not end a line
            raise r.Refusal(r.INVALID_MIME_DATA)
        line = line.rstrip(b" \t")
        soft = line.endswith(b"=")
        if soft:
            if i == last:  # "=" at the very end joins nothing
                raise r.Refusal(r.INVALID_MIME_DATA)
            line = line[:-1]
        head, *escapes = line.split(b"=")
        out += head
        for piece in escapes:
            if not _HEX.match(piece):
                raise r.Refusal(r.INVALID_MIME_DATA)
            out.append(int(piece[:2], 16))
            out += piece[2:]
        if i < last and not soft:
            out += b"\r\n"
    return bytes(out)


# --- FETCH BINARY ---------------------------------------------------------------------------------


def _find(root: mime.Part, numbers: tuple[int, ...]) -> mime.Part | None:
    """The part BODY[numbers] names (mime.py's rule: part 1 of a single-part message is the
    message, and numbers go on into a message/rfc822's message)."""
    part: mime.Part | None = root
    for index, number in enumerate(numbers):
        if part is None:
            return None
        more = index + 1 < len(numbers)
        if part.multipart:
            part = part.children[number - 1] if number <= len(part.children) else None
        elif number != 1 or (more and not part.rfc822):
            part = None
        if part is not None and part.rfc822 and more:
            part = part.children[0] if part.children else None
    return part


def _decoded(part: mime.Part, with_header: bool) -> bytes:
    buf = part.buf
    encoding = transfer_encoding(part)
    out = bytearray()
    if with_header:
        out += _header(part) if encoding in DECODED else buf[part.start : part.header_end]
    if part.children:
        pos = part.header_end
        for child in part.children:
            out += buf[pos : child.start]
            out += _decoded(child, True)
            pos = child.end
        out += buf[pos : part.end]
    elif part.end > part.header_end:
        out += decode(encoding, buf[part.header_end : part.end])
    return bytes(out)


def _header(part: mime.Part) -> bytes:
    """The header of a part BINARY decodes: its Content-Transfer-Encoding fields out, one
    saying binary at the end, before the empty line."""
    buf = part.buf
    out = bytearray()
    end = part.start
    for f in part.fields:
        if f.lname != _CTE:
            out += buf[f.start : f.end]
        end = f.end
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return bytes(out) + _BINARY_FIELD + buf[end : part.header_end]


def section(root: mime.Part, numbers: tuple[int, ...]) -> bytes:
    """The octets of BINARY[numbers] (RFC 3516 4.2), without a partial."""
    if not numbers:
        return _decoded(root, True)
    part = _find(root, numbers)
    return b"" if part is None else _decoded(part, False)


def fetch_item(root: mime.Part, att: FetchAtt) -> bytes:
    """`BINARY[1]<0> ~{n}...` or `BINARY.SIZE[1] 42`: one item of a FETCH response."""
    data = section(root, att.section.part)
    if att.name == "BINARY.SIZE":
        return r.section_key(att) + b" %d" % len(data)
    if att.partial is not None:
        origin, count = att.partial
        data = data[origin : origin + count]
    if b"\0" in data:
        return r.section_key(att) + b" " + r.literal8(data)
    value = r.literal(data) if data else b'""'
    return r.section_key(att) + b" " + value


# --- APPEND of binary content ---------------------------------------------------------------------


def store_form(message: bytes, limits: mime.Limits = mime.DEFAULT_LIMITS) -> bytes:
    """The message to store for an APPEND literal8: parts declared binary base64-encoded
    (module docstring); the message unchanged when none is.

    The structure comes from the CRLF form of the message (what mime.parse reads), but every
    octet written comes from the message as sent: binary data may hold line feeds without a
    carriage return, and they are data, not line ends to mend."""
    canonical = mime.crlf(message)
    root = mime.parse(canonical, limits)
    at = _Offsets(message, canonical)
    out = bytearray()
    pos = 0
    for part in root.walk():
        if part.children:
            continue
        field = _binary_field(part)
        if field is None:
            continue
        out += message[pos : at(field.start)] + _BASE64_FIELD
        out += message[at(field.end) : at(part.header_end)]
        out += _base64_lines(message[at(part.header_end) : at(part.end)])
        pos = at(part.end)
    if not pos:
        return message
    return bytes(out + message[pos:])


class _Offsets:
    """Maps an offset in the CRLF form of a message to the same place in the message as sent:
    each line feed without a carriage return had one put before it."""

    def __init__(self, message: bytes, canonical: bytes) -> None:
        self._inserted: list[int] = []  # offsets of the added CRs in the CRLF form
        if canonical is message:
            return
        for added, m in enumerate(_BARE_LF.finditer(message)):
            self._inserted.append(m.start() + added)

    def __call__(self, offset: int) -> int:
        return offset - bisect.bisect_left(self._inserted, offset)


def _binary_field(part: mime.Part) -> mime.Field | None:
    """The part's first Content-Transfer-Encoding field when it says exactly `binary` on one
    line (Dovecot converts no other)."""
    for f in part.fields:
        if f.lname == _CTE and f.value_start >= 0:
            value = part.buf[f.value_start : f.end]
            value = value[:-2] if value.endswith(b"\r\n") else value
            if value.lstrip(b" \t").lower() == b"binary":
                return f
            return None
    return None


def _base64_lines(data: bytes) -> bytes:
    lines = (
        binascii.b2a_base64(data[i : i + _BASE64_LINE], newline=False)
        for i in range(0, len(data), _BASE64_LINE)
    )
    return b"\r\n".join(lines)
