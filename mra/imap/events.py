"""What the IMAP command reader (parser.py) gives the session: one event per thing to act on.

`Command(tag, name, args, raw_size)`
    One complete command. `name` is upper-case (`UID FETCH` arrives as name `UID` with first
    argument `Atom("FETCH")`); `args` is the generic token tree below; `raw_size` counts every
    octet of the command as received, literals and line ends included.
`NeedContinuation(tag, size, name, depth)`
    A synchronizing literal `{size}` (or literal8 `~{size}`) ended a line. The reader waits until
    the session calls `accept_literal()` (after writing `+ Ready`: the events that method
    returns come after the `+`) or `reject_literal()` (after writing `tag NO|BAD ...`: the
    client will not send the literal, RFC 3501 7.5, and the reader reads a new command). Its
    size is already within the budgets below; `depth` is 0 for a literal at the command's top
    level (in APPEND, a whole message, which may not be empty: RFC 3502), 1 inside a list (a
    CATENATE TEXT part, which may).
`BadCommand(tag, message, code)`
    Malformed input: answer `tag BAD [code] message`, or `* BAD` when the tag is None. The reader
    has already skipped what is left of the command (see resynchronising) and carries on.
    Subclasses say which limit was hit: `LimitExceeded(limit)`, `LineTooLong`,
    `LiteralTooLarge(size)` (code `TOOBIG`), and `MessageTooLarge`, a `NO [TOOBIG]` (RFC 7889,
    RFC 4469 4.2): a message of APPEND over the largest message, or all of them over the
    command's budget.
`ContinuationLine(data)`
    In `expect_line()` mode (AUTHENTICATE), the next line, without its CRLF. `*` cancels.
`IdleDone()`
    In `expect_done()` mode (IDLE), the client sent `DONE`.
`Fatal(message, code)`
    Answer `* BYE [code] message` and close; the reader reads nothing more. Either the client
    sent too much while the reader was waiting for the session (below), or, under LITERAL-
    (`Limits.max_nonsync_literal`), it announced a non-synchronizing literal over 4096 octets
    (code TOOBIG, RFC 7888 section 5). Nothing else ever ends the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from mra.imap.values import Value

__all__ = [
    "BadCommand",
    "Command",
    "ContinuationLine",
    "Event",
    "Fatal",
    "IdleDone",
    "LimitExceeded",
    "LineTooLong",
    "LiteralTooLarge",
    "MessageTooLarge",
    "NeedContinuation",
    "ServerBusy",
]


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str
    args: list[Value]
    raw_size: int
    literal_size: int = field(default=0, compare=False)
    """Octets of its literals, reserved in the reader's `LiteralPool`: the session gives them
    back (`pool.release`) once the command has finished."""


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    tag: str
    size: int
    name: str
    depth: int = field(default=0, compare=False)
    """0 on the command's top level, 1 and more inside lists."""


@dataclass(frozen=True, slots=True)
class BadCommand:
    """Answer `tag BAD [code] message` (or `* BAD` when tag is None); the reader has resynced."""

    tag: str | None
    message: str
    code: str | None = None

    status = "BAD"


@dataclass(frozen=True, slots=True)
class LimitExceeded(BadCommand):
    """A configured limit was hit; `limit` is the name of the `Limits` field."""

    limit: str = ""


@dataclass(frozen=True, slots=True)
class LineTooLong(LimitExceeded):
    """The command's text (or a DONE/continuation line) exceeded `max_line_length`."""


@dataclass(frozen=True, slots=True)
class LiteralTooLarge(LimitExceeded):
    """A literal was announced over the budget; refused before any of it was read."""

    size: int = 0


@dataclass(frozen=True, slots=True)
class MessageTooLarge(LiteralTooLarge):
    """A literal of a message command over the largest message (`max_literal_size`) or over
    the command's budget (`max_append_size`): `NO [TOOBIG]`, the server's limit rather than
    the client's mistake (RFC 7889 4, RFC 3502's example: a NO at a later message)."""

    status = "NO"


@dataclass(frozen=True, slots=True)
class ServerBusy(BadCommand):
    """The process already holds all the literal octets it may (`LiteralPool`): answer `NO
    [UNAVAILABLE]`, the client may try again; nothing of the literal was kept."""

    status = "NO"


@dataclass(frozen=True, slots=True)
class ContinuationLine:
    data: bytes

    @property
    def cancelled(self) -> bool:
        """RFC 3501 6.2.2: a line of just `*` cancels the AUTHENTICATE exchange."""
        return self.data == b"*"


@dataclass(frozen=True, slots=True)
class IdleDone:
    pass


@dataclass(frozen=True, slots=True)
class Fatal:
    message: str
    code: str | None = None


Event: TypeAlias = Command | NeedContinuation | BadCommand | ContinuationLine | IdleDone | Fatal
