"""End to end: mail over SMTP into a real Postfix, handed to `mra serve` over LMTP.

The configuration is the README's ("Postfix over LMTP"): its `mra.toml` listener and its
main.cf lines are read from README.md and used as they are, with the paths of this private
instance (see tests/interop/postfix.py) in place of /var/spool/postfix. Postfix starts first
(it makes `private/`), then the server binds its socket there, owned by postfix, mode 0600.

* `virtual_transport = lmtp:unix:private/mra-lmtp` for example.test: passwd-file users, our
  aliases file, `+detail` through a Sieve script, an unknown user (550 5.1.1 at RCPT: Postfix
  bounces), three recipients of one message with one over quota (only that one deferred);
* `mailbox_transport = lmtp:...` for local.test: local(8) applies Postfix's own aliases first,
  then hands the recipient to the server.

Without Postfix or root the module is skipped on a developer's machine and FAILS under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.postfix import (
    INSTALL_HINT,
    PostfixInstance,
    make_message,
    postfix_available,
    running_as_root,
)
from tests.mra.conftest import MraServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
VIRTUAL = "example.test"  # the README's domain
LOCAL = "local.test"
SENDER = "sender@example.org"
TIMEOUT = 60.0
NOBODY = 65534


def readme_blocks() -> tuple[str, dict[str, str]]:
    """The README's `lmtp = ...` line of mra.toml, and its main.cf settings."""
    text = README.read_text()
    section = text.split("### Postfix over LMTP", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
    toml = next(b for b in blocks if "# /etc/mra/mra.toml" in b)
    main_cf = next(b for b in blocks if "# /etc/postfix/main.cf" in b)
    lmtp = next(line for line in toml.splitlines() if line.startswith("lmtp = "))
    settings = {}
    for line in main_cf.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return lmtp, settings


@dataclass
class System:
    postfix: PostfixInstance
    server: MraServer

    def maildir(self, user: str) -> Path:
        if "@" not in user:
            return self.server.mail / user
        local, _, domain = user.partition("@")
        return self.server.mail / domain / local

    def stored(self, user: str, marker: str, folder: str = "") -> list[Path]:
        root = self.maildir(user) / (f".{folder}" if folder else "")
        return [
            p
            for sub in ("new", "cur")
            if (root / sub).is_dir()
            for p in (root / sub).iterdir()
            if marker.encode() in p.read_bytes()
        ]

    def send(
        self, rcpts: list[str], body: str = "", headers: dict[str, str] | None = None
    ) -> tuple[str, str]:
        marker = f"lmtptest-{uuid.uuid4().hex}"
        msg = make_message(
            sender=SENDER,
            to=", ".join(rcpts),
            subject=f"test {marker}",
            body=f"{marker}\n{body}",
            message_id=f"<{marker}@client.test>",
            extra_headers=headers,
        )
        return self.postfix.send(SENDER, rcpts, msg), marker

    def status(self, queue_id: str, rcpt: str) -> str:
        entry = self.postfix.wait_for_status(queue_id, rcpt, timeout=TIMEOUT)
        assert entry.program.endswith("lmtp"), entry.line
        return f"{entry.status} {entry.dsn}"

    def diagnostics(self) -> str:
        return "\n".join(self.postfix.log().splitlines()[-30:]) + "\n" + self.server.log()[-3000:]


def _missing(reason: str) -> None:
    message = f"{reason}: install the Debian package postfix ({INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    if not postfix_available():
        _missing("Postfix 3.4 or newer is not installed")
    if not running_as_root():
        _missing("Postfix must be run as root")
    lmtp_line, readme_main_cf = readme_blocks()
    base = Path(tempfile.mkdtemp(prefix="postfix-lmtp-"))
    base.chmod(0o755)
    postfix: PostfixInstance | None = None
    server: MraServer | None = None
    try:
        aliases = base / "postfix-aliases"
        aliases.write_text("pfalias dave\n")  # texthash: "key value", not aliases(5)
        main_cf = {
            **readme_main_cf,
            "mydestination": f"$myhostname, localhost, {LOCAL}",
            "alias_maps": f"texthash:{aliases}",
            "local_recipient_maps": "",  # passwd-file users are no unix accounts
        }
        postfix = PostfixInstance(
            base / "postfix",
            main_cf=main_cf,
            master_cf=["lmtp unix - - n - - lmtp"],
            timeout=TIMEOUT,
        )
        postfix.start()
        server_base = base / "mra"
        server_base.mkdir(mode=0o755)
        server = MraServer(server_base, listeners=("imap",))
        queue = str(postfix.queue_dir)
        config = server.config.read_text()
        config = config.replace(
            "[listen]\n", "[listen]\n" + lmtp_line.replace("/var/spool/postfix", queue) + "\n"
        )
        config = config.replace("[maps]\n", f'[maps]\naliases = "{server_base}/aliases"\n')
        server.config.write_text(
            config + '[server]\nuser = "nobody"\nrequire_readable_installation = false\n'
        )
        home = server_base / "home"
        home.mkdir()
        (home / ".dovecot.sieve").write_text(
            'require ["fileinto", "envelope", "subaddress", "mailbox"];\n'
            'if envelope :detail "to" "shop" { fileinto :create "Shop"; }\n'
        )
        os.chown(home, NOBODY, NOBODY)
        server.passwd.write_text(
            f"alice@{VIRTUAL}:{{PLAIN}}x::::{home}::\n"
            f"bob@{VIRTUAL}:{{PLAIN}}x::::::\n"
            f"carol@{VIRTUAL}:{{PLAIN}}x::::::userdb_quota_rule=*:storage=1K\n"
            f"dave:{{PLAIN}}x::::::userdb_mail=maildir:{server.mail}/dave\n"
        )
        (server_base / "aliases").write_text(f"team: alice@{VIRTUAL}, bob@{VIRTUAL}\n")
        # local(8) expands an alias to `user@$myorigin` (the host name here): a name of ours.
        (server_base / "local-host-names").write_text(f"{VIRTUAL}\n{LOCAL}\n{postfix.hostname}\n")
        os.chown(server.mail, NOBODY, NOBODY)
        server.start()
        yield System(postfix, server)
    finally:
        if server is not None:
            server.stop()
        if postfix is not None:
            postfix.stop()
        if os.environ.get("POSTFIX_KEEP"):
            print(f"\nPOSTFIX_KEEP: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def test_socket_is_postfix_only(system: System) -> None:
    st = os.lstat(system.postfix.queue_dir / "private" / "mra-lmtp")
    import pwd

    assert st.st_uid == pwd.getpwnam("postfix").pw_uid
    assert st.st_mode & 0o777 == 0o600


def test_virtual_user(system: System) -> None:
    rcpt = f"bob@{VIRTUAL}"
    queue_id, marker = system.send([rcpt])
    assert system.status(queue_id, rcpt) == "sent 2.0.0", system.diagnostics()
    [path] = system.stored(rcpt, marker)
    text = path.read_bytes()
    assert text.startswith(f"Return-Path: <{SENDER}>\r\nDelivered-To: {rcpt}\r\n".encode())
    assert b"with LMTP id " in text
    assert path.stat().st_uid == NOBODY


def test_alias_of_ours(system: System) -> None:
    rcpt = f"team@{VIRTUAL}"
    queue_id, marker = system.send([rcpt])
    assert system.status(queue_id, rcpt) == "sent 2.0.0", system.diagnostics()
    assert len(system.stored(f"alice@{VIRTUAL}", marker)) == 1
    assert len(system.stored(f"bob@{VIRTUAL}", marker)) == 1


def test_detail_reaches_sieve(system: System) -> None:
    rcpt = f"alice+shop@{VIRTUAL}"
    queue_id, marker = system.send([rcpt])
    assert system.status(queue_id, rcpt) == "sent 2.0.0", system.diagnostics()
    assert len(system.stored(f"alice@{VIRTUAL}", marker, "Shop")) == 1
    assert system.stored(f"alice@{VIRTUAL}", marker) == []


def test_unknown_user_bounces(system: System) -> None:
    rcpt = f"nosuchuser@{VIRTUAL}"
    queue_id, _ = system.send([rcpt])
    assert system.status(queue_id, rcpt) == "bounced 5.1.1", system.diagnostics()
    entry = system.postfix.bounces_for(rcpt, queue_id=queue_id)[0]
    assert "user unknown" in entry.text, entry.line


def test_one_of_three_over_quota_is_deferred_alone(system: System) -> None:
    postfix = system.postfix
    rcpts = [f"alice@{VIRTUAL}", f"carol@{VIRTUAL}", f"bob@{VIRTUAL}"]
    queue_id, marker = system.send(rcpts, "x" * 3000)
    try:
        assert system.status(queue_id, rcpts[0]) == "sent 2.0.0", system.diagnostics()
        assert system.status(queue_id, rcpts[2]) == "sent 2.0.0", system.diagnostics()
        assert system.status(queue_id, rcpts[1]) == "deferred 4.2.2", system.diagnostics()
        assert len(system.stored(rcpts[0], marker)) == 1
        assert len(system.stored(rcpts[2], marker)) == 1
        assert system.stored(rcpts[1], marker) == []
        [held] = [m for m in postfix.queue() if m["queue_id"] == queue_id]
        assert [r["address"] for r in held["recipients"]] == [rcpts[1]]
    finally:
        postfix.delete(queue_id)


def test_local_user_through_mailbox_transport(system: System) -> None:
    rcpt = f"dave@{LOCAL}"
    queue_id, marker = system.send([rcpt])
    assert system.status(queue_id, rcpt) == "sent 2.0.0", system.diagnostics()
    assert len(system.stored("dave", marker)) == 1


def test_postfix_alias_then_mailbox_transport(system: System) -> None:
    rcpt = f"pfalias@{LOCAL}"
    queue_id, marker = system.send([rcpt])
    target = f"dave@{system.postfix.hostname}"  # local(8) qualifies it with $myorigin
    entry = system.postfix.wait_for_status(queue_id, target, timeout=TIMEOUT)
    assert entry.status == "sent", system.diagnostics()
    assert entry.orig_to == rcpt
    assert len(system.stored("dave", marker)) == 1


def test_attack_delivered_to_loop_bounces_for_that_recipient_only(system: System) -> None:
    """The message already went through bob's mailbox (`Delivered-To: bob@...`, as we
    write it) and comes back to him and alice in one transaction: bob's copy is a loop,
    refused 5.4.6 and bounced by Postfix, alice's is delivered (the other recipient is not
    held up by it, RFC 2033 4.2)."""
    looped, other = f"bob@{VIRTUAL}", f"alice@{VIRTUAL}"
    queue_id, marker = system.send([looped, other], headers={"Delivered-To": looped.upper()})
    assert system.status(queue_id, other) == "sent 2.0.0", system.diagnostics()
    assert system.status(queue_id, looped) == "bounced 5.4.6", system.diagnostics()
    entry = system.postfix.bounces_for(looped, queue_id=queue_id)[0]
    assert "loop" in entry.text, entry.line
    assert system.stored(looped, marker) == []
    assert len(system.stored(other, marker)) == 1
