"""The message as the MTA hands it over, and the trace headers we add.

No `email` import: a delivery needs only a few header fields (Delivered-To, Message-ID,
Return-Path), found by a scan of the header block, and the `email` package alone would cost more
than the rest of the delivery. Sieve parses headers properly, and only when a script runs.
"""

from __future__ import annotations

import os

from mda.errors import BadMessage, Refused
from mda.resolve import bare

# Headers an MTA puts on top for this very delivery (Postfix local(8) and pipe(8) flags D, R, O;
# sendmail's P flag): they belong to the current hop, not to an earlier one.
TRACE_TOP = (b"return-path", b"delivered-to", b"x-original-to")


class Incoming:
    """A message read from the MTA: bytes, with a leading mbox `From ` line removed."""

    def __init__(self, raw: bytes) -> None:
        self.from_line_sender = ""
        if raw.startswith(b"From "):
            line, _, raw = raw.partition(b"\n")
            # `From sender  date`: the envelope sender, used when neither -f nor SENDER says.
            parts = line[5:].split()
            if parts:
                self.from_line_sender = parts[0].decode("utf-8", "replace")
        self.raw = raw
        self.eol = b"\r\n" if raw.find(b"\r\n") == raw.find(b"\n") - 1 >= 0 else b"\n"
        end = _header_end(raw)
        self._fields = _parse_fields(raw[:end])
        top = 0
        for name, _ in self._fields:
            if name not in TRACE_TOP:
                break
            top += 1
        self._top = self._fields[:top]

    @classmethod
    def read(cls, fd: int, limit: int) -> Incoming:
        """Read the whole message from a file descriptor, refusing one over `limit` bytes."""
        chunks = []
        size = 0
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError as exc:
                raise BadMessage(f"cannot read the message: {exc.strerror}") from exc
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise Refused(f"message too big (over {limit} bytes)", dsn="5.3.4")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise BadMessage("empty message", dsn="5.6.0")
        return cls(raw)

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
            raise Refused(f"mail forwarding loop for {recipient}", recipient, "5.4.6")

    def for_delivery(self, sender: str | None, recipient: str) -> bytes:
        """The bytes to store: Return-Path and Delivered-To on top unless the MTA put them."""
        add = []
        if sender is not None and not self.top_values("return-path"):
            add.append(b"Return-Path: <" + sender.encode("utf-8", "replace") + b">")
        want = _bare(recipient)
        if recipient and not any(_bare(v) == want for v in self.top_values("delivered-to")):
            add.append(b"Delivered-To: " + recipient.encode("utf-8", "replace"))
        if not add:
            return self.raw
        return self.eol.join(add) + self.eol + self.raw


def _header_end(raw: bytes) -> int:
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
    return bare(address).lower()
