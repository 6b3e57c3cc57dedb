"""LMTP input (mra/lmtp/reader.py): command lines and message data, however the octets come."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mra.imap.limits import LiteralPool
from mra.lmtp.reader import BadLine, Message, Reader


def lines(reader: Reader) -> list[bytes | str]:
    out: list[bytes | str] = []
    while (line := reader.next_line()) is not None:
        out.append(line.why if isinstance(line, BadLine) else line)
    return out


def read(data: bytes, pieces: list[int] | None = None, max_size: int = 1 << 20) -> Message:
    """A message sent after DATA, in pieces of the given sizes (the rest at the end)."""
    reader = Reader(512)
    reader.start_data(max_size)
    pos = 0
    for size in pieces or []:
        reader.feed(data[pos : pos + size])
        pos += size
        message = reader.read_message()
        if message is not None:
            return message
    reader.feed(data[pos:])
    message = reader.read_message()
    assert message is not None
    return message


def stuff(body: bytes) -> bytes:
    """What a client sends for `body` (CRLF lines): dots doubled, then the end."""
    text = b"".join(
        b"." + line if line.startswith(b".") else line for line in body.splitlines(True)
    )
    return text + b".\r\n"


def test_command_lines_end_in_crlf_only() -> None:
    reader = Reader(512)
    reader.feed(b"NOOP\r\nMAIL FROM:<a@b>\nRSET\r\nA\rB\r\nNU\x00L\r\nQUIT\r")
    assert lines(reader) == [
        b"NOOP",
        "Line ends with a bare LF",
        b"RSET",
        "Line holds a bare CR",
        "Line holds a NUL character",
    ]
    reader.feed(b"\n")
    assert lines(reader) == [b"QUIT"]


def test_attack_over_long_line_is_dropped_as_it_comes() -> None:
    reader = Reader(512)
    for _ in range(1000):
        reader.feed(b"x" * 4096)
        assert reader.next_line() is None
        assert len(reader._buf) <= 512 + 4096  # never more than a line and a read
    reader.feed(b"yyy\r\nNOOP\r\n")
    assert lines(reader) == ["Line too long", b"NOOP"]


def test_a_line_of_exactly_the_limit_is_taken() -> None:
    reader = Reader(512)
    reader.feed(b"N" * 510 + b"\r\n" + b"M" * 511 + b"\r\n")
    assert lines(reader) == [b"N" * 510, "Line too long"]


def test_dot_stuffing_is_undone_and_the_end_found() -> None:
    body = b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\nnot the end\r\nend\r\n"
    message = read(
        b"Subject: x\r\n\r\n..leading dot\r\n...two\r\n..\r\nnot the end\r\nend\r\n.\r\n"
    )
    assert bytes(message.data) == body
    assert message.size == len(body)
    assert not message.refused


def test_empty_message_and_a_first_line_of_dots() -> None:
    assert bytes(read(b".\r\n").data) == b""
    assert bytes(read(b"..x\r\n.\r\n").data) == b".x\r\n"


def test_what_follows_the_end_stays_for_the_commands() -> None:
    reader = Reader(512)
    reader.start_data(1000)
    reader.feed(b"a\r\n.\r\nRSET\r\nQUIT\r\n")
    message = reader.read_message()
    assert message is not None and bytes(message.data) == b"a\r\n"
    assert not reader.in_data
    assert lines(reader) == [b"RSET", b"QUIT"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b".", b"..", b"a", b"\r", b"\r\n", b" ", b"\xc3\xa9"]), max_size=60),
    st.lists(st.integers(min_value=0, max_value=9), max_size=40),
)
def test_any_split_of_the_input_reads_the_same(parts: list[bytes], pieces: list[int]) -> None:
    body = b"".join(parts).replace(b"\r", b"")  # lines of anything, CRLF-terminated
    body = b"".join(line + b"\r\n" for line in body.split(b"\n"))
    whole = read(stuff(body))
    split = read(stuff(body), pieces)
    assert bytes(whole.data) == bytes(split.data) == body
    assert whole.size == split.size == len(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=0, max_value=9), max_size=40))
def test_any_octets_split_anyhow_find_the_same_end(data: bytes, pieces: list[int]) -> None:
    raw = data.replace(b"\r\n.\r\n", b"\r\n..\r\n") + b"\r\n.\r\n"
    whole, split = read(raw), read(raw, pieces)
    for name in ("size", "bare_lf", "nul", "eight_bit"):
        assert getattr(whole, name) == getattr(split, name), name
    assert bytes(whole.data) == bytes(split.data)


def test_smuggled_ends_are_content() -> None:
    """SMTP smuggling: only CRLF.CRLF ends the data; the rest is refused as a bare LF."""
    for fake in (b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"):
        message = read(b"a" + fake + b"MAIL FROM:<evil@x>\r\n.\r\n")
        assert b"MAIL FROM:<evil@x>" in bytes(message.data) or message.refused
        if b"\n" in fake.replace(b"\r\n", b""):
            assert message.bare_lf


def test_nul_bare_lf_and_eight_bit_are_noticed() -> None:
    assert read(b"a\x00b\r\n.\r\n").nul
    assert read(b"a\nb\r\n.\r\n").bare_lf
    assert not read(b"a\r\nb\r\n.\r\n").bare_lf
    message = read("caf\u00e9\r\n.\r\n".encode())
    assert message.eight_bit and not message.refused


def test_attack_message_over_the_limit_is_counted_not_kept() -> None:
    reader = Reader(512)
    reader.start_data(1000)
    for _ in range(100):
        reader.feed(b"x" * 70 + b"\r\n")
        assert reader.read_message() is None
        assert len(reader._message.data) <= 1000 + 8  # type: ignore[union-attr]
    reader.feed(b".\r\n")
    message = reader.read_message()
    assert message is not None and message.too_big and message.data == bytearray()
    assert message.size == 7200


def test_every_octet_is_reserved_in_the_pool_until_done() -> None:
    pool = LiteralPool(10_000)
    reader = Reader(512, pool)
    reader.start_data(1 << 20)
    reader.feed(b"x" * 5000 + b"\r\n.\r\n")
    message = reader.read_message()
    assert message is not None and not message.refused
    assert pool.held == 5002 + 2  # with the CRLF put in front while reading
    reader.done()
    assert pool.held == 0


def test_attack_pool_full_refuses_the_message_and_gives_everything_back() -> None:
    pool = LiteralPool(10_000)
    pool.reserve(8000)  # the other sessions' share
    reader = Reader(512, pool)
    reader.start_data(1 << 20)
    reader.feed(b"x" * 5000 + b"\r\n")
    reader.read_message()
    reader.feed(b"y" * 5000 + b"\r\n.\r\n")
    message = reader.read_message()
    assert message is not None and message.no_memory and message.data == bytearray()
    assert pool.held == 8000


def test_close_mid_message_gives_everything_back() -> None:
    pool = LiteralPool(1 << 20)
    reader = Reader(512, pool)
    reader.start_data(1 << 20)
    reader.feed(b"x" * 50_000 + b"\r\n")
    assert reader.read_message() is None
    assert pool.held > 0
    reader.close()
    assert pool.held == 0
    assert not reader.in_data
