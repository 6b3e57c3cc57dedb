"""Several real processes on one Maildir, and deliveries killed with SIGKILL at random points."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from mailstore.mailbox import Mailbox
from mailstore.store import MailStore
from mailstore.uidlist import UidList

pytestmark = pytest.mark.usefixtures("sync_mode")


def message(tag: str) -> bytes:
    body = (f"line of {tag}\n" * 40).encode()
    return f"Message-ID: <{tag}@test>\nSubject: {tag}\n\n".encode() + body


def tag_of(data: bytes) -> str:
    first = data.split(b"\n", 1)[0]
    return first.decode()[len("Message-ID: <") : -len("@test>")]


def run_children(jobs: list[tuple[str, int]], root: str) -> None:
    """Fork one process per job and wait; a child exits non-zero on any exception."""
    pids = []
    for role, seed in jobs:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child(role, seed, root)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def child(role: str, seed: int, root: str) -> None:
    rng = random.Random(seed)
    store = MailStore(root)
    if role == "deliver":
        for i in range(40):
            # A fresh Mailbox each time, as each mda process has: exercises the tail-append path.
            Mailbox(store.root, "INBOX", store.new_uidvalidity).append(message(f"d{seed}-{i}"))
    elif role == "server":
        box = store.mailbox("INBOX")
        for i in range(30):
            box.append(message(f"s{seed}-{i}"), flags=["\\Seen"])
    elif role == "mangler":
        box = store.mailbox("INBOX")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            box.sync()
            uids = box.uids()
            if uids:
                pick = rng.sample(uids, min(3, len(uids)))
                box.store_flags(pick, rng.choice(["add", "remove", "set"]), ["\\Flagged", "$X"])
                if rng.random() < 0.3:
                    # Expunge only messages tagged for it, so the survivors are known.
                    victims = [
                        u for u in pick if box.read_message_safe(u).startswith(b"Message-ID: <d0-")
                    ]
                    box.expunge(victims)
            time.sleep(0.005)


def _read_safe(self: Mailbox, uid: int) -> bytes:
    try:
        return self.read_message(uid)
    except Exception:
        return b""


Mailbox.read_message_safe = _read_safe  # type: ignore[attr-defined]


def test_concurrent_writers_lose_nothing_and_never_reuse_uids(tmp_path: Path) -> None:
    root = str(tmp_path / "mail")
    MailStore(root).mailbox("INBOX").sync()
    jobs = [("deliver", n) for n in range(4)] + [("server", 10), ("server", 11), ("mangler", 99)]
    run_children(jobs, root)

    box = MailStore(root).mailbox("INBOX")
    seen: dict[str, int] = {}
    for uid in box.uids():
        tag = tag_of(box.read_message(uid))
        assert tag not in seen, f"{tag} stored twice"
        seen[tag] = uid
    expected = {f"d{s}-{i}" for s in range(4) for i in range(40)}
    expected |= {f"s{s}-{i}" for s in (10, 11) for i in range(30)}
    expunged = expected - set(seen)
    assert all(t.startswith("d0-") for t in expunged), "only d0 messages may be expunged"
    assert set(seen) <= expected

    ul = UidList(os.path.join(root, "dovecot-uidlist"))
    ul.refresh()
    uids = [r[0] for r in ul.records.values()]
    assert len(uids) == len(set(uids)), "a UID was given twice"
    # Every file on disk has the UID the uidlist gives its base, and UIDs rise with the file.
    lines = Path(root, "dovecot-uidlist").read_text().splitlines()[1:]
    numbers = [int(line.split()[0]) for line in lines]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))
    assert os.listdir(os.path.join(root, "tmp")) == []


def test_sessions_see_uids_in_ascending_order_while_others_deliver(tmp_path: Path) -> None:
    root = str(tmp_path / "mail")
    box = MailStore(root).mailbox("INBOX")
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(150):
                Mailbox(root, "INBOX", lambda: 1).append(message(f"x{i}"))
        finally:
            os._exit(0)
    shown: list[int] = []
    while True:
        done = os.waitpid(pid, os.WNOHANG)[0] != 0
        result = box.sync()
        # What a session would announce as EXISTS: new UIDs, always above what it showed.
        if shown and result.added:
            assert min(result.added) > max(shown)
        shown.extend(result.added)
        if done:
            break
    box.sync()
    assert sorted(shown) == box.uids() and len(shown) == 150


def test_kill_during_delivery_leaves_whole_messages_or_nothing(tmp_path: Path) -> None:
    """SIGKILL at random points of delivery, a few hundred times."""
    root = str(tmp_path / "mail")
    MailStore(root).mailbox("INBOX").sync()
    rng = random.Random(1234)
    acked: set[str] = set()
    for round_no in range(300):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            try:
                for i in range(1000):
                    tag = f"r{round_no}-{i}"
                    Mailbox(root, "INBOX", lambda: 1).append(message(tag))
                    os.write(write_fd, f"{tag}\n".encode())  # acknowledged only after append
            finally:
                os._exit(0)
        os.close(write_fd)
        time.sleep(rng.uniform(0, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as r:
            acked.update(line.decode() for line in r.read().split(b"\n") if line)

    box = MailStore(root).mailbox("INBOX")
    tags = []
    for uid in box.uids():
        data = box.read_message(uid)
        tag = tag_of(data)
        assert data == message(tag), f"UID {uid} is a partial message"
        tags.append(tag)
    assert len(tags) == len(set(tags)), "a message is present twice"
    assert acked <= set(tags), "an acknowledged delivery is missing"
    print(f"{len(acked)} acknowledged, {len(tags)} stored, {len(set(tags) - acked)} unacknowledged")
    assert len(acked) > 100  # the kills did land at many different points
    # Every visible file has a UID, and a new delivery still works.
    assert box.append(message("after")) > max(box.uids())
    visible = os.listdir(os.path.join(root, "new")) + os.listdir(os.path.join(root, "cur"))
    assert len(visible) == len(tags) + 1
