"""What SEARCH TEXT and FETCH keep of messages (mra/imap/messagecache.py): the next command on
a message reads no file for what was made of it once; the cache's bounds; `[limits]
message_cache = 0`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mra.context import Connection
from mra.imap import fetch
from mra.imap.messagecache import MessageCache
from mra.imap.session import ImapSession
from tests.unit.imap.test_ext_condstore import Worker
from tests.unit.imap.test_search_index import _rewrite
from tests.unit.imap.test_session_transcripts import Client

# Quoted-printable: no byte scan settles a TEXT key on it, its text is made and kept.
ENCODED = (
    b"From: dora@example.org\r\nSubject: plans\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"the caf=C3=A9 at noon, alpha=\r\nbet soup\r\n"
)
OTHER = b"From: mallory@example.org\r\nSubject: quux\r\n\r\nquux\r\n"


class Sibling(Client):
    """Another session of the same process: the same services."""

    def __init__(self, first: Client) -> None:
        self.store = first.store
        self.session = ImapSession(Connection("imap", "127.0.0.1"), first.session.services)
        self.closed = False
        self.greeting = self._text(self.session.greeting())


def _client(tmp_path: Path, config: str = "") -> Client:
    c = Client(tmp_path, config=config)
    inbox = c.store.mailbox("INBOX")
    inbox.append(ENCODED)  # UID 3, after the two of Client
    inbox.sync()
    c.login()
    c.send("s SELECT INBOX\r\n")
    return c


def test_text_search_answers_from_the_kept_text(tmp_path: Path) -> None:
    """Once made, a message's text answers the process's next TEXT searches, in any session:
    the file is not read again (probed by rewriting it, which a stored message never is).
    Another worker process keeps texts of its own, and reads the file."""
    c = _client(tmp_path)
    c.expect("a SEARCH TEXT alphabet\r\n", "* SEARCH 3", "a OK SEARCH completed")
    _rewrite(c, 3, OTHER)
    c.expect("b SEARCH TEXT noon\r\n", "* SEARCH 3", "b OK SEARCH completed")
    c.expect("c SEARCH TEXT quux\r\n", "* SEARCH", "c OK SEARCH completed")
    again = Sibling(c)
    again.login()
    again.send("s SELECT INBOX\r\n")
    again.expect("d SEARCH TEXT alphabet\r\n", "* SEARCH 3", "d OK SEARCH completed")
    w = Worker(c)
    w.login()
    w.send("s SELECT INBOX\r\n")
    w.expect("e SEARCH TEXT alphabet\r\n", "* SEARCH", "e OK SEARCH completed")
    w.expect("f SEARCH TEXT quux\r\n", "* SEARCH 3", "f OK SEARCH completed")


def test_plain_message_is_ruled_out_from_its_kept_scan(tmp_path: Path) -> None:
    """A plain message (ASCII, 7bit, no encoded word) is ruled out by a scan of its octets;
    the scan's form is kept, and the next TEXT search does not read the file for it. A key
    the scan finds is then answered from the file's text (and that text is kept)."""
    c = _client(tmp_path)
    c.expect("a SEARCH TEXT zebra\r\n", "* SEARCH", "a OK SEARCH completed")
    _rewrite(c, 2, b"From: carol@example.test\r\nSubject: zebra\r\n\r\nzebra numbers\r\n")
    c.expect("b SEARCH TEXT zebra\r\n", "* SEARCH", "b OK SEARCH completed")
    c.expect("c SEARCH TEXT numbers\r\n", "* SEARCH 2", "c OK SEARCH completed")
    c.expect("d SEARCH TEXT zebra\r\n", "* SEARCH 2", "d OK SEARCH completed")


def test_nothing_kept_when_the_setting_is_0(tmp_path: Path) -> None:
    c = _client(tmp_path, "[limits]\nmessage_cache = 0\n")
    c.expect("a SEARCH TEXT alphabet\r\n", "* SEARCH 3", "a OK SEARCH completed")
    _rewrite(c, 3, OTHER)
    c.expect("b SEARCH TEXT alphabet\r\n", "* SEARCH", "b OK SEARCH completed")
    c.expect("c SEARCH TEXT quux\r\n", "* SEARCH 3", "c OK SEARCH completed")
    c.expect("d SEARCH TEXT numbers\r\n", "* SEARCH 2", "d OK SEARCH completed")
    _rewrite(c, 2, b"Subject: other\r\n\r\nother\r\n")
    c.expect("e SEARCH TEXT numbers\r\n", "* SEARCH", "e OK SEARCH completed")
    c.send("f FETCH 3 (ENVELOPE)\r\n")
    _rewrite(c, 3, ENCODED.replace(b"plans", b"other plans"))
    lines = c.send("g FETCH 3 (ENVELOPE)\r\n")
    assert '"other plans"' in lines[0], lines


def test_expunged_message_is_not_answered_from_its_kept_text(tmp_path: Path) -> None:
    """Another session of the process expunged the message, this one was not told yet: its
    kept text does not make it match, as its file, found gone, would not (RFC 2180 4.1.3)."""
    c = _client(tmp_path)
    c.expect("a SEARCH TEXT alphabet\r\n", "* SEARCH 3", "a OK SEARCH completed")
    other = Sibling(c)
    other.login()
    other.send("s SELECT INBOX\r\n")
    other.send("b STORE 3 +FLAGS.SILENT (\\Deleted)\r\n")
    other.expect("c EXPUNGE\r\n", "* 3 EXPUNGE", "c OK EXPUNGE completed")
    lines = c.send("d SEARCH TEXT alphabet\r\n")
    assert "* SEARCH" in lines and lines[-1].startswith("d OK"), lines


def test_fetch_answers_structures_from_the_cache(tmp_path: Path) -> None:
    """ENVELOPE, BODYSTRUCTURE and BODY once made are sent again without a file read (probed by
    rewriting the file), by any session of the process; the message's bytes are still read
    from the file; another worker process reads the file."""
    c = _client(tmp_path)
    first = c.send("a FETCH 3 (ENVELOPE BODYSTRUCTURE BODY)\r\n")
    assert '"plans"' in first[0] and '"quoted-printable"' in first[0], first
    _rewrite(c, 3, OTHER)
    again = Sibling(c)
    again.login()
    again.send("s SELECT INBOX\r\n")
    assert again.send("b FETCH 3 (ENVELOPE BODYSTRUCTURE BODY)\r\n") == [
        first[0],
        "b OK FETCH completed",
    ]
    lines = again.send("c FETCH 3 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
    assert "quux" in " ".join(lines), lines
    w = Worker(c)
    w.login()
    w.send("s SELECT INBOX\r\n")
    lines = w.send("d FETCH 3 (ENVELOPE)\r\n")
    assert '"quux"' in lines[0], lines


def test_attack_one_huge_value_does_not_empty_the_cache() -> None:
    """A value over an eighth of the budget is not kept; the budget holds however many values
    are put, the least recently used going first."""
    cache = MessageCache(64 * 1024)
    small = "x" * 1000
    for i in range(20):
        cache.put("/f", f"m{i}", "TEXT", small + str(i))
    cache.put("/f", "huge", "TEXT", "y" * (9 * 1024))
    assert cache.get("/f", "huge", "TEXT") is None
    assert len(cache) == 20
    assert cache.get("/f", "m0", "TEXT") is not None  # now the most recently used
    for i in range(20, 200):
        cache.put("/f", f"m{i}", "TEXT", small + str(i))
        assert cache.used <= cache.budget
    kept = [t for i in range(200) if (t := cache.get("/f", f"m{i}", "TEXT")) is not None]
    assert cache.used == sum(sys.getsizeof(t) for t in kept)
    assert cache.get("/f", "m1", "TEXT") is None and cache.get("/f", "m199", "TEXT") is not None
    assert cache.get("/g", "m199", "TEXT") is None  # another folder's message of that name
    assert cache.get("/f", "m199", "ENVELOPE") is None  # another kind of value


@pytest.mark.parametrize(
    "items",
    [["FLAGS"], ["UID", "FLAGS"], ["FLAGS", "UID"], ["UID"], ["FLAGS", "FLAGS"], ["UID", "UID"]],
)
@pytest.mark.parametrize("with_uid", [False, True])
def test_flags_fast_path_renders_what_render_does(
    tmp_path: Path, items: list[str], with_uid: bool
) -> None:
    """FETCH of UID and FLAGS only (a resync of a whole folder) skips render()'s walk through
    every kind of item: its lines are render()'s, keyword, \\Recent and all."""
    c = _client(tmp_path)
    c.send("k STORE 1:2 +FLAGS ($Label1 \\Flagged)\r\n")
    view = c.session.selected()
    plan = fetch.flags_plan(list(items), with_uid)
    assert plan is not None
    for seq, uid in enumerate(view.uids, 1):
        msg = view.message(uid)
        assert msg is not None
        expected = fetch.render(view, uid, seq, list(items), with_uid, False)
        assert fetch.render_flags(view, msg, seq, plan) == expected
    assert fetch.flags_plan(["FLAGS", "INTERNALDATE"], with_uid) is None
    assert fetch.flags_plan(["FLAGS", "MODSEQ"], with_uid) is None
