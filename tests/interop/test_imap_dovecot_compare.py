"""One Maildir, two IMAP servers: what Dovecot 2.3 shows a client and what we show must agree.

Each test writes a mailbox through one server's IMAP (APPEND with flags, keywords and dates,
CREATE, STORE, EXPUNGE, SUBSCRIBE; two messages are also dropped in ``new/`` and ``cur/`` as
another MDA would), takes that server's view of it, then serves the same Maildir with the
other server and compares: LIST (``*`` with attributes, and a few other patterns), LSUB,
STATUS, SELECT's UIDVALIDITY, UIDNEXT, EXISTS, UNSEEN and FLAGS (keywords), and for every
message its UID, FLAGS (less \\Recent), RFC822.SIZE, INTERNALDATE, ENVELOPE, BODYSTRUCTURE
and BODY.PEEK[]. Then the first server looks again: the second one must not have changed
what it sees.

Harmless differences, allowed here: INTERNALDATE's day is space-padded by us and zero-padded
by Dovecot (RFC 3501 date-day-fixed allows both); SELECT's FLAGS names every keyword of the
folder's ``dovecot-keywords`` with us, only those some message has with Dovecot (INDEX=MEMORY);
LSUB attributes (tests/interop/test_imap_dovecot_answers.py compares them) and the root
``LIST "Lists." ""`` returns (Dovecot ``Lists.``, we ``""``) are not compared.

Dovecot runs PREAUTH (``/usr/lib/dovecot/imap``, see ``tests/interop/dovecot.py``) with
INDEX=MEMORY, so all it knows comes from the files; as root it accesses mail as ``nobody``,
while our server runs as root in the tests: the tree is given to ``nobody`` before Dovecot
touches it (root reads it anyway). Our side is read through the same command helpers as
Dovecot's (:class:`MraImap`), over a socket to a real ``mra serve``; it is written with
imaplib.

Without Dovecot the tests are skipped on a developer's machine and FAIL under CI (``CI``).
``IMAP_INTEROP_KEEP=1`` keeps the Maildir and the server's directory.
"""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.interop.clients import assert_clean_log, crlf, seed_messages
from tests.interop.dovecot import (
    DovecotError,
    DovecotFactory,
    DovecotImap,
    DovecotTimeout,
    chown_tree,
    deliver_foreign,
    encode_mutf7,
    imap_quote,
    make_maildir,
    traversable_tempdir,
)
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop]

USER = "alice@example.test"
HOST = "127.0.0.1"
TIMEOUT = 20.0
FETCH_ITEMS = "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[])"
FOLDERS = ("Archive", "Lists.python", "Entwürfe", "Sent Items")
STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN")
# LIST (reference, pattern) pairs besides "" "*". Not `"Lists." ""`: Dovecot answers the
# root "Lists.", we answer "" (RFC 3501 6.3.8 allows both for a non-rooted reference).
LIST_PATTERNS = (("", "%"), ("", "Lists.%"), ("", "*python"), ("Lists.", "%"), ("", "inbox"))


# --------------------------------------------------------------------------------------
# Our server, read through DovecotImap's command helpers
# --------------------------------------------------------------------------------------


class MraImap(DovecotImap):
    """:class:`DovecotImap`'s commands (select, fetch, list_entries, store, ...) spoken to
    a running ``mra serve`` over a plain IMAP socket, logged in as alice."""

    def __init__(self, server: MraServer, timeout: float = TIMEOUT) -> None:
        # Not DovecotImap.__init__: no process, no config; only what its methods use.
        self.server = server
        self.timeout = timeout
        self._proc = None
        self._tag = 0
        self._buf = bytearray()
        self.sock = socket.create_connection((HOST, server.ports["imap"]), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.read_line()
        if not self.greeting.startswith(b"* OK"):
            raise DovecotError(f"unexpected greeting {self.greeting!r}", self.read_log())
        self.ok(f"LOGIN {imap_quote(USER)} {imap_quote(PASSWORD)}")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        try:
            line = self.reader.readline()
        except TimeoutError:
            raise DovecotTimeout("timed out reading from mra", self.read_log()) from None
        if not line:
            raise DovecotError("mra closed the connection", self.read_log())
        return line

    def read_exact(self, size: int) -> bytes:
        try:
            data = self.reader.read(size)
        except TimeoutError:
            raise DovecotTimeout("timed out reading from mra", self.read_log()) from None
        if len(data) != size:
            raise DovecotError("mra closed the connection in a literal", self.read_log())
        return data

    def read_log(self) -> str:
        return self.server.log()

    def kill(self) -> None:
        self.close()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def logout(self) -> list[bytes]:
        lines = self.ok("LOGOUT")
        self.close()
        return lines


# --------------------------------------------------------------------------------------
# What a client sees
# --------------------------------------------------------------------------------------


@dataclass
class MailboxView:
    uidvalidity: int
    uidnext: int
    exists: int
    unseen: int | None  # SELECT's [UNSEEN n]: the first unseen message's number
    flags: list[str]  # the untagged FLAGS of SELECT: system flags and the keywords
    messages: dict[int, dict[str, Any]]  # UID -> FETCH items (FLAGS as a sorted list)
    status: dict[str, int]  # STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN), before SELECT


@dataclass
class View:
    listing: dict[str, tuple[list[str], str | None]]  # LIST: name -> (attributes, delimiter)
    patterns: dict[str, list[str]]  # LIST with other patterns: the names it returns
    subscribed: list[str]  # LSUB's names
    mailboxes: dict[str, MailboxView]


def take_view(imap: DovecotImap, *, readonly: bool) -> View:
    """Everything a client can see: LIST, LSUB, and every selectable mailbox."""
    listing = {name: (sorted(attrs), delim) for attrs, delim, name in imap.list_entries("", "*")}
    patterns = {
        f"{ref!r} {pattern!r}": sorted(name for _, _, name in imap.list_entries(ref, pattern))
        for ref, pattern in LIST_PATTERNS
    }
    selectable = [
        name
        for name, (attrs, _) in sorted(listing.items())
        if not {"\\Noselect", "\\NonExistent"} & set(attrs)
    ]
    status = {name: imap.status(name, STATUS_ITEMS) for name in selectable}
    mailboxes: dict[str, MailboxView] = {}
    for name in selectable:
        info = imap.select(name, readonly=readonly)
        messages: dict[int, dict[str, Any]] = {}
        if info.get("exists"):
            for uid, items in imap.fetch("1:*", FETCH_ITEMS).items():
                flags = items.pop("FLAGS")
                assert isinstance(flags, list)
                items["FLAGS"] = sorted(
                    f.decode() for f in flags if isinstance(f, bytes) and f != b"\\Recent"
                )
                messages[uid] = items
        mailboxes[name] = MailboxView(
            info["uidvalidity"],
            info["uidnext"],
            info.get("exists", 0),
            info.get("unseen"),
            sorted(info.get("flags", [])),
            messages,
            status[name],
        )
    return View(listing, patterns, sorted(imap.lsub()), mailboxes)


def assert_same_view(label: str, ours: View, dovecot: View) -> None:
    """Field by field, so that a failure names what differs."""
    assert sorted(ours.listing) == sorted(dovecot.listing), f"{label}: LIST names"
    for name, (attrs, delim) in dovecot.listing.items():
        assert ours.listing[name] == (attrs, delim), f"{label}: LIST {name}"
    for pattern, names in dovecot.patterns.items():
        assert ours.patterns[pattern] == names, f"{label}: LIST {pattern}"
    assert ours.subscribed == dovecot.subscribed, f"{label}: LSUB"
    assert sorted(ours.mailboxes) == sorted(dovecot.mailboxes), f"{label}: mailboxes"
    for name, want in dovecot.mailboxes.items():
        got = ours.mailboxes[name]
        where = f"{label}: {name}"
        assert (got.uidvalidity, got.uidnext, got.exists, got.unseen) == (
            want.uidvalidity,
            want.uidnext,
            want.exists,
            want.unseen,
        ), f"{where}: UIDVALIDITY, UIDNEXT, EXISTS, UNSEEN"
        assert got.status == want.status, f"{where}: STATUS"
        # FLAGS: Dovecot (INDEX=MEMORY) names the keywords some message has now; we name
        # every keyword of the folder's dovecot-keywords. Both are "defined flags".
        system = {f for f in want.flags if f.startswith("\\")}
        assert {f for f in got.flags if f.startswith("\\")} == system, f"{where}: FLAGS"
        assert set(want.flags) <= set(got.flags), f"{where}: FLAGS {got.flags} {want.flags}"
        assert set(got.flags) - set(want.flags) <= keywords_ever(name), f"{where}: FLAGS"
        assert sorted(got.messages) == sorted(want.messages), f"{where}: UIDs"
        for uid, items in want.messages.items():
            for item in ("FLAGS", "RFC822.SIZE", "BODY[]"):
                assert got.messages[uid][item] == items[item], f"{where}: UID {uid} {item}"
            # date-day-fixed is (SP DIGIT) / 2DIGIT: we pad with a space, Dovecot with 0.
            got_date, want_date = got.messages[uid]["INTERNALDATE"], items["INTERNALDATE"]
            assert _internaldate(got_date) == _internaldate(want_date), (
                f"{where}: UID {uid} INTERNALDATE {got_date!r} {want_date!r}"
            )
            for item in ("ENVELOPE", "BODYSTRUCTURE"):
                assert got.messages[uid][item] == items[item], f"{where}: UID {uid} {item}"


def _internaldate(value: Any) -> bytes:
    """A date-time with the day zero-padded (``" 4-Feb-2024 ..."`` -> ``"04-Feb-2024 ..."``)."""
    assert isinstance(value, bytes), value
    assert re.fullmatch(rb"[ 0-3]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}", value), value
    return b"0" + value[1:] if value.startswith(b" ") else value


# --------------------------------------------------------------------------------------
# The mail
# --------------------------------------------------------------------------------------


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


ALTERNATIVE = _crlf(
    """From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>
To: "Doe, Jane" <jane@example.test>, bob@example.test
Cc: undisclosed-recipients:;
Reply-To: Lists <list@example.org>
Subject: =?utf-8?b?R3LDvMOfZQ==?= and an HTML part
Date: Thu, 16 Nov 2023 10:00:00 -0500
Message-ID: <alternative@compare.test>
In-Reply-To: <parent@compare.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"
Content-Language: de

preamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8; format=flowed
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe,=20
=3D the plain part.
--inner
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: base64
Content-ID: <html@compare.test>

PGh0bWw+PGJvZHk+R3LDvMOfZTwvYm9keT48L2h0bWw+Cg==
--inner--
--outer
Content-Type: image/png; name="dot.png"
Content-Transfer-Encoding: base64
Content-Disposition: inline; filename="dot.png"; size=67
Content-Description: a single pixel
Content-Location: http://example.org/dot.png

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==
--outer
Content-Type: application/pdf
Content-Disposition: attachment;
 filename*=utf-8''%C3%9Cbersicht.pdf
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer--
epilogue
"""
)

FORWARDED = _crlf(
    """From: Bob <bob@example.test>
Sender: Mailer <mailer@example.test>
To: alice@example.test
Subject: Fwd: the original
Date: Fri, 17 Nov 2023 12:00:00 +0000
Message-ID: <forwarded@compare.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=fwd

--fwd
Content-Type: text/plain

See below.
--fwd
Content-Type: message/rfc822
Content-Disposition: inline

From: Carol <carol@example.org>
To: Bob <bob@example.test>
Subject: the original
Date: Mon, 13 Nov 2023 09:00:00 +0100
Message-ID: <original@compare.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=orig

--orig
Content-Type: text/plain; charset=us-ascii

original text
--orig
Content-Type: text/enriched

<bold>original</bold>
--orig--
--fwd--
"""
)

DIGEST = _crlf(
    """From: digest@lists.example.org
To: alice@example.test
Subject: a digest
Message-ID: <digest@compare.test>
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="d"

--d

From: one@example.org
Subject: first

first body
--d

From: two@example.org
Subject: second

second body
--d
Content-Type: text/plain

not a message
--d--
"""
)

BARE = b"Subject: no date, no From, no Content-Type\nX-Nothing: here\n\nbody\n"
HEADER_ONLY = b"From: a@example.org\nSubject: header only, no body\n"
BROKEN = _crlf(
    """From: "unterminated <a@example.org>
To: @route,@other:user@example.org, <>, group: a@b, c@d;
Subject: broken MIME
Message-ID: <broken@compare.test>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=never-closed

--never-closed
Content-Type: text/plain; charset=
Content-Transfer-Encoding: x-uuencode

text
--never-closed
Content-Type: TEXT/X-Unknown; NAME*0="a"; NAME*1="b.txt"

data
"""
)

ADDRESSES = _crlf(
    """From: "Doe, John (Jr.)" <"john doe"@example.org> (a comment)
Sender: <>
Reply-To: =?iso-8859-1?q?Andr=E9?= <andre@example.org>, Group: ;
To: team: a@example.org, "B" <b@example.org>;, c@[192.0.2.1],
 d@example.org
Cc: <@relay.example.org:e@example.org>, "f@example.org"
Bcc: g
In-Reply-To: <one@x> <two@x>
References: <one@x>
Subject: a subject
 folded over two lines
Subject: a second Subject field
Date: Sat, 18 Nov 2023 12:00:00 +0000 (UTC)
Message-ID: <addresses@compare.test> (comment)
MIME-Version: 1.0
Content-Type: Text/Plain; Charset="ISO-8859-1"; Format=Flowed; DelSp=Yes
Content-Transfer-Encoding: Quoted-Printable
Content-Disposition: INLINE
Content-Language: en, de-CH
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

caf=E9
"""
)

# name -> message
MESSAGES: dict[str, bytes] = {
    **{seed.name: seed.data for seed in seed_messages()},
    "alternative": ALTERNATIVE,
    "forwarded": FORWARDED,
    "digest": DIGEST,
    "bare": BARE,
    "header-only": HEADER_ONLY,
    "broken": BROKEN,
    "addresses": ADDRESSES,
    "expunged": b"Subject: to be expunged\n\nbye\n",
}


def _append_plan() -> list[tuple[str, str, str, str | None]]:
    """(mailbox, message name, flags, INTERNALDATE) for every APPEND."""
    return [
        ("INBOX", "alternative", "\\Seen $Forwarded Important", "01-Feb-2024 10:11:12 +0100"),
        ("INBOX", "forwarded", "\\Answered \\Flagged", "02-Feb-2024 00:00:00 -0500"),
        ("INBOX", "digest", "", None),
        ("INBOX", "broken", "\\Draft NonJunk", "29-Feb-2024 23:59:59 +0000"),
        ("INBOX", "expunged", "NonJunk", None),
        ("INBOX", "addresses", "\\Answered", "10-Feb-2024 10:10:10 +1030"),
        ("INBOX", "big", "\\Seen", "03-Feb-2024 03:03:03 +0000"),
        ("Archive", "crlf", "\\Seen $Label1", "04-Feb-2024 04:04:04 +0000"),
        ("Archive", "utf8-header", "", "05-Feb-2024 05:05:05 +0200"),
        ("Archive", "header-only", "", None),
        ("Archive", "expunged", "\\Deleted", None),
        ("Lists.python", "dot-line", "\\Seen", "06-Feb-2024 06:06:06 +0000"),
        ("Lists.python", "bare", "$Label1 $Label2", "07-Feb-2024 07:07:07 +0000"),
        ("Entwürfe", "no-newline", "\\Draft", "08-Feb-2024 08:08:08 +0000"),
        ("Sent Items", "multipart", "\\Seen", "09-Feb-2024 09:09:09 +0000"),
    ]


FOREIGN = (  # dropped into INBOX as another MDA would, before any server sees the Maildir
    ("new", "double-dot", ""),
    ("cur", "dot-no-newline", ":2,S"),
)


def keywords_ever(mailbox: str) -> set[str]:
    """Every keyword the test ever sets on a message in `mailbox`."""
    flags = [f for box, _, f, _ in _append_plan() if box == mailbox]
    flags += [f for box, _, _, f in STORES if box == mailbox]
    return {w for f in flags for w in f.strip("()").split() if not w.startswith("\\")}


def _drop_foreign(maildir: Path) -> None:
    now = int(time.time()) - 7200
    for i, (subdir, name, info) in enumerate(FOREIGN):
        path = deliver_foreign(
            maildir, f"{now + i}.M{i}P{os.getpid()}.foreign{info}", MESSAGES[name], subdir=subdir
        )
        os.utime(path, (now + i, now + i))


# The changes made after the APPENDs, through the same server: (mailbox, message, op, flags);
# then EXPUNGE in these mailboxes (both copies of "expunged" go).
STORES = (
    ("INBOX", "alternative", "-FLAGS", "(Important)"),
    ("INBOX", "digest", "+FLAGS", "(\\Seen $Forwarded)"),
    ("INBOX", "expunged", "FLAGS", "(\\Deleted)"),
    ("Archive", "utf8-header", "+FLAGS", "(\\Flagged $Label1 Later)"),
)
EXPUNGED = ("INBOX", "Archive")
SUBSCRIBED = ("Archive", "Entwürfe")


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@dataclass
class Setup:
    server: MraServer  # not started
    maildir: Path  # alice's Maildir++ root, where Dovecot works too
    dovecot: DovecotFactory


@pytest.fixture
def setup(require_dovecot: None) -> Iterator[Setup]:
    base = traversable_tempdir("mra-dovecot-compare-")
    # No special folders, as in Dovecot's default configuration (test_imap_dovecot_mailboxes.py
    # compares the two configured with them).
    server = MraServer(base, "[mailboxes]\n", listeners=("imap",))
    maildir = make_maildir(server.mail / "example.test" / "alice")
    factory = DovecotFactory(maildir, timeout=TIMEOUT)
    try:
        yield Setup(server, maildir, factory)
    finally:
        factory.close_all()
        server.stop()
        if not os.environ.get("IMAP_INTEROP_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


def dovecot_view(s: Setup, *, readonly: bool) -> View:
    chown_tree(s.maildir)  # our server may have written files as root
    with s.dovecot.imap() as imap:
        return take_view(imap, readonly=readonly)


def our_view(s: Setup, *, readonly: bool) -> View:
    imap = MraImap(s.server)
    try:
        return take_view(imap, readonly=readonly)
    finally:
        imap.logout()


def _check_log(s: Setup, after: str) -> None:
    assert_clean_log(s.server.log(), after)


# --------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------


def test_mailbox_written_by_dovecot_is_served_the_same_by_us(setup: Setup) -> None:
    s = setup
    _drop_foreign(s.maildir)
    with s.dovecot.imap() as imap:
        for folder in FOLDERS:
            imap.create(folder)
        for folder in SUBSCRIBED:
            imap.subscribe(folder)
        uids: dict[tuple[str, str], int | None] = {}
        for mailbox, name, flags, date in _append_plan():
            uids[mailbox, name] = imap.append(mailbox, MESSAGES[name], flags=flags, date=date)
        for mailbox in sorted({m for m, *_ in STORES}):
            imap.select(mailbox)
            for box, name, op, flags in STORES:
                if box == mailbox:
                    imap.store(_uid(uids, box, name), op, flags)
            if mailbox in EXPUNGED:
                imap.expunge()
        imap.logout()
    reference = dovecot_view(s, readonly=True)
    _sanity(reference)

    s.server.start()
    ours = our_view(s, readonly=False)
    _check_log(s, "serving Dovecot's mailbox")
    assert_same_view("Dovecot's mailbox, served by us", ours, reference)

    # And Dovecot still sees the same after our SELECTs (new/ moved to cur/, and so on).
    again = dovecot_view(s, readonly=False)
    assert_same_view("Dovecot's mailbox, after us", again, reference)


def test_mailbox_written_by_us_is_served_the_same_by_dovecot(setup: Setup) -> None:
    s = setup
    _drop_foreign(s.maildir)
    s.server.start()
    m = imaplib.IMAP4(HOST, s.server.ports["imap"], timeout=TIMEOUT)
    try:
        m.login(USER, PASSWORD)
        for folder in FOLDERS:
            _ok(m.create(_quoted(folder)))
        for folder in SUBSCRIBED:
            _ok(m.subscribe(_quoted(folder)))
        uids: dict[tuple[str, str], int | None] = {}
        for mailbox, name, flags, date in _append_plan():
            typ, data = m.append(_quoted(mailbox), flags or None, _date(date), MESSAGES[name])
            assert typ == "OK", data
            found = re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0] or b"")
            uids[mailbox, name] = int(found.group(1)) if found else None
        for mailbox in sorted({box for box, *_ in STORES}):
            _ok(m.select(_quoted(mailbox)))
            for box, name, op, flags in STORES:
                if box == mailbox:
                    _ok(m.uid("STORE", str(_uid(uids, box, name)), op, flags))
            if mailbox in EXPUNGED:
                _ok(m.expunge())
    finally:
        m.logout()
    _check_log(s, "the writes through imaplib")
    reference = our_view(s, readonly=True)
    _sanity(reference)

    theirs = dovecot_view(s, readonly=False)
    assert_same_view("our mailbox, served by Dovecot", reference, theirs)

    # And we still see the same after Dovecot's SELECTs.
    again = our_view(s, readonly=False)
    _check_log(s, "serving the mailbox after Dovecot")
    assert_same_view("our mailbox, after Dovecot", again, theirs)


def _uid(uids: dict[tuple[str, str], int | None], mailbox: str, name: str) -> int:
    uid = uids[mailbox, name]
    assert uid is not None, f"no APPENDUID for {name} in {mailbox}"
    return uid


def _quoted(mailbox: str) -> str:
    return imap_quote(encode_mutf7(mailbox))


def _date(date: str | None) -> str | None:
    return f'"{date}"' if date else None


def _ok(result: tuple[str, Sequence[Any]]) -> None:
    typ, data = result
    assert typ == "OK", data


def _sanity(view: View) -> None:
    """The writes did what the test means: every message of the plan is there, in CRLF,
    less the expunged; the folders and subscriptions too."""
    assert set(view.listing) == {"INBOX", "Lists", *FOLDERS}, view.listing
    assert view.subscribed == sorted(SUBSCRIBED)
    for mailbox, box in view.mailboxes.items():
        names = [n for m, n, _, _ in _append_plan() if m == mailbox and n != "expunged"]
        if mailbox == "INBOX":
            names += [name for _, name, _ in FOREIGN]
        want = sorted(crlf(MESSAGES[name]) for name in names)
        assert sorted(items["BODY[]"] for items in box.messages.values()) == want, mailbox
        assert box.exists == len(names), mailbox
    assert "$Forwarded" in view.mailboxes["INBOX"].flags
