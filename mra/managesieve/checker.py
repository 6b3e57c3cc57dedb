"""The Sieve engine as ManageSieve sees it: what it supports and whether a script compiles.

A thin adapter over `mda.sieve`, so that PUTSCRIPT, CHECKSCRIPT and SETACTIVE refuse exactly
the scripts `mda` would refuse at delivery (RFC 5804 2.6: "the performed validation SHOULD be
the same as performed when compiling the script for execution"), and CAPABILITY lists exactly
the extensions `require` accepts with this configuration: `mda.sieve.delivery.extensions_for`
and `limits_of` (the `[sieve]` settings mda delivers with), and `mda.sieve.parse`.

Errors and warnings are reported as Pigeonhole does, one per line, `line N: error: MESSAGE.`
(RFC 5804 2.6's examples start with `line N:`); the first error is the first of the script.
The one warning so far is RFC 5804 2.6's own example (more redirects than MAXREDIRECTS), found
by walking the parse tree; it belongs in the engine, with any others, once it has warnings.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

__all__ = ["Problem", "Report", "check", "extensions", "max_redirects", "notify_methods"]


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    message: str
    kind: str = "error"  # or "warning"

    def __str__(self) -> str:
        text = self.message.rstrip()
        if not text.endswith((".", "!", "?")):
            text += "."
        return f"line {self.line}: {self.kind}: {text}"


@dataclass(frozen=True, slots=True)
class Report:
    """A script's errors (it does not compile) and warnings (it does, but may not do what
    its writer meant: RFC 5804's WARNINGS response code)."""

    errors: list[Problem]
    warnings: list[Problem]


def extensions(config: Config) -> list[str]:
    """Every capability `require` accepts, for CAPABILITY's SIEVE (RFC 5804 1.7)."""
    from mda.sieve.delivery import extensions_for

    return sorted(extensions_for(config))


def notify_methods(config: Config) -> list[str]:
    """URI schemes of the "enotify" extension (RFC 5435), for NOTIFY; none without it."""
    return ["mailto"] if "enotify" in extensions(config) else []


def max_redirects(config: Config) -> int:
    """The redirects one evaluation may perform, for MAXREDIRECTS (RFC 5804 1.7)."""
    from mda.sieve.delivery import limits_of

    return limits_of(config).max_redirects


def check(script: bytes, config: Config) -> Report:
    """Compile the script as mda would. Blocking, CPU-bound: run it in a thread."""
    from mda.sieve import SieveError, parse
    from mda.sieve.delivery import extensions_for, limits_of

    try:
        text = script.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = script[: exc.start].count(b"\n") + 1
        return Report([Problem(line, "invalid UTF-8, a Sieve script is UTF-8 text")], [])
    try:
        parsed = parse(text, limits=limits_of(config), extensions=extensions_for(config))
    except SieveError as exc:
        return Report([Problem(exc.line, exc.message)], [])
    except RecursionError:
        return Report([Problem(1, "script nested too deeply")], [])
    return Report([], _redirect_warnings(parsed, max_redirects(config)))


def _redirect_warnings(script: object, limit: int) -> list[Problem]:
    """RFC 5804 2.6's own example of a warning: more distinct redirect addresses than one
    evaluation may use. Which ones run depends on the message, so it may be fine; but when
    they all do, `mda`'s engine stops the script with an error and keeps the message in
    INBOX (RFC 5228 2.10.4, 10), so the user should know."""
    seen: set[str] = set()
    for line, address in _redirects(script, 0):
        if address not in seen:
            seen.add(address)
            if len(seen) == limit + 1:
                text = (
                    f"a message may be redirected to {limit} addresses at most; "
                    "if this redirect runs with all those before it, the script fails "
                    "and the message is kept in INBOX"
                )
                return [Problem(line, text, "warning")]
    return []


def _redirects(node: object, depth: int) -> list[tuple[int, str]]:
    """(line, address) of every redirect command below `node` (a Script, a command, an if
    chain or a tuple of them), in script order: a walk of mda/sieve/nodes.py's tree."""
    from mda.sieve.nodes import If, Node, Script

    if depth > 256:
        return []
    if isinstance(node, Script):
        return _redirects(node.commands, depth + 1)
    if isinstance(node, tuple | list):
        return [found for item in node for found in _redirects(item, depth + 1)]
    if isinstance(node, If):
        return [found for _, block in node.branches for found in _redirects(block, depth + 1)]
    if isinstance(node, Node):
        if node.name == "redirect":
            return [(node.line, str(node.args[0]) if node.args else "")]
        return _redirects(node.block or (), depth + 1)
    return []
