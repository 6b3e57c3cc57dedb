"""LMTP in a real `mra serve`: deliveries, one reply per recipient, IDLE woken, as whom."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.lmtp_client import ROOT, LmtpClient, lmtp_config, start_lmtp_server

MSG = b"From: sender@remote.test\r\nSubject: hello\r\nMessage-ID: <m1@remote.test>\r\n\r\nHi.\r\n"


@pytest.fixture
def served(server_factory: type[MraServer]) -> tuple[MraServer, Path]:
    server = server_factory(listeners=("imap",))
    server.config.write_text(server.config.read_text() + lmtp_config(server.base / "lmtp"))
    (server.base / "passwd").write_text(
        server.passwd.read_text()
        + "carol@example.test:{PLAIN}x::::::userdb_quota_rule=*:storage=1K\n"
    )
    return server, start_lmtp_server(server)


def stored(server: MraServer, user: str) -> list[Path]:
    local, _, domain = user.partition("@")
    new = server.mail / domain / local / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def test_delivers_with_one_reply_per_recipient(served: tuple[MraServer, Path]) -> None:
    server, path = served
    with LmtpClient(path) as c:
        assert c.greeting.code == 220
        assert "SIZE 52428800" in c.lhlo().lines
        replies = c.envelope(
            "sender@remote.test",
            ["alice@example.test", "nobody-here@example.test", "bob@example.test"],
        )
        assert [r.status for r in replies] == [
            "250 2.1.0",
            "250 2.1.5",
            "550 5.1.1",
            "250 2.1.5",
            "354",
        ]
        c.send(MSG + b".\r\n")
        after = c.replies(2)
        assert [r.status for r in after] == ["250 2.0.0", "250 2.0.0"]
        # Each reply comes once the copy is on disk: it is there now, without waiting.
        assert len(stored(server, "alice@example.test")) == 1
        assert len(stored(server, "bob@example.test")) == 1
        assert c.command("QUIT").code == 221


def test_over_quota_recipient_fails_alone(served: tuple[MraServer, Path]) -> None:
    server, path = served
    big = MSG + b"x" * 2000 + b"\r\n"
    with LmtpClient(path) as c:
        c.lhlo()
        rcpts = ["alice@example.test", "carol@example.test", "bob@example.test"]
        replies = c.deliver("sender@remote.test", rcpts, big)
    assert [r.status for r in replies] == ["250 2.0.0", "452 4.2.2", "250 2.0.0"]
    assert stored(server, "carol@example.test") == []
    assert len(stored(server, "alice@example.test")) == 1


@pytest.mark.skipif(not ROOT, reason="the server drops to nobody only when started as root")
def test_delivers_as_the_server_user(served: tuple[MraServer, Path]) -> None:
    server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.deliver("s@remote.test", ["alice@example.test"], MSG)[0].code == 250
    [message] = stored(server, "alice@example.test")
    assert os.stat(message).st_uid == 65534


def test_refuses_to_deliver_as_root(server_factory: type[MraServer]) -> None:
    if not ROOT:
        pytest.skip("needs a server running as root")
    server = server_factory(listeners=("imap", "lmtp"))  # no [server] user: it stays root
    server.start()
    with LmtpClient(("127.0.0.1", server.ports["lmtp"])) as c:
        c.lhlo()
        replies = c.envelope("s@remote.test", ["alice@example.test"])
    assert [r.status for r in replies] == ["250 2.1.0", "451 4.3.5", "503 5.5.1"]
    assert "set [server] user" in replies[1].text
    assert "lmtp-refuses-to-deliver-as-root" in server.log()
    assert stored(server, "alice@example.test") == []


def test_lmtp_over_tcp(server_factory: type[MraServer]) -> None:
    server = server_factory(
        '[server]\nuser = "nobody"\nrequire_readable_installation = false\n' if ROOT else "",
        listeners=("imap", "lmtp"),
    )
    if ROOT:
        os.chown(server.mail, 65534, 65534)
    server.start()
    with LmtpClient(("127.0.0.1", server.ports["lmtp"])) as c:
        c.lhlo()
        replies = c.deliver("s@remote.test", ["alice@example.test"], MSG)
    assert [r.status for r in replies] == ["250 2.0.0"]
    [message] = stored(server, "alice@example.test")
    assert b"Received: from client.test ([127.0.0.1])\r\n" in message.read_bytes()


def imap_line(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1)
        if not chunk:
            raise ConnectionError(data)
        data += chunk
    return data


def test_delivery_wakes_idle_at_once(served: tuple[MraServer, Path]) -> None:
    """inotify sees the new file: the IDLE session hears of it without waiting for the
    30-second fallback poll (the 20 s bound only says "it came", not how fast)."""
    server, path = served
    imap = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=20)
    imap_line(imap)
    imap.sendall(f'a LOGIN alice@example.test "{PASSWORD}"\r\nb SELECT INBOX\r\n'.encode())
    while not imap_line(imap).startswith(b"b OK"):
        pass
    imap.sendall(b"c IDLE\r\n")
    assert imap_line(imap).startswith(b"+ ")
    started = time.monotonic()
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.deliver("s@remote.test", ["alice@example.test"], MSG)[0].code == 250
    assert imap_line(imap) == b"* 1 EXISTS\r\n"
    assert time.monotonic() - started < 20
    imap.sendall(b"DONE\r\n")
    imap.close()


def test_sieve_files_by_detail(served: tuple[MraServer, Path]) -> None:
    server, path = served
    home = server.base / "home"
    home.mkdir()
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "envelope", "subaddress", "mailbox"];\n'
        'if envelope :detail "to" "lists" { fileinto :create "Lists"; }\n'
    )
    if ROOT:
        os.chown(home, 65534, 65534)
    server.passwd.write_text(
        server.passwd.read_text().replace(
            "bob@example.test:", f"dave@example.test:{{PLAIN}}x::::{home}::\nbob@example.test:", 1
        )
    )
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.deliver("s@remote.test", ["dave+lists@example.test"], MSG)[0].code == 250
    lists = server.mail / "example.test" / "dave" / ".Lists" / "new"
    assert len(list(lists.iterdir())) == 1


def test_attack_big_messages_to_many_recipients_do_not_stall_the_reactor(
    served: tuple[MraServer, Path],
) -> None:
    """Delivering (and Sieve) run in the thread pool: the log has no stall of a second."""
    server, path = served
    body = (b"y" * 998 + b"\r\n") * 20_000  # 20 MB
    with LmtpClient(path, timeout=120) as c:
        c.lhlo()
        for _ in range(2):
            replies = c.deliver(
                "s@remote.test", ["alice@example.test", "bob@example.test"], MSG + body
            )
            assert [r.code for r in replies] == [250, 250]
    stalls = [line for line in server.log().splitlines() if "reactor-stall" in line]
    assert not [s for s in stalls if int(s.split("ms=")[1].split()[0]) >= 1000], stalls


def test_connect_rules_apply_over_tcp_and_not_on_the_unix_socket(
    server_factory: type[MraServer],
) -> None:
    local = server_factory(listeners=("imap",))
    local.config.write_text(local.config.read_text() + lmtp_config(local.base / "lmtp"))
    local.access.write_text("Connect:127.0.0.1 REJECT\n")
    with LmtpClient(start_lmtp_server(local)) as c:  # let in by the socket's permissions
        assert c.greeting.code == 220
    tcp = server_factory(listeners=("lmtp",))
    tcp.access.write_text("Connect:127.0.0.1 REJECT\n")
    tcp.start()
    with LmtpClient(("127.0.0.1", tcp.ports["lmtp"])) as c:
        assert c.greeting.code == 421 and "Access denied" in c.greeting.text


def test_attack_an_mta_over_tcp_is_not_cut_off_by_the_per_address_limit(
    server_factory: type[MraServer],
) -> None:
    """Postfix's lmtp client opens a connection per delivery agent process, all from one
    address: were LMTP over TCP held to `max_connections_per_address` (meant for mail
    clients), the MTA's deliveries past it would be refused with 421 and deferred. IMAP from
    the same address keeps its limit."""
    server = server_factory(
        "[limits]\nmax_connections_per_address = 2\n"
        + ('[server]\nuser = "nobody"\nrequire_readable_installation = false\n' if ROOT else ""),
        listeners=("imap", "lmtp"),
    )
    if ROOT:
        os.chown(server.mail, 65534, 65534)
    server.start()
    imap = server.ports["imap"]
    imaps = [socket.create_connection(("127.0.0.1", imap), timeout=30) for _ in range(2)]
    clients: list[LmtpClient] = []
    try:
        assert [imap_line(s)[:4] for s in imaps] == [b"* OK"] * 2
        clients = [LmtpClient(("127.0.0.1", server.ports["lmtp"])) for _ in range(5)]
        assert [c.greeting.code for c in clients] == [220] * 5
        for i, c in enumerate(clients):
            c.lhlo()
            replies = c.deliver("s@remote.test", ["alice@example.test"], MSG + b"%d\r\n" % i)
            assert [r.status for r in replies] == ["250 2.0.0"]
        imaps.append(socket.create_connection(("127.0.0.1", imap), timeout=30))
        assert imap_line(imaps[-1]).startswith(b"* BYE Too many connections")
    finally:
        for c in clients:
            c.close()
        for s in imaps:
            s.close()
    assert len(stored(server, "alice@example.test")) == 5


def test_copies_made_together_keep_each_recipients_outcome(served: tuple[MraServer, Path]) -> None:
    """The copies of one message to several mailboxes are made `[lmtp] parallel_copies` at
    a time (their fsyncs committed together): each recipient still gets its own outcome, in
    the order of its RCPT, and only after every copy is on disk; one mailbox reached twice
    gets one copy."""
    server, path = served
    users = [f"u{i}@example.test" for i in range(9)]
    (server.base / "passwd").write_text(
        server.passwd.read_text() + "".join(f"{u}:{{PLAIN}}x::::::\n" for u in users)
    )
    big = MSG.replace(b"\r\n\r\n", b"\r\nDelivered-To: u4@example.test\r\n\r\n")
    big += b"x" * 2000 + b"\r\n"
    rcpts = [*users[:3], "carol@example.test", *users[3:], "u1@example.test"]
    with LmtpClient(path) as c:
        c.lhlo()
        replies = c.deliver("sender@remote.test", rcpts, big)
    want = {"carol@example.test": "452 4.2.2", "u4@example.test": "554 5.4.6"}
    assert [r.status for r in replies] == [want.get(r, "250 2.0.0") for r in rcpts]
    for user in users:
        assert len(stored(server, user)) == (0 if user == "u4@example.test" else 1), user
    assert stored(server, "carol@example.test") == []
