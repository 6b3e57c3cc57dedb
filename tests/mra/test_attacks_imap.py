"""Issue #17, the IMAP attacks, against a real `mra serve` on loopback: what a client can make
the server hold, and what it can make the reactor thread do."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.mra.conftest import PASSWORD, MraServer

MIB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def connect(server: MraServer, login: bool = True) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    if login:
        sock.sendall(b'a LOGIN alice@example.test "' + PASSWORD.encode() + b'"\r\n')
        assert b"a OK" in f.readline()
    return sock


def read_until(sock: socket.socket, marker: bytes, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_attack_unfinished_literals_are_bounded_and_freed(server: MraServer) -> None:
    """Ten sessions each sending 45 MB of an unfinished SEARCH literal held 460 MB, not given
    back after they closed. Now a SEARCH literal over 64 KiB is refused at its announcement,
    APPEND literals together stay within the process's literal budget (256 MiB), and what
    they held is given back when they close."""
    assert server.proc is not None
    pid = server.proc.pid
    base = rss(pid)
    chunk = b"x" * MIB
    socks = []
    for _ in range(10):
        sock = connect(server)
        sock.sendall(b"s SEARCH TEXT {47185920}\r\n")
        answer = read_until(sock, b"\r\n")
        assert answer.startswith(b"s BAD [TOOBIG]"), answer
        socks.append(sock)
    busy = 0
    for sock in socks:
        sock.sendall(b"m APPEND INBOX {47185920+}\r\n")
        sock.settimeout(0.2)
        for _ in range(44):
            try:
                sock.sendall(chunk)
            except (TimeoutError, BlockingIOError):
                break  # the server stopped reading us
        try:
            if sock.recv(4096).startswith(b"m NO [UNAVAILABLE]"):
                busy += 1
        except TimeoutError:
            pass
    time.sleep(1)
    held = rss(pid) - base
    assert busy >= 4, busy  # 10 x 45 MB do not fit in 256 MiB: some were told to come back
    assert held < 256 * MIB + 64 * MIB, held // MIB
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and rss(pid) - base > 32 * MIB:
        time.sleep(0.2)
    assert rss(pid) - base < 32 * MIB, (rss(pid) - base) // MIB
