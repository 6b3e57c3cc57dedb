"""`[listen]` entries: "HOST:PORT", "unix:PATH", or a table with a unix socket's permissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstore.config import ConfigProblem, Endpoint, UnixEndpoint, check_config, load_config
from mailstore.endpoints import MAX_SOCKET_PATH, parse_listener


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mra.toml"
    path.write_text(text)
    return str(path)


def test_unix_socket_as_a_string_gets_safe_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[listen]\npop3 = "unix:/run/mra/lmtp"\n'))
    assert config.listen.pop3 == UnixEndpoint("/run/mra/lmtp", 0o600, "", "")
    assert str(config.listen.pop3) == "unix:/run/mra/lmtp"
    assert config.listen.enabled() == {"pop3": UnixEndpoint("/run/mra/lmtp")}


def test_unix_socket_as_a_table(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "[listen]\n"
            'pop3 = { address = "unix:/var/spool/postfix/private/mra", mode = 0o660, '
            'owner = "postfix", group = "postfix" }\n'
            'imap = { address = "127.0.0.1:143" }\n',
        )
    )
    assert config.listen.pop3 == UnixEndpoint(
        "/var/spool/postfix/private/mra", 0o660, "postfix", "postfix"
    )
    assert config.listen.imap == Endpoint("127.0.0.1", 143)


def test_every_listener_takes_either_form(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, '[listen]\nimap = "unix:/run/mra/imap"\npop3 = "127.0.0.1:24"\n')
    )
    assert config.listen.imap == UnixEndpoint("/run/mra/imap")
    assert config.listen.pop3 == Endpoint("127.0.0.1", 24)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0o660", 0o660), ('"0660"', 0o660), ('"660"', 0o660), ('"0o640"', 0o640), ("0", 0)],
)
def test_socket_modes(tmp_path: Path, value: str, expected: int) -> None:
    config = load_config(
        write(tmp_path, f'[listen]\npop3 = {{ address = "unix:/run/x", mode = {value} }}\n')
    )
    assert isinstance(config.listen.pop3, UnixEndpoint)
    assert config.listen.pop3.mode == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"unix:run/mra/lmtp"', "must be absolute"),
        ('"unix:/run/mra/"', "not a file name"),
        (f'"unix:/{"x" * MAX_SOCKET_PATH}"', "longer than"),
        ('{ address = "unix:/run/x", mode = 660 }', "not a permission mode"),
        ('{ address = "unix:/run/x", mode = "rw" }', "octal number"),
        ('{ address = "unix:/run/x", mode = true }', "octal number"),
        ('{ address = "unix:/run/x", owner = "" }', "user or group name"),
        ('{ address = "unix:/run/x", user = "postfix" }', "unknown key 'user'"),
        ('{ address = "127.0.0.1:24", mode = 0o600 }', "for unix sockets only"),
        ("{ mode = 0o600 }", "needs address"),
        ('"/run/mra/lmtp"', "expected HOST:PORT or unix:PATH"),
    ],
)
def test_bad_listeners_are_reported_on_their_line(
    tmp_path: Path, value: str, fragment: str
) -> None:
    found = check_config(write(tmp_path, f'[listen]\nimap = "127.0.0.1:0"\npop3 = {value}\n'))
    assert len(found) == 1, found
    assert found[0].line == 3
    assert found[0].message.startswith("[listen] pop3 ")
    assert fragment in found[0].message


def test_two_listeners_on_one_socket(tmp_path: Path) -> None:
    found = check_config(
        write(tmp_path, '[listen]\nimap = "unix:/run/mra/s"\npop3 = "unix:/run/mra/s"\n')
    )
    assert found == [ConfigProblem(3, "[listen] pop3 uses unix:/run/mra/s, as does imap")]


def test_parse_listener_off() -> None:
    assert parse_listener("") is None
    assert parse_listener("  ") is None
