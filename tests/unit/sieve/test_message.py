"""The message model: header block, unfolding, RFC 2047, addresses, size."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mda.sieve import SieveEnvelope, SieveMessage, evaluate, parse
from mda.sieve.message import (
    address_part,
    decode_rfc2047,
    envelope_address,
    parse_address_list,
    parse_header_block,
)


def test_from_bytes_reads_only_the_header_block() -> None:
    raw = b"Subject: hi\r\nX-A: 1\r\n\r\nSubject: not a header\r\nX-A: 2\r\n"
    msg = SieveMessage.from_bytes(raw)
    assert msg.header("subject") == ["hi"]
    assert msg.header("X-A") == ["1"]
    assert msg.size == len(raw)


def test_size_is_the_octets_as_received() -> None:
    # RFC 5228 section 5.9 counts the RFC 5322 form: LF-only input counts one more octet a line.
    # As Pigeonhole (the physical size), not the CRLF form.
    assert SieveMessage.from_bytes(b"A: b\n\nbody\n").size == len(b"A: b\n\nbody\n")
    assert SieveMessage.from_bytes(b"A: b\r\n\r\nbody\r\n").size == 14
    assert SieveMessage.from_bytes(b"").size == 0


def test_header_only_message_and_empty_header() -> None:
    assert SieveMessage.from_bytes(b"Subject: x").header("subject") == ["x"]
    msg = SieveMessage.from_bytes(b"\r\nSubject: body")
    assert msg.header("subject") == []
    assert SieveMessage.from_bytes(b"\nSubject: body").header("subject") == []


def test_header_values_are_unfolded_and_trimmed_all_occurrences_in_order() -> None:
    raw = b"Received: a\r\n\tb\r\n  c\r\nreceived:  d  \r\nX-Empty:\r\n\r\n"
    msg = SieveMessage.from_bytes(raw)
    assert msg.header("RECEIVED") == ["a\tb  c", "d"]
    assert msg.header("x-empty") == [""]
    assert msg.has_header("X-EMPTY") and not msg.has_header("x-missing")
    assert msg.raw_header("received") == [" a\r\n\tb\r\n  c", "  d  "]


def test_space_before_colon_is_ignored() -> None:
    # RFC 5228 section 2.4.2.2: "From   :" is the From header.
    msg = SieveMessage.from_bytes(b"From   : a@b.example\r\n\r\n")
    assert msg.header("from") == ["a@b.example"]


def test_lines_that_are_not_fields_are_skipped() -> None:
    block = (
        b"From someone@example.com Tue Jan  1 12:00:00 2024\n"
        b" continuation of junk\n"
        b"Subject: ok\n"
        b"no colon here\n"
        b"Bad Name: x\n"
        b": no name\n"
        b"X-Ok: yes\n"
    )
    assert parse_header_block(block) == [("Subject", " ok"), ("X-Ok", " yes")]


def test_eight_bit_headers() -> None:
    msg = SieveMessage.from_bytes("Subject: caf\u00e9\n\n".encode() + b"X-L1: caf\xe9\n\n")
    assert msg.header("subject") == ["caf\u00e9"]
    msg = SieveMessage.from_bytes(b"X-L1: caf\xe9\n\n")
    assert msg.header("x-l1") == ["caf\u00e9"]  # not UTF-8: read as ISO-8859-1


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?ISO-8859-1?Q?a?=", "a"),
        ("=?ISO-8859-1?Q?a?= b", "a b"),
        ("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab"),  # RFC 2047 section 8 examples
        ("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=", "ab"),
        ("=?ISO-8859-1?Q?a_b?=", "a b"),
        ("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b"),
        ("(=?ISO-8859-1?Q?a?=)", "(a)"),
        ("=?UTF-8?B?Y2Fmw6k=?=", "caf\u00e9"),
        ("=?utf-8?b?Y2Fmw6k?=", "caf\u00e9"),  # missing padding
        ("=?utf-8?q?caf=C3=A9?=", "caf\u00e9"),
        ("=?utf-8*fr?q?caf=C3=A9?=", "caf\u00e9"),  # RFC 2231 language
        ("=?utf-8?q?=3D=3F?=", "=?"),
        ("=?utf-8?q?bad=ZZ?=", "bad=ZZ"),
        ("=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="),  # left encoded
        ("=?base64?q?YWJj?=", "=?base64?q?YWJj?="),  # not text encodings
        ("=?rot13?q?abc?=", "=?rot13?q?abc?="),
        ("=?hex?q?616263?=", "=?hex?q?616263?="),
        ("=?idna?q?xn--=FF?=", "=?idna?q?xn--=FF?="),
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        ("=?utf-8?b?!!!!?=", "=?utf-8?b?!!!!?="),
        ("=?utf-8?q?a b?=", "=?utf-8?q?a b?="),  # no blanks inside an encoded-word
        ("=?", "=?"),
        ("a =? b", "a =? b"),
        ("x =?utf-8?q?a?= y =?utf-8?q?b?= z", "x a y b z"),
        ("=?utf-8?q?a?==?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?=FF?=", "\ufffd"),
        ("plain", "plain"),
    ],
)
def test_rfc2047(raw: str, decoded: str) -> None:
    assert decode_rfc2047(raw) == decoded


def test_header_decodes_encoded_words() -> None:
    msg = SieveMessage.from_bytes(b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n =?utf-8?q?_aus?=\n\n")
    assert msg.header("subject") == ["Gr\u00fc\u00dfe aus"]


@pytest.mark.parametrize(
    ("value", "addresses"),
    [
        ("a@example.com", ["a@example.com"]),
        ("A <a@example.com>, b@example.com", ["a@example.com", "b@example.com"]),
        ('"Doe, John" <jd@example.com>', ["jd@example.com"]),
        ("=?utf-8?q?Doe=2C_John?= <jd@example.com>", ["jd@example.com"]),
        ("undisclosed-recipients:;", []),
        (
            "friends: a@x.example, b@y.example; c@z.example",
            ["a@x.example", "b@y.example", "c@z.example"],
        ),
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", ["pete@silly.test"]),
        ("<@route1,@route2:user@example.com>", ["user@example.com"]),
        ('"quoted local"@example.com', ["quoted local@example.com"]),
        ("john . doe @ example . com", ["john.doe@example.com"]),
        ("root", ["root"]),
        ("<>", []),
        ("", []),
        ("a@[192.0.2.1]", ["a@[192.0.2.1]"]),
        (",,a@b.example,,", ["a@b.example"]),
        ("Unterminated <a@b.example", ["a@b.example"]),
        ('"unterminated', ["unterminated"]),
        ("(unterminated comment", []),
    ],
)
def test_address_lists(value: str, addresses: list[str]) -> None:
    assert parse_address_list(value) == addresses


def test_addresses_from_headers_are_cached_and_flattened() -> None:
    msg = SieveMessage.from_bytes(
        b"To: a@x.example,\r\n  B <b@y.example>\r\nTo: group: c@z.example;\r\n\r\n"
    )
    assert msg.addresses("to") == ["a@x.example", "b@y.example", "c@z.example"]
    first = msg.addresses("TO")
    first.append("mutated")
    assert msg.addresses("to") == ["a@x.example", "b@y.example", "c@z.example"]
    assert msg.addresses("cc") == []


@pytest.mark.parametrize(
    ("address", "part", "value"),
    [
        ("ken+sieve@example.org", "all", "ken+sieve@example.org"),
        ("ken+sieve@example.org", "localpart", "ken+sieve"),
        ("ken+sieve@example.org", "domain", "example.org"),
        ("ken+sieve@example.org", "user", "ken"),
        ("ken+sieve@example.org", "detail", "sieve"),
        ("ken@example.org", "user", "ken"),  # RFC 5233: no detail, :user is the local-part
        ("ken@example.org", "detail", None),  # and :detail matches nothing
        ("ken+@example.org", "detail", ""),  # an empty detail is ""
        ("ken+a+b@example.org", "detail", "a+b"),  # split at the first separator
        ("root", "all", "root"),
        ("root", "localpart", None),  # invalid: never matched by :localpart/:domain
        ("root", "domain", None),
        ("@example.org", "domain", None),
        ("a@", "localpart", None),
        ("a@b@c.example", "localpart", "a@b"),
    ],
)
def test_address_parts(address: str, part: str, value: str | None) -> None:
    assert address_part(address, part) == value


@pytest.mark.parametrize(
    ("path", "address"),
    [
        ("a@b.example", "a@b.example"),
        ("<a@b.example>", "a@b.example"),
        ("<@hosta.example,@hostb.example:a@b.example>", "a@b.example"),
        ("<>", ""),
        ("", ""),
        (" <a@b.example> ", "a@b.example"),
    ],
)
def test_envelope_address(path: str, address: str) -> None:
    assert envelope_address(path) == address


def test_constructor_takes_pairs() -> None:
    msg = SieveMessage([("Subject", " =?utf-8?q?x?="), ("subject", "y")], 42)
    assert msg.header("Subject") == ["x", "y"]
    assert msg.size == 42


def test_email_package_is_not_imported() -> None:
    # The mda must start fast: nothing here needs the email package.
    SieveMessage.from_bytes(b"From: a@b.example\r\nSubject: =?utf-8?q?x?=\r\n\r\n").header(
        "subject"
    )
    assert "mda.sieve.message" in sys.modules
    # (email may have been imported by another test module; check our modules do not use it)
    import mda.sieve.message as module

    assert "email" not in vars(module)


HEADER_BYTES = st.binary(max_size=300) | st.lists(
    st.sampled_from(
        [
            *[b"From: ", b"To: ", b"Subject: ", b"Cc:", b"\r\n", b"\n", b" ", b"\t", b"a@b"],
            *[b"<", b">", b",", b";", b":", b"(", b")", b'"', b"\\", b"=?utf-8?q?", b"=?x?b?"],
            *[b"?=", b"\xff"],
        ]
    ),
    max_size=60,
).map(b"".join)


@given(HEADER_BYTES)
def test_any_bytes_give_a_usable_message(raw: bytes) -> None:
    msg = SieveMessage.from_bytes(raw)
    for name in ("from", "to", "subject", "cc"):
        msg.header(name)
        for address in msg.addresses(name):
            for part in ("all", "localpart", "domain", "user", "detail"):
                address_part(address, part)
    assert msg.size >= len(raw)


@given(HEADER_BYTES)
def test_evaluation_never_fails_on_odd_messages(raw: bytes) -> None:
    script = parse(
        'require ["envelope", "subaddress", "imap4flags"];\n'
        'if anyof (header :matches ["subject", "from"] "*a?b*",\n'
        '          address :detail :contains ["from", "to", "cc"] "",\n'
        '          address :domain :is "to" "b",\n'
        '          exists "cc", size :over 10) { addflag "x"; }'
    )
    evaluate(script, SieveMessage.from_bytes(raw), SieveEnvelope("", "a+b@c"))
