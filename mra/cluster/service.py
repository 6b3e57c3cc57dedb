"""What a `mra serve` process runs for `[cluster]`: the ring of nodes, their health checks, the
`auth_http` endpoint for nginx and the `socketmap` table for Postfix.

Any process may run them: a node (the nodes then answer for each other), or a process of
their own with no mail listener (what `make cluster` does, as a "director"). Every process
that answers keeps its own health view; two answering processes can disagree for at most a
health interval after a node changes state, during which a user's new sessions may land on
two nodes. That costs nothing but IDLE latency: the storage is shared and locked
(mailstore/shared.py), and the next check makes them agree again.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from mailstore.config import Config, Listener
from mra.cluster.authhttp import Decision, proxy_allowed
from mra.cluster.ring import Ring, nodes_of

if TYPE_CHECKING:
    from mra.cluster.health import HealthChecker
    from mra.context import Connection, Services
    from mra.net.server import Server
    from mra.session import Session

AUTH_HTTP = "auth_http"
SOCKETMAP = "socketmap"


def cluster_listeners(config: Config) -> dict[str, Listener]:
    """The listeners `[cluster]` asks for, by the server's listener name."""
    found: dict[str, Listener] = {}
    if config.cluster.auth_http is not None:
        found[AUTH_HTTP] = config.cluster.auth_http
    if config.cluster.socketmap is not None:
        found[SOCKETMAP] = config.cluster.socketmap
    return found


def exempt_proxy(config: Config, peer_ip: str) -> bool:
    """A node's connection from a proxy carries many users: it is exempt from the per-address
    limits (the proxy's own `auth_http` request was throttled already)."""
    return bool(config.cluster.nodes) and proxy_allowed(peer_ip, config.cluster.proxies)


class ClusterService:
    """The process's ring and health checker."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ring = Ring(nodes_of(config.cluster))
        self.health: HealthChecker | None = None

    def start(self, server: Server) -> None:
        from mra.authserver.policy import Policy
        from mra.cluster.health import HealthChecker
        from mra.cluster.web import AuthHttpResource, adopt, make_site
        from mra.net.reactor import reactor

        cluster = self.config.cluster
        self.health = HealthChecker(self.ring, cluster.health_interval, cluster.health_timeout)
        reactor.callWhenRunning(self.health.start)
        sock: socket.socket | None = server.sockets.get(AUTH_HTTP)
        if sock is not None:
            assert server.services is not None
            decision = Decision(
                Policy(server.services, "auth_http"), self.ring, cluster.max_login_attempts
            )
            res = AuthHttpResource(
                decision,
                cluster.proxies,
                lambda: server.pools["auth"],
                unix=sock.family == socket.AF_UNIX,
            )
            adopt(sock, make_site(res, cluster.max_request))


def socketmap_session(conn: Connection, services: Services) -> Session:
    """The server's session factory for the `socketmap` listener."""
    from mra.cluster.socketmap import SocketmapSession

    service = services.cluster
    assert isinstance(service, ClusterService)
    return SocketmapSession(conn, services, service.ring)
