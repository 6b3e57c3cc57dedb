"""Comparators and match types (RFC 5228 sections 2.7.1, 2.7.3)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mda.sieve.matching import (
    ASCII_CASEMAP,
    CONTAINS,
    IS,
    MATCHES,
    OCTET,
    Matcher,
    compile_glob,
    glob_match,
)


def matches(pattern: str, value: str, comparator: str = ASCII_CASEMAP) -> bool:
    return Matcher.build(MATCHES, comparator, [pattern]).match(value)


def test_is() -> None:
    m = Matcher.build(IS, ASCII_CASEMAP, ["frobnitzm"])
    assert m.match("frobnitzm") and m.match("FROBNITZM")
    assert not m.match("frobnitz") and not m.match("frobnitzm ")
    assert not Matcher.build(IS, OCTET, ["frobnitzm"]).match("FROBNITZM")
    # The empty key ":is" and only ":is" the empty value.
    assert Matcher.build(IS, OCTET, [""]).match("")
    assert not Matcher.build(IS, OCTET, [""]).match("x")


def test_contains() -> None:
    # Section 2.7.1: "frobnitzm" contains "frob" and "nit", but not "fbm".
    m = Matcher.build(CONTAINS, OCTET, ["frob", "nit"])
    assert m.match("frobnitzm")
    assert not Matcher.build(CONTAINS, OCTET, ["fbm"]).match("frobnitzm")
    # The empty key is contained in all values.
    assert Matcher.build(CONTAINS, OCTET, [""]).match("")
    assert Matcher.build(CONTAINS, OCTET, [""]).match("anything")
    assert Matcher.build(CONTAINS, ASCII_CASEMAP, ["MONEY"]).match("make money fast")
    assert not Matcher.build(CONTAINS, OCTET, ["MONEY"]).match("make money fast")


def test_contains_does_not_use_wildcards() -> None:
    assert not Matcher.build(CONTAINS, OCTET, ["a*b"]).match("axxb")
    assert Matcher.build(CONTAINS, OCTET, ["a*b"]).match("xa*bx")


def test_ascii_casemap_folds_only_ascii() -> None:
    # RFC 4790 section 9.2: only a-z/A-Z are folded.
    assert Matcher.build(IS, ASCII_CASEMAP, ["\u00e9T\u00e9"]).match("\u00e9t\u00e9")
    assert not Matcher.build(IS, ASCII_CASEMAP, ["\u00c9T\u00c9"]).match("\u00e9t\u00e9")
    assert not Matcher.build(IS, ASCII_CASEMAP, ["STRASSE"]).match("stra\u00dfe")


def test_question_mark_matches_one_octet() -> None:
    # Section 2.7.1: with i;octet and i;ascii-casemap "?" matches exactly one octet.
    assert matches("caf??", "caf\u00e9")  # U+00E9 is two octets in UTF-8
    assert not matches("caf?", "caf\u00e9")
    assert matches("???", "\u2603")  # three octets
    assert matches("caf*", "caf\u00e9")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        # Pigeonhole's tests/match-types/matches.svtest, with the values they use.
        ("", "", True),
        ("*", "", True),
        ("?", "", False),
        ("*@fri*p*examp*.com", "stephan+sieve@friep.example.com", True),
        ("*@f*pex*mple.com", "stephan+sieve@friep.example.com", False),
        ("stephan+sieve@friep.*", "stephan+sieve@friep.example.com", True),
        ("stepan+sieve@friep.*", "stephan+sieve@friep.example.com", False),
        ("*+sieve@friep.example.com", "stephan+sieve@friep.example.com", True),
        ("*+sieve@friep.example.om", "stephan+sieve@friep.example.com", False),
        ("stephan+sieve?friep.example.com", "stephan+sieve@friep.example.com", True),
        ("stephan+sieve?fiep.example.com", "stephan+sieve@friep.example.com", False),
        ("?tephan+sieve@friep.example.com", "stephan+sieve@friep.example.com", True),
        ("?tephan+sievefriep.example.com", "stephan+sieve@friep.example.com", False),
        ("stephan+sieve@friep.example.co?", "stephan+sieve@friep.example.com", True),
        ("sephan+sieve@friep.example.co?", "stephan+sieve@friep.example.com", False),
        ("?t?phan?sieve?fri?p.exampl?.co?", "stephan+sieve@friep.example.com", True),
        ("?t?phan?sieve?fiep.exam?le.co?", "stephan+sieve@friep.example.com", False),
        ("33333\\?\\?\\??", "33333???a", True),
        ("33333\\?\\?\\?", "33333???a", False),
        ("33333*\\?\\??", "33333???a", True),
        ("*\\?\\?\\?a", "33333???a", True),
        ("*3333\\?\\?\\?a", "33333???a", True),
        ("\\*\\*\\*\\*\\**", "**********", True),
        ("\\*" * 10, "**********", True),
        ("\\*" * 11, "**********", False),
        ("\\*\\*\\***\\*\\*", "**********", True),
        ("\\*?\\*?\\*?\\*?\\*?", "**********", True),
        ("\\*?\\*?\\*?\\*?\\*??", "**********", False),
        ("\\*3333\\?\\?\\?a", "33333???a", False),
        ("33333\\?\\?\\?aa", "33333???a", False),
        ("\\f3333\\?\\?\\?a", "33333???a", False),
        ("Log for *??????????? build of *", "Log for successful build of Dovecot.", False),
        ("Log for *?????????? build of *", "Log for successful build of Dovecot.", True),
        ("Log for *? build of *", "Log for successful build of Dovecot.", True),
        ("Log for ???????????* build of *", "Log for successful build of Dovecot.", False),
        ("Log for ??????????* build of *", "Log for successful build of Dovecot.", True),
        ("Log for ?* build of *", "Log for successful build of Dovecot.", True),
        ("make your *", "make your money very fast!!!", True),
        ("* very fast!!!", "make your money very fast!!!", True),
        ("* very fast!!", "make your money very fast!!!", False),
        ("sirius@example.org", "sirius@example.org", True),
        ("example.org", "sirius@example.org", False),
        ("*?X", "X", False),
        ("*slash\\", "Slashy slash\\", True),  # a trailing lone backslash is literal
        # RFC 5228 section 5.7: "?*" is "at least one character"
        ("?*", "", False),
        ("?*", " ", True),
        # RFC 5228 section 9
        ("*make*money*fast*", "Learn to MAKE MONEY FAST today", True),
        ("*university*dipl*mas*", "University diplomas!", True),
        ("*university*dipl*mas*", "University diploma", False),
        ("a\\\\b", "a\\b", True),
        ("a**b", "ab", True),
        ("a*b*c", "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", False),
    ],
)
def test_matches(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_matches_with_octet_comparator_is_case_sensitive() -> None:
    assert matches("*MONEY*", "make money", ASCII_CASEMAP)
    assert not matches("*MONEY*", "make money", OCTET)


def test_matches_is_not_exponential() -> None:
    # A pathological pattern for backtracking matchers: linear here.
    value = "a" * 20000
    assert not matches("*a" * 50 + "b", value)


def test_match_any() -> None:
    m = Matcher.build(IS, ASCII_CASEMAP, ["x", "y"])
    assert m.match_any(["a", "Y"])
    assert not m.match_any([])
    assert "Matcher('is'" in repr(m)


def _reference(items: tuple[int, ...], value: bytes) -> bool:
    parts = []
    for item in items:
        if item == -1:
            parts.append(b".*")
        elif item == -2:
            parts.append(b".")
        else:
            parts.append(re.escape(bytes([item])))
    return re.fullmatch(b"".join(parts), value, re.DOTALL) is not None


@given(
    st.text(alphabet="ab*?\\", max_size=12),
    st.text(alphabet="ab*?\\", max_size=16),
)
def test_glob_agrees_with_a_regex_reference(pattern: str, value: str) -> None:
    items = compile_glob(pattern.encode())
    assert glob_match(items, value.encode()) == _reference(items, value.encode())


@given(st.text(max_size=40))
def test_escaped_value_matches_itself(value: str) -> None:
    escaped = value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    assert matches(escaped, value, OCTET)
    assert matches("*", value)
