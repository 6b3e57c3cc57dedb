"""A real `mra serve` on free loopback ports, with users, mail and a certificate."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore.store import MailStore
from mra.auth.passwords import hash_password
from mra.selfsigned import generate_self_signed

MRA = str(Path(sys.executable).parent / "mra")
PASSWORD = "sesame-Open-42"
USERS = ("alice@example.test", "bob@example.test")
_CERT: dict[str, Path] = {}


def certificate() -> tuple[Path, Path]:
    """One self-signed pair per test run (generating one takes a moment)."""
    if not _CERT:
        d = Path(tempfile.mkdtemp(prefix="mra-cert-"))
        generate_self_signed(str(d / "cert.pem"), str(d / "key.pem"))
        _CERT["cert"], _CERT["key"] = d / "cert.pem", d / "key.pem"
    return _CERT["cert"], _CERT["key"]


class MraServer:
    def __init__(self, base: Path, extra: str = "", listeners: tuple[str, ...] = ()) -> None:
        self.base = base
        self.mail = base / "mail"
        self.mail.mkdir()
        cert, key = certificate()
        self.passwd = base / "passwd"
        self.passwd.write_text(
            "".join(f"{u}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n" for u in USERS)
        )
        self.access = base / "access"
        self.access.write_text("")
        listeners = listeners or ("imap", "imaps", "pop3", "pop3s")
        self.config = base / "mra.toml"
        self.config.write_text(
            "[listen]\n"
            + "".join(f'{name} = "127.0.0.1:0"\n' for name in listeners)
            + f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'
            + f'[auth]\npasswd_file = "{self.passwd}"\n'
            + f'[mail]\nlocation = "{self.mail}/%d/%n"\n'
            + f'[maps]\naccess = "{self.access}"\n'
            + f'local_domains = "{base}/local-host-names"\n'
            + extra
        )
        (base / "local-host-names").write_text("example.test\n")
        self.log_path = base / "mra.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    def store(self, user: str = "alice@example.test") -> MailStore:
        local, _, domain = user.partition("@")
        return MailStore(str(self.mail / domain / local))

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (kept open for the server)
        self.proc = subprocess.Popen(
            [MRA, "serve", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log()
            if " ready " in text:
                for name, port in re.findall(
                    r"listening listener=(\w+) address=[\d.]+:(\d+)", text
                ):
                    self.ports[name] = int(port)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"mra serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"mra serve did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def server_factory() -> Iterator[type[MraServer]]:
    started: list[MraServer] = []
    bases: list[Path] = []

    class Factory(MraServer):
        def __init__(self, extra: str = "", listeners: tuple[str, ...] = ()) -> None:
            base = Path(tempfile.mkdtemp(prefix="mra-test-"))
            base.chmod(0o755)
            bases.append(base)
            super().__init__(base, extra, listeners)
            started.append(self)

    yield Factory
    for s in started:
        s.stop()
    for b in bases:
        shutil.rmtree(b, ignore_errors=True)


@pytest.fixture
def server(server_factory: type[MraServer]) -> MraServer:
    s = server_factory()
    box = s.store().mailbox("INBOX")
    box.append(b"From: bob@example.test\nSubject: one\n\nbody one\n.\nafter a dot line\n")
    box.append(b"From: carol@example.test\r\nSubject: two\r\n\r\nbody two\r\n")
    s.start()
    return s


def pid_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out
