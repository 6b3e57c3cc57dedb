"""Adding messages (mailstore/adding.py): the uidlist lock a long-lived deliverer keeps."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mailstore import adding
from mailstore.errors import TemporaryFailure
from mailstore.filenames import hostname
from mailstore.lock import DotLock
from mailstore.mailbox import Mailbox
from mailstore.store import MailStore
from mailstore.uidlist import UidList

MSG = b"From: a@example.test\r\nSubject: kept\r\n\r\nbody\r\n"


@pytest.fixture
def inbox(tmp_path: Path) -> Mailbox:
    return MailStore(str(tmp_path / "mail")).mailbox("INBOX")


def kept_files(box: Mailbox) -> list[str]:
    return [n for n in os.listdir(os.path.join(box.path, "tmp")) if n.endswith(".uidlist-lock")]


def test_kept_lock_is_a_dot_lock_made_by_link_and_frees_no_inode(
    inbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What others see while the lock is held is a dot-lock like any (the name, `<pid>:<host>`,
    a fresh mtime), and it is the same inode each time: no inode is made and freed per
    message (see `adding._UidlistLock` for why that matters)."""
    lock_path = os.path.join(inbox.path, "dovecot-uidlist.lock")
    seen: list[tuple[int, bytes, float, int]] = []
    real = UidList.append_after

    def spy(self: UidList, entries: list[tuple[str, str]], hint: tuple[int, int]) -> object:
        st = os.stat(lock_path)
        with open(lock_path, "rb") as f:
            seen.append((st.st_ino, f.read(), st.st_mtime, st.st_nlink))
        return real(self, entries, hint)

    monkeypatch.setattr(UidList, "append_after", spy)
    inbox.append(MSG)  # a uidlist to append to (the first append writes it whole)
    for n in range(3):
        before = time.time()
        assert adding.append(inbox, MSG, keep_lock=True) == n + 2
        assert seen[-1][2] >= before - 1  # the mtime of a lock just taken
    [kept] = kept_files(inbox)
    stash = os.stat(os.path.join(inbox.path, "tmp", kept))
    assert {s[0] for s in seen} == {stash.st_ino}
    assert {s[1] for s in seen} == {f"{os.getpid()}:{hostname()}".encode()}
    assert {s[3] for s in seen} == {2}  # the kept file and the lock: one inode, two names
    assert not os.path.exists(lock_path) and stash.st_nlink == 1


def test_kept_lock_waits_for_another_holder(
    inbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """link() fails where the lock exists, as O_EXCL does: the message waits for the holder
    (another process's dot-lock) and gets its UID after it."""
    inbox.append(MSG)
    uidlist = os.path.join(inbox.path, "dovecot-uidlist")
    tried = threading.Event()
    real_link = os.link

    def link(*args: object, **kwargs: object) -> None:
        try:
            real_link(*args, **kwargs)  # type: ignore[arg-type]
        except FileExistsError:
            tried.set()
            raise

    monkeypatch.setattr(os, "link", link)
    held = DotLock(uidlist)
    held.acquire()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(adding.append(inbox, MSG, keep_lock=True))
    )
    try:
        worker.start()
        assert tried.wait(30)
        assert result == [] and len(records(uidlist)) == 1  # still waiting
    finally:
        held.release()
    worker.join(30)
    assert result == [2] and len(records(uidlist)) == 2


def records(path: str) -> dict[str, tuple[int, str, str]]:
    ul = UidList(path)
    ul.refresh()
    return ul.records


def test_kept_lock_file_removed_meanwhile_is_made_again(inbox: Mailbox) -> None:
    """A tmp/ clean-up (Dovecot's, ours: 36 hours untouched) may remove the kept file."""
    inbox.append(MSG)
    assert adding.append(inbox, MSG, keep_lock=True) == 2
    [kept] = kept_files(inbox)
    os.unlink(os.path.join(inbox.path, "tmp", kept))
    assert adding.append(inbox, MSG, keep_lock=True) == 3
    assert len(kept_files(inbox)) == 1
    assert len(records(os.path.join(inbox.path, "dovecot-uidlist"))) == 3


def test_kept_lock_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adding, "_stashes", {})
    monkeypatch.setattr(adding, "STASHES_MAX", 2)
    boxes = [MailStore(str(tmp_path / f"u{i}")).mailbox("INBOX") for i in range(4)]
    for box in boxes:
        box.append(MSG)
        adding.append(box, MSG, keep_lock=True)
    assert [len(kept_files(box)) for box in boxes] == [0, 0, 1, 1]  # the oldest removed


def test_attack_kept_lock_file_is_never_made_through_a_symlinked_tmp(
    inbox: Mailbox, tmp_path: Path
) -> None:
    """A user who replaces tmp/ with a symlink to another user's tmp/ (after the message was
    written) gets the lock refused, not a file of ours made in the other directory."""
    other = tmp_path / "other-tmp"
    other.mkdir()
    tmp = Path(inbox.path) / "tmp"
    os.rmdir(tmp)
    tmp.symlink_to(other)
    lock = adding._UidlistLock(inbox.path, os.path.join(inbox.path, "dovecot-uidlist"))
    with pytest.raises(TemporaryFailure):
        lock.acquire()
    assert os.listdir(other) == []
    assert not os.path.exists(lock.lock_path)


def test_a_plain_append_makes_its_lock_with_o_excl(inbox: Mailbox) -> None:
    """`mda` (one delivery per process) and IMAP keep nothing in tmp/."""
    inbox.append(MSG)
    inbox.append(MSG)
    assert os.listdir(os.path.join(inbox.path, "tmp")) == []
