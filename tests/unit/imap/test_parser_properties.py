"""Properties of the reader: any command split anywhere reads the same; garbage never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mra.imap.commands import SUSPENDING
from mra.imap.events import Command, Event, NeedContinuation
from mra.imap.limits import Limits
from mra.imap.parser import CommandReader
from mra.imap.values import Atom, FetchAtt, Nil, ParenList, Section, String, Value
from tests.unit.imap._util import drive

Encoded = tuple[bytes, Value]

ATOM_ALPHABET = "".join(
    chr(c) for c in range(0x21, 0x7F) if chr(c) not in '(){"['
)  # "[" would start a section after BODY; the section tests cover it
TAG_ALPHABET = "".join(c for c in ATOM_ALPHABET if c not in '%*\\+"')


def _atom(text: str) -> Encoded:
    return text.encode(), Nil(text) if text.upper() == "NIL" else Atom(text)


def _quoted(text: str) -> Encoded:
    raw = text.encode()
    escaped = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + escaped + b'"', String(raw)


def _literal(args: tuple[bytes, bool]) -> Encoded:
    data, plus = args
    return b"{%d%s}\r\n" % (len(data), b"+" if plus else b"") + data, String(data, True)


def _list(items: list[Encoded]) -> Encoded:
    return b"(" + b" ".join(e for e, _ in items) + b")", ParenList(tuple(v for _, v in items))


FETCH_ATTS: list[Encoded] = [
    (b"BODY[]", FetchAtt("BODY", Section())),
    (b"BODY.PEEK[1.2.MIME]<3.4>", FetchAtt("BODY.PEEK", Section((1, 2), "MIME"), (3, 4))),
    (
        b"BODY[HEADER.FIELDS (A {1+}\r\nB)]",
        FetchAtt("BODY", Section(text="HEADER.FIELDS", fields=("A", "B"))),
    ),
]

values: st.SearchStrategy[Encoded] = st.recursive(
    st.one_of(
        st.text(ATOM_ALPHABET, min_size=1, max_size=8).map(_atom),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12).map(_quoted),
        st.tuples(st.binary(max_size=20), st.booleans()).map(_literal),
        st.sampled_from(FETCH_ATTS),
    ),
    lambda children: st.lists(children, max_size=4).map(_list),
    max_leaves=12,
)


@st.composite
def commands(draw: st.DrawFn) -> tuple[bytes, Command]:
    tag = draw(st.text(TAG_ALPHABET, min_size=1, max_size=6))
    # Not a suspending command: this test is about bytes, the mode tests are elsewhere.
    name = draw(
        st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True).filter(
            lambda n: n.upper() not in SUSPENDING
        )
    )
    args = draw(st.lists(values, max_size=6))
    data = tag.encode() + b" " + name.encode()
    if args:
        data += b" " + b" ".join(e for e, _ in args)
    data += b"\r\n"
    return data, Command(tag, name.upper(), [v for _, v in args], len(data))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = []
    prev = 0
    for p in [*points, len(data)]:
        chunks.append(data[prev:p])
        prev = p
    return chunks


def events_of(chunks: list[bytes]) -> list[Event]:
    reader = CommandReader(suspend_after=SUSPENDING)
    reader.authenticated = True
    return drive(reader, chunks)


@given(st.lists(commands(), min_size=1, max_size=3), st.lists(st.integers(min_value=0)))
@settings(max_examples=300)
def test_any_split_reads_the_same(cmds: list[tuple[bytes, Command]], cuts: list[int]) -> None:
    stream = b"".join(d for d, _ in cmds)
    whole = events_of([stream])
    assert [e for e in whole if not isinstance(e, NeedContinuation)] == [c for _, c in cmds]
    assert events_of(split(stream, cuts)) == whole


def test_every_byte_boundary() -> None:
    stream = (
        b'a1 APPEND "Sent" (\\Seen $X) {12}\r\nline1\r\nline2 {3+}\r\nx\r\n'
        b" BODY.PEEK[1.HEADER.FIELDS ({4}\r\nDate X)]<0.5>\r\n"
        b"a2 NOOP\r\n"
    )
    whole = events_of([stream])
    assert [type(e) for e in whole] == [NeedContinuation, NeedContinuation, Command, Command]
    for i in range(len(stream) + 1):
        assert events_of([stream[:i], stream[i:]]) == whole, i
    assert events_of([bytes([b]) for b in stream]) == whole


@given(
    st.lists(st.binary(max_size=40), max_size=10),
    st.lists(st.booleans(), min_size=1),
)
@settings(max_examples=300)
def test_garbage_never_raises(chunks: list[bytes], decisions: list[bool]) -> None:
    reader = CommandReader(
        Limits(max_line_length=64, max_literal_size_preauth=16, max_depth=3),
        suspend_after=SUSPENDING,
    )
    turn = 0

    def handle(events: list[Event]) -> None:
        nonlocal turn
        for event in events:
            turn += 1
            if isinstance(event, NeedContinuation):
                accept = decisions[turn % len(decisions)]
                handle(reader.accept_literal() if accept else reader.reject_literal())
            elif isinstance(event, Command) and event.name in SUSPENDING:
                handle(reader.resume())

    for chunk in chunks:
        handle(reader.feed(chunk))
        # One command's worth at most, plus what one feed() brought.
        assert reader.buffered <= 64 + 16 + len(chunk) + 2
