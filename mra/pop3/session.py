"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034): a sans-I/O session.

States are RFC 1939's: AUTHORIZATION until a login succeeds, then TRANSACTION on a snapshot of
INBOX taken at login (message numbers never change during the session), then UPDATE on QUIT,
where the deletions and the `\\Seen` flags of retrieved messages are committed. A connection
that drops commits nothing. The mailbox is locked for the session (`-ERR [IN-USE]`).

Every command answers; a malformed one, one in the wrong state, or an out-of-range number gets
`-ERR` and the session goes on. Only abuse ends it: too many bad commands in a row, the idle
timer (10 minutes, RFC 1939 section 3), a line far over the limit.
"""

from __future__ import annotations

import base64
import binascii

from mailstore.errors import MailError
from mra import log
from mra.context import SessionLock
from mra.pop3.stuffing import file_chunks, stuffed, top_lines
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import Mailbox, Message
    from mailstore.userdb import User
    from mra.auth.throttle import Lease
    from mra.context import Connection, Services

MAX_LINE = 1024  # RFC 2449 section 4: at least 255 octets of argument; we allow more
MAX_BAD = 10
PREAUTH_TIMEOUT = 60.0
TIMEOUT = 600.0

# Response texts and codes live here, in one place.
CODE_AUTH = "[AUTH] "
CODE_IN_USE = "[IN-USE] "
CODE_TEMP = "[SYS/TEMP] "
CODE_PERM = "[SYS/PERM] "


def error_code(exc: MailError) -> str:
    """The RFC 3206 response code for a store error: the one place POP3 maps them."""
    from mailstore.errors import ErrorKind

    if exc.kind == ErrorKind.IN_USE:
        return CODE_IN_USE
    if exc.kind in (ErrorKind.PERMISSION, ErrorKind.CORRUPT, ErrorKind.NOT_POSSIBLE):
        return CODE_PERM
    return CODE_TEMP


class Pop3Session(Session):
    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.state = "AUTHORIZATION"
        self.timeout = PREAUTH_TIMEOUT
        self._buffer = b""
        self._skipping = False  # discarding the rest of an over-long line
        self._bad = 0
        self._user_name: str | None = None
        self._sasl: object | None = None
        self.user: User | None = None
        self.mailbox: Mailbox | None = None
        self._lock: SessionLock | None = None
        self._user_lease: Lease | None = None
        self._messages: list[Message] = []
        self._sizes: list[int] = []
        self._deleted: set[int] = set()
        self._retrieved: set[int] = set()

    # -- events ---------------------------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [self._ok(f"{self.services.hostname} POP3 ready")]

    def refuse(self, text: str) -> list[Output]:
        return [self._err(f"{CODE_PERM}{text}"), Close()]

    def shutdown(self) -> list[Output]:
        self._unlock()
        return [self._err(f"{CODE_TEMP}Server shutting down"), Close()]

    def idle_timeout(self) -> list[Output]:
        self._unlock()
        return [self._err("Disconnected for inactivity"), Close()]

    def connection_lost(self) -> None:
        self._unlock()

    def tls_started(self) -> list[Output]:
        self.conn.tls = True
        return []

    def data_received(self, data: bytes) -> list[Output]:
        self._buffer += data
        out: list[Output] = []
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer = b""
                    if not self._skipping:
                        self._skipping = True
                        out += self._bad_command("line too long")
                return out
            line = self._buffer[:nl].rstrip(b"\r")
            self._buffer = self._buffer[nl + 1 :]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > MAX_LINE:
                out += self._bad_command("line too long")
                continue
            result = self._line(line)
            out += result
            if result and isinstance(result[-1], (Call, Delay, Stream, StartTLS, Close)):
                if isinstance(result[-1], StartTLS):
                    self._buffer = b""  # RFC 2595 / CVE-2011-0411: pipelined plaintext dropped
                return out

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _ok(text: str = "") -> Send:
        return Send(f"+OK {text}\r\n".encode() if text else b"+OK\r\n")

    @staticmethod
    def _err(text: str) -> Send:
        return Send(f"-ERR {text}\r\n".encode())

    def _bad_command(self, why: str) -> list[Output]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            log.warn("pop3-too-many-errors", ip=self.conn.peer_ip, conn=self.conn.id)
            self._unlock()
            return [self._err("Too many bad commands, closing"), Close()]
        return [self._err(why)]

    def _line(self, line: bytes) -> list[Output]:
        if self._sasl is not None:
            return self._sasl_line(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self._bad_command("Invalid characters in command")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        handler = _COMMANDS.get((self.state, verb))
        if handler is None:
            if (verb in _KNOWN) and self.state != "AUTHORIZATION":
                return self._bad_command(f"{verb} is not valid in this state")
            if verb in _KNOWN:
                return self._bad_command(f"{verb} needs a login first")
            return self._bad_command("Unknown command")
        self._bad = 0
        return handler(self, arg)

    def _number(self, arg: str) -> int | None:
        """A message number that exists and is not deleted, else None."""
        if not arg.isascii() or not arg.isdigit() or len(arg) > 9:
            return None
        n = int(arg)
        if not 1 <= n <= len(self._messages) or n in self._deleted:
            return None
        return n

    # -- AUTHORIZATION --------------------------------------------------------------------

    def cmd_capa(self, arg: str) -> list[Output]:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if self.state == "AUTHORIZATION":
            if self.services.plaintext_allowed(self.conn):
                caps.append("USER")
            mechs = self._mechanisms()
            if mechs:
                caps.append("SASL " + " ".join(mechs))
            if self.conn.tls_available and not self.conn.tls:
                caps.append("STLS")
        else:
            caps.append("EXPIRE NEVER")
        caps.append("IMPLEMENTATION mra")
        body = "".join(f"{c}\r\n" for c in caps)
        return [Send(("+OK Capability list follows\r\n" + body + ".\r\n").encode())]

    def _mechanisms(self) -> list[str]:
        mechanisms = getattr(self.services.auth, "mechanisms", None)
        if mechanisms is None:
            return []
        result: list[str] = mechanisms(self.services.plaintext_allowed(self.conn))
        return result

    def cmd_stls(self, arg: str) -> list[Output]:
        if self.conn.tls:
            return self._bad_command("TLS is already active")
        if not self.conn.tls_available:
            return self._bad_command("TLS is not available")
        return [self._ok("Begin TLS negotiation"), StartTLS()]

    def cmd_user(self, arg: str) -> list[Output]:
        if not self.services.plaintext_allowed(self.conn):
            return [
                self._err(
                    f"{CODE_AUTH}Plaintext authentication disallowed on non-secure "
                    "connections: use STLS"
                )
            ]
        if not arg or len(arg) > 255:
            return self._bad_command("USER needs a name")
        self._user_name = arg
        return [self._ok()]

    def cmd_pass(self, arg: str) -> list[Output]:
        if self._user_name is None:
            return self._bad_command("USER first")
        if not self.services.plaintext_allowed(self.conn):
            return [self._err(f"{CODE_AUTH}Plaintext authentication disallowed")]
        login, self._user_name = self._user_name, None
        auth = self.services.auth
        return [
            Call(
                lambda: auth.authenticate(login, arg, self.conn),  # type: ignore[attr-defined]
                lambda result: self._authenticated(login, result, "USER"),
            )
        ]

    def cmd_auth(self, arg: str) -> list[Output]:
        mech, _, initial = arg.partition(" ")
        if not mech:
            # Not in RFC 5034, but clients probe it: list the mechanisms (as Dovecot does).
            body = "".join(f"{m}\r\n" for m in self._mechanisms())
            return [Send(("+OK\r\n" + body + ".\r\n").encode())]
        start = getattr(self.services.auth, "start_sasl", None)
        exchange = None if start is None else start(mech.upper(), self.conn)
        if exchange is None:
            return [self._err(f"{CODE_AUTH}Unsupported authentication mechanism")]
        self._sasl = exchange
        self._sasl_mech = mech.upper()
        if initial:
            return self._sasl_line(initial.encode())
        return self._sasl_step(None)

    def _sasl_line(self, line: bytes) -> list[Output]:
        if line.strip() == b"*":
            self._sasl = None
            return [self._err(f"{CODE_AUTH}Authentication cancelled")]
        if line.strip() == b"=":
            data = b""
        else:
            try:
                data = base64.b64decode(line.strip(), validate=True)
            except (binascii.Error, ValueError):
                self._sasl = None
                return self._bad_command("Invalid base64 data")
        return self._sasl_step(data)

    def _sasl_step(self, data: bytes | None) -> list[Output]:
        from mra.auth.glue import sasl_outputs

        return sasl_outputs(self, data)

    def sasl_challenge(self, challenge: bytes) -> list[Output]:
        return [Send(b"+ " + base64.b64encode(challenge) + b"\r\n")]

    def sasl_done(self, login: str, user: User | None) -> list[Output]:
        self._sasl = None
        return self._authenticated(login, user, self._sasl_mech)

    def _authenticated(self, login: str, result: object, mech: str) -> list[Output]:
        auth = self.services.auth
        if isinstance(result, BaseException):
            log.error("pop3-auth-error", login=login, error=repr(result))
            return [self._err(f"{CODE_TEMP}Authentication is unavailable, try again later")]
        if result is None:
            log.info("login-failed", proto="pop3", login=login, ip=self.conn.peer_ip, mech=mech)
            delay = auth.failure_delay(self.conn, login)  # type: ignore[attr-defined]
            failed = self._err(f"{CODE_AUTH}Authentication failed")
            return [Delay(delay, lambda: [failed])]
        auth.succeeded(self.conn, login)  # type: ignore[attr-defined]
        user: User = result  # type: ignore[assignment]
        return [Call(lambda: self._open(user), lambda res: self._opened(user, res, mech))]

    def _open(self, user: User) -> tuple[list[Message], list[int]] | str:
        """In a thread: lock, open and snapshot INBOX."""
        store = self.services.open_store(user)
        lock = SessionLock(store.root)
        if not lock.acquire():
            return "in-use"
        try:
            box = store.mailbox("INBOX")
            box.sync()
            messages = box.messages()
            sizes = [box.message_vsize(m) for m in messages]
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        self.mailbox = box
        return messages, sizes

    def _opened(self, user: User, result: object, mech: str) -> list[Output]:
        if result == "in-use":
            log.info("pop3-in-use", user=user.name, ip=self.conn.peer_ip)
            return [self._err(f"{CODE_IN_USE}Mailbox is locked by another POP3 session")]
        if isinstance(result, BaseException):
            log.error("pop3-open-failed", user=user.name, error=repr(result))
            code = error_code(result) if isinstance(result, MailError) else CODE_TEMP
            return [self._err(f"{code}Cannot open the mailbox, try again later")]
        assert isinstance(result, tuple)
        lease = self.services.limits.login(user.name, exempt=self.conn.exempt)
        if lease is None:
            self._unlock()
            return [self._err(f"{CODE_IN_USE}Too many sessions for this user")]
        self._user_lease = lease
        self._messages, self._sizes = result
        self.user = user
        self.state = "TRANSACTION"
        self.authenticated = True
        self.timeout = TIMEOUT
        log.info(
            "login",
            proto="pop3",
            user=user.name,
            ip=self.conn.peer_ip,
            mech=mech,
            messages=len(self._messages),
        )
        return [self._ok("Logged in.")]

    def cmd_quit(self, arg: str) -> list[Output]:
        if self.state == "AUTHORIZATION":
            return [self._ok("Logging out"), Close()]
        return [Call(self._update, self._updated)]

    # -- TRANSACTION ----------------------------------------------------------------------

    def cmd_stat(self, arg: str) -> list[Output]:
        live = [i for i in range(1, len(self._messages) + 1) if i not in self._deleted]
        total = sum(self._sizes[i - 1] for i in live)
        return [self._ok(f"{len(live)} {total}")]

    def cmd_list(self, arg: str) -> list[Output]:
        if arg:
            n = self._number(arg)
            if n is None:
                return [self._err("No such message")]
            return [self._ok(f"{n} {self._sizes[n - 1]}")]
        lines = [
            f"{i} {size}\r\n" for i, size in enumerate(self._sizes, 1) if i not in self._deleted
        ]
        return [Send(("+OK scan listing follows\r\n" + "".join(lines) + ".\r\n").encode())]

    def _uidl(self, n: int) -> str:
        assert self.mailbox is not None
        msg = self._messages[n - 1]
        override = self.mailbox.record_field(msg, "P")
        # Dovecot's default pop3_uidl_format %08Xu%08Xv, as Dovecot prints it: a client that
        # moves from Dovecot to us sees the same UIDLs and downloads nothing again.
        return override or f"{msg.uid:08x}{self.mailbox.uidvalidity:08x}"

    def cmd_uidl(self, arg: str) -> list[Output]:
        if arg:
            n = self._number(arg)
            if n is None:
                return [self._err("No such message")]
            return [self._ok(f"{n} {self._uidl(n)}")]
        lines = [
            f"{i} {self._uidl(i)}\r\n"
            for i in range(1, len(self._messages) + 1)
            if i not in self._deleted
        ]
        return [Send(("+OK unique-id listing follows\r\n" + "".join(lines) + ".\r\n").encode())]

    def _open_message(self, n: int) -> object:
        assert self.mailbox is not None
        try:
            return self.mailbox.open_message(self._messages[n - 1].uid)
        except MailError as exc:
            return exc

    def cmd_retr(self, arg: str) -> list[Output]:
        n = self._number(arg)
        if n is None:
            return [self._err("No such message")]
        f = self._open_message(n)
        if isinstance(f, MailError):
            return [self._err(f"{error_code(f)}Message is no longer available")]
        self._retrieved.add(n)
        header = self._ok(f"{self._sizes[n - 1]} octets")
        return [header, Stream(stuffed(file_chunks(f)), lambda: [])]  # type: ignore[arg-type]

    def cmd_top(self, arg: str) -> list[Output]:
        parts = arg.split()
        if len(parts) != 2 or not parts[1].isascii() or not parts[1].isdigit():
            return self._bad_command("TOP needs a message number and a line count")
        n = self._number(parts[0])
        if n is None:
            return [self._err("No such message")]
        f = self._open_message(n)
        if isinstance(f, MailError):
            return [self._err(f"{error_code(f)}Message is no longer available")]
        lines = min(int(parts[1]), 1 << 30)
        chunks = stuffed(top_lines(f, lines))  # type: ignore[arg-type]
        return [self._ok("Top of message follows"), Stream(chunks, lambda: [])]

    def cmd_dele(self, arg: str) -> list[Output]:
        n = self._number(arg)
        if n is None:
            return [self._err("No such message")]
        self._deleted.add(n)
        return [self._ok("Marked to be deleted.")]

    def cmd_rset(self, arg: str) -> list[Output]:
        self._deleted.clear()
        self._retrieved.clear()
        return [self._ok()]

    def cmd_noop(self, arg: str) -> list[Output]:
        return [self._ok()]

    # -- UPDATE ---------------------------------------------------------------------------

    def _update(self) -> int:
        """In a thread: commit deletions and \\Seen flags (RFC 1939 section 6)."""
        box = self.mailbox
        assert box is not None
        box.sync()
        deleted = [self._messages[n - 1].uid for n in sorted(self._deleted)]
        seen = [self._messages[n - 1].uid for n in self._retrieved if n not in self._deleted]
        if seen:
            box.store_flags(seen, "add", ["\\Seen"])
        gone = box.expunge(deleted) if deleted else []
        return len(gone)

    def _updated(self, result: object) -> list[Output]:
        self.state = "UPDATE"
        self._unlock()
        if isinstance(result, BaseException):
            log.error(
                "pop3-update-failed", user=self.user.name if self.user else "", error=repr(result)
            )
            code = error_code(result) if isinstance(result, MailError) else CODE_TEMP
            return [self._err(f"{code}Some deleted messages were not removed"), Close()]
        log.info(
            "logout",
            proto="pop3",
            user=self.user.name if self.user else "",
            deleted=result,
            retrieved=len(self._retrieved),
        )
        return [self._ok("Logging out."), Close()]

    def _unlock(self) -> None:
        if self._user_lease is not None:
            self._user_lease.release()
            self._user_lease = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


_KNOWN = {
    "CAPA",
    "USER",
    "PASS",
    "AUTH",
    "STLS",
    "QUIT",
    "STAT",
    "LIST",
    "RETR",
    "DELE",
    "NOOP",
    "RSET",
    "TOP",
    "UIDL",
    "APOP",
}

# The state table: which command runs in which state (RFC 1939 sections 4-6).
_COMMANDS = {
    ("AUTHORIZATION", "CAPA"): Pop3Session.cmd_capa,
    ("AUTHORIZATION", "STLS"): Pop3Session.cmd_stls,
    ("AUTHORIZATION", "USER"): Pop3Session.cmd_user,
    ("AUTHORIZATION", "PASS"): Pop3Session.cmd_pass,
    ("AUTHORIZATION", "AUTH"): Pop3Session.cmd_auth,
    ("AUTHORIZATION", "QUIT"): Pop3Session.cmd_quit,
    ("TRANSACTION", "CAPA"): Pop3Session.cmd_capa,
    ("TRANSACTION", "STAT"): Pop3Session.cmd_stat,
    ("TRANSACTION", "LIST"): Pop3Session.cmd_list,
    ("TRANSACTION", "UIDL"): Pop3Session.cmd_uidl,
    ("TRANSACTION", "RETR"): Pop3Session.cmd_retr,
    ("TRANSACTION", "TOP"): Pop3Session.cmd_top,
    ("TRANSACTION", "DELE"): Pop3Session.cmd_dele,
    ("TRANSACTION", "RSET"): Pop3Session.cmd_rset,
    ("TRANSACTION", "NOOP"): Pop3Session.cmd_noop,
    ("TRANSACTION", "QUIT"): Pop3Session.cmd_quit,
}
