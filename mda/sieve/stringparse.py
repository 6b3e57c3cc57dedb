"""What the parser does with the strings of a script (`strings.py` is what the run needs):
"encoded-character" (RFC 5228 2.4.2.4), variable references made into `Template`s (RFC 5229
section 3), variable names and the order of `set`'s modifiers (RFC 5229 4.1). Apart from
`strings.py` because a delivery whose script is cached never parses, and pays for what it
imports.
"""

from __future__ import annotations

from .errors import SieveError
from .strings import MODIFIERS, Piece, Template, Value, to_octets


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
