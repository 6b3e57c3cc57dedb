"""Message bytes as clients see them: CRLF line ends, whatever the file holds.

Files are stored as they arrived (LF from an MTA pipe, CRLF from IMAP APPEND); POP3 and IMAP
serve CRLF (RFC 5322 section 2.3) and report sizes in CRLF octets. Conversion streams in bounded
chunks; a CR that ends one chunk is remembered so that a CRLF split across chunks is not doubled.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` is not imported at run time: it costs mda milliseconds
    from typing import BinaryIO

CHUNK = 64 * 1024


class VsizeCounter:
    """Counts the CRLF size of a byte stream fed in arbitrary chunks."""

    __slots__ = ("last_cr", "size", "vsize")

    def __init__(self) -> None:
        self.size = 0
        self.vsize = 0
        self.last_cr = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        n = len(chunk)
        lf = chunk.count(b"\n")
        crlf = chunk.count(b"\r\n")
        if self.last_cr and chunk[0] == 10:
            crlf += 1  # a CRLF split across two chunks: that LF needs no CR
        self.size += n
        self.vsize += n + lf - crlf
        self.last_cr = chunk[-1] == 13


def to_crlf(chunk: bytes, after_cr: bool = False) -> bytes:
    """Bare LF -> CRLF in one chunk; `after_cr` says the previous chunk ended with CR."""
    if b"\n" not in chunk:
        return chunk
    if b"\r" in chunk:
        out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    else:
        out = chunk.replace(b"\n", b"\r\n")  # the usual file from an MTA: one pass
    if after_cr and chunk[0] == 10:
        out = out[1:]  # the CR is already on the wire, at the end of the previous chunk
    return out


def header_end(data: bytes) -> int:
    """The offset just after the blank line that ends the header block, or -1 if there is
    none in `data` (a header-only message, or a truncated read)."""
    crlf = data.find(b"\r\n\r\n")
    # A bare "\n\n" counts only before the first CRLF CRLF: no need to scan the body for it.
    lf = data.find(b"\n\n", 0, len(data) if crlf < 0 else crlf + 2)
    if lf >= 0:
        return lf + 2
    return crlf + 4 if crlf >= 0 else -1


def vsize_of_file(f: BinaryIO) -> tuple[int, int]:
    """(size, CRLF size) of a whole file, read in chunks."""
    counter = VsizeCounter()
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            return counter.size, counter.vsize
        counter.feed(chunk)
