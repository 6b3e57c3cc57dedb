"""The MIME structure of a message, for "body" (RFC 5173), "mime", "foreverypart" and
"extracttext" (RFC 5703). Only built when a script uses one of them.

A part is a range of the one message buffer (nothing is copied until a part's content is
asked for). Multipart bodies are split at their boundary lines (RFC 2046 section 5.1.1: "--"
boundary, optional trailing blanks, end of line; "--" boundary "--" closes), message/rfc822
parts hold the encapsulated message as their one child. Bounded as Dovecot bounds it: 100
levels of nesting (a deeper multipart is a leaf) and 10000 parts (no boundary is looked for
after that). Each level finds its boundaries with `bytes.find`, so the cost is the message
size times the nesting, and the CPU time limit of the run bounds it all.
"""

from __future__ import annotations

import binascii

from .message import decode_octets, parse_header_block, unfold
from .params import parse_params

MAX_NESTING = 100
MAX_PARTS = 10000


class Part:
    """One MIME part: its header fields, content type and where its body is in `raw`."""

    __slots__ = (
        "body_end",
        "body_start",
        "children",
        "fields",
        "media_type",
        "params",
        "raw",
        "subtype",
    )

    def __init__(
        self,
        raw: bytes | bytearray,
        fields: list[tuple[str, str]],
        body_start: int,
        body_end: int,
        default_type: str = "text/plain",
    ) -> None:
        self.raw = raw
        self.fields = fields
        self.body_start = body_start
        self.body_end = body_end
        self.children: list[Part] = []
        content_type = default_type
        self.params: dict[str, str] = (
            {"charset": "us-ascii"} if default_type == "text/plain" else {}
        )
        for name, value in fields:
            if name.lower() == "content-type":
                main, params = parse_params(unfold(value))
                if "/" in main:
                    content_type = main
                    self.params = params
                break
        media, _, sub = content_type.lower().partition("/")
        self.media_type = media.strip()
        self.subtype = sub.strip()

    def header(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self.fields if field.lower() == key]

    def content(self) -> bytes:
        """The body with its transfer encoding undone (base64, quoted-printable)."""
        body = bytes(self.raw[self.body_start : self.body_end])
        encoding = ""
        for value in self.header("content-transfer-encoding"):
            encoding = unfold(value).strip().lower()
        try:
            if encoding == "base64":
                return binascii.a2b_base64(b"".join(body.split()))
            if encoding == "quoted-printable":
                return binascii.a2b_qp(body)
        except (binascii.Error, ValueError):
            pass
        return body

    def text(self) -> str:
        """The content as text, from its charset (unknown charsets as UTF-8, then Latin-1);
        line ends as CRLF."""
        data = self.content()
        charset = self.params.get("charset", "us-ascii").strip().lower() or "us-ascii"
        if charset in ("us-ascii", "ascii"):
            charset = "utf-8"
        try:
            text = data.decode(charset, "replace")
        except (LookupError, ValueError):
            text = decode_octets(data)
        return text.replace("\r\n", "\n").replace("\n", "\r\n")

    def walk(self) -> list[Part]:
        """This part's descendants, depth first, in message order (not the part itself)."""
        out: list[Part] = []
        stack = list(reversed(self.children))
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.children))
        return out


def _header_end(raw: bytes | bytearray, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body) of the entity at raw[start:end]."""
    if raw.startswith(b"\r\n", start):
        return start, start + 2
    if raw.startswith(b"\n", start):
        return start, start + 1
    candidates = []
    for sep in (b"\n\r\n", b"\n\n"):
        pos = raw.find(sep, start, end)
        if pos >= 0:
            candidates.append((pos + 1, pos + len(sep)))
    if not candidates:
        return end, end
    return min(candidates)


def parse_message(raw: bytes | bytearray) -> Part:
    """The MIME tree of a whole message."""
    counter = [1]
    root = _entity(raw, 0, len(raw), "text/plain")
    _expand(root, 0, counter)
    return root


def _entity(raw: bytes | bytearray, start: int, end: int, default_type: str) -> Part:
    header_end, body_start = _header_end(raw, start, end)
    fields = parse_header_block(bytes(raw[start:header_end]))
    return Part(raw, fields, min(body_start, end), end, default_type)


def _expand(part: Part, depth: int, counter: list[int]) -> None:
    """Find the children of `part` (and theirs), iteratively: no recursion per level."""
    stack = [(part, depth)]
    while stack:
        current, level = stack.pop()
        if level >= MAX_NESTING or counter[0] >= MAX_PARTS:
            continue
        if current.media_type == "multipart":
            children = _split_multipart(current)
        elif current.media_type == "message" and current.subtype == "rfc822":
            children = [_entity(current.raw, current.body_start, current.body_end, "text/plain")]
        else:
            continue
        for child in children:
            if counter[0] >= MAX_PARTS:
                break
            counter[0] += 1
            current.children.append(child)
        for child in reversed(current.children):
            stack.append((child, level + 1))


def _split_multipart(part: Part) -> list[Part]:
    boundary = part.params.get("boundary", "")
    if not boundary:
        return []
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")[:200]
    raw = part.raw
    end = part.body_end
    default = "message/rfc822" if part.subtype == "digest" else "text/plain"
    children: list[Part] = []
    pos = part.body_start
    start = -1
    while True:
        found = raw.find(delimiter, pos, end)
        if found < 0:
            break
        at_line_start = found == part.body_start or raw[found - 1 : found] == b"\n"
        after = found + len(delimiter)
        if not at_line_start:
            pos = after
            continue
        closing = raw[after : after + 2] == b"--"
        line_end = raw.find(b"\n", after, end)
        line_end = end if line_end < 0 else line_end + 1
        rest = raw[after + 2 if closing else after : line_end]
        if rest.strip(b" \t\r\n"):
            pos = after  # "--b10" is not a delimiter of boundary "b1" (RFC 2046 5.1.1)
            continue
        if start >= 0:
            # The line break before the delimiter belongs to the delimiter (RFC 2046 5.1.1).
            body_end = found
            if raw[body_end - 2 : body_end] == b"\r\n":
                body_end -= 2
            elif raw[body_end - 1 : body_end] == b"\n":
                body_end -= 1
            children.append(_entity(raw, start, max(start, body_end), default))
        if closing:
            return children
        start = line_end
        pos = line_end
    if start >= 0:
        children.append(_entity(raw, start, end, default))
    return children
