"""The network and authentication attacks of issue #17, against a real `mra serve` on loopback.

Each test replays an attack that got through and checks the rule that now stops it
(SECURITY.md, headings 2, 3 and 6). Waits have generous bounds that only say "it ended" or "it
did not hang"; what is asserted is a count, a size or a ratio, never a duration.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mra.auth import passwords
from mra.auth.passwords import hash_password
from mra.selfsigned import generate_self_signed
from tests.mra.conftest import PASSWORD, MraServer

MIB = 1024 * 1024


# --- helpers ----------------------------------------------------------------------------------


def memory(server: MraServer, key: str = "VmRSS") -> int:
    """The server's resident memory (VmRSS) or its peak so far (VmHWM), in bytes."""
    assert server.proc is not None
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {key}")


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def connect(port: int, source: str = "127.0.0.1", rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf is not None:  # before connect, so that the window is small from the start
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s


def read_line(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(s: socket.socket, seconds: float = 30.0) -> bool:
    """Read (and drop) whatever comes until the server closes: True if it did in time."""
    s.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def push_without_reading(s: socket.socket, command: bytes, most: int) -> int:
    """Send `command` over and over without reading a byte of the answers, until the server
    stops taking it (nothing accepted for 3 s) or `most` bytes went; the bytes sent."""
    payload = memoryview(command * (65536 // len(command)))
    s.setblocking(False)
    sent = 0
    last_progress = time.monotonic()
    while sent < most and time.monotonic() - last_progress < 3:
        try:
            n = s.send(payload)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        except (ConnectionResetError, BrokenPipeError):  # the server gave up on us
            break
        sent += n
        last_progress = time.monotonic()
    s.setblocking(True)
    return sent


def tls_client() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def set_auth(server: MraServer, line: str) -> None:
    """Add a setting to the [auth] section the fixture wrote."""
    server.config.write_text(server.config.read_text().replace("[auth]\n", f"[auth]\n{line}\n"))


# --- 1. output for a client that does not read (heading 2) -------------------------------------

COMMANDS = {"imap": b"a CAPABILITY\r\n", "pop3": b"CAPA\r\n"}


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_attack_command_flood_without_reading_answers(
    server_factory: type[MraServer], proto: str
) -> None:
    """CAPABILITY/CAPA in a loop, never reading: the server grew 350 MB in 60 s. Now it stops
    reading a client whose answers pile up, so the client's sends stall and memory stays."""
    s = server_factory()
    s.start()
    c = connect(s.ports[proto], rcvbuf=4096)
    assert read_line(c)
    before = memory(s)
    sent = push_without_reading(c, COMMANDS[proto], most=16 * MIB)
    grew = memory(s) - before
    c.close()
    # The kernel's buffers take a few MB; a server that kept reading takes all 16 MB (and
    # answers them with some 270 MB it cannot send).
    assert sent < 16 * MIB, f"the server kept reading: {sent} bytes taken"
    assert grew < 48 * MIB, f"the server grew by {grew // MIB} MB"


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_attack_client_that_never_reads_is_dropped(
    server_factory: type[MraServer], proto: str
) -> None:
    s = server_factory("[limits]\noutput_timeout = 2\n")
    s.start()
    c = connect(s.ports[proto], rcvbuf=4096)
    assert read_line(c)
    push_without_reading(c, COMMANDS[proto], most=16 * MIB)
    time.sleep(3)  # past output_timeout, still not reading
    assert closed_by_server(c)
    assert wait_for(lambda: "output-stalled" in s.log())


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_attack_answers_past_max_unsent_output_cut_the_connection(
    server_factory: type[MraServer], proto: str
) -> None:
    """One read of commands can ask for far more answers than it is long: what is written
    after the client stopped reading is bounded by `max_unsent_output`."""
    s = server_factory("[limits]\nmax_unsent_output = 65536\n")
    s.start()
    c = connect(s.ports[proto], rcvbuf=4096)
    assert read_line(c)
    c.sendall(COMMANDS[proto] * (65536 // len(COMMANDS[proto])))  # ~1 MB of answers
    assert closed_by_server(c)
    assert "output-limit" in s.log()


def test_attack_retr_without_reading_is_dropped(server_factory: type[MraServer]) -> None:
    """RETR of a big message, never read: the stream waited for the client forever (its
    connection looked busy, so even the idle timer spared it)."""
    s = server_factory("[limits]\noutput_timeout = 2\n")
    body = b"".join(b"line %07d of a big message to stream\n" % i for i in range(200_000))
    s.store().mailbox("INBOX").append(b"Subject: big\n\n" + body)
    s.start()
    c = connect(s.ports["pop3"], rcvbuf=4096)
    read_line(c)
    c.sendall(b"USER alice@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert read_line(c).startswith(b"+OK")
    assert read_line(c).startswith(b"+OK")
    c.sendall(b"RETR 1\r\n")
    time.sleep(3)  # past output_timeout, not reading
    assert wait_for(lambda: "output-stalled" in s.log())
    assert closed_by_server(c)


def test_reading_client_gets_every_answer_of_a_long_pipeline(
    server_factory: type[MraServer],
) -> None:
    """The other side of the rule: a client that does read gets all its answers, in order,
    however far the pipeline ran ahead of them."""
    s = server_factory()
    s.start()
    c = connect(s.ports["imap"])
    read_line(c)
    count = 20_000
    received: list[bytes] = []

    def read_all() -> None:
        while chunk := c.recv(65536):  # LOGOUT closes the connection
            received.append(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    c.sendall(b"".join(b"t%d NOOP\r\n" % i for i in range(count)) + b"z LOGOUT\r\n")
    reader.join(60)
    tags = re.findall(rb"^(t\d+) OK", b"".join(received), re.M)
    assert tags == [b"t%d" % i for i in range(count)]


# --- 2. concurrent password checks (heading 2) --------------------------------------------------


def test_attack_concurrent_argon2_logins_bounded_memory(server_factory: type[MraServer]) -> None:
    """200 concurrent LOGINs against ARGON2ID hashes (64 MiB each): memory grew 517 MB, as
    many checks at once as the thread pool has threads (eight). 32 do the same here (two per
    address, so that the throttle's growing delays stay short). With
    `max_concurrent_hashes = 2`, the peak is two checks' worth."""
    s = server_factory(listeners=("imap",))
    s.passwd.write_text(f"alice@example.test:{hash_password(PASSWORD, 'ARGON2ID')}::::::\n")
    set_auth(s, "max_concurrent_hashes = 2")
    s.start()
    before = memory(s, "VmHWM")
    clients = []
    for i in range(32):
        c = connect(s.ports["imap"], source=f"127.0.3.{1 + i % 16}")
        read_line(c)
        clients.append(c)
    for c in clients:
        c.sendall(b"a LOGIN nobody%d@example.test wrong\r\n" % i)  # unknown: no throttle yet
    for c in clients:
        c.settimeout(60)
        assert read_line(c).startswith(b"a NO")
        c.close()
    grew = memory(s, "VmHWM") - before
    # Two checks take 128 MiB; the thread pool's eight took 512 MiB.
    assert grew < 4 * 64 * MIB, f"peak memory grew by {grew // MIB} MB"


def test_attack_login_flood_leaves_threads_for_mailbox_work(
    server_factory: type[MraServer],
) -> None:
    """Logins waiting for one of `max_concurrent_hashes` slots held the shared thread pool's
    threads, so a flood of them delayed every session's SELECT, STATUS and STORE behind it.
    Password checks now run in a pool of their own: bob's SELECT is answered while 24 slow
    checks (unknown users cost an ARGON2ID check, the typical one here) are still waiting."""
    s = server_factory(listeners=("imap",))
    argon = "".join(
        f"{u}@example.test:{hash_password(PASSWORD, 'ARGON2ID')}::::::\n" for u in "acd"
    )
    s.passwd.write_text(
        argon + f"bob@example.test:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n"
    )
    set_auth(s, "max_concurrent_hashes = 1")
    s.start()
    bob = connect(s.ports["imap"], source="127.0.4.1")
    read_line(bob)
    bob.sendall(b'b LOGIN bob@example.test "' + PASSWORD.encode() + b'"\r\n')
    assert read_line(bob).startswith(b"b OK")
    flood = []
    for i in range(24):
        c = connect(s.ports["imap"], source=f"127.0.5.{1 + i % 12}")
        read_line(c)
        c.sendall(b"a LOGIN nobody%d@example.test wrong\r\n" % i)  # unknown: no throttle yet
        flood.append(c)
    time.sleep(0.5)  # the flood is in: one check runs, the others wait
    bob.sendall(b"s SELECT INBOX\r\n")
    bob.settimeout(60)
    while not (line := read_line(bob)).startswith(b"s "):
        pass
    assert line.startswith(b"s OK")
    checked = s.log().count("login-failed")  # logged as each check ends (before its delay)
    assert checked < len(flood) // 2, checked  # most checks still wait: bob did not
    for c in flood:
        c.close()


# --- 3. login deadline (heading 3) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("proto", "drip"),
    [("imap", b"a NOOP\r\n"), ("pop3", b"CAPA\r\n"), ("imap", b"a"), ("pop3", b"U")],
)
def test_attack_busy_client_never_logging_in_is_closed(
    server_factory: type[MraServer], proto: str, drip: bytes
) -> None:
    """A NOOP every 50 s, or a byte every 2 s, kept a session that never logged in open for
    ever: each one restarted the idle timer. The login deadline is absolute."""
    s = server_factory("[limits]\nlogin_timeout = 2\n")
    s.start()
    c = connect(s.ports[proto])
    read_line(c)
    c.settimeout(0.5)
    deadline = time.monotonic() + 30
    ended = False
    while time.monotonic() < deadline and not ended:
        try:
            c.sendall(drip)
            while True:
                data = c.recv(4096)
                if not data:
                    ended = True
                    break
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            ended = True
    assert ended, "the session outlived its login deadline"
    assert "login-timeout" in s.log()


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_login_deadline_spares_logged_in_sessions(
    server_factory: type[MraServer], proto: str
) -> None:
    s = server_factory("[limits]\nlogin_timeout = 1\n")
    s.start()
    if proto == "imap":
        imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=30)
        imap.login("alice@example.test", PASSWORD)
        time.sleep(2.5)
        assert imap.noop()[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
        imap.logout()
    else:
        pop = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=30)
        pop.user("alice@example.test")
        pop.pass_(PASSWORD)
        time.sleep(2.5)
        assert pop.stat() == (0, 0)
        pop.quit()
    assert "login-timeout" not in s.log()


# --- 4. TLS handshake deadline (heading 3) -------------------------------------------------------

HALF_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20


@pytest.mark.parametrize("what", ["nothing", "half-hello", "starttls-imap", "stls-pop3"])
def test_attack_tls_handshake_never_finished(server_factory: type[MraServer], what: str) -> None:
    """IMAPS/POP3S connections that never send a ClientHello, or half of one, and
    STARTTLS/STLS followed by silence: 200 of them were all still open after 80 s."""
    s = server_factory("[limits]\ntls_handshake_timeout = 2\n")
    s.start()
    clients = []
    for i in range(20):
        if what == "starttls-imap":
            c = connect(s.ports["imap"])
            read_line(c)
            c.sendall(b"a STARTTLS\r\n")
            assert read_line(c).startswith(b"a OK")
        elif what == "stls-pop3":
            c = connect(s.ports["pop3"])
            read_line(c)
            c.sendall(b"STLS\r\n")
            assert read_line(c).startswith(b"+OK")
        else:
            c = connect(s.ports["imaps" if i % 2 else "pop3s"])
            if what == "half-hello":
                c.sendall(HALF_CLIENT_HELLO)
        clients.append(c)
    for c in clients:
        assert closed_by_server(c), "a connection outlived its TLS handshake deadline"
    assert "tls-handshake-timeout" in s.log()


def test_tls_handshake_deadline_spares_finished_handshakes(
    server_factory: type[MraServer],
) -> None:
    s = server_factory("[limits]\ntls_handshake_timeout = 1\n")
    s.start()
    with tls_client().wrap_socket(connect(s.ports["pop3s"])) as t:
        assert read_line(t).startswith(b"+OK")
        time.sleep(2)
        t.sendall(b"CAPA\r\n")
        assert read_line(t).startswith(b"+OK")
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=30)
    imap.starttls(tls_client())
    time.sleep(2)
    assert imap.noop()[0] == "OK"
    imap.logout()


def test_attack_tls_peer_that_never_answers_close_notify(server_factory: type[MraServer]) -> None:
    """After LOGOUT the server sends TLS's close_notify and waited for the client's, which
    an attacker never sends: the connection stayed open (and counted) for ever. A closing
    connection now has `close_timeout` seconds."""
    s = server_factory("[limits]\nclose_timeout = 2\n", listeners=("imaps",))
    s.start()
    t = tls_client().wrap_socket(connect(s.ports["imaps"]))
    read_line(t)
    t.sendall(b"a LOGOUT\r\n")
    assert read_line(t).startswith(b"* BYE")
    assert read_line(t).startswith(b"a OK")
    assert t.recv(100) == b""  # the server's close_notify; ours is never sent
    tcp = socket.socket(fileno=os.dup(t.fileno()))  # under TLS: is the connection itself gone?
    assert closed_by_server(tcp), "the connection outlived its close deadline"
    assert wait_for(lambda: "close-timeout" in s.log())
    tcp.close()
    t.close()


# --- 5. TLS reload (heading 6) ---------------------------------------------------------------


def test_attack_sighup_with_a_key_that_does_not_match(server_factory: type[MraServer]) -> None:
    """SIGHUP with a key that does not match the certificate broke TLS for every new client.
    A reload that fails keeps the old certificate and says why."""
    s = server_factory(listeners=("imap", "pop3s"))
    text = s.config.read_text()
    cert, key = re.search(r'cert = "([^"]+)"\nkey = "([^"]+)"', text).groups()  # type: ignore[union-attr]
    shutil.copy(cert, s.base / "cert.pem")
    shutil.copy(key, s.base / "key.pem")
    s.config.write_text(
        text.replace(cert, str(s.base / "cert.pem")).replace(key, str(s.base / "key.pem"))
    )
    s.start()
    with tls_client().wrap_socket(connect(s.ports["pop3s"])) as t:
        served = t.getpeercert(binary_form=True)
    other = s.base / "other"
    other.mkdir()
    generate_self_signed(str(other / "cert.pem"), str(other / "key.pem"))
    shutil.copy(other / "key.pem", s.base / "key.pem")  # a key of another certificate
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "tls-reload" in s.log())
    for _ in range(3):
        with tls_client().wrap_socket(connect(s.ports["pop3s"])) as t:
            assert read_line(t).startswith(b"+OK")
            assert t.getpeercert(binary_form=True) == served
    assert "tls-reload-failed" in s.log()
    # A good pair is taken at the next reload.
    shutil.copy(other / "cert.pem", s.base / "cert.pem")
    s.signal(signal.SIGHUP)
    assert wait_for(lambda: "tls-reloaded" in s.log())
    with tls_client().wrap_socket(connect(s.ports["pop3s"])) as t:
        assert t.getpeercert(binary_form=True) != served


# --- 6. unknown users cost what known ones cost (heading 6) -----------------------------------


def _failed_login_seconds(port: int, login: str, tries: int) -> list[float]:
    c = connect(port)
    read_line(c)
    times = []
    for i in range(tries):
        started = time.perf_counter()
        c.sendall(b"t%d LOGIN %s wrong-password\r\n" % (i, login.encode()))
        line = read_line(c)
        times.append(time.perf_counter() - started)
        assert line.startswith(b"t%d NO" % i), line
    c.close()
    return times


def test_attack_unknown_users_answer_like_migrated_users(server_factory: type[MraServer]) -> None:
    """Users with SHA512-CRYPT hashes (migrated from Dovecot) answered 315 ms faster than
    unknown users, checked against an ARGON2ID stand-in: a missing account could be told
    from an existing one. Now the stand-in is a typical user's hash."""
    s = server_factory(listeners=("imap",))
    s.access.write_text("Connect:127.0.0.1 OK\n")  # no throttle: each failure waits the base 2 s
    s.start()
    results: dict[str, list[float]] = {}

    def measure(name: str, login: str) -> None:
        results[name] = _failed_login_seconds(s.ports["imap"], login, 5)

    threads = [
        threading.Thread(target=measure, args=("known", "alice@example.test")),
        threading.Thread(target=measure, args=("unknown", "nobody@example.test")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # What one check of the old stand-in costs here, as the scale of the difference.
    costs = []
    for _ in range(3):
        started = time.perf_counter()
        passwords.verify(passwords.DUMMY_HASH, b"wrong-password")
        costs.append(time.perf_counter() - started)
    scale = statistics.median(costs)
    difference = abs(statistics.median(results["unknown"]) - statistics.median(results["known"]))
    assert difference < scale / 3, (
        f"unknown users take {difference * 1000:.0f} ms more or less than known ones"
        f" (one ARGON2ID check: {scale * 1000:.0f} ms)"
    )


# --- 7. connection limits (heading 2) ------------------------------------------------------------


def test_attack_many_addresses_fill_the_server(server_factory: type[MraServer]) -> None:
    """1,500 connections from 30 addresses, each under the per-address limit, were all
    accepted. Past `max_connections`, a connection is refused."""
    s = server_factory("[limits]\nmax_connections = 20\n", listeners=("imap",))
    s.start()
    answers = []
    clients = []
    for i in range(30):
        c = connect(s.ports["imap"], source=f"127.0.1.{1 + i}")
        answers.append(read_line(c))
        clients.append(c)
    assert sum(a.startswith(b"* OK") for a in answers) == 20
    assert sum(a.startswith(b"* BYE Too many connections") for a in answers) == 10
    assert "connect-limit-total" in s.log()
    for c in clients:
        c.close()
    # Closed connections give their places back.
    assert wait_for(lambda: read_line(connect(s.ports["imap"])).startswith(b"* OK"))


def test_per_address_and_per_user_limits_are_settings(server_factory: type[MraServer]) -> None:
    s = server_factory(
        "[limits]\nmax_connections_per_address = 3\nmax_sessions_per_user = 1\n",
        listeners=("imap",),
    )
    s.start()
    clients = [connect(s.ports["imap"]) for _ in range(4)]
    answers = [read_line(c) for c in clients]
    assert [a[:4] for a in answers] == [b"* OK"] * 3 + [b"* BY"]
    assert b"from your address" in answers[3]
    answers = []
    for source in ("127.0.2.1", "127.0.2.2"):  # one after the other: the first one wins
        c = connect(s.ports["imap"], source=source)
        clients.append(c)
        read_line(c)
        c.sendall(b"a LOGIN alice@example.test " + PASSWORD.encode() + b"\r\n")
        answers.append(read_line(c))
    assert answers[0].startswith(b"a OK"), answers
    assert b"Too many sessions" in answers[1]


# --- 8. the reactor stall monitor (heading 1's load test) --------------------------------------


def test_reactor_stall_monitor_sees_a_real_stall(server_factory: type[MraServer]) -> None:
    """A stopped process is a stalled reactor: SIGSTOP for 0.6 s, and the monitor, woken late
    when the process goes on, logs `reactor-stall` with about that length. No test-only code
    in the server: the stall is real."""
    s = server_factory("[server]\nreactor_stall_ms = 100\n", listeners=("imap",))
    s.start()
    assert s.proc is not None
    s.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.6)
    s.proc.send_signal(signal.SIGCONT)

    def stalls() -> list[int]:
        return [int(ms) for ms in re.findall(r"reactor-stall ms=(\d+)", s.log())]

    # A loaded machine may add shorter stalls of its own: wait for the long one, which is
    # the stop, less at most one 50 ms interval and scheduling.
    assert wait_for(lambda: any(ms >= 300 for ms in stalls())), stalls()
    # ... and says the reactor was not working then: a stopped process uses no CPU.
    lines = re.findall(r"reactor-stall ms=(\d+) cpu_ms=(\d+)", s.log())
    stop = max(lines, key=lambda line: int(line[0]))
    assert int(stop[1]) < int(stop[0]) / 2, lines


def test_reactor_stall_monitor_can_be_off(server_factory: type[MraServer]) -> None:
    s = server_factory("[server]\nreactor_stall_ms = 0\n", listeners=("imap",))
    s.start()
    assert s.proc is not None
    s.proc.send_signal(signal.SIGSTOP)
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGCONT)
    read_line(connect(s.ports["imap"]))  # it runs again
    assert "reactor-stall" not in s.log()
