"""What one IMAP command may make the reader hold, and what all of a process's readers may.

The reader holds at most one command: its text (all lines together, literals excluded) is
bounded by `max_line_length` and its literals together by `max_literal_size_preauth` or, once
the session sets `reader.authenticated`, `max_other_literal_size`. A command that carries
messages (APPEND: the session names them, `message_commands`) has two budgets instead, because
MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) put several messages, and a message in several
literals, into one command: each message's literals together stay within `max_literal_size`
(the largest message, RFC 7889 APPENDLIMIT), and all of the command's within `max_append_size`
(never below the largest message). A message ends at a literal on the command's top level (a
MULTIAPPEND message) or at the end of a top-level list (a CATENATE list; a flag list holds no
literal). Every literal is also reserved in the process's `LiteralPool`. A literal size is only
a number until its octets arrive: the reader never allocates from it, it gathers the chunks as
they come and refuses a size over a budget before the client sends anything.
`max_depth` bounds list nesting (the parser recurses per level) and `max_tokens` the values in
one command. Every read is O(octets received): a line is searched for LF only in new data.

Non-synchronizing literals (RFC 7888). With LITERAL+ a client may send `{n+}` of any size and
the server must read it, even to throw it away (a literal over a budget is skipped, counted,
not kept). `max_nonsync_literal` is LITERAL- (RFC 7888 section 5, and IMAP4rev2's rule, RFC
9051 section 4.3): a non-synchronizing literal over `LITERAL_MINUS` octets is one the server
never agreed to, so the reader reads none of it and ends the connection (`Fatal` with code
TOOBIG, as section 5 asks of a server that closes, and as Dovecot's `imap_literal_minus` does):
a client can then make the server read at most 4 KiB it did not ask for, whatever it announces.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KIB", "LITERAL_MINUS", "Limits", "LiteralPool"]

KIB = 1024
LITERAL_MINUS = 4096
"""The largest non-synchronizing literal under LITERAL- (RFC 7888 section 5)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one command may make the reader hold (see the module docstring)."""

    max_line_length: int = 64 * KIB
    """The command's text, all its lines together, literals excluded (Dovecot's default)."""
    max_literal_size_preauth: int = 8 * KIB
    """All literals of one command before `reader.authenticated` is set."""
    max_literal_size: int = 50 * KIB * KIB
    """The literals of one message of a command that carries messages (APPEND: the session
    names them, `message_commands`) once authenticated: set it to the largest message size."""
    max_append_size: int = 0
    """All literals of one command that carries messages together (MULTIAPPEND, CATENATE);
    the reader takes the larger of this and `max_literal_size` (so 0: one message's worth)."""
    max_other_literal_size: int = 64 * KIB
    """All literals of any other command once authenticated (a SEARCH string, a mailbox
    name): they are never messages, and 10 unfinished 45 MB SEARCH literals held 460 MB."""
    max_depth: int = 64
    """Nesting of parenthesized lists."""
    max_tokens: int = 10_000
    """Values (atoms, strings, lists, header names) in one command."""
    max_nonsync_literal: int | None = None
    """None: LITERAL+, a `{n+}` literal may have any size (within the budgets above). A number
    (`LITERAL_MINUS` for LITERAL- and IMAP4rev2): a larger `{n+}` ends the connection before
    any of it is read. The session sets it (`[imap] literal_plus`) and may change it between
    commands, as the reader reads its limits anew for each command."""

    @property
    def command_literals(self) -> int:
        """The most literal octets one command may hold (APPEND's, the largest budget)."""
        return max(self.max_literal_size, self.max_append_size)


class LiteralPool:
    """The literal octets every reader of a process may hold at once (issue #17).

    A literal is reserved when announced, before any of it is read, and stays reserved while
    its command waits and runs; the reader gives back what it abandons, the session what a
    finished command held (`Command.literal_size`) and, on close, everything. One pool per
    process, shared by its sessions on the reactor thread.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reserve(self, n: int) -> bool:
        if self.held + n > self.limit:
            return False
        self.held += n
        return True

    def release(self, n: int) -> None:
        self.held = max(0, self.held - n)
