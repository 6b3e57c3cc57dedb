"""Our Sieve engine against Pigeonhole's, script by script and message by message.

Every script of `sieve_corpus/scripts` (each extension we implement, the RFCs' examples,
filters as Roundcube and Thunderbird write them, scripts that must not compile) runs on every
message of `sieve_corpus/messages`, through Pigeonhole's `sieve-test` (Debian: dovecot-sieve)
and through our engine; the actions (stores with their flags, redirects, rejects, vacation
replies with their period and handle, notifications) must be the same, and so must whether
the script compiles and whether it fails at run time. See `pigeonhole.py` for the form both
are compared in.

Known differences: Pigeonhole 0.5.19 has no "ereject"; its "environment" items name
Pigeonhole; it refuses "," between the addresses of a mailto URI (RFC 6068 allows it; we do);
`vacation` and `notify` are compared as decided by the script, before the send-time checks,
which sieve-test does not apply (tests/mda checks them). `KNOWN` lists the one difference in
the corpus.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.dovecot import remove_tree, traversable_tempdir
from tests.interop.pigeonhole import (
    Home,
    our_actions,
    pigeonhole_actions,
    run_pigeonhole,
    sieve_test_available,
)

CORPUS = Path(__file__).parent / "sieve_corpus"
SCRIPTS = sorted((CORPUS / "scripts").glob("*.sieve"))
MESSAGES = sorted((CORPUS / "messages").glob("*.eml"))
FOLDERS = ("Partners", "archive")
# Pigeonhole looks for included scripts when it compiles; we look when the include runs. A
# missing one is an error either way, and the message is kept in INBOX either way.
KNOWN = {"include-missing": ("compile error", [("error",)])}
SENDER = "sender@example.net"
RECIPIENT = "me+lists@example.com"


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    if not sieve_test_available():
        message = "sieve-test is missing: apt-get install dovecot-sieve"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    root = traversable_tempdir("sieve-corpus-")
    try:
        yield Home(root, CORPUS, FOLDERS)
    finally:
        remove_tree(root)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates in the local zone are compared in UTC, as sieve-test runs with TZ=UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_corpus_covers_every_extension() -> None:
    from mda.sieve.parser import ALL_EXTENSIONS

    text = "".join(p.read_text() for p in SCRIPTS)
    not_covered = {"ereject", "comparator-i;octet", "comparator-i;ascii-casemap"}
    missing = [e for e in sorted(ALL_EXTENSIONS - not_covered) if f'"{e}"' not in text]
    assert missing == []


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_same_actions_as_pigeonhole(home: Home, script: Path) -> None:
    differences = []
    for message in MESSAGES:
        report = run_pigeonhole(home, script, message, SENDER, RECIPIENT)
        theirs = pigeonhole_actions(report)
        ours = our_actions(home, script, message, SENDER, RECIPIENT)
        if not script.stem.startswith("compile-error"):
            assert ours != "compile error", f"{script.name} should compile"
        if (theirs, ours) == KNOWN.get(script.stem):
            continue
        if theirs != ours:
            differences.append(
                f"{message.name}:\n  pigeonhole {theirs}\n  ours       {ours}\n{report}"
            )
    assert differences == [], "\n".join(differences)
