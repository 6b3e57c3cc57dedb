"""The ManageSieve reader (mra/managesieve/reader.py): syntax, literals, limits, resync."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mra.imap.limits import LiteralPool
from mra.managesieve.reader import (
    SASL,
    Atom,
    Bad,
    Busy,
    Command,
    CommandReader,
    Event,
    Fatal,
    ReaderLimits,
    SaslResponse,
    ScriptTooLarge,
    String,
)


def events(reader: CommandReader, data: bytes) -> list[Event]:
    reader.feed(data)
    out = []
    while (event := reader.next_event()) is not None:
        out.append(event)
    return out


def read(data: bytes, limits: ReaderLimits | None = None, **kw: object) -> list[Event]:
    reader = CommandReader(limits or ReaderLimits(), **kw)  # type: ignore[arg-type]
    reader.authenticated = True
    return events(reader, data)


def test_commands_with_quoted_strings_literals_and_numbers() -> None:
    got = read(
        b'HAVESPACE "my\\"script" 999\r\n'
        b'PUTSCRIPT "a" {5+}\r\nkeep;\r\n'
        b"putscript {1}\r\nb {0+}\r\n\r\n"
        b'RENAMESCRIPT {3+}\r\nold "new"\r\n'
        b"NOOP\n"
    )
    assert got == [
        Command("HAVESPACE", (String(b'my"script'), Atom("999"))),
        Command("PUTSCRIPT", (String(b"a"), String(b"keep;", literal=True))),
        Command("PUTSCRIPT", (String(b"b", literal=True), String(b"", literal=True))),
        Command("RENAMESCRIPT", (String(b"old", literal=True), String(b"new"))),
        Command("NOOP", ()),
    ]


@given(st.integers(min_value=1, max_value=40))
def test_any_split_of_the_input_reads_the_same(step: int) -> None:
    data = b'PUTSCRIPT "a" {12+}\r\nkeep;\r\nstop;\r\nLISTSCRIPTS\r\nGETSCRIPT {1+}\r\na\r\n'
    reader = CommandReader(ReaderLimits())
    reader.authenticated = True
    got: list[Event] = []
    for i in range(0, len(data), step):
        got += events(reader, data[i : i + step])
    assert got == read(data)
    assert len(got) == 3


def test_literal_octets_are_never_read_as_commands() -> None:
    got = read(b'PUTSCRIPT "x" {15+}\r\nLOGOUT\r\nNOOP\r\nx\r\nNOOP\r\n')
    assert got == [
        Command("PUTSCRIPT", (String(b"x"), String(b"LOGOUT\r\nNOOP\r\nx", literal=True))),
        Command("NOOP", ()),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'NOOP "unterminated\r\n', "Invalid quoted string."),
        (b'NOOP "bad \\escape"\r\n', "Invalid quoted string."),
        (b'NOOP "nul\x00"\r\n', "Invalid quoted string."),
        (b'"NOOP"\r\n', "Expected a command name."),
        (b'NOOP "a""b"\r\n', "Missing space between arguments."),
        (b"NOOP (x)\r\n", "Invalid characters in atom."),
        (b"NOOP \xc3\xa9\r\n", "Invalid characters in atom."),
        (b"NOOP {5+} x\r\n", "Invalid literal."),
    ],
)
def test_syntax_errors_are_bad_and_reading_goes_on(line: bytes, message: str) -> None:
    got = read(line + b"NOOP\r\n")
    assert [type(e) for e in got] == [Bad, Command]
    assert isinstance(got[0], Bad) and got[0].message == message


def test_a_bad_command_skips_the_literals_it_announced() -> None:
    # The literal's octets would be commands if the reader lost count of them.
    got = read(b'NOOP "a""b" {8+}\r\nLOGOUT\r\n {6+}\r\nLOGOUT\r\nNOOP\r\n')
    assert [type(e) for e in got] == [Bad, Command]
    assert isinstance(got[1], Command) and got[1].name == "NOOP"


def test_attack_over_long_line_is_refused_and_the_next_command_read() -> None:
    limits = ReaderLimits(max_line_length=1024)
    got = read(b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\n", limits)
    assert got == [Bad("", "Line too long."), Command("NOOP", ())]


def test_attack_over_long_line_that_ends_with_a_literal_skips_it() -> None:
    limits = ReaderLimits(max_line_length=1024)
    data = b'NOOP "' + b"x" * 5000 + b'" {6+}\r\nLOGOUT\r\nNOOP\r\n'
    reader = CommandReader(limits)
    got = []
    for i in range(0, len(data), 100):  # the long line arrives in pieces
        got += events(reader, data[i : i + 100])
    assert got == [Bad("", "Line too long."), Command("NOOP", ())]


def test_attack_over_long_line_holds_no_more_than_the_limit() -> None:
    reader = CommandReader(ReaderLimits(max_line_length=1024))
    for _ in range(1000):
        events(reader, b"x" * 4096)  # 4 MB without a line end
    assert len(reader._buf) <= 1024 + 4096


def test_lines_of_one_command_count_together() -> None:
    limits = ReaderLimits(max_line_length=64)
    line = b'RENAMESCRIPT {1+}\r\na "' + b"y" * 60 + b'"\r\n'
    assert read(line, limits) == [Bad("RENAMESCRIPT", "Line too long.")]


def test_empty_lines_between_commands_are_ignored() -> None:
    limits = ReaderLimits(max_line_length=64)
    assert read(b"\r\n" * 1000 + b"NOOP\r\n", limits) == [Command("NOOP", ())]


def test_attack_literal_over_the_string_limit_is_fatal() -> None:
    reader = CommandReader(ReaderLimits(max_string_size=100))
    got = events(reader, b"NOOP {101+}\r\n" + b"x" * 101 + b"\r\nNOOP\r\n")
    assert got == [Fatal("Literal too large.")]
    assert events(reader, b"NOOP\r\n") == []  # the reader stops


def test_attack_script_before_login_is_just_a_string() -> None:
    reader = CommandReader(ReaderLimits(max_string_size=100))
    assert events(reader, b'PUTSCRIPT "a" {5000+}\r\n') == [Fatal("Literal too large.")]


def test_attack_script_over_the_limit_is_skipped_not_kept() -> None:
    limits = ReaderLimits(max_script_size=1000)
    reader = CommandReader(limits)
    reader.authenticated = True
    got = events(reader, b'PUTSCRIPT "a" {100000000+}\r\n')
    for _ in range(100):
        got += events(reader, b"x" * 1_000_000)
        assert len(reader._buf) == 0 and reader._chunks == []  # counted and dropped
    got += events(reader, b"\r\nCHECKSCRIPT {1001}\r\n" + b"y" * 1001 + b"\r\nNOOP\r\n")
    assert got == [
        ScriptTooLarge("PUTSCRIPT", 1000),
        ScriptTooLarge("CHECKSCRIPT", 1000),
        Command("NOOP", ()),
    ]


def test_scripts_are_reserved_in_the_pool_and_given_back() -> None:
    pool = LiteralPool(100)
    reader = CommandReader(ReaderLimits(), pool)
    reader.authenticated = True
    got = events(reader, b'PUTSCRIPT "a" {60+}\r\n')
    assert got == [] and pool.held == 60  # reserved at the announcement
    got = events(reader, b"x" * 60 + b'\r\nPUTSCRIPT "b" {60+}\r\n' + b"y" * 60 + b"\r\n")
    assert got[0] == Command("PUTSCRIPT", (String(b"a"), String(b"x" * 60, literal=True)), 60)
    assert got[1] == Busy("PUTSCRIPT")  # 120 > 100: skipped
    pool.release(60)  # the session does this when the first command is done
    assert pool.held == 0


def test_a_script_given_up_gives_its_reservation_back() -> None:
    pool = LiteralPool(1000)
    reader = CommandReader(ReaderLimits(), pool)
    reader.authenticated = True
    events(reader, b'PUTSCRIPT "a" {60+}\r\n' + b"x" * 10)
    assert pool.held == 60
    reader.close()  # the connection is gone mid-literal
    assert pool.held == 0
    reader = CommandReader(ReaderLimits(), pool)
    reader.authenticated = True
    got = events(reader, b'PUTSCRIPT "a" {2+}\r\nxx "junk\r\n')  # an error after the script
    assert got == [Bad("PUTSCRIPT", "Invalid quoted string.")] and pool.held == 0


def test_sasl_mode_reads_one_string() -> None:
    reader = CommandReader(ReaderLimits())
    reader.mode = SASL
    assert events(reader, b'"abc"\r\n') == [SaslResponse(String(b"abc"))]
    assert events(reader, b"{3+}\r\nxyz\r\n") == [SaslResponse(String(b"xyz", literal=True))]
    assert events(reader, b'""\r\n') == [SaslResponse(String(b""))]
    assert events(reader, b"abc\r\n") == [SaslResponse(None)]
    assert events(reader, b"\r\n") == [SaslResponse(None)]
    assert events(reader, b'"a" "b"\r\n') == [SaslResponse(None)]


def test_the_reader_parses_nothing_ahead_of_the_session() -> None:
    reader = CommandReader(ReaderLimits())
    reader.feed(b'AUTHENTICATE "PLAIN"\r\n"dGVzdA=="\r\nNOOP\r\n')
    assert reader.next_event() == Command("AUTHENTICATE", (String(b"PLAIN"),))
    reader.mode = SASL  # what the session does on sending a challenge
    assert reader.next_event() == SaslResponse(String(b"dGVzdA=="))
    reader.mode = "command"
    assert reader.next_event() == Command("NOOP", ())


def test_starttls_drops_what_was_pipelined() -> None:
    reader = CommandReader(ReaderLimits())
    reader.feed(b"STARTTLS\r\nLOGOUT\r\n")
    assert reader.next_event() == Command("STARTTLS", ())
    assert reader.take_buffered() == b"LOGOUT\r\n"
    assert reader.next_event() is None


def test_attack_megabytes_of_pipelined_commands_are_read_in_linear_time() -> None:
    """Each command used to slice the rest of the buffer off (a copy of it): 4 MB of pipelined
    NOOPs were 700,000 copies of up to 4 MB. In a child with a generous bound, to say only
    that it ended (it takes a second or two; the quadratic reader took hours)."""
    import subprocess
    import sys

    code = (
        "from mra.managesieve.reader import CommandReader, ReaderLimits\n"
        "r = CommandReader(ReaderLimits())\n"
        "r.feed(b'NOOP\\r\\n' * 700_000)\n"
        "n = 0\n"
        "while r.next_event() is not None:\n"
        "    n += 1\n"
        "assert n == 700_000, n\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
