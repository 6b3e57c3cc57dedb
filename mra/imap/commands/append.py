"""APPEND (RFC 3501 6.3.11, UIDPLUS APPENDUID RFC 4315 3) and the go-ahead for literals.

The size of a synchronizing literal is known before its octets are sent: an APPEND over the
largest message is refused then (`NO [TOOBIG]`, RFC 7889 4), and the client does not send a
byte of it (RFC 3501 7.5). The message is written to tmp/, fsynced and renamed into new/ by
the store before the tagged OK: the handler runs in the thread pool.
"""

from __future__ import annotations

from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_date_time, as_flag_list, as_mailbox
from mra.imap.commands.spec import Request
from mra.imap.commands.store import target
from mra.imap.parser import NeedContinuation
from mra.imap.values import ParenList, String
from mra.session import Output, Send

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession


def literal_announced(s: ImapSession, event: NeedContinuation) -> list[Output]:
    limit = s.services.config.mail.max_message_size
    if event.name == "APPEND" and event.size > limit:
        s.feed_reader(s.reader.reject_literal())
        return [Send(r.say(event.tag, r.TOO_BIG, limit=limit))]
    if event.name == "APPEND" and event.size == 0:  # as Dovecot: no message is 0 octets
        s.feed_reader(s.reader.reject_literal())
        return [Send(r.say(event.tag, r.EMPTY_MESSAGE))]
    s.feed_reader(s.reader.accept_literal())
    return [Send(r.continuation())]


def append(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if len(args) < 2:
        raise ArgumentError("APPEND needs a mailbox name and a message")
    name = as_mailbox(args[0])
    message = args[-1]
    if not isinstance(message, String):
        raise ArgumentError("APPEND needs the message as a literal")
    flags: list[str] = []
    date: float | None = None
    for extra in args[1:-1]:
        if isinstance(extra, ParenList):
            flags = as_flag_list(extra)
        elif isinstance(extra, String):
            date = as_date_time(extra).timestamp()
        else:
            raise ArgumentError("APPEND takes flags, a date and the message")
    if not message.value:
        raise r.Refusal(r.EMPTY_MESSAGE)  # as Dovecot: a message has at least a header
    box = target(s, name)
    uid = box.append(message.value, flags=flags, internaldate=date)
    if s.view is not None and s.view.box.path == box.path:
        s.view.arriving([uid])
    return s.ok(req, code=r.Code.appenduid(box.uidvalidity, uid))
