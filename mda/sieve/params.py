"""Content-Type and Content-Disposition parameters (RFC 2045 section 5.1, RFC 2231), for the
MIME tests ("mime" :param, "body" :content) and the MIME walker."""

from __future__ import annotations

from .message import _is_hex, decode_octets


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """The main value ("text/plain", "attachment") and the parameters, names lower case,
    RFC 2231 continuations joined and charset'language'%XX values decoded."""
    main, _, rest = value.partition(";")
    main = _strip_comments(main).strip().lower()
    pieces: dict[str, dict[int, tuple[str, bool]]] = {}
    plain: dict[str, str] = {}
    for item in _split_params(rest):
        name, eq, val = item.partition("=")
        if not eq:
            continue
        name = name.strip().lower()
        val = val.strip()
        if val.startswith('"'):
            val = _unquote(val)
        if "*" in name:
            base, _, section = name.partition("*")
            encoded = section.endswith("*") or section == ""
            number = section.rstrip("*")
            index = int(number) if number.isascii() and number.isdigit() and len(number) < 6 else 0
            pieces.setdefault(base, {})[index] = (val, encoded)
        else:
            plain.setdefault(name, val)
    for base, sections in pieces.items():
        plain[base] = _join_rfc2231([sections[i] for i in sorted(sections)])
    return main, plain


def _strip_comments(value: str) -> str:
    out = []
    depth = 0
    for c in value:
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(c)
    return "".join(out)


def _split_params(rest: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(rest):
        c = rest[i]
        if quoted and c == "\\" and i + 1 < len(rest):
            current.append(rest[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    items.append("".join(current))
    return [item for item in items if item.strip()]


def _unquote(value: str) -> str:
    out = []
    i = 1
    while i < len(value) and value[i] != '"':
        if value[i] == "\\" and i + 1 < len(value):
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)


def _join_rfc2231(sections: list[tuple[str, bool]]) -> str:
    charset = "us-ascii"
    data = bytearray()
    for n, (value, encoded) in enumerate(sections):
        if encoded and n == 0 and value.count("'") >= 2:
            charset, _, rest = value.partition("'")
            value = rest.partition("'")[2]
        if encoded:
            data += _percent_decode(value)
        else:
            data += value.encode("utf-8", "surrogateescape")
    try:
        return data.decode(charset or "us-ascii")
    except (LookupError, UnicodeDecodeError):
        return decode_octets(bytes(data))


def _percent_decode(value: str) -> bytes:
    out = bytearray()
    raw = value.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)
