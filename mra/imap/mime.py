"""MIME structure of a stored message for IMAP FETCH and SEARCH, as pure functions.

Everything works on the message as IMAP serves it: CRLF line ends (RFC 3501 sizes and
offsets are in that form).  :func:`parse` converts a stored message (LF or CRLF, see
``mailstore.content``) once and returns the root :class:`Part`; every public function takes
either that ``Part`` or the raw bytes (then parsing them itself, which is wasteful if you
call several functions: parse once and pass the ``Part``).

The parser finds header/body and multipart boundaries by offsets, so every section is a
slice of the CRLF message, never re-serialised.  It follows Dovecot 2.3's message parser
(``lib-mail/message-parser.c``) so that ENVELOPE, BODY, BODYSTRUCTURE and BODY[section]
answers are the same octets Dovecot sends; the unit tests compare against answers captured
from Dovecot 2.3.19 (``tests/unit/imap_mime/golden.py``).  The rules, briefly:

- A header ends at the first empty line; a header with no empty line runs to the end of
  the message (or to a boundary line of an enclosing multipart) and the body is empty.
  Lines without a colon are fields whose name is the whole line; nothing ever raises.
- A part is MIME when it is inside a multipart or has a Content-Type or MIME-Version
  field; other Content-* fields of non-MIME parts are ignored.  No Content-Type means
  text/plain (message/rfc822 inside multipart/digest).
- A boundary line is ``--`` followed by the boundary of any enclosing multipart as a
  *prefix* (the longest match wins, the innermost on a tie); ``--boundary--`` closes that
  multipart and drops the boundaries opened inside it.  The CRLF before a boundary line
  belongs to the boundary, except at the very start of a body.  If the line after the
  empty line of a header is an enclosing boundary, that empty line is the boundary's CRLF
  (the header then has no empty line and the body is empty).  A multipart without a
  boundary parameter (or whose header has no empty line) has no children.
- message/rfc822 parts hold the encapsulated message as their only child.
- Nesting stops at 100 levels and 10000 parts (Dovecot's limits): deeper parts are leaves.

Sections (RFC 3501 section 6.4.5): :func:`section` returns the octets of a section, ``b""``
for a part that does not exist (RFC 3501 leaves it open; Dovecot, Cyrus and UW-IMAP send an
empty string), and None when the section specifier itself is malformed (the caller answers
BAD).  The ``<origin.count>`` partial is applied by the caller with :func:`partial` after
choosing the section.  Sections are raw octets: IMAP literals must not contain NUL, which a
broken message may have; Dovecot sends 0x80 instead, see :func:`without_nuls`.

One difference from Dovecot is kept on purpose: HEADER.FIELDS[.NOT] of an encapsulated
message (``2.HEADER.FIELDS (..)``) filters that message's header as parsed here, the same
header ``2.HEADER`` returns.  Dovecot re-reads the part from its start up to the next empty
line, ignoring boundaries, which only differs when a boundary cuts that header short.

SEARCH support: :func:`header_values` (RFC 2047 decoded, unfolded), :func:`body_texts`
(text parts, Content-Transfer-Encoding and charset decoded) and :func:`all_header_texts`.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from mailstore.content import to_crlf

__all__ = [
    "Address",
    "Field",
    "Part",
    "SectionSpec",
    "all_header_texts",
    "body_texts",
    "bodystructure",
    "crlf",
    "decode_rfc2047",
    "envelope",
    "envelope_addresses",
    "header_texts",
    "header_values",
    "parse",
    "parse_section_spec",
    "part_text",
    "partial",
    "section",
    "without_nuls",
]

# Dovecot's limits (message_parser_settings): deeper or further parts are not descended
# into, they become leaves with the type they announce.
MAX_NESTED_PARTS = 100
MAX_TOTAL_PARTS = 10000

# --------------------------------------------------------------------------------------------
# Parsed message


def crlf(raw: bytes) -> bytes:
    """The message as IMAP serves it: every bare LF becomes CRLF (idempotent)."""
    lf = raw.count(b"\n")
    if lf == 0 or raw.count(b"\r\n") == lf:
        return raw
    return to_crlf(raw)


class Field:
    """One header field: ``buf[start:end]`` is the field as stored, continuation lines and
    line end included (no line end when the header stops at the end of the data)."""

    __slots__ = ("end", "lname", "name", "start", "value", "value_start")

    def __init__(self, name: bytes, start: int, value_start: int) -> None:
        self.name = name  # as written, blanks before the colon removed
        self.lname = name.lower()
        self.start = start
        self.value_start = value_start  # after the colon; -1 when there is no colon
        self.end = start
        # Dovecot's "full value": the value without the blanks after the colon (just one
        # if there is nothing else on the first line), folding kept, no final line end.
        self.value = b""


class Part:
    """A MIME entity: ``buf[start:header_end]`` is its header (with the empty line that
    ends it, if there is one), ``buf[header_end:end]`` its body.  The root part is the
    whole message.  ``children`` are the parts of a multipart, or the single encapsulated
    message of a message/rfc822 part."""

    __slots__ = (
        "_data",
        "buf",
        "children",
        "digest",
        "end",
        "fields",
        "has_eoh",
        "header_end",
        "is_mime",
        "multipart",
        "rfc822",
        "start",
        "text",
    )

    def __init__(self, buf: bytes, start: int) -> None:
        self.buf = buf
        self.start = start
        self.header_end = start
        self.end = start
        self.fields: list[Field] = []
        self.has_eoh = False
        self.children: list[Part] = []
        self.is_mime = False
        self.multipart = False
        self.digest = False
        self.rfc822 = False
        self.text = False
        self._data: _PartData | None = None

    # -- convenience -------------------------------------------------------------------

    @property
    def header(self) -> bytes:
        return self.buf[self.start : self.header_end]

    @property
    def body(self) -> bytes:
        return self.buf[self.header_end : self.end]

    @property
    def whole(self) -> bytes:
        return self.buf[self.start : self.end]

    @property
    def message(self) -> Part | None:
        """The encapsulated message of a message/rfc822 part."""
        return self.children[0] if self.rfc822 and self.children else None

    @property
    def body_size(self) -> int:
        return self.end - self.header_end

    @property
    def body_lines(self) -> int:
        return self.buf.count(b"\n", self.header_end, self.end)

    def field_values(self, name: str | bytes) -> list[bytes]:
        """Raw values (folding kept, see :class:`Field`) of every field called ``name``."""
        key = (name.encode("latin-1") if isinstance(name, str) else name).lower()
        return [f.value for f in self.fields if f.lname == key]

    @property
    def content_type(self) -> tuple[str, str]:
        """(type, subtype) lower-cased, with the defaults applied (text/plain, or
        message/rfc822 in a digest); a broken Content-Type gives ("", "") or ("text", "")."""
        d = self.data
        if self.rfc822:
            return "message", "rfc822"
        if d.content_type is None:
            return "text", "plain"
        return (
            d.content_type.decode("latin-1").lower(),
            (d.content_subtype or b"").decode("latin-1").lower(),
        )

    def param(self, name: str) -> str | None:
        """A Content-Type parameter (first match, name case-insensitive)."""
        key = name.encode("latin-1").lower()
        for k, v in self.data.params or ():
            if k.lower() == key:
                return v.decode("utf-8", "replace")
        return None

    @property
    def data(self) -> _PartData:
        if self._data is None:
            self._data = _part_data(self)
        return self._data

    def walk(self) -> Iterator[Part]:
        """This part and all parts below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def __repr__(self) -> str:
        t, s = self.content_type
        return f"<Part {t}/{s} header={self.start}:{self.header_end} body=:{self.end}>"


def parse(raw: bytes | Part) -> Part:
    """Parse a stored message (LF or CRLF line ends) into its root :class:`Part`."""
    if isinstance(raw, Part):
        return raw
    return _Parser(crlf(raw)).parse()


# --------------------------------------------------------------------------------------------
# RFC 822 tokens, as Dovecot's lib-mail/rfc822-parser.c reads them

# rfc822_atext_chars: 1 = atext, 2 = alpha/digit/8-bit, 4 = atext but a MIME tspecial
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _ATEXT[_c] = 1
for _c in b"/=?":
    _ATEXT[_c] = 4
for _c in range(256):
    if (chr(_c).isalnum() and _c < 128) or _c >= 128:
        _ATEXT[_c] = 2
ATEXT = bytes(_ATEXT)
_LWSP = b" \t\r\n"


def _is_token(c: int) -> bool:
    return (ATEXT[c] & 3) != 0 or c == 0x2E


class _Tok:
    """A cursor over one header value.  Methods return 1 (more data follows), 0 (end of
    data) or -1 (invalid), like Dovecot's, and skip blanks and comments after a token."""

    __slots__ = ("comment", "d", "i", "n")

    def __init__(self, data: bytes, keep_comment: bool = False) -> None:
        self.d = data
        self.i = 0
        self.n = len(data)
        self.comment: bytearray | None = bytearray() if keep_comment else None

    def at(self, c: int) -> bool:
        return self.i < self.n and self.d[self.i] == c

    def skip_comment(self) -> int:
        d, n = self.d, self.n
        comment = self.comment
        if comment is not None:
            comment.clear()
        self.i += 1
        start = self.i
        level = 1
        while self.i < n:
            c = d[self.i]
            if c == 0x28:
                level += 1
            elif c == 0x29:
                level -= 1
                if level == 0:
                    if comment is not None:
                        comment += d[start : self.i]
                    self.i += 1
                    return 1 if self.i < n else 0
            elif c == 0x0A and self.i + 2 < n:  # folding: drop the (CR)LF
                if comment is not None:
                    stop = self.i - 1 if self.i > start and d[self.i - 1] == 0x0D else self.i
                    comment += d[start:stop]
                    start = self.i + 1
            elif c == 0x5C:
                self.i += 1
                if self.i >= n:
                    return -1
                if comment is not None:
                    comment += d[start : self.i - 1]
                if d[self.i] in b"\r\n\0":  # no quoted-pair: the backslash stays
                    start = self.i - 1
                    continue
                start = self.i
            self.i += 1
        return -1

    def skip_lwsp(self) -> int:
        d, n = self.d, self.n
        while self.i < n:
            c = d[self.i]
            if c in _LWSP:
                self.i += 1
                continue
            if c != 0x28:
                break
            if self.skip_comment() < 0:
                return -1
        return 1 if self.i < n else 0

    def atom(self, out: bytearray) -> int:
        d, n = self.d, self.n
        if self.i >= n or not ATEXT[d[self.i]]:
            return -1
        start = self.i
        self.i += 1
        while self.i < n and ATEXT[d[self.i]]:
            self.i += 1
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def dot_atom(self, out: bytearray) -> int:
        """A strict dot-atom (no empty atom between dots), blanks allowed around dots."""
        d, n = self.d, self.n
        if self.i >= n or not ATEXT[d[self.i]]:
            return -1
        start = self.i
        self.i += 1
        while self.i < n:
            if ATEXT[d[self.i]]:
                self.i += 1
                continue
            if start == self.i:
                return -1
            out += d[start : self.i]
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if d[self.i] != 0x2E:
                return 1
            self.i += 1
            out += b"."
            ret = self.skip_lwsp()
            if ret <= 0:
                return -1  # a trailing dot
            start = self.i
        out += d[start : self.i]
        return 0

    def loose_dot_atom(self, out: bytearray) -> int:
        """A local-part with any dots (".a", "a.", "a..b"), as real mail has them."""
        d, n = self.d, self.n
        ret = -1
        while True:
            while self.i < n and d[self.i] == 0x2E:
                out += b"."
                self.i += 1
                if self.i >= n:
                    return 0
                ret = 1
            if self.i < n and d[self.i] == 0x40:
                break
            ret = self.atom(out)
            if not (ret > 0 and d[self.i] == 0x2E):
                break
        return ret

    def mime_token(self, out: bytearray) -> int:
        d, n = self.d, self.n
        start = self.i
        while self.i < n and _is_token(d[self.i]):
            self.i += 1
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def quoted_string(self, out: bytearray) -> int:
        d, n = self.d, self.n
        self.i += 1  # the opening quote
        start = self.i
        while self.i < n:
            c = d[self.i]
            if c == 0x22:
                out += d[start : self.i]
                self.i += 1
                return self.skip_lwsp()
            if c == 0x0A and self.i + 2 < n:  # folding: drop the (CR)LF
                stop = self.i - 1 if self.i > start and d[self.i - 1] == 0x0D else self.i
                out += d[start:stop]
                start = self.i + 1
            elif c == 0x5C:
                self.i += 1
                if self.i >= n:
                    return -1
                out += d[start : self.i - 1]
                if d[self.i] in b"\r\n\0":  # no quoted-pair: the backslash stays
                    start = self.i - 1
                    continue
                start = self.i
            self.i += 1
        return -1

    def atom_or_dot(self, out: bytearray) -> int:
        d, n = self.d, self.n
        start = self.i
        while self.i < n and (ATEXT[d[self.i]] or d[self.i] == 0x2E):
            self.i += 1
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def phrase(self, out: bytearray) -> int:
        if self.i >= self.n:
            return 0
        if self.d[self.i] == 0x2E:
            return -1
        while True:
            ret = self.quoted_string(out) if self.d[self.i] == 0x22 else self.atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.d[self.i]
            if not ATEXT[c] and c != 0x22 and c != 0x2E:
                break
            out += b" "
        return self.skip_lwsp()

    def domain_literal(self, out: bytearray) -> int:
        d, n = self.d, self.n
        start = self.i
        while self.i < n:
            c = d[self.i]
            if c == 0x5C:
                self.i += 1
                if self.i >= n:
                    break
            elif c == 0x5D:
                self.i += 1
                out += d[start : self.i]
                return self.skip_lwsp()
            self.i += 1
        return -1

    def domain(self, out: bytearray) -> int:
        self.i += 1  # the "@"
        if self.skip_lwsp() <= 0:
            return -1
        if self.d[self.i] == 0x5B:
            return self.domain_literal(out)
        return self.dot_atom(out)

    def content_type(self, out: bytearray) -> int:
        """type/subtype into ``out``; as Dovecot 2.3.19, a broken value leaves only a
        lone type ("text") there, anything else broken leaves nothing."""
        if self.skip_lwsp() <= 0:
            return -1
        ret = self.mime_token(out)
        if ret <= 0:
            return -1
        if not out or not self.at(0x2F):
            out.clear()
            return -1
        self.i += 1
        if self.skip_lwsp() <= 0:
            out.clear()
            return -1
        out += b"/"
        before = len(out)
        ret = self.mime_token(out)
        if ret < 0 or len(out) == before or (ret > 0 and self.d[self.i] != 0x3B):
            out.clear()
            return -1
        return ret

    def content_param(self) -> tuple[int, bytes | None, bytes | None]:
        d, n = self.d, self.n
        if self.i >= n:
            return 0, None, None
        if d[self.i] != 0x3B:
            return -1, None, None
        self.i += 1
        if self.skip_lwsp() <= 0:
            return -1, None, None
        key = bytearray()
        if self.mime_token(key) <= 0:
            return -1, None, None
        if not self.at(0x3D):
            return -1, None, None
        self.i += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # broken / no value
        elif d[self.i] == 0x22:
            ret = self.quoted_string(value)
        elif d[self.i] == 0x3D:  # broken input: name==?utf-8?b?...?=
            while self.i < n and d[self.i] not in b"; \t\r\n":
                value.append(d[self.i])
                self.i += 1
        else:
            ret = self.mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)

    def rfc2231_params(self) -> list[tuple[bytes, bytes]]:
        """Dovecot's rfc2231_parse: ``name*0*=..`` continuations are merged into one
        ``name*`` (still %-encoded) or ``name`` parameter; others are kept in order."""
        result: list[tuple[bytes, bytes]] = []
        pending: list[tuple[bytes, int, bool, bytes]] = []
        idx = 0  # Dovecot reuses this between parameters
        while True:
            ret, key, value = self.content_param()
            if ret == 0:
                break
            if ret < 0 or key is None or value is None:
                if self.i >= self.n:
                    break
                self.i += 1
                continue
            star = key.find(b"*")
            plain = True
            if star >= 0:
                p = star
                if p + 1 < len(key):
                    p += 1
                    idx = 0
                    while p < len(key) and 0x30 <= key[p] <= 0x39:
                        idx = idx * 10 + key[p] - 0x30
                        p += 1
                extended = p < len(key) and key[p] == 0x2A
                if extended:
                    p += 1
                if p >= len(key):
                    pending.append((key[:star], idx, extended, value))
                    plain = False
            if plain:
                result.append((key, value))
        if not pending:
            return result
        pending.sort(key=lambda t: (t[0], t[1]))
        i = 0
        while i < len(pending):
            name = pending[i][0].lower()
            j = i
            ok = True
            have_ext = False
            want = 0
            while j < len(pending) and pending[j][0].lower() == name:
                if pending[j][1] != want:
                    ok = False
                have_ext = have_ext or pending[j][2]
                want += 1
                j += 1
            if not ok:
                for k in range(i, j):
                    key, index, ext, value = pending[k]
                    result.append((key + b"*%d" % index + (b"*" if ext else b""), value))
            else:
                out = bytearray()
                if not pending[i][2] and have_ext:
                    out += b"''"
                for k in range(i, j):
                    value = pending[k][3]
                    out += value.replace(b"%", b"%25") if not pending[k][2] and have_ext else value
                result.append((pending[i][0] + (b"*" if have_ext else b""), bytes(out)))
            i = j
        return result


# --------------------------------------------------------------------------------------------
# The message parser


@dataclass(slots=True)
class _Boundary:
    boundary: bytes
    part: Part


@dataclass(slots=True)
class _Match:
    index: int  # position in the boundary stack
    delim_start: int  # where the delimiter starts: its CRLF, or the "--" at a body start
    after: int  # after the LF that ends the boundary line; -1 if the line runs to the end
    close: bool  # "--boundary--"


def _content_type_flags(value: bytes) -> tuple[bytes, int]:
    """(type/subtype as parsed, rfc822_parse_content_type result) for the part flags."""
    tok = _Tok(value)
    tok.skip_lwsp()
    out = bytearray()
    ret = tok.content_type(out)
    return bytes(out), ret


class _Parser:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)
        self.stack: list[_Boundary] = []
        self.total = 0
        self.exhausted = False

    def parse(self) -> Part:
        root, _ = self.entity(0, depth=0, mime_child=False, in_digest=False)
        return root

    def boundary_at(self, pos: int) -> _Match | None:
        """A boundary line of the stack starting at ``pos`` ("--" already seen)."""
        buf = self.buf
        best = -1
        best_len = -1
        for index in range(len(self.stack) - 1, -1, -1):
            b = self.stack[index].boundary
            if len(b) > best_len and buf.startswith(b, pos + 2):
                best, best_len = index, len(b)
        if best < 0:
            return None
        tail = pos + 2 + best_len
        close = buf.startswith(b"--", tail)
        lf = buf.find(b"\n", pos)
        return _Match(best, pos, -1 if lf < 0 else lf + 1, close)

    def scan(self, pos: int) -> _Match | None:
        """The next boundary line at or after ``pos`` (a line start; a boundary on that
        first line takes no CRLF with it)."""
        if not self.stack or pos >= self.n:
            return None
        buf = self.buf
        if buf.startswith(b"--", pos) and (m := self.boundary_at(pos)) is not None:
            return m
        p = pos
        while True:
            hit = buf.find(b"\n--", p)
            if hit < 0:
                return None
            line = hit + 1
            m = self.boundary_at(line)
            if m is not None:
                m.delim_start = hit - 1 if hit > pos and buf[hit - 1] == 0x0D else hit
                return m
            p = line

    def header(self, part: Part) -> _Match | None:
        """Parse the header fields of ``part``; a boundary line ends them early."""
        buf, n = self.buf, self.n
        pos = part.start
        fields = part.fields
        current: Field | None = None
        lines: list[bytes] = []

        def finish() -> None:
            if current is not None:
                value = b"".join(lines)
                # Dovecot hands header values on with NULs as U+FFFD
                current.value = value.replace(b"\0", b"\xef\xbf\xbd") if b"\0" in value else value

        while pos < n:
            if self.stack and buf.startswith(b"--", pos):
                m = self.boundary_at(pos)
                if m is not None:
                    finish()
                    # the line end before a boundary belongs to the boundary
                    if pos == part.start:
                        end = pos
                    elif pos - 2 >= part.start and buf[pos - 2] == 0x0D:
                        end = pos - 2
                    else:
                        end = pos - 1
                    if current is not None and current.end > end:
                        current.end = end
                    part.header_end = end
                    return m
            lf = buf.find(b"\n", pos)
            line_end = n if lf < 0 else lf + 1
            content_end = line_end
            if lf >= 0:
                content_end = lf - 1 if lf > pos and buf[lf - 1] == 0x0D else lf
            if content_end == pos and lf >= 0:  # the empty line
                finish()
                part.header_end = line_end
                part.has_eoh = True
                return None
            c = buf[pos]
            if current is not None and (c == 0x20 or c == 0x09):
                lines.append(b"\r\n" + buf[pos:content_end])
                current.end = line_end
            else:
                finish()
                colon = buf.find(b":", pos, content_end)
                if colon < 0:
                    current = Field(buf[pos:content_end], pos, -1)
                    lines = []
                else:
                    name_end = colon
                    while name_end > pos and buf[name_end - 1] in b" \t":
                        name_end -= 1
                    current = Field(buf[pos:name_end], pos, colon + 1)
                    first = buf[colon + 1 : content_end]
                    stripped = first.lstrip(b" \t")
                    if not stripped and first:
                        stripped = first[1:]  # only blanks: skip just one
                    lines = [stripped]
                current.end = line_end
                fields.append(current)
            pos = line_end
        finish()
        part.header_end = n
        return None

    def classify(self, part: Part, mime_child: bool, in_digest: bool) -> bytes | None:
        """Set the part flags from its header; returns the multipart boundary, if any."""
        ctype: bytes | None = None
        has_version = False
        for f in part.fields:
            if f.value_start < 0:
                continue  # a line without a colon is no field for Dovecot
            if f.lname == b"content-type":
                if ctype is None:
                    ctype = f.value
            elif f.lname == b"mime-version":
                has_version = True
        part.is_mime = mime_child or has_version or ctype is not None
        boundary: bytes | None = None
        if ctype is not None:
            full, ret = _content_type_flags(ctype)
            low = full.lower()
            if low == b"message/rfc822":
                part.rfc822 = True
            elif low.startswith(b"text") and (len(low) == 4 or low[4] == 0x2F):
                part.text = True
            elif low.startswith(b"multipart/"):
                part.multipart = True
                part.digest = low[10:] == b"digest"
                if ret >= 0:
                    tok = _Tok(ctype)
                    tok.skip_lwsp()
                    tok.content_type(bytearray())
                    for key, value in tok.rfc2231_params():
                        if key.lower() == b"boundary":
                            boundary = value
                            break
        else:
            if in_digest:
                part.rfc822 = True
            else:
                part.text = True
        return boundary

    def entity(
        self, start: int, *, depth: int, mime_child: bool, in_digest: bool
    ) -> tuple[Part, _Match | None]:
        """Parse the entity starting at ``start``; returns it and the boundary line of an
        enclosing multipart that ended it (None: it ran to the end of the message)."""
        self.total += 1
        if self.total >= MAX_TOTAL_PARTS:
            # the last part Dovecot creates: it runs to the end of the message
            self.stack.clear()
            self.exhausted = True
        part = Part(self.buf, start)
        m = self.header(part)
        boundary = self.classify(part, mime_child, in_digest)
        if depth + 1 >= MAX_NESTED_PARTS or self.exhausted:
            # too deep or too many: a leaf whatever it says it is
            part.multipart = part.digest = part.rfc822 = False
        own = boundary if part.multipart and part.has_eoh else None
        if m is None and part.has_eoh:
            m = self.boundary_after_eoh(part, own)
        if m is not None:
            # The header was cut by a boundary line: the body is empty (a message/rfc822
            # part holds an empty message) and the line end before the boundary belongs to
            # the enclosing part's body.
            part.end = part.header_end
            if part.rfc822:
                part.children.append(Part(self.buf, part.header_end))
            return part, m
        if part.rfc822:
            child, m = self.entity(
                part.header_end, depth=depth + 1, mime_child=False, in_digest=False
            )
            part.children.append(child)
            part.end = self.n if m is None else m.delim_start
            return part, m
        if own is not None:
            return self.multipart(part, own, depth)
        m = self.scan(part.header_end) if part.has_eoh else None
        part.end = self.n if m is None else m.delim_start
        return part, m

    def boundary_after_eoh(self, part: Part, own: bytes | None) -> _Match | None:
        """An enclosing boundary right after the empty line that ends a header takes that
        line's CRLF (RFC 2046: the CRLF before a boundary belongs to it), so the header
        loses its empty line, as in Dovecot.  A multipart's own boundary there does not."""
        pos = part.header_end
        if not self.stack or not self.buf.startswith(b"--", pos):
            return None
        if own is not None:
            self.stack.append(_Boundary(own, part))
        m = self.boundary_at(pos)
        if own is not None:
            self.stack.pop()
            if m is not None and m.index == len(self.stack):
                return None
        if m is not None:
            part.header_end = pos - 2
            part.has_eoh = False
        return m

    def multipart(self, part: Part, boundary: bytes, depth: int) -> tuple[Part, _Match | None]:
        mine = len(self.stack)
        self.stack.append(_Boundary(boundary, part))
        m = self.scan(part.header_end)  # the preamble
        while True:
            if m is None:
                part.end = self.n
                return part, None
            if m.index < mine:  # an enclosing multipart's boundary
                part.end = m.delim_start
                return part, m
            # our own boundary (anything opened inside us has returned by now)
            if m.close:
                del self.stack[mine:]
                after = self.n if m.after < 0 else m.after
                m = self.scan(after)  # the epilogue
                part.end = self.n if m is None else m.delim_start
                return part, m
            del self.stack[mine + 1 :]
            if m.after < 0:  # a last boundary line without a line end: no new part
                part.end = self.n
                return part, None
            child, m = self.entity(m.after, depth=depth + 1, mime_child=True, in_digest=part.digest)
            part.children.append(child)


# --------------------------------------------------------------------------------------------
# Content-* data for BODYSTRUCTURE (Dovecot's lib-mail/message-part-data.c)


@dataclass(slots=True)
class _PartData:
    content_type: bytes | None = None
    content_subtype: bytes | None = None
    params: list[tuple[bytes, bytes]] | None = None
    encoding: bytes | None = None
    content_id: bytes | None = None
    description: bytes | None = None
    disposition: bytes | None = None
    disposition_params: list[tuple[bytes, bytes]] | None = None
    md5: bytes | None = None
    language: list[bytes] | None = None
    location: bytes | None = None


def _part_data(part: Part) -> _PartData:
    data = _PartData()
    if not part.is_mime:
        return data
    for f in part.fields:
        if f.value_start < 0 or not f.lname.startswith(b"content-"):
            continue
        name = f.lname[8:]
        value = f.value
        if name == b"type" and data.content_type is None:
            tok = _Tok(value)
            tok.skip_lwsp()
            out = bytearray()
            ret = tok.content_type(out)
            slash = out.find(b"/")
            if slash >= 0:
                data.content_type = bytes(out[:slash])
                data.content_subtype = bytes(out[slash + 1 :])
            else:
                data.content_type = bytes(out)
            if ret >= 0:
                params = tok.rfc2231_params()
                data.params = params or None
        elif name == b"transfer-encoding" and data.encoding is None:
            tok = _Tok(value)
            tok.skip_lwsp()
            out = bytearray()
            if tok.mime_token(out) >= 0 and tok.skip_lwsp() == 0 and out:
                data.encoding = bytes(out)
        elif name == b"id" and data.content_id is None:
            data.content_id = value
        elif name == b"md5" and data.md5 is None:
            data.md5 = value
        elif name == b"description" and data.description is None:
            data.description = value
        elif name == b"location" and data.location is None:
            data.location = value
        elif name == b"language" and data.language is None:
            tok = _Tok(value)
            tok.skip_lwsp()
            langs: list[bytes] = []
            while True:
                out = bytearray()
                if tok.atom(out) < 0:
                    break
                langs.append(bytes(out))
                if not tok.at(0x2C):
                    break
                tok.i += 1
                tok.skip_lwsp()
            data.language = langs or None
        elif name == b"disposition" and data.disposition_params is None:
            tok = _Tok(value)
            tok.skip_lwsp()
            out = bytearray()
            if tok.mime_token(out) < 0:
                continue
            data.disposition = bytes(out)
            data.disposition_params = tok.rfc2231_params() or None
    return data


# --------------------------------------------------------------------------------------------
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
# Addresses (Dovecot 2.3's lib-mail/message-address.c, with MISSING_* fill-ins)


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address: (name adl mailbox host); None is NIL.  A group start has only
    ``mailbox`` (the group name), a group end has nothing."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.domain is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.domain is None and self.mailbox is None

    @property
    def addr_spec(self) -> str:
        """``mailbox@domain`` (decoded as UTF-8), or "" for group markers."""
        if self.domain is None or self.mailbox is None:
            return ""
        text = self.mailbox + b"@" + self.domain
        return text.decode("utf-8", "replace")


class _AddressParser:
    def __init__(self, data: bytes) -> None:
        self.t = _Tok(data, keep_comment=True)
        self.out: list[Address] = []
        self.s = bytearray()
        self._clear()

    def _clear(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None
        self.invalid = False

    def add(self) -> None:
        self.out.append(Address(self.name, self.route, self.mailbox, self.domain))
        self._clear()

    def add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = b"MISSING_MAILBOX"
        if not self.domain:
            self.domain = b"MISSING_DOMAIN"
        self.add()

    def local_part(self) -> int:
        t = self.t
        self.s.clear()
        ret = t.quoted_string(self.s) if t.d[t.i] == 0x22 else t.loose_dot_atom(self.s)
        if ret < 0:
            return -1
        self.mailbox = bytes(self.s)
        return ret

    def domain_(self) -> int:
        self.s.clear()
        ret = self.t.domain(self.s)
        if ret < 0:
            return -1
        self.domain = bytes(self.s)
        return ret

    def domain_list(self) -> int:
        t = self.t
        self.s.clear()
        while True:
            if t.i >= t.n:
                return 0
            if t.d[t.i] != 0x40:
                break
            if self.s:
                self.s += b","
            self.s += b"@"
            ret = t.domain(self.s)
            if ret <= 0:
                return ret
            while t.skip_lwsp() > 0 and t.d[t.i] == 0x2C:
                t.i += 1
        self.route = bytes(self.s)
        return 1

    def angle_addr(self) -> int:
        t = self.t
        t.i += 1  # "<"
        if t.skip_lwsp() <= 0:
            return -1
        if t.d[t.i] == 0x40:
            if self.domain_list() > 0 and t.at(0x3A):
                t.i += 1
            else:
                self.route = b"INVALID_ROUTE"
                if t.i >= t.n:
                    return -1
            if t.skip_lwsp() <= 0:
                return -1
        if t.d[t.i] != 0x3E:
            if self.local_part() <= 0:
                return -1
            if t.d[t.i] == 0x40 and self.domain_() <= 0:
                return -1
        if not t.at(0x3E):
            return -1
        t.i += 1
        return t.skip_lwsp()

    def name_addr(self) -> int:
        t = self.t
        self.s.clear()
        if t.phrase(self.s) <= 0 or not t.at(0x3C):
            return -1
        self.name = bytes(self.s) or None
        if self.angle_addr() < 0:
            self.domain = b"SYNTAX_ERROR"
        return 1 if t.i < t.n else 0

    def addr_spec(self) -> int:
        t = self.t
        assert t.comment is not None
        t.comment.clear()
        quoted = t.d[t.i] == 0x22
        ret = self.local_part()
        if ret <= 0:
            self.invalid = True
        ret2 = -2
        if ret != 0 and t.at(0x40):
            ret2 = self.domain_()
            if ret2 <= 0:
                ret = ret2
        if t.comment:
            self.name = bytes(t.comment)
        elif ret2 == -2:
            # "user" alone is a mailbox; "user more words" is a display name
            self.s += b" "
            before = len(self.s)
            t.phrase(self.s)
            if len(self.s) != before:
                self.mailbox = None
                self.name = bytes(self.s)
            elif not quoted:
                self.domain = b""
            self.invalid = True
            ret = -1
        return ret

    def mailbox_(self) -> int:
        t = self.t
        start = t.i
        ret = self.name_addr()
        if ret < 0:
            t.i = start
            self._clear()
            ret = self.addr_spec()
            # "Some Name" alone is a display name, not a mailbox
            lone_word = self.mailbox is not None and self.domain is None
            if self.invalid and self.name is None and lone_word:
                self.name, self.mailbox = self.mailbox, None
        self.add_fixed()
        return ret

    def group(self) -> int:
        t = self.t
        self.s.clear()
        if t.phrase(self.s) <= 0 or not t.at(0x3A):
            return -1
        t.i += 1
        ret = t.skip_lwsp()
        self.mailbox = bytes(self.s)
        self.add()
        if ret > 0 and t.d[t.i] != 0x3B:
            while True:
                self.mailbox_()
                if not t.at(0x2C):
                    break
                t.i += 1
                if t.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if not t.at(0x3B):
                ret = -1
            else:
                t.i += 1
                ret = t.skip_lwsp()
        self._clear()
        self.add()
        return 0 if ret == 0 else 1

    def address(self) -> int:
        t = self.t
        start = t.i
        ret = self.group()
        if ret < 0:
            t.i = start
            self._clear()
            ret = self.mailbox_()
        return ret

    def parse(self) -> list[Address]:
        t = self.t
        if t.skip_lwsp() <= 0:
            return []
        while True:
            if self.address() == 0:
                break
            if not t.at(0x2C):
                break
            t.i += 1
            ret = t.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed()
                break
        return self.out


def envelope_addresses(value: bytes) -> list[Address]:
    """Parse an address-list header value the way Dovecot does for ENVELOPE."""
    try:
        return _AddressParser(value).parse()
    except IndexError:  # a defect in the port; never let a header break FETCH
        return []


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


def _extension_common(d: _PartData) -> bytes:
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


# --------------------------------------------------------------------------------------------
# Sections


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


# --------------------------------------------------------------------------------------------
# Decoded text, for SEARCH and SORT

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


def decode_rfc2047(value: str) -> str:
    """Decode RFC 2047 encoded-words anywhere in ``value`` (also inside quotes, as mail
    clients write them).  Blanks between two decoded words are dropped; words that cannot
    be decoded stay as they are."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    last_decoded = False
    for m in _ENCODED_WORD.finditer(value):
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
    raw = part.buf[f.value_start : f.end]
    text = _header_octets(raw).replace("\r\n", "").replace("\n", "")
    return decode_rfc2047(text).strip(" \t")


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
