"""UTF8=ACCEPT (RFC 6855) and IMAP4rev2 (RFC 9051) against a real `mra serve`: imapclient with
UTF-8 folder names and UTF-8 headers, a legacy imapclient seeing the same folders in modified
UTF-7, and an IMAP4rev2 session over a plain socket (no Python client speaks IMAP4rev2)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from imapclient import IMAPClient

from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_imap import client

I18N_MESSAGE = (
    "From: Jörg Müller <jörg@müller.example>\r\n"
    "To: alice@example.test\r\n"
    "Subject: Grüße aus Zürich\r\n"
    "\r\n"
    "Grüße!\r\n"
).encode()


def utf8_client(server: MraServer) -> IMAPClient:
    c = client(server)
    assert c.enable("UTF8=ACCEPT") == [b"UTF8=ACCEPT"]
    # imapclient 4.1's enable() leaves the imaplib connection it sends through encoding in
    # ASCII; imaplib's own enable() switches it to UTF-8. Our answer to the second ENABLE
    # names nothing (RFC 5161 3.1: only what this command turned on).
    assert c._imap.enable("UTF8=ACCEPT") == ("OK", [b"ENABLE completed"])
    assert c._imap.untagged_responses.pop("ENABLED") == [b""]
    c.folder_encode = False  # names as they are, not modified UTF-7
    return c


def test_imapclient_utf8_folders_and_headers(server: MraServer) -> None:
    c = utf8_client(server)
    c.create_folder("Entwürfe")
    c.create_folder("Entwürfe.日本語")
    names = {name for _flags, _delim, name in c.list_folders()}
    assert {"Entwürfe".encode(), "Entwürfe.日本語".encode()} <= names, names
    # Delivered as mda would: imapclient 4.1 cannot APPEND here (imaplib's append() in UTF-8
    # mode puts "UTF8 (" inside its literal; multiappend() sends the quoted name as str).
    server.store().mailbox("Entwürfe").append(I18N_MESSAGE)
    assert c.select_folder("Entwürfe")[b"EXISTS"] == 1
    assert c.search([b"SUBJECT", "grüsse".encode()]) == []
    assert c.search([b"SUBJECT", "GRÜßE".encode()]) == [1]  # i;unicode-casemap, ß is no ss
    assert c.search([b"SUBJECT", "grüße".encode(), b"FROM", "müller".encode()]) == [1]
    envelope = c.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
    assert envelope.subject == "Grüße aus Zürich".encode()
    assert envelope.from_[0].name == "Jörg Müller".encode()
    assert envelope.from_[0].host == "müller.example".encode()
    assert c.folder_status("Entwürfe", ["MESSAGES", "SIZE"]) == {
        b"MESSAGES": 1,
        b"SIZE": len(I18N_MESSAGE),
    }
    c.rename_folder("Entwürfe.日本語", "Entwürfe.台北")
    c.close_folder()
    # The same folders to a session that did not enable UTF-8: modified UTF-7 on the wire,
    # which imapclient decodes back.
    legacy = client(server)
    listed = {name for _flags, _delim, name in legacy.list_folders()}
    assert {"Entwürfe", "Entwürfe.台北"} <= listed, listed
    assert legacy.select_folder("Entwürfe", readonly=True)[b"EXISTS"] == 1
    legacy.logout()
    c.delete_folder("Entwürfe.台北")
    assert "Entwürfe.台北".encode() not in {n for _f, _d, n in c.list_folders()}
    c.logout()


class Raw:
    """A plain socket session: send lines, read up to the tagged answer."""

    def __init__(self, server: MraServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=30)
        self.file = self.sock.makefile("rb")
        self.file.readline()

    def command(self, data: bytes) -> list[bytes]:
        tag = data.split(b" ", 1)[0]
        self.sock.sendall(data)
        lines = []
        while True:
            line = self.file.readline()
            assert line, lines
            lines.append(line.rstrip(b"\r\n"))
            if line.startswith(tag + b" "):
                return lines

    def close(self) -> None:
        self.sock.close()


def test_imap4rev2_session(server: MraServer) -> None:
    s = Raw(server)
    s.command(b"a LOGIN alice@example.test " + PASSWORD.encode() + b"\r\n")
    assert s.command(b"b ENABLE IMAP4rev2\r\n") == [
        b"* ENABLED IMAP4rev2",
        b"b OK ENABLE completed",
    ]
    n = len(I18N_MESSAGE)
    appended = s.command(b"c APPEND INBOX UTF8 (~{%d+}\r\n" % n + I18N_MESSAGE + b")\r\n")
    assert appended[-1].startswith(b"c OK [APPENDUID ")
    selected = s.command(b"d SELECT inbox\r\n")
    assert b'* LIST (\\HasNoChildren) "." INBOX ("OLDNAME" ("inbox"))' in selected
    assert b"* 3 EXISTS" in selected
    assert not any(b"RECENT" in line or b"UNSEEN" in line for line in selected)
    assert s.command('e SEARCH SUBJECT "zürich"\r\n'.encode()) == [
        b'* ESEARCH (TAG "e") ALL 3',
        b"e OK SEARCH completed",
    ]
    assert s.command(b"f FETCH 3 BODY.PEEK[]<5000000000.1>\r\n") == [
        b'* 3 FETCH (BODY[]<5000000000> "")',
        b"f OK FETCH completed",
    ]
    assert s.command(b"g FETCH 1:* FLAGS\r\n")[:3] == [
        b"* 1 FETCH (FLAGS ())",
        b"* 2 FETCH (FLAGS ())",
        b"* 3 FETCH (FLAGS ())",
    ]
    # A change made by another session arrives with its UID (RFC 9051 7.5.2).
    other = client(server)
    other.select_folder("INBOX")
    other.add_flags([2], ["\\Flagged"])
    other.logout()
    assert s.command(b"h NOOP\r\n") == [
        b"* 2 FETCH (UID 2 FLAGS (\\Flagged))",
        b"h OK NOOP completed",
    ]
    s.command(b"i LOGOUT\r\n")
    s.close()
    stored = server.store().mailbox("INBOX")
    stored.sync()
    assert stored.read_message(stored.uids()[-1]) == I18N_MESSAGE


def test_readme_python_example(server: MraServer) -> None:
    """The python block of README.md's "IMAP4rev2 and UTF-8", as written."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("#### IMAP4rev2 and UTF-8", 1)[1].split("\n#", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    code = code.replace("PASSWORD", PASSWORD).replace("1143", str(server.ports["imap"]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    assert b"""b'.', b'Entw\\xc3\\xbcrfe')""" in done.stdout, done.stdout
    assert "Entwürfe" in server.store().list_folders()
