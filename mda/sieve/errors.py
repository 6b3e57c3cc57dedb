"""Errors and resource limits of the Sieve engine."""

from __future__ import annotations

from dataclasses import dataclass


class SieveError(Exception):
    """A script that cannot be used: syntax, unknown extension, bad arguments, too large.

    RFC 5228 section 2.10.6 calls these compile-time errors. `line` is the 1-based line of the
    script where the problem was found.
    """

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class SieveRuntimeError(SieveError):
    """A failure while running a script (a limit hit, or an internal error).

    RFC 5228 section 2.10.6: when an error occurs, all processing stops and an implicit keep
    is done. Evaluation has no side effects (it only returns actions), so no action was taken:
    the caller must catch this, log it for the user and deliver the message to INBOX.
    """


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits; the defaults are Pigeonhole's (sieve_max_script_size,
    sieve_max_actions, sieve_max_redirects).

    - `max_script_size`: octets of script text (UTF-8); larger scripts are refused by `parse`.
    - `max_nesting`: depth of nested blocks, and separately of nested tests. RFC 5228 section
      2.10.7 requires at least 15 of each.
    - `max_actions`: distinct actions one evaluation (a whole chain) may produce, counting the
      implicit keep (RFC 5228 section 2.10.4: hitting the limit is an error).
    - `max_redirects`: distinct redirect addresses (RFC 5228 sections 4.2 and 10 require a
      limit; it SHOULD be 1 where forwarding to several places has no use).
    """

    max_script_size: int = 1 << 20
    max_nesting: int = 32
    max_actions: int = 32
    max_redirects: int = 4


DEFAULT_LIMITS = Limits()
