"""The contract between a sans-I/O protocol session (POP3, IMAP) and the code that moves bytes.

A session never touches a socket, a thread or a timer. It is fed events and answers with a list
of outputs, which the adapter (mra/net/adapter.py, the only Twisted code) carries out in order:

    Send(data)            write bytes
    Stream(chunks, then, threaded=False)
                          write an iterator of byte chunks with back-pressure (RETR, FETCH of a
                          big body), then call `then()` for more outputs. `threaded=True`: each
                          `next(chunks)` runs in the thread pool, one at a time, because making
                          a chunk reads and parses messages (FETCH); the reactor only writes
    Call(fn, then, pool="")
                          run the blocking `fn()` in the thread pool (opening a big mailbox);
                          `then(result_or_exception)` gives the next outputs. Input is held
                          back until it completes, so commands run in order. `pool="auth"`:
                          a password check, run in a pool of its own (`[auth]
                          max_concurrent_hashes` threads), so a flood of logins never takes
                          the threads that mailbox work needs
    Delay(seconds, then)  wait (the pause after a failed login), then `then()`
    Spawn(fn, then, pool="")
    Timer(seconds, then)  as Call and Delay, but input is NOT held back meanwhile: for protocols
                          whose requests carry their own ids and are answered in any order
                          (the Dovecot auth protocol, mra/authserver). `then` may give only
                          Send, Close, Spawn and Timer outputs; nothing runs once the
                          connection is gone
    StartTLS()            start TLS now; input already received after the command is dropped
                          (CVE-2011-0411: nothing sent in plaintext may run as if encrypted)
    StartCompression(pending, level)
                          from here on the connection is raw DEFLATE (RFC 1951) both ways,
                          inside TLS when TLS is on (IMAP COMPRESS, RFC 4978): everything
                          written after it is compressed at zlib `level` and flushed after
                          each write, everything read is inflated before the session sees
                          it. `pending` is what the session had received after the command
                          (already compressed): it is inflated first, then what the adapter
                          held. Not blocking: the outputs after it are compressed
    Close()               close after what was written so far is flushed

Events a session receives: `greeting()`, `data_received(bytes)`, `tls_started()`,
`idle_timeout()`, `login_timeout()`, `shutdown()` (the server is stopping), `mailbox_changed()`
(IDLE push) and `connection_lost()`. `timeout` says how long the connection may stay silent
before `idle_timeout()`; the session changes it as its state changes (short before login).
`authenticated` turns true once a login succeeds: until then the adapter holds the connection
to an absolute deadline (`[limits] login_timeout`), however busy the client keeps it, and
calls `login_timeout()` when it passes.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Output:
    __slots__ = ()


class Send(Output):
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Send({self.data!r})"


class Stream(Output):
    __slots__ = ("chunks", "then", "threaded")

    def __init__(
        self, chunks: Iterator[bytes], then: Callable[[], list[Output]], threaded: bool = False
    ) -> None:
        self.chunks = chunks
        self.then = then
        self.threaded = threaded


class Call(Output):
    __slots__ = ("fn", "pool", "then")

    def __init__(
        self, fn: Callable[[], object], then: Callable[[object], list[Output]], pool: str = ""
    ) -> None:
        self.fn = fn
        self.then = then
        self.pool = pool


class Delay(Output):
    __slots__ = ("seconds", "then")

    def __init__(self, seconds: float, then: Callable[[], list[Output]]) -> None:
        self.seconds = seconds
        self.then = then


class Spawn(Output):
    __slots__ = ("fn", "pool", "then")

    def __init__(
        self, fn: Callable[[], object], then: Callable[[object], list[Output]], pool: str = ""
    ) -> None:
        self.fn = fn
        self.then = then
        self.pool = pool


class Timer(Output):
    __slots__ = ("seconds", "then")

    def __init__(self, seconds: float, then: Callable[[], list[Output]]) -> None:
        self.seconds = seconds
        self.then = then


class StartTLS(Output):
    __slots__ = ()


class StartCompression(Output):
    __slots__ = ("level", "pending")

    def __init__(self, pending: bytes, level: int) -> None:
        self.pending = pending
        self.level = level


class Close(Output):
    __slots__ = ()

    def __repr__(self) -> str:
        return "Close()"


class Session:
    """Base of the protocol sessions: the events, all of them doing nothing by default."""

    timeout: float = 60.0
    authenticated: bool = False  # set True by the session once a login succeeds

    def greeting(self) -> list[Output]:
        return []

    def refuse(self, text: str) -> list[Output]:
        """The access map or a limit refuses the connection: say so in the protocol, close."""
        return [Close()]

    def data_received(self, data: bytes) -> list[Output]:
        raise NotImplementedError

    def tls_started(self) -> list[Output]:
        return []

    def idle_timeout(self) -> list[Output]:
        return [Close()]

    def login_timeout(self) -> list[Output]:
        """Not logged in by the deadline: by default the goodbye of an idle timeout, as
        Dovecot says "Disconnected for inactivity" when its login time runs out."""
        return self.idle_timeout()

    def shutdown(self) -> list[Output]:
        return [Close()]

    def mailbox_changed(self) -> list[Output]:
        return []

    def connection_lost(self) -> None:
        return None


def run_blocking(outputs: list[Output]) -> list[Output]:
    """Carry out Call, Delay, Spawn, Timer and Stream outputs synchronously, keeping the rest
    (for tests)."""
    done: list[Output] = []
    queue = list(outputs)
    while queue:
        out = queue.pop(0)
        if isinstance(out, Call | Spawn):
            try:
                result: object = out.fn()
            except Exception as exc:
                result = exc
            queue[:0] = out.then(result)
        elif isinstance(out, Delay | Timer):
            queue[:0] = out.then()
        elif isinstance(out, Stream):
            done.append(Send(b"".join(out.chunks)))
            queue[:0] = out.then()
        else:
            done.append(out)
    return done
