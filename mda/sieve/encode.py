"""Header values we write: fields added by `addheader` and the headers of vacation replies,
notifications and rejection notices. Non-ASCII text becomes RFC 2047 encoded-words (UTF-8,
"Q" encoding, each at most 75 characters, RFC 2047 section 2), and long lines are folded
(RFC 5322 section 2.2.3), so that what we add is a valid RFC 5322 field whatever a script put
in it."""

from __future__ import annotations

_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_MAX_WORD = 75
_MAX_LINE = 78


def _q_words(text: str) -> list[str]:
    """`text` as encoded-words, never splitting a character between two words."""
    words: list[str] = []
    current = ""
    prefix, suffix = "=?utf-8?q?", "?="
    for ch in text:
        octets = ch.encode("utf-8", "surrogateescape")
        piece = "".join(
            chr(b) if b in _Q_SAFE else ("_" if b == 0x20 else f"={b:02X}") for b in octets
        )
        if len(prefix) + len(current) + len(piece) + len(suffix) > _MAX_WORD and current:
            words.append(prefix + current + suffix)
            current = ""
        current += piece
    if current or not words:
        words.append(prefix + current + suffix)
    return words


def encode_header_value(name: str, value: str) -> str:
    """The value to write after "Name:" (without the leading space): ASCII text folded at
    spaces, anything else as encoded-words on folded lines."""
    if value.isascii():
        return _fold(len(name) + 2, value.split(" "))
    return _fold(len(name) + 2, _q_words(value))


def _fold(used: int, words: list[str]) -> str:
    lines: list[str] = []
    current = ""
    for word in words:
        if current and used + len(current) + 1 + len(word) > _MAX_LINE:
            lines.append(current)
            current = word
            used = 1
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return "\r\n ".join(lines)
