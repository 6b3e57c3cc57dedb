"""RETR bodies: CRLF and dot-stuffing at every chunk boundary."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstore.content import to_crlf
from mra.pop3.stuffing import file_chunks, stuffed, top_lines, unstuff


def expected(data: bytes) -> bytes:
    body = to_crlf(data)
    return body if body.endswith(b"\r\n") or not body else body + b"\r\n"


def wire(data: bytes, chunk: int) -> bytes:
    return b"".join(stuffed(file_chunks(io.BytesIO(data), chunk)))


def test_dot_lines_are_stuffed() -> None:
    data = b"Subject: x\n\n.\n..two\nend.\n.\n"
    assert wire(data, 4096) == b"Subject: x\r\n\r\n..\r\n...two\r\nend.\r\n..\r\n.\r\n"


def test_message_starting_with_a_dot_and_without_final_newline() -> None:
    assert wire(b".hidden", 4096) == b"..hidden\r\n.\r\n"
    assert wire(b"", 4096) == b".\r\n"


def test_every_chunk_boundary() -> None:
    data = b"a\r\n.b\n.\r\n\r\n..\n.x\r\n.\n"
    reference = wire(data, 1 << 16)
    for size in range(1, len(data) + 2):
        assert wire(data, size) == reference, size
    assert unstuff(reference) == expected(data)


@settings(max_examples=400)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=40))
def test_any_bytes_round_trip_as_the_client_sees_them(data: bytes, chunk: int) -> None:
    sent = wire(data, chunk)
    assert sent.endswith(b".\r\n")
    assert unstuff(sent) == expected(data)


@given(
    st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b".\r\n", b"x" * 7]), max_size=60),
    st.integers(min_value=1, max_value=9),
)
def test_dot_heavy_inputs(parts: list[bytes], chunk: int) -> None:
    data = b"".join(parts)
    assert unstuff(wire(data, chunk)) == expected(data)


def test_top_gives_header_and_n_lines() -> None:
    data = b"A: 1\nB: 2\n\nl1\nl2\nl3\n"
    assert (
        b"".join(stuffed(top_lines(io.BytesIO(data), 2)))
        == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n"
    )
    assert b"".join(stuffed(top_lines(io.BytesIO(data), 0))) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"
