"""SORT, SORT=DISPLAY, ESORT, THREAD (ORDEREDSUBJECT, REFERENCES, REFS) and PREVIEW asked of
Dovecot 2.3 and of us on one Maildir (tests/interop/side_by_side.py): the untagged answers must
be the same, and the tagged status. The corpus (tests/interop/sortcorpus.py) holds every corner
of RFC 5256's base subjects, dates, addresses and message ids, and of the previews; random
mailing-list folders check the threads at scale.

Differences, by design, each asserted below as it is:

- Dovecot keeps a message's sent date in 32 unsigned bits, so a Date before 1970 sorts after
  every other (1960 is read as 2096) and one after 2106 wraps round to 1970; we sort by the
  date the message says.
- An empty THREAD answer is `* THREAD` (RFC 5256 `thread-data = "THREAD" [SP 1*thread-list]`);
  Dovecot sends `* THREAD ` with a space.
- `FETCH n (PREVIEW (FUZZY))` and `LAZY=FUZZY` are the modifiers of the draft before RFC 8970,
  which Dovecot still takes (and offers as PREVIEW=FUZZY and SNIPPET=FUZZY): we offer only the
  RFC, and answer BAD, as it says for a modifier the server does not know.
- PREVIEW (LAZY) answers a preview made before (by a FETCH PREVIEW, or kept by the folder
  index); Dovecot with its index in memory keeps none and answers NIL until a later session.

The tag inside an ESEARCH answer is normalised (each connection numbers its own commands).
"""

from __future__ import annotations

import re

import pytest

from tests.interop import sortcorpus
from tests.interop.side_by_side import SideBySide

pytestmark = [pytest.mark.interop]

_TAG = re.compile(rb'\(TAG "[^"]*"\)')


def same(both: SideBySide, command: str) -> list[bytes]:
    ours, dovecot = both.both(command)
    ours = [_TAG.sub(b'(TAG "*")', line) for line in ours]
    dovecot = [_TAG.sub(b'(TAG "*")', line) for line in dovecot]
    assert ours == dovecot, f"{command}:\n ours:    {ours}\n dovecot: {dovecot}"
    return ours


def corpus_box(store: object) -> None:
    sortcorpus.fill(store)  # type: ignore[arg-type]


SORTS = [
    # every key, each way round (RFC 5256 3, RFC 5957)
    *(f"SORT ({key}) UTF-8 ALL" for key in sortcorpus.SORT_KEYS),
    *(f"SORT (REVERSE {key}) UTF-8 ALL" for key in sortcorpus.SORT_KEYS),
    "SORT (REVERSE SUBJECT DATE) UTF-8 ALL",
    "SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
    "SORT (REVERSE REVERSE SUBJECT) UTF-8 ALL",
    "SORT (SUBJECT SUBJECT REVERSE SUBJECT) UTF-8 ALL",
    "SORT (FROM REVERSE SIZE) UTF-8 ALL",
    "SORT (TO CC DISPLAYFROM ARRIVAL) UTF-8 ALL",
    "sort (displayto reverse arrival) utf-8 all",
    "UID SORT (SUBJECT) UTF-8 ALL",
    "UID SORT (REVERSE SIZE) UTF-8 1:10",
    "UID SORT (ARRIVAL) UTF-8 UID 5:10",
    # the search program: sets, keys, charsets
    "SORT (SUBJECT) UTF-8 SUBJECT hello",
    "SORT (SUBJECT) US-ASCII OR FROM bob SUBJECT zebra",
    "SORT (DATE) ISO-8859-1 SUBJECT hello",
    "SORT (DATE) UTF-8 UNSEEN",
    "SORT (SUBJECT) UTF-8 SUBJECT nosuchthing",
    # ESORT (RFC 5267)
    "SORT RETURN (MIN MAX ALL COUNT) (SUBJECT) UTF-8 ALL",
    "SORT RETURN () (SUBJECT) UTF-8 ALL",
    "SORT RETURN (COUNT) (DATE) UTF-8 ALL",
    "SORT RETURN (MIN) (DATE) UTF-8 ALL",
    "SORT RETURN (MAX) (REVERSE DATE) UTF-8 ALL",
    "SORT RETURN (ALL) (SIZE) UTF-8 ALL",
    "UID SORT RETURN (MIN MAX ALL COUNT) (REVERSE SUBJECT) UTF-8 ALL",
    "SORT RETURN (MIN MAX ALL COUNT) (SUBJECT) UTF-8 SUBJECT nosuchthing",
    # with SEARCHRES (RFC 5182)
    "SORT RETURN (SAVE) (SUBJECT) UTF-8 SUBJECT hello",
    "FETCH $ (UID)",
    "SORT RETURN (SAVE MIN) (DATE) UTF-8 SUBJECT hello",
    "SEARCH $",
    "SORT RETURN (SAVE MIN MAX) (REVERSE DATE) UTF-8 SUBJECT hello",
    "SEARCH $",
    "SORT RETURN (SAVE COUNT) (DATE) UTF-8 SUBJECT hello",
    "SEARCH $",
    "SORT (SUBJECT) UTF-8 $",
    # errors: BAD and NO alike
    "SORT RETURN (FOO) (DATE) UTF-8 ALL",
    "SORT () UTF-8 ALL",
    "SORT (BOGUS) UTF-8 ALL",
    "SORT (DATE REVERSE) UTF-8 ALL",
    "SORT (DATE) UTF-8",
    "SORT (DATE)",
    "SORT DATE UTF-8 ALL",
    "SORT (DATE) X-UNKNOWN ALL",
    "SORT (SUBJECT) UTF-8 NOTHING",
]

THREADS = [
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD REFS UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 SUBJECT hello",
    "THREAD REFERENCES UTF-8 NOT SUBJECT hello",
    "THREAD REFS UTF-8 1:15",
    "UID THREAD REFERENCES UTF-8 ALL",
    "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFS UTF-8 ALL",
    "THREAD BOGUS UTF-8 ALL",
    "THREAD REFERENCES X-UNKNOWN ALL",
    "THREAD REFERENCES UTF-8",
    "THREAD",
]

PREVIEWS = [
    "FETCH 1:* PREVIEW (LAZY)",  # none made yet: NIL from both
    "FETCH 1:* (PREVIEW)",
    "FETCH 1 (UID PREVIEW RFC822.SIZE)",
    "UID FETCH 30:* (PREVIEW)",
    "FETCH 1 (PREVIEW ())",
    "FETCH 1 (PREVIEW (BOGUS))",
]


def test_sort_thread_and_preview_are_dovecots(require_dovecot: None) -> None:
    with SideBySide([], setup=corpus_box) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in SORTS + THREADS + PREVIEWS:
            same(both, command)


def test_lazy_preview(require_dovecot: None) -> None:
    """PREVIEW (LAZY) of messages whose preview nobody asked for yet: NIL from both (RFC
    8970 3.2: the client asks again without LAZY). Once a preview was made, we answer it;
    Dovecot, its index in memory, does not keep it and still says NIL."""
    with SideBySide([], setup=corpus_box) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        assert same(both, "FETCH 1:2 (PREVIEW (LAZY))") == [
            b"* 1 FETCH (PREVIEW NIL)",
            b"* 2 FETCH (PREVIEW NIL)",
            b"OK",
        ]
        same(both, "FETCH 1 (PREVIEW)")
        ours, dovecot = both.both("FETCH 1:2 (PREVIEW (LAZY))")
        text = b'* 1 FETCH (PREVIEW "Hello there, This is the text.")'
        assert ours == [text, b"* 2 FETCH (PREVIEW NIL)", b"OK"]
        assert dovecot == [b"* 1 FETCH (PREVIEW NIL)", b"* 2 FETCH (PREVIEW NIL)", b"OK"]


@pytest.mark.parametrize("seed", [1, 2])
def test_threads_of_a_mailing_list_are_dovecots(require_dovecot: None, seed: int) -> None:
    """1,000 messages: few subjects with every prefix, replies to earlier and later messages,
    References cut short, ids repeated and missing, dates that tie or cannot be read."""

    def fill(store: object) -> None:
        box = store.mailbox("INBOX")  # type: ignore[attr-defined]
        box.append_many([(m, [], a) for m, a in sortcorpus.random_corpus(1000, seed)])

    with SideBySide([], setup=fill) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in (
            "THREAD REFERENCES UTF-8 ALL",
            "THREAD REFS UTF-8 ALL",
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
            "THREAD REFERENCES UTF-8 NOT SUBJECT plans",
            "SORT (SUBJECT DATE) UTF-8 ALL",
            "SORT (REVERSE DATE FROM) UTF-8 ALL",
            "SORT (ARRIVAL DISPLAYTO) UTF-8 ALL",
        ):
            same(both, command)


HEADERS = [
    b"Subject: Caf\xe9 latin1 raw\r\nFrom: J\xf6rg <j@x>\r\n\r\nCaf\xe9\r\n",
    b"Subject: Cafe plain\r\nFrom: Jorg <j@x>\r\n\r\nx\r\n",
    b"Subject: Caf\xc3\xa9 utf8 raw\r\nFrom: J\xc3\xb6rg <j@x>\r\n\r\nx\r\n",
    b'Subject: =?utf-8?q?a=00b?= nul\r\nFrom: "a\\"b" <x@y>\r\n\r\nx\r\n',
    b"Subject: =?bogus?q?abc?= unknown charset\r\n\r\nx\r\n",
    b"Subject: =?utf-8?b?!!!?= bad b64\r\n\r\nx\r\n",
    b"Subject: a=?utf-8?q?b?=c glued\r\n\r\nx\r\n",
    b"Subject: =?utf-8?q?one?=   =?utf-8?q?two?= =?utf-8?q?_three?=\r\n\r\nx\r\n",
    b"Subject: =?utf-8?q?Re=3A_x?=\r\n\r\nx\r\n",
    b"Subject:\r\n Re:\r\n\tfolded\r\n subject\r\n\r\nx\r\n",
    b"Subject: \xef\xbc\xb2\xef\xbc\xa5: fullwidth\r\n\r\nx\r\n",
    "Subject: \ufb01le ligature\r\n\r\nx\r\n".encode(),
    b"Subject: [a][b][c] x\r\nFrom: =?bogus?q?Zed?= <z@x>\r\n\r\nx\r\n",
]


def test_header_decoding_is_dovecots(require_dovecot: None) -> None:
    """Raw 8-bit octets, NULs, unknown charsets, broken base64, words glued to text, folding
    and the ligatures of i;unicode-casemap, as message-header-decode.c reads them."""
    with SideBySide(HEADERS) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in (
            "SORT (SUBJECT) UTF-8 ALL",
            "SORT (FROM) UTF-8 ALL",
            "SORT (DISPLAYFROM) UTF-8 ALL",
            "THREAD ORDEREDSUBJECT UTF-8 ALL",
            "FETCH 1:* PREVIEW",
        ):
            same(both, command)


def test_differences_from_dovecot(require_dovecot: None) -> None:
    """The three differences of the module note, as they are."""
    messages = [
        b"Subject: a\r\nDate: 1 Jan 2002 00:00:00 +0000\r\n\r\nx\r\n",
        b"Subject: b\r\nDate: 1 Jan 1960 00:00:00 +0000\r\n\r\nx\r\n",
        b"Subject: c\r\nDate: 1 Jan 2110 00:00:00 +0000\r\n\r\nx\r\n",
    ]
    with SideBySide(messages) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        ours, dovecot = both.both("SORT (DATE) UTF-8 ALL")
        assert (ours, dovecot) == ([b"* SORT 2 1 3", b"OK"], [b"* SORT 3 1 2", b"OK"])
        ours, dovecot = both.both("THREAD REFERENCES UTF-8 SUBJECT nothing")
        assert (ours, dovecot) == ([b"* THREAD", b"OK"], [b"* THREAD ", b"OK"])
        ours, dovecot = both.both("FETCH 1 (PREVIEW (FUZZY))")
        assert (ours, dovecot) == ([b"BAD"], [b'* 1 FETCH (PREVIEW (FUZZY "x"))', b"OK"])


def test_imapclient_sorts_threads_and_previews() -> None:
    """A real client (imapclient) against `mra serve`: its sort(), thread() and a FETCH
    PREVIEW, parsed as it parses them (UIDs: imapclient sends UID SORT and UID THREAD)."""
    from imapclient import IMAPClient

    from tests.interop.dovecot import traversable_tempdir
    from tests.mra.conftest import PASSWORD, MraServer

    base = traversable_tempdir("mra-imapclient-")
    server = MraServer(base, "", listeners=("imap",))
    try:
        box = server.store().mailbox("INBOX")
        for raw in (
            b"Subject: b\r\nMessage-ID: <1@x>\r\nDate: 2 Jan 2020 00:00:00 +0000\r\n\r\nfirst\r\n",
            b"Subject: Re: b\r\nMessage-ID: <2@x>\r\nReferences: <1@x>\r\n"
            b"Date: 3 Jan 2020 00:00:00 +0000\r\n\r\n> first\r\nsecond\r\n",
            b"Subject: a\r\nMessage-ID: <3@x>\r\nDate: 1 Jan 2020 00:00:00 +0000\r\n\r\nthird\r\n",
        ):
            box.append(raw)
        server.start()
        c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
        c.login("alice@example.test", PASSWORD)
        for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "PREVIEW"):
            assert c.has_capability(cap)
        c.select_folder("INBOX")
        assert c.sort(["SUBJECT"]) == [3, 1, 2]
        assert c.sort(["REVERSE", "DATE"]) == [2, 1, 3]
        assert c.thread("REFERENCES") == ((3,), (1, 2))  # by date: 3 is the oldest
        assert c.thread("ORDEREDSUBJECT") == ((3,), (1, 2))
        previews = c.fetch([1, 2], ["PREVIEW"])
        assert previews[2][b"PREVIEW"] == b"second"
        c.logout()
    finally:
        server.stop()
