"""The listening sockets: TCP ports and unix sockets, made before privileges are dropped.

Every `[listen]` entry is a TCP address or a unix socket (mailstore/endpoints.py). Both are
bound by `mra serve` while it may still be root, as ports below 1024 need; a unix socket also
gets its owner, group and mode then, since only root can give a file to another user.

A unix socket is made so that it never exists with permissions other than the configured ones
and never takes the place of anything but a dead socket (Dovecot's master does the same checks):

- the directory it goes in must be a directory that nobody but its owner can write (or a
  sticky one, like /tmp): where others may write, they could put their own socket in its
  place and receive the mail or the passwords meant for us. A missing last directory (`/run/mra`
  after a reboot, /run being a tmpfs) is made, mode 0755, owned by the server's user, so that
  the server can remove its socket when it stops;
- what is already at the path must be a socket nobody listens on (a connect() is refused: a
  server that crashed left it). A live socket means another server runs: refused, not stolen.
  Anything that is not a socket (a file, a directory, a symlink) is refused, never removed;
- the socket is bound under a temporary name next to the final one, with a umask that lets
  nobody but us in, given its owner, group and mode, and only then renamed onto the path. The
  rename replaces a stale socket in one step, and a client never finds the socket half made;
- Twisted is not let near the file: its unix `Port` chmods the path of a socket it adopts to
  0666 ("readable and writable to the world") and unlinks it when it stops listening, which
  would open the socket to every local user and let the first worker that stops remove the
  socket its siblings serve. `adopt_unix` gives the reactor the socket without either;
- when the server stops it removes the socket, if what is at the path is still the socket it
  made (same device and inode: a newer server's socket is left alone). A server that dropped
  to a user who may not write that directory cannot: it says so in the log
  (`unix-socket-left`), and the next start replaces the dead socket.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any

from twisted.internet import tcp, unix

from mailstore.endpoints import Endpoint, Listener, UnixEndpoint
from mra import log
from mra.net.transport import DirectWriteServer, DirectWriteUnixServer

BACKLOG = 128


class ListenError(Exception):
    """A listener that cannot be set up, with a message for the administrator."""


class UnixSocket:
    """A unix socket this process made, to be removed when the server stops."""

    def __init__(self, path: str, dev: int, ino: int) -> None:
        self.path = path
        self.dev = dev
        self.ino = ino

    def remove(self) -> bool:
        """Remove the socket if it is still ours; False when it could not be."""
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warn("unix-socket-left", path=self.path, error=exc.strerror)
            return False
        if (st.st_dev, st.st_ino) != (self.dev, self.ino):
            return True  # replaced by another server's socket since: not ours to remove
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warn("unix-socket-left", path=self.path, error=exc.strerror)
            return False
        return True


def bind(listener: Listener, server_user: str = "") -> tuple[socket.socket, UnixSocket | None]:
    """A listening, non-blocking socket for the listener (and the unix socket to remove
    later). Raises ListenError."""
    if isinstance(listener, UnixEndpoint):
        return bind_unix(listener, server_user)
    try:
        return bind_tcp(listener), None
    except OSError as exc:
        raise ListenError(f"cannot listen on {listener}: {exc.strerror}") from exc


def bind_tcp(endpoint: Endpoint) -> socket.socket:
    host, port = endpoint
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if not host else 1)
        sock.bind((host or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _ids(spec: UnixEndpoint, server_user: str) -> tuple[int, int]:
    """(uid, gid) the socket is given; -1 leaves one as it is."""
    import grp
    import pwd

    def user(name: str) -> pwd.struct_passwd:
        try:
            return pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        except (KeyError, ValueError):
            raise ListenError(f"{spec}: no such user {name!r}") from None

    uid = gid = -1
    owner = spec.owner or (server_user if os.geteuid() == 0 else "")
    if owner:
        pw = user(owner)
        uid, gid = pw.pw_uid, pw.pw_gid
    if spec.group:
        try:
            gid = (
                grp.getgrgid(int(spec.group)).gr_gid
                if spec.group.isdigit()
                else grp.getgrnam(spec.group).gr_gid
            )
        except (KeyError, ValueError):
            raise ListenError(f"{spec}: no such group {spec.group!r}") from None
    return uid, gid


def _directory(path: str, server_user: str) -> None:
    """The socket's directory exists (made if it is the only part missing) and nobody but
    its owner (or a sticky bit's protection) can put a file in it."""
    directory = os.path.dirname(path)
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        try:
            os.mkdir(directory, 0o755)
        except OSError as exc:
            raise ListenError(f"cannot make {directory}: {exc.strerror}") from exc
        if server_user and os.geteuid() == 0:
            uid, gid = _ids(UnixEndpoint(path, owner=server_user), server_user)
            os.chown(directory, uid, gid)
        st = os.stat(directory)
    except OSError as exc:
        raise ListenError(f"cannot use {directory}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ListenError(f"{directory} is not a directory")
    if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
        raise ListenError(
            f"{directory} is writable by everyone: anyone could replace the socket {path}"
        )


def _clear(path: str) -> None:
    """Nothing at `path`, or a dead socket (removed by the rename); else ListenError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(f"{path} exists and is not a socket: not replaced")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # nobody listens: a server that stopped without removing it
    except OSError as exc:
        raise ListenError(f"{path}: cannot tell whether a server listens on it: {exc}") from exc
    finally:
        probe.close()
    raise ListenError(f"{path}: another server is listening on it")


def bind_unix(spec: UnixEndpoint, server_user: str = "") -> tuple[socket.socket, UnixSocket]:
    path = spec.path
    _directory(path, server_user)
    _clear(path)
    uid, gid = _ids(spec, server_user)
    temp = f"{path}.{os.getpid():x}~"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600 at most; chmod widens it below
    try:
        try:
            if os.path.lexists(temp):
                if not stat.S_ISSOCK(os.lstat(temp).st_mode):
                    raise ListenError(f"{temp} exists and is not a socket")
                os.unlink(temp)  # our own pid's leftover: no live server has this name
            sock.bind(temp)
        finally:
            os.umask(old_umask)
        if (uid, gid) != (-1, -1):
            os.chown(temp, uid, gid)
        os.chmod(temp, spec.mode)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        os.rename(temp, path)
        st = os.lstat(path)
    except BaseException as exc:
        sock.close()
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ListenError(f"cannot make the socket {path}: {exc.strerror}") from exc
        raise
    return sock, UnixSocket(path, st.st_dev, st.st_ino)


def describe(listener: Listener, sock: socket.socket) -> str:
    """The address for the `listening` log line: the port the system gave for port 0."""
    if isinstance(listener, UnixEndpoint):
        return str(listener)
    return f"{listener.host}:{sock.getsockname()[1]}"


class _AdoptedUnixPort(unix.Port):
    """A listening unix socket made here, served by the reactor as it is: no chmod when it
    starts, no unlink when it stops (see the module notes). Its connections send their
    writes at once (mra/net/transport.py)."""

    transport = DirectWriteUnixServer

    def startListening(self) -> None:
        reserve = getattr(getattr(tcp, "_reservedFD", None), "reserve", None)
        if reserve is not None:
            reserve()  # what Twisted's ports keep for accepting past EMFILE
        this: Any = self  # Twisted's attributes, which its stubs type loosely
        this.factory.doStart()
        skt = this._preexistingSocket
        this._preexistingSocket = None
        this.connected = True
        this.socket = skt
        this.fileno = skt.fileno
        this.numberAccepts = 100
        this.startReading()

    def connectionLost(self, reason: Any) -> None:
        port: Any = tcp.Port
        port.connectionLost(self, reason)


def adopt_unix(reactor: Any, sock: socket.socket, factory: Any) -> Any:
    """Serve the listening unix socket `sock` with `factory` (reactor.adoptStreamPort's job
    for TCP), leaving the file's permissions and its removal to this module."""
    adopted: Any = _AdoptedUnixPort
    port = adopted._fromListeningDescriptor(reactor, sock.fileno(), factory)
    port.startListening()
    return port


class _Server(DirectWriteServer):
    """Twisted's TCP connection (writing at once: mra/net/transport.py), whose attributes all
    exist from the start.

    CPython 3.11 keeps an object's attributes in an array whose names its class shares (PEP
    412's key-sharing, "inline values"), but a class can learn new names only while few of its
    objects exist: each object made takes one place from what it may still learn. Twisted sets
    `dataBuffer` and `offset` at a connection's first write and `producer` when the adapter
    registers, so when the first connections of a worker came in a burst the names came too
    late, and every connection's attributes moved to a dictionary of their own, 832 octets
    (issue #16: the memory of 10,000 idle connections; at random, as bursts go). Set here, in
    the first connection, before any other is made, they stay shared.
    """

    def __init__(
        self,
        sock: socket.socket,
        protocol: Any,
        client: tuple[object, ...],
        server: tcp.Port,
        sessionno: int,
        reactor: Any,
    ) -> None:
        self.dataBuffer = b""
        self.offset = 0
        self.producer = None
        self.streamingProducer = False
        self.producerPaused = False
        self._direct_left = 0  # set at each read (transport.py)
        super().__init__(sock, protocol, client, server, sessionno, reactor)

    # Twisted writes two strings into every connection for its own log lines and repr (160
    # octets); made when asked instead (our log lines are mra/log.py's).
    @property
    def logstr(self) -> str:
        return f"{self._getLogPrefix(self.protocol)},{self.sessionno},{self.hostname}"

    @logstr.setter
    def logstr(self, value: str) -> None:
        pass

    @property
    def repstr(self) -> str:
        port = getattr(self.server, "_realPortNumber", None)
        return f"<{type(self.protocol).__name__} #{self.sessionno} on {port}>"

    @repstr.setter
    def repstr(self, value: str) -> None:
        pass


class _Port(tcp.Port):
    transport = _Server


def adopt_tcp(reactor: Any, sock: socket.socket, factory: Any) -> Any:
    """Serve the listening TCP socket `sock` with `factory`: reactor.adoptStreamPort, with the
    connection class above."""
    adopted: Any = _Port
    port = adopted._fromListeningDescriptor(reactor, sock.fileno(), sock.family, factory)
    port.startListening()
    return port
