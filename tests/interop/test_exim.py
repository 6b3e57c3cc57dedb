"""Exim: SMTP AUTH through our auth socket (`driver = dovecot`) and delivery over our LMTP.

Exim cannot be installed beside Postfix (both are the system's MTA), and Debian's light
daemon has no `dovecot` authenticator; so, as sendmail's (tests/interop/sendmail.py), the
heavy daemon's package is unpacked into a directory of its own (`EXIM_ROOT`; the two
libraries it links that Postfix's system lacks, libmariadb3 and libspf2-2, are ordinary
packages that .ci/run installs) and run from there, with its own `-C` configuration, port,
spool and log, never installed:

* its binary looks up its compiled-in user, `Debian-exim`, before reading any configuration,
  and no such account exists without the package's postinst: every Exim command runs in a mount
  namespace of its own (`unshare --mount`, root only) where /etc/passwd and /etc/group are
  private copies naming `Debian-exim` with the uid and gid of `nobody`. The system's files
  are untouched;
* Exim execs itself for each delivery: `exim_path` names the unpacked binary.

What it checks: swaks `--auth PLAIN` and `--auth LOGIN` against Exim, whose dovecot
authenticator asks our `[listen] auth` socket: the right password 235, a wrong one and an
unknown user 535; and a message accepted by Exim for two of our users is delivered by its
`lmtp` transport to our `[listen] lmtp` socket, one copy in each Maildir, with our trace
lines (the README's Exim configuration, as tested here).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.sendmail import unpack_debs
from tests.mra.conftest import PASSWORD, MraServer

EXIM_ROOT = Path(os.environ.get("MRA_EXIM_ROOT", "/var/cache/mra-exim"))
PACKAGES = ("exim4-daemon-heavy",)
HOSTNAME = "mx.example.test"
NOBODY = 65534
TIMEOUT = 60.0


def binary() -> Path:
    return EXIM_ROOT / "usr" / "sbin" / "exim4"


def missing() -> str:
    """Why the private Exim cannot run ("" when it can): what is not there, or not linked."""
    if not binary().exists():
        return f"{binary()} is missing"
    ldd = subprocess.run(["ldd", str(binary())], capture_output=True, text=True)
    absent = [line.split()[0] for line in ldd.stdout.splitlines() if "not found" in line]
    if absent:
        return f"{binary()} links libraries not installed: {', '.join(absent)}"
    return ""


def install() -> str:
    """`apt-get download` the packages and unpack them below EXIM_ROOT; "" or what failed."""
    return unpack_debs(PACKAGES, EXIM_ROOT, 120)


def _missing(reason: str) -> None:
    message = f"the private Exim cannot run: {reason} (see .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exim_conf(base: Path, port: int, auth: Path, lmtp: Path) -> str:
    """The README's Exim settings (authenticators, router, transport), on a private port."""
    return f"""\
primary_hostname = {HOSTNAME}
qualify_domain = example.test
exim_path = {binary()}
spool_directory = {base}/spool
log_file_path = {base}/log/%slog
pid_file_path = {base}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
never_users = root
domainlist local_domains = example.test
acl_smtp_rcpt = acl_rcpt

begin acl
acl_rcpt:
  accept authenticated = *
  accept domains = +local_domains
  deny message = relay not permitted

begin routers
mra:
  driver = accept
  domains = +local_domains
  transport = mra_lmtp

begin transports
mra_lmtp:
  driver = lmtp
  socket = {lmtp}
  batch_max = 100

begin authenticators
mra_plain:
  driver = dovecot
  public_name = PLAIN
  server_socket = {auth}
  server_set_id = $auth1
mra_login:
  driver = dovecot
  public_name = LOGIN
  server_socket = {auth}
  server_set_id = $auth1
"""


@dataclass
class Exim:
    base: Path
    port: int
    conf: Path
    proc: subprocess.Popen[bytes] | None = None

    def command(self, *argv: str) -> list[str]:
        """`argv` in a mount namespace whose /etc/passwd and /etc/group name Debian-exim."""
        script = (
            'mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group'
            ' && exec "$@"'
        )
        return ["unshare", "--mount", "sh", "-c", script, str(self.base / "etc"), *argv]

    def start(self) -> None:
        etc = self.base / "etc"
        etc.mkdir()
        nobody = pwd.getpwuid(NOBODY)
        (etc / "passwd").write_text(
            Path("/etc/passwd").read_text()
            + f"Debian-exim:x:{nobody.pw_uid}:{nobody.pw_gid}:Exim:/nonexistent:/bin/false\n"
        )
        (etc / "group").write_text(
            Path("/etc/group").read_text() + f"Debian-exim:x:{nobody.pw_gid}:\n"
        )
        for sub in ("spool", "log"):
            (self.base / sub).mkdir(mode=0o750)
            os.chown(self.base / sub, nobody.pw_uid, nobody.pw_gid)
        self.proc = subprocess.Popen(
            self.command(str(binary()), "-C", str(self.conf), "-bdf", "-q5s"),
            stdout=open(self.base / "daemon.out", "wb"),  # noqa: SIM115 (the daemon's)
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exim exited {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"exim did not start: {self.output()}")

    def output(self) -> str:
        text = ""
        for path in (self.base / "daemon.out", *sorted((self.base / "log").glob("*log"))):
            if path.exists():
                text += f"--- {path.name}\n" + path.read_text(errors="replace")
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Site:
    exim: Exim
    mra: MraServer
    swaks: str

    def swaks_run(self, *args: str) -> str:
        proc = subprocess.run(
            [self.swaks, "--server", "127.0.0.1", "--port", str(self.exim.port), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        return proc.stdout + proc.stderr

    def stored(self, user: str, marker: str) -> list[Path]:
        local, _, domain = user.partition("@")
        new = self.mra.mail / domain / local / "new"
        return (
            [p for p in new.glob("*") if marker.encode() in p.read_bytes()] if new.is_dir() else []
        )


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if os.geteuid() != 0:
        _missing("it runs as root (unshare, a daemon on its own spool)")
    swaks = shutil.which("swaks")
    if swaks is None:
        _missing("swaks is not installed: install the Debian package swaks")
    assert swaks is not None
    problem = missing()
    if problem:
        failed = install()
        problem = missing() if not failed else f"{problem}; {failed}"
    if problem:
        _missing(problem)
    base = Path(tempfile.mkdtemp(prefix="exim-"))
    base.chmod(0o755)
    exim: Exim | None = None
    server: MraServer | None = None
    try:
        (base / "mra").mkdir(mode=0o755)
        server = MraServer(base / "mra", listeners=("imap",))
        run = base / "run"
        run.mkdir(mode=0o755)
        auth, lmtp = run / "auth-client", run / "lmtp"
        # Both sockets for Exim's user only (here nobody, as Debian-exim).
        sockets = "".join(
            f'[listen.{name}]\naddress = "unix:{path}"\n'
            'owner = "nobody"\ngroup = "nogroup"\nmode = 0o600\n'
            for name, path in (("auth", auth), ("lmtp", lmtp))
        )
        server.config.write_text(
            server.config.read_text()
            + '[server]\nuser = "nobody"\nrequire_readable_installation = false\n'
            + sockets
        )
        os.chown(server.mail, NOBODY, NOBODY)
        server.start()
        conf = base / "exim.conf"
        port = free_port()
        conf.write_text(exim_conf(base, port, auth, lmtp))
        conf.chmod(0o644)
        exim = Exim(base, port, conf)
        exim.start()
        yield Site(exim, server, swaks)
    finally:
        if exim is not None:
            exim.stop()
        if server is not None:
            server.stop()
        if os.environ.get("EXIM_KEEP"):
            print(f"\nEXIM_KEEP: kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def auth_reply(site: Site, mech: str, user: str, password: str) -> str:
    """The code Exim answered the AUTH exchange with."""
    output = site.swaks_run(
        "--ehlo", "client.test", "--auth", mech, "--auth-user", user,
        "--auth-password", password, "--quit-after", "AUTH",
    )  # fmt: skip
    assert re.search(r"^<-  250-AUTH .*\bPLAIN\b", output, re.MULTILINE), output
    codes = [c for c in re.findall(r"^<[-*]+ +(\d{3}) ", output, re.MULTILINE) if c != "334"]
    return codes[2] if len(codes) > 2 else f"no verdict in:\n{output}\n{site.exim.output()}"


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_exim_dovecot_authenticator_asks_our_auth_socket(site: Site, mech: str) -> None:
    assert auth_reply(site, mech, "alice@example.test", PASSWORD) == "235"
    assert auth_reply(site, mech, "alice@example.test", "wrong") == "535"
    assert auth_reply(site, mech, "nobody-here@example.test", PASSWORD) == "535"
    log = site.mra.log()
    assert "login-failed proto=auth login=alice@example.test" in log
    assert PASSWORD not in log


def test_exim_delivers_over_our_lmtp(site: Site) -> None:
    marker = f"exim-{uuid.uuid4().hex}"
    output = site.swaks_run(
        "--ehlo", "client.test", "--from", "sender@remote.test",
        "--to", "alice@example.test,bob@example.test",
        "--header", f"Subject: {marker}", "--body", marker,
    )  # fmt: skip
    assert re.search(r"^<-  250 OK id=", output, re.MULTILINE), output
    # Exim logs the delivery once our replies came, which is after the files are there.
    logged = re.compile(r"=> alice <alice@example\.test> R=mra T=mra_lmtp C=\"250 2\.0\.0 ")
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not logged.search(site.exim.output()):
        time.sleep(0.2)
    [alice] = site.stored("alice@example.test", marker)
    [bob] = site.stored("bob@example.test", marker)
    text = alice.read_bytes()
    assert text.startswith(b"Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.test")
    assert f"by {HOSTNAME}".encode() in text  # Exim's Received: line, below ours
    assert b" with LMTP id " in text
    assert alice.stat().st_uid == NOBODY and bob.stat().st_uid == NOBODY
    assert logged.search(site.exim.output()), site.exim.output()
