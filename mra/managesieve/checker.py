"""The Sieve engine as ManageSieve sees it: what it supports and whether a script compiles.

A thin adapter over `mda.sieve`, so that PUTSCRIPT, CHECKSCRIPT and SETACTIVE refuse exactly
the scripts `mda` would refuse at delivery (RFC 5804 2.6: "the performed validation SHOULD be
the same as performed when compiling the script for execution"), and CAPABILITY lists exactly
the extensions `require` accepts. It reads `mda.sieve.parse` (raising SieveError with the
line), `mda.sieve.EXTENSIONS` and `DEFAULT_LIMITS`; when the engine grows a public "check"
function with warnings, or configurable limits, this module is the one place to point at it.

Errors are reported as Pigeonhole does, one per line, `line N: error: MESSAGE.` (RFC 5804 2.6's
examples start with `line N:`), and the first one is always the first error of the script.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "check", "extensions", "max_redirects", "notify_methods"]


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        text = self.message.rstrip()
        if not text.endswith((".", "!", "?")):
            text += "."
        return f"line {self.line}: error: {text}"


def extensions() -> list[str]:
    """Every capability `require` accepts, for CAPABILITY's SIEVE (RFC 5804 1.7)."""
    from mda.sieve import EXTENSIONS

    return sorted(EXTENSIONS)


def notify_methods() -> list[str]:
    """URI schemes of the "enotify" extension (RFC 5435), for NOTIFY; none without it."""
    return ["mailto"] if "enotify" in extensions() else []


def max_redirects() -> int:
    """The redirects one evaluation may perform, for MAXREDIRECTS (RFC 5804 1.7)."""
    from mda.sieve import DEFAULT_LIMITS

    return DEFAULT_LIMITS.max_redirects


def check(script: bytes) -> list[Problem]:
    """The script's errors (none: it compiles). Blocking, CPU-bound: run it in a thread."""
    from mda.sieve import SieveError, parse

    try:
        text = script.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = script[: exc.start].count(b"\n") + 1
        return [Problem(line, "invalid UTF-8, a Sieve script is UTF-8 text")]
    try:
        parse(text)
    except SieveError as exc:
        return [Problem(exc.line, exc.message)]
    return []
