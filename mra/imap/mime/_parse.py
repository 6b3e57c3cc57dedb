"""The MIME structure of a stored message: :func:`parse` turns the message into a tree of
:class:`Part` objects, each a pair of offsets into the message (header, body), never a copy.

Everything works on the message as IMAP serves it: CRLF line ends (RFC 3501 sizes and
offsets are in that form); :func:`parse` converts a stored message (LF or CRLF, see
``mailstore.content``) once.  The parser follows Dovecot 2.3's message parser
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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mailstore.content import to_crlf
from mra.imap.mime._partdata import PartData, part_data
from mra.imap.mime._tokens import Tokenizer

__all__ = ["MAX_NESTED_PARTS", "MAX_TOTAL_PARTS", "Field", "Part", "crlf", "parse"]

# Dovecot's limits (message_parser_settings): deeper or further parts are not descended
# into, they become leaves with the type they announce.
MAX_NESTED_PARTS = 100
MAX_TOTAL_PARTS = 10000


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
        self._data: PartData | None = None

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
    def data(self) -> PartData:
        if self._data is None:
            self._data = part_data(self)
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
    tok = Tokenizer(value)
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
                    tok = Tokenizer(ctype)
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
