"""Fixtures of the session transcript tests: a session on a fresh store (`c`), and one
logged in with INBOX selected (`selected`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.imap.test_session_transcripts import Client


@pytest.fixture
def c(tmp_path: Path) -> Client:
    return Client(tmp_path)


@pytest.fixture
def selected(c: Client) -> Client:
    c.login()
    c.send("s SELECT INBOX\r\n")
    return c
