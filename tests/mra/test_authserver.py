"""The auth sockets of a real `mra serve` (`[listen] auth` and `saslauthd`), over loopback TCP.

The protocols' every answer is in tests/unit/authserver; here they run in the server, with
its threads, timers and connection limits: the failure delay holds back one request's FAIL
and nothing else, a line past the limit ends that connection only, and an MTA's many
connections are not counted as one client's.
"""

from __future__ import annotations

import base64
import socket
import time

from tests.mra.conftest import PASSWORD, MraServer

TIMEOUT = 30.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuthClient:
    """The MTA's side of the Dovecot auth protocol, as Postfix speaks it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        self.handshake = self.lines_until("DONE")
        self.sock.sendall(b"VERSION\t1\t2\nCPID\t4242\n")

    def line(self) -> str:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def lines_until(self, last: str) -> list[str]:
        lines = [self.line()]
        while lines[-1] != last:
            lines.append(self.line())
        return lines

    def auth(self, request_id: int, user: str, password: str, rip: str) -> None:
        resp = b64(f"\0{user}\0{password}".encode())
        self.sock.sendall(
            f"AUTH\t{request_id}\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip={rip}"
            f"\tresp={resp}\n".encode()
        )

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def saslauthd(port: int, *fields: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(len(f).to_bytes(2, "big") + f for f in fields))
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    length = int.from_bytes(reply[:2], "big")
    assert len(reply) == 2 + length
    return reply[2:]


def test_a_failure_delay_holds_back_only_its_own_request(
    server_factory: type[MraServer],
) -> None:
    s = server_factory(listeners=("auth",))
    s.start()
    client = AuthClient(s.ports["auth"])
    assert client.handshake[0] == "VERSION\t1\t2" and client.handshake[-1] == "DONE"
    client.auth(1, "alice@example.test", "wrong", "192.0.2.10")
    client.auth(2, "bob@example.test", PASSWORD, "192.0.2.11")
    # The right password, sent second, is answered first: the FAIL waits for its delay
    # (2 s, as Dovecot's auth_failure_delay) without holding the connection.
    assert client.line() == "OK\t2\tuser=bob@example.test"
    assert client.line() == "FAIL\t1\tuser=alice@example.test"
    client.close()
    log = s.log()
    assert " login " not in log  # a success is the MTA's to log; ours is a debug line
    assert "login-failed proto=auth login=alice@example.test ip=192.0.2.10" in log
    assert PASSWORD not in log and "wrong" not in log.replace('"wrong password"', "")


def test_an_mtas_many_connections_are_not_one_clients(server_factory: type[MraServer]) -> None:
    """Postfix opens a connection per smtpd process, all from the same address: the
    per-address connection limit, meant for mail clients, does not apply to the auth socket."""
    s = server_factory(
        "[limits]\nmax_connections_per_address = 2\n", listeners=("auth", "saslauthd", "pop3")
    )
    s.start()
    clients = [AuthClient(s.ports["auth"]) for _ in range(5)]
    for i, client in enumerate(clients, 1):
        client.auth(i, "alice@example.test", PASSWORD, "192.0.2.20")
        assert client.line() == f"OK\t{i}\tuser=alice@example.test"
    fields = (b"alice@example.test", PASSWORD.encode(), b"smtp", b"")
    assert saslauthd(s.ports["saslauthd"], *fields) == b"OK"
    # POP3 still has its limit.
    pops = [socket.create_connection(("127.0.0.1", s.ports["pop3"]), timeout=TIMEOUT)]
    pops.append(socket.create_connection(("127.0.0.1", s.ports["pop3"]), timeout=TIMEOUT))
    pops.append(socket.create_connection(("127.0.0.1", s.ports["pop3"]), timeout=TIMEOUT))
    greetings = [p.recv(512) for p in pops]
    assert greetings[-1].startswith(b"-ERR"), greetings
    for c in clients:
        c.close()
    for p in pops:
        p.close()


def test_saslauthd_right_wrong_unknown(server_factory: type[MraServer]) -> None:
    s = server_factory(listeners=("saslauthd",))
    s.start()
    port = s.ports["saslauthd"]
    assert saslauthd(port, b"alice@example.test", PASSWORD.encode(), b"smtp", b"") == b"OK"
    assert saslauthd(port, b"alice@example.test", b"nope", b"smtp", b"").startswith(b"NO")
    assert saslauthd(port, b"zed@example.test", PASSWORD.encode(), b"smtp", b"").startswith(b"NO")


def test_attack_auth_long_line_ends_only_that_connection(server_factory: type[MraServer]) -> None:
    s = server_factory("[limits]\nauth_max_line = 4096\n", listeners=("auth",))
    s.start()
    attacker = AuthClient(s.ports["auth"])
    other = AuthClient(s.ports["auth"])
    attacker.sock.sendall(b"AUTH\t1\tPLAIN\tservice=smtp\tresp=" + b"A" * 100_000)
    assert attacker.closed()
    other.auth(7, "alice@example.test", PASSWORD, "192.0.2.30")
    assert other.line() == "OK\t7\tuser=alice@example.test"
    assert "auth-protocol-error" in s.log()


def test_attack_saslauthd_oversized_and_truncated_requests(
    server_factory: type[MraServer],
) -> None:
    s = server_factory(listeners=("saslauthd",))
    s.start()
    port = s.ports["saslauthd"]
    assert saslauthd(port, b"x" * 5000, b"pw", b"smtp", b"") == b"NO login too long"
    # Half a request, then the client goes: nothing answered, nothing checked, no harm.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x00\x12alice@example.test\x00\x10")
    assert saslauthd(port, b"alice@example.test", PASSWORD.encode(), b"smtp", b"") == b"OK"
    assert "login-failed" not in s.log()


def test_an_auth_connection_outlives_the_login_deadline(server_factory: type[MraServer]) -> None:
    """The MTA has nothing to log in with: `login_timeout` (for mail clients) must not cut it;
    `auth_idle_timeout` does, once it is silent that long."""
    s = server_factory(
        "[limits]\nlogin_timeout = 1\nauth_idle_timeout = 3\n", listeners=("auth", "saslauthd")
    )
    s.start()
    client = AuthClient(s.ports["auth"])
    for i in range(1, 4):  # active for longer than the login deadline
        client.auth(i, "alice@example.test", PASSWORD, "192.0.2.40")
        assert client.line() == f"OK\t{i}\tuser=alice@example.test"
        time.sleep(0.8)
    # Then silent: closed after the idle timeout (within a generous bound).
    client.sock.settimeout(TIMEOUT)
    assert client.closed()
    assert "login-timeout" not in s.log()


def test_attack_saslauthd_half_request_then_silence_is_closed(
    server_factory: type[MraServer],
) -> None:
    s = server_factory("[limits]\nauth_idle_timeout = 1\n", listeners=("saslauthd",))
    s.start()
    with socket.create_connection(("127.0.0.1", s.ports["saslauthd"]), timeout=TIMEOUT) as sock:
        sock.sendall(b"\x00\x05ali")
        assert sock.recv(16) == b""  # closed by the server, nothing answered
