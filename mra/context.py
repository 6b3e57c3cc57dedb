"""What a protocol session may know about its connection and use of the server.

Twisted-free, so sessions stay sans-I/O: `Connection` describes one client connection,
`Services` is the per-process toolbox (user database, authentication, stores, locks) that the
network layer builds once from the configuration.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from mailstore.store import MailStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from mailstore.config import Config
    from mailstore.userdb import User

    T = TypeVar("T")


class Connection:
    """One client connection, as the session sees it."""

    def __init__(
        self,
        listener: str,
        peer_ip: str,
        peer_port: int = 0,
        local_port: int = 0,
        tls: bool = False,
        tls_available: bool = False,
        exempt: bool = False,
        unix: bool = False,
    ) -> None:
        self.listener = listener  # "imap", "imaps", "pop3", "pop3s", "sieve", ...
        self.peer_ip = peer_ip  # "unix" on a unix socket
        self.unix = unix  # a unix socket: the client is on this host, let in by its permissions
        self.peer_port = peer_port
        self.local_port = local_port
        self.tls = tls
        self.tls_available = tls_available
        self.exempt = exempt  # the access map said OK: no throttles
        self.id = os.urandom(4).hex()

    @property
    def loopback(self) -> bool:
        """The client is on this host: loopback TCP, or a unix socket."""
        if self.unix:
            return True
        try:
            return ipaddress.ip_address(self.peer_ip).is_loopback
        except ValueError:
            return False

    @property
    def secure(self) -> bool:
        """Cleartext passwords may cross this connection (TLS, or never leaves the host)."""
        return self.tls or self.loopback


class Services:
    """Per-process services shared by every session."""

    def __init__(self, config: Config, auth: object) -> None:
        self.config = config
        self.auth = auth
        self.cluster: object = None  # mra/cluster/service.py's ClusterService, with [cluster]
        self.hostname = socket.gethostname() or "localhost"
        from mra.auth.throttle import ConnectionLimits

        self.limits = ConnectionLimits(
            per_address=config.limits.max_connections_per_address,
            per_user=config.limits.max_sessions_per_user,
            per_user_address=config.limits.max_sessions_per_user_address,
        )
        from mra.imap.limits import LiteralPool

        # IMAP literal octets all sessions of this process may hold at once (SECURITY.md 2);
        # LMTP's messages on their way in are counted in it too.
        self.literal_pool = LiteralPool(config.limits.max_literal_memory)
        from mra.imap.mime import Limits as MimeLimits

        limits = config.limits
        # What one message's MIME structure may make us parse (SECURITY.md 1).
        from mailstore.folderstate import SharedFolders

        # The folders this process's sessions have open, shared (mailstore/folderstate.py).
        index = config.index
        self.folders = SharedFolders(index.keep_folders, index.keep_messages, index.expunge_log)
        self.sort_keys = index.sort_keys  # SORT's orders kept per folder (mra/imap/sortindex.py)
        self.mime_limits = MimeLimits(
            max_nested_parts=limits.max_mime_depth,
            max_total_parts=limits.max_mime_parts,
            max_header_block=limits.max_header_size,
            max_all_headers=limits.max_headers_size,
            max_params=limits.max_mime_params,
            max_header_fields=limits.max_header_fields,
            max_tokens=limits.max_header_tokens,
        )
        self._shared: dict[str, object] = {}

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """The process's one `make()` under `key`, made on first use: what a protocol keeps
        for all its sessions (LMTP's user database and delivery settings)."""
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = make()
        return found  # type: ignore[return-value]

    def plaintext_allowed(self, conn: Connection) -> bool:
        return conn.secure or self.config.auth.allow_plaintext

    def open_store(self, user: User) -> MailStore:
        quota = None
        if user.quota_bytes:
            from mailstore.quota import QuotaLimit

            quota = QuotaLimit(bytes=user.quota_bytes, messages=None)
        return MailStore(
            user.mail_root,
            quota_limit=quota,
            folders=self.folders,
            index_root=self.index_root(user),
        )

    def index_root(self, user: User) -> str:
        """Where the user's folder indexes are: "" beside each folder, or `[index] location`
        expanded for the user (mailstore/userdb.py's rules, as `[mail] location`)."""
        template = self.config.index.location
        if not template:
            return ""
        from mailstore.userdb import expand_location

        return expand_location(
            template, user=user.name, local=user.local, domain=user.domain, home=user.home
        )


class SessionLock:
    """An exclusive lock on a mailbox for a POP3 session (RFC 1939 section 8, `[IN-USE]`).

    fcntl.flock on a file in the Maildir root: it holds across worker processes (and two
    sessions in one process, whose open file descriptions differ), and the kernel releases it
    when the holder dies, so a crash cannot leave a mailbox locked.
    """

    NAME = "mra-pop3.lock"

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, self.NAME)
        self.fd = -1

    def acquire(self) -> bool:
        import fcntl

        from mailstore.folderdir import adopt

        flags = os.O_RDWR | os.O_NOFOLLOW
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(self.path, flags)
        else:
            try:
                adopt(fd, os.path.dirname(self.path))  # as root: the mail root owner's
            except OSError:
                os.close(fd)
                raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
