"""What both auth sockets ask of the server's authentication, on the reactor thread.

`Policy` wraps the process's `AuthService` (mra/auth/glue.py): the user database and password
schemes (`authenticator`), and the throttle, which is not thread-safe and so is only ever
touched here, from the reactor, never from the hashing threads. The address a throttle counts
is the SMTP client's (`rip=`), or None when the MTA did not say (saslauthd never does): then
only the login name is counted (see mra/auth/throttle.py).
"""

from __future__ import annotations

from mra import log
from mra.auth.authenticator import Authenticator
from mra.auth.throttle import AuthThrottle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Services


class Policy:
    """The authentication of one process, as the auth sockets use it."""

    def __init__(self, services: Services, proto: str) -> None:
        auth = services.auth
        authenticator = getattr(auth, "authenticator", None)
        throttle = getattr(auth, "throttle", None)
        if not isinstance(authenticator, Authenticator) or not isinstance(throttle, AuthThrottle):
            raise TypeError("the auth sockets need the server's AuthService")
        self.authenticator = authenticator
        self.throttle = throttle
        self.proto = proto

    def allowed(self, address: str | None, login: str | None) -> bool:
        """May an attempt go ahead now? False while the address or the login is blocked."""
        verdict = self.throttle.check(address, login)
        if not verdict.allowed:
            log.warn(
                "login-throttled",
                proto=self.proto,
                ip=address,
                login=login,
                blocked=verdict.blocked,
            )
        return verdict.allowed

    def failed(self, address: str | None, login: str | None, mech: str, reason: str) -> float:
        """Count a failure and log it; the seconds to wait before saying so."""
        log.info("login-failed", proto=self.proto, login=login, ip=address, mech=mech, why=reason)
        return self.throttle.failed(address, login)

    def succeeded(self, address: str | None, login: str, user: str, mech: str) -> None:
        """A success is the MTA's to log (Postfix: `sasl_username=`; sendmail: `authid=`), as
        Dovecot's auth logs none by default: here it is a debug line (MRA_DEBUG=1). At
        thousands of checks a second, a line each costs more than the check."""
        self.throttle.succeeded(address, login)
        log.debug("login", proto=self.proto, user=user, ip=address, mech=mech)
