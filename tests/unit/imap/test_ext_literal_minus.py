"""LITERAL+ and LITERAL- (RFC 7888), as transcripts and on the reader alone.

`[imap] literal_plus = true` (the default) offers LITERAL+: a non-synchronizing literal `{n+}`
of any size, within the literal budgets (SECURITY.md 2). `false` offers LITERAL- instead: at
most 4096 octets; a larger `{n+}` is never read, the connection ends with `* BYE [TOOBIG]`
(RFC 7888 section 5, as Dovecot's `imap_literal_minus`). The bound is a `Limits` field the
session may switch on for IMAP4rev2 (RFC 9051 section 4.3 has LITERAL-'s rule).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mra.imap.events import Command, Fatal, NeedContinuation
from mra.imap.limits import LITERAL_MINUS, Limits, LiteralPool
from mra.imap.parser import CommandReader
from mra.imap.values import String
from tests.unit.imap.test_session_transcripts import Client

MINUS = "[imap]\nliteral_plus = false\n"


def capabilities(c: Client) -> list[str]:
    return c.send("x CAPABILITY\r\n")[0].split()


def test_literal_plus_by_default(c: Client) -> None:
    caps = capabilities(c)
    assert "LITERAL+" in caps and "LITERAL-" not in caps
    c.login()
    c.send("s SELECT INBOX\r\n")
    # Any size, within the literal budget of a SEARCH (64 KiB once logged in).
    big = "x" * 60000
    c.expect(f"a SEARCH TEXT {{60000+}}\r\n{big}\r\n", "* SEARCH", "a OK SEARCH completed")


def test_literal_minus_is_offered_instead(tmp_path: Path) -> None:
    """RFC 7888 section 5: "IMAP servers MUST NOT advertise both of these capabilities"."""
    c = Client(tmp_path, config=MINUS)
    assert "LITERAL-" in c.greeting.split() and "LITERAL+" not in c.greeting
    c.login()
    caps = capabilities(c)
    assert "LITERAL-" in caps and "LITERAL+" not in caps


def test_rfc7888_example_under_both(tmp_path: Path) -> None:
    """Section 3's example (its user and password ours): non-synchronizing literals of a few
    octets are fine under LITERAL- as under LITERAL+."""
    for config in ("", MINUS):
        base = tmp_path / ("minus" if config else "plus")
        base.mkdir()
        c = Client(base, config=config)
        c.expect(
            "A001 LOGIN {18+}\r\nalice@example.test {2+}\r\npw\r\n",
            "A001 OK [CAPABILITY {any}] Logged in",
        )


def test_literal_minus_takes_4096_octets_and_refuses_4097(tmp_path: Path) -> None:
    c = Client(tmp_path, config=MINUS)
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect(f"a SEARCH TEXT {{4096+}}\r\n{'y' * 4096}\r\n", "* SEARCH", "a OK SEARCH completed")
    c.expect(
        f"b SEARCH TEXT {{4097+}}\r\n{'y' * 4097}\r\nc NOOP\r\n",
        "* BYE [TOOBIG] Non-synchronizing literal size too large",
    )
    assert c.closed


def test_literal_minus_still_takes_big_synchronizing_literals(tmp_path: Path) -> None:
    """Section 5: "Any literal larger than 4096 bytes MUST be sent as a synchronizing
    literal": the server asks for it with `+`, and takes it."""
    c = Client(tmp_path, config=MINUS)
    c.login()
    message = "Subject: big\r\n\r\n" + "z" * 10000 + "\r\n"
    c.expect(f"a APPEND INBOX {{{len(message)}}}\r\n", "+ Ready")
    c.expect(message + "\r\n", "a OK [APPENDUID {n} 3] APPEND completed")


def test_attack_big_nonsync_literal_under_literal_minus_is_never_read(tmp_path: Path) -> None:
    """What follows the announcement, were it read, would run as commands if skipped wrongly,
    and would be read in full if skipped rightly: neither happens. The reader stops at the
    announcement, keeps nothing of what came with it, and reserves nothing."""
    c = Client(tmp_path, config=MINUS)
    c.login()
    payload = "a CREATE Evil\r\n" * 1000  # 15,000 octets that are commands if parsed
    lines = c.send(f"b APPEND INBOX {{{len(payload)}+}}\r\n{payload}\r\n")
    assert lines == ["* BYE [TOOBIG] Non-synchronizing literal size too large"]
    assert c.closed
    assert c.session.reader.buffered == 0 and c.session.literals.held == 0
    assert c.session.data_received(b"d NOOP\r\n") == []
    assert not (tmp_path / "mail/example.test/alice/.Evil").exists()


def test_attack_literal_minus_before_login(tmp_path: Path) -> None:
    """Before login the literal budget is 8 KiB; LITERAL- holds a `{n+}` to 4096 there too."""
    c = Client(tmp_path, config=MINUS)
    lines = c.send("a LOGIN {5000+}\r\n")
    assert lines == ["* BYE [TOOBIG] Non-synchronizing literal size too large"]


# --- the reader ---------------------------------------------------------------------------------


def test_reader_literal_minus_bound_is_a_limits_field() -> None:
    """The session may switch LITERAL- on (IMAP4rev2) between commands: the reader reads its
    limits anew for each command."""
    pool = LiteralPool(1 << 20)
    reader = CommandReader(Limits(), pool=pool)
    events = reader.feed(b"a X {5000+}\r\n" + b"q" * 5000 + b"\r\n")
    assert events == [Command("a", "X", [String(b"q" * 5000, True)], 5000 + 15)]
    reader.limits = dataclasses.replace(reader.limits, max_nonsync_literal=LITERAL_MINUS)
    assert reader.feed(b"b X {4096+}\r\n" + b"q" * 4096 + b"\r\n")[0].name == "X"  # type: ignore[union-attr]
    assert reader.feed(b"c X {4}\r\n") == [NeedContinuation("c", 4, "X")]
    reader.reject_literal()
    assert reader.feed(b"d X {4097+}\r\nqqqq") == [
        Fatal("Non-synchronizing literal size too large", "TOOBIG")
    ]
    assert reader.suspended and reader.buffered == 0
    assert reader.feed(b"more\r\ne NOOP\r\n") == []
    assert pool.held == 5000 + 4096  # the two commands' literals, not the refused one


def test_reader_literal_minus_inside_a_list_and_with_literal8() -> None:
    limits = Limits(max_nonsync_literal=LITERAL_MINUS)
    for line in (
        b"a APPEND INBOX (\\Seen) ~{4097+}\r\n",
        b"a SEARCH OR TEXT {1+}\r\nq TEXT {4097+}\r\n",
    ):
        reader = CommandReader(limits, pool=LiteralPool(1 << 30))
        reader.authenticated = True
        events = reader.feed(line)
        assert events == [Fatal("Non-synchronizing literal size too large", "TOOBIG")], line
