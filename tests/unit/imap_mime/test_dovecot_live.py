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
from tests.unit.imap_mime import capture_dovecot
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
