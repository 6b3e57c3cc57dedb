"""ManageSieve (RFC 5804) as a sans-I/O session: the connection's state, the event loop, and
the commands of the way in and out (CAPABILITY, NOOP, LOGOUT, STARTTLS, AUTHENTICATE,
UNAUTHENTICATE). The script commands are in scripts.py, the reader in reader.py, every text
in response.py, the disk in storage.py.

States (RFC 5804 section 2): NONAUTH until AUTHENTICATE succeeds, then AUTH; UNAUTHENTICATE
(section 2.14.1) goes back. The table `COMMANDS` says which command runs in which state; any
other is refused with NO, as the RFC requires, and counts as a bad command.

The event loop is the IMAP session's: the reader gives one event at a time; a handler whose
last output blocks (`Call`, `Delay`, `Stream`, `StartTLS`, `Close`) stops the loop, and the
adapter feeds `b""` once it is done, which goes on where it stopped. The reader never parses
ahead, so the SASL mode that AUTHENTICATE sets applies to exactly the next line.

Logins use the same services as IMAP and POP3 (mra/auth): the SASL mechanisms, the throttles
and their failure delay, `max_sessions_per_user`, plaintext only over TLS or loopback unless
`[auth] allow_plaintext`; the adapter holds the connection to `[limits] login_timeout` until
`authenticated` is set. Timeouts: 60 s idle before login, 30 minutes after (RFC 5804 1.2: "MUST
be no less than 30 minutes after successful authentication"). Ten bad commands in a row end
the session.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable

from mra import log
from mra.auth.glue import sasl_outputs
from mra.auth.sasl import PLAINTEXT_MECHANISMS
from mra.managesieve import checker
from mra.managesieve import response as r
from mra.managesieve.reader import (
    COMMAND,
    SASL,
    Arg,
    Bad,
    Busy,
    Command,
    CommandReader,
    Event,
    Fatal,
    ReaderLimits,
    SaslResponse,
    ScriptTooLarge,
    String,
)
from mra.managesieve.storage import Quota, ScriptStorage
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.userdb import User
    from mra.context import Connection, Services

NONAUTH = "NONAUTH"
AUTH = "AUTH"
LOGOUT = "LOGOUT"

PREAUTH_TIMEOUT = 60.0
AUTH_TIMEOUT = 30 * 60.0  # RFC 5804 section 1.2
MAX_BAD = 10
BLOCKING = (Call, Delay, Stream, Close, StartTLS)


class Refusal(Exception):
    """A command refused with `NO (code) "text"`; `bad` counts it as a bad command."""

    def __init__(self, text: str, code: str | None = None, bad: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.bad = bad


class ManageSieveSession(Session):
    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.state = NONAUTH
        self.timeout = PREAUTH_TIMEOUT
        settings = services.config.managesieve
        self.quota = Quota(settings.max_script_size, settings.max_scripts, settings.max_storage)
        self.literals = services.literal_pool
        self.reader = CommandReader(
            ReaderLimits(max_script_size=settings.max_script_size), self.literals
        )
        self.user: User | None = None
        self.storage: ScriptStorage | None = None
        self._lease: object = None
        self._holding = 0  # pool octets of the command running now
        self._bad = 0
        # An AUTHENTICATE exchange under way (mra.auth.glue drives it through these).
        self._sasl: object | None = None
        self._sasl_mech = ""

    # -- what handlers use ----------------------------------------------------------------

    def capabilities(self) -> list[tuple[str, str | None]]:
        """RFC 5804 section 1.7; SASL and STARTTLS before login, OWNER after."""
        caps: list[tuple[str, str | None]] = [
            ("IMPLEMENTATION", r.IMPLEMENTATION),
            ("SIEVE", " ".join(checker.extensions(self.services.config))),
        ]
        if self.state == NONAUTH:
            caps.append(("SASL", " ".join(self.mechanisms())))
            if self.conn.tls_available and not self.conn.tls:
                caps.append(("STARTTLS", None))
        elif self.user is not None:
            caps.append(("OWNER", self.user.name))
        caps.append(("MAXREDIRECTS", str(checker.max_redirects(self.services.config))))
        notify = checker.notify_methods(self.services.config)
        if notify:
            caps.append(("NOTIFY", " ".join(notify)))
        caps += [("UNAUTHENTICATE", None), ("VERSION", r.VERSION)]
        return caps

    def mechanisms(self) -> list[str]:
        mechanisms = getattr(self.services.auth, "mechanisms", None)
        if mechanisms is None:
            return []
        result: list[str] = mechanisms(self.services.plaintext_allowed(self.conn))
        return result

    def store(self) -> ScriptStorage:
        assert self.storage is not None
        return self.storage

    def user_name(self) -> str:
        return self.user.name if self.user is not None else ""

    def release(self) -> None:
        """Give back the per-user session slot (LOGOUT, UNAUTHENTICATE, close, shutdown)."""
        release = getattr(self._lease, "release", None)
        if release is not None:
            release()
        self._lease = None

    # -- events from the adapter ----------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [Send(r.capabilities(self.capabilities()) + r.ok(r.GREETING))]

    def refuse(self, text: str) -> list[Output]:
        return [Send(r.bye(text)), Close()]

    def shutdown(self) -> list[Output]:
        self.release()
        return [Send(r.bye(r.SHUTTING_DOWN)), Close()]

    def idle_timeout(self) -> list[Output]:
        self.release()
        return [Send(r.bye(r.IDLE_TIMEOUT)), Close()]

    def connection_lost(self) -> None:
        self.release()
        self._finished()
        self.reader.close()

    def tls_started(self) -> list[Output]:
        # RFC 5804 2.2: the capabilities again, without STARTTLS, then OK.
        self.conn.tls = True
        return [Send(r.capabilities(self.capabilities()) + r.ok(r.TLS_DONE))]

    def data_received(self, data: bytes) -> list[Output]:
        self.reader.feed(data)
        out: list[Output] = []
        while self.state != LOGOUT:
            self._finished()  # whatever ran before is done: its script can go
            event = self.reader.next_event()
            if event is None:
                break
            if isinstance(event, Command):
                self._holding = event.held
            result = self._event(event)
            out += result
            if result and isinstance(result[-1], BLOCKING):
                break
        return out

    def _finished(self) -> None:
        if self._holding:
            self.literals.release(self._holding)
            self._holding = 0

    # -- dispatch -------------------------------------------------------------------------

    def _event(self, event: Event) -> list[Output]:
        if isinstance(event, Command):
            return self._command(event)
        if isinstance(event, SaslResponse):
            return sasl_response(self, event)
        if self._sasl is not None and not isinstance(event, Fatal):
            # A response line the reader could not read: its NO ends AUTHENTICATE for the
            # client (RFC 5804 2.1), so the exchange ends here too, or the client's next
            # command would be taken for the response.
            self._sasl = None
            self.reader.mode = COMMAND
            return [Send(r.no(r.AUTH_BAD_RESPONSE))]
        if isinstance(event, ScriptTooLarge):
            return [Send(r.no(r.too_large(event.limit), r.QUOTA_MAXSIZE))]
        if isinstance(event, Busy):
            log.warn("managesieve-literal-pool-full", ip=self.conn.peer_ip, conn=self.conn.id)
            return [Send(r.no(r.SERVER_BUSY, r.TRYLATER))]
        if isinstance(event, Bad):
            return self._bad_input(r.no(event.message))
        if isinstance(event, Fatal):
            log.warn("managesieve-fatal", ip=self.conn.peer_ip, reason=event.message)
            self.release()
            self.state = LOGOUT
            return [Send(r.bye(event.message)), Close()]
        return []

    def _bad_input(self, line: bytes) -> list[Output]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            log.warn("managesieve-too-many-errors", ip=self.conn.peer_ip, conn=self.conn.id)
            self.release()
            self.state = LOGOUT
            return [Send(line + r.bye(r.TOO_MANY_BAD)), Close()]
        return [Send(line)]

    def _command(self, cmd: Command) -> list[Output]:
        from mra.managesieve.scripts import SCRIPT_COMMANDS

        entry = COMMANDS.get(cmd.name) or SCRIPT_COMMANDS.get(cmd.name)
        if entry is None:
            return self._bad_input(r.no(r.UNKNOWN_COMMAND))
        handler, states = entry
        if self.state not in states:
            if self.state == NONAUTH:
                text = r.NOT_AUTHENTICATED if cmd.name == "UNAUTHENTICATE" else r.NEED_LOGIN
            else:
                text = r.ALREADY_AUTHENTICATED
            return self._bad_input(r.no(text))
        try:
            result = handler(self, cmd.args)
        except Refusal as exc:
            if exc.bad:
                return self._bad_input(r.no(exc.text, exc.code))
            result = [Send(r.no(exc.text, exc.code))]
        self._bad = 0
        return result

    # -- SASL (mra.auth.glue calls these) -------------------------------------------------

    def sasl_challenge(self, challenge: bytes) -> list[Output]:
        self.reader.mode = SASL
        return [Send(r.challenge(challenge))]

    def sasl_done(self, login: str, user: User | None) -> list[Output]:
        self._sasl = None
        self.reader.mode = COMMAND
        return _logged_in(self, login, user, self._sasl_mech)

    def logged_in(self, user: User, lease: object, storage: ScriptStorage) -> None:
        self._lease = lease
        self.user = user
        self.storage = storage
        self.state = AUTH
        self.authenticated = True  # the adapter's login deadline stops
        self.timeout = AUTH_TIMEOUT
        self.reader.authenticated = True

    def logged_out(self) -> None:
        self.release()
        self.user = None
        self.storage = None
        self.state = NONAUTH
        self.authenticated = False
        self.timeout = PREAUTH_TIMEOUT
        self.reader.authenticated = False


# --- argument helpers -----------------------------------------------------------------------


def arity(args: tuple[Arg, ...], low: int, high: int | None = None) -> None:
    if not low <= len(args) <= (low if high is None else high):
        raise Refusal(r.BAD_ARGUMENTS, bad=True)


def string_arg(arg: Arg) -> bytes:
    if not isinstance(arg, String):
        raise Refusal(r.BAD_ARGUMENTS, bad=True)
    return arg.data


# --- the way in and out ---------------------------------------------------------------------


def capability(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 0)
    return [Send(r.capabilities(s.capabilities()) + r.ok(r.CAPABILITY_DONE))]


def noop(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    """RFC 5804 2.13: OK, with the client's tag echoed in a TAG response code."""
    arity(args, 0, 1)
    if not args:
        return [Send(r.ok(r.NOOP_DONE))]
    if not isinstance(args[0], String):
        raise Refusal(r.BAD_TAG)
    return [Send(r.ok(r.NOOP_TAGGED, "TAG", args[0].data))]


def logout(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    # RFC 5804 2.3: OK, then close; commands after it are ignored (state LOGOUT).
    s.release()
    s.state = LOGOUT
    if s.user is not None:
        log.info("logout", proto="managesieve", user=s.user.name, ip=s.conn.peer_ip)
    return [Send(r.ok(r.LOGOUT_DONE)), Close()]


def starttls(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 0)
    if s.conn.tls:
        raise Refusal(r.TLS_ACTIVE)
    if not s.conn.tls_available:
        raise Refusal(r.TLS_UNAVAILABLE)
    s.reader.take_buffered()  # RFC 5804 2.2: nothing sent in the clear runs as if encrypted
    return [Send(r.ok(r.TLS_BEGIN)), StartTLS()]


def authenticate(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    """RFC 5804 2.1: AUTHENTICATE "MECH" ["initial response"], challenges and responses as
    base64 strings, `"*"` cancels. The SASL exchange is mra.auth's (as IMAP's and POP3's);
    SCRAM's server-final-message goes as one more challenge, answered with an empty string,
    as in the RFC's second DIGEST-MD5 example."""
    arity(args, 1, 2)
    mech = string_arg(args[0]).decode("ascii", "replace").upper()
    initial = string_arg(args[1]) if len(args) == 2 else None
    if mech in PLAINTEXT_MECHANISMS and not s.services.plaintext_allowed(s.conn):
        raise Refusal(r.PLAINTEXT_DISALLOWED, r.ENCRYPT_NEEDED)
    start = getattr(s.services.auth, "start_sasl", None)
    exchange = None if start is None else start(mech, s.conn)
    if exchange is None:
        if mech in s.mechanisms():  # offered, so it is the throttle saying no
            return _logged_in(s, "", None, mech)
        raise Refusal(r.UNSUPPORTED_MECHANISM)
    s._sasl, s._sasl_mech = exchange, mech
    if initial is None:
        return sasl_outputs(s, None)
    return _sasl_data(s, initial)


def sasl_response(s: ManageSieveSession, event: SaslResponse) -> list[Output]:
    s.reader.mode = COMMAND
    if s._sasl is None:
        return []
    value = event.value
    if value is None:
        s._sasl = None
        return [Send(r.no(r.AUTH_BAD_RESPONSE))]
    if value.data == b"*" and not value.literal:
        s._sasl = None
        return [Send(r.no(r.AUTH_CANCELLED))]
    return _sasl_data(s, value.data)


def _sasl_data(s: ManageSieveSession, data: bytes) -> list[Output]:
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        s._sasl = None
        s.reader.mode = COMMAND
        return [Send(r.no(r.AUTH_BAD_RESPONSE))]
    return sasl_outputs(s, decoded)


def _logged_in(s: ManageSieveSession, login: str, result: object, mech: str) -> list[Output]:
    service = s.services.auth
    conn = s.conn
    if isinstance(result, BaseException):
        log.error("managesieve-auth-error", login=login, error=repr(result))
        return [Send(r.no(r.AUTH_UNAVAILABLE, r.TRYLATER))]
    if result is None:
        log.info("login-failed", proto="managesieve", login=login, ip=conn.peer_ip, mech=mech)
        delay = service.failure_delay(conn, login)  # type: ignore[attr-defined]
        failed = r.no(r.AUTH_FAILED)
        return [Delay(delay, lambda: [Send(failed)])]
    user: User = result  # type: ignore[assignment]
    service.succeeded(conn, login)  # type: ignore[attr-defined]
    if not user.home or not os.path.isabs(user.home):
        log.warn("managesieve-no-home", user=user.name, ip=conn.peer_ip)
        return [Send(r.no(r.NO_HOME))]
    lease = s.services.limits.login(user.name, address=conn.peer_ip, exempt=conn.exempt)
    if lease is None:
        return [Send(r.no(r.TOO_MANY_SESSIONS, r.TRYLATER))]
    owner = None
    if user.uid is not None:
        owner = (user.uid, user.gid if user.gid is not None else user.uid)
    s.logged_in(user, lease, ScriptStorage(user.home, s.quota, owner))
    log.info("login", proto="managesieve", user=user.name, ip=conn.peer_ip, mech=mech)
    return [Send(r.ok(r.LOGGED_IN))]


def unauthenticate(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    """RFC 5804 2.14.1: back to the non-authenticated state, keeping TLS; never fails."""
    arity(args, 0)
    log.info("unauthenticate", proto="managesieve", user=s.user_name(), ip=s.conn.peer_ip)
    s.logged_out()
    return [Send(r.ok(r.UNAUTHENTICATED))]


Handler = Callable[[ManageSieveSession, tuple[Arg, ...]], list[Output]]
ANY = frozenset({NONAUTH, AUTH})
COMMANDS: dict[str, tuple[Handler, frozenset[str]]] = {
    "CAPABILITY": (capability, ANY),
    "NOOP": (noop, ANY),
    "LOGOUT": (logout, ANY),
    "STARTTLS": (starttls, frozenset({NONAUTH})),
    "AUTHENTICATE": (authenticate, frozenset({NONAUTH})),
    "UNAUTHENTICATE": (unauthenticate, frozenset({AUTH})),
}
