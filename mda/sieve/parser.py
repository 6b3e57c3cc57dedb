"""Parsing and checking scripts: the one entry point for the delivery agent (`parse`), for
`mda sieve check` and ManageSieve's PUTSCRIPT/CHECKSCRIPT (`check`).

Parsing is in two passes: `grammar` follows RFC 5228 section 8.2 only, `checker` (with the
command table in `commands`) gives every command and test its meaning. The extensions a
script may `require` (`extensions.py`) are `EXTENSIONS` unless the caller says otherwise (the
delivery agent passes what `[sieve] extensions` enables, `extensions_for`).
"""

from __future__ import annotations

from . import nodes
from .errors import DEFAULT_LIMITS, Limits, SieveError
from .extensions import ALL_EXTENSIONS, CONFIGURED_ONLY, EXTENSIONS, apply_extension_setting
from .lexer import tokenize
from .strings import to_octets

__all__ = [
    "ALL_EXTENSIONS",
    "CONFIGURED_ONLY",
    "EXTENSIONS",
    "apply_extension_setting",
    "check",
    "format_error",
    "parse",
]


def parse(
    script_text: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    extensions: frozenset[str] = EXTENSIONS,
    name: str = "",
) -> nodes.Script:
    """Parse and check a script; raise SieveError(message, line) on the first error.

    `extensions`: the capabilities `require` may name (RFC 5228 section 2.10.5)."""
    from .checker import Checker
    from .commands import COMMANDS, TESTS
    from .grammar import Grammar

    if len(script_text) > limits.max_script_size or (
        len(to_octets(script_text)) > limits.max_script_size
    ):
        raise SieveError(f"script larger than {limits.max_script_size} octets", 1)
    tokens = tokenize(script_text)
    raw = Grammar(tokens, limits).script()
    return Checker(extensions, COMMANDS, TESTS).script(raw, name)


def check(
    script_text: str | bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    extensions: frozenset[str] = EXTENSIONS,
) -> list[SieveError]:
    """The errors of a script, each with its line (`err.line`, `err.message`); [] when it
    compiles. This is what `mda sieve check` and ManageSieve's PUTSCRIPT and CHECKSCRIPT
    report (RFC 5804 section 2.6: a script that does not compile is refused with why).

    Bytes are checked as UTF-8 (RFC 5228 section 2.2: scripts are UTF-8); octets that are not
    are an error with their line. The first error stops the check, as in `parse`."""
    if not isinstance(script_text, str):
        data = bytes(script_text)
        try:
            script_text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            return [SieveError("the script is not valid UTF-8", line)]
    try:
        parse(script_text, limits=limits, extensions=extensions)
    except SieveError as exc:
        return [exc]
    except RecursionError:
        return [SieveError("script nested too deeply", 1)]
    return []


def format_error(filename: str, error: SieveError) -> str:
    """One error as `sievec` writes it: "FILE:LINE: error: MESSAGE"."""
    return f"{filename}:{error.line}: error: {error.message}"
