"""What an idle IMAPS connection costs the server (issue #16; SECURITY.md, "Memory per TLS
connection"): a client population of phones and Thunderbirds holds thousands of them."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from tests.mra.conftest import PASSWORD, MraServer

SESSIONS = 300
# Bytes of server memory (RSS) per idle IMAPS session, logged in, in IDLE. Measured here: about
# 26 KiB with the standard library's ssl (of which about 11 KiB are the session's own,
# plain IMAP's cost), 34 to 37 KiB with Twisted's TLS over pyOpenSSL.
PER_SESSION_MAX = 30 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def tls_client() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def idler(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
    buf = b""

    def until(marker: bytes) -> None:
        nonlocal buf
        while marker not in buf:
            data = sock.recv(65536)
            assert data, f"closed waiting for {marker!r}: {buf!r}"
            buf += data
        buf = b""

    until(b"* OK")
    sock.sendall(b"a LOGIN alice@example.test " + PASSWORD.encode() + b"\r\nb SELECT INBOX\r\n")
    until(b"b OK")
    sock.sendall(b"c IDLE\r\n")
    until(b"+ ")
    return sock


def test_attack_thousands_of_idle_tls_connections_exhaust_memory(
    server_factory: type[MraServer],
) -> None:
    """Each idle IMAPS connection held about 27 KiB of TLS state on top of its session
    (Twisted's TLSMemoryBIOProtocol, pyOpenSSL, the `cryptography` wheel's OpenSSL): 10,000
    of them, an ordinary population of phones for a mid-sized site, took 500 MB."""
    server = server_factory(listeners=("imaps",))
    server.access.write_text("Connect:127.0.0.1 OK\n")  # beyond the per-address limit
    server.store().mailbox("INBOX").sync()
    server.start()
    assert server.proc is not None
    port = server.ports["imaps"]
    ctx = tls_client()
    for _ in range(20):  # one-off costs (imports, first login, the heap's first growth)
        idler(port, ctx).close()
    time.sleep(0.5)
    before = rss(server.proc.pid)
    idlers = [idler(port, ctx) for _ in range(SESSIONS)]
    time.sleep(0.5)
    grown = rss(server.proc.pid) - before
    for s in idlers:
        s.close()
    assert grown / SESSIONS < PER_SESSION_MAX, f"{grown / SESSIONS:.0f} bytes per idle session"
