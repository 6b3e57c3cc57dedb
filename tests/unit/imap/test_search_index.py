"""SEARCH on headers and addresses from the folder index (mra/imap/searchindex.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from mailstore.folderindex import HDR_MAX
from mailstore.folderindex import NAME as INDEX_NAME
from mra.imap import mime
from mra.imap.searchindex import INDEXED, indexed_block
from mra.imap.searchkeys import _raw_values
from tests.unit.imap.test_ext_condstore import Worker
from tests.unit.imap.test_session_transcripts import Client

HEADERS = [
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\n",
    b"From: a@b\nSubject: LF only\nX-Other: x\n\n",
    # folded fields, a field that looks like a continuation of a dropped one
    b"Received: by x\r\n  from: not-a-field@x\r\nSubject: one\r\n  two\r\n\tthree\r\n\r\n",
    # blanks before the colon, two of a field, an encoded word, upper case names
    b"SUBJECT : =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFROM: x@y\r\nfrom: second@y\r\n\r\n",
    # lines without a colon, one of them spelling an indexed name
    b"subject\r\nno colon here\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n",
    # a name over 1000 octets is no name: the whole line is the field's "name"
    b"X" * 1200 + b"From: hidden@x\r\nCc: c@d, e@f\r\nBcc: g@h\r\n\r\n",
    b"Message-ID: <a@b>\r\nIn-Reply-To: <c@d>\r\nReferences: <e@f>\r\n <c@d>\r\n\r\n",
    b"\r\n",  # no fields at all
    b"To: undisclosed-recipients:;\r\nSubject:\r\n\r\n",
]


@pytest.mark.parametrize("header", HEADERS)
def test_indexed_block_gives_every_indexed_field_the_same_values(header: bytes) -> None:
    """Parsing the kept fields gives each indexed field exactly what parsing the whole header
    gives, in both forms SEARCH reads (decoded, and raw for the address and lwsp forms)."""
    block = indexed_block(header)
    assert block is not None and block.endswith(b"\r\n")
    full, kept = mime.parse(header), mime.parse(block)
    for name in INDEXED:
        text = name.decode()
        assert mime.header_values(kept, text) == mime.header_values(full, text), name
        assert _raw_values(kept, text) == _raw_values(full, text), name
    assert b"X-Other" not in block and b"Received" not in block


def test_indexed_block_keeps_no_cut_or_huge_header() -> None:
    assert indexed_block(b"From: a@b\r\nSubject: no end") is None  # the rest was not read
    assert indexed_block(b"From: a@b\r\nX: " + b"y" * HDR_MAX + b"\r\n\r\n") is None


def _deliver(c: Client, senders: list[str]) -> None:
    inbox = c.store.mailbox("INBOX")
    for i, sender in enumerate(senders):
        message = f"From: {sender}\r\nSubject: probe-{i}\r\nX-Tag: t{i}\r\n\r\nbody\r\n"
        inbox.append(message.encode())
    inbox.sync()


def _rewrite(c: Client, uid: int, data: bytes) -> None:
    """Put other octets in a message's file (a probe: stored messages never change), to see
    whether a SEARCH reads the file or the index."""
    inbox = c.store.mailbox("INBOX")
    inbox.sync()
    msg = inbox.get(uid)
    Path(inbox.path, msg.subdir, msg.name).write_bytes(data)


def test_header_search_reads_the_index_in_another_process(tmp_path: Path) -> None:
    """The first SEARCH FROM reads the files and fills the index; a session of another
    worker (its own memory, its own index connection) answers FROM, SUBJECT and SENT* from
    the index without reading a file; a HEADER key on a field the index does not keep, and
    BODY, read the files."""
    c = Client(tmp_path)
    _deliver(c, ["anna@example.org", "berit@example.org", "cleo@example.org"])
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect("a SEARCH FROM berit\r\n", "* SEARCH 4", "a OK SEARCH completed")
    _rewrite(c, 4, b"From: mallory@example.org\r\nSubject: quux\r\nX-Tag: quux\r\n\r\nquux\r\n")
    w = Worker(c)
    w.login()
    w.send("s SELECT INBOX\r\n")
    w.expect("a SEARCH FROM berit\r\n", "* SEARCH 4", "a OK SEARCH completed")
    w.expect("b SEARCH FROM mallory\r\n", "* SEARCH", "b OK SEARCH completed")
    w.expect("c SEARCH OR SUBJECT probe-1 TO nobody\r\n", "* SEARCH 4", "c OK SEARCH completed")
    w.expect("d SEARCH HEADER X-Tag quux\r\n", "* SEARCH 4", "d OK SEARCH completed")
    w.expect("e SEARCH BODY quux\r\n", "* SEARCH 4", "e OK SEARCH completed")


def test_header_search_after_the_index_was_deleted_reads_the_files(tmp_path: Path) -> None:
    """The index is only a copy: deleted, the next SEARCH reads the files again."""
    c = Client(tmp_path)
    _deliver(c, ["anna@example.org", "berit@example.org"])
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect("a SEARCH FROM berit\r\n", "* SEARCH 4", "a OK SEARCH completed")
    c.send("z LOGOUT\r\n")
    _rewrite(c, 4, b"From: mallory@example.org\r\n\r\nquux\r\n")
    path = c.store.mailbox("INBOX").path
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(path, INDEX_NAME + suffix)):
            os.unlink(os.path.join(path, INDEX_NAME + suffix))
    w = Worker(c)
    w.login()
    w.send("s SELECT INBOX\r\n")
    w.expect("a SEARCH FROM mallory\r\n", "* SEARCH 4", "a OK SEARCH completed")
    w.expect("b SEARCH FROM berit\r\n", "* SEARCH", "b OK SEARCH completed")


def test_header_search_without_an_index_reads_the_files(tmp_path: Path) -> None:
    """NOMODSEQ (the index cannot be made): header keys are answered from the files."""
    c = Client(tmp_path)
    _deliver(c, ["anna@example.org", "berit@example.org"])
    path = c.store.mailbox("INBOX").path
    os.mkdir(os.path.join(path, INDEX_NAME))  # a directory in its place: no index
    c.login()
    lines = c.send("s SELECT INBOX\r\n")
    assert any("NOMODSEQ" in line for line in lines), lines
    c.expect("a SEARCH FROM berit SENTBEFORE 1-Jan-2100\r\n", "* SEARCH 4", "a OK SEARCH completed")
    c.expect("b SEARCH FROM berit\r\n", "* SEARCH 4", "b OK SEARCH completed")


@pytest.mark.parametrize(
    "planted",
    ["X'00' || zeroblob(70000)", "'From: berit@example.org'", "12345"],
    ids=["oversized", "text", "integer"],
)
def test_attack_planted_header_fields_are_not_searched(tmp_path: Path, planted: str) -> None:
    """A user who can write their Maildir can write their index: a kept-fields value that is
    not octets, or is over HDR_MAX, is not parsed; the message's file is read instead. (Octets
    within the bound are parsed like any header, by the bounded parser: they can only make
    SEARCH wrong about the user's own mail, which the user can rewrite anyway.)"""
    c = Client(tmp_path)
    _deliver(c, ["anna@example.org", "berit@example.org"])
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect("a SEARCH FROM berit\r\n", "* SEARCH 4", "a OK SEARCH completed")
    c.send("z LOGOUT\r\n")
    index = sqlite3.connect(os.path.join(c.store.mailbox("INBOX").path, INDEX_NAME))
    with index:
        index.execute(f"UPDATE msg SET hdr = {planted}")
    index.close()
    w = Worker(c)
    w.login()
    w.send("s SELECT INBOX\r\n")
    w.expect("a SEARCH FROM berit\r\n", "* SEARCH 4", "a OK SEARCH completed")
    w.expect("b SEARCH FROM anna\r\n", "* SEARCH 3", "b OK SEARCH completed")
