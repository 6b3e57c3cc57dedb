"""IMAP against a real `mra serve`: imaplib and imapclient, two sessions on one mailbox, IDLE."""

from __future__ import annotations

import imaplib
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.mra.conftest import PASSWORD, MraServer

MDA = str(Path(sys.executable).parent / "mda")


def connect(server: MraServer) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.login("alice@example.test", PASSWORD)
    return m


def client(server: MraServer) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
    c.login("alice@example.test", PASSWORD)
    return c


def test_greeting_and_login_carry_capabilities(server: MraServer) -> None:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    assert b"[CAPABILITY IMAP4rev1" in m.welcome and b"STARTTLS" in m.welcome
    typ, data = m.login("alice@example.test", PASSWORD)
    assert typ == "OK" and data[0].startswith(b"[CAPABILITY IMAP4rev1")
    m.logout()


def test_select_answers_like_dovecot(server: MraServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN alice@example.test " + PASSWORD.encode() + b"\r\nb SELECT INBOX\r\n")
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if line.startswith(b"b "):
            break
    text = b"".join(lines)
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in text
    assert b"[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]" in text
    assert b"* 2 EXISTS" in text and b"* 2 RECENT" in text
    assert b"[UNSEEN 1]" in text and b"[UIDVALIDITY " in text and b"[UIDNEXT 3]" in text
    assert lines[-1].startswith(b"b OK [READ-WRITE]")
    s.close()


def test_fetch_sizes_bodies_and_partial(server: MraServer) -> None:
    c = client(server)
    c.select_folder("INBOX")
    box = server.store().mailbox("INBOX")
    box.sync()
    raw1 = box.read_message(1).replace(b"\n", b"\r\n")
    data = c.fetch([1, 2], ["RFC822.SIZE", "BODY.PEEK[]", "FLAGS"])
    assert data[1][b"RFC822.SIZE"] == len(raw1)
    assert data[1][b"BODY[]"] == raw1
    part = c.fetch([1], ["BODY.PEEK[]<0.10>"])[1]
    assert part[b"BODY[]<0>"] == raw1[:10]
    fields = c.fetch([2], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[2]
    assert fields[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: two\r\n\r\n"
    assert b"\\Seen" not in data[1][b"FLAGS"]
    seen = c.fetch([1], ["BODY[TEXT]"])[1]  # not PEEK: sets \Seen, and says so
    assert b"\\Seen" in seen[b"FLAGS"]
    c.logout()


def test_uid_fetch_star_above_uidnext_returns_the_last_message(server: MraServer) -> None:
    m = connect(server)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "3:*", "(FLAGS)")  # Thunderbird relies on this
    assert typ == "OK" and len(data) == 1 and data[0].startswith(b"2 (UID 2 FLAGS")
    m.logout()


def test_store_copy_move_expunge(server: MraServer) -> None:
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([1], ["\\Flagged", "$Forwarded"])
    assert set(c.get_flags([1])[1]) >= {b"\\Flagged", b"$Forwarded"}
    c.copy([1], "Trash")  # one of the folders every user gets ([mailboxes])
    c.move([2], "Trash")
    c.add_flags([1], ["\\Deleted"])
    c.expunge()
    assert c.search("ALL") == []
    c.select_folder("Trash")
    assert len(c.search("ALL")) == 2
    assert set(c.get_flags([1])[1]) >= {b"\\Flagged", b"$Forwarded"}
    c.logout()
    keywords = Path(server.store().mailbox("Trash").path, "dovecot-keywords").read_text()
    assert "$Forwarded" in keywords


def test_append_to_missing_mailbox_says_trycreate(server: MraServer) -> None:
    m = connect(server)
    typ, data = m.append("Nope", None, None, b"Subject: x\r\n\r\ny\r\n")
    assert typ == "NO" and b"[TRYCREATE]" in data[0]
    m.create("Sent")
    typ, data = m.append("Sent", "(\\Seen)", None, b"Subject: x\r\n\r\ny\r\n")
    assert typ == "OK" and b"[APPENDUID " in data[0]
    m.logout()


def test_expunge_is_reported_to_the_other_session_at_the_right_time(server: MraServer) -> None:
    a, b = connect(server), connect(server)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "(\\Deleted)")
    a.expunge()
    # During FETCH, b must not be told (its sequence numbers would shift under it).
    typ, _data = b.fetch("2", "(FLAGS)")
    assert typ == "OK" and not b.response("EXPUNGE")[1][0]
    typ, _ = b.noop()
    assert b.response("EXPUNGE")[1] == [b"1"]
    a.logout()
    b.logout()


def test_flag_change_by_another_session_arrives_as_fetch(server: MraServer) -> None:
    a, b = client(server), client(server)
    a.select_folder("INBOX")
    b.select_folder("INBOX")
    a.add_flags([2], ["\\Answered"])
    updates = b.noop()[1]
    assert any(u[1] == b"FETCH" and b"\\Answered" in u[2][1] for u in updates if len(u) > 2)
    a.logout()
    b.logout()


def test_idle_reports_a_delivery_by_mda(server: MraServer) -> None:
    config = server.config
    if os.geteuid() == 0:
        # mda never delivers as root: let it be nobody, who then owns the Maildir.
        config = server.base / "mda.toml"
        config.write_text(server.config.read_text() + '[mda]\nmail_uid = "nobody"\n')
        for dirpath, dirnames, filenames in os.walk(server.mail):
            for name in [".", *dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), 65534, 65534)
    c = client(server)
    c.select_folder("INBOX")
    c.idle()
    proc = subprocess.run(
        [MDA, "--config", str(config), "-d", "alice@example.test"],
        input=b"Subject: pushed\n\nnew mail\n",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    started = time.monotonic()
    responses = c.idle_check(timeout=10)
    assert (3, b"EXISTS") in responses
    assert time.monotonic() - started < 10
    log = server.log()  # pushed by inotify (polling falls back to 30 s when watching)
    assert "inotify-unavailable" not in log and "inotify-watch-failed" not in log
    c.idle_done()
    assert c.fetch([3], ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])[3][
        b"BODY[HEADER.FIELDS (SUBJECT)]"
    ].startswith(b"Subject: pushed")
    c.logout()


def test_bad_commands_get_bad_and_the_session_goes_on(server: MraServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for line, tag in (
        (b"a1 FROB\r\n", b"a1"),
        (b"a2 FETCH 1 FLAGS\r\n", b"a2"),
        (b"a3 LOGIN\r\n", b"a3"),
        (b"((((\r\n", b"*"),
    ):
        s.sendall(line)
        got = f.readline()
        assert got.startswith(tag + b" BAD"), (line, got)
    s.sendall(b"a4 LOGIN alice@example.test " + PASSWORD.encode() + b"\r\na5 SELECT INBOX\r\n")
    while not f.readline().startswith(b"a5 "):
        pass
    for cmd in (
        b"b1 FETCH 99 FLAGS\r\n",
        b"b2 FETCH 1 (NOPE)\r\n",
        b"b3 STORE 1 FLOGS x\r\n",
        b"b4 STATUS INBOX (BOGUS)\r\n",
        b"b5 UID FETCH\r\n",
    ):
        s.sendall(cmd)
        got = f.readline()
        while got.startswith(b"* "):
            got = f.readline()
        assert got.startswith(cmd[:3] + b"BAD") or got.startswith(cmd[:3] + b"NO"), (cmd, got)
    s.sendall(b"z LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    s.close()
    assert "Traceback" not in server.log()


def test_append_literal_over_the_limit_is_refused_before_sending(
    server_factory: type[MraServer],
) -> None:
    s = server_factory()
    s.start()
    sock = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=10)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(b"a LOGIN alice@example.test " + PASSWORD.encode() + b"\r\n")
    f.readline()
    sock.sendall(b"b APPEND INBOX {999999999}\r\n")
    answer = f.readline()
    assert answer.startswith((b"b NO [TOOBIG]", b"b BAD [TOOBIG]")), answer
    sock.sendall(b"c NOOP\r\n")  # and the session goes on
    assert f.readline().startswith(b"c OK")
    sock.close()


def test_starttls_and_logindisabled_rules(server: MraServer) -> None:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    assert m.starttls(ssl_context=ctx)[0] == "OK"
    assert "STARTTLS" not in m.capabilities
    m.login("alice@example.test", PASSWORD)
    m.logout()


def test_list_and_status(server: MraServer) -> None:
    c = client(server)
    c.create_folder("Lists.python")
    c.create_folder("Entwürfe")
    names = {f[2]: f[0] for f in c.list_folders()}
    assert set(names) >= {"INBOX", "Lists", "Lists.python", "Entwürfe"}
    assert b"\\Noselect" in names["Lists"] and b"\\HasChildren" in names["Lists"]
    assert c.folder_status("INBOX", ["MESSAGES", "UNSEEN", "UIDNEXT"]) == {
        b"MESSAGES": 2,
        b"UNSEEN": 2,
        b"UIDNEXT": 3,
    }
    c.subscribe_folder("Entwürfe")
    subscribed = [f[2] for f in c.list_sub_folders()]  # and the [mailboxes] defaults
    assert subscribed == ["Archive", "Drafts", "Entwürfe", "Junk", "Sent", "Trash"]
    c.logout()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_authenticate(server: MraServer, mechanism: str) -> None:
    c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
    if mechanism == "PLAIN":
        c.plain_login("alice@example.test", PASSWORD)
    else:
        c.login("alice@example.test", PASSWORD)
    assert c.select_folder("INBOX")[b"EXISTS"] == 2
    c.logout()
