"""The Twisted side of a session: moves bytes, runs blocking work in threads, keeps timers.

One `SessionProtocol` per connection carries out a session's outputs (see mra/session.py) in
order. While a `Call`, `Delay` or `Stream` is under way, further input is queued, not handed to
the session, so a pipelining client's commands still run one after the other. `Spawn` and
`Timer` hold nothing back: their work runs beside the session's (the auth socket's requests,
each with its own id), and what they give when done is written at once; a timer not yet
fired is cancelled when the connection goes, a thread's result is dropped.

What a client can make us hold, and for how long (SECURITY.md, headings 2 and 3):

* Input. Queued input past MAX_QUEUED_INPUT stops our reading of the socket until the session
  has taken it: a client that pipelines faster than we answer waits in its own socket. It is
  handed on FEED_SLICE at a time, and at most MAX_QUEUED_INPUT per turn of the reactor.
* Compression (`StartCompression`, IMAP COMPRESS: mra/net/deflate.py). What arrives compressed
  is queued compressed and counted as such against MAX_QUEUED_INPUT; it is inflated a slice at
  a time as the session takes it, so an inflate bomb (1 MB that inflates to 1 GB) is never
  whole in memory, and costs one turn of the reactor per MAX_QUEUED_INPUT inflated, as much
  input sent plain would. What we write is compressed as it is written: the gate below sees
  compressed octets, the real size of what waits, while `max_unsent_output` counts answers
  before compression, so that a client cannot make us produce more answers for it (each
  compressing to a few octets) than a plain one could.
* Output. An `_OutputGate` is registered on the transport as a streaming producer for the whole
  connection. The transport pauses it once more than its write buffer (64 KiB, Twisted's
  `bufferSize`) waits to go out, and resumes it when all of it has gone. While it is paused we
  read no input, hand no queued command to the session, pull no `Stream` chunk and push no IDLE
  update: a client that does not read our answers gets no more of them. The answers to input
  already read may still be written; those count against `[limits] max_unsent_output`, and past
  it the connection is cut, as it is when the output has not drained for `output_timeout`
  seconds. So what a client that stops reading costs is the kernel's socket buffers, 64 KiB and
  the answers to one read, whatever it sends.
* Streams (RETR, the body of a big FETCH) are pulled a chunk at a time while the gate is open,
  so a 50 MB message takes a chunk of memory at a time, at the pace of the client. A `threaded`
  Stream (FETCH: making a chunk reads and parses messages) has its chunks made in the thread
  pool, up to THREADED_GATHER octets or THREADED_SLICE seconds of work per thread hop, so a
  hop (about 0.1 ms of CPU) is paid per slice, not per chunk; the reactor only writes.
* Time. Every connection ends: the idle timer (`session.timeout`, restarted by input); the
  login deadline (`login_timeout` from the connect until `session.authenticated`, however busy
  the client keeps us, and again from an UNAUTHENTICATE); the TLS handshake deadline (implicit
  TLS from the connect, STARTTLS from the command: a client that sends half a ClientHello, or
  nothing, is cut); the output deadline above; and the close deadline: a connection we closed
  that is still there `close_timeout` seconds later (its peer reads nothing more, or never
  answers TLS's close_notify) is aborted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from twisted.internet import interfaces, protocol, threads
from twisted.internet.base import DelayedCall
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from mailstore.config import LimitsConfig
from mra import log, sessionlog
from mra.net.deflate import CompressionError, Deflate
from mra.net.polling import Polling
from mra.net.reactor import reactor
from mra.net.tls import TLSConnection, start_tls
from mra.session import (
    Call,
    Close,
    Delay,
    Output,
    Send,
    Session,
    Spawn,
    StartCompression,
    StartTLS,
    Stream,
    Timer,
)

MAX_QUEUED_INPUT = 1 << 20  # bytes held back while a command runs, before we stop reading
FEED_SLICE = 1 << 16  # queued input is handed on at most one socket read's worth at a time
PUMP_BATCH = 1 << 16  # octets of a Stream's chunks gathered into one write (Twisted's bufferSize)
THREADED_GATHER = 1 << 20  # octets of a threaded Stream made per thread hop, at most
THREADED_SLICE = 0.02  # seconds of work per thread hop, at most
DEADLINE_SLACK = 0.001  # seconds: a timer set for a deadline fires at it, give or take rounding
_NEVER = float("inf")


@implementer(interfaces.IPushProducer)
class _OutputGate:
    """The transport's handle on everything we write: paused while more than its buffer waits
    to go out, resumed when all of it has gone (and stopped when the connection is lost)."""

    __slots__ = ("proto",)

    def __init__(self, proto: SessionProtocol) -> None:
        self.proto = proto

    def pauseProducing(self) -> None:
        self.proto._output_blocked()

    def resumeProducing(self) -> None:
        self.proto._output_drained()

    def stopProducing(self) -> None:
        self.proto._stop_stream()


_NO_POOLS: dict[str, ThreadPool] = {}


@implementer(interfaces.IProtocol, interfaces.IHandshakeListener)
class SessionProtocol(Polling):
    """One connection. Not a `twisted.internet.protocol.Protocol` (whose instances have a
    `__dict__`): its attributes are slots, about 1.5 KiB less per connection than the
    dictionary they took (issue #16: 10,000 idle connections)."""

    __slots__ = (
        "_blocked",
        "_busy",
        "_closed",
        "_deflate",
        "_feeding",
        "_gate",
        "_gathering",
        "_handshake_by",
        "_handshaking",
        "_idle_by",
        "_logged_in",
        "_login_by",
        "_make_session",
        "_queued",
        "_queued_size",
        "_reading_paused",
        "_refeed",
        "_stream",
        "_timers",
        "_timers_running",
        "_watched",
        "_written_while_blocked",
        "bytes_in",
        "bytes_out",
        "end_reason",
        "limits",
        "pools",
        "protocol",
        "session",
        "started",
        "tls_context",
        "transport",
    )
    transport: Any  # an ITCPTransport (or mra.net.tls.TLSConnection); Twisted's stubs say less

    def __init__(
        self,
        make_session: Callable[[SessionProtocol], Session],
        limits: LimitsConfig | None = None,
        pools: dict[str, ThreadPool] | None = None,
    ) -> None:
        self.transport = None
        self._make_session = make_session
        self.limits = limits if limits is not None else LimitsConfig()
        # Call(pool=name) runs there; others in the reactor's pool
        self.pools = pools if pools is not None else _NO_POOLS
        self.session: Session | None = None
        self._busy = False  # a Call, Delay or Stream is under way
        self._queued: list[bytes] = []
        self._queued_size = 0
        self._reading_paused = False
        self._gate: _OutputGate | None = None
        self._blocked = False  # the transport paused the gate: the client is not reading
        self._handshaking = False  # a TLS handshake is under way
        self._written_while_blocked = 0
        self._stream: Stream | None = None
        self._gathering = False  # a threaded Stream's chunks are being made in a thread
        self._timers: dict[str, DelayedCall] = {}
        # The idle, login and TLS handshake deadlines (reactor time; None: none runs) share
        # one timer, "deadline", due at the earliest: a timer cancelled (at login, at the
        # end of a handshake) stays in Twisted's heap, about 300 octets, until the heap is
        # mostly cancelled timers, which for thousands of idle connections is never.
        self._idle_by = _NEVER
        self._login_by: float | None = None
        self._handshake_by: float | None = None
        self._closed = False
        self._logged_in = False  # the session was authenticated at the last look
        self._watched: Sequence[str] = ()  # the directories inotify watches for us
        self._timers_running: set[DelayedCall] | None = None  # Timer outputs not yet fired
        self._deflate: Deflate | None = None  # after StartCompression
        self._feeding = False  # inside _feed's loop
        self._refeed = False  # ... and asked to go on with the session
        self.tls_context: Any = None  # set by the factory when STARTTLS is possible
        # For the line that ends the session (mra/sessionlog.py) and `mra who`.
        self.protocol = "?"  # set by the factory: "imap", "pop3"...
        self.started = time.monotonic()
        self.bytes_in = 0
        self.bytes_out = 0
        self.end_reason = ""  # why we closed it; "" = the client went away

    # -- Twisted events -------------------------------------------------------------------

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self.connectionMade()

    def logPrefix(self) -> str:
        return self.protocol

    def connectionMade(self) -> None:
        self._start()
        self._reset_timer()
        assert self.session is not None
        self._perform(self.session.greeting())

    def _start(self) -> None:
        self._no_delay()
        self._gate = _OutputGate(self)
        self.transport.registerProducer(self._gate, True)
        self._login_by = reactor.seconds() + self.limits.login_timeout
        if isinstance(self.transport, TLSConnection):  # IMAPS, POP3S
            self._tls_begun()
        self.session = self._make_session(self)
        self._reset_timer()  # the first deadline timer: the idle one, or sooner ones

    def _no_delay(self) -> None:
        """Nagle's algorithm would hold a short final write (POP3's `.` line, a tagged OK)
        until the client acknowledges the previous one: 40 ms per command on Linux."""
        transport = self.transport
        for candidate in (transport, getattr(transport, "transport", None)):
            set_no_delay = getattr(candidate, "setTcpNoDelay", None)
            if set_no_delay is not None:
                try:
                    set_no_delay(True)
                except OSError:
                    pass
                return

    def start_held(self) -> None:
        """Make the session but hold input back until `release()` (an access check runs)."""
        self._start()
        self._busy = True

    def release(self, outputs: list[Output]) -> None:
        self._busy = False
        self._reset_timer()
        self._perform(outputs)
        self._feed(b"")

    def dataReceived(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self.session is None or self._closed:
            return
        self._reset_timer()
        if self._deflate is not None:  # compressed: inflated as the session takes it
            self._deflate.give(data)
            if self._busy or self._blocked:
                self._update_reading()
            else:
                self._feed(b"")
            return
        if self._busy or self._blocked or self._queued:
            self._queued.append(data)
            self._queued_size += len(data)
            if self._busy or self._blocked:
                self._update_reading()
            else:  # input left from a pause goes first
                self._feed(b"")
            return
        self._feed(data)

    def _tls_begun(self) -> None:
        self._handshaking = True
        self._handshake_by = reactor.seconds() + self.limits.tls_handshake_timeout
        self._arm_deadline()

    def handshakeCompleted(self) -> None:
        self._handshaking = False
        self._handshake_by = None  # the deadline timer, if it fires before, finds nothing due
        self._update_reading()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._closed = True
        self._deflate = None  # its ~130 KiB go now
        self._stop_stream()
        for timer in [*self._timers.values(), *(self._timers_running or ())]:
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self._timers_running = None
        self._unwatch()
        if self.session is not None:
            try:
                self.session.connection_lost()
            except Exception as exc:
                log.error("session-cleanup-failed", error=repr(exc))
            sessionlog.ended(self)

    # -- server events --------------------------------------------------------------------

    def shutdown(self) -> None:
        if self.session is not None and not self._closed:
            self.end_reason = "shutdown"
            self._perform(self.session.shutdown())

    def disconnect(self, text: str) -> None:
        """The administrator ends the session (`mra kick`): the protocol's goodbye, then close
        (at once, if a command is under way: its answer is not waited for)."""
        if self.session is not None and not self._closed:
            self.end_reason = "kicked"
            self._perform_outputs(self.session.refuse(text))
            self._close()

    def mailbox_changed(self) -> None:
        if self.session is not None and not self._closed and not self._busy and not self._blocked:
            self._perform(self.session.mailbox_changed())

    # -- input ----------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Hand input to the session (b"" lets it go on with commands it holds buffered),
        then whatever was queued while it was busy or the client was not reading.

        The queue goes on a socket read's worth at a time, checking the gate in between: the
        answers to a megabyte of pipelined commands must not all be made at once for a
        client that stopped reading them after the first few. At most MAX_QUEUED_INPUT goes
        per call; the rest in a later turn of the reactor (what a compressed megabyte
        inflates to must not hold every other connection up).

        Called again from inside the loop (a `Stream` that ended as soon as it began calls
        `_resume`, which feeds on), it only asks the loop to go on: recursing instead, 2,000
        pipelined FETCHes of a few flags overflowed the stack and lost the connection."""
        if self.session is None or self._closed:
            return
        if self._feeding:
            self._refeed = True
            if data:  # never seen: input arrives from the reactor, not from inside the loop
                self._queued.append(data)
                self._queued_size += len(data)
            return
        self._feeding = True
        self._refeed = False
        try:
            self._perform(self.session.data_received(data))
            fed = 0
            while not self._busy and not self._blocked and not self._closed:
                if self._refeed:
                    self._refeed = False
                    self._perform(self.session.data_received(b""))
                    continue
                if not self._input_waiting():
                    break
                if fed >= MAX_QUEUED_INPUT:
                    if not self._armed("feed"):
                        self._arm("feed", 0, self._feed_later)
                    break
                data = self._next_input()
                if not data:
                    break
                fed += len(data)
                self._perform(self.session.data_received(data))
        finally:
            self._feeding = False
        self._update_reading()

    def _feed_later(self) -> None:
        self._timers.pop("feed", None)
        if not self._busy and not self._blocked:
            self._feed(b"")

    def _input_waiting(self) -> bool:
        return bool(self._queued) or (self._deflate is not None and self._deflate.pending)

    def _next_input(self) -> bytes:
        """The next slice of queued input (inflated, when compressed); b"" if none is whole
        yet, or the compressed stream broke (then the connection is cut)."""
        if self._queued:
            queued = b"".join(self._queued)
            data, rest = queued[:FEED_SLICE], queued[FEED_SLICE:]
            self._queued = [rest] if rest else []
            self._queued_size = len(rest)
            return data
        assert self._deflate is not None
        try:
            return self._deflate.inflate(FEED_SLICE)
        except CompressionError as exc:
            self._abort("compression-error", error=str(exc))
            return b""

    def _update_reading(self) -> None:
        """Read from the socket unless the client is not reading our answers or has sent
        more than we hold for it.

        Until a TLS handshake is over the TLS layer holds what we write (and pauses the gate)
        while it waits for the client's half of the handshake: reading must go on then."""
        if self._closed:
            return
        blocked = self._blocked and not self._handshaking
        queued = self._queued_size + (self._deflate.backlog if self._deflate is not None else 0)
        pause = blocked or queued > MAX_QUEUED_INPUT
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                self.transport.pauseProducing()
            else:
                self.transport.resumeProducing()

    # -- output ---------------------------------------------------------------------------

    def _output_blocked(self) -> None:
        """The transport holds more than its buffer: stop producing until it has drained."""
        if self._blocked or self._closed:
            return
        self._blocked = True
        self._written_while_blocked = 0
        self._arm("output", self.limits.output_timeout, self._output_expired)
        self._update_reading()

    def _output_drained(self) -> None:
        if not self._blocked:
            return
        self._blocked = False
        self._disarm("output")
        if self._closed:
            return
        self._update_reading()
        if self._stream is not None:
            self._pump()
        elif not self._busy:
            self._feed(b"")

    def _write(self, data: bytes) -> bool:
        """Write, counting what is written while the client is not reading (before any
        compression); False if that passed the limit and the connection was cut."""
        if self._blocked:
            self._written_while_blocked += len(data)
            if self._written_while_blocked > self.limits.max_unsent_output:
                self._abort("output-limit", unsent=self._written_while_blocked)
                return False
        self._send(data)
        return True

    def _send(self, *chunks: bytes) -> None:
        """To the transport, compressed when compression is on (one flush for them all)."""
        self.bytes_out += sum(len(c) for c in chunks)
        if self._deflate is not None:
            self.transport.write(self._deflate.compress(*chunks))
        elif len(chunks) == 1:
            self.transport.write(chunks[0])
        else:
            self.transport.writeSequence(chunks)

    def _pump(self, batch: list[bytes] | None = None) -> None:
        """Write the stream's chunks until the transport pauses us or the stream ends,
        PUMP_BATCH octets at a time (a chunk may be one FETCH line: one write each would be
        a `send` each); `batch`: what to write before them (the Sends before the Stream)."""
        batch = batch if batch is not None else []
        size = sum(len(b) for b in batch)
        while self._stream is not None and not self._blocked and not self._closed:
            stream = self._stream
            if stream.threaded:
                if batch:
                    self._send(*batch)
                    batch = []
                    continue  # the write may have paused us
                if not self._gathering:
                    self._gathering = True
                    d = threads.deferToThread(_gather, stream.chunks)
                    d.addBoth(self._gathered, stream)
                return
            try:
                chunk = next(stream.chunks)
            except StopIteration:
                self._stream = None
                if batch:
                    self._send(*batch)
                self._resume(stream.then)
                return
            except Exception as exc:  # a message vanished mid-stream, an I/O error
                log.error("stream-failed", error=repr(exc))
                self._stream = None
                if batch:
                    self._send(*batch)  # what was made before it, as it was written before
                self._close()
                return
            batch.append(chunk)
            size += len(chunk)
            if size >= PUMP_BATCH:
                self._send(*batch)
                batch, size = [], 0
        if batch and not self._closed:
            self._send(*batch)

    def _gathered(self, result: object, stream: Stream) -> None:
        self._gathering = False
        if self._stream is not stream or self._closed:
            return
        if isinstance(result, Failure):
            log.error("stream-failed", error=repr(result.value))
            self._stream = None
            self._close()
            return
        assert isinstance(result, tuple)
        chunks, ended = result
        if chunks:
            self._send(*chunks)
        if ended:
            self._stream = None
            self._resume(stream.then)
            return
        self._pump()

    def _stop_stream(self) -> None:
        if self._stream is not None:
            chunks, self._stream = self._stream.chunks, None
            close = getattr(chunks, "close", None)
            if close is not None and not self._gathering:  # never under a running thread
                close()

    def _close(self) -> None:
        """Close after what was written is flushed; abort if that takes too long."""
        if self._closed:
            return
        self.end_reason = self.end_reason or "closed"
        self._closed = True
        self._stop_stream()
        if self._gate is not None:
            # A registered producer keeps a transport open until it is unregistered.
            self._gate = None
            self.transport.unregisterProducer()
        self.transport.loseConnection()
        self._arm("close", self.limits.close_timeout, self._close_expired)

    def _abort(self, event: str, **fields: object) -> None:
        log.warn(event, ip=self._peer(), **fields)
        self.end_reason = self.end_reason or event
        self._closed = True
        self._stop_stream()
        self.transport.abortConnection()

    def _peer(self) -> str:
        try:
            return str(getattr(self.transport.getPeer(), "host", "?"))
        except Exception:
            return "?"

    # -- outputs --------------------------------------------------------------------------

    def _perform(self, outputs: list[Output]) -> None:
        self._perform_outputs(outputs)
        session = self.session
        if session is not None:
            if session.authenticated:
                self._login_by = None
                self._logged_in = True
            elif self._logged_in and not self._closed:
                # UNAUTHENTICATE (IMAP RFC 8437, ManageSieve RFC 5804 2.14.1): back before
                # login, so under a login deadline again, or NOOPs would keep it for ever.
                self._logged_in = False
                self._login_by = reactor.seconds() + self.limits.login_timeout
                self._arm_deadline()
        self._poll()

    def _perform_outputs(self, outputs: list[Output]) -> None:
        """Carry the outputs out in order. Consecutive Sends (the answers to a batch of
        pipelined commands) are one write, so one `send` (mra/net/transport.py), up to
        PUMP_BATCH octets: past that, or once the client is not reading, each is written
        as it comes, so that `max_unsent_output` still counts them (a slice of pipelined
        CAPABILITYs asks for a megabyte of answers). Those just before a Stream start its
        first batch of chunks."""
        held: list[bytes] = []
        size = 0
        for i, out in enumerate(outputs):
            if self._closed:
                return
            if isinstance(out, Send):
                held.append(out.data)
                size += len(out.data)
                if size >= PUMP_BATCH or self._blocked:
                    data = held[0] if len(held) == 1 else b"".join(held)
                    held, size = [], 0
                    if not self._write(data):
                        return
                continue
            if held:
                if isinstance(out, Stream) and not out.threaded and not self._blocked:
                    self._wait(outputs[i + 1 :])
                    self._stream = out
                    self._pump(held)
                    return
                data = held[0] if len(held) == 1 else b"".join(held)
                held, size = [], 0
                if not self._write(data) or self._closed:
                    return
            if isinstance(out, Close):
                self._close()
                return
            elif isinstance(out, StartTLS):
                # Whatever the client sent after STARTTLS was sent in the clear: drop it.
                self._queued.clear()
                self._queued_size = 0
                self._update_reading()
                self._tls_begun()
                # The gate stays registered with the TCP transport, under the TLS layer.
                start_tls(self, self.tls_context)
                assert self.session is not None
                self._perform(self.session.tls_started())
            elif isinstance(out, StartCompression):
                # Everything after the command came compressed: what the session had read
                # past it, then what we held back.
                self._deflate = Deflate(out.level)
                self._deflate.give(out.pending + b"".join(self._queued))
                self._queued.clear()
                self._queued_size = 0
            elif isinstance(out, Call):
                self._wait(outputs[i + 1 :])
                pool = self.pools.get(out.pool)
                if pool is not None:
                    d = threads.deferToThreadPool(reactor, pool, out.fn)
                else:
                    d = threads.deferToThread(out.fn)
                d.addBoth(self._called, out.then)
                return
            elif isinstance(out, Delay):
                self._wait(outputs[i + 1 :])
                reactor.callLater(out.seconds, self._resume, out.then)
                return
            elif isinstance(out, Stream):
                self._wait(outputs[i + 1 :])
                self._stream = out
                self._pump()
                return
            elif isinstance(out, Spawn):
                pool = self.pools.get(out.pool)
                if pool is not None:
                    d = threads.deferToThreadPool(reactor, pool, out.fn)
                else:
                    d = threads.deferToThread(out.fn)
                d.addBoth(self._spawned, out.then)
            elif isinstance(out, Timer):
                self._start_timer(out)
        if held and not self._closed:
            self._write(held[0] if len(held) == 1 else b"".join(held))

    def _spawned(self, result: object, then: Callable[[object], list[Output]]) -> None:
        value = result.value if isinstance(result, Failure) else result
        self._in_background(lambda: then(value))

    def _start_timer(self, out: Timer) -> None:
        def fire() -> None:
            if self._timers_running is not None:
                self._timers_running.discard(call)
            self._in_background(out.then)

        call = reactor.callLater(out.seconds, fire)
        if self._timers_running is None:
            self._timers_running = set()
        self._timers_running.add(call)

    def _in_background(self, then: Callable[[], list[Output]]) -> None:
        """A Spawn or Timer completed: its outputs go out now, whatever else is under way."""
        if self._closed or self.session is None:
            return
        try:
            outputs = then()
            if any(
                isinstance(o, Call | Delay | Stream | StartTLS | StartCompression) for o in outputs
            ):
                raise RuntimeError("a Spawn or Timer may give only Send, Close, Spawn, Timer")
        except Exception as exc:
            log.error("session-failed", error=repr(exc))
            self._close()
            return
        self._perform(outputs)

    def _wait(self, rest: list[Output]) -> None:
        if rest:
            raise RuntimeError("a blocking output must be the last of its list")
        self._busy = True

    def _called(self, result: object, then: Callable[[object], list[Output]]) -> None:
        value = result.value if isinstance(result, Failure) else result
        self._resume(lambda: then(value))

    def _resume(self, then: Callable[[], list[Output]]) -> None:
        self._busy = False
        if self._closed:
            return
        try:
            outputs = then()
        except Exception as exc:
            log.error("session-failed", error=repr(exc))
            self._close()
            return
        self._perform(outputs)
        if not self._busy and not self._blocked:
            self._feed(b"")

    # -- timers ---------------------------------------------------------------------------

    def _arm(self, name: str, seconds: float, fn: Callable[[], None]) -> None:
        timer = self._timers.get(name)
        if timer is not None and timer.active():
            if reactor.seconds() + seconds >= timer.getTime():
                timer.reset(seconds)  # later: Twisted only notes it
                return
            # Sooner: Twisted's reset() searches its whole heap of timers, so a delivery that
            # wakes 10,000 idling sessions cost 10,000 searches of 10,000 (58 s). A cancel is
            # lazy, a new timer a heap push.
            timer.cancel()
        self._timers[name] = reactor.callLater(seconds, fn)

    def _disarm(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _armed(self, name: str) -> bool:
        timer = self._timers.get(name)
        return timer is not None and timer.active()

    def _reset_timer(self) -> None:
        """Input came: the idle deadline starts again. A deadline timer due before the new
        deadline is left as it is: when it fires it finds nothing due and is set again
        (`_deadline`), one wake-up per idle period where moving it cost every command."""
        session = self.session
        if session is not None:
            self._idle_by = reactor.seconds() + session.timeout
            timer = self._timers.get("deadline")
            if timer is None or not timer.active() or timer.getTime() > self._idle_by:
                self._arm_deadline()

    def _arm_deadline(self) -> None:
        due = self._idle_by
        if self._login_by is not None:
            due = min(due, self._login_by)
        if self._handshake_by is not None:
            due = min(due, self._handshake_by)
        if due != _NEVER:
            self._arm("deadline", max(0.0, due - reactor.seconds()), self._deadline)

    def _deadline(self) -> None:
        """The deadline timer fired: whichever deadlines are due act, in the order of their
        severity; if none is (the one it was set for went away), it is set again."""
        if self.session is None or self._closed:
            return
        now = reactor.seconds() + DEADLINE_SLACK
        if self._handshake_by is not None and now >= self._handshake_by:
            self._handshake_expired()
        elif self._login_by is not None and now >= self._login_by:
            self._login_expired()
        elif now >= self._idle_by:
            self._timed_out()
        else:
            self._arm_deadline()

    def _timed_out(self) -> None:
        if self.session is None or self._closed:
            return
        if self._busy or self._blocked:
            # Our own work is not the client's silence; output it does not read has its own
            # deadline.
            self._reset_timer()
            return
        self.end_reason = "idle"
        self._perform(self.session.idle_timeout())

    def _login_expired(self) -> None:
        """The login deadline passed, however active the client was: say goodbye, close."""
        session = self.session
        if session is None or self._closed or session.authenticated:
            return
        log.info("login-timeout", ip=self._peer())
        self.end_reason = "login-timeout"
        self._perform(session.login_timeout())
        self._close()

    def _handshake_expired(self) -> None:
        self._abort("tls-handshake-timeout", seconds=self.limits.tls_handshake_timeout)

    def _output_expired(self) -> None:
        self._abort("output-stalled", seconds=self.limits.output_timeout)

    def _close_expired(self) -> None:
        self._abort("close-timeout", seconds=self.limits.close_timeout)


def _gather(chunks: Iterator[bytes]) -> tuple[list[bytes], bool]:
    """In a thread: a threaded Stream's next chunks, up to THREADED_GATHER octets or
    THREADED_SLICE seconds of work, and whether it ended."""
    out: list[bytes] = []
    size = 0
    deadline = time.monotonic() + THREADED_SLICE
    for chunk in chunks:
        out.append(chunk)
        size += len(chunk)
        if size >= THREADED_GATHER or time.monotonic() >= deadline:
            return out, False
    return out, True
