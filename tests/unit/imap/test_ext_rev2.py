# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""IMAP4rev2 (RFC 9051) after `ENABLE IMAP4rev2`: its sample session (section 8), then RFC 9051
Appendix E ("Changes from RFC 3501 / IMAP4rev1") item by item, each either built or shown to
hold, as transcripts of a session without sockets. What UTF8=ACCEPT adds (and IMAP4rev2 shares:
UTF-8 mailbox names) is test_ext_utf8.py's.

A session that did not ENABLE IMAP4rev2 answers as before: the other tests of this directory
(and the side-by-side tests with Dovecot 2.3) are that check; `test_rev1_session_unchanged`
shows the differences side by side."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from tests.unit.imap.test_session_transcripts import Client

SAMPLE_HEADER = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev2 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
)
# 92 lines, 3028 octets: the sample's BODY says so.
SAMPLE_BODY = (
    b"".join(b"minutes of the IMAP4rev2 WG %03d\r\n" % i for i in range(91)) + b"x" * 23 + b"\r\n"
)
SAMPLE_DATE = datetime.datetime(
    1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-7))
)


def rev2(c: Client) -> Client:
    """Logged in, IMAP4rev2 enabled."""
    c.login()
    c.expect("e ENABLE IMAP4rev2\r\n", "* ENABLED IMAP4rev2", "e OK ENABLE completed")
    return c


@pytest.fixture
def r2(c: Client) -> Client:
    """IMAP4rev2 with INBOX selected (message 1 unseen, 2 seen)."""
    rev2(c).send("s SELECT INBOX\r\n")
    return c


def test_rfc9051_section8_sample_session(tmp_path: Path) -> None:
    """RFC 9051 8, "Sample IMAP4rev2 Connection", but with AUTHENTICATE PLAIN for SCRAM (whose
    nonces make every exchange differ; SCRAM-SHA-256 is tested with a real client elsewhere).
    The sample's own numbers disagree with each other (RFC822.SIZE 4286 for a 342-octet header
    and a 3028-octet body; `cac.washington.ed>` in the ENVELOPE of `...edu>`): ours follow
    from the message. Message 12 of 18 is the sample's, \\Seen."""
    c = Client(tmp_path)
    inbox = c.store.mailbox("INBOX")
    for i in range(3, 19):
        if i == 12:
            inbox.append(SAMPLE_HEADER + SAMPLE_BODY, ["\\Seen"], SAMPLE_DATE.timestamp())
        else:
            inbox.append(b"Subject: filler %d\r\n\r\nx\r\n" % i)
    assert "IMAP4rev2" in c.greeting.split("]")[0]
    c.expect(
        "A001 AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABwdw==\r\n",
        "A001 OK [CAPABILITY {any}] Logged in",
    )
    c.expect("babc ENABLE IMAP4rev2\r\n", "* ENABLED IMAP4rev2", "babc OK ENABLE completed")
    c.expect(
        "a002 select inbox\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
        '* LIST (\\HasNoChildren) "." INBOX ("OLDNAME" ("inbox"))',
        "* 18 EXISTS",
        "* OK [UIDVALIDITY {n}] UIDs valid",
        "* OK [UIDNEXT 19] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "a002 OK [READ-WRITE] Select completed",
    )
    c.expect(
        "a003 fetch 12 full\r\n",
        '* 12 FETCH (FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 09:44:25 +0000" RFC822.SIZE 3370 ENVELOPE ('
        '"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary and minutes" '
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) '
        '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) '
        '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
        '"<B27397-0100000@cac.washington.edu>") '
        'BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7bit" 3028 92))',
        "a003 OK FETCH completed",
    )
    lines = c.send("a004 fetch 12 body[header]\r\n")
    assert lines[0] == "* 12 FETCH (BODY[HEADER] {342}"
    assert "\r\n".join(lines[1:-2]) + "\r\n\r\n" == SAMPLE_HEADER.decode()
    assert lines[-2:] == [")", "a004 OK FETCH completed"]
    c.expect(
        "a005 store 12 +flags \\deleted\r\n",
        "* 12 FETCH (FLAGS (\\Deleted \\Seen))",
        "a005 OK STORE completed",
    )
    c.expect("a006 logout\r\n", "* BYE Logging out", "a006 OK Logout completed")


def test_e2_capability_and_the_extensions_folded_in(c: Client) -> None:
    """Items 2 and 27, and Appendix A: both IMAP4rev1 and IMAP4rev2 are advertised, with every
    extension IMAP4rev2 folded in (LITERAL+ is more than LITERAL-; BINARY since we also take
    APPEND literal8, Appendix B; LIST-EXTENDED for pattern lists, Appendix C) and SCRAM-SHA-256;
    ENABLE does not change the list (6.3.1), names the capability as spelled, once."""
    caps = c.greeting.split("[CAPABILITY ")[1].split("]")[0].split()
    assert caps[:2] == ["IMAP4rev1", "IMAP4rev2"]
    folded = "NAMESPACE UNSELECT UIDPLUS ESEARCH SEARCHRES ENABLE IDLE SASL-IR LIST-EXTENDED LIST-STATUS MOVE LITERAL+ BINARY SPECIAL-USE STATUS=SIZE AUTH=SCRAM-SHA-256"
    assert set(folded.split()) <= set(caps)
    c.login()
    before = c.send("a CAPABILITY\r\n")
    c.expect(
        "b ENABLE imap4REV2 IMAP4rev2 X-UNKNOWN\r\n", "* ENABLED IMAP4rev2", "b OK ENABLE completed"
    )
    c.expect("c ENABLE IMAP4rev2\r\n", "* ENABLED", "c OK ENABLE completed")
    assert c.send("d CAPABILITY\r\n")[0] == before[0]


def test_e1_number64_sizes_and_partials(r2: Client) -> None:
    """Item 1 (and Appendix D): sizes and partials are number64 (63 bits). Our messages are
    far smaller, so a partial past them is empty, as any partial past the end; LARGER and
    SMALLER take number64 in either version."""
    r2.expect(
        "a FETCH 1 BODY.PEEK[]<9223372036854775806.9223372036854775807>\r\n",
        '* 1 FETCH (BODY[]<9223372036854775806> "")',
        "a OK FETCH completed",
    )
    r2.expect(
        "b FETCH 1 BINARY.PEEK[1]<4294967296.1>\r\n",
        '* 1 FETCH (BINARY[1]<4294967296> "")',
        "b OK FETCH completed",
    )
    r2.expect(
        "c FETCH 1 BODY.PEEK[]<0.9223372036854775808>\r\n",
        "c BAD invalid partial range: the count must be 1 to 2^63-1",
    )
    r2.expect(
        "d SEARCH SMALLER 9223372036854775807 LARGER 4294967296\r\n",
        '* ESEARCH (TAG "d")',
        "d OK SEARCH completed",
    )


def test_e1_rev1_partials_stay_32_bit_and_unauthenticate_forgets_rev2(c: Client) -> None:
    """Without IMAP4rev2 the reader keeps RFC 3501's 32-bit numbers, word for word as before;
    UNAUTHENTICATE (RFC 8437) forgets IMAP4rev2 with the rest of what ENABLE turned on."""
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect(
        "a FETCH 1 BODY[]<4294967296.1>\r\n",
        "a BAD invalid partial range: the count must be 1 to 2^32-1",
    )
    c.expect(
        "b FETCH 1 BODY[]<12345678901.1>\r\n",
        "b BAD invalid partial range: expected <origin.count>",
    )
    c.expect("u UNAUTHENTICATE\r\n", "u OK UNAUTHENTICATE completed")
    rev2(c).send("s SELECT INBOX\r\n")
    c.expect(
        "c FETCH 1 BODY.PEEK[]<4294967296.1>\r\n",
        '* 1 FETCH (BODY[]<4294967296> "")',
        "c OK FETCH completed",
    )
    c.expect("u UNAUTHENTICATE\r\n", "u OK UNAUTHENTICATE completed")
    c.login()
    lines = c.send("s SELECT INBOX\r\n")
    assert "* 0 RECENT" in lines and not any(line.startswith("* LIST") for line in lines)
    c.expect(
        "d FETCH 1 BODY[]<4294967296.1>\r\n",
        "d BAD invalid partial range: the count must be 1 to 2^32-1",
    )


def test_e3_status_size_and_deleted(r2: Client) -> None:
    """Item 3: STATUS SIZE (RFC 8438) and DELETED."""
    r2.expect("a STORE 2 +FLAGS.SILENT (\\Deleted)\r\n", "a OK STORE completed")
    r2.expect(
        "b STATUS INBOX (MESSAGES SIZE DELETED)\r\n",
        "* STATUS INBOX (MESSAGES 2 DELETED 1 SIZE 138)",
        "b OK STATUS completed",
    )


def test_e4_search_answers_esearch_only(r2: Client) -> None:
    """Item 4 and 6.4.4's examples: no RETURN is RETURN (ALL); nothing found is an ESEARCH
    without data; MIN/MAX/COUNT and the UID form as with ESEARCH (RFC 4731)."""
    r2.expect(
        "A283 SEARCH RETURN () ALL\r\n",
        '* ESEARCH (TAG "A283") ALL 1:2',
        "A283 OK SEARCH completed",
    )
    r2.expect(
        'A284 SEARCH TEXT "string not in mailbox"\r\n',
        '* ESEARCH (TAG "A284")',
        "A284 OK SEARCH completed",
    )
    r2.expect("A285 SEARCH CHARSET UTF-8 TEXT {5}\r\n", "+ Ready")
    r2.expect("Hello\r\n", '* ESEARCH (TAG "A285") ALL 1', "A285 OK SEARCH completed")
    r2.expect(
        "A284 SEARCH RETURN (MIN) UNSEEN\r\n",
        '* ESEARCH (TAG "A284") MIN 1',
        "A284 OK SEARCH completed",
    )
    r2.expect(
        "A285 UID SEARCH RETURN (MIN MAX) 1:5000\r\n",
        '* ESEARCH (TAG "A285") UID MIN 1 MAX 2',
        "A285 OK UID SEARCH completed",
    )
    r2.expect(
        "A286 SEARCH RETURN (COUNT) DELETED\r\n",
        '* ESEARCH (TAG "A286") COUNT 0',
        "A286 OK SEARCH completed",
    )
    r2.expect("a UID SEARCH SEEN\r\n", '* ESEARCH (TAG "a") UID ALL 2', "a OK UID SEARCH completed")


def test_e4_searchres_dollar(r2: Client) -> None:
    """SEARCHRES folded in (item 2): SAVE alone answers nothing, `$` is the saved result."""
    r2.expect("a SEARCH RETURN (SAVE) SEEN\r\n", "a OK SEARCH completed")
    r2.expect("b FETCH $ (UID)\r\n", "* 2 FETCH (UID 2)", "b OK FETCH completed")
    r2.expect("c SEARCH $\r\n", '* ESEARCH (TAG "c") ALL 2', "c OK SEARCH completed")


def test_e5_substring_and_exact_keys(r2: Client) -> None:
    """Item 5: strings are substrings (an empty HEADER string: the field is there), a keyword
    is matched whole."""
    r2.expect("a STORE 1 +FLAGS.SILENT ($Junked)\r\n", "{any}", "{any}", "a OK STORE completed")
    r2.expect(
        'b SEARCH SUBJECT "ell" HEADER To ""\r\n',
        '* ESEARCH (TAG "b") ALL 1',
        "b OK SEARCH completed",
    )
    r2.expect("c SEARCH KEYWORD $Junk\r\n", '* ESEARCH (TAG "c")', "c OK SEARCH completed")
    r2.expect("d SEARCH KEYWORD $junked\r\n", '* ESEARCH (TAG "d") ALL 1', "d OK SEARCH completed")


def test_e6_rfc2231_continuations_decoded(c: Client) -> None:
    """Item 6: parameter value continuations (RFC 2231 3) are joined in BODYSTRUCTURE."""
    c.store.mailbox("INBOX").append(
        b'Content-Type: text/plain; name*0="long"; name*1="name.txt"\r\n\r\nx\r\n'
    )
    rev2(c).send("s SELECT INBOX\r\n")
    lines = c.send("a FETCH 3 BODYSTRUCTURE\r\n")
    assert '("name" "longname.txt" "charset" "us-ascii")' in lines[0], lines


def test_e7_e8_copyuid_for_move_and_no_target_creation(r2: Client) -> None:
    """Items 7 and 8: COPYUID for MOVE and UID MOVE alike; COPY and MOVE never create their
    target, NO [TRYCREATE] instead."""
    r2.expect("a COPY 1 Nowhere\r\n", "a NO [TRYCREATE] Mailbox does not exist")
    r2.expect("b MOVE 1 Nowhere\r\n", "b NO [TRYCREATE] Mailbox does not exist")
    r2.expect("c STATUS Nowhere (MESSAGES)\r\n", "c NO [NONEXISTENT] {any}")
    r2.expect(
        "d MOVE 1 Archive\r\n", "* OK [COPYUID {n} 1 1] Moved", "* 1 EXPUNGE", "d OK MOVE completed"
    )
    r2.expect(
        "e UID MOVE 2 Archive\r\n",
        "* OK [COPYUID {n} 2 2] Moved",
        "* 1 EXPUNGE",
        "e OK UID MOVE completed",
    )


def test_e9_closed_when_select_replaces_a_mailbox(r2: Client) -> None:
    """Item 9 (6.3.2's second example): SELECT while selected says [CLOSED] first."""
    lines = r2.send("a SELECT Drafts\r\n")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed."
    assert '* LIST (\\HasNoChildren \\Drafts) "." Drafts' in lines


def test_e10_e11_e12_select_and_examine_answers(r2: Client) -> None:
    """Items 10-12 (6.3.2, 6.3.3): a LIST line whose attributes are LIST's (children, special
    use), no RECENT and no UNSEEN code, EXAMINE alike; the name is the one the client gave
    (no OLDNAME) unless it spelled INBOX otherwise."""
    r2.expect("a CREATE Work\r\n", "a OK CREATE completed")
    r2.expect("a CREATE Work.Projects\r\n", "a OK CREATE completed")
    r2.expect(
        "b EXAMINE Work\r\n",
        "* OK [CLOSED] Previous mailbox closed.",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS ()] Read-only mailbox.",
        '* LIST (\\HasChildren) "." Work',
        "* 0 EXISTS",
        "* OK [UIDVALIDITY {n}] UIDs valid",
        "* OK [UIDNEXT 1] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "b OK [READ-ONLY] Examine completed",
    )
    lines = r2.send("c SELECT INBOX\r\n")
    assert '* LIST (\\HasNoChildren) "." INBOX' in lines
    assert not any("RECENT" in line or "UNSEEN" in line for line in lines)
    r2.expect(
        "d SELECT Nowhere\r\n", "* OK [CLOSED] Previous mailbox closed.", "d NO [NONEXISTENT] {any}"
    )


def test_e12_no_recent_anywhere(c: Client) -> None:
    """Item 12: no \\Recent flag, no RECENT response (not at SELECT, not with new mail), no
    STATUS RECENT or SEARCH NEW/RECENT (unknown, as RFC 9051 9's grammar and Dovecot 2.4);
    OLD stays and is every message. New mail still leaves new/ (as Dovecot: a rev1 session
    after it sees it not recent)."""
    rev2(c)
    c.expect("a STATUS INBOX (RECENT)\r\n", "a BAD STATUS: unknown STATUS item RECENT")
    c.expect(
        'b LIST "" INBOX RETURN (STATUS (RECENT))\r\n', "b BAD LIST: unknown STATUS item RECENT"
    )
    c.send("s SELECT INBOX\r\n")
    c.expect(
        "d FETCH 1:* FLAGS\r\n",
        "* 1 FETCH (FLAGS ())",
        "* 2 FETCH (FLAGS (\\Seen))",
        "d OK FETCH completed",
    )
    c.expect("e SEARCH RECENT\r\n", "e BAD SEARCH: unknown search key 'RECENT'")
    c.expect("f SEARCH NEW\r\n", "f BAD SEARCH: unknown search key 'NEW'")
    c.expect("g SEARCH OLD\r\n", '* ESEARCH (TAG "g") ALL 1:2', "g OK SEARCH completed")
    c.store.mailbox("INBOX").append(b"Subject: new\r\n\r\nnew\r\n")
    c.expect("h NOOP\r\n", "* 3 EXISTS", "h OK NOOP completed")
    c.expect("i FETCH 3 FLAGS\r\n", "* 3 FETCH (FLAGS ())", "i OK FETCH completed")
    c.expect(
        "j APPEND INBOX {19+}\r\nSubject: mine\r\n\r\nx\r\n",
        "* 4 EXISTS",
        "j OK [APPENDUID {n} 4] APPEND completed",
    )
    assert not c.store.mailbox("INBOX").get(3).recent


def test_e13_new_keyword_announced(r2: Client) -> None:
    """Item 13: a new keyword needs no new PERMANENTFLAGS after `\\*`; we still send FLAGS and
    PERMANENTFLAGS before the first FETCH that shows it (RFC 9051 7.3.5 FLAGS), as before."""
    r2.expect(
        "a STORE 1 +FLAGS ($Label1)\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted.",
        "* 1 FETCH (FLAGS ($Label1))",
        "a OK STORE completed",
    )


def test_e14_tagged_ext_bare_number64(r2: Client) -> None:
    """Item 14: a bare number64 in an extension's parameters is read like any atom; the
    parameter is then judged by its name (CREATE knows only USE)."""
    r2.expect(
        "a CREATE x (X-SIZE 9223372036854775807)\r\n",
        "a BAD CREATE: unknown CREATE parameter X-SIZE",
    )


def test_e15_predefined_keywords_kept(r2: Client) -> None:
    """Item 15: $MDNSent, $Forwarded, $Junk, $NotJunk, $Phishing are kept by APPEND, COPY and
    MOVE and found by SEARCH."""
    kws = "$MDNSent $Forwarded $Junk $NotJunk $Phishing"
    lines = r2.send(f"a APPEND Archive ({kws}) {{14+}}\r\nSubject: k\r\n\r\n\r\n")
    assert lines[-1].startswith("a OK [APPENDUID ")
    assert r2.send("b SELECT Archive\r\n")[-1] == "b OK [READ-WRITE] Select completed"
    r2.expect("c COPY 1 Trash\r\n", "c OK [COPYUID {n} 1 1] COPY completed")
    r2.expect("d MOVE 1 Junk\r\n", "{any}", "* 1 EXPUNGE", "d OK MOVE completed")
    for box in ("Trash", "Junk"):
        r2.send(f"e SELECT {box}\r\n")
        r2.expect(
            "f FETCH 1 FLAGS\r\n",
            "* 1 FETCH (FLAGS ($Forwarded $Junk $MDNSent $NotJunk $Phishing))",
            "f OK FETCH completed",
        )
        r2.expect(
            "g SEARCH KEYWORD $Phishing KEYWORD $NotJunk\r\n",
            '* ESEARCH (TAG "g") ALL 1',
            "g OK SEARCH completed",
        )


def test_e16_utf8_names_and_headers(r2: Client) -> None:
    """Item 16: mailbox names are UTF-8 in IMAP4rev2 (no modified UTF-7: `&` is a character),
    and headers may be; test_ext_utf8.py has the rest (UTF8=ACCEPT shares the names)."""
    r2.expect('a CREATE "Entwürfe & Notizen"\r\n', "a OK CREATE completed")
    r2.expect(
        'b LIST "" "Entw*"\r\n',
        '* LIST (\\HasNoChildren) "." "Entwürfe & Notizen"',
        "b OK LIST completed",
    )
    lines = r2.send('c SELECT "Entwürfe & Notizen"\r\n')
    assert '* LIST (\\HasNoChildren) "." "Entwürfe & Notizen"' in lines
    message = "Subject: Grüße\r\n\r\nx\r\n".encode()
    append = (
        'd APPEND "Entwürfe & Notizen" '.encode() + b"{%d+}\r\n" % len(message) + message + b"\r\n"
    )
    r2.expect(append, "* 1 EXISTS", "d OK [APPENDUID {n} 1] APPEND completed")
    r2.expect('e SEARCH SUBJECT "grüße"\r\n', '* ESEARCH (TAG "e") ALL 1', "e OK SEARCH completed")


def test_literal_minus_is_within_literal_plus(r2: Client) -> None:
    """Item 2's LITERAL- (RFC 7888): IMAP4rev2 allows non-synchronizing literals of up to 4096
    octets; we offer LITERAL+, which allows any size (up to the reader's limits), to IMAP4rev2
    sessions as to the others."""
    for size in (4096, 4097, 60_000):
        message = b"Subject: big\r\n\r\n" + b"x" * (size - 17)
        lines = r2.send(b"a APPEND Archive {%d+}\r\n" % size + message + b"\r\n")
        assert lines[-1].startswith("a OK [APPENDUID "), lines


def test_close_unselect_namespace_binary(r2: Client) -> None:
    """RFC 9051 6.4.1-2: CLOSE expunges without EXPUNGE responses, UNSELECT does not expunge,
    both go back to the authenticated state; 6.3.10 NAMESPACE; Appendix B: FETCH BINARY."""
    r2.expect(
        "a FETCH 2 BINARY.PEEK[1]\r\n",
        "* 2 FETCH (BINARY[1] {10}",
        "Numbers.",
        ")",
        "a OK FETCH completed",
    )
    r2.expect(
        "b FETCH 2 BINARY.SIZE[1]\r\n", "* 2 FETCH (BINARY.SIZE[1] 10)", "b OK FETCH completed"
    )
    r2.expect("c STORE 2 +FLAGS.SILENT (\\Deleted)\r\n", "c OK STORE completed")
    r2.expect("d UNSELECT\r\n", "d OK Unselect completed")
    r2.expect("e FETCH 1 FLAGS\r\n", "e BAD FETCH is not valid without a selected mailbox")
    r2.expect(
        "f STATUS INBOX (MESSAGES DELETED)\r\n",
        "* STATUS INBOX (MESSAGES 2 DELETED 1)",
        "f OK STATUS completed",
    )
    r2.send("g SELECT INBOX\r\n")
    r2.expect("h CLOSE\r\n", "h OK Close completed")
    r2.expect(
        "i STATUS INBOX (MESSAGES DELETED)\r\n",
        "* STATUS INBOX (MESSAGES 1 DELETED 0)",
        "i OK STATUS completed",
    )
    r2.expect("j NAMESPACE\r\n", '* NAMESPACE (("" ".")) NIL NIL', "j OK NAMESPACE completed")


def test_e17_check_still_answers_like_noop(r2: Client) -> None:
    """Item 17: CHECK is gone from IMAP4rev2 ("Clients should use NOOP"); a server need not
    refuse it, and like Dovecot 2.4 we still answer it, with the updates NOOP would give."""
    r2.store.mailbox("INBOX").append(b"Subject: n\r\n\r\nn\r\n")
    r2.expect("a CHECK\r\n", "* 3 EXISTS", "a OK CHECK completed")
    r2.expect("b NOOP\r\n", "b OK NOOP completed")


def test_e18_rfc822_items_still_answered(r2: Client) -> None:
    """Item 18: RFC822, RFC822.HEADER, RFC822.TEXT are deprecated, still answered."""
    lines = r2.send("a FETCH 2 (RFC822.HEADER RFC822.TEXT)\r\n")
    assert lines[0] == "* 2 FETCH (RFC822.HEADER {45}" and lines[-1] == "a OK FETCH completed"


def test_e19_list_subscribed_and_lsub(rev2_subscribed: Client) -> None:
    """Item 19 and 6.3.9.8's examples: LIST (SUBSCRIBED) with \\Subscribed and \\NonExistent
    is the way; the deprecated LSUB still answers."""
    c = rev2_subscribed
    c.expect(
        'a LIST (SUBSCRIBED) "" "Fruit*"\r\n',
        '* LIST (\\Subscribed) "." Fruit.Banana',
        '* LIST (\\Subscribed \\NonExistent) "." Fruit.Peach',
        "a OK LIST completed",
    )
    c.expect(
        'b LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n',
        '* LIST (\\Subscribed \\HasNoChildren) "." INBOX',
        '* LIST (\\NonExistent \\HasChildren) "." Fruit (CHILDINFO ("SUBSCRIBED"))',
        '* LIST (\\Subscribed \\HasNoChildren) "." Trash',
        "b OK LIST completed",
    )
    c.expect(
        'c LSUB "" "Fruit.*"\r\n',
        '* LSUB () "." Fruit.Banana',
        '* LSUB () "." Fruit.Peach',
        "c OK LSUB completed",
    )
    c.expect(
        'd LIST "" Fruit.%\r\n',
        '* LIST (\\HasNoChildren) "." Fruit.Apple',
        '* LIST (\\HasNoChildren) "." Fruit.Banana',
        "d OK LIST completed",
    )


@pytest.fixture
def rev2_subscribed(tmp_path: Path) -> Client:
    c = Client(
        tmp_path,
        config='[mailboxes]\n"Trash" = { special_use = "\\\\Trash", auto = "subscribe" }\n',
    )
    for name in ("Fruit.Apple", "Fruit.Banana"):
        c.store.create_folder(name)
    rev2(c)
    for name in ("INBOX", "Fruit.Banana", "Fruit.Peach"):
        c.expect(f"s SUBSCRIBE {name}\r\n", "s OK SUBSCRIBE completed")
    return c


def test_e20_idle_in_rev2(r2: Client) -> None:
    """Item 20: IDLE may also report what is not about the selected mailbox (it need not);
    what it reports about it has no RECENT and names UIDs."""
    r2.expect("a IDLE\r\n", "+ idling")
    r2.store.mailbox("INBOX").append(b"Subject: n\r\n\r\nn\r\n")
    assert r2._text(r2.session.mailbox_changed()) == "* 3 EXISTS\r\n"
    r2.store.mailbox("INBOX").store_flags([1], "add", ["\\Flagged"])
    assert r2._text(r2.session.mailbox_changed()) == "* 1 FETCH (UID 1 FLAGS (\\Flagged))\r\n"
    r2.expect("DONE\r\n", "a OK IDLE terminated")


def test_e21_unsolicited_fetch_has_uid(r2: Client) -> None:
    """Item 21: a flag change made elsewhere arrives as FETCH with the UID; the FETCH that
    answers the client's own STORE is solicited, as in the sample session."""
    r2.store.mailbox("INBOX").store_flags([2], "add", ["\\Answered"])
    r2.expect("a NOOP\r\n", "* 2 FETCH (UID 2 FLAGS (\\Answered \\Seen))", "a OK NOOP completed")
    r2.expect("b STORE 1 +FLAGS (\\Seen)\r\n", "* 1 FETCH (FLAGS (\\Seen))", "b OK STORE completed")
    r2.expect(
        "c FETCH 1 BODY[TEXT]\r\n",
        "* 1 FETCH (BODY[TEXT] {11}",
        "Hi Alice!",
        ")",
        "c OK FETCH completed",
    )


def test_e22_to_e30_what_the_server_says(c: Client) -> None:
    """Items 22-30 are about clients, TLS and IANA, or allow what we need not do: response
    codes a client does not know it ignores (22); text may be empty (23) or UTF-8 (24), ours
    stays 7-bit and never empty; no ALERT and no PREAUTH (26: the greeting is OK); SCRAM-SHA-256
    is offered (27, see test_e2); the autologout timer restarts on input (28: mra.net.adapter,
    test_any_command_resets_the_autologout_timer); closing (30) is unchanged."""
    assert c.greeting.startswith("* OK [CAPABILITY ") and "ALERT" not in c.greeting
    rev2(c)
    c.expect('a CREATE "Grüße"\r\n', "a OK CREATE completed")
    c.expect('b CREATE "Grüße"\r\n', "b NO [ALREADYEXISTS] mailbox Gr??e already exists")


def test_rev1_session_unchanged(tmp_path: Path) -> None:
    """The same mailbox to a session that did not ENABLE IMAP4rev2: RECENT, UNSEEN, \\Recent,
    SEARCH, unsolicited FETCH without UID, names in modified UTF-7, all as before."""
    c = Client(tmp_path)
    c.store.create_folder("Grüße")
    c.login()
    c.expect(
        "s SELECT INBOX\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
        "* 2 EXISTS",
        "* 1 RECENT",
        "* OK [UNSEEN 1] First unseen.",
        "* OK [UIDVALIDITY {n}] UIDs valid",
        "* OK [UIDNEXT 3] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "s OK [READ-WRITE] Select completed",
    )
    c.expect("a SEARCH RECENT\r\n", "* SEARCH 1", "a OK SEARCH completed")
    c.store.mailbox("INBOX").store_flags([1], "add", ["\\Answered"])
    c.expect("b NOOP\r\n", "* 1 FETCH (FLAGS (\\Answered \\Recent))", "b OK NOOP completed")
    c.expect('c LIST "" Gr*\r\n', '* LIST (\\HasNoChildren) "." Gr&APwA3w-e', "c OK LIST completed")


def test_any_command_resets_the_autologout_timer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 28 (RFC 9051 5.4): "any command received from the client resets the autologout
    timer". The real adapter, with Twisted's deterministic clock for the reactor's timers:
    a client that sends a NOOP every 50 s outlives the 60 s timer of the not authenticated
    state; then silent, it is told BYE 60 s after its last command, not before (all within
    the 180 s login deadline, which says the same BYE)."""
    from twisted.internet import task
    from twisted.internet.testing import StringTransport

    from mra.imap.session import PREAUTH_TIMEOUT
    from mra.net import adapter

    clock = task.Clock()
    monkeypatch.setattr(adapter, "reactor", clock)
    c = Client(tmp_path)
    proto = adapter.SessionProtocol(lambda _proto: c.session)
    transport = StringTransport()
    proto.makeConnection(transport)
    for i in range(2):
        clock.advance(PREAUTH_TIMEOUT - 10)
        proto.dataReceived(b"n%d NOOP\r\n" % i)
        assert transport.value().endswith(b"n%d OK NOOP completed\r\n" % i)
    clock.advance(PREAUTH_TIMEOUT - 1)  # t = 159 s, the last command at 100 s
    assert transport.value().endswith(b"n1 OK NOOP completed\r\n")
    clock.advance(2)
    assert transport.value().endswith(b"* BYE Disconnected for inactivity.\r\n")
    assert clock.seconds() < adapter.LimitsConfig().login_timeout


def test_readme_example(c: Client) -> None:
    """README's "IMAP4rev2 and UTF-8" session, as written."""
    from tests.unit.imap.test_ext_mailboxes import _blocks, _readme_section

    (session,) = _blocks(_readme_section("#### IMAP4rev2 and UTF-8"), "imap")
    exchange: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("C: "):
            exchange.append((line[3:], []))
        elif line.startswith("S: "):
            exchange[-1][1].append(line[3:])
    assert len(exchange) == 4
    c.login()
    for command, answer in exchange:
        c.expect(command + "\r\n", *answer)
