"""What a Sieve evaluation asks the delivery code to do.

`evaluate` returns a list of these, in the order the script performed them, with duplicates
merged (RFC 5228 section 2.10.3). The list is never empty: it holds at least one delivering
action (Keep, FileInto, Redirect), a Reject, or it is exactly `[Discard()]`; Vacation and
Notify come with one of those (they never cancel the implicit keep).

Flags are IMAP flags: the system flags spelled `\\Seen`, `\\Answered`, `\\Flagged`,
`\\Deleted`, `\\Draft`, and keywords (RFC 5232). Invalid flags were already dropped.

`header` (editheader, RFC 5293): None when the script changed no header; otherwise the whole
header block to store or send instead of the message's own, as it was when the action ran
(CRLF line ends, ending with the empty line). The body is always the message's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keep:
    """Deliver to the user's main mailbox, INBOX (RFC 5228 section 4.3).

    Also what `fileinto "INBOX"` becomes, and the implicit keep (section 2.10.2).
    """

    flags: frozenset[str] = frozenset()
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class FileInto:
    """Deliver to `mailbox` (RFC 5228 section 4.1), a UTF-8 name as the script wrote it.

    `create` (RFC 5490 section 3.2): create the mailbox first if it does not exist; failing to
    create it is an error. Without `create`, a missing mailbox is the caller's choice (RFC 5228
    allows an error, creating it, or delivering elsewhere); delivering to INBOX is the safe one.
    """

    mailbox: str
    flags: frozenset[str] = frozenset()
    create: bool = False
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Resend the message, unchanged, to `address` (a bare addr-spec; RFC 5228 section 4.2).

    The caller must implement loop control (e.g. its own Delivered-To header) and must keep an
    empty envelope sender empty on the outgoing message.
    """

    address: str
    header: bytes | None = None


@dataclass(frozen=True, slots=True)
class Discard:
    """The message was deliberately thrown away (RFC 5228 section 4.4). Alone in the list."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the message with `reason` (RFC 5429): `extended` (ereject) asks for a refusal
    at the protocol level where there is one; otherwise a rejection notice (an MDN) goes to
    the envelope sender. The message is not stored."""

    reason: str
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Vacation:
    """Send an auto-reply (RFC 5230, RFC 6131), if the delivery code's checks allow it: not to
    a list, an auto-submitted message, a system address, nor unless one of the user's
    addresses is in the message's recipients; at most once per sender, `handle` and `seconds`.

    `sender`: the From of the reply ("" = the recipient); `mime`: `reason` is a MIME entity
    (headers and body) rather than UTF-8 text. `seconds` is None for the default period."""

    reason: str
    subject: str | None = None
    sender: str = ""
    addresses: tuple[str, ...] = ()
    mime: bool = False
    handle: str = ""
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """Send a notification (RFC 5435) by `method`, a "mailto:" URI (RFC 5436), with the
    `message` text (None: the default, from the message's From and Subject)."""

    method: str
    sender: str = ""
    importance: str = "2"
    options: tuple[str, ...] = ()
    message: str | None = None


Action = Keep | FileInto | Redirect | Discard | Reject | Vacation | Notify


@dataclass(frozen=True, slots=True)
class Track:
    """A duplicate-tracking entry (RFC 7352) to remember once the delivery succeeded: `key`
    identifies the message (and handle) for this user, for `seconds` from now; `last`: the
    period starts again even if the key was already known."""

    key: bytes
    seconds: int
    last: bool = False
