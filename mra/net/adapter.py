"""The Twisted side of a session: moves bytes, runs blocking work in threads, keeps timers.

One `SessionProtocol` per connection carries out a session's outputs (see mra/session.py) in
order. While a `Call`, `Delay` or `Stream` is under way, further input is queued, not handed to
the session, so a pipelining client's commands still run one after the other; if the queue
grows past a limit the client is not reading our answers and we stop reading it (back-pressure,
`pauseProducing`). Streams are written through a pull producer, so a 50 MB RETR takes a chunk
of memory at a time, at the pace of the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet import interfaces, protocol, threads
from twisted.internet.base import DelayedCall
from twisted.python.failure import Failure
from zope.interface import implementer

from mra import log
from mra.net.reactor import reactor
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

WATCHED_POLL = 30.0  # seconds between polls of a directory inotify watches anyway
NOTIFY_DELAY = 0.05  # after an inotify event, before looking
MAX_QUEUED_INPUT = 1 << 20  # bytes held back while a command runs, before we stop reading
THREADED_GATHER = 1 << 20  # octets of a threaded Stream made per thread hop, at most
THREADED_SLICE = 0.02  # seconds of work per thread hop, at most


@implementer(interfaces.IPullProducer)
class _ChunkProducer:
    def __init__(self, proto: SessionProtocol, chunks: Iterator[bytes], done: Callable[[], None]):
        self.proto = proto
        self.chunks = chunks
        self.done = done

    def resumeProducing(self) -> None:
        transport = self.proto.transport
        if transport is None:
            return
        try:
            chunk = next(self.chunks)
        except StopIteration:
            transport.unregisterProducer()
            self.done()
            return
        except Exception as exc:  # a message vanished mid-stream, an I/O error
            log.error("stream-failed", error=repr(exc))
            transport.unregisterProducer()
            transport.loseConnection()
            return
        transport.write(chunk)

    def stopProducing(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


@implementer(interfaces.IPushProducer)
class _ThreadedChunkProducer:
    """A Stream whose chunks are made in the thread pool (FETCH renders messages): one
    `next()` at a time in a thread, each chunk written from the reactor, and none asked for
    while the transport is paused (the client is not reading)."""

    def __init__(self, proto: SessionProtocol, chunks: Iterator[bytes], done: Callable[[], None]):
        self.proto = proto
        self.chunks = chunks
        self.done = done
        self.paused = False
        self.working = False
        self.stopped = False

    def start(self) -> None:
        self.proto.transport.registerProducer(self, True)
        self._next()

    def _next(self) -> None:
        if self.paused or self.working or self.stopped:
            return
        self.working = True
        d = threads.deferToThread(self._gather)
        d.addBoth(self._made)

    def _gather(self) -> tuple[list[bytes], bool]:
        """In the thread: chunks until about THREADED_GATHER octets or THREADED_SLICE
        seconds of work, so that a thread hop (about 0.1 ms of CPU) is paid per slice, not per
        chunk; and whether the stream ended."""
        out: list[bytes] = []
        size = 0
        deadline = time.monotonic() + THREADED_SLICE
        for chunk in self.chunks:
            out.append(chunk)
            size += len(chunk)
            if size >= THREADED_GATHER or time.monotonic() >= deadline:
                return out, False
        return out, True

    def _made(self, result: object) -> None:
        self.working = False
        transport = self.proto.transport
        if self.stopped or transport is None or self.proto._closed:
            return
        if isinstance(result, Failure):
            log.error("stream-failed", error=repr(result.value))
            self.stopped = True
            transport.unregisterProducer()
            transport.loseConnection()
            return
        assert isinstance(result, tuple)
        chunks, ended = result
        if chunks:
            transport.writeSequence(chunks)
        if ended:
            self.stopped = True
            transport.unregisterProducer()
            self.done()
            return
        self._next()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._next()

    def stopProducing(self) -> None:
        self.stopped = True
        if not self.working:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()


class SessionProtocol(protocol.Protocol):
    transport: Any  # an ITCPTransport and ITLSTransport; Twisted's stubs say less

    def __init__(self, make_session: Callable[[SessionProtocol], Session]) -> None:
        self._make_session = make_session
        self.session: Session | None = None
        self._busy = False
        self._queued: list[bytes] = []
        self._queued_size = 0
        self._paused = False
        self._timer: DelayedCall | None = None
        self._closed = False
        self._poller: DelayedCall | None = None
        self._watched: list[str] = []
        self.tls_context: Any = None  # set by the factory when STARTTLS is possible

    # -- Twisted events -------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._no_delay()
        self.session = self._make_session(self)
        self._reset_timer()
        self._perform(self.session.greeting())

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
        self._no_delay()
        self.session = self._make_session(self)
        self._busy = True

    def release(self, outputs: list[Output]) -> None:
        self._busy = False
        self._reset_timer()
        self._perform(outputs)
        self._feed(b"")

    def dataReceived(self, data: bytes) -> None:
        if self.session is None or self._closed:
            return
        self._reset_timer()
        if self._busy:
            self._queued.append(data)
            self._queued_size += len(data)
            if self._queued_size > MAX_QUEUED_INPUT and not self._paused:
                self._paused = True
                self.transport.pauseProducing()
            return
        self._feed(data)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self._closed = True
        if self._poller is not None and self._poller.active():
            self._poller.cancel()
        self._unwatch()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.session is not None:
            try:
                self.session.connection_lost()
            except Exception as exc:
                log.error("session-cleanup-failed", error=repr(exc))

    # -- server events --------------------------------------------------------------------

    def shutdown(self) -> None:
        if self.session is not None and not self._closed:
            self._perform(self.session.shutdown())

    def mailbox_changed(self) -> None:
        if self.session is not None and not self._closed and not self._busy:
            self._perform(self.session.mailbox_changed())

    # -- outputs --------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Hand input to the session (b"" lets it go on with commands it holds buffered),
        then whatever was queued while it was busy."""
        if self.session is None or self._closed:
            return
        self._perform(self.session.data_received(data))
        while self._queued and not self._busy and not self._closed:
            data = b"".join(self._queued)
            self._queued.clear()
            self._queued_size = 0
            self._perform(self.session.data_received(data))
        if self._paused and not self._busy and not self._closed:
            self._paused = False
            self.transport.resumeProducing()

    def _poll(self) -> None:
        """A session that asks to be polled (IMAP IDLE: `poll_interval`, `watch_paths`) gets
        inotify watches on those directories, which call `mailbox_changed()` at once, and a
        timer as the fallback (every `poll_interval` without inotify, every 30 s with it).
        The store's sync costs three stat() calls when nothing changed."""
        interval = getattr(self.session, "poll_interval", None)
        if interval is None or self._closed:
            if self._poller is not None and self._poller.active():
                self._poller.cancel()
            self._poller = None
            self._unwatch()
            return
        paths = list(getattr(self.session, "watch_paths", ()))
        if paths and not self._watched:
            from mra.net.watch import watcher

            w = watcher()
            if all(w.watch(p, self._notified) for p in paths):
                self._watched = paths
                log.debug("watching", paths=",".join(paths))
            else:
                for p in paths:
                    w.unwatch(p, self._notified)
        if self._watched:
            interval = max(interval, WATCHED_POLL)
        if self._poller is None or not self._poller.active():
            self._poller = reactor.callLater(interval, self._polled)

    def _unwatch(self) -> None:
        if self._watched:
            from mra.net.watch import watcher

            for p in self._watched:
                watcher().unwatch(p, self._notified)
            self._watched = []

    def _notified(self) -> None:
        """inotify saw a change: look soon (a delivery makes several events at once)."""
        if self._closed:
            return
        if self._poller is not None and self._poller.active():
            self._poller.reset(NOTIFY_DELAY)
        else:
            self._poller = reactor.callLater(NOTIFY_DELAY, self._polled)

    def _polled(self) -> None:
        self._poller = None
        if self.session is None or self._closed:
            return
        if not self._busy:
            self._perform(self.session.mailbox_changed())
        self._poll()

    def _perform(self, outputs: list[Output]) -> None:
        self._perform_outputs(outputs)
        self._poll()

    def _perform_outputs(self, outputs: list[Output]) -> None:
        for i, out in enumerate(outputs):
            if self._closed:
                return
            if isinstance(out, Send):
                self.transport.write(out.data)
            elif isinstance(out, Close):
                self._closed = True
                self.transport.loseConnection()
                return
            elif isinstance(out, StartTLS):
                # Whatever the client sent after STARTTLS was sent in the clear: drop it.
                self._queued.clear()
                self._queued_size = 0
                self.transport.startTLS(self.tls_context)
                assert self.session is not None
                self._perform(self.session.tls_started())
            elif isinstance(out, Call):
                self._wait(outputs[i + 1 :])
                d = threads.deferToThread(out.fn)
                d.addBoth(self._called, out.then)
                return
            elif isinstance(out, Delay):
                self._wait(outputs[i + 1 :])
                reactor.callLater(out.seconds, self._resume, out.then)
                return
            elif isinstance(out, Stream):
                self._wait(outputs[i + 1 :])
                if out.threaded:
                    _ThreadedChunkProducer(self, out.chunks, self._resumer(out.then)).start()
                    return
                producer = _ChunkProducer(self, out.chunks, self._resumer(out.then))
                self.transport.registerProducer(producer, False)
                return

    def _wait(self, rest: list[Output]) -> None:
        if rest:
            raise RuntimeError("a blocking output must be the last of its list")
        self._busy = True

    def _called(self, result: object, then: Callable[[object], list[Output]]) -> None:
        value = result.value if isinstance(result, Failure) else result
        self._resume(lambda: then(value))

    def _resumer(self, then: Callable[[], list[Output]]) -> Callable[[], None]:
        return lambda: self._resume(then)

    def _resume(self, then: Callable[[], list[Output]]) -> None:
        self._busy = False
        if self._closed:
            return
        try:
            outputs = then()
        except Exception as exc:
            log.error("session-failed", error=repr(exc))
            self.transport.loseConnection()
            return
        self._perform(outputs)
        if not self._busy:
            self._feed(b"")

    # -- idle timeout ---------------------------------------------------------------------

    def _reset_timer(self) -> None:
        if self.session is None:
            return
        seconds = self.session.timeout
        if self._timer is not None and self._timer.active():
            self._timer.reset(seconds)
        else:
            self._timer = reactor.callLater(seconds, self._timed_out)

    def _timed_out(self) -> None:
        if self.session is None or self._closed:
            return
        if self._busy:
            self._reset_timer()  # our own work is not the client's silence
            return
        self._perform(self.session.idle_timeout())
