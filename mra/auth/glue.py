"""The authentication services the protocol sessions use: throttled logins and SASL exchanges.

`AuthService` puts the throttles (mra/auth/throttle.py) in front of the `Authenticator`, so that
POP3 and IMAP get the same policy: a blocked address or login is refused before any password is
checked, and a failure is answered only after the throttle's delay (2 s, growing with repeated
failures). `sasl_outputs` drives a `SaslServer` for a session as `Call`/`Send` outputs, so the
slow steps (password hashing) run in the thread pool.
"""

from __future__ import annotations

from mailstore.config import Config
from mailstore.errors import MailError
from mra import log
from mra.auth.authenticator import Authenticator
from mra.auth.sasl import (
    Challenge,
    Failure,
    NeedsLookup,
    NeedsVerification,
    PlaintextNotAllowed,
    SaslServer,
    Success,
    UnknownMechanism,
)
from mra.auth.throttle import AuthThrottle
from mra.context import Connection
from mra.session import Call, Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol

    from mailstore.userdb import User

    class SaslSession(Protocol):
        _sasl: object

        def sasl_challenge(self, challenge: bytes) -> list[Output]: ...

        def sasl_done(self, login: str, user: User | None) -> list[Output]: ...


class LoginRefused(Exception):
    """The throttle refuses this attempt (too many failures from this address or for this
    login); answered like a failed login, after the delay."""


class AuthService:
    def __init__(self, config: Config) -> None:
        from mda.resolve import Resolver

        self.config = config
        resolver = Resolver(config)
        userdb = None
        if not config.auth.passwd_file:
            from mailstore.userdb import open_userdb

            userdb = ShadowUsers(open_userdb(config), config.mail.first_valid_uid)
        self.authenticator = Authenticator.from_config(
            config,
            userdb=userdb,
            local_domains=lambda: resolver.local_domains,
        )
        self.throttle = AuthThrottle()

    def reload(self) -> None:
        refresh = getattr(self.authenticator.userdb, "refresh", None)
        if refresh is not None:
            try:
                refresh()
            except MailError as exc:
                log.error("userdb-reload-failed", error=exc.message)

    def mechanisms(self, plaintext_allowed: bool) -> list[str]:
        return self.authenticator.mechanisms(plaintext_allowed)

    def failure_delay(self, conn: Connection, login: str | None) -> float:
        return self.throttle.failed(conn.peer_ip, login, exempt=conn.exempt)

    def succeeded(self, conn: Connection, login: str) -> None:
        self.throttle.succeeded(conn.peer_ip, login, exempt=conn.exempt)

    def authenticate(self, login: str, password: str, conn: Connection) -> User | None:
        """Blocking (run it in a thread): the user, or None. Raises MailError when the user
        database cannot answer (a temporary failure, not a wrong password)."""
        verdict = self.throttle.check(conn.peer_ip, login, exempt=conn.exempt)
        if not verdict.allowed:
            log.warn("login-throttled", ip=conn.peer_ip, login=login, blocked=verdict.blocked)
            return None
        return self.authenticator.authenticate(login, password)

    def start_sasl(self, mechanism: str, conn: Connection) -> SaslServer[User] | None:
        verdict = self.throttle.check(conn.peer_ip, None, exempt=conn.exempt)
        if not verdict.allowed:
            return None
        try:
            return self.authenticator.sasl_server(mechanism, secure=conn.secure)
        except (UnknownMechanism, PlaintextNotAllowed):
            return None


def make_authenticator(config: Config) -> AuthService:
    return AuthService(config)


def sasl_outputs(session: SaslSession, data: bytes | None) -> list[Output]:
    """One step of the session's SASL exchange, as outputs."""
    server = session._sasl
    assert isinstance(server, SaslServer)
    return _outcome(session, server, server.step(data))


def _outcome(session: SaslSession, server: SaslServer[User], outcome: object) -> list[Output]:
    if isinstance(outcome, (NeedsLookup, NeedsVerification)):
        return [Call(outcome.run, lambda result: _completed(session, server, result), "auth")]
    if isinstance(outcome, Challenge):
        return session.sasl_challenge(outcome.data)
    if isinstance(outcome, Success):
        return session.sasl_done(outcome.authcid, outcome.account)
    assert isinstance(outcome, Failure)
    log.info("sasl-failed", reason=outcome.reason, login=outcome.authcid)
    return session.sasl_done(outcome.authcid or "", None)


def _completed(session: SaslSession, server: SaslServer[User], result: object) -> list[Output]:
    if isinstance(result, BaseException):
        log.error("sasl-backend-failed", error=repr(result))
        return session.sasl_done("", None)
    return _outcome(session, server, server.complete(result))


class ShadowUsers:
    """System users with their /etc/shadow hashes, for `[auth] passwd_file = ""`.

    /etc/shadow is readable by root only, and the server gives root up once its ports are
    bound: so the hashes are read at start-up (and again on SIGHUP, while that still works),
    and kept in memory. Accounts below `[mail] first_valid_uid` (1000: system accounts) and
    locked or passwordless ones (`!`, `*`, empty) cannot log in.
    """

    PATH = "/etc/shadow"

    def __init__(self, system: object, first_valid_uid: int = 1000) -> None:
        self.system = system
        self.first_valid_uid = first_valid_uid
        self.hashes: dict[str, str] = {}
        self.generation = 0  # counts the reads of /etc/shadow (for the unknown users' stand-in)
        self.refresh()

    def refresh(self) -> bool:
        try:
            with open(self.PATH, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            if not self.hashes:
                log.warn("shadow-unreadable", path=self.PATH, error=exc.strerror)
            return False
        hashes = {}
        for line in lines:
            fields = line.split(":")
            if len(fields) >= 2 and fields[1] and fields[1][0] not in "!*":
                hashes[fields[0]] = fields[1]
        self.hashes = hashes
        self.generation += 1
        return True

    def lookup(self, address: str, local_domains: object = ()) -> User | None:
        user: User | None = self.system.lookup(address, local_domains)  # type: ignore[attr-defined]
        if user is None or user.uid is None or user.uid < self.first_valid_uid:
            return None
        stored = self.hashes.get(user.name)
        if not stored:
            return user
        from mailstore.userdb import User

        # {CRYPT}: crypt(3), as Dovecot's shadow passdb checks it ($6$, $y$ yescrypt...).
        return User(
            name=user.name,
            local=user.local,
            domain=user.domain,
            password="{CRYPT}" + stored,
            uid=user.uid,
            gid=user.gid,
            home=user.home,
            mail_root=user.mail_root,
            quota_bytes=user.quota_bytes,
            extra=user.extra,
        )

    def users(self) -> Iterator[User]:
        return iter(())  # their passwords are not offered to SASL mechanisms needing secrets

    def password_hashes(self) -> list[str]:
        """The stored passwords, as `lookup` gives them: what a typical check costs."""
        return ["{CRYPT}" + stored for stored in self.hashes.values()]
