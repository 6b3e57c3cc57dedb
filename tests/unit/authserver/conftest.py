"""A real passdb, authenticator and throttle behind the auth-socket sessions, no network: the
sessions are fed bytes and their outputs run synchronously (`run_blocking`, so a failure
delay costs nothing here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailstore.config import load_config
from mra.auth.glue import AuthService
from mra.auth.passwords import hash_password
from mra.context import Connection, Services

PASSWORD = "sesame-Open-42"
PLAIN_PASSWORD = "plain-pw"


@pytest.fixture
def services_factory(tmp_path: Path) -> Callable[..., Services]:
    def make(extra: str = "", plain_users: bool = True) -> Services:
        passwd = tmp_path / "passwd"
        lines = [f"alice@example.test:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::"]
        if plain_users:
            lines.append(f"bob@example.test:{{PLAIN}}{PLAIN_PASSWORD}::::::")
        passwd.write_text("\n".join(lines) + "\n")
        (tmp_path / "access").write_text("")
        (tmp_path / "local-host-names").write_text("example.test\n")
        config_path = tmp_path / "mra.toml"
        config_path.write_text(
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n'
            f'[maps]\naccess = "{tmp_path}/access"\n'
            f'local_domains = "{tmp_path}/local-host-names"\n' + extra
        )
        config = load_config(str(config_path))
        return Services(config, AuthService(config))

    return make


@pytest.fixture
def services(services_factory: Callable[..., Services]) -> Services:
    return services_factory()


def connection(listener: str) -> Connection:
    return Connection(listener, "127.0.0.1", 40000, 12345)
