"""Postfix's socketmap protocol, server side, without I/O: LMTP routing for the cluster.

Postfix's `socketmap:inet:HOST:PORT:transport` table (socketmap_table(5); the protocol is
Sendmail 8.13's, each request and reply a netstring, `<length>:<bytes>,`) asks

    C: 31:transport alice@example.test,
    S: 34:OK lmtp:inet:[10.0.0.12]:24,       the user's node (mra/cluster/ring.py)
    S: 9:NOTFOUND ,                         nothing to say: Postfix tries its next key
    S: 23:PERM unknown map name,            TEMP, TIMEOUT and PERM carry a reason

on one connection that it keeps open between lookups. Only the `transport` map is served. A
key with an `@` is an envelope recipient: when the user database knows it (the lookup IMAP's
login uses, with local domains), it is routed by that user's name, so that the delivery
lands on the node holding the user's IDLE sessions; an address the database does not know (an
alias, a virtual address) is routed by the address itself, so that some node still gets it
(every node can deliver any recipient: the storage is shared; LMTP resolves aliases and
refuses unknown users there). A key without `@` (the domain keys Postfix tries after the
address) is NOTFOUND.

Bounds: a request longer than `[cluster] max_request` bytes, a length that is not digits, or
a netstring not ended by `,` ends the connection (the framing cannot be trusted past it), as
Sendmail's and Postfix's servers do. Only `[cluster] proxies` (the MTA hosts) may ask; a
connection from another address is closed at once.
"""

from __future__ import annotations

from mailstore.errors import MailError
from mra import log
from mra.cluster.authhttp import proxy_allowed
from mra.cluster.ring import Ring
from mra.session import Call, Close, Output, Send, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Connection, Services

MAP_NAME = "transport"
MAX_LENGTH_DIGITS = 10


def netstring(text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    return str(len(data)).encode("ascii") + b":" + data + b","


def transport(address: str, port: int) -> str:
    """The transport(5) value for an LMTP node: brackets keep Postfix from looking the
    host up (and let an IPv6 address through)."""
    return f"lmtp:inet:[{address}]:{port}"


class SocketmapSession(Session):
    """One connection of Postfix's socketmap client (see the module documentation)."""

    authenticated = True  # no login: the proxies' addresses are the check

    def __init__(self, conn: Connection, services: Services, ring: Ring) -> None:
        self.conn = conn
        self.services = services
        self.ring = ring
        cluster = services.config.cluster
        self.max_request = cluster.max_request
        self.proxies = cluster.proxies
        self.timeout = float(services.config.limits.auth_idle_timeout)
        self._buffer = bytearray()
        self._closed = False

    def greeting(self) -> list[Output]:
        if not self.conn.unix and not proxy_allowed(self.conn.peer_ip, self.proxies):
            log.warn("socketmap-refused", ip=self.conn.peer_ip)
            self._closed = True
            return [Close()]
        return []

    def data_received(self, data: bytes) -> list[Output]:
        if self._closed:
            return []
        self._buffer += data
        colon = self._buffer.find(b":", 0, MAX_LENGTH_DIGITS + 1)
        if colon < 0:
            if len(self._buffer) > MAX_LENGTH_DIGITS:
                return self._abort("a length that is not a number")
            return []
        digits = bytes(self._buffer[:colon])
        if not digits.isdigit():
            return self._abort("a length that is not a number")
        length = int(digits)
        if length > self.max_request:
            return self._abort(f"a request longer than {self.max_request} bytes")
        end = colon + 1 + length
        if len(self._buffer) < end + 1:
            return []
        if self._buffer[end] != ord(","):
            return self._abort("a netstring not ended by a comma")
        request = bytes(self._buffer[colon + 1 : end]).decode("utf-8", "surrogateescape")
        del self._buffer[: end + 1]
        # One request at a time: Postfix waits for each reply, and Call holds input back.
        return self._lookup(request)

    def _abort(self, why: str) -> list[Output]:
        log.warn("socketmap-protocol-error", conn=self.conn.id, error=why)
        self._closed = True
        self._buffer.clear()
        return [Close()]

    def _lookup(self, request: str) -> list[Output]:
        name, _, key = request.partition(" ")
        if name != MAP_NAME:
            return [Send(netstring("PERM unknown map name")), *self._more()]
        key = key.strip()
        if "@" not in key or "\0" in key:
            return [Send(netstring("NOTFOUND ")), *self._more()]
        authenticator = getattr(self.services.auth, "authenticator", None)
        lookup = getattr(authenticator, "lookup_for_sasl", None)

        def find() -> object:
            """In a thread: the user database's name for the recipient, if it has one."""
            user = lookup(key) if lookup is not None else None
            return getattr(user, "name", None)

        return [Call(find, lambda result: self._answer(key, result))]

    def _answer(self, key: str, result: object) -> list[Output]:
        if isinstance(result, BaseException):
            why = result.message if isinstance(result, MailError) else repr(result)
            log.error("socketmap-lookup-failed", key=key, error=why)
            return [Send(netstring("TEMP user database unavailable")), *self._more()]
        name = result if isinstance(result, str) else key
        node = self.ring.owner(name)
        if node is None:
            log.error("no-node-up", user=name, nodes=len(self.ring.nodes))
            return [Send(netstring("TEMP no mail node is up")), *self._more()]
        log.debug("socketmap-routed", key=key, user=name, node=node.name)
        return [Send(netstring("OK " + transport(node.address, node.lmtp))), *self._more()]

    def _more(self) -> list[Output]:
        """Requests already received behind the one answered (Postfix does not pipeline, but
        nothing forbids it)."""
        if self._buffer and not self._closed:
            return self.data_received(b"")
        return []
