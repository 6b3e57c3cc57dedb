"""ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]<partial> and SEARCH compared with Dovecot.

The expected values in ``golden.py`` are what Dovecot 2.3.19 (Debian 12) answered for the
messages of ``corpus.py``, captured with ``capture_dovecot.py`` (which drops each message
into a Maildir as a file, the way our store keeps it, and fetches it over IMAP).
"""

from __future__ import annotations

import datetime
import functools
from typing import cast

import pytest

from mra.imap import mime
from mra.imap.search import MessageContext, SequenceSet, Token, parse_search
from tests.interop.dovecot import parse_imap
from tests.unit.imap_mime.corpus import (
    CORPUS,
    EDGE_CASES,
    EDGE_SECTIONS,
    PARTIALS,
    SEARCHES,
    SECTIONS,
)
from tests.unit.imap_mime.golden import EDGE_GOLDEN, GOLDEN, SEARCH_GOLDEN

NAMES = sorted(CORPUS)


def served(data: bytes | None) -> bytes | None:
    """A section the way it goes on the wire (Dovecot sends NUL as 0x80)."""
    return None if data is None else mime.without_nuls(data)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("item", ["ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.SIZE"])
def test_fetch_items(name: str, item: str) -> None:
    part = mime.parse(CORPUS[name])
    got = {
        "ENVELOPE": lambda: mime.envelope(part),
        "BODY": lambda: mime.bodystructure(part, False),
        "BODYSTRUCTURE": lambda: mime.bodystructure(part, True),
        "RFC822.SIZE": lambda: b"%d" % len(part.buf),
    }[item]()
    assert got == GOLDEN[name][item]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spec", SECTIONS)
def test_sections(name: str, spec: str) -> None:
    sections = cast(dict[str, bytes | None], GOLDEN[name]["sections"])
    assert served(mime.section(CORPUS[name], spec)) == sections[spec]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("spec", "origin", "count"), PARTIALS)
def test_partials(name: str, spec: str, origin: int, count: int) -> None:
    data = mime.section(CORPUS[name], spec)
    assert data is not None
    partials = cast(dict[str, bytes | None], GOLDEN[name]["partials"])
    assert served(mime.partial(data, origin, count)) == partials[f"{spec}<{origin}.{count}>"]


@pytest.mark.parametrize("index", range(len(EDGE_CASES)))
def test_edge_cases(index: int) -> None:
    raw = EDGE_CASES[index]
    part = mime.parse(raw)
    got: dict[str, bytes | None] = {
        "ENVELOPE": mime.envelope(part),
        "BODY": mime.bodystructure(part, False),
        "BODYSTRUCTURE": mime.bodystructure(part, True),
    }
    for spec in EDGE_SECTIONS:
        got[spec] = served(mime.section(part, spec))
    assert got == EDGE_GOLDEN[index]


def test_lf_and_crlf_storage_give_the_same_answers() -> None:
    for raw in [*CORPUS.values(), *EDGE_CASES]:
        lf = raw.replace(b"\r\n", b"\n")
        a, b = mime.parse(lf), mime.parse(lf.replace(b"\n", b"\r\n"))
        assert a.buf == b.buf
        assert mime.envelope(a) == mime.envelope(b)
        assert mime.bodystructure(a) == mime.bodystructure(b)


# ---------------------------------------------------------------------------------------------
# SEARCH

STATE = cast(dict[str, dict[str, object]], SEARCH_GOLDEN["state"])
RESULTS = cast(dict[str, list[str]], SEARCH_GOLDEN["results"])


def contexts() -> list[MessageContext]:
    out = []
    for name, st in STATE.items():
        flags = cast(list[str], st["flags"])
        stamp = datetime.datetime.strptime(
            cast(bytes, st["internaldate"]).decode(), "%d-%b-%Y %H:%M:%S %z"
        ).timestamp()
        out.append(
            MessageContext(
                uid=cast(int, st["uid"]),
                seqno=cast(int, st["seqno"]),
                flags={f for f in flags if f.startswith("\\")},
                keywords={f for f in flags if not f.startswith("\\")},
                internaldate=stamp,
                size=int(cast(bytes, st["size"])),
                loader=functools.partial(bytes, CORPUS[name]),
            )
        )
    return sorted(out, key=lambda c: c.seqno)


@pytest.mark.parametrize("program", SEARCHES)
def test_search(program: str) -> None:
    ctxs = contexts()
    by_uid = {cast(int, st["uid"]): name for name, st in STATE.items()}
    largest_uid, largest_seq = max(c.uid for c in ctxs), len(ctxs)

    def resolve(raw: bytes, uid: bool) -> SequenceSet:
        return SequenceSet.parse(raw).resolve(largest_uid if uid else largest_seq)

    tokens = cast(list[Token], parse_imap(program.encode()))  # no NIL in these programs
    parsed = parse_search(tokens, resolve_set=resolve)
    found = [by_uid[c.uid] for c in ctxs if parsed.matches(c, datetime.UTC)]
    assert found == RESULTS[program]
    if not parsed.needs_message:
        assert all(c.loads == 0 for c in ctxs)
    assert all(c.loads <= 1 for c in ctxs)
