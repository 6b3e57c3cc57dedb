"""The SEARCH family of extensions, with their RFCs' examples as transcripts: ESEARCH (RFC 4731),
SEARCHRES (RFC 5182), WITHIN (RFC 5032) and SAVEDATE (RFC 8514); SEARCH in every charset Python
knows and I18NLEVEL=1 are in test_ext_search_i18n.py. The same commands are asked of Dovecot in
tests/interop/test_imap_dovecot_search.py.

The RFCs' examples name messages of big mailboxes (`* SEARCH 2 84 882`); each mailbox here is
built so that the example's answer is what it must be, numbers and all.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import pytest

from mailstore.store import MailStore
from mra.imap.search import MessageContext, parse_search
from tests.unit.imap.test_session_transcripts import Client

UTC = datetime.UTC
DAY = 24 * 3600
FEB_1994 = datetime.datetime(1994, 2, 1, 12, tzinfo=UTC).timestamp()


def at(year: int, month: int, day: int) -> float:
    return datetime.datetime(year, month, day, 12, tzinfo=UTC).timestamp()


def message(n: int, sender: str = "Jones <jones@example.test>", body: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: message {n}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body or f'body {n}'}\r\n"
    ).encode()


def fill(c: Client, messages: list[tuple[bytes, list[str], float | None]]) -> None:
    """INBOX holds these messages instead of the Client's two, from UID 3 on."""
    box = c.store.mailbox("INBOX")
    box.store_flags([1, 2], "add", ["\\Deleted"])
    box.expunge([1, 2])
    for raw, flags, date in messages:
        box.append(raw, flags, date)


def next_uid_is(c: Client, uid: int) -> None:
    """Another writer moved the folder's next UID on (the `N` of dovecot-uidlist)."""
    path = Path(c.store.mailbox("INBOX").path) / "dovecot-uidlist"
    header, _, records = path.read_text().partition("\n")
    fields = [f if not f.startswith("N") else f"N{uid}" for f in header.split()]
    tmp = path.with_suffix(".new")
    tmp.write_text(" ".join(fields) + "\n" + records)
    os.rename(tmp, path)


def pipeline(c: Client, data: str | bytes) -> list[str]:
    """Send pipelined commands: after a command that blocked (a Call, a Stream), the adapter
    feeds b"" for the session to go on with the rest, as mra/net does."""
    lines = c.send(data)
    for _ in range(20):
        more = c.send(b"")
        if not more:
            return lines
        lines += more
    raise AssertionError("the session never settled")


def select(c: Client) -> None:
    c.login()
    assert c.send("s SELECT INBOX\r\n")[-1] == "s OK [READ-WRITE] Select completed"


# Twenty messages: 1-3 seen; 2, 5, 10, 11 and 15 flagged, 5 from Smith, 15 from 1990; 6-20
# deleted. So FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith" is 2, 10 and 11, as in RFC 4731.
def rfc4731_box(c: Client) -> None:
    box = []
    for n in range(1, 21):
        flags = []
        if n <= 3:
            flags.append("\\Seen")
        if n in (2, 5, 10, 11, 15):
            flags.append("\\Flagged")
        if n >= 6:
            flags.append("\\Deleted")
        sender = "Smith <smith@example.test>" if n == 5 else "Jones <jones@example.test>"
        box.append((message(n, sender), flags, at(1990, 1, 1) if n == 15 else at(2006, 1, n)))
    fill(c, box)


@pytest.fixture
def esearch(c: Client) -> Client:
    rfc4731_box(c)
    select(c)
    return c


def test_capabilities(c: Client) -> None:
    c.login()
    line = c.send("a CAPABILITY\r\n")[0]
    for cap in ("ESEARCH", "SEARCHRES", "WITHIN", "SAVEDATE", "I18NLEVEL=1"):
        assert f" {cap}" in line


# ---------------------------------------------------------------------------------------------
# ESEARCH (RFC 4731)


def test_rfc4731_examples(esearch: Client) -> None:
    c = esearch
    c.expect(
        'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        '* ESEARCH (TAG "A282") MIN 2 COUNT 3',
        "A282 OK SEARCH completed",
    )
    c.expect(
        'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        '* ESEARCH (TAG "A283") ALL 2,10:11',
        "A283 OK SEARCH completed",
    )
    c.expect(
        "A284 SEARCH RETURN (MIN) UNSEEN\r\n",
        '* ESEARCH (TAG "A284") MIN 4',
        "A284 OK SEARCH completed",
    )
    c.expect(
        "A286 SEARCH RETURN (COUNT) DELETED\r\n",
        '* ESEARCH (TAG "A286") COUNT 15',
        "A286 OK SEARCH completed",
    )


def test_rfc4731_uid_example(c: Client) -> None:
    """`UID SEARCH RETURN (MIN MAX) 1:5000`: messages 1 to 5000, which have UIDs 7 and 3800
    (a search key beyond the last message is no error: it has nothing more to match)."""
    fill(c, [])
    for uid in (7, 3800):
        next_uid_is(c, uid)
        MailStore(c.store.root).mailbox("INBOX").append(message(uid))
    select(c)
    c.expect(
        "A285 UID SEARCH RETURN (MIN MAX) 1:5000\r\n",
        '* ESEARCH (TAG "A285") UID MIN 7 MAX 3800',
        "A285 OK UID SEARCH completed",
    )
    c.expect(
        "b UID SEARCH RETURN (ALL COUNT) ALL\r\n",
        '* ESEARCH (TAG "b") UID ALL 7,3800 COUNT 2',
        "b OK UID SEARCH completed",
    )
    c.expect(
        "c SEARCH RETURN (ALL MAX) 2:3\r\n",
        '* ESEARCH (TAG "c") MAX 2 ALL 2',
        "c OK SEARCH completed",
    )


def test_esearch_with_nothing_found(esearch: Client) -> None:
    """RFC 4731 3.1: no MIN, MAX or ALL when nothing matched, COUNT 0, the ESEARCH still."""
    c = esearch
    c.expect(
        "a SEARCH RETURN (MIN MAX ALL) KEYWORD nothing\r\n",
        '* ESEARCH (TAG "a")',
        "a OK SEARCH completed",
    )
    c.expect(
        "b UID SEARCH RETURN (MIN MAX ALL COUNT) KEYWORD nothing\r\n",
        '* ESEARCH (TAG "b") UID COUNT 0',
        "b OK UID SEARCH completed",
    )
    c.expect(
        "c SEARCH RETURN () KEYWORD nothing\r\n", '* ESEARCH (TAG "c")', "c OK SEARCH completed"
    )


def test_esearch_options_and_errors(esearch: Client) -> None:
    c = esearch
    c.expect(
        "a search return (min max count all) seen\r\n",
        '* ESEARCH (TAG "a") MIN 1 MAX 3 ALL 1:3 COUNT 3',
        "a OK SEARCH completed",
    )
    c.expect(
        "b SEARCH RETURN (MAX MIN MAX) DELETED\r\n",
        '* ESEARCH (TAG "b") MIN 6 MAX 20',
        "b OK SEARCH completed",
    )
    c.expect("c SEARCH RETURN (FOO) ALL\r\n", "c BAD SEARCH: unknown SEARCH return option FOO")
    c.expect('d SEARCH RETURN ("MIN") ALL\r\n', "d BAD SEARCH: SEARCH return options must be atoms")
    c.expect("e SEARCH RETURN ALL\r\n", "e BAD SEARCH: unknown search key 'RETURN'")
    c.expect("f SEARCH RETURN (MIN)\r\n", "f BAD SEARCH: empty search program")
    c.expect(
        "g SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT message\r\n",
        '* ESEARCH (TAG "g") COUNT 20',
        "g OK SEARCH completed",
    )
    c.expect(
        'h SEARCH RETURN (ALL) OR FROM smith BODY "body 1"\r\n',
        '* ESEARCH (TAG "h") ALL 1,5,10:19',
        "h OK SEARCH completed",
    )


# ---------------------------------------------------------------------------------------------
# SEARCHRES (RFC 5182)


def fetched(lines: list[str]) -> list[str]:
    """The `* n FETCH (UID u` beginnings of a FETCH answer (RFC822.HEADER spans lines)."""
    return [" ".join(line.split()[:5]) for line in lines if " FETCH (" in line]


def test_rfc5182_examples_1_and_2(esearch: Client) -> None:
    c = esearch
    c.expect(
        'A282 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        "A282 OK SEARCH completed",
    )
    lines = c.send("A283 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n")
    assert fetched(lines) == ["* 2 FETCH (UID 4", "* 10 FETCH (UID 12", "* 11 FETCH (UID 13"]
    assert lines[-1] == "A283 OK FETCH completed"
    # Example 2: the two pipelined, in one packet.
    lines = pipeline(
        c,
        'A284 SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n'
        "A285 FETCH $ (UID INTERNALDATE FLAGS RFC822.HEADER)\r\n",
    )
    assert lines[0] == "A284 OK SEARCH completed"
    assert fetched(lines) == ["* 2 FETCH (UID 4", "* 10 FETCH (UID 12", "* 11 FETCH (UID 13"]
    assert lines[-1] == "A285 OK FETCH completed"


def test_rfc5182_examples_3_and_4(esearch: Client) -> None:
    c = esearch
    c.expect(
        'A300 SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM "Smith"\r\n',
        "A300 OK SEARCH completed",
    )
    # $ is 1-4 and 6-14, 16-20, UIDs 2 more; messages 10 on are an octet or two longer.
    size = len(message(10))
    c.expect(
        f"A301 UID SEARCH UID $ SMALLER {size}\r\n",
        "* SEARCH 3 4 5 6 8 9 10 11",
        "A301 OK UID SEARCH completed",
    )
    c.expect(
        f"A302 UID SEARCH $ SMALLER {size}\r\n",
        "* SEARCH 3 4 5 6 8 9 10 11",
        "A302 OK UID SEARCH completed",
    )
    # Example 4: $ OR'ed with a set, and 8-bit TEXT.
    body = "Grüße".encode()
    c.send("x STORE 20 +FLAGS.SILENT (\\Seen)\r\n")
    fill_text = message(21, body="Grüße aus Köln")
    MailStore(c.store.root).mailbox("INBOX").append(fill_text)
    c.expect("y NOOP\r\n", "* 21 EXISTS", "* {n} RECENT", "y OK NOOP completed")
    c.expect(
        b"P283 SEARCH CHARSET UTF-8 (OR $ 1,15:21) TEXT {%d+}\r\n%s\r\n" % (len(body), body),
        "* SEARCH 21",
        "P283 OK SEARCH completed",
    )
    c.expect(
        "P284 SEARCH CHARSET UTF-8 (OR $ 1,15:21) TEXT jones\r\n",
        "* SEARCH " + " ".join(str(n) for n in range(1, 22) if n != 5),
        "P284 OK SEARCH completed",
    )
    c.expect("P285 SEARCH $ KEYWORD nothing\r\n", "* SEARCH", "P285 OK SEARCH completed")


def test_rfc5182_example_5_a_failed_search(esearch: Client) -> None:
    """A SAVE search answered NO empties $ (2.1). Example 5 shows a search without SAVE doing
    it, against 2.1's own rule ("a SEARCH command with no SAVE result option that caused the
    server to return NO tagged response" MUST NOT change it): we keep 2.1, as Dovecot does."""
    c = esearch
    c.expect(
        'B282 SEARCH RETURN (SAVE) SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        "B282 OK SEARCH completed",
    )
    c.expect(
        "B283 SEARCH CHARSET X-KOI8-Q (OR $ 1,15:20) TEXT {4+}\r\nXXXX\r\n",
        "B283 NO [BADCHARSET (UTF-8 US-ASCII {any})] X-KOI8-Q is not a charset this server knows",
    )
    c.expect(
        "B284 SEARCH RETURN (COUNT) $\r\n",
        '* ESEARCH (TAG "B284") COUNT 18',
        "B284 OK SEARCH completed",
    )
    c.expect(
        "B285 SEARCH RETURN (SAVE) CHARSET X-KOI8-Q (OR $ 1,15:20) TEXT {4+}\r\nXXXX\r\n",
        "B285 NO [BADCHARSET (UTF-8 US-ASCII {any})] {any}",
    )
    c.expect(
        "B286 SEARCH RETURN (COUNT) $\r\n",
        '* ESEARCH (TAG "B286") COUNT 0',
        "B286 OK SEARCH completed",
    )
    # BAD leaves $ as it was, SAVE or not.
    c.expect("B287 SEARCH RETURN (SAVE) 2:3\r\n", "B287 OK SEARCH completed")
    c.expect(
        "B288 SEARCH RETURN (SAVE) NONSENSE\r\n", "B288 BAD SEARCH: unknown search key 'NONSENSE'"
    )
    c.expect(
        "B289 SEARCH RETURN (SAVE) SENTON 31-Feb-2020\r\n",
        "B289 BAD SEARCH: invalid date '31-Feb-2020'",
    )
    c.expect("B290 SEARCH $\r\n", "* SEARCH 2 3", "B290 OK SEARCH completed")


def test_rfc5182_example_6_an_empty_result_is_valid(esearch: Client) -> None:
    c = esearch
    c.send('a CREATE "Other Messages"\r\n')
    lines = pipeline(
        c,
        'E282 SEARCH RETURN (SAVE) SINCE 28-Oct-2006 NOT FROM "Eric"\r\n'
        'E283 COPY $ "Other Messages"\r\n',
    )
    assert lines == ["E282 OK SEARCH completed", "E283 OK COPY completed"]
    c.expect("E284 FETCH $ FLAGS\r\n", "E284 OK FETCH completed")
    c.expect("E285 UID EXPUNGE $\r\n", "E285 OK UID EXPUNGE completed")
    c.expect(
        'E286 STATUS "Other Messages" (MESSAGES)\r\n',
        '* STATUS "Other Messages" (MESSAGES 0)',
        "E286 OK STATUS completed",
    )


def test_rfc5182_examples_7_to_9(esearch: Client) -> None:
    c = esearch
    c.send("a CREATE Junk\r\n")
    c.send("b STORE 7:8 +FLAGS.SILENT ($Junk)\r\n")
    lines = pipeline(
        c,
        "F282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n"
        "F283 COPY $ Junk\r\n"
        "F284 STORE $ +FLAGS.Silent (\\Deleted)\r\n",
    )
    assert (
        lines
        == [
            "F282 OK SEARCH completed",
            lines[1],
            "F284 OK STORE completed",
        ]
        and lines[1].startswith("F283 OK [COPYUID ")
        and lines[1].endswith(" 9:10 1:2] COPY completed")
    )
    lines = pipeline(
        c,
        "G282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n"
        'G283 SEARCH RETURN (ALL) SINCE 28-Oct-2005 FROM "Jones"\r\n',
    )
    assert lines == [
        "G282 OK SEARCH completed",
        '* ESEARCH (TAG "G283") ALL 1:4,6:14,16:20',
        "G283 OK SEARCH completed",
    ]
    lines = pipeline(
        c,
        "H282 SEARCH RETURN (SAVE) KEYWORD $Junk\r\n"
        'H283 SEARCH RETURN (SAVE) SINCE 28-Oct-2005 FROM "Smith"\r\n'
        "H284 SEARCH $\r\n",
    )
    assert lines == [
        "H282 OK SEARCH completed",
        "H283 OK SEARCH completed",
        "* SEARCH 5",
        "H284 OK SEARCH completed",
    ]


def test_rfc5182_example_10_save_with_min_max(esearch: Client) -> None:
    """2.4: SAVE with MIN and/or MAX only saves those; with ALL or COUNT, everything."""
    c = esearch
    program = 'SINCE 12-Feb-2005 NOT FROM "Smith" DELETED'  # 6-14, 16-20
    c.expect(
        f"C282 SEARCH RETURN (ALL) {program}\r\n",
        '* ESEARCH (TAG "C282") ALL 6:14,16:20',
        "C282 OK SEARCH completed",
    )
    c.expect("C282a SEARCH $\r\n", "* SEARCH", "C282a OK SEARCH completed")
    c.expect(
        f"C283 SEARCH RETURN (ALL SAVE) {program}\r\n",
        '* ESEARCH (TAG "C283") ALL 6:14,16:20',
        "C283 OK SEARCH completed",
    )
    c.expect(
        "C283a SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C283a") ALL 6:14,16:20',
        "C283a OK SEARCH completed",
    )
    c.expect(
        f"C284 SEARCH RETURN (SAVE MIN) {program}\r\n",
        '* ESEARCH (TAG "C284") MIN 6',
        "C284 OK SEARCH completed",
    )
    c.expect(
        "C284a SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C284a") ALL 6',
        "C284a OK SEARCH completed",
    )
    c.expect(
        f"C285 SEARCH RETURN (MAX SAVE MIN) {program}\r\n",
        '* ESEARCH (TAG "C285") MIN 6 MAX 20',
        "C285 OK SEARCH completed",
    )
    c.expect(
        "C285a SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C285a") ALL 6,20',
        "C285a OK SEARCH completed",
    )
    c.expect(
        f"C286 SEARCH RETURN (MAX SAVE MIN COUNT) {program}\r\n",
        '* ESEARCH (TAG "C286") MIN 6 MAX 20 COUNT 14',
        "C286 OK SEARCH completed",
    )
    c.expect(
        "C286a SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C286a") ALL 6:14,16:20',
        "C286a OK SEARCH completed",
    )
    c.expect(
        f"C287 SEARCH RETURN (ALL SAVE MIN) {program}\r\n",
        '* ESEARCH (TAG "C287") MIN 6 ALL 6:14,16:20',
        "C287 OK SEARCH completed",
    )
    c.expect(
        "C287a SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C287a") ALL 6:14,16:20',
        "C287a OK SEARCH completed",
    )
    c.expect(
        f"C288 SEARCH RETURN (SAVE MAX) {program}\r\n",
        '* ESEARCH (TAG "C288") MAX 20',
        "C288 OK SEARCH completed",
    )
    c.expect(
        "C288a UID SEARCH RETURN (ALL) $\r\n",
        '* ESEARCH (TAG "C288a") UID ALL 22',
        "C288a OK UID SEARCH completed",
    )
    c.expect(
        "C289 UID SEARCH RETURN (SAVE MIN MAX) KEYWORD nothing\r\n",
        '* ESEARCH (TAG "C289") UID',
        "C289 OK UID SEARCH completed",
    )
    c.expect(
        "C289a SEARCH RETURN (COUNT) $\r\n",
        '* ESEARCH (TAG "C289a") COUNT 0',
        "C289a OK SEARCH completed",
    )


def test_saved_result_is_uids_and_loses_expunged_messages(esearch: Client) -> None:
    """2.1: an expunged message leaves $; $ names messages, so their numbers follow."""
    c = esearch
    c.expect("a UID SEARCH RETURN (SAVE) UID 4,5,12:13\r\n", "a OK UID SEARCH completed")
    c.expect("a2 STORE 3 +FLAGS.SILENT (\\Deleted)\r\n", "a2 OK STORE completed")
    c.expect(
        "b FETCH $ UID\r\n",
        "* 2 FETCH (UID 4)",
        "* 3 FETCH (UID 5)",
        "* 10 FETCH (UID 12)",
        "* 11 FETCH (UID 13)",
        "b OK FETCH completed",
    )
    c.expect(
        "c UID EXPUNGE 3,5,12\r\n", "* 10 EXPUNGE", "* 3 EXPUNGE", "c OK UID EXPUNGE completed"
    )
    c.expect("d FETCH $ UID\r\n", "* 2 FETCH (UID 4)", "* 9 FETCH (UID 13)", "d OK FETCH completed")
    c.expect(
        "e UID FETCH $ UID\r\n",
        "* 2 FETCH (UID 4)",
        "* 9 FETCH (UID 13)",
        "e OK UID FETCH completed",
    )
    c.expect("f SEARCH $\r\n", "* SEARCH 2 9", "f OK SEARCH completed")
    c.expect("g UID SEARCH UID $\r\n", "* SEARCH 4 13", "g OK UID SEARCH completed")
    c.expect(
        "h STORE $ +FLAGS (\\Answered)\r\n",
        "* 2 FETCH (FLAGS (\\Answered \\Flagged \\Seen))",
        "* 9 FETCH (FLAGS (\\Answered \\Deleted \\Flagged))",
        "h OK STORE completed",
    )
    c.expect("i UID EXPUNGE $\r\n", "* 9 EXPUNGE", "i OK UID EXPUNGE completed")
    c.expect("j SEARCH RETURN (ALL) $\r\n", '* ESEARCH (TAG "j") ALL 2', "j OK SEARCH completed")
    c.send("k CREATE Moved\r\n")
    c.expect(
        "l MOVE $ Moved\r\n", "* OK [COPYUID {n} 4 1] Moved", "* 2 EXPUNGE", "l OK MOVE completed"
    )
    c.expect("m FETCH $ UID\r\n", "m OK FETCH completed")


def test_saved_result_is_forgotten_by_select_examine_and_close(esearch: Client) -> None:
    c = esearch
    for leave in ("SELECT INBOX", "EXAMINE INBOX", "CLOSE", "UNSELECT"):
        c.expect("a SEARCH RETURN (SAVE) SEEN\r\n", "a OK SEARCH completed")
        c.expect("b SEARCH $\r\n", "* SEARCH 1 2 3", "b OK SEARCH completed")
        c.send(f"c {leave}\r\n")
        c.send("d SELECT INBOX\r\n")
        c.expect("e SEARCH $\r\n", "* SEARCH", "e OK SEARCH completed")


def test_dollar_syntax(esearch: Client) -> None:
    """`$` stands alone: it is a sequence-set of its own, not an element of one."""
    c = esearch
    c.expect("a FETCH $,1 UID\r\n", "a BAD FETCH: invalid sequence set '$,1'")
    c.expect("b SEARCH $,1\r\n", "b BAD SEARCH: unknown search key '$,1'")
    c.expect("c UID SEARCH UID $:4\r\n", "c BAD UID SEARCH: UID: invalid sequence set")
    c.expect("d FETCH $ UID\r\n", "d OK FETCH completed")  # nothing saved yet: empty, valid
    c.expect('e FETCH "$" UID\r\n', "e BAD FETCH: expected a sequence set, got string")


# ---------------------------------------------------------------------------------------------
# WITHIN (RFC 5032)


def test_rfc5032_example(c: Client) -> None:
    now = time.time()
    ages = [1, 2 * DAY, 4 * DAY, 100, 6 * DAY, 3 * DAY - 60]
    fill(
        c, [(message(n), ["\\Seen"] if n == 4 else [], now - age) for n, age in enumerate(ages, 1)]
    )
    select(c)
    c.expect("a1 SEARCH UNSEEN YOUNGER 259200\r\n", "* SEARCH 1 2 6", "a1 OK SEARCH completed")
    c.expect("a2 SEARCH OLDER 259200\r\n", "* SEARCH 3 5", "a2 OK SEARCH completed")
    c.expect(
        "a3 UID SEARCH older 3600 younger 432000\r\n",
        "* SEARCH 4 5 8",
        "a3 OK UID SEARCH completed",
    )
    c.expect("a4 SEARCH OLDER 0\r\n", "a4 BAD SEARCH: OLDER: invalid interval")
    c.expect("a5 SEARCH YOUNGER 4294967296\r\n", "a5 BAD SEARCH: YOUNGER: invalid interval")
    c.expect("a6 SEARCH YOUNGER -5\r\n", "a6 BAD SEARCH: YOUNGER: invalid interval")
    c.expect("a7 SEARCH YOUNGER\r\n", "a7 BAD SEARCH: YOUNGER needs an argument")
    c.expect("a8 SEARCH YOUNGER 4294967295\r\n", "* SEARCH 1 2 3 4 5 6", "a8 OK SEARCH completed")


def test_within_counts_whole_seconds_and_matches_the_boundary() -> None:
    """2: OLDER matches an INTERNALDATE "less recent than or equal to" now - interval,
    YOUNGER one "more recent than or equal to" it: at the boundary, both."""
    now = 1_700_000_000.75

    def ctx(internaldate: float) -> MessageContext:
        return MessageContext(1, 1, set(), set(), internaldate, 1, lambda: b"")

    def older(n: int, date: float) -> bool:
        return parse_search([b"OLDER", str(n).encode()], now=now).matches(ctx(date))

    def younger(n: int, date: float) -> bool:
        return parse_search([b"YOUNGER", str(n).encode()], now=now).matches(ctx(date))

    boundary = 1_700_000_000 - 60
    assert older(60, boundary) and younger(60, boundary)
    assert older(60, boundary + 0.9) and younger(60, boundary + 0.9)  # the same second
    assert not older(60, boundary + 1) and younger(60, boundary + 1)
    assert older(60, boundary - 1) and not younger(60, boundary - 1)


# ---------------------------------------------------------------------------------------------
# SAVEDATE (RFC 8514)


def test_rfc8514_fetch_and_search(esearch: Client) -> None:
    c = esearch
    box = c.store.mailbox("INBOX")
    box.sync()
    msg = box.get(3)
    ctime = os.stat(os.path.join(box.path, msg.subdir, msg.name)).st_ctime
    when = datetime.datetime.fromtimestamp(ctime, UTC)  # the day space-padded, as INTERNALDATE
    stamp = f"{when.day:2d}-" + when.strftime("%b-%Y %H:%M:%S +0000")
    c.expect("a FETCH 1 (SAVEDATE)\r\n", f'* 1 FETCH (SAVEDATE "{stamp}")', "a OK FETCH completed")
    c.expect(
        "b UID FETCH 3 SAVEDATE\r\n",
        f'* 1 FETCH (UID 3 SAVEDATE "{stamp}")',
        "b OK UID FETCH completed",
    )
    everything = "* SEARCH " + " ".join(str(n) for n in range(1, 21))
    c.expect("c SEARCH SAVEDATESUPPORTED\r\n", everything, "c OK SEARCH completed")
    today = datetime.date.today()  # the save dates are the files' ctimes: now, in local time
    day = f"{today.day}-{today:%b}-{today.year}"
    tomorrow = today + datetime.timedelta(days=1)
    next_day = f"{tomorrow.day}-{tomorrow:%b}-{tomorrow.year}"
    c.expect(f"d SEARCH SAVEDON {day}\r\n", everything, "d OK SEARCH completed")
    c.expect(f"e SEARCH SAVEDSINCE {day}\r\n", everything, "e OK SEARCH completed")
    c.expect(f"f SEARCH SAVEDBEFORE {next_day}\r\n", everything, "f OK SEARCH completed")
    c.expect(f"g SEARCH SAVEDBEFORE {day}\r\n", "* SEARCH", "g OK SEARCH completed")
    c.expect(f"h SEARCH SAVEDSINCE {next_day}\r\n", "* SEARCH", "h OK SEARCH completed")
    c.expect(
        "i SEARCH RETURN (COUNT) SAVEDON 1-Jan-2006 SEEN\r\n",
        '* ESEARCH (TAG "i") COUNT 0',
        "i OK SEARCH completed",
    )
    c.expect("j SEARCH SAVEDON 1-Jan-2006-\r\n", "j BAD SEARCH: invalid date '1-Jan-2006-'")


def test_savedate_is_the_ctime_dovecot_reads(tmp_path: Path) -> None:
    """Without its index Dovecot takes a Maildir message's save date from the file's ctime,
    which a rename (a flag change) moves: so do we, to agree on the same files."""
    store = MailStore(str(tmp_path / "mail"))
    box = store.mailbox("INBOX")
    uid = box.append(b"Subject: x\r\n\r\nx\r\n", internaldate=at(2001, 1, 1))
    box.sync()
    msg = box.get(uid)
    path = os.path.join(box.path, msg.subdir, msg.name)
    os.utime(path, (at(2001, 1, 1), at(2001, 1, 1)))  # the mtime: INTERNALDATE, not this
    assert box.save_date(msg) == os.stat(path).st_ctime != box.internaldate(msg)
    ctx = MessageContext(
        1, 1, set(), set(), at(2001, 1, 1), 1, lambda: b"", savedate=at(2020, 5, 5)
    )
    assert parse_search([b"SAVEDON", b"5-May-2020"]).matches(ctx, UTC)
    assert not parse_search([b"ON", b"5-May-2020"]).matches(ctx, UTC)
    no_savedate = MessageContext(1, 1, set(), set(), at(2001, 1, 1), 1, lambda: b"")
    for key in (b"SAVEDATESUPPORTED", b"SAVEDSINCE", b"SAVEDBEFORE", b"SAVEDON"):
        program = [key] if key == b"SAVEDATESUPPORTED" else [key, b"1-Jan-2001"]
        assert not parse_search(program).matches(no_savedate, UTC)


def test_search_keys_past_the_last_message_match_nothing() -> None:
    """As Dovecot: a sequence-set search key names messages to match, not to act on. Numbers
    past the last message match nothing (FETCH still answers BAD); 0 is still an error."""
    from mra.imap.sequence import SequenceError, SequenceSet

    def seqs(text: str, count: int) -> list[int]:
        return [n for r in SequenceSet.parse(text).resolve_seqs(count, strict=False) for n in r]

    assert seqs("2:10", 3) == [2, 3]
    assert seqs("10", 3) == []
    assert seqs("1,7,3", 3) == [1, 3]
    assert seqs("5:*", 2) == [2]  # `*` is the last message (RFC 3501 9): 2:5
    assert seqs("*", 0) == seqs("1:*", 0) == []
    for text, count in (("0", 3), ("0:2", 3)):
        with pytest.raises(SequenceError):
            seqs(text, count)
    with pytest.raises(SequenceError):
        SequenceSet.parse("10").resolve_seqs(3)
