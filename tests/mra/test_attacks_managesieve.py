"""The ManageSieve listener of a real `mra serve` under abuse (SECURITY.md, headings 2 and 3):
over-long lines, literals over the limits, scripts that fill the process's literal budget,
garbage, and a client that logs out of its account (UNAUTHENTICATE) to loiter."""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path

import pytest

from tests.interop.managesieve import USER, sieve_server
from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_attacks_net import closed_by_server, connect, read_line

PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
MIB = 1024 * 1024


def start(server_factory: type[MraServer], extra: str = "") -> MraServer:
    return sieve_server(server_factory(extra, listeners=("sieve", "imap")))


def greeted(s: MraServer) -> socket.socket:
    c = connect(s.ports["sieve"])
    while not read_line(c).startswith(b"OK"):
        pass
    return c


def logged_in(s: MraServer) -> socket.socket:
    c = greeted(s)
    c.sendall(b'AUTHENTICATE "PLAIN" "%s"\r\n' % PLAIN)
    assert read_line(c) == b'OK "Logged in."\r\n'
    return c


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_attack_over_long_lines_cost_no_memory(server_factory: type[MraServer]) -> None:
    """A line of 64 MB without an end is dropped as it comes (a 64 KiB tail at most is kept):
    the server's memory does not grow with it, the command is refused, the session goes on."""
    s = start(server_factory)
    assert s.proc is not None
    c = logged_in(s)
    before = rss_kib(s.proc.pid)
    junk = b"x" * MIB
    c.sendall(b'NOOP "')
    for _ in range(64):
        c.sendall(junk)
    c.sendall(b'"\r\nNOOP\r\n')
    assert read_line(c) == b'NO "Line too long."\r\n'
    assert read_line(c) == b'OK "NOOP completed."\r\n'
    grown = rss_kib(s.proc.pid) - before
    assert grown < 16 * 1024, f"the server grew by {grown} KiB reading a 64 MB line"


def test_attack_script_over_the_size_limit_is_skipped_unread(
    server_factory: type[MraServer],
) -> None:
    s = start(server_factory, "[managesieve]\nmax_script_size = 4096\n")
    assert s.proc is not None
    c = logged_in(s)
    before = rss_kib(s.proc.pid)
    c.sendall(b'PUTSCRIPT "big" {67108864+}\r\n')
    junk = b"keep;\n" * (MIB // 6) + b"k" * (MIB % 6)
    for _ in range(64):
        c.sendall(junk)
    c.sendall(b"\r\nNOOP\r\n")
    assert read_line(c) == b'NO (QUOTA/MAXSIZE) "Script is too large, max 4096 bytes."\r\n'
    assert read_line(c) == b'OK "NOOP completed."\r\n'
    grown = rss_kib(s.proc.pid) - before
    assert grown < 16 * 1024, f"the server grew by {grown} KiB skipping a 64 MB script"


def test_attack_literal_before_login_is_the_end(server_factory: type[MraServer]) -> None:
    s = start(server_factory)
    c = greeted(s)
    c.sendall(b'AUTHENTICATE "PLAIN" {100000+}\r\n')
    assert read_line(c) == b'BYE "Literal too large."\r\n'
    assert closed_by_server(c)


def test_attack_scripts_that_fill_the_literal_budget_are_refused(
    server_factory: type[MraServer],
) -> None:
    """Every session's scripts on their way in share `[limits] max_literal_memory`: a script
    announced when the budget is taken is skipped and answered TRYLATER, not held."""
    s = start(server_factory, "[limits]\nmax_literal_memory = 6000\n")
    first, second = logged_in(s), logged_in(s)
    # Reserved at its announcement, octets still to come. The NOOP before it arrives in the
    # same read: its answer goes out once the announcement after it has been read too.
    first.sendall(b'NOOP\r\nPUTSCRIPT "a" {5000+}\r\n')
    assert read_line(first) == b'OK "NOOP completed."\r\n'
    second.sendall(b'PUTSCRIPT "b" {5000+}\r\n' + b"#" * 5000 + b"\r\n")
    assert read_line(second) == b'NO (TRYLATER) "Server busy, try again later."\r\n'
    first.sendall(b"#" * 4994 + b"\nkeep;\r\n")
    assert read_line(first) == b'OK "PUTSCRIPT completed."\r\n'
    second.sendall(b'PUTSCRIPT "b" {5000+}\r\n' + b"#" * 4994 + b"\nkeep;\r\n")
    assert read_line(second) == b'OK "PUTSCRIPT completed."\r\n'  # given back
    assert "managesieve-literal-pool-full" in s.log()


def test_attack_garbage_ends_the_session(server_factory: type[MraServer]) -> None:
    s = start(server_factory)
    c = greeted(s)
    for i in range(9):
        c.sendall(b"\x01\x02 garbage\r\n")
        assert read_line(c).startswith(b"NO "), i
    c.sendall(b"FROBNICATE\r\n")
    assert read_line(c) == b'NO "Unknown command."\r\n'
    assert read_line(c) == b'BYE "Too many invalid commands."\r\n'
    assert closed_by_server(c)


@pytest.mark.parametrize("proto", ["sieve", "imap"])
def test_attack_unauthenticate_then_loiter(server_factory: type[MraServer], proto: str) -> None:
    """A client logs in (so the login deadline stops), UNAUTHENTICATEs (RFC 5804 2.14.1,
    RFC 8437) and then sends a NOOP every half second without logging in again: it stayed
    for ever. Back before login, the login deadline applies again."""
    s = start(server_factory, "[limits]\nlogin_timeout = 2\n")
    if proto == "sieve":
        c = logged_in(s)
        c.sendall(b"UNAUTHENTICATE\r\n")
        assert read_line(c) == b'OK "Unauthenticate completed."\r\n'
        drip = b"NOOP\r\n"
    else:
        c = connect(s.ports["imap"])
        read_line(c)
        c.sendall(f"a LOGIN {USER} {PASSWORD}\r\n".encode())
        assert read_line(c).startswith(b"a OK")
        c.sendall(b"b UNAUTHENTICATE\r\n")
        assert read_line(c).startswith(b"b OK")
        drip = b"c NOOP\r\n"
    time.sleep(2.5)  # longer than login_timeout: the first deadline is long gone
    c.settimeout(0.5)
    deadline = time.monotonic() + 30
    ended = False
    while time.monotonic() < deadline and not ended:
        try:
            c.sendall(drip)
            while True:
                if not c.recv(4096):
                    ended = True
                    break
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            ended = True
    assert ended, "the session outlived its login deadline after UNAUTHENTICATE"
    assert "login-timeout" in s.log()


def test_login_deadline_spares_logged_in_sieve_sessions(server_factory: type[MraServer]) -> None:
    s = start(server_factory, "[limits]\nlogin_timeout = 1\n")
    c = logged_in(s)
    time.sleep(2.5)
    c.sendall(b"LISTSCRIPTS\r\n")
    assert read_line(c) == b'OK "Listscripts completed."\r\n'
    assert "login-timeout" not in s.log()
