"""LMTP input: command lines, then a message ended by `<CRLF>.<CRLF>`, from bytes as they come.

Two modes over one buffer, each O(octets received) with its work done by C (`bytes.find`,
`count`, `replace`), never a Python step per line or per octet of a message:

Command lines (RFC 5321 2.3.8, 4.1.1) end in CRLF, and nothing else ends them:

- a line that ends in a bare LF, or holds a CR or a NUL before its end, is refused whole
  (`BadLine`): a bare LF is the stuff of SMTP smuggling (one side sees a line end, or an end of
  data, where the other does not), and no client that speaks the protocol sends one;
- a line longer than `max_line` octets is not kept: its octets are dropped as they come until
  its CRLF, and it is then refused (`BadLine`, "too long"). So a client that never sends a CRLF
  costs `max_line` octets, not what it sends.

Message data (RFC 5321 4.1.1.4, 4.5.2) after a DATA that was answered 354:

- the end is the first `CRLF . CRLF` (the CRLF of the DATA line counts as the one before a
  first line `.`), and nothing else: `LF . LF`, `CR . CR` and the like are content;
- dot-stuffing is undone (`CRLF ..` becomes `CRLF .`); the message keeps its CRLF line ends;
- a message is held once, in one bytearray that grows in place (at most the last seven octets
  wait apart, while it is unknown whether they start `CRLF .`); every octet added is reserved in
  the process's pool (`[limits] max_literal_memory`, shared with IMAP's literals) first;
- past `max_size` octets, or when the pool is full, the rest is read and dropped, only counted,
  and the message is refused at its end (`Message.too_big`, `Message.no_memory`); a message
  with a NUL or a bare LF is refused too (`Message.nul`, `Message.bare_lf`): the client learns
  each per recipient, and nothing is stored. The message's share of the pool stays reserved
  until the session says it is `done()` with it (delivered), so the pool bounds what all
  sessions hold, delivery included.

What follows the end of data in the same read (a pipelined RSET, MAIL, QUIT) stays in the
buffer for the next command. `close()` gives back everything held, and the pool's share.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.limits import LiteralPool

END = b"\r\n.\r\n"
STUFFED = b"\r\n.."
# Octets kept back between reads: the longest prefix of END (4) or of STUFFED (3), plus a CRLF
# that may start one of them and must not be split from it.
KEEP = 4


class BadLine:
    """A command line that is refused whole; `why` is for the reply."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why


class Message:
    """A message read to its end: its octets (CRLF line ends, unstuffed), or why not."""

    __slots__ = ("bare_lf", "data", "eight_bit", "no_memory", "nul", "size", "too_big")

    def __init__(self) -> None:
        self.data = bytearray()
        self.size = 0  # unstuffed octets, counted even when dropped
        self.too_big = False
        self.no_memory = False
        self.nul = False
        self.bare_lf = False
        self.eight_bit = False

    @property
    def refused(self) -> bool:
        return self.too_big or self.no_memory or self.nul or self.bare_lf


class Reader:
    """Command lines and message data out of the octets a connection sends."""

    def __init__(self, max_line: int, pool: LiteralPool | None = None) -> None:
        self.max_line = max_line
        self.pool = pool
        self._buf = bytearray()
        self._scanned = 0  # octets of _buf known to hold no LF
        self._skipping = False  # dropping the rest of an over-long line
        self._too_long = False  # an over-long line ended: refuse it next
        self._message: Message | None = None
        self._max_size = 0
        self._reserved = 0  # octets of the pool this message holds
        self._tail = bytearray()  # data octets kept back (see KEEP)

    @property
    def in_data(self) -> bool:
        return self._message is not None

    def feed(self, data: bytes) -> None:
        if self._skipping:
            lf = data.find(b"\n")
            if lf < 0:
                return  # still the over-long line: dropped
            self._skipping = False
            self._too_long = True  # refused by the next next_line()
            data = data[lf + 1 :]
        self._buf += data

    # -- commands ---------------------------------------------------------------------

    def next_line(self) -> bytes | BadLine | None:
        """The next command line without its CRLF, a BadLine, or None until more comes."""
        if self._too_long:
            self._too_long = False
            return BadLine("Line too long")
        buf = self._buf
        lf = buf.find(b"\n", self._scanned)
        if lf < 0:
            if len(buf) > self.max_line:
                del buf[:]
                self._scanned = 0
                self._skipping = True
            else:
                self._scanned = len(buf)
            return None
        line = bytes(buf[: lf + 1])
        del buf[: lf + 1]
        self._scanned = 0
        if len(line) > self.max_line:
            return BadLine("Line too long")
        if not line.endswith(b"\r\n"):
            return BadLine("Line ends with a bare LF")
        body = line[:-2]
        if b"\r" in body:
            return BadLine("Line holds a bare CR")
        if b"\x00" in body:
            return BadLine("Line holds a NUL character")
        return body

    # -- message data ---------------------------------------------------------------------

    def start_data(self, max_size: int) -> None:
        """Read a message next (the 354 was sent): at most `max_size` octets are kept."""
        self._message = Message()
        self._max_size = max_size
        # The CRLF that ended the DATA line: a first line "." ends an empty message, and a
        # first line ".." is unstuffed, like any other.
        self._tail = bytearray(b"\r\n")

    def read_message(self) -> Message | None:
        """The message once its end has come (the buffer then holds what follows it), else
        None: everything received so far is taken in."""
        message = self._message
        assert message is not None
        raw = self._tail
        raw += self._buf
        del self._buf[:]
        end = raw.find(END)
        if end >= 0:
            rest = raw[end + len(END) :]
            self._take(message, raw, end + 2)
            self._buf[:0] = rest
            self._tail = bytearray()
            self._message = None
            del message.data[:2]  # the DATA line's CRLF, put in front by start_data
            message.size -= 2
            return message
        cut = len(raw) - KEEP
        if cut <= 2:
            self._tail = raw
            return None
        # A CRLF starting in the last three octets before the cut (its LF maybe just after
        # it) may start CRLF.. or CRLF.CRLF: keep it whole, with what follows it.
        crlf = raw.find(b"\r\n", cut - 3, cut + 1)
        if crlf >= 0:
            cut = crlf
        self._tail = raw[cut:]
        self._take(message, raw, cut)
        return None

    def _take(self, message: Message, raw: bytearray, upto: int) -> None:
        """Add raw[:upto] (which ends at a line boundary or before a kept-back CRLF) to the
        message: checked, unstuffed, reserved, or only counted once refused."""
        chunk = bytes(raw[:upto]) if upto < len(raw) else bytes(raw)
        if STUFFED in chunk:
            chunk = chunk.replace(STUFFED, b"\r\n.")
        if not message.nul and b"\x00" in chunk:
            message.nul = True
        if not message.bare_lf and chunk.count(b"\n") != chunk.count(b"\r\n"):
            message.bare_lf = True
        if not message.eight_bit and not chunk.isascii():
            message.eight_bit = True
        message.size += len(chunk)
        if message.refused:
            self._drop(message)
            return
        if message.size - 2 > self._max_size:
            message.too_big = True
            self._drop(message)
            return
        if self.pool is not None:
            if not self.pool.reserve(len(chunk)):
                message.no_memory = True
                self._drop(message)
                return
            self._reserved += len(chunk)
        message.data += chunk

    def _drop(self, message: Message) -> None:
        """A refused message: its octets go, and so does its share of the pool."""
        message.data = bytearray()
        self._give_back()

    def done(self) -> None:
        """The message read last has been delivered (or refused): its share of the pool goes
        back. Until then it stays reserved, while the session holds the octets."""
        self._give_back()

    def _give_back(self) -> None:
        if self.pool is not None and self._reserved:
            self.pool.release(self._reserved)
        self._reserved = 0

    def close(self) -> None:
        """The connection is gone: nothing is kept, nothing stays reserved."""
        self._buf = bytearray()
        self._tail = bytearray()
        if self._message is not None:
            self._message.data = bytearray()
            self._message = None
        self._give_back()
