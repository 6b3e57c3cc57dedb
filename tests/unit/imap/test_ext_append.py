# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) with URL-PARTIAL (RFC 5550), BINARY (RFC 3516)
and the literal budget of APPEND (SECURITY.md 2), as transcripts: client lines in, server lines
out, against a session on a real store. Each RFC's examples come first, as the RFC prints them
(with what our server answers differently said where it does)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore.config import load_config
from mra.auth.glue import AuthService
from mra.context import Connection, Services
from mra.imap import binary, imapurl
from mra.imap import response as r
from mra.imap.commands import SUSPENDING
from mra.imap.events import Command, Fatal
from mra.imap.limits import Limits
from mra.imap.parser import CommandReader
from mra.imap.session import ImapSession
from mra.session import Send, run_blocking
from tests.unit.imap.test_session_transcripts import Client

ROOT = "mail/example.test/alice"
CRLF = "\r\n"


def client(
    tmp_path: Path,
    *,
    mail: str = "",
    quota: str = "",
    folders: dict[str, tuple[int, int]] | None = None,
) -> Client:
    """A session as the `c` fixture's, with more `[mail]` settings, a quota, and folders
    whose UIDVALIDITY and next UID are given (the RFC examples name them)."""
    for folder, (uidvalidity, next_uid) in (folders or {}).items():
        preset(tmp_path / ROOT, folder, uidvalidity, next_uid)
    c = Client(tmp_path)
    if mail or quota:
        (tmp_path / "passwd").write_text(f"alice@example.test:{{PLAIN}}pw::::::{quota}\n")
        with open(tmp_path / "mra.toml", "a") as f:
            f.write(mail)
        config = load_config(str(tmp_path / "mra.toml"))
        services = Services(config, AuthService(config))
        c.session = ImapSession(Connection("imap", "127.0.0.1"), services)
        c.greeting = c._text(c.session.greeting())
    return c


def preset(root: Path, folder: str, uidvalidity: int, next_uid: int) -> None:
    path = root if folder == "INBOX" else root / f".{folder}"
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    if folder != "INBOX":
        (path / "maildirfolder").touch()
    (path / "dovecot-uidlist").write_text(f"3 V{uidvalidity} N{next_uid}\n")


def next_uid(root: Path, folder: str, uid: int) -> None:
    """Make `uid` the folder's next UID, as a long-lived folder's would be: the uidlist's
    header rewritten through a new file, as writers do."""
    path = (root if folder == "INBOX" else root / f".{folder}") / "dovecot-uidlist"
    head, _, records = path.read_text().partition("\n")
    fields = [f"N{uid}" if f.startswith("N") else f for f in head.split()]
    tmp = path.with_name("uidlist.new")
    tmp.write_text(" ".join(fields) + "\n" + records)
    os.rename(tmp, path)


def select(c: Client, name: str) -> None:
    lines = c.send(f"s SELECT {name}\r\n")
    assert lines[-1] == "s OK [READ-WRITE] Select completed", lines


def raw(c: Client, data: bytes) -> bytes:
    """What the server answers to `data`, as octets (binary data stays as it is)."""
    done = run_blocking(c.session.data_received(data))
    return b"".join(o.data for o in done if isinstance(o, Send))


def body(c: Client, uid: int, folder: str = "INBOX") -> bytes:
    box = c.store.mailbox(folder)
    box.sync()
    return box.read_message(uid)


def tmp_files(tmp_path: Path, folder: str = "INBOX") -> list[str]:
    root = tmp_path / ROOT
    return os.listdir((root if folder == "INBOX" else root / f".{folder}") / "tmp")


def test_the_extensions_are_offered(c: Client) -> None:
    c.login()
    (capability, _) = c.send("a CAPABILITY\r\n")
    assert {"MULTIAPPEND", "CATENATE", "URL-PARTIAL", "BINARY"} <= set(capability.split())


# --- MULTIAPPEND (RFC 3502) -----------------------------------------------------------------

RFC3502_1 = CRLF.join(
    [
        "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
        "From: Fred Foobar <foobar@Blurdybloop.example.COM>",
        "Subject: afternoon meeting",
        "To: mooch@owatagu.example.net",
        "Message-Id: <B27397-0100000@Blurdybloop.example.COM>",
        "MIME-Version: 1.0",
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
        "",
        "Hello Joe, do you think we can meet at 3:30 tomorrow?",
        "",
    ]
)
RFC3502_2 = CRLF.join(
    [
        "Date: Mon, 7 Feb 1994 22:43:04 -0800 (PST)",
        "From: Joe Mooch <mooch@OWaTaGu.example.net>",
        "Subject: Re: afternoon meeting",
        "To: foobar@blurdybloop.example.com",
        "Message-Id: <a0434793874930@OWaTaGu.example.net>",
        "MIME-Version: 1.0",
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
        "",
        "3:30 is fine with me.",
        "",
    ]
)
RFC3502_3 = CRLF.join(
    [
        "Date: Mon, 7 Feb 2000 22:43:04 -0800 (PST)",
        "From: Fred Foobar <fred@example.com>",
        "Subject: hmm...",
        "",
    ]
)


def test_rfc3502_example(tmp_path: Path) -> None:
    # The RFC's A005 fails for the disk quota; here the message is over the largest message.
    c = client(tmp_path, mail="max_message_size = 35000\n")
    c.store.create_folder("saved-messages")
    c.store.create_folder("test")
    c.login()
    assert (len(RFC3502_1), len(RFC3502_2), len(RFC3502_3)) == (329, 295, 99)
    c.expect("A003 APPEND saved-messages (\\Seen) {329}\r\n", "+ Ready")
    c.expect(RFC3502_1 + ' (\\Seen) " 7-Feb-1994 22:43:04 -0800" {295}\r\n', "+ Ready")
    c.expect(RFC3502_2 + "\r\n", "A003 OK [APPENDUID {n} 1:2] APPEND completed")
    # The RFC's server refuses A004 before the literal; ours asks for it, then refuses.
    c.expect("A004 APPEND bogusname (\\Flagged) {10}\r\n", "+ Ready")
    c.expect("Subject: x\r\n", "A004 NO [TRYCREATE] Mailbox does not exist")
    c.expect("A005 APPEND test (\\Flagged) {99}\r\n", "+ Ready")
    c.expect(RFC3502_3 + " {35403}\r\n", "A005 NO [TOOBIG] Message too big (over 35000 octets)")
    c.expect(
        "A006 STATUS test (MESSAGES)\r\n", "* STATUS test (MESSAGES 0)", "A006 OK STATUS completed"
    )
    select(c, "saved-messages")
    c.expect(
        "A008 FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE)\r\n",
        '* 1 FETCH (FLAGS (\\Seen) INTERNALDATE "{any}" RFC822.SIZE 329)',
        '* 2 FETCH (FLAGS (\\Seen) INTERNALDATE " 8-Feb-1994 06:43:04 +0000" RFC822.SIZE 295)',
        "A008 OK FETCH completed",
    )
    assert body(c, 1, "saved-messages") == RFC3502_1.encode()
    assert body(c, 2, "saved-messages") == RFC3502_2.encode()


def test_multiappend_into_the_selected_mailbox_announces_the_messages(selected: Client) -> None:
    c = selected
    c.expect(
        "a APPEND INBOX {10+}\r\nSubject: 1 ($Work) {10+}\r\nSubject: 2 (\\Flagged) {10+}\r\nSubject: 3\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted.",
        "* 5 EXISTS",
        "* 4 RECENT",
        "a OK [APPENDUID {n} 3:5] APPEND completed",
    )
    lines = c.send("b FETCH 3:5 (UID FLAGS BODY.PEEK[])\r\n")
    assert "* 4 FETCH (UID 4 FLAGS ($Work \\Recent) BODY[] {10}" in lines
    assert "* 5 FETCH (UID 5 FLAGS (\\Flagged \\Recent) BODY[] {10}" in lines
    assert [body(c, u) for u in (3, 4, 5)] == [b"Subject: 1", b"Subject: 2", b"Subject: 3"]


def test_multiappend_is_all_or_nothing(tmp_path: Path) -> None:
    c = client(tmp_path, quota="userdb_quota_rule=*:storage=1K")
    c.login()
    status = (
        "z STATUS INBOX (MESSAGES UIDNEXT)\r\n",
        "* STATUS INBOX (MESSAGES 2 UIDNEXT 3)",
        "z OK STATUS completed",
    )
    # A message that cannot be read (a URL that names nothing): none is stored.
    c.expect(
        'a APPEND INBOX {10+}\r\nSubject: 1 CATENATE (URL "/INBOX/;UID=9")\r\n',
        "a NO [BADURL /INBOX/;UID=9] Message not found",
    )
    c.expect(*status)
    # An empty message: a client's way to cancel (RFC 3502), with one sent already.
    c.expect(
        "b APPEND INBOX {10+}\r\nSubject: 1 {0+}\r\n\r\n",
        "b NO [CANNOT] Refusing to save an empty message",
    )
    c.expect(*status)
    c.expect(
        "c APPEND INBOX {10+}\r\nSubject: 1 {0}\r\n",
        "c NO [CANNOT] Refusing to save an empty message",
    )
    c.expect(*status)
    # Over the quota together, though each would fit alone.
    big = "Subject: q\r\n\r\n" + "x" * 400
    c.expect(
        f"d APPEND INBOX {{{len(big)}+}}\r\n{big} {{{len(big)}+}}\r\n{big} {{{len(big)}+}}\r\n{big}\r\n",
        "d NO [OVERQUOTA] {any}",
    )
    c.expect(*status)
    c.expect(
        f"e APPEND INBOX {{{len(big)}+}}\r\n{big}\r\n",
        "e OK [APPENDUID {n} 3] APPEND completed",
    )
    assert tmp_files(tmp_path) == []  # what was written for the refused ones is gone


def test_append_arguments(selected: Client) -> None:
    c = selected
    c.expect("a APPEND INBOX\r\n", "a BAD APPEND: APPEND needs a mailbox name and a message")
    c.expect('b APPEND INBOX "Subject: x"\r\n', "b BAD APPEND: {any}")
    c.expect("c APPEND INBOX {1+}\r\nx (\\Seen)\r\n", "c BAD APPEND: {any}")
    c.expect("d APPEND INBOX CATENATE\r\n", "d BAD APPEND: {any}")
    c.expect("e APPEND INBOX CATENATE ()\r\n", "e BAD APPEND: Empty CATENATE list")
    c.expect(
        'f APPEND INBOX CATENATE (TEXT "x")\r\n',
        "f BAD APPEND: CATENATE takes TEXT literals and URLs",
    )
    c.expect(
        "g APPEND INBOX CATENATE (FOO {1+}\r\nx)\r\n",
        "g BAD APPEND: CATENATE takes TEXT literals and URLs",
    )
    c.expect(
        'h APPEND INBOX CATENATE (URL "/INBOX/;UID=1" TEXT)\r\n',
        "h BAD APPEND: CATENATE takes TEXT literals and URLs",
    )
    c.expect(
        "i STATUS INBOX (MESSAGES)\r\n", "* STATUS INBOX (MESSAGES 2)", "i OK STATUS completed"
    )


# --- CATENATE (RFC 4469) --------------------------------------------------------------------

BOUNDARY = "------------030308070208000400050907"
DRAFT_HEADER = (
    "From: Bob Ar <bar@example.org>\r\nTo: foo@example.net\r\nSubject: About our holiday trip\r\n"
    f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary="{BOUNDARY}"\r\n\r\n'
)
PART1_MIME = "Content-Type: text/plain; charset=us-ascii; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
PART1 = "Our travel agent has sent the schedule.\r\n\r\nCheers,\r\nBob"
PART2_MIME = 'Content-Type: application/x-zip-compressed; name="trip.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
PART2 = "UEsDBBQAAAAIAAAAIQAAAAAAAAAAAAAAAAAIAAAAdHJpcC50eHQ="
DRAFT20 = (
    f"{DRAFT_HEADER}This is a multi-part message in MIME format.\r\n--{BOUNDARY}\r\n"
    f"{PART1_MIME}{PART1}\r\n--{BOUNDARY}\r\n{PART2_MIME}{PART2}\r\n--{BOUNDARY}--\r\n"
)
DRAFT30 = "From: bar@example.org\r\nSubject: the schedule\r\n\r\nMonday: the lake.\r\n"
PPT_MIME = 'Content-Type: application/vnd.ms-powerpoint; name="trip.ppt"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
DRAFT21 = DRAFT20.replace(BOUNDARY, BOUNDARY[:-1] + "3").replace(PART2_MIME, PPT_MIME)
DRAFTS = {"Drafts": (385759045, 20)}


def drafts(tmp_path: Path) -> Client:
    """Drafts as RFC 4469's examples have it: UIDVALIDITY 385759045, the draft of UID 20 (a
    text/plain part and a zip), 21 (the same with a PowerPoint part) and 30."""
    c = client(tmp_path, folders=DRAFTS)
    box = c.store.mailbox("Drafts")
    box.append(DRAFT20.encode())
    box.append(DRAFT21.encode())
    next_uid(tmp_path / ROOT, "Drafts", 30)
    box.append(DRAFT30.encode())
    return c


def test_rfc4469_example_1_replaces_an_attachment(tmp_path: Path) -> None:
    c = drafts(tmp_path)
    c.login()
    separator = f"\r\n--{BOUNDARY}\r\n"
    end = f"\r\n--{BOUNDARY}--\r\n"
    assert (len(separator), len(end)) == (42, 44)
    c.expect(
        'A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER" TEXT {42}\r\n',
        "+ Ready",
    )
    c.expect(
        separator
        + ' URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME" URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1" TEXT {42}\r\n',
        "+ Ready",
    )
    c.expect(separator + ' URL "/Drafts;UIDVALIDITY=385759045/;UID=30" TEXT {44}\r\n', "+ Ready")
    c.expect(end + ")\r\n", "A003 OK [APPENDUID 385759045 31] APPEND completed")
    expected = DRAFT_HEADER + separator + PART1_MIME + PART1 + separator + DRAFT30 + end
    assert body(c, 31, "Drafts") == expected.encode()
    box = c.store.mailbox("Drafts")
    assert box.all_flags(box.get(31)) == ["\\Draft", "\\Seen", "$MDNSent"]
    assert not box.get(20).seen  # "does not cause the \Seen flag to be set" (RFC 4469 3)


RFC4469_2 = CRLF.join(
    [
        "Return-Path: <bar@example.org>",
        "Received: from [127.0.0.2]",
        "          by rufus.example.org via TCP (internal) with ESMTPA;",
        "          Thu, 11 Nov 2004 16:57:07 +0000",
        "Message-ID: <419399E1.6000505@example.org>",
        "Date: Thu, 12 Nov 2004 16:57:05 +0000",
        "From: Bob Ar <bar@example.org>",
        "X-Accept-Language: en-us, en",
        "MIME-Version: 1.0",
        "To: foo@example.net",
        "Subject: About our holiday trip",
        "Content-Type: multipart/mixed;",
        f'              boundary="{BOUNDARY}"',
        "",
        f"--{BOUNDARY}",
        "Content-Type: text/plain; charset=us-ascii; format=flowed",
        "Content-Transfer-Encoding: 7bit",
        "",
        "Our travel agent has sent the updated schedule.",
        "",
        "Cheers,",
        "Bob",
        f"--{BOUNDARY}",
        "",
    ]
)


def test_rfc4469_example_2_replaces_edited_text_and_header(tmp_path: Path) -> None:
    # The RFC counts 738 octets: its text lost some of the folded lines' blanks.
    c = drafts(tmp_path)
    next_uid(tmp_path / ROOT, "Drafts", 45)
    c.login()
    select(c, "Drafts")
    end = f"\r\n--{BOUNDARY}--\r\n"
    c.expect(
        f"A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (TEXT {{{len(RFC4469_2)}}}\r\n",
        "+ Ready",
    )
    c.expect(
        RFC4469_2
        + ' URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;Section=2.MIME" URL "/Drafts;UIDVALIDITY=385759045/;UID=20/;Section=2" TEXT {44}\r\n',
        "+ Ready",
    )
    c.expect(
        end + ")\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $MDNSent)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $MDNSent \\*)] Flags permitted.",
        "* 4 EXISTS",
        "* 4 RECENT",
        "A003 OK [APPENDUID 385759045 45] APPEND completed",
    )
    c.expect(
        "A004 UID STORE 20 +FLAGS.SILENT (\\Deleted)\r\n",
        "* 1 FETCH (UID 20 FLAGS (\\Deleted \\Recent))",
        "A004 OK UID STORE completed",
    )
    assert body(c, 45, "Drafts") == (RFC4469_2 + PART2_MIME + PART2 + end).encode()


def test_rfc4469_example_3_strips_an_attachment(tmp_path: Path) -> None:
    c = drafts(tmp_path)
    c.login()
    boundary = BOUNDARY[:-1] + "3"
    text = CRLF.join(
        [
            "",
            f"--{boundary}",
            'Content-type: text/plain; charset="us-ascii"',
            "Content-transfer-encoding: 7bit",
            "",
            "This body part contained a Power Point presentation that was",
            "deleted upon your request.",
            f"--{boundary}--",
            "",
        ]
    )
    assert len(text) == 255
    c.expect(
        'A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL "/Drafts;UIDVALIDITY=385759045/;UID=21/;section=HEADER" TEXT {42}\r\n',
        "+ Ready",
    )
    c.expect(
        f"\r\n--{boundary}\r\n"
        + ' URL "/Drafts;UIDVALIDITY=385759045/;UID=21/;section=1.MIME" URL "/Drafts;UIDVALIDITY=385759045/;UID=21/;section=1" TEXT {255}\r\n',
        "+ Ready",
    )
    c.expect(text + ")\r\n", "A003 OK [APPENDUID 385759045 31] APPEND completed")
    header = DRAFT_HEADER.replace(BOUNDARY, boundary)
    expected = header + f"\r\n--{boundary}\r\n" + PART1_MIME + PART1 + text
    assert body(c, 31, "Drafts") == expected.encode()


DIGEST = BOUNDARY[:-1] + "4"
RFC4469_4 = CRLF.join(
    [
        "Return-Path: <foo@example.org>",
        "Received: from [127.0.0.2]",
        "          by rufus.example.org via TCP (internal) with ESMTPA;",
        "          Thu, 11 Nov 2004 16:57:07 +0000",
        "Message-ID: <419399E1.6000505@example.org>",
        "Date: Thu, 21 Nov 2004 16:57:05 +0000",
        "From: Farren Oo <foo@example.org>",
        "X-Accept-Language: en-us, en",
        "MIME-Version: 1.0",
        "To: bar@example.org",
        "Subject: Digest of the mailing list for today",
        "Content-Type: multipart/digest;",
        f'              boundary="{DIGEST}"',
        "",
        f"--{DIGEST}",
        "",
    ]
)


def test_rfc4469_example_4_a_message_was_expunged(tmp_path: Path) -> None:
    # The RFC counts 541 octets (a blank of a folded line lost in its text). Its BADURL is
    # quoted; erratum 4046 removes the quotes: the code holds the bare URL.
    c = client(tmp_path, folders={"INBOX": (785799047, 11465)})
    c.store.create_folder("Sent")
    inbox = c.store.mailbox("INBOX")
    inbox.append(b"Subject: list message 1\r\n\r\nfirst\r\n")  # 11467
    next_uid(tmp_path / ROOT, "INBOX", 11916)
    inbox.append(b"Subject: list message 3\r\n\r\nthird\r\n")
    c.login()
    separator = f"\r\n--{DIGEST}\r\n"
    c.expect(
        f"A003 APPEND Sent (\\Seen $MDNSent) CATENATE (TEXT {{{len(RFC4469_4)}}}\r\n", "+ Ready"
    )
    c.expect(RFC4469_4 + ' URL "/INBOX;UIDVALIDITY=785799047/;UID=11467" TEXT {42}\r\n', "+ Ready")
    c.expect(
        separator + ' URL "/INBOX;UIDVALIDITY=785799047/;UID=113330/;section=1.5.9" TEXT {42}\r\n',
        "+ Ready",
    )
    c.expect(separator + ' URL "/INBOX;UIDVALIDITY=785799047/;UID=11916" TEXT {44}\r\n', "+ Ready")
    c.expect(
        f"\r\n--{DIGEST}--\r\n)\r\n",
        "A003 NO [BADURL /INBOX;UIDVALIDITY=785799047/;UID=113330/;section=1.5.9] Message not found",
    )
    c.expect(
        "A004 STATUS Sent (MESSAGES)\r\n", "* STATUS Sent (MESSAGES 0)", "A004 OK STATUS completed"
    )
    # The three messages of the digest, all there: the digest is made.
    c.send(f"A005 APPEND Sent CATENATE (TEXT {{{len(RFC4469_4)}+}}\r\n{RFC4469_4}")
    lines = c.send(
        ' URL "/INBOX;UIDVALIDITY=785799047/;UID=11467" URL "/INBOX;UIDVALIDITY=785799047/;UID=11916")\r\n'
    )
    assert lines == [
        "A005 OK [APPENDUID {} 1] APPEND completed".format(c.store.mailbox("Sent").uidvalidity)
    ]
    digest = (
        RFC4469_4
        + "Subject: list message 1\r\n\r\nfirst\r\nSubject: list message 3\r\n\r\nthird\r\n"
    )
    assert body(c, 1, "Sent") == digest.encode()


# --- IMAP URLs (RFC 5092) and ;PARTIAL= (URL-PARTIAL, RFC 5550) -----------------------------

# INBOX holds MSG1 (UID 1: "From: Bob...Hi Alice!", stored with LF) and MSG2 (UID 2).
URLS = [
    # relative to the selected mailbox, as Dovecot resolves them
    (";UID=2", "From: carol@example.test\r\nSubject: Report\r\n\r\nNumbers.\r\n"),
    ("./;UID=2/;SECTION=TEXT", "Numbers.\r\n"),
    ("../INBOX/;UID=2/;SECTION=HEADER.FIELDS%20(SUBJECT)", "Subject: Report\r\n\r\n"),
    (";UID=1/;SECTION=1/;PARTIAL=3.5", "Alice"),
    (";UID=1/;SECTION=1/;PARTIAL=3", "Alice!\r\n"),
    # absolute paths, keys in any case, %-escapes
    ("/inbox/;uid=2/;section=header/;partial=0.8", "From: ca"),
    ("/IN%42OX;UIDVALIDITY={v}/;UID=2/;PARTIAL=45", "Numbers.\r\n"),
    # absolute URLs naming the logged-in user (the host is not checked)
    ("imap://alice%40example.test@mail.example.test/INBOX/;UID=2/;SECTION=TEXT", "Numbers.\r\n"),
    (
        "imap://ALICE%40example.test;AUTH=*@127.0.0.1:143/INBOX;UIDVALIDITY={v}/;UID=2/;SECTION=TEXT",
        "Numbers.\r\n",
    ),
    ("//alice%40example.test@localhost/INBOX/;UID=2/;SECTION=TEXT", "Numbers.\r\n"),
    (
        "imap://;AUTH=*@mail.example.test/INBOX/;UID=2/;SECTION=TEXT",
        "Numbers.\r\n",
    ),  # whoever logs in
    # a section or range that holds nothing adds nothing (as FETCH BODY)
    (";UID=2/;SECTION=7", ""),
    (";UID=2/;PARTIAL=1000.10", ""),
]
BAD_URLS = [
    ("/INBOX;UIDVALIDITY=1/;UID=2", "Invalid UIDVALIDITY"),
    ("/INBOX/;UID=9", "Message not found"),
    ("/Nope/;UID=1", "mailbox Nope does not exist"),
    ("/INBOX/;UID=0", "Invalid IMAP URL: UID cannot be zero"),
    ("/INBOX/;UID=2/;SECTION=FOO", "Invalid section"),
    ("/INBOX/;UID=2/;PARTIAL=0.0", "Invalid IMAP URL: PARTIAL size cannot be zero"),
    ("/INBOX/;UID=2/;URLAUTH=anonymous", "Invalid IMAP URL: URLAUTH is not supported"),
    ("/INBOX", "Invalid messagepart IMAP URL"),
    ("/INBOX?SUBJECT%20x", "Invalid messagepart IMAP URL"),
    ("http://x/INBOX/;UID=2", "Invalid IMAP URL: Not an IMAP URL"),
    ("imap:/INBOX/;UID=2", "Invalid IMAP URL: Absolute IMAP URL requires `//' after `imap:'"),
    (
        "imap://bob%40example.test@h/INBOX/;UID=2",
        "Invalid IMAP URL: only the logged-in user's messages can be used",
    ),
    ("imap://h/INBOX/;UID=2", "Invalid IMAP URL: anonymous access is not possible here"),
    ("INBOX/;UID=2", "Invalid IMAP URL: Encountered stray ';' in mailbox reference"),
    ("/IN%ZZBOX/;UID=2", "Invalid IMAP URL: invalid %-encoding in the mailbox name"),
]


@pytest.mark.parametrize(("url", "octets"), URLS)
def test_url_forms(selected: Client, url: str, octets: str) -> None:
    c = selected
    url = url.format(v=c.store.mailbox("INBOX").uidvalidity)
    c.expect(
        f'a APPEND INBOX CATENATE (TEXT {{5+}}\r\nurl:  URL "{url}")\r\n',
        "* 3 EXISTS",
        "* 2 RECENT",
        "a OK [APPENDUID {n} 3] APPEND completed",
    )
    assert body(c, 3) == b"url: " + octets.encode()


@pytest.mark.parametrize(("url", "reason"), BAD_URLS)
def test_bad_urls(selected: Client, url: str, reason: str) -> None:
    selected.expect(
        f'a APPEND INBOX CATENATE (TEXT {{2+}}\r\nx: URL "{url}")\r\n',
        f"a NO [BADURL {url}] {reason}",
    )


def test_relative_urls_need_a_selected_mailbox_and_badurl_stays_one_line(c: Client) -> None:
    c.login()
    c.expect(
        'a APPEND INBOX CATENATE (URL ";UID=1")\r\n',
        "a NO [BADURL ;UID=1] Mailbox-relative IMAP URL, but no mailbox selected",
    )
    c.expect(
        'b APPEND INBOX CATENATE (URL "/INBOX/;UID=1")\r\n',
        "b OK [APPENDUID {n} 3] APPEND completed",
    )
    # url-resp-text is TEXT-CHARs but "]": the rest of what the client sent is %-encoded
    c.expect(
        'c APPEND INBOX CATENATE (URL "/IN]BOX/;UID=1")\r\n',
        "c NO [BADURL /IN%5DBOX/;UID=1] Invalid IMAP URL: invalid character in URL",
    )
    c.expect(
        "d APPEND INBOX CATENATE (URL {13+}\r\n/INBOX\x01;UID=1)\r\n",
        "d NO [BADURL /INBOX%01;UID=1] Invalid IMAP URL: invalid character in URL",
    )


def test_urls_name_mailboxes_in_utf8(c: Client) -> None:
    c.store.create_folder("Entwürfe")
    c.store.mailbox("Entwürfe").append(b"Subject: Entwurf\r\n\r\nText\r\n")
    c.login()
    c.expect(
        'a APPEND INBOX CATENATE (URL "/Entw%C3%BCrfe/;UID=1/;SECTION=TEXT")\r\n',
        "a OK [APPENDUID {n} 3] APPEND completed",
    )
    assert body(c, 3) == b"Text\r\n"
    # The modified UTF-7 form names another (missing) mailbox: a URL carries the name.
    lines = c.send('b APPEND INBOX CATENATE (URL "/Entw&APw-rfe/;UID=1")\r\n')
    assert lines[0].startswith("b NO [BADURL /Entw&APw-rfe/;UID=1]")


def test_catenate_into_a_missing_mailbox_is_trycreate_before_any_url(c: Client) -> None:
    c.login()
    c.expect(
        'a APPEND Nope CATENATE (URL "/INBOX/;UID=99")\r\n',
        "a NO [TRYCREATE] Mailbox does not exist",
    )


def test_catenate_names_a_message_appended_just_before(c: Client) -> None:
    """APPENDUID gives a UID the next CATENATE may name at once, in a mailbox not selected."""
    c.store.create_folder("Drafts")
    c.login()
    draft = "Subject: draft\r\n\r\nhi\r\n"
    c.expect(
        f"a APPEND Drafts {{{len(draft)}+}}\r\n{draft}\r\n",
        "a OK [APPENDUID {n} 1] APPEND completed",
    )
    c.expect(
        'b APPEND Drafts CATENATE (URL "/Drafts/;UID=1/;SECTION=TEXT")\r\n',
        "b OK [APPENDUID {n} 2] APPEND completed",
    )
    assert body(c, 2, "Drafts") == b"hi\r\n"


# --- BINARY (RFC 3516) ----------------------------------------------------------------------

MIXED = (
    b"From: a@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"h=C3=A9llo =\r\nworld  \r\nend=3d=\r\n\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQF\r\nBgc=\r\n"
    b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Transfer-Encoding: BASE64 (a comment) ;x\r\n\r\naW5uZXI=\r\n"
    b"--XX--\r\n"
)
UNKNOWN = b"Subject: u\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
BROKEN_BASE64 = b"Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs*bG8=\r\n"
BROKEN_QP = b"Subject: q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc=ZZdef\r\n"


def binary_client(c: Client) -> Client:
    box = c.store.mailbox("INBOX")
    for message in (MIXED, UNKNOWN, BROKEN_BASE64, BROKEN_QP):
        box.append(message)
    c.login()
    select(c, "INBOX")
    return c


def test_fetch_binary_decodes_each_part(c: Client) -> None:
    binary_client(c)
    answer = raw(
        c,
        b"a FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[3.1])\r\n",
    )
    assert answer == (
        b"* 3 FETCH (BINARY[1] {18}\r\nh\xc3\xa9llo world\r\nend= BINARY.SIZE[1] 18"
        b" BINARY[2] ~{8}\r\n\x00\x01\x02\x03\x04\x05\x06\x07 BINARY.SIZE[2] 8 BINARY[3.1] {5}\r\ninner)\r\n"
        b"a OK FETCH completed\r\n"
    )
    # <origin.count> counts decoded octets; a part that is not there is empty.
    answer = raw(
        c,
        b"b UID FETCH 3 (BINARY.PEEK[2]<6.10> BINARY.PEEK[1]<1.4> BINARY.PEEK[9] BINARY.SIZE[9])\r\n",
    )
    assert answer == (
        b"* 3 FETCH (UID 3 BINARY[2]<6> {2}\r\n\x06\x07 BINARY[1]<1> {4}\r\n\xc3\xa9ll"
        b' BINARY[9] "" BINARY.SIZE[9] 0)\r\nb OK UID FETCH completed\r\n'
    )


def test_fetch_binary_of_the_whole_message_rewrites_the_decoded_parts_headers(c: Client) -> None:
    binary_client(c)
    expected = (
        MIXED.replace(
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo =\r\nworld  \r\nend=3d=\r\n",
            b"Content-Transfer-Encoding: binary\r\n\r\nh\xc3\xa9llo world\r\nend=",
        )
        .replace(
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\nBgc=",
            b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\x03\x04\x05\x06\x07",
        )
        .replace(
            b"Subject: inner\r\nContent-Transfer-Encoding: BASE64 (a comment) ;x\r\n\r\naW5uZXI=",
            b"Subject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\ninner",
        )
    )
    answer = raw(c, b"a FETCH 3 (BINARY.SIZE[] BINARY.PEEK[])\r\n")
    assert (
        answer
        == b"* 3 FETCH (BINARY.SIZE[] %d BINARY[] ~{%d}\r\n%s)\r\na OK FETCH completed\r\n"
        % (
            len(expected),
            len(expected),
            expected,
        )
    )
    # A message without transfer encoding is itself (and MSG1, stored with LF, has CRLF).
    answer = raw(c, b"b FETCH 1 BINARY.PEEK[]\r\n")
    assert answer.startswith(b"* 1 FETCH (BINARY[] {83}\r\nFrom: Bob <bob@example.test>\r\nTo:")


def test_fetch_binary_refuses_what_it_cannot_decode_and_answers_the_rest(c: Client) -> None:
    binary_client(c)
    c.expect("a FETCH 4 BINARY.PEEK[1]\r\n", "a NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding")
    c.expect("b FETCH 4 BINARY.SIZE[]\r\n", "b NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding")
    c.expect("c FETCH 5 BINARY.PEEK[1]\r\n", "c NO [PARSE] Invalid data in MIME part")
    c.expect("d FETCH 6 BINARY.PEEK[1]\r\n", "d NO [PARSE] Invalid data in MIME part")
    # BODY is the stored octets, whatever the encoding says.
    c.expect(
        "e FETCH 4 BODY.PEEK[1]\r\n",
        "* 4 FETCH (BODY[1] {13}",
        "begin 644 x",
        ")",
        "e OK FETCH completed",
    )
    # One message that cannot be decoded costs only itself its answer; the first failure ends it.
    lines = c.send("f FETCH 1:6 BINARY.SIZE[1]\r\n")
    assert lines == [
        "* 1 FETCH (BINARY.SIZE[1] 11)",
        "* 2 FETCH (BINARY.SIZE[1] 10)",
        "* 3 FETCH (BINARY.SIZE[1] 18)",
        "f NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding",
    ]


def test_binary_sets_seen_and_binary_size_does_not(c: Client) -> None:
    binary_client(c)
    c.expect("a FETCH 3 BINARY.SIZE[2]\r\n", "* 3 FETCH (BINARY.SIZE[2] 8)", "a OK FETCH completed")
    c.expect("b FETCH 3 FLAGS\r\n", "* 3 FETCH (FLAGS (\\Recent))", "b OK FETCH completed")
    lines = c.send("c FETCH 3 BINARY[3.1]\r\n")
    assert lines == [
        "* 3 FETCH (BINARY[3.1] {5}",
        "inner FLAGS (\\Seen \\Recent))",
        "c OK FETCH completed",
    ]


def test_binary_syntax(selected: Client) -> None:
    c = selected
    c.expect("a FETCH 1 BINARY[1.HEADER]\r\n", "a BAD BINARY[] takes only a part number")
    c.expect(
        "b FETCH 1 BINARY.SIZE[1]<0.5>\r\n", "b BAD invalid partial range: expected <origin.count>"
    )
    c.expect(
        "c FETCH 1 BINARY[1]<0.0>\r\n", "c BAD invalid partial range: the count must be 1 to 2^32-1"
    )


BINARY_MESSAGE = (
    b"From: a@example.test\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\nab\x00cd\r\nef\r\n"
)
BINARY_MIXED = (
    b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    b"--B\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) + b"\r\n"
    b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B--\r\n"
)


def test_append_of_binary_content_stores_it_in_base64(selected: Client) -> None:
    c = selected
    answer = raw(c, b"a APPEND INBOX ~{%d}\r\n" % len(BINARY_MESSAGE))
    assert answer == b"+ Ready\r\n"
    answer = raw(c, BINARY_MESSAGE + b"\r\n")
    assert answer.endswith(
        b"a OK [APPENDUID %d 3] APPEND completed\r\n" % c.store.mailbox("INBOX").uidvalidity
    )
    stored = body(c, 3)
    assert stored == BINARY_MESSAGE.replace(
        b"binary\r\n\r\nab\x00cd\r\nef\r\n", b"base64\r\n\r\nYWIAY2QNCmVmDQo="
    )
    answer = raw(c, b"b FETCH 3 (BODYSTRUCTURE BINARY.PEEK[1] BINARY.SIZE[1])\r\n")
    assert answer == (
        b'* 3 FETCH (BODYSTRUCTURE ("application" "octet-stream" NIL NIL NIL "base64" 16 NIL NIL NIL NIL)'
        b" BINARY[1] ~{11}\r\nab\x00cd\r\nef\r\n BINARY.SIZE[1] 11)\r\nb OK FETCH completed\r\n"
    )
    # A part of 256 octets: lines of 76 characters; the text part as it was.
    answer = raw(c, b"c APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(BINARY_MIXED), BINARY_MIXED))
    assert answer.endswith(b"APPEND completed\r\n")
    stored = body(c, 4)
    lines = stored.split(b"\r\n")
    at = lines.index(b"Content-Transfer-Encoding: base64")
    assert [len(line) for line in lines[at + 2 : at + 8]] == [76, 76, 76, 76, 40, 3]
    assert stored.endswith(b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n--B--\r\n")
    answer = raw(c, b"d FETCH 4 BINARY.PEEK[1]\r\n")
    assert (
        answer
        == b"* 4 FETCH (BINARY[1] ~{256}\r\n" + bytes(range(256)) + b")\r\nd OK FETCH completed\r\n"
    )
    # In a CATENATE TEXT part too; a literal8 is APPEND's only.
    answer = raw(
        c,
        b"e APPEND INBOX CATENATE (TEXT ~{%d+}\r\n%s)\r\n" % (len(BINARY_MESSAGE), BINARY_MESSAGE),
    )
    assert answer.endswith(b"APPEND completed\r\n") and body(c, 5) == body(c, 3)
    c.expect("f SEARCH TEXT ~{2+}\r\nab\r\n", "f BAD literal8 is only allowed in APPEND")
    # A normal literal is stored as sent (RFC 3516 asks nothing of it).
    raw(c, b"g APPEND INBOX {%d+}\r\n%s\r\n" % (len(BINARY_MESSAGE), BINARY_MESSAGE))
    assert body(c, 6) == BINARY_MESSAGE


# --- the literal budget (SECURITY.md 2) -----------------------------------------------------

BUDGET = "max_message_size = 1000\nmax_append_size = 2500\n"


def test_attack_multiappend_beyond_the_command_budget_is_refused_at_its_announcement(
    tmp_path: Path,
) -> None:
    """Before: one APPEND held all its literals up to the largest message; MULTIAPPEND lets one
    command carry any number of messages, each within that. Now they are bounded together."""
    c = client(tmp_path, mail=BUDGET)
    c.login()
    msg = "Subject: m\r\n\r\n" + "x" * 886
    c.expect(
        f"a APPEND INBOX {{900+}}\r\n{msg} {{900+}}\r\n{msg} {{900}}\r\n",
        "a NO [TOOBIG] APPEND too big (over 2500 octets in all)",
    )
    assert c.session.literals.held == 0  # the process's pool has it back
    c.expect(
        "b STATUS INBOX (MESSAGES)\r\n", "* STATUS INBOX (MESSAGES 2)", "b OK STATUS completed"
    )
    # Non-synchronizing: the octets are skipped, not kept, and the session goes on.
    c.expect(
        f"c APPEND INBOX {{900+}}\r\n{msg} {{900+}}\r\n{msg} {{900+}}\r\n{msg}\r\nd NOOP\r\n",
        "c NO [TOOBIG] APPEND too big (over 2500 octets in all)",
        "d OK NOOP completed",
    )
    assert c.session.literals.held == 0
    # Within the budget: each message may be as large as the largest.
    c.expect(
        f"e APPEND INBOX {{900+}}\r\n{msg} {{900+}}\r\n{msg}\r\n",
        "e OK [APPENDUID {n} 3:4] APPEND completed",
    )
    c.expect(
        "f NOOP\r\n", "f OK NOOP completed"
    )  # the command is over: its literals are given back
    assert c.session.literals.held == 0


def test_attack_catenate_text_parts_beyond_the_largest_message(tmp_path: Path) -> None:
    c = client(tmp_path, mail=BUDGET)
    c.login()
    part = "x" * 600
    c.expect(
        f"a APPEND INBOX CATENATE (TEXT {{600+}}\r\n{part} TEXT {{600}}\r\n",
        "a NO [TOOBIG] Message too big (over 1000 octets)",
    )
    # The next message of the command starts afresh.
    c.expect(
        f"b APPEND INBOX CATENATE (TEXT {{600+}}\r\n{part}) CATENATE (TEXT {{600+}}\r\n{part})\r\n",
        "b OK [APPENDUID {n} 3:4] APPEND completed",
    )


def test_attack_catenate_urls_make_a_message_beyond_the_largest(tmp_path: Path) -> None:
    """URLs add octets the reader never saw: the composed message is bounded as a literal is."""
    c = client(tmp_path, mail=BUDGET)
    c.store.mailbox("INBOX").append(b"Subject: s\r\n\r\n" + b"y" * 586)  # 600 octets, UID 3
    c.login()
    c.expect(
        'a APPEND INBOX CATENATE (URL "/INBOX/;UID=3" URL "/INBOX/;UID=3")\r\n',
        "a NO [TOOBIG] Message too big (over 1000 octets)",
    )
    c.expect(
        'b APPEND INBOX CATENATE (URL "/INBOX/;UID=3" URL "/INBOX/;UID=3/;PARTIAL=0.400")\r\n',
        "b OK [APPENDUID {n} 4] APPEND completed",
    )


def test_attack_multiappend_of_catenated_messages_beyond_the_command_budget(tmp_path: Path) -> None:
    c = client(tmp_path, mail=BUDGET)
    c.store.mailbox("INBOX").append(b"Subject: s\r\n\r\n" + b"y" * 886)  # 900 octets, UID 3
    c.login()
    url = 'CATENATE (URL "/INBOX/;UID=3")'
    c.expect(
        f"a APPEND INBOX {url} {url} {url}\r\n",
        "a NO [TOOBIG] APPEND too big (over 2500 octets in all)",
    )
    c.expect(
        "b STATUS INBOX (MESSAGES)\r\n", "* STATUS INBOX (MESSAGES 3)", "b OK STATUS completed"
    )
    assert tmp_files(tmp_path) == []
    c.expect(f"c APPEND INBOX {url} {url}\r\n", "c OK [APPENDUID {n} 4:5] APPEND completed")


def test_attack_catenate_urls_reading_more_than_the_command_budget(tmp_path: Path) -> None:
    """Thousands of URLs naming big messages would read without end in a thread every session
    shares. Each message is read once per command, and all they read is bounded."""
    c = client(tmp_path, mail=BUDGET)
    box = c.store.mailbox("INBOX")
    for _ in range(3):
        box.append(b"Subject: s\r\n\r\n" + b"y" * 886)  # 900 octets: UIDs 3, 4, 5
    c.login()
    one = " ".join(['URL "/INBOX/;UID=3/;PARTIAL=0.1"'] * 900)
    c.expect(f"a APPEND INBOX CATENATE ({one})\r\n", "a OK [APPENDUID {n} 6] APPEND completed")
    assert body(c, 6) == b"S" * 900
    three = 'URL "/INBOX/;UID=3/;PARTIAL=0.1" URL "/INBOX/;UID=4/;PARTIAL=0.1" URL "/INBOX/;UID=5/;PARTIAL=0.1"'
    c.expect(
        f"b APPEND INBOX CATENATE ({three})\r\n",
        "b NO [TOOBIG] CATENATE URLs name over 2500 octets of messages",
    )


def test_a_waiting_reader_keeps_one_append_s_worth() -> None:
    """While the session works on a command, what the client sends meanwhile is kept up to one
    command's worth: the largest APPEND now, not the largest message."""
    reader = CommandReader(
        Limits(max_literal_size=1000, max_append_size=2500), suspend_after=SUSPENDING
    )
    assert [type(e) for e in reader.feed(b"i IDLE\r\n")] == [Command]
    assert reader.suspended
    assert reader.feed(b"x" * (64 * 1024 + 2500)) == []
    assert reader.feed(b"x") == [Fatal("too much data sent without waiting for the server")]


@pytest.mark.parametrize(
    ("encoding", "data", "decoded"),
    [
        (b"quoted-printable", b"a=3Db=3dc", b"a=b=c"),  # lower-case hex taken, as Dovecot
        (b"quoted-printable", b"soft=\r\nbreak", b"softbreak"),
        (b"quoted-printable", b"soft= \t\r\nbreak", b"softbreak"),
        (b"quoted-printable", b"trail \t\r\nnext  ", b"trail\r\nnext"),
        (b"quoted-printable", b"lf\nonly\n", b"lf\r\nonly\r\n"),
        (b"base64", b" aGVs\r\nbG8=\r\n\t", b"hello"),
        (b"base64", b"", b""),
        (b"8bit", b"as\x00is", b"as\x00is"),
    ],
)
def test_transfer_decoding(encoding: bytes, data: bytes, decoded: bytes) -> None:
    assert binary.decode(encoding, data) == decoded


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        (b"quoted-printable", b"end="),
        (b"quoted-printable", b"a=G1"),
        (b"quoted-printable", b"a=\r"),
        (b"quoted-printable", b"bare\rcr"),
        (b"base64", b"aGVsbG8"),  # no padding: the data ends too soon
        (b"base64", b"aGVs*bG8="),
        (b"base64", b"aGVsbG8=aa"),
        (b"base64", b"a==="),
    ],
)
def test_transfer_decoding_refuses_what_does_not_decode(encoding: bytes, data: bytes) -> None:
    with pytest.raises(r.Refusal) as refusal:
        binary.decode(encoding, data)
    assert refusal.value.what is r.INVALID_MIME_DATA


def test_rfc5092_examples() -> None:
    """RFC 5092's example URLs, as CATENATE takes them: message parts of whoever logs in."""
    users = ("alice@example.test",)
    assert imapurl.parse(
        "imap://;AUTH=GSSAPI@minbari.example.org/gray-council/;uid=20/;section=1.2", users=users
    ) == imapurl.MessagePartUrl("gray-council", None, 20, "1.2", None)
    assert imapurl.parse(
        "imap://alice%40example.test;AUTH=*@minbari.example.org/gray-council;UIDVALIDITY=385759045/;UID=20/;PARTIAL=0.1024",
        users=users,
    ) == imapurl.MessagePartUrl("gray-council", 385759045, 20, "", (0, 1024))
    refused = {
        # anonymous access (no userinfo): nobody's mail here
        "imap://minbari.example.org/gray-council;UIDVALIDITY=385759045/;UID=20/;PARTIAL=0.1024": "anonymous",
        # message lists, not message parts
        "imap://michael@minbari.example.org/users.*": "logged-in user",
        "imap://;AUTH=*@minbari.example.org/gray%20council?SUBJECT%20shadows": "messagepart",
        "imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97": "anonymous",
    }
    for url, reason in refused.items():
        with pytest.raises(imapurl.UrlError, match=reason):
            imapurl.parse(url, users=users)
