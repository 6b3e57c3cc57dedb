"""`mra serve` as a process: TLS, STARTTLS injection, auth delay, SIGHUP, SIGTERM, privileges,
workers, access rules."""

from __future__ import annotations

import os
import poplib
import signal
import socket
import ssl
import time

import pytest

from mra.auth.passwords import hash_password
from tests.mra.conftest import PASSWORD, MraServer, children_of, pid_uid

ROOT = os.geteuid() == 0


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def read_line(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def test_greetings_plain_and_implicit_tls(server: MraServer) -> None:
    s = raw(server.ports["pop3"])
    assert read_line(s).startswith(b"+OK ")
    s.close()
    s = raw(server.ports["imap"])
    assert read_line(s).startswith(b"* OK ")
    s.close()
    for name, prefix in (("pop3s", b"+OK "), ("imaps", b"* OK ")):
        with tls_context().wrap_socket(raw(server.ports[name])) as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")
            assert read_line(t).startswith(prefix)


def test_tls_1_1_is_refused(server: MraServer) -> None:
    ctx = tls_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1  # noqa: the point is an old version
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw(server.ports["pop3s"])).recv(10)


def test_stls_discards_pipelined_plaintext(server: MraServer) -> None:
    """CVE-2011-0411: commands sent after STLS in the same packet must not run after TLS."""
    s = raw(server.ports["pop3"])
    read_line(s)
    s.sendall(b"STLS\r\nUSER alice@example.test\r\n")
    assert read_line(s).startswith(b"+OK")
    t = tls_context().wrap_socket(s)
    t.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
    # Had the injected USER run, this PASS would log in.
    assert read_line(t).startswith(b"-ERR")
    t.close()


def test_failed_login_is_answered_after_a_delay(server: MraServer) -> None:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    p.user("alice@example.test")
    started = time.monotonic()
    with pytest.raises(poplib.error_proto, match="AUTH"):
        p.pass_("wrong")
    assert time.monotonic() - started >= 1.5
    p.user("alice@example.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_passwords_never_reach_the_log(server: MraServer) -> None:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"])
    p.user("alice@example.test")
    with pytest.raises(poplib.error_proto):
        p.pass_("Hunter2-not-logged")
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    p.quit()
    log = server.log()
    assert "Hunter2-not-logged" not in log and PASSWORD not in log
    assert "login-failed" in log and "login proto=pop3 user=alice@example.test" in log


def test_sighup_rereads_the_user_database(server: MraServer) -> None:
    server.passwd.write_text(
        f"alice@example.test:{hash_password('new-secret-1', 'SHA512-CRYPT')}::::::\n"
    )
    server.signal(signal.SIGHUP)
    time.sleep(1)
    p = poplib.POP3("127.0.0.1", server.ports["pop3"])
    p.user("alice@example.test")
    assert p.pass_("new-secret-1").startswith(b"+OK")
    p.quit()
    assert " reload " in server.log()


def test_sighup_keeps_connections(server: MraServer) -> None:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"])
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    server.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert p.stat()[0] == 2
    p.quit()


def test_sigterm_says_goodbye_and_exits(server: MraServer) -> None:
    s = raw(server.ports["pop3"])
    read_line(s)
    server.signal(signal.SIGTERM)
    assert read_line(s).startswith(b"-ERR")
    assert server.proc is not None
    assert server.proc.wait(timeout=15) == 0
    assert " stopped " in server.log()


def test_access_connect_rules(server_factory: type[MraServer]) -> None:
    s = server_factory()
    s.access.write_text("Connect:127.0.0.1  REJECT\n")
    s.start()
    c = raw(s.ports["pop3"])
    assert read_line(c).startswith(b"-ERR")
    assert c.recv(10) == b""  # and closed
    c = raw(s.ports["imap"])
    assert read_line(c).startswith(b"* BYE")
    s.access.write_text("Connect:127.0.0   DISCARD\n")
    s.signal(signal.SIGHUP)
    time.sleep(1)
    c = raw(s.ports["pop3"])
    assert c.recv(10) == b""  # closed without a word
    s.access.write_text("Connect:localhost  OK\n")
    s.signal(signal.SIGHUP)
    time.sleep(1)
    c = raw(s.ports["pop3"])
    assert read_line(c).startswith(b"+OK")


@pytest.mark.skipif(not ROOT, reason="dropping privileges needs root")
def test_drops_privileges_after_binding(server_factory: type[MraServer]) -> None:
    s = server_factory('[server]\nuser = "nobody"\nrequire_readable_installation = false\n')
    os.chown(s.mail, 65534, 65534)
    s.start()
    assert s.proc is not None
    assert pid_uid(s.proc.pid) == 65534
    assert "privileges-dropped user=nobody" in s.log()


def test_workers_share_the_sockets(server_factory: type[MraServer]) -> None:
    s = server_factory("[server]\nworkers = 2\n")
    s.start()
    assert s.proc is not None
    deadline = time.monotonic() + 10
    while len(children_of(s.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(children_of(s.proc.pid)) == 2
    workers = set(children_of(s.proc.pid))
    for _ in range(20):
        p = poplib.POP3("127.0.0.1", s.ports["pop3"])
        assert p.getwelcome().startswith(b"+OK")
        p.quit()
    time.sleep(1.5)
    # Both workers kept serving: none crashed and was restarted (a shared reactor would).
    assert set(children_of(s.proc.pid)) == workers
    log = s.log()
    assert "worker-crashed" not in log and "worker-died" not in log
    assert s.stop() == 0


def test_plaintext_login_refused_off_loopback_without_tls() -> None:
    from mailstore.config import load_config
    from mra.context import Connection, Services

    services = Services(load_config(None), object())
    remote = Connection("pop3", "192.0.2.10")
    assert not services.plaintext_allowed(remote)
    remote.tls = True
    assert services.plaintext_allowed(remote)
    assert services.plaintext_allowed(Connection("pop3", "127.0.0.1"))


@pytest.mark.skipif(not ROOT, reason="creating a system user needs root")
def test_system_users_log_in_with_their_shadow_password(server_factory: type[MraServer]) -> None:
    import pwd
    import shutil
    import subprocess
    import tempfile

    name = f"mratest{os.getpid() % 100000}"
    home = tempfile.mkdtemp(prefix="mra-home-")
    shutil.rmtree(home)
    subprocess.run(["useradd", "-m", "-d", home, "-s", "/usr/sbin/nologin", name], check=True)
    try:
        subprocess.run(["chpasswd"], input=f"{name}:Shadow-pw-9\n", text=True, check=True)
        s = server_factory(listeners=("pop3",))
        text = s.config.read_text()
        text = text.replace(f'passwd_file = "{s.passwd}"', 'passwd_file = ""')
        text = text.replace(f'location = "{s.mail}/%d/%n"', 'location = "~/Maildir"')
        s.config.write_text(text)
        s.start()
        p = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=30)
        p.user(name)
        assert p.pass_("Shadow-pw-9").startswith(b"+OK")
        assert p.stat() == (0, 0)
        p.quit()
        assert os.path.isdir(os.path.join(pwd.getpwnam(name).pw_dir, "Maildir", "cur"))
        p = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=30)
        p.user("daemon")  # a system account: never, whatever its password
        with pytest.raises(poplib.error_proto):
            p.pass_("x")
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True)
