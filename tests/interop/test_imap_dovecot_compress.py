"""COMPRESS=DEFLATE (RFC 4978) and LITERAL- (RFC 7888) side by side with the real Dovecot 2.3.19
on one Maildir (tests/interop/side_by_side.py).

Dovecot has COMPRESS in its imap_zlib plugin (`mail_plugins = $mail_plugins zlib imap_zlib`,
in Debian's dovecot-imapd) and LITERAL- as `imap_literal_minus = yes`. Both sessions turn
DEFLATE on, then are read through the same helpers, inflating what they read and deflating
what they send; their answers must be the same. Where we answer differently on purpose, the
test says so (README, "IMAP extensions"):

* `COMPRESS LZ4`: BAD, as RFC 4978 section 3 says; Dovecot answers `NO Unsupported compression
  mechanism`;
* a non-synchronizing literal over 4096 octets under LITERAL-: both say BYE and close;
  Dovecot adds `[TOOBIG]` in APPEND only, we in every command (RFC 7888 section 5 asks for it).
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop.dovecot import DovecotError
from tests.interop.side_by_side import SideBySide
from tests.interop.test_imap_dovecot_compare import MraImap

pytestmark = [pytest.mark.interop]

ZLIB = {"mail_plugins": "$mail_plugins zlib imap_zlib"}
MESSAGES = [
    b"From: a@example.test\r\nSubject: first\r\n\r\n" + b"plain body, said twice\r\n" * 200,
    b"From: b@example.test\r\nSubject: second\r\nContent-Type: text/plain\r\n\r\nshort\r\n",
]


def deflate_on(session: Any) -> None:
    """From now on, what `session` (ours or Dovecot's) sends is deflated and what it reads is
    inflated: the client's half of RFC 4978, over the harness's own I/O."""
    out = zlib.compressobj(6, zlib.DEFLATED, -15)
    inflate = zlib.decompressobj(-15)
    send_raw = session.send_raw

    def send(data: bytes) -> None:
        send_raw(out.compress(data) + out.flush(zlib.Z_SYNC_FLUSH))

    session.send_raw = send
    if isinstance(session, MraImap):
        session.reader = _InflatingReader(session.sock, inflate)
    else:
        fill = session._fill

        def inflating_fill(what: str) -> None:
            start = len(session._buf)
            fill(what)
            raw = bytes(session._buf[start:])
            del session._buf[start:]
            session._buf += inflate.decompress(raw)

        session._fill = inflating_fill


class _InflatingReader:
    """`readline()` and `read(n)` over a socket whose octets are DEFLATE (MraImap's reader)."""

    def __init__(self, sock: socket.socket, inflate: Any) -> None:
        self.sock = sock
        self.inflate = inflate
        self.buf = b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += self.inflate.decompress(chunk)
        return bool(chunk)

    def readline(self) -> bytes:
        while b"\n" not in self.buf and self._more():
            pass
        line, sep, self.buf = self.buf.partition(b"\n")
        return line + sep

    def read(self, n: int) -> bytes:
        while len(self.buf) < n and self._more():
            pass
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def close(self) -> None:
        return None


@pytest.fixture
def both(require_dovecot: None) -> Iterator[SideBySide]:
    with SideBySide(MESSAGES, settings=ZLIB) as sides:
        yield sides


def status_and_code(lines: list[bytes]) -> bytes:
    """`NO [CODE]` of a tagged line, its text left out (the texts differ by design)."""
    words = lines[-1].split(b" ")
    code = words[2] if len(words) > 2 and words[2].startswith(b"[") else b""
    return b" ".join([words[1], code]).strip()


def test_both_offer_compress_deflate(both: SideBySide) -> None:
    ours = both.ours.command("CAPABILITY")[0].split()
    theirs = both.dovecot.command("CAPABILITY")[0].split()
    assert b"COMPRESS=DEFLATE" in ours and b"COMPRESS=DEFLATE" in theirs


def test_compressed_sessions_answer_alike(both: SideBySide) -> None:
    for side in (both.ours, both.dovecot):
        assert status_and_code(side.command("COMPRESS deflate")) == b"OK"
        deflate_on(side)
    both.ours.ok("SELECT INBOX")
    both.dovecot.ok("SELECT INBOX")
    both.same("FETCH 1:* (RFC822.SIZE ENVELOPE BODY.PEEK[])")  # FLAGS: ours took \Recent
    both.same("UID SEARCH BODY twice")
    both.same("NOOP")
    # A second COMPRESS, answered compressed: NO [COMPRESSIONACTIVE] from both.
    ours, theirs = both.ours.command("COMPRESS DEFLATE"), both.dovecot.command("COMPRESS DEFLATE")
    assert status_and_code(ours) == status_and_code(theirs) == b"NO [COMPRESSIONACTIVE]"
    both.same("FETCH 2 BODY.PEEK[TEXT]")


def test_compress_refusals_against_dovecot(both: SideBySide) -> None:
    """Bad arguments: BAD from both. An unknown mechanism: BAD from us (RFC 4978 section 3:
    "BAD ... unknown argument"), NO from Dovecot."""
    for command in ("COMPRESS", 'COMPRESS "DEFLATE"', "COMPRESS DEFLATE DEFLATE"):
        ours, theirs = both.ours.command(command), both.dovecot.command(command)
        assert status_and_code(ours) == status_and_code(theirs) == b"BAD", command
    assert status_and_code(both.ours.command("COMPRESS LZ4")) == b"BAD"
    assert status_and_code(both.dovecot.command("COMPRESS LZ4")) == b"NO"
    # Nothing was turned on: both go on in plain text.
    both.same("NOOP")


@pytest.fixture
def minus(require_dovecot: None) -> Iterator[SideBySide]:
    with SideBySide(
        MESSAGES,
        extra="[imap]\nliteral_plus = false\n",
        settings={"imap_literal_minus": "yes"},
    ) as sides:
        yield sides


def read_until_closed(side: Any) -> list[bytes]:
    lines = []
    try:
        while True:
            lines.append(side.read_line())
    except (DovecotError, OSError):
        return lines


def test_literal_minus_against_dovecot(minus: SideBySide) -> None:
    for side in (minus.ours, minus.dovecot):
        caps = side.command("CAPABILITY")[0].split()
        assert b"LITERAL-" in caps and b"LITERAL+" not in caps
        side.ok("SELECT INBOX")
    # At 4096 octets a non-synchronizing literal is still fine.
    minus.same("SEARCH TEXT {4096+}\r\n" + "x" * 4096)
    # Over it, in APPEND, both say goodbye, the same way, and close.
    data = b"Subject: big\r\n\r\n" + b"y" * 5000 + b"\r\n"
    for side in (minus.ours, minus.dovecot):
        side.send_raw(b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    ours, theirs = read_until_closed(minus.ours), read_until_closed(minus.dovecot)
    assert ours == theirs == [b"* BYE [TOOBIG] Non-synchronizing literal size too large\r\n"]


def test_literal_minus_in_other_commands_against_dovecot(minus: SideBySide) -> None:
    """Dovecot leaves the code out of this BYE; RFC 7888 section 5 asks a server that closes
    to send TOOBIG, and we do."""
    for side in (minus.ours, minus.dovecot):
        side.ok("SELECT INBOX")
        side.send_raw(b"a SEARCH TEXT {5000+}\r\n" + b"z" * 5000 + b"\r\n")
    ours, theirs = read_until_closed(minus.ours), read_until_closed(minus.dovecot)
    assert ours == [b"* BYE [TOOBIG] Non-synchronizing literal size too large\r\n"]
    assert theirs == [b"* BYE Non-synchronizing literal size too large\r\n"]
