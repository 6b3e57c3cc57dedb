"""The Dovecot auth protocol, server side, without I/O: SMTP AUTH for Postfix and Exim.

Postfix's `smtpd_sasl_type = dovecot` (src/xsasl/xsasl_dovecot_server.c) and Exim's `dovecot`
authenticator hand the SASL exchange of their SMTP clients to Dovecot's auth-client socket.
This module is the server side of that protocol, version 1.2, as Dovecot 2.3 speaks it
(dovecot/core 2.3.19: src/auth/auth-client-connection.c for the handshake,
src/auth/auth-request-handler.c for AUTH, CONT, OK and FAIL, src/auth/auth-request-fields.c for
the parameters; the constants are in src/lib-auth/auth-client-interface.h). Lines end with LF;
fields are separated by TAB:

    S: VERSION 1 2                 sent at once on connect, without waiting for the client
    S: MECH PLAIN plaintext        a line per mechanism, with its security flags
    S: SPID <pid>   CUID <n>   COOKIE <32 hex digits>   DONE
    C: VERSION 1 <minor>           the major version must be 1
    C: CPID <pid>                  the handshake is over; requests may follow
    C: AUTH <id> <mech> service=smtp nologin lip=<ip> rip=<ip> [secured] [resp=<base64>]
    S: CONT <id> <base64>          a challenge; the client answers CONT <id> <base64>
    S: OK <id> user=<name>         authenticated (`resp=` the SCRAM server-final with
                                   `final-resp-ok`)
    S: FAIL <id> user=<name> [code=temp_fail|invalid_base64] [reason=<text>]
    C: CANCEL <id>

Requests carry their ids, so several may be in progress on one connection and be answered in
any order (Dovecot's own login processes multiplex their clients over one connection; Postfix
asks one at a time per smtpd process). The slow steps therefore run as `Spawn` and `Timer`
outputs (mra/session.py), which do not hold the next line back; at most `[limits]
auth_max_requests` may be in progress at once, and one more is answered FAIL at once.

A request is checked as an IMAP or POP3 login is (mra/auth, through `Policy`): the same user
database, the same throttles counted by the SMTP client's address (`rip=`; without it by the
login name only), the same failure delay before a FAIL is sent (Dovecot's auth_failure_delay),
the same `max_concurrent_hashes` threads for the hashing.

Where we differ from Dovecot, on purpose:

* Dovecot ends the connection for a request it calls a client bug (an unknown mechanism, no
  `service=`, a parameter after `resp=`). We answer FAIL with a `reason=` and go on: one bad
  request costs that request, not every SMTP session sharing the MTA's connection. What cannot
  be read past, or answered without lying about another request, still ends the connection
  (logged): a line longer than `[limits] auth_max_line`, a broken handshake, an unknown command,
  an AUTH without a usable id, an id already in progress.
* PLAIN and LOGIN are offered and run whether or not the request says `secured`: as in Dovecot
  2.3, the auth server leaves it to the MTA whether a password may cross its connection
  (Postfix: `smtpd_tls_auth_only = yes`, or `smtpd_sasl_security_options = noplaintext`).
* `nologin`, `lip`, `lport`, `rport`, `session`, `no-penalty` and the other parameters are
  accepted and ignored: no request here logs a user in to a mail process, and the throttles
  always apply (`no-penalty` would let the MTA switch them off for every SMTP client).

Values go out tab-escaped and come in tab-unescaped as Dovecot's str_tabescape() does (\\x01
\\t \\r \\n become \\x01 followed by 1, t, r, n), so a name cannot break the framing.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
from dataclasses import dataclass

from mailstore.errors import MailError
from mra import log
from mra.auth.sasl import (
    Challenge,
    Failure,
    NeedsLookup,
    NeedsVerification,
    SaslServer,
    Success,
    UnknownMechanism,
)
from mra.authserver.policy import Policy
from mra.session import Close, Output, Send, Session, Spawn, Timer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.userdb import User
    from mra.context import Connection, Services

MAJOR_VERSION = 1
MINOR_VERSION = 2  # what Dovecot 2.3 announces; 2 is where an empty `resp=` means "empty"
MAX_ID = 0xFFFFFFFF  # ids are unsigned 32-bit numbers (str_to_uint)
MAX_REASON = 200  # characters of a reason= we pass on (Postfix prints it to the SMTP client)

# Dovecot's security flags for each mechanism (src/auth/mech-*.c `.flags`, written out by
# mech_register_module()); Postfix filters on them (`smtpd_sasl_security_options`).
MECHANISM_FLAGS: dict[str, tuple[str, ...]] = {
    "SCRAM-SHA-256": ("mutual-auth",),
    "CRAM-MD5": ("dictionary", "active"),
    "PLAIN": ("plaintext",),
    "LOGIN": ("plaintext",),
}

FAIL_TEMP = "temp_fail"  # AUTH_CLIENT_FAIL_CODE_TEMPFAIL: try again later (Postfix 454)
FAIL_BASE64 = "invalid_base64"  # AUTH_CLIENT_FAIL_CODE_INVALID_BASE64

_connection_numbers = itertools.count(1)  # CUID: a number per connection of this process

_ESCAPES = {"\x01": "\x011", "\t": "\x01t", "\r": "\x01r", "\n": "\x01n"}
_UNESCAPES = {"1": "\x01", "t": "\t", "r": "\r", "n": "\n"}


def tabescape(value: str) -> str:
    """Dovecot's str_tabescape(): a value that can travel inside a TAB-separated line."""
    if not any(c in value for c in _ESCAPES):
        return value
    return "".join(_ESCAPES.get(c, c) for c in value)


def tabunescape(value: str) -> str:
    """Dovecot's str_tabunescape(): \\x01 and the letter after it become the character."""
    if "\x01" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\x01" and i + 1 < len(value):
            out.append(_UNESCAPES.get(value[i + 1], value[i + 1]))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _uint(text: str) -> int | None:
    """An unsigned 32-bit number in decimal (str_to_uint), or None."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class ProtocolError(Exception):
    """Input we cannot go on after: the connection ends (the text is for the log)."""


@dataclass
class Request:
    """One AUTH in progress."""

    id: int
    mechanism: str
    service: str
    address: str | None  # the SMTP client's (rip=), for the throttles and the log
    sasl: SaslServer[User]
    login: str | None = None  # the name the client gave, once the mechanism has it
    awaiting: bool = False  # a CONT was sent: the client's CONT is expected
    pending: bool = False  # a lookup, a hash or the failure delay is under way


class DovecotAuthSession(Session):
    """One connection of an MTA to `[listen] auth` (see the module documentation)."""

    authenticated = True  # no login of its own: the socket's permissions let the MTA in

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        limits = services.config.limits
        self.max_line = limits.auth_max_line
        self.max_requests = limits.auth_max_requests
        self.timeout = float(limits.auth_idle_timeout)
        self.policy = Policy(services, "auth")
        self._buffer = bytearray()
        self._client_minor: int | None = None  # the client's VERSION, once received
        self._handshake_done = False  # CPID received
        self._requests: dict[int, Request] = {}
        self._closed = False

    # -- events -------------------------------------------------------------------------------

    def greeting(self) -> list[Output]:
        authenticator = self.policy.authenticator
        lines = [f"VERSION\t{MAJOR_VERSION}\t{MINOR_VERSION}"]
        for name in authenticator.mechanisms(secure=True):
            lines.append("\t".join(("MECH", name, *MECHANISM_FLAGS.get(name, ()))))
        lines.append(f"SPID\t{os.getpid()}")
        lines.append(f"CUID\t{next(_connection_numbers)}")
        lines.append(f"COOKIE\t{os.urandom(16).hex()}")
        lines.append("DONE")
        return [Send("".join(line + "\n" for line in lines).encode())]

    def data_received(self, data: bytes) -> list[Output]:
        if self._closed:
            return []
        self._buffer += data
        outputs: list[Output] = []
        while not self._closed:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.max_line:
                    outputs += self._abort(f"a line longer than {self.max_line} bytes")
                break
            if end > self.max_line:
                outputs += self._abort(f"a line longer than {self.max_line} bytes")
                break
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                outputs += self._line(raw)
            except ProtocolError as exc:
                outputs += self._abort(str(exc))
        return outputs

    def shutdown(self) -> list[Output]:
        self._closed = True
        return [Close()]

    def connection_lost(self) -> None:
        self._closed = True
        self._requests.clear()

    def _abort(self, why: str) -> list[Output]:
        log.warn("auth-protocol-error", conn=self.conn.id, error=why)
        self._closed = True
        self._requests.clear()
        self._buffer.clear()
        return [Close()]

    # -- lines --------------------------------------------------------------------------------

    def _line(self, raw: bytes) -> list[Output]:
        if b"\0" in raw:
            raise ProtocolError("a NUL byte in a line")
        text = raw.decode("utf-8", "surrogateescape")
        args = text.split("\t")
        command = args[0]
        if not self._handshake_done:
            return self._handshake(command, args[1:])
        if command == "AUTH":
            return self._auth(args[1:])
        if command == "CONT":
            return self._cont(args[1:])
        if command == "CANCEL":
            return self._cancel(args[1:])
        raise ProtocolError(f"unknown command {command[:40]!r}")

    def _handshake(self, command: str, args: list[str]) -> list[Output]:
        if self._client_minor is None:
            if command != "VERSION" or len(args) != 2:
                raise ProtocolError("the client's first line is not VERSION")
            major, minor = _uint(args[0]), _uint(args[1])
            if major is None or minor is None:
                raise ProtocolError("a VERSION that is not two numbers")
            if major != MAJOR_VERSION:
                raise ProtocolError(f"protocol version {major}, not {MAJOR_VERSION}")
            self._client_minor = minor
            return []
        if command != "CPID" or len(args) != 1:
            raise ProtocolError(f"{command[:40]!r} where CPID was expected")
        pid = _uint(args[0])
        if not pid:
            raise ProtocolError("a CPID that is not a process id")
        self._handshake_done = True
        return []

    def _auth(self, args: list[str]) -> list[Output]:
        # AUTH <id> <mechanism> [name[=value]]... [resp=<base64>]
        if len(args) < 2:
            raise ProtocolError("an AUTH without id and mechanism")
        request_id = _uint(args[0])
        if not request_id:
            raise ProtocolError("an AUTH without a usable id")
        if request_id in self._requests:
            # FAIL would answer the request in progress; Dovecot disconnects too.
            raise ProtocolError(f"AUTH id {request_id} is already in progress")
        if len(self._requests) >= self.max_requests:
            log.warn("auth-too-many-requests", conn=self.conn.id, limit=self.max_requests)
            return self._fail_now(request_id, "Too many requests in progress", FAIL_TEMP)
        mechanism = args[1].upper()
        params: dict[str, str] = {}
        initial: str | None = None
        rest = args[2:]
        for i, arg in enumerate(rest):
            name, _, value = arg.partition("=")
            if name == "resp":
                if i != len(rest) - 1:
                    return self._fail_now(request_id, "Parameters after resp")
                initial = value
                break
            params[name] = tabunescape(value)
        service = params.get("service", "")
        if not service:
            return self._fail_now(request_id, "No service given")
        address = params.get("rip") or None
        if address is not None and len(address) > 64:  # an address, not a text
            address = None
        try:
            sasl = self.policy.authenticator.sasl_server(
                mechanism, secure=True, success_data="final-resp-ok" in params
            )
        except UnknownMechanism:
            return self._fail_now(request_id, "Unsupported authentication mechanism")
        if mechanism not in self.policy.authenticator.mechanisms(secure=True):
            # Known to the SASL code but not usable with this database (CRAM-MD5 without a
            # single {PLAIN} or {CRAM-MD5} secret): not announced, so not run.
            return self._fail_now(request_id, "Unsupported authentication mechanism")
        data: bytes | None
        if initial is None:
            data = None
        elif initial in ("", "="):
            # Before minor version 2 an empty resp= meant "none" (Exim sent it so).
            data = None if initial == "" and (self._client_minor or 0) < 2 else b""
        else:
            try:
                data = base64.b64decode(initial, validate=True)
            except (binascii.Error, ValueError):
                return self._fail_now(
                    request_id, "Invalid base64 data in initial response", FAIL_BASE64
                )
        request = Request(request_id, mechanism, service, address, sasl)
        self._requests[request_id] = request
        if not self.policy.allowed(address, None):
            return self._failed(request, "throttled")
        return self._outcome(request, sasl.step(data))

    def _cont(self, args: list[str]) -> list[Output]:
        # CONT <id> <base64>
        if len(args) != 2:
            raise ProtocolError("a CONT that is not CONT <id> <data>")
        request_id = _uint(args[0])
        if request_id is None:
            raise ProtocolError("a CONT without a usable id")
        request = self._requests.get(request_id)
        if request is None:
            # What Dovecot answers for an id it does not know (it may have timed out).
            return self._fail_now(request_id, "Authentication request timed out", forget=False)
        if not request.awaiting:
            # Whatever was under way for it is dropped when it completes: one answer per id.
            return self._fail_now(request_id, "Unexpected continuation")
        request.awaiting = False
        try:
            data = base64.b64decode(args[1], validate=True)
        except (binascii.Error, ValueError):
            return self._fail_now(
                request_id, "Invalid base64 data in continued response", FAIL_BASE64
            )
        return self._outcome(request, request.sasl.step(data))

    def _cancel(self, args: list[str]) -> list[Output]:
        request_id = _uint(args[0]) if len(args) == 1 else None
        if request_id is None:
            raise ProtocolError("a CANCEL without a usable id")
        # A lookup or hash under way is let finish; its result finds no request and is dropped.
        self._requests.pop(request_id, None)
        return []

    # -- the SASL exchange --------------------------------------------------------------------

    def _outcome(self, request: Request, outcome: object) -> list[Output]:
        if isinstance(outcome, NeedsLookup):
            request.login = outcome.login
            if not self.policy.allowed(request.address, outcome.login):
                return self._failed(request, "throttled")
        if isinstance(outcome, NeedsLookup | NeedsVerification):
            request.pending = True
            sasl = request.sasl

            def steps() -> object:
                """In a hashing thread: the lookup and the check it leads to, in one hop (a
                thread hop costs more than a {PLAIN} check). The reactor leaves the request
                alone meanwhile: it is pending."""
                step: object = outcome
                while isinstance(step, NeedsLookup | NeedsVerification):
                    step = sasl.complete(step.run())
                return step

            return [Spawn(steps, lambda result: self._completed(request, result), "auth")]
        if isinstance(outcome, Challenge):
            request.awaiting = True
            challenge = base64.b64encode(outcome.data).decode("ascii")
            return [Send(f"CONT\t{request.id}\t{challenge}\n".encode())]
        if isinstance(outcome, Success):
            return self._succeeded(request, outcome)
        assert isinstance(outcome, Failure)
        request.login = outcome.authcid or request.login
        return self._failed(request, outcome.reason)

    def _completed(self, request: Request, result: object) -> list[Output]:
        request.pending = False
        if self._closed or self._requests.get(request.id) is not request:
            return []  # cancelled, or the connection is gone
        if isinstance(result, BaseException):
            why = result.message if isinstance(result, MailError) else repr(result)
            log.error("auth-backend-failed", proto="auth", login=request.login, error=why)
            return self._fail_now(request.id, "Temporary authentication failure", FAIL_TEMP)
        return self._outcome(request, result)

    def _succeeded(self, request: Request, outcome: Success[User]) -> list[Output]:
        del self._requests[request.id]
        account = outcome.account
        self.policy.succeeded(request.address, outcome.authcid, account.name, request.mechanism)
        line = f"OK\t{request.id}\tuser={tabescape(account.name)}"
        if outcome.data is not None:
            line += "\tresp=" + base64.b64encode(outcome.data).decode("ascii")
        return [Send((line + "\n").encode("utf-8", "surrogateescape"))]

    def _failed(self, request: Request, reason: str) -> list[Output]:
        """A wrong password, an unknown user, a throttled attempt: FAIL after the delay. The
        request stays in progress meanwhile (it counts against auth_max_requests)."""
        delay = self.policy.failed(request.address, request.login, request.mechanism, reason)
        request.pending = True
        request.awaiting = False

        def answer() -> list[Output]:
            if self._requests.get(request.id) is not request:
                return []
            del self._requests[request.id]
            return [Send(self._fail_line(request.id, request.login))]

        return [Timer(delay, answer)]

    def _fail_now(
        self, request_id: int, reason: str, code: str = "", *, forget: bool = True
    ) -> list[Output]:
        """A FAIL that is not a password check's verdict: at once, with the reason."""
        request = self._requests.get(request_id)
        if forget:
            self._requests.pop(request_id, None)
        login = request.login if request is not None else None
        return [Send(self._fail_line(request_id, login, reason, code))]

    @staticmethod
    def _fail_line(request_id: int, login: str | None, reason: str = "", code: str = "") -> bytes:
        line = f"FAIL\t{request_id}"
        if login:
            line += f"\tuser={tabescape(login)}"
        if code:
            line += f"\tcode={code}"
        if reason:
            line += f"\treason={tabescape(reason[:MAX_REASON])}"
        return (line + "\n").encode("utf-8", "surrogateescape")
