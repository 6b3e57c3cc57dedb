"""The mail nodes of `[cluster] nodes`, as the configuration writes them.

A node is an IP address, optionally followed by the ports where it differs from the cluster's
(`imap_port`, `pop3_port`, `lmtp_port`):

    nodes = ["10.0.0.11", "10.0.0.12", "10.0.0.13 imap=1143 pop3=1110 lmtp=1024"]

An address, not a host name: nginx's `Auth-Server` must be one (it connects to what it is given,
without resolving), and Postfix's `lmtp:inet:` next hop is written as `[address]` so that no MX
lookup happens. The node's *name* for the hash (mra/cluster/ring.py) is the text as written,
so that changing one node's ports moves its users, and nothing else does.

Twisted-free, so that `mra check-config` (mailstore/config.py) checks the entries with the
same code the server runs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Node", "parse_node"]

_PORT_KEYS = ("imap", "pop3", "lmtp")


@dataclass(frozen=True)
class Node:
    name: str  # the entry as written: what the hash ranks
    address: str
    imap: int
    pop3: int
    lmtp: int

    def port(self, protocol: str) -> int:
        """The node's port for nginx's `Auth-Protocol` ("imap" or "pop3")."""
        return self.pop3 if protocol == "pop3" else self.imap


def parse_node(text: str, imap: int, pop3: int, lmtp: int) -> Node:
    """One `[cluster] nodes` entry; ValueError with a message fit for a configuration problem."""
    words = text.split()
    if not words:
        raise ValueError("an empty entry")
    address = words[0]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IP address (nginx needs one)") from None
    ports = {"imap": imap, "pop3": pop3, "lmtp": lmtp}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or key not in _PORT_KEYS:
            raise ValueError(f"{word!r}: expected imap=PORT, pop3=PORT or lmtp=PORT")
        if not value.isascii() or not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError(f"{word!r}: a port is a number from 1 to 65535")
        ports[key] = int(value)
    return Node(" ".join(words), address, ports["imap"], ports["pop3"], ports["lmtp"])
