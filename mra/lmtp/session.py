"""LMTP (RFC 2033) as a sans-I/O session: octets in, replies and work out (see mra/session.py).

    LHLO name         the capabilities: PIPELINING ENHANCEDSTATUSCODES 8BITMIME SIZE SMTPUTF8
    MAIL FROM:<s>     SIZE=, BODY=7BIT|8BITMIME, SMTPUTF8
    RCPT TO:<r>       resolved now, in a thread: 250, or the refusal (550 5.1.1 unknown user...)
    DATA              354, the message, then ONE REPLY PER ACCEPTED RECIPIENT (RFC 2033 4.2)
    RSET NOOP QUIT VRFY HELP

The states are few: before LHLO, ready, in a transaction (after MAIL), reading data, and
delivering. What touches files (resolving a recipient, delivering) is a `Call`, so the
reactor only parses and writes; input that comes meanwhile waits (the adapter holds it), so a
pipelining client's commands are answered in order, each as if alone. A delivery's replies go
out only when it has returned, that is once every copy is fsynced (transaction.py).

Bad input (SECURITY.md 2, "LMTP"): lines that end in a bare LF or hold a CR or NUL, and lines
past `[lmtp] max_line_length`, are refused unread (reader.py); a message past `[mail]
max_message_size`, or one the process has no memory for (`[limits] max_literal_memory`), is
read to its end, dropped, and refused for every recipient (552 5.3.4, 452 4.3.1); one with a
NUL or a bare LF too (554 5.6.0); RCPTs past `[lmtp] max_recipients` get 452 4.5.3; a client
that goes away before the end of its data has nothing stored and nothing acknowledged; ten
bad commands in a row end the connection. 8-bit data without BODY=8BITMIME is taken as it is
(logged): the store is 8-bit clean, and refusing it would bounce mail the MTA has accepted.
"""

from __future__ import annotations

from mra import log
from mra.lmtp import commands, response
from mra.lmtp.reader import BadLine, Message, Reader
from mra.lmtp.transaction import LmtpService, Recipient, Trace, Transaction
from mra.session import Call, Close, Output, Send, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Connection, Services

IDLE_TIMEOUT = 300.0  # RFC 5321 4.5.3.2.7: a server waits 5 minutes for the next command
MAX_ERRORS = 10  # bad commands in a row before the connection is closed (as IMAP's)


class LmtpSession(Session):
    timeout = IDLE_TIMEOUT
    # No login in LMTP (the socket's permissions, or the access map for TCP, decide who may
    # connect): LHLO stands for it, so a client gets `[limits] login_timeout` to say it,
    # however busy it keeps the connection meanwhile (SECURITY.md 3).
    authenticated = False

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.config = services.config
        self.service: LmtpService = services.shared("lmtp", lambda: LmtpService(self.config))
        self.reader = Reader(self.config.lmtp.max_line_length, services.literal_pool)
        self.helo = ""  # the LHLO name, once given
        self.txn: Transaction | None = None
        self.errors = 0
        self.closed = False
        self.delivering = False
        self.stop_after = False  # the server is stopping: close once the delivery is answered

    # -- events ------------------------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [Send(response.greeting(self.services.hostname))]

    def refuse(self, text: str) -> list[Output]:
        self.closed = True
        return [Send(response.refused(text)), Close()]

    def data_received(self, data: bytes) -> list[Output]:
        if self.closed:
            return []
        self.reader.feed(data)
        return self._run()

    def idle_timeout(self) -> list[Output]:
        """Silent for IDLE_TIMEOUT, or no LHLO by the login deadline: 421, closed."""
        self.closed = True
        self.reader.close()
        return [Send(response.TIMEOUT), Close()]

    def shutdown(self) -> list[Output]:
        if self.delivering:
            self.stop_after = True  # the replies first: the mail is being stored
            return []
        self.closed = True
        return [Send(response.SHUTTING_DOWN), Close()]

    def connection_lost(self) -> None:
        """Gone, maybe in the middle of a message: nothing of it is stored or kept."""
        self.closed = True
        self.reader.close()
        self.txn = None

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> list[Output]:
        """Answer what the buffer holds, up to the first piece of work for a thread."""
        out: list[Output] = []
        while not self.closed:
            if self.reader.in_data:
                message = self.reader.read_message()
                if message is None:
                    break
                out += self._end_of_data(message)
            else:
                line = self.reader.next_line()
                if line is None:
                    break
                out += self._line(line)
            if out and isinstance(out[-1], Call | Close):
                break
        return _joined(out)

    def _line(self, line: bytes | BadLine) -> list[Output]:
        if isinstance(line, BadLine):
            return self._error(response.bad_line(line.why))
        verb, rest = commands.split(line)
        handler = _HANDLERS.get(verb)
        if handler is None:
            if verb in ("HELO", "EHLO"):
                return self._error(response.USE_LHLO)
            if verb in ("BDAT", "STARTTLS", "AUTH", "EXPN", "ETRN", "TURN"):
                return self._error(response.NOT_IMPLEMENTED)
            return self._error(response.UNKNOWN)
        try:
            return handler(self, rest)
        except commands.Refusal as exc:
            reply = response.bad_address(exc.code, exc.status, exc.text)
            return self._error(reply) if exc.status.startswith("5.5.") else self._refuse(reply)

    def _refuse(self, reply: bytes) -> list[Output]:
        """A refusal that is no mistake of the client's (an unknown user, a full mailbox, too
        many recipients): answered, not counted as a bad command."""
        return [Send(reply)]

    def _error(self, reply: bytes) -> list[Output]:
        """A command that breaks the protocol: ten in a row end the connection."""
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.closed = True
            return [Send(reply), Send(response.TOO_MANY_ERRORS), Close()]
        return [Send(reply)]

    def _ok(self, reply: bytes) -> list[Output]:
        self.errors = 0
        return [Send(reply)]

    # -- commands ----------------------------------------------------------------------

    def _lhlo(self, rest: str) -> list[Output]:
        self.helo = commands.lhlo_name(rest)
        self.authenticated = True
        self._reset()
        return self._ok(response.lhlo(self.services.hostname, self.config.mail.max_message_size))

    def _mail(self, rest: str) -> list[Output]:
        if not self.helo:
            return self._error(response.SEND_LHLO)
        if self.txn is not None:
            return self._error(response.NESTED_MAIL)
        mail = commands.mail_from(rest)
        limit = self.config.mail.max_message_size
        if mail.size is not None and mail.size > limit:
            return self._refuse(response.too_big(limit))
        self.txn = Transaction(self.service, mail.sender, mail.body, mail.utf8)
        return self._ok(response.SENDER_OK)

    def _rcpt(self, rest: str) -> list[Output]:
        txn = self.txn
        if txn is None:
            return self._error(response.NEED_MAIL)
        address = commands.rcpt_to(rest, txn.utf8)
        if txn.attempted >= self.config.lmtp.max_recipients:
            return self._refuse(response.TOO_MANY_RECIPIENTS)
        txn.attempted += 1
        known = txn.known(address)
        if known is not None:
            txn.recipients.append(known)
            return self._ok(response.RECIPIENT_OK)

        def then(result: object) -> list[Output]:
            if self.txn is not txn or self.closed:
                return []
            if isinstance(result, Recipient):
                txn.recipients.append(result)
                if result.stamp:
                    self.service.remember(address, result, result.stamp)
                return self._ok(response.RECIPIENT_OK)
            assert isinstance(result, BaseException)
            err = _failure(result, self.config.mda.quota_bounce, address)
            log.info("lmtp-rcpt-refused", conn=self.conn.id, rcpt=address, status=err.line())
            return self._refuse(response.failure(err))

        return [Call(lambda: txn.resolve(address), then)]

    def _data(self, rest: str) -> list[Output]:
        txn = self.txn
        if rest.strip():
            return self._error(response.syntax("DATA takes no argument"))
        if txn is None:
            return self._error(response.NEED_MAIL)
        if not txn.recipients:
            return self._error(response.NO_RECIPIENTS)
        self.reader.start_data(self.config.mail.max_message_size)
        return self._ok(response.GO_AHEAD)

    def _rset(self, rest: str) -> list[Output]:
        self._reset()
        return self._ok(response.OK)

    def _noop(self, rest: str) -> list[Output]:
        return self._ok(response.OK)

    def _quit(self, rest: str) -> list[Output]:
        self.closed = True
        return [Send(response.BYE), Close()]

    def _vrfy(self, rest: str) -> list[Output]:
        return self._ok(response.VRFY)

    def _help(self, rest: str) -> list[Output]:
        return self._ok(response.HELP)

    def _reset(self) -> None:
        self.txn = None

    # -- the end of the data -----------------------------------------------------------

    def _end_of_data(self, message: Message) -> list[Output]:
        txn = self.txn
        assert txn is not None  # DATA is only answered 354 in a transaction
        self.txn = None
        n = len(txn.recipients)
        if message.refused:
            self.reader.done()
            if message.too_big:
                reply = response.too_big(self.config.mail.max_message_size)
            elif message.no_memory:
                reply = response.no_memory()
            elif message.nul:
                reply = response.nul_in_message()
            else:
                reply = response.bare_lf_in_message()
            log.info("lmtp-message-refused", conn=self.conn.id, reply=reply.decode().strip())
            return [Send(reply) for _ in range(n)]
        if message.eight_bit and txn.body != "8BITMIME":
            log.info("lmtp-8bit-undeclared", conn=self.conn.id, size=message.size)
        peer = "unix socket" if self.conn.unix else f"[{self.conn.peer_ip}]"
        trace = Trace(self.helo, peer, self.services.hostname, self.conn.id, txn.utf8)
        data = message.data
        self.delivering = True

        def then(result: object) -> list[Output]:
            self.delivering = False
            self.reader.done()
            out: list[Output] = []
            if isinstance(result, list):
                for rcpt, outcome in zip(txn.recipients, result, strict=True):
                    if outcome is None:
                        out.append(Send(response.delivered(rcpt.address)))
                    else:
                        out.append(Send(response.failure(outcome)))
            else:
                assert isinstance(result, BaseException)
                log.error("lmtp-delivery-failed", conn=self.conn.id, error=repr(result))
                err = _failure(result, self.config.mda.quota_bounce, "")
                out += [Send(response.failure(err)) for _ in range(n)]
            if self.stop_after and not self.closed:
                self.closed = True
                out += [Send(response.SHUTTING_DOWN), Close()]
            return _joined(out)

        return [Call(lambda: txn.deliver(data, trace), then)]


def _joined(out: list[Output]) -> list[Output]:
    """Replies in a row as one Send: a pipelined MAIL, RCPT, DATA (or a message's replies to
    its recipients) goes to the transport as one write, not one per reply."""
    if len(out) < 2:
        return out
    joined: list[Output] = []
    pending: list[bytes] = []
    for o in out:
        if isinstance(o, Send):
            pending.append(o.data)
            continue
        if pending:
            joined.append(Send(b"".join(pending)))
            pending = []
        joined.append(o)
    if pending:
        joined.append(Send(b"".join(pending)))
    return joined


def _failure(exc: BaseException, quota_bounce: bool, address: str) -> DeliveryError:
    from mda.errors import classify

    err = classify(exc, quota_bounce)
    if address and not err.address:
        err.address = address
    return err


if TYPE_CHECKING:
    from collections.abc import Callable

    from mda.errors import DeliveryError

_HANDLERS: dict[str, Callable[[LmtpSession, str], list[Output]]] = {
    "LHLO": LmtpSession._lhlo,
    "MAIL": LmtpSession._mail,
    "RCPT": LmtpSession._rcpt,
    "DATA": LmtpSession._data,
    "RSET": LmtpSession._rset,
    "NOOP": LmtpSession._noop,
    "QUIT": LmtpSession._quit,
    "VRFY": LmtpSession._vrfy,
    "HELP": LmtpSession._help,
}
