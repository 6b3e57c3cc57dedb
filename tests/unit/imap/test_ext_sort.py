# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""SORT (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267), THREAD (RFC 5256) and PREVIEW
(RFC 8970), with their RFCs' examples as transcripts; the rules they rest on (base subjects,
dates, message ids, previews) as functions; and the attacks a big or crafted folder makes.
The same commands are asked of Dovecot in tests/interop/test_imap_dovecot_sort.py.

The RFCs' examples name messages of big mailboxes (`* SORT 2 84 882`); each mailbox here is
built so that the example's answer is what it must be, numbers and all.
"""

from __future__ import annotations

import calendar
import random
import re
import sys
import time

import pytest

from mra.imap import commands, preview, sorting, threads
from mra.imap.linkcut import LinkCut
from mra.imap.sortfields import (
    SortFields,
    _slow_date,
    base_subject,
    fields_of,
    first_address,
    header_text,
    message_ids,
    sent_date,
)
from mra.session import Call
from tests.unit.imap.test_session_transcripts import Client

DAY = 24 * 3600
JAN_1994 = calendar.timegm((1994, 1, 1, 12, 0, 0))


def msg(
    subject: str | None = None,
    date: str | None = None,
    sender: str | None = None,
    to: str | None = None,
    msgid: str | None = None,
    refs: str | None = None,
    reply_to: str | None = None,
    body: str = "text\r\n",
    ctype: str | None = None,
) -> bytes:
    head = []
    for name, value in (
        ("Subject", subject),
        ("Date", date),
        ("From", sender),
        ("To", to),
        ("Message-ID", msgid),
        ("References", refs),
        ("In-Reply-To", reply_to),
        ("Content-Type", ctype),
    ):
        if value is not None:
            head.append(f"{name}: {value}\r\n")
    return ("".join(head) + "\r\n" + body).encode()


def fill(c: Client, messages: list[tuple[bytes, float | None]]) -> None:
    """INBOX holds these messages instead of the Client's two (UIDs from 3 on), and is
    selected."""
    box = c.store.mailbox("INBOX")
    box.store_flags([1, 2], "add", ["\\Deleted"])
    box.expunge([1, 2])
    box.append_many([(raw, [], date) for raw, date in messages])
    c.login()
    c.send("s SELECT INBOX\r\n")


def date(n: int) -> str:
    """A Date field n days after 1 Jan 2000."""
    t = time.gmtime(calendar.timegm((2000, 1, 1, 10, 0, 0)) + n * DAY)
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", t)


# ---------------------------------------------------------------------------------------------
# SORT: RFC 5256 section 3


def test_rfc5256_sort_examples(c: Client) -> None:
    """`* SORT 2 84 882`: of 882 messages, those three arrived since 1 Feb 1994, and sort
    by subject in that order; `* SORT 5 3 4 1 2` by subject, then newest first."""
    messages: list[tuple[bytes, float | None]] = []
    for n in range(1, 883):
        since = n in (2, 84, 882)
        subject = {2: "Re: apples", 84: "bananas", 882: "[list] cherries"}.get(n, f"x {n}")
        arrival = JAN_1994 + 40 * DAY if since else JAN_1994 - n * DAY
        messages.append((msg(subject, date(n)), arrival))
    fill(c, messages)
    c.expect(
        "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
        "* SORT 2 84 882",
        "A282 OK SORT completed",
    )
    c.expect(
        'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"\r\n', "* SORT", "A284 OK SORT completed"
    )


def test_rfc5256_sort_subject_reverse_date(c: Client) -> None:
    fill(
        c,
        [
            (msg("Re: gamma", date(5)), None),
            (msg("gamma", date(9)), None),
            (msg("Alpha", date(1)), None),
            (msg("alpha (fwd)", date(2)), None),
            (msg("[list] ALPHA", date(3)), None),
        ],
    )
    c.expect(
        "A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
        "* SORT 5 4 3 2 1",
        "A283 OK SORT completed",
    )
    c.expect(
        "b UID SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n",
        "* SORT 7 6 5 4 3",
        "b OK UID SORT completed",
    )
    c.expect(
        "c SORT (REVERSE SUBJECT DATE) UTF-8 ALL\r\n", "* SORT 1 2 3 4 5", "c OK SORT completed"
    )


def test_every_sort_key(c: Client) -> None:
    """ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO; ties keep the sequence order."""
    fill(
        c,
        [
            (
                msg("b", date(3), "Zed <zed@x.test>", "beth@x.test", body="x" * 300),
                JAN_1994 + 3 * DAY,
            ),
            (
                msg("a", date(1), "amy@x.test", "Carl <carl@x.test>", body="x" * 100),
                JAN_1994 + 1 * DAY,
            ),
            (
                msg("c", date(2), "Bob <bob@x.test>", "adam@x.test", body="x" * 200),
                JAN_1994 + 2 * DAY,
            ),
        ],
    )
    c.expect("a SORT (ARRIVAL) UTF-8 ALL\r\n", "* SORT 2 3 1", "a OK SORT completed")
    c.expect("b SORT (DATE) UTF-8 ALL\r\n", "* SORT 2 3 1", "b OK SORT completed")
    c.expect("c SORT (FROM) UTF-8 ALL\r\n", "* SORT 2 3 1", "c OK SORT completed")
    c.expect("d SORT (TO) UTF-8 ALL\r\n", "* SORT 3 1 2", "d OK SORT completed")
    c.expect("e SORT (SIZE) UTF-8 ALL\r\n", "* SORT 2 3 1", "e OK SORT completed")
    c.expect("f SORT (SUBJECT) UTF-8 ALL\r\n", "* SORT 2 1 3", "f OK SORT completed")
    c.expect("g SORT (CC) UTF-8 ALL\r\n", "* SORT 1 2 3", "g OK SORT completed")  # none has one
    c.expect("h SORT (REVERSE CC) UTF-8 ALL\r\n", "* SORT 1 2 3", "h OK SORT completed")
    c.expect("i SORT (REVERSE SIZE) UTF-8 2:3\r\n", "* SORT 3 2", "i OK SORT completed")


def test_sort_date_falls_back_to_the_internaldate(c: Client) -> None:
    """RFC 5256 2.2: a message whose Date cannot be parsed sorts by its INTERNALDATE."""
    fill(
        c,
        [
            (msg("a", date(10)), None),
            (msg("b", "not a date"), calendar.timegm((2000, 1, 5, 0, 0, 0))),
            (msg("c"), calendar.timegm((2000, 1, 20, 0, 0, 0))),
            (msg("d", date(1)), None),
        ],
    )
    c.expect("a SORT (DATE) UTF-8 ALL\r\n", "* SORT 4 2 1 3", "a OK SORT completed")


def test_sort_program_errors(selected: Client) -> None:
    c = selected
    c.expect("a SORT () UTF-8 ALL\r\n", "a BAD SORT: empty sort program")
    c.expect("b SORT (DATE REVERSE) UTF-8 ALL\r\n", "b BAD SORT: sort program ends with REVERSE")
    c.expect("c SORT (SENDER) UTF-8 ALL\r\n", "c BAD SORT: unknown sort key 'SENDER'")
    c.expect("d SORT DATE UTF-8 ALL\r\n", "d BAD SORT: SORT needs a parenthesised sort program")
    c.expect("e SORT (DATE) UTF-8\r\n", "e BAD SORT: empty search program")
    c.expect("f SORT (DATE)\r\n", "f BAD SORT: a charset and a search program are needed")
    c.expect(
        "g SORT (DATE) X-NONE ALL\r\n",
        "g NO [BADCHARSET ({any})] X-NONE is not a charset this server knows",
    )
    c.expect(
        "h SORT (REVERSE REVERSE DATE DATE) UTF-8 ALL\r\n", "* SORT 1 2", "h OK SORT completed"
    )


# ---------------------------------------------------------------------------------------------
# SORT=DISPLAY: RFC 5957


def test_rfc5957_displayfrom_and_displayto(c: Client) -> None:
    """DISPLAYFROM sorts by the display name (RFC 2047 decoded), or the addr-spec when there
    is none; FROM by the mailbox alone."""
    fill(
        c,
        [
            (msg("1", sender="Zelda <aaron@x.test>", to="bob@x.test"), None),
            (
                msg("2", sender="=?UTF-8?Q?=C3=89mile?= <zack@x.test>", to='"Xavier" <al@x.test>'),
                None,
            ),
            (msg("3", sender="mike@x.test", to="Yann <yann@x.test>"), None),
            (msg("4", sender="<bea@x.test>", to="team: carl@x.test;"), None),
        ],
    )
    c.expect("a SORT (DISPLAYFROM) UTF-8 ALL\r\n", "* SORT 4 2 3 1", "a OK SORT completed")
    c.expect("b SORT (FROM) UTF-8 ALL\r\n", "* SORT 1 4 3 2", "b OK SORT completed")
    c.expect("c SORT (DISPLAYTO) UTF-8 ALL\r\n", "* SORT 1 4 2 3", "c OK SORT completed")
    c.expect("d SORT (REVERSE DISPLAYFROM) UTF-8 ALL\r\n", "* SORT 1 3 2 4", "d OK SORT completed")


# ---------------------------------------------------------------------------------------------
# ESORT: RFC 5267 section 3


def test_rfc5267_esort(c: Client) -> None:
    """ESEARCH answers; MIN and MAX are the first and last in the sorted order (as Dovecot),
    ALL is the sorted list as a sequence set."""
    fill(
        c, [(msg(s, date(d)), None) for s, d in (("c", 1), ("a", 2), ("b", 3), ("d", 4), ("e", 5))]
    )
    c.expect(
        "A301 SORT RETURN (MIN MAX ALL COUNT) (SUBJECT) UTF-8 ALL\r\n",
        '* ESEARCH (TAG "A301") MIN 2 MAX 5 ALL 2:3,1,4:5 COUNT 5',
        "A301 OK SORT completed",
    )
    c.expect(
        "A302 UID SORT RETURN (COUNT ALL) (REVERSE DATE) UTF-8 NOT SUBJECT e\r\n",
        '* ESEARCH (TAG "A302") UID ALL 6,5,4,3 COUNT 4',
        "A302 OK UID SORT completed",
    )
    c.expect(
        "A303 SORT RETURN () (SUBJECT) UTF-8 ALL\r\n",
        '* ESEARCH (TAG "A303") ALL 2:3,1,4:5',
        "A303 OK SORT completed",
    )
    c.expect(
        "A304 SORT RETURN (MIN MAX ALL COUNT) (SUBJECT) UTF-8 SUBJECT nothing\r\n",
        '* ESEARCH (TAG "A304") COUNT 0',
        "A304 OK SORT completed",
    )
    c.expect(
        "A305 SORT RETURN (FOO) (SUBJECT) UTF-8 ALL\r\n",
        "A305 BAD SORT: unknown SEARCH return option FOO",
    )


def test_esort_with_searchres(c: Client) -> None:
    """SAVE (RFC 5182) keeps all the messages, or only the MIN and MAX ones when only those
    were asked for; SAVE alone answers nothing."""
    fill(c, [(msg(s, date(d)), None) for s, d in (("c", 1), ("a", 2), ("b", 3), ("d", 4))])
    c.expect("a SORT RETURN (SAVE) (SUBJECT) UTF-8 NOT SUBJECT d\r\n", "a OK SORT completed")
    c.expect("b SEARCH $\r\n", "* SEARCH 1 2 3", "b OK SEARCH completed")
    c.expect(
        "c SORT RETURN (SAVE MIN MAX) (SUBJECT) UTF-8 ALL\r\n",
        '* ESEARCH (TAG "c") MIN 2 MAX 4',
        "c OK SORT completed",
    )
    c.expect("d SEARCH $\r\n", "* SEARCH 2 4", "d OK SEARCH completed")
    c.expect("e SORT (DATE) UTF-8 $\r\n", "* SORT 2 4", "e OK SORT completed")
    c.expect(
        "f SORT RETURN (SAVE) (DATE) X-NONE ALL\r\n",
        "f NO [BADCHARSET ({any})] X-NONE is not a charset this server knows",
    )
    c.expect("g SEARCH $\r\n", "* SEARCH", "g OK SEARCH completed")


# ---------------------------------------------------------------------------------------------
# THREAD: RFC 5256 section 4 (and REFS)

ORDEREDSUBJECT_EXAMPLE = (
    "(166)(167)(168)(169)(172)(170)(171)(173)(174 (175)(176)(178)(181)(180))(179)"
    "(177 (183)(182)(188)(184)(185)(186)(187)(189))(190)(191)(192)(193)(194 195)"
    "(196 (197)(198))(199)(200 202)(201)(203)(204)(205)(206 207)(208)"
)


def _threads(example: str) -> list[list[int]]:
    """The messages of each top-level thread of an answer, in order."""
    groups: list[list[int]] = []
    depth = 0
    for token in re.findall(r"\(|\)|\d+", example):
        if token == "(":
            if depth == 0:
                groups.append([])
            depth += 1
        elif token == ")":
            depth -= 1
        else:
            groups[-1].append(int(token))
    return groups


def test_rfc5256_thread_orderedsubject_example(c: Client) -> None:
    """RFC 5256 section 4's example: 208 messages, those since 5 Mar 2000 threaded by
    subject, a thread's first message the parent of the others, threads by their first
    message's date."""
    groups = _threads(ORDEREDSUBJECT_EXAMPLE)
    assert sum(len(g) for g in groups) == 43
    sent: dict[int, tuple[str, int]] = {}
    for t, group in enumerate(groups):
        for k, n in enumerate(group):
            prefix = "Re: " if k else ""
            sent[n] = (f"{prefix}thread {t}", t * 100 + k)  # the order of the answer
    since = calendar.timegm((2000, 3, 6, 0, 0, 0))
    messages = []
    for n in range(1, 209):
        subject, day = sent.get(n, (f"old {n}", n))
        arrival = since if n in sent else since - 30 * DAY
        messages.append((msg(subject, date(day)), float(arrival)))
    fill(c, messages)
    c.expect(
        "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
        "* THREAD " + ORDEREDSUBJECT_EXAMPLE,
        "A283 OK THREAD completed",
    )
    c.expect(
        'A284 THREAD ORDEREDSUBJECT UTF-8 TEXT "gewp"\r\n', "* THREAD", "A284 OK THREAD completed"
    )


def test_rfc5256_thread_references_example(c: Client) -> None:
    """RFC 5256 section 4: `(2)(3 6 (4 23)(44 7 96))`: 3 is the parent of 6, whose children
    are 4 (with 23) and 44 (with 7, and 96 below it)."""
    parents = {6: 3, 4: 6, 23: 4, 44: 6, 7: 44, 96: 7}
    chain: dict[int, list[int]] = {2: [], 3: []}
    for n in (6, 4, 44, 23, 7, 96):
        chain[n] = chain[parents[n]] + [parents[n]]
    when = {2: 1, 3: 2, 6: 3, 4: 4, 44: 5, 23: 6, 7: 7, 96: 8}
    messages = []
    for n in range(1, 97):
        if n in chain:
            refs = " ".join(f"<{p}@rfc>" for p in chain[n]) or None
            messages.append(
                (
                    msg(
                        f"subject {n}",
                        date(when[n]),
                        msgid=f"<{n}@rfc>",
                        refs=refs,
                        body="threaded\r\n",
                    ),
                    None,
                )
            )
        else:
            messages.append((msg(f"other {n}", date(n)), None))
    fill(c, messages)
    c.expect(
        "a THREAD REFERENCES UTF-8 BODY threaded\r\n",
        "* THREAD (2)(3 6 (4 23)(44 7 96))",
        "a OK THREAD completed",
    )
    c.expect('b THREAD REFERENCES US-ASCII TEXT "gewp"\r\n', "* THREAD", "b OK THREAD completed")
    c.expect(
        "c UID THREAD REFERENCES UTF-8 2:3\r\n", "* THREAD (4)(5)", "c OK UID THREAD completed"
    )


def test_thread_references_dummies_duplicates_and_subjects(c: Client) -> None:
    """A parent we do not have (a dummy keeps its two children together), a dummy with one
    child (the child takes its place), a duplicate Message-ID (a thread of its own), a
    loop, and step 5: threads of one base subject gathered under the one that is not a
    reply."""
    fill(
        c,
        [
            (msg("about x", date(1), msgid="<a@t>", refs="<gone@t>"), None),  # 1
            (msg("about y", date(2), msgid="<b@t>", refs="<gone@t>"), None),  # 2
            (msg("lonely", date(3), msgid="<c@t>", refs="<gone2@t>"), None),  # 3
            (msg("dup", date(4), msgid="<a@t>"), None),  # 4: a@t is 1's
            (msg("loop", date(5), msgid="<l1@t>", refs="<l2@t>"), None),  # 5
            (msg("loop", date(6), msgid="<l2@t>", refs="<l1@t>"), None),  # 6
            (msg("Re: topic", date(7), msgid="<r1@t>"), None),  # 7
            (msg("topic", date(8), msgid="<r2@t>"), None),  # 8
            (msg("Re: topic", date(9), msgid="<r3@t>"), None),  # 9
        ],
    )
    c.expect(
        "a THREAD REFERENCES UTF-8 ALL\r\n",
        "* THREAD ((1)(2))(3)(4)(6 5)(8 (7)(9))",
        "a OK THREAD completed",
    )
    # REFS: no subject gathering, threads by their latest message
    c.expect(
        "b THREAD REFS UTF-8 ALL\r\n",
        "* THREAD ((1)(2))(3)(4)(6 5)(7)(8)(9)",
        "b OK THREAD completed",
    )
    c.expect(
        "c THREAD ORDEREDSUBJECT UTF-8 ALL\r\n",
        "* THREAD (1)(2)(3)(4)(5 6)(7 (8)(9))",
        "c OK THREAD completed",
    )


def test_thread_refs_orders_threads_by_their_latest_message(c: Client) -> None:
    fill(
        c,
        [
            (msg("a", date(1), msgid="<1@t>"), None),
            (msg("b", date(2), msgid="<2@t>"), None),
            (msg("c", date(3), msgid="<3@t>", refs="<1@t>"), None),
            (msg("d", date(9), msgid="<4@t>", refs="<2@t>"), None),
        ],
    )
    c.expect("a THREAD REFS UTF-8 ALL\r\n", "* THREAD (1 3)(2 4)", "a OK THREAD completed")
    c.expect("b THREAD REFS UTF-8 1:2\r\n", "* THREAD (1)(2)", "b OK THREAD completed")
    c.expect("c THREAD REFERENCES UTF-8 ALL\r\n", "* THREAD (1 3)(2 4)", "c OK THREAD completed")


def test_thread_errors(selected: Client) -> None:
    c = selected
    c.expect("a THREAD BOGUS UTF-8 ALL\r\n", "a BAD THREAD: unknown thread algorithm BOGUS")
    c.expect("b THREAD\r\n", "b BAD THREAD: THREAD needs an algorithm")
    c.expect("c THREAD REFERENCES UTF-8\r\n", "c BAD THREAD: empty search program")
    c.expect(
        "d THREAD REFS X-NONE ALL\r\n",
        "d NO [BADCHARSET ({any})] X-NONE is not a charset this server knows",
    )
    c.expect("e thread refs utf-8 all\r\n", "* THREAD (1)(2)", "e OK THREAD completed")


def test_capabilities_name_what_works(selected: Client) -> None:
    line = selected.send("a CAPABILITY\r\n")[0]
    for cap in (
        "SORT",
        "SORT=DISPLAY",
        "ESORT",
        "THREAD=ORDEREDSUBJECT",
        "THREAD=REFERENCES",
        "THREAD=REFS",
        "PREVIEW",
    ):
        assert f" {cap} " in line + " "


# ---------------------------------------------------------------------------------------------
# PREVIEW: RFC 8970


def test_rfc8970_preview_examples(c: Client) -> None:
    fill(
        c,
        [
            (msg("1", body="Preview text!\r\n"), None),
            (msg("2", body="", ctype="image/png"), None),
            (msg("3", body="Lazy one.\r\n"), None),
            (msg("4", body="<p>Lazy <b>two</b></p>\r\n", ctype="text/html"), None),
        ],
    )
    c.expect(
        "A1 FETCH 1 (PREVIEW)\r\n", '* 1 FETCH (PREVIEW "Preview text!")', "A1 OK FETCH completed"
    )
    c.expect("B0 FETCH 2 PREVIEW\r\n", '* 2 FETCH (PREVIEW "")', "B0 OK FETCH completed")
    # LAZY: what is at hand, NIL for what would have to be made now
    c.expect(
        "B1 FETCH 1:4 (PREVIEW (LAZY))\r\n",
        '* 1 FETCH (PREVIEW "Preview text!")',
        '* 2 FETCH (PREVIEW "")',
        "* 3 FETCH (PREVIEW NIL)",
        "* 4 FETCH (PREVIEW NIL)",
        "B1 OK FETCH completed",
    )
    c.expect(
        "B2 FETCH 3:4 (PREVIEW)\r\n",
        '* 3 FETCH (PREVIEW "Lazy one.")',
        '* 4 FETCH (PREVIEW "Lazy two")',
        "B2 OK FETCH completed",
    )
    c.expect(
        "B3 FETCH 3:4 PREVIEW (LAZY)\r\n",
        '* 3 FETCH (PREVIEW "Lazy one.")',
        '* 4 FETCH (PREVIEW "Lazy two")',
        "B3 OK FETCH completed",
    )
    c.expect("C1 FETCH 1 (PREVIEW (FUZZY))\r\n", "C1 BAD FETCH: unknown PREVIEW modifier")
    c.expect("C2 FETCH 1 (PREVIEW ())\r\n", "C2 BAD FETCH: empty PREVIEW modifier list")
    c.expect(
        "C3 UID FETCH 3 (FLAGS PREVIEW)\r\n",
        '* 1 FETCH (UID 3 FLAGS (\\Recent) PREVIEW "Preview text!")',
        "C3 OK UID FETCH completed",
    )


def test_preview_is_the_first_text_part() -> None:
    """RFC 8970 leaves the text to the server: Dovecot's choice, here as there."""
    alternative = (
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
        b"<p>html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n"
    )
    assert fields_of(1, 0, 0, alternative, preview=True).preview == "plain"
    mixed = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: image/gif\r\n\r\nGIF\r\n"
        b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=E9  au   lait\r\n--b--\r\n"
    )
    assert fields_of(1, 0, 0, mixed, preview=True).preview == "café au lait"
    quoted = b"\r\n> Someone wrote\r\n> something\r\n\r\nMy answer\r\n"
    assert fields_of(1, 0, 0, quoted, preview=True).preview == "My answer"
    only_quoted = b"\r\n> Someone wrote\r\n>something\r\n"
    assert fields_of(1, 0, 0, only_quoted, preview=True).preview == ">Someone wrote something"
    assert (
        fields_of(
            1, 0, 0, b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n", preview=True
        ).preview
        == ""
    )
    long = b"\r\n" + b"word " * 100
    text = fields_of(1, 0, 0, long, preview=True).preview
    assert (
        text is not None
        and len(text) <= 200
        and text.startswith("word word")
        and not text.endswith(" ")
    )


def test_html_to_text() -> None:
    html = (
        "<html><head><style>p { color: red }</style><script>if (a < b) x();</script></head>"
        "<body><!-- hidden --><p>One&nbsp;&amp;&#32;two</p><br><p title='a > b'>three</p>"
        "<![CDATA[<raw>]]>&bogus; &unterminated<blockquote>cited</blockquote>end</body></html>"
    )
    text = "".join(preview.html_to_text(html))
    assert text == "One\xa0& two three <raw> unterminated\n> cited\nend "
    assert preview.snippet(text) == "One\xa0& two three <raw> unterminated end"


# ---------------------------------------------------------------------------------------------
# The rules: base subjects (RFC 5256 2.1), dates (2.2), ids, addresses

BASE_SUBJECTS = [
    ("Hello", "HELLO", False),
    ("Re: Hello", "HELLO", True),
    ("RE: re: Fwd: hello (fwd)", "HELLO", True),
    ("[list] Re: hello", "HELLO", True),
    ("Re [list]: hello", "HELLO", True),
    ("Re[2]: hello", "HELLO", True),
    ("[Fwd: hello]", "HELLO", True),
    ("[Fwd: Re: [list] hello (fwd)]", "HELLO", True),
    ("[list] [x] hello", "HELLO", False),
    ("[only a blob]", "[ONLY A BLOB]", False),
    ("[a][b][c]", "[C]", False),
    ("  spaces\t and\ttabs  ", "SPACES AND TABS", False),
    ("Re:", "", True),
    ("", "", False),
    ("RE x", "RE X", False),
    ("=?UTF-8?Q?Re=3A_caf=C3=A9?=", "CAFE\u0301", True),
    ("=?bogus?q?abc?= def", "abc DEF", False),  # an unknown charset: not folded (Dovecot)
    ("straße", "STRAßE", False),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    assert base_subject(subject.encode()) == (base, reply)


def _dovecot_base_subject(text: str) -> tuple[str, bool]:
    """imap-base-subject.c as it is written (copying, quadratic): what base_subject must
    agree with, on already folded and packed text."""
    reply = False
    while True:
        while text.endswith(" ") or text.endswith("(FWD)"):
            if text.endswith(" "):
                text = text[:-1]
            else:
                text, reply = text[:-5], True
        while True:
            found = False
            if text.startswith(" "):
                text, found = text[1:], True
            m = re.match(r"((?:\[[^\[\]]*\] ?)*)(RE|FWD|FW) ?(\[[^\[\]]*\] ?)?:", text)
            if m:
                text, found, reply = text[m.end() :], True, True
            m = re.match(r"\[[^\[\]]*\] ?", text)
            if m and m.end() < len(text):
                text, found = text[m.end() :], True
            if not found:
                break
        if text.startswith("[FWD:") and text.endswith("]"):
            text, reply = text[5:-1], True
            continue
        return text, reply


def test_base_subject_is_dovecots_on_random_subjects() -> None:
    rnd = random.Random(5256)
    pieces = ["RE", "FW", "FWD", ":", " ", "[", "]", "[X]", "(FWD)", "[FWD:", "A", "RE:", "[L] "]
    for _ in range(20000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 10)))
        text = re.sub(" +", " ", text)
        assert base_subject(text.encode()) == _dovecot_base_subject(text), text


def test_header_text_decodes_as_dovecot() -> None:
    assert header_text(b"=?utf-8?q?a?= =?utf-8?q?b?=") == "ab"  # blanks between words go
    assert header_text(b"  =?utf-8?q?a?= x") == "a x"  # and before the first
    assert header_text(b"a=?utf-8?q?b?=c") == "abc"  # inside a word too
    assert header_text(b"=?utf-8?q?a b?=") == "a b"  # blanks in the text
    assert header_text(b"=?utf-8?b?w6k=!!?=") == "é"  # base64 as far as it goes
    assert header_text(b"=?utf-8?x?abc?=") == "=?utf-8?x?abc?="
    assert header_text(b"=?utf-8?q?=E9=ZZ?=") == "\ufffd=ZZ"
    assert header_text(b"\xe9\xe9 x") == "\ufffd x"  # one replacement for a run


DATES = [
    ("Mon, 7 Feb 1994 21:52:25 -0800", (1994, 2, 8, 5, 52, 25)),
    ("Mon, 7 Feb 1994 21:52:25 -0800 (PST)", (1994, 2, 8, 5, 52, 25)),
    ("7 Feb 94 21:52 PST", (1994, 2, 8, 5, 52, 0)),
    ("1 Jan 69 00:00:00 +0000", (2069, 1, 1, 0, 0, 0)),
    ("1 Jan 70 10:00:00 +0000", (1970, 1, 1, 10, 0, 0)),
    ("1 January 2002 10.11.12 +0100", (2002, 1, 1, 9, 11, 12)),
    ("Thu, 1 Jan 2002 23:59:60 +0000", (2002, 1, 1, 23, 59, 59)),
    ("1 Jan 2002 00:00:00 EDT", (2002, 1, 1, 4, 0, 0)),
    ("1 Jan 2002 00:00:00 EdT", (2002, 1, 1, 4, 0, 0)),
    ("1 Jan 2002 00:00:00 EDt", (2002, 1, 1, 0, 0, 0)),  # Dovecot wants the T as written
    ("1 Jan 2002 00:00:00 A", (2001, 12, 31, 23, 0, 0)),
    ("1 Jan 2002 00:00:00 XYZ", (2002, 1, 1, 0, 0, 0)),
    ("1 Jan 2002 00:00", (2002, 1, 1, 0, 0, 0)),
    ("2 Jan 2002 (a comment) 00:00:00 +0000", (2002, 1, 2, 0, 0, 0)),
]


@pytest.mark.parametrize(("text", "utc"), DATES)
def test_sent_date(text: str, utc: tuple[int, ...]) -> None:
    assert sent_date(text) == calendar.timegm(utc)


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "",
        "31 Feb 2002 00:00:00 +0000",
        "1 Jan 2002 24:00:00 +0000",
        "1 Jan 1899 00:00:00 +0000",
        "Thursday, 1 Jan 2002 10:11:12 +0000",
        "1 Jan 1970 00:00:00 +0000",
        "4 Jan 2002 00:00:00 +0000 (GMT",
        "1 Jan 2002 0:0:0 +0000",
    ],
)
def test_sent_date_none(text: str) -> None:
    assert sent_date(text) is None


def test_usual_dates_read_in_one_step_as_the_long_way_reads_them() -> None:
    rnd = random.Random(2822)
    for _ in range(5000):
        stamp = rnd.randrange(-(2**31), 2**32)
        t = time.gmtime(stamp)
        zone = rnd.choice(["+0000", "-0800", "+1400", "-0030", "+9999"])
        text = time.strftime(f"%a, %d %b %Y %H:%M:%S {zone}", t)
        if rnd.random() < 0.3:
            text = text[5:]
        if rnd.random() < 0.2:
            text += " (UTC)"
        assert sent_date(text) == _slow_date(text), text


def test_message_ids() -> None:
    assert message_ids('<a@b> (c) <"x y"@z> <no-at> <c @ d>') == ["a@b", "x y@z", "c@d"]
    assert message_ids("<a@b> <c@d>", 1) == ["a@b"]
    assert message_ids("junk <a(comment)@b> <e@f>") == ["a@b", "e@f"]
    assert message_ids("<A@B>") == ["A@B"]
    assert message_ids("<a@[1.2.3.4]>") == ["a@[1.2.3.4]"]
    assert message_ids("<unterminated@x") == []


def test_first_address() -> None:
    assert first_address(b'"Bob Smith" <bob@x.test>, amy@x.test') == ("BOB", "BOB SMITH")
    assert first_address(b"=?ISO-8859-1?Q?Andr=E9?= <andre@x.test>") == ("ANDRE", "ANDRE\u0301")
    assert first_address(b"<zed@x.test>") == ("ZED", "ZED@X.TEST")
    assert first_address(b"team: carl@x.test;") == ("TEAM", "TEAM")
    assert first_address(b"") == ("", "")


# ---------------------------------------------------------------------------------------------
# Attacks: everything grows with the folder, nothing recurses, nothing goes quadratic


def _fields(
    uid: int,
    msgid: str = "",
    refs: tuple[str, ...] = (),
    reply_to: str = "",
    subject: str = "S",
    day: int = 0,
) -> SortFields:
    return SortFields(
        uid,
        float(uid),
        float(day or uid),
        1,
        subject,
        "",
        "",
        "",
        "",
        "",
        msgid,
        reply_to,
        refs,
        None,
    )


def test_attack_thread_chain_of_100000_replies() -> None:
    """Each message replies to the one before: a tree 100,000 deep, built and written with
    no recursion (the recursion limit is far below), in either order of arrival."""
    n = 100_000
    assert sys.getrecursionlimit() < n
    chain = [
        _fields(u, f"<{u}@x>", reply_to=f"<{u - 1}@x>" if u > 1 else "") for u in range(1, n + 1)
    ]
    answer = threads.write(threads.references(chain), int)
    assert answer == b"* THREAD (" + b" ".join(b"%d" % u for u in range(1, n + 1)) + b")"
    backwards = [
        _fields(u, f"<{n + 1 - u}@x>", refs=(f"<{n - u}@x>",) if u < n else ())
        for u in range(1, n + 1)
    ]
    answer = threads.write(threads.references(backwards), int)
    assert answer == b"* THREAD (" + b" ".join(b"%d" % u for u in range(n, 0, -1)) + b")"
    answer = threads.write(threads.references(chain, refs=True), int)
    assert answer.endswith(b" 99999 100000)")


def _relinking(n: int) -> list[SortFields]:
    """A crafted folder: a chain n deep, then messages whose references link the roots of
    small trees below its deepest node, each time one more (the loop test of each link must
    look at the whole chain when it walks up from the new parent)."""
    out = [
        _fields(u, f"<c{u}@x>", refs=(f"<c{u - 1}@x>",) if u > 1 else ()) for u in range(1, n + 1)
    ]
    for k in range(n):
        u = len(out) + 1
        out.append(_fields(u, f"<t{k}@x>", refs=(f"<r{k}@x>",)))  # r_k: a root with a child
        u = len(out) + 1
        out.append(_fields(u, f"<l{k}@x>", refs=(f"<c{n}@x>", f"<r{k}@x>")))  # r_k below c_n
    return out


def test_attack_thread_loop_tests_on_a_deep_chain() -> None:
    """Every link of `_relinking` asks "is the new child the root above the new parent?",
    which walking up answers in n steps each: n^2 for the folder. Past `WALK` steps the
    forest becomes a link/cut tree, and the answer is the same as the walk's."""
    small = _relinking(300)
    walk = threads.WALK
    try:
        threads.WALK = 10**9  # the plain walk, for the expected answer
        expected = threads.write(threads.references(small), int)
    finally:
        threads.WALK = walk
    assert threads.write(threads.references(small), int) == expected
    start = time.process_time()
    big = threads.references(_relinking(100_000))
    assert len(big.roots) == 1
    assert time.process_time() - start < 60  # walks of 100,000 steps per link: minutes


def test_link_cut_tree_answers_as_the_walk() -> None:
    """Random links and cuts on a forest: `LinkCut.root` is the root the parent pointers
    lead to, always."""
    rnd = random.Random(42)
    n = 300
    parent = [0] * (n + 1)
    lct = LinkCut(parent)

    def root(x: int) -> int:
        while parent[x]:
            x = parent[x]
        return x

    for _ in range(20000):
        a, b = rnd.randrange(1, n + 1), rnd.randrange(1, n + 1)
        if rnd.random() < 0.6:
            if not parent[b] and root(a) != b:
                parent[b] = a
                lct.link(b, a)
        elif parent[a]:
            parent[a] = 0
            lct.cut(a)
        assert lct.root(a) == root(a)


def test_thread_with_the_link_cut_tree_is_the_same_thread() -> None:
    """The whole of THREAD REFERENCES with the forest a link/cut tree from the first deep
    walk (WALK = 1) gives what it gives with plain walks, on a random folder."""
    rnd = random.Random(7)
    fields = []
    for u in range(1, 3000):
        refs = tuple(f"<{rnd.randrange(1, 3000)}@x>" for _ in range(rnd.randint(0, 4)))
        fields.append(
            _fields(
                u,
                f"<{rnd.randrange(1, 3500)}@x>",
                refs,
                subject=rnd.choice("ABC"),
                day=rnd.randrange(50),
            )
        )
    expected = threads.write(threads.references(fields), int)
    walk = threads.WALK
    try:
        threads.WALK = 1
        assert threads.write(threads.references(fields), int) == expected
    finally:
        threads.WALK = walk


def test_attack_subject_made_of_blobs_is_linear() -> None:
    """`[a][a][a]...x`: steps 3 and 4 of RFC 5256 2.1 take one blob off per round and look
    at all the others again each time (quadratic, in Dovecot too); here one step."""
    start = time.process_time()
    assert base_subject(b"[a]" * 300_000 + b" x") == ("X", False)
    assert base_subject(b"[fwd:" * 100_000 + b"x" + b"]" * 100_000) == ("X", True)
    assert base_subject(b"Re: " * 200_000 + b"x") == ("X", True)
    assert base_subject(b"x" + b" (fwd)" * 200_000) == ("X", True)
    assert time.process_time() - start < 30  # quadratic would be hours


def test_preview_of_a_huge_quoted_text() -> None:
    """Megabytes of quoted lines: a quoted line whose budget is spent is skipped whole."""
    body = b"> " + b"quoted text " * 50 + b"\r\n"
    message = b"\r\n" + body * 20_000 + b"finally\r\n"
    assert fields_of(1, 0, 0, message, preview=True).preview == "finally"
    html = b"Content-Type: text/html\r\n\r\n" + b"<p>" * 500_000 + b"x"
    assert fields_of(1, 0, 0, html, preview=True).preview == "x"


def test_attack_sort_and_thread_run_in_the_thread_pool(selected: Client) -> None:
    """Reading every message's fields grows with the folder: never on the reactor."""
    assert commands.COMMANDS["SORT"].thread and commands.COMMANDS["THREAD"].thread
    for line in (
        "a SORT (DATE) UTF-8 ALL\r\n",
        "b THREAD REFS UTF-8 ALL\r\n",
        "c FETCH 1 PREVIEW\r\n",
    ):
        outputs = selected.session.data_received(line.encode())
        assert outputs and (
            isinstance(outputs[-1], Call) or getattr(outputs[-1], "threaded", False)
        )
        selected._text(outputs)


def test_sort_algorithm_ties_and_reverse() -> None:
    """Ties break by sequence number even under REVERSE; keys compare to the second."""
    fields = [
        SortFields(1, 100.9, None, 5, "B", "", "", "", "", "", "", "", (), None),
        SortFields(2, 100.1, None, 5, "A", "", "", "", "", "", "", "", (), None),
        SortFields(3, 99.0, 100.0, 7, "A", "", "", "", "", "", "", "", (), None),
    ]
    assert sorting.sort_uids(fields, [("ARRIVAL", False)]) == [3, 1, 2]
    assert sorting.sort_uids(fields, [("DATE", False)]) == [1, 2, 3]
    assert sorting.sort_uids(fields, [("DATE", True)]) == [1, 2, 3]
    assert sorting.sort_uids(fields, [("SIZE", True), ("SUBJECT", False)]) == [3, 2, 1]
    assert sorting.parse_program(["reverse", "date", "Subject", "DATE"]) == [
        ("DATE", True),
        ("SUBJECT", False),
    ]
