"""The shared folder state (mailstore/folderstate.py) and the modseq rules of the folder index
(mailstore/folderindex.py), on real Maildirs: one state per folder per process, every view
told every change once, the log bounded, and HIGHESTMODSEQ never above a change not applied."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from mailstore import folderstate
from mailstore.folderindex import NAME
from mailstore.folderstate import FolderState, SharedFolders
from mailstore.mailbox import Mailbox, SyncResult
from mailstore.store import MailStore
from mra.imap.selected import SelectedView

MSG = b"Subject: x\r\n\r\nbody\r\n"


def server_store(root: Path, folders: SharedFolders | None = None) -> MailStore:
    return MailStore(str(root), folders=folders or SharedFolders(), index_root="")


def state_of(box: Mailbox) -> FolderState:
    assert isinstance(box.hooks, FolderState)
    return box.hooks


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Five messages, in cur/ (not \\Recent: the transcripts stay short)."""
    inbox = MailStore(str(tmp_path / "m")).mailbox("INBOX")
    for _ in range(5):
        inbox.append(MSG)
    inbox.sync()
    inbox.mark_seen_by_reader(inbox.uids())
    return tmp_path / "m"


def test_sessions_of_a_process_share_one_state_and_one_uid_list(root: Path) -> None:
    folders = SharedFolders()
    views = [SelectedView(server_store(root, folders).mailbox("INBOX"), False) for _ in range(50)]
    first = views[0]
    assert all(v.box is first.box and v.state is first.state for v in views)
    assert all(v.uids is first.uids for v in views)  # one list, not fifty
    first.box.append(MSG)
    assert first.updates(expunges=True) == [b"* 6 EXISTS\r\n", b"* 1 RECENT\r\n"]
    for v in views[1:]:  # \\Recent went to the first to look (RFC 3501 2.3.2)
        assert v.updates(expunges=True) == [b"* 6 EXISTS\r\n", b"* 0 RECENT\r\n"]
    assert all(v.uids is views[0].uids for v in views)  # shared again once they agree


def test_every_view_is_told_each_change_once_and_not_its_own(root: Path) -> None:
    folders = SharedFolders()
    a = SelectedView(server_store(root, folders).mailbox("INBOX"), False)
    b = SelectedView(server_store(root, folders).mailbox("INBOX"), False)
    a.box.store_flags([2], "add", ["\\Flagged"], a.tracker)
    assert a.updates(expunges=True) == []
    assert b.updates(expunges=True) == [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"]
    assert b.updates(expunges=True) == []
    # A change made outside (another process, mda) is found by one sync, told to both.
    MailStore(str(root)).mailbox("INBOX").store_flags([3], "add", ["\\Seen"])
    assert a.updates(expunges=True) == [b"* 3 FETCH (FLAGS (\\Seen))\r\n"]
    assert b.updates(expunges=True) == [b"* 3 FETCH (FLAGS (\\Seen))\r\n"]


def test_a_view_far_behind_the_log_catches_up_by_comparing(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(folderstate, "LOG_MAX", 3)
    folders = SharedFolders()
    idle = SelectedView(server_store(root, folders).mailbox("INBOX"), False)
    busy = SelectedView(server_store(root, folders).mailbox("INBOX"), False)
    busy.box.store_flags([1], "add", ["\\Seen"])
    for uid in (2, 3, 4):
        busy.box.store_flags([uid], "add", ["\\Flagged"], busy.tracker)
        busy.updates(expunges=True)
    busy.box.expunge([5], busy.tracker)
    busy.box.append(MSG)
    busy.updates(expunges=True)
    assert len(idle.state._log) <= 3  # the log did not wait for the idle view
    lines = idle.updates(expunges=True)
    assert lines[0] == b"* 5 EXPUNGE\r\n" and b"* 5 EXISTS\r\n" in lines
    fetched = sorted(line for line in lines if b"FETCH" in line)
    assert fetched == [
        b"* 1 FETCH (FLAGS (\\Seen))\r\n",
        b"* 2 FETCH (FLAGS (\\Flagged))\r\n",
        b"* 3 FETCH (FLAGS (\\Flagged))\r\n",
        b"* 4 FETCH (FLAGS (\\Flagged))\r\n",
    ]
    assert idle.uids == busy.uids == [1, 2, 3, 4, 6]


def test_threads_changing_one_shared_folder(root: Path) -> None:
    """Sessions of one process in the thread pool at once: flag changes, expunges, appends
    and syncs on one Mailbox; every view ends with the folder's UIDs and nothing raised."""
    folders = SharedFolders()
    views = [SelectedView(server_store(root, folders).mailbox("INBOX"), False) for _ in range(4)]
    errors: list[BaseException] = []

    def work(view: SelectedView, n: int) -> None:
        try:
            for i in range(40):
                box = view.box
                uids = box.uids()
                if i % 7 == 0:
                    box.append(MSG, flags=["\\Seen"] if n % 2 else [])
                elif i % 11 == 0 and len(uids) > 3:
                    box.expunge([uids[n % len(uids)]], view.tracker)
                else:
                    box.store_flags(uids[:3], "add" if i % 2 else "remove", [f"$K{n}"])
                view.updates(expunges=True)
                view.state.first_unseen()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(v, n)) for n, v in enumerate(views)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for view in views:
        view.updates(expunges=True)
        assert view.uids == view.box.uids()
    index = views[0].state.index
    assert index is not None
    assert set(index.modseq_of) == set(views[0].box.uids())


def test_registry_keeps_folders_within_its_bounds(tmp_path: Path) -> None:
    folders = SharedFolders(keep_folders=2, keep_messages=1000)
    store = server_store(tmp_path / "m", folders)
    for name in ("A", "B", "C"):
        store.create_folder(name)
    for name in ("A", "B", "C"):
        store.mailbox(name)
    assert list(folders._kept) == [store.path_of("B"), store.path_of("C")]


def test_highestmodseq_waits_for_a_change_not_yet_seen(root: Path) -> None:
    """Another process recorded a change (uid 2 flagged) that this process's listing does not
    show yet: this process's HIGHESTMODSEQ stays below it until it sees the change."""
    box = server_store(root).mailbox("INBOX")
    box.sync()
    state = state_of(box)
    before = state.highest_modseq
    assert before is not None
    theirs = before + 1000
    conn = sqlite3.connect(os.path.join(box.path, NAME))
    conn.execute("UPDATE msg SET modseq = ?, flags = 'F' WHERE uid = 2", (theirs,))
    conn.execute("UPDATE meta SET v = ? WHERE k = 'highest'", (theirs,))
    conn.commit()
    conn.close()
    MailStore(str(root)).mailbox("INBOX").append(MSG)  # something for our sync to record
    box.sync()
    now = state.highest_modseq
    assert now is not None and before < now < theirs
    # The rename reaches the disk (the other process made it before recording it): seen,
    # the recorded modseq is taken, and HIGHESTMODSEQ may pass it.
    MailStore(str(root)).mailbox("INBOX").store_flags([2], "add", ["\\Flagged"])
    box.sync()
    assert state.modseq(2) == theirs
    assert (state.highest_modseq or 0) >= theirs


def test_own_change_recorded_once_across_processes(root: Path) -> None:
    """Two processes (two registries) see one change: one modseq, whoever records it."""
    a = server_store(root).mailbox("INBOX")
    b = server_store(root).mailbox("INBOX")
    a.sync()
    b.sync()
    a.store_flags([4], "add", ["\\Answered"])
    b.sync()
    assert state_of(a).modseq(4) == state_of(b).modseq(4)


def test_a_mailbox_used_alone_gets_a_state_without_index(root: Path) -> None:
    box = MailStore(str(root)).mailbox("INBOX")
    view = SelectedView(box, False)
    assert view.state is folderstate.of(box) and view.state.index is None
    assert not view.modseqs
    result = SyncResult()
    assert not result


def test_first_unseen_follows_every_change(root: Path) -> None:
    """SELECT's UNSEEN is looked for from a mark below which every message is seen, lowered
    by each change: after any series of flag changes, deliveries and expunges, by this process
    or another writer, it is what a walk of the whole folder finds."""
    import random

    rng = random.Random(7)
    box = server_store(root).mailbox("INBOX")
    other = MailStore(str(root)).mailbox("INBOX")  # another writer: found at the next sync
    state = state_of(box)

    def walked() -> int | None:
        box.sync()
        unseen = [u for u in box.uids() if "\\Seen" not in box.all_flags(box.get(u))]
        return unseen[0] if unseen else None

    for _ in range(60):
        writer = rng.choice([box, other])
        writer.sync()
        uids = writer.uids()
        op = rng.randrange(5)
        if op == 0 or not uids:
            writer.append(MSG, flags=rng.choice([[], ["\\Seen"]]))
        elif op == 1:
            writer.store_flags([rng.choice(uids)], "remove", ["\\Seen"])
        elif op == 2:
            writer.store_flags(rng.sample(uids, min(3, len(uids))), "add", ["\\Seen"])
        elif op == 3 and len(uids) > 2:
            writer.expunge([rng.choice(uids)])
        else:
            writer.store_flags(uids, "add", ["\\Seen"])
        box.sync()
        assert state.first_unseen() == walked()


# -- waking many idle views (issue #16: one delivery, 10,000 IDLE sessions) ----------------------


def test_attack_one_delivery_to_many_idle_views_syncs_the_folder_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each woken IDLE session synced the folder itself (stat() calls and an inotify read
    each): inside one_sync() the first sync serves every view; outside it (a command) every
    take syncs again, so a delivery made just before a command is seen by it."""
    folders = SharedFolders()
    views = [SelectedView(server_store(root, folders).mailbox("INBOX"), False) for _ in range(50)]
    box = views[0].box
    syncs: list[int] = []
    real = box.sync

    def counted() -> SyncResult:
        syncs.append(1)
        return real()

    monkeypatch.setattr(box, "sync", counted)
    MailStore(str(root)).mailbox("INBOX").append(MSG)  # another process delivers
    with folderstate.one_sync():
        told = [v.updates(expunges=True) for v in views]
    assert len(syncs) == 1
    assert told[0] == [b"* 6 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert all(t == [b"* 6 EXISTS\r\n", b"* 0 RECENT\r\n"] for t in told[1:])
    MailStore(str(root)).mailbox("INBOX").append(MSG)
    assert views[1].updates(expunges=False) == [b"* 7 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert len(syncs) == 2
    with folderstate.one_sync():  # a new round syncs again
        assert views[2].updates(expunges=True) == [b"* 7 EXISTS\r\n", b"* 0 RECENT\r\n"]
        assert views[3].updates(expunges=True) == [b"* 7 EXISTS\r\n", b"* 0 RECENT\r\n"]
    assert len(syncs) == 3


def test_attack_many_views_taking_one_change_do_not_each_walk_every_tracker(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every take trimmed the log, which finds the slowest of all trackers: N views woken by
    one change walked N trackers each (N squared; 1.3 of 2 CPU seconds of a fan-out to 1,000
    IDLE sessions). Now a trim comes once per as many takes as there are trackers, and the
    log is still emptied once every view took it."""
    folders = SharedFolders()
    views = [SelectedView(server_store(root, folders).mailbox("INBOX"), False) for _ in range(200)]
    state = views[0].state
    trims: list[int] = []
    real = FolderState._trim

    def counted(self: FolderState) -> None:
        trims.append(1)
        real(self)

    monkeypatch.setattr(FolderState, "_trim", counted)
    MailStore(str(root)).mailbox("INBOX").store_flags([2], "add", ["\\Flagged"])
    for v in views:
        assert v.updates(expunges=True) == [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"]
    assert len(trims) <= 2
    assert state._log == []


class _Watched(list[int]):
    """A UID list that notes every copy and comparison made of it."""

    ops: ClassVar[list[str]] = []

    def __add__(self, other: list[int]) -> _Watched:  # type: ignore[override]
        _Watched.ops.append("copy")
        return _Watched(list.__add__(self, other))

    def __eq__(self, other: object) -> bool:
        _Watched.ops.append("compare")
        return list.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def test_attack_new_mail_to_idle_views_of_a_big_folder_copies_no_uid_list(root: Path) -> None:
    """Each view told of new mail copied the folder's UID list to add it, then compared the
    copy with the folder's to share it again: O(messages) per session, 10,000 sessions on a
    100,000-message folder a billion steps. A view that held the folder's list takes the new
    one as it is: the folder's own copy is the only one made."""
    folders = SharedFolders()
    first = SelectedView(server_store(root, folders).mailbox("INBOX"), False)
    box = first.box
    box._sorted = _Watched(box.uids())
    views = [SelectedView(server_store(root, folders).mailbox("INBOX"), False) for _ in range(20)]
    _Watched.ops = []
    MailStore(str(root)).mailbox("INBOX").append(MSG)
    with folderstate.one_sync():
        for v in views:
            assert v.updates(expunges=True)[0] == b"* 6 EXISTS\r\n"
    assert _Watched.ops == ["copy"]  # the folder's, at its sync
    assert all(v.uids is box.uids() and v.uids == [1, 2, 3, 4, 5, 6] for v in views)
    # A view that lost a message it has not been told of keeps its own list meanwhile.
    held = views[0]
    box.expunge([2], views[1].tracker)
    box.append(MSG)
    told = [b"* 2 EXPUNGE\r\n", b"* 6 EXISTS\r\n", b"* 1 RECENT\r\n"]
    assert views[1].updates(expunges=True) == told
    assert held.updates(expunges=False) == [b"* 7 EXISTS\r\n", b"* 1 RECENT\r\n"]  # UID 6
    assert held.uids == [1, 2, 3, 4, 5, 6, 7] and held.uids is not box.uids()
    assert held.updates(expunges=True) == [b"* 2 EXPUNGE\r\n"]
    assert held.uids == [1, 3, 4, 5, 6, 7]
