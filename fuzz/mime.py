"""MIME (mra/imap/mime, mra/imap/binary.py): a stored message, however broken, and everything
FETCH and SEARCH make of it.

Input: byte 0's bit 0 picks small limits (a few parts, short headers, few tokens: every
limit is reached) instead of Dovecot's defaults; the rest is the message as stored.

Properties (a parse of a message never takes over a second: the fuzzer's timeout):
- nothing raises but what is documented (BINARY's `NO [UNKNOWN-CTE]` and `NO [PARSE]`);
- ENVELOPE, BODY and BODYSTRUCTURE are syntactically valid IMAP (fuzz/_grammar.py, from
  RFC 3501's grammar), and BODY is BODYSTRUCTURE without its extension data;
- every part the structure names is there: BODY[n] of a leaf or message/rfc822 part has the
  size BODYSTRUCTURE gives, and a message's HEADER and TEXT make up the whole of it;
- sections with a malformed specifier are None, partials are slices;
- the text SEARCH reads (headers, bodies, RFC 2047 words) comes out as str;
- storing an APPEND's binary content (`store_form`) gives a message with the same parts.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz import _grammar
    from fuzz._grammar import Atom, Str, Tree
    from fuzz._harness import Finding, main
    from mra.imap import binary, mime
    from mra.imap import response as r
    from mra.imap.mime._parse import Part

SMALL = mime.Limits(
    max_nested_parts=4,
    max_total_parts=12,
    max_header_block=300,
    max_all_headers=2000,
    max_params=4,
    max_header_fields=30,
    max_tokens=400,
)
SPECS = ("HEADER", "TEXT", "HEADER.FIELDS (SUBJECT FROM)", "HEADER.FIELDS.NOT (SUBJECT)", "")
BAD_SPECS = ("0", "1.", "HEADER.FIELDS", "MIME", "1.2.TEXT.X", "HEADER.FIELDS ()", "X")


def one(data: bytes) -> Tree:
    values = _grammar.parse_values(data)
    if len(values) != 1:
        raise Finding(f"not one value: {data[:300]!r}")
    return values[0]


def strip(body: Tree) -> Tree:
    """BODYSTRUCTURE without extension data: what BODY must be."""
    assert isinstance(body, list)
    if isinstance(body[0], list):
        n = 0
        while isinstance(body[n], list):
            n += 1
        return [strip(b) for b in body[:n]] + [body[n]]
    media, subtype = body[0], body[1]
    assert isinstance(media, Str) and isinstance(subtype, Str)
    kind = (media.value.upper(), subtype.value.upper())
    if kind == (b"MESSAGE", b"RFC822"):
        return [*body[:8], strip(body[8]), body[9]]
    return body[:8] if kind[0] == b"TEXT" else body[:7]


def check_sizes(body: Tree, part: Part | None, path: tuple[int, ...], root: Part) -> None:
    """Each leaf's and message/rfc822's octets against BODY[path]; recursing in step. (A
    multipart without parts is described with one empty part, as Dovecot does: `part` is
    None there.)"""
    assert isinstance(body, list)
    if isinstance(body[0], list):
        n = 0
        while isinstance(body[n], list):
            n += 1
        children = body[:n]
        have = part.children if part is not None else []
        if have and len(children) != len(have):
            raise Finding(
                f"BODYSTRUCTURE has {len(children)} parts at {path}, the parse {len(have)}"
            )
        for i, child in enumerate(children, 1):
            check_sizes(child, have[i - 1] if have else None, (*path, i), root)
        return
    octets = body[6]
    assert isinstance(octets, Atom)
    spec = ".".join(map(str, path or (1,))).encode()
    data = mime.section(root, spec)
    if data is None or int(octets.value) != len(data):
        got = None if data is None else len(data)
        raise Finding(
            f"part {spec!r}: BODYSTRUCTURE says {octets.value!r} octets, BODY[] has {got}"
        )
    media, subtype = body[0], body[1]
    assert isinstance(media, Str) and isinstance(subtype, Str)
    rfc822 = (media.value.upper(), subtype.value.upper()) == (b"MESSAGE", b"RFC822")
    if rfc822 and part is not None and part.children:
        inner = part.children[0]
        check_whole(inner, spec)
        # Numbers go on into the message: its parts are N.1, N.2... or, not a multipart,
        # its body is N.1.
        inner_body = body[8]
        assert isinstance(inner_body, list)
        here = path or (1,)
        check_sizes(
            inner_body, inner, here if isinstance(inner_body[0], list) else (*here, 1), root
        )


def check_whole(part: Part, where: bytes) -> None:
    if part.header + part.body != part.whole:
        raise Finding(f"{where!r}: HEADER + TEXT is not the whole message")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    limits = SMALL if data[0] & 1 else mime.DEFAULT_LIMITS
    raw = data[1:]
    root = mime.parse(raw, limits)
    envelope = mime.envelope(root)
    _grammar.check_envelope(one(envelope))
    full = one(mime.bodystructure(root, True))
    _grammar.check_body(full, extensible=True)
    plain = one(mime.bodystructure(root, False))
    _grammar.check_body(plain, extensible=False)
    if strip(full) != plain:
        raise Finding(f"BODY {plain!r}\nis not BODYSTRUCTURE {full!r}\nwithout its extensions")
    check_whole(root, b"")
    if root.whole != mime.crlf(raw):
        raise Finding("BODY[] is not the message with CRLF line ends")
    check_sizes(full, root, (), root)
    for spec in SPECS:
        section = mime.section(root, spec)
        if not isinstance(section, bytes):
            raise Finding(f"BODY[{spec}] gave {section!r}")
        for origin, count in ((0, 5), (3, 1), (len(section), 2)):
            if mime.partial(section, origin, count) != section[origin : origin + count]:
                raise Finding(f"BODY[{spec}]<{origin}.{count}> is not a slice")
    for spec in BAD_SPECS:
        if mime.section(root, spec) is not None:
            raise Finding(f"the malformed BODY[{spec}] gave octets")
    for text in [
        *mime.header_values(root, "subject"),
        *mime.all_header_texts(root),
        *mime.body_texts(root),
        mime.decode_rfc2047(raw[:200].decode("latin-1")),
    ]:
        if not isinstance(text, str):
            raise Finding(f"search text {text!r}")
    for i, part in enumerate(root.walk()):
        if i > 20:
            break
        try:
            decoded = binary.section(root, ()) if i == 0 else binary._decoded(part, False)
        except r.Refusal:
            continue
        if not isinstance(decoded, bytes):
            raise Finding(f"BINARY gave {decoded!r}")
    stored = binary.store_form(raw, limits)
    again = mime.parse(mime.crlf(stored), limits)
    shape = [(p.multipart, p.rfc822) for p in mime.parse(mime.crlf(raw), limits).walk()]
    if [(p.multipart, p.rfc822) for p in again.walk()] != shape:
        raise Finding("store_form changed the message's parts")


# What the first message loads (codecs, lazy modules), before the fuzzer's clock starts.
test_one_input(
    b"\0Subject: =?ISO-8859-1?Q?caf=E9?= =?UTF-8?B?w6k=?=\r\nContent-Type: multipart/mixed;"
    b" boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nYQ==\r\n--b--\r\n"
)

if __name__ == "__main__":
    main(test_one_input)
