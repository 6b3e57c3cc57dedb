"""The Sieve lexer: RFC 5228 section 8.1, by hand (no `re`, to keep the import cheap).

Two deliberate leniencies, both shared with Pigeonhole: a bare LF is accepted as a line ending
(scripts are files written by Unix editors; CRLF works too), and a hash comment may end at the
end of the script instead of a CRLF. A bare CR and NUL are refused, as section 2.1 says.
"""

from __future__ import annotations

from .errors import SieveError

# Token kinds. Separators are their own character.
IDENT = "identifier"
TAG = "tag"
NUMBER = "number"
STRING = "string"
EOF = "end of script"
SEPARATORS = frozenset("[](){},;")

# RFC 5228 section 2.4.1: K, M and G are powers of two.
_QUANTIFIERS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
# Section 2.4.1 requires 0 .. 2**31-1; we allow up to 2**63-1 and refuse more (this also keeps
# int() away from very long digit strings).
MAX_NUMBER = (1 << 63) - 1

_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_WHITESPACE = frozenset(" \t\n")


class Token:
    """`kind`: one of the kinds above or a separator character; `value`: the identifier or
    tag name (lower case), the string or the number."""

    __slots__ = ("kind", "line", "multiline", "value")

    def __init__(self, kind: str, value: str | int, line: int, multiline: bool = False) -> None:
        self.kind = kind
        self.value = value
        self.line = line
        self.multiline = multiline  # a `text:` string

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.value!r}, line={self.line})"


def _describe(ch: str) -> str:
    if ch.isprintable() and ch != " ":
        return repr(ch)
    return f"U+{ord(ch):04X}"


def tokenize(text: str) -> list[Token]:
    """Split a script into tokens; raise SieveError with the line of the first bad character."""
    text = text.replace("\r\n", "\n")
    for bad, name in (("\r", "a CR not followed by LF"), ("\0", "a NUL character")):
        pos = text.find(bad)
        if pos >= 0:
            # Section 2.1: NUL is never permitted; CR and LF only as CRLF.
            raise SieveError(f"{name} is not allowed in a script", text.count("\n", 0, pos) + 1)
    tokens: list[Token] = []
    n = len(text)
    i = 0
    line = 1
    while i < n:
        ch = text[i]
        if ch in _WHITESPACE:
            if ch == "\n":
                line += 1
            i += 1
        elif ch == "#":
            # hash-comment = "#" *octet-not-crlf CRLF
            end = text.find("\n", i)
            i = n if end < 0 else end  # the newline itself is whitespace
        elif ch == "/" and text.startswith("/*", i):
            # bracket-comment: no nesting, ends at the first "*/".
            end = text.find("*/", i + 2)
            if end < 0:
                raise SieveError("unterminated /* comment", line)
            line += text.count("\n", i, end)
            i = end + 2
        elif ch == '"':
            start_line = line
            value, i, line = _quoted_string(text, i + 1, line)
            tokens.append(Token(STRING, value, start_line))
        elif ch in SEPARATORS:
            tokens.append(Token(ch, ch, line))
            i += 1
        elif ch in _DIGITS:
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            digits = text[i:j]
            multiplier = 1
            if j < n and text[j].lower() in _QUANTIFIERS:
                multiplier = _QUANTIFIERS[text[j].lower()]
                j += 1
            if j < n and text[j] in _IDENT_CHARS:
                raise SieveError(f"invalid number {text[i : j + 1]!r}", line)
            if len(digits.lstrip("0")) > 19 or int(digits) * multiplier > MAX_NUMBER:
                raise SieveError(f"number {text[i:j]} is too large", line)
            tokens.append(Token(NUMBER, int(digits) * multiplier, line))
            i = j
        elif ch in _IDENT_START:
            j = i + 1
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            word = text[i:j].lower()
            if word == "text" and j < n and text[j] == ":":
                start_line = line
                value, i, line = _multiline_string(text, j + 1, line)
                tokens.append(Token(STRING, value, start_line, multiline=True))
                continue
            tokens.append(Token(IDENT, word, line))
            i = j
        elif ch == ":":
            j = i + 1
            if j >= n or text[j] not in _IDENT_START:
                raise SieveError("':' must be followed by a tag name", line)
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            tokens.append(Token(TAG, text[i + 1 : j].lower(), line))
            i = j
        else:
            raise SieveError(f"unexpected character {_describe(ch)}", line)
    tokens.append(Token(EOF, "", line))
    return tokens


def _quoted_string(text: str, i: int, line: int) -> tuple[str, int, int]:
    """Read a quoted string whose opening quote is just before `i`.

    Section 2.4.2: backslash-backslash and backslash-quote stand for themselves; any other
    escaped character is that character (an undefined escape: "the backslash is removed").
    Strings may span lines.
    """
    start_line = line
    parts: list[str] = []
    n = len(text)
    while True:
        quote = text.find('"', i)
        backslash = text.find("\\", i, quote if quote >= 0 else n)
        if backslash >= 0:
            parts.append(text[i:backslash])
            line += text.count("\n", i, backslash + 2)
            if backslash + 1 >= n:
                break
            parts.append(text[backslash + 1])
            i = backslash + 2
            continue
        if quote < 0:
            break
        parts.append(text[i:quote])
        line += text.count("\n", i, quote)
        return "".join(parts), quote + 1, line
    raise SieveError("unterminated quoted string", start_line)


def _multiline_string(text: str, i: int, line: int) -> tuple[str, int, int]:
    """Read a multi-line string; `i` is just after "text:".

    multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF)
                 *(multiline-literal / multiline-dotstart) "." CRLF
    A line of a single "." ends it; a leading ".." loses one dot (dot-unstuffing). The line
    ending of the last line belongs to the value.
    """
    start_line = line
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "#":
        end = text.find("\n", i)
        i = n if end < 0 else end
    if i >= n or text[i] != "\n":
        raise SieveError('"text:" must be followed by a line break', start_line)
    i += 1
    line += 1
    lines: list[str] = []
    while True:
        if i >= n:
            raise SieveError(
                'unterminated multi-line string (no line with a single ".")', start_line
            )
        end = text.find("\n", i)
        if end < 0:
            current = text[i:]
            next_i = n
        else:
            current = text[i:end]
            next_i = end + 1
        if current == ".":
            # The terminating "." CRLF; tolerate a missing final line break.
            return "".join(lines), next_i, line + (1 if end >= 0 else 0)
        if current.startswith(".."):
            current = current[1:]
        if end < 0:
            raise SieveError(
                'unterminated multi-line string (no line with a single ".")', start_line
            )
        lines.append(current + "\n")
        line += 1
        i = next_i
