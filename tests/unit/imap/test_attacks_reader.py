"""Issue #17: what a client can make the IMAP reader hold. Literal octets are bounded per command
(a message command may carry a message, any other command 64 KiB) and per process (one
`LiteralPool` shared by every reader), and every reserved octet is given back."""

from __future__ import annotations

from pathlib import Path

from mra.imap.commands import MESSAGE_COMMANDS, SUSPENDING
from mra.imap.events import BadCommand, Command, LiteralTooLarge, NeedContinuation, ServerBusy
from mra.imap.limits import Limits, LiteralPool
from mra.imap.parser import CommandReader
from tests.unit.imap._util import drive
from tests.unit.imap.test_session_transcripts import Client


def reader(pool: LiteralPool, **limits: int) -> CommandReader:
    r = CommandReader(
        Limits(**limits),
        suspend_after=SUSPENDING,
        message_commands=MESSAGE_COMMANDS,
        pool=pool,
    )
    r.authenticated = True
    return r


def test_attack_search_literal_of_45_mb_is_refused_at_its_announcement() -> None:
    pool = LiteralPool(1 << 40)
    r = reader(pool)
    events = r.feed(b"a SEARCH TEXT {47185920}\r\n")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, LiteralTooLarge)
    assert event.limit == "max_other_literal_size" and event.code == "TOOBIG"
    assert pool.held == 0
    # The same size is a message for APPEND: asked for, and reserved until the command is done.
    events = r.feed(b"b APPEND INBOX {47185920}\r\n")
    assert isinstance(events[0], NeedContinuation)
    assert pool.held == 47185920


def test_attack_unsent_literal_plus_is_skipped_when_the_pool_is_full() -> None:
    pool = LiteralPool(100)
    r = reader(pool)
    events = drive(r, [b"a APPEND INBOX {80+}\r\n" + b"x" * 80 + b"\r\n"])
    assert [type(e) for e in events] == [Command]
    assert pool.held == 80  # held by the command until the session gives it back
    events = drive(r, [b"b APPEND INBOX {30+}\r\n" + b"y" * 30 + b"\r\nc NOOP\r\n"])
    assert isinstance(events[0], ServerBusy)
    assert events[0].status == "NO" and events[0].code == "UNAVAILABLE"
    assert isinstance(events[1], Command) and events[1].name == "NOOP"  # y octets were skipped
    assert pool.held == 80


def test_attack_literal_reservations_come_back_on_error_reject_and_close() -> None:
    pool = LiteralPool(1 << 30)
    r = reader(pool)
    # A literal read, then a syntax error in the same command: given back.
    events = drive(r, [b"a APPEND INBOX {5+}\r\nhello )\r\n"])
    assert isinstance(events[0], BadCommand)
    assert pool.held == 0
    # A synchronizing literal the session refuses: given back.
    events = r.feed(b"b APPEND INBOX {1000}\r\n")
    assert isinstance(events[0], NeedContinuation) and pool.held == 1000
    r.reject_literal()
    assert pool.held == 0
    # Half a literal, then the connection is lost: given back.
    r.feed(b"c APPEND INBOX {1000+}\r\n" + b"z" * 500)
    assert pool.held == 1000
    r.close()
    assert pool.held == 0


def test_command_literal_size_counts_every_literal() -> None:
    pool = LiteralPool(1 << 30)
    r = reader(pool)
    events = drive(r, [b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n"])
    assert isinstance(events[0], Command)
    assert events[0].literal_size == 11 == pool.held


def test_mime_bounds_are_settings(tmp_path: Path) -> None:
    """`[limits] max_mime_depth` and `max_mime_parts` reach FETCH and SEARCH: past the depth a
    part is a leaf (as Dovecot's max_nested_mime_parts makes it), past the count the last part
    runs to the end."""
    c = Client(tmp_path, config="[mailboxes]\n[limits]\nmax_mime_depth = 2\n")
    nested = (
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\ndeep needle\r\n--b--\r\n--a--\r\n"
    )
    c.store.mailbox("INBOX").append(nested)
    c.login()
    c.send("s SELECT INBOX\r\n")
    lines = c.send("f FETCH 3 BODYSTRUCTURE\r\n")
    assert '"application" "octet-stream"' in lines[0].lower(), lines[0]
    assert c.session.services.mime_limits.max_nested_parts == 2
    (tmp_path / "x").mkdir()
    deep = Client(tmp_path / "x", config="[mailboxes]\n")
    assert deep.session.services.mime_limits.max_nested_parts == 100
