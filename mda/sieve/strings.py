"""Strings of a script: "encoded-character" (RFC 5228 2.4.2.4) and variable references
(RFC 5229 section 3), and the modifiers of `set` (RFC 5229 4.1, RFC 5435 6).

A string argument is prepared once, at parse time, into either a plain `str` (no variable in
it) or a `Template` (literal pieces and references), which `expand` turns into a `str` at run
time from the variables then in scope. Encoded characters are decoded first, so that
"${hex:24}{a}" is the literal "${a}" and never a reference (RFC 5229 section 3).

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


def is_identifier(name: str) -> bool:
    """RFC 5228 section 8.1: identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")."""
    return (
        bool(name)
        and name[0].isascii()
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isascii() and (c.isalnum() or c == "_") for c in name)
    )


def check_variable_name(name: str, line: int, *, global_ok: bool = False) -> str:
    """The name of a variable that `set`, `extracttext` or `global` assigns, lower case.

    RFC 5229 section 4: only an identifier; "global.name" where "include" allows it (RFC 6609
    section 3.5), kept with its namespace."""
    lowered = name.lower()
    if global_ok and lowered.startswith("global.") and is_identifier(lowered[7:]):
        return lowered
    if not is_identifier(name):
        raise SieveError(f"invalid variable name {name!r}", line)
    return lowered


def parse_template(value: str, line: int, *, namespaces: frozenset[str] = frozenset()) -> Value:
    """`value` as a plain string, or a Template if it holds a variable reference.

    A reference to a namespace that no required extension provides is an error (RFC 5229
    section 3); `namespaces` are those provided ("global" with include)."""
    if "${" not in value:
        return value
    pieces: list[Piece] = []
    literal: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        start = value.find("${", i)
        if start < 0:
            literal.append(value[i:])
            break
        literal.append(value[i:start])
        end = value.find("}", start + 2)
        ref = _reference(value[start + 2 : end], line, namespaces) if end > 0 else None
        if ref is None:
            literal.append("${")
            i = start + 2
            continue
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(ref)
        i = end + 1
    if literal:
        pieces.append("".join(literal))
    if all(isinstance(p, str) for p in pieces):
        return "".join(p for p in pieces if isinstance(p, str))
    return Template(tuple(pieces))


def _reference(inner: str, line: int, namespaces: frozenset[str]) -> tuple[str, str | int] | None:
    if inner.isascii() and inner.isdigit():
        return ("match", int(inner))
    parts = inner.split(".")
    if not all(is_identifier(p) for p in parts):
        return None
    if len(parts) == 1:
        return ("var", inner.lower())
    namespace = parts[0].lower()
    if namespace not in namespaces:
        raise SieveError(f"unknown variable namespace {namespace!r} in '${{{inner}}}'", line)
    if len(parts) != 2:
        raise SieveError(f"invalid variable name '${{{inner}}}'", line)
    return ("var", f"{namespace}.{parts[1].lower()}")


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


def sort_modifiers(names: list[str], line: int) -> tuple[str, ...]:
    """Order modifiers by precedence; two of one precedence are an error (RFC 5229 4.1)."""
    seen: dict[int, str] = {}
    for name in names:
        precedence = MODIFIERS[name][0]
        if precedence in seen and seen[precedence] != name:
            raise SieveError(f"':{name}' conflicts with ':{seen[precedence]}'", line)
        seen[precedence] = name
    return tuple(sorted(set(names), key=lambda n: -MODIFIERS[n][0]))


def decode_encoded_characters(value: str, line: int) -> str:
    """RFC 5228 section 2.4.2.4: replace "${hex:...}" and "${unicode:...}" in one pass.

    A sequence that is not well-formed stays as written; a well-formed one with a Unicode
    value outside 0-D7FF and E000-10FFFF is an error. The result is read as UTF-8; octets
    that are not valid UTF-8 are kept (with surrogateescape) so comparisons see them as-is.
    """
    out = bytearray()
    i = 0
    n = len(value)
    while i < n:
        start = value.find("${", i)
        if start < 0:
            out += to_octets(value[i:])
            break
        out += to_octets(value[i:start])
        decoded = _encoded_sequence(value, start, line)
        if decoded is None:
            out += b"$"
            i = start + 1
        else:
            out += decoded[0]
            i = decoded[1]
    return out.decode("utf-8", "surrogateescape")


def to_octets(text: str) -> bytes:
    """The UTF-8 octets of a string; octets smuggled in with surrogateescape come back as-is."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_BLANKS = frozenset(" \t\n")  # blank = WSP / CRLF (CRLF is "\n" once lexed)


def _encoded_sequence(value: str, start: int, line: int) -> tuple[bytes, int] | None:
    colon = value.find(":", start + 2, start + 10)  # "${unicode:" is the longest
    if colon < 0:
        return None
    kind = value[start + 2 : colon].lower()
    if kind not in ("hex", "unicode"):
        return None
    i = colon + 1
    n = len(value)
    items: list[str] = []
    while True:
        while i < n and value[i] in _BLANKS:
            i += 1
        if i >= n:
            return None
        if value[i] == "}":
            break
        if items and value[i - 1] not in _BLANKS:
            return None  # items must be separated by blanks
        j = i
        while j < n and value[j] in _HEXDIGITS:
            j += 1
        if j == i:
            return None
        items.append(value[i:j])
        i = j
    if not items:
        return None
    if kind == "hex":
        if any(len(item) > 2 for item in items):
            return None  # hex-pair = 1*2HEXDIG
        return bytes(int(item, 16) for item in items), i + 1
    chars: list[str] = []
    for item in items:
        code = int(item.lstrip("0") or "0", 16) if len(item.lstrip("0")) <= 8 else 0x110000
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise SieveError(f"invalid Unicode character U+{item.upper()} in string", line)
        chars.append(chr(code))
    return "".join(chars).encode("utf-8"), i + 1


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
