"""Syncing by inotify events (mailstore/dirwatch.py): what other processes do is seen without
listing a directory, and every way events can be lost falls back to a listing that is right."""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore import dirwatch, mailbox
from mailstore.listing import Listings
from mailstore.mailbox import Mailbox
from mailstore.store import MailStore

MSG = b"Subject: hi\n\nbody\n"


@pytest.fixture
def watch() -> Iterator[dirwatch.DirWatch]:
    shared = dirwatch.enable()
    if shared is None:
        pytest.fail("inotify is not available on this machine")
    yield shared
    dirwatch.disable()


@pytest.fixture
def root(tmp_path: Path, watch: dirwatch.DirWatch) -> str:
    path = str(tmp_path / "mail")
    MailStore(path).mailbox("INBOX").sync()
    return path


def reader(root: str) -> Mailbox:
    box = MailStore(root).mailbox("INBOX")
    box.sync()
    return box


def writer(root: str) -> Mailbox:
    """Another process's view: syncs by mtime, as mda does."""
    saved = mailbox.dir_watch
    mailbox.dir_watch = None  # what a mailbox reads when it is made
    try:
        box = MailStore(root).mailbox("INBOX")
        box.sync()
    finally:
        mailbox.dir_watch = saved
    return box


def no_listing(monkeypatch: pytest.MonkeyPatch, box: Mailbox) -> None:
    monkeypatch.setattr(box._listings, "list_names", lambda *_: pytest.fail("listed a directory"))


def test_deliveries_flag_changes_and_expunges_elsewhere_are_seen_without_listing(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = reader(root)
    other = writer(root)
    no_listing(monkeypatch, box)
    uids = [other.append(MSG) for _ in range(5)]
    uids.append(other.append(MSG, flags=["\\Seen"]))
    assert box.sync().added == uids
    assert box.get(uids[0]).recent and not box.get(uids[-1]).recent

    other.sync()
    other.store_flags(uids[:2], "add", ["\\Flagged", "$Label1"])
    result = box.sync()
    assert result.changed == uids[:2] and not result.added
    assert box.all_flags(box.get(uids[0])) == ["\\Flagged", "$Label1"]

    other.expunge(uids[2:4])
    assert box.sync().removed == uids[2:4]
    assert box.uids() == uids[:2] + uids[4:]
    assert not box.sync()


def test_our_own_changes_are_not_reported_back(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    box = reader(root)
    no_listing(monkeypatch, box)
    uid = box.append(MSG)
    assert box.sync().added == [uid]
    box.mark_seen_by_reader([uid])
    box.store_flags([uid], "add", ["\\Seen"])
    assert not box.sync()
    assert box.get(uid).subdir == "cur" and box.get(uid).letters == "S"


def test_lost_events_fall_back_to_a_listing(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    box = reader(root)
    other = writer(root)
    monkeypatch.setattr(dirwatch, "QUEUE_MAX", 3)
    listed: list[str] = []
    real_list = Listings.list_names

    def counting(self: Listings, path: str) -> dict[str, str]:
        listed.append(os.path.basename(path))
        return real_list(self, path)

    monkeypatch.setattr(box._listings, "list_names", lambda path: counting(box._listings, path))
    uids = [other.append(MSG) for _ in range(6)]  # more events than a queue keeps
    assert box.sync().added == uids
    assert listed == ["new"]
    listed.clear()
    uid = other.append(MSG)  # watched again: events once more
    assert box.sync().added == [uid]
    assert listed == []


def test_a_replaced_directory_is_listed_and_watched_again(root: str) -> None:
    box = reader(root)
    other = writer(root)
    first = other.append(MSG, flags=["\\Seen"])
    assert box.sync().added == [first]
    cur = os.path.join(root, "cur")
    shutil.rmtree(cur)
    os.mkdir(cur)
    assert box.sync().removed == [first]
    other.sync()
    second = other.append(MSG, flags=["\\Seen"])
    assert box.sync().added == [second]
    third = other.append(MSG, flags=["\\Seen"])
    assert box.sync().added == [third]


def test_two_files_with_one_base_are_left_to_a_listing(root: str) -> None:
    box = reader(root)
    other = writer(root)
    uid = other.append(MSG, flags=["\\Seen"])
    assert box.sync().added == [uid]
    name = box.get(uid).name
    base = name.partition(":")[0]
    # A second name for the base (a tool that links before it unlinks): the listing keeps the
    # smaller name, as a sync without events would.
    os.link(os.path.join(root, "cur", name), os.path.join(root, "cur", base + ":2,FS"))
    box.sync()
    assert box.get(uid).name == min(name, base + ":2,FS")


def test_a_forked_child_does_not_take_the_parents_events(root: str) -> None:
    box = reader(root)
    other = writer(root)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # The inherited mailbox and a new one both sync by mtime in the child.
            box.sync()
            child = MailStore(root).mailbox("INBOX")
            child.sync()
            other.append(MSG)
            box.sync()
            child.sync()
            code = 0 if len(box.uids()) == len(child.uids()) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(box.sync().added) == 1


def test_a_mailbox_that_is_gone_releases_its_watches(root: str, watch: dirwatch.DirWatch) -> None:
    box = reader(root)
    assert watch._states
    del box
    gc.collect()
    watch.drain()
    assert not watch._states


def test_out_of_watches_the_mailbox_syncs_by_mtime(
    root: str, watch: dirwatch.DirWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dirwatch.DirWatch, "watch", lambda *_: (False, None))  # ENOSPC
    box = reader(root)
    registered = [state for states in watch._states.values() for state in states]
    assert box._listings.watch is None
    assert not any(s in registered for s in box._listings.dirs.values())
    other = writer(root)
    uid = other.append(MSG, flags=["\\Seen"])
    assert box.sync().added == [uid]


def test_a_second_session_copies_the_listing_the_process_keeps(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = reader(root)
    other = writer(root)
    uids = [other.append(MSG) for _ in range(3)] + [other.append(MSG, flags=["\\Seen"])]
    first.sync()
    other.sync()
    other.store_flags(uids[:1], "add", ["\\Flagged"])
    other.expunge(uids[1:2])
    later = other.append(MSG, flags=["\\Draft"])
    # Not synced by `first` yet: the process's copy follows the events all the same.
    monkeypatch.setattr(Listings, "list_names", lambda *_: pytest.fail("listed a directory"))
    second = reader(root)
    assert second.uids() == [uids[0], uids[2], uids[3], later]
    first.sync()
    assert first.uids() == second.uids()
    for uid in second.uids():
        assert first.all_flags(first.get(uid)) == second.all_flags(second.get(uid))
        assert first.get(uid).name == second.get(uid).name


def test_a_lost_copy_is_made_again_by_the_next_listing(
    root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = reader(root)
    other = writer(root)
    monkeypatch.setattr(dirwatch, "QUEUE_MAX", 3)
    uids = [other.append(MSG) for _ in range(6)]  # more events than a queue keeps
    listed: list[str] = []
    real_list = Listings.list_names

    def counting(self: Listings, path: str) -> dict[str, str]:
        listed.append(os.path.basename(path))
        return real_list(self, path)

    monkeypatch.setattr(Listings, "list_names", counting)
    assert first.sync().added == uids  # new/ listed again, and the process's copy made anew
    assert listed == ["new"]
    second = reader(root)
    third = reader(root)
    assert second.uids() == third.uids() == uids and listed == ["new"]
