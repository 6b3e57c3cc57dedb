"""IMAP extensions, with their RFCs' examples as transcripts."""

from __future__ import annotations

from tests.unit.imap.test_session_transcripts import Client


def test_enable_rfc5161(c: Client) -> None:
    """RFC 5161 3.1: only extensions the server can enable are named, each once."""
    c.login()
    lines = c.send("t1 CAPABILITY\r\n")
    assert " ENABLE" in lines[0]
    c.expect("t2 ENABLE CONDSTORE X-GOOD-IDEA\r\n", "* ENABLED", "t2 OK ENABLE completed")
    c.expect("t3 ENABLE\r\n", "t3 BAD ENABLE: ENABLE needs at least one capability")
    c.send("s SELECT INBOX\r\n")
    c.expect("t4 ENABLE X-GOOD-IDEA\r\n", "t4 BAD ENABLE is not valid in this state")


def test_enable_before_login(c: Client) -> None:
    c.expect("t1 ENABLE X\r\n", "t1 BAD ENABLE is not valid before login")
