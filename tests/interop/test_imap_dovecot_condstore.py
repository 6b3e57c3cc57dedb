"""CONDSTORE and QRESYNC (RFC 7162) asked of Dovecot 2.3 (with a real, on-disk index) and of us.

Each server has its own copy of one Maildir (the same files, uidlist, UIDVALIDITY and UIDs), so
that both can be changed in step. Modseq values are each server's own choice (Dovecot counts
from 1, ours start from the clock: mailstore/folderindex.py), so they are compared by rank: each
value is replaced by a label, `m1`, `m2`..., given in the order the values are first seen (in
ascending order within one answer). Both servers must then answer alike: which messages a
CHANGEDSINCE returns, which a STORE UNCHANGEDSINCE leaves in MODIFIED, which UIDs VANISHED
names, and whether two modseqs are equal or which is higher. A command may name a label
(`{m2}`): each server gets its own value.

QRESYNC is checked after expunges by another session, by files deleted on disk (as a script
or an `mda`-side deletion would), and by Dovecot itself working on our Maildir.

Differences by design, normalised or left out: the tagged texts (only the status word, and the
codes MODIFIED and HIGHESTMODSEQ, are compared; Dovecot adds timings, and CLIENTBUG to a STATUS
of the selected mailbox); the order of a command's own FETCHes and those of changes made
elsewhere (Dovecot sends the others' first, we send ours first: RFC 3501 leaves it open); the
tag in ESEARCH (each connection numbers its own commands); RECENT after an expunge of a
\\Recent message (avoided here: the messages are in cur/).
"""

from __future__ import annotations

import os
import re
import shutil
from types import TracebackType
from typing import Self

import pytest

from mailstore.store import MailStore
from tests.interop.dovecot import DovecotImap, chown_tree, make_maildir, traversable_tempdir
from tests.interop.test_imap_dovecot_compare import MraImap
from tests.mra.conftest import MraServer

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("require_dovecot")]

_NUMBERS = re.compile(rb"(MODSEQ \(|MODSEQ |HIGHESTMODSEQ )(\d+)")
_LABEL = re.compile(r"\{(m\d+)\}")
_CODE = re.compile(rb"^\S+ (OK|NO|BAD) (\[(?:MODIFIED|HIGHESTMODSEQ))")
_TAG = re.compile(rb'\(TAG "[^"]*"\)')


class Side:
    """One server's sessions and the labels of the modseqs it gave."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.values: dict[int, str] = {}
        self.by_label: dict[str, int] = {}

    def label(self, lines: list[bytes]) -> list[bytes]:
        found = sorted({int(m.group(2)) for line in lines for m in _NUMBERS.finditer(line)})
        for value in found:
            if value not in self.values:
                name = f"m{len(self.values) + 1}"
                self.values[value] = name
                self.by_label[name] = value
        return [
            _NUMBERS.sub(lambda m: m.group(1) + self.values[int(m.group(2))].encode(), line)
            for line in lines
        ]

    def fill(self, command: str) -> str:
        return _LABEL.sub(lambda m: str(self.by_label[m.group(1)]), command)


def _answer(lines: list[bytes]) -> list[bytes]:
    untagged = [_TAG.sub(b'(TAG "*")', line.rstrip(b"\r\n")) for line in lines[:-1]]
    tagged = lines[-1]
    m = _CODE.match(tagged)
    status = m.group(1) + b" " + m.group(2) + b"]" if m else tagged.split(b" ", 2)[1]
    return [*untagged, status]


class Pair:
    """Our server on one copy of alice's Maildir, Dovecot with an index on another."""

    def __init__(self, count: int) -> None:
        self.base = traversable_tempdir("mra-condstore-")
        self.server = MraServer(self.base, "[server]\nworkers = 2\n", listeners=("imap",))
        self.maildir = make_maildir(self.server.mail / "example.test" / "alice")
        inbox = MailStore(str(self.maildir)).mailbox("INBOX")
        for i in range(count):
            inbox.append(b"From: a@example.test\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (i, i))
        inbox.sync()
        inbox.mark_seen_by_reader(inbox.uids())  # in cur/: no \Recent (see the docstring)
        self.theirs = self.base / "dovecot-maildir"
        shutil.copytree(self.maildir, self.theirs, symlinks=True)
        self.index = self.base / "dovecot-index"
        chown_tree(self.maildir)
        chown_tree(self.theirs)
        self.server.start()
        self.sides = (Side("ours"), Side("dovecot"))
        self.sessions: list[tuple[MraImap | DovecotImap, MraImap | DovecotImap]] = []
        self.a = self.session()

    def session(self) -> tuple[MraImap | DovecotImap, MraImap | DovecotImap]:
        """A new session on each server (Dovecot's shares the index: another process)."""
        pair = (MraImap(self.server), DovecotImap(self.theirs, index=self.index))
        self.sessions.append(pair)
        return pair

    def same(
        self,
        command: str,
        sessions: tuple[object, object] | None = None,
        any_order: bool = False,
    ) -> list[bytes]:
        """The same command to both (labels filled in per server); the answers alike.
        `any_order`: the untagged lines as a set (RFC 3501 lets a server send its own FETCH
        answers and those of changes made elsewhere in any order)."""
        answers = []
        for side, session in zip(self.sides, sessions or self.a, strict=True):
            assert isinstance(session, DovecotImap)
            lines = side.label(_answer(session.command(side.fill(command))))
            answers.append(sorted(lines[:-1]) + lines[-1:] if any_order else lines)
        ours, dovecot = answers
        assert ours == dovecot, f"{command}:\n ours:    {ours}\n dovecot: {dovecot}"
        return ours

    def each(self, command: str, sessions: tuple[object, object] | None = None) -> None:
        """A command whose answers may differ (set-up): both must say OK."""
        for side, session in zip(self.sides, sessions or self.a, strict=True):
            assert isinstance(session, DovecotImap)
            session.ok(side.fill(command))

    def delete_file(self, uid: int) -> None:
        """Remove the message's file from both Maildirs, as a script on the server would."""
        for root in (self.maildir, self.theirs):
            box = MailStore(str(root)).mailbox("INBOX")
            box.sync()
            msg = box.get(uid)
            os.unlink(os.path.join(root, msg.subdir, msg.name))

    def uidvalidity(self) -> int:
        return MailStore(str(self.maildir)).mailbox("INBOX").uidvalidity

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ours, dovecot in self.sessions:
            ours.close()
            dovecot.close()
        self.server.stop()
        if not os.environ.get("IMAP_INTEROP_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)


def _highest(lines: list[bytes]) -> str:
    for line in lines:
        if m := re.search(rb"HIGHESTMODSEQ (m\d+)", line):
            return m.group(1).decode()
    raise AssertionError(lines)


def test_condstore_side_by_side() -> None:
    with Pair(6) as both:
        both.same("ENABLE CONDSTORE")
        start = _highest(both.same("SELECT INBOX"))
        both.same("FETCH 1:* (FLAGS MODSEQ)")
        both.same("STORE 2 +FLAGS (\\Flagged)")
        both.same("STORE 3 +FLAGS.SILENT (\\Seen)")
        both.same("UID STORE 4 +FLAGS.SILENT (\\Seen)")
        both.same(f"STORE 1:3 (UNCHANGEDSINCE {{{start}}}) +FLAGS.SILENT (\\Answered)")
        both.same(f"UID STORE 2:5 (UNCHANGEDSINCE {{{start}}}) +FLAGS (\\Draft)")
        both.same("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
        both.same(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {{{start}}})")
        both.same(f"FETCH 1:4 (UID) (CHANGEDSINCE {{{start}}})")
        both.same(f"SEARCH MODSEQ {{{start}}}")
        both.same("SEARCH RETURN (MIN MAX COUNT) MODSEQ 1")
        both.same("SEARCH MODSEQ 1 DRAFT")
        both.same('SEARCH MODSEQ "/flags/\\\\seen" all 1 SEEN')
        both.same("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")


def test_condstore_changes_by_another_session_side_by_side() -> None:
    with Pair(5) as both:
        start = _highest(both.same("SELECT INBOX (CONDSTORE)"))
        other = both.session()
        both.each("SELECT INBOX", other)
        both.each("STORE 2 +FLAGS (\\Answered)", other)
        both.same(
            f"STORE 1:3 (UNCHANGEDSINCE {{{start}}}) +FLAGS.SILENT (\\Flagged)", any_order=True
        )
        both.same("NOOP")
        both.same(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {{{start}}})")


def _qresync_after(both: Pair, expunge: object) -> None:
    """Select with QRESYNC, note the state, let `expunge` remove UIDs 2 and 4 and flag UID 5,
    then select again with QRESYNC from the noted state: VANISHED and FETCH alike."""
    both.same("ENABLE QRESYNC")
    start = _highest(both.same("SELECT INBOX"))
    both.same("UNSELECT")
    expunge(both)  # type: ignore[operator]
    validity = both.uidvalidity()
    both.same(f"SELECT INBOX (QRESYNC ({validity} {{{start}}} 1:6))")
    both.same(f"SELECT INBOX (QRESYNC ({validity} {{{start}}}))")
    both.same(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {{{start}}} VANISHED)")
    both.same(f"UID FETCH 3:5 (FLAGS) (CHANGEDSINCE {{{start}}} VANISHED)")


def test_qresync_after_expunges_by_another_session() -> None:
    def by_session(both: Pair) -> None:
        other = both.session()
        both.each("SELECT INBOX", other)
        both.each("UID STORE 2,4 +FLAGS.SILENT (\\Deleted)", other)
        both.each("EXPUNGE", other)
        both.each("UID STORE 5 +FLAGS ($Work)", other)

    with Pair(6) as both:
        _qresync_after(both, by_session)


def test_qresync_after_files_deleted_on_disk() -> None:
    def on_disk(both: Pair) -> None:
        both.delete_file(2)
        both.delete_file(4)
        other = both.session()
        both.each("SELECT INBOX", other)
        both.each("UID STORE 5 +FLAGS ($Work)", other)

    with Pair(6) as both:
        _qresync_after(both, on_disk)


def test_qresync_after_dovecot_expunged_on_our_maildir() -> None:
    """Dovecot (its own index) expunges on the Maildir we serve; Dovecot's side of the pair
    hears it from another Dovecot session."""

    def by_dovecot(both: Pair) -> None:
        with DovecotImap(both.maildir, index=both.base / "dovecot-on-ours") as intruder:
            intruder.ok("SELECT INBOX")
            intruder.ok("UID STORE 2,4 +FLAGS.SILENT (\\Deleted)")
            intruder.ok("EXPUNGE")
            intruder.ok("UID STORE 5 +FLAGS ($Work)")
        other = DovecotImap(both.theirs, index=both.index)
        try:
            other.ok("SELECT INBOX")
            other.ok("UID STORE 2,4 +FLAGS.SILENT (\\Deleted)")
            other.ok("EXPUNGE")
            other.ok("UID STORE 5 +FLAGS ($Work)")
        finally:
            other.close()

    with Pair(6) as both:
        _qresync_after(both, by_dovecot)


def test_vanished_for_expunge_side_by_side() -> None:
    with Pair(6) as both:
        both.same("ENABLE QRESYNC")
        both.same("SELECT INBOX")
        both.same("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        both.same("EXPUNGE")
        other = both.session()
        both.each("SELECT INBOX", other)
        both.each("UID STORE 6 +FLAGS.SILENT (\\Deleted)", other)
        both.each("EXPUNGE", other)
        both.same("NOOP")
        both.same("FETCH 1:* (UID FLAGS)")
