"""The saslauthd protocol, server side, without I/O: password checks for Cyrus SASL.

Cyrus SASL with `pwcheck_method: saslauthd` (sendmail's SMTP AUTH, Cyrus IMAP, anything built
on libsasl2) does not run the SASL exchange itself through us: its PLAIN or LOGIN plugin gets
the name and password from the SMTP client and asks saslauthd whether they are right
(cyrus-sasl lib/checkpw.c, saslauthd_verify_password(); the server side is saslauthd's
ipc_unix.c, do_request()). One request a connection, four counted strings, each a 2-byte
length in network order and then that many bytes:

    C: <len> login  <len> password  <len> service  <len> realm
    S: <len> "OK" [text]     or     <len> "NO" [text]

and the client closes. libsasl2 looks only at the first two bytes of the answer.

What we do as saslauthd does: a field longer than the bound (`[limits] saslauthd_max_field`;
the client itself sends at most 8 KB in all) is answered NO at once, without reading on; an
empty login or password is NO; a request cut short gets nothing (the client is gone). What we
do as IMAP and POP3 do (mra/auth, through `Policy`): the same user database, the throttle and
failure delay (by login name only: the protocol carries no client address), the same hashing
threads. A temporary failure of the user database is NO too (the protocol has nothing else);
it is logged as an error, not counted as a failed guess.

The realm: libsasl2 splits what the SMTP client typed, `alice@example.test`, into the login
`alice` and the realm `example.test`; for a name without a domain it passes the server's own
realm (sendmail's `confAUTH_REALM`, its host name by default). So, as saslauthd with `-r`, the
user is `login@realm` when that names one; otherwise the login alone, looked up as IMAP looks
up a name without a domain (a bare passwd-file user, or the only local domain's). The
throttle and the log count the name as `login@realm`.
"""

from __future__ import annotations

from mailstore.errors import MailError
from mra import log
from mra.authserver.policy import Policy
from mra.session import Call, Close, Delay, Output, Send, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Connection, Services

FIELDS = ("login", "password", "service", "realm")
MECHANISM = "saslauthd"  # what the log says for the mechanism: libsasl2 ran the real one


def answer(text: str) -> bytes:
    """A counted reply: 2-byte length in network order, then the text."""
    data = text.encode("utf-8", "surrogateescape")[:0xFFFF]
    return len(data).to_bytes(2, "big") + data


class SaslauthdSession(Session):
    """One request of libsasl2 to `[listen] saslauthd` (see the module documentation)."""

    authenticated = True  # no login of its own: the socket's permissions let the client in

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        limits = services.config.limits
        self.max_field = limits.saslauthd_max_field
        self.timeout = float(limits.auth_idle_timeout)
        self.policy = Policy(services, "saslauthd")
        self._buffer = bytearray()
        self._fields: list[str] = []
        self._done = False  # the request is complete (or refused): the rest is ignored

    def data_received(self, data: bytes) -> list[Output]:
        if self._done:
            return []
        self._buffer += data
        while len(self._fields) < len(FIELDS):
            if len(self._buffer) < 2:
                return []
            length = int.from_bytes(self._buffer[:2], "big")
            if length > self.max_field:
                name = FIELDS[len(self._fields)]
                log.warn("saslauthd-field-too-long", field=name, length=length, conn=self.conn.id)
                return self._reply(f"NO {name} too long")
            if len(self._buffer) < 2 + length:
                return []
            value = bytes(self._buffer[2 : 2 + length])
            del self._buffer[: 2 + length]
            self._fields.append(value.decode("utf-8", "surrogateescape"))
        self._buffer.clear()
        return self._check(*self._fields)

    def _reply(self, text: str) -> list[Output]:
        self._done = True
        self._fields = []  # the password goes as soon as it is no longer needed
        return [Send(answer(text)), Close()]

    def _check(self, login: str, password: str, service: str, realm: str) -> list[Output]:
        self._done = True
        if not login or "\0" in login or "\0" in realm:
            return self._reply("NO empty login")
        if not password:
            return self._reply("NO empty password")
        name = f"{login}@{realm}" if realm and "@" not in login else login
        if not self.policy.allowed(None, name):
            return self._failed(name, "throttled")
        self._fields = []
        return [
            Call(
                lambda: self._verify(login, name, password),
                lambda result: self._checked(name, service, result),
                pool="auth",
            )
        ]

    def _verify(self, login: str, name: str, password: str) -> object:
        """In a hashing thread: the user `name` (else `login`) names, if `password` is its."""
        authenticator = self.policy.authenticator
        user = authenticator.lookup_for_sasl(name)
        if user is None and name != login:
            user = authenticator.lookup_for_sasl(login)
        return user if authenticator.verify_user(user, password, name) else None

    def _checked(self, login: str, service: str, result: object) -> list[Output]:
        if isinstance(result, BaseException):
            why = result.message if isinstance(result, MailError) else repr(result)
            log.error("auth-backend-failed", proto="saslauthd", login=login, error=why)
            return self._reply("NO temporary failure")
        if result is None:
            return self._failed(login, "wrong password or unknown user")
        name = str(getattr(result, "name", login))
        self.policy.succeeded(None, login, name, MECHANISM)
        log.debug("saslauthd-service", service=service)
        return self._reply("OK")

    def _failed(self, login: str, reason: str) -> list[Output]:
        delay = self.policy.failed(None, login, MECHANISM, reason)
        return [Delay(delay, lambda: self._reply("NO authentication failed"))]
