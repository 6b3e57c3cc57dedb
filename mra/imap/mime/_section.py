"""BODY[section]<partial> (RFC 3501 section 6.4.5): parsing a section specifier and cutting
its octets out of a parsed message.

:func:`section` returns the octets of a section, ``b""`` for a part that does not exist
(RFC 3501 leaves it open; Dovecot, Cyrus and UW-IMAP send an empty string), and None when
the section specifier itself is malformed (the caller answers BAD).  The
``<origin.count>`` partial is applied by the caller with :func:`partial` after choosing the
section.  Sections are raw octets: IMAP literals must not contain NUL, which a broken
message may have; Dovecot sends 0x80 instead, see :func:`~._structure.without_nuls`.

One difference from Dovecot is kept on purpose: HEADER.FIELDS[.NOT] of an encapsulated
message (``2.HEADER.FIELDS (..)``) filters that message's header as parsed here, the same
header ``2.HEADER`` returns.  Dovecot re-reads the part from its start up to the next empty
line, ignoring boundaries, which only differs when a boundary cuts that header short.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mra.imap.mime._parse import Part, parse

__all__ = ["SectionSpec", "parse_section_spec", "partial", "section"]


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A parsed section: part numbers, then "" (the whole part / message), "HEADER",
    "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME"; field names upper-cased."""

    part: tuple[int, ...] = ()
    text: str = ""
    fields: tuple[bytes, ...] = ()

    def __str__(self) -> str:
        out = ".".join(str(n) for n in self.part)
        if self.text:
            out += ("." if out else "") + self.text
        if self.fields:
            names = " ".join(f.decode("latin-1") for f in self.fields)
            out += f" ({names})"
        return out


_PART_NUMBERS = re.compile(rb"(?:[1-9][0-9]*)(?:\.[1-9][0-9]*)*")
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")
_ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f()"{%*\\]+')


def _header_list(data: bytes) -> tuple[bytes, ...] | None:
    """``(A "B" {1}\\r\\nC)`` -> (b"A", b"B", b"C"), upper-cased; None if malformed."""
    if not data.startswith(b"(") or not data.endswith(b")"):
        return None
    i, n = 1, len(data) - 1
    names: list[bytes] = []
    while i < n:
        if names:
            if data[i] != 0x20:
                return None
            i += 1
        if i >= n:
            return None
        if data[i] == 0x22:
            i += 1
            buf = bytearray()
            while i < n and data[i] != 0x22:
                if data[i] == 0x5C:
                    i += 1
                    if i >= n:
                        return None
                if data[i] in (0x0D, 0x0A):
                    return None
                buf.append(data[i])
                i += 1
            if i >= n:
                return None
            i += 1
            names.append(bytes(buf))
        elif data[i] == 0x7B:
            m = _LITERAL.match(data, i)
            if m is None:
                return None
            size = int(m.group(1))
            i = m.end()
            if i + size > n:
                return None
            names.append(data[i : i + size])
            i += size
        else:
            m = _ASTRING_ATOM.match(data, i)
            if m is None:
                return None
            names.append(m.group())
            i = m.end()
    if not names:
        return None
    return tuple(name.upper() for name in names)


def parse_section_spec(spec: str | bytes) -> SectionSpec | None:
    """Parse the text between ``[`` and ``]`` of BODY[...]; None if it is malformed."""
    raw = spec.encode("latin-1") if isinstance(spec, str) else spec
    part: tuple[int, ...] = ()
    rest = raw
    m = _PART_NUMBERS.match(raw)
    if m is not None:
        part = tuple(int(x) for x in m.group().split(b"."))
        rest = raw[m.end() :]
        if rest:
            if not rest.startswith(b"."):
                return None
            rest = rest[1:]
            if not rest:
                return None
    upper = rest.upper()
    if upper == b"":
        return SectionSpec(part, "")
    if upper in (b"HEADER", b"TEXT"):
        return SectionSpec(part, upper.decode())
    if upper == b"MIME":
        return SectionSpec(part, "MIME") if part else None
    for kind in (b"HEADER.FIELDS.NOT ", b"HEADER.FIELDS "):
        if upper.startswith(kind):
            fields = _header_list(rest[len(kind) :])
            if fields is None:
                return None
            return SectionSpec(part, kind.decode().strip(), fields)
    return None


def _find_part(root: Part, numbers: Sequence[int]) -> Part | None:
    """Dovecot's imap_msgpart_find(): part 1 of a non-multipart is the part itself, and
    numbers continue into the message of a message/rfc822 part."""
    part: Part | None = root
    for index, num in enumerate(numbers):
        if part is None:
            return None
        more = index + 1 < len(numbers)
        if part.multipart:
            part = part.children[num - 1] if num <= len(part.children) else None
        elif num != 1 or (more and not part.rfc822):
            part = None
        if part is not None and part.rfc822 and more:
            part = part.children[0] if part.children else None
    return part


def _fields_section(part: Part, names: tuple[bytes, ...], include: bool, top: bool) -> bytes:
    """HEADER.FIELDS[.NOT].  Dovecot answers the message's own HEADER.FIELDS from its
    header cache: every field with a line end, then the empty line.  Otherwise the fields
    are filtered as stored, and the empty line is there if the header has one."""
    wanted = {n.lower() for n in names}
    complete = include and top
    buf = part.buf
    out = bytearray()
    for f in part.fields:
        # a line without a colon is never one of the named fields
        if (f.value_start >= 0 and f.lname in wanted) != include:
            continue
        raw = buf[f.start : f.end]
        if complete and not raw.endswith(b"\n"):
            raw += b"\r\n"
        out += raw
    if complete or part.has_eoh:
        out += b"\r\n"
    return bytes(out)


def section(msg: bytes | Part, spec: str | bytes | SectionSpec) -> bytes | None:
    """The octets of ``BODY[spec]`` (RFC 3501 section 6.4.5), without any partial.

    ``b""`` when the part does not exist or has no such section (HEADER/TEXT of a part
    that is not message/rfc822); None when ``spec`` is malformed.  HEADER.FIELDS keeps the
    matching fields as stored (folded lines included), in message order, and ends with the
    empty line; HEADER.FIELDS.NOT keeps the other fields and the empty line if the header
    had one.  ``N.MIME`` of a message/rfc822 part is its MIME header; of part 1 of a
    non-multipart message it is the message header (as Dovecot).
    """
    parsed = spec if isinstance(spec, SectionSpec) else parse_section_spec(spec)
    if parsed is None:
        return None
    root = parse(msg)
    if not parsed.part:
        part: Part | None = root
    else:
        part = _find_part(root, parsed.part)
        if part is None:
            return b""
        if parsed.text == "":
            return part.body
        if parsed.text == "MIME":
            return part.header
        if not part.rfc822 or not part.children:
            return b""
        part = part.children[0]
    assert part is not None
    if parsed.text == "":
        return part.whole
    if parsed.text == "HEADER":
        return part.header
    if parsed.text == "TEXT":
        return part.body
    return _fields_section(part, parsed.fields, parsed.text == "HEADER.FIELDS", part is root)


def partial(data: bytes, origin: int, count: int | None = None) -> bytes:
    """``BODY[...]<origin.count>``: the octets from ``origin``, at most ``count`` of them
    (RFC 3501: empty when ``origin`` is past the end)."""
    if origin < 0 or (count is not None and count < 0):
        raise ValueError("negative partial")
    if count is None:
        return data[origin:]
    return data[origin : origin + count]
