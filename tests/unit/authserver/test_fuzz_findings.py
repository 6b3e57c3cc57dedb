"""What fuzzing the auth sockets found (fuzz/auth_dovecot.py, fuzz/saslauthd.py)."""

from __future__ import annotations

from mra.context import Services
from tests.unit.authserver.test_dovecot import Client, b64


def test_attack_login_name_with_a_nul_does_not_put_a_nul_in_fail(services: Services) -> None:
    """LOGIN takes the name as sent, NUL included; the FAIL line echoed it in `user=`, and
    tab-escaping (Dovecot's str_tabescape) leaves NUL alone: a NUL inside a protocol line,
    where Postfix, reading C strings, would see the line end (and lose the fields after it).
    The name is cut at its NUL, as Dovecot reads it (t_strndup)."""
    client = Client(services)
    assert client.auth(5, "LOGIN", "rip=192.0.2.9")[0].startswith("CONT\t5\t")
    name = b64(b"bob@example.test\0\x02x")
    assert client.send(f"CONT\t5\t{name}\n")[0].startswith("CONT\t5\t")
    lines = client.send(f"CONT\t5\t{b64(b'wrong')}\n")
    assert lines == ["FAIL\t5\tuser=bob@example.test"]
    assert not client.closed
