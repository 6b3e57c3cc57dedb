"""Parsing and checking scripts: the one entry point for the delivery agent (`parse`), for
`mda sieve check` and ManageSieve's PUTSCRIPT/CHECKSCRIPT (`check`).

Parsing is in two passes: `grammar` follows RFC 5228 section 8.2 only, `checker` (with the
command table in `commands`) gives every command and test its meaning. The extensions a
script may `require` are `EXTENSIONS` unless the caller says otherwise (the delivery agent
passes what `[sieve] extensions` enables, `extensions_for`).
"""

from __future__ import annotations

from . import nodes
from .errors import DEFAULT_LIMITS, Limits, SieveError
from .lexer import tokenize
from .strings import to_octets

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Every capability the engine implements (RFC 5228 section 6: case-sensitive). The two
# built-in comparators may be required but need not be (section 6.1).
ALL_EXTENSIONS = frozenset(
    {
        "fileinto",  # RFC 5228 section 4.1
        "envelope",  # RFC 5228 section 5.4
        "encoded-character",  # RFC 5228 section 2.4.2.4
        "comparator-i;octet",
        "comparator-i;ascii-casemap",
        "comparator-i;ascii-numeric",  # RFC 4790 section 9.1
        "subaddress",  # RFC 5233
        "imap4flags",  # RFC 5232
        "copy",  # RFC 3894
        "mailbox",  # RFC 5490 section 3
        "body",  # RFC 5173
        "variables",  # RFC 5229
        "vacation",  # RFC 5230
        "vacation-seconds",  # RFC 6131
        "reject",  # RFC 5429
        "ereject",  # RFC 5429
        "date",  # RFC 5260
        "index",  # RFC 5260 section 6
        "relational",  # RFC 5231
        "regex",  # draft-ietf-sieve-regex-01
        "include",  # RFC 6609
        "duplicate",  # RFC 7352
        "enotify",  # RFC 5435, with the mailto method (RFC 5436)
        "environment",  # RFC 5183
        "mime",  # RFC 5703 section 4
        "foreverypart",  # RFC 5703 section 3
        "extracttext",  # RFC 5703 section 7
        "ihave",  # RFC 5463
        "editheader",  # RFC 5293
        "spamtest",  # RFC 5235
        "spamtestplus",
        "virustest",
    }
)

# What a script may require when the configuration says nothing: as Pigeonhole, every
# extension but editheader (which lets a user's script rewrite headers other filters trust)
# and the spam and virus tests (which mean nothing until the scanner's header is configured).
CONFIGURED_ONLY = frozenset({"editheader", "spamtest", "spamtestplus", "virustest"})
EXTENSIONS = ALL_EXTENSIONS - CONFIGURED_ONLY


def apply_extension_setting(
    words: Iterable[str], base: frozenset[str] = EXTENSIONS
) -> frozenset[str]:
    """Pigeonhole's `sieve_extensions`: "+name" adds to the default set, "-name" removes
    from it, a bare name list replaces it. Raises ValueError for a name we do not know."""
    words = list(words)
    unknown = [w for w in words if w.lstrip("+-") not in ALL_EXTENSIONS]
    if unknown:
        raise ValueError(f"unknown Sieve extension {unknown[0].lstrip('+-')!r}")
    bare = [w for w in words if not w.startswith(("+", "-"))]
    enabled = set(bare) if bare else set(base)
    for word in words:
        if word.startswith("+"):
            enabled.add(word[1:])
        elif word.startswith("-"):
            enabled.discard(word[1:])
    return frozenset(enabled)


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
