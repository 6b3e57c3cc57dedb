"""Line numbers for the TOML configuration's problems (mailstore/config.py).

tomllib reports no positions for keys, so a small scanner finds the `[section]` header and the
`key =` line inside it. It only has to be good enough to point at a line: anything it cannot
place (odd layouts) falls back to the section's line or to no line at all. Keys may be quoted
(`[mailboxes."Sent Messages"]`, `"Lists.python" = { ... }`): folder names are keys there.
"""

from __future__ import annotations

import re

__all__ = ["Lines"]

_KEY_PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)')\s*""")
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}
_HEADER_END = re.compile(r"\]\]?\s*(?:#.*)?$")


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] in "uU":
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, text)


def _key_parts(line: str, pos: int) -> tuple[list[str], int] | None:
    """The dotted key starting at `pos` (bare or quoted parts) and where it ends."""
    parts: list[str] = []
    while True:
        m = _KEY_PART.match(line, pos)
        if m is None:
            return None
        bare, basic, literal = m.groups()
        if bare is not None:
            parts.append(bare)
        elif literal is not None:
            parts.append(literal)
        else:
            parts.append(_unescape(basic))
        pos = m.end()
        if line.startswith(".", pos):
            pos += 1
            continue
        return parts, pos


def _header(line: str) -> list[str] | None:
    """The parts of a `[table]` or `[[array]]` header line."""
    text = line.lstrip()
    if not text.startswith("["):
        return None
    found = _key_parts(text, 2 if text.startswith("[[") else 1)
    if found is None or not _HEADER_END.match(text, found[1]):
        return None
    return found[0]


def _key_line(line: str) -> list[str] | None:
    """The parts of the key of a `key = value` line."""
    found = _key_parts(line, 0)
    if found is None or not line.startswith("=", found[1]):
        return None
    return found[0]


class Lines:
    """Where each `[section]` and each `key =` of a TOML text is: 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self.sections: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        current = ""
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            # A key-like line inside a multi-line string is not a key.
            quotes = line.count('"""') + line.count("'''")
            if in_multiline:
                in_multiline = quotes % 2 == 0
                continue
            if quotes % 2 == 1:
                in_multiline = True
            if (parts := _header(line)) is not None:
                current = ".".join(parts)
                self.sections.setdefault(parts[0], number)
                if len(parts) > 1:
                    self.keys.setdefault((parts[0], parts[1]), number)
            elif (parts := _key_line(line)) is not None:
                if current == "" and len(parts) > 1:
                    # Top-level dotted key: `mail.location = ...`.
                    self.sections.setdefault(parts[0], number)
                    self.keys.setdefault((parts[0], parts[1]), number)
                else:
                    self.keys.setdefault((current, parts[0]), number)
                    if current == "":
                        # `mail = { ... }` opens the section on this line.
                        self.sections.setdefault(parts[0], number)
                if len(parts) > 1:
                    # `Sent.auto = ...` in [mailboxes]: the key of table `mailboxes.Sent`.
                    table = ".".join(([current] if current else []) + parts[:-1])
                    self.keys.setdefault((table, parts[-1]), number)

    def section(self, name: str) -> int | None:
        return self.sections.get(name)

    def key(self, section: str, key: str) -> int | None:
        return self.keys.get((section, key), self.sections.get(section))
