"""The attacks of issue #17 on the store, over a real `mra serve` (SECURITY.md, headings 4 and 6).

Alice plants things in her own Maildir; Bob's Maildir, next to hers under the same mail user,
is the victim. Every attack is tried over POP3 and, where the store is what decides, over IMAP
(the IMAP side's own answers are tested with the IMAP code).
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore.mailbox import Mailbox
from tests.mra.conftest import PASSWORD, MraServer

MDA = str(Path(sys.executable).parent / "mda")
ROOT = os.geteuid() == 0
MINE = b"From: alice@example.test\nSubject: mine\n\nmine\n"
SECRET = b"From: bob@example.test\nSubject: secret\n\nbob's secret\n"
MAX_UID = 2**32 - 2  # the highest UID (mailstore.uidlist.MAX_UID)


def pop3_uidl(uid: int, uidvalidity: int) -> str:
    """Dovecot's default UIDL (`%08Xu%08Xv`), as the server gives it."""
    return f"{uid:08x}{uidvalidity:08x}"


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def pop3(server: MraServer) -> poplib.POP3:
    deadline = time.monotonic() + 10
    while True:
        p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
        p.user("alice@example.test")
        try:
            p.pass_(PASSWORD)
            return p
        except poplib.error_proto as exc:
            p.close()
            if b"IN-USE" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # the previous session's lock is being released


def pop3_bodies(p: poplib.POP3) -> list[bytes]:
    count = p.stat()[0]
    return [b"\r\n".join(p.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]


def imap(server: MraServer) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.login("alice@example.test", PASSWORD)
    return m


def imap_bodies(m: imaplib.IMAP4, folder: str = "INBOX") -> list[bytes]:
    typ, data = m.select(folder)
    assert typ == "OK", data
    if data[0] == b"0":
        return []
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    return [part[1] for part in data if isinstance(part, tuple)]


def snapshot(path: str) -> dict[str, list[str]]:
    return {sub: sorted(os.listdir(os.path.join(path, sub))) for sub in ("cur", "new", "tmp")}


@pytest.fixture
def victim(server_factory: type[MraServer]) -> Iterator[tuple[MraServer, Mailbox, Mailbox]]:
    """A server (not started) with Bob's secret in his new/ and cur/, and Alice's INBOX."""
    s = server_factory()
    bob = s.store("bob@example.test").mailbox("INBOX")
    bob.append(SECRET)
    bob.append(SECRET, flags=["\\Seen"])
    alice = s.store().mailbox("INBOX")
    yield s, alice, bob


# -- 1. symlinks -------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["new", "cur"])
def test_attack_symlinked_maildir_directory_over_pop3_and_imap(
    victim: tuple[MraServer, Mailbox, Mailbox], sub: str
) -> None:
    s, alice, bob = victim
    alice.append(MINE, flags=["\\Seen"] if sub == "new" else [])  # in the other directory
    os.rmdir(os.path.join(alice.path, sub))
    os.symlink(os.path.join(bob.path, sub), os.path.join(alice.path, sub))
    before = snapshot(bob.path)
    s.start()
    p = pop3(s)
    assert pop3_bodies(p) == [crlf(MINE)]
    assert p.quit().startswith(b"+OK")  # RETR set \Seen: nothing moved in or out
    m = imap(s)
    assert imap_bodies(m) == [crlf(MINE)]
    # Nothing is delivered through it either.
    typ, _ = m.append("INBOX", "(\\Seen)" if sub == "cur" else "", None, crlf(MINE))
    assert typ == "NO"
    m.logout()
    assert snapshot(bob.path) == before
    assert f"symlink-refused path={alice.path}/{sub} " in s.log()  # the one log format


def test_attack_symlinked_message_file_over_pop3_and_imap(
    victim: tuple[MraServer, Mailbox, Mailbox],
) -> None:
    s, alice, bob = victim
    alice.append(MINE)
    bob.sync()
    secret = bob.get(bob.uids()[0])
    os.symlink(
        os.path.join(bob.path, secret.subdir, secret.name),
        os.path.join(alice.path, "cur", "1700000000.M1P1.planted:2,S"),
    )
    s.start()
    p = pop3(s)
    assert pop3_bodies(p) == [crlf(MINE)]
    # The file swapped for a symlink after the login: RETR refuses it, for itself only.
    alice.sync()
    mine = alice.get(alice.uids()[0])
    path = os.path.join(alice.path, mine.subdir, mine.name)
    os.rename(path, path + ".kept")
    os.symlink(os.path.join(bob.path, secret.subdir, secret.name), path)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/PERM\] Message 1 cannot be read"):
        p.retr(1)
    assert p.noop().startswith(b"+OK")
    p.quit()
    os.unlink(path)
    os.rename(path + ".kept", path)
    m = imap(s)
    assert imap_bodies(m) == [crlf(MINE)]
    m.logout()
    assert b"bob's secret" not in s.log().encode()


def test_attack_symlinked_folder_directory_over_imap(
    victim: tuple[MraServer, Mailbox, Mailbox],
) -> None:
    s, _alice, bob = victim
    store = s.store()
    os.symlink(bob.path, os.path.join(store.root, ".Stolen"))  # Bob's whole Maildir
    store.create_folder("Work")
    store.mailbox("Work").append(MINE)
    s.start()
    m = imap(s)
    typ, listing = m.list()
    assert typ == "OK" and not any(b"Stolen" in line for line in listing)
    assert m.select("Stolen")[0] == "NO"
    assert m.status("Stolen", "(MESSAGES)")[0] == "NO"
    # The selected folder swapped afterwards for a symlink to a directory Alice made, with a
    # copy of the folder's uidlist (so the UIDVALIDITY does not change) and `cur` leading to
    # Bob's: followed, the next FETCH would number and serve Bob's message.
    assert imap_bodies(m, "Work") == [crlf(MINE)]
    work = os.path.join(store.root, ".Work")
    decoy = os.path.join(store.root, "tmp", "decoy")
    os.mkdir(decoy)
    os.mkdir(os.path.join(decoy, "new"))
    os.mkdir(os.path.join(decoy, "tmp"))
    os.symlink(os.path.join(bob.path, "cur"), os.path.join(decoy, "cur"))
    for name in ("dovecot-uidlist", "maildirfolder"):
        Path(decoy, name).write_bytes(Path(work, name).read_bytes())
    os.rename(work, work + ".kept")
    os.symlink(decoy, work)
    # The server's inotify watches stay on the moved directories; flooding them with events
    # overflows their queues, and a directory whose events were lost is listed again.
    for sub in ("new", "cur"):
        for i in range(4200):  # two events each: past the 8,192 queued per directory
            flood = os.path.join(work + ".kept", sub, f".flood{i}")
            os.close(os.open(flood, os.O_CREAT | os.O_WRONLY, 0o600))
            os.unlink(flood)
    served = []
    for _ in range(2):
        try:
            m.noop()
            typ, data = m.fetch("1:*", "(BODY.PEEK[])")
            served += [part[1] for part in data if isinstance(part, tuple)]
        except imaplib.IMAP4.abort:
            break
    assert not any(b"secret" in body for body in served)
    m2 = imap(s)
    assert m2.select("Work")[0] == "NO"
    m2.logout()
    assert b"bob's secret" not in s.log().encode()


# -- 2. QUIT must not lie ----------------------------------------------------------------------


def chattr(flag: str, path: str) -> bool:
    return subprocess.run(["chattr", flag, path], capture_output=True).returncode == 0


@pytest.mark.skipif(not ROOT, reason="chattr +i needs CAP_LINUX_IMMUTABLE")
def test_attack_quit_with_an_undeletable_message_answers_err(server: MraServer) -> None:
    """The deletion fails for real (an immutable file): QUIT names the message, -ERR."""
    box = server.store().mailbox("INBOX")
    box.sync()
    first = box.get(box.uids()[0])
    path = os.path.join(box.path, first.subdir, first.name)
    if not chattr("+i", path):
        pytest.skip("the file system has no immutable flag")
    try:
        p = pop3(server)
        p.dele(1)
        p.dele(2)
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[SYS/TEMP\] Message 1 not removed"):
            p.quit()
    finally:
        chattr("-i", path)
    box.sync()
    assert box.uids() == [first.uid]  # 2 was removed, 1 is still there, as QUIT said
    assert "pop3-not-removed" in server.log()


def test_attack_quit_after_the_folder_was_renumbered_removes_the_right_message(
    server: MraServer,
) -> None:
    """The UIDs of the login's snapshot are another message's after a renumbering: QUIT must
    remove the message the client marked, and RETR serve the message it asked for."""
    box = server.store().mailbox("INBOX")
    exhaust_uids(box)
    box.sync()
    _one, two = (box.read_message(u) for u in box.uids())
    p = pop3(server)
    uidls = p.uidl()[1]
    box.append(b"Subject: three\n\nthree\n")  # renumbers: the old UIDs are gone
    box.sync()
    assert box.uids() == [1, 2, 3]
    assert b"\r\n".join(p.retr(2)[1]) + b"\r\n" == crlf(two)
    assert p.uidl()[1] == uidls
    p.dele(1)
    assert p.quit().startswith(b"+OK")
    box.sync()
    assert [box.read_message(u) for u in box.uids()] == [two, b"Subject: three\n\nthree\n"]


# -- 3. UIDs run out ---------------------------------------------------------------------------


def exhaust_uids(box: Mailbox) -> int:
    """The folder's uidlist rewritten so that its UIDs end just below 2^32 (a damaged or hostile
    tool). Returns the UIDVALIDITY."""
    box.sync()
    uv = box.uidvalidity
    first = MAX_UID - len(box) + 1
    lines = [f"3 V{uv} N{MAX_UID + 1}\n"]
    lines += [f"{first + i} :{m.base}\n" for i, m in enumerate(box.messages())]
    path = os.path.join(box.path, "dovecot-uidlist")
    Path(path + ".new").write_text("".join(lines))
    os.rename(path + ".new", path)
    return uv


def uids_and_validity(m: imaplib.IMAP4) -> tuple[list[int], int, int]:
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    uidvalidity = int(m.untagged_responses["UIDVALIDITY"][-1])
    uidnext = int(m.untagged_responses["UIDNEXT"][-1])
    typ, data = m.uid("SEARCH", "ALL")
    return [int(u) for u in data[0].split()], uidvalidity, uidnext


def test_attack_uid_space_exhausted_over_imap_and_pop3(server: MraServer) -> None:
    box = server.store().mailbox("INBOX")
    old = exhaust_uids(box)
    watcher = imap(server)
    assert uids_and_validity(watcher) == ([MAX_UID - 1, MAX_UID], old, MAX_UID + 1)
    p = pop3(server)
    old_uidls = [line.split()[1] for line in p.uidl()[1]]
    assert old_uidls == [pop3_uidl(u, old).encode() for u in (MAX_UID - 1, MAX_UID)]
    p.quit()

    m = imap(server)
    typ, data = m.append("INBOX", "", None, crlf(b"Subject: three\n\nthree\n"))
    assert typ == "OK", data
    code = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
    assert code is not None
    new = int(code.group(1))
    assert new != old and int(code.group(2)) == 3
    assert uids_and_validity(m) == ([1, 2, 3], new, 4)
    m.logout()
    # The session that had the folder selected is told, and ends (RFC 3501 2.3.1.1).
    with pytest.raises(imaplib.IMAP4.abort, match="replaced"):
        watcher.noop()
        watcher.noop()
    # POP3 clients download nothing again: the old messages keep their UIDLs.
    p = pop3(server)
    assert [line.split()[1] for line in p.uidl()[1]][:2] == old_uidls
    p.quit()
    assert "uids-exhausted-renumbered" in server.log()


def test_attack_uid_space_exhausted_on_delivery_by_mda(server: MraServer) -> None:
    box = server.store().mailbox("INBOX")
    old = exhaust_uids(box)
    config = server.config
    if ROOT:
        # mda never delivers as root: let it be nobody, who then owns the Maildir.
        config = server.base / "mda.toml"
        config.write_text(server.config.read_text() + '[mda]\nmail_uid = "nobody"\n')
        for dirpath, dirnames, filenames in os.walk(server.mail):
            for name in [".", *dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), 65534, 65534)
    proc = subprocess.run(
        [MDA, "--config", str(config), "-d", "alice@example.test"],
        input=b"Subject: three\n\nthree\n",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    m = imap(server)
    uids, uidvalidity, uidnext = uids_and_validity(m)
    assert (uids, uidnext) == ([1, 2, 3], 4) and uidvalidity != old
    assert imap_bodies(m)[2].endswith(crlf(b"Subject: three\n\nthree\n"))
    m.logout()


# -- 4. one broken message costs only itself ---------------------------------------------------


@pytest.fixture
def unprivileged(server_factory: type[MraServer]) -> MraServer:
    """A server that runs as `nobody`, as in production, so that file modes count."""
    if not ROOT:
        pytest.skip("needs root to start a server that drops to nobody")
    return server_factory('[server]\nuser = "nobody"\nrequire_readable_installation = false\n')


def chown_tree(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [".", *dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), 65534, 65534)


@pytest.mark.parametrize("sizes_in_name", [False, True])
def test_attack_unreadable_message_costs_only_itself_over_pop3(
    unprivileged: MraServer, sizes_in_name: bool
) -> None:
    s = unprivileged
    box = s.store().mailbox("INBOX")
    box.append(b"Subject: one\n\none\n")
    name = "1700000000.M2P1.host" + (",S=18,W=21" if sizes_in_name else "")
    Path(box.path, "new", name).write_bytes(b"Subject: two\n\ntwo\n")
    box.sync()  # UID 2
    box.append(b"Subject: three\n\nthree\n")
    chown_tree(s.mail)
    os.chmod(os.path.join(box.path, "new", name), 0)
    s.start()
    p = pop3(s)
    # Left out of the listing (whether or not its size needs a read), the rest served.
    assert [b"\r\n".join(p.retr(n)[1]) for n in range(1, p.stat()[0] + 1)] == [
        b"Subject: one\r\n\r\none",
        b"Subject: three\r\n\r\nthree",
    ]
    assert "pop3-message-left-out" in s.log() and "Permission denied" in s.log()
    assert p.quit().startswith(b"+OK")


def test_attack_foreign_hard_link_costs_only_itself_over_pop3(
    victim: tuple[MraServer, Mailbox, Mailbox],
) -> None:
    s, alice, bob = victim
    alice.append(MINE)
    bob.sync()
    secret = bob.get(bob.uids()[0])
    os.chown(os.path.join(bob.path, secret.subdir, secret.name), 65534, 65534)  # Bob's own
    os.link(  # named with its sizes: nothing needs to read it to list it
        os.path.join(bob.path, secret.subdir, secret.name),
        os.path.join(alice.path, "cur", "1700000000.M1P1.planted,S=45,W=49:2,S"),
    )
    s.start()
    p = pop3(s)
    assert pop3_bodies(p) == [crlf(MINE)]
    assert p.quit().startswith(b"+OK")
    assert "pop3-message-left-out" in s.log()


# -- answers that grow with the mailbox --------------------------------------------------------


def test_attack_pipelined_listings_are_made_as_they_are_read(
    server_factory: type[MraServer],
) -> None:
    """A mailbox owner pipelining LIST and UIDL made the server build every listing at once
    (each as big as the mailbox): memory and CPU for answers the client had not read yet,
    until the connection was cut past `max_unsent_output`. A listing is now a Stream, made as
    the client reads it, and the next command waits for that: the server holds one chunk, and
    a client that does read gets every answer."""
    s = server_factory(listeners=("pop3",))
    box = s.store().mailbox("INBOX")
    cur = Path(box.path, "cur")
    for i in range(2_000):  # as another MDA would leave them: fast, no fsync each
        (cur / f"1700000000.M{i}P1.host,S=20,W=21:2,S").write_bytes(
            b"Subject: x\n\nbody %05d\n" % i
        )
    s.start()
    assert s.proc is not None
    p = pop3(s)
    sock = p.sock
    before = _rss(s.proc.pid)
    rounds = 500
    sock.sendall(b"LIST\r\nUIDL\r\n" * rounds)  # 6 KiB asking for about 40 MB of answers
    time.sleep(1)  # the server has all the commands; the client reads nothing yet
    held = _rss(s.proc.pid)
    listings = 0
    f = sock.makefile("rb")
    while listings < 2 * rounds:
        line = f.readline()
        assert line, "the connection was cut"
        if line == b".\r\n":
            listings += 1
    assert p.quit().startswith(b"+OK")
    assert held - before < 16 * 1024 * 1024, (held - before) // 1024 // 1024


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")
