"""LIST and LSUB patterns (RFC 3501 6.3.8), matched in time linear in the name.

`*` matches any run of characters and `%` any run without the hierarchy separator. Matching by
backtracking, as a regular expression does, costs O(n^k) for k wildcards: `%*%*%*%*z` against a
40-character name never finished (issue #17). Here the pattern is compiled once into a
Shift-And automaton over its positions, kept as bits of one integer, and a name is read once,
left to right, with a few integer operations per character, whatever the pattern holds. A run
of wildcards is first reduced to one (`%*%` is `*`, `%%` is `%`): the language is the same.

`INBOX` is case-insensitive (RFC 3501 5.1): a pattern that starts with "inbox" in any case
matches the name INBOX as if written INBOX; other names keep their case.
"""

from __future__ import annotations

from mailstore.names import INBOX, SEPARATOR

__all__ = ["Pattern"]


class Pattern:
    """A compiled pattern: `Pattern("%/Sent*").match(name)`."""

    __slots__ = ("_accept", "_inbox", "_literals", "_percent", "_star", "_start", "_wild", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._inbox: Pattern | None = None
        if text[:5].upper() == INBOX and text[:5] != INBOX:
            self._inbox = Pattern(INBOX + text[5:])
        tokens: list[str] = []
        for c in text:
            if c in "*%" and tokens and tokens[-1] in "*%":
                if c == "*":
                    tokens[-1] = "*"
                continue
            tokens.append(c)
        # Bit i set in a state: the first i tokens have matched what was read so far.
        self._literals: dict[str, int] = {}
        self._star = 0  # positions before a `*`: stay there on any character
        self._percent = 0  # positions before a `%`: stay there on any but the separator
        for i, token in enumerate(tokens):
            if token == "*":
                self._star |= 1 << i
            elif token == "%":
                self._percent |= 1 << i
            else:
                self._literals[token] = self._literals.get(token, 0) | 1 << i
        self._wild = self._star | self._percent
        self._accept = 1 << len(tokens)
        self._start = self._close(1)

    def _close(self, state: int) -> int:
        """A wildcard may match nothing: from before it, also be after it. Wildcards never
        follow each other, so one step is enough."""
        return state | (state & self._wild) << 1

    def match(self, name: str) -> bool:
        if self._inbox is not None and name == INBOX:
            return self._inbox.match(name)
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
