"""The attacks of issue #17 on the store itself, on real files (SECURITY.md, headings 4 and 6).

Each test plants what an attacker with write access to their own Maildir can plant (symlinks,
foreign hard links, unreadable files, a doctored `dovecot-uidlist`) and checks that nothing
outside the user's tree is listed, read or written, and that one bad file costs only itself.
The victim is another user's Maildir next to the attacker's, as in a `vmail` setup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mailstore.errors import MessageUnreadable, NotFound, UnsafePath
from mailstore.mailbox import Mailbox
from mailstore.store import MailStore
from mailstore.uidlist import MAX_UID, UidList, pop3_uidl

pytestmark = pytest.mark.usefixtures("sync_mode")

MINE = b"From: alice@example.test\nSubject: mine\n\nmine\n"
SECRET = b"From: bob@example.test\nSubject: bob's secret\n\nthe secret\n"
ROOT = os.geteuid() == 0


@pytest.fixture
def alice(tmp_path: Path) -> MailStore:
    return MailStore(str(tmp_path / "alice"))


@pytest.fixture
def bob(tmp_path: Path) -> MailStore:
    """The victim: one message in new/, one in cur/."""
    store = MailStore(str(tmp_path / "bob"))
    box = store.mailbox("INBOX")
    box.append(SECRET)
    box.append(SECRET, flags=["\\Seen"])
    return store


def tree(path: str) -> dict[str, list[str]]:
    return {sub: sorted(os.listdir(os.path.join(path, sub))) for sub in ("cur", "new", "tmp")}


def swap_for_symlink(path: str, target: str) -> None:
    """Replace a directory by a symlink, the way an attacker would (the old one kept aside)."""
    os.rename(path, path + ".old")
    os.symlink(target, path)


def bodies(box: Mailbox) -> list[bytes]:
    box.sync()
    return [box.read_message(u) for u in box.uids()]


# -- 1. symlinks below the mail root are never followed ---------------------------------------


@pytest.mark.parametrize("sub", ["new", "cur"])
def test_attack_symlinked_new_or_cur_lists_and_reads_nothing_of_its_target(
    alice: MailStore, bob: MailStore, sub: str
) -> None:
    victim = tree(bob.root)
    inbox = alice.mailbox("INBOX")
    inbox.append(MINE, flags=["\\Seen"] if sub == "new" else [])  # in the other directory
    os.rmdir(os.path.join(alice.root, sub))
    os.symlink(os.path.join(bob.root, sub), os.path.join(alice.root, sub))
    assert bodies(inbox) == [MINE]
    assert bodies(MailStore(alice.root).mailbox("INBOX")) == [MINE]  # a cold open too
    # Nothing is written or moved through it either: a delivery to that directory fails.
    with pytest.raises(UnsafePath):
        inbox.append(MINE, flags=["\\Seen"] if sub == "cur" else [])
    if sub == "cur":
        # \Seen on a message of new/ would move it into the symlinked cur/.
        inbox.append(MINE)
        inbox.sync()
        with pytest.raises(UnsafePath):
            inbox.store_flags(inbox.uids(), "add", ["\\Seen"])
    assert tree(bob.root) == victim


def test_attack_symlinked_tmp_gets_no_file(alice: MailStore, bob: MailStore) -> None:
    victim = tree(bob.root)
    os.rmdir(os.path.join(alice.root, "tmp"))
    os.symlink(os.path.join(bob.root, "tmp"), os.path.join(alice.root, "tmp"))
    with pytest.raises(UnsafePath):
        MailStore(alice.root).mailbox("INBOX").append(MINE)
    assert tree(bob.root) == victim


def test_attack_directory_swapped_for_a_symlink_after_the_open(
    alice: MailStore, bob: MailStore
) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(MINE)
    assert bodies(inbox) == [MINE]
    swap_for_symlink(os.path.join(alice.root, "new"), os.path.join(bob.root, "new"))
    result = inbox.sync()
    assert result.removed == [1] and inbox.uids() == []  # the swapped-in one shows nothing
    with pytest.raises(NotFound):
        inbox.read_message(1)


def test_attack_message_file_swapped_for_a_symlink(alice: MailStore, bob: MailStore) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(MINE)
    inbox.append(MINE)
    inbox.sync()
    first = inbox.get(1)
    path = os.path.join(inbox.path, first.subdir, first.name)
    bob_box = bob.mailbox("INBOX")
    bob_box.sync()
    target = bob_box.get(bob_box.uids()[0])
    os.unlink(path)
    os.symlink(os.path.join(bob_box.path, target.subdir, target.name), path)
    with pytest.raises(MessageUnreadable) as caught:
        inbox.read_message(1)
    assert caught.value.uid == 1 and caught.value.kind == "permission"
    with pytest.raises(MessageUnreadable):
        inbox.open_message(1)
    assert inbox.read_message(2) == MINE  # the rest is served


def test_attack_symlinked_folder_directory(alice: MailStore, bob: MailStore) -> None:
    alice.create_folder("Work")
    work = alice.mailbox("Work")
    work.append(MINE)
    assert bodies(work) == [MINE]
    swap_for_symlink(work.path, bob.root)  # `.Work -> bob's Maildir`
    with pytest.raises(NotFound):
        work.sync()
    with pytest.raises(NotFound):
        MailStore(alice.root).mailbox("Work")
    assert "Work" not in alice.list_folders()


def test_attack_symlinks_are_not_counted_in_the_quota(alice: MailStore, bob: MailStore) -> None:
    """The quota's recount reads listings too: a symlinked folder or new/ adds nothing."""
    from mailstore.quota import MaildirQuota, QuotaLimit

    alice.mailbox("INBOX").append(MINE, flags=["\\Seen"])
    os.symlink(bob.root, os.path.join(alice.root, ".Stolen"))
    os.rmdir(os.path.join(alice.root, "new"))
    os.symlink(os.path.join(bob.root, "new"), os.path.join(alice.root, "new"))
    quota = MaildirQuota(alice.root, QuotaLimit(1_000_000, None))
    assert quota.recalculate() == (len(MINE), 1)


# -- 3. UIDs run out: a new UIDVALIDITY and the folder renumbered ------------------------------


def exhausted_uidlist(box: Mailbox, records: int = 2) -> int:
    """Rewrite the folder's uidlist so that its last UIDs are just below 2^32, as a damaged or
    hostile tool would leave it. Returns the old UIDVALIDITY."""
    box.sync()
    old = box.uidvalidity
    first = MAX_UID - len(box) + 1
    lines = [f"3 V{old} N{MAX_UID + 1} G{'0' * 32}\n"]
    for i, msg in enumerate(box.messages()):
        lines.append(f"{first + i} :{msg.base}\n")
    path = Path(box.path, "dovecot-uidlist")
    Path(f"{path}.new").write_text("".join(lines))
    os.rename(f"{path}.new", path)  # replaced, as every uidlist writer does
    return old


def test_attack_uid_space_exhausted_starts_a_new_uidvalidity(alice: MailStore) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(b"Subject: 1\n\none\n")
    inbox.append(b"Subject: 2\n\ntwo\n")
    old = exhausted_uidlist(inbox)
    viewer = MailStore(alice.root).mailbox("INBOX")  # another session with the folder open
    assert viewer.uids() == [MAX_UID - 1, MAX_UID] and viewer.next_uid == MAX_UID + 1
    old_uidls = [pop3_uidl(u, old) for u in viewer.uids()]

    uid = inbox.append(b"Subject: 3\n\nthree\n")
    assert uid == 3 and inbox.uidvalidity != old  # APPENDUID is of the new numbering
    assert inbox.uids() == [1, 2, 3] and inbox.next_uid == 4
    assert [inbox.read_message(u).split(b"\n")[0] for u in inbox.uids()] == [
        b"Subject: 1",
        b"Subject: 2",
        b"Subject: 3",
    ]
    # The other session is told: its view is reset, every old UID removed.
    result = viewer.sync()
    assert result.uidvalidity_changed and result.removed == [MAX_UID - 1, MAX_UID]
    assert viewer.uids() == [1, 2, 3] and viewer.uidvalidity == inbox.uidvalidity
    # POP3 clients see the same UIDLs as before (kept as `P` fields).
    assert [viewer.record_field(viewer.get(u), "P") for u in (1, 2)] == old_uidls
    ul = UidList(os.path.join(inbox.path, "dovecot-uidlist"))
    ul.refresh()
    assert ul.max_uid == 3 and ul.next_uid == 4 and ul.uidvalidity == inbox.uidvalidity


def test_attack_uid_space_exhausted_on_delivery_path(alice: MailStore) -> None:
    """mda's path: a fresh Mailbox appending without a sync (UidList.append_after)."""
    inbox = alice.mailbox("INBOX")
    inbox.append(b"Subject: 1\n\none\n")
    old = exhausted_uidlist(inbox)
    uid = Mailbox(alice.root, "INBOX", alice.new_uidvalidity).append(b"Subject: 2\n\ntwo\n")
    assert uid == 2
    fresh = MailStore(alice.root).mailbox("INBOX")
    assert fresh.uids() == [1, 2] and fresh.uidvalidity != old


def test_attack_uid_space_exhausted_by_a_file_without_uid(alice: MailStore) -> None:
    """A file delivered by another program (no UID yet) is what runs out: the sync renumbers."""
    inbox = alice.mailbox("INBOX")
    inbox.append(b"Subject: 1\n\none\n")
    old = exhausted_uidlist(inbox, 1)
    Path(inbox.path, "new", "1700000000.M1P1.elsewhere").write_bytes(b"Subject: 2\n\ntwo\n")
    fresh = MailStore(alice.root).mailbox("INBOX")
    assert fresh.uids() == [1, 2] and fresh.uidvalidity != old
    assert fresh.read_message(2) == b"Subject: 2\n\ntwo\n"


def test_attack_uid_above_the_limit_in_the_uidlist_is_not_used(alice: MailStore) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(b"Subject: 1\n\none\n")
    inbox.sync()
    base = inbox.get(1).base
    uv = inbox.uidvalidity
    Path(inbox.path, "dovecot-uidlist").write_text(f"3 V{uv} N5\n{2**32 + 1} :{base}\n")
    fresh = MailStore(alice.root).mailbox("INBOX")
    assert all(0 < u <= MAX_UID for u in fresh.uids()) and len(fresh) == 1


# -- 4. one broken message costs only itself ---------------------------------------------------


@pytest.mark.parametrize("listed", [True, False])
def test_attack_twin_in_new_does_not_bring_an_expunged_message_back(
    alice: MailStore, listed: bool
) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(MINE, flags=["\\Seen"])
    inbox.append(MINE)
    inbox.sync()
    msg = inbox.get(1)
    Path(inbox.path, "new", msg.base).write_bytes(MINE)  # the same base in new/
    if listed:
        inbox.sync()
    assert inbox.expunge([1]) == [1]
    inbox.sync()
    assert inbox.uids() == [2] and MailStore(alice.root).mailbox("INBOX").uids() == [2]


def test_attack_foreign_hard_link_without_sizes_fails_alone(
    tmp_path: Path, alice: MailStore
) -> None:
    other = tmp_path / "someone-elses"
    other.write_bytes(SECRET)
    os.chown(other, 65534, 65534)
    inbox = alice.mailbox("INBOX")
    inbox.append(MINE)
    os.link(other, Path(inbox.path, "cur", "1700000000.M1P1.planted:2,"))
    inbox.sync()
    assert inbox.uids() == [1, 2]
    for read in (
        lambda: inbox.read_message(2),
        lambda: inbox.read_header(2),
        lambda: inbox.message_vsize(inbox.get(2)),
        lambda: inbox.open_message(2),
        lambda: inbox.check_servable(inbox.get(2)),
    ):
        with pytest.raises(MessageUnreadable) as caught:
            read()
        assert caught.value.uid == 2 and caught.value.kind == "permission"
    assert inbox.read_message(1) == MINE


_UNREADABLE_CHILD = """
import logging, os, sys  # logging first: the interpreter may live where nobody cannot read
from mailstore.errors import MessageUnreadable
from mailstore.store import MailStore
os.setgid(65534); os.setuid(65534)
box = MailStore(sys.argv[1]).mailbox("INBOX")
assert box.uids() == [1, 2, 3], box.uids()
failed = []
for name, read in (
    ("read_message", lambda: box.read_message(2)),
    ("read_header", lambda: box.read_header(2)),
    ("message_vsize", lambda: box.message_vsize(box.get(2))),
    ("open_message", lambda: box.open_message(2)),
    ("open_stored", lambda: box.open_stored(box.get(2))),
    ("check_servable", lambda: box.check_servable(box.get(2))),
):
    try:
        read()
        failed.append(name + " read it")
    except MessageUnreadable as exc:
        if exc.uid != 2 or exc.kind != "permission":
            failed.append(f"{name}: {exc.uid} {exc.kind}")
assert box.read_message(1).endswith(b"one\\n") and box.read_message(3).endswith(b"three\\n")
box.check_servable(box.get(1))
print("ok" if not failed else failed)
"""


@pytest.mark.skipif(not ROOT, reason="needs root to act as an unprivileged server user")
def test_attack_unreadable_message_fails_alone() -> None:
    """Mode 000 (root reads anything, so the reading process is `nobody`, as a server that
    dropped its privileges). The file has no `,W=`: its size needs a read."""
    base = Path(tempfile.mkdtemp(prefix="mra-unreadable-"))
    base.chmod(0o755)  # the path to the Maildir must be open to `nobody`
    try:
        check_unreadable(MailStore(str(base / "alice")))
    finally:
        shutil.rmtree(base)


def check_unreadable(alice: MailStore) -> None:
    inbox = alice.mailbox("INBOX")
    inbox.append(b"Subject: 1\n\none\n")
    Path(inbox.path, "new", "1700000000.M2P1.host").write_bytes(b"Subject: 2\n\ntwo\n")
    inbox.sync()  # UID 2
    inbox.append(b"Subject: 3\n\nthree\n")
    inbox.sync()
    for dirpath, dirnames, filenames in os.walk(alice.root):
        for name in [".", *dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), 65534, 65534)
    bad = inbox.get(2)
    os.chmod(os.path.join(inbox.path, bad.subdir, bad.name), 0)
    proc = subprocess.run(
        [sys.executable, "-c", _UNREADABLE_CHILD, alice.root],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(Path(__file__).parents[2]),
    )
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr
