"""The TCP transport of our listeners: Twisted's, except that a write goes out at once.

Twisted's `FileDescriptor.write` only appends to a buffer and registers the socket for writing
(`epoll_ctl`); the reactor sends on its next turn, after another `epoll_wait`, and unregisters
the socket once the buffer is empty (`epoll_ctl` again). For a protocol that answers each
command with one write, that is three system calls and a turn of the reactor more per command
than the one `send` it needs: `strace -c -f` on a worker counted, per IMAP NOOP, 2 `epoll_wait`,
2 `epoll_ctl`, 1 `recvfrom`, 1 `sendto` before, 1 `epoll_wait`, 1 `recvfrom`, 1 `sendto` after.

So `write` sends at once when nothing is buffered (Twisted's buffer empty; the connection open,
not closing, aborted or half-closed): what the kernel takes is gone, and what it does not take (its
socket buffer is full: the client is not reading) goes into Twisted's buffer as before, to be
sent when the socket is writable. Once anything is buffered, every write queues behind it, so
the order of the bytes never changes.

At most `bufferSize` (64 KiB) octets go out that way per read of the socket (`doRead`); past
that, writes take Twisted's way as they all did. That keeps back-pressure as it was: the
kernel's send buffer grows to megabytes (4 MB here), and writing straight into it, a read of
pipelined CAPABILITYs (64 KiB asking for 1.3 MB of answers) would fill it before Twisted's
buffer held anything, so the transport would never pause its producer (mra/net/adapter.py,
"Output") and `max_unsent_output` would count nothing. With the allowance, the answers to one
read fill Twisted's buffer past 64 KiB, the producer is paused and what follows is counted,
exactly as before; a command's answer, or a few pipelined ones, still goes at once.

A write is one `send` system call, so the callers write each answer whole: the adapter joins
the outputs of one batch of commands and gathers a stream's chunks (mra/net/adapter.py); the
TLS layer (mra/net/tls.py) writes a record's ciphertext at a time; COMPRESS's deflate one
flushed block per write.

The transport classes are chosen by the port (`Port.transport`, mra/net/listeners.py): the TCP
port's connections are `DirectWriteServer`s (with their attributes made at once), the unix
sockets' `DirectWriteUnixServer`s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import tcp, unix


class _DirectWrite:
    """Mixed into a Twisted stream connection class, before it: writes sent at once when
    nothing waits, up to `bufferSize` octets per read."""

    _direct_left = 0  # octets that may still go out at once until the next read

    def doRead(self) -> Any:
        this: Any = self
        self._direct_left = this.bufferSize
        return super().doRead()  # type: ignore[misc]

    def write(self, data: bytes) -> None:
        this: Any = self  # Twisted's attributes, which its stubs do not declare
        if (
            type(data) is not bytes
            or len(data) > self._direct_left
            or this.dataBuffer
            or this._tempDataBuffer
            or not this.connected
            or this.disconnecting
            or this._aborting
            or this._writeDisconnecting
            or this.TLS
            or not data
        ):
            super().write(data)  # type: ignore[misc]  # behind what waits; or Twisted's checks
            return
        sent = this.writeSomeData(data)
        if isinstance(sent, int):
            self._direct_left -= sent
            if sent == len(data):
                return
            data = data[sent:]
        # The kernel took part of it (or the connection broke: the reactor's next write
        # attempt finds out, as it would have without us, and the connection is lost).
        super().write(data)  # type: ignore[misc]

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        self.write(b"".join(iovec))


class DirectWriteServer(_DirectWrite, tcp.Server):
    """A server-side TCP connection whose writes are sent at once when nothing waits."""


class DirectWriteUnixServer(_DirectWrite, unix.Server):
    """The same for a unix socket's connection (LMTP, the auth socket)."""
