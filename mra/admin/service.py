"""The server's side of the admin socket and of the metrics endpoint (Twisted).

`[listen] admin`: a unix socket, root's and mode 0600 unless its table says otherwise (the
server holds it open after dropping privileges; who may connect is the file's permissions).
One JSON request line, one answer line (protocol.py): `who`, `kick`, `reload`, `stats`.

`[listen] metrics`: HTTP, `GET /metrics` only, the Prometheus text format (mra/metrics.py).
twisted.web parses the request; its line and headers are bounded by `[admin]
metrics_max_request` octets, a request with a body is refused (413) without reading it, and
every other path is a 404.

With `[server] workers` above 1 the admin socket and the metrics port are shared like the mail
ports, so a request reaches one worker; that worker answers for the whole server by asking the
others over their control sockets (mra/net/control.py) and merging their answers with its own
(`merge_results`). A worker that does not answer is named, never waited for past
`[admin] worker_timeout`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, protocol
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from mra import log, metrics
from mra.admin.protocol import (
    AdminError,
    Request,
    encode_answer,
    encode_request,
    parse_request,
)

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
        "pid": os.getpid(),
        "worker": WORKER[0],
    }


WORKER: list[int | None] = [None]  # this process's worker number (None: the only process)
UNANSWERED = metrics.UNANSWERED.name


def merge_results(command: str, results: list[object]) -> object:
    """The answers of several workers to one command as the server's one answer. A result not
    of the command's shape raises AdminError (the worker is then reported as unanswered)."""
    shape = list if command in ("who", "stats") else dict
    checked: list[Any] = []
    for result in results:
        if not isinstance(result, shape):
            raise AdminError(f"answered {type(result).__name__}, not a {shape.__name__}")
        checked.append(result)
    try:
        if command == "who":
            return [row for result in checked for row in result]
        if command == "kick":
            kicked = [r.get("kicked") for r in checked]
            if not all(isinstance(k, int) and not isinstance(k, bool) for k in kicked):
                raise AdminError("answered no number of sessions kicked")
            return {"kicked": sum(kicked)}
        if command == "reload":
            return {"reloaded": True, "workers": len(checked)}
        if command == "stats":
            return metrics.merge(checked)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AdminError(f"answered something else ({exc!r})") from None
    raise AdminError(f"no such command: {command!r}")


class Admin:
    """The commands, over one process's `Server`. `on_control`: this answers a sibling on
    this worker's control socket, for this worker only, whatever the request says."""

    def __init__(self, srv: Server, on_control: bool = False) -> None:
        self.server = srv
        self.on_control = on_control

    def gathered(self, req: Request) -> defer.Deferred[tuple[object, list[dict[str, object]]]]:
        """The server's answer: this worker's, merged with the other workers' when there are
        others and the request is not `local`; and the workers that did not answer."""
        result = self.run(req)
        control = getattr(self.server, "control", None)
        if self.on_control or req.local or control is None:
            return defer.succeed((result, []))
        from mra.net.reactor import reactor

        limits = self.server.config.admin
        line = encode_request(req.command, local=True, **req.args)
        d = control.gather(reactor, line, limits.worker_timeout, limits.max_answer)

        def merged(answers: list[tuple[int, object]]) -> tuple[object, list[dict[str, object]]]:
            results = [result]
            unanswered: list[dict[str, object]] = []
            for number, value in answers:
                if not isinstance(value, AdminError):
                    try:
                        merge_results(req.command, [value])
                    except AdminError as exc:
                        value = exc
                if isinstance(value, AdminError):
                    log.warn("admin-worker-unanswered", worker=number, error=str(value))
                    unanswered.append({"worker": number, "error": str(value)})
                else:
                    results.append(value)
            total = merge_results(req.command, results)
            if req.command == "stats" and isinstance(total, list):
                total = [fam for fam in total if fam.get("name") != UNANSWERED]
                total.append(
                    {
                        "name": UNANSWERED,
                        "type": "gauge",
                        "help": metrics.UNANSWERED.help,
                        "samples": [[{}, float(len(unanswered))]],
                    }
                )
            return total, unanswered

        out: defer.Deferred[tuple[object, list[dict[str, object]]]] = d.addCallback(merged)
        return out

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

    def __init__(self, admin: Admin) -> None:
        self.admin = admin
        self.answered = False
        self.limits = admin.server.config.admin
        self.MAX_LENGTH = self.limits.max_request

    def lineReceived(self, line: bytes) -> None:
        if self.answered:
            return  # one request per connection
        self.answered = True
        try:
            req = parse_request(
                line.rstrip(b"\r"), self.limits.max_request, self.limits.max_argument
            )
        except AdminError as exc:
            self._failed(exc)
            return
        d: defer.Deferred[Any] = defer.maybeDeferred(self.admin.gathered, req)
        d.addCallback(lambda got: self._reply(encode_answer(got[0], unanswered=got[1])))
        d.addErrback(self._failure)

    def _failure(self, failure: Failure) -> None:
        self._failed(failure.value)

    def _failed(self, exc: BaseException | None) -> None:
        if isinstance(exc, AdminError):
            log.warn("admin-refused", error=str(exc))
            self._reply(encode_answer(error=str(exc)))
        else:  # a bug must answer, not hang the administrator's command
            log.error("admin-failed", error=repr(exc))
            self._reply(encode_answer(error=f"internal error: {exc!r}"))

    def dataReceived(self, data: bytes) -> None:
        if self.answered:
            return  # after the answer, input is read and dropped, never held
        super().dataReceived(data)  # type: ignore[no-untyped-call]

    def lineLengthExceeded(self, line: bytes) -> None:
        """Refuse an over-long request without holding it: answer, stop writing, and drop
        what else comes until the client closes (closing with its data unread would reset
        the connection, losing the answer), for at most `[admin] timeout` seconds."""
        from mra.net.reactor import reactor

        self.answered = True
        self._buffer = b""
        log.warn("admin-refused", error="request too long")
        transport: Any = self.transport
        transport.write(encode_answer(error=f"request longer than {self.MAX_LENGTH} octets"))
        transport.loseWriteConnection()
        self._deadline = reactor.callLater(self.limits.timeout, transport.abortConnection)

    def connectionLost(self, reason: object = None) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _reply(self, answer: bytes) -> None:
        transport: Any = self.transport
        transport.write(answer)
        transport.loseConnection()


class AdminFactory(protocol.Factory):
    def __init__(self, srv: Server, on_control: bool = False) -> None:
        self.admin = Admin(srv, on_control)

    def buildProtocol(self, addr: object) -> AdminProtocol:
        p = AdminProtocol(self.admin)
        p.factory = self
        return p


class _Metrics(resource.Resource):
    isLeaf = True

    def __init__(self, admin: Admin) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.admin = admin

    def render_GET(self, request: Any) -> bytes | int:
        if request.path != b"/metrics":
            request.setResponseCode(404)
            return b"not found: the metrics are at /metrics\n"
        request.setHeader(b"content-type", metrics.CONTENT_TYPE.encode())
        d = self.admin.gathered(Request("stats"))

        def write(got: tuple[object, list[dict[str, object]]]) -> None:
            if not request._disconnected:
                request.write(metrics.render(got[0]).encode())  # type: ignore[arg-type]
                request.finish()

        def failed(failure: Any) -> None:
            log.error("metrics-failed", error=repr(failure.value))
            if not request._disconnected:
                request.setResponseCode(500)
                request.finish()

        d.addCallbacks(write, failed)
        return server.NOT_DONE_YET


class _Discard:
    """The transfer decoder of a refused request body: what arrives is dropped, never held."""

    def dataReceived(self, data: bytes) -> None:
        pass

    def noMoreData(self) -> None:
        pass


class _MetricsChannel(http.HTTPChannel):
    """twisted.web's HTTP/1.1 channel, with `[admin] metrics_max_request` as the bound of a
    request's line and headers, and no request body taken: a scrape is a GET. A request that
    announces a body is answered 413 and half-closed; what it still sends is dropped as it
    comes (closing with it unread would reset the connection and lose the answer), for at
    most `refusal_timeout` seconds."""

    refusal_timeout = 30
    _refusal_deadline: Any = None

    def allHeadersReceived(self) -> None:
        this: Any = self
        if this.length or (this._transferDecoder is not None and this.length is None):
            from mra.net.reactor import reactor

            this._transferDecoder = _Discard()
            this.transport.write(
                b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            this.transport.loseWriteConnection()
            self._refusal_deadline = reactor.callLater(
                self.refusal_timeout, this.transport.abortConnection
            )
            return
        super().allHeadersReceived()  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if self._refusal_deadline is not None and self._refusal_deadline.active():
            self._refusal_deadline.cancel()
        super().connectionLost(reason)  # type: ignore[no-untyped-call]


def metrics_factory(srv: Server) -> server.Site:
    site = server.Site(_Metrics(Admin(srv)))  # type: ignore[no-untyped-call]
    limit = srv.config.admin.metrics_max_request

    class Channel(_MetricsChannel):
        totalHeadersSize = limit
        refusal_timeout = srv.config.admin.timeout

    site.protocol = Channel  # type: ignore[assignment]
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
        metrics.UNANSWERED.set(value=0)  # the worker that gathers says how many did not

    metrics.configure(srv.config.admin.metrics_max_series)

    metrics.REGISTRY.collectors.append(collect)
