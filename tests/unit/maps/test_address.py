"""mda.address: the envelope check and the one spelling every map lookup uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mda.address import check, normalize, normalize_domain, normalize_key, split, visible
from mda.errors import BadAddress
from mda.maps.access import parse_access
from mda.maps.virtusertable import candidates, parse_virtusertable


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        ("bob@example.test", "bob@example.test"),
        ('"bob"@example.test', "bob@example.test"),
        ("\\bob@example.test", "bob@example.test"),
        ('"b\\ob"@example.test', "bob@example.test"),
        ('"bob".smith@example.test', "bob.smith@example.test"),
        ("Bob@EXAMPLE.Test.", "Bob@example.test"),  # RFC 5321 2.4: local parts keep case
        ("<bob@example.test>", "bob@example.test"),
        ("<@relay.example,@other.example:bob@example.test>", "bob@example.test"),
        ('"john smith"@example.test', '"john smith"@example.test'),
        ("john smith@example.test", '"john smith"@example.test'),  # Postfix's internal form
        ('"a@b"@example.test', '"a@b"@example.test'),
        ('"bob."@example.test', '"bob."@example.test'),  # not a dot-atom: stays quoted
        ('"\\\\bob"@example.test', '"\\\\bob"@example.test'),  # a literal backslash
        ("x@b\u00fccher.example", "x@xn--bcher-kva.example"),
        ("x@B\u00dcCHER.Example.", "x@xn--bcher-kva.example"),
        ("x@XN--BCHER-KVA.example", "x@xn--bcher-kva.example"),
        ("x@\uff53\uff50\uff41\uff4d.example", "x@spam.example"),  # full-width letters
        ("j\u00f6rg@example.test", "j\u00f6rg@example.test"),  # RFC 6531 local part
        ("x@[192.0.2.1]", "x@[192.0.2.1]"),
        ("postmaster", "postmaster"),
        ("", ""),
        ("<>", ""),
    ],
)
def test_normalize(address: str, canonical: str) -> None:
    assert normalize(address) == canonical


def test_split_gives_the_local_part_unquoted() -> None:
    assert split('"john smith"@Example.Test') == ("john smith", "example.test")
    assert split("bob") == ("bob", None)
    assert split('"unbalanced@example.test') == ('"unbalanced', "example.test")


@pytest.mark.parametrize(
    ("key", "canonical"),
    [
        ('"Bob"@Example.TEST.', "bob@example.test"),
        ("bob@", "bob@"),
        ("@B\u00fccher.example", "@xn--bcher-kva.example"),
        ("+*@example.test", "+*@example.test"),
        ("spammer.example.", "spammer.example"),
        ("192.0.2", "192.0.2"),
    ],
)
def test_normalize_key(key: str, canonical: str) -> None:
    assert normalize_key(key) == canonical


def test_map_keys_are_compiled_in_the_canonical_spelling() -> None:
    text = 'To:"Bob"@Example.TEST. REJECT\nFrom:B\u00fccher.example REJECT\nIPv6:2001:db8 OK\n'
    keys = [k for k, _ in parse_access(text, "access")[0]]
    assert keys == ["to:bob@example.test", "from:xn--bcher-kva.example", "ipv6:2001:db8"]
    virt = [k for k, _ in parse_virtusertable('"Info"@V.example. bob\n', "v")[0]]
    assert virt == ["info@v.example"]
    assert candidates('"info"@V.EXAMPLE.')[0][0] == "info@v.example"


def test_invalid_idn_keeps_its_text() -> None:
    # Not encodable (an empty label): it cannot equal any valid domain's A-label spelling.
    assert normalize_domain("b\u00fccher..example") == "b\u00fccher..example"


# The characters that make spellings differ: quotes, escapes, dots, brackets, white space
# (also the ideographic space), full-width letters, the ideographic full stop IDNA treats as a dot.
ADDRESSES = st.text(
    alphabet=st.sampled_from(list('ab.@"\\ <>:,+[]\tB\u00fc\uff41\u3000\u3002')), max_size=24
)


@given(ADDRESSES)
def test_normalize_is_idempotent(address: str) -> None:
    once = normalize(address)
    assert normalize(once) == once


@pytest.mark.parametrize(
    "bad", ["a\nb", "a\rb", "a\x00b", "a\x7fb", "a\x85b", "a\u2028b", "a\u200bb"]
)
def test_check_refuses_what_is_not_printable(bad: str) -> None:
    with pytest.raises(BadAddress) as e:
        check(bad, "sender", "5.1.7")
    assert e.value.dsn == "5.1.7" and e.value.exit_code == 64
    assert "\n" not in e.value.text and "\r" not in e.value.text


@pytest.mark.parametrize(
    "good", ["", "bob@example.test", '"john smith"@x', "j\u00f6rg@b\u00fccher"]
)
def test_check_accepts_addresses(good: str) -> None:
    assert check(good, "recipient") == good


def test_visible_escapes_only_what_is_not_printable() -> None:
    assert visible("a\nb\tc\u2028d \u00e9") == "a\\x0ab\\x09c\\u2028d \u00e9"
