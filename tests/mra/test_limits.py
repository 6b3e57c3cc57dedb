"""[limits] on connections and sessions, against a running `mra serve`: per address, per
account, per account and address (Dovecot's mail_max_userip_connections), with defaults an
office behind one NAT address can live with, and the access map's `Connect:... OK` lifting
them for an address."""

from __future__ import annotations

import socket

from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_attacks_net import connect, read_line

OFFICE = 40  # accounts behind one address...
PER_PERSON = 5  # ...each with Thunderbird's 5 cached connections: 200, over the old 100


def login(port: int, user: str, password: str = PASSWORD, source: str = "127.0.0.1") -> bytes:
    """The answer to a LOGIN on a new connection from `source` (left open: it holds a
    session)."""
    c = connect(port, source=source)
    _open.append(c)
    greeting = read_line(c)
    if not greeting.startswith(b"* OK"):
        return greeting
    c.sendall(b"a LOGIN " + user.encode() + b" " + password.encode() + b"\r\n")
    while True:
        line = read_line(c)
        if not line or line.startswith(b"a "):
            return line


_open: list[socket.socket] = []


def _close_all() -> None:
    while _open:
        _open.pop().close()


def test_attack_one_client_takes_every_session_of_an_account(
    server_factory: type[MraServer],
) -> None:
    """A runaway client (a misconfigured phone reconnecting without closing) from one address
    fills the account's sessions and locks out the person's other devices; per account and
    address it is stopped first, and the account stays usable from elsewhere."""
    s = server_factory(
        "[limits]\nmax_sessions_per_user = 10\nmax_sessions_per_user_address = 2\n",
        listeners=("imap",),
    )
    s.start()
    port = s.ports["imap"]
    try:
        user = "alice@example.test"
        answers = [login(port, user, source="127.0.3.1") for _ in range(3)]
        assert [a[:4] for a in answers] == [b"a OK", b"a OK", b"a NO"], answers
        assert b"Too many sessions" in answers[2]
        # Another account from that address, and this account from another address, go on.
        assert login(port, "bob@example.test", source="127.0.3.1").startswith(b"a OK")
        assert login(port, user, source="127.0.3.2").startswith(b"a OK")
        # A closed session gives its place back.
        _open[0].close()
        assert any(login(port, user, source="127.0.3.1").startswith(b"a OK") for _ in range(50))
    finally:
        _close_all()


def test_connect_ok_lifts_the_account_and_address_limit(server_factory: type[MraServer]) -> None:
    s = server_factory("[limits]\nmax_sessions_per_user_address = 1\n", listeners=("imap",))
    s.access.write_text("Connect:127.0.4.1 OK\n")
    s.start()
    port = s.ports["imap"]
    try:
        user = "alice@example.test"
        assert [login(port, user, source="127.0.4.1")[:4] for _ in range(3)] == [b"a OK"] * 3
        assert login(port, user, source="127.0.4.2").startswith(b"a OK")
        assert login(port, user, source="127.0.4.2").startswith(b"a NO")
    finally:
        _close_all()


def test_office_behind_one_address_works_with_the_defaults(
    server_factory: type[MraServer],
) -> None:
    """40 people behind one NAT address, each with Thunderbird's 5 connections: 200 sessions
    from one address, every one let in by the default limits (the old fixed 100 per address
    locked out half of them)."""
    s = server_factory(listeners=("imap",))
    users = [f"person{i}@example.test" for i in range(OFFICE)]
    s.passwd.write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in users))
    s.start()
    port = s.ports["imap"]
    try:
        answers = [login(port, u, source="127.0.5.1") for u in users for _ in range(PER_PERSON)]
        refused = [a for a in answers if not a.startswith(b"a OK")]
        assert refused == [], (len(refused), refused[:3])
    finally:
        _close_all()
