"""mra.imap.mime: structure, sections, decoding, and never crashing on broken input."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mra.imap import mime
from mra.imap.mime import SectionSpec
from tests.unit.imap_mime import corpus
from tests.unit.imap_mime.mutate import mutate

# ---------------------------------------------------------------------------------------------
# Structure


def test_crlf_is_idempotent_and_keeps_bare_cr() -> None:
    assert mime.crlf(b"a\nb\r\nc") == b"a\r\nb\r\nc"
    assert mime.crlf(b"a\r\nb") == b"a\r\nb"
    assert mime.crlf(b"a\rb\n") == b"a\rb\r\n"
    assert mime.crlf(mime.crlf(corpus.MIXED)) == mime.crlf(corpus.MIXED)


def test_parse_accepts_a_part() -> None:
    part = mime.parse(corpus.PLAIN)
    assert mime.parse(part) is part


def test_mixed_structure_offsets() -> None:
    root = mime.parse(corpus.MIXED)
    assert root.multipart and root.content_type == ("multipart", "mixed")
    assert root.param("BOUNDARY") == "outer"
    text, pdf, forwarded = root.children
    assert text.content_type == ("text", "plain")
    assert text.body == "See the attached contract.  Grüße, Erin\r\n".encode()
    assert text.header.endswith(b"Content-Language: en-GB, de\r\n\r\n")
    assert pdf.content_type == ("application", "pdf") and pdf.param("name") == "contract draft.pdf"
    assert pdf.body_size == 72 and pdf.body_lines == 0
    assert forwarded.rfc822 and forwarded.message is not None
    inner = forwarded.message
    assert inner.content_type == ("multipart", "alternative")
    assert [c.body for c in inner.children] == [
        b"The original plain text.",
        b"<p>The original <i>HTML</i>.</p>",
    ]
    assert forwarded.body == inner.whole
    assert root.whole == root.buf == mime.crlf(corpus.MIXED)
    assert [p.content_type for p in root.walk()] == [
        ("multipart", "mixed"),
        ("text", "plain"),
        ("application", "pdf"),
        ("message", "rfc822"),
        ("multipart", "alternative"),
        ("text", "plain"),
        ("text", "html"),
    ]


def test_defaults() -> None:
    assert mime.parse(b"Subject: x\n\nbody\n").content_type == ("text", "plain")
    digest = mime.parse(corpus.DIGEST)
    assert [c.content_type for c in digest.children] == [
        ("message", "rfc822"),
        ("message", "rfc822"),
        ("text", "plain"),
    ]


def test_field_values_keep_the_folding() -> None:
    part = mime.parse(corpus.FOLDED)
    assert part.field_values("subject") == [
        b'a folded\r\n\tsubject with  double  spaces and "quotes" and \\backslash\\'
    ]
    assert part.field_values(b"MESSAGE-ID") == [b"\r\n <folded@example.org>"]


def test_nesting_limits_do_not_recurse_forever() -> None:
    deep = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(3000)
    )
    structure = mime.bodystructure(deep)
    assert b'"application" "octet-stream" ("boundary" "b99")' in structure
    rfc822 = b"Content-Type: message/rfc822\n\n" * 3000 + b"Subject: end\n\nx\n"
    assert b'"application" "octet-stream"' in mime.bodystructure(rfc822)


def test_total_part_limit_leaves_the_rest_to_the_last_part() -> None:
    parts = b"".join(b"--x\nContent-Type: text/plain\n\n%d\n" % i for i in range(10005))
    root = mime.parse(b"Content-Type: multipart/mixed; boundary=x\n\n" + parts + b"--x--\n")
    assert len(root.children) == mime.Limits().max_total_parts - 1
    assert root.children[-1].body.endswith(b"10004\r\n--x--\r\n")


# ---------------------------------------------------------------------------------------------
# Sections


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", SectionSpec()),
        ("HEADER", SectionSpec((), "HEADER")),
        ("text", SectionSpec((), "TEXT")),
        ("1.2.3", SectionSpec((1, 2, 3))),
        ("1.MIME", SectionSpec((1,), "MIME")),
        ("4.2.HEADER", SectionSpec((4, 2), "HEADER")),
        ("header.fields (subject from)", SectionSpec((), "HEADER.FIELDS", (b"SUBJECT", b"FROM"))),
        ('2.HEADER.FIELDS.NOT ("X-A" b)', SectionSpec((2,), "HEADER.FIELDS.NOT", (b"X-A", b"B"))),
        (b"HEADER.FIELDS ({3}\r\nabc)", SectionSpec((), "HEADER.FIELDS", (b"ABC",))),
    ],
)
def test_parse_section_spec(spec: str | bytes, expected: SectionSpec) -> None:
    assert mime.parse_section_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "MIME",
        "0",
        "1.0",
        "01",
        "1.",
        ".1",
        "1..2",
        "1.2.",
        "HEADERS",
        "TEXT.HEADER",
        "1.MIME.TEXT",
        "HEADER.FIELDS",
        "HEADER.FIELDS ()",
        "HEADER.FIELDS (A",
        "HEADER.FIELDS A",
        "HEADER.FIELDS  (A)",
        "HEADER.FIELDS (A  B)",
        'HEADER.FIELDS ("a)',
        "HEADER.FIELDS (A)x",
    ],
)
def test_malformed_section_specs(spec: str) -> None:
    assert mime.parse_section_spec(spec) is None
    assert mime.section(corpus.PLAIN, spec) is None


def test_section_spec_round_trips_as_text() -> None:
    spec = SectionSpec((1, 2), "HEADER.FIELDS", (b"A", b"B"))
    assert str(spec) == "1.2.HEADER.FIELDS (A B)"
    assert mime.parse_section_spec(str(spec)) == spec


def test_sections_of_a_nested_message() -> None:
    msg = corpus.MIXED
    forwarded = mime.parse(msg).children[2]
    inner = forwarded.message
    assert inner is not None
    assert mime.section(msg, "3") == inner.whole
    assert mime.section(msg, "3.HEADER") == inner.header
    assert mime.section(msg, "3.TEXT") == inner.body
    assert mime.section(msg, "3.MIME") == forwarded.header
    assert mime.section(msg, "3.2") == b"<p>The original <i>HTML</i>.</p>"
    assert mime.section(msg, SectionSpec((3,), "HEADER.FIELDS", (b"SUBJECT",))) == (
        b"Subject: Original thread\r\n\r\n"
    )
    # a part that is not message/rfc822 has no HEADER or TEXT; missing parts are empty
    assert mime.section(msg, "1.HEADER") == b""
    assert mime.section(msg, "2.TEXT") == b""
    assert mime.section(msg, "4") == b""
    assert mime.section(msg, "3.9.MIME") == b""


def test_nested_header_fields_follow_the_parsed_header() -> None:
    """Kept difference from Dovecot: when a boundary cuts an encapsulated message's header,
    HEADER.FIELDS filters that header as N.HEADER returns it (Dovecot reads on to the next
    empty line, boundary included)."""
    msg = (
        b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\n"
        b"Subject: cut\n--a--\n"
    )
    assert mime.section(msg, "1.HEADER") == b"Subject: cut"
    assert mime.section(msg, "1.HEADER.FIELDS (SUBJECT)") == b"Subject: cut"
    assert mime.section(msg, "1.HEADER.FIELDS.NOT (SUBJECT)") == b""


def test_header_fields_keep_folding_and_order() -> None:
    got = mime.section(corpus.FOLDED, "HEADER.FIELDS (to subject)")
    assert got == (
        b"To: Terry\r\n <terry@example.org>,\r\n Uma <uma@example.org>\r\n"
        b'Subject: a folded\r\n\tsubject with  double  spaces and "quotes" and \\backslash\\\r\n'
        b"\r\n"
    )


def test_partial() -> None:
    assert mime.partial(b"0123456789", 2, 3) == b"234"
    assert mime.partial(b"0123456789", 8, 100) == b"89"
    assert mime.partial(b"0123456789", 10, 1) == b""
    assert mime.partial(b"0123456789", 20, 5) == b""
    assert mime.partial(b"0123456789", 3, 0) == b""
    assert mime.partial(b"0123456789", 3) == b"3456789"
    with pytest.raises(ValueError):
        mime.partial(b"x", -1, 1)


def test_without_nuls() -> None:
    assert mime.without_nuls(b"a\0b") == b"a\x80b"
    data = b"no nul"
    assert mime.without_nuls(data) is data


# ---------------------------------------------------------------------------------------------
# Decoded text for SEARCH


def test_decode_rfc2047() -> None:
    assert mime.decode_rfc2047("=?utf-8?q?caf=C3=A9?= =?UTF-8?B?w6k=?= x") == "caféé x"
    assert mime.decode_rfc2047("=?iso-8859-1*fr?q?caf=E9_noir?=") == "café noir"
    assert mime.decode_rfc2047("a =?bogus?q?x?= =?utf-8?q?y?=") == "a =?bogus?q?x?= y"
    assert mime.decode_rfc2047("=?utf-8?b?!!!?=") == "=?utf-8?b?!!!?="
    assert mime.decode_rfc2047("plain") == "plain"


def test_header_values() -> None:
    msg = corpus.ENCODED_WORDS
    assert mime.header_values(msg, "Subject") == ["Grüße aus Köln und Zürich – next week"]
    assert mime.header_values(msg, "from") == ["Jörg Müller <joerg@example.de>"]
    assert mime.header_values(msg, "TO") == [
        'Björn <bjoern@example.se>, "Élodie" <elodie@example.fr>'
    ]
    assert mime.header_values(msg, "x-none") == []
    # raw 8-bit: UTF-8, or Latin-1 when it is not UTF-8; every occurrence, in order
    assert mime.header_values(corpus.MALFORMED, "subject") == [
        "Café – raw UTF-8 subject",
        "second subject",
    ]
    assert mime.header_values(corpus.MALFORMED, "from") == ["Müller <mueller@example.de>"]
    assert mime.header_values(corpus.FOLDED, "date") == ["Sun, 12 May 2024  21:05:00 +0100"]


def test_body_texts_decode_transfer_encoding_and_charset() -> None:
    assert list(mime.body_texts(corpus.ENCODED_WORDS)) == ["Schöne Grüße aus Köln!\r\n"]
    alternative = list(mime.body_texts(corpus.ALTERNATIVE))
    assert alternative[0] == "Special offer – twenty percent off everything in the café this week."
    nested = list(mime.body_texts(corpus.NESTED))
    assert nested[0] == "Hello world, café on the corner."
    # attachments are not text; text inside a forwarded message is
    assert list(mime.body_texts(corpus.MIXED)) == [
        "See the attached contract.  Grüße, Erin\r\n",
        "The original plain text.",
        "<p>The original <i>HTML</i>.</p>",
    ]
    unknown = b"Content-Type: text/plain; charset=x-nonsense\n\ncaf\xc3\xa9\n"
    assert list(mime.body_texts(unknown)) == ["café\r\n"]
    broken = b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGVsbG8=!\n"
    assert list(mime.body_texts(broken)) == ["hello"]


def test_all_header_texts_include_encapsulated_messages() -> None:
    texts = list(mime.all_header_texts(corpus.TOP_RFC822))
    assert "Subject: the whole message is message/rfc822" in texts
    assert "Subject: inner" in texts
    assert texts.count("Content-Type: text/plain") == 2


def test_envelope_addresses() -> None:
    addresses = mime.envelope_addresses(b'Team: "A. B." <a@b.example>, c@d;, e@f')
    assert [(a.name, a.mailbox, a.domain) for a in addresses] == [
        (None, b"Team", None),
        (b"A. B.", b"a", b"b.example"),
        (None, b"c", b"d"),
        (None, None, None),
        (None, b"e", b"f"),
    ]
    assert addresses[0].is_group_start and addresses[3].is_group_end
    assert addresses[1].addr_spec == "a@b.example"


# ---------------------------------------------------------------------------------------------
# Fast paths (issue #17) give what the straight ports of Dovecot's loops give


def _nstring_loop(value: bytes | None) -> bytes:
    """imap_append_nstring, octet by octet."""
    if value is None:
        return b"NIL"
    value = value.split(b"\0", 1)[0]
    escapes = 0
    for c in value:
        if c in b'"\\':
            escapes += 1
            if escapes > 4:
                return b"{%d}\r\n" % len(value) + value
        elif c in b"\r\n" or c >= 0x80:
            return b"{%d}\r\n" % len(value) + value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _nstring_nolf_loop(value: bytes | None) -> bytes:
    """imap_append_nstring_nolf, octet by octet."""
    if value is None:
        return b"NIL"
    out = bytearray()
    for i, c in enumerate(value):
        if c not in b"\r\n":
            out.append(c)
        elif i + 1 < len(value) and value[i + 1] not in b" \t\r\n\0":
            out.append(0x20)
    return _nstring_loop(bytes(out))


def _for_humans_loop(src: bytes) -> bytes:
    """imap_append_string_for_humans, octet by octet."""
    modify, remove, last_lwsp, ws_prefix = False, 0, True, True
    for c in src:
        if c == 0:
            last_lwsp, modify = False, True
        elif c in b" \t\r\n":
            modify = modify or c != 0x20 or last_lwsp
            remove += last_lwsp
            last_lwsp = True
        else:
            modify = modify or c in b'"\\' or c >= 0x80
            last_lwsp = False
        ws_prefix = ws_prefix and last_lwsp
    if last_lwsp and src and not ws_prefix:
        modify, remove = True, remove + 1
    if not modify:
        return b'"' + src + b'"'
    if len(src) == remove:
        return b'""'
    out = bytearray()
    last_lwsp = True
    for c in src:
        if c in b" \t\r\n":
            if not last_lwsp:
                out.append(0x20)
            last_lwsp = True
        else:
            out.append(0x80 if c == 0 else c)
            last_lwsp = False
    if last_lwsp and out:
        del out[-1]
    return b"{%d}\r\n" % len(out) + bytes(out)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(list(b' \t\r\n\0"\\a\x80\xff')), max_size=12).map(bytes))
def test_imap_quoting_agrees_with_dovecots_loops(value: bytes) -> None:
    from mra.imap.mime import _structure

    assert _structure._nstring(value) == _nstring_loop(value)
    assert _structure._nstring_nolf(value) == _nstring_nolf_loop(value)
    assert _structure._string_for_humans(value) == _for_humans_loop(value)


def test_token_classes_agree_with_dovecots_table() -> None:
    from mra.imap.mime import _tokens

    for c in range(256):
        octet = bytes([c])
        atext = bool(_tokens.ATEXT[c])
        assert (_tokens._ATOM_RUN.fullmatch(octet) is not None) == atext
        assert (_tokens._ATOM_OR_DOT_RUN.fullmatch(octet) is not None) == (atext or c == 0x2E)
        token = bool(_tokens.ATEXT[c] & 3) or c == 0x2E
        assert (_tokens._TOKEN_RUN.fullmatch(octet) is not None) == token


_ADDRESS_PIECES = [
    *(b"a", b"b.c", b"@", b",", b", ", b" ", b"x@y", b"u.v@w.z", b"(c)", b"\r\n ", b"."),
    *(b"..", b"<", b">", b'"q"', b":", b";", b"\xc3\xa9", b"[1.2]", b"\t", b"a@b,", b"@b"),
    *(b'"N M" <a@b>', b"N M <a@b.c>", b'""', b"<x@y>", b'"\\"', b"  "),
]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(_ADDRESS_PIECES), max_size=12).map(b"".join))
def test_simple_addresses_read_in_one_step_as_in_many(
    value: bytes,
) -> None:
    from mra.imap.mime import _address

    fast = _address.envelope_addresses(value)
    never = re.compile(rb"(?!)")
    with pytest.MonkeyPatch.context() as patch:
        for pattern in ("_SIMPLE_IN_LIST", "_SIMPLE_IN_GROUP", "_NAMED_IN_LIST", "_NAMED_IN_GROUP"):
            patch.setattr(_address, pattern, never)
        assert _address.envelope_addresses(value) == fast


# ---------------------------------------------------------------------------------------------
# Never crash


def check_everything(raw: bytes) -> None:
    part = mime.parse(raw)
    assert part.buf == mime.crlf(raw)
    assert mime.section(part, "") == part.buf
    envelope = mime.envelope(part)
    assert envelope.startswith(b"(") and envelope.endswith(b")")
    assert mime.bodystructure(part, True).startswith(b"(")
    assert mime.bodystructure(part, False).startswith(b"(")
    for spec in corpus.SECTIONS:
        data = mime.section(part, spec)
        assert data is not None
    for p in part.walk():
        assert p.start <= p.header_end <= p.end <= len(part.buf)
        if p.multipart:
            for child in p.children:
                assert p.header_end <= child.start and child.end <= p.end
    list(mime.body_texts(part))
    list(mime.all_header_texts(part))
    header = mime.section(part, "HEADER") or b""
    text = mime.section(part, "TEXT") or b""
    assert header + text == part.buf


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(raw: bytes) -> None:
    check_everything(raw)


_ALPHABET = b"ab:;=\"'()<>@,.-\\/ \t\r\n\x00\xc3\xa9"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type: multipart/mixed; boundary=b\n",
                b"Content-Type: message/rfc822\n",
                b"Content-Type: multipart/digest; boundary=c\n",
                b"MIME-Version: 1.0\n",
                b"From: ",
                b"To: ",
                b"Subject: ",
                b"\n",
                b"--b\n",
                b"--b--\n",
                b"--c\n",
                b"=?utf-8?q?x?=",
                b"Content-Transfer-Encoding: base64\n",
            ]
        )
        | st.binary(max_size=3).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)),
        max_size=40,
    )
)
def test_mime_shaped_garbage_never_crashes(pieces: list[bytes]) -> None:
    check_everything(b"".join(pieces))


def test_mutated_corpus_never_crashes() -> None:
    rng = random.Random(5)
    base = list(corpus.CORPUS.values())
    for _ in range(500):
        check_everything(mutate(rng, rng.choice(base)))
