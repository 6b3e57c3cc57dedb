"""The saslauthd protocol (mra/authserver/saslauthd.py): counted strings in, "OK"/"NO" out.

The requests are built as libsasl2 builds them (cyrus-sasl lib/checkpw.c): login, password,
service, realm, each a 2-byte length in network order and its bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mra.authserver.saslauthd import SaslauthdSession, answer
from mra.context import Services
from mra.session import Call, Close, Output, Send, run_blocking
from tests.unit.authserver.conftest import PASSWORD, PLAIN_PASSWORD, connection


def request(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(2, "big") + f for f in fields)


def run(services: Services, *chunks: bytes) -> tuple[list[bytes], bool]:
    """Feed the chunks to a new session; what it sent and whether it closed."""
    session = SaslauthdSession(connection("saslauthd"), services)
    outputs: list[Output] = session.greeting()
    for chunk in chunks:
        outputs += session.data_received(chunk)
    done = run_blocking(outputs)
    sent = [o.data for o in done if isinstance(o, Send)]
    return sent, any(isinstance(o, Close) for o in done)


def test_right_wrong_unknown(services: Services) -> None:
    ok = request(b"alice@example.test", PASSWORD.encode(), b"smtp", b"")
    assert run(services, ok) == ([b"\x00\x02OK"], True)
    wrong = request(b"alice@example.test", b"wrong", b"smtp", b"mx.example.test")
    assert run(services, wrong) == ([answer("NO authentication failed")], True)
    unknown = request(b"carol@example.test", PASSWORD.encode(), b"smtp", b"")
    assert run(services, unknown) == ([answer("NO authentication failed")], True)


@pytest.mark.parametrize(
    ("login", "realm"),
    [
        (b"bob", b"example.test"),  # libsasl2 split bob@example.test: saslauthd -r's user
        (b"bob@example.test", b"mx.example.test"),  # a name with its domain keeps it
        (b"BOB", b"Example.Test"),
    ],
)
def test_the_realm_completes_a_name_without_a_domain(
    services: Services, login: bytes, realm: bytes
) -> None:
    with_realm = request(login, PLAIN_PASSWORD.encode(), b"smtp", realm)
    assert run(services, with_realm)[0] == [b"\x00\x02OK"]


def test_a_name_the_realm_does_not_complete_is_looked_up_alone(services: Services) -> None:
    # No domain typed: libsasl2 passes the server's realm. bob@mx.example.test is nobody, and
    # "bob" alone is not a user either (bob is a virtual user of example.test, as for IMAP).
    attempt = request(b"bob", PLAIN_PASSWORD.encode(), b"smtp", b"mx.example.test")
    assert run(services, attempt)[0] == [answer("NO authentication failed")]


def test_the_realm_never_lets_a_wrong_password_in(services: Services) -> None:
    # alice's password is not bob's, whichever way the name is completed.
    for realm in (b"example.test", b"mx.example.test", b""):
        attempt = request(b"bob", PASSWORD.encode(), b"smtp", realm)
        assert run(services, attempt)[0] == [answer("NO authentication failed")]


def test_a_request_in_pieces_is_read_whole(services: Services) -> None:
    data = request(b"bob@example.test", PLAIN_PASSWORD.encode(), b"smtp", b"")
    assert run(services, *[data[i : i + 1] for i in range(len(data))])[0] == [b"\x00\x02OK"]


def test_the_check_runs_in_the_auth_pool(services: Services) -> None:
    session = SaslauthdSession(connection("saslauthd"), services)
    outputs = session.data_received(request(b"bob@example.test", b"x", b"smtp", b""))
    assert [(type(o), getattr(o, "pool", None)) for o in outputs] == [(Call, "auth")]


@pytest.mark.parametrize(
    ("fields", "reply"),
    [
        ((b"", b"pw", b"smtp", b""), "NO empty login"),
        ((b"bob@example.test", b"", b"smtp", b""), "NO empty password"),
    ],
)
def test_empty_login_or_password_is_no(
    services: Services, fields: tuple[bytes, ...], reply: str
) -> None:
    assert run(services, request(*fields)) == ([answer(reply)], True)


def test_attack_saslauthd_field_longer_than_the_limit(
    services_factory: Callable[..., Services],
) -> None:
    """A length past `saslauthd_max_field` is answered NO at once: what it announces is never
    read nor buffered."""
    services = services_factory("[limits]\nsaslauthd_max_field = 64\n")
    session = SaslauthdSession(connection("saslauthd"), services)
    outputs = session.data_received(b"\xff\xff" + b"A" * 100)
    assert [o.data for o in outputs if isinstance(o, Send)] == [answer("NO login too long")]
    assert any(isinstance(o, Close) for o in outputs)
    assert session.data_received(b"B" * 100_000) == []
    assert len(session._buffer) <= 102
    # The password's field too, after a good login.
    sent, closed = run(services, request(b"bob@example.test", b"p" * 65, b"smtp", b""))
    assert (sent, closed) == ([answer("NO password too long")], True)


def test_attack_saslauthd_truncated_requests_get_no_answer_and_no_check(
    services: Services,
) -> None:
    """A request cut short (the client died) runs nothing: no lookup, no hash, no throttle."""
    full = request(b"alice@example.test", b"wrong", b"smtp", b"")
    for cut in range(len(full)):
        session = SaslauthdSession(connection("saslauthd"), services)
        assert session.data_received(full[:cut]) == []
        session.connection_lost()
    assert session.policy.throttle.tracked() == (0, 0)


def test_attack_saslauthd_bytes_after_the_request_are_ignored(services: Services) -> None:
    data = request(b"bob@example.test", PLAIN_PASSWORD.encode(), b"smtp", b"") + b"\x00\x05junk!"
    assert run(services, data, b"more junk") == ([b"\x00\x02OK"], True)
