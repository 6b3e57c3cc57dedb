"""A warm SELECT (commands/select.py `_warm`): the session has the folder open and its shared
state needs no work that grows with the folder, so SELECT answers on the reactor, without a
thread-pool round trip; in every other case the open goes to the thread pool as before, and
the answer is the same either way."""

from __future__ import annotations

from pathlib import Path

from mra.session import Call, Send
from tests.unit.imap.test_session_transcripts import Client


def outputs(c: Client, line: str) -> list[object]:
    return list(c.session.data_received(line.encode() + b"\r\n"))


def answer(c: Client, line: str) -> list[str]:
    return c.send(line + "\r\n")


def test_a_warm_select_answers_without_the_thread_pool_and_the_same(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    cold = outputs(c, "a SELECT INBOX")
    assert any(isinstance(o, Call) for o in cold)  # the first open: the thread pool
    first = c._text(cold)
    answer(c, "b UNSELECT")
    warm = outputs(c, "c SELECT INBOX")
    assert warm and all(isinstance(o, Send) for o in warm)
    again = c._text(warm)
    # The same answer, but for \\Recent: the first SELECT claimed the message in new/.
    assert "* 1 RECENT" in first
    assert again.replace("c OK", "a OK") == first.replace("* 1 RECENT", "* 0 RECENT")
    answer(c, "d UNSELECT")
    readonly = outputs(c, "e EXAMINE INBOX")
    assert all(isinstance(o, Send) for o in readonly)
    assert "e OK [READ-ONLY]" in c._text(readonly)


def test_a_select_that_would_grow_with_the_folder_still_goes_to_the_thread_pool(
    tmp_path: Path,
) -> None:
    """New mail to claim (renames, one per message), UNSEEN to look for again after a change,
    QRESYNC parameters: the open goes to the thread pool, and the answer is right."""
    c = Client(tmp_path)
    c.login()
    answer(c, "a SELECT INBOX")
    answer(c, "b UNSELECT")
    c.store.mailbox("INBOX").append(b"Subject: new\r\n\r\nbody\r\n")  # into new/
    fresh = outputs(c, "c SELECT INBOX")
    assert any(isinstance(o, Call) for o in fresh)
    text = c._text(fresh)
    assert "* 3 EXISTS" in text and "* 1 RECENT" in text
    answer(c, "d UNSELECT")
    other = c.store.mailbox("INBOX")
    other.sync()
    other.store_flags([1], "add", ["\\Seen"])  # another process: UNSEEN moves
    changed = outputs(c, "e SELECT INBOX")
    assert any(isinstance(o, Call) for o in changed)
    assert "[UNSEEN 3]" in c._text(changed)
    answer(c, "f UNSELECT")
    assert all(isinstance(o, Send) for o in outputs(c, "g SELECT INBOX"))  # warm again
    answer(c, "h UNSELECT")
    answer(c, "i ENABLE QRESYNC")
    resync = outputs(c, "j SELECT INBOX (QRESYNC (1 1))")
    assert any(isinstance(o, Call) for o in resync)
