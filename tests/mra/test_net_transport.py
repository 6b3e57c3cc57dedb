"""Writes sent at once (mra/net/transport.py) and answers written whole (mra/net/adapter.py):
what could break when a write no longer waits for the reactor. The unit tests drive the real
transport class over a real socket pair with a recording reactor; the last ones a real
`mra serve` on loopback (IMAP, IMAPS, IMAP with COMPRESS)."""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from typing import Any

import pytest
from twisted.internet.testing import StringTransport

from mra.net.adapter import PUMP_BATCH, SessionProtocol
from mra.net.transport import DirectWriteServer, DirectWriteUnixServer
from mra.session import Close, Output, Send, Stream
from tests.mra.conftest import PASSWORD, MraServer


class _Reactor:
    """What a transport asks of the reactor: which descriptors it watches."""

    def __init__(self) -> None:
        self.readers: set[object] = set()
        self.writers: set[object] = set()

    def addReader(self, r: object) -> None:
        self.readers.add(r)

    def removeReader(self, r: object) -> None:
        self.readers.discard(r)

    def addWriter(self, w: object) -> None:
        self.writers.add(w)

    def removeWriter(self, w: object) -> None:
        self.writers.discard(w)

    def callLater(self, seconds: float, fn: object, *args: object) -> None:
        pass  # abortConnection's connectionLost: not wanted here


class _Producer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class _Protocol:
    def __init__(self) -> None:
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


def _pair(sndbuf: int | None = None) -> tuple[Any, socket.socket, _Reactor]:
    """(our transport, the peer's socket, the reactor it registered with); the peer has
    sent a command, which the transport has read."""
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    if sndbuf is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    reactor = _Reactor()
    transport: Any = DirectWriteServer(ours, _Protocol(), ("127.0.0.1", 1), None, 1, reactor)
    _command(transport, peer)
    return transport, peer, reactor


def _command(transport: Any, peer: socket.socket) -> None:
    """The peer sends a line, the transport reads it (as the reactor would have it)."""
    peer.sendall(b"a NOOP\r\n")
    transport.doRead()
    assert transport.protocol.received.endswith(b"a NOOP\r\n")


def _read_all(peer: socket.socket, size: int, transport: Any) -> bytes:
    """Read `size` octets, running the transport's writes as the reactor would when its
    socket is writable."""
    peer.settimeout(0.2)
    got = bytearray()
    deadline = time.monotonic() + 30
    while len(got) < size and time.monotonic() < deadline:
        try:
            got += peer.recv(1 << 16)
        except TimeoutError:
            pass
        if transport in transport.reactor.writers:
            transport.doWrite()
    return bytes(got)


def test_a_write_goes_out_without_a_turn_of_the_reactor() -> None:
    """The point of it: an answer is in the peer's socket when write() returns, and the
    socket was never registered for writing (two epoll_ctl and an epoll_wait saved)."""
    transport, peer, reactor = _pair()
    transport.write(b"a1 OK NOOP completed\r\n")
    transport.writeSequence([b"* 1 EXISTS\r\n", b"a2 OK done\r\n"])
    assert reactor.writers == set()
    peer.settimeout(5)
    assert peer.recv(100) == b"a1 OK NOOP completed\r\n* 1 EXISTS\r\na2 OK done\r\n"
    transport.socket.close()


def test_attack_answer_larger_than_the_socket_buffer_keeps_its_order() -> None:
    """A client that reads slowly: the kernel takes part of a big answer, the rest waits in
    the transport; what is written next must queue behind it, not jump ahead into the
    socket (the answers of pipelined commands would arrive interleaved)."""
    transport, peer, reactor = _pair(sndbuf=4096)
    big = b"".join(b"* %d FETCH (UID %d)\r\n" % (i, i) for i in range(1, 2_501))
    assert len(big) < transport.bufferSize  # sent at once, as much as the kernel takes
    transport.write(big)
    assert transport in reactor.writers  # the kernel did not take it all
    peer.settimeout(5)
    head = peer.recv(8192)  # room in the socket again, before the reactor's turn
    for i in range(100):
        transport.write(b"a%d OK NOOP completed\r\n" % i)
    tail = b"".join(b"a%d OK NOOP completed\r\n" % i for i in range(100))
    rest = _read_all(peer, len(big) + len(tail) - len(head), transport)
    assert head + rest == big + tail
    assert reactor.writers == set()  # all gone: no longer registered
    _command(transport, peer)
    transport.write(b"z OK\r\n")  # and the next write goes at once again
    assert reactor.writers == set()
    assert peer.recv(10) == b"z OK\r\n"
    transport.socket.close()


def test_attack_client_that_stops_reading_still_pauses_the_producer() -> None:
    """Back-pressure: once the kernel's buffer is full, what is left past the transport's
    buffer (64 KiB) pauses the connection's producer, as every write did before; it resumes
    once everything has gone."""
    transport, peer, _reactor = _pair(sndbuf=4096)
    producer = _Producer()
    transport.registerProducer(producer, True)
    transport.write(b"x" * 32768)
    assert producer.calls == []  # a little waits: no pause yet
    transport.write(b"y" * (transport.bufferSize + 1))
    assert producer.calls == ["pause"]
    _read_all(peer, 32768 + transport.bufferSize + 1, transport)
    assert producer.calls == ["pause", "resume"]
    transport.unregisterProducer()
    transport.socket.close()


def test_attack_answers_to_one_read_past_64k_wait_in_user_space() -> None:
    """The kernel would take megabytes (4 MB of send buffer here); answers written straight
    into it would never fill Twisted's buffer, never pause the producer, and never count
    against `max_unsent_output`: past 64 KiB per read, writes take Twisted's way again, and
    the producer is paused once that holds more than its buffer."""
    transport, peer, reactor = _pair(sndbuf=4 << 20)
    producer = _Producer()
    transport.registerProducer(producer, True)
    answer = b"* CAPABILITY IMAP4rev1 IDLE\r\na OK CAPABILITY completed\r\n" * 1000
    transport.write(answer)
    assert reactor.writers == set()  # the first went at once
    for _ in range(3):
        transport.write(answer)
    assert transport in reactor.writers
    assert producer.calls and set(producer.calls) == {"pause"}
    _read_all(peer, 4 * len(answer), transport)
    assert producer.calls[-1] == "resume"
    transport.unregisterProducer()
    transport.socket.close()


def test_a_write_after_lose_connection_waits_for_the_close() -> None:
    """loseConnection() flushes what is buffered, then closes: a write after it is Twisted's
    business (buffered, or dropped once closed), never a send of its own."""
    transport, _peer, reactor = _pair()
    transport.loseConnection()
    transport.write(b"late\r\n")
    assert transport in reactor.writers  # Twisted's close path, not ours
    transport.socket.close()


def test_a_write_after_abort_is_not_sent() -> None:
    """An aborted connection is still `connected` until the reactor's next turn: nothing
    written meanwhile may reach the socket."""
    transport, peer, _reactor = _pair()
    transport.abortConnection()
    transport.write(b"late\r\n")
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    transport.socket.close()


def test_unix_socket_connections_write_at_once_too() -> None:
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reactor = _Reactor()
    transport: Any = DirectWriteUnixServer(ours, _Protocol(), "", None, 1, reactor)
    _command(transport, peer)
    transport.write(b"250 2.1.5 OK\r\n")
    assert reactor.writers == set()
    peer.settimeout(5)
    assert peer.recv(100) == b"250 2.1.5 OK\r\n"
    transport.socket.close()


# --- the adapter: one write per batch of answers ------------------------------------------


class _Counting(StringTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)

    def writeSequence(self, seq: Any) -> None:
        self.writes += 1
        super().writeSequence(seq)


class _Pipelined:
    """A session answering each line with two Sends; `STREAM` with a Stream of many lines
    after a Send, then a Close for `QUIT`."""

    timeout = 60.0
    authenticated = True

    def greeting(self) -> list[Output]:
        return []

    def data_received(self, data: bytes) -> list[Output]:
        out: list[Output] = []
        for line in data.split(b"\r\n"):
            if line == b"STREAM":
                lines = (b"* %d line\r\n" % i for i in range(10_000))
                return [*out, Send(b"+ here\r\n"), Stream(lines, lambda: [Send(b"done\r\n")])]
            if line == b"QUIT":
                return [*out, Send(b"bye\r\n"), Close()]
            if line:
                out += [Send(b"* " + line + b"\r\n"), Send(line + b" OK\r\n")]
        return out

    def connection_lost(self) -> None:
        pass


def _adapter() -> tuple[SessionProtocol, _Counting]:
    proto = SessionProtocol(lambda _p: _Pipelined())  # type: ignore[arg-type,return-value]
    transport = _Counting()
    proto.makeConnection(transport)
    return proto, transport


def test_pipelined_answers_are_one_write_in_order() -> None:
    proto, transport = _adapter()
    proto.dataReceived(b"a\r\nb\r\nc\r\n")
    assert transport.writes == 1
    assert transport.value() == b"* a\r\na OK\r\n* b\r\nb OK\r\n* c\r\nc OK\r\n"
    proto.dataReceived(b"QUIT\r\n")
    assert transport.value().endswith(b"c OK\r\nbye\r\n")
    assert transport.disconnecting
    proto.connectionLost()


def test_a_stream_of_small_chunks_is_written_in_batches_in_order() -> None:
    """One FETCH line a chunk must not be one send each; the Send before the Stream leads
    its first batch and the answer of `then` follows the last chunk."""
    proto, transport = _adapter()
    proto.dataReceived(b"STREAM\r\n")
    want = b"+ here\r\n" + b"".join(b"* %d line\r\n" % i for i in range(10_000)) + b"done\r\n"
    assert transport.value() == want
    assert transport.writes <= len(want) // PUMP_BATCH + 3
    proto.connectionLost()


# --- a real server ----------------------------------------------------------------------


def _read_until(read: Any, end: bytes) -> bytes:
    """Read until `end` ends what came (a line of its own: a tagged answer, CRLF)."""
    got = bytearray()
    while not got.endswith(end):
        chunk = read()
        if not chunk:
            break
        got += chunk
    return bytes(got)


def _tagged(read: Any, tag: bytes) -> bytes:
    """Read until the tagged line of `tag`."""
    got = bytearray()
    while not (got.startswith(tag + b" ") or b"\r\n" + tag + b" " in got) or not got.endswith(
        b"\r\n"
    ):
        chunk = read()
        if not chunk:
            break
        got += chunk
    return bytes(got)


@pytest.mark.parametrize("mode", ["plain", "tls", "compress"])
def test_attack_big_answers_of_a_pipeline_read_late_arrive_whole_and_in_order(
    server_factory: type[MraServer], mode: str
) -> None:
    """Pipelined FETCHes of a 2 MB message between NOOPs, sent before reading anything and
    read only after a pause, with a small receive window: each answer's partial writes and
    what queued behind them must arrive complete and in command order, in clear text,
    inside TLS and compressed."""
    s = server_factory()
    body = b"".join(b"line %07d of a big message\r\n" % i for i in range(70_000))
    message = b"Subject: big\r\n\r\n" + body
    s.store().mailbox("INBOX").append(message)
    s.start()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    port = s.ports["imaps" if mode == "tls" else "imap"]
    raw.connect(("127.0.0.1", port))
    sock: Any = raw
    if mode == "tls":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(raw)
    inflate = zlib.decompressobj(-15)
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)

    def send(data: bytes) -> None:
        if mode == "compress":
            data = deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)
        sock.sendall(data)

    def read() -> bytes:
        data = sock.recv(1 << 16)
        return inflate.decompress(data) if mode == "compress" and data else data

    def plain() -> bytes:
        return bytes(sock.recv(1 << 16))

    _read_until(plain, b"\r\n")  # the greeting
    sock.sendall(f'l LOGIN alice@example.test "{PASSWORD}"\r\n'.encode())
    assert _tagged(plain, b"l").startswith(b"l OK")
    if mode == "compress":
        sock.sendall(b"z COMPRESS DEFLATE\r\n")
        assert _tagged(plain, b"z").startswith(b"z OK")
    send(b"s SELECT INBOX\r\n")
    assert b"\r\ns OK" in _tagged(read, b"s")
    commands = b"".join(b"n%d NOOP\r\nf%d FETCH 1 BODY.PEEK[]\r\n" % (i, i) for i in range(4))
    send(commands + b"e NOOP\r\n")
    time.sleep(1.0)  # the server writes into full buffers meanwhile
    got = _read_until(read, b"e OK NOOP completed\r\n")
    literal = b"{%d}\r\n" % len(message) + message
    pos = 0
    for i in range(4):
        for want in (b"n%d OK" % i, b"* 1 FETCH (BODY[] " + literal, b"f%d OK" % i):
            at = got.find(want, pos)
            assert at >= 0, f"{want[:30]!r} missing or out of order after octet {pos}"
            pos = at + len(want)
    assert got.endswith(b"e OK NOOP completed\r\n")
    assert got.count(message) == 4
    sock.close()
