"""CONDSTORE and QRESYNC (RFC 7162), with the RFC's examples as transcripts.

Modseqs here are time-based (mailstore/folderindex.py), so the RFC's numbers are `{n}` holes
and the values the server gave are read back and used, as a client would. "Another session"
is a second session of the same process (`Other`: the folder state is shared) or of another
worker (`Worker`: its own folder state and index connection, as a second process has).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mailstore.folderindex import NAME as INDEX_NAME
from mra.auth.glue import AuthService
from mra.context import Connection, Services
from mra.imap.session import ImapSession
from tests.unit.imap.test_conformance import Other
from tests.unit.imap.test_session_transcripts import Client

SYSTEM = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
_MODSEQ = re.compile(r"MODSEQ \(?(\d+)\)?")
_HIGHEST = re.compile(r"\[HIGHESTMODSEQ (\d+)\]")


class Worker(Client):
    """A session of another worker process on the same Maildir: services of its own."""

    def __init__(self, first: Client) -> None:
        self.store = first.store
        config = first.session.services.config
        services = Services(config, AuthService(config))
        self.session = ImapSession(Connection("imap", "127.0.0.1"), services)
        self.closed = False
        self.greeting = self._text(self.session.greeting())


def highest(lines: list[str]) -> int:
    """The HIGHESTMODSEQ a response named."""
    for line in lines:
        if m := _HIGHEST.search(line):
            return int(m.group(1))
    raise AssertionError(f"no HIGHESTMODSEQ in {lines}")


def modseqs(lines: list[str]) -> dict[int, int]:
    """{sequence number: MODSEQ} of the FETCH lines."""
    out = {}
    for line in lines:
        if (m := re.match(r"\* (\d+) FETCH", line)) and (ms := _MODSEQ.search(line)):
            out[int(m.group(1))] = int(ms.group(1))
    return out


def add(c: Client, count: int) -> None:
    """More messages, delivered as mda would (another writer, no index), and seen arrive
    by a reader (in cur/: not \\Recent, which would only clutter the transcripts)."""
    inbox = c.store.mailbox("INBOX")
    uids = [inbox.append(b"Subject: m%d\r\n\r\nbody\r\n" % i) for i in range(count)]
    inbox.sync()
    inbox.mark_seen_by_reader([1, *uids])


def select(c: Client, what: str = "s SELECT INBOX (CONDSTORE)") -> list[str]:
    lines = c.send(what + "\r\n")
    assert lines[-1].startswith(what.split()[0] + " OK"), lines
    return lines


@pytest.fixture
def big(tmp_path: Path) -> Client:
    """Alice logged in, INBOX holding 10 messages (UIDs 1-10)."""
    c = Client(tmp_path)
    add(c, 8)
    c.login()
    return c


# -- 3.1.1, 3.1.2: HIGHESTMODSEQ and NOMODSEQ in SELECT --------------------------------------


def test_capabilities(c: Client) -> None:
    c.login()
    caps = c.send("a CAPABILITY\r\n")[0].split()
    assert "CONDSTORE" in caps and "QRESYNC" in caps


def test_select_names_highestmodseq_3_1_2_1(c: Client) -> None:
    """Example 3: every SELECT of a folder with persistent modseqs, CONDSTORE or not."""
    c.login()
    c.expect(
        "A142 SELECT INBOX\r\n",
        f"* FLAGS ({SYSTEM})",
        f"* OK [PERMANENTFLAGS ({SYSTEM} \\*)] Flags permitted.",
        "* 2 EXISTS",
        "* 1 RECENT",
        "* OK [UNSEEN 1] First unseen.",
        "* OK [UIDVALIDITY {n}] UIDs valid",
        "* OK [UIDNEXT 3] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "A142 OK [READ-WRITE] Select completed",
    )


def test_nomodseq_when_the_index_cannot_be_made_3_1_2_2(tmp_path: Path) -> None:
    """Example 4: a folder whose index cannot be made (its place is taken by a directory)
    says NOMODSEQ, and the commands that need modseqs answer NO."""
    c = Client(tmp_path)
    os.mkdir(c.store.mailbox("INBOX").path + "/" + INDEX_NAME)
    c.login()
    lines = select(c, "s SELECT INBOX")
    assert "* OK [NOMODSEQ] No permanent modsequences" in lines
    assert not any("HIGHESTMODSEQ" in line for line in lines)
    c.expect(
        "b FETCH 1 (MODSEQ)\r\n",
        "b NO [CANNOT] Mod-sequences are not available for this mailbox",
    )
    c.expect(
        "c STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)\r\n",
        "c NO [CANNOT] Mod-sequences are not available for this mailbox",
    )
    c.expect("d FETCH 1 (FLAGS)\r\n", "* 1 FETCH (FLAGS (\\Recent))", "d OK FETCH completed")
    c.expect(
        "e STATUS INBOX (HIGHESTMODSEQ)\r\n",
        "* STATUS INBOX (HIGHESTMODSEQ 0)",
        "e OK STATUS completed",
    )


# -- 3.1.3: STORE UNCHANGEDSINCE ------------------------------------------------------------


def test_uid_store_unchangedsince_silent_example_5(big: Client) -> None:
    """Example 5: the messages not changed since the modseq are stored, and with .SILENT
    each is answered with its UID and new MODSEQ only (one STORE, one modseq)."""
    c = big
    since = highest(select(c))
    lines = c.expect(
        f"a103 UID STORE 6,4,8 (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Deleted $Processed)\r\n",
        f"* FLAGS ({SYSTEM} $Processed)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Processed \\*)] Flags permitted.",
        "* 4 FETCH (UID 4 MODSEQ ({n}))",
        "* 6 FETCH (UID 6 MODSEQ ({n}))",
        "* 8 FETCH (UID 8 MODSEQ ({n}))",
        "a103 OK UID STORE completed",
    )
    new = set(modseqs(lines).values())
    assert len(new) == 1 and new.pop() > since


def test_store_unchangedsince_silent_example_6(big: Client) -> None:
    """Example 6: STORE by number, .SILENT: MODSEQ alone (no UID without QRESYNC or a UID
    command, as the RFC's example and Dovecot)."""
    c = big
    since = highest(select(c))
    c.expect(
        f"a104 STORE * (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Deleted)\r\n",
        "* 10 FETCH (MODSEQ ({n}))",
        "a104 OK STORE completed",
    )


def test_store_unchangedsince_modified_by_another_session_example_7(big: Client) -> None:
    """Example 7: messages changed after the client's modseq (here by a session of another
    worker) are left alone and named in MODIFIED; the others are stored."""
    c = big
    since = highest(select(c))
    w = Worker(c)
    w.login()
    select(w)
    w.send("x STORE 7,9 +FLAGS (\\Flagged)\r\n")
    c.expect(
        f"d105 STORE 7,5,9 (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Deleted)\r\n",
        "* 5 FETCH (MODSEQ ({n}))",
        # The other session's change, told now as it would be after any command.
        "* 7 FETCH (MODSEQ ({n}) FLAGS (\\Flagged))",
        "* 9 FETCH (MODSEQ ({n}) FLAGS (\\Flagged))",
        "d105 OK [MODIFIED 7,9] Conditional store failed.",
    )
    lines = c.send("e FETCH 5,7,9 (FLAGS)\r\n")
    assert "* 5 FETCH (FLAGS (\\Deleted))" in lines
    assert any(line.startswith("* 7 FETCH") and "\\Flagged" in line for line in lines)
    assert not any("\\Deleted" in line for line in lines if line.startswith("* 7 FETCH"))


def test_uid_store_modified_names_uids_and_non_silent_answers_flags(big: Client) -> None:
    """MODIFIED names UIDs for UID STORE; without .SILENT the messages stored (not those
    modified) are answered with UID, MODSEQ and FLAGS."""
    c = big
    select(c)
    c.send("a STORE 3 +FLAGS (\\Answered)\r\n")
    before = modseqs(c.send("b FETCH 2:3 (MODSEQ)\r\n"))
    since = before[2]
    assert before[3] > since
    lines = c.expect(
        f"c UID STORE 2:3 (UNCHANGEDSINCE {since}) +FLAGS (\\Flagged)\r\n",
        "* 2 FETCH (UID 2 MODSEQ ({n}) FLAGS (\\Flagged \\Seen))",
        "c OK [MODIFIED 3] Conditional store failed.",
    )
    assert modseqs(lines)[2] > before[3]


def test_store_unchangedsince_zero_always_fails(big: Client) -> None:
    """UNCHANGEDSINCE 0: every message has a modseq above 0, so nothing is stored (RFC 7162
    3.1.3: a way to test whether a message exists, as Dovecot does)."""
    c = big
    select(c)
    c.expect(
        "a STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)\r\n",
        "a OK [MODIFIED 1:3] Conditional store failed.",
    )


def test_store_unchangedsince_that_changes_nothing_keeps_the_modseq(big: Client) -> None:
    """A store that passes the test but changes nothing: no new modseq (RFC 7162 3.1.3)."""
    c = big
    select(c)
    before = modseqs(c.send("a FETCH 2 (MODSEQ)\r\n"))[2]  # message 2 is \Seen already
    lines = c.expect(
        f"b STORE 2 (UNCHANGEDSINCE {before}) +FLAGS (\\Seen)\r\n",
        f"* 2 FETCH (MODSEQ ({before}) FLAGS (\\Seen))",
        "b OK STORE completed",
    )
    assert modseqs(lines)[2] == before


def test_store_modifier_errors(big: Client) -> None:
    c = big
    select(c)
    c.expect(
        "a STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)\r\n", "a BAD STORE: invalid UNCHANGEDSINCE"
    )
    c.expect("b STORE 1 (UNCHANGED 5) +FLAGS (\\Seen)\r\n", "b BAD STORE: unknown STORE modifier")
    c.expect(
        "c STORE 1 (UNCHANGEDSINCE 9223372036854775808) +FLAGS (\\Seen)\r\n",
        "c BAD STORE: invalid UNCHANGEDSINCE",
    )
    c.send("d EXAMINE INBOX\r\n")
    c.expect(
        "e STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)\r\n", "e NO [READ-ONLY] Mailbox is read-only"
    )


# -- 3.1.4: FETCH MODSEQ and CHANGEDSINCE --------------------------------------------------------


def test_fetch_modseq_3_1_4(big: Client) -> None:
    c = big
    first = highest(select(c))
    c.send("a STORE 2 +FLAGS (\\Flagged)\r\n")
    lines = c.expect(
        "b FETCH 1:3 (MODSEQ)\r\n",
        f"* 1 FETCH (MODSEQ ({first}))",
        "* 2 FETCH (MODSEQ ({n}))",
        f"* 3 FETCH (MODSEQ ({first}))",
        "b OK FETCH completed",
    )
    assert modseqs(lines)[2] > first


def test_fetch_changedsince_3_1_4_1(big: Client) -> None:
    """`UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)`: the messages changed since m, MODSEQ added
    (after the other items, as Dovecot)."""
    c = big
    since = highest(select(c))
    c.send("a STORE 4,6,8 +FLAGS ($NoJunk)\r\n")
    c.expect(
        f"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})\r\n",
        "* 4 FETCH (UID 4 FLAGS ($NoJunk) MODSEQ ({n}))",
        "* 6 FETCH (UID 6 FLAGS ($NoJunk) MODSEQ ({n}))",
        "* 8 FETCH (UID 8 FLAGS ($NoJunk) MODSEQ ({n}))",
        "s100 OK UID FETCH completed",
    )
    c.expect(
        f"s101 FETCH 5:7 (UID) (CHANGEDSINCE {since})\r\n",
        "* 6 FETCH (UID 6 MODSEQ ({n}))",
        "s101 OK FETCH completed",
    )
    now = max(modseqs(c.send("x FETCH 1:* (MODSEQ)\r\n")).values())
    c.expect(f"s102 FETCH 1:* (FLAGS) (CHANGEDSINCE {now})\r\n", "s102 OK FETCH completed")


def test_fetch_changedsince_sees_changes_by_other_writers(big: Client) -> None:
    """Flags changed by another worker and by a writer without the index (mutt, Dovecot)."""
    c = big
    since = highest(select(c))
    w = Worker(c)
    w.login()
    select(w)
    w.send("x STORE 3 +FLAGS (\\Answered)\r\n")
    c.store.mailbox("INBOX").store_flags([9], "add", ["\\Draft"])
    told = c.expect(
        "a NOOP\r\n",
        "* 3 FETCH (MODSEQ ({n}) FLAGS (\\Answered))",
        "* 9 FETCH (MODSEQ ({n}) FLAGS (\\Draft))",
        "a OK NOOP completed",
    )
    lines = c.expect(
        f"b UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})\r\n",
        "* 3 FETCH (UID 3 FLAGS (\\Answered) MODSEQ ({n}))",
        "* 9 FETCH (UID 9 FLAGS (\\Draft) MODSEQ ({n}))",
        "b OK UID FETCH completed",
    )
    assert modseqs(lines) == modseqs(told) and all(m > since for m in modseqs(lines).values())


def test_changedsince_and_modseq_errors(big: Client) -> None:
    c = big
    select(c)
    c.expect("a FETCH 1 (FLAGS) (CHANGEDSINCE)\r\n", "a BAD FETCH: unknown FETCH modifier")
    c.expect("b FETCH 1 (FLAGS) (CHANGEDSINCE -1)\r\n", "b BAD FETCH: invalid CHANGEDSINCE modseq")
    c.expect("c FETCH 1 (FLAGS) (VANISHED)\r\n", "c BAD FETCH: unknown FETCH modifier")
    c.expect(
        "d UID FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
        "d BAD UID FETCH: QRESYNC not enabled",
    )


# -- 3.1.5, 3.1.10: SEARCH MODSEQ ---------------------------------------------------------------


def test_search_modseq_3_1_5(big: Client) -> None:
    c = big
    since = highest(select(c))
    lines = c.send('a SEARCH MODSEQ "/flags/\\\\draft" all 1\r\n')
    assert lines[0] == f"* SEARCH 1 2 3 4 5 6 7 8 9 10 (MODSEQ {since})", lines
    c.send("b STORE 2,5 +FLAGS (\\Draft)\r\n")
    lines = c.send(f"c SEARCH MODSEQ {since + 1}\r\n")
    assert re.fullmatch(r"\* SEARCH 2 5 \(MODSEQ \d+\)", lines[0]), lines
    c.expect("t SEARCH OR NOT MODSEQ 1 LARGER 50000\r\n", "* SEARCH", "t OK SEARCH completed")
    c.expect('u SEARCH MODSEQ "/flags/x" nobody 1\r\n', "u BAD SEARCH: MODSEQ: invalid entry")


def test_esearch_modseq_3_1_10(big: Client) -> None:
    """ESEARCH: MODSEQ last, the highest of the messages returned (MIN and MAX alone: of those
    two, as Dovecot)."""
    c = big
    select(c)
    c.send("a STORE 2 +FLAGS (\\Draft)\r\n")
    c.send("b STORE 5 +FLAGS (\\Flagged)\r\n")
    second = modseqs(c.send("x FETCH 2 (MODSEQ)\r\n"))[2]
    fifth = modseqs(c.send("y FETCH 5 (MODSEQ)\r\n"))[5]
    c.expect(
        "c SEARCH RETURN (MIN MAX COUNT) MODSEQ 1\r\n",
        f'* ESEARCH (TAG "c") MIN 1 MAX 10 COUNT 10 MODSEQ {fifth}',
        "c OK SEARCH completed",
    )
    c.expect(
        "d SEARCH RETURN (MIN) MODSEQ 1 DRAFT\r\n",
        f'* ESEARCH (TAG "d") MIN 2 MODSEQ {second}',
        "d OK SEARCH completed",
    )
    c.expect(
        "e SEARCH RETURN (MIN) MODSEQ 1 DELETED\r\n", '* ESEARCH (TAG "e")', "e OK SEARCH completed"
    )


# -- 3.1.6, 3.1.7, 3.1.8: STATUS, SELECT (CONDSTORE), ENABLE --------------------------------------


def test_status_highestmodseq_3_1_6(big: Client) -> None:
    c = big
    c.send("a CREATE blurdybloop\r\n")
    lines = c.expect(
        "A042 STATUS blurdybloop (UIDNEXT MESSAGES HIGHESTMODSEQ)\r\n",
        "* STATUS blurdybloop (MESSAGES 0 UIDNEXT 1 HIGHESTMODSEQ {n})",
        "A042 OK STATUS completed",
    )
    assert int(lines[0].split()[-1].rstrip(")")) > 0
    inbox = highest(select(c))
    c.expect(
        "b STATUS INBOX (HIGHESTMODSEQ)\r\n",
        f"* STATUS INBOX (HIGHESTMODSEQ {inbox})",
        "b OK STATUS completed",
    )


def test_select_condstore_parameter_3_1_7(big: Client) -> None:
    """SELECT (CONDSTORE) turns CONDSTORE on: flag changes by others come with MODSEQ."""
    c = big
    select(c, "A142 SELECT INBOX (CONDSTORE)")
    w = Worker(c)
    w.login()
    select(w)
    w.send("x STORE 3 +FLAGS (\\Flagged)\r\n")
    c.expect("a NOOP\r\n", "* 3 FETCH (MODSEQ ({n}) FLAGS (\\Flagged))", "a OK NOOP completed")
    c.expect(
        "b SELECT INBOX (NONSENSE)\r\n",
        "* OK [CLOSED] Previous mailbox closed.",
        "b BAD SELECT: unknown SELECT parameter NONSENSE",
    )


def test_enable_condstore_3_1_8_and_unsolicited_fetch(big: Client) -> None:
    c = big
    c.expect("A142 ENABLE CONDSTORE\r\n", "* ENABLED CONDSTORE", "A142 OK ENABLE completed")
    select(c, "s SELECT INBOX")
    o = Other(c)
    o.login()
    select(o)
    o.send("x STORE 4 +FLAGS ($Work)\r\n")
    c.expect(
        "a NOOP\r\n",
        f"* FLAGS ({SYSTEM} $Work)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $Work \\*)] Flags permitted.",
        "* 4 FETCH (MODSEQ ({n}) FLAGS ($Work))",
        "a OK NOOP completed",
    )


def test_first_condstore_enabling_command_tells_highestmodseq(big: Client) -> None:
    """RFC 7162 3.1: a CONDSTORE-enabling command while a mailbox is selected; the first
    tells HIGHESTMODSEQ (as Dovecot), the next ones do not."""
    c = big
    h = highest(select(c, "s SELECT INBOX"))
    c.expect(
        "a FETCH 1 (MODSEQ)\r\n",
        f"* OK [HIGHESTMODSEQ {h}] Highest",
        f"* 1 FETCH (MODSEQ ({h}))",
        "a OK FETCH completed",
    )
    c.expect("b FETCH 1 (MODSEQ)\r\n", f"* 1 FETCH (MODSEQ ({h}))", "b OK FETCH completed")


# -- 3.2: QRESYNC ---------------------------------------------------------------------------------


def test_enable_qresync_implies_condstore_3_2_3(big: Client) -> None:
    c = big
    c.expect("A01 ENABLE QRESYNC\r\n", "* ENABLED QRESYNC", "A01 OK ENABLE completed")
    select(c)
    o = Other(c)
    o.login()
    select(o)
    o.send("x STORE 4 +FLAGS (\\Seen)\r\n")
    c.expect("a NOOP\r\n", "* 4 FETCH (UID 4 MODSEQ ({n}) FLAGS (\\Seen))", "a OK NOOP completed")


def _uidvalidity(lines: list[str]) -> int:
    for line in lines:
        if m := re.search(r"\[UIDVALIDITY (\d+)\]", line):
            return int(m.group(1))
    raise AssertionError(lines)


def test_select_qresync_3_2_5(big: Client) -> None:
    """After a disconnection: VANISHED (EARLIER) for the known UIDs expunged since, then the
    changes (UID FLAGS MODSEQ), after the usual answer."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    lines = select(c)
    validity, since = _uidvalidity(lines), highest(lines)
    c.send("a LOGOUT\r\n")
    w = Worker(c)
    w.login()
    select(w)
    w.send("b STORE 2,4 +FLAGS (\\Deleted)\r\n")
    w.send("c EXPUNGE\r\n")  # UIDs 2 and 4
    w.send("d UID STORE 6 +FLAGS ($MDNSent)\r\n")  # now message 4
    c2 = Other(c)
    c2.login()
    c2.send("A01 ENABLE QRESYNC\r\n")
    lines = c2.expect(
        f"A03 SELECT INBOX (QRESYNC ({validity} {since} 1:10))\r\n",
        f"* FLAGS ({SYSTEM} $MDNSent)",
        f"* OK [PERMANENTFLAGS ({SYSTEM} $MDNSent \\*)] Flags permitted.",
        "* 8 EXISTS",
        "* 0 RECENT",
        "* OK [UNSEEN 1] First unseen.",
        f"* OK [UIDVALIDITY {validity}] UIDs valid",
        "* OK [UIDNEXT 11] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "* VANISHED (EARLIER) 2,4",
        "* 4 FETCH (UID 6 FLAGS ($MDNSent) MODSEQ ({n}))",
        "A03 OK [READ-WRITE] Select completed",
    )
    assert highest(lines) > since
    # Known UIDs limit both answers; a UIDVALIDITY of another folder: a plain SELECT.
    lines = c2.send(f"A04 SELECT INBOX (QRESYNC ({validity} {since} 5:10))\r\n")
    assert (
        "* VANISHED (EARLIER) 2,4" not in lines
        and "* 4 FETCH (UID 6 FLAGS ($MDNSent) MODSEQ (" in " ".join(lines)
    )
    lines = c2.send(f"A05 SELECT INBOX (QRESYNC ({validity + 1} {since}))\r\n")
    assert not any("VANISHED" in line or "FETCH" in line for line in lines), lines


def test_select_qresync_needs_enable_and_valid_parameters(big: Client) -> None:
    c = big
    c.expect("a SELECT INBOX (QRESYNC (1 1))\r\n", "a BAD SELECT: QRESYNC not enabled")
    c.send("b ENABLE QRESYNC\r\n")
    c.expect("c SELECT INBOX (QRESYNC)\r\n", "c BAD SELECT: QRESYNC parameters missing")
    c.expect("d SELECT INBOX (QRESYNC (0 1))\r\n", "d BAD SELECT: invalid QRESYNC UIDVALIDITY")
    c.expect("e SELECT INBOX (QRESYNC (1 x))\r\n", "e BAD SELECT: invalid QRESYNC modseq")
    c.expect("f SELECT INBOX (QRESYNC (1 1 1:*))\r\n", "f BAD SELECT: invalid QRESYNC known-uids")
    c.expect(
        "g SELECT INBOX (QRESYNC (1 1 1:5 (1:3 1:2)))\r\n", "g BAD SELECT: invalid QRESYNC sets"
    )


def test_uid_fetch_vanished_3_2_6(big: Client) -> None:
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    since = highest(select(c))
    o = Other(c)
    o.login()
    select(o)
    o.send("a STORE 3,5,7 +FLAGS (\\Deleted)\r\n")
    o.send("b EXPUNGE\r\n")
    o.send("c STORE 1 +FLAGS (\\Seen)\r\n")
    c.send("x SELECT INBOX\r\n")  # a fresh view: the expunges are the past now
    c.expect(
        f"s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)\r\n",
        "* VANISHED (EARLIER) 3,5,7",
        "* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ ({n}))",
        "s100 OK UID FETCH completed",
    )
    c.expect(
        f"s101 UID FETCH 4:6 (FLAGS) (CHANGEDSINCE {since} VANISHED)\r\n",
        "* VANISHED (EARLIER) 5",
        "s101 OK UID FETCH completed",
    )
    c.expect(
        "s102 UID FETCH 1 (FLAGS) (VANISHED)\r\n",
        "s102 BAD UID FETCH: VANISHED used without CHANGEDSINCE",
    )


def test_vanished_replaces_expunge_3_2_10(big: Client) -> None:
    """With QRESYNC one `* VANISHED uids` for an EXPUNGE (and the new HIGHESTMODSEQ in its
    tagged OK), for another session's expunges too, and for MOVE."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    select(c)
    c.send("a STORE 3:5 +FLAGS.SILENT (\\Deleted)\r\n")
    lines = c.expect(
        "A202 EXPUNGE\r\n", "* VANISHED 3:5", "A202 OK [HIGHESTMODSEQ {n}] EXPUNGE completed"
    )
    after = highest(lines)
    o = Other(c)
    o.login()
    select(o)
    o.send("b STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    o.send("c EXPUNGE\r\n")
    lines = c.expect("d NOOP\r\n", "* VANISHED 1", "d OK [HIGHESTMODSEQ {n}] NOOP completed")
    assert highest(lines) > after
    c.send("e CREATE Other\r\n")
    c.expect(
        "f UID MOVE 9 Other\r\n",
        "* OK [COPYUID {n} 9 1] Moved",
        "* VANISHED 9",
        "f OK [HIGHESTMODSEQ {n}] UID MOVE completed",
    )


def test_highestmodseq_never_passes_a_held_back_expunge_section_6(big: Client) -> None:
    """RFC 7162 3.2 and its section 6 example: while an expunge is held back (a FETCH by
    number), the MODSEQs sent may be above it, so the HIGHESTMODSEQ told is the one before."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    before = highest(select(c))
    o = Other(c)
    o.login()
    select(o)
    o.send("a STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")
    o.send("b EXPUNGE\r\n")
    o.send("c STORE 5 +FLAGS (\\Flagged)\r\n")
    lines = c.send("d FETCH 5 (FLAGS)\r\n")  # by number: the expunge of 2 waits
    assert not any("VANISHED" in line for line in lines), lines
    told = [int(m.group(1)) for line in lines if (m := _HIGHEST.search(line))]
    assert told == [before], lines
    lines = c.send("e NOOP\r\n")
    assert "* VANISHED 2" in lines and highest(lines) > before


# -- the invariant: an old modseq never misses a change, whatever became of the index --------------


def test_deleted_index_loses_no_change(big: Client) -> None:
    """The index deleted between two sessions: a client holding the old HIGHESTMODSEQ still
    learns of every change, by CHANGEDSINCE and by QRESYNC (RFC 7162 3.2.10 allows naming UIDs
    it never knew)."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    lines = select(c)
    validity, since = _uidvalidity(lines), highest(lines)
    c.send("a LOGOUT\r\n")
    path = c.store.mailbox("INBOX").path
    outside = c.store.mailbox("INBOX")
    outside.store_flags([3], "add", ["\\Flagged"])
    outside.expunge([6])
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(os.path.join(path, INDEX_NAME + suffix))
        except FileNotFoundError:
            pass
    w = Worker(c)  # a fresh process: the index is rebuilt from the Maildir
    w.login()
    w.send("A01 ENABLE QRESYNC\r\n")
    lines = w.send(f"A03 SELECT INBOX (QRESYNC ({validity} {since}))\r\n")
    assert highest(lines) > since
    assert "* VANISHED (EARLIER) 6" in lines, lines
    fetched = [line for line in lines if " FETCH (" in line]
    assert len(fetched) == 9 and any("UID 3 FLAGS (\\Flagged)" in line for line in fetched)
    lines = w.send(f"b UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})\r\n")
    assert len([line for line in lines if " FETCH (" in line]) == 9


def test_qresync_sequence_match_data_narrows_the_fallback_3_2_5_2(big: Client) -> None:
    """When the expunge log does not reach back (the index was rebuilt), the known-sequence-set
    and known-uid-set tell where the client still agrees: nothing before that is named."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    lines = select(c)
    validity, since = _uidvalidity(lines), highest(lines)
    c.send("a LOGOUT\r\n")
    outside = c.store.mailbox("INBOX")
    outside.expunge([8])
    path = outside.path
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(path, INDEX_NAME + suffix)):
            os.unlink(os.path.join(path, INDEX_NAME + suffix))
    w = Worker(c)
    w.login()
    w.send("A01 ENABLE QRESYNC\r\n")
    lines = w.send(f"A03 SELECT INBOX (QRESYNC ({validity} {since} 1:10 (1:7 1:7)))\r\n")
    assert "* VANISHED (EARLIER) 8" in lines, lines
    lines = w.send(f"A04 SELECT INBOX (QRESYNC ({validity} {since} 1:10))\r\n")
    assert "* VANISHED (EARLIER) 8" in lines, lines


def test_expunge_by_file_deletion_is_vanished(big: Client) -> None:
    """A message file deleted on disk (as by mda's or a script's deletion): the next sync
    logs it, and QRESYNC names it."""
    c = big
    c.send("A01 ENABLE QRESYNC\r\n")
    since = highest(select(c))
    inbox = c.store.mailbox("INBOX")
    inbox.sync()
    msg = inbox.get(7)
    os.unlink(os.path.join(inbox.path, msg.subdir, msg.name))
    c.expect("a NOOP\r\n", "* VANISHED 7", "a OK [HIGHESTMODSEQ {n}] NOOP completed")
    o = Other(c)
    o.login()
    o.send("A01 ENABLE QRESYNC\r\n")
    select(o)
    o.expect(
        f"b UID FETCH 1:* (UID) (CHANGEDSINCE {since} VANISHED)\r\n",
        "* VANISHED (EARLIER) 7",
        "b OK UID FETCH completed",
    )


# -- IMAP4rev2 ------------------------------------------------------------------------------------


def test_rev2_with_qresync(big: Client) -> None:
    """IMAP4rev2 and QRESYNC together: ESEARCH with MODSEQ, VANISHED, UID in every FETCH."""
    c = big
    c.expect(
        "a ENABLE IMAP4rev2 QRESYNC\r\n", "* ENABLED IMAP4rev2 QRESYNC", "a OK ENABLE completed"
    )
    lines = select(c)
    assert not any("RECENT" in line for line in lines)
    c.expect(
        "b SEARCH MODSEQ 1 UID 1:3\r\n",
        '* ESEARCH (TAG "b") ALL 1:3 MODSEQ {n}',
        "b OK SEARCH completed",
    )
    c.send("c STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    c.expect("d EXPUNGE\r\n", "* VANISHED 1", "d OK [HIGHESTMODSEQ {n}] EXPUNGE completed")
