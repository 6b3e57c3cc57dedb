"""Hundreds of IDLE sessions, as Thunderbird keeps one per folder and per account: each costs
little memory, and one new message reaches every one of them."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from tests.mra.conftest import PASSWORD, MraServer

SESSIONS = 200
PER_SESSION_MAX = 128 * 1024  # bytes of server memory per idle session; measured ~9 KiB


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Idler:
    def __init__(self, port: int, idle: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.read_until(b"* OK")
        self.command(b"a LOGIN alice@example.test " + PASSWORD.encode(), b"a OK")
        if idle:
            self.command(b"b SELECT INBOX", b"b OK")
            self.command(b"c IDLE", b"+ ")

    def command(self, line: bytes, until: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.read_until(until)

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed waiting for {marker!r}: {self.buf!r}")
            self.buf += data
        text, self.buf = self.buf, b""
        return text


def test_hundreds_of_idle_sessions_cost_little_and_all_hear_of_new_mail(
    server_factory: type[MraServer],
) -> None:
    server = server_factory()
    server.access.write_text("Connect:127.0.0.1 OK\n")  # beyond the per-user session limit
    server.store().mailbox("INBOX").sync()
    server.start()
    assert server.proc is not None
    port = server.ports["imap"]
    Idler(port).sock.close()  # one-off costs (imports, first login) before measuring
    time.sleep(0.5)
    before = rss(server.proc.pid)
    idlers = [Idler(port) for _ in range(SESSIONS)]
    grown = rss(server.proc.pid) - before
    assert grown / SESSIONS < PER_SESSION_MAX, f"{grown / SESSIONS:.0f} bytes per idle session"

    writer = Idler(port, idle=False)
    message = b"Subject: for everyone\r\n\r\nhello\r\n"
    writer.sock.sendall(b"b APPEND INBOX {%d}\r\n" % len(message))
    writer.read_until(b"+ ")
    writer.command(message, b"b OK")

    waiting = {i.sock: i for i in idlers}
    deadline = time.monotonic() + 30
    while waiting and time.monotonic() < deadline:
        ready, _, _ = select.select(list(waiting), [], [], 1)
        for sock in ready:
            idler = waiting[sock]
            data = sock.recv(65536)
            assert data, "an idle session was dropped"
            idler.buf += data
            if b"* 1 EXISTS" in idler.buf:
                del waiting[sock]
    assert not waiting, f"{len(waiting)} of {SESSIONS} idle sessions never heard of the message"

    for idler in idlers:
        idler.sock.sendall(b"DONE\r\n")
    for idler in idlers:
        idler.read_until(b"c OK")
        idler.command(b"d LOGOUT", b"d OK")
        idler.sock.close()
    writer.sock.close()
    assert "Traceback" not in server.log()
