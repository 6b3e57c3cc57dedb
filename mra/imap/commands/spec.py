"""What the dispatcher knows about a command (a row of the table in `commands/__init__.py`) and
what a handler is given (`Request`).

A handler is a plain function `handler(session, request) -> list[Output]`. It reads its
arguments with the parser's `as_*` helpers (which raise `ArgumentError`: the dispatcher answers
BAD), raises `response.Refusal` for a fixed NO and lets the store's `MailError` through (the
dispatcher maps both, after the untagged updates the session owes), and ends with
`session.ok(request, ...)` or its own outputs. Blocking work is an explicit `Call` output, or
the whole handler runs in the thread pool when its row says `thread=True`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mra.imap.values import Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from mra.imap.session import ImapSession
    from mra.session import Output

    Handler = Callable[[ImapSession, "Request"], list[Output]]

# RFC 3501 section 3: the states a command may run in. LOGOUT has no commands.
NOTAUTH: Final = "NOTAUTH"
AUTH: Final = "AUTH"
SELECTED: Final = "SELECTED"
LOGOUT: Final = "LOGOUT"
ANY: Final = frozenset({NOTAUTH, AUTH, SELECTED})
AUTHENTICATED: Final = frozenset({AUTH, SELECTED})
ONLY_SELECTED: Final = frozenset({SELECTED})
ONLY_NOTAUTH: Final = frozenset({NOTAUTH})


@dataclass(frozen=True, slots=True)
class Spec:
    """One command, as Dovecot's `imap-commands.c` describes one with its flags."""

    name: str
    handler: Handler
    states: frozenset[str]
    uses_seqs: bool = False
    """It takes or answers with sequence numbers: another session's expunges are held back
    while it runs (RFC 3501 7.4.1, Dovecot's COMMAND_FLAG_USES_SEQS). Never for the UID form:
    "an EXPUNGE response MAY be sent during a UID command"."""
    thread: bool = False
    """The whole handler runs in the thread pool: its work grows with the mailbox (STORE 1:*,
    COPY, EXPUNGE, STATUS) or waits for the disk (APPEND's fsync). The session is held
    meanwhile, so nothing else touches its state."""
    suspends: bool = False
    """The reader stops after this command's line, because the command changes how the next
    bytes are read (LOGIN: the literal budget; AUTHENTICATE: SASL lines; IDLE: DONE;
    STARTTLS: TLS; COMPRESS: DEFLATE). The dispatcher resumes it once the command has
    finished."""
    uid: bool = False
    """`UID <name>` exists and runs the same handler with `request.uid` set."""
    messages: bool = False
    """Its literals are messages: they may be as large as the largest message (APPEND); any
    other command's literals are bounded by the reader's `max_other_literal_size`."""


@dataclass(slots=True)
class Request:
    """One command as a handler sees it."""

    tag: str
    name: str
    """As the responses name it: "FETCH", or "UID FETCH" for the UID form."""
    args: list[Value]
    uid: bool
    spec: Spec

    @property
    def uses_seqs(self) -> bool:
        return self.spec.uses_seqs and not self.uid
