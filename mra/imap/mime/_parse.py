"""The MIME structure of a stored message: :func:`parse` turns the message into a tree of
:class:`Part` objects, each a set of offsets into the message (header, body), never a copy.

Everything works on the message as IMAP serves it: CRLF line ends (RFC 3501 sizes and
offsets are in that form); :func:`parse` converts a stored message (LF or CRLF, see
``mailstore.content``) once.  The parser follows Dovecot 2.3's message parser
(``lib-mail/message-parser.c``) so that ENVELOPE, BODY, BODYSTRUCTURE and BODY[section]
answers are the same octets Dovecot sends; the unit tests compare against answers captured
from Dovecot 2.3.19 (``tests/unit/imap_mime/golden.py``).  The rules, briefly:

- A header ends at the first empty line; a header with no empty line runs to the end of
  the message (or to a boundary line of an enclosing multipart) and the body is empty.
  Lines without a colon are fields whose name is the whole line, and so are lines whose
  name is longer than 1000 octets (``MESSAGE_HEADER_NAME_MAX_LEN``); nothing ever raises.
- A part is MIME when it is inside a multipart or has a Content-Type or MIME-Version
  field; other Content-* fields of non-MIME parts are ignored.  No Content-Type means
  text/plain (message/rfc822 inside multipart/digest).
- Boundary lines are decided by :mod:`._boundary`.  The CRLF before a boundary line
  belongs to the boundary, except at the very start of a body.  If the line after the
  empty line of a header is an enclosing boundary, that empty line is the boundary's CRLF
  (the header then has no empty line and the body is empty).  A multipart without a
  boundary parameter (or whose header has no empty line) has no children.
- message/rfc822 parts hold the encapsulated message as their only child.

Linear and bounded (SECURITY.md, heading 1).  A crafted message must cost time and memory in
proportion to its size, with a small factor, and never exhaust the stack:

- the parser is a loop over an explicit stack of open parts, not a recursion, and so are
  :meth:`Part.walk` and the writers of :mod:`._structure`;
- the octets of a header are walked by ``bytes.find`` and regular expressions (C), a field
  at a time: continuation lines and boundary candidates cost no Python step each;
- what Dovecot bounds is bounded the same way, with the same defaults (:class:`Limits`):
  nesting (100 levels; deeper parts are leaves whatever they announce), parts (10000; the
  last one runs to the end of the message), value octets of one header (10 MiB) and of all
  headers (50 MiB; beyond, values are cut, the octets of sections are not), parameters
  (128, :mod:`._tokens`) and the boundary length (80, :mod:`._boundary`);
- two bounds are ours, because Python pays per object and per step where C does not: a
  message has at most ``max_header_fields`` fields (100000; the rest of a header past that
  is one field with no name, kept by HEADER and HEADER.FIELDS.NOT, seen by nothing else),
  and reading its header values (addresses, Content-* fields, RFC 2047 words) takes at
  most ``max_tokens`` Python steps (250000; past it, values read as if they ended there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mailstore.content import to_crlf
from mra.imap.mime._boundary import Boundaries, Match
from mra.imap.mime._partdata import PartData, part_data
from mra.imap.mime._tokens import Tokenizer, Work

__all__ = ["DEFAULT_LIMITS", "Field", "Limits", "Part", "crlf", "parse"]

MIB = 1024 * 1024
HEADER_NAME_MAX = 1000  # Dovecot's MESSAGE_HEADER_NAME_MAX_LEN (message-header-parser.c)


class Limits:
    """The bounds of one parse; the defaults are Dovecot 2.3's.

    - ``max_nested_parts``: message_parser ``max_nested_mime_parts`` (100): a part at this
      depth is a leaf whatever it says it is (BODYSTRUCTURE calls it application/octet-stream).
    - ``max_total_parts``: ``max_total_mime_parts`` (10000): no boundary is looked for once
      that many parts exist, so the last one runs to the end of the message.
    - ``max_header_block``: ``MESSAGE_HEADER_BLOCK_DEFAULT_MAX_SIZE`` (10 MiB, Dovecot
      2.3.21.1, CVE-2024-23185): value octets kept of one header, counted from the colon;
      a longer value is cut, the fields after it get empty values.
    - ``max_all_headers``: ``MESSAGE_PARSER_DEFAULT_ALL_HEADERS_MAX_SIZE`` (50 MiB): the
      same over all the headers of the message and its parts.
    - ``max_params``: ``RFC2231_MAX_PARAMS`` (128, Dovecot 2.4.3, in Debian's 2.3.19.1 as
      the fix of CVE-2026-27859): parameters of one Content-Type or Content-Disposition.
    - ``max_header_fields``: ours, not Dovecot's (see the module note): header fields of a
      message, all parts together.
    - ``max_tokens``: ours: the Python steps spent reading header values of a message
      (address lists, Content-* fields, RFC 2047 words; see :mod:`._tokens`), shared by
      all the answers made from one parse; past it, values read as if they ended there.
    """

    __slots__ = (
        "max_all_headers",
        "max_header_block",
        "max_header_fields",
        "max_nested_parts",
        "max_params",
        "max_tokens",
        "max_total_parts",
    )

    def __init__(
        self,
        *,
        max_nested_parts: int = 100,
        max_total_parts: int = 10000,
        max_header_block: int = 10 * MIB,
        max_all_headers: int = 50 * MIB,
        max_params: int = 128,
        max_header_fields: int = 100_000,
        max_tokens: int = 250_000,
    ) -> None:
        self.max_nested_parts = max_nested_parts
        self.max_total_parts = max_total_parts
        self.max_header_block = max_header_block
        self.max_all_headers = max_all_headers
        self.max_params = max_params
        self.max_header_fields = max_header_fields
        self.max_tokens = max_tokens


DEFAULT_LIMITS = Limits()


def crlf(raw: bytes) -> bytes:
    """The message as IMAP serves it: every bare LF becomes CRLF (idempotent)."""
    lf = raw.count(b"\n")
    if lf == 0 or raw.count(b"\r\n") == lf:
        return raw
    return to_crlf(raw)


class Field:
    """One header field: ``buf[start:end]`` is the field as stored, continuation lines and
    line end included (no line end when the header stops at the end of the data, or at a
    boundary line).  ``value_start`` is just after the colon, -1 for a line without one
    (or with an overlong name, or the unnamed rest of a header past the field limit)."""

    __slots__ = ("buf", "end", "lname", "name_end", "start", "value_end", "value_start")

    def __init__(
        self,
        buf: bytes,
        start: int,
        name_end: int,
        value_start: int,
        value_end: int,
        end: int,
        lname: bytes,
    ) -> None:
        self.buf = buf
        self.start = start
        self.name_end = name_end
        self.value_start = value_start
        self.value_end = value_end  # where the value is cut: its end, or a header limit
        self.end = end
        self.lname = lname  # the name in lower case

    @property
    def name(self) -> bytes:
        """As written, blanks before the colon removed (the whole first line if there is
        no colon)."""
        return self.buf[self.start : self.name_end]

    @property
    def value(self) -> bytes:
        """Dovecot's "full value": the value without the blanks after the colon (just one
        if there is nothing else on the first line), folding kept, no final line end, NUL
        as U+FFFD, cut at the header limits."""
        start, end = self.value_start, self.value_end
        if start < 0:
            return b""
        buf = self.buf
        first = buf.find(b"\r\n", start, end)
        if first < 0:
            first = end
        blanks = _BLANKS.match(buf, start, first)
        skip = blanks.end() if blanks is not None else start
        if skip == first and skip > start:
            skip = start + 1  # only blanks: skip just one
        value = buf[skip:end]
        return value.replace(b"\0", b"\xef\xbf\xbd") if b"\0" in value else value


_BLANKS = re.compile(rb"[ \t]*")
_FIELD_END = re.compile(rb"\r\n(?![ \t])")  # a line end not followed by a continuation


class Part:
    """A MIME entity: ``buf[start:header_end]`` is its header (with the empty line that
    ends it, if there is one), ``buf[header_end:end]`` its body.  The root part is the
    whole message.  ``children`` are the parts of a multipart, or the single encapsulated
    message of a message/rfc822 part."""

    __slots__ = (
        "_data",
        "_lines",
        "buf",
        "children",
        "digest",
        "end",
        "fields",
        "has_eoh",
        "header_end",
        "is_mime",
        "limits",
        "multipart",
        "rfc822",
        "start",
        "text",
        "work",
    )

    def __init__(
        self, buf: bytes, start: int, limits: Limits = DEFAULT_LIMITS, work: Work | None = None
    ) -> None:
        self.buf = buf
        self.start = start
        self.header_end = start
        self.end = start
        self.limits = limits
        self.work = Work(limits.max_tokens) if work is None else work  # the message's
        self.fields: list[Field] = []
        self.has_eoh = False
        self.children: list[Part] = []
        self.is_mime = False
        self.multipart = False
        self.digest = False
        self.rfc822 = False
        self.text = False
        self._data: PartData | None = None
        self._lines = -1

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
        """Lines of the body.  Counted once per part and summed up the tree: counting each
        nested message/rfc822 body afresh would read the innermost octets once per level."""
        return self._whole_lines() - self.buf.count(b"\n", self.start, self.header_end)

    def _whole_lines(self) -> int:
        if self._lines < 0:
            todo = [self]  # post-order without recursion; children before parents
            while todo:
                part = todo[-1]
                pending = [c for c in part.children if c._lines < 0]
                if pending:
                    todo.extend(pending)
                    continue
                todo.pop()
                count, pos = 0, part.start
                for child in part.children:
                    count += part.buf.count(b"\n", pos, child.start) + child._lines
                    pos = child.end
                part._lines = count + part.buf.count(b"\n", pos, part.end)
        return self._lines

    def field_values(self, name: str | bytes) -> list[bytes]:
        """Values (folding kept, see :attr:`Field.value`) of every field called ``name``."""
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
        todo = [self]
        while todo:
            part = todo.pop()
            yield part
            todo.extend(reversed(part.children))

    def __repr__(self) -> str:
        t, s = self.content_type
        return f"<Part {t}/{s} header={self.start}:{self.header_end} body=:{self.end}>"


def parse(raw: bytes | Part, limits: Limits = DEFAULT_LIMITS) -> Part:
    """Parse a stored message (LF or CRLF line ends) into its root :class:`Part`."""
    if isinstance(raw, Part):
        return raw
    return _Parser(crlf(raw), limits).parse()


def _content_type_flags(value: bytes, work: Work) -> tuple[bytes, int]:
    """(type/subtype as parsed, rfc822_parse_content_type result) for the part flags."""
    tok = Tokenizer(value, work)
    tok.skip_lwsp()
    out = bytearray()
    ret = tok.content_type(out)
    return bytes(out), ret


class _Open:
    """A part whose end is not known yet: a multipart (``mine``: the index of its boundary)
    or a message/rfc822 part (``mine`` -1) waiting for its message to end."""

    __slots__ = ("depth", "mine", "part")

    def __init__(self, part: Part, depth: int, mine: int) -> None:
        self.part = part
        self.depth = depth
        self.mine = mine


class _Parser:
    def __init__(self, buf: bytes, limits: Limits) -> None:
        self.buf = buf
        self.n = len(buf)
        self.limits = limits
        self.work = Work(limits.max_tokens)
        self.bounds = Boundaries(buf)
        self.total = 0
        self.exhausted = False
        self.fields_left = limits.max_header_fields
        self.values_left = limits.max_all_headers

    def parse(self) -> Part:
        """Parts are opened in message order; an open multipart or message/rfc822 part
        waits on ``stack`` for the boundary line (or the end) that closes it, which is
        handed up from the part that met it."""
        n = self.n
        bounds = self.bounds
        stack: list[_Open] = []
        root, m, own = self.open(0, 0, False, False)
        child: Part | None = root
        while True:
            if child is not None:  # just opened
                depth = stack[-1].depth + 1 if stack else 0
                if m is None and child.rfc822 and not child.children:
                    stack.append(_Open(child, depth, -1))
                    child, m, own = self.open(child.header_end, depth + 1, False, False)
                    stack[-1].part.children.append(child)
                    continue
                if own is not None:
                    stack.append(_Open(child, depth, len(bounds)))
                    bounds.push(own, child)
                    m = self.scan(child.header_end)  # the preamble
            if not stack:
                return root
            top = stack[-1]
            part = top.part
            child = None
            if top.mine < 0:  # message/rfc822: its message ended here
                part.end = n if m is None else m.delim_start
                stack.pop()
            elif m is None:
                part.end = n
                stack.pop()
            elif m.index < top.mine:  # an enclosing multipart's boundary
                part.end = m.delim_start
                stack.pop()
            elif m.close:  # ours, closing: the epilogue runs to the next boundary line
                bounds.truncate(top.mine)
                m = self.scan(n if m.after < 0 else m.after)
                part.end = n if m is None else m.delim_start
                stack.pop()
            else:  # ours (anything opened inside has been closed by now)
                bounds.truncate(top.mine + 1)
                if m.after < 0:  # a last boundary line without a line end: no new part
                    part.end = n
                    m = None
                    stack.pop()
                    continue
                child, m, own = self.open(m.after, top.depth + 1, True, part.digest)
                part.children.append(child)

    def open(
        self, start: int, depth: int, mime_child: bool, in_digest: bool
    ) -> tuple[Part, Match | None, bytes | None]:
        """Read the header of the part starting at ``start``.  Returns the part; the
        boundary line that ended it (its end is then set), and the boundary it opens if it
        is a multipart (its children follow)."""
        limits = self.limits
        self.total += 1
        if self.total >= limits.max_total_parts:
            # the last part Dovecot creates: it runs to the end of the message
            self.bounds.clear()
            self.exhausted = True
        part = Part(self.buf, start, limits, self.work)
        m = self.header(part)
        boundary = self.classify(part, mime_child, in_digest)
        if depth + 1 >= limits.max_nested_parts or self.exhausted:
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
                part.children.append(Part(self.buf, part.header_end, limits, self.work))
            return part, m, None
        if part.rfc822 or own is not None:
            return part, None, own
        m = self.scan(part.header_end) if part.has_eoh else None
        part.end = self.n if m is None else m.delim_start
        return part, m, None

    def scan(self, pos: int) -> Match | None:
        """The next boundary line at or after ``pos`` (a line start; a boundary on that
        first line takes no CRLF with it)."""
        if not self.bounds or pos >= self.n:
            return None
        return self.bounds.match_at(pos) or self.bounds.next_line(pos, self.n)

    def header(self, part: Part) -> Match | None:
        """Find where the header of ``part`` ends and read its fields; a boundary line
        ends the header early (the line end before it belongs to the boundary)."""
        buf, n, start = self.buf, self.n, part.start
        bounds = self.bounds
        m = bounds.match_at(start) if bounds else None
        if m is not None:
            part.header_end = start
            return m
        if buf.startswith(b"\r\n", start):
            eoh = start
        else:
            found = buf.find(b"\r\n\r\n", start)
            eoh = -1 if found < 0 else found + 2
        stop = n if eoh < 0 else eoh  # where the header lines end
        if bounds and stop - 1 > start:
            m = bounds.next_line(start, stop - 1)
        if m is not None:
            # The line end before the boundary line is neither the header's nor the
            # boundary's: it stays in the enclosing part's body, as in Dovecot.
            cut = m.delim_start
            m.delim_start = buf.index(b"\n", cut) + 1
            part.header_end = cut
            self.fields(part, start, m.delim_start, cut)
            return m
        self.fields(part, start, stop, stop)
        if eoh < 0:
            part.header_end = n
        else:
            part.header_end = eoh + 2
            part.has_eoh = True
        return None

    def fields(self, part: Part, pos: int, stop: int, cut: int) -> None:
        """The fields of the header lines in ``[pos, stop)``, none reaching past ``cut``."""
        buf = self.buf
        fields = part.fields
        block_left = self.limits.max_header_block
        while pos < cut:
            if self.fields_left <= 0:  # the rest is one field with no name
                fields.append(Field(buf, pos, pos, -1, -1, cut, b""))
                return
            self.fields_left -= 1
            m = _FIELD_END.search(buf, pos, stop)
            end = min(m.end() if m is not None else stop, cut)
            first = buf.find(b"\r\n", pos, end)
            if first < 0:
                first = end
            colon = buf.find(b":", pos, first)
            name_end = first
            if colon >= 0:
                name = buf[pos:colon].rstrip(b" \t")
                if len(name) <= HEADER_NAME_MAX:
                    name_end = pos + len(name)
                else:
                    colon = -1  # Dovecot: the whole line is a value, the name is empty
            if colon < 0:
                fields.append(Field(buf, pos, name_end, -1, -1, end, buf[pos:name_end].lower()))
            else:
                value_end = end - 2 if end - 2 > colon and buf.startswith(b"\r\n", end - 2) else end
                keep = min(value_end - colon - 1, block_left, self.values_left)
                block_left -= keep
                self.values_left -= keep
                lname = buf[pos:name_end].lower()
                fields.append(Field(buf, pos, name_end, colon + 1, colon + 1 + keep, end, lname))
            pos = end

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
            full, ret = _content_type_flags(ctype, self.work)
            low = full.lower()
            if low == b"message/rfc822":
                part.rfc822 = True
            elif low.startswith(b"text") and (len(low) == 4 or low[4] == 0x2F):
                part.text = True
            elif low.startswith(b"multipart/"):
                part.multipart = True
                part.digest = low[10:] == b"digest"
                if ret >= 0:
                    tok = Tokenizer(ctype, self.work)
                    tok.skip_lwsp()
                    tok.content_type(bytearray())
                    for key, value in tok.rfc2231_params(self.limits.max_params):
                        if key.lower() == b"boundary":
                            boundary = value
                            break
        else:
            if in_digest:
                part.rfc822 = True
            else:
                part.text = True
        return boundary

    def boundary_after_eoh(self, part: Part, own: bytes | None) -> Match | None:
        """An enclosing boundary right after the empty line that ends a header takes that
        line's CRLF (RFC 2046: the CRLF before a boundary belongs to it), so the header
        loses its empty line, as in Dovecot.  A multipart's own boundary there does not."""
        pos = part.header_end
        bounds = self.bounds
        if not bounds or not self.buf.startswith(b"--", pos):
            return None
        if own is not None:
            bounds.push(own, part)
        m = bounds.match_at(pos)
        if own is not None:
            bounds.pop()
            if m is not None and m.index == len(bounds):
                return None
        if m is not None:
            part.header_end = pos - 2
            part.has_eoh = False
        return m
