"""What a Sieve evaluation asks the delivery code to do.

`evaluate` returns a list of these, in the order the script performed them, with duplicates
merged (RFC 5228 section 2.10.3). The list is never empty: it holds at least one delivering
action (Keep, FileInto, Redirect) or it is exactly `[Discard()]`.

Flags are IMAP flags: the system flags spelled `\\Seen`, `\\Answered`, `\\Flagged`,
`\\Deleted`, `\\Draft`, and keywords (RFC 5232). Invalid flags were already dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keep:
    """Deliver to the user's main mailbox, INBOX (RFC 5228 section 4.3).

    Also what `fileinto "INBOX"` becomes, and the implicit keep (section 2.10.2).
    """

    flags: frozenset[str] = frozenset()


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


@dataclass(frozen=True, slots=True)
class Redirect:
    """Resend the message, unchanged, to `address` (a bare addr-spec; RFC 5228 section 4.2).

    The caller must implement loop control (e.g. its own Delivered-To header) and must keep an
    empty envelope sender empty on the outgoing message.
    """

    address: str


@dataclass(frozen=True, slots=True)
class Discard:
    """The message was deliberately thrown away (RFC 5228 section 4.4). Alone in the list."""


Action = Keep | FileInto | Redirect | Discard
