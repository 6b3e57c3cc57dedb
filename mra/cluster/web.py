"""The `auth_http` listener: twisted.web carrying mra/cluster/authhttp.py's decisions.

The HTTP side is kept to what nginx sends: a GET with a few headers and no body. twisted.web
bounds what a request may make us hold: `[cluster] max_request` bytes of headers in all (nginx
sends a few hundred), 500 headers, and an idle connection is closed after 60 s (nginx opens
one connection per request, HTTP/1.0, and closes it once answered).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from twisted.internet import threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import http, resource, server

from mra import log
from mra.cluster.authhttp import AuthAnswer, Decision, parse_query, proxy_allowed
from mra.net.reactor import reactor

IDLE_TIMEOUT = 60


class AuthHttpResource(resource.Resource):
    isLeaf = True

    def __init__(
        self,
        decision: Decision,
        proxies: tuple[str, ...],
        pool: Callable[[], ThreadPool],
        unix: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.decision = decision
        self.proxies = proxies
        self.pool = pool
        self.unix = unix  # a unix socket: its permissions say who may ask

    def render_GET(self, request: server.Request) -> bytes | int:
        address = request.getClientAddress()  # type: ignore[no-untyped-call]
        peer = getattr(address, "host", "")
        if not self.unix and not proxy_allowed(peer, self.proxies):
            log.warn("auth-http-refused", ip=peer)
            request.setResponseCode(http.FORBIDDEN)
            return b""
        headers = {
            name.decode("latin-1").lower(): values[-1].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders()
        }
        query = parse_query(headers)
        if isinstance(query, str):
            log.warn("auth-http-unsupported", ip=peer, why=query)
            self._send(request, AuthAnswer((("Auth-Status", query),)))
            return server.NOT_DONE_YET
        step = self.decision.start(query)
        if isinstance(step, AuthAnswer):
            self._send(request, step)
            return server.NOT_DONE_YET
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        d = threads.deferToThreadPool(reactor, self.pool(), step)

        def done(result: object) -> None:
            if isinstance(result, Failure):
                result = result.value
            answer = self.decision.finish(query, result)
            if not gone:
                self._send(request, answer)

        d.addBoth(done)
        return server.NOT_DONE_YET

    def _send(self, request: server.Request, answer: AuthAnswer) -> None:
        def write() -> None:
            if request.finished or request.channel is None:
                return
            for name, value in answer.headers:
                request.setHeader(name, value)  # type: ignore[no-untyped-call]
            request.setHeader("Content-Length", "0")  # type: ignore[no-untyped-call]
            request.finish()  # type: ignore[no-untyped-call]

        if answer.hold > 0:
            reactor.callLater(answer.hold, write)
        else:
            write()


class _Channel(http.HTTPChannel):
    totalHeadersSize = 8192


class _Site(server.Site):
    def log(self, request: object) -> None:
        """No access log: each request is logged by the decision (`auth-routed`,
        `login-failed`), without its password."""


def make_site(res: AuthHttpResource, max_request: int) -> server.Site:
    channel = type("AuthHttpChannel", (_Channel,), {"totalHeadersSize": max_request})
    site = _Site(res, timeout=IDLE_TIMEOUT)  # type: ignore[no-untyped-call]
    site.protocol = channel  # type: ignore[method-assign]
    site.displayTracebacks = False
    site.noisy = False
    return site


def adopt(sock: socket.socket, site: server.Site) -> None:
    if sock.family == socket.AF_UNIX:
        from mra.net.listeners import adopt_unix

        adopt_unix(reactor, sock, site)
    else:
        reactor.adoptStreamPort(sock.fileno(), sock.family, site)
