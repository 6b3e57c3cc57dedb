"""The Maildir folder: messages, UIDs, flags, keywords and sync, on real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailstore.errors import LimitExceeded, MessageUnreadable, NoQuota, NotFound
from mailstore.listing import Listings
from mailstore.mailbox import Mailbox
from mailstore.quota import QuotaLimit
from mailstore.store import MailStore
from mailstore.uidlist import UidList

LF_MSG = b"From: a@example.test\nSubject: lf\n\nline one\nline two\n"
CRLF_MSG = b"From: a@example.test\r\nSubject: crlf\r\n\r\nbody\r\n"

pytestmark = pytest.mark.usefixtures("sync_mode")


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(str(tmp_path / "mail"))


@pytest.fixture
def inbox(store: MailStore) -> Mailbox:
    return store.mailbox("INBOX")


def fresh(store: MailStore, name: str = "INBOX") -> Mailbox:
    """Another process's view of the same folder."""
    return MailStore(store.root).mailbox(name)


def files(box: Mailbox) -> list[str]:
    out = []
    for sub in ("new", "cur"):
        out += [f"{sub}/{n}" for n in sorted(os.listdir(os.path.join(box.path, sub)))]
    return out


def test_new_folder_gets_nonzero_uidvalidity_and_a_uidlist(inbox: Mailbox) -> None:
    assert inbox.uidvalidity > 0
    assert inbox.next_uid == 1
    assert len(inbox) == 0
    assert os.path.exists(os.path.join(inbox.path, "dovecot-uidlist"))


def test_append_stores_bytes_as_given_with_sizes_in_the_name(inbox: Mailbox) -> None:
    u1 = inbox.append(LF_MSG)
    u2 = inbox.append(CRLF_MSG)
    assert (u1, u2) == (1, 2)
    result = inbox.sync()
    assert result.added == [1, 2] and not result.removed
    m1, m2 = inbox.messages()
    assert inbox.read_message(1) == LF_MSG
    assert inbox.read_message(2) == CRLF_MSG
    vsize = len(LF_MSG) + LF_MSG.count(b"\n")
    assert m1.name.endswith(f",S={len(LF_MSG)},W={vsize}")
    assert inbox.message_vsize(m1) == len(LF_MSG.replace(b"\n", b"\r\n"))
    assert inbox.message_vsize(m2) == len(CRLF_MSG)
    assert m1.recent and m1.subdir == "new" and m1.flags == frozenset()


def test_append_with_flags_goes_to_cur_and_keywords_are_recorded(inbox: Mailbox) -> None:
    inbox.append(LF_MSG, flags=["\\Seen", "\\answered", "$Forwarded", "$Label1"])
    inbox.sync()
    (msg,) = inbox.messages()
    assert msg.subdir == "cur"
    assert msg.name.endswith(":2,RSab")
    assert inbox.all_flags(msg) == ["\\Answered", "\\Seen", "$Forwarded", "$Label1"]
    keywords = Path(inbox.path, "dovecot-keywords").read_text()
    assert keywords == "0 $Forwarded\n1 $Label1\n"


def test_internaldate_is_mtime_and_can_be_given(inbox: Mailbox) -> None:
    when = 1_000_000_000.0
    uid = inbox.append(LF_MSG, internaldate=when)
    inbox.sync()
    assert inbox.internaldate(inbox.get(uid)) == when
    inbox.store_flags([uid], "add", ["\\Seen"])
    inbox.sync()
    assert fresh_internaldate(inbox, uid) == when


def fresh_internaldate(box: Mailbox, uid: int) -> float:
    other = Mailbox(box.path, box.name, lambda: 1)
    return other.internaldate(other.get(uid))


def test_store_flags_modes(inbox: Mailbox) -> None:
    uid = inbox.append(LF_MSG)
    inbox.sync()
    assert inbox.store_flags([uid], "add", ["\\Flagged", "$Junk"]) == [uid]
    assert inbox.store_flags([uid], "add", ["\\Flagged"]) == []
    assert inbox.all_flags(inbox.get(uid)) == ["\\Flagged", "$Junk"]
    assert inbox.store_flags([uid], "set", ["\\Seen"]) == [uid]
    assert inbox.all_flags(inbox.get(uid)) == ["\\Seen"]
    assert inbox.store_flags([uid], "remove", ["\\Seen", "$NeverSeen"]) == [uid]
    assert inbox.all_flags(inbox.get(uid)) == []
    assert not inbox.sync()  # our own renames are not reported back to us as changes
    assert fresh(inbox_store(inbox)).all_flags(fresh(inbox_store(inbox)).get(uid)) == []


def inbox_store(box: Mailbox) -> MailStore:
    return MailStore(box.path)


def test_set_keeps_letters_imap_cannot_express(inbox: Mailbox) -> None:
    uid = inbox.append(LF_MSG)
    inbox.sync()
    msg = inbox.get(uid)
    os.rename(
        os.path.join(inbox.path, "new", msg.name),
        os.path.join(inbox.path, "cur", msg.base + ":2,PSz"),
    )
    inbox.sync()
    inbox.store_flags([uid], "set", ["\\Flagged"])
    # P (passed) and z (a letter with no keyword name) survive a FLAGS replace.
    assert inbox.get(uid).name.endswith(":2,FPz")


def test_more_than_26_keywords_is_a_clear_error(inbox: Mailbox) -> None:
    uid = inbox.append(LF_MSG)
    inbox.sync()
    inbox.store_flags([uid], "add", [f"$K{i}" for i in range(26)])
    assert len(inbox.all_flags(inbox.get(uid))) == 26
    with pytest.raises(LimitExceeded):
        inbox.store_flags([uid], "add", ["$OneTooMany"])


def test_changes_by_another_process_are_seen(store: MailStore, inbox: Mailbox) -> None:
    for i in range(3):
        inbox.append(LF_MSG + bytes([65 + i]))
    inbox.sync()
    other = fresh(store)
    assert other.uids() == [1, 2, 3]
    other.store_flags([2], "add", ["\\Seen"])
    other.expunge([3])
    other.append(CRLF_MSG)
    result = inbox.sync()
    assert result.added == [4] and result.removed == [3] and result.changed == [2]
    assert inbox.get(2).flags == frozenset({"\\Seen"})
    assert inbox.uids() == [1, 2, 4]


def test_foreign_files_get_uids_and_sizes(inbox: Mailbox) -> None:
    inbox.append(LF_MSG)
    inbox.sync()
    Path(inbox.path, "new", "1700000000.foreign.host").write_bytes(b"Subject: x\n\ny\n")
    Path(inbox.path, "cur", "1600000000.mutt.host:2,S").write_bytes(CRLF_MSG)
    result = inbox.sync()
    assert result.added == [2, 3]
    # Files found together are numbered in name (= delivery time) order.
    assert inbox.get(2).base == "1600000000.mutt.host"
    assert inbox.get(3).base == "1700000000.foreign.host"
    assert inbox.message_vsize(inbox.get(3)) == len(b"Subject: x\r\n\r\ny\r\n")
    assert inbox.message_size(inbox.get(3)) == len(b"Subject: x\n\ny\n")
    assert fresh(MailStore(inbox.path)).uids() == [1, 2, 3]


def test_unchanged_folder_is_not_listed_again(
    inbox: Mailbox, sync_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sync_mode == "inotify":
        inbox.append(LF_MSG)
        inbox.sync()
        # Events name the files that changed: nothing is listed, whatever the mtimes say.
        monkeypatch.setattr(Listings, "list_names", lambda *_: pytest.fail("listed a directory"))
        Path(inbox.path, "cur", "1.sneaky.host:2,").write_bytes(LF_MSG)
        assert inbox.sync().added == [2]
        assert not inbox.sync()
        return
    inbox.append(LF_MSG)
    old = time.time() - 3600
    for sub in ("new", "cur"):
        os.utime(os.path.join(inbox.path, sub), (old, old))
    inbox.sync()
    inbox.sync()
    # A file slipped in without changing the directory's mtime (we put the mtime back):
    # a sync that costs only stat() calls cannot see it, which proves it did not list.
    Path(inbox.path, "cur", "1.sneaky.host:2,").write_bytes(LF_MSG)
    os.utime(os.path.join(inbox.path, "cur"), (old, old))
    assert not inbox.sync()
    os.utime(os.path.join(inbox.path, "cur"))
    assert inbox.sync().added == [2]


def test_expunge_and_uids_are_never_reused(store: MailStore, inbox: Mailbox) -> None:
    for i in range(5):
        inbox.append(LF_MSG + bytes([65 + i]))
    inbox.sync()
    assert inbox.expunge([4, 5, 99]) == [4, 5]
    assert inbox.append(CRLF_MSG) == 6
    assert fresh(store).uids() == [1, 2, 3, 6]


def test_many_expunges_rewrite_the_uidlist(inbox: Mailbox) -> None:
    for i in range(200):
        inbox.append(b"Subject: %d\n\n" % i)
    inbox.sync()
    inbox.expunge(list(range(1, 181)))
    text = Path(inbox.path, "dovecot-uidlist").read_text().splitlines()
    assert len(text) == 21 and text[0].split()[2] == "N201"
    assert inbox.append(LF_MSG) == 201


def test_uidlist_removed_under_us_is_written_back(store: MailStore, inbox: Mailbox) -> None:
    inbox.append(LF_MSG)
    inbox.append(LF_MSG)
    inbox.sync()
    validity = inbox.uidvalidity
    os.unlink(os.path.join(inbox.path, "dovecot-uidlist"))
    assert not inbox.sync()
    assert inbox.uidvalidity == validity
    assert fresh(store).uids() == [1, 2]


def test_attack_uids_given_again_under_the_same_uidvalidity_reset_the_view(
    inbox: Mailbox,
) -> None:
    """The folder emptied and its uidlist made again within one second (same UIDVALIDITY):
    UID 1 now names another message. A view that knew the old one is loaded again, as for a
    new UIDVALIDITY; before, the sync failed with a KeyError at every SELECT (found by
    fuzzing, a mail root made afresh under a running worker)."""
    inbox.append(LF_MSG)
    inbox.append(LF_MSG)
    inbox.sync()
    old = inbox.get(1)
    validity = inbox.uidvalidity
    for msg in (inbox.get(1), inbox.get(2)):
        os.unlink(os.path.join(inbox.path, msg.subdir, msg.name))
    size, vsize = len(LF_MSG), len(LF_MSG) + LF_MSG.count(b"\n")
    name = f"1700000000.M1P1.other,S={size},W={vsize}:2,"
    Path(inbox.path, "cur", name).write_bytes(LF_MSG)
    Path(inbox.path, "dovecot-uidlist").write_text(f"3 V{validity} N2\n1 :{name}\n")
    result = inbox.sync()
    assert result.uidvalidity_changed and result.removed == [1, 2] and result.added == [1]
    assert inbox.uids() == [1] and inbox.get(1).name != old.name
    assert not inbox.sync()


def test_foreign_uidvalidity_change_resets_the_view(inbox: Mailbox) -> None:
    inbox.append(LF_MSG)
    inbox.sync()
    msg = inbox.get(1)
    Path(inbox.path, "dovecot-uidlist").write_text(f"3 V42 N8\n7 :{msg.name}\n")
    result = inbox.sync()
    assert result.uidvalidity_changed and result.removed == [1] and result.added == [7]
    assert inbox.uidvalidity == 42


def test_courier_uids_survive_migration(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "cur" / "1100.M1P2.courier:2,S").write_bytes(LF_MSG)
    (root / "cur" / "1101.M1P2.courier:2,").write_bytes(CRLF_MSG)
    (root / "new" / "1102.M1P2.courier").write_bytes(LF_MSG)
    (root / "courierimapuiddb").write_text(
        "1 1100000000 40\n17 1100.M1P2.courier\n23 1101.M1P2.courier\n"
    )
    box = MailStore(str(root)).mailbox("INBOX")
    assert box.uidvalidity == 1100000000
    assert box.uids() == [17, 23, 40]
    assert box.get(17).flags == frozenset({"\\Seen"})
    written = UidList(str(root / "dovecot-uidlist"))
    written.refresh()
    assert written.version == 3 and written.uidvalidity == 1100000000


def test_dovecot_v1_uidlist_is_read(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "cur" / "1200.M1P1.old:2,F").write_bytes(LF_MSG)
    (root / "dovecot-uidlist").write_text("1 1200000000 10\n9 1200.M1P1.old:2,F\n")
    box = MailStore(str(root)).mailbox("INBOX")
    assert (box.uidvalidity, box.uids(), box.next_uid) == (1200000000, [9], 10)


def test_symlinks_and_foreign_hardlinks_are_not_served(tmp_path: Path, inbox: Mailbox) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret\n")
    os.symlink(secret, os.path.join(inbox.path, "cur", "1.link.host:2,S"))
    inbox.append(LF_MSG)
    result = inbox.sync()
    assert result.added == [1]  # the symlink is skipped, logged, never given a UID
    assert inbox.read_message(1) == LF_MSG
    # A hard link to a file the folder's owner does not own.
    other = tmp_path / "others"
    other.write_bytes(b"someone else's mail\n")
    os.chown(other, 65534, 65534)
    os.link(other, os.path.join(inbox.path, "cur", "2.hard.host:2,"))
    inbox.sync()
    with pytest.raises(MessageUnreadable) as caught:
        inbox.read_message(2)
    assert caught.value.uid == 2 and caught.value.kind == "permission"


def test_message_renamed_by_another_process_is_still_readable(
    store: MailStore, inbox: Mailbox
) -> None:
    uid = inbox.append(LF_MSG)
    inbox.sync()
    fresh(store).store_flags([uid], "add", ["\\Seen"])
    assert inbox.read_message(uid) == LF_MSG  # found again by its base after one sync


def test_read_expunged_message_is_not_found(store: MailStore, inbox: Mailbox) -> None:
    uid = inbox.append(LF_MSG)
    inbox.sync()
    fresh(store).expunge([uid])
    with pytest.raises(NotFound):
        inbox.read_message(uid)


def test_copy_keeps_flags_keywords_and_date(store: MailStore, inbox: Mailbox) -> None:
    store.create_folder("Archive")
    archive = store.mailbox("Archive")
    archive.append(LF_MSG, flags=["$Other"])  # so keyword letters differ between folders
    uid = inbox.append(LF_MSG, flags=["\\Seen", "$Junk"], internaldate=1_500_000_000.0)
    inbox.sync()
    pairs = inbox.copy_to([uid, 77], archive)
    assert pairs == [(uid, 2)]
    archive.sync()
    copy = archive.get(2)
    assert archive.all_flags(copy) == ["\\Seen", "$Junk"]
    assert archive.read_message(2) == LF_MSG
    assert archive.internaldate(copy) == 1_500_000_000.0
    assert copy.base != inbox.get(uid).base


def test_quota_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    store = MailStore(str(tmp_path / "q"), quota_limit=QuotaLimit(bytes=100, messages=None))
    box = store.mailbox("INBOX")
    box.append(b"x" * 60)
    with pytest.raises(NoQuota):
        box.append(b"y" * 60)
    assert len(files(box)) == 1 and os.listdir(os.path.join(box.path, "tmp")) == []


def test_stale_tmp_files_are_cleaned(store: MailStore) -> None:
    tmp = Path(store.root, "tmp")
    (tmp / "old").write_bytes(b"x")
    (tmp / "young").write_bytes(b"x")
    old = time.time() - 40 * 3600
    os.utime(tmp / "old", (old, old))
    MailStore(store.root).mailbox("INBOX").sync()
    assert sorted(os.listdir(tmp)) == ["young"]


def test_missing_subdirectory_is_repaired(inbox: Mailbox) -> None:
    os.rmdir(os.path.join(inbox.path, "new"))
    inbox.sync()
    assert os.path.isdir(os.path.join(inbox.path, "new"))


def test_malformed_names_and_junk_are_ignored(inbox: Mailbox) -> None:
    cur = Path(inbox.path, "cur")
    (cur / ".hidden").write_bytes(b"x")
    (cur / "has space:2,S").write_bytes(b"x")
    (cur / "subdir").mkdir()
    (cur / "good:2,S").write_bytes(b"x")
    (cur / "weird:1,xyz").write_bytes(b"x")
    inbox.sync()
    assert sorted(m.base for m in inbox.messages()) == ["good", "weird"]
    assert inbox.get(inbox.uids()[1]).flags == frozenset()


def test_header_block_is_read_once_and_cached(inbox: Mailbox) -> None:
    uid = inbox.append(b"Subject: cached\nFrom: a@b\n\n" + b"body\n" * 10000)
    inbox.sync()
    assert inbox.read_header(uid) == b"Subject: cached\nFrom: a@b\n\n"
    msg = inbox.get(uid)
    # Gone from disk behind our back: the cached header still answers (files never change).
    os.rename(os.path.join(inbox.path, msg.subdir, msg.name), os.path.join(inbox.path, "moved"))
    assert inbox.read_header(uid) == b"Subject: cached\nFrom: a@b\n\n"
    os.rename(os.path.join(inbox.path, "moved"), os.path.join(inbox.path, msg.subdir, msg.name))
    headerless = inbox.append(b"no blank line at all")
    inbox.sync()
    assert inbox.read_header(headerless) == b"no blank line at all"


def test_fuzz_a_name_with_w_but_no_s_has_both_sizes(store: MailStore, inbox: Mailbox) -> None:
    """Found by fuzz/maildir_names.py: `,W=` without `,S=` (a name another tool wrote) made
    message_size fail an assertion, and so every COPY of the message."""
    body = b"Subject: w only\n\nbody\n"
    name = "1712345678.M1P2Q3.host,W=99:2,S"
    with open(os.path.join(inbox.path, "cur", name), "wb") as f:
        f.write(body)
    inbox.sync()
    (msg,) = inbox.messages()
    assert inbox.message_size(msg) == len(body)
    assert inbox.message_vsize(msg) == 99  # the name's, as Dovecot takes it
    store.create_folder("Other")
    other = store.mailbox("Other")
    [(_, uid)] = inbox.copy_to([msg.uid], other)
    other.sync()
    assert other.read_message(uid) == body


def test_fuzz_a_keywords_file_with_unicode_digits(inbox: Mailbox) -> None:
    """Found by fuzz/keywords.py: `str.isdigit()` is true for `²`, which int() refuses: a
    damaged dovecot-keywords raised ValueError at every flag change and FETCH FLAGS. Such a
    line is skipped (`١`, which int() reads as 1, too: Dovecot reads ASCII digits only)."""
    Path(inbox.path, "dovecot-keywords").write_text("0 $Junk\n\u00b2 Bad\n\u0661 Other\n")
    uid = inbox.append(b"Subject: k\n\nbody\n", flags=["$Junk", "$New"])
    inbox.sync()
    assert sorted(inbox.all_flags(inbox.get(uid))) == ["$Junk", "$New"]
    assert Path(inbox.path, "dovecot-keywords").read_text() == "0 $Junk\n1 $New\n"


def test_fuzz_two_files_with_one_base_are_two_messages(inbox: Mailbox) -> None:
    """Found by fuzz/maildir_names.py: of two files sharing a base name only the one whose name
    sorts first was served; a flag change renamed it to a name sorting after the other, which
    then took its place, and the change seemed undone. The second file gets a base of its own
    (Dovecot's maildir_fix_duplicate), its flags kept: two messages, none hidden."""
    cur = os.path.join(inbox.path, "cur")
    for name in ("1712345678.M1P2Q3.host:2,", "1712345678.M1P2Q3.host:2,S"):
        with open(os.path.join(cur, name), "wb") as f:
            f.write(b"Subject: " + name.encode() + b"\n\nbody\n")
    inbox.sync()
    messages = inbox.messages()
    assert len(messages) == 2
    assert sorted(inbox.all_flags(m) for m in messages) == [[], ["\\Seen"]]
    inbox.store_flags([m.uid for m in messages], "add", ["\\Flagged"])
    inbox.sync()
    again = fresh(inbox_store(inbox))
    for box in (inbox, again):
        assert sorted(box.all_flags(m) for m in box.messages()) == [
            ["\\Flagged"],
            ["\\Flagged", "\\Seen"],
        ]
    assert len(os.listdir(cur)) == 2
