"""The workers' control sockets: how the one worker that takes an admin request or a metrics
scrape answers for the whole server.

With `[server] workers` above 1, the admin socket and the metrics port are shared by the
workers like the mail ports: the kernel gives each connection to one of them. So that `mra
who`, `mra kick`, `mra reload`, `mra stats` and a scrape see the whole server, each worker also
listens on a private control socket of its own, `worker-N` in a directory made for this run:

- the directory is made by `mra serve` before it drops privileges (`mkdtemp`: mode 0700, a name
  nobody can guess beforehand), in `[admin] control_dir` ($TMPDIR or /tmp by default), and
  given to `[server] user`: only that user and root can reach the sockets in it. The parent
  removes it when the server stops; a `pid` file in it names the parent, so that the next
  start removes one a killed server left behind. It is made only when there is something to
  gather for (`workers` above 1, and `[listen] admin` or `metrics` set);
- each worker binds its own socket when it starts (mode 0600, by `listeners.bind_unix`, which
  never replaces anything but a dead socket), so a worker restarted after a crash takes its
  number's place, and a dead worker's socket refuses a connection at once;
- the worker that took a request runs it for itself and asks every other worker the same with
  `local: true`, which a control socket never passes on (it answers for its own worker only,
  whatever the request says). Each sibling has `[admin] worker_timeout` seconds to answer, in
  at most `[admin] max_answer` octets; one that refuses the connection, does not answer in
  time or answers something else is named in the answer's `unanswered` (and in the metrics'
  `mra_worker_processes_unanswered`), never waited for longer;
- the answers are merged by `mra/admin/service.py`: `who` lists every worker's sessions (each
  row says its `pid` and `worker`), `kick` sums what each kicked, `reload` is every worker's,
  `stats` and metrics are `metrics.merge`d sums (the gauge `mra_worker_processes` sums to the
  number of workers that answered).

The siblings are asked over the reactor's own non-blocking connections, never from a thread:
a worker that hangs costs the asking one a timer, not a thread of the pool mail work needs.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from typing import Any

from twisted.internet import defer, protocol
from twisted.python.failure import Failure

from mailstore.endpoints import UnixEndpoint
from mra.admin.protocol import AdminError, decode_full_answer
from mra.net.listeners import ListenError, UnixSocket, adopt_unix, bind_unix

PREFIX = "mra-control-"
PID_FILE = "pid"


def make_directory(base: str, user: str) -> str:
    """A fresh private directory for the control sockets (before the privilege drop): mode
    0700, owned by `user` when we are root, so that the workers can make their sockets in it
    and the parent can remove it. Its name carries the parent's pid, so that the directory of
    a server that was killed (SIGKILL leaves no time to remove it) is removed by the next
    start (`remove_stale`). The parent's pid is written in it as `PID_FILE` (not in its name:
    a socket's path must stay under 108 octets)."""
    uid = -1
    gid = -1
    if user and os.geteuid() == 0:
        import pwd

        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    parent = base or tempfile.gettempdir()
    remove_stale(parent, {os.geteuid(), uid} - {-1})
    try:
        directory = tempfile.mkdtemp(prefix=PREFIX, dir=parent)
        fd = os.open(os.path.join(directory, PID_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise ListenError(
            f"cannot make the workers' control directory in {parent}: "
            f"{exc.strerror} ([admin] control_dir)"
        ) from exc
    if uid != -1:
        os.chown(directory, uid, gid)
    return directory


def remove_stale(parent: str, owners: set[int]) -> list[str]:
    """Remove the control directories in `parent` left by servers that no longer run: named
    `mra-control-...`, a real directory (not a link) owned by one of `owners`, whose `pid`
    file names no running process. A live pid (even another user's, or a reused one) keeps
    its directory; so does one without a readable pid file (a server that is starting), or
    anything not named or owned so. Returns the names removed."""
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(parent, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid not in owners:
                continue
            fd = os.open(os.path.join(path, PID_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                text = os.read(fd, 32).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
        except OSError:
            continue
        if not text.isascii() or not text.isdigit() or _alive(int(text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process of ours to judge: keep
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class Control:
    """One server's control sockets: where they are, and this worker's own."""

    def __init__(self, directory: str, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        self.number: int | None = None
        self.made: UnixSocket | None = None

    def path(self, number: int) -> str:
        return os.path.join(self.directory, f"worker-{number}")

    def listen(self, reactor: Any, number: int, factory: Any) -> None:
        """This worker's control socket, served by `factory` (in the worker, after the fork)."""
        self.number = number
        sock, self.made = bind_unix(UnixEndpoint(self.path(number), mode=0o600))
        adopt_unix(reactor, sock, factory)

    def others(self) -> list[int]:
        return [n for n in range(self.workers) if n != self.number]

    def gather(
        self, reactor: Any, request: bytes, timeout: float, max_answer: int
    ) -> defer.Deferred[list[tuple[int, object]]]:
        """Every other worker's answer to `request` (a `local: true` line), as (worker, result)
        with an AdminError as the result of a worker that did not answer."""
        asks = [
            ask_worker(reactor, self.path(n), request, timeout, max_answer) for n in self.others()
        ]
        d: defer.Deferred[Any] = defer.DeferredList(asks, consumeErrors=True)

        def collect(results: list[tuple[bool, Any]]) -> list[tuple[int, object]]:
            out: list[tuple[int, object]] = []
            for number, (ok, value) in zip(self.others(), results, strict=True):
                if not ok:
                    failure: Failure = value
                    err = failure.value
                    value = err if isinstance(err, AdminError) else AdminError(repr(err))
                out.append((number, value))
            return out

        return d.addCallback(collect)

    def remove(self) -> None:
        """The directory and its sockets, when the server stops (the parent's job)."""
        shutil.rmtree(self.directory, ignore_errors=True)


class _Ask(protocol.Protocol):
    """Send one request line, read one answer line of at most `max_answer` octets."""

    def __init__(self, request: bytes, max_answer: int, done: defer.Deferred[object]) -> None:
        self.request = request
        self.max_answer = max_answer
        self.done = done
        self.buffer = bytearray()

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        start = len(self.buffer)
        self.buffer += data
        if len(self.buffer) > self.max_answer:
            self._fail(AdminError(f"answered more than {self.max_answer} octets"))
            return
        if self.buffer.find(b"\n", start) < 0:
            return  # only the new octets are searched: reading stays linear in the answer
        try:
            result, _ = decode_full_answer(bytes(self.buffer))
        except AdminError as exc:
            self._fail(exc)
            return
        self.done.callback(result)
        transport: Any = self.transport
        transport.loseConnection()

    def _fail(self, error: AdminError) -> None:
        if not self.done.called:
            self.done.errback(error)
        transport: Any = self.transport
        transport.abortConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.done.called:
            self.done.errback(AdminError("closed the connection without an answer"))


class _AskFactory(protocol.ClientFactory):
    def __init__(self, request: bytes, max_answer: int, done: defer.Deferred[object]) -> None:
        self.request = request
        self.max_answer = max_answer
        self.done = done

    def buildProtocol(self, addr: object) -> _Ask:
        return _Ask(self.request, self.max_answer, self.done)

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
        if not self.done.called:
            self.done.errback(
                AdminError(f"no worker listens ({reason.getErrorMessage()}): dead or restarting")
            )


def ask_worker(
    reactor: Any, path: str, request: bytes, timeout: float, max_answer: int
) -> defer.Deferred[object]:
    """One sibling's result for `request`; fails with an AdminError after `timeout` seconds."""
    done: defer.Deferred[object] = defer.Deferred()
    connector = reactor.connectUNIX(
        path, _AskFactory(request, max_answer, done), timeout=max(1, int(timeout))
    )

    def expire() -> None:
        if not done.called:
            done.errback(AdminError(f"no answer within {timeout:g} seconds"))
            connector.disconnect()

    timer = reactor.callLater(timeout, expire)

    def settle(result: object) -> object:
        if timer.active():
            timer.cancel()
        return result

    done.addBoth(settle)
    return done
