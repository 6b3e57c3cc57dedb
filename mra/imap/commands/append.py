"""APPEND (RFC 3501 6.3.11) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) and binary content
(RFC 3516 4.4), APPENDUID (UIDPLUS, RFC 4315 3), and the go-ahead for literals.

    append         = "APPEND" SP mailbox 1*append-message                  ; RFC 3502
    append-message = [SP flag-list] [SP date-time] SP append-data
    append-data    = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
                     / utf8-literal                                          ; RFC 6855 4
    cat-part       = "TEXT" SP (literal / literal8) / "URL" SP astring     ; RFC 4469
                     / utf8-literal
    utf8-literal   = "UTF8" SP "(" literal8 ")"    ; after ENABLE UTF8=ACCEPT or IMAP4rev2

The reader hands over the whole command, its literals read and bounded (each message by the
largest message, all of them by `[mail] max_append_size`: parser.py, SECURITY.md 2); a
synchronizing literal over a bound, or a message literal of 0 octets (RFC 3502: "MUST return
a NO", a way to cancel), is refused before the client sends it (RFC 3501 7.5).

Then, in the thread pool: the arguments (BAD), the target mailbox (NO [TRYCREATE]), then each
message in order: its CATENATE parts joined (catenate.py; the first URL that cannot be used
ends the command in NO [BADURL url], RFC 4469 4.1; the joined message over the largest message
in NO [TOOBIG], 4.2), never empty, all of them together within `max_append_size` (NO
[TOOBIG]), binary content put in the form it is stored in (binary.py). The messages are
written all or nothing (RFC 3502: "no partial appending is permitted"): each to tmp/ and
fsynced as it is made, then, once all are there, linked into the folder and given their UIDs
together (`Mailbox.append_many`); APPENDUID names them all, in order (RFC 3502, RFC 4315).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mra.imap import binary
from mra.imap import response as r
from mra.imap.arguments import (
    ArgumentError,
    as_astring,
    as_date_time,
    as_flag_list,
    as_mailbox,
)
from mra.imap.commands.catenate import Catenation
from mra.imap.commands.enable import utf8
from mra.imap.commands.spec import Request
from mra.imap.commands.store import target
from mra.imap.events import NeedContinuation
from mra.imap.values import Atom, ParenList, String, Value
from mra.session import Output, Send

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession


def literal_announced(s: ImapSession, event: NeedContinuation) -> list[Output]:
    """The go-ahead for a synchronizing literal; its size is already within the reader's
    bounds. A whole message of 0 octets (not a CATENATE TEXT part) is refused, as Dovecot."""
    if event.name == "APPEND" and event.size == 0 and event.depth == 0:
        s.feed_reader(s.reader.reject_literal())
        return [Send(r.say(event.tag, r.EMPTY_MESSAGE))]
    s.feed_reader(s.reader.accept_literal())
    return [Send(r.continuation())]


@dataclass(slots=True)
class _Message:
    flags: list[str]
    date: float | None
    parts: list[String | bytes] = field(default_factory=list)
    """TEXT literals (the message literal itself without CATENATE) and URLs (bytes)."""
    catenate: bool = False

    @property
    def binary(self) -> bool:
        return any(isinstance(p, String) and p.binary for p in self.parts)


def append(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if len(args) < 2:
        raise ArgumentError("APPEND needs a mailbox name and a message")
    name = as_mailbox(args[0], utf8(s))
    messages = _messages(args[1:], utf8(s))
    box = target(s, name)
    uids = box.append_many(_ready(s, messages))
    if s.view is not None and s.view.box.path == box.path:
        # Those with flags went to cur/: \Recent for this session (selected.py).
        s.view.arriving([u for u, m in zip(uids, messages, strict=True) if m.flags])
    return s.ok(req, code=r.Code.appenduid(box.uidvalidity, uids))


def _ready(
    s: ImapSession, messages: list[_Message]
) -> Iterator[tuple[bytes, list[str], float | None]]:
    """Each message as it is to be stored, made when the store asks for it: one composed
    message in memory at a time, and all of them within the command's budget."""
    mail = s.services.config.mail
    budget = max(mail.max_append_size, mail.max_message_size)
    catenation = Catenation(s, mail.max_message_size, budget)
    total = 0
    for message in messages:
        if message.catenate:
            data = catenation.compose(message.parts)
        else:
            text = message.parts[0]
            assert isinstance(text, String)
            data = text.value
        if not data:
            raise r.Refusal(r.EMPTY_MESSAGE)  # as Dovecot: a message has at least a header
        total += len(data)
        if total > budget:
            raise r.Refusal(r.APPEND_TOO_BIG, limit=budget)
        if message.binary:
            data = binary.store_form(data, s.services.mime_limits)
        yield data, message.flags, message.date


def _messages(args: list[Value], utf8_ok: bool = False) -> list[_Message]:
    """The append-messages after the mailbox name (grammar in the module docstring); `utf8_ok`:
    the session may send RFC 6855 4's `UTF8 (~{n})`."""
    out: list[_Message] = []
    i = 0
    while i < len(args):
        message = _Message([], None)
        if isinstance(args[i], ParenList):
            message.flags = as_flag_list(args[i])
            i += 1
        value = args[i] if i < len(args) else None
        if isinstance(value, String) and not value.is_literal:
            message.date = as_date_time(value).timestamp()
            i += 1
            value = args[i] if i < len(args) else None
        following = args[i + 1] if i + 1 < len(args) else None
        if isinstance(value, String) and value.is_literal:
            message.parts.append(value)
            i += 1
        elif utf8_ok and _is_word(value, "UTF8") and isinstance(following, ParenList):
            message.parts.append(_utf8_literal(following))
            i += 2
        elif _is_word(value, "CATENATE") and isinstance(following, ParenList):
            message.parts = _cat_parts(following, utf8_ok)
            message.catenate = True
            i += 2
        else:
            raise ArgumentError(
                "APPEND takes for each message flags, a date, and a literal or CATENATE (...)"
            )
        out.append(message)
    return out


def _is_word(value: Value | None, word: str) -> bool:
    return isinstance(value, Atom) and value.value.upper() == word


def _utf8_literal(value: ParenList) -> String:
    """RFC 6855 4: `utf8-literal = "UTF8" SP "(" literal8 ")"`, a message whose header may
    hold UTF-8 (RFC 6532). It is stored as sent, as a literal8 is (binary.store_form)."""
    items = value.items
    if len(items) != 1 or not isinstance(items[0], String) or not items[0].binary:
        raise ArgumentError("UTF8 takes a literal8: UTF8 (~{n})")
    return items[0]


def _cat_parts(value: ParenList, utf8_ok: bool = False) -> list[String | bytes]:
    items = value.items
    if not items:
        raise ArgumentError("Empty CATENATE list")
    parts: list[String | bytes] = []
    for i in range(0, len(items), 2):
        kind = items[i]
        what = kind.value.upper() if isinstance(kind, Atom) else ""
        data = items[i + 1] if i + 1 < len(items) else None
        if what == "TEXT" and isinstance(data, String) and data.is_literal:
            parts.append(data)
        elif what == "UTF8" and utf8_ok and isinstance(data, ParenList):
            parts.append(_utf8_literal(data))  # RFC 6855 4: cat-part =/ utf8-literal
        elif what == "URL" and data is not None:
            parts.append(as_astring(data))
        else:
            raise ArgumentError("CATENATE takes TEXT literals and URLs")
    return parts
