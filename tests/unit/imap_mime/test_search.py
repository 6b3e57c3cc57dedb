"""mra.imap.search: parsing, errors, lazy loading, message sets and dates.

What each key matches on real messages is compared with Dovecot in
``test_dovecot_golden.py::test_search``; these tests cover the rest.
"""

from __future__ import annotations

import datetime
from collections.abc import Container

import pytest

from mra.imap.search import (
    And,
    BadCharsetError,
    MessageContext,
    SearchError,
    SequenceSet,
    Token,
    parse_search,
)
from tests.unit.imap_mime import corpus

UTC = datetime.UTC
# 2024-05-12 23:30:00 UTC: already the 13th in UTC+02:00
LATE = datetime.datetime(2024, 5, 12, 23, 30, tzinfo=UTC).timestamp()


def ctx(
    raw: bytes = corpus.PLAIN,
    *,
    uid: int = 10,
    seqno: int = 1,
    flags: tuple[str, ...] = (),
    keywords: tuple[str, ...] = (),
    internaldate: float = LATE,
    size: int | None = None,
) -> MessageContext:
    return MessageContext(
        uid=uid,
        seqno=seqno,
        flags=set(flags),
        keywords=set(keywords),
        internaldate=internaldate,
        size=len(raw) if size is None else size,
        loader=lambda: raw,
    )


def matches(program: list[Token], c: MessageContext, tz: datetime.tzinfo = UTC) -> bool:
    return parse_search(program).matches(c, tz)


# ---------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    "program",
    [
        [],
        [b"CHARSET", b"UTF-8"],
        [b"BOGUS"],
        [b"FROM"],
        [b"HEADER", b"Subject"],
        [b"HEADER", b"Bad Name", b"x"],
        [b"HEADER", b"Sub:ject", b"x"],
        [b"LARGER", b"ten"],
        [b"SMALLER", b"-1"],
        [b"BEFORE", b"2024-05-01"],
        [b"SINCE", b"31-Feb-2024"],
        [b"ON", b"1-Foo-2024"],
        [b"NOT"],
        [b"OR", b"SEEN"],
        [b"UID"],
        [b"UID", b"1:"],
        [b"0"],
        [b"1:0"],
        [b"UID", b"4,,5"],
        [[]],
        [b"SUBJECT", [b"x"]],
        [b"SUBJECT", b"\xff\xfe"],
        [b"KEYWORD", [b"x"]],
        [b"$"],
    ],
)
def test_malformed_programs_are_bad(program: list[Token]) -> None:
    with pytest.raises(SearchError) as info:
        parse_search(program)
    assert info.value.status == "BAD"
    assert info.value.code is None


def test_unknown_charset() -> None:
    with pytest.raises(BadCharsetError) as info:
        parse_search([b"CHARSET", b"X-UNKNOWN", b"ALL"])
    assert info.value.status == "NO"
    assert info.value.code is not None
    assert info.value.code.startswith(b"BADCHARSET (UTF-8 US-ASCII ISO-8859-1 ")
    assert parse_search([b"charset", b"us-ascii", b"ALL"]).charset == "US-ASCII"
    assert parse_search([b"ALL"]).charset == "UTF-8"


def test_keys_are_case_insensitive_and_programs_are_and() -> None:
    c = ctx(flags=("\\Seen",))
    assert matches([b"seen", b"from", b"ALICE"], c)
    assert not matches([b"SEEN", b"FROM", b"bob@example.com"], c)
    program = parse_search([b"TEXT", b"x", b"SEEN", b"FROM", b"y"])
    assert isinstance(program.key, And)
    # cheapest first: the flag is tested before anything that reads the message
    assert [type(k).__name__ for k in program.key.keys] == ["Flag", "Header", "Text"]


# ---------------------------------------------------------------------------------------------
# Flags, keywords, sizes


@pytest.mark.parametrize(
    ("key", "flag"),
    [
        (b"ANSWERED", "\\Answered"),
        (b"DELETED", "\\Deleted"),
        (b"DRAFT", "\\Draft"),
        (b"FLAGGED", "\\Flagged"),
        (b"RECENT", "\\Recent"),
        (b"SEEN", "\\Seen"),
    ],
)
def test_flag_keys(key: bytes, flag: str) -> None:
    assert matches([key], ctx(flags=(flag,)))
    assert matches([key], ctx(flags=(flag.upper(),)))
    assert not matches([key], ctx())
    if key != b"RECENT":  # there is no UNRECENT (OLD is)
        assert matches([b"UN" + key], ctx())
        assert not matches([b"UN" + key], ctx(flags=(flag,)))


def test_new_and_old() -> None:
    assert matches([b"NEW"], ctx(flags=("\\Recent",)))
    assert not matches([b"NEW"], ctx(flags=("\\Recent", "\\Seen")))
    assert not matches([b"NEW"], ctx())
    assert matches([b"OLD"], ctx(flags=("\\Seen",)))
    assert not matches([b"OLD"], ctx(flags=("\\Recent",)))


def test_keywords_ignore_case() -> None:
    c = ctx(keywords=("$Label1", "Work"))
    assert matches([b"KEYWORD", b"work"], c)
    assert matches([b"KEYWORD", b"$LABEL1"], c)
    assert not matches([b"KEYWORD", b"$Junk"], c)
    assert matches([b"UNKEYWORD", b"$Junk"], c)
    assert not matches([b"UNKEYWORD", b"WORK"], c)


def test_sizes() -> None:
    c = ctx(size=100)
    assert matches([b"LARGER", b"99"], c) and not matches([b"LARGER", b"100"], c)
    assert matches([b"SMALLER", b"101"], c) and not matches([b"SMALLER", b"100"], c)


# ---------------------------------------------------------------------------------------------
# Lazy loading


def test_flag_only_programs_never_read_the_message() -> None:
    c = ctx(flags=("\\Seen",))
    keys: list[Token] = [b"OR", b"SEEN", b"DELETED", b"NOT", b"KEYWORD", b"x"]
    program = parse_search([*keys, b"LARGER", b"1", b"SINCE", b"1-Jan-2000"])
    assert not program.needs_message
    assert program.matches(c, UTC)
    assert c.loads == 0


def test_cheap_keys_settle_before_the_message_is_read() -> None:
    c = ctx()  # not \Seen
    program = parse_search([b"BODY", b"quarterly", b"SEEN"])
    assert program.needs_message
    assert not program.matches(c)
    assert c.loads == 0
    c = ctx(flags=("\\Seen",))
    assert parse_search([b"OR", b"BODY", b"nothing", b"SEEN"]).matches(c)
    assert c.loads == 0


def test_the_message_is_read_once() -> None:
    c = ctx()
    program = parse_search(
        [b"FROM", b"alice", b"BODY", b"quarterly", b"TEXT", b"revenue", b"SENTON", b"6-May-2024"]
    )
    assert program.matches(c)
    assert c.loads == 1


# ---------------------------------------------------------------------------------------------
# Strings


def test_string_matching_is_decoded_and_case_insensitive() -> None:
    c = ctx(corpus.ENCODED_WORDS)
    # as Dovecot: "ß" is not "ss", a ligature is not its letters, case and composition
    # do not matter
    assert not matches([b"SUBJECT", "grüsse".encode()], c)
    assert not matches([b"SUBJECT", "GRÜSSE".encode()], c)
    assert matches([b"SUBJECT", "grüße aus köln".encode()], c)
    assert matches([b"SUBJECT", "KÖLN".encode()], c)
    assert not matches([b"SUBJECT", "\ufb01".encode()], ctx(b"Subject: file\n\nx\n"))
    assert matches([b"FROM", "jörg".encode()], c)
    assert matches([b"BODY", "SCHÖNE".encode()], c)
    assert matches([b"TEXT", b"enc-1@example.de"], c)
    assert not matches([b"BODY", b"enc-1@example.de"], c)
    # a decomposed "ö" in the search string matches the composed one in the message
    assert matches([b"SUBJECT", "Ko\u0308ln".encode()], c)


def test_header_key() -> None:
    c = ctx(corpus.MISSING_HEADERS)
    assert matches([b"HEADER", b"x-mailer", b"HANDWRITTEN"], c)
    assert matches([b"HEADER", b"X-Mailer", b""], c)
    assert not matches([b"HEADER", b"Message-ID", b""], c)
    assert not matches([b"HEADER", b"Subject", b"xyz"], c)


def test_parenthesised_groups_not_and_or() -> None:
    c = ctx(flags=("\\Seen", "\\Flagged"))
    assert matches([[b"SEEN", b"FLAGGED"]], c)
    assert not matches([b"NOT", [b"SEEN", b"FLAGGED"]], c)
    assert matches([b"OR", [b"DELETED", b"DRAFT"], [b"FROM", b"alice"]], c)
    assert matches([b"NOT", b"NOT", b"SEEN"], c)
    assert matches([[[b"SEEN"]]], c)


# ---------------------------------------------------------------------------------------------
# Dates


def test_internal_dates_use_the_server_zone() -> None:
    c = ctx(internaldate=LATE)
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert matches([b"ON", b"12-May-2024"], c, UTC)
    assert matches([b"ON", b"13-May-2024"], c, plus2)
    assert matches([b"BEFORE", b"13-May-2024"], c, UTC)
    assert not matches([b"BEFORE", b"13-May-2024"], c, plus2)
    assert matches([b"SINCE", b"12-May-2024"], c, UTC)
    assert not matches([b"SINCE", b"13-May-2024"], c, UTC)
    # quoted dates come as plain strings; one-digit days are fine
    assert matches([b"SINCE", b"1-May-2024"], c)


def test_sent_dates_ignore_time_and_zone() -> None:
    late = ctx(corpus.NESTED)  # Date: Mon, 13 May 2024 23:59:59 -1200 (14 May in UTC)
    assert matches([b"SENTON", b"13-May-2024"], late)
    assert matches([b"SENTBEFORE", b"14-May-2024"], late)
    assert not matches([b"SENTSINCE", b"14-May-2024"], late)
    undated = ctx(corpus.MISSING_HEADERS)
    assert matches([b"SENTON", b"1-Jan-1970"], undated)
    assert matches([b"SENTBEFORE", b"2-Jan-1970"], undated)


# ---------------------------------------------------------------------------------------------
# Message sets


def test_sequence_set_parsing() -> None:
    s = SequenceSet.parse(b"1,3:5,9:*")
    assert [n for n in range(1, 20) if n in s] == [1, 3, 4, 5, *range(9, 20)]
    assert [n for n in range(1, 20) if n in s.resolve(10)] == [1, 3, 4, 5, 9, 10]
    # "12:*" when the largest is 10 means 10:12 (RFC 3501)
    assert 10 in SequenceSet.parse(b"12:*").resolve(10)
    assert [n for n in range(10) if n in SequenceSet.parse(b"5:2")] == [2, 3, 4, 5]
    assert 7 not in SequenceSet.parse(b"*")  # unknown largest
    assert 7 in SequenceSet.parse(b"*").resolve(7)
    assert "1" not in s


def test_sets_go_through_the_callers_hook() -> None:
    calls: list[tuple[bytes, bool]] = []

    def resolve(raw: bytes, uid: bool) -> Container[int]:
        calls.append((raw, uid))
        return {10} if uid else {2}

    program = parse_search([b"OR", b"UID", b"5:*", b"$"], resolve_set=resolve)
    assert calls == [(b"5:*", True), (b"$", False)]
    assert program.matches(ctx(uid=10, seqno=1))
    assert program.matches(ctx(uid=11, seqno=2))
    assert not program.matches(ctx(uid=11, seqno=3))
    assert not program.needs_message


def test_hook_errors_become_bad() -> None:
    def refuse(raw: bytes, uid: bool) -> Container[int]:
        raise SearchError("no saved result")

    with pytest.raises(SearchError):
        parse_search([b"$"], resolve_set=refuse)


def test_search_helper_returns_sequence_numbers() -> None:
    contexts = [ctx(seqno=n, flags=("\\Seen",) if n % 2 else ()) for n in range(1, 6)]
    assert parse_search([b"SEEN"]).search(contexts) == [1, 3, 5]
    assert parse_search([b"2:4", b"UNSEEN"]).search(contexts) == [2, 4]


# ---------------------------------------------------------------------------------------------
# More answers observed from Dovecot 2.3.19 (UID SEARCH on these messages)

SCOPE_MESSAGES = [
    corpus.ALTERNATIVE,
    corpus.MIXED,
    b"Content-Type: text/plain\n\ncaf\xe9 latin1 without charset\n",
    b"Content-Type: text/plain; charset=x-unknown\n\ncaf\xc3\xa9 unknown charset\n",
    b"Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9 latin1\n",
    b"Subject: hdr\n\nbody with header-like line\nSubject: fake\n",
    b"Content-Type: multipart/mixed; boundary=b\n\npreamble words\n--b\n\npart\n--b--\n"
    b"epilogue words\n",
]


@pytest.mark.parametrize(
    ("program", "found"),
    [
        ([b"BODY", b"<b>"], [1]),  # HTML is searched as it is
        ([b"BODY", "café".encode()], [1, 4, 5]),  # no charset: not Latin-1
        ([b"BODY", b"latin1"], [3, 5]),
        ([b"BODY", b"fake"], [6]),
        ([b"BODY", b"preamble"], []),  # preamble and epilogue are not text
        ([b"BODY", b"epilogue"], []),
        ([b"TEXT", b"preamble"], []),
        ([b"BODY", b"caf"], [1, 3, 4, 5]),
        ([b"TEXT", b"Content-Type: text/plain"], [1, 2, 3, 4, 5]),  # MIME headers too
        ([b"BODY", b"unknown charset"], [4]),
        ([b"TEXT", b"boundary"], [1, 2, 7]),
        ([b"BODY", "café latin1".encode()], [5]),
    ],
)
def test_body_and_text_scope(program: list[Token], found: list[int]) -> None:
    parsed = parse_search(program)
    contexts = [ctx(raw, seqno=n) for n, raw in enumerate(SCOPE_MESSAGES, start=1)]
    assert parsed.search(contexts) == found


@pytest.mark.parametrize(
    ("date", "day"),
    [
        (b"12 May 2024", "1-Jan-1970"),  # no time: invalid
        (b"Sun, 12 May 24 10:00 +0000", "12-May-2024"),
        (b"12 May 2024 10:00:00 GMT", "12-May-2024"),
        (b"Mon, 32 May 2024 10:00:00 +0000", "1-Jan-1970"),
        (b"12-May-2024", "1-Jan-1970"),
        (b"Sun, 12 May 2024 10:00:00", "12-May-2024"),
        (b"12 May 2024 23:00:00 -1100", "12-May-2024"),
        (b"  Sun , 12 May 2024 10:00 EDT", "12-May-2024"),
        (b"Sun, 12 May 1999 10:00:00 +0000 (comment)", "12-May-1999"),
        (b"Sun, 12 May 80 10:00:00 +0000", "12-May-1980"),
        (b"garbage\nDate: Sun, 12 May 2024 10:00:00 +0000", "1-Jan-1970"),  # first Date only
        (b"Sun, 12 May 2024 10:00:00 +0000\nDate: garbage", "12-May-2024"),
    ],
)
def test_sent_date_formats(date: bytes, day: str) -> None:
    c = ctx(b"Date: " + date + b"\nSubject: s\n\nx\n")
    assert matches([b"SENTON", day.encode()], c)
