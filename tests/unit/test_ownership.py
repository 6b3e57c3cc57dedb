"""As root, what the store makes below a mail root belongs to the owner of the directory it is
made in (mailstore/folderdir.py, "Who owns what we create"); the server test is
tests/mra/test_root_ownership.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore.store import MailStore

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_attack_root_repairs_a_users_maildir_with_the_users_directories(tmp_path: Path) -> None:
    """A Maildir missing cur/ (a tool pruned it) is repaired at the sync: as root, the new
    cur/ is the folder owner's, or the owner's own delivery agent could never file there."""
    root = tmp_path / "alice"
    MailStore(str(root)).mailbox("INBOX").append(b"Subject: x\n\ny\n")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
    (root / "cur").rmdir()
    box = MailStore(str(root)).mailbox("INBOX")
    box.sync()
    assert (root / "cur").is_dir() and owner(root / "cur") == (NOBODY, NOBODY)
    box.mark_seen_by_reader(box.uids())  # a rename into the new cur/
    assert [owner(p) for p in (root / "cur").iterdir()] == [(NOBODY, NOBODY)]


def test_attack_root_makes_a_new_mail_root_for_the_parents_owner(tmp_path: Path) -> None:
    """A mail root made by the server (the first login) under a directory of the mail user
    belongs to that user, every level of it, not to root."""
    vmail = tmp_path / "vmail"
    vmail.mkdir()
    os.chown(vmail, NOBODY, NOBODY)
    root = vmail / "example.test" / "alice"
    MailStore(str(root)).create_folder("Work")
    made = [vmail / "example.test", root, root / "cur", root / "new", root / "tmp"]
    made += [root / ".Work", root / ".Work" / "cur", root / ".Work" / "maildirfolder"]
    assert {p.name: owner(p) for p in made} == {p.name: (NOBODY, NOBODY) for p in made}


def test_make_dirs_leaves_what_exists_as_it_is(tmp_path: Path) -> None:
    from mailstore.folderdir import make_dirs

    (tmp_path / "a").mkdir()
    make_dirs(str(tmp_path / "a" / "b" / "c"), 0o700)
    assert (tmp_path / "a" / "b" / "c").is_dir()
    assert owner(tmp_path / "a") == owner(tmp_path) == owner(tmp_path / "a" / "b" / "c")
    assert oct((tmp_path / "a" / "b").stat().st_mode & 0o777) == oct(0o700 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
