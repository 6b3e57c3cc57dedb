"""Decoded text of a message, for SEARCH (and SORT): RFC 2047 encoded words, transfer
encodings and charsets.

:func:`header_values` gives a field's values RFC 2047 decoded and unfolded,
:func:`body_texts` the text of every text part (Content-Transfer-Encoding then charset
decoded), :func:`all_header_texts` every field of every part.  Decoding never fails:
an unknown charset reads as UTF-8, undecodable octets become U+FFFD, an encoded word that
cannot be decoded stays as written.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator

from mra.imap.mime._parse import Field, Part, parse
from mra.imap.mime._tokens import Work

__all__ = [
    "all_header_texts",
    "body_texts",
    "decode_rfc2047",
    "header_texts",
    "header_values",
    "part_text",
]

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decode_charset(data: bytes, charset: str | None) -> str:
    """Decode text in ``charset`` (None, unknown or not a text codec: UTF-8), with
    undecodable octets replaced."""
    name = (charset or "").strip().strip('"').lower()
    if name in ("", "us-ascii", "ascii", "utf-8", "utf8"):
        return data.decode("utf-8", "replace")
    try:
        info = codecs.lookup(name)
    except LookupError:
        return data.decode("utf-8", "replace")
    if not getattr(info, "_is_text_encoding", True):
        return data.decode("utf-8", "replace")
    try:
        return data.decode(info.name, "replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", "replace")


def _decode_word(m: re.Match[str]) -> str | None:
    """One encoded-word, or None if it cannot be decoded (unknown charset, bad base64)."""
    charset, enc, text = m.group(1), m.group(2).lower(), m.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 section 5: charset*language
    raw = text.encode("latin-1", "replace")
    try:
        if enc == "b":
            data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
        else:
            data = binascii.a2b_qp(raw, header=True)
        codecs.lookup(charset)
    except (binascii.Error, ValueError, LookupError):
        return None
    return _decode_charset(data, charset)


def decode_rfc2047(value: str, work: Work | None = None) -> str:
    """Decode RFC 2047 encoded-words anywhere in ``value`` (also inside quotes, as mail
    clients write them).  Blanks between two decoded words are dropped; words that cannot
    be decoded stay as they are, and so do the words after ``work`` (a step per word; by
    default none is counted) runs out."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    last_decoded = False
    for m in _ENCODED_WORD.finditer(value):
        if work is not None:
            work.left -= 1
            if work.left < 0:
                break
        between = value[pos : m.start()]
        decoded = _decode_word(m)
        if decoded is None:
            out.append(between + m.group(0))
            last_decoded = False
        else:
            if not (last_decoded and not between.strip(" \t\r\n")):
                out.append(between)
            out.append(decoded)
            last_decoded = True
        pos = m.end()
    out.append(value[pos:])
    return "".join(out)


def _header_octets(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _field_text(part: Part, f: Field) -> str:
    """A field's value: unfolded (line breaks removed), RFC 2047 decoded, blanks trimmed."""
    if f.value_start < 0:
        return ""
    raw = part.buf[f.value_start : f.value_end]  # cut at the header limits, as Dovecot
    text = _header_octets(raw).replace("\r\n", "").replace("\n", "")
    return decode_rfc2047(text, part.work).strip(" \t")


def header_values(msg: bytes | Part, name: str) -> list[str]:
    """Every value of the header field ``name`` (case-insensitive), decoded, in order."""
    part = parse(msg)
    key = name.encode("latin-1", "replace").lower()
    return [_field_text(part, f) for f in part.fields if f.lname == key]


def header_texts(part: Part) -> Iterator[str]:
    """``Name: value`` of every field of ``part``'s header, decoded."""
    for f in part.fields:
        yield _header_octets(f.name) + ": " + _field_text(part, f)


def _transfer_decode(part: Part) -> bytes:
    body = part.body
    encoding = (part.data.encoding or b"").lower()
    if encoding == b"base64":
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", body)
        extra = len(cleaned) % 4
        if extra == 1:
            cleaned = cleaned[:-1]
        elif extra:
            cleaned += b"=" * (4 - extra)
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            return body
    if encoding == b"quoted-printable":
        return binascii.a2b_qp(body)
    return body


def _is_searchable_text(part: Part) -> bool:
    """Dovecot searches the bodies of text/* parts and parts without a Content-Type."""
    if part.multipart or part.rfc822:
        return False
    d = part.data
    return d.content_type is None or d.content_type.lower() in (b"text", b"message")


def part_text(part: Part) -> str:
    """The decoded text of a leaf part (Content-Transfer-Encoding, then charset)."""
    return _decode_charset(_transfer_decode(part), part.param("charset"))


def body_texts(msg: bytes | Part) -> Iterator[str]:
    """The decoded text of every text part of the message (for SEARCH BODY)."""
    for part in parse(msg).walk():
        if _is_searchable_text(part):
            yield part_text(part)


def all_header_texts(msg: bytes | Part) -> Iterator[str]:
    """Decoded header fields of the message and of every part inside it."""
    for part in parse(msg).walk():
        yield from header_texts(part)
