"""Commands of any state and the way in and out: CAPABILITY, NOOP, LOGOUT, ID (RFC 3501 6.1,
RFC 2971), STARTTLS, LOGIN and AUTHENTICATE (RFC 3501 6.2, RFC 4959 SASL-IR), UNAUTHENTICATE
(RFC 8437).

Passwords are checked in the thread pool (`Call`); a failure answers after the throttle's delay
(`Delay`). The SASL exchange itself is driven by mra.auth.glue, which calls back
`sasl_challenge` and `sasl_done` through the session.
"""

from __future__ import annotations

import base64
import binascii

from mra import log
from mra.auth.glue import sasl_outputs
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_astring
from mra.imap.commands import mailboxes
from mra.imap.commands.spec import LOGOUT, Request
from mra.imap.events import ContinuationLine
from mra.imap.values import Atom
from mra.session import Call, Close, Delay, Output, Send, StartTLS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.userdb import User
    from mra.imap.session import ImapSession


def capability(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req, untagged=r.capability_response(s.capabilities()))


def noop(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req)


def logout(s: ImapSession, req: Request) -> list[Output]:
    s.state = LOGOUT
    s.release()
    return [Send(r.say(None, r.LOGGING_OUT) + r.say(req.tag, r.LOGOUT_DONE)), Close()]


def id_(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req, untagged=b'* ID ("name" "mra")\r\n')


def starttls(s: ImapSession, req: Request) -> list[Output]:
    if s.conn.tls:
        raise r.Refusal(r.TLS_ACTIVE)
    if s.compression is not None:  # after UNAUTHENTICATE: TLS would go above the DEFLATE layer
        raise r.Refusal(r.TLS_AFTER_COMPRESS)
    if not s.conn.tls_available:
        raise r.Refusal(r.TLS_UNAVAILABLE)
    s.drop_input()  # RFC 3501 6.2.1: nothing sent in the clear may run as if encrypted
    return [Send(r.say(req.tag, r.TLS_BEGIN)), StartTLS()]


def login(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError("LOGIN needs a user name and a password")
    if not s.services.plaintext_allowed(s.conn):
        raise r.Refusal(r.PLAINTEXT_DISABLED)
    name = as_astring(req.args[0]).decode("utf-8", "replace")
    password = as_astring(req.args[1]).decode("utf-8", "surrogateescape")
    service = s.services.auth
    conn = s.conn
    return [
        Call(
            lambda: service.authenticate(name, password, conn),  # type: ignore[attr-defined]
            lambda result: _logged_in(s, req.tag, name, result, "LOGIN"),
            pool="auth",
        )
    ]


def authenticate(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if not args or not isinstance(args[0], Atom):
        raise ArgumentError("AUTHENTICATE needs a mechanism")
    mech = args[0].value.upper()
    start = getattr(s.services.auth, "start_sasl", None)
    exchange = None if start is None else start(mech, s.conn)
    if exchange is None:
        raise r.Refusal(r.UNSUPPORTED_MECHANISM)
    s._sasl, s._sasl_tag, s._sasl_mech = exchange, req.tag, mech
    if len(args) > 1:  # SASL-IR (RFC 4959): "=" is an empty initial response
        initial = as_astring(args[1])
        return _sasl_data(s, b"" if initial == b"=" else initial)
    return sasl_outputs(s, None)


def sasl_line(s: ImapSession, event: ContinuationLine) -> list[Output]:
    """A line of the client's side of the exchange; `*` cancels (RFC 3501 6.2.2)."""
    if event.cancelled:
        s._sasl = None
        return [Send(r.say(s._sasl_tag, r.AUTH_CANCELLED))]
    return _sasl_data(s, event.data)


def _sasl_data(s: ImapSession, line: bytes) -> list[Output]:
    try:
        data = base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        s._sasl = None
        return [Send(r.say(s._sasl_tag, r.INVALID_BASE64))]
    return sasl_outputs(s, data)


def sasl_challenge(s: ImapSession, challenge: bytes) -> list[Output]:
    s.feed_reader(s.reader.expect_line())
    return [Send(r.continuation_data(challenge))]


def sasl_done(s: ImapSession, login: str, user: User | None) -> list[Output]:
    s._sasl = None
    return _logged_in(s, s._sasl_tag, login, user, s._sasl_mech)


def unauthenticate(s: ImapSession, req: Request) -> list[Output]:
    """RFC 8437: back to the not authenticated state on the same connection (and its TLS):
    the mailbox is closed without expunging, the user's session slot given back, ENABLEd
    extensions forgotten, and the next command is read with the pre-login limits."""
    if req.args:
        raise ArgumentError("UNAUTHENTICATE takes no arguments")
    user = s.user.name if s.user is not None else ""
    s.logged_out()
    log.info("unauthenticate", proto="imap", user=user, ip=s.conn.peer_ip)
    return [Send(r.completed(req.tag, req.name))]


def _logged_in(s: ImapSession, tag: str, login: str, result: object, mech: str) -> list[Output]:
    service = s.services.auth
    conn = s.conn
    if isinstance(result, BaseException):
        log.error("imap-auth-error", login=login, error=repr(result))
        return [Send(r.say(tag, r.AUTH_UNAVAILABLE))]
    if result is None:
        log.info("login-failed", proto="imap", login=login, ip=conn.peer_ip, mech=mech)
        delay = service.failure_delay(conn, login)  # type: ignore[attr-defined]
        failed = r.say(tag, r.AUTH_FAILED)
        return [Delay(delay, lambda: [Send(failed)])]
    user: User = result  # type: ignore[assignment]
    lease = s.services.limits.login(user.name, address=conn.peer_ip, exempt=conn.exempt)
    if lease is None:
        return [Send(r.say(tag, r.TOO_MANY_SESSIONS))]
    service.succeeded(conn, login)  # type: ignore[attr-defined]
    s.logged_in(user, lease)
    log.info("login", proto="imap", user=user.name, ip=conn.peer_ip, mech=mech)
    # The auto folders and the quota limit (which the capabilities name), in the thread pool.
    return [Call(lambda: mailboxes.prepare(s), lambda result: _welcome(s, tag, result))]


def _welcome(s: ImapSession, tag: str, prepared: object) -> list[Output]:
    if isinstance(prepared, BaseException):  # the login stands: the folders can wait
        log.error("imap-login-prepare-failed", error=repr(prepared))
    return [Send(r.say(tag, r.LOGGED_IN, r.Code.capability(s.capabilities())))]
