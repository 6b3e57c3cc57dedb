"""What fuzzing the ManageSieve session found (fuzz/managesieve.py), each a test of its own."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.unit.managesieve._client import Client

USERNAME = base64.b64encode(b"Username:").decode()


def test_attack_unreadable_sasl_response_ends_the_exchange(tmp_path: Path) -> None:
    """A SASL response the reader cannot read (an unterminated quoted string, an atom) is
    answered NO, which ends AUTHENTICATE for the client (RFC 5804 2.1); the server must end
    it too. Before, the exchange went on, and the client's next command was eaten as the
    response ("Invalid response to the authentication challenge.") instead of run."""
    c = Client(tmp_path)
    for bad in ('"abc\r\n', "abc def\r\n", '"x" "y"\r\n'):
        c.expect('AUTHENTICATE "LOGIN"\r\n', f'"{USERNAME}"')
        c.expect(bad, "NO {any}")
        c.expect("NOOP\r\n", 'OK "NOOP completed."')
    c.login()  # and a login after them still works
