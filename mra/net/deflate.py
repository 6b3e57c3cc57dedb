"""A connection's DEFLATE layer (IMAP COMPRESS, RFC 4978): raw DEFLATE (RFC 1951, no zlib or
gzip header) both ways, for any line protocol; the adapter puts it between the session and the
transport (inside TLS) when a session outputs `StartCompression`.

Twisted-free and protocol-free: bytes in, bytes out.

What it costs and why these numbers
-----------------------------------
Memory. zlib's deflate state is `(1 << (wbits + 2)) + (1 << (memLevel + 9))` octets plus ~6 KiB:
262 KiB at zlib's defaults (wbits 15, memLevel 8), which Dovecot's imap_zlib uses
(`deflateInit2(..., -15, 8, ...)` in lib-compression/ostream-zlib.c). We compress with wbits 14
and memLevel 5: 86 KiB measured (tracemalloc sees zlib's allocations), and on 2,000 realistic
messages (bench/imap.py's) 0.347 of the octets for whole messages, as at the defaults, and
0.095 instead of 0.091 for header-only FETCHes. Inflating must accept any window the client
chose (up to wbits 15): 32 KiB of window and ~7 KiB of state. So a compressed connection holds
about 130 KiB more than a plain one.

Time. Output is compressed on the reactor thread, as it is written. zlib level 1 compressed the
same messages at ~100 MB/s, level 6 at 20-40 MB/s, for 0.347 against 0.292 of the octets: the
level is a setting (`[imap] compress_level`), 1 by default (RFC 4978 section 4 suggests 1-5).

Flushing. Each write ends with a sync flush (Z_SYNC_FLUSH: an empty stored block, 4-5 octets),
so that the client can inflate every answer as soon as it arrives (RFC 4978 section 4); the
dictionary is kept, so the ratio hardly suffers.

Inflate bombs
-------------
Deflate expands at most 1032:1, so 1 MB sent can become 1 GB. Nothing here inflates more than
asked: `give()` only stores compressed octets; `inflate(limit)` returns at most `limit` octets,
keeping what it could not use. zlib is handed at most `STEP_IN` compressed octets per call, so
the unconsumed tail it copies back (`unconsumed_tail`) stays small: handing it the whole backlog
would copy the backlog again for every `limit` octets inflated, quadratic in a bomb. The adapter
counts `backlog` (compressed octets not yet inflated) against its input limit and asks for one
slice at a time, as the session takes them (mra/net/adapter.py).
"""

from __future__ import annotations

import zlib

__all__ = ["DEFLATE_MEMLEVEL", "DEFLATE_WBITS", "STEP_IN", "CompressionError", "Deflate"]

DEFLATE_WBITS = 14  # window of what we send: 16 KiB (see above)
DEFLATE_MEMLEVEL = 5
INFLATE_WBITS = 15  # what the client sends may use any window up to 32 KiB
STEP_IN = 1 << 14  # compressed octets handed to zlib per call


class CompressionError(Exception):
    """The peer's DEFLATE stream is invalid, or it ended it (a final block): RFC 4978 has no
    way back to plain text, so the connection cannot go on."""


class Deflate:
    """Both directions of one connection's DEFLATE stream."""

    def __init__(self, level: int) -> None:
        self._out = zlib.compressobj(level, zlib.DEFLATED, -DEFLATE_WBITS, DEFLATE_MEMLEVEL)
        self._in = zlib.decompressobj(-INFLATE_WBITS)
        self._input = bytearray()  # compressed, not yet handed to zlib
        self._tail = b""  # handed to zlib, not yet used (unconsumed_tail)
        self._more = False  # zlib may hold inflated octets it could not give (limit reached)

    # -- what we send -----------------------------------------------------------------------

    def compress(self, *chunks: bytes) -> bytes:
        """The chunks compressed, with a sync flush after them: the peer can inflate all of it."""
        out = [self._out.compress(chunk) for chunk in chunks]
        out.append(self._out.flush(zlib.Z_SYNC_FLUSH))
        return b"".join(out)

    # -- what we receive --------------------------------------------------------------------

    def give(self, data: bytes) -> None:
        """Compressed octets received; inflated only when asked for (`inflate`)."""
        self._input += data

    @property
    def backlog(self) -> int:
        """Compressed octets received and not inflated yet."""
        return len(self._input) + len(self._tail)

    @property
    def pending(self) -> bool:
        """`inflate()` may have something to give."""
        return bool(self._input or self._tail or self._more)

    def inflate(self, limit: int) -> bytes:
        """Up to `limit` inflated octets (fewer when the input runs out; b"" when no whole
        piece of it can be inflated yet). CompressionError if the stream is invalid or ended."""
        out = bytearray()
        while len(out) < limit:
            if self._tail:
                data = self._tail
            elif self._input:
                data = bytes(self._input[:STEP_IN])
                del self._input[:STEP_IN]
            elif self._more:
                data = b""  # no input, but zlib may still hold output
            else:
                break
            want = limit - len(out)
            try:
                piece = self._in.decompress(data, want)
            except zlib.error as exc:
                raise CompressionError(f"invalid DEFLATE data: {exc}") from None
            self._tail = self._in.unconsumed_tail
            self._more = len(piece) == want
            if self._in.eof:
                raise CompressionError("the DEFLATE stream was ended")
            out += piece
            if not piece and (self._tail or not self._input):
                break  # all of it used, nothing whole yet (or, never seen, no progress)
        return bytes(out)
