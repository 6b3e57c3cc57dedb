"""IMAP extensions, with their RFCs' examples as transcripts."""

from __future__ import annotations

from tests.unit.imap.test_session_transcripts import Client


def test_enable_rfc5161(c: Client) -> None:
    """RFC 5161 3.1: only extensions the server can enable are named, each once."""
    c.login()
    lines = c.send("t1 CAPABILITY\r\n")
    assert " ENABLE" in lines[0]
    c.expect("t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n", "* ENABLED CONDSTORE", "t2 OK ENABLE completed")
    c.expect("t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n", "* ENABLED", "t2 OK ENABLE completed")
    c.expect("t3 ENABLE\r\n", "t3 BAD ENABLE: ENABLE needs at least one capability")
    c.send("s SELECT INBOX\r\n")
    c.expect("t4 ENABLE X-GOOD-IDEA\r\n", "t4 BAD ENABLE is not valid in this state")


def test_enable_before_login(c: Client) -> None:
    c.expect("t1 ENABLE X\r\n", "t1 BAD ENABLE is not valid before login")


def test_unauthenticate_rfc8437(c: Client) -> None:
    """RFC 8437 3: back to the not authenticated state; login capabilities again; another
    user may log in; the mailbox was closed without expunging."""
    assert "UNAUTHENTICATE" not in c.greeting
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect("d STORE 1 +FLAGS (\\Deleted)\r\n", "{any}", "d OK STORE completed")
    c.expect("a UNAUTHENTICATE\r\n", "a OK UNAUTHENTICATE completed")
    c.expect("b SELECT INBOX\r\n", "b BAD SELECT is not valid before login")
    lines = c.send("c CAPABILITY\r\n")
    assert "AUTH=PLAIN" in lines[0] and "UNAUTHENTICATE" not in lines[0]
    # Pre-login literal limits again: 8 KiB.
    c.expect("e LOGIN {9000}\r\n", "e BAD [TOOBIG] literal of 9000 octets is too large")
    c.login()
    lines = c.send("s SELECT INBOX\r\n")
    assert "* 2 EXISTS" in lines  # CLOSE would have expunged message 1
    assert c.session.literals.held == 0
