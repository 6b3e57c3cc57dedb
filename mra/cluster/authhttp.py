"""nginx's `auth_http` protocol, server side: check a mail login and say which node serves it.

nginx's mail proxy (ngx_mail_auth_http_module, https://nginx.org/en/docs/mail/
ngx_mail_auth_http_module.html) runs the login dialogue with the client itself (IMAP LOGIN or
AUTHENTICATE PLAIN/LOGIN, POP3 USER/PASS or AUTH PLAIN/LOGIN), then asks us over HTTP/1.0:

    GET /auth HTTP/1.0
    Auth-Method: plain            plain (also for LOGIN and USER/PASS), apop, cram-md5, external
    Auth-User: alice%40example.test          escaped by nginx: %XX for space, %, and controls
    Auth-Pass: s3cret
    Auth-Protocol: imap           imap, pop3 or smtp
    Auth-Login-Attempt: 1         counts up on one client connection
    Client-IP: 192.0.2.42

and reads only the answer's headers:

    Auth-Status: OK               Auth-Server: 10.0.0.12   Auth-Port: 143
    Auth-Status: Invalid login or password      Auth-Wait: 2

With `Auth-Wait`, nginx waits that many seconds, then gives the client the error and lets it
try again on the same connection; without it, nginx gives the error at once and closes. After
OK, nginx connects to Auth-Server:Auth-Port and logs in there with the same name and password
(IMAP LOGIN, POP3 USER/PASS): nginx cannot pass a SASL exchange through, and has no way but
the password to tell the node who the user is (its XCLIENT is SMTP's only). So the node checks
the password a second time; its own throttles never see the failures (they stop here), and
its per-address limits exempt the proxies (`[cluster] proxies`), whose connections carry
every user.

What we do as IMAP's LOGIN does (mra/auth, through mra/authserver/policy.py's `Policy`): the
same user database and password check in the same `max_concurrent_hashes` threads, the same
throttles counted by the client's address (`Client-IP`) and the login name, and the same
failure delay, here handed to nginx as `Auth-Wait` (rounded up to whole seconds, nginx's
unit) so that a client behind nginx waits as long as one talking to a node directly. Past
`[cluster] max_login_attempts` on one connection, the answer carries no Auth-Wait, so nginx
closes the connection, and the answer itself is held back for the delay instead.

Only plain: APOP and CRAM-MD5 would need the cleartext password in `Auth-Pass` of our
answer, which a store of hashes does not have; `external` and SMTP are not ours to serve.

Who may ask: only `[cluster] proxies` (the answer says where a user's mail is, and each
request is a password guess); anyone else gets 403 and a log line.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from mailstore.errors import MailError
from mra import log
from mra.authserver.policy import Policy
from mra.cluster.ring import Ring

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.userdb import User

__all__ = ["AuthAnswer", "AuthQuery", "Decision", "parse_query", "proxy_allowed"]

INVALID = "Invalid login or password"
TEMPORARY = "Temporary server problem, try again later"
TEMPORARY_WAIT = 5  # seconds nginx waits before telling the client to try again later
PROTOCOLS = ("imap", "pop3")
MAX_FIELD = 1024  # bytes of an unescaped name or password


@dataclass(frozen=True)
class AuthQuery:
    """One request, its escaping undone."""

    login: str
    password: str
    protocol: str
    attempt: int
    client_ip: str | None


@dataclass(frozen=True)
class AuthAnswer:
    """The headers of one answer, and how long to hold it back before sending."""

    headers: tuple[tuple[str, str], ...]
    hold: float = 0.0


def _unescape(value: str) -> str:
    """Undo nginx's ngx_escape_uri(NGX_ESCAPE_MAIL_AUTH): %XX for every byte it escaped.
    The header arrives as latin-1 text (twisted.web and the HTTP grammar); its bytes are the
    client's, UTF-8 when the client sent UTF-8."""
    raw = unquote_to_bytes(value.encode("latin-1", "replace"))
    return raw.decode("utf-8", "surrogateescape")


def _address(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def parse_query(headers: Mapping[str, str]) -> AuthQuery | str:
    """The request, or why it cannot be served (an Auth-Status text). Header names are
    matched without regard to case (the caller lowers them)."""
    method = headers.get("auth-method", "").strip().lower()
    if method != "plain":
        return f"Unsupported authentication method {method[:20]!r}"
    protocol = headers.get("auth-protocol", "").strip().lower()
    if protocol not in PROTOCOLS:
        return f"Unsupported protocol {protocol[:20]!r}"
    login = _unescape(headers.get("auth-user", ""))
    password = _unescape(headers.get("auth-pass", ""))
    attempt_text = headers.get("auth-login-attempt", "1").strip()
    attempt = int(attempt_text) if attempt_text.isascii() and attempt_text.isdigit() else 1
    return AuthQuery(
        login=login,
        password=password,
        protocol=protocol,
        attempt=min(attempt, 1_000_000),
        client_ip=_address(headers.get("client-ip")),
    )


def proxy_allowed(peer: str, proxies: tuple[str, ...]) -> bool:
    """Is `peer` one of the configured proxy addresses (IPv4-mapped IPv6 as its IPv4)?"""
    address = _address(peer)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        address = str(ip.ipv4_mapped)
    return address in {_address(p) for p in proxies}


class Decision:
    """The checks of one request, without I/O: `start` gives either an answer or a blocking
    password check to run in the hashing pool, whose result `finish` turns into the answer."""

    def __init__(self, policy: Policy, ring: Ring, max_attempts: int) -> None:
        self.policy = policy
        self.ring = ring
        self.max_attempts = max_attempts

    def start(self, query: AuthQuery) -> AuthAnswer | Callable[[], object]:
        if not query.login or not query.password or len(query.login) > MAX_FIELD:
            return self._failed(query, "empty or overlong login or password")
        if len(query.password) > MAX_FIELD or "\0" in query.login:
            return self._failed(query, "unusable login or password")
        if not self.policy.allowed(query.client_ip, query.login):
            return self._failed(query, "throttled")
        authenticator = self.policy.authenticator
        return lambda: authenticator.authenticate(query.login, query.password)

    def finish(self, query: AuthQuery, result: object) -> AuthAnswer:
        if isinstance(result, BaseException):
            why = result.message if isinstance(result, MailError) else repr(result)
            log.error("auth-backend-failed", proto="auth_http", login=query.login, error=why)
            return AuthAnswer((("Auth-Status", TEMPORARY), ("Auth-Wait", str(TEMPORARY_WAIT))))
        if result is None:
            return self._failed(query, "wrong password or unknown user")
        user: User = result  # type: ignore[assignment]
        self.policy.succeeded(query.client_ip, query.login, user.name, "PLAIN")
        node = self.ring.owner(user.name)
        if node is None:
            log.error("no-node-up", user=user.name, nodes=len(self.ring.nodes))
            return AuthAnswer((("Auth-Status", TEMPORARY), ("Auth-Wait", str(TEMPORARY_WAIT))))
        log.info(
            "auth-routed", user=user.name, node=node.name, proto=query.protocol, ip=query.client_ip
        )
        return AuthAnswer(
            (
                ("Auth-Status", "OK"),
                ("Auth-Server", node.address),
                ("Auth-Port", str(node.port(query.protocol))),
            )
        )

    def _failed(self, query: AuthQuery, reason: str) -> AuthAnswer:
        delay = self.policy.failed(query.client_ip, query.login or None, "PLAIN", reason)
        if query.attempt >= self.max_attempts:
            # No Auth-Wait: nginx closes the connection; the delay is ours to keep instead.
            return AuthAnswer((("Auth-Status", INVALID),), hold=delay)
        wait = max(1, math.ceil(delay))
        return AuthAnswer((("Auth-Status", INVALID), ("Auth-Wait", str(wait))))
