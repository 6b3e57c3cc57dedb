"""One client script, two servers, one Maildir (issue #10): what a webmail or a phone does with
SPECIAL-USE, LIST-STATUS, ESEARCH, QUOTA and COMPRESS, done with imapclient, curl and a DEFLATE
client of our own (no IMAP library speaks it), against `mra serve` and then against a Dovecot
2.3 daemon (its stock imap with the quota, imap_quota and imap_zlib plugins Debian ships and
Debian's default folders plus Archive), configured alike. The two must give the same answers.

Dovecot runs as a daemon here (not the PREAUTH session of side_by_side.py) because curl and
imapclient log in, as they would; its index files go to a directory of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imapclient
import pytest
from imapclient.imapclient import DRAFTS, JUNK, SENT, TRASH

from tests.interop.clients import require
from tests.interop.dovecot import DOVECOT_IMAP, chown_tree, mail_owner, traversable_tempdir
from tests.interop.test_imap_dovecot_mailboxes import dovecot_settings, passdb_quota
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop]

USER = "alice@example.test"
QUOTA_RULE = "*:storage=10M"
MESSAGES = [
    b"From: Ann <ann@example.test>\r\nSubject: lunch\r\n\r\nat noon?\r\n",
    b"From: Bob <bob@example.test>\r\nSubject: report\r\n\r\nattached, a long line "
    + b"x" * 200
    + b"\r\n",
    b"From: Cy <cy@example.test>\r\nSubject: hello\r\n\r\nhi\r\n",
]
DOVECOT = "/usr/sbin/dovecot"


class Dovecot:
    """A private Dovecot daemon on 127.0.0.1 serving `mail` (`%d/%n`) with our passwd-file."""

    def __init__(self, base: Path, mail: Path, passwd: Path) -> None:
        self.base = base
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        uid, gid = mail_owner()
        settings = next(iter(dovecot_settings(quota_rule=QUOTA_RULE)))
        settings = settings.replace(
            "mail_plugins = quota imap_quota", "mail_plugins = quota zlib imap_quota imap_zlib"
        ).replace("mail_plugins = quota\n", "mail_plugins = quota zlib\n")
        (base / "index").mkdir()
        self.config = base / "dovecot.conf"
        self.config.write_text(
            "protocols = imap\nlisten = 127.0.0.1\nssl = no\n"
            f"base_dir = {base}/run\nstate_dir = {base}/state\nlog_path = {base}/dovecot.log\n"
            "disable_plaintext_auth = no\nauth_mechanisms = plain login\n"
            f"first_valid_uid = 0\nmail_uid = {uid}\nmail_gid = {gid}\n"
            f"mail_location = maildir:{mail}/%d/%n:INDEX={base}/index/%d/%n\n"
            f"passdb {{\n  driver = passwd-file\n  args = scheme=SHA512-CRYPT {passwd}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n}\n" + settings.replace("# (", "# ") + "\n"
        )
        chown_tree(base / "index")
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(512).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start:\n" + self.log())

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def servers() -> Iterator[tuple[MraServer, Dovecot]]:
    if not (os.access(DOVECOT, os.X_OK) and os.access(DOVECOT_IMAP, os.X_OK)):
        pytest.fail("Dovecot is not installed") if os.environ.get("CI") else pytest.skip(
            "Dovecot is not installed"
        )
    require("curl", "curl")
    base = traversable_tempdir("mra-scenario-")
    uid = mail_owner()[0]
    (base / "ours").mkdir()
    (base / "dovecot").mkdir()
    ours = MraServer(
        base / "ours",
        f'[server]\nuser = "{uid}"\nrequire_readable_installation = false\n',
        listeners=("imap",),
    )
    passdb_quota(QUOTA_RULE)(ours.store())
    box = ours.store().mailbox("INBOX")
    for i, message in enumerate(MESSAGES):
        box.append(message, flags=["\\Seen"] if i == 0 else [])
    chown_tree(ours.mail)
    ours.passwd.chmod(0o644)
    dovecot = None
    try:
        ours.start()
        dovecot = Dovecot(base / "dovecot", ours.mail, ours.passwd)
        yield ours, dovecot
    finally:
        ours.stop()
        if dovecot is not None:
            dovecot.stop()
        shutil.rmtree(base, ignore_errors=True)


def scenario(port: int) -> dict[str, Any]:
    """What a client learns: with imapclient, with curl, and over COMPRESS=DEFLATE."""
    seen: dict[str, Any] = {}
    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30)
    client.login(USER, PASSWORD)
    caps = client.capabilities()
    seen["caps"] = sorted(
        c.decode() for c in caps if c in (b"SPECIAL-USE", b"LIST-STATUS", b"ESEARCH", b"QUOTA")
    ) + sorted(c.decode() for c in caps if c.startswith(b"COMPRESS="))
    # QUOTA=RES-STORAGE is RFC 9208's, newer than Dovecot 2.3's QUOTA (RFC 2087): ours only.
    seen["quota-resources"] = sorted(c.decode() for c in caps if c.startswith(b"QUOTA="))
    seen["special"] = {
        str(use): client.find_special_folder(use) for use in (SENT, DRAFTS, TRASH, JUNK)
    }
    seen["list-status"] = _raw(
        client, "LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN))"
    )
    client.select_folder("INBOX")
    seen["esearch"] = _raw(client, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "UNSEEN")
    roots, quotas = client.get_quota_root("INBOX")
    seen["quota"] = (roots.quota_roots, [(q.resource, q.usage, q.limit) for q in quotas])
    client.logout()
    seen["curl"] = {
        cmd: _curl(port, url, cmd)
        for url, cmd in (
            ("", 'LIST "" "*" RETURN (SPECIAL-USE STATUS (MESSAGES))'),
            ("INBOX", "SEARCH RETURN (COUNT MIN) ALL"),
            ("", "GETQUOTAROOT INBOX"),
        )
    }
    seen["compressed"] = _compressed(port, 'LIST "" "*" RETURN (SPECIAL-USE)')
    return seen


def _raw(client: imapclient.IMAPClient, *args: str) -> list[bytes]:
    """A command imapclient has no method for; its untagged answers, sorted."""
    imap = client._imap
    typ, _ = imap._simple_command(*args)
    assert typ == "OK", (args, typ)
    lines = []
    for key in ("LIST", "STATUS", "ESEARCH"):
        for value in imap.untagged_responses.pop(key, []):
            lines.append(key.encode() + b" " + _squeeze(value))
    return sorted(lines)


def _squeeze(value: Any) -> bytes:
    text = value if isinstance(value, bytes) else b" ".join(_squeeze(v) for v in value)
    return re.sub(rb'\(TAG "[^"]*"\) ', b"", text)


def _curl(port: int, path: str, command: str) -> list[str]:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "--max-time",
            "30",
            "-u",
            f"{USER}:{PASSWORD}",
            "-X",
            command,
            f"imap://127.0.0.1:{port}/{path}",
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(line for line in out.splitlines() if line.strip())


def _compressed(port: int, command: str) -> list[bytes]:
    """LOGIN, COMPRESS DEFLATE, then `command` over raw DEFLATE (RFC 4978): its answers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = sock.makefile("rb")
    f.readline()
    sock.sendall(f'a LOGIN {USER} "{PASSWORD}"\r\n'.encode())
    while not f.readline().startswith(b"a OK"):
        pass
    sock.sendall(b"b COMPRESS DEFLATE\r\n")
    assert f.readline().startswith(b"b OK")
    deflate = zlib.compressobj(wbits=-15)
    inflate = zlib.decompressobj(wbits=-15)
    sock.sendall(
        deflate.compress(b"c " + command.encode() + b"\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    )
    data = b""
    while b"\r\nc " not in b"\r\n" + data:
        chunk = sock.recv(65536)
        assert chunk, "closed"
        data += inflate.decompress(chunk)
    sock.close()
    return sorted(line for line in data.split(b"\r\n") if line.startswith(b"* "))


def test_the_same_client_script_gets_the_same_answers_from_dovecot(
    servers: tuple[MraServer, Dovecot],
) -> None:
    ours, dovecot = servers
    mine = scenario(ours.ports["imap"])
    theirs = scenario(dovecot.port)
    assert mine["quota-resources"] == ["QUOTA=RES-STORAGE"] and theirs["quota-resources"] == []
    assert mine["special"] == {
        str(SENT): "Sent",
        str(DRAFTS): "Drafts",
        str(TRASH): "Trash",
        str(JUNK): "Junk",
    }
    for key in ("caps", "special", "list-status", "esearch", "quota", "curl", "compressed"):
        assert mine[key] == theirs[key], (key, mine[key], theirs[key])
