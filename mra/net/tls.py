"""TLS for the listeners: the context, the TLS layer of a connection, a self-signed pair.

TLS 1.2 is the minimum (RFC 8996 retired 1.0 and 1.1; RFC 8314 4.1 asks for 1.2 or later).
The certificate and key are loaded at start-up (before privileges are dropped) and again on
SIGHUP; a reload that fails keeps the old context and logs why.

TLS is done by the standard library's `ssl.SSLObject` over two `ssl.MemoryBIO`s (the system
OpenSSL), in `TLSConnection` below, a layer between Twisted's TCP transport and a
`SessionProtocol`, not by Twisted's `TLSMemoryBIOProtocol` over pyOpenSSL: an idle connection
costs about 12 KiB less that way (issue #16, measured with bench/idle.py; SECURITY.md,
"Memory per TLS connection"), most of it pyOpenSSL's and the `cryptography` wheel's own
OpenSSL's per-connection state. The standard library's context sets SSL_MODE_RELEASE_BUFFERS,
so an idle connection holds no record buffers.
"""

from __future__ import annotations

import ssl
from typing import Any

from mra import log

# Plaintext is encrypted, and ciphertext fed to OpenSSL, a TLS record's worth (16 KiB, RFC 8446
# 5.1) at a time. A memory BIO never gives back what it grew to: a 1 MB FETCH encrypted in one
# piece left 2 MB with the connection for as long as it lasted (bench: 1 MB each way, 2,047 KB
# kept per connection; in records, 59 KB; an idle connection that never sent a record of its
# size, 17 KB). Record-sized writes are also the cheapest (0.4 ms of CPU per MB against 0.8
# in one piece, 0.7 in 4 KiB pieces).
RECORD = 16384


class TLSContext:
    """The server's TLS context, whose certificate can be replaced while connections stay up
    (each connection keeps the context it was made with)."""

    def __init__(self, cert_path: str, key_path: str) -> None:
        self.cert_path = cert_path
        self.key_path = key_path or cert_path
        self._context = self._load()

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # OpenSSL checks here that the key matches the certificate: a bad pair fails the
        # load (and a reload keeps the old pair) rather than every handshake after it. The
        # certificate file may hold the chain after the certificate.
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def reload(self) -> bool:
        try:
            self._context = self._load()
        except Exception as exc:
            log.error("tls-reload-failed", cert=self.cert_path, error=str(exc))
            return False
        log.info("tls-reloaded", cert=self.cert_path)
        return True

    def connection(self, protocol: Any) -> TLSConnection:
        """A TLS layer for one server-side connection, over the current certificate."""
        return TLSConnection(self._context, protocol)


class TLSConnection:
    """One connection's TLS: the protocol Twisted's TCP transport delivers to, and the
    transport of the `SessionProtocol` above it (the parts of ITCPTransport it uses).

    What the session writes before the handshake ends (the greeting of IMAPS) waits for it.
    Pausing and resuming, and the producer registered for the connection's output, are the
    TCP transport's own: everything written becomes ciphertext written there at once, so its
    buffer is the only one that fills (mra/net/adapter.py, "Output").

    `loseConnection` sends TLS's close_notify and closes the TCP connection once the peer's
    has come (RFC 8446 6.1), which a hostile peer never sends: the adapter's close deadline
    aborts it then. A TLS error (a bad handshake, a forged record) sends OpenSSL's alert and
    closes.
    """

    __slots__ = (
        "_closing",
        "_early",
        "_handshaken",
        "_incoming",
        "_outgoing",
        "_peer_closed",
        "_tls",
        "protocol",
        "transport",
    )

    def __init__(self, context: ssl.SSLContext, protocol: Any) -> None:
        self.transport: Any = None  # Twisted's TCP transport, given by makeConnection
        self.protocol = protocol
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshaken = False
        self._early: list[bytes] | None = None  # written before the handshake ended
        self._closing = False  # loseConnection was called: close_notify sent or due
        self._peer_closed = False  # the peer's close_notify arrived

    # -- the protocol of the TCP transport -------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        """Implicit TLS (IMAPS, POP3S): the session starts now, its output waits."""
        self.transport = transport
        self.protocol.makeConnection(self)

    def connectionMade(self) -> None:
        pass

    def logPrefix(self) -> str:
        return "tls"

    def dataReceived(self, data: bytes) -> None:
        if len(data) <= RECORD:
            self._received(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), RECORD):
            if self._peer_closed:  # a TLS error or the peer's close_notify: the rest is moot
                return
            self._received(view[start : start + RECORD])

    def _received(self, data: bytes | memoryview) -> None:
        self._incoming.write(data)
        if not self._handshaken:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                return
            except (ssl.SSLError, OSError) as exc:
                self._failed(exc)
                return
            self._handshaken = True
            self._flush()
            early, self._early = self._early, None
            if early and not self._closing:
                self._encrypt(early)
            if self._closing:
                self._shutdown()
            else:
                self.protocol.handshakeCompleted()
        self._decrypt()

    def connectionLost(self, reason: Any) -> None:
        self.protocol.connectionLost(reason)

    def _decrypt(self) -> None:
        """Hand on all the plaintext the ciphertext received so far makes."""
        tls = self._tls
        while self.transport is not None and not self._peer_closed:
            try:
                data = tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # close_notify, after ours
                data = b""
            except (ssl.SSLError, OSError) as exc:
                self._failed(exc)
                return
            if not data:  # the peer's close_notify
                self._peer_closed = True
                self._shutdown()
                return
            if not self._closing:  # after our close_notify, what comes is dropped
                self.protocol.dataReceived(data)
        self._flush()  # what reading made: a TLS 1.3 key update's answer

    def _failed(self, exc: BaseException) -> None:
        log.debug("tls-error", error=str(exc))
        if not getattr(self.protocol, "end_reason", "x"):
            self.protocol.end_reason = "tls-error"
        self._flush()  # OpenSSL's alert
        self._closing = True
        self._peer_closed = True
        self.transport.loseConnection()

    # -- the transport of the session -------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._closing or not data:
            return
        if not self._handshaken:
            if self._early is None:
                self._early = []
            self._early.append(data)
            return
        self._encrypt([data])

    def writeSequence(self, chunks: list[bytes]) -> None:
        if self._closing:
            return
        if not self._handshaken:
            for chunk in chunks:
                self.write(chunk)
            return
        self._encrypt(chunks)

    def _encrypt(self, chunks: list[bytes]) -> None:
        """Encrypt a record's worth at a time, taking the ciphertext out of the BIO after
        each (see RECORD)."""
        tls = self._tls
        try:
            for chunk in chunks:
                if len(chunk) <= RECORD:
                    tls.write(chunk)
                    self._flush()
                    continue
                view = memoryview(chunk)
                for start in range(0, len(chunk), RECORD):
                    tls.write(view[start : start + RECORD])
                    self._flush()
        except (ssl.SSLError, OSError) as exc:
            self._failed(exc)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self.transport.write(data)

    def loseConnection(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._early = None
        if self._handshaken:
            self._shutdown()
        else:
            self.transport.loseConnection()

    def _shutdown(self) -> None:
        """Send our close_notify (once); close the TCP connection when the peer's is in."""
        self._closing = True
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            self._peer_closed = True  # nothing more will be read: close now
        self._flush()
        if self._peer_closed:
            self.transport.loseConnection()

    def abortConnection(self) -> None:
        self._closing = True
        self.transport.abortConnection()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.transport.setTcpNoDelay(enabled)


def start_tls(protocol: Any, context: TLSContext) -> TLSConnection:
    """STARTTLS / STLS: put a TLS layer between the TCP transport and `protocol`, whose
    output producer stays registered with the TCP transport."""
    tcp = protocol.transport
    layer = context.connection(protocol)
    layer.transport = tcp
    tcp.protocol = layer
    protocol.transport = layer
    return layer


class TLSFactory:
    """Wraps a listener's protocol factory: each connection gets its TLS layer (IMAPS,
    POP3S). What Twisted's Port needs of a factory, passed on."""

    def __init__(self, context: TLSContext, factory: Any) -> None:
        self.context = context
        self.factory = factory

    def doStart(self) -> None:
        self.factory.doStart()

    def doStop(self) -> None:
        self.factory.doStop()

    def logPrefix(self) -> str:
        return str(self.factory.logPrefix())

    def buildProtocol(self, addr: Any) -> TLSConnection | None:
        protocol = self.factory.buildProtocol(addr)
        if protocol is None:
            return None
        return self.context.connection(protocol)
