"""An independent reader of what the server writes: IMAP responses (RFC 3501 section 9),
ENVELOPE and BODY/BODYSTRUCTURE, strictly. The fuzz targets check every octet the server
sends against it.

Written from the RFC's grammar, not from mra/imap/response.py, so that a mistake there is not
copied here. `Malformed` says what is wrong and where.

Strictness: a response ends in CRLF; a quoted string holds 7-bit TEXT-CHARs only, `\\"` and
`\\\\` escaped (response.py promises 7-bit; 8-bit goes as a literal); status text is 7-bit,
without NUL; parentheses and brackets balance; a literal's octets are exactly as announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Atom",
    "Malformed",
    "Nil",
    "Response",
    "Str",
    "Tree",
    "check_body",
    "check_envelope",
    "parse_values",
    "read_responses",
]


class Malformed(AssertionError):
    """What the server wrote is not IMAP."""


@dataclass(frozen=True)
class Atom:
    value: bytes


@dataclass(frozen=True)
class Str:
    value: bytes
    literal: bool = False


class Nil:
    def __repr__(self) -> str:
        return "NIL"


NIL = Nil()
Tree = Atom | Str | Nil | list["Tree"]


@dataclass
class Response:
    kind: str  # "+", "*" or "tagged"
    tag: str  # the tag of a tagged response
    line: bytes  # the response, literals included, without the final CRLF
    values: list[Tree]  # untagged data responses: the values after "*"
    status: str = ""  # OK, NO, BAD, BYE, PREAUTH for status responses


_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_STATUS = (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH")
_TEXT_BAD = re.compile(rb"[\x00\r\n\x80-\xff]")
_LITERAL_END = re.compile(rb"~?\{([0-9]+)\}\Z")
_NUMBER = re.compile(rb"[0-9]+\Z")
# Atoms in data responses are wider than ATOM-CHAR: flags (\Seen), `\*`, `*` in LIST, `]` in
# BODY[...], `%`; what they may never hold is SP, CTL, 8-bit, parentheses, `{` and `"`.
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\[]+')


def read_responses(data: bytes) -> list[Response]:
    """Split the server's output into responses, checking each; Malformed if any is broken
    or the output stops in the middle of one."""
    out: list[Response] = []
    pos = 0
    while pos < len(data):
        line, pos = _one_response(data, pos)
        out.append(_classify(line))
    return out


def _one_response(data: bytes, pos: int) -> tuple[bytes, int]:
    """One response, literals included: (its octets without the last CRLF, the next pos)."""
    start = pos
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise Malformed(f"response without CRLF: {data[start : start + 80]!r}")
        if b"\n" in data[pos:end] or b"\r" in data[pos:end]:
            raise Malformed(f"bare CR or LF in a response: {data[start : end + 2][:120]!r}")
        m = _LITERAL_END.search(data, pos, end)
        if m is None or not _is_data(data[start:end]):
            return data[start:end], end + 2
        n = int(m.group(1))
        pos = end + 2 + n
        if pos > len(data):
            raise Malformed(f"literal of {n} octets cut short: {data[start : start + 80]!r}")


def _is_data(first: bytes) -> bool:
    """An untagged data response, the only kind that may hold a literal (a status response's
    text is free text: a `{5}` at its end is only text)."""
    if not first.startswith(b"* "):
        return False
    return first[2:].split(b" ", 1)[0].upper() not in _STATUS


def _classify(line: bytes) -> Response:
    if line == b"+" or line.startswith(b"+ "):
        _text(line[2:], line)
        return Response("+", "", line, [])
    if line.startswith(b"* "):
        rest = line[2:]
        word = rest.split(b" ", 1)[0]
        if word.upper() in _STATUS:
            _resp_text(rest[len(word) + 1 :], line)
            return Response("*", "", line, [], word.decode().upper())
        values = parse_values(rest, line)
        _check_data(values, line)
        return Response("*", "", line, values)
    m = _TAG.match(line)
    if m is None or line[m.end() : m.end() + 1] != b" ":
        raise Malformed(f"not a response: {line[:120]!r}")
    rest = line[m.end() + 1 :]
    word = rest.split(b" ", 1)[0]
    if word not in (b"OK", b"NO", b"BAD"):
        raise Malformed(f"tagged response without OK, NO or BAD: {line[:120]!r}")
    _resp_text(rest[len(word) + 1 :], line)
    return Response("tagged", m.group().decode(), line, [], word.decode())


def _text(text: bytes, line: bytes) -> None:
    m = _TEXT_BAD.search(text)
    if m is not None:
        raise Malformed(f"octet {m.group()!r} in response text: {line[:120]!r}")


# Response codes whose argument is IMAP data, not text (RFC 3501 7.1, RFC 4315, RFC 5530...).
_DATA_CODES = (b"BADCHARSET", b"PERMANENTFLAGS", b"CAPABILITY", b"APPENDUID", b"COPYUID")


def _resp_text(text: bytes, line: bytes) -> None:
    """resp-text = ["[" resp-text-code "]" SP] text"""
    if text.startswith(b"["):
        # resp-text-code = ... / atom [SP 1*<any TEXT-CHAR except "]">]: the first "]" ends
        # it (the codes with data hold no "]" either).
        end = text.find(b"]")
        if end < 0:
            raise Malformed(f"response code without ']': {line[:120]!r}")
        name, _, arg = text[1:end].partition(b" ")
        if _ATOM.fullmatch(name) is None:
            raise Malformed(f"invalid response code {name[:40]!r}: {line[:120]!r}")
        if name.upper() in _DATA_CODES and arg:
            parse_values(arg, line, brackets=False)
        else:
            _text(arg, line)
        text = text[end + 1 :]
        if text[:1] == b" ":
            text = text[1:]
    _text(text, line)


def _quoted_end(data: bytes, i: int, line: bytes) -> int:
    """Index of the DQUOTE closing the one at i."""
    j = i + 1
    while j < len(data):
        c = data[j]
        if c == 0x22:
            return j
        if c == 0x5C:
            if data[j + 1 : j + 2] not in (b'"', b"\\"):
                raise Malformed(f"invalid escape in a quoted string: {line[:120]!r}")
            j += 2
            continue
        if c == 0 or c in (0x0D, 0x0A) or c >= 0x80:
            raise Malformed(f"octet 0x{c:02x} in a quoted string: {line[:120]!r}")
        j += 1
    raise Malformed(f"unterminated quoted string: {line[:120]!r}")


def parse_values(data: bytes, line: bytes = b"", *, brackets: bool = True) -> list[Tree]:
    """Space-separated values (atoms, NIL, quoted strings, literals, lists) filling `data`."""
    line = line or data
    values, pos = _values(data, 0, line, 0, brackets)
    if pos != len(data):
        raise Malformed(f"unexpected ')' at {pos}: {line[:120]!r}")
    return values


def _values(
    data: bytes, pos: int, line: bytes, depth: int, brackets: bool
) -> tuple[list[Tree], int]:
    out: list[Tree] = []
    first = True
    while pos < len(data):
        c = data[pos : pos + 1]
        if c == b")":
            if depth == 0:
                raise Malformed(f"unbalanced ')': {line[:120]!r}")
            return out, pos
        # RFC 3501 writes "1*body" and "1*address" without spaces: ")(" is allowed.
        if not first and not (c == b"(" and data[pos - 1 : pos] == b")"):
            if c != b" ":
                raise Malformed(f"expected a space at {pos}: {line[:120]!r}")
            pos += 1
            c = data[pos : pos + 1]
            if c in (b"", b" ", b")"):
                raise Malformed(f"stray space at {pos}: {line[:120]!r}")
        first = False
        value, pos = _value(data, pos, line, depth, brackets)
        out.append(value)
    if depth:
        raise Malformed(f"missing ')': {line[:120]!r}")
    return out, pos


def _value(data: bytes, pos: int, line: bytes, depth: int, brackets: bool) -> tuple[Tree, int]:
    c = data[pos : pos + 1]
    if c == b"(":
        if depth > 200:
            raise Malformed("lists nested over 200 deep")
        items, pos = _values(data, pos + 1, line, depth + 1, brackets)
        if data[pos : pos + 1] != b")":
            raise Malformed(f"missing ')': {line[:120]!r}")
        return items, pos + 1
    if c == b'"':
        end = _quoted_end(data, pos, line)
        raw = data[pos + 1 : end]
        return Str(raw.replace(b"\\\\", b"\\").replace(b'\\"', b'"')), end + 1
    if c == b"{" or data[pos : pos + 2] == b"~{":
        m = re.compile(rb"~?\{([0-9]+)\}\r\n").match(data, pos)
        if m is None:
            raise Malformed(f"invalid literal at {pos}: {line[:120]!r}")
        n = int(m.group(1))
        if m.end() + n > len(data):
            raise Malformed(f"literal cut short: {line[:120]!r}")
        return Str(data[m.end() : m.end() + n], True), m.end() + n
    m = _ATOM.match(data, pos)
    end = m.end() if m is not None else pos
    # BODY[HEADER.FIELDS (A B)]<0>: a section's brackets may hold spaces and a list.
    while brackets and data[end : end + 1] == b"[":
        close = data.find(b"]", end)
        if close < 0 or end == pos:
            raise Malformed(f"unbalanced '[': {line[:120]!r}")
        inner = data[end + 1 : close]
        if _TEXT_BAD.search(inner) or inner.count(b"(") != inner.count(b")"):
            raise Malformed(f"invalid section {inner[:40]!r}: {line[:120]!r}")
        m = _ATOM.match(data, close + 1)
        end = m.end() if m is not None else close + 1
    if end == pos:
        raise Malformed(f"unexpected octet {c!r} at {pos}: {line[:120]!r}")
    word = data[pos:end]
    return (NIL if word.upper() == b"NIL" else Atom(word)), end


def _check_data(values: list[Tree], line: bytes) -> None:
    """The untagged data responses whose structure matters to clients."""
    first, second = [*values, NIL, NIL][:2]
    if (
        isinstance(first, Atom)
        and isinstance(second, Atom)
        and _NUMBER.match(first.value)
        and second.value.upper() == b"FETCH"
    ):
        if len(values) != 3 or not isinstance(values[2], list):
            raise Malformed(f"FETCH without one list: {line[:120]!r}")
        _check_fetch(values[2], line)


def _check_fetch(items: list[Tree], line: bytes) -> None:
    if len(items) % 2:
        raise Malformed(f"FETCH items not in pairs: {line[:120]!r}")
    for name, value in zip(items[::2], items[1::2], strict=True):
        if not isinstance(name, Atom):
            raise Malformed(f"FETCH item name {name!r}: {line[:120]!r}")
        upper = name.value.upper()
        if upper == b"ENVELOPE":
            check_envelope(value)
        elif upper == b"BODYSTRUCTURE":
            check_body(value, extensible=True)
        elif upper == b"BODY":
            check_body(value, extensible=False)
        elif upper in (b"UID", b"RFC822.SIZE", b"MODSEQ") and not _is_number(value):
            raise Malformed(f"{upper.decode()} is not a number: {line[:120]!r}")
        elif upper == b"FLAGS" and not (
            isinstance(value, list) and all(isinstance(v, Atom) for v in value)
        ):
            raise Malformed(f"FLAGS is not a list of flags: {line[:120]!r}")


# --- ENVELOPE and BODYSTRUCTURE (RFC 3501 section 9, "envelope" and "body") -------------------


def _is_number(v: Tree) -> bool:
    return isinstance(v, Atom) and _NUMBER.match(v.value) is not None and int(v.value) < 2**32


def _is_string(v: Tree) -> bool:
    return isinstance(v, Str)


def _is_nstring(v: Tree) -> bool:
    return isinstance(v, (Str, Nil))


def _need(ok: bool, what: str, v: Tree) -> None:
    if not ok:
        raise Malformed(f"{what}: {v!r}"[:300])


def check_envelope(v: Tree) -> None:
    _need(isinstance(v, list) and len(v) == 10, "ENVELOPE is not a list of 10", v)
    assert isinstance(v, list)
    for i in (0, 1, 8, 9):  # date, subject, in-reply-to, message-id
        _need(_is_nstring(v[i]), f"ENVELOPE item {i + 1} is not an nstring", v[i])
    for i in range(2, 8):  # from, sender, reply-to, to, cc, bcc
        addresses = v[i]
        if isinstance(addresses, Nil):
            continue
        _need(
            isinstance(addresses, list) and len(addresses) > 0,
            f"ENVELOPE item {i + 1} is neither NIL nor a list of addresses",
            addresses,
        )
        assert isinstance(addresses, list)
        for a in addresses:
            _need(
                isinstance(a, list) and len(a) == 4 and all(_is_nstring(x) for x in a),
                "an address is not (name adl mailbox host)",
                a,
            )


def _check_params(v: Tree, what: str) -> None:
    if isinstance(v, Nil):
        return
    _need(
        isinstance(v, list) and len(v) >= 2 and len(v) % 2 == 0 and all(map(_is_string, v)),
        f"{what} is neither NIL nor a list of string pairs",
        v,
    )


def _check_extension(v: Tree, depth: int = 0) -> None:
    if isinstance(v, list):
        _need(bool(v) and depth < 100, "an empty or too deep body-extension list", v)
        for x in v:
            _check_extension(x, depth + 1)
    else:
        _need(_is_nstring(v) or _is_number(v), "body-extension", v)


def _check_ext_tail(items: list[Tree], i: int) -> None:
    """[SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]] from i."""
    if i < len(items):
        dsp = items[i]
        if not isinstance(dsp, Nil):
            _need(
                isinstance(dsp, list) and len(dsp) == 2 and _is_string(dsp[0]),
                "body-fld-dsp",
                dsp,
            )
            assert isinstance(dsp, list)
            _check_params(dsp[1], "disposition parameters")
    if i + 1 < len(items):
        lang = items[i + 1]
        ok = _is_nstring(lang) or (
            isinstance(lang, list) and len(lang) > 0 and all(map(_is_string, lang))
        )
        _need(ok, "body-fld-lang", lang)
    if i + 2 < len(items):
        _need(_is_nstring(items[i + 2]), "body-fld-loc", items[i + 2])
    for x in items[i + 3 :]:
        _check_extension(x)


def check_body(v: Tree, *, extensible: bool, depth: int = 0) -> None:
    """body (RFC 3501 section 9); without `extensible` (BODY) no extension data at all."""
    _need(isinstance(v, list) and len(v) > 0, "a body is not a non-empty list", v)
    _need(depth < 200, "bodies nested over 200 deep", v)
    assert isinstance(v, list)
    if isinstance(v[0], list):  # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
        n = 0
        while n < len(v) and isinstance(v[n], list):
            check_body(v[n], extensible=extensible, depth=depth + 1)
            n += 1
        _need(n < len(v) and _is_string(v[n]), "multipart without a subtype", v)
        rest = v[n + 1 :]
        if not extensible:
            _need(not rest, "extension data in BODY", v)
            return
        if rest:
            _check_params(rest[0], "multipart parameters")
            _check_ext_tail(rest, 1)
        return
    _need(len(v) >= 7, "a single part with fewer than 7 fields", v)
    media, subtype = v[0], v[1]
    _need(_is_string(media) and _is_string(subtype), "media type and subtype", v)
    _check_params(v[2], "body-fld-param")
    _need(_is_nstring(v[3]) and _is_nstring(v[4]), "body-fld-id and body-fld-desc", v)
    _need(_is_string(v[5]), "body-fld-enc", v[5])
    _need(_is_number(v[6]), "body-fld-octets", v[6])
    assert isinstance(media, Str) and isinstance(subtype, Str)
    kind = (media.value.upper(), subtype.value.upper())
    i = 7
    if kind == (b"MESSAGE", b"RFC822"):
        _need(len(v) >= 10, "message/rfc822 without envelope, body and lines", v)
        check_envelope(v[7])
        check_body(v[8], extensible=extensible, depth=depth + 1)
        _need(_is_number(v[9]), "body-fld-lines", v[9])
        i = 10
    elif kind[0] == b"TEXT":
        _need(len(v) >= 8 and _is_number(v[7]), "a text part without body-fld-lines", v)
        i = 8
    rest = v[i:]
    if not extensible:
        _need(not rest, "extension data in BODY", v)
        return
    if rest:
        _need(_is_nstring(rest[0]), "body-fld-md5", rest[0])
        _check_ext_tail(rest, 1)
