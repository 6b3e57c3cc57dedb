"""The TCP connection class of our listeners (mra/net/listeners.py, `_Server`)."""

from __future__ import annotations

import subprocess
import sys

# Run in a fresh interpreter: what a class's objects may share is decided by its first objects
# (CPython 3.11's key-sharing), so the test must make the first ones.
BURST = r"""
import gc, socket
from mra.net.listeners import _Port, _Server

class Reactor:
    def addReader(self, r): pass
    def removeReader(self, r): pass
    def addWriter(self, w): pass
    def removeWriter(self, w): pass

class Protocol:
    def logPrefix(self): return "imap"

port = _Port(0, None, reactor=Reactor())
port._realPortNumber = 143
pairs = [socket.socketpair() for _ in range(64)]
# A burst: every connection of the burst is made before the first of them writes.
servers = [_Server(a, Protocol(), ("192.0.2.1", 5000 + n), port, n, Reactor())
           for n, (a, b) in enumerate(pairs)]
for s in servers:  # what Twisted sets later: at registerProducer, at the first write
    s.producer = object()
    s.streamingProducer = True
    s.dataBuffer = b"* OK\r\n"
    s.offset = 0
    s.producerPaused = False
own = sum(any(type(r) is dict for r in gc.get_referents(s)) for s in servers)
print(own, servers[0].logstr, repr(servers[0]))
"""


def test_attack_a_burst_of_connections_gives_each_a_dict_of_its_own() -> None:
    """When a worker's first connections came in a burst, Twisted's attributes set after the
    first write (`dataBuffer`, `offset`, `producer`) came too late for the class to share their
    names, and every connection got a dictionary of its own: 832 octets each."""
    out = subprocess.run(
        [sys.executable, "-c", BURST], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split(None, 1)
    assert out[0] == "0", f"{out[0]} of 64 connections hold a dict of their own"
    assert out[1].strip() == "Protocol,0,192.0.2.1 <Protocol #0 on 143>"
