"""The server's side of the admin socket and of the metrics endpoint (Twisted).

`[listen] admin`: a unix socket, root's and mode 0600 unless its table says otherwise (the
server holds it open after dropping privileges; who may connect is the file's permissions).
One JSON request line, one answer line (protocol.py): `who`, `kick`, `reload`, `stats`.

`[listen] metrics`: HTTP, `GET /metrics` only, the Prometheus text format (mra/metrics.py).
twisted.web parses the request and bounds its size; every other path is a 404.

With `[server] workers` above 1 each worker answers for itself: the admin socket and the
metrics port are shared like the mail ports, so a request reaches one worker (README:
Operating the server says so; a merge over the workers' control sockets is not built yet).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from twisted.internet import protocol
from twisted.protocols.basic import LineOnlyReceiver
from twisted.web import resource, server

from mra import log, metrics
from mra.admin.protocol import MAX_REQUEST, AdminError, Request, encode_answer, parse_request

if TYPE_CHECKING:
    from mra.net.adapter import SessionProtocol
    from mra.net.server import Server

KICK_TEXT = "Disconnected by the administrator"


def session_info(p: SessionProtocol) -> dict[str, object]:
    """One line of `mra who`: what the session-end line would say now."""
    session = p.session
    conn = getattr(session, "conn", None)
    user = getattr(session, "user", None)
    return {
        "proto": p.protocol,
        "listener": getattr(conn, "listener", None),
        "user": getattr(user, "name", None),
        "ip": getattr(conn, "peer_ip", None),
        "conn": getattr(conn, "id", None),
        "duration": round(time.monotonic() - p.started, 3),
        "in": p.bytes_in,
        "out": p.bytes_out,
        "idle": getattr(session, "idle_tag", None) is not None,
    }


class Admin:
    """The commands, over one process's `Server`."""

    def __init__(self, srv: Server) -> None:
        self.server = srv

    def run(self, req: Request) -> object:
        if req.command == "who":
            wanted = req.args.get("user")
            rows = [session_info(p) for p in list(self.server.connections)]
            return [r for r in rows if wanted is None or r["user"] == wanted]
        if req.command == "kick":
            user, ip = req.args["user"], req.args.get("ip")
            kicked = 0
            for p in list(self.server.connections):
                info = session_info(p)
                if info["user"] == user and (ip is None or info["ip"] == ip):
                    p.disconnect(KICK_TEXT)
                    kicked += 1
            log.info("admin-kick", user=user, ip=ip, kicked=kicked)
            return {"kicked": kicked}
        if req.command == "reload":
            self.server.reload()
            return {"reloaded": True}
        if req.command == "stats":
            return metrics.REGISTRY.snapshot()
        raise AdminError(f"no such command: {req.command!r}")  # parse_request keeps this out


class AdminProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_REQUEST

    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        self.answered = False

    def lineReceived(self, line: bytes) -> None:
        if self.answered:
            return  # one request per connection
        self.answered = True
        try:
            req = parse_request(line.rstrip(b"\r"))
            answer = encode_answer(self.admin.run(req))
        except AdminError as exc:
            log.warn("admin-refused", error=str(exc))
            answer = encode_answer(error=str(exc))
        except Exception as exc:  # a bug must answer, not hang the administrator's command
            log.error("admin-failed", error=repr(exc))
            answer = encode_answer(error=f"internal error: {exc!r}")
        self._reply(answer)

    def dataReceived(self, data: bytes) -> None:
        if self.answered:
            return  # after the answer, input is read and dropped, never held
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse an over-long request without holding it: answer, stop writing, and drop
        what else comes until the client closes (closing with its data unread would reset
        the connection, losing the answer), for at most TIMEOUT seconds."""
        from mra.admin.protocol import TIMEOUT
        from mra.net.reactor import reactor

        self.answered = True
        self._buffer = b""
        log.warn("admin-refused", error="request too long")
        transport: Any = self.transport
        transport.write(encode_answer(error=f"request longer than {MAX_REQUEST} octets"))
        transport.loseWriteConnection()
        self._deadline = reactor.callLater(TIMEOUT, transport.abortConnection)

    def connectionLost(self, reason: object = None) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _reply(self, answer: bytes) -> None:
        transport: Any = self.transport
        transport.write(answer)
        transport.loseConnection()


class AdminFactory(protocol.Factory):
    def __init__(self, srv: Server) -> None:
        self.admin = Admin(srv)

    def buildProtocol(self, addr: object) -> AdminProtocol:
        p = AdminProtocol(self.admin)
        p.factory = self
        return p


class _Metrics(resource.Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        if request.path != b"/metrics":
            request.setResponseCode(404)
            return b"not found: the metrics are at /metrics\n"
        request.setHeader(b"content-type", metrics.CONTENT_TYPE.encode())
        return metrics.render(metrics.REGISTRY.snapshot()).encode()


def metrics_factory() -> server.Site:
    site = server.Site(_Metrics())  # type: ignore[no-untyped-call]
    site.noisy = False
    site.displayTracebacks = False
    site.log = lambda request: None  # type: ignore[method-assign]  # scrapes are not events
    return site


def collectors(srv: Server) -> None:
    """Gauges read when scraped: open connections by listener, IDLE sessions, thread pools."""
    from mra.net.reactor import reactor

    def collect(reg: metrics.Registry) -> None:
        by_listener: dict[str, int] = {}
        idle = 0
        for p in list(srv.connections):
            info = session_info(p)
            name = str(info["listener"] or "?")
            by_listener[name] = by_listener.get(name, 0) + 1
            idle += bool(info["idle"])
        metrics.OPEN.values.clear()
        for name in srv.sockets:
            if name not in ("admin", "metrics"):
                metrics.OPEN.set(name, value=by_listener.get(name, 0))
        metrics.IDLE.set(value=idle)
        pools: dict[str, Any] = {"reactor": reactor.getThreadPool(), **srv.pools}
        for name, pool in pools.items():
            metrics.QUEUE.set(name, value=pool.q.qsize())
            metrics.BUSY.set(name, value=len(pool.working))
        metrics.WORKERS.set(value=1)

    metrics.REGISTRY.collectors.append(collect)
