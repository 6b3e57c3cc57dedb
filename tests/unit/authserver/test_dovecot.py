"""The Dovecot auth protocol (mra/authserver/dovecot.py) as transcripts: lines in, lines out.

The passdb, the authenticator and the throttle are real (tests/unit/authserver/conftest.py);
the outputs run synchronously, so a failure delay is immediate here (tests/mra and the Postfix
test run it for real). The lines a client sends are those of Postfix's xsasl_dovecot_server.c.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable

from mra.authserver.dovecot import DovecotAuthSession, tabescape, tabunescape
from mra.context import Services
from mra.session import Close, Output, Send, Spawn, run_blocking
from tests.unit.authserver.conftest import PASSWORD, PLAIN_PASSWORD, connection


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def plain(user: str, password: str, authzid: str = "") -> str:
    return b64(f"{authzid}\0{user}\0{password}".encode())


class Client:
    """An MTA's end of one connection."""

    def __init__(self, services: Services, *, minor: int = 2, handshake: bool = True) -> None:
        self.session = DovecotAuthSession(connection("auth"), services)
        self.closed = False
        self.greeting = self._run(self.session.greeting())
        if handshake:
            assert self.send(f"VERSION\t1\t{minor}\nCPID\t4242\n") == []

    def _run(self, outputs: list[Output]) -> list[str]:
        lines: list[str] = []
        for out in run_blocking(outputs):
            if isinstance(out, Send):
                lines += out.data.decode("utf-8", "surrogateescape").splitlines()
            elif isinstance(out, Close):
                self.closed = True
        return lines

    def send(self, text: str | bytes) -> list[str]:
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        return self._run(self.session.data_received(data))

    def auth(self, request_id: int, mech: str, *params: str) -> list[str]:
        fields = ["AUTH", str(request_id), mech, "service=smtp", "nologin", "lip=127.0.0.1"]
        return self.send("\t".join([*fields, *params]) + "\n")


def test_the_handshake_is_dovecots(services: Services) -> None:
    client = Client(services, handshake=False)
    lines = client.greeting
    assert lines[0] == "VERSION\t1\t2"
    mechs = [line.split("\t") for line in lines if line.startswith("MECH\t")]
    # bob's {PLAIN} password makes CRAM-MD5 and SCRAM usable; the flags are Dovecot's.
    assert ["MECH", "PLAIN", "plaintext"] in mechs
    assert ["MECH", "LOGIN", "plaintext"] in mechs
    assert ["MECH", "CRAM-MD5", "dictionary", "active"] in mechs
    assert ["MECH", "SCRAM-SHA-256", "mutual-auth"] in mechs
    assert lines[-4].startswith("SPID\t") and lines[-4].split("\t")[1] == str(os.getpid())
    assert lines[-3].startswith("CUID\t") and lines[-3].split("\t")[1].isdigit()
    assert lines[-2].startswith("COOKIE\t") and len(lines[-2].split("\t")[1]) == 32
    assert lines[-1] == "DONE"
    assert client.send("VERSION\t1\t0\nCPID\t1\n") == [] and not client.closed


def test_challenge_response_mechanisms_only_where_a_stored_secret_allows(
    services_factory: Callable[..., Services],
) -> None:
    client = Client(services_factory(plain_users=False), handshake=False)
    mechs = [line.split("\t")[1] for line in client.greeting if line.startswith("MECH\t")]
    assert mechs == ["PLAIN", "LOGIN"]
    # Not announced, so not run either.
    client.send("VERSION\t1\t2\nCPID\t7\n")
    assert client.auth(1, "CRAM-MD5") == ["FAIL\t1\treason=Unsupported authentication mechanism"]


def test_plain_right_wrong_unknown(services: Services) -> None:
    client = Client(services)
    resp = f"resp={plain('alice@example.test', PASSWORD)}"
    assert client.auth(1, "PLAIN", "rip=192.0.2.1", resp) == ["OK\t1\tuser=alice@example.test"]
    wrong = f"resp={plain('alice@example.test', 'nope')}"
    assert client.auth(2, "PLAIN", "rip=192.0.2.1", wrong) == ["FAIL\t2\tuser=alice@example.test"]
    unknown = f"resp={plain('nobody@example.test', PASSWORD)}"
    assert client.auth(3, "PLAIN", "rip=192.0.2.1", unknown) == [
        "FAIL\t3\tuser=nobody@example.test"
    ]
    # The canonical name of the account comes back, whatever case the client used.
    resp = f"resp={plain('ALICE@Example.Test', PASSWORD)}"
    assert client.auth(4, "PLAIN", resp) == ["OK\t4\tuser=alice@example.test"]
    assert not client.closed


def test_plain_without_initial_response_gets_an_empty_challenge(services: Services) -> None:
    client = Client(services)
    assert client.auth(9, "PLAIN") == ["CONT\t9\t"]
    assert client.send(f"CONT\t9\t{plain('bob@example.test', PLAIN_PASSWORD)}\n") == [
        "OK\t9\tuser=bob@example.test"
    ]


def test_an_empty_resp_is_empty_from_minor_2_and_absent_before(services: Services) -> None:
    # auth-request-handler.c: Exim sent "resp=" for "no initial response" before 1.2.
    old = Client(services, minor=1)
    assert old.auth(1, "PLAIN", "resp=") == ["CONT\t1\t"]
    new = Client(services, minor=2)
    assert new.auth(1, "PLAIN", "resp=") == ["FAIL\t1"]  # an empty PLAIN message is malformed
    assert new.auth(2, "PLAIN", "resp==") == ["FAIL\t2"]


def test_login(services: Services) -> None:
    client = Client(services)
    assert client.auth(5, "LOGIN", "rip=192.0.2.9") == [f"CONT\t5\t{b64(b'Username:')}"]
    assert client.send(f"CONT\t5\t{b64(b'bob@example.test')}\n") == [
        f"CONT\t5\t{b64(b'Password:')}"
    ]
    assert client.send(f"CONT\t5\t{b64(PLAIN_PASSWORD.encode())}\n") == [
        "OK\t5\tuser=bob@example.test"
    ]
    assert client.auth(6, "login") == [f"CONT\t6\t{b64(b'Username:')}"]
    client.send(f"CONT\t6\t{b64(b'bob@example.test')}\n")
    assert client.send(f"CONT\t6\t{b64(b'wrong')}\n") == ["FAIL\t6\tuser=bob@example.test"]


def test_cram_md5(services: Services) -> None:
    client = Client(services)
    (line,) = client.auth(3, "CRAM-MD5")
    command, request_id, challenge = line.split("\t")
    assert (command, request_id) == ("CONT", "3")
    digest = hmac.new(PLAIN_PASSWORD.encode(), base64.b64decode(challenge), "md5").hexdigest()
    assert client.send(f"CONT\t3\t{b64(f'bob@example.test {digest}'.encode())}\n") == [
        "OK\t3\tuser=bob@example.test"
    ]


def _scram(client: Client, request_id: int, *params: str) -> list[str]:
    """Run SCRAM-SHA-256 (RFC 5802, RFC 7677) as a client would, up to the server-final."""
    nonce = b64(os.urandom(18))
    first_bare = f"n=bob@example.test,r={nonce}"
    (line,) = client.auth(
        request_id, "SCRAM-SHA-256", *params, f"resp={b64(b'n,,' + first_bare.encode())}"
    )
    server_first = base64.b64decode(line.split("\t")[2]).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", PLAIN_PASSWORD.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    without_proof = f"c=biws,r={fields['r']}"
    message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return client.send(f"CONT\t{request_id}\t{b64(f'{without_proof},p={b64(proof)}'.encode())}\n")


def test_scram_sha_256_final_message_as_a_challenge_or_in_ok(services: Services) -> None:
    client = Client(services)
    (line,) = _scram(client, 1)
    assert line.startswith("CONT\t1\t")
    assert base64.b64decode(line.split("\t")[2]).startswith(b"v=")
    assert client.send("CONT\t1\t\n") == ["OK\t1\tuser=bob@example.test"]
    # With final-resp-ok the server-final-message rides in the OK (resp=).
    (line,) = _scram(client, 2, "final-resp-ok")
    assert line.startswith("OK\t2\tuser=bob@example.test\tresp=")


def test_requests_are_independent_and_cancel_drops_one(services: Services) -> None:
    client = Client(services)
    assert client.auth(1, "LOGIN") == [f"CONT\t1\t{b64(b'Username:')}"]
    assert client.auth(2, "LOGIN") == [f"CONT\t2\t{b64(b'Username:')}"]
    assert client.send("CANCEL\t1\n") == []
    # An id nobody knows (cancelled, or never sent) gets Dovecot's answer.
    assert client.send(f"CONT\t1\t{b64(b'bob@example.test')}\n") == [
        "FAIL\t1\treason=Authentication request timed out"
    ]
    client.send(f"CONT\t2\t{b64(b'bob@example.test')}\n")
    assert client.send(f"CONT\t2\t{b64(PLAIN_PASSWORD.encode())}\n") == [
        "OK\t2\tuser=bob@example.test"
    ]
    # The id is free again once answered.
    assert client.auth(2, "PLAIN", f"resp={plain('bob@example.test', PLAIN_PASSWORD)}") == [
        "OK\t2\tuser=bob@example.test"
    ]


def test_a_request_dovecot_calls_a_client_bug_costs_only_that_request(services: Services) -> None:
    client = Client(services)
    assert client.auth(1, "GSSAPI") == ["FAIL\t1\treason=Unsupported authentication mechanism"]
    assert client.send("AUTH\t2\tPLAIN\tnologin\n") == ["FAIL\t2\treason=No service given"]
    assert client.auth(3, "PLAIN", "resp=AA==", "rip=192.0.2.1") == [
        "FAIL\t3\treason=Parameters after resp"
    ]
    assert client.auth(4, "PLAIN", "resp=!!notbase64") == [
        "FAIL\t4\tcode=invalid_base64\treason=Invalid base64 data in initial response"
    ]
    assert client.auth(5, "LOGIN") == [f"CONT\t5\t{b64(b'Username:')}"]
    assert client.send("CONT\t5\t***\n") == [
        "FAIL\t5\tcode=invalid_base64\treason=Invalid base64 data in continued response"
    ]
    # A CONT nobody asked for.
    assert client.auth(6, "PLAIN", f"resp={plain('bob@example.test', PLAIN_PASSWORD)}") == [
        "OK\t6\tuser=bob@example.test"
    ]
    assert client.auth(7, "LOGIN") == [f"CONT\t7\t{b64(b'Username:')}"]
    client.send(f"CONT\t7\t{b64(b'bob@example.test')}\n")
    assert not client.closed
    resp = f"resp={plain('alice@example.test', PASSWORD)}"
    assert client.auth(8, "PLAIN", resp) == ["OK\t8\tuser=alice@example.test"]


def test_crlf_lines_are_read_as_lf_lines(services: Services) -> None:
    client = Client(services, handshake=False)
    client.send("VERSION\t1\t2\r\nCPID\t9\r\n")
    line = f"AUTH\t1\tPLAIN\tservice=smtp\tresp={plain('bob@example.test', PLAIN_PASSWORD)}\r\n"
    assert client.send(line) == ["OK\t1\tuser=bob@example.test"]


def test_tab_escaping_round_trips() -> None:
    for value in ("plain", "a\tb", "x\ny\rz", "\x01", "\x01t", "ünï\tcödé\n"):
        escaped = tabescape(value)
        assert not any(c in escaped for c in "\t\r\n")
        assert tabunescape(escaped) == value
    assert tabunescape("a\x01tb\x01nc\x011") == "a\tb\nc\x01"


def test_attack_auth_login_names_cannot_forge_protocol_lines(services: Services) -> None:
    """A name with TAB or LF inside (from the SMTP client's PLAIN message) comes back escaped
    in the FAIL: the MTA reads one line, not a forged `OK` for another request."""
    client = Client(services)
    forged = "x\nOK\t99\tuser=alice@example.test\tfoo"
    lines = client.auth(1, "PLAIN", f"resp={plain(forged, 'pw')}")
    assert lines == [f"FAIL\t1\tuser={tabescape(forged)}"]
    assert not any(line.startswith("OK") for line in lines)


def test_attack_auth_line_longer_than_the_limit_ends_the_connection(
    services_factory: Callable[..., Services],
) -> None:
    client = Client(services_factory("[limits]\nauth_max_line = 1024\n"))
    # Without a newline: the buffer may not grow past the bound.
    assert client.send(b"AUTH\t1\tPLAIN\tservice=smtp\tresp=" + b"A" * 2000) == []
    assert client.closed
    assert len(client.session._buffer) == 0  # what was read is dropped, nothing more is read
    assert client.send(b"AUTH\t2\tPLAIN\n") == []
    # With a newline, in one read.
    client = Client(services_factory("[limits]\nauth_max_line = 1024\n"))
    client.send(b"CANCEL\t" + b"9" * 1100 + b"\n")
    assert client.closed


def test_attack_auth_more_requests_in_progress_than_the_limit(
    services_factory: Callable[..., Services],
) -> None:
    """Requests whose lookups are still running hold a slot each; one past
    `auth_max_requests` is refused at once (temp_fail), the connection goes on."""
    services = services_factory("[limits]\nauth_max_requests = 3\n")
    session = DovecotAuthSession(connection("auth"), services)
    session.greeting()
    session.data_received(b"VERSION\t1\t2\nCPID\t1\n")
    resp = plain("bob@example.test", PLAIN_PASSWORD)
    spawned: list[Spawn] = []
    for i in (1, 2, 3):
        outputs = session.data_received(f"AUTH\t{i}\tPLAIN\tservice=smtp\tresp={resp}\n".encode())
        assert [type(o) for o in outputs] == [Spawn]  # not answered yet: the lookup runs
        spawned += outputs  # type: ignore[arg-type]
    outputs = session.data_received(f"AUTH\t4\tPLAIN\tservice=smtp\tresp={resp}\n".encode())
    assert [o.data for o in outputs if isinstance(o, Send)] == [
        b"FAIL\t4\tcode=temp_fail\treason=Too many requests in progress\n"
    ]
    # Once one is answered, its slot is free again.
    answered = run_blocking([spawned[0]])
    assert [o.data for o in answered if isinstance(o, Send)] == [b"OK\t1\tuser=bob@example.test\n"]
    outputs = session.data_received(f"AUTH\t5\tPLAIN\tservice=smtp\tresp={resp}\n".encode())
    assert [type(o) for o in outputs] == [Spawn]


def test_attack_auth_duplicate_id_ends_the_connection(services: Services) -> None:
    """A second AUTH with the id of one in progress: a FAIL would answer the first one too."""
    client = Client(services)
    client.auth(1, "LOGIN")
    client.auth(1, "LOGIN")
    assert client.closed


def test_attack_auth_broken_handshakes_end_the_connection(services: Services) -> None:
    for text in (
        "AUTH\t1\tPLAIN\tservice=smtp\n",  # before VERSION
        "VERSION\t2\t0\n",  # another major version
        "VERSION\tone\ttwo\n",
        "VERSION\t1\t2\nAUTH\t1\tPLAIN\tservice=smtp\n",  # no CPID
        "VERSION\t1\t2\nCPID\t0\n",
        "VERSION\t1\t2\nCPID\t1\nFOO\tbar\n",
        "VERSION\t1\t2\nCPID\t1\nAUTH\t0\tPLAIN\tservice=smtp\n",  # id 0
        "VERSION\t1\t2\nCPID\t1\nAUTH\t99999999999\tPLAIN\tservice=smtp\n",  # past 2^32
        "VERSION\t1\t2\nCPID\t1\nAUTH\t1\n",
        "VERSION\t1\t2\nCPID\t1\nCONT\tx\tAA==\n",
        "VERSION\t1\t2\nCPID\t1\nCANCEL\n",
        "VERSION\t1\t2\nCPID\t1\nCANCEL\t1\0\n",
        "\xff\xfe\n",
    ):
        client = Client(services, handshake=False)
        assert client.send(text) == [], text
        assert client.closed, text
        # Nothing more is read from a connection being closed.
        assert client.send("AUTH\t5\tPLAIN\tservice=smtp\n") == []
