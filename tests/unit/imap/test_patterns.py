"""LIST patterns (RFC 3501 6.3.8): the linear automaton against a plain reference matcher."""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from mra.imap.patterns import Pattern


def reference(pattern: str, name: str) -> bool:
    """The obvious translation to a regular expression (fine for short inputs)."""
    if name == "INBOX" and pattern[:5].upper() == "INBOX":
        pattern = "INBOX" + pattern[5:]
    regex = "".join(".*" if c == "*" else "[^.]*" if c == "%" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


@settings(max_examples=3000)
@given(st.text("ab.*%", max_size=8), st.text("ab.", max_size=10))
def test_same_answers_as_the_reference(pattern: str, name: str) -> None:
    assert Pattern(pattern).match(name) == reference(pattern, name)


def test_examples() -> None:
    assert Pattern("*").match("a.b.c")
    assert not Pattern("%").match("a.b")
    assert Pattern("%.%").match("a.b")
    assert Pattern("inbox").match("INBOX")
    assert Pattern("iNbOx%").match("INBOX")
    assert not Pattern("INBOX*").match("inboxes")  # only INBOX itself is case-insensitive
    assert Pattern("Sent*").match("Sent Messages")
    assert Pattern("").match("")
    assert not Pattern("").match("a")


def test_attack_list_pattern_with_many_wildcards_ends() -> None:
    """`LIST "" "%*%*%*%*z"` against a 40-character name gave no answer in 30 s and froze
    every session (the matcher backtracked: O(n^k) for k wildcards). Run in a child process
    so that a regression fails the test instead of hanging it."""
    code = (
        "from mra.imap.patterns import Pattern\n"
        "name = 'a' * 40\n"
        "for p in ('%*%*%*%*z', '*a*a*a*a*a*a*a*a*z', '%a%a%a%a%a%a%a%a%a%z', '*%' * 200 + 'z'):\n"
        "    assert not Pattern(p).match(name)\n"
        "    assert not Pattern(p).match('a.' * 20)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)
