"""A complete delivery set-up in a temporary directory, and `mda` run as the MTA runs it.

When the tests run as root (as in CI), `[mda] mail_uid = "nobody"` and the Maildirs belong to
nobody, so every delivery really drops privileges; otherwise mail is delivered as ourselves.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore.store import MailStore

MDA = str(Path(sys.executable).parent / "mda")
ROOT = os.geteuid() == 0


def mail_ids() -> tuple[int, int]:
    if ROOT:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


class MdaEnv:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.etc = base / "etc"
        self.vmail = base / "vmail"
        self.etc.mkdir()
        self.vmail.mkdir()
        uid, gid = mail_ids()
        os.chown(self.vmail, uid, gid)
        self.uid, self.gid = uid, gid
        self.passwd = self.etc / "passwd"
        self.passwd.write_text(
            f"alice@example.test:{{PLAIN}}a:{uid}:{gid}::{base}/home/alice::\n"
            f"bob@example.test:{{PLAIN}}b:{uid}:{gid}::{base}/home/bob::\n"
            f"carol@virt.test:{{PLAIN}}c:{uid}:{gid}::{base}/home/carol::\n"
            f"wendy:{{PLAIN}}w:{uid}:{gid}::{base}/home/wendy::"
            f"userdb_mail=maildir:{self.vmail}/wendy\n"
        )
        for user in ("alice", "bob", "carol", "wendy"):
            home = base / "home" / user
            home.mkdir(parents=True)
            os.chown(home, uid, gid)
        (self.etc / "local-host-names").write_text("example.test\n")
        self.aliases = self.etc / "aliases"
        self.aliases.write_text("postmaster: alice\nteam: alice, bob, alice@example.test\n")
        self.virtusertable = self.etc / "virtusertable"
        self.virtusertable.write_text(
            "info@virt.test   bob@example.test\n"
            "list@virt.test   team\n"
            "gone@virt.test   error:5.1.1:550 this address is gone\n"
            "busy@virt.test   error:4.2.1:450 try later\n"
        )
        self.access = self.etc / "access"
        self.access.write_text("")
        self.sendmail_log = base / "sendmail.log"
        self.sendmail = self.etc / "fake-sendmail"
        self.sendmail.write_text(
            "#!/bin/sh\n"
            f'echo "$@" >> {self.sendmail_log}\n'
            f"cat >> {self.sendmail_log}\n"
            f"test -e {base}/fail-sendmail && exit 1\n"
            "exit 0\n"
        )
        self.sendmail.chmod(0o755)
        self.sendmail_log.touch()
        os.chown(self.sendmail_log, uid, gid)
        self.extra = ""
        self.write_config()

    def write_config(self, extra: str = "") -> None:
        self.extra = extra
        self.config = self.etc / "mra.toml"
        self.config.write_text(
            f'[auth]\npasswd_file = "{self.passwd}"\n'
            f'[mail]\nlocation = "{self.vmail}/%d/%n"\nmax_message_size = 100000\n'
            f'[maps]\naliases = "{self.aliases}"\nvirtusertable = "{self.virtusertable}"\n'
            f'access = "{self.access}"\nlocal_domains = "{self.etc}/local-host-names"\n'
            f'[mda]\nsendmail = "{self.sendmail}"\n'
            + ('mail_uid = "nobody"\n' if ROOT else "")
            + extra
        )

    def run(
        self, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [MDA, "--config", str(self.config), *args],
            input=stdin,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=60,
        )

    def root_of(self, user: str) -> Path:
        if "@" in user:
            local, _, domain = user.partition("@")
            return self.vmail / domain / local
        return self.vmail / user

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        root = self.root_of(user)
        if not (root / "cur").is_dir():
            return []
        box = MailStore(str(root), create=False).mailbox(folder)
        box.sync()
        return [box.read_message(uid) for uid in box.uids()]

    def make_folder(self, user: str, folder: str) -> None:
        MailStore(str(self.root_of(user))).create_folder(folder)
        self.chown_all()

    def chown_all(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.vmail):
            for name in [*dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid)


@pytest.fixture
def env() -> Iterator[MdaEnv]:
    base = Path(tempfile.mkdtemp(prefix="mda-test-"))
    base.chmod(0o755)  # nobody must be able to reach the Maildirs
    try:
        yield MdaEnv(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


MSG = (
    b"From: sender@remote.test\nTo: alice@example.test\nSubject: hello\n"
    b"Message-ID: <m1@remote.test>\n\nHello Alice.\n"
)
