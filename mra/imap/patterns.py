"""LIST and LSUB patterns (RFC 3501 6.3.8), matched in time linear in the name.

`*` matches any run of characters and `%` any run without the hierarchy separator. Matching by
backtracking, as a regular expression does, costs O(n^k) for k wildcards: `%*%*%*%*z` against a
40-character name never finished (issue #17). Here the pattern is compiled once into a
Shift-And automaton over its positions, kept as bits of one integer, and a name is read once,
left to right, with a few integer operations per character, whatever the pattern holds. A run
of wildcards is first reduced to one (`%*%` is `*`, `%%` is `%`): the language is the same.

`INBOX` is case-insensitive (RFC 3501 5.1): a pattern that starts with "inbox" in any case
matches the name INBOX as if written INBOX; other names keep their case.

LIST-EXTENDED (RFC 5258 3) takes a list of patterns, and a name matches if one does. Trying
them one by one costs O(patterns x name) per name: a 64 KiB command of 16,000 patterns like
`*x1` against 10,000 folders is billions of steps, a thread of the pool held for an hour. A
`PatternSet` lays all the patterns side by side in one automaton instead (each keeps its own
bit positions, and nothing moves from one to the next: a pattern's accept bit is in no mask), so
a name is still read once, with integers as wide as the patterns' total length.
"""

from __future__ import annotations

from mailstore.names import INBOX, SEPARATOR

__all__ = ["Pattern", "PatternSet"]


def _tokens(text: str) -> list[str]:
    """The pattern's characters, each run of wildcards made one (`%*%` is `*`, `%%` is `%`)."""
    tokens: list[str] = []
    for c in text:
        if c in "*%" and tokens and tokens[-1] in "*%":
            if c == "*":
                tokens[-1] = "*"
            continue
        tokens.append(c)
    return tokens


class _Automaton:
    """Shift-And over the tokens of several patterns, pattern i at bits [start_i, accept_i]."""

    __slots__ = ("_accept", "_literals", "_percent", "_star", "_start", "_wild")

    def __init__(self, patterns: list[str]) -> None:
        self._literals: dict[str, int] = {}
        self._star = self._percent = self._start = self._accept = 0
        offset = 0
        for text in patterns:
            tokens = _tokens(text)
            self._start |= 1 << offset
            for i, token in enumerate(tokens, start=offset):
                if token == "*":
                    self._star |= 1 << i
                elif token == "%":
                    self._percent |= 1 << i
                else:
                    self._literals[token] = self._literals.get(token, 0) | 1 << i
            offset += len(tokens)
            self._accept |= 1 << offset  # in no mask: it never moves on into the next one
            offset += 1
        self._wild = self._star | self._percent
        self._start |= (self._start & self._wild) << 1

    def match(self, name: str) -> bool:
        state = self._start
        literals = self._literals
        star, percent, wild = self._star, self._percent, self._wild
        for c in name:
            stay = state & star if c == SEPARATOR else state & (star | percent)
            moved = (state & literals.get(c, 0)) << 1
            state = stay | moved
            state |= (state & wild) << 1
            if not state:
                return False
        return bool(state & self._accept)


class PatternSet:
    """Several patterns: `PatternSet(["INBOX", "Sent*"]).match(name)` is True when one of them
    matches, in one pass over the name. Equal patterns count once."""

    __slots__ = ("_any", "_inbox")

    def __init__(self, patterns: list[str]) -> None:
        unique = list(dict.fromkeys(patterns))
        self._any = _Automaton(unique)
        # INBOX is matched by the patterns with their "inbox" prefix written INBOX.
        fixed = [INBOX + p[5:] if p[:5].upper() == INBOX else p for p in unique]
        self._inbox = self._any if fixed == unique else _Automaton(fixed)

    def match(self, name: str) -> bool:
        return (self._inbox if name == INBOX else self._any).match(name)


class Pattern(PatternSet):
    """One compiled pattern: `Pattern("%.Sent*").match(name)`."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__([text])
        self.text = text
