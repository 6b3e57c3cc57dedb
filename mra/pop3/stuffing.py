"""RETR and TOP bodies on the wire: CRLF line ends and dot-stuffing (RFC 1939 section 3).

Stuffing works on chunks of any size: the last two bytes already sent are carried over, so a
line-initial `.` is doubled even when the CRLF before it ended the previous chunk (the case
Twisted's POP3 server gets wrong at 16 KiB boundaries).
"""

from __future__ import annotations

from mailstore.content import CHUNK, to_crlf

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import BinaryIO

TERMINATOR = b".\r\n"


def stuffed(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """CRLF-convert and dot-stuff a message, then end it with `.CRLF` (after a CRLF)."""
    tail = b"\r\n"  # the start of the message counts as the start of a line
    after_cr = False
    pending = b""
    for raw in chunks:
        if not raw:
            continue
        converted = to_crlf(raw, after_cr)
        after_cr = raw[-1] == 13
        out = converted.replace(b"\r\n.", b"\r\n..")
        # A line start that the previous chunk's end made: the replace above cannot see it.
        if tail == b"\r\n" and out[:1] == b".":
            out = b"." + out
        elif tail[-1:] == b"\r" and converted[:2] == b"\n.":
            out = b"\n." + out[1:]
        tail = (tail + converted)[-2:] if len(converted) < 2 else converted[-2:]
        if pending:
            yield pending
        pending = out
    # The terminator goes out with the last chunk: one write, one packet, no extra round trip.
    yield pending + (TERMINATOR if tail == b"\r\n" else b"\r\n" + TERMINATOR)


def file_chunks(f: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    try:
        while chunk := f.read(size):
            yield chunk
    finally:
        f.close()


def top_lines(f: BinaryIO, body_lines: int) -> Iterator[bytes]:
    """The header, the blank line and the first `body_lines` lines of the body (TOP)."""
    try:
        in_header = True
        remaining = body_lines
        for line in f:
            if in_header:
                yield line
                if line in (b"\n", b"\r\n"):
                    in_header = False
                continue
            if remaining <= 0:
                return
            yield line
            remaining -= 1
    finally:
        f.close()


def unstuff(wire: bytes) -> bytes:
    """What a client makes of a multi-line response body (for tests)."""
    assert wire.endswith(b"\r\n.\r\n") or wire == TERMINATOR
    lines = wire[: -len(TERMINATOR)].split(b"\r\n")
    return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in lines)
