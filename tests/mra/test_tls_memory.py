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


BIG = 1 << 20
AFTER_BIG_MAX = 256 * 1024  # bytes kept per connection after a 1 MB FETCH; measured ~60 KiB


def test_attack_one_large_fetch_over_tls_keeps_megabytes_for_the_connection(
    server_factory: type[MraServer],
) -> None:
    """OpenSSL's memory BIOs never shrink: a FETCH of a 1 MB message, encrypted in one piece,
    left about 1.3 MB with its connection for as long as the connection lasted, so that
    connections that had each read one large message, and then idled, held megabytes each."""
    server = server_factory(listeners=("imaps",))
    server.access.write_text("Connect:127.0.0.1 OK\n")
    line = b"x" * 998 + b"\r\n"
    message = b"Subject: big\r\n\r\n" + line * (BIG // len(line))
    server.store().mailbox("INBOX").append(message)
    server.start()
    assert server.proc is not None
    port = server.ports["imaps"]
    ctx = tls_client()

    def fetch_and_idle() -> ssl.SSLSocket:
        sock = idler(port, ctx)
        sock.sendall(b"DONE\r\nd FETCH 1 BODY.PEEK[]\r\n")
        got = b""
        while not got.endswith(b"d OK FETCH completed\r\n") and b"d NO" not in got:
            data = sock.recv(1 << 16)
            assert data, got[-200:]
            got += data
        assert len(got) > BIG - 4096, got[-200:]
        return sock

    for _ in range(3):
        fetch_and_idle().close()
    time.sleep(0.5)
    before = rss(server.proc.pid)
    socks = [fetch_and_idle() for _ in range(20)]
    time.sleep(0.5)
    grown = rss(server.proc.pid) - before
    for s in socks:
        s.close()
    assert grown / len(socks) < AFTER_BIG_MAX, f"{grown / len(socks):.0f} bytes per connection"
