"""The ":regex" match type (draft-ietf-sieve-regex-01): POSIX extended regular expressions,
as Pigeonhole runs them (regcomp with REG_EXTENDED, REG_ICASE under i;ascii-casemap), on
Python's `re` engine.

An ERE is translated into Python syntax, octet by octet, and compiled as a bytes pattern (so
that "." is one octet and IGNORECASE folds only ASCII letters, as "i;ascii-casemap" does):

- outside brackets, `\\` makes the next character literal, except GNU's `\\w \\W \\s \\S \\b
  \\B \\< \\>` and back-references `\\1`-`\\9`, which glibc's regcomp also knows;
- bracket expressions keep POSIX meaning: a `\\` inside is a backslash, a `]` first is
  literal, `[:alpha:]` and the other classes are spelled out, `[=a=]` and `[.a.]` are the
  character itself;
- as glibc: a repetition operator with nothing to repeat (`*a`, `(?i)`, `a|*b`) and a `{`
  after an atom that starts no interval `{n}`, `{n,}`, `{n,m}` are errors (a `{` with nothing
  before it is literal), so `(?...)`, Python's own syntax, cannot be written;
- without REG_NEWLINE, "." matches a newline, "^" and "$" only the start and end of the
  value: DOTALL, and "$" becomes `\\Z`.

Differences that remain: POSIX takes the leftmost-longest match and Python the leftmost-first,
which changes only what an alternation captures (`(a|ab)` on "ab": POSIX "ab", Python "a"),
never whether a value matches; glibc in a UTF-8 locale would see characters where we see octets.

Start-up: importing `re` costs a delivery 5 ms or more, so a key is only translated (which
checks its syntax) when the script is compiled, and compiled by `re` the first time a value
could match it: `Regex.search` first looks for the literal strings every match must contain
(`required_literals`: "ticket #" in `^ticket #[0-9]+`), and a value without them is no match
without `re`. A filter whose regular expressions match nothing in a message never imports it.

Python's engine backtracks, so a pattern like `(a+)+$` takes exponential time on "aaaa...b".
The bound is the CPU time limit of the whole Sieve run (`cpulimit`, `[sieve] max_cpu_time`):
`re` checks for signals every few thousand steps, so the timer's signal ends the match
(SECURITY.md, heading 1).
"""

from __future__ import annotations

from .errors import RegexError, SieveError
from .matching import Regex as Regex  # where it lives: decoding a cached script needs it alone

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

_CLASSES = {
    b"alpha": rb"a-zA-Z",
    b"digit": rb"0-9",
    b"alnum": rb"a-zA-Z0-9",
    b"upper": rb"A-Z",
    b"lower": rb"a-z",
    b"space": rb" \t\n\r\f\v",
    b"blank": rb" \t",
    b"punct": rb"!-/:-@\[-`{-~",
    b"print": rb" -~",
    b"graph": rb"!-~",
    b"cntrl": rb"\x00-\x1f\x7f",
    b"xdigit": rb"0-9A-Fa-f",
}
_GNU_ESCAPES = {
    ord("w"): rb"\w",
    ord("W"): rb"\W",
    ord("s"): rb"\s",
    ord("S"): rb"\S",
    ord("b"): rb"\b",
    ord("B"): rb"\B",
    ord("<"): rb"\b(?=\w)",
    ord(">"): rb"\b(?<=\w)",
    ord("`"): rb"\A",
    ord("'"): rb"\Z",
}
_REPEAT = frozenset(b"*+?")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _escape(octets: bytes) -> bytes:
    """`re.escape` for bytes, without importing `re`: a backslash before each octet that is
    not a letter, digit, "_" or non-ASCII (all of which stand for themselves)."""
    return b"".join(bytes([c]) if c in _PLAIN or c >= 0x80 else b"\\" + bytes([c]) for c in octets)


def translate(pattern: bytes) -> bytes:
    """The Python spelling of a POSIX extended regular expression."""
    out: list[bytes] = []
    i = 0
    n = len(pattern)
    depth = 0
    groups = 0
    can_repeat = False  # there is an atom before us that an operator may repeat
    while i < n:
        c = pattern[i]
        if c == 0x5C:  # backslash
            if i + 1 >= n:
                raise RegexError("trailing backslash")
            nxt = pattern[i + 1]
            if nxt in _GNU_ESCAPES:
                out.append(_GNU_ESCAPES[nxt])
                can_repeat = nxt in b"wWsS"
            elif 0x31 <= nxt <= 0x39:
                if nxt - 0x30 > groups:
                    raise RegexError("invalid back reference")
                out.append(b"\\" + bytes([nxt]))
                can_repeat = True
            else:
                out.append(_escape(bytes([nxt])))
                can_repeat = True
            i += 2
            continue
        if c == 0x5B:  # [
            text, i = _bracket(pattern, i)
            out.append(text)
            can_repeat = True
            continue
        if c == 0x28:  # (
            depth += 1
            groups += 1
            out.append(b"(")
            can_repeat = False
        elif c == 0x29:  # )
            if depth == 0:
                out.append(rb"\)")  # an unmatched ")" is literal in POSIX EREs
                can_repeat = True
            else:
                depth -= 1
                out.append(b")")
                can_repeat = True
        elif c == 0x7C:  # |
            out.append(b"|")
            can_repeat = False
        elif c in _REPEAT:
            if not can_repeat:
                raise RegexError("invalid preceding regular expression")
            out.append(bytes([c]))
            # "a**" and "a+?" are one repetition in POSIX; never a lazy one in Python.
            while i + 1 < n and pattern[i + 1] in _REPEAT:
                i += 1
        elif c == 0x7B:  # {
            end = pattern.find(b"}", i)
            body = pattern[i + 1 : end] if end > 0 else b""
            if can_repeat:
                if end < 0 or not _interval(body):
                    raise RegexError("unmatched \\{")
                out.append(b"{" + body + b"}")
                i = end + 1
                while i < n and pattern[i] in _REPEAT:
                    i += 1
                continue
            out.append(rb"\{")  # a "{" with nothing before it is literal
            can_repeat = True
        elif c == 0x5E:  # ^
            out.append(b"^")
            can_repeat = False
        elif c == 0x24:  # $
            out.append(rb"\Z")
            can_repeat = False
        elif c == 0x2E:  # .
            out.append(b".")
            can_repeat = True
        else:
            out.append(_escape(bytes([c])))
            can_repeat = True
        i += 1
    if depth:
        raise RegexError("unmatched '('")
    return b"".join(out)


def _interval(body: bytes) -> bool:
    low, _, high = body.partition(b",")
    if not low.isdigit() or (high and not high.isdigit()):
        return False
    if int(low) > 255 or (high and (int(high) > 255 or int(high) < int(low))):
        raise RegexError("invalid repetition count")  # RE_DUP_MAX is 255 in glibc
    return True


def _bracket(pattern: bytes, start: int) -> tuple[bytes, int]:
    """Translate the bracket expression at `start`; return it and the index after it."""
    i = start + 1
    n = len(pattern)
    out = [b"["]
    if i < n and pattern[i] == 0x5E:
        out.append(b"^")
        i += 1
    first = True
    items = 0
    while True:
        if i >= n:
            raise RegexError("unmatched '['")
        c = pattern[i]
        if c == 0x5D and not first:
            out.append(b"]")
            return b"".join(out), i + 1
        first = False
        if c == 0x5B and i + 1 < n and pattern[i + 1] in b":=.":
            kind = pattern[i + 1]
            end = pattern.find(bytes([kind, 0x5D]), i + 2)
            if end < 0:
                raise RegexError("unterminated character class")
            name = pattern[i + 2 : end]
            if kind == 0x3A:
                if name not in _CLASSES:
                    raise RegexError(f"unknown character class {name.decode('latin-1')!r}")
                out.append(_CLASSES[name])
            else:
                out.append(_escape(name))
            items += 1
            i = end + 2
            continue
        if c == 0x2D and items and i + 1 < n and pattern[i + 1] != 0x5D:
            low, high = pattern[i - 1], pattern[i + 1]
            if high != 0x5C and high < low:
                raise RegexError("invalid range end")
            out.append(b"-")  # a range between the item before and the one after
            i += 1
            continue
        out.append(_escape(bytes([c])) if c != 0x2D else rb"\-")
        items += 1
        i += 1


def compile_regex(pattern: bytes, *, ignore_case: bool) -> re.Pattern[bytes]:
    """Compile a key of ":regex" with `re`; RegexError if it is not a valid expression."""
    import re

    try:
        return re.compile(translate(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))
    except re.error as exc:
        raise RegexError(str(exc)) from None
    except RecursionError:
        raise RegexError("expression nested too deeply") from None


def required_literals(pattern: bytes) -> list[bytes]:
    """Literal strings every match of the ERE must contain: runs of plain octets in the
    top-level sequence that no operator makes optional or repeats away. [] when there is an
    alternation at the top level, or nothing certain. Conservative: a literal listed is
    always in a match; one not listed may be too."""
    out: list[bytes] = []
    run = bytearray()
    depth = 0
    i = 0
    n = len(pattern)

    def close() -> None:
        if run:
            out.append(bytes(run))
            run.clear()

    while i < n:
        c = pattern[i]
        if c == 0x5C and i + 1 < n:  # an escaped octet is literal, unless a GNU escape
            nxt = pattern[i + 1]
            atom = bytes([nxt]) if nxt not in _GNU_ESCAPES and not 0x30 <= nxt <= 0x39 else b""
            i += 2
        elif c == 0x5B:  # a bracket: skip it whole
            try:
                _, i = _bracket(pattern, i)
            except RegexError:
                return []
            atom = b""
        elif c == 0x28:
            depth += 1
            close()
            i += 1
            continue
        elif c == 0x29:
            depth = max(0, depth - 1)
            close()
            i += 1
            continue
        elif c == 0x7C:
            if depth == 0:
                return []  # "a|b": neither is required
            i += 1
            continue
        elif c in b".^$":
            atom = b""
            i += 1
        elif c in _REPEAT:
            i += 1
            continue
        elif c == 0x7B:  # an interval: nothing in it is a literal of the value
            close()
            end = pattern.find(b"}", i)
            i = n if end < 0 else end + 1
            continue
        else:
            atom = bytes([c])
            i += 1
        if depth or not atom:
            close()
            continue
        following = pattern[i : i + 1]
        if following in (b"*", b"?", b"{"):
            close()  # this atom may be absent (or "{0,...}": treated alike)
        elif following == b"+":
            run.extend(atom)
            close()  # one is certain, how many is not
        else:
            run.extend(atom)
    close()
    return [literal for literal in out if literal]


def check_regex(pattern: str, ignore_case: bool, line: int) -> None:
    """Compile-time check of a literal key (the draft: an invalid expression is an error)."""
    from .strings import to_octets

    try:
        compile_regex(to_octets(pattern), ignore_case=ignore_case)
    except RegexError as exc:
        raise SieveError(f"invalid regular expression {pattern!r}: {exc}", line) from None
