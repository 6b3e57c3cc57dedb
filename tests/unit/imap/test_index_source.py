"""The folder index's FieldSource for SORT, THREAD and PREVIEW (mra/imap/indexsource.py).

The records are the contract's own dataclass (mra/imap/sortfields.py's SortFields); the source
is given a small `make` with `fields_of`'s signature that counts its calls. What is tested is
the source's own part: computed once per message, kept in the index for every session, worker
and restart, messages gone left out, previews kept, and a planted record never used.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mailstore.folderindex import NAME as INDEX_NAME
from mra.context import Connection
from mra.imap import indexsource, mime
from mra.imap.session import ImapSession
from mra.imap.sortfields import SortFields as Fields
from tests.unit.imap.test_ext_condstore import Worker
from tests.unit.imap.test_session_transcripts import Client


class Make:
    """`fields_of`'s signature; counts the messages it computed."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(
        self,
        uid: int,
        arrival: float,
        size: int,
        message: bytes | mime.Part,
        preview: bool = False,
        limits: mime.Limits = mime.DEFAULT_LIMITS,
    ) -> Fields:
        self.calls.append(uid)
        part = mime.parse(message, limits)

        def first(name: str) -> str:
            values = mime.header_values(part, name)
            return values[0].strip() if values else ""

        return Fields(
            uid=uid,
            arrival=arrival,
            date=None,
            size=size,
            subject=first("subject").lower(),
            from_=first("from"),
            from_display=first("from"),
            to=first("to"),
            to_display=first("to"),
            cc=first("cc"),
            message_id=first("message-id"),
            in_reply_to=first("in-reply-to"),
            references=tuple(first("references").split()),
            preview=None,
            reply=first("subject").lower().startswith("re:"),
        )


def _client(tmp_path: Path) -> Client:
    """Alice's INBOX: UIDs 1 and 2 (the transcript client's), 3-5 here."""
    c = Client(tmp_path)
    inbox = c.store.mailbox("INBOX")
    for i in range(3):
        inbox.append(
            f"From: s{i}@example.org\r\nSubject: Re: topic {i}\r\nMessage-ID: <m{i}@x>\r\n"
            f"References: <r{i}@x> <m{i - 1}@x>\r\n\r\nbody {i}\r\n".encode()
        )
    inbox.sync()
    return c


def _selected(c: Client) -> Any:
    c.login()
    c.send("s SELECT INBOX\r\n")
    assert c.session.view is not None
    return c.session.view


def test_fields_are_computed_once_and_kept_for_every_worker(tmp_path: Path) -> None:
    c = _client(tmp_path)
    make = Make()
    source = indexsource.source_for(_selected(c), (Fields, make))
    assert source is not None
    got = source.fields([5, 3, 4])
    assert [f.uid for f in got] == [5, 3, 4]
    assert got[1].subject == "re: topic 0" and got[1].reply is True
    assert got[1].references == ("<r0@x>", "<m-1@x>")
    assert got[1].size > 0 and got[1].arrival > 0
    assert sorted(make.calls) == [3, 4, 5]
    assert source.fields([3]) == [got[1]] and sorted(make.calls) == [3, 4, 5]
    # Another worker: its own memory and index connection, the same records.
    inbox = c.store.mailbox("INBOX")
    msg = inbox.get(3)
    Path(inbox.path, msg.subdir, msg.name).write_bytes(b"Subject: rewritten\r\n\r\nprobe\r\n")
    w = Worker(c)
    other = Make()
    again = indexsource.source_for(_selected(w), (Fields, other))
    assert again is not None
    assert again.fields([3, 4, 5]) == [got[1], got[2], got[0]]
    assert other.calls == []  # not a file read: the probe's new subject is not seen


def test_messages_gone_are_left_out(tmp_path: Path) -> None:
    c = _client(tmp_path)
    view = _selected(c)
    source = indexsource.source_for(view, (Fields, Make()))
    assert source is not None
    c.store.mailbox("INBOX").expunge([4])
    assert [f.uid for f in source.fields([5, 4, 999, 3])] == [5, 3]


def test_previews_are_kept(tmp_path: Path) -> None:
    c = _client(tmp_path)
    source = indexsource.source_for(_selected(c), (Fields, Make()))
    assert source is not None
    assert source.fields([3])[0].preview is None
    source.remember_previews({3: "body 0", 4: "body 1"})  # gathered, written at the next ask
    assert [f.preview for f in source.fields([4, 3])] == ["body 1", "body 0"]
    w = Worker(c)
    make = Make()
    again = indexsource.source_for(_selected(w), (Fields, make))
    assert again is not None
    assert [f.preview for f in again.fields([3, 4, 5])] == ["body 0", "body 1", None]
    assert make.calls == [5]


def test_flag_changes_keep_what_the_index_computed(tmp_path: Path) -> None:
    """A STORE changes the row's modseq and flags, not the fields kept beside them."""
    c = _client(tmp_path)
    view = _selected(c)
    source = indexsource.source_for(view, (Fields, Make()))
    assert source is not None
    source.fields([3, 4, 5])
    c.expect("a SEARCH FROM s1\r\n", "* SEARCH 4", "a OK SEARCH completed")
    c.send("b STORE 3:5 +FLAGS (\\Flagged)\r\n")
    c.store.mailbox("INBOX").store_flags([4], "add", ["\\Seen"])  # another writer's change
    c.send("c NOOP\r\n")
    index = sqlite3.connect(os.path.join(c.store.mailbox("INBOX").path, INDEX_NAME))
    rows = index.execute("SELECT uid, hdr IS NOT NULL, sortf IS NOT NULL FROM msg WHERE uid > 2")
    assert sorted(rows) == [(3, 1, 1), (4, 1, 1), (5, 1, 1)]
    index.close()


def test_no_index_no_source(tmp_path: Path) -> None:
    c = _client(tmp_path)
    os.mkdir(os.path.join(c.store.mailbox("INBOX").path, INDEX_NAME))
    assert indexsource.source_for(_selected(c), (Fields, Make())) is None


@pytest.mark.parametrize(
    "planted",
    [
        "'[1,2,3]'",  # not a blob
        "CAST('[1,2,3]' AS BLOB)",  # another shape
        "CAST('not json' AS BLOB)",
        "CAST(printf('%.*c', 100000, '[') AS BLOB)",  # nested past the parser's recursion
        "zeroblob(70000)",  # over SORTF_MAX
        "CAST('{}' AS BLOB)",
    ],
    ids=["text", "shape", "not-json", "deep", "huge", "object"],
)
def test_attack_planted_sort_records_are_computed_again(tmp_path: Path, planted: str) -> None:
    """A user can write their own index: a record that is not one this code wrote is never
    used; the fields are computed again (and the record replaced)."""
    c = _client(tmp_path)
    source = indexsource.source_for(_selected(c), (Fields, Make()))
    assert source is not None
    good = source.fields([3, 4, 5])
    index = sqlite3.connect(os.path.join(c.store.mailbox("INBOX").path, INDEX_NAME))
    with index:
        index.execute(f"UPDATE msg SET sortf = {planted}")
    index.close()
    w = Worker(c)
    make = Make()
    again = indexsource.source_for(_selected(w), (Fields, make))
    assert again is not None
    assert again.fields([3, 4, 5]) == good
    assert sorted(make.calls) == [3, 4, 5]


def test_attack_planted_values_of_the_wrong_type_are_not_used(tmp_path: Path) -> None:
    """The right shape with a value of another type (a number for the subject, a string for
    the references, a list of numbers): SORT never compares a str with an int."""
    c = _client(tmp_path)
    view = _selected(c)
    source = indexsource.source_for(view, (Fields, Make()))
    assert source is not None
    source.fields([3, 4, 5])
    index = sqlite3.connect(os.path.join(c.store.mailbox("INBOX").path, INDEX_NAME))
    records = dict(index.execute("SELECT uid, sortf FROM msg WHERE uid > 2"))
    shape = records[3][: records[3].index(b",")]
    bad = {
        3: records[3].replace(b'"re: topic 0"', b"7"),
        4: records[4].replace(b'["<r1@x>","<m0@x>"]', b'"<r1@x>"'),
        5: records[5].replace(b'["<r2@x>","<m1@x>"]', b"[1,2]"),
    }
    assert all(bad[u] != records[u] and bad[u].startswith(shape) for u in bad)
    with index:
        index.executemany(
            "UPDATE msg SET sortf = ? WHERE uid = ?", [(v, u) for u, v in bad.items()]
        )
    index.close()
    w = Worker(c)
    make = Make()
    again = indexsource.source_for(_selected(w), (Fields, make))
    assert again is not None
    assert [f.subject for f in again.fields([3, 4, 5])] == [
        "re: topic 0",
        "re: topic 1",
        "re: topic 2",
    ]
    assert sorted(make.calls) == [3, 4, 5]


class SameWorker(Client):
    """A second session of the same worker: the same services, so the same folder state."""

    def __init__(self, first: Client) -> None:
        self.store = first.store
        self.session = ImapSession(Connection("imap", "127.0.0.1"), first.session.services)
        self.closed = False
        self.greeting = self._text(self.session.greeting())


def test_decoded_records_serve_every_session_of_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message's fields never change under one UIDVALIDITY: once decoded, a SORT in another
    session of this worker takes them from memory, decoding no record again."""
    c = _client(tmp_path)
    first = indexsource.source_for(_selected(c), (Fields, Make()))
    assert first is not None
    got = first.fields([3, 4, 5])
    second = SameWorker(c)
    view = _selected(second)
    assert view.state is c.session.view.state  # one folder state for both sessions

    def decode(self: object, uid: int, data: bytes) -> None:
        raise AssertionError(f"record {uid} decoded again")

    monkeypatch.setattr(indexsource._Codec, "decode", decode)
    make = Make()
    again = indexsource.source_for(view, (Fields, make))
    assert again is not None and again is not first
    assert again.fields([5, 4, 3]) == [got[2], got[1], got[0]]
    assert make.calls == []
    # A preview remembered through one session (kept at its next ask) is what the other gets.
    again.remember_previews({4: "body 1"})
    assert [f.preview for f in again.fields([4])] == ["body 1"]
    assert [f.preview for f in first.fields([4])] == ["body 1"]


def test_decoded_records_are_not_kept_across_uidvalidity(tmp_path: Path) -> None:
    """Under a new UIDVALIDITY a UID may name another message: nothing decoded before is
    used."""
    c = _client(tmp_path)
    view = _selected(c)
    records: dict[int, Any] = indexsource._keys_for(view.state, 1, 3, 4).records
    records[3] = "a record of the old UIDVALIDITY"
    assert (
        indexsource._keys_for(view.state, 1, 3, 4).records[3] == "a record of the old UIDVALIDITY"
    )
    assert 3 not in indexsource._keys_for(view.state, 2, 3, 4).records
    many: dict[int, Any] = indexsource._keys_for(view.state, 2, 1, 4).records
    many.update({u: "x" for u in range(10)})
    assert indexsource._keys_for(view.state, 2, 3, 4).records == {}  # expunged outnumbered: pruned


def test_sort_after_an_expunge_reads_the_order_without_the_expunged(tmp_path: Path) -> None:
    """A SORT after an EXPUNGE: the expunged message's record leaves the folder's keys (so a
    SORT of every message reads the kept order again), and the sequence numbers are the
    view's new ones."""
    c = _client(tmp_path)
    view = _selected(c)
    first = [line for line in c.send("a SORT (SUBJECT) UTF-8 ALL\r\n") if line.startswith("* SORT")]
    assert first == ["* SORT 1 2 3 4 5"]  # "", "", then "topic 0" to "topic 2"
    c.send("b UID STORE 3 +FLAGS.SILENT (\\Deleted)\r\n")
    c.send("c EXPUNGE\r\n")
    keys = indexsource._keys_for(view.state, view.box.uidvalidity, len(view), 4)
    assert 3 in keys.records
    lines = c.send("d SORT (SUBJECT) UTF-8 ALL\r\n")
    assert "* SORT 1 2 3 4" in lines
    assert 3 not in keys.records
    assert keys.sort([1, 2, 4, 5], [("SUBJECT", False)]) == ([1, 2, 4, 5], [1, 2, 3, 4])
    assert "* SORT 4 5" in c.send("e UID SORT (SUBJECT) UTF-8 FROM example.org\r\n")  # filtered


def test_attack_preview_per_message_makes_no_pass_over_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FETCH 1:* PREVIEW asks the source one message at a time: looking for expunged records
    there (a pass over every record) would make it quadratic in the folder. Only SORT and
    THREAD (`keys`), which pass over the folder anyway, look."""
    c = _client(tmp_path)
    view = _selected(c)
    source = indexsource.source_for(view)
    assert source is not None
    source.fields([3, 4, 5])
    keys = indexsource._keys_for(view.state, view.box.uidvalidity, len(view), 4)
    for uid in range(10**6, 10**6 + 3):  # records of messages newer than the view knows
        keys.records[uid] = keys.records[3]
    passes: list[int] = []
    monkeypatch.setattr(type(keys), "forget", lambda self, uids: passes.append(len(uids)))
    for uid in (3, 4, 5) * 10:
        source.fields([uid])
    assert passes == []
    source.keys([3, 4, 5])
    assert passes == [0]  # looked once: nothing below the view's newest UID to forget
