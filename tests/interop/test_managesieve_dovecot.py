"""Dovecot's managesieve (Pigeonhole) and ours on the same home, side by side: each sees the
scripts and the active one the other wrote, as a site moving from Dovecot needs.

Dovecot's `managesieve` binary runs one pre-authenticated session on stdin/stdout (like its
`imap`, see tests/interop/dovecot.py) with `sieve = file:~/sieve;active=~/.dovecot.sieve`,
Pigeonhole's default, as the account's user. Without it (Debian's dovecot-managesieved and
dovecot-sieve) the tests are skipped on a developer's machine and FAIL under CI.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.interop.managesieve import HOST, USER, account_ids, home_of, sieve_server
from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.conftest import server_factory as server_factory  # the fixture

pytestmark = [pytest.mark.interop]

DOVECOT_MANAGESIEVE = Path(os.environ.get("DOVECOT_LIBEXEC", "/usr/lib/dovecot")) / "managesieve"
PACKAGES = "dovecot-managesieved dovecot-sieve"


def dovecot(home: Path, commands: bytes) -> list[str]:
    """Run `commands` (exactly these bytes, then LOGOUT) in one Dovecot managesieve session on
    `home`: the lines it answered."""
    if not os.access(DOVECOT_MANAGESIEVE, os.X_OK):
        message = f"{DOVECOT_MANAGESIEVE} missing: apt-get install -y {PACKAGES}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    run = home.parent / "dovecot"
    run.mkdir(exist_ok=True)
    conf = run / "dovecot.conf"
    uid, gid = account_ids()
    conf.write_text(
        "protocols = sieve\n"
        "ssl = no\n"
        f"base_dir = {run}/base\n"
        f"state_dir = {run}/state\n"
        f"log_path = {run}/dovecot.log\n"
        "mail_location = maildir:~/Maildir\n"
        "first_valid_uid = 0\n"
        + (f"mail_uid = {uid}\nmail_gid = {gid}\n" if os.geteuid() == 0 else "")
        + "plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n"
    )
    done = subprocess.run(
        [str(DOVECOT_MANAGESIEVE), "-c", str(conf)],
        input=commands + b"LOGOUT\r\n",
        capture_output=True,
        timeout=30,
        env={"USER": USER, "HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout.decode().split("\r\n")


def put(name: str, script: str) -> bytes:
    data, quoted = script.encode(), name.encode()
    return b'PUTSCRIPT "%s" {%d+}\r\n%s\r\n' % (quoted, len(data), data)


def raw(server: MraServer, commands: bytes) -> list[str]:
    """Our server over plain TCP on loopback (PLAIN is allowed there): for RENAMESCRIPT,
    which the `managesieve` module lacks."""
    import base64
    import socket

    token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    with socket.create_connection((HOST, server.ports["sieve"]), timeout=30) as sock:
        sock.sendall(b'AUTHENTICATE "PLAIN" "%s"\r\n%sLOGOUT\r\n' % (token, commands))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode().split("\r\n")


def ours(server: MraServer) -> Any:
    import managesieve

    client = managesieve.MANAGESIEVE(HOST, server.ports["sieve"], use_tls=True, tls_verify=False)
    assert client.login("", USER, PASSWORD) == "OK"
    return client


@pytest.fixture
def server(server_factory: type[MraServer]) -> MraServer:
    return sieve_server(server_factory(listeners=("sieve",)))


def test_dovecot_sees_what_we_wrote(server: MraServer) -> None:
    client = ours(server)
    assert client.putscript("main", 'require "fileinto";\nfileinto "A";\n') == "OK"
    assert client.putscript("Ferien ☀", "keep;\n") == "OK"
    assert client.setactive("main") == "OK"
    lines = dovecot(home_of(server), b'LISTSCRIPTS\r\nGETSCRIPT "main"\r\n')
    assert '"main" ACTIVE' in lines and '"Ferien ☀"' in lines, lines
    assert '{34}\r\nrequire "fileinto";\nfileinto "A";\n\r\nOK' in "\r\n".join(lines)


def test_we_see_what_dovecot_wrote(server: MraServer) -> None:
    home = home_of(server)
    script = 'require ["fileinto"];\nfileinto "B";\n'
    lines = dovecot(
        home,
        put("first", script)
        + put("second", "keep;\n")
        + b'SETACTIVE "first"\r\nRENAMESCRIPT "second" "renamed"\r\n',
    )
    assert lines.count('OK "PUTSCRIPT completed."') == 2, lines
    client = ours(server)
    assert client.listscripts() == ("OK", [("first", True), ("renamed", False)])
    assert client.getscript("first") == ("OK", script)
    # And back: we rename the active script, and Dovecot sees it renamed and still active.
    assert 'OK "Renamescript completed."' in raw(server, b'RENAMESCRIPT "first" "main"\r\n')
    lines = dovecot(home, b"LISTSCRIPTS\r\n")
    assert sorted(line for line in lines if line.startswith('"')) == ['"main" ACTIVE', '"renamed"']


def test_active_script_switches_between_servers(server: MraServer) -> None:
    home = home_of(server)
    client = ours(server)
    for name in ("a", "b"):
        assert client.putscript(name, "keep;\n") == "OK"
    assert client.setactive("a") == "OK"
    lines = dovecot(home, b'SETACTIVE "b"\r\nLISTSCRIPTS\r\n')
    assert '"b" ACTIVE' in lines and '"a"' in lines, lines
    assert os.readlink(home / ".dovecot.sieve") == "sieve/b.sieve"
    assert client.listscripts() == ("OK", [("a", False), ("b", True)])
    assert client.deletescript("b") == "NO"
    assert client.setactive("") == "OK"
    assert client.deletescript("b") == "OK"
    lines = dovecot(home, b"LISTSCRIPTS\r\n")
    assert [line for line in lines if line.startswith('"')] == ['"a"']


def test_both_rescue_a_hand_written_dovecot_sieve_the_same_way(server: MraServer) -> None:
    home = home_of(server)
    uid, gid = account_ids()
    hand = home / ".dovecot.sieve"
    hand.write_text("discard;\n")
    os.chown(hand, uid, gid)
    client = ours(server)
    assert client.putscript("new", "keep;\n") == "OK"
    assert client.setactive("new") == "OK"
    lines = dovecot(home, b'LISTSCRIPTS\r\nGETSCRIPT "dovecot.orig"\r\n')
    assert '"dovecot.orig"' in lines and '"new" ACTIVE' in lines
    assert "{9}\r\ndiscard;\n\r\nOK" in "\r\n".join(lines)


@pytest.mark.parametrize("name", ["a/b", "\xff", "\u2028", "tab\there"])
def test_names_dovecot_refuses_we_refuse(server: MraServer, name: str) -> None:
    literal = name.encode()
    command = b"PUTSCRIPT {%d+}\r\n%s {6+}\r\nkeep;\n\r\n" % (len(literal), literal)
    assert 'NO "Invalid script name."' in raw(server, command)
    theirs = dovecot(home_of(server), command)
    assert any(line.startswith("NO ") for line in theirs), theirs
    sieve = home_of(server) / "sieve"
    assert (os.listdir(sieve) if sieve.exists() else []) in ([], ["tmp"])
