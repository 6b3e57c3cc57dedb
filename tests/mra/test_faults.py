"""Fault injection against a running `mra serve` and the real `mda` on one Maildir: a full file
system, a read-only one, an unreadable uidlist, a lock left by a dead process, a corrupted
uidlist. Each gives the client a clean NO / -ERR (75 from mda, "try again later"), loses
nothing that was acknowledged, and the next command or delivery goes on (issue #16).

The file systems are real: a small tmpfs mounted over the account's Maildir (root only, as
the mda tests do), never a mock of os.write."""

from __future__ import annotations

import imaplib
import os
import poplib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer

ROOT = os.geteuid() == 0
MDA = str(Path(sys.executable).parent / "mda")
USER = "alice@example.test"
needs_root = pytest.mark.skipif(not ROOT, reason="mounts and a server dropping to nobody")


def small(n: int) -> bytes:
    return b"From: bob@example.test\r\nSubject: small %d\r\n\r\nbody %d\r\n" % (n, n)


BIG = b"From: bob@example.test\r\nSubject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 1000


NOBODY = (
    '[server]\nuser = "nobody"\nrequire_readable_installation = false\n[mda]\nmail_uid = "nobody"\n'
)


def as_nobody(s: MraServer) -> None:
    """The server and mda run as the mail user `nobody` (mda refuses to deliver as root):
    what the test prepared as root is given to it."""
    for dirpath, dirnames, filenames in os.walk(s.mail):
        for name in [".", *dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), 65534, 65534, follow_symlinks=False)


def maildir(s: MraServer) -> Path:
    return s.mail / "example.test" / "alice"


def visible_files(root: Path) -> list[bytes]:
    """The contents of every message file a reader can see (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(root / sub)):
            out.append((root / sub / name).read_bytes())
    return out


def deliver(s: MraServer, message: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [MDA, "--config", str(s.config), "-d", USER],
        input=message,
        capture_output=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )


def imap(s: MraServer) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", s.ports["imap"], timeout=60)
    m.login(USER, PASSWORD)
    return m


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"mode=0755,{options}", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


@needs_root
def test_attack_full_file_system_is_a_clean_no_and_loses_nothing(
    server_factory: type[MraServer],
) -> None:
    """A Maildir on a file system with room for small messages only: APPEND of a large one is
    `NO`, mda's delivery of it 75, nothing of it is visible or left in tmp/; the messages
    already there stay whole, and a small APPEND and a small delivery in the same session go
    on."""
    s = server_factory(NOBODY, listeners=("imap", "pop3"))
    with tmpfs(maildir(s), "size=64k") as root:
        box = s.store().mailbox("INBOX")
        box.append(small(1))
        as_nobody(s)
        before = visible_files(root)
        s.start()
        m = imap(s)
        typ, data = m.append("INBOX", None, None, BIG)
        assert typ == "NO", (typ, data)
        assert b"Traceback" not in data[0]
        r = deliver(s, BIG)
        assert r.returncode == 75, r.stderr
        assert r.stderr.startswith(b"4.") and b"Traceback" not in r.stderr
        assert visible_files(root) == before
        assert os.listdir(root / "tmp") == []
        # The session goes on: a message that fits is stored and seen.
        typ, data = m.append("INBOX", None, None, small(2))
        assert typ == "OK", data
        assert deliver(s, small(3)).returncode == 0
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [d[1].strip() for d in data if isinstance(d, tuple)]
        assert subjects == [b"Subject: small 1", b"Subject: small 2", b"Subject: small 3"]
        m.logout()
        assert "Traceback" not in s.log()
        s.stop()


@needs_root
def test_attack_read_only_file_system_answers_no_and_reading_goes_on(
    server_factory: type[MraServer],
) -> None:
    """A Maildir whose file system went read-only (errors=remount-ro after a disk fault):
    reading goes on, every write is a clean NO / -ERR / 75, and nothing changes. POP3,
    whose login takes a lock file, answers -ERR [SYS/TEMP]."""
    s = server_factory(NOBODY, listeners=("imap", "pop3"))
    with tmpfs(maildir(s), "size=1m") as root:
        box = s.store().mailbox("INBOX")
        box.append(small(1))
        box.append(small(2))
        box.sync()
        as_nobody(s)
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        before = visible_files(root)
        s.start()
        m = imap(s)
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"2"]
        typ, data = m.append("INBOX", None, None, small(3))
        assert typ == "NO", data
        typ, data = m.store("1", "+FLAGS", "(\\Seen)")
        assert typ == "NO", data
        typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
        assert typ == "NO", data
        typ, data = m.expunge()
        assert typ in ("OK", "NO"), data
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")  # the session goes on, all there
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        assert typ == "OK" and bodies == [small(1), small(2)]
        m.logout()
        # POP3 takes its mailbox lock (a file) at login: a clean "try again later".
        p = poplib.POP3("127.0.0.1", s.ports["pop3"], timeout=60)
        try:
            p.user(USER)
            with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
                p.pass_(PASSWORD)
        finally:
            p.close()
        r = deliver(s, small(4))
        assert r.returncode == 75 and r.stderr.startswith(b"4."), r.stderr
        assert visible_files(root) == before
        assert "Traceback" not in s.log()
        s.stop()


@needs_root
def test_attack_lock_left_by_a_dead_process_is_broken(server_factory: type[MraServer]) -> None:
    """`dovecot-uidlist.lock` naming a process of this host that is gone (a delivery killed
    with SIGKILL): the next APPEND and the next delivery break it at once, rather than waiting
    out the 120 s a live holder gets."""
    s = server_factory(NOBODY, listeners=("imap",))
    box = s.store().mailbox("INBOX")
    box.append(small(1))
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = Path(box.path) / "dovecot-uidlist.lock"
    lock.write_text(f"{dead.pid}:{os.uname().nodename}")
    as_nobody(s)
    s.start()
    m = imap(s)
    typ, data = m.append("INBOX", None, None, small(2))
    assert typ == "OK", data
    lock.write_text(f"{dead.pid}:{os.uname().nodename}")
    r = deliver(s, small(3))
    assert r.returncode == 0, r.stderr
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    assert not lock.exists()
    m.logout()


@needs_root
@pytest.mark.parametrize(
    "damage",
    [b"", b"\x00\x01garbage\xff\n", b"3 V1 N5 G0\nnot a line\n7 x\n", b"1 V\n2 :"],
)
def test_attack_corrupted_uidlist_loses_no_message(
    server_factory: type[MraServer], damage: bytes
) -> None:
    """A uidlist truncated or overwritten (a crash of another writer, a disk fault): every
    message is still listed, each once, and the next APPEND and delivery go on."""
    s = server_factory(NOBODY, listeners=("imap",))
    box = s.store().mailbox("INBOX")
    for n in (1, 2, 3):
        box.append(small(n))
    (Path(box.path) / "dovecot-uidlist").write_bytes(damage)
    as_nobody(s)
    s.start()
    m = imap(s)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"], data
    typ, data = m.append("INBOX", None, None, small(4))
    assert typ == "OK", data
    assert deliver(s, small(5)).returncode == 0
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"5"]
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(d[1].strip() for d in data if isinstance(d, tuple))
    assert subjects == [b"Subject: small %d" % n for n in range(1, 6)]
    uids = [int(d[0].split(b"UID ")[1].split()[0]) for d in data if isinstance(d, tuple)]
    assert len(set(uids)) == 5
    m.logout()


@needs_root
def test_attack_unreadable_uidlist_is_a_clean_no_and_no_duplicate(
    server_factory: type[MraServer],
) -> None:
    """A uidlist that cannot be read (here a directory in its place: unreadable even for
    root): SELECT is NO, mda 75, and the delivery it refused is not left in new/ (it was, so
    the MTA's retry stored the message twice); once repaired, the retry stores it once."""
    s = server_factory(NOBODY, listeners=("imap",))
    box = s.store().mailbox("INBOX")
    box.append(small(1))
    uidlist = Path(box.path) / "dovecot-uidlist"
    uidlist.unlink()
    uidlist.mkdir()
    as_nobody(s)
    s.start()
    m = imap(s)
    typ, data = m.select("INBOX")
    assert typ == "NO", data
    r = deliver(s, small(2))
    assert r.returncode == 75 and r.stderr.startswith(b"4."), r.stderr
    assert b"Traceback" not in r.stderr
    assert visible_files(Path(box.path)) == [small(1)]
    uidlist.rmdir()
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"], data
    assert deliver(s, small(2)).returncode == 0  # the MTA's retry
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"], data
    m.logout()
