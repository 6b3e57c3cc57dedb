"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034): a sans-I/O session.

States are RFC 1939's: AUTHORIZATION until a login succeeds, then TRANSACTION on a snapshot of
INBOX taken at login (message numbers never change during the session), then UPDATE on QUIT,
where the deletions and the `\\Seen` flags of retrieved messages are committed. A connection
that drops commits nothing. The mailbox is locked for the session (`-ERR [IN-USE]`).

Every command answers; a malformed one, one in the wrong state, or an out-of-range number gets
`-ERR` and the session goes on. Only abuse ends it: too many bad commands in a row, the idle
timer (10 minutes, RFC 1939 section 3), a line far over the limit. Every text sent is in
response.py, with the one mapping of store errors to response codes.

One broken message costs only itself: a message whose file would be refused or cannot be read
(a symlink, a foreign hard link, no read permission: one lstat() each at login, see
Mailbox.check_servable) is left out of the snapshot and logged; one that still fails at RETR or
TOP gets `-ERR` for itself. Messages are held by their base name, not their UID, so a folder
renumbered during the session (see mailstore/mailbox.py) cannot make RETR or QUIT reach another
message. QUIT answers `+OK` only when every message marked deleted is gone from the disk
afterwards (RFC 1939 section 6); otherwise `-ERR` names the ones that are not.
"""

from __future__ import annotations

import base64
import binascii
import time

from mailstore.errors import MailError, MessageUnreadable, NotFound
from mailstore.uidlist import pop3_uidl
from mra import log, metrics
from mra.activity import Activity
from mra.context import SessionLock
from mra.pop3 import response as r
from mra.pop3.stuffing import file_chunks, stuffed, top_lines
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from mailstore.mailbox import Mailbox, Message
    from mailstore.userdb import User
    from mra.auth.throttle import Lease
    from mra.context import Connection, Services

MAX_LINE = 1024  # RFC 2449 section 4: at least 255 octets of argument; we allow more
MAX_BAD = 10
PREAUTH_TIMEOUT = 60.0
TIMEOUT = 600.0


class _Update:
    """What the UPDATE state did: how many messages were removed, the numbers of those marked
    deleted that are still there, and the first store error met."""

    __slots__ = ("error", "failed", "removed")

    def __init__(self) -> None:
        self.removed = 0
        self.failed: list[int] = []
        self.error: MailError | None = None


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
        self._uidvalidity = 0  # of the snapshot: UIDLs stay those of the login
        self._deleted: set[int] = set()
        self._retrieved: set[int] = set()
        self.activity = Activity()  # for the session-end line (mra/activity.py)

    # -- events ---------------------------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [Send(r.greeting(self.services.hostname))]

    def refuse(self, text: str) -> list[Output]:
        return [Send(r.refused(text)), Close()]

    def shutdown(self) -> list[Output]:
        self._unlock()
        return [Send(r.SHUTTING_DOWN), Close()]

    def idle_timeout(self) -> list[Output]:
        self._unlock()
        return [Send(r.IDLE_TIMEOUT), Close()]

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
                        out += self._bad_command(r.LINE_TOO_LONG)
                return out
            line = self._buffer[:nl].rstrip(b"\r")
            self._buffer = self._buffer[nl + 1 :]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > MAX_LINE:
                out += self._bad_command(r.LINE_TOO_LONG)
                continue
            result = self._line(line)
            out += result
            if result and isinstance(result[-1], (Call, Delay, Stream, StartTLS, Close)):
                if isinstance(result[-1], StartTLS):
                    self._buffer = b""  # RFC 2595 / CVE-2011-0411: pipelined plaintext dropped
                return out

    # -- helpers --------------------------------------------------------------------------

    def _bad_command(self, why: str) -> list[Output]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            log.warn("pop3-too-many-errors", ip=self.conn.peer_ip, conn=self.conn.id)
            self._unlock()
            return [Send(r.TOO_MANY_BAD), Close()]
        return [Send(r.bad_command(why))]

    def _line(self, line: bytes) -> list[Output]:
        if self._sasl is not None:
            return self._sasl_line(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self._bad_command(r.BAD_CHARACTERS)
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        handler = _COMMANDS.get((self.state, verb))
        if handler is None:
            if (verb in _KNOWN) and self.state != "AUTHORIZATION":
                return self._bad_command(r.not_in_this_state(verb))
            if verb in _KNOWN:
                return self._bad_command(r.needs_login(verb))
            return self._bad_command(r.UNKNOWN_COMMAND)
        self._bad = 0
        started = time.monotonic()
        return metrics.timed(handler(self, arg), "pop3", verb, started)

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
        return [Send(r.multiline(r.CAPABILITIES, caps))]

    def _mechanisms(self) -> list[str]:
        mechanisms = getattr(self.services.auth, "mechanisms", None)
        if mechanisms is None:
            return []
        result: list[str] = mechanisms(self.services.plaintext_allowed(self.conn))
        return result

    def cmd_stls(self, arg: str) -> list[Output]:
        if self.conn.tls:
            return self._bad_command(r.TLS_ACTIVE)
        if not self.conn.tls_available:
            return self._bad_command(r.TLS_UNAVAILABLE)
        return [Send(r.BEGIN_TLS), StartTLS()]

    def cmd_user(self, arg: str) -> list[Output]:
        if not self.services.plaintext_allowed(self.conn):
            return [Send(r.PLAINTEXT_USE_STLS)]
        if not arg or len(arg) > 255:
            return self._bad_command(r.USER_NEEDS_NAME)
        self._user_name = arg
        return [Send(r.ok())]

    def cmd_pass(self, arg: str) -> list[Output]:
        if self._user_name is None:
            return self._bad_command(r.USER_FIRST)
        if not self.services.plaintext_allowed(self.conn):
            return [Send(r.PLAINTEXT_DISALLOWED)]
        login, self._user_name = self._user_name, None
        auth = self.services.auth
        return [
            Call(
                lambda: auth.authenticate(login, arg, self.conn),  # type: ignore[attr-defined]
                lambda result: self._authenticated(login, result, "USER"),
                pool="auth",
            )
        ]

    def cmd_auth(self, arg: str) -> list[Output]:
        mech, _, initial = arg.partition(" ")
        if not mech:
            # Not in RFC 5034, but clients probe it: list the mechanisms (as Dovecot does).
            return [Send(r.multiline("", self._mechanisms()))]
        start = getattr(self.services.auth, "start_sasl", None)
        exchange = None if start is None else start(mech.upper(), self.conn)
        if exchange is None:
            return [Send(r.UNKNOWN_MECHANISM)]
        self._sasl = exchange
        self._sasl_mech = mech.upper()
        if initial:
            return self._sasl_line(initial.encode())
        return self._sasl_step(None)

    def _sasl_line(self, line: bytes) -> list[Output]:
        if line.strip() == b"*":
            self._sasl = None
            return [Send(r.AUTH_CANCELLED)]
        if line.strip() == b"=":
            data = b""
        else:
            try:
                data = base64.b64decode(line.strip(), validate=True)
            except (binascii.Error, ValueError):
                self._sasl = None
                return self._bad_command(r.BAD_BASE64)
        return self._sasl_step(data)

    def _sasl_step(self, data: bytes | None) -> list[Output]:
        from mra.auth.glue import sasl_outputs

        return sasl_outputs(self, data)

    def sasl_challenge(self, challenge: bytes) -> list[Output]:
        return [Send(r.challenge(challenge))]

    def sasl_done(self, login: str, user: User | None) -> list[Output]:
        self._sasl = None
        return self._authenticated(login, user, self._sasl_mech)

    def _authenticated(self, login: str, result: object, mech: str) -> list[Output]:
        auth = self.services.auth
        if isinstance(result, BaseException):
            log.error("pop3-auth-error", login=login, error=repr(result))
            return [Send(r.AUTH_UNAVAILABLE)]
        if result is None:
            log.info("login-failed", proto="pop3", login=login, ip=self.conn.peer_ip, mech=mech)
            delay = auth.failure_delay(self.conn, login)  # type: ignore[attr-defined]
            return [Delay(delay, lambda: [Send(r.AUTH_FAILED)])]
        auth.succeeded(self.conn, login)  # type: ignore[attr-defined]
        user: User = result  # type: ignore[assignment]
        return [Call(lambda: self._open(user), lambda res: self._opened(user, res, mech))]

    def _open(self, user: User) -> tuple[list[Message], list[int], int] | str:
        """In a thread: lock, open and snapshot INBOX."""
        store = self.services.open_store(user)
        lock = SessionLock(store.root)
        if not lock.acquire():
            return "in-use"
        try:
            box = store.mailbox("INBOX")
            box.sync()
            messages: list[Message] = []
            sizes: list[int] = []
            with box.reading():
                for msg in box.messages():
                    try:
                        box.check_servable(msg)
                        sizes.append(box.message_vsize(msg))
                    except NotFound:
                        continue  # expunged meanwhile
                    except MessageUnreadable as exc:
                        # One bad file must not lock its owner out of the rest (any other
                        # error is not the message's: the login fails with it).
                        log.warn(
                            "pop3-message-left-out", user=user.name, uid=msg.uid, error=exc.reason
                        )
                        continue
                    messages.append(msg)
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        self.mailbox = box
        return messages, sizes, box.uidvalidity

    def _opened(self, user: User, result: object, mech: str) -> list[Output]:
        if result == "in-use":
            log.info("pop3-in-use", user=user.name, ip=self.conn.peer_ip)
            return [Send(r.MAILBOX_LOCKED)]
        if isinstance(result, BaseException):
            log.error("pop3-open-failed", user=user.name, error=repr(result))
            if isinstance(result, MailError):
                return [Send(r.store_error(result, r.OPEN_FAILED))]
            return [Send(r.err(r.OPEN_FAILED, r.SYS_TEMP))]
        assert isinstance(result, tuple)
        lease = self.services.limits.login(
            user.name, address=self.conn.peer_ip, exempt=self.conn.exempt
        )
        if lease is None:
            self._unlock()
            return [Send(r.TOO_MANY_SESSIONS)]
        self._user_lease = lease
        self._messages, self._sizes, self._uidvalidity = result
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
        return [Send(r.LOGGED_IN)]

    def cmd_quit(self, arg: str) -> list[Output]:
        if self.state == "AUTHORIZATION":
            return [Send(r.LOGGING_OUT), Close()]
        return [Call(self._update, self._updated)]

    # -- TRANSACTION ----------------------------------------------------------------------

    def cmd_stat(self, arg: str) -> list[Output]:
        live = [i for i in range(1, len(self._messages) + 1) if i not in self._deleted]
        total = sum(self._sizes[i - 1] for i in live)
        return [Send(r.maildrop(len(live), total))]

    def cmd_list(self, arg: str) -> list[Output]:
        if arg:
            n = self._number(arg)
            if n is None:
                return [Send(r.NO_SUCH_MESSAGE)]
            return [Send(r.ok(r.scan_line(n, self._sizes[n - 1])))]
        # As a Stream: the listing of a big mailbox is made as the client reads it, and the
        # next pipelined command waits for that (SECURITY.md 2).
        lines = (
            r.scan_line(i, size) for i, size in enumerate(self._sizes, 1) if i not in self._deleted
        )
        return [Stream(r.multiline_chunks(r.SCAN_LISTING, lines), lambda: [])]

    def _uidl(self, n: int) -> str:
        assert self.mailbox is not None
        msg = self._messages[n - 1]
        override = self.mailbox.record_field(msg, "P")
        # Dovecot's default pop3_uidl_format: a client that moves from Dovecot to us sees the
        # same UIDLs and downloads nothing again. The UIDVALIDITY is the login's: the UIDs of
        # the snapshot are of that one.
        return override or pop3_uidl(msg.uid, self._uidvalidity)

    def cmd_uidl(self, arg: str) -> list[Output]:
        if arg:
            n = self._number(arg)
            if n is None:
                return [Send(r.NO_SUCH_MESSAGE)]
            return [Send(r.ok(r.uidl_line(n, self._uidl(n))))]
        lines = (
            r.uidl_line(i, self._uidl(i))
            for i in range(1, len(self._messages) + 1)
            if i not in self._deleted
        )
        return [Stream(r.multiline_chunks(r.UNIQUE_ID_LISTING, lines), lambda: [])]

    def _open_message(self, n: int) -> BinaryIO | MailError:
        assert self.mailbox is not None
        try:
            # By base name, not UID: the message of the snapshot, even after a renumbering.
            return self.mailbox.open_stored(self._messages[n - 1])
        except MailError as exc:
            log.warn(
                "pop3-message-unreadable",
                user=self.user.name if self.user else "",
                number=n,
                error=exc.message,
            )
            return exc

    def cmd_retr(self, arg: str) -> list[Output]:
        n = self._number(arg)
        if n is None:
            return [Send(r.NO_SUCH_MESSAGE)]
        f = self._open_message(n)
        if isinstance(f, MailError):
            return [Send(r.message_failed(n, f))]
        self._retrieved.add(n)
        self.activity.fetched += 1
        header = Send(r.message_size(self._sizes[n - 1]))
        return [header, Stream(stuffed(file_chunks(f)), lambda: [])]

    def cmd_top(self, arg: str) -> list[Output]:
        parts = arg.split()
        if len(parts) != 2 or not parts[1].isascii() or not parts[1].isdigit():
            return self._bad_command(r.TOP_ARGUMENTS)
        n = self._number(parts[0])
        if n is None:
            return [Send(r.NO_SUCH_MESSAGE)]
        f = self._open_message(n)
        if isinstance(f, MailError):
            return [Send(r.message_failed(n, f))]
        lines = min(int(parts[1]), 1 << 30)
        self.activity.fetched += 1
        chunks = stuffed(top_lines(f, lines))
        return [Send(r.TOP_FOLLOWS), Stream(chunks, lambda: [])]

    def cmd_dele(self, arg: str) -> list[Output]:
        n = self._number(arg)
        if n is None:
            return [Send(r.NO_SUCH_MESSAGE)]
        self._deleted.add(n)
        return [Send(r.MARKED_DELETED)]

    def cmd_rset(self, arg: str) -> list[Output]:
        self._deleted.clear()
        self._retrieved.clear()
        return [Send(r.ok())]

    def cmd_noop(self, arg: str) -> list[Output]:
        return [Send(r.ok())]

    # -- UPDATE ---------------------------------------------------------------------------

    def _update(self) -> _Update:
        """In a thread: commit deletions and \\Seen flags (RFC 1939 section 6), then check
        on the disk that every message marked deleted is gone: only then is QUIT `+OK`.

        Messages are found by base name (`uid_of_base`): their UIDs may have changed since
        the login (a renumbered folder), and a UID of the snapshot could now be another
        message's. A message already gone (another client expunged it) counts as removed."""
        box = self.mailbox
        assert box is not None
        done = _Update()
        box.sync()
        seen = []
        for n in self._retrieved - self._deleted:
            uid = box.uid_of_base(self._messages[n - 1].base)
            if uid is not None:
                seen.append(uid)
        if seen:
            try:
                box.store_flags(seen, "add", ["\\Seen"])
            except MailError as exc:  # not a deletion: logged, QUIT is still truthful
                log.warn("pop3-seen-failed", user=self._user_label(), error=exc.message)
        for n in sorted(self._deleted):
            uid = box.uid_of_base(self._messages[n - 1].base)
            if uid is None:
                continue
            try:
                done.removed += len(box.expunge([uid]))
            except MailError as exc:
                done.error = done.error or exc
                log.warn("pop3-delete-failed", user=self._user_label(), number=n, error=exc.message)
        box.sync()
        done.failed = [
            n
            for n in sorted(self._deleted)
            if box.uid_of_base(self._messages[n - 1].base) is not None
        ]
        return done

    def _user_label(self) -> str:
        return self.user.name if self.user else ""

    def _updated(self, result: object) -> list[Output]:
        self.state = "UPDATE"
        self._unlock()
        if isinstance(result, BaseException):
            log.error("pop3-update-failed", user=self._user_label(), error=repr(result))
            if isinstance(result, MailError):
                return [Send(r.store_error(result, r.UPDATE_FAILED)), Close()]
            return [Send(r.err(r.UPDATE_FAILED, r.SYS_TEMP)), Close()]
        assert isinstance(result, _Update)
        self.activity.deleted = len(self._deleted)
        self.activity.expunged = result.removed
        if result.failed:
            log.error("pop3-not-removed", user=self._user_label(), numbers=result.failed)
            return [Send(r.not_removed(result.failed, result.error)), Close()]
        log.info(
            "logout",
            proto="pop3",
            user=self._user_label(),
            deleted=result.removed,
            retrieved=len(self._retrieved),
        )
        return [Send(r.LOGGED_OUT), Close()]

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
