"""STATUS of a folder that is not selected: UNSEEN counted once per change of the folder
(mailstore/folderstate.py `unseen_count`), RECENT from new/'s listing, so a client's poll of a
big folder reads no message; every answer checked against the folder as another process
changed it, after each of its changes."""

from __future__ import annotations

import random
import re
from pathlib import Path

from mailstore.store import MailStore
from tests.unit.imap.test_session_transcripts import Client


def _status(c: Client) -> dict[str, int]:
    lines = c.send("s STATUS INBOX (MESSAGES RECENT UNSEEN DELETED)\r\n")
    assert lines[-1] == "s OK STATUS completed", lines
    (line,) = lines[:-1]
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}


def test_status_unseen_follows_every_change_another_process_makes(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    assert c.send("a SELECT Trash\r\n")[-1].startswith("a OK")  # another folder selected
    other = MailStore(str(tmp_path / "mail/example.test/alice")).mailbox("INBOX")
    rnd = random.Random(7)
    for step in range(60):
        op = rnd.choice(["append", "append", "seen", "unseen", "delete", "expunge", "select"])
        other.sync()
        uids = other.uids()
        if op == "append" or not uids:
            other.append(b"Subject: %d\r\n\r\nx\r\n" % step, flags=rnd.choice([[], ["\\Seen"]]))
        elif op in ("seen", "unseen"):
            picked = rnd.sample(uids, k=min(len(uids), rnd.randint(1, 3)))
            other.store_flags(picked, "add" if op == "seen" else "remove", ["\\Seen"])
        elif op == "delete":
            other.store_flags([rnd.choice(uids)], "add", ["\\Deleted"])
        elif op == "expunge":
            other.expunge([rnd.choice(uids)])
        elif op == "select":  # SELECT's UNSEEN moves the mark below which all are \Seen
            assert c.send("b SELECT INBOX\r\n")[-1].startswith("b OK")
            assert c.send("c SELECT Trash\r\n")[-1].startswith("c OK")
        other.sync()
        messages = [other.get(u) for u in other.uids()]
        expected = {
            "MESSAGES": len(messages),
            "RECENT": sum(m.recent for m in messages),
            "UNSEEN": sum(not m.seen for m in messages),
            "DELETED": sum(m.deleted for m in messages),
        }
        assert _status(c) == expected, (step, op)
        assert _status(c) == expected, (step, op)  # the kept count, unchanged folder
