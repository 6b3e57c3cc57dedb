"""Messages with UTF-8 headers (RFC 6532) and UTF-8 folder names, asked of both servers by a
session that did not ENABLE UTF8=ACCEPT or IMAP4rev2 (Dovecot 2.3 has neither): our answers
must stay Dovecot's (tests/interop/side_by_side.py). RFC 6855 3 and 7 leave the server to send
such headers to a legacy client as it can; Dovecot sends their 8-bit strings as literals, and
so do we, to every session."""

from __future__ import annotations

import pytest

from mailstore.store import MailStore
from tests.interop.side_by_side import SideBySide

pytestmark = [pytest.mark.interop]

UTF8_HEADERS = [
    (
        "From: Jörg Müller <jörg@müller.example>\r\n"
        'To: "Zoë" <zoë@example.test>, group: ann@example.test;\r\n'
        "Subject: Grüße aus Zürich\r\n"
        "Message-ID: <grüße@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        'Content-Type: text/plain; charset="utf-8"; name="Grüße.txt"\r\n'
        'Content-Disposition: attachment; filename="Grüße.txt"\r\n'
        "\r\n"
        "Grüße!\r\n"
        "--b--\r\n"
    ).encode(),
    b"From: plain@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nb\r\n",
]


def _folders(store: MailStore) -> None:
    for name in ("Entwürfe", "Entwürfe.日本語", "A&B"):
        store.create_folder(name)
        store.subscribe(name)


def test_utf8_headers_and_names_to_a_legacy_session_are_dovecots(require_dovecot: None) -> None:
    with SideBySide(UTF8_HEADERS, extra="[mailboxes]\n", setup=_folders) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in (
            "FETCH 1:2 ENVELOPE",
            "FETCH 1:2 BODYSTRUCTURE",
            "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]",
            "FETCH 1 BINARY.PEEK[1]",
            "SEARCH CHARSET UTF-8 SUBJECT {6+}\r\ngrüße",
            "SEARCH CHARSET UTF-8 FROM {7+}\r\nmüller",
            "SEARCH CHARSET UTF-8 TO {4+}\r\nzoë",
            'SEARCH HEADER Message-ID "example.test"',
        ):
            both.same(command)
        both.same('LIST "" "*"', any_order=True)
        both.same('LSUB "" "*"', any_order=True)
        both.same("STATUS Entw&APw-rfe (MESSAGES)")
