"""CONDSTORE and QRESYNC on a real `mra serve` with two workers: a client resynchronising from
what it last knew (imapclient, as a mail client uses it), and the invariant that a modseq a
client has seen never lets it miss a later change, whichever worker made it."""

from __future__ import annotations

import random
import re
import socket

from imapclient import IMAPClient

from tests.mra.conftest import PASSWORD, MraServer

_LITERAL = re.compile(rb"\{(\d+)\}$")


def _flags(data: dict[bytes, object]) -> set[bytes]:
    """A FETCH's flags, without \\Recent (each session's own)."""
    flags = data[b"FLAGS"]
    assert isinstance(flags, tuple)
    return set(flags) - {b"\\Recent"}


def _imapclient(s: MraServer) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=s.ports["imap"], ssl=False, timeout=30)
    client.login("alice@example.test", PASSWORD)
    return client


def test_imapclient_resyncs_with_condstore_and_qresync(server_factory: type[MraServer]) -> None:
    """A client that remembered the flags and HIGHESTMODSEQ of its last session learns what
    changed since with CHANGEDSINCE, what vanished with VANISHED, and stores conditionally."""
    s = server_factory("[server]\nworkers = 2\n", listeners=("imap",))
    inbox = s.store().mailbox("INBOX")
    for i in range(8):
        inbox.append(b"From: a@example.test\r\nSubject: m%d\r\n\r\nbody\r\n" % i)
    s.start()
    a = _imapclient(s)
    assert b"CONDSTORE" in a.capabilities() and b"QRESYNC" in a.capabilities()
    assert a.enable("CONDSTORE") == [b"CONDSTORE"]
    info = a.select_folder("INBOX")
    known = info[b"HIGHESTMODSEQ"]
    everything = list(range(1, 20))  # UIDs (imapclient 4 takes no "1:*")
    flags = {uid: _flags(d) for uid, d in a.fetch(everything, ["FLAGS"]).items()}
    assert set(flags) == set(range(1, 9))
    a.logout()

    b = _imapclient(s)  # another client, maybe another worker
    b.select_folder("INBOX")
    b.add_flags([2, 3], [b"\\Flagged"])
    b.add_flags([5], [b"\\Deleted"])
    b.expunge()
    b.append("INBOX", b"From: b@example.test\r\nSubject: new\r\n\r\nnew\r\n")
    b.logout()

    a = _imapclient(s)
    assert a.enable("QRESYNC") == [b"QRESYNC"]
    info = a.select_folder("INBOX")
    assert info[b"HIGHESTMODSEQ"] > known
    changed = a.fetch(everything, ["FLAGS"], modifiers=[f"CHANGEDSINCE {known}", "VANISHED"])
    vanished = a._imap.untagged_responses.pop("VANISHED", [])
    assert vanished == [b"(EARLIER) 5"]
    assert set(changed) == {2, 3, 9}
    for uid, data in changed.items():
        assert data[b"MODSEQ"][0] > known
        flags[uid] = _flags(data)
    del flags[5]
    assert flags == {uid: _flags(d) for uid, d in a.fetch(everything, ["FLAGS"]).items()}
    found = a.search(["MODSEQ", str(known + 1)])
    assert set(found) == {2, 3, 9}
    modseq = a.fetch([2], ["MODSEQ"])[2][b"MODSEQ"][0]
    store = a._imap._simple_command  # the tagged answer's text, as imaplib has it
    typ, data = store("UID", "STORE", "2", f"(UNCHANGEDSINCE {modseq - 1})", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and data[-1].startswith(b"[MODIFIED 2]")
    typ, data = store("UID", "STORE", "2", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and b"MODIFIED" not in data[-1]
    assert b"\\Seen" in a.fetch([2], ["FLAGS"])[2][b"FLAGS"]
    a.logout()


class Raw:
    """A bare IMAP connection (the answers as they come)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.tag = 0
        self.line()
        self.command(f'LOGIN alice@example.test "{PASSWORD}"')

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        while m := _LITERAL.search(line):
            n = int(m.group(1))
            while len(self.buf) < n:
                self.buf += self.sock.recv(65536)
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            more, self.buf = self.buf.split(b"\r\n", 1) if b"\r\n" in self.buf else (b"", b"")
            line += more
        return line

    def command(self, text: str) -> list[bytes]:
        self.tag += 1
        tag = b"t%d" % self.tag
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            line = self.line()
            out.append(line)
            if line.startswith(tag + b" "):
                assert line.startswith(tag + b" OK"), out
                return out

    def close(self) -> None:
        self.sock.close()


_FETCH = re.compile(rb"^\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)$")
_HIGHEST = re.compile(rb"\[HIGHESTMODSEQ (\d+)\]")


def _state(lines: list[bytes]) -> tuple[dict[int, set[bytes]], int]:
    flags = {}
    highest = 0
    for line in lines:
        if m := _FETCH.match(line):
            flags[int(m.group(1))] = set(m.group(2).split()) - {b"\\Recent"}
        if m := _HIGHEST.search(line):
            highest = int(m.group(1))
    return flags, highest


def test_no_change_is_missed_across_workers(server_factory: type[MraServer]) -> None:
    """Several clients change one folder through two workers while a resyncing client comes
    back again and again with QRESYNC from what it last knew: each time, what it knew plus
    VANISHED and the FETCHes equals the folder as a fresh look shows it."""
    s = server_factory("[server]\nworkers = 2\n", listeners=("imap",))
    inbox = s.store().mailbox("INBOX")
    for i in range(30):
        inbox.append(b"Subject: m%d\r\n\r\nbody\r\n" % i)
    validity = inbox.uidvalidity
    s.start()
    port = s.ports["imap"]
    writers = [Raw(port) for _ in range(4)]
    for w in writers:
        w.command("SELECT INBOX")
    rng = random.Random(7162)
    known: dict[int, set[bytes]] = {}
    highest = 0
    for round_ in range(12):
        for w in writers:
            for _ in range(3):
                n = rng.randint(1, 20)
                choice = rng.randrange(5)
                if choice == 0:
                    w.command(f"UID STORE {n} +FLAGS.SILENT (\\Deleted)")
                    w.command(f"UID EXPUNGE {n}")
                elif choice == 1:
                    w.command("APPEND INBOX {12+}\r\nSubject: x\r\n")
                else:
                    flag = rng.choice(["\\Seen", "\\Flagged", "$Work", "\\Answered"])
                    sign = rng.choice("+-")
                    w.command(f"UID STORE {n}:{n + 3} {sign}FLAGS.SILENT ({flag})")
        r = Raw(port)
        r.command("ENABLE QRESYNC")
        if round_ == 0:
            lines = r.command("SELECT INBOX")
            _, highest = _state(lines)
            known, _ = _state(r.command("UID FETCH 1:* (FLAGS MODSEQ)"))
        else:
            lines = r.command(f"SELECT INBOX (QRESYNC ({validity} {highest}))")
            changes, highest = _state(lines)
            for line in lines:
                if line.startswith(b"* VANISHED (EARLIER) "):
                    for part in line.split()[-1].split(b","):
                        lo, _, hi = part.partition(b":")
                        for uid in range(int(lo), int(hi or lo) + 1):
                            known.pop(uid, None)
            known.update(changes)
            truth, _ = _state(r.command("UID FETCH 1:* (FLAGS MODSEQ)"))
            assert known == truth, f"round {round_}: resync differs from the folder"
        r.close()
    for w in writers:
        w.close()
    assert "Traceback" not in s.log()


def test_thunderbird_condstore_resync(server_factory: type[MraServer]) -> None:
    """Thunderbird with `mail.server.default.use_condstore` (its CONDSTORE code: nsImapProtocol):
    `select "INBOX" (CONDSTORE)`, a full `UID fetch 1:* (FLAGS)` the first time, and at the
    next visit, when HIGHESTMODSEQ moved and the count is what it expects, only `UID fetch 1:*
    (FLAGS) (CHANGEDSINCE m)`; a count it does not expect makes it fetch all the flags again.
    Over IMAPS with the bytes Thunderbird sends; the changes are made by another connection."""
    from tests.mra.test_thunderbird import Client, uid_of

    server = server_factory("[mailboxes]\n")
    inbox = server.store().mailbox("INBOX")
    for i in range(6):
        inbox.append(b"From: bob@example.test\r\nSubject: m%d\r\n\r\nbody\r\n" % i)
    server.start()
    port = server.ports["imaps"]
    tb = Client(port)
    ok = tb.login()
    assert b"CONDSTORE" in ok and b"QRESYNC" in ok
    untagged, ok = tb.command('select "INBOX" (CONDSTORE)')
    highest = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(untagged)).group(1))  # type: ignore[union-attr]
    assert b"* 6 EXISTS" in untagged and b"[READ-WRITE]" in ok
    untagged, _ = tb.command("UID fetch 1:* (FLAGS)")
    assert uid_of(untagged) == [1, 2, 3, 4, 5, 6]
    assert not any(b"MODSEQ" in line for line in untagged)  # asked for FLAGS only (Dovecot too)
    tb.command("close")

    other = Client(port)
    other.login()
    other.command('select "INBOX"')
    other.command("uid store 2,5 +Flags (\\Flagged)")
    other.command("uid store 3 +Flags ($Label1)")

    untagged, _ = tb.command('select "INBOX" (CONDSTORE)')
    moved = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(untagged)).group(1))  # type: ignore[union-attr]
    assert moved > highest and b"* 6 EXISTS" in untagged
    untagged, _ = tb.command(f"UID fetch 1:* (FLAGS) (CHANGEDSINCE {highest})")
    assert sorted(uid_of(untagged)) == [2, 3, 5]
    assert any(b"$Label1" in line for line in untagged)
    tb.command("close")

    other.command("uid store 4 +Flags (\\Deleted)")
    other.command("expunge")
    untagged, _ = tb.command('select "INBOX" (CONDSTORE)')
    assert b"* 5 EXISTS" in untagged  # not the 6 it knew: all the flags again
    untagged, _ = tb.command("UID fetch 1:* (FLAGS)")
    assert uid_of(untagged) == [1, 2, 3, 5, 6]
    untagged, _ = tb.command(f"UID fetch 1:* (FLAGS) (CHANGEDSINCE {moved})")
    assert uid_of(untagged) == []  # an expunge changes no message's modseq (RFC 7162 3.1.4.1)
    for client in (tb, other):
        client.command("logout")
