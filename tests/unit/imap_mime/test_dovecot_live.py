"""Compare with the installed Dovecot directly (not through golden.py): the corpus, the edge
cases and a few hundred randomly damaged messages must get the same ENVELOPE, BODY,
BODYSTRUCTURE and sections, and SEARCH must find the same messages.

Skipped without Dovecot (failed under CI, like tests/interop); see tests/interop/dovecot.py.
"""

from __future__ import annotations

import os
import pwd
import random

import pytest

from mra.imap import mime
from tests.interop.dovecot import MAIL_USER, dovecot_available, running_as_root
from tests.unit.imap_mime import attacks, capture_dovecot
from tests.unit.imap_mime.corpus import CORPUS, EDGE_CASES, EDGE_SECTIONS
from tests.unit.imap_mime.golden import EDGE_GOLDEN, SEARCH_GOLDEN
from tests.unit.imap_mime.mutate import mutate

pytestmark = [pytest.mark.interop, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _need_dovecot() -> None:
    reason = ""
    if not dovecot_available():
        reason = "Dovecot is not installed"
    elif running_as_root():
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            reason = f"user {MAIL_USER!r} is missing"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def ours(raw: bytes, sections: list[str]) -> dict[str, bytes | None]:
    part = mime.parse(raw)
    out: dict[str, bytes | None] = {
        "ENVELOPE": mime.envelope(part),
        "BODY": mime.bodystructure(part, False),
        "BODYSTRUCTURE": mime.bodystructure(part, True),
    }
    for spec in sections:
        data = mime.section(part, spec)
        out[spec] = b"<BAD>" if data is None else mime.without_nuls(data)
    return out


def test_golden_edge_cases_still_hold() -> None:
    assert capture_dovecot.capture_messages(EDGE_CASES, EDGE_SECTIONS) == EDGE_GOLDEN


def test_search_golden_still_holds() -> None:
    assert capture_dovecot.capture_search() == SEARCH_GOLDEN


@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_messages(seed: int) -> None:
    rng = random.Random(seed)
    base = list(CORPUS.values())
    messages: list[bytes] = []
    seen: set[bytes] = set()
    while len(messages) < 150:
        raw = mutate(rng, rng.choice(base))
        key = raw.replace(b"\r\n", b"\n")
        if key.strip() and key not in seen:
            seen.add(key)
            messages.append(raw)
    theirs = capture_dovecot.capture_messages(messages, EDGE_SECTIONS)
    mismatches = [
        (raw, want, got)
        for raw, want in zip(messages, theirs, strict=True)
        if (got := ours(raw, EDGE_SECTIONS)) != want
    ]
    assert mismatches == []


# Messages past Dovecot's bounds (issue #17; SECURITY.md, heading 1): what is cut, and where,
# must be what Dovecot cuts.  The installed Dovecot is Debian's 2.3.19.1 with the fixes of
# CVE-2024-23185 (header limits) and CVE-2026-27859 (128 parameters) backported.
_MIB = 1024 * 1024
_DEEP = [".".join(["1"] * n) for n in (50, 98, 99, 100, 101)]
OVER_THE_BOUNDS = {
    "multipart nested 150 deep": attacks.nested_multiparts(150),
    "message/rfc822 nested 150 deep": attacks.nested_messages(150),
    "10005 parts": attacks.siblings(10005),
    "boundary of 200 octets": attacks.long_boundary(200, lines=5),
    "200 parameters": attacks.parameters(200),
    "boundary after 128 parameters": b"Content-Type: multipart/mixed"
    + b"".join(b"; p%d=v" % i for i in range(128))
    + b"; boundary=x\n\n--x\n\nA\n--x--\n",
    "broken parameters count": b"Content-Type: text/plain"
    + b"; =" * 100
    + b"".join(b"; p%d=v" % i for i in range(40))
    + b"\n\nbody\n",
    "RFC 2231 index of 40 digits": attacks.rfc2231_index(40)
    + b"Content-Disposition: inline; f*0=a; f*99999999999999999999999999=b\n",
    "header name of 1001 octets": b"X" * 1001 + b": v\nSubject: s\n\nbody\n",
    "header name of 1000 octets": b"Y" * 1000 + b": v\nSubject: s\n\nbody\n",
    "name and 1001 blanks": b"Subject" + b" " * 1001 + b": s\nTo: a@b\n\nbody\n",
    "boundary ending in CR": attacks.cr_boundary(5),
    "closing line of a prefix boundary": b"Content-Type: multipart/mixed; boundary=foo--\n\n"
    b"--foo--\nContent-Type: multipart/mixed; boundary=foo\n\n--foo\n\nA\n--foo--\nB\n"
    b"--foo----\n",
    "lines that almost match": attacks.near_boundaries(300, depth=20),
    "dash lines": attacks.dash_lines(300, depth=20) + b"--b19\n\nend\n--b3--\n",
    "nested comments": attacks.nested_comments(5000),
}


@pytest.mark.parametrize("name", list(OVER_THE_BOUNDS))
def test_over_the_bounds_like_dovecot(name: str) -> None:
    raw = OVER_THE_BOUNDS[name]
    sections = EDGE_SECTIONS + _DEEP + [spec + ".MIME" for spec in _DEEP]
    (theirs,) = capture_dovecot.capture_messages([raw], sections)
    got = ours(raw, sections)
    assert {k: v for k, v in got.items() if v != theirs[k]} == {}


def test_header_limit_cuts_values_like_dovecot() -> None:
    raw = attacks.one_field(10 * _MIB + 100)
    sections = ["HEADER", "TEXT", "HEADER.FIELDS.NOT (SUBJECT)"]
    (theirs,) = capture_dovecot.capture_messages([raw], sections)
    got = ours(raw, sections)
    kept = b"a" * (10 * _MIB - 1)  # counted from the colon, the blank after it included
    rest = b" NIL NIL NIL NIL NIL NIL NIL NIL)"
    # Dovecot reads a line this long in pieces and keeps the blank after the colon, so it
    # writes the Subject "for humans" as a literal: the same string
    assert theirs["ENVELOPE"] == b"(NIL {%d}\r\n" % len(kept) + kept + rest
    assert got["ENVELOPE"] == b'(NIL "' + kept + b'"' + rest
    assert {k: got[k] for k in sections} == {k: theirs[k] for k in sections}
