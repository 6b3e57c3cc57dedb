"""`mra serve`: the listeners, the worker processes, signals and the privilege drop.

Start-up order matters: read the configuration and the TLS keys, bind every listening socket
(as root, for ports below 1024), drop to `[server] user`, and only then fork the workers and
start serving. Each worker adopts the same listening sockets, and whichever worker is waiting
accepts: a worker that is busy, stopped or hung leaves new connections to the others. (One
socket per worker with SO_REUSEPORT spreads connections evenly, whatever the scheduling, but
the kernel then hands a hung worker its share of new connections, which wait: tried, and left
for that reason.) The parent only supervises (restarts a worker that died, passes SIGHUP and
SIGTERM on). With `workers = 1` the one process serves directly.

SIGHUP re-reads the TLS certificate and the user database without dropping connections (a
certificate that cannot be loaded, or whose key does not match it, is refused and the old one
kept); SIGTERM and SIGINT stop listening, tell every session goodbye (`* BYE`, `-ERR`), and exit.

Each process accepts at most `[limits] max_connections` connections, so that a flood from many
addresses (each under its own limit) meets a bound the administrator chose rather than the
file-descriptor limit: over it, a new connection is told so and closed before anything else is
spent on it (no access-map lookup, no session state).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import protocol, threads
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from mailstore.config import Config
from mra import log
from mra.context import Connection, Services
from mra.net.adapter import SessionProtocol
from mra.net.listeners import UnixSocket, adopt_tcp, adopt_unix, bind, describe
from mra.net.reactor import reactor
from mra.net.stall import StallMonitor
from mra.net.tls import TLSContext, TLSFactory
from mra.session import Session

# Listener name -> (protocol, implicit TLS). The protocol names a session class in SESSIONS.
PROTOCOLS = {
    "imap": ("imap", False),
    "imaps": ("imap", True),
    "pop3": ("pop3", False),
    "pop3s": ("pop3", True),
    "sieve": ("managesieve", False),  # RFC 5804: STARTTLS only, no implicit-TLS port
    "lmtp": ("lmtp", False),
    "auth": ("auth", False),  # the Dovecot auth protocol, for the MTA (mra/authserver)
    "saslauthd": ("saslauthd", False),
    "socketmap": ("socketmap", False),  # Postfix's transport lookups ([cluster], mra/cluster)
}
# Protocol -> "module:class" of its sans-I/O session, imported when the first client comes
# (every module is preloaded before privileges are dropped anyway).
SESSIONS = {
    "imap": "mra.imap.session:ImapSession",
    "pop3": "mra.pop3.session:Pop3Session",
    "managesieve": "mra.managesieve.session:ManageSieveSession",
    "lmtp": "mra.lmtp.session:LmtpSession",
    "auth": "mra.authserver.dovecot:DovecotAuthSession",
    "saslauthd": "mra.authserver.saslauthd:SaslauthdSession",
    "socketmap": "mra.cluster.service:socketmap_session",
}
# Listeners whose client is the MTA, on its own host, not a mail client: all its connections
# come from one address (Postfix opens one per smtpd process), so that address's connection
# limit (`max_connections_per_address`) does not apply; the throttles count the SMTP clients
# the MTA asks about instead.
MTA_LISTENERS = frozenset({"auth", "lmtp", "saslauthd", "socketmap"})
# The administrator's listeners (mra/admin/service.py): no mail session behind them.
OPS_LISTENERS = frozenset({"admin", "metrics"})
SHUTDOWN_GRACE = 5.0


def session_class(protocol: str) -> Callable[[Connection, Services], Session]:
    import importlib

    module, _, name = SESSIONS[protocol].partition(":")
    cls: Callable[[Connection, Services], Session] = getattr(importlib.import_module(module), name)
    return cls


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
        self.unix_sockets: list[UnixSocket] = []  # removed when the server stops
        # With several workers and an admin socket or metrics port: the workers' control
        # sockets, through which the one that takes a request asks the others (control.py).
        self.control: Any = None
        try:
            from mra.cluster.service import cluster_listeners

            listeners = {**config.listen.enabled(), **cluster_listeners(config)}
            for name, listener in listeners.items():
                # The admin socket stays root's (mode 0600) unless its table names an owner.
                owner = "" if name == "admin" else config.server.user
                sock, made = bind(listener, owner)
                self.sockets[name] = sock
                if made is not None:
                    self.unix_sockets.append(made)
                log.info("listening", listener=name, address=describe(listener, sock))
        except BaseException:
            self.close_listeners()
            raise
        self.connections: set[SessionProtocol] = set()
        if config.server.workers > 1 and (config.listen.admin or config.listen.metrics):
            from mra.net.control import Control, make_directory

            try:
                directory = make_directory(config.admin.control_dir, config.server.user)
            except BaseException:
                self.close_listeners()
                raise
            self.control = Control(directory, config.server.workers)
        self.services: Services | None = None
        self.access: object = None
        self.stall_monitor: StallMonitor | None = None
        # Password checks run in a pool of their own, so that a flood of logins waiting for
        # one of `max_concurrent_hashes` slots never holds the threads mailbox work needs.
        self.pools: dict[str, ThreadPool] = {}

    def port(self, name: str) -> int:
        """The TCP port a listener got (0 for a unix socket)."""
        address = self.sockets[name].getsockname()
        return int(address[1]) if isinstance(address, tuple) else 0

    def close_listeners(self) -> None:
        """Close the listening sockets and remove the unix sockets we made (if we still may:
        mra/net/listeners.py). For the process that bound them, once it stops serving."""
        for sock in self.sockets.values():
            sock.close()
        for made in self.unix_sockets:
            made.remove()
        self.unix_sockets = []
        if self.control is not None:
            self.control.remove()

    def load_access(self) -> None:
        """The access map, if it has any entries (`Connect:` rules apply to every listener)."""
        path = self.config.maps.access
        try:
            if os.path.getsize(path) == 0:
                self.access = None
                return
        except OSError:
            self.access = None
            return
        from mda.maps.access import AccessMap

        self.access = AccessMap(path)

    def connect_decision(self, ip: str) -> object:
        """In a thread: the access map's verdict on a client, by host name and address."""
        access = self.access
        if access is None:
            return None
        try:
            hostname: str | None = socket.gethostbyaddr(ip)[0]
        except OSError:
            hostname = None
        return access.check_connect(hostname, ip)  # type: ignore[attr-defined]

    def make_services(self) -> Services:
        from mra.auth.glue import make_authenticator

        return Services(self.config, make_authenticator(self.config))

    def _session_factory(self, listener: str) -> Callable[[SessionProtocol], Session]:
        proto, implicit_tls = PROTOCOLS[listener]

        make_session = session_class(proto)
        unix = self.sockets[listener].family == socket.AF_UNIX

        def make(p: SessionProtocol) -> Session:
            peer = p.transport.getPeer()
            host = p.transport.getHost()
            conn = Connection(
                listener,
                "unix" if unix else getattr(peer, "host", "?"),
                getattr(peer, "port", 0),
                getattr(host, "port", 0),
                tls=implicit_tls,
                tls_available=self.tls is not None,
                unix=unix,
            )
            p.tls_context = self.tls
            p.protocol = proto
            assert self.services is not None
            log.info("connect", listener=listener, ip=conn.peer_ip, conn=conn.id)
            return make_session(conn, self.services)

        return make

    def start_listening(self) -> None:
        """Adopt the bound sockets into this process's reactor."""
        from mailstore import dirwatch

        # Per process (after the fork of workers): each has its own inotify queue. With
        # `[mail] shared`, other hosts write too: every sync checks the directories instead.
        if self.config.mail.shared:
            from mailstore import shared

            shared.enable(self.config.mail.shared_check_interval)
        else:
            dirwatch.enable()
        if self.services is None:
            self.services = self.make_services()
        self.load_access()
        self.stall_monitor = StallMonitor(self.config.server.reactor_stall_ms)
        self.stall_monitor.start()
        from mra.cluster.service import AUTH_HTTP, ClusterService

        if self.config.cluster.nodes:
            cluster = ClusterService(self.config)
            self.services.cluster = cluster
            cluster.start(self)
        for name, sock in self.sockets.items():
            if name == AUTH_HTTP:
                continue  # twisted.web's, adopted by the cluster service
            factory: Any
            if name in OPS_LISTENERS:
                from mra.admin import service

                factory = (
                    service.AdminFactory(self) if name == "admin" else service.metrics_factory(self)
                )
            else:
                factory = _Factory(self, self._session_factory(name))
            if name not in OPS_LISTENERS and PROTOCOLS[name][1]:
                assert self.tls is not None
                factory = TLSFactory(self.tls, factory)
            if sock.family == socket.AF_UNIX:
                adopt_unix(reactor, sock, factory)
            else:
                adopt_tcp(reactor, sock, factory)

    def reload(self) -> None:
        log.info("reload")
        from mailstore.log import reopen

        reopen()  # after logrotate moved the file
        if self.tls is not None:
            self.tls.reload()
        try:
            self.load_access()
        except Exception as exc:
            log.error("access-reload-failed", error=repr(exc))
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

    def buildProtocol(self, addr: object) -> SessionProtocol:  # type: ignore[override]
        return _TrackedProtocol(self.server, self.make)


class _TrackedProtocol(SessionProtocol):
    """A connection that first passes the process's connection limit, the access map's
    `Connect:` rules and the per-address connection limit, then gets its greeting."""

    __slots__ = ("_lease", "server")

    def __init__(self, server: Server, make: Callable[[SessionProtocol], Session]) -> None:
        super().__init__(make, server.config.limits, server.pools)
        self.server = server
        self._lease: Any = None

    def connectionMade(self) -> None:
        open_before = len(self.server.connections)
        self.server.connections.add(self)
        self.start_held()
        session = self.session
        assert session is not None
        conn = session.conn  # type: ignore[attr-defined]
        if open_before >= self.limits.max_connections:
            log.warn(
                "connect-limit-total",
                listener=conn.listener,
                ip=conn.peer_ip,
                connections=open_before,
            )
            self.release(session.refuse("Too many connections, try again later"))
            return
        if self.server.access is None or conn.unix:
            # A unix socket's clients are whoever its permissions let in: they have no
            # address for `Connect:` rules, and share no per-address limit.
            self._admit(None)
            return
        d = threads.deferToThread(self.server.connect_decision, conn.peer_ip)
        d.addBoth(self._admit)

    def _admit(self, decision: object) -> None:
        session = self.session
        assert session is not None
        conn = session.conn  # type: ignore[attr-defined]
        if isinstance(decision, Failure):
            log.error(
                "access-check-failed",
                listener=conn.listener,
                ip=conn.peer_ip,
                error=repr(decision.value),
            )
            self.release(session.refuse("Temporary failure, try again later"))
            return
        action = getattr(decision, "action", None)
        refusal = getattr(decision, "refusal", None)
        if refusal is not None:
            log.info(
                "connect-refused",
                listener=conn.listener,
                ip=conn.peer_ip,
                rule=getattr(decision, "key", ""),
            )
            self.release(session.refuse(f"Access denied: {refusal.text}"))
            return
        if action == "DISCARD":
            log.info(
                "connect-discarded",
                listener=conn.listener,
                ip=conn.peer_ip,
                rule=getattr(decision, "key", ""),
            )
            self._closed = True
            self.transport.loseConnection()
            return
        from mra.cluster.service import exempt_proxy

        conn.exempt = action == "OK" or conn.unix or exempt_proxy(self.server.config, conn.peer_ip)
        assert self.server.services is not None
        self._lease = self.server.services.limits.connect(
            conn.peer_ip, exempt=conn.exempt or conn.listener in MTA_LISTENERS
        )
        if self._lease is None:
            log.warn("connect-limit", listener=conn.listener, ip=conn.peer_ip)
            self.release(session.refuse("Too many connections from your address"))
            return
        self.release(session.greeting())

    def connectionLost(self, reason: object = None) -> None:
        self.server.connections.discard(self)
        if self._lease is not None:
            self._lease.release()
        super().connectionLost(reason)  # type: ignore[arg-type]


def raise_fd_limit(config: Config) -> None:
    """Let each process hold its `max_connections` (a socket each, a file or lock for many):
    raise the soft RLIMIT_NOFILE towards the hard one, and say so if that is not enough."""
    import resource

    wanted = 2 * config.limits.max_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
        if soft < wanted:
            log.warn("fd-limit-low", limit=soft, wanted=wanted, hint="lower max_connections")


def start_logging(config: Config) -> None:
    """`[log]` for the whole server, before anything is bound (the file is opened as root);
    the standard library's logging joins it, and the metrics count its events."""
    from mailstore import log as backend
    from mra import metrics

    backend.configure_from(config.log, "mra")
    backend.forward_stdlib_logging()
    backend.subscribe(metrics.on_event)


class InstallationError(Exception):
    """The server's user could not read the server's own code: refuse to start."""


def prepare_drop(user: str, require_readable: bool = True) -> Any:
    """Before becoming `user`: import everything (mra/preload.py), then refuse to start when
    `user` could not read our installation, naming the path; an unreadable standard library
    (a pyenv under /root) is said once. The LateImports finder to install after the drop."""
    import pwd

    from mra import preload

    missing = preload.preload()
    import importlib

    for name in ("twisted.internet.default", "twisted.internet.epollreactor"):
        try:  # what installs the reactor in each worker (_run), without reading a file then
            importlib.import_module(name)
        except ImportError:
            pass
    if missing:
        log.debug("preload-missing", modules=",".join(missing))
    pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    own, stdlib = preload.check_installation(pw.pw_uid, pw.pw_gid)
    if own and require_readable:
        raise InstallationError(
            f"[server] user {pw.pw_name!r} cannot read the server's installation: {own[0]} "
            "(make it readable, or install mra where that user can read it)"
        )
    for why in own[:1]:  # require_readable_installation = false: said, and started
        log.warn("installation-unreadable", user=pw.pw_name, path=why, hint="preloaded")
    for why in stdlib[:1]:
        log.warn("stdlib-unreadable", user=pw.pw_name, path=why, hint="everything is preloaded")
    return preload.LateImports()


def serve(config: Config) -> int:
    start_logging(config)
    raise_fd_limit(config)
    server = Server(config)
    late = None
    if config.server.user and os.geteuid() == 0:
        late = prepare_drop(config.server.user, config.server.require_readable_installation)
        server.services = server.make_services()
    drop_privileges(config.server.user)
    if late is not None:
        late.install()
    if os.geteuid() == 0:
        log.warn("running-as-root", hint="set [server] user to the mail user")
        if config.listen.lmtp is not None:
            # LMTP writes every mailbox as the server's user: never as root (451 4.3.5).
            log.warn("lmtp-refuses-to-deliver-as-root", hint="set [server] user")
    workers = config.server.workers
    try:
        if workers <= 1:
            return _run(server, None)
        return _supervise(server, workers)
    finally:
        server.close_listeners()


def _run(server: Server, number: int | None) -> int:
    log.set_worker(number)
    if "twisted.internet.reactor" not in sys.modules:
        # Installed here, in the process that serves (mra/net/reactor.py), from the modules
        # imported before the drop: importing twisted.internet.reactor would read its file,
        # which the server's user may not be able to.
        from mra.net.reactor import install

        install()
    from twisted.internet import threads  # noqa: F401  (the thread pool for Call outputs)

    reactor.suggestThreadPoolSize(8)
    hashes = ThreadPool(0, server.config.auth.max_concurrent_hashes, "auth")
    server.pools["auth"] = hashes
    reactor.callWhenRunning(hashes.start)
    reactor.addSystemEventTrigger("during", "shutdown", hashes.stop)
    server.start_listening()
    from twisted.internet.task import LoopingCall

    from mailstore.log import flush_suppressed
    from mra.admin import service

    service.WORKER[0] = number
    if server.control is not None and number is not None:
        server.control.listen(reactor, number, service.AdminFactory(server, on_control=True))
    service.collectors(server)
    flusher = LoopingCall(flush_suppressed)
    flusher.start(max(1, server.config.log.rate_limit_interval), now=False)
    reactor.addSystemEventTrigger("before", "shutdown", flush_suppressed)
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

    # What the supervisor imported (mra/preload.py) the workers share until they write to
    # it, and Python's collector writes to every object it examines: frozen, the workers'
    # collections leave those pages shared (issue #16: the memory of 10,000 connections).
    import gc

    from mra import preload

    preload.for_workers()  # shared by the workers, not imported by each (preload.py)
    gc.collect()
    gc.freeze()
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
            if not stopping:  # a SIGTERM during the pause must not leave a new worker behind
                spawn(number)
    log.info("stopped")
    sys.stdout.flush()
    return 0
