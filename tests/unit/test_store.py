"""Folders of a user's store: create, delete, rename, subscriptions, UIDVALIDITY."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore.errors import AlreadyExists, InvalidName, NotFound, NotPossible
from mailstore.store import MailStore

MSG = b"Subject: hi\n\nbody\n"

pytestmark = pytest.mark.usefixtures("sync_mode")


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(str(tmp_path / "mail"))


def test_layout_is_maildirplusplus(store: MailStore) -> None:
    store.create_folder("Entwürfe")
    store.create_folder("Lists.python")
    root = Path(store.root)
    assert (root / ".Entw&APw-rfe" / "maildirfolder").exists()
    assert (root / ".Lists.python" / "cur").is_dir()
    assert not (root / ".Lists").exists()  # Maildir++ needs no parent directory
    assert store.list_folders() == ["INBOX", "Entwürfe", "Lists.python"]
    assert store.mailbox("inbox").path == store.root


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "a..b", ".hidden", "trailing.", "", "~user", "tab\there", "x\x00"]
)
def test_names_that_could_escape_or_not_be_stored_are_refused(store: MailStore, name: str) -> None:
    with pytest.raises(InvalidName):
        store.create_folder(name)
    assert store.list_folders() == ["INBOX"]
    assert sorted(os.listdir(store.root)) == ["cur", "new", "tmp"]


def test_create_existing_and_inbox(store: MailStore) -> None:
    store.create_folder("A")
    with pytest.raises(AlreadyExists):
        store.create_folder("A")
    with pytest.raises(AlreadyExists):
        store.create_folder("INBOX")


def test_delete(store: MailStore) -> None:
    store.create_folder("A")
    store.create_folder("A.B")
    store.mailbox("A").append(MSG)
    store.delete_folder("A")
    assert store.list_folders() == ["INBOX", "A.B"]
    assert [n for n in os.listdir(store.root) if n.startswith("..")] == []
    with pytest.raises(NotFound):
        store.delete_folder("A")
    with pytest.raises(NotPossible):
        store.delete_folder("INBOX")
    with pytest.raises(NotFound):
        store.mailbox("A")


def test_uidvalidity_is_never_reused(store: MailStore) -> None:
    seen = set()
    for _ in range(5):
        store.create_folder("Again")
        seen.add(store.mailbox("Again").uidvalidity)
        store.delete_folder("Again")
    assert len(seen) == 5 and 0 not in seen


def test_rename_moves_children_and_subscriptions(store: MailStore) -> None:
    store.create_folder("Old")
    store.create_folder("Old.Child")
    store.create_folder("Older")
    store.mailbox("Old.Child").append(MSG)
    validity = store.mailbox("Old.Child").uidvalidity
    store.subscribe("Old.Child")
    store.subscribe("Older")
    store.rename_folder("Old", "New")
    assert store.list_folders() == ["INBOX", "New", "New.Child", "Older"]
    child = store.mailbox("New.Child")
    assert child.uidvalidity == validity and child.uids() == [1]
    assert store.subscriptions() == ["New.Child", "Older"]
    with pytest.raises(NotPossible):
        store.rename_folder("New", "New.Child.X")
    with pytest.raises(AlreadyExists):
        store.rename_folder("New", "Older")
    with pytest.raises(NotFound):
        store.rename_folder("Nope", "Other")


def test_rename_inbox_moves_its_messages(store: MailStore) -> None:
    inbox = store.mailbox("INBOX")
    inbox.append(MSG, flags=["\\Seen", "$Label2"])
    inbox.append(MSG)
    store.rename_folder("INBOX", "Saved")
    inbox.sync()
    assert len(inbox) == 0
    saved = store.mailbox("Saved")
    saved.sync()
    assert len(saved) == 2
    assert saved.all_flags(saved.get(1)) == ["\\Seen", "$Label2"]


def test_subscriptions_file_is_dovecots_version_2(store: MailStore) -> None:
    store.subscribe("INBOX")
    store.subscribe("Sent")  # subscribing a name that does not exist is allowed (RFC 3501 6.3.6)
    store.subscribe("Sent")
    store.subscribe("Entwürfe.2024")
    # What Dovecot 2.3 writes: a version header, modified UTF-7, TAB between levels.
    assert (
        Path(store.root, "subscriptions").read_text() == "V\t2\n\nINBOX\nSent\nEntw&APw-rfe\t2024\n"
    )
    store.unsubscribe("INBOX")
    assert store.subscriptions() == ["Sent", "Entwürfe.2024"]


def test_version_1_subscriptions_are_read(store: MailStore) -> None:
    Path(store.root, "subscriptions").write_text("INBOX\nLists.python\nEntw&APw-rfe\n")
    assert store.subscriptions() == ["INBOX", "Lists.python", "Entwürfe"]


def test_symlinked_folder_is_not_followed(tmp_path: Path, store: MailStore) -> None:
    elsewhere = MailStore(str(tmp_path / "victim"))
    elsewhere.mailbox("INBOX").append(MSG)
    os.symlink(elsewhere.root, os.path.join(store.root, ".Evil"))
    assert store.list_folders() == ["INBOX"]
    with pytest.raises(NotFound):
        store.mailbox("Evil")


def test_mailbox_objects_are_reused(store: MailStore) -> None:
    assert store.mailbox("INBOX") is store.mailbox("INBOX")


@pytest.mark.parametrize("name", ["a/b", "", "~x", "a..b", "x" * 300, "\x01"])
def test_fuzz_a_name_no_folder_can_have_does_not_exist(store: MailStore, name: str) -> None:
    """Found by fuzz/sieve.py: exists() raised InvalidName, so Sieve's mailboxexists and
    mda's fileinto failed on it instead of being told no."""
    assert store.exists(name) is False
    with pytest.raises(InvalidName):
        store.create_folder(name)
