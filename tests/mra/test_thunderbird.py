"""Thunderbird's IMAP conversation, command for command as it was observed against Dovecot
(../shared/notes/clients-and-mtas.md), replayed against a real `mra serve` over IMAPS: two
connections, one of them idling on INBOX while the other opens, stars, moves and archives."""

from __future__ import annotations

import base64
import re
import socket
import ssl

from tests.mra.conftest import PASSWORD, MraServer

USER = "alice@example.test"
BIG = b"Subject: big\r\nFrom: bob@example.test\r\n\r\n" + b"0123456789abcde\r\n" * 9000


class Client:
    """A raw IMAP client: the exact bytes Thunderbird sends, every response line kept."""

    def __init__(self, port: int) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, f"connection closed: {self.buf!r}"
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        match = re.search(rb"\{(\d+)\}$", line)
        if match:  # a literal follows: keep it inside the line
            size = int(match.group(1))
            while len(self.buf) < size:
                data = self.sock.recv(65536)
                assert data
                self.buf += data
            line += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]
            line += self.line()
        return line

    def send(self, text: bytes) -> None:
        self.sock.sendall(text + b"\r\n")

    def command(self, text: str) -> tuple[list[bytes], bytes]:
        """(untagged lines, tagged line); the tagged status must be OK."""
        self.n += 1
        tag = f"{self.n}".encode()
        self.send(tag + b" " + text.encode())
        return self.until(tag)

    def until(self, tag: bytes) -> tuple[list[bytes], bytes]:
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), line
                return untagged, line
            untagged.append(line)

    def login(self) -> bytes:
        """AUTHENTICATE PLAIN without an initial response: `+`, then the base64 line."""
        self.n += 1
        tag = f"{self.n}".encode()
        self.send(tag + b" authenticate PLAIN")
        assert self.line().startswith(b"+")
        self.send(base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()))
        return self.until(tag)[1]


def uid_of(lines: list[bytes]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := re.search(rb"UID (\d+)", line))]


def test_thunderbird_session(server_factory: type[MraServer]) -> None:
    # A server without [mailboxes] auto folders: Thunderbird makes its own Trash.
    server = server_factory("[mailboxes]\n")
    inbox = server.store().mailbox("INBOX")
    inbox.append(b"From: bob@example.test\nSubject: one\n\nbody one\n.\nafter a dot line\n")
    inbox.append(b"From: carol@example.test\r\nSubject: two\r\n\r\nbody two\r\n")
    inbox.append(BIG)  # uid 3, 144 KiB: fetched in 64 KiB chunks
    inbox.append(b"Subject: four\r\n\r\nfour\r\n")
    inbox.append(b"Subject: five\r\n\r\nfive\r\n")
    server.start()
    port = server.ports["imaps"]

    # Thunderbird never asks CAPABILITY: it reads the greeting and the login's tagged OK.
    a = Client(port)
    assert b"[CAPABILITY IMAP4rev1" in a.greeting and b"AUTH=PLAIN" in a.greeting
    ok = a.login()
    assert b"[CAPABILITY IMAP4rev1" in ok and b"IDLE" in ok and b"MOVE" in ok
    untagged, _ = a.command("namespace")
    assert untagged == [b'* NAMESPACE (("" ".")) NIL NIL']
    a.command('ID ("name" "Thunderbird" "version" "153.8.0")')
    untagged, _ = a.command('list "" "*"')
    assert any(line.endswith(b' "." INBOX') for line in untagged)
    assert not any(b"Trash" in line for line in untagged)
    a.command('list "" "INBOX"')
    a.command('create "Trash"')
    a.command('subscribe "Trash"')
    untagged, _ = a.command('STATUS "Trash" (UIDNEXT MESSAGES UNSEEN RECENT)')
    assert untagged == [b"* STATUS Trash (MESSAGES 0 RECENT 0 UIDNEXT 1 UNSEEN 0)"]

    untagged, ok = a.command('select "INBOX"')
    assert b"* 5 EXISTS" in untagged
    assert any(b"[PERMANENTFLAGS (" in line and b"\\*)]" in line for line in untagged)
    assert any(b"[UIDNEXT 6]" in line for line in untagged)
    assert b"[READ-WRITE]" in ok
    untagged, _ = a.command("UID fetch 1:* (FLAGS)")
    assert uid_of(untagged) == [1, 2, 3, 4, 5]
    fields = (
        "From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups "
        "In-Reply-To Content-Type Reply-To Received"
    )
    untagged, _ = a.command(
        f"UID fetch 1:5 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({fields})])"
    )
    assert len(untagged) == 5 and b"Subject: big" in untagged[2]
    untagged, _ = a.command("UID fetch 1:5 (UID RFC822.SIZE BODY.PEEK[])")
    assert b"RFC822.SIZE %d" % len(BIG) in untagged[2]
    a.command("noop")
    # UIDNEXT:* when UIDNEXT is above every UID: the last message (RFC 3501 6.4.8).
    untagged, _ = a.command("UID fetch 6:* (FLAGS)")
    assert uid_of(untagged) == [5]

    # A second connection, as Thunderbird opens for another folder; the first one idles.
    b = Client(port)
    b.login()
    a.n += 1
    idle_tag = f"{a.n}".encode()
    a.send(idle_tag + b" IDLE")
    assert a.line().startswith(b"+ ")

    # New mail arrives (delivered by another session's APPEND here).
    message = b"Subject: new\r\nFrom: carol@example.test\r\n\r\nnew mail\r\n"
    b.send(b"x1 APPEND INBOX {%d}" % len(message))
    assert b.line().startswith(b"+")
    b.send(message)
    _, ok = b.until(b"x1")
    assert re.search(rb"\[APPENDUID \d+ 6\]", ok)
    assert a.line() == b"* 6 EXISTS"
    assert a.line() == b"* 6 RECENT"  # the five of the SELECT were new to it too
    a.send(b"DONE")
    a.until(idle_tag)
    a.command("noop")
    untagged, _ = a.command("UID fetch 6:* (FLAGS)")
    assert uid_of(untagged) == [6]

    # Opening the big message: not PEEK, in 64 KiB chunks; the first one sets \Seen.
    got = b""
    offset = 0
    while offset < len(BIG):
        untagged, _ = a.command(f"UID fetch 3 (UID RFC822.SIZE BODY[]<{offset}.65536>)")
        line = untagged[0]
        assert f"BODY[]<{offset}>".encode() in line
        literal = re.search(rb"\{(\d+)\}\r\n", line)
        assert literal is not None
        got += line[literal.end() : literal.end() + int(literal.group(1))]
        offset += 65536
    assert got == BIG
    untagged, _ = a.command("UID fetch 3 (FLAGS)")
    assert b"\\Seen" in untagged[0]

    # The flag change made on connection a reaches connection b's INBOX as a FETCH.
    b.command('select "INBOX"')
    a.command("uid store 3 +Flags (\\Flagged)")
    untagged, _ = b.command("noop")
    assert any(re.match(rb"\* 3 FETCH \(FLAGS \(.*\\Flagged", line) for line in untagged)

    # Delete key: MOVE to Trash, with COPYUID and the EXPUNGE.
    untagged, _ = a.command('uid move 1 "Trash"')
    assert any(re.search(rb"\[COPYUID \d+ 1 1\]", line) for line in untagged)
    assert b"* 1 EXPUNGE" in untagged
    # Archive to a local folder: \Seen \Deleted, no EXPUNGE: the message stays visible.
    a.command("uid store 2 +Flags (\\Seen \\Deleted)")
    untagged, _ = a.command("UID fetch 1:* (FLAGS)")
    assert uid_of(untagged) == [2, 3, 4, 5, 6]
    assert b"\\Deleted" in untagged[0]
    # Keywords Thunderbird sets are kept and shown.
    a.command("uid store 4 +Flags ($Label1 $Junk $Forwarded $MDNSent)")
    untagged, _ = b.command("UID fetch 4 (FLAGS)")
    flags = re.search(rb"FLAGS \(([^)]*)\)", untagged[-1])
    assert flags is not None
    assert set(flags.group(1).split()) >= {b"$Label1", b"$Junk", b"$Forwarded", b"$MDNSent"}

    untagged, _ = b.command('STATUS "Trash" (UIDNEXT MESSAGES UNSEEN RECENT)')
    assert untagged == [b"* STATUS Trash (MESSAGES 1 RECENT 1 UIDNEXT 2 UNSEEN 1)"]
    for client in (a, b):
        untagged, _ = client.command("logout")
        assert untagged[-1].startswith(b"* BYE")
    # What the clients were told is what the Maildir holds.
    store = server.store()
    box = store.mailbox("INBOX")
    box.sync()
    assert box.uids() == [2, 3, 4, 5, 6]
    assert set(box.all_flags(box.get(3))) == {"\\Seen", "\\Flagged"}
    assert "$Junk" in box.all_flags(box.get(4))
    trash = store.mailbox("Trash")
    trash.sync()
    assert trash.uids() == [1]
    assert b"Subject: one" in trash.read_message(1)
