"""Health checks of the mail nodes: a node that does not greet in time is left out.

Every `[cluster] health_interval` seconds each node's IMAP port is connected to; the node is
up when its greeting (`* OK`, or `+OK` where the port is POP3's) arrives within
`health_timeout` seconds, down otherwise: refused, timed out, or a greeting that says
anything else (`* BYE` from a node over its connection limit or shutting down). A greeting,
not a bare connect: the kernel completes the handshake into the listen backlog of a process
whose event loop is stuck, and nginx would then hand that process its users.

A down node's users go to their next-ranked node at their next login (mra/cluster/ring.py);
when it greets again they come back. Changes are logged once (`node-down`, `node-up`), not
every check. Each check is a connection in the node's log: at the default of one a second
that is 86,400 lines a day per checking process, the price of noticing a dead node within
about a second.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol
from twisted.internet.task import LoopingCall

from mailstore.clusternodes import Node
from mra import log
from mra.cluster.ring import Ring
from mra.net.reactor import reactor

MAX_GREETING = 1024  # bytes of a greeting we wait through for its end of line


class _Probe(protocol.Protocol):
    def __init__(self, done: _Done) -> None:
        self.done = done
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\n" in self.buffer or len(self.buffer) > MAX_GREETING:
            line = self.buffer.split(b"\n", 1)[0]
            self.done(line.startswith((b"* OK", b"+OK")))
            transport: Any = self.transport
            transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        self.done(False)


class _Done:
    """The one verdict of one probe: the first call counts."""

    def __init__(self, checker: HealthChecker, node: Node) -> None:
        self.checker = checker
        self.node = node
        self.called = False
        self.timer: object = None

    def __call__(self, up: bool) -> None:
        if self.called:
            return
        self.called = True
        timer = self.timer
        if timer is not None and timer.active():  # type: ignore[attr-defined]
            timer.cancel()  # type: ignore[attr-defined]
        self.checker.record(self.node, up)


class _ProbeFactory(protocol.ClientFactory):
    def __init__(self, done: _Done) -> None:
        self.done = done

    def buildProtocol(self, addr: object) -> _Probe:
        return _Probe(self.done)

    def clientConnectionFailed(self, connector: object, reason: object) -> None:
        self.done(False)


class HealthChecker:
    """Checks every node of `ring` each `interval` seconds, from the reactor."""

    def __init__(self, ring: Ring, interval: float, timeout: float) -> None:
        self.ring = ring
        self.interval = interval
        self.timeout = timeout
        self._loop = LoopingCall(self.check_all)
        self._probing: set[str] = set()

    def start(self) -> None:
        if self.interval > 0:
            self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def check_all(self) -> None:
        for node in self.ring.nodes:
            if node.name in self._probing:
                continue  # the last probe has not ended yet: it will say
            self._probing.add(node.name)
            done = _Done(self, node)
            connector = reactor.connectTCP(
                node.address, node.imap, _ProbeFactory(done), timeout=self.timeout
            )

            def expire(done: _Done = done, connector: object = connector) -> None:
                done(False)
                connector.disconnect()  # type: ignore[attr-defined]

            done.timer = reactor.callLater(self.timeout, expire)

    def record(self, node: Node, up: bool) -> None:
        self._probing.discard(node.name)
        if self.ring.mark(node, up):
            if up:
                log.info("node-up", node=node.name)
            else:
                log.warn("node-down", node=node.name)
