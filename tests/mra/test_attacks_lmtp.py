"""Bad input on LMTP against a real `mra serve` (SECURITY.md 2, "LMTP"): each is answered
clearly, stores nothing it should not, and leaves the connection (or the next one) working."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.mra.conftest import MraServer
from tests.mra.lmtp_client import LmtpClient, lmtp_config, start_lmtp_server

MSG = b"From: s@remote.test\r\nSubject: hello\r\n\r\nHi.\r\n"


def serve(factory: type[MraServer], mail: str = "", extra: str = "") -> tuple[MraServer, Path]:
    """A server with LMTP; `mail`: settings for its [mail] section, `extra`: more sections."""
    server = factory(listeners=("imap",))
    text = server.config.read_text().replace("[mail]\n", "[mail]\n" + mail)
    server.config.write_text(text + lmtp_config(server.base / "lmtp", extra))
    return server, start_lmtp_server(server)


@pytest.fixture
def served(server_factory: type[MraServer]) -> tuple[MraServer, Path]:
    return serve(server_factory)


def files(server: MraServer, user: str = "alice@example.test") -> list[str]:
    """Every file in the user's new/, cur/ and tmp/, but the one the server keeps in tmp/
    to take the uidlist's lock with (mailstore/adding.py: `_UidlistLock`)."""
    local, _, domain = user.partition("@")
    root = server.mail / domain / local
    return [
        str(p)
        for sub in ("new", "cur", "tmp")
        for p in (root / sub).glob("*")
        if not p.name.endswith(".uidlist-lock")
    ]


def still_works(path: Path, server: MraServer) -> None:
    before = len(files(server, "bob@example.test"))
    with LmtpClient(path) as c:
        c.lhlo()
        assert [r.code for r in c.deliver("s@x.test", ["bob@example.test"], MSG)] == [250]
    assert len(files(server, "bob@example.test")) == before + 1


def test_attack_command_ending_in_a_bare_lf_is_not_run(served: tuple[MraServer, Path]) -> None:
    _server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        c.send(b"MAIL FROM:<a@b>\n")
        reply = c.reply()
        assert reply.status == "500 5.5.2" and "bare LF" in reply.text
        assert c.command("RCPT TO:<alice@example.test>").status == "503 5.5.1"  # no MAIL ran


def test_attack_smuggled_end_of_data_is_content_and_refused(
    served: tuple[MraServer, Path],
) -> None:
    """SMTP smuggling: `LF . LF` (and its kin) is no end of data here. What follows it is not
    run as commands, and the message holding bare LFs is refused, so nothing is stored."""
    server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.envelope("s@x.test", ["alice@example.test"])[-1].code == 354
        c.send(
            b"Subject: one\r\n\r\nx\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<bob@example.test>\r\n"
            b"DATA\r\nSubject: smuggled\r\n\r\n.\r\n"
        )
        reply = c.reply()
        assert reply.status == "554 5.6.0" and "bare LF" in reply.text
        assert c.command("NOOP").status == "250 2.0.0"
    assert files(server) == []
    assert files(server, "bob@example.test") == []


def test_attack_nul_in_a_command_or_a_message(served: tuple[MraServer, Path]) -> None:
    server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.command("MAIL FROM:<a\x00@b>").status == "500 5.5.2"
        c.envelope("s@x.test", ["alice@example.test"])
        c.send(b"Subject: nul\r\n\r\na\x00b\r\n.\r\n")
        reply = c.reply()
        assert reply.status == "554 5.6.0" and "NUL" in reply.text
    assert files(server) == []


def test_attack_over_long_line_is_refused_unread(served: tuple[MraServer, Path]) -> None:
    _server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        for _ in range(256):  # 16 MB with no line end: not held, dropped as it comes
            c.send(b"A" * 65536)
        c.send(b"\r\nNOOP\r\n")
        reply = c.reply()
        assert reply.status == "500 5.5.2" and "too long" in reply.text
        assert c.reply().status == "250 2.0.0"


def test_attack_eight_bit_data_without_8bitmime_is_stored_as_sent(
    served: tuple[MraServer, Path],
) -> None:
    server, path = served
    body = "Subject: caf\u00e9\r\n\r\nna\u00efve \u2013 \xff\r\n".encode("utf-8") + b"\xff\xfe\r\n"
    with LmtpClient(path) as c:
        c.lhlo()
        assert [r.code for r in c.deliver("s@x.test", ["alice@example.test"], body)] == [250]
    [name] = files(server)
    assert Path(name).read_bytes().endswith(body)
    assert "lmtp-8bit-undeclared" in server.log()


def test_attack_message_over_the_size_limit_stores_nothing(
    server_factory: type[MraServer],
) -> None:
    server, path = serve(server_factory, mail="max_message_size = 100000\n")
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.command("MAIL FROM:<a@b> SIZE=100001").status == "552 5.3.4"
        replies = c.envelope("s@x.test", ["alice@example.test", "bob@example.test"])
        assert replies[-1].code == 354
        c.send(MSG + b"x" * 200_000 + b"\r\n.\r\n")  # SIZE was not announced, or lied
        assert [r.status for r in c.replies(2)] == ["552 5.3.4", "552 5.3.4"]
    assert files(server) == []
    assert files(server, "bob@example.test") == []
    still_works(path, server)


def test_attack_disconnect_mid_data_stores_and_acknowledges_nothing(
    served: tuple[MraServer, Path],
) -> None:
    server, path = served
    c = LmtpClient(path)
    c.lhlo()
    assert c.envelope("s@x.test", ["alice@example.test"])[-1].code == 354
    c.send(MSG + b"x" * 100_000 + b"\r\n")  # no end of data
    c.sock.shutdown(socket.SHUT_WR)
    assert c.file.read() == b""  # the server closes: no reply at all
    c.close()
    still_works(path, server)
    assert files(server) == []


def test_attack_thousands_of_recipients_get_452_past_the_limit(
    served: tuple[MraServer, Path],
) -> None:
    server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        replies = c.envelope("s@x.test", ["alice@example.test"] * 3000)
        statuses = [r.status for r in replies[1:-1]]
        assert statuses == ["250 2.1.5"] * 100 + ["452 4.5.3"] * 2900
        assert replies[-1].code == 354
        c.send(MSG + b".\r\n")
        # One reply per accepted recipient, one copy: they all came to one mailbox.
        assert [r.status for r in c.replies(100)] == ["250 2.0.0"] * 100
        assert c.command("NOOP").status == "250 2.0.0"
    assert len(files(server)) == 1


def test_attack_ten_bad_commands_end_the_connection(served: tuple[MraServer, Path]) -> None:
    _server, path = served
    with LmtpClient(path) as c:
        c.send(b"BOGUS\r\n" * 20)
        replies = c.replies(11)
        assert [r.code for r in replies] == [500] * 10 + [421]
        assert c.file.read() == b""


def test_attack_messages_past_the_process_memory_bound_are_refused(
    server_factory: type[MraServer],
) -> None:
    """Every octet of a message on its way in is counted in `[limits] max_literal_memory`:
    past it the message is read and dropped, and the recipients told to try later."""
    server, path = serve(server_factory, extra="[limits]\nmax_literal_memory = 300000\n")
    holder = LmtpClient(path)  # a message in progress holds 200 kB of the pool
    holder.lhlo()
    holder.envelope("s@x.test", ["bob@example.test"])
    holder.send(b"x" * 200_000 + b"\r\n")
    time.sleep(0.5)  # let the server read it (nothing depends on it but this test's point)
    with LmtpClient(path) as c:
        c.lhlo()
        replies = c.deliver("s@x.test", ["alice@example.test"], MSG + b"y" * 150_000 + b"\r\n")
        assert [r.status for r in replies] == ["452 4.3.1"]
    holder.close()
    assert files(server) == []
    still_works(path, server)


def test_attack_utf8_address_needs_smtputf8(served: tuple[MraServer, Path]) -> None:
    _server, path = served
    with LmtpClient(path) as c:
        c.lhlo()
        assert c.command("MAIL FROM:<j\u00f6rg@x.test>").status == "553 5.6.7"
        assert c.command("MAIL FROM:<j\u00f6rg@x.test> SMTPUTF8").status == "250 2.1.0"


def test_attack_client_that_never_finishes_holds_no_thread(served: tuple[MraServer, Path]) -> None:
    """A stalled client waits in the reactor, not in a thread: others are served meanwhile."""
    server, path = served
    stalled = [LmtpClient(path) for _ in range(12)]  # more than the thread pool's 8
    for c in stalled:
        c.lhlo()
        c.envelope("s@x.test", ["alice@example.test"])
        c.send(b"Subject: never ends\r\n")
    still_works(path, server)
    for c in stalled:
        c.close()
    assert os.path.exists(path)


def test_attack_busy_client_that_never_says_lhlo_is_closed(
    server_factory: type[MraServer],
) -> None:
    """LHLO stands for a login: `[limits] login_timeout` bounds the time to it, whatever the
    client sends meanwhile (SECURITY.md 3)."""
    _server, path = serve(server_factory, extra="[limits]\nlogin_timeout = 2\n")
    with LmtpClient(path) as c:
        started = time.monotonic()
        replies = []
        while time.monotonic() - started < 30:
            try:
                c.send(b"NOOP\r\n")
            except OSError:
                pass  # closed just now: its 421 is waiting to be read
            reply = c.reply()
            replies.append(reply.code)
            if reply.code == 421:
                break
            time.sleep(0.2)
        assert replies[-1] == 421 and set(replies[:-1]) == {250}
        assert c.file.read() == b""
    with LmtpClient(path) as c:  # once LHLO is said, the deadline no longer applies
        c.lhlo()
        time.sleep(3)
        assert c.command("NOOP").status == "250 2.0.0"


def test_attack_backtracking_sieve_regex_is_stopped_and_holds_no_thread(
    server_factory: type[MraServer],
) -> None:
    """A user's script with `(a+)+$` against "aaa...b" backtracks 2^40 times: in the server's
    threads nothing could stop it (Python's `re` heeds signals in the main thread only), so a
    copy with Sieve is made in a child process where `[sieve] max_cpu_time` works. Ten such
    deliveries at once (more than the thread pool's eight) end with the message in INBOX, and
    the server answers others meanwhile."""
    server, path = serve(server_factory, extra="[sieve]\nmax_cpu_time = 1\n")
    home = server.base / "home"
    home.mkdir()
    (home / ".dovecot.sieve").write_text(
        'require ["regex", "fileinto"];\nif header :regex "subject" "^(a+)+$" { fileinto "x"; }\n'
    )
    if os.geteuid() == 0:
        os.chown(home, 65534, 65534)
    server.passwd.write_text(
        server.passwd.read_text() + f"evil@example.test:{{PLAIN}}x::::{home}::\n"
    )
    evil = b"Subject: " + b"a" * 40 + b"b\r\n\r\nbody\r\n"
    clients = [LmtpClient(path, timeout=120) for _ in range(10)]
    for c in clients:
        c.lhlo()
        assert c.envelope("s@x.test", ["evil@example.test"])[-1].code == 354
        c.send(evil + b".\r\n")
    still_works(path, server)  # while the ten run
    for c in clients:
        assert c.reply().status == "250 2.0.0"
        c.close()
    assert len(files(server, "evil@example.test")) == 10
    assert "CPU time limit" in server.log()
