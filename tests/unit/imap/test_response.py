"""The response writer: quoting, codes, lines, store errors; everything reads back."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstore.errors import (
    AlreadyExists,
    ErrorKind,
    MailError,
    NoQuota,
    NotFound,
)
from mra.imap import response as r
from mra.imap.arguments import as_astring, as_mailbox, as_nstring
from mra.imap.events import BadCommand, LineTooLong, LiteralTooLarge
from mra.imap.values import FetchAtt, Nil, String, Value
from tests.unit.imap._util import command

# --- values -------------------------------------------------------------------------------------


def test_string_forms() -> None:
    assert r.string(b"") == b'""'
    assert r.string(b"hello world") == b'"hello world"'
    assert r.string(b'say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'
    assert r.string(b"two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert r.string(b"a\nb") == b"{3}\r\na\nb"
    assert r.string("caf\u00e9") == b"{5}\r\ncaf\xc3\xa9"
    assert r.string(b"nul\x00") == b"{4}\r\nnul\x00"
    assert r.string(b"x" * r.QUOTED_MAX) == b'"' + b"x" * r.QUOTED_MAX + b'"'
    assert r.string(b"x" * (r.QUOTED_MAX + 1)).startswith(b"{1025}\r\n")


def test_astring_nstring_quoted_literal() -> None:
    assert r.astring(b"INBOX") == b"INBOX"
    assert r.astring(b"a]b") == b"a]b"
    assert r.astring(b"") == b'""'
    assert r.astring(b"a b") == b'"a b"'
    assert r.astring(b"a%") == b'"a%"'
    assert r.astring(b"nil") == b'"nil"'  # never confused with nil
    assert r.nstring(None) == b"NIL"
    assert r.nstring(b"NIL") == b'"NIL"'
    assert r.quoted(b"a") == b'"a"'
    with pytest.raises(ValueError):
        r.quoted(b"a\r\n")
    assert r.literal(b"ab") == b"{2}\r\nab"
    assert r.number(0) == b"0"
    with pytest.raises(ValueError):
        r.number(-1)


def test_flag_list_and_mailbox() -> None:
    assert r.flag_list(["\\Seen", "$Forwarded"]) == b"(\\Seen $Forwarded)"
    assert r.flag_list([]) == b"()"
    assert r.flag_list(["\\*"]) == b"(\\*)"
    for bad in ("a b", "a]", "\\", "", "caf\u00e9", "a(b"):
        with pytest.raises(ValueError):
            r.flag_list([bad])
    assert r.mailbox("inbox") == b"INBOX"
    assert r.mailbox("Entwürfe") == b"Entw&APw-rfe"
    assert r.mailbox("Sent Items") == b'"Sent Items"'
    assert r.mailbox("NIL") == b'"NIL"'


def test_date_time() -> None:
    tz = datetime.timezone(-datetime.timedelta(hours=7))
    assert r.date_time(datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=tz)) == (
        b'"17-Jul-1996 02:44:25 -0700"'
    )
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    assert r.date_time(datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz)) == (
        b'" 2-Jan-2024 03:04:05 +0530"'
    )
    assert r.date_time(datetime.datetime(2024, 1, 2)) == b'" 2-Jan-2024 00:00:00 +0000"'


@pytest.mark.parametrize(
    ("request_text", "key"),
    [
        (b"BODY[]", b"BODY[]"),
        (b"BODY.PEEK[]<0.100>", b"BODY[]<0>"),
        (b"body.peek[1.2.mime]", b"BODY[1.2.MIME]"),
        (b"BODY[TEXT]<5.10>", b"BODY[TEXT]<5>"),
        (b"BODY[HEADER.FIELDS (Date From)]", b"BODY[HEADER.FIELDS (Date From)]"),
        (b"BODY[1.HEADER.FIELDS.NOT (X)]", b"BODY[1.HEADER.FIELDS.NOT (X)]"),
        (b'BODY[HEADER.FIELDS ("a\\"b")]', b'BODY[HEADER.FIELDS ("a\\"b")]'),
        (b"BINARY.PEEK[1]", b"BINARY[1]"),
        (b"BINARY.SIZE[1]", b"BINARY.SIZE[1]"),
    ],
)
def test_section_key(request_text: bytes, key: bytes) -> None:
    att = command(b"a FETCH 1 " + request_text + b"\r\n").args[1]
    assert isinstance(att, FetchAtt)
    assert r.section_key(att) == key


# --- round trips through the reader --------------------------------------------------------------


def _read_back(fragment: bytes) -> Value:
    return command(b"t X " + fragment + b"\r\n").args[0]


@given(st.binary(max_size=2000))
def test_any_bytes_string_reads_back(data: bytes) -> None:
    value = _read_back(r.string(data))
    assert isinstance(value, String) and value.value == data


@given(st.binary(max_size=100))
def test_any_bytes_astring_and_nstring_read_back(data: bytes) -> None:
    value = _read_back(r.astring(data))
    assert as_astring(value) == data
    value = _read_back(r.nstring(data))
    assert as_nstring(value) == data


def test_nil_reads_back() -> None:
    assert isinstance(_read_back(r.nstring(None)), Nil)


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_mailbox_name_reads_back(name: str) -> None:
    expected = "INBOX" if name.isascii() and name.upper() == "INBOX" else name
    assert as_mailbox(_read_back(r.mailbox(name))) == expected


# --- codes and lines ------------------------------------------------------------------------------


def test_simple_codes() -> None:
    assert r.Code.ALERT.render() == b"[ALERT]"
    assert r.Code.READ_ONLY.render() == b"[READ-ONLY]"
    assert r.Code.READ_WRITE.render() == b"[READ-WRITE]"
    names = (
        "TRYCREATE NONEXISTENT ALREADYEXISTS AUTHENTICATIONFAILED PRIVACYREQUIRED OVERQUOTA "
        "CANNOT SERVERBUG LIMIT INUSE UNAVAILABLE NOPERM CORRUPTION CLIENTBUG EXPUNGEISSUED "
        "CONTACTADMIN EXPIRED AUTHORIZATIONFAILED TOOBIG UIDNOTSTICKY CLOSED PARSE"
    )
    for name in names.split():
        assert getattr(r.Code, name).render() == b"[" + name.encode() + b"]"


def test_codes_with_data() -> None:
    assert r.Code.capability(["IMAP4rev1", "LITERAL+", "AUTH=PLAIN"]).render() == (
        b"[CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN]"
    )
    assert r.Code.permanentflags(["\\Deleted", "\\Seen", "\\*"]).render() == (
        b"[PERMANENTFLAGS (\\Deleted \\Seen \\*)]"
    )
    assert r.Code.uidnext(4392).render() == b"[UIDNEXT 4392]"
    assert r.Code.uidvalidity(3857529045).render() == b"[UIDVALIDITY 3857529045]"
    assert r.Code.unseen(12).render() == b"[UNSEEN 12]"
    assert r.Code.appenduid(38505, 3955).render() == b"[APPENDUID 38505 3955]"
    assert r.Code.appenduid(38505, [1, 2, 3]).render() == b"[APPENDUID 38505 1:3]"
    assert r.Code.copyuid(38505, [304, 319, 320, 321], [3956, 3957, 3958, 3959]).render() == (
        b"[COPYUID 38505 304,319:321 3956:3959]"
    )
    assert r.Code.badcharset(["UTF-8", "US-ASCII"]).render() == b"[BADCHARSET (UTF-8 US-ASCII)]"
    assert r.Code.badcharset().render() == b"[BADCHARSET]"
    with pytest.raises(ValueError):
        r.Code.copyuid(1, [1, 2], [3])
    with pytest.raises(ValueError):
        r.Code.capability(["AUTH PLAIN"])


def test_status_lines() -> None:
    assert r.tagged("a1", "OK", "LOGIN completed") == b"a1 OK LOGIN completed\r\n"
    assert r.tagged("a2", "OK", "SELECT completed", r.Code.READ_WRITE) == (
        b"a2 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert r.untagged_status("OK", "Ready", r.Code.capability(["IMAP4rev1"])) == (
        b"* OK [CAPABILITY IMAP4rev1] Ready\r\n"
    )
    assert r.untagged_status("BYE", "Logging out") == b"* BYE Logging out\r\n"
    assert r.bad(None, "what?") == b"* BAD what?\r\n"
    assert r.bad("x", "what?") == b"x BAD what?\r\n"
    with pytest.raises(ValueError):
        r.tagged("a1", "MAYBE", "x")
    with pytest.raises(ValueError):
        r.tagged("a b", "OK", "x")
    with pytest.raises(ValueError):
        r.tagged("+", "OK", "x")


def test_text_is_sanitised() -> None:
    line = r.tagged("a1", "NO", "evil\r\n* OK injected\x00 caf\u00e9")
    assert line == b"a1 NO evil  * OK injected  caf?\r\n"
    assert line.count(b"\r\n") == 1
    assert r.tagged("a1", "OK", "") == b"a1 OK -\r\n"
    assert len(r.tagged("a1", "NO", "x" * 100_000)) < r.TEXT_MAX + 20


def test_bad_command_answer() -> None:
    assert r.bad_command(BadCommand("a1", "missing ')'")) == b"a1 BAD missing ')'\r\n"
    assert r.bad_command(BadCommand(None, "missing or invalid tag")) == (
        b"* BAD missing or invalid tag\r\n"
    )
    event = LineTooLong("a1", "command line too long", "LIMIT", "max_line_length")
    assert r.bad_command(event) == b"a1 BAD [LIMIT] command line too long\r\n"
    too_large = LiteralTooLarge("a1", "too large", "TOOBIG", "max_literal_size", 10)
    assert r.bad_command(too_large) == b"a1 BAD [TOOBIG] too large\r\n"


def test_continuations() -> None:
    assert r.continuation() == b"+ Ready\r\n"
    assert r.continuation("idling") == b"+ idling\r\n"
    assert r.continuation_data(b"") == b"+ \r\n"
    assert r.continuation_data(b"\x00user") == b"+ AHVzZXI=\r\n"


def test_data_responses() -> None:
    assert r.capability_response(["IMAP4rev1", "IDLE"]) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert r.flags_response(["\\Seen", "\\Deleted"]) == b"* FLAGS (\\Seen \\Deleted)\r\n"
    assert r.exists(172) == b"* 172 EXISTS\r\n"
    assert r.recent(1) == b"* 1 RECENT\r\n"
    assert r.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert r.search_response([2, 84, 882]) == b"* SEARCH 2 84 882\r\n"
    assert r.search_response([]) == b"* SEARCH\r\n"
    assert r.fetch_response(12, [(b"UID", b"4"), (b"FLAGS", r.flag_list(["\\Seen"]))]) == (
        b"* 12 FETCH (UID 4 FLAGS (\\Seen))\r\n"
    )
    assert r.fetch_response(1, [(b"BODY[]", r.nstring(b"a\r\n"))]) == (
        b"* 1 FETCH (BODY[] {3}\r\na\r\n)\r\n"
    )
    assert r.list_response(["\\HasNoChildren"], ".", "Entwürfe") == (
        b'* LIST (\\HasNoChildren) "." Entw&APw-rfe\r\n'
    )
    assert r.list_response(["\\Noselect"], None, "", command="LSUB") == (
        b'* LSUB (\\Noselect) NIL ""\r\n'
    )
    assert r.status_response("blurdybloop", {"MESSAGES": 231, "UIDNEXT": 44292}) == (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    )
    assert r.untagged(b"OK", b"[UNSEEN 3]", b"x") == b"* OK [UNSEEN 3] x\r\n"


# --- store errors ---------------------------------------------------------------------------------

KINDS = {
    ErrorKind.NOT_FOUND: "NONEXISTENT",
    ErrorKind.EXISTS: "ALREADYEXISTS",
    ErrorKind.INVALID_NAME: "CANNOT",
    ErrorKind.NO_QUOTA: "OVERQUOTA",
    ErrorKind.TEMPORARY: "UNAVAILABLE",
    ErrorKind.IN_USE: "INUSE",
    ErrorKind.PERMISSION: "NOPERM",
    ErrorKind.LIMIT: "LIMIT",
    ErrorKind.CORRUPT: "CORRUPTION",
    ErrorKind.NOT_POSSIBLE: "CANNOT",
}


def test_every_error_kind_has_a_code() -> None:
    declared = {v for k, v in vars(ErrorKind).items() if k.isupper()}
    assert declared == set(KINDS)
    for kind, code in KINDS.items():
        assert r.error_code(kind) == r.Code(code)
    assert r.error_code("something-new") == r.Code.SERVERBUG


def test_store_error() -> None:
    assert r.store_error("a1", NotFound("no such mailbox")) == (
        b"a1 NO [NONEXISTENT] no such mailbox\r\n"
    )
    assert r.store_error("a1", NotFound("no such mailbox"), trycreate=True) == (
        b"a1 NO [TRYCREATE] no such mailbox\r\n"
    )
    assert r.store_error("a1", AlreadyExists("exists"), trycreate=True) == (
        b"a1 NO [ALREADYEXISTS] exists\r\n"
    )
    assert r.store_error("a1", NoQuota("over quota\nreally")) == (
        b"a1 NO [OVERQUOTA] over quota really\r\n"
    )
    assert r.store_error("a1", MailError("disk on fire")) == b"a1 NO [UNAVAILABLE] disk on fire\r\n"
