"""A real `mra serve` with the ManageSieve listener, accounts with homes, and the clients.

Accounts belong to ``nobody`` when the tests run as root (as in CI): the server, running as
root, must then create the scripts as the account's own, and `mda`, which drops to the
account's uid, must read them through `~/.dovecot.sieve`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from mra.auth.passwords import hash_password
from tests.mra.conftest import PASSWORD, MraServer

USER = "alice@example.test"
HOST = "127.0.0.1"
SIEVE_PACKAGES = "sieve-connect"
TIMEOUT = 40.0


def require_sieve_connect() -> str:
    """sieve-connect's path; without it skip, or under CI fail."""
    path = shutil.which("sieve-connect")
    if path is None:
        message = (
            "sieve-connect is not installed: apt-get update; "
            f"DEBIAN_FRONTEND=noninteractive apt-get install -y {SIEVE_PACKAGES}"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def account_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def sieve_server(server: MraServer, extra_users: Sequence[str] = ()) -> MraServer:
    """Give `server`'s accounts homes (owned by the account) and start it."""
    uid, gid = account_ids()
    lines = []
    for user in (USER, "bob@example.test", *extra_users):
        home = server.base / "home" / user.partition("@")[0]
        home.mkdir(parents=True)
        os.chown(home, uid, gid)
        hashed = hash_password(PASSWORD, "SHA512-CRYPT")
        lines.append(f"{user}:{hashed}:{uid}:{gid}::{home}::\n")
    server.passwd.write_text("".join(lines))
    os.chown(server.mail, uid, gid)
    server.start()
    return server


def home_of(server: MraServer, user: str = USER) -> Path:
    return server.base / "home" / user.partition("@")[0]


def sieve_connect(
    server: MraServer, *args: str, password: str = PASSWORD, ok: Sequence[int] = (0,)
) -> subprocess.CompletedProcess[str]:
    """sieve-connect against `server` with STARTTLS (our certificate is self-signed), the
    password on a pipe (--passwordfd), and `args`."""
    binary = require_sieve_connect()
    read_end, write_end = os.pipe()
    os.write(write_end, password.encode() + b"\n")
    os.close(write_end)
    argv = [
        binary,
        "--server",
        HOST,
        "--port",
        str(server.ports["sieve"]),
        "--user",
        USER,
        "--passwordfd",
        str(read_end),
        "--notlsverify",
        *args,
    ]
    try:
        result = subprocess.run(
            argv,
            pass_fds=(read_end,),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/"},
        )
    finally:
        os.close(read_end)
    assert result.returncode in ok, (argv, result.returncode, result.stdout, result.stderr)
    return result
