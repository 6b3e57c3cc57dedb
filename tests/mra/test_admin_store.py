"""`mra mailbox|search|fetch|expunge|quota|force-resync|auth test|user lookup`: on the store,
beside a running server whose clients see the changes."""

from __future__ import annotations

import imaplib
import subprocess
import sys
from pathlib import Path

from tests.mra.conftest import PASSWORD, MraServer

MRA = str(Path(sys.executable).parent / "mra")
USER = "alice@example.test"


def mra(s: MraServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MRA, *args, "--config", str(s.config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_store_commands_beside_a_running_server(server: MraServer) -> None:
    box = server.store().mailbox("INBOX")
    box.append(b"From: dave@example.test\r\nSubject: third\r\n\r\nbody three\r\n")
    imap = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=_ctx())
    imap.login(USER, PASSWORD)
    imap.select("INBOX")

    out = mra(server, "search", USER, "INBOX", "FROM", "carol")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2"]
    assert mra(server, "search", USER, "INBOX", "ALL").stdout.split() == ["1", "2", "3"]
    bad = mra(server, "search", USER, "INBOX", "FROBNICATE")
    assert bad.returncode == 1 and "FROBNICATE" in bad.stderr.upper()

    fetched = mra(server, "fetch", USER, "INBOX", "SUBJECT", "two", "--items", "(BODY.PEEK[TEXT])")
    assert fetched.returncode == 0, fetched.stderr
    assert "UID 2" in fetched.stdout and "body two" in fetched.stdout

    assert mra(server, "mailbox", "create", USER, "Archiv.2026", "Über").returncode == 0
    listed = mra(server, "mailbox", "list", USER).stdout.splitlines()
    assert {"INBOX", "Archiv.2026", "Über"} <= set(listed)
    assert mra(server, "mailbox", "rename", USER, "Über", "Ueber").returncode == 0
    status = mra(server, "mailbox", "status", USER, "INBOX").stdout
    assert "messages=3" in status and "uidnext=4" in status
    assert mra(server, "mailbox", "delete", USER, "Ueber").returncode == 0
    assert "Ueber" not in mra(server, "mailbox", "list", USER).stdout.split()

    expunged = mra(server, "expunge", USER, "INBOX", "FROM", "dave")
    assert expunged.returncode == 0 and expunged.stdout.strip() == "expunged=1"
    # The server's client sees it go (the session syncs at its next command).
    typ, _ = imap.noop()
    assert typ == "OK"
    assert imap.uid("SEARCH", "ALL")[1] == [b"1 2"]
    imap.logout()

    resync = mra(server, "force-resync", USER)
    assert resync.returncode == 0 and "mailbox=INBOX messages=2" in resync.stdout
    quota = mra(server, "quota", "recalc", USER)
    assert quota.returncode == 0


def test_user_lookup_and_auth_test(server: MraServer) -> None:
    found = mra(server, "user", "lookup", USER)
    assert found.returncode == 0, found.stderr
    assert f"user={USER}" in found.stdout
    assert f"mail={server.mail}/example.test/alice" in found.stdout
    assert "password" not in found.stdout.lower() and "$6$" not in found.stdout
    missing = mra(server, "user", "lookup", "nobody@example.test")
    assert missing.returncode == 1 and "no such user" in missing.stderr

    ok = mra(server, "auth", "test", USER, stdin=PASSWORD + "\n")
    assert ok.returncode == 0 and "auth succeeded" in ok.stdout
    wrong = mra(server, "auth", "test", USER, "not-it")
    unknown = mra(server, "auth", "test", "who@example.test", "not-it")
    assert wrong.returncode == unknown.returncode == 1
    assert "auth failed" in wrong.stderr and "auth failed" in unknown.stderr


def test_attack_mailbox_name_with_a_line_break(server: MraServer) -> None:
    """A mailbox name is one IMAP string: a line break cannot smuggle a second command."""
    out = mra(server, "mailbox", "create", USER, 'x"\r\nA9 DELETE INBOX')
    assert out.returncode == 1 and "line break" in out.stderr
    out = mra(server, "mailbox", "create", USER, 'x" INBOX "')
    assert out.returncode == 0
    assert 'x" INBOX "' in mra(server, "mailbox", "list", USER).stdout.splitlines()


def _ctx():  # type: ignore[no-untyped-def]
    import ssl

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
