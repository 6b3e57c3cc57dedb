"""The message as the MTA hands it over, and the trace headers we add.

No `email` import: a delivery needs only a few header fields (Delivered-To, Message-ID,
Return-Path), found by a scan of the header block, and the `email` package alone would cost more
than the rest of the delivery. Sieve parses headers properly, and only when a script runs.

Memory (SECURITY.md, heading 5): the message is held once. It is read into one `bytearray`
that grows in place (a large one is resized with mremap, not copied), the mbox `From ` line is
cut off its front without a copy (bytearray keeps an offset), and what is stored is a
`Payload`: the few header lines we add, then views of that buffer. Nothing joins the two into a
second whole copy; every writer (the Maildir, an mbox, a program's stdin) takes them in
slices. So a delivery holds about the message's size once, plus the interpreter.
"""

from __future__ import annotations

import os

from mda.address import normalize
from mda.errors import BadMessage, Loop, Refused

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

CHUNK = 1 << 16  # what a pipe gives per read, and what the store writes per call

# Headers an MTA puts on top for this very delivery (Postfix local(8) and pipe(8) flags D, R, O;
# sendmail's P flag): they belong to the current hop, not to an earlier one.
TRACE_TOP = (b"return-path", b"delivered-to", b"x-original-to")


class Incoming:
    """A message read from the MTA: bytes, with a leading mbox `From ` line removed."""

    def __init__(self, raw: bytes | bytearray, from_line: bool = True) -> None:
        """`raw` is taken over (a bytearray is changed in place) or copied (bytes).
        `from_line`: a leading mbox `From ` line is the MTA's (a pipe); LMTP has none, and
        a message there that starts with `From ` keeps it."""
        buf = raw if isinstance(raw, bytearray) else bytearray(raw)
        self.from_line_sender = ""
        if from_line and buf.startswith(b"From "):
            nl = buf.find(b"\n")
            line = bytes(buf[: nl if nl >= 0 else len(buf)])
            del buf[: nl + 1 if nl >= 0 else len(buf)]  # O(1) at the front of a bytearray
            # `From sender  date`: the envelope sender, used when neither -f nor SENDER says.
            parts = line[5:].split()
            if parts:
                self.from_line_sender = parts[0].decode("utf-8", "replace")
        self.raw = buf
        self.eol = b"\r\n" if buf.find(b"\r\n") == buf.find(b"\n") - 1 >= 0 else b"\n"
        end = _header_end(buf)
        self.header_block = bytes(buf[:end])
        self._fields = _parse_fields(self.header_block)
        top = 0
        for name, _ in self._fields:
            if name not in TRACE_TOP:
                break
            top += 1
        self._top = self._fields[:top]

    @classmethod
    def read(cls, fd: int, limit: int) -> Incoming:
        """Read the whole message from a file descriptor, refusing one over `limit` bytes."""
        buf = bytearray()
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError as exc:
                raise BadMessage(f"cannot read the message: {exc.strerror}") from exc
            if not chunk:
                break
            if len(buf) + len(chunk) > limit:
                raise Refused(f"message too big (over {limit} bytes)", dsn="5.3.4")
            buf += chunk
        if not buf or buf.isspace():  # not strip(): that would copy the message
            raise BadMessage("empty message", dsn="5.6.0")
        return cls(buf)

    def values(self, name: str) -> list[str]:
        """Unfolded values of a header field, in order (name case-insensitive)."""
        key = name.lower().encode()
        return [v for n, v in self._fields if n == key]

    def top_values(self, name: str) -> list[str]:
        """Values of a field in the MTA's trace block at the very top of the message."""
        key = name.lower().encode()
        return [v for n, v in self._top if n == key]

    @property
    def message_id(self) -> str:
        ids = self.values("message-id")
        return ids[0].strip() if ids else ""

    def check_loop(self, recipient: str) -> None:
        """A message that already passed through this recipient's mailbox is a loop.

        The MTA may have put a `Delivered-To:` for this very delivery on top (Postfix does):
        that one does not count, any other does (RFC 9228's purpose for the field).
        """
        want = _bare(recipient)
        seen = sum(1 for v in self.values("delivered-to") if _bare(v) == want)
        ours = sum(1 for v in self.top_values("delivered-to") if _bare(v) == want)
        if seen > min(ours, 1):
            raise Loop(f"mail forwarding loop for {recipient}", recipient)

    @property
    def vsize(self) -> int:
        """The size with CRLF line endings (what Sieve's `size` test compares)."""
        raw = self.raw
        return len(raw) + raw.count(b"\n") - raw.count(b"\r\n")

    def for_delivery(self, sender: str | None, recipient: str, received: str = "") -> Payload:
        """What to store: Return-Path and Delivered-To on top unless the MTA put them, then
        `received` (LMTP's `Received:` field; its folds, written `\n`, take the message's
        line ends).

        Every value reaches the header as it is: the caller has refused any with a control
        character in it (`mda.address.check`), so none can end the line and start another.
        """
        add = []
        if sender is not None and not self.top_values("return-path"):
            add.append(b"Return-Path: <" + sender.encode("utf-8", "replace") + b">")
        want = _bare(recipient)
        if recipient and not any(_bare(v) == want for v in self.top_values("delivered-to")):
            add.append(b"Delivered-To: " + recipient.encode("utf-8", "replace"))
        if received:
            add.append(received.encode("utf-8", "replace").replace(b"\n", self.eol))
        head = self.eol.join(add) + self.eol if add else b""
        return Payload(head, self.raw)


class Payload:
    """The bytes a copy consists of: `head` (the trace lines we add) then `body` (the message
    as received), never joined into one more copy of the message."""

    __slots__ = ("body", "head")

    def __init__(self, head: bytes, body: bytes | bytearray) -> None:
        self.head = head
        self.body = body

    def __len__(self) -> int:
        return len(self.head) + len(self.body)

    def chunks(self, size: int = CHUNK) -> Iterator[memoryview]:
        """The bytes in order, as views of at most `size` bytes (no copies)."""
        if self.head:
            yield memoryview(self.head)
        view = memoryview(self.body)
        for start in range(0, len(view), size):
            yield view[start : start + size]

    def reader(self) -> BinaryIO:
        """A file-like object whose `read(n)` gives successive pieces: for the store's append,
        which copies what it is given piece by piece instead of all at once."""
        return _as_binary(_Reader(self.chunks()))

    def tobytes(self) -> bytes:
        """One bytes object: a copy, for tests and small messages only."""
        return self.head + bytes(self.body)


class _Reader:
    __slots__ = ("_chunks",)

    def __init__(self, chunks: Iterator[memoryview]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        for chunk in self._chunks:
            if chunk:
                return bytes(chunk)
        return b""


def _as_binary(reader: _Reader) -> BinaryIO:
    """The reader, typed as the BinaryIO the store accepts (it only calls read())."""
    if TYPE_CHECKING:
        from typing import cast

        return cast("BinaryIO", reader)
    return reader


def _header_end(raw: bytes | bytearray) -> int:
    lf = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    ends = [i for i in (lf, crlf) if i >= 0]
    return min(ends) + 1 if ends else len(raw)


def _parse_fields(block: bytes) -> list[tuple[bytes, str]]:
    fields: list[tuple[bytes, str]] = []
    name = b""
    value: list[bytes] = []
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and name:
            value.append(line)
            continue
        if name:
            fields.append((name, _text(b" ".join(v.strip() for v in value))))
        head, colon, rest = line.partition(b":")
        if colon and head and b" " not in head.strip():
            name, value = head.strip().lower(), [rest]
        else:
            name, value = b"", []
    if name:
        fields.append((name, _text(b" ".join(v.strip() for v in value))))
    return fields


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _bare(address: str) -> str:
    """The address for comparisons: canonical (`mda.address`), case-folded."""
    return normalize(address).lower()
