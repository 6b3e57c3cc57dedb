"""The IMAP command reader: grammar, literals, resynchronising, limits, modes."""

from __future__ import annotations

import tracemalloc

import pytest

from mra.imap.commands import SUSPENDING
from mra.imap.events import (
    BadCommand,
    Command,
    ContinuationLine,
    Fatal,
    IdleDone,
    LimitExceeded,
    LineTooLong,
    LiteralTooLarge,
    NeedContinuation,
)
from mra.imap.limits import Limits
from mra.imap.parser import CommandReader
from mra.imap.values import Atom, FetchAtt, Nil, ParenList, Section, String
from tests.unit.imap._util import command, drive, parse

# --- RFC 3501 transcripts -----------------------------------------------------------------------

# Section 8, the example session: every client line.
RFC3501_SECTION_8 = [
    (b"a001 login mrc secret\r\n", "LOGIN", [Atom("mrc"), Atom("secret")]),
    (b"a002 select inbox\r\n", "SELECT", [Atom("inbox")]),
    (b"a003 fetch 12 full\r\n", "FETCH", [Atom("12"), Atom("full")]),
    (
        b"a004 fetch 12 body[header]\r\n",
        "FETCH",
        [Atom("12"), FetchAtt("BODY", Section(text="HEADER"))],
    ),
    (
        b"a005 store 12 +flags \\deleted\r\n",
        "STORE",
        [Atom("12"), Atom("+flags"), Atom("\\deleted")],
    ),
    (b"a006 logout\r\n", "LOGOUT", []),
]


@pytest.mark.parametrize(("line", "name", "args"), RFC3501_SECTION_8)
def test_rfc3501_section_8_session(line: bytes, name: str, args: list[object]) -> None:
    cmd = command(line)
    assert cmd.tag == line.split()[0].decode()
    assert cmd.name == name
    assert cmd.args == args
    assert cmd.raw_size == len(line)


def test_rfc3501_section_8_as_one_stream() -> None:
    stream = b"".join(line for line, _, _ in RFC3501_SECTION_8)
    events = parse(stream)
    assert [e.name for e in events if isinstance(e, Command)] == [
        n for _, n, _ in RFC3501_SECTION_8
    ]


# Section 6 examples (client side), with what they must parse to.
RFC3501_SECTION_6 = [
    (b"a002 CAPABILITY\r\n", []),
    (b"a047 NOOP\r\n", []),
    (b"A023 LOGOUT\r\n", []),
    (b"a001 LOGIN SMITH SESAME\r\n", [Atom("SMITH"), Atom("SESAME")]),
    (b"A932 EXAMINE blurdybloop\r\n", [Atom("blurdybloop")]),
    (b"A003 CREATE owatagusiam/\r\n", [Atom("owatagusiam/")]),
    (b"A683 RENAME blurdybloop sarasoop\r\n", [Atom("blurdybloop"), Atom("sarasoop")]),
    (b"A002 SUBSCRIBE #news.comp.mail.mime\r\n", [Atom("#news.comp.mail.mime")]),
    (b'A101 LIST "" ""\r\n', [String(b""), String(b"")]),
    (b'A102 LIST #news.comp.mail.misc ""\r\n', [Atom("#news.comp.mail.misc"), String(b"")]),
    (b"A202 LIST ~/Mail/ %\r\n", [Atom("~/Mail/"), Atom("%")]),
    (b'A002 LSUB "#news." "comp.mail.*"\r\n', [String(b"#news."), String(b"comp.mail.*")]),
    (
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
        [Atom("blurdybloop"), ParenList((Atom("UIDNEXT"), Atom("MESSAGES")))],
    ),
    (b"FXXZ CHECK\r\n", []),
    (
        b'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        [
            Atom("FLAGGED"),
            Atom("SINCE"),
            Atom("1-Feb-1994"),
            Atom("NOT"),
            Atom("FROM"),
            String(b"Smith"),
        ],
    ),
    (
        b'A283 SEARCH TEXT "string not in mailbox"\r\n',
        [Atom("TEXT"), String(b"string not in mailbox")],
    ),
    (
        b"A284 SEARCH CHARSET UTF-8 TEXT {6}\r\n\xd0\x9c\xd0\xb8\xd1\x80\r\n",
        [Atom("CHARSET"), Atom("UTF-8"), Atom("TEXT"), String("Мир".encode(), True)],
    ),
    (
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
        [
            Atom("2:4"),
            ParenList(
                (
                    Atom("FLAGS"),
                    FetchAtt("BODY", Section(text="HEADER.FIELDS", fields=("DATE", "FROM"))),
                )
            ),
        ],
    ),
    (
        b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
        [Atom("2:4"), Atom("+FLAGS"), ParenList((Atom("\\Deleted"),))],
    ),
    (b"A003 COPY 2:4 MEETING\r\n", [Atom("2:4"), Atom("MEETING")]),
    (
        b"A999 UID FETCH 4827313:4828442 FLAGS\r\n",
        [Atom("FETCH"), Atom("4827313:4828442"), Atom("FLAGS")],
    ),
    (b"a442 XPIG-LATIN\r\n", []),
]


@pytest.mark.parametrize(("line", "args"), RFC3501_SECTION_6)
def test_rfc3501_section_6_examples(line: bytes, args: list[object]) -> None:
    cmd = command(line)
    assert cmd.args == args
    assert cmd.name == line.split()[1].decode().upper()


def test_rfc3501_append_example() -> None:
    message = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
        b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
        b"Subject: afternoon meeting\r\n"
        b"\r\n"
        b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    )
    head = b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(message)
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.authenticated = True
    assert reader.feed(head) == [NeedContinuation("A003", len(message), "APPEND")]
    assert reader.suspended
    assert reader.accept_literal() == []
    events = reader.feed(message + b"\r\n")
    assert events == [
        Command(
            "A003",
            "APPEND",
            [Atom("saved-messages"), ParenList((Atom("\\Seen"),)), String(message, True)],
            len(head) + len(message) + 2,
        )
    ]


def test_authenticate_exchange() -> None:
    # RFC 3501 6.2.2, with PLAIN: the continuation lines come through expect_line().
    reader = CommandReader(suspend_after=SUSPENDING)
    events = reader.feed(b"A001 AUTHENTICATE PLAIN\r\n")
    assert events == [Command("A001", "AUTHENTICATE", [Atom("PLAIN")], 25)]
    assert reader.suspended
    assert reader.expect_line() == []
    assert reader.feed(b"AGZyZWQAc2VjcmV0\r\n") == [ContinuationLine(b"AGZyZWQAc2VjcmV0")]
    assert reader.suspended  # until the session says what comes next
    reader.authenticated = True
    assert reader.resume() == []
    assert reader.feed(b"A002 NOOP\r\n") == [Command("A002", "NOOP", [], 11)]


# --- values -------------------------------------------------------------------------------------


def test_atoms_keep_their_case_and_nil_is_an_atom() -> None:
    cmd = command(b"t X abc \\Seen $Forwarded 1:* % nil NIL Nil [Gmail]/Sent\r\n")
    assert cmd.args == [
        Atom("abc"),
        Atom("\\Seen"),
        Atom("$Forwarded"),
        Atom("1:*"),
        Atom("%"),
        Nil("nil"),
        Nil("NIL"),
        Nil("Nil"),
        Atom("[Gmail]/Sent"),
    ]
    assert isinstance(cmd.args[5], Atom)
    assert cmd.args[5] != Atom("nil")  # a Nil is not mistaken for a plain atom


def test_command_name_is_upper_case_and_tag_kept() -> None:
    cmd = command(b"a.b]c noop\r\n")
    assert (cmd.tag, cmd.name, cmd.args) == ("a.b]c", "NOOP", [])


def test_quoted_strings() -> None:
    cmd = command(b't X "" "a b" "q\\"uote" "back\\\\slash" "(){}%*"\r\n')
    assert cmd.args == [
        String(b""),
        String(b"a b"),
        String(b'q"uote'),
        String(b"back\\slash"),
        String(b"(){}%*"),
    ]
    assert all(isinstance(a, String) and not a.is_literal for a in cmd.args)


def test_literals_sync_and_non_sync() -> None:
    cmd = command(b't X {3}\r\na\r\n {0}\r\n {4+}\r\n(\x00)" x\r\n')
    assert cmd.args == [
        String(b"a\r\n", True),
        String(b"", True),
        String(b'(\x00)"', True),
        Atom("x"),
    ]


def test_nested_lists() -> None:
    cmd = command(b"t X (a (b (c)) () {1+}\r\nd)\r\n")
    assert cmd.args == [
        ParenList(
            (
                Atom("a"),
                ParenList((Atom("b"), ParenList((Atom("c"),)))),
                ParenList(()),
                String(b"d", True),
            )
        )
    ]


FETCH_ATTS = [
    (b"BODY[]", FetchAtt("BODY", Section())),
    (b"body.peek[]<0.100>", FetchAtt("BODY.PEEK", Section(), (0, 100))),
    (b"BODY[1.2.3]", FetchAtt("BODY", Section((1, 2, 3)))),
    (b"BODY[1.MIME]", FetchAtt("BODY", Section((1,), "MIME"))),
    (b"BODY[2.header]", FetchAtt("BODY", Section((2,), "HEADER"))),
    (b"BODY[TEXT]<10.20>", FetchAtt("BODY", Section(text="TEXT"), (10, 20))),
    (
        b"BODY.PEEK[HEADER.FIELDS.NOT (Received X-Spam)]",
        FetchAtt("BODY.PEEK", Section(text="HEADER.FIELDS.NOT", fields=("Received", "X-Spam"))),
    ),
    (
        b'BODY[1.HEADER.FIELDS ("Subject" {2+}\r\nTo)]<5.6>',
        FetchAtt("BODY", Section((1,), "HEADER.FIELDS", ("Subject", "To")), (5, 6)),
    ),
    (b"BINARY[1]", FetchAtt("BINARY", Section((1,)))),
    (b"BINARY.PEEK[]<0.1>", FetchAtt("BINARY.PEEK", Section(), (0, 1))),
    (b"BINARY.SIZE[2.1]", FetchAtt("BINARY.SIZE", Section((2, 1)))),
]


@pytest.mark.parametrize(("text", "att"), FETCH_ATTS)
def test_fetch_atts(text: bytes, att: FetchAtt) -> None:
    assert command(b"t FETCH 1 " + text + b"\r\n").args == [Atom("1"), att]
    # and inside a list, followed by more
    cmd = command(b"t FETCH 1 (" + text + b" FLAGS)\r\n")
    assert cmd.args == [Atom("1"), ParenList((att, Atom("FLAGS")))]


def test_fetch_att_peek_property() -> None:
    assert FetchAtt("BODY.PEEK", Section()).peek
    assert not FetchAtt("BODY", Section()).peek


@pytest.mark.parametrize(
    "text",
    [
        b"BODY[",
        b"BODY[0]",
        b"BODY[1.]",
        b"BODY[1HEADER]",
        b"BODY[MIME]",
        b"BODY[HEADERS]",
        b"BODY[TEXT.X]",
        b"BODY[HEADER.FIELDS]",
        b"BODY[HEADER.FIELDS ()]",
        b"BODY[HEADER.FIELDS (A:B)]",
        b"BODY[HEADER.FIELDS ((A))]",
        b"BODY[]<1>",
        b"BODY[]<1.0>",
        b"BODY[]<a.1>",
        b"BODY[]<0.99999999999>",
        b"BINARY[TEXT]",
        b"BINARY.SIZE[1]<0.1>",
        b"BODY[]x",
    ],
)
def test_bad_fetch_atts(text: bytes) -> None:
    events = parse(b"t FETCH 1 " + text + b"\r\nu NOOP\r\n")
    assert isinstance(events[0], BadCommand) and events[0].tag == "t", events
    assert events[1] == Command("u", "NOOP", [], 8)


# --- malformed input and resynchronising ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "tag", "message"),
    [
        (b"+ NOOP", None, "tag"),
        (b"a*b NOOP", None, "tag"),
        (b" NOOP", None, "tag"),
        (b"a1", "a1", "command name"),
        (b"a1 ", "a1", "command name"),
        (b"a1 1NOOP", "a1", "command name"),
        (b"a1 NO(OP", "a1", "command name"),
        (b"a1 NOOP)", "a1", "command name"),
        (b"a1 NOOP )", "a1", "')'"),
        (b"a1 X (a", "a1", "')'"),
        (b"a1 X (a))", "a1", "')'"),
        (b'a1 X "abc', "a1", "unterminated"),
        (b'a1 X "a\\qb"', "a1", "escape"),
        (b'a1 X "caf\x00"', "a1", "control character"),
        (b"a1 X caf\xc3\xa9", "a1", "8-bit"),
        (b'a1 X "a\x00b"', "a1", "control"),
        (b"a1 X a\x01b", "a1", "control"),
        (b"a1 X a\rb", "a1", "control"),
        (b'a1 X "a"b', "a1", "space"),
        (b"a1 X (a)(b)", "a1", "space"),
        (b"a1 X {3}x", "a1", "end the line"),
        (b"a1 X {x}", "a1", "literal"),
        (b"a1 X {}", "a1", "literal"),
        (b"a1 X ~{3}", "a1", "literal8"),
    ],
)
def test_bad_commands_and_recovery(line: bytes, tag: str | None, message: str) -> None:
    events = parse(line + b"\r\nok NOOP\r\n")
    assert len(events) == 2, events
    bad = events[0]
    assert type(bad) is BadCommand
    assert bad.tag == tag
    assert message in bad.message
    assert events[1] == Command("ok", "NOOP", [], 9)


def test_resync_skips_non_sync_literals_of_the_bad_command() -> None:
    # The error is on the first line; the client still sends the {5+} literal and the line
    # after it, which itself announces another one.
    stream = b'a1 X "\xff" {5+}\r\n)))))) {3+}\r\n\r\n\r\nok NOOP\r\n'
    events = parse(stream)
    assert [type(e) for e in events] == [BadCommand, Command]
    assert events[1] == Command("ok", "NOOP", [], 9)


def test_quoted_strings_may_hold_8_bit_octets() -> None:
    # As Dovecot takes them, and as RFC 9051 allows UTF-8 there.
    assert command(b'a1 X "caf\xc3\xa9"\r\n').args == [String(b"caf\xc3\xa9")]


def test_resync_stops_at_a_sync_literal() -> None:
    # The client waits for "+" after {5}: the next line is a new command.
    events = parse(b"a1 X \xff {5}\r\nok NOOP\r\n")
    assert [type(e) for e in events] == [BadCommand, Command]
    assert not any(isinstance(e, NeedContinuation) for e in events)


def test_error_after_a_literal() -> None:
    events = parse(b"a1 X {2}\r\nab (\r\nok NOOP\r\n")
    assert [type(e) for e in events] == [NeedContinuation, BadCommand, Command]


def test_empty_lines_are_ignored_and_bare_lf_accepted() -> None:
    events = parse(b"\r\n\na1 NOOP\na2  CHECK   a  b  \r\n")
    assert events == [
        Command("a1", "NOOP", [], 8),
        Command("a2", "CHECK", [Atom("a"), Atom("b")], 20),
    ]


def test_literal_with_bare_lf_announcement() -> None:
    assert command(b"a1 X {2}\nab\n").args == [String(b"ab", True)]


def test_reject_literal_drops_the_command() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    assert reader.feed(b"a1 APPEND INBOX {100}\r\n") == [NeedContinuation("a1", 100, "APPEND")]
    assert reader.reject_literal() == []
    assert not reader.suspended
    assert reader.feed(b"a2 NOOP\r\n") == [Command("a2", "NOOP", [], 9)]


def test_literal_decisions_out_of_turn_are_bugs() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    with pytest.raises(RuntimeError):
        reader.accept_literal()
    with pytest.raises(RuntimeError):
        reader.reject_literal()
    with pytest.raises(RuntimeError):
        reader.resume()
    with pytest.raises(RuntimeError):
        reader.expect_done()
    with pytest.raises(RuntimeError):
        reader.take_buffered()
    reader.feed(b"a1 X {1}\r\n")
    with pytest.raises(RuntimeError):
        reader.resume()


def test_data_before_the_literal_decision_is_kept() -> None:
    # A client that sends its literal without waiting for "+": kept until the decision.
    reader = CommandReader(suspend_after=SUSPENDING)
    assert reader.feed(b"a1 X {3}\r\nabc\r\na2 NOOP\r\n") == [NeedContinuation("a1", 3, "X")]
    assert reader.feed(b"a3 NOOP\r\n") == []
    assert [e.tag for e in reader.accept_literal() if isinstance(e, Command)] == ["a1", "a2", "a3"]


# --- LITERAL+ -----------------------------------------------------------------------------------


def test_literal_plus_needs_no_continuation() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.authenticated = True
    events = reader.feed(b"a1 APPEND INBOX {5+}\r\nhello {3+}\r\nabc\r\n")
    assert events == [
        Command("a1", "APPEND", [Atom("INBOX"), String(b"hello", True), String(b"abc", True)], 39)
    ]


def test_literal_plus_split_inside_the_announcement() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    events = drive(reader, [b"a1 X {1", b"0", b"+", b"}", b"\r", b"\n0123", b"456789", b"\r\n"])
    assert events == [Command("a1", "X", [String(b"0123456789", True)], 24)]


# --- limits -------------------------------------------------------------------------------------


def test_line_too_long_then_recovery() -> None:
    limits = Limits(max_line_length=100)
    events = parse(b"a1 NOOP " + b"x" * 200 + b"\r\na2 NOOP\r\n", limits)
    assert len(events) == 2
    assert isinstance(events[0], LineTooLong)
    assert events[0].tag == "a1"  # found at the start of the line although it was never parsed
    assert events[0].code == "LIMIT"
    assert events[1] == Command("a2", "NOOP", [], 9)


def test_line_exactly_at_the_limit() -> None:
    line = b"a1 X " + b"x" * 95
    assert len(line) == 100
    events = parse(line + b"\r\n", Limits(max_line_length=100))
    assert isinstance(events[0], Command)
    events = parse(line + b"y\r\n", Limits(max_line_length=100))
    assert isinstance(events[0], LineTooLong)


def test_an_endless_line_is_not_buffered() -> None:
    reader = CommandReader(Limits(max_line_length=1000), suspend_after=SUSPENDING)
    events = reader.feed(b"a1 X ")
    for _ in range(100):
        events += reader.feed(b"x" * 10_000)
        assert reader.buffered <= 1001
    assert [type(e) for e in events] == [LineTooLong]
    assert reader.buffered == 0
    assert reader.feed(b"still the same line\r\na2 NOOP\r\n") == [Command("a2", "NOOP", [], 9)]


def test_line_length_counts_every_line_of_a_command() -> None:
    limits = Limits(max_line_length=40)
    part = b"a1 X " + b"y" * 20 + b" {1+}\r\nz "  # 30 octets of text, then the literal
    events = parse(part + b"w" * 20 + b"\r\na2 NOOP\r\n", limits)
    assert isinstance(events[0], LineTooLong) and events[0].tag == "a1"
    assert events[1] == Command("a2", "NOOP", [], 9)


def test_a_long_line_that_announces_a_literal_plus() -> None:
    # The skipped line ends with {n+}: its octets are skipped too, whatever they hold.
    limits = Limits(max_line_length=50)
    stream = b"a1 X " + b"x" * 100 + b" {12+}\r\na2 NOOP\r\nxx\r\nok NOOP\r\n"
    events = parse(stream, limits)
    assert [type(e) for e in events] == [LineTooLong, Command]
    assert events[1] == Command("ok", "NOOP", [], 9)


def test_sync_literal_over_the_preauth_limit_is_refused_up_front() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    events = reader.feed(b"a1 LOGIN {9000}\r\n")
    assert events == [
        LiteralTooLarge(
            "a1", "literal of 9000 octets is too large", "TOOBIG", "max_literal_size_preauth", 9000
        )
    ]
    assert not reader.suspended
    assert reader.feed(b"a2 NOOP\r\n") == [Command("a2", "NOOP", [], 9)]


def test_literal_limit_grows_after_authentication() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.authenticated = True
    assert reader.feed(b"a1 APPEND INBOX {9000}\r\n") == [NeedContinuation("a1", 9000, "APPEND")]
    reader = CommandReader(Limits(max_literal_size=10_000), suspend_after=SUSPENDING)
    reader.authenticated = True
    events = reader.feed(b"a1 APPEND INBOX {10001}\r\n")
    assert isinstance(events[0], LiteralTooLarge) and events[0].limit == "max_literal_size"


def test_literals_of_one_command_share_the_budget() -> None:
    limits = Limits(max_literal_size_preauth=10)
    events = parse(b"a1 X {6+}\r\n123456 {5+}\r\n12345\r\na2 NOOP\r\n", limits)
    assert [type(e) for e in events] == [LiteralTooLarge, Command]
    assert events[1] == Command("a2", "NOOP", [], 9)


def test_non_sync_literal_over_the_limit_is_skipped_not_stored() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    events = reader.feed(b"a1 APPEND INBOX {1000000+}\r\n")
    assert [type(e) for e in events] == [LiteralTooLarge]
    for _ in range(100):
        assert reader.feed(b"x" * 10_000) == []
        assert reader.buffered == 0
    assert reader.feed(b"\r\na2 NOOP\r\n") == [Command("a2", "NOOP", [], 9)]


def test_a_huge_announced_literal_allocates_nothing() -> None:
    reader = CommandReader(Limits(max_literal_size=2**40), suspend_after=SUSPENDING)
    reader.authenticated = True
    tracemalloc.start()
    try:
        assert reader.feed(b"a1 APPEND INBOX {1000000000}\r\n") == [
            NeedContinuation("a1", 1_000_000_000, "APPEND")
        ]
        assert reader.accept_literal() == []
        assert reader.feed(b"x" * 1000) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_huge_announcement_without_limit_is_refused() -> None:
    events = parse(b"a1 X {99999999999999999999+}\r\na2 NOOP\r\n")
    assert isinstance(events[0], LiteralTooLarge)
    # The 20-digit literal is being skipped, so a2 is inside it: no Command yet.
    assert len(events) == 1


def test_nesting_limit() -> None:
    limits = Limits(max_depth=8)
    ok = b"a1 X " + b"(" * 8 + b")" * 8 + b"\r\n"
    assert isinstance(parse(ok, limits)[0], Command)
    deep = b"a1 X " + b"(" * 9 + b")" * 9 + b"\r\na2 NOOP\r\n"
    events = parse(deep, limits)
    assert isinstance(events[0], LimitExceeded) and events[0].limit == "max_depth"
    assert events[1] == Command("a2", "NOOP", [], 9)


def test_default_nesting_limit_keeps_recursion_shallow() -> None:
    deep = b"a1 X " + b"(" * 5000 + b")" * 5000 + b"\r\n"
    events = parse(deep)
    assert isinstance(events[0], LimitExceeded) and events[0].limit == "max_depth"


def test_token_limit() -> None:
    limits = Limits(max_tokens=5)
    assert isinstance(parse(b"a1 X a b c (d)\r\n", limits)[0], Command)
    events = parse(b"a1 X a b c (d e)\r\na2 NOOP\r\n", limits)
    assert isinstance(events[0], LimitExceeded) and events[0].limit == "max_tokens"
    assert events[1] == Command("a2", "NOOP", [], 9)


# --- modes --------------------------------------------------------------------------------------


def test_idle_done() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.authenticated = True
    assert reader.feed(b"a1 IDLE\r\n") == [Command("a1", "IDLE", [], 9)]
    assert reader.suspended
    assert reader.expect_done() == []
    assert reader.feed(b"do") == []
    assert reader.feed(b"ne\r\na2 NOOP\r\n") == [IdleDone(), Command("a2", "NOOP", [], 9)]


def test_done_sent_before_the_mode_switch_is_kept() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    assert reader.feed(b"a1 IDLE\r\nDONE\r\na2 NOOP\r\n") == [Command("a1", "IDLE", [], 9)]
    assert reader.expect_done() == [IdleDone(), Command("a2", "NOOP", [], 9)]


def test_idle_anything_but_done_is_bad_and_ends_idle() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.feed(b"a1 IDLE\r\n")
    reader.expect_done()
    assert reader.feed(b"a2 NOOP\r\n") == [BadCommand(None, "expected DONE")]
    assert reader.feed(b"a3 NOOP\r\n") == [Command("a3", "NOOP", [], 9)]


def test_idle_long_line() -> None:
    reader = CommandReader(Limits(max_line_length=10), suspend_after=SUSPENDING)
    reader.feed(b"a1 IDLE\r\n")
    reader.expect_done()
    events = reader.feed(b"x" * 50 + b" {5+}\r\na2 NOOP\r\n")
    # Not a command, so no literal: the next line is read as a command.
    assert [type(e) for e in events] == [LineTooLong, Command]
    assert isinstance(events[0], LineTooLong) and events[0].tag is None


def test_continuation_line_cancel_and_limit() -> None:
    reader = CommandReader(Limits(max_line_length=30), suspend_after=SUSPENDING)
    reader.feed(b"a1 AUTHENTICATE PLAIN\r\n")
    reader.expect_line()
    (line,) = reader.feed(b"*\r\n")
    assert isinstance(line, ContinuationLine) and line.cancelled
    reader.expect_line()
    (event,) = reader.feed(b"A" * 100 + b"\r\n")
    assert isinstance(event, LineTooLong) and event.tag is None
    assert reader.suspended
    assert reader.feed(b"a2 NOOP\r\n") == []
    assert reader.resume() == [Command("a2", "NOOP", [], 9)]


def test_starttls_leftovers_can_be_taken() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    assert reader.feed(b"a1 STARTTLS\r\na2 LOGIN evil injected\r\n") == [
        Command("a1", "STARTTLS", [], 13)
    ]
    assert reader.take_buffered() == b"a2 LOGIN evil injected\r\n"
    assert reader.resume() == []
    assert reader.feed(b"a3 NOOP\r\n") == [Command("a3", "NOOP", [], 9)]


def test_login_suspends_so_limits_change_before_the_next_command() -> None:
    reader = CommandReader(suspend_after=SUSPENDING)
    assert reader.feed(b"a1 LOGIN u p\r\na2 APPEND INBOX {9000}\r\n") == [
        Command("a1", "LOGIN", [Atom("u"), Atom("p")], 14)
    ]
    reader.authenticated = True
    assert reader.resume() == [NeedContinuation("a2", 9000, "APPEND")]


def test_custom_suspending_commands() -> None:
    reader = CommandReader(suspend_after=frozenset())
    assert len(reader.feed(b"a1 LOGIN u p\r\na2 IDLE\r\na3 NOOP\r\n")) == 3


def test_flooding_a_suspended_reader_is_fatal() -> None:
    reader = CommandReader(
        Limits(max_line_length=100, max_literal_size=100), suspend_after=SUSPENDING
    )
    reader.feed(b"a1 IDLE\r\n")
    assert reader.feed(b"x" * 200) == []
    assert reader.feed(b"x") == [Fatal("too much data sent without waiting for the server")]
    assert reader.suspended
    assert reader.feed(b"a2 NOOP\r\n") == []
    assert reader.buffered == 0
    with pytest.raises(RuntimeError):
        reader.resume()


def test_raw_size_counts_literals_and_line_ends() -> None:
    data = b"a1 X {3}\r\nabc {2+}\n12\r\n"
    assert command(data).raw_size == len(data)
