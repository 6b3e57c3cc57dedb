"""The glue between the user database and the password checks, for both protocols.

    auth = Authenticator.from_config(config, local_domains=domains)
    user = auth.authenticate(login, password)       # IMAP LOGIN, POP3 USER/PASS (slow: thread)
    names = auth.mechanisms(secure=tls_or_loopback)  # what to advertise
    exchange = auth.sasl_server("SCRAM-SHA-256", secure=...)  # AUTHENTICATE / AUTH

`authenticate` looks the user up and verifies the password; an unknown user's password is
verified against a stand-in, the stored hash of a typical user of the database (see
mra/auth/hashcost.py), so that the time taken does not tell who exists. At most
`max_concurrent_hashes` checks run at once. To keep the slow part off the reactor while the
lookup stays on it, use `lookup_for_sasl` then `verify_user` (in a thread), which is what
`authenticate` does.

Lookups raise MailError (TemporaryFailure) when the user database cannot answer, or when the
user's entry is unusable: answer with a temporary failure, not "wrong password".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Final, Protocol

from mailstore.errors import MailError
from mailstore.userdb import SystemUsers, User, open_userdb
from mra.auth import passwords
from mra.auth.hashcost import BoundedVerify, StandIn, file_stamp
from mra.auth.sasl import SaslServer, VerifyFunction, mechanisms

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

__all__ = ["Authenticator", "UserDatabase"]


class UserDatabase(Protocol):
    """`mailstore.userdb.PasswdFile` or `SystemUsers`."""

    def lookup(self, address: str, local_domains: Collection[str] = ()) -> User | None: ...

    def users(self) -> Iterator[User]: ...


_CLEARTEXT: Final = frozenset({"PLAIN", "CLEAR", "CLEARTEXT"})
_CRAM: Final = _CLEARTEXT | {"CRAM-MD5", "HMAC-MD5"}
_SCRAM: Final = _CLEARTEXT | {"SCRAM-SHA-256"}
_USABLE_TTL: Final = 60.0  # seconds between scans of the database for `mechanisms`


class Authenticator:
    """Logins against one user database (see the module documentation).

    `local_domains` (or a function giving them, re-read on each lookup) lets `alice@example.test`
    find a bare `alice` entry, as mail delivery does. `verify` is `passwords.verify` unless a
    test passes another; with `max_concurrent_hashes`, at most that many run at once.
    `dummy_hash` fixes the stand-in for unknown users (by default, a typical user's hash,
    recomputed when the database changes); `hostname` goes into CRAM-MD5 challenges.
    """

    def __init__(
        self,
        userdb: UserDatabase,
        *,
        allow_plaintext: bool = False,
        local_domains: Collection[str] | Callable[[], Collection[str]] = (),
        dummy_hash: str | None = None,
        verify: VerifyFunction = passwords.verify,
        max_concurrent_hashes: int | None = None,
        hostname: str = "localhost",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.userdb = userdb
        self.allow_plaintext = allow_plaintext
        self._local_domains = local_domains
        self.stand_in: Callable[[], str] = (
            StandIn(self._stored_passwords, self._passdb_stamp)
            if dummy_hash is None
            else lambda: dummy_hash
        )
        if max_concurrent_hashes is not None:
            verify = BoundedVerify(verify, max_concurrent_hashes)
        self._verify = verify
        self.hostname = hostname
        self._clock = clock
        self._usable: tuple[float, frozenset[str]] | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        userdb: UserDatabase | None = None,
        local_domains: Collection[str] | Callable[[], Collection[str]] = (),
        hostname: str = "localhost",
    ) -> Authenticator:
        """From `[auth]`: the user database it names (unless given), `allow_plaintext` and
        `max_concurrent_hashes`."""
        return cls(
            userdb if userdb is not None else open_userdb(config),
            allow_plaintext=config.auth.allow_plaintext,
            local_domains=local_domains,
            max_concurrent_hashes=config.auth.max_concurrent_hashes,
            hostname=hostname,
        )

    def local_domains(self) -> Collection[str]:
        domains = self._local_domains
        return domains() if callable(domains) else domains

    @property
    def dummy_hash(self) -> str:
        """What an unknown user's password is checked against now (slow: a scan of the
        database when it changed)."""
        return self.stand_in()

    def _stored_passwords(self) -> Iterable[str]:
        hashes = getattr(self.userdb, "password_hashes", None)
        if hashes is not None:  # ShadowUsers: /etc/shadow's, not offered to SASL
            return list(hashes())
        if isinstance(self.userdb, SystemUsers):
            return ()
        return [user.password for user in self.userdb.users()]

    def _passdb_stamp(self) -> object:
        path = getattr(self.userdb, "path", None)
        if isinstance(path, str):
            return file_stamp(path)()
        return getattr(self.userdb, "generation", 0)

    # --- logins with a password: IMAP LOGIN, POP3 USER/PASS ---------------------------------

    def lookup_for_sasl(self, login: str) -> User | None:
        """The user a login name names, or None; raises MailError if the database cannot say.

        Cheap (a passwd-file lookup is a stat and a dict access): fine on the reactor.
        """
        if not login or "\0" in login:
            return None
        return self.userdb.lookup(login, self.local_domains())

    def verify_user(self, user: User | None, password: str | bytes, login: str = "") -> bool:
        """True if `password` is `user`'s. Slow by design: run it in a thread pool.

        With no user (unknown login) or a user without a password, it verifies against the
        stand-in anyway and returns False, taking as long as a typical user's check.
        """
        stored = user.password if user is not None else ""
        if isinstance(password, str):
            password = password.encode("utf-8", "surrogateescape")
        name = user.name if user is not None else login
        ok = self._verify(stored or self.stand_in(), password, user=name)
        return ok and user is not None and bool(stored)

    def authenticate(self, login: str, password: str | bytes) -> User | None:
        """The user if `password` is right for `login`, else None. Slow: run it in a thread.

        An empty login or password never authenticates. Raises MailError when the user
        database cannot answer.
        """
        if not login or not password:
            return None
        user = self.lookup_for_sasl(login)
        return user if self.verify_user(user, password, login) else None

    # --- SASL: IMAP AUTHENTICATE, POP3 AUTH -------------------------------------------------

    def mechanisms(self, secure: bool) -> list[str]:
        """The SASL mechanisms to advertise on a connection, best first.

        PLAIN and LOGIN only when `secure` (TLS or loopback) or `[auth] allow_plaintext`.
        CRAM-MD5 and SCRAM-SHA-256 only if some user's stored password allows them (in the
        clear, or as a {CRAM-MD5} or {SCRAM-SHA-256} secret): a client offered them picks them
        over PLAIN, and would then fail for a user with, say, a {SHA512-CRYPT} hash.
        """
        return mechanisms(secure, self.allow_plaintext, usable=self._usable_mechanisms())

    def _usable_mechanisms(self) -> frozenset[str]:
        now = self._clock()
        if self._usable is not None and now - self._usable[0] < _USABLE_TTL:
            return self._usable[1]
        usable = {"PLAIN", "LOGIN"}
        if not isinstance(self.userdb, SystemUsers):  # their passwords are not ours to see
            try:
                for user in self.userdb.users():
                    scheme = passwords.scheme_of(user.password) if user.password else None
                    if scheme in _CRAM:
                        usable.add("CRAM-MD5")
                    if scheme in _SCRAM:
                        usable.add("SCRAM-SHA-256")
                    if len(usable) == 4:
                        break
            except MailError:
                # The database is unreadable right now: offer only what needs no secret of it;
                # logins will report the failure.
                pass
        result = frozenset(usable)
        self._usable = (now, result)
        return result

    def sasl_server(
        self, mechanism: str, *, secure: bool, success_data: bool = False
    ) -> SaslServer[User]:
        """A SASL exchange for `mechanism`; raises sasl.UnknownMechanism or
        sasl.PlaintextNotAllowed (see `SaslServer`)."""
        return SaslServer(
            mechanism,
            self.lookup_for_sasl,
            self._verify,
            secure=secure,
            allow_plaintext=self.allow_plaintext,
            hostname=self.hostname,
            dummy_hash=self.stand_in,
            success_data=success_data,
        )
