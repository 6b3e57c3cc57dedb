"""`mra serve`: the listeners, the worker processes, signals and the privilege drop.

Start-up order matters: read the configuration and the TLS keys, bind every listening socket
(as root, for ports below 1024), drop to `[server] user`, and only then fork the workers and
start serving. Each worker adopts the same listening sockets, so the kernel spreads connections
over the cores; the parent only supervises (restarts a worker that died, passes SIGHUP and
SIGTERM on). With `workers = 1` the one process serves directly.

SIGHUP re-reads the TLS certificate and the user database without dropping connections;
SIGTERM and SIGINT stop listening, tell every session goodbye (`* BYE`, `-ERR`), and exit.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from twisted.internet import protocol, reactor

from mailstore.config import Config, Endpoint
from mra import log
from mra.context import Connection, Services
from mra.net.adapter import SessionProtocol
from mra.net.tls import TLSContext
from mra.session import Session

PROTOCOLS = {
    "imap": ("imap", False),
    "imaps": ("imap", True),
    "pop3": ("pop3", False),
    "pop3s": ("pop3", True),
}
SHUTDOWN_GRACE = 5.0


def bind(endpoint: Endpoint) -> socket.socket:
    host, port = endpoint
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if not host else 1)
    sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def drop_privileges(user: str) -> None:
    if not user or os.geteuid() != 0:
        return
    import pwd

    pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    log.info("privileges-dropped", user=pw.pw_name, uid=pw.pw_uid)


class Server:
    """Everything one serving process holds: sockets, TLS, services, live connections."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.tls: TLSContext | None = None
        if config.tls.cert:
            self.tls = TLSContext(config.tls.cert, config.tls.key)
        self.sockets: dict[str, socket.socket] = {}
        for name, endpoint in config.listen.enabled().items():
            self.sockets[name] = bind(endpoint)
            log.info("listening", listener=name, address=f"{endpoint[0]}:{self.port(name)}")
        self.connections: set[SessionProtocol] = set()
        self.services: Services | None = None
        self.access: object = None

    def port(self, name: str) -> int:
        return int(self.sockets[name].getsockname()[1])

    def make_services(self) -> Services:
        from mra.auth.glue import make_authenticator

        return Services(self.config, make_authenticator(self.config))

    def _session_factory(self, listener: str) -> Callable[[SessionProtocol], Session]:
        proto, implicit_tls = PROTOCOLS[listener]

        def make(p: SessionProtocol) -> Session:
            peer = p.transport.getPeer()
            host = p.transport.getHost()
            conn = Connection(
                listener,
                getattr(peer, "host", "?"),
                getattr(peer, "port", 0),
                getattr(host, "port", 0),
                tls=implicit_tls,
                tls_available=self.tls is not None,
            )
            p.tls_context = self.tls
            assert self.services is not None
            log.info("connect", listener=listener, ip=conn.peer_ip, conn=conn.id)
            if proto == "pop3":
                from mra.pop3.session import Pop3Session

                return Pop3Session(conn, self.services)
            from mra.imap.session import ImapSession

            return ImapSession(conn, self.services)

        return make

    def start_listening(self) -> None:
        """Adopt the bound sockets into this process's reactor."""
        self.services = self.make_services()
        for name, sock in self.sockets.items():
            factory = _Factory(self, self._session_factory(name))
            if PROTOCOLS[name][1]:
                from twisted.protocols.tls import TLSMemoryBIOFactory

                assert self.tls is not None
                factory = TLSMemoryBIOFactory(self.tls, False, factory)  # type: ignore[assignment]
            reactor.adoptStreamPort(sock.fileno(), sock.family, factory)  # type: ignore[attr-defined]

    def reload(self) -> None:
        log.info("reload")
        if self.tls is not None:
            self.tls.reload()
        if self.services is not None:
            refresh = getattr(self.services.auth, "reload", None)
            if refresh is not None:
                refresh()

    def shutdown(self) -> None:
        log.info("shutdown", connections=len(self.connections))
        for conn in list(self.connections):
            conn.shutdown()
        if not self.connections:
            reactor.stop()
            return
        deadline = time.monotonic() + SHUTDOWN_GRACE

        def check() -> None:
            if not self.connections or time.monotonic() > deadline:
                for conn in list(self.connections):
                    conn.transport.abortConnection()
                reactor.stop()
            else:
                reactor.callLater(0.1, check)

        reactor.callLater(0.1, check)


class _Factory(protocol.Factory):
    def __init__(self, server: Server, make: Callable[[SessionProtocol], Session]) -> None:
        self.server = server
        self.make = make

    def buildProtocol(self, addr: object) -> SessionProtocol:
        p = _TrackedProtocol(self.make)
        p.server = self.server
        return p


class _TrackedProtocol(SessionProtocol):
    server: Server

    def connectionMade(self) -> None:
        self.server.connections.add(self)
        super().connectionMade()

    def connectionLost(self, reason: object = None) -> None:  # type: ignore[override]
        self.server.connections.discard(self)
        super().connectionLost(reason)  # type: ignore[arg-type]


def serve(config: Config) -> int:
    server = Server(config)
    drop_privileges(config.server.user)
    workers = config.server.workers
    if workers <= 1:
        return _run(server, None)
    return _supervise(server, workers)


def _run(server: Server, number: int | None) -> int:
    log.set_worker(number)
    from twisted.internet import threads  # noqa: F401  (the thread pool for Call outputs)

    reactor.suggestThreadPoolSize(8)
    server.start_listening()
    signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(server.reload))
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(server.shutdown))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(server.shutdown))
    log.info("ready", workers=1 if number is None else None)
    reactor.run(installSignalHandlers=False)
    log.info("stopped")
    return 0


def _supervise(server: Server, workers: int) -> int:
    children: dict[int, int] = {}
    stopping = False

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            try:
                code = _run(server, number)
            except BaseException as exc:
                log.error("worker-crashed", error=repr(exc))
                code = 1
            os._exit(code)
        children[pid] = number

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM if sig == signal.SIGINT else sig)
            except ProcessLookupError:
                pass

    for n in range(workers):
        spawn(n)
    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    log.info("ready", workers=workers)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        number = children.pop(pid, None)
        if number is not None and not stopping:
            log.error("worker-died", worker=number, status=status)
            time.sleep(1)
            spawn(number)
    log.info("stopped")
    sys.stdout.flush()
    return 0
