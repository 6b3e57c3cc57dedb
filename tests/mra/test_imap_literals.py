"""LITERAL+ and LITERAL- (RFC 7888) against a real `mra serve`: `[imap] literal_plus = false`
offers LITERAL- and holds a client to it; imapclient (synchronizing literals) is unaffected."""

from __future__ import annotations

import socket

from imapclient import IMAPClient

from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_attacks_net import closed_by_server, read_line

USER = "alice@example.test"
MINUS = "[imap]\nliteral_plus = false\n"


def login(server: MraServer) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=30)
    greeting = read_line(s)
    assert b" LITERAL- " in greeting and b"LITERAL+" not in greeting
    s.sendall(
        b"l LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n"
        % (len(USER), USER.encode(), len(PASSWORD), PASSWORD.encode())
    )
    assert read_line(s).startswith(b"l OK")
    return s


def test_literal_minus_on_a_real_server(server_factory: type[MraServer]) -> None:
    srv = server_factory(MINUS)
    srv.start()
    s = login(srv)
    s.sendall(b"s SELECT INBOX\r\n")
    while not read_line(s).startswith(b"s OK"):
        pass
    s.sendall(b"a SEARCH TEXT {4096+}\r\n" + b"x" * 4096 + b"\r\n")
    assert read_line(s) == b"* SEARCH\r\n"
    assert read_line(s).startswith(b"a OK")
    # Over 4096: goodbye, before a byte of it is read; what follows never runs.
    s.sendall(b"b APPEND INBOX {20000+}\r\n" + b"c CREATE Evil\r\n" * 1000)
    assert read_line(s) == b"* BYE [TOOBIG] Non-synchronizing literal size too large\r\n"
    assert closed_by_server(s)
    assert not (srv.mail / "example.test" / "alice" / ".Evil").exists()


def test_imapclient_appends_big_messages_under_literal_minus(
    server_factory: type[MraServer],
) -> None:
    """A client that sends synchronizing literals (imaplib's way) loses nothing to LITERAL-."""
    srv = server_factory(MINUS)
    srv.start()
    message = b"Subject: big\r\n\r\n" + b"a line of a big message\r\n" * 10_000
    with IMAPClient("127.0.0.1", srv.ports["imap"], ssl=False) as client:
        assert b"LITERAL-" in client.capabilities()
        client.login(USER, PASSWORD)
        client.append("INBOX", message)
        client.select_folder("INBOX")
        fetched = client.fetch([1], ["BODY.PEEK[]"])
    assert fetched[1][b"BODY[]"] == message
