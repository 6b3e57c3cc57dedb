"""Commands whose answers must be Dovecot's, asked of both servers on one Maildir
(tests/interop/side_by_side.py)."""

from __future__ import annotations

import pytest

from mailstore.store import MailStore
from tests.interop.side_by_side import SideBySide

pytestmark = [pytest.mark.interop]

ADDRESSES = [
    b'From: "=?UTF-8?Q?J=C3=B6rg_M=C3=BCller?=" (the boss) <jorg@example.com>\r\n'
    b"To: friends: ann@example.com, bob@example.org;\r\n"
    b'Cc: Carol <carol@EXAMPLE.net>, "Dan D." <dan@x.y>\r\n'
    b"Subject:   hello   world\t again\r\n  folded  =?utf-8?q?caf=C3=A9?=  =?utf-8?q?_bar?= \r\n"
    b"\r\nbody\r\n",
    b'From: "Smith, John" <john@x.org>, =?iso-8859-1?q?Andr=E9?= <andre@y.fr>, bad address,'
    b" <@route,@r2:joe@z.com>\r\n"
    b'To: "" <empty@x>, undisclosed-recipients:;\r\nSubject: x\r\n\r\nb\r\n',
    b"From: plain@example.com\r\nTo: plain@example.com\r\nSubject: plain\r\n\r\nb\r\n",
]

# FROM, TO, CC and BCC search the address list in Dovecot's normal form (comments dropped,
# `name <mailbox@domain>`, groups `name: ...;`), SUBJECT with blanks made one space.
SEARCHES = [
    "FROM jorg",
    "FROM boss",
    'FROM "the boss"',
    'FROM "<jorg"',
    'FROM "ller <jorg"',
    'FROM "\\"J"',
    "FROM {13+}\r\nJörg Müller <",
    "TO friends",
    'TO "friends: "',
    'TO "friends: ann"',
    'TO "ann@example.com, bob"',
    'TO "s: a"',
    'TO "org;"',
    'TO "org>;"',
    'TO "com>, <bob"',
    'TO "undisclosed-recipients:;"',
    'CC "Carol <carol"',
    'CC "carol@example.net>, "',
    'CC "\\"Dan D.\\" <dan"',
    'CC "Dan D. <dan"',
    'FROM "\\"Smith, John\\""',
    'FROM "Smith, John"',
    'FROM "André <andre"',
    "FROM MISSING",
    "FROM bad",
    'FROM "<@route,@r2:joe"',
    'TO "\\"\\" <empty"',
    'TO "<empty"',
    'FROM "<plain@example.com>"',
    'SUBJECT "hello world again"',
    'SUBJECT "hello  world"',
    'SUBJECT "again folded"',
    'SUBJECT "folded café bar"',
    'SUBJECT "café  bar"',
    'SUBJECT " hello"',
    'HEADER Subject "hello  world"',
    'HEADER From "the boss"',
]


def test_search_address_and_subject_forms_are_dovecots(require_dovecot: None) -> None:
    with SideBySide(ADDRESSES) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for key in SEARCHES:
            both.same(f"SEARCH CHARSET UTF-8 {key}")


def _folders(store: MailStore) -> None:
    for name in ("a.b.c", "m", "m.n"):
        store.create_folder(name)
    for name in ("a.b.c", "x.y", "m", "m.n.o"):
        store.subscribe(name)


def test_lsub_and_list_patterns_are_dovecots(require_dovecot: None) -> None:
    """LSUB names a parent `%` stops at with \\Noselect (RFC 3501 6.3.9); a pattern that is
    not valid modified UTF-7 matches what it matches."""
    # No special folders on either side (Dovecot's default configuration has none).
    with SideBySide([b"From: x@y\r\n\r\nb\r\n"], extra="[mailboxes]\n", setup=_folders) as both:
        for pattern in ("%", "a.%", "*", "a.b.%", "%.%", "x%", "m%", "m.%", "nothing"):
            both.same(f'LSUB "" "{pattern}"', any_order=True)
        for pattern in ("*", "%", "a.%", "%.%", "&Jjo", "&Jjo*", "&", "*&-*", "a&*"):
            both.same(f'LIST "" "{pattern}"', any_order=True)
        both.same('LIST "" {6+}\r\ncafé*')  # 8-bit: not modified UTF-7 either


def test_refused_arguments_are_dovecots(require_dovecot: None) -> None:
    with SideBySide([b"From: x@y\r\n\r\nb\r\n"]) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in (
            "STORE 1 +FLAGS (\\Recent)",
            "STORE 1 FLAGS \\Recent",
            "STATUS INBOX ()",
            "APPEND INBOX (\\Recent) {3+}\r\nx\r\n",
            "APPEND INBOX {0}",
        ):
            ours, dovecot = both.both(command)
            assert ours[-1] == dovecot[-1], (command, ours, dovecot)


def test_messages_expunged_elsewhere_are_answered_as_dovecot(require_dovecot: None) -> None:
    """Another process expunged message 2 after both servers' sessions selected the folder,
    and neither session was told yet (RFC 2180 4.1): FETCH answers what is known of it and
    ends in OK [EXPUNGEISSUED] (a UID FETCH is followed by the EXPUNGE), STORE answers its
    flags, SEARCH leaves it out, COPY fails whole and lets the EXPUNGE through."""
    messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i) for i in range(1, 4)]
    with SideBySide(messages, setup=lambda store: store.create_folder("Arch")) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        both.ours.ok("FETCH 1:* (FLAGS)")
        both.dovecot.ok("FETCH 1:* (FLAGS)")
        MailStore(str(both.maildir)).mailbox("INBOX").expunge([2])
        for command in (
            "FETCH 1:3 (FLAGS)",
            "FETCH 2 (BODY.PEEK[])",
            "FETCH 1:3 (BODY.PEEK[TEXT])",
            "UID FETCH 1:3 (FLAGS BODY.PEEK[TEXT])",
            "STORE 2 +FLAGS (\\Flagged)",
            "UID STORE 2 +FLAGS (\\Seen)",
            "SEARCH TEXT body",
            "COPY 1:3 Arch",
            "NOOP",
        ):
            ours, dovecot = (_without_recent(a) for a in both.both(command))
            assert ours == dovecot, (command, ours, dovecot)


def _without_recent(lines: list[bytes]) -> list[bytes]:
    """\\Recent is per session (our session claimed the new messages first)."""
    return [
        line.replace(b" \\Recent", b"").replace(b"\\Recent", b"")
        for line in lines
        if not line.endswith(b" RECENT")
    ]
