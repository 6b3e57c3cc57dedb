"""Issue #10's conformance gaps, as transcripts: keywords announced before they are shown
(RFC 3501 7.2.6) and \\Recent given to exactly one session (RFC 3501 2.3.2, 6.3.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstore.store import MailStore
from mra.context import Connection
from mra.imap.session import ImapSession
from tests.unit.imap.test_session_transcripts import Client


class Other(Client):
    """A second session on the first one's store and services."""

    def __init__(self, first: Client) -> None:
        self.store = first.store
        self.session = ImapSession(Connection("imap", "127.0.0.1"), first.session.services)
        self.closed = False
        self.greeting = self._text(self.session.greeting())


@pytest.fixture
def two(tmp_path: Path) -> tuple[Client, Client]:
    a = Client(tmp_path)
    b = Other(a)
    for c in (a, b):
        c.login()
    return a, b


SYSTEM = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def test_keyword_stored_here_is_announced_before_its_fetch(two: tuple[Client, Client]) -> None:
    a, _ = two
    a.send("s SELECT INBOX\r\n")
    a.expect(
        "k STORE 1 +FLAGS ($Label1)\r\n",
        f"* FLAGS ({SYSTEM} $Label1)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Label1 \\*)] Flags permitted.",
        "* 1 FETCH (FLAGS ($Label1 \\Recent))",
        "k OK STORE completed",
    )
    # Known now: no second announcement.
    a.expect(
        "l STORE 2 +FLAGS ($Label1)\r\n",
        "* 2 FETCH (FLAGS (\\Seen $Label1))",
        "l OK STORE completed",
    )
    # Silent: nothing shown, but the keyword is announced all the same.
    a.expect(
        "m STORE 2 +FLAGS.SILENT (NIL)\r\n",
        f"* FLAGS ({SYSTEM} $Label1 NIL)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Label1 NIL \\*)] Flags permitted.",
        "m OK STORE completed",
    )


def test_keyword_stored_elsewhere_is_announced_before_the_update(
    two: tuple[Client, Client],
) -> None:
    a, b = two
    a.send("s SELECT INBOX\r\n")
    b.send("s SELECT INBOX\r\n")
    b.expect("k STORE 1 +FLAGS ($Junk)\r\n", *["{any}"] * 4)
    a.expect(
        "n NOOP\r\n",
        f"* FLAGS ({SYSTEM} $Junk)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Junk \\*)] Flags permitted.",
        "* 1 FETCH (FLAGS ($Junk \\Recent))",
        "n OK NOOP completed",
    )


def test_keyword_of_a_new_message_is_announced_before_fetch(two: tuple[Client, Client]) -> None:
    """Mail that arrives with a keyword (a delivery with Sieve flags, another session's APPEND
    or COPY): FLAGS comes with the EXISTS, before any FETCH can show it."""
    a, _ = two
    a.send("s SELECT INBOX\r\n")
    a.store.mailbox("INBOX").append(b"Subject: sieve\r\n\r\nx\r\n", flags=["$Work", "\\Seen"])
    a.expect(
        "n NOOP\r\n",
        f"* FLAGS ({SYSTEM} $Work)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] Flags permitted.",
        "* 3 EXISTS",
        "* 1 RECENT",
        "n OK NOOP completed",
    )
    a.expect("f FETCH 3 FLAGS\r\n", "* 3 FETCH (FLAGS (\\Seen $Work))", "f OK FETCH completed")


def test_keyword_copied_in_is_announced(two: tuple[Client, Client]) -> None:
    a, _ = two
    a.store.create_folder("Other")
    a.store.mailbox("Other").append(b"Subject: o\r\n\r\nx\r\n", flags=["$Other"])
    a.send("s SELECT Other\r\n")
    a.send("s SELECT INBOX\r\n")
    lines = a.send("c APPEND INBOX ($New) {10}\r\n") + a.send("Subject: x\r\n")
    assert lines[0] == "+ Ready" and lines[-1].startswith("c OK [APPENDUID ")
    assert lines[1] == f"* FLAGS ({SYSTEM} $New)", lines


def test_recent_goes_to_exactly_one_session(two: tuple[Client, Client]) -> None:
    a, b = two
    a.expect("s SELECT INBOX\r\n", *["{any}"] * 3, "* 1 RECENT", *["{any}"] * 5)
    b.expect("s SELECT INBOX\r\n", *["{any}"] * 3, "* 0 RECENT", *["{any}"] * 5)
    a.store.mailbox("INBOX").append(b"Subject: new\r\n\r\nx\r\n")
    both = [a.send("n NOOP\r\n"), b.send("n NOOP\r\n")]
    assert both[0] == ["* 3 EXISTS", "* 2 RECENT", "n OK NOOP completed"]
    assert both[1] == ["* 3 EXISTS", "* 0 RECENT", "n OK NOOP completed"]
    a.expect("f FETCH 3 FLAGS\r\n", "* 3 FETCH (FLAGS (\\Recent))", "f OK FETCH completed")
    b.expect("f FETCH 3 FLAGS\r\n", "* 3 FETCH (FLAGS ())", "f OK FETCH completed")


def test_recent_race_between_two_sessions_has_one_winner(tmp_path: Path) -> None:
    """Both sessions saw the message in new/ before either moved it: the rename decides."""
    a = Client(tmp_path)
    b = Other(a)
    for c in (a, b):
        c.login()
        c.send("s SELECT INBOX\r\n")
    box: MailStore = a.store
    box.mailbox("INBOX").append(b"Subject: race\r\n\r\nx\r\n")
    for c in (a, b):  # each session's store sees the new file before anyone claims it
        c.session.selected().box.sync()
    counts = [c.send("n NOOP\r\n")[1] for c in (a, b)]
    assert sorted(counts) == ["* 0 RECENT", "* 2 RECENT"], counts


def test_own_append_and_copy_with_flags_are_recent_here(two: tuple[Client, Client]) -> None:
    a, b = two
    a.send("s SELECT INBOX\r\n")
    b.send("s SELECT INBOX\r\n")
    a.send("c APPEND INBOX (\\Seen) {10}\r\n")
    a.expect(
        "Subject: x\r\n", "* 3 EXISTS", "* 2 RECENT", "c OK [APPENDUID {n} 3] APPEND completed"
    )
    a.expect(
        "d COPY 2 INBOX\r\n", "* 4 EXISTS", "* 3 RECENT", "d OK [COPYUID {n} 2 4] COPY completed"
    )
    b.expect("n NOOP\r\n", "* 4 EXISTS", "* 0 RECENT", "n OK NOOP completed")


def test_examine_shows_recent_and_moves_nothing(two: tuple[Client, Client]) -> None:
    a, b = two
    a.expect(
        "e EXAMINE INBOX\r\n",
        f"* FLAGS ({SYSTEM})",
        "* OK [PERMANENTFLAGS ()] Read-only mailbox.",
        "* 2 EXISTS",
        "* 1 RECENT",
        "{any}",
        "{any}",
        "{any}",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "e OK [READ-ONLY] Examine completed",
    )
    a.expect("f FETCH 1 FLAGS\r\n", "* 1 FETCH (FLAGS (\\Recent))", "f OK FETCH completed")
    # Still new: the next read-write SELECT gets it.
    b.expect("s SELECT INBOX\r\n", *["{any}"] * 3, "* 1 RECENT", *["{any}"] * 5)


def test_search_skips_a_message_expunged_meanwhile(two: tuple[Client, Client]) -> None:
    """A message another session expunged while this one searched (its file gone, this
    session not yet told): the search answers for the others, it does not fail."""
    a, b = two
    a.send("s SELECT INBOX\r\n")
    b.send("s SELECT INBOX\r\n")
    b.send("d STORE 1 +FLAGS (\\Deleted)\r\n")
    b.send("e EXPUNGE\r\n")
    lines = a.send("f SEARCH TEXT Numbers\r\n")
    assert lines[0] == "* SEARCH 2" and lines[-1] == "f OK SEARCH completed", lines
    assert a.send("n NOOP\r\n")[0] == "* 1 EXPUNGE"
