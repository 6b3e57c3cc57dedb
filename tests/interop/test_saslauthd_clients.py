"""Cyrus SASL's own saslauthd client, `testsaslauthd` (Debian's sasl2-bin), against our socket.

testsaslauthd speaks the protocol with libsasl2's code path (counted login, password, service,
realm) and prints `0: OK "Success."` or `0: NO "..."`, exiting 0 or 255. It connects to a unix
socket path only: `[listen.saslauthd] address = "unix:PATH"`.

Without sasl2-bin the tests are skipped on a developer's machine and FAIL under CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop]

TIMEOUT = 60.0


@pytest.fixture(scope="module")
def testsaslauthd() -> str:
    path = shutil.which("testsaslauthd") or "/usr/sbin/testsaslauthd"
    if not os.access(path, os.X_OK):
        reason = "testsaslauthd is not installed: install the Debian package sasl2-bin"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def mux(testsaslauthd: str) -> Iterator[tuple[Path, MraServer]]:
    base = Path(tempfile.mkdtemp(prefix="mra-saslauthd-"))
    base.chmod(0o755)
    (base / "mra").mkdir()
    server = MraServer(base / "mra", listeners=("pop3",))
    # MraServer writes [listen] itself; TOML lets a sub-table follow it anywhere.
    server.config.write_text(
        server.config.read_text() + f'[listen.saslauthd]\naddress = "unix:{base}/mux"\n'
    )
    server.start()
    try:
        yield base / "mux", server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def check(testsaslauthd: str, mux: Path, user: str, password: str, *extra: str) -> tuple[int, str]:
    proc = subprocess.run(
        [testsaslauthd, "-f", str(mux), "-u", user, "-p", password, "-s", "smtp", *extra],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return proc.returncode, proc.stdout.strip()


def test_right_wrong_unknown(testsaslauthd: str, mux: tuple[Path, MraServer]) -> None:
    path, server = mux
    assert check(testsaslauthd, path, "alice@example.test", PASSWORD) == (0, '0: OK "Success."')
    assert check(testsaslauthd, path, "alice@example.test", "not-it") == (
        255,
        '0: NO "authentication failed"',
    )
    assert check(testsaslauthd, path, "nobody@example.test", PASSWORD) == (
        255,
        '0: NO "authentication failed"',
    )
    # A realm (libsasl2 passes the server's host name) changes nothing, as saslauthd without -r.
    assert check(testsaslauthd, path, "bob@example.test", PASSWORD, "-r", "mx.example.test")[0] == 0
    log = server.log()
    assert "login-failed proto=saslauthd login=nobody@example.test" in log
    assert PASSWORD not in log
