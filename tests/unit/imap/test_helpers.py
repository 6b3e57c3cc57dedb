"""The as_* helpers that interpret one argument of a command."""

from __future__ import annotations

import datetime

import pytest

from mailstore.errors import InvalidName
from mra.imap.arguments import (
    ArgumentError,
    as_astring,
    as_atom,
    as_date,
    as_date_time,
    as_flag,
    as_flag_list,
    as_list,
    as_list_mailbox,
    as_mailbox,
    as_nstring,
    as_number,
    as_sequence_set,
    as_string,
)
from mra.imap.sequence import SequenceSet
from mra.imap.values import Atom, FetchAtt, Nil, ParenList, Section, String
from tests.unit.imap._util import command


def test_as_astring() -> None:
    assert as_astring(Atom("abc")) == b"abc"
    assert as_astring(Atom("a]b")) == b"a]b"  # resp-specials are ASTRING-CHARs
    assert as_astring(Nil("nil")) == b"nil"  # NIL is a valid astring
    assert as_astring(String(b"a b")) == b"a b"
    assert as_astring(String(b"\xff", True)) == b"\xff"
    for bad in (Atom("a%"), Atom("a*"), Atom("\\Seen"), ParenList(()), FetchAtt("BODY", Section())):
        with pytest.raises(ArgumentError):
            as_astring(bad)


def test_as_string_and_nstring() -> None:
    assert as_string(String(b"x")) == b"x"
    with pytest.raises(ArgumentError):
        as_string(Atom("x"))
    assert as_nstring(Nil("NIL")) is None
    assert as_nstring(String(b"NIL")) == b"NIL"
    with pytest.raises(ArgumentError):
        as_nstring(Atom("x"))


def test_as_atom_and_list() -> None:
    assert as_atom(Atom("Flags")) == "Flags"
    assert as_atom(Nil("nil")) == "nil"
    with pytest.raises(ArgumentError):
        as_atom(String(b"x"))
    assert as_list(ParenList((Atom("a"),))) == (Atom("a"),)
    with pytest.raises(ArgumentError):
        as_list(Atom("a"))


def test_as_number() -> None:
    assert as_number(Atom("0")) == 0
    assert as_number(Atom("4294967295")) == 2**32 - 1
    assert as_number(Atom("007")) == 7
    assert as_number(Atom("9223372036854775807"), maximum=2**63 - 1) == 2**63 - 1
    for bad in ("4294967296", "-1", "1.0", "x", "", "99999999999999999999999"):
        with pytest.raises(ArgumentError):
            as_number(Atom(bad))
    with pytest.raises(ArgumentError):
        as_number(Atom("0"), nonzero=True)
    with pytest.raises(ArgumentError):
        as_number(String(b"1"))


def test_as_flag() -> None:
    assert as_flag(Atom("\\seen")) == "\\Seen"
    assert as_flag(Atom("\\DELETED")) == "\\Deleted"
    assert as_flag(Atom("$Forwarded")) == "$Forwarded"
    assert as_flag(Atom("\\Custom")) == "\\Custom"
    for bad in ("\\", "\\*", "a%", "a]", "a\\b", "\\\\Seen", "\\Recent", "\\RECENT"):
        with pytest.raises(ArgumentError):
            as_flag(Atom(bad))
    assert as_flag(Nil("NIL")) == "NIL"  # a keyword spelled NIL is an atom (RFC 3501 9)
    with pytest.raises(ArgumentError):
        as_flag(String(b"x"))
    cmd = command(b"a STORE 1 +FLAGS (\\seen \\Answered $Junk)\r\n")
    assert as_flag_list(cmd.args[2]) == ["\\Seen", "\\Answered", "$Junk"]
    assert as_flag_list(ParenList(())) == []


def test_as_mailbox() -> None:
    assert as_mailbox(Atom("inbox")) == "INBOX"
    assert as_mailbox(String(b"InBoX")) == "INBOX"
    assert as_mailbox(Atom("Entw&APw-rfe")) == "Entwürfe"
    assert as_mailbox(String(b"a b", True)) == "a b"
    assert as_mailbox(Nil("nil")) == "nil"
    assert as_mailbox(Atom("INBOX.Sent")) == "INBOX.Sent"
    with pytest.raises(ArgumentError):
        as_mailbox(String("Entwürfe".encode()))  # raw UTF-8 is not modified UTF-7
    with pytest.raises(InvalidName):
        as_mailbox(Atom("&Jjo"))
    with pytest.raises(ArgumentError):
        as_mailbox(Atom("a*"))


def test_as_list_mailbox() -> None:
    assert as_list_mailbox(Atom("%")) == "%"
    assert as_list_mailbox(Atom("~/Mail/*")) == "~/Mail/*"
    assert as_list_mailbox(String(b"")) == ""
    assert as_list_mailbox(Atom("Entw&APw-*")) == "Entwü*"
    with pytest.raises(ArgumentError):
        as_list_mailbox(ParenList(()))


def test_as_sequence_set() -> None:
    assert as_sequence_set(Atom("1:*")) == SequenceSet(((1, None),))
    with pytest.raises(ArgumentError):
        as_sequence_set(Atom("1:"))
    with pytest.raises(ArgumentError):
        as_sequence_set(String(b"1"))


def test_as_date() -> None:
    assert as_date(Atom("1-Feb-1994")) == datetime.date(1994, 2, 1)
    assert as_date(String(b"28-dec-2024")) == datetime.date(2024, 12, 28)
    for bad in ("1-Fob-1994", "31-Feb-1994", "1-Feb-94", "1 Feb 1994", "001-Feb-1994"):
        with pytest.raises(ArgumentError):
            as_date(Atom(bad))
    with pytest.raises(ArgumentError):
        as_date(ParenList(()))


def test_as_date_time() -> None:
    value = as_date_time(String(b"17-Jul-1996 02:44:25 -0700"))
    assert value == datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(-datetime.timedelta(hours=7))
    )
    assert as_date_time(String(b" 7-Jul-1996 02:44:25 +0530")).utcoffset() == datetime.timedelta(
        hours=5, minutes=30
    )
    for bad in (
        b"17-Jul-1996 02:44:25",
        b"17-Jul-1996 2:44:25 +0000",
        b"17-Jul-1996 02:44:61 +0000",
        b"17-Jul-1996 02:44:25 +0099",
        b"32-Jul-1996 02:44:25 +0000",
    ):
        with pytest.raises(ArgumentError):
            as_date_time(String(bad))
    with pytest.raises(ArgumentError):
        as_date_time(Atom("x"))
