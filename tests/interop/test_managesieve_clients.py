"""Real ManageSieve clients against a real `mra serve`: sieve-connect (Debian) and the
`managesieve` Python module (PyPI): upload, list, activate, download, delete, a bad script
refused with its line; and the uploaded script doing its work when `mda` delivers.

Without sieve-connect its tests are skipped on a developer's machine and FAIL under CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interop.managesieve import (
    HOST,
    USER,
    home_of,
    sieve_connect,
    sieve_server,
)
from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.conftest import server_factory as server_factory  # the fixture

pytestmark = [pytest.mark.interop]

FILTER = (
    'require ["fileinto", "mailbox"];\n'
    'if header :contains "subject" "[lists]" {\n'
    '  fileinto :create "Lists";\n'
    "}\n"
)
BROKEN = 'require "fileinto";\nif true {\n  fileinto "X"\n}\n'  # no ";" on line 3


@pytest.fixture
def server(server_factory: type[MraServer]) -> MraServer:
    return sieve_server(server_factory(listeners=("sieve",)))


def test_sieve_connect_upload_list_activate_download_delete(
    server: MraServer, tmp_path: Path
) -> None:
    local = tmp_path / "filter.sieve"
    local.write_text(FILTER)
    sieve_connect(server, "--upload", "--localsieve", str(local), "--remotesieve", "filter")
    home = home_of(server)
    assert (home / "sieve" / "filter.sieve").read_text() == FILTER
    sieve_connect(server, "--activate", "--remotesieve", "filter")
    assert os.readlink(home / ".dovecot.sieve") == "sieve/filter.sieve"
    listing = sieve_connect(server, "--list").stdout
    assert '"filter" ACTIVE' in listing, listing
    copy = tmp_path / "copy.sieve"
    sieve_connect(server, "--download", "--remotesieve", "filter", "--localsieve", str(copy))
    assert copy.read_text() == FILTER
    refused = sieve_connect(server, "--delete", "--remotesieve", "filter", ok=(1,))
    assert "(ACTIVE)" in refused.stdout + refused.stderr
    sieve_connect(server, "--deactivate")
    sieve_connect(server, "--delete", "--remotesieve", "filter")
    assert os.listdir(home / "sieve") == ["tmp"]
    assert not os.path.lexists(home / ".dovecot.sieve")
    log = server.log()
    assert "proto=managesieve" in log and "mech=PLAIN" in log


def test_sieve_connect_is_told_the_line_of_a_bad_script(server: MraServer, tmp_path: Path) -> None:
    local = tmp_path / "broken.sieve"
    local.write_text(BROKEN)
    for action in (["--upload", "--remotesieve", "broken"], ["--checkscript"]):
        result = sieve_connect(server, *action, "--localsieve", str(local), ok=(1,))
        assert 'NO "line 4: error: ' in result.stdout + result.stderr, result
    assert not (home_of(server) / "sieve" / "broken.sieve").exists()


def test_sieve_connect_wrong_password(server: MraServer) -> None:
    result = sieve_connect(server, "--list", password="wrong", ok=(1, 2, 255))
    assert "Authentication failed" in result.stdout + result.stderr
    assert "login-failed proto=managesieve" in server.log()


def test_managesieve_module_round_trip(server: MraServer) -> None:
    import managesieve

    client = managesieve.MANAGESIEVE(HOST, server.ports["sieve"], use_tls=True, tls_verify=False)
    assert "fileinto" in client.capabilities and "PLAIN" in client.loginmechs
    assert client.login("", USER, PASSWORD) == "OK"
    assert client.havespace("filter", len(FILTER)) == "OK"
    assert client.putscript("filter", FILTER) == "OK"
    assert client.putscript("other", "keep;\n") == "OK"
    assert client.listscripts() == ("OK", [("filter", False), ("other", False)])
    assert client.setactive("filter") == "OK"
    assert client.listscripts() == ("OK", [("filter", True), ("other", False)])
    assert client.getscript("filter") == ("OK", FILTER)
    assert client.putscript("broken", BROKEN) == "NO"
    assert client.response_text.startswith("line 4: error: ")
    assert client.deletescript("filter") == "NO"
    assert client.response_code == "ACTIVE"
    assert client.deletescript("other") == "OK"
    assert client.getscript("other")[0] == "NO" and client.response_code == "NONEXISTENT"
    assert client.unauthenticate() == "OK"
    assert client.logout() == "OK"


def test_the_uploaded_script_files_mail_at_delivery(server: MraServer) -> None:
    """What a user uploads and activates is what `mda` runs: it reads ~/.dovecot.sieve."""
    import managesieve

    client = managesieve.MANAGESIEVE(HOST, server.ports["sieve"], use_tls=True, tls_verify=False)
    assert client.login("", USER, PASSWORD) == "OK"
    assert client.putscript("filter", FILTER) == "OK"
    assert client.setactive("filter") == "OK"
    client.logout()
    mda = str(Path(sys.executable).parent / "mda")
    for subject in ("[lists] news", "hello"):
        message = f"From: bob@example.test\nTo: {USER}\nSubject: {subject}\n\nbody\n".encode()
        done = subprocess.run(
            [mda, "--config", str(server.config), "-f", "bob@example.test", "-d", USER],
            input=message,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    store = server.store()
    filed: dict[str, list[bytes]] = {}
    for folder in ("Lists", "INBOX"):
        box = store.mailbox(folder)
        box.sync()
        filed[folder] = [box.read_message(m.uid) for m in box.messages()]
    assert [b"[lists] news" in m for m in filed["Lists"]] == [True]
    assert [b"Subject: hello" in m for m in filed["INBOX"]] == [True]
