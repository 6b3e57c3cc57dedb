"""COMPRESS=DEFLATE (RFC 4978) as transcripts: client lines in, server lines out, against a
session on a real store, with the connection's real DEFLATE layer (mra/net/deflate.py) doing
what the adapter does with it, and the client's side written with plain zlib.

The RFC's examples come first, as the RFC prints them. The layer's own bounds (inflating a
bomb a slice at a time) are tested here too; the whole connection, back-pressure included,
against a real server in tests/mra/test_compress.py.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from mra.net.adapter import FEED_SLICE
from mra.net.deflate import STEP_IN, CompressionError, Deflate
from mra.session import Call, Close, Delay, Send, StartCompression, StartTLS, Stream
from tests.unit.imap.test_session_transcripts import Client

FLUSH = zlib.Z_SYNC_FLUSH


class CompressingClient(Client):
    """The transcript client with what the adapter does (mra/net/adapter.py), synchronously:
    blocking outputs are run, then the session goes on with what it holds; after
    `StartCompression` what the client sends is deflated by it (plain zlib) and inflated by
    the server's layer a slice at a time, and what the session sends is deflated by the layer
    and inflated by the client. `wire` holds every octet the server sent, as it went."""

    def __init__(self, tmp_path: Path, config: str = "") -> None:
        self.layer: Deflate | None = None
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)
        self.wire = b""
        super().__init__(tmp_path, config=config)

    def _text(self, outputs: list[object]) -> str:
        return self._perform(outputs).decode("utf-8", "replace")

    def _feed(self, data: bytes) -> bytes:
        text = self._perform(self.session.data_received(data))
        while self.layer is not None and self.layer.pending and not self.closed:
            piece = self.layer.inflate(FEED_SLICE)
            if not piece:
                break
            text += self._perform(self.session.data_received(piece))
        return text

    def _perform(self, outputs: list[object]) -> bytes:
        text = b""
        for out in outputs:
            if self.closed:
                break
            if isinstance(out, Send):
                text += self._out(out.data)
            elif isinstance(out, Close):
                self.closed = True
            elif isinstance(out, StartTLS):
                text += self._perform(self.session.tls_started())
            elif isinstance(out, StartCompression):
                self.layer = Deflate(out.level)
                self.layer.give(out.pending)
            elif isinstance(out, Call):
                try:
                    result: object = out.fn()
                except Exception as exc:
                    result = exc
                text += self._perform(out.then(result)) + self._feed(b"")
            elif isinstance(out, Delay):
                text += self._perform(out.then()) + self._feed(b"")
            elif isinstance(out, Stream):
                text += self._out(b"".join(out.chunks))
                text += self._perform(out.then()) + self._feed(b"")
        return text

    def _out(self, data: bytes) -> bytes:
        if self.layer is not None:
            data = self.layer.compress(data)
            self.wire += data
            return self.inflate.decompress(data)
        self.wire += data
        return data

    def send(self, data: str | bytes) -> list[str]:
        raw = data.encode() if isinstance(data, str) else data
        if self.layer is None:
            return self._lines(self._feed(raw))
        return self.send_compressed(self.deflate.compress(raw) + self.deflate.flush(FLUSH))

    def send_compressed(self, wire: bytes) -> list[str]:
        assert self.layer is not None
        self.layer.give(wire)
        return self._lines(self._feed(b""))

    @staticmethod
    def _lines(text: bytes) -> list[str]:
        return [line for line in text.decode("utf-8", "replace").split("\r\n") if line]


def compressing(tmp_path: Path, config: str = "") -> CompressingClient:
    c = CompressingClient(tmp_path, config)
    c.login()
    return c


# --- RFC 4978 section 3 ---------------------------------------------------------------------


def test_rfc4978_example_login_then_compress(tmp_path: Path) -> None:
    """Section 3's first example (after its STARTTLS and LOGIN): `c compress deflate`, and
    from the CRLF that ends the tagged OK on, everything both ways is DEFLATE."""
    c = CompressingClient(tmp_path)
    assert "COMPRESS=DEFLATE" not in c.greeting  # offered once logged in, as Dovecot does
    lines = c.send("b login alice@example.test pw\r\n")
    assert "COMPRESS=DEFLATE" in lines[0]
    before = len(c.wire)
    c.expect("c compress deflate\r\n", "c OK DEFLATE active")
    assert c.wire[before:] == b"c OK DEFLATE active\r\n"  # the OK itself is not compressed
    before = len(c.wire)
    c.expect("d NOOP\r\n", "d OK NOOP completed")
    sent = c.wire[before:]
    assert b"NOOP" not in sent and sent.endswith(b"\x00\x00\xff\xff")  # a sync flush ends it
    c.expect("e SELECT INBOX\r\n", *["{any}"] * 8, "e OK [READ-WRITE] Select completed")
    lines = c.send("f FETCH 1:2 (FLAGS BODY[])\r\n")
    assert "Hi Alice!" in lines and lines[-1] == "f OK FETCH completed"
    c.expect("g LOGOUT\r\n", "* BYE Logging out", "g OK Logout completed")
    assert c.closed


def test_rfc4978_second_compress_is_refused_compressed(tmp_path: Path) -> None:
    """Section 3's second example: the server refuses to compress twice, `NO
    [COMPRESSIONACTIVE]` (the code section 3 asks for with NO; Dovecot's answer too), and the
    refusal itself travels compressed."""
    c = compressing(tmp_path)
    c.expect("c compress deflate\r\n", "c OK DEFLATE active")
    before = len(c.wire)
    c.expect("d COMPRESS DEFLATE\r\n", "d NO [COMPRESSIONACTIVE] DEFLATE is already active")
    assert b"COMPRESSIONACTIVE" not in c.wire[before:]
    c.expect("e NOOP\r\n", "e OK NOOP completed")


def test_compress_errors_leave_the_connection_plain(tmp_path: Path) -> None:
    """Section 3: BAD for an unknown mechanism or bad arguments, and no compression after a
    BAD or NO: the next command is read, and answered, in plain text."""
    c = compressing(tmp_path)
    c.expect("a COMPRESS LZ4\r\n", "a BAD COMPRESS: unknown compression mechanism LZ4")
    c.expect("b COMPRESS\r\n", "b BAD COMPRESS: COMPRESS needs one mechanism: DEFLATE")
    c.expect("c COMPRESS DEFLATE X\r\n", "c BAD COMPRESS: COMPRESS needs one mechanism: DEFLATE")
    c.expect('d COMPRESS "DEFLATE"\r\n', "d BAD COMPRESS: COMPRESS needs one mechanism: DEFLATE")
    before = len(c.wire)
    c.expect("e NOOP\r\n", "e OK NOOP completed")
    assert c.layer is None and c.wire[before:] == b"e OK NOOP completed\r\n"


def test_compress_only_once_logged_in(c: Client) -> None:
    """`command-auth =/ compress` (section 5): authenticated and selected states."""
    c.expect("a COMPRESS DEFLATE\r\n", "a BAD COMPRESS is not valid before login")


def test_compress_in_the_selected_state(tmp_path: Path) -> None:
    c = compressing(tmp_path)
    c.send("s SELECT INBOX\r\n")
    c.expect("a COMPRESS DEFLATE\r\n", "a OK DEFLATE active")
    c.expect("b FETCH 2 FLAGS\r\n", "* 2 FETCH (FLAGS (\\Seen))", "b OK FETCH completed")


def test_commands_pipelined_behind_compress_are_inflated(tmp_path: Path) -> None:
    """Section 3 says wait for the OK, but a client that does not (or whose first compressed
    commands arrive in the same read as COMPRESS) loses nothing: what the reader held after
    the COMPRESS line is inflated first, in order, before anything read later."""
    c = compressing(tmp_path)
    z = c.deflate
    first = z.compress(b"b NOOP\r\nc SELECT INBOX\r\n") + z.flush(FLUSH)
    lines = c.send(b"a COMPRESS DEFLATE\r\n" + first[:7])
    assert lines == ["a OK DEFLATE active"]
    lines = c.send_compressed(first[7:])
    assert lines[0] == "b OK NOOP completed"
    assert lines[-1] == "c OK [READ-WRITE] Select completed"


def test_thunderbird_pipelines_its_first_commands_right_after_the_ok(tmp_path: Path) -> None:
    """Thunderbird, once COMPRESS is OK, sends its next commands in one burst (here with a
    literal and a synchronizing literal's go-ahead in the middle of it)."""
    c = compressing(tmp_path)
    c.expect("a COMPRESS DEFLATE\r\n", "a OK DEFLATE active")
    burst = b"".join(
        [
            b'2 ID ("name" "Thunderbird")\r\n',
            b'3 LIST "" "*"\r\n',
            b"4 SELECT INBOX\r\n",
            b"5 UID FETCH 1:* (FLAGS)\r\n",
            b"6 SEARCH TEXT {5+}\r\nAlice\r\n",
            b"7 APPEND INBOX {21}\r\n",
        ]
    )
    lines = c.send(burst)
    tags = [line.split()[0] for line in lines if not line.startswith("*")]
    assert tags == ["2", "3", "4", "5", "6", "+"], lines
    assert "* SEARCH 1" in lines
    c.expect(
        "Subject: x\r\n\r\nhello\r\n\r\n",
        "* 3 EXISTS",
        "* 2 RECENT",
        "7 OK [APPENDUID {n} 3] APPEND completed",
    )


def test_starttls_after_unauthenticate_is_refused_once_compressed(tmp_path: Path) -> None:
    """UNAUTHENTICATE (RFC 8437) keeps the DEFLATE layer; TLS negotiated then would sit above
    it, where RFC 4978 section 3 says it must be below: refused."""
    c = compressing(tmp_path)
    c.expect("a COMPRESS DEFLATE\r\n", "a OK DEFLATE active")
    c.expect("b UNAUTHENTICATE\r\n", "b OK UNAUTHENTICATE completed")
    c.expect("c STARTTLS\r\n", "c BAD STARTTLS is not possible once COMPRESS is active")
    c.login()
    c.expect("d COMPRESS DEFLATE\r\n", "d NO [COMPRESSIONACTIVE] DEFLATE is already active")


def test_compress_level_zero_offers_nothing(tmp_path: Path) -> None:
    c = CompressingClient(tmp_path, config="[imap]\ncompress_level = 0\n")
    c.login()
    lines = c.send("a CAPABILITY\r\n")
    assert "COMPRESS" not in lines[0]
    c.expect("b COMPRESS DEFLATE\r\n", "b BAD Unknown command COMPRESS")


def test_compress_level_is_the_setting(tmp_path: Path) -> None:
    c = compressing(tmp_path, config="[imap]\ncompress_level = 9\n")
    outputs = c.session.data_received(b"a COMPRESS DEFLATE\r\n")
    start = [o for o in outputs if isinstance(o, StartCompression)]
    assert [o.level for o in start] == [9]


# --- the DEFLATE layer ----------------------------------------------------------------------


def test_layer_round_trip_in_pieces() -> None:
    layer = Deflate(1)
    client = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bytes(range(256)) * 400 + b"a NOOP\r\n" * 5000
    wire = client.compress(data) + client.flush(FLUSH)
    got = bytearray()
    for i in range(0, len(wire), 777):
        layer.give(wire[i : i + 777])
        while piece := layer.inflate(1000):
            assert len(piece) <= 1000
            got += piece
    assert bytes(got) == data and not layer.pending
    back = zlib.decompressobj(-15)
    assert back.decompress(layer.compress(b"* OK ", b"there\r\n")) == b"* OK there\r\n"


def test_attack_inflate_bomb_is_inflated_a_slice_at_a_time() -> None:
    """256 MiB of zeros deflate to 254 KiB. The layer stores what it is given compressed, and
    inflates at most what it is asked for; the compressed input it copies per step stays
    within STEP_IN (handing zlib the whole backlog would copy it again for every slice)."""
    client = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = client.compress(b"\0" * (256 << 20)) + client.flush(FLUSH)
    assert len(bomb) < 300_000
    layer = Deflate(1)
    layer.give(bomb)
    assert layer.backlog == len(bomb)
    total = 0
    while layer.pending:
        piece = layer.inflate(FEED_SLICE)
        assert len(piece) <= FEED_SLICE
        assert len(layer._tail) <= STEP_IN  # what zlib has not used yet, copied per step
        if not piece:
            break
        total += len(piece)
    assert total == 256 << 20


def test_attack_invalid_or_ended_deflate_streams_are_errors() -> None:
    layer = Deflate(1)
    layer.give(b"\xff\xfe not deflate at all")
    try:
        layer.inflate(100)
        raise AssertionError("garbage inflated")
    except CompressionError as exc:
        assert "invalid" in str(exc)
    client = zlib.compressobj(6, zlib.DEFLATED, -15)
    layer = Deflate(1)
    layer.give(client.compress(b"a NOOP\r\n") + client.flush(zlib.Z_FINISH) + b"plain")
    try:
        layer.inflate(100)
        raise AssertionError("an ended stream went on")
    except CompressionError as exc:
        assert "ended" in str(exc)


def test_compress_settings_are_checked(tmp_path: Path) -> None:
    from mailstore.config import check_config

    path = tmp_path / "bad.toml"
    path.write_text('[imap]\ncompress_level = 10\nliteral_plus = "no"\n')
    problems = [p.message for p in check_config(str(path))]
    assert problems == [
        "[imap] compress_level must be at most 9, not 10",
        "[imap] literal_plus must be true or false, not 'no'",
    ], problems
