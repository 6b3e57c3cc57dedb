"""COMPRESS=DEFLATE (RFC 4978) against a real `mra serve` on loopback: a client that speaks
DEFLATE over IMAP, over IMAPS and after STARTTLS, its pipelining, and the attacks on the
DEFLATE layer (SECURITY.md heading 2: inflate bombs, a compressed client that stops reading).

No IMAP library speaks DEFLATE (imapclient does not), so the client side is Python's zlib over
a socket: `DeflateClient`. Waits have generous bounds that only say "it ended"; what is asserted
is an answer, a count or a size.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
import zlib

import pytest

from mra.net.adapter import MAX_QUEUED_INPUT
from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_attacks_net import closed_by_server, memory, tls_client, wait_for

MIB = 1024 * 1024
USER = "alice@example.test"


class DeflateClient:
    """An IMAP client on a socket (plain or TLS) that can turn DEFLATE on: `compress()` sends
    COMPRESS and, after its OK, deflates what it sends (a sync flush after each `send`) and
    inflates what it reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.deflate: zlib._Compress | None = None
        self.inflate: zlib._Decompress | None = None
        self.received = 0  # octets off the wire (compressed, once compressing)

    @classmethod
    def connect(cls, server: MraServer, listener: str = "imap") -> DeflateClient:
        sock = socket.create_connection(("127.0.0.1", server.ports[listener]), timeout=30)
        if listener == "imaps":
            sock = tls_client().wrap_socket(sock)
        client = cls(sock)
        assert client.line().startswith(b"* OK")
        return client

    def wire(self, data: bytes) -> bytes:
        """What `data` is on the wire now."""
        if self.deflate is None:
            return data
        return self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.wire(data))

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.received += len(chunk)
        self.buf += self.inflate.decompress(chunk) if self.inflate is not None else chunk
        return True

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed; unread {self.buf[:200]!r}")
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed in a literal")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def answer(self, tag: bytes) -> list[bytes]:
        """Every line up to the tagged one, literals inlined."""
        lines = []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                line += self.exact(int(m.group(1)))
                line += self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def command(self, tag: bytes, text: bytes) -> list[bytes]:
        self.send(tag + b" " + text + b"\r\n")
        return self.answer(tag)

    def login(self) -> None:
        lines = self.command(b"l", b"LOGIN " + USER.encode() + b" " + PASSWORD.encode())
        assert lines[-1].startswith(b"l OK"), lines
        assert b"COMPRESS=DEFLATE" in lines[-1]

    def compress(self, after: bytes = b"") -> list[bytes]:
        """COMPRESS DEFLATE; `after` (plain here, sent compressed) goes in the same write, as a
        client that does not wait for the OK sends it."""
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        tail = deflate.compress(after) + deflate.flush(zlib.Z_SYNC_FLUSH) if after else b""
        self.sock.sendall(b"z COMPRESS DEFLATE\r\n" + tail)
        lines = self.answer(b"z")
        assert lines == [b"z OK DEFLATE active\r\n"], lines
        self.deflate = deflate
        self.inflate = zlib.decompressobj(-15)
        # What followed the OK in the same read was already compressed.
        rest, self.buf = self.buf, b""
        self.buf = self.inflate.decompress(rest)
        return lines

    def close(self) -> None:
        self.sock.close()


def messages(server: MraServer, count: int, size: int) -> list[bytes]:
    box = server.store().mailbox("INBOX")
    out = []
    for n in range(count):
        body = b"".join(
            b"line %d of message %d, fairly compressible\r\n" % (i, n) for i in range(size // 40)
        )
        data = b"Subject: message %d\r\nFrom: bob@example.test\r\n\r\n" % n + body
        box.append(data)
        out.append(data)
    return out


def fetch_all(c: DeflateClient, count: int) -> list[bytes]:
    lines = c.command(b"f", b"FETCH 1:* (BODY.PEEK[])")
    assert lines[-1].startswith(b"f OK"), lines[-1]
    bodies = []
    for line in lines[:-1]:
        m = re.match(rb"\* \d+ FETCH \(BODY\[\] \{(\d+)\}\r\n", line)
        assert m, line[:100]
        bodies.append(line[m.end() : m.end() + int(m.group(1))])
    assert len(bodies) == count
    return bodies


# --- it works --------------------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["imap", "imaps"])
def test_compressed_session(server_factory: type[MraServer], listener: str) -> None:
    """A whole session compressed, on IMAP and inside TLS on IMAPS: the answers are the same
    octets, and far fewer of them cross the wire."""
    s = server_factory()
    sent = messages(s, 20, 20_000)
    s.start()
    c = DeflateClient.connect(s, listener)
    c.login()
    c.compress()
    lines = c.command(b"s", b"SELECT INBOX")
    assert b"* 20 EXISTS\r\n" in lines and lines[-1].startswith(b"s OK [READ-WRITE]")
    before = c.received
    assert fetch_all(c, 20) == sent
    assert c.received - before < sum(map(len, sent)) // 4  # 20 messages of 20 KB
    lines = c.command(b"n", b"NOOP")
    assert lines == [b"n OK NOOP completed\r\n"]
    assert c.command(b"o", b"LOGOUT")[-1].startswith(b"o OK")
    assert closed_by_server(c.sock)


def test_starttls_then_compress(server: MraServer) -> None:
    """RFC 4978 section 3's first example: STARTTLS, LOGIN, COMPRESS; compressed inside TLS."""
    sock = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=30)
    plain = DeflateClient(sock)
    assert plain.line().startswith(b"* OK")
    assert plain.command(b"a", b"STARTTLS")[-1].startswith(b"a OK")
    c = DeflateClient(tls_client().wrap_socket(sock))
    c.login()
    c.compress()
    lines = c.command(b"c", b"SELECT INBOX")
    assert lines[-1].startswith(b"c OK")
    lines = c.command(b"d", b"FETCH 2 BODY[TEXT]")
    assert b"body two" in lines[0]
    c.close()


def test_idle_pushes_arrive_compressed(server: MraServer) -> None:
    c = DeflateClient.connect(server)
    c.login()
    c.compress()
    c.command(b"s", b"SELECT INBOX")
    c.send(b"i IDLE\r\n")
    assert c.line().startswith(b"+ ")
    server.store().mailbox("INBOX").append(b"Subject: new\r\n\r\nnew\r\n")
    assert c.line() == b"* 3 EXISTS\r\n"
    c.send(b"DONE\r\n")
    assert c.answer(b"i")[-1].startswith(b"i OK")


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_attack_long_pipeline_of_small_fetches(server: MraServer, compressed: bool) -> None:
    """2,000 pipelined `UID FETCH 1:* (FLAGS)`: each is a Stream that ends as soon as it
    begins, and the adapter went on to the next command from inside the last one, until the
    stack overflowed (RecursionError, the connection lost) at some 300 commands deep."""
    c = DeflateClient.connect(server)
    c.login()
    if compressed:
        c.compress()
    c.command(b"s", b"SELECT INBOX")
    count = 2000
    c.send(b"".join(b"t%d UID FETCH 1:* (FLAGS)\r\n" % i for i in range(count)))
    for i in range(count):
        assert c.answer(b"t%d" % i)[-1].startswith(b"t%d OK" % i)
    assert "RecursionError" not in server.log()


def test_thunderbird_like_pipelining_right_after_the_ok(server: MraServer) -> None:
    """Thunderbird sends its next commands as soon as COMPRESS is OK, many in one write; a
    client may even put them in the write of COMPRESS itself (the reader hands those octets
    over, compressed, to be inflated first). Every answer comes, in order."""
    c = DeflateClient.connect(server)
    c.login()
    c.compress(after=b"p1 NOOP\r\np2 SELECT INBOX\r\n")
    assert c.answer(b"p1") == [b"p1 OK NOOP completed\r\n"]
    assert c.answer(b"p2")[-1].startswith(b"p2 OK [READ-WRITE]")
    count = 200
    burst = b"".join(b"t%d UID FETCH 1:* (FLAGS)\r\n" % i for i in range(count))
    c.send(burst + b"t SEARCH TEXT {8+}\r\nbody two\r\n")
    for i in range(count):
        assert c.answer(b"t%d" % i)[-1].startswith(b"t%d OK" % i)
    assert c.answer(b"t") == [b"* SEARCH 2\r\n", b"t OK SEARCH completed\r\n"]


# --- attacks ---------------------------------------------------------------------------------


def test_attack_inflate_bomb_is_inflated_a_slice_at_a_time(server: MraServer) -> None:
    """512 MiB of one "line" deflate to half a megabyte. Inflated at once it would take the
    server 512 MB and more; inflated a slice at a time as the reader takes it, the reader's
    line limit refuses it after 64 KiB and skips the rest, holding a slice at a time."""
    c = DeflateClient.connect(server)
    c.login()
    c.compress()
    deflate = c.deflate
    assert deflate is not None
    peak = memory(server, "VmHWM")
    before = memory(server)
    block = b"x" * MIB
    bomb = b"".join(deflate.compress(block) for _ in range(512))
    bomb += deflate.compress(b"\r\nb NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < MIB
    c.sock.sendall(bomb)
    c.sock.settimeout(120)
    assert c.line() == b"* BAD [LIMIT] command line too long\r\n"
    assert c.answer(b"b") == [b"b OK NOOP completed\r\n"]
    grew = memory(server, "VmHWM") - max(peak, before)
    assert grew < 32 * MIB, f"the server's peak grew by {grew // MIB} MB"


def test_attack_inflate_bomb_in_a_literal_costs_the_budget_only(server: MraServer) -> None:
    """A non-synchronizing literal of 300 MB, refused at its announcement (over the 64 KiB of a
    SEARCH string), whose octets the reader skips, counted: sent as a bomb of 300 KB."""
    c = DeflateClient.connect(server)
    c.login()
    c.compress()
    c.command(b"s", b"SELECT INBOX")
    deflate = c.deflate
    assert deflate is not None
    before = memory(server, "VmHWM")
    size = 300 * MIB
    parts = [deflate.compress(b"a SEARCH TEXT {%d+}\r\n" % size)]
    parts += [deflate.compress(b"\0" * MIB) for _ in range(300)]
    parts.append(deflate.compress(b"\r\nb NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
    c.sock.sendall(b"".join(parts))
    c.sock.settimeout(120)
    assert c.line().startswith(b"a BAD [TOOBIG]")
    assert c.answer(b"b") == [b"b OK NOOP completed\r\n"]
    assert memory(server, "VmHWM") - before < 32 * MIB


def flood(c: DeflateClient, command: bytes, total: int) -> int:
    """Send `total` octets of `command` (uncompressed count), compressed, without reading;
    until the server stops taking them or cuts us. The octets that went."""
    deflate = c.deflate
    assert deflate is not None
    piece = command * (MIB // len(command))
    c.sock.setblocking(False)
    sent = 0
    last = time.monotonic()
    pending = b""
    while sent < total and time.monotonic() - last < 3:
        if not pending:
            pending = deflate.compress(piece) + deflate.flush(zlib.Z_SYNC_FLUSH)
        try:
            n = c.sock.send(pending)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        except (ConnectionResetError, BrokenPipeError):
            break
        pending = pending[n:]
        if not pending:
            sent += len(piece)
        last = time.monotonic()
    c.sock.setblocking(True)
    return sent


def small_window(server: MraServer) -> DeflateClient:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.ports["imap"]))
    c = DeflateClient(sock)
    assert c.line().startswith(b"* OK")
    c.login()
    c.compress()
    return c


def test_attack_compressed_flood_without_reading_is_dropped(
    server_factory: type[MraServer],
) -> None:
    """CAPABILITY in a loop, compressed 1000:1, never reading. The compressed stream must not
    defeat back-pressure (SECURITY.md heading 2): the server stops reading us, holds little,
    and cuts us once our answers have not drained for `output_timeout`."""
    s = server_factory("[limits]\noutput_timeout = 2\n")
    s.start()
    c = small_window(s)
    before = max(memory(s), memory(s, "VmHWM"))
    flood(c, b"a CAPABILITY\r\n", 2048 * MIB)
    grew = memory(s, "VmHWM") - before
    assert grew < 48 * MIB, f"the server grew by {grew // MIB} MB"
    time.sleep(3)  # past output_timeout, still not reading
    assert closed_by_server(c.sock)
    assert wait_for(lambda: "output-stalled" in s.log() or "output-limit" in s.log())
    # What the server read, not what we pushed: the kernel's socket buffers alone can hold the
    # ~2 MB that 2 GB of this command compress to, so the client's count proves nothing. A
    # server that stopped reading read at most its queue of compressed input and a read more;
    # one that went on would have drained all of it before the cut.
    assert wait_for(lambda: "session-end" in s.log())
    read = [int(m) for m in re.findall(r"session-end .*? in=(\d+)", s.log())]
    assert read and read[-1] < MAX_QUEUED_INPUT + 512 * 1024, f"the server read {read} octets"


def test_attack_invalid_deflate_data_closes_the_connection(server: MraServer) -> None:
    c = DeflateClient.connect(server)
    c.login()
    c.compress()
    c.sock.sendall(b"\xff\xfe this is not DEFLATE\r\n")
    assert closed_by_server(c.sock)
    assert wait_for(lambda: "compression-error" in server.log())


def test_compressed_connections_memory(server_factory: type[MraServer]) -> None:
    """What COMPRESS costs per connection: 100 logged-in connections, measured before and after
    each turns DEFLATE on and uses both directions' windows in full (a 200 KB message out, 30 KB
    of random octets in). Measured: 151 KiB each with our wbits 14 / memLevel 5, 330 KiB with
    zlib's defaults (Dovecot's); a plain session is some 40 KiB."""
    s = server_factory(
        "[limits]\nmax_sessions_per_user = 200\nmax_sessions_per_user_address = 200\n"
    )
    rng = random.Random(4978)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"mail", b"server", b"zlib", b"window"]
    body = b"\r\n".join(b" ".join(rng.choice(words) for _ in range(10)) for _ in range(4000))
    s.store().mailbox("INBOX").append(b"Subject: hi\r\n\r\n" + body + b"\r\n")
    s.start()
    clients = [DeflateClient.connect(s) for _ in range(100)]
    for c in clients:
        c.login()
        c.command(b"s", b"SELECT INBOX")
        c.command(b"f", b"FETCH 1 BODY.PEEK[]")
    time.sleep(0.5)
    before = memory(s)
    for c in clients:
        c.compress()
        assert c.command(b"f", b"FETCH 1 BODY.PEEK[]")[-1].startswith(b"f OK")
        noise = bytes(rng.randrange(97, 123) for _ in range(30_000))
        assert c.command(b"n", b"NOOP " + noise)[-1].startswith(b"n OK")
    time.sleep(0.5)
    per = (memory(s) - before) // len(clients)
    for c in clients:
        c.close()
    assert per < 250 * 1024, f"COMPRESS costs {per // 1024} KiB per connection"


def test_many_compressed_clients_at_once(server: MraServer) -> None:
    """Compressed sessions side by side in threads: each stream stays its own."""
    errors: list[BaseException] = []

    def session(n: int) -> None:
        try:
            c = DeflateClient.connect(server)
            c.login()
            c.compress()
            c.command(b"s", b"SELECT INBOX")
            for i in range(50):
                lines = c.command(b"f%d" % i, b"FETCH 1 BODY.PEEK[TEXT]")
                assert b"body one" in lines[0]
            c.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
