"""Strings of a script: "encoded-character" (RFC 5228 2.4.2.4) and variable references
(RFC 5229 section 3), and the modifiers of `set` (RFC 5229 4.1, RFC 5435 6).

A string argument is prepared once, at parse time (`stringparse.py`, which the run does not
import), into either a plain `str` (no variable in it) or a `Template` (literal pieces and
references), which `expand` turns into a `str` at run time from the variables then in
scope. Encoded characters are decoded first, so that "${hex:24}{a}" is the literal "${a}" and
never a reference (RFC 5229 section 3).

References (RFC 5229 section 3):

    variable-ref   = "${" [namespace] variable-name "}"
    namespace      = identifier "."
    variable-name  = num-variable / identifier
    num-variable   = 1*DIGIT

A "${" that does not start a well-formed reference stays as it is, as the RFC says. Names are
case-insensitive. The only namespace is "global" (RFC 6609 section 3.5), with "include".
"""

from __future__ import annotations

from .errors import SieveError

# A reference: ("var", lower-case name) or ("match", index).
Piece = str | tuple[str, str | int]


class Template:
    """A string with variable references: `pieces` are literal strings and references."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: tuple[Piece, ...]) -> None:
        self.pieces = pieces

    def __repr__(self) -> str:
        return f"Template({self.pieces!r})"


Value = str | Template


def quote_wildcards(value: str) -> str:
    """RFC 5229 section 4.1.2: backslash before "*", "?" and "\\"."""
    return value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


_URL_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def encode_url(value: str) -> str:
    """RFC 5435 section 6: percent-encode every octet but RFC 3986 "unreserved"."""
    octets = value.encode("utf-8", "surrogateescape")
    return "".join(chr(c) if c in _URL_UNRESERVED else f"%{c:02X}" for c in octets)


def _length(value: str) -> str:
    # RFC 5229 4.1.5: the length in characters (of the UTF-8 string).
    return str(len(value))


# RFC 5229 section 4.1: modifiers by precedence, applied highest first; one per precedence.
MODIFIERS: dict[str, tuple[int, str]] = {
    "lower": (40, "case"),
    "upper": (40, "case"),
    "lowerfirst": (30, "first"),
    "upperfirst": (30, "first"),
    "quotewildcard": (20, "quote"),
    "encodeurl": (15, "url"),  # RFC 5435 section 6, with enotify
    "length": (10, "length"),
}


def _ascii_lower(value: str) -> str:
    # Pigeonhole folds only ASCII letters for :lower/:upper (str_lcase), as i;ascii-casemap.
    return value.translate(_LOWER)


def _ascii_upper(value: str) -> str:
    return value.translate(_UPPER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_UPPER = {c + 32: c for c in range(ord("A"), ord("Z") + 1)}

_APPLY = {
    "lower": _ascii_lower,
    "upper": _ascii_upper,
    "lowerfirst": lambda v: _ascii_lower(v[:1]) + v[1:],
    "upperfirst": lambda v: _ascii_upper(v[:1]) + v[1:],
    "quotewildcard": quote_wildcards,
    "encodeurl": encode_url,
    "length": _length,
}


def apply_modifiers(value: str, modifiers: tuple[str, ...]) -> str:
    """Apply `modifiers`, already sorted by precedence (highest first)."""
    for name in modifiers:
        value = _APPLY[name](value)
    return value


def to_octets(text: str) -> bytes:
    """The UTF-8 octets of a string; octets smuggled in with surrogateescape come back as-is."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def check_mailbox_name(mailbox: str, line: int) -> None:
    """Refuse names no mail store can hold; the store checks the rest when delivering."""
    if not mailbox:
        raise SieveError("empty mailbox name", line)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in mailbox):
        raise SieveError(f"control character in mailbox name {mailbox!r}", line)
    try:
        mailbox.encode("utf-8")
    except UnicodeEncodeError:
        raise SieveError(f"mailbox name {mailbox!r} is not valid UTF-8", line) from None
