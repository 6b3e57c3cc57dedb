"""Round trips with the real Dovecot 2.3 on the same Maildir: what one writes, the other reads
with the same UIDVALIDITY, UIDs, flags, keywords, folders and subscriptions.

Dovecot runs with INDEX=MEMORY, so everything it knows comes from the files we compare.
Our side runs in a child process as the mail user (Dovecot refuses to run as root, and files we
create as root would be ones Dovecot cannot change).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mailstore.content import to_crlf
from mailstore.store import MailStore
from tests.interop.dovecot import DovecotFactory, deliver_foreign, mail_owner

pytestmark = __import__("pytest").mark.interop

LF_MSG = b"From: a@example.test\nSubject: plain\n\nhello\n.\nbye\n"
CRLF_MSG = b"From: b@example.test\r\nSubject: crlf\r\n\r\nbody\r\n"
UTF8_MSG = "From: c@example.test\nSubject: Grüße\nContent-Type: text/plain; charset=utf-8\n\nÄ\n"


def as_mail_user(fn: Callable[[], Any]) -> Any:
    """Run fn in a forked child with the mail user's uid/gid; return its (pickled) result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        code = 1
        try:
            uid, gid = mail_owner()
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o077)
            with os.fdopen(write_fd, "wb") as w:
                pickle.dump(fn(), w)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as r:
        data = r.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the store failed in the child process"
    return pickle.loads(data)


def our_view(root: Path) -> dict[str, Any]:
    """Everything a client could see, from our store."""
    store = MailStore(str(root), create=False)
    view: dict[str, Any] = {"folders": store.list_folders(), "subs": store.subscriptions()}
    for name in store.list_folders():
        box = store.mailbox(name)
        msgs = {}
        for msg in box.messages():
            with box.open_message(msg.uid) as f:
                body = to_crlf(f.read())
            msgs[msg.uid] = (set(box.all_flags(msg)), body, box.message_vsize(msg))
        view[name] = (box.uidvalidity, box.next_uid, msgs)
    return view


def dovecot_view(dovecot: DovecotFactory) -> dict[str, Any]:
    with dovecot() as d:
        entries = d.list_entries("", "*")
        selectable = [n for attrs, _, n in entries if not {"\\Noselect", "\\NonExistent"} & attrs]
        folders = sorted(selectable, key=lambda n: (n != "INBOX", n))
        view: dict[str, Any] = {"folders": folders, "subs": d.lsub()}
        for name in folders:
            info = d.examine(name)
            msgs = {}
            if info.get("exists"):
                flags = d.uid_fetch_flags("1:*")
                data = d.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
                for uid, items in data.items():
                    size = items["RFC822.SIZE"]
                    assert isinstance(size, bytes)
                    msgs[uid] = (flags[uid] - {"\\Recent"}, items["BODY[]"], int(size))
            view[name] = (info["uidvalidity"], info["uidnext"], msgs)
        return view


def test_mailbox_made_by_dovecot_opens_the_same_in_our_store(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    with dovecot() as d:
        d.append("INBOX", LF_MSG, "\\Seen")
        d.append("INBOX", CRLF_MSG, "$Forwarded $Label1", "01-Jan-2024 12:00:00 +0000")
        d.append("INBOX", UTF8_MSG.encode(), "\\Flagged \\Answered $Label1")
        d.append("INBOX", b"Subject: doomed\n\nx\n")
        d.create("Entwürfe")
        d.create("Lists.python")
        d.append("Entwürfe", LF_MSG, "\\Draft $MDNSent")
        d.subscribe("Entwürfe")
        d.subscribe("Lists.python")
        d.select("INBOX")
        d.store(2, "+FLAGS", "(\\Answered $Junk)")
        d.store(4, "+FLAGS", "(\\Deleted)")
        d.expunge()
    deliver_foreign(dovecot_maildir, "1700000000.M1P1.mx.example.org", b"Subject: foreign\n\nf\n")
    theirs = dovecot_view(dovecot)
    ours = as_mail_user(lambda: our_view(dovecot_maildir))
    assert ours == theirs
    assert ours["folders"] == ["INBOX", "Entwürfe", "Lists.python"]
    assert ours["subs"] == ["Entwürfe", "Lists.python"]
    assert set(ours["INBOX"][2]) == {1, 2, 3, 5}
    assert ours["INBOX"][2][2][0] == {"\\Answered", "$Forwarded", "$Label1", "$Junk"}


def test_mailbox_made_by_our_store_opens_the_same_in_dovecot(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    def build() -> dict[str, Any]:
        store = MailStore(str(dovecot_maildir))
        inbox = store.mailbox("INBOX")
        inbox.append(LF_MSG)
        inbox.append(CRLF_MSG, flags=["\\Seen", "$Forwarded"], internaldate=1_700_000_000)
        inbox.append(UTF8_MSG.encode(), flags=["$Label1", "$Forwarded", "\\Flagged"])
        inbox.append(b"Subject: doomed\n\nx\n")
        inbox.sync()
        inbox.expunge([4])
        inbox.store_flags([1], "add", ["$Junk", "\\Answered"])
        store.create_folder("Entwürfe")
        store.create_folder("Archive.2024")
        store.mailbox("Archive.2024").append(LF_MSG, flags=["$NotJunk"])
        inbox.copy_to([2, 3], store.mailbox("Entwürfe"))
        store.subscribe("Archive.2024")
        store.subscribe("Entwürfe")
        return our_view(dovecot_maildir)

    ours = as_mail_user(build)
    theirs = dovecot_view(dovecot)
    assert theirs == ours
    assert theirs["subs"] == ["Archive.2024", "Entwürfe"]
    assert theirs["Entwürfe"][2][2][0] == {"$Label1", "$Forwarded", "\\Flagged"}
    with dovecot() as d:
        d.select("INBOX")
        internaldate = d.fetch("2", "(UID INTERNALDATE)")[2]["INTERNALDATE"]
    assert internaldate == b"14-Nov-2023 22:13:20 +0000"


def test_both_writing_one_folder_never_clash(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    def ours_append(n: int) -> Callable[[], list[int]]:
        def run() -> list[int]:
            box = MailStore(str(dovecot_maildir)).mailbox("INBOX")
            return [box.append(b"Subject: ours %d\n\n" % i, flags=["$Ours"]) for i in range(n)]

        return run

    first = as_mail_user(ours_append(3))
    with dovecot() as d:
        theirs = [d.append("INBOX", b"Subject: theirs\r\n\r\n", "$Theirs") for _ in range(3)]
    second = as_mail_user(ours_append(2))
    with dovecot() as d:
        d.select("INBOX")
        d.store(first[0], "+FLAGS", "(\\Seen)")
        more = [d.append("INBOX", b"Subject: late\r\n\r\n") for _ in range(2)]
    assert first == [1, 2, 3] and theirs == [4, 5, 6] and second == [7, 8] and more == [9, 10]
    view = as_mail_user(lambda: our_view(dovecot_maildir))
    assert sorted(view["INBOX"][2]) == list(range(1, 11))
    assert view["INBOX"][2][1][0] == {"\\Seen", "$Ours"}
    assert view == dovecot_view(dovecot)
