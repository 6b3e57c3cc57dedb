"""Errors and resource limits of the Sieve engine."""

from __future__ import annotations


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


_LIMIT_NAMES = (
    "max_script_size",
    "max_nesting",
    "max_actions",
    "max_redirects",
    "max_include_depth",
    "max_includes",
    "max_variable_size",
    "max_header_size",
)


class RegexError(ValueError):
    """A ":regex" key that does not compile (regex.py): the message says why. Here so that
    the checker can catch it without importing `re` for scripts that use no regex."""


class Limits:
    """Resource limits; the defaults are Pigeonhole's (sieve_max_script_size,
    sieve_max_actions, sieve_max_redirects, sieve_include_max_nesting_depth,
    sieve_include_max_includes, sieve_variables_max_variable_size,
    sieve_editheader_max_header_size). The delivery agent takes them from `[sieve]`.

    - `max_script_size`: octets of script text (UTF-8); larger scripts are refused by `parse`
      (and an included script larger than this is a run-time error).
    - `max_nesting`: depth of nested blocks, and separately of nested tests. RFC 5228 section
      2.10.7 requires at least 15 of each.
    - `max_actions`: distinct actions one evaluation (a whole chain) may produce, counting the
      implicit keep (RFC 5228 section 2.10.4: hitting the limit is an error).
    - `max_redirects`: distinct redirect addresses (RFC 5228 sections 4.2 and 10 require a
      limit; it SHOULD be 1 where forwarding to several places has no use).
    - `max_include_depth`, `max_includes`: how deep includes nest, and how many scripts one
      run may include in all (RFC 6609 section 3.2 leaves both to the implementation).
    - `max_variable_size`: octets a variable holds; a longer value is cut (RFC 5229 section 6
      allows it).
    - `max_header_size`: octets of a header field `addheader` may add (RFC 5293 section 9).
    """

    __slots__ = _LIMIT_NAMES

    max_script_size: int
    max_nesting: int
    max_actions: int
    max_redirects: int
    max_include_depth: int
    max_includes: int
    max_variable_size: int
    max_header_size: int

    # An immutable plain class rather than a frozen dataclass, which costs ~1 ms to create.
    def __init__(
        self,
        max_script_size: int = 1 << 20,
        max_nesting: int = 32,
        max_actions: int = 32,
        max_redirects: int = 4,
        max_include_depth: int = 10,
        max_includes: int = 255,
        max_variable_size: int = 4096,
        max_header_size: int = 2048,
    ) -> None:
        values = (
            max_script_size,
            max_nesting,
            max_actions,
            max_redirects,
            max_include_depth,
            max_includes,
            max_variable_size,
            max_header_size,
        )
        for name, value in zip(_LIMIT_NAMES, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Limits is immutable: cannot set {name!r}")

    def _key(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in _LIMIT_NAMES)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)}" for name in _LIMIT_NAMES)
        return f"Limits({fields})"


DEFAULT_LIMITS = Limits()
