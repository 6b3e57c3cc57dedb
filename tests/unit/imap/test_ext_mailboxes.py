# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""The mailbox and LIST family of extensions, as transcripts of the session alone: each RFC's
examples, on the same hierarchy with our separator `.`.

Where our answer differs from the RFC's example, the example used a feature we do not have
(`\\Marked`, `\\NoInferiors`, remote mailboxes) or chose among answers the RFC allows; each such
place says so, and tests/interop/test_imap_dovecot_mailboxes.py shows the answer is Dovecot's.

    LIST-EXTENDED  RFC 5258 5, examples 1-11
    LIST-STATUS    RFC 5819 3
    SPECIAL-USE    RFC 6154 5.1-5.3, CREATE-SPECIAL-USE, and Gmail's XLIST
    STATUS=SIZE    RFC 8438 3, with RFC 9208's DELETED and DELETED-STORAGE
    QUOTA          RFC 9208 4
    APPENDLIMIT    RFC 7889 4-5
    [mailboxes]    the auto folders, check-config's lines, the README's examples
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailstore.config import check_config, load_config, parse_config
from mailstore.specialuse import DEFAULT_MAILBOXES, SPECIAL_USE_FILE
from mra.imap.patterns import PatternSet
from tests.unit.imap.test_session_transcripts import MSG1, MSG2, Client

NO_AUTO = "[mailboxes]\n"  # no folder made at login: the RFC examples' own hierarchies
README = Path(__file__).resolve().parents[3] / "README.md"


def client(
    tmp_path: Path,
    folders: tuple[str, ...] = (),
    subscribed: tuple[str, ...] = (),
    config: str = NO_AUTO,
    userdb: str = "",
) -> Client:
    c = Client(tmp_path, config=config, userdb=userdb)
    for name in folders:
        c.store.create_folder(name)
    for name in subscribed:
        c.store.subscribe(name)
    c.login()
    return c


# -- LIST-EXTENDED (RFC 5258 5) -----------------------------------------------------------------

FRUIT = (
    "Fruit",
    "Fruit.Apple",
    "Fruit.Banana",
    "Tofu",
    "Vegetable",
    "Vegetable.Broccoli",
    "Vegetable.Corn",
)
FRUIT_SUBSCRIBED = ("INBOX", "Fruit.Banana", "Fruit.Peach", "Vegetable", "Vegetable.Broccoli")


@pytest.fixture
def fruit(tmp_path: Path) -> Client:
    return client(tmp_path, FRUIT, FRUIT_SUBSCRIBED)


def test_rfc5258_example_1_the_hierarchy(fruit: Client) -> None:
    """Our INBOX has neither \\Marked nor \\NoInferiors (folders may be created below it), and a
    plain LIST always says \\HasChildren or \\HasNoChildren (RFC 3348, as Dovecot)."""
    fruit.expect(
        'A01 LIST "" "*"\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasChildren) "." Fruit',
        '* LIST (\\HasNoChildren) "." Fruit.Apple',
        '* LIST (\\HasNoChildren) "." Fruit.Banana',
        '* LIST (\\HasNoChildren) "." Tofu',
        '* LIST (\\HasChildren) "." Vegetable',
        '* LIST (\\HasNoChildren) "." Vegetable.Broccoli',
        '* LIST (\\HasNoChildren) "." Vegetable.Corn',
        "A01 OK LIST completed",
    )


def test_rfc5258_example_2_subscribed(fruit: Client) -> None:
    """Fruit.Peach is subscribed but does not exist; an extended LIST says only what it was
    asked for (no \\HasChildren without RETURN (CHILDREN))."""
    fruit.expect(
        'A02 LIST (SUBSCRIBED) "" "*"\r\n',
        '* LIST (\\Subscribed) "." INBOX',
        '* LIST (\\Subscribed) "." Fruit.Banana',
        '* LIST (\\Subscribed \\NonExistent) "." Fruit.Peach',
        '* LIST (\\Subscribed) "." Vegetable',
        '* LIST (\\Subscribed) "." Vegetable.Broccoli',
        "A02 OK LIST completed",
    )


def test_rfc5258_example_3_children(fruit: Client) -> None:
    fruit.expect(
        'A03 LIST () "" "%" RETURN (CHILDREN)\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasChildren) "." Fruit',
        '* LIST (\\HasNoChildren) "." Tofu',
        '* LIST (\\HasChildren) "." Vegetable',
        "A03 OK LIST completed",
    )


def test_rfc5258_examples_4_to_6_remote(fruit: Client) -> None:
    """There are no remote mailboxes (no Bread, no Meat): REMOTE changes nothing."""
    fruit.expect(
        'A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasChildren) "." Fruit',
        '* LIST (\\HasNoChildren) "." Tofu',
        '* LIST (\\HasChildren) "." Vegetable',
        "A04 OK LIST completed",
    )
    fruit.expect(
        'A05 LIST (REMOTE SUBSCRIBED) "" "*"\r\n',
        '* LIST (\\Subscribed) "." INBOX',
        '* LIST (\\Subscribed) "." Fruit.Banana',
        '* LIST (\\Subscribed \\NonExistent) "." Fruit.Peach',
        '* LIST (\\Subscribed) "." Vegetable',
        '* LIST (\\Subscribed) "." Vegetable.Broccoli',
        "A05 OK LIST completed",
    )
    # Not a superset of A05: the non-existent Fruit.Peach is not listed.
    fruit.expect(
        'A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)\r\n',
        '* LIST (\\Subscribed) "." INBOX',
        '* LIST () "." Fruit',
        '* LIST () "." Fruit.Apple',
        '* LIST (\\Subscribed) "." Fruit.Banana',
        '* LIST () "." Tofu',
        '* LIST (\\Subscribed) "." Vegetable',
        '* LIST (\\Subscribed) "." Vegetable.Broccoli',
        '* LIST () "." Vegetable.Corn',
        "A06 OK LIST completed",
    )


def test_rfc5258_example_7_several_patterns(tmp_path: Path) -> None:
    """Names in our order (INBOX first, then sorted); each once, whatever matched it."""
    c = client(
        tmp_path, ("Drafts", "Sent.March2004", "Sent.December2003", "Sent.August2004", "Other")
    )
    c.expect(
        'BBB LIST "" ("INBOX" "Drafts" "Sent.%" "Sent.*")\r\n',
        '* LIST () "." INBOX',
        '* LIST () "." Drafts',
        '* LIST () "." Sent.August2004',
        '* LIST () "." Sent.December2003',
        '* LIST () "." Sent.March2004',
        "BBB OK LIST completed",
    )
    # RFC 5258 3: an empty pattern in a list matches nothing (it is not the root request).
    c.expect('BBC LIST "" ("" "Drafts")\r\n', '* LIST () "." Drafts', "BBC OK LIST completed")
    c.expect('BBD LIST "" ()\r\n', "BBD OK LIST completed")
    c.expect('BBE LIST () "" ""\r\n', "BBE OK LIST completed")
    c.expect('BBF LIST "" ""\r\n', '* LIST (\\Noselect) "." ""', "BBF OK LIST completed")
    c.expect('BBG LIST "Sent." ""\r\n', '* LIST (\\Noselect) "." ""', "BBG OK LIST completed")


def test_rfc5258_example_8_childinfo(tmp_path: Path) -> None:
    c = client(tmp_path, ("Foo", "Foo.Bar", "Foo.Baz", "Moo"), ("Foo.Baz",))
    c.expect(
        'CA3 LIST "" "%" RETURN (CHILDREN)\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasChildren) "." Foo',
        '* LIST (\\HasNoChildren) "." Moo',
        "CA3 OK LIST completed",
    )
    # A) only Foo.Baz is subscribed
    c.expect(
        'C02 LIST (SUBSCRIBED) "" "*"\r\n',
        '* LIST (\\Subscribed) "." Foo.Baz',
        "C02 OK LIST completed",
    )
    c.expect('C03 LIST (SUBSCRIBED) "" "%"\r\n', "C03 OK LIST completed")
    c.expect(
        'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n',
        '* LIST () "." Foo (CHILDINFO ("SUBSCRIBED"))',
        "C04 OK LIST completed",
    )
    # A1) Foo subscribed too
    c.send("s SUBSCRIBE Foo\r\n")
    c.expect(
        'C05 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n',
        '* LIST (\\Subscribed) "." Foo (CHILDINFO ("SUBSCRIBED"))',
        "C05 OK LIST completed",
    )
    # A2) Foo does not exist (Maildir++ needs no parent) and is not subscribed
    c.send("s UNSUBSCRIBE Foo\r\n")
    c.send("d DELETE Foo\r\n")
    c.expect(
        'C06 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n',
        '* LIST (\\NonExistent) "." Foo (CHILDINFO ("SUBSCRIBED"))',
        "C06 OK LIST completed",
    )
    # B) nothing subscribed
    c.send("s UNSUBSCRIBE Foo.Baz\r\n")
    c.expect('C07 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"\r\n', "C07 OK LIST completed")
    # C) Foo and Moo subscribed: Foo has children, none of them subscribed
    c.send("c CREATE Foo\r\n")
    c.send("s SUBSCRIBE Foo\r\n")
    c.send("s SUBSCRIBE Moo\r\n")
    c.expect(
        'C08 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)\r\n',
        '* LIST (\\Subscribed \\HasChildren) "." Foo',
        '* LIST (\\Subscribed \\HasNoChildren) "." Moo',
        "C08 OK LIST completed",
    )


def test_rfc5258_example_9_childinfo_whatever_the_pattern(tmp_path: Path) -> None:
    """CHILDINFO is given whether or not the pattern matches the children. A parent that is
    not itself subscribed is listed only when a subscribed child is not (RFC 5258 3.5: servers
    SHOULD suppress redundant CHILDINFO, as Dovecot does): with `*`, foo2 and baz2 are not
    listed, where the RFC's example shows the redundant lines it allows."""
    c = client(
        tmp_path,
        (
            "foo2",
            "foo2.bar1",
            "foo2.bar2",
            "baz2",
            "baz2.bar2",
            "baz2.bar22",
            "baz2.bar222",
            "eps2",
            "eps2.mamba",
            "qux2.bar2",
        ),
        (
            "foo2.bar1",
            "foo2.bar2",
            "baz2.bar2",
            "baz2.bar22",
            "baz2.bar222",
            "eps2",
            "eps2.mamba",
            "qux2.bar2",
        ),
    )
    c.expect(
        'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"\r\n',
        '* LIST (\\Subscribed) "." baz2.bar2',
        '* LIST (\\Subscribed) "." baz2.bar22',
        '* LIST (\\Subscribed) "." baz2.bar222',
        '* LIST (\\Subscribed) "." eps2 (CHILDINFO ("SUBSCRIBED"))',
        '* LIST () "." foo2 (CHILDINFO ("SUBSCRIBED"))',
        '* LIST (\\Subscribed) "." foo2.bar2',
        '* LIST (\\Subscribed) "." qux2.bar2',
        "D03 OK LIST completed",
    )
    c.expect(
        'D04 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"\r\n',
        '* LIST (\\Subscribed) "." baz2.bar2',
        '* LIST (\\Subscribed) "." baz2.bar22',
        '* LIST (\\Subscribed) "." baz2.bar222',
        '* LIST (\\Subscribed) "." eps2 (CHILDINFO ("SUBSCRIBED"))',
        '* LIST (\\Subscribed) "." eps2.mamba',
        '* LIST (\\Subscribed) "." foo2.bar1',
        '* LIST (\\Subscribed) "." foo2.bar2',
        '* LIST (\\Subscribed) "." qux2.bar2',
        "D04 OK LIST completed",
    )


def test_rfc5258_examples_10_and_11(tmp_path: Path) -> None:
    """Example 10: CHILDINFO without a child that exists. The RFC shows \\HasNoChildren for foo;
    Dovecot, and we, count the subscribed child (RFC 5258 requires neither)."""
    c = client(tmp_path, ("foo", "music.rock"), ("foo.bar",))
    c.expect('a1 LIST "" ("foo" "foo.*")\r\n', '* LIST () "." foo', "a1 OK LIST completed")
    c.expect(
        'a2 LIST (SUBSCRIBED) "" "foo.*"\r\n',
        '* LIST (\\Subscribed \\NonExistent) "." foo.bar',
        "a2 OK LIST completed",
    )
    c.expect(
        'a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)\r\n',
        '* LIST (\\HasChildren) "." foo (CHILDINFO ("SUBSCRIBED"))',
        "a3 OK LIST completed",
    )
    # Example 11: music exists only as the parent of music.rock (RFC 5258 3.5).
    c.expect(
        'a4 LIST () "" "m%" RETURN (CHILDREN)\r\n',
        '* LIST (\\NonExistent \\HasChildren) "." music',
        "a4 OK LIST completed",
    )
    c.expect(
        'a5 LIST "" ("m%" "music.rock")\r\n',
        '* LIST (\\NonExistent) "." music',
        '* LIST () "." music.rock',
        "a5 OK LIST completed",
    )


def test_list_extended_refusals(fruit: Client) -> None:
    """RFC 5258 3: unknown options are BAD; RECURSIVEMATCH alone (or with REMOTE) is BAD."""
    fruit.expect(
        'a LIST (RECURSIVEMATCH) "" "*"\r\n',
        "a BAD LIST: RECURSIVEMATCH must not be the only selection option",
    )
    fruit.expect(
        'b LIST (REMOTE RECURSIVEMATCH) "" "*"\r\n',
        "b BAD LIST: RECURSIVEMATCH must not be the only selection option",
    )
    fruit.expect('c LIST (BOGUS) "" "*"\r\n', "c BAD LIST: unknown selection option BOGUS")
    fruit.expect('d LIST "" "*" RETURN (BOGUS)\r\n', "d BAD LIST: unknown return option BOGUS")
    fruit.expect('e LIST "" "*" RETURN (STATUS)\r\n', "e BAD LIST: unknown return option STATUS")
    fruit.expect(
        'f LIST "" "*" RETURN (STATUS (BOGUS))\r\n', "f BAD LIST: unknown STATUS item BOGUS"
    )
    fruit.expect(
        'g LIST "" "*" EXTRA\r\n',
        "g BAD LIST: LIST takes RETURN (options) after the patterns, nothing else",
    )
    fruit.expect(
        'h LSUB (SUBSCRIBED) "" "*"\r\n', "h BAD LSUB: LSUB needs a reference and a pattern"
    )
    # An option given twice counts once (RFC 5258 3).
    fruit.expect(
        'i LIST (SUBSCRIBED SUBSCRIBED) "" "Veg*" RETURN (CHILDREN CHILDREN)\r\n',
        '* LIST (\\Subscribed \\HasChildren) "." Vegetable',
        '* LIST (\\Subscribed \\HasNoChildren) "." Vegetable.Broccoli',
        "i OK LIST completed",
    )


def test_lsub_keeps_its_answers(fruit: Client) -> None:
    """LSUB is not LIST (SUBSCRIBED): a parent `%` stops at is \\Noselect (RFC 3501 6.3.9)."""
    fruit.expect(
        'a LSUB "" "%"\r\n',
        '* LSUB () "." INBOX',
        '* LSUB (\\Noselect) "." Fruit',
        '* LSUB () "." Vegetable',
        "a OK LSUB completed",
    )
    fruit.expect(
        'b LSUB "" "*"\r\n',
        '* LSUB () "." INBOX',
        '* LSUB () "." Fruit.Banana',
        '* LSUB () "." Fruit.Peach',
        '* LSUB () "." Vegetable',
        '* LSUB () "." Vegetable.Broccoli',
        "b OK LSUB completed",
    )


def python_steps(work: Callable[[], object]) -> int:
    """How many lines of Python `work` runs (sys.settrace): work counted, not timed."""
    count = 0

    def lines(frame: object, event: str, arg: object) -> object:
        nonlocal count
        count += 1
        return lines

    previous = sys.gettrace()
    sys.settrace(lines)
    try:
        work()
    finally:
        sys.settrace(previous)
    return count


def test_attack_list_with_thousands_of_patterns_reads_each_name_once() -> None:
    """`LIST "" ("*x0" "*x1" ... "*x9999")`: one 64 KiB command line. Tried one by one, each
    pattern reads the whole name, and 10,000 folders cost 10,000 x 10,000 scans: a thread of
    the pool for the best part of an hour. The patterns make one automaton (patterns.py): the
    work per name is the same for 10,000 patterns as for one."""
    name = "Lists.python.announce.archive.2024"
    one = PatternSet(["*x0"])
    many = PatternSet([f"*x{i}" for i in range(10_000)])
    assert not one.match(name) and not many.match(name)
    assert many.match("Lists.x9999") and many.match("x0") and not many.match("x10000.y")
    assert python_steps(lambda: many.match(name)) == python_steps(lambda: one.match(name))


# -- LIST-STATUS (RFC 5819 3) -------------------------------------------------------------------


def test_rfc5819_examples(tmp_path: Path) -> None:
    c = client(tmp_path, ("foo", "bar.baz"), ("INBOX", "foo.x"))
    c.store.mailbox("foo").append(b"Subject: a\r\n\r\nx\r\n")
    c.expect(
        'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n',
        '* LIST () "." INBOX',
        "* STATUS INBOX (MESSAGES 2 UNSEEN 1)",
        '* LIST (\\NonExistent) "." bar',  # \NonExistent implies \NoSelect (RFC 5258 3.4)
        '* LIST () "." foo',
        "* STATUS foo (MESSAGES 1 UNSEEN 1)",
        "A01 OK LIST completed",
    )
    # The RFC writes no space before the reference; the grammar (RFC 5258 6) has one.
    c.expect(
        'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))\r\n',
        '* LIST (\\Subscribed) "." INBOX',
        "* STATUS INBOX (MESSAGES 2)",
        '* LIST () "." foo (CHILDINFO ("SUBSCRIBED"))',  # no STATUS: foo is not subscribed
        "A02 OK LIST completed",
    )
    # The selected folder is counted as the session sees it; other items, in STATUS's order.
    c.send("s SELECT INBOX\r\n")
    c.expect(
        'A03 LIST "" "INBOX" RETURN (STATUS (UNSEEN RECENT SIZE MESSAGES) SPECIAL-USE CHILDREN)\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        f"* STATUS INBOX (MESSAGES 2 RECENT 1 UNSEEN 1 SIZE {len(MSG1) + 5 + len(MSG2)})",
        "A03 OK LIST completed",
    )


# -- SPECIAL-USE (RFC 6154 5) and XLIST ----------------------------------------------------------

RFC6154 = """[mailboxes]
SentMail = { special_use = '\\Sent', auto = "create" }
MyDrafts = { special_use = '\\Drafts', auto = "create" }
Trash = { special_use = '\\Trash', auto = "create" }
"""


@pytest.fixture
def special(tmp_path: Path) -> Client:
    return client(tmp_path, ("ToDo", "Projects", "Projects.x"), config=RFC6154)


def test_rfc6154_example_5_1_plain_list(special: Client) -> None:
    special.expect(
        't1 LIST "" "%"\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasNoChildren \\Drafts) "." MyDrafts',
        '* LIST (\\HasChildren) "." Projects',
        '* LIST (\\HasNoChildren \\Sent) "." SentMail',
        '* LIST (\\HasNoChildren) "." ToDo',
        '* LIST (\\HasNoChildren \\Trash) "." Trash',
        "t1 OK LIST completed",
    )


def test_rfc6154_example_5_2_extended_list(special: Client) -> None:
    lines = special.send("t1 CAPABILITY\r\n")
    assert {"SPECIAL-USE", "CREATE-SPECIAL-USE", "LIST-EXTENDED"} <= set(lines[0].split())
    special.expect(
        't2 LIST "" "%" RETURN (SPECIAL-USE)\r\n',
        '* LIST () "." INBOX',
        '* LIST (\\Drafts) "." MyDrafts',
        '* LIST () "." Projects',
        '* LIST (\\Sent) "." SentMail',
        '* LIST () "." ToDo',
        '* LIST (\\Trash) "." Trash',
        "t2 OK LIST completed",
    )
    special.expect(
        't3 LIST (SPECIAL-USE) "" "*"\r\n',
        '* LIST (\\Drafts) "." MyDrafts',
        '* LIST (\\Sent) "." SentMail',
        '* LIST (\\Trash) "." Trash',
        "t3 OK LIST completed",
    )
    # Outlook 2013 reads them in LSUB (and Dovecot gives them there).
    special.send("s SUBSCRIBE SentMail\r\n")
    special.expect('t4 LSUB "" "*"\r\n', '* LSUB (\\Sent) "." SentMail', "t4 OK LSUB completed")


def test_rfc6154_example_5_3_create_with_use(special: Client, tmp_path: Path) -> None:
    special.expect("t2 CREATE MySpecial (USE (\\Drafts \\Sent))\r\n", "t2 OK CREATE completed")
    special.expect("t3 CREATE Everything (USE (\\All))\r\n", "t3 NO [USEATTR] \\All not supported")
    special.expect(
        "t4 CREATE Everything (USE (\\Sent \\Bogus))\r\n", "t4 NO [USEATTR] \\Bogus not supported"
    )
    special.expect(
        "t5 CREATE Everything (FOO (\\Sent))\r\n", "t5 BAD CREATE: unknown CREATE parameter FOO"
    )
    special.expect("t6 CREATE Plain (USE ())\r\n", "t6 OK CREATE completed")
    # RFC 6154 3: refused, the mailbox is not created.
    assert not special.store.exists("Everything")
    special.expect(
        't7 LIST (SPECIAL-USE) "" "M*"\r\n',
        '* LIST (\\Drafts) "." MyDrafts',
        '* LIST (\\Drafts \\Sent) "." MySpecial',
        "t7 OK LIST completed",
    )
    # Kept beside `subscriptions` in a file of ours (Dovecot 2.3 cannot store them).
    kept = (Path(special.store.root) / SPECIAL_USE_FILE).read_text()
    assert kept == "V\t1\n\n\\Drafts \\Sent\tMySpecial\n"
    # They belong to the folder: RENAME takes them along, DELETE drops them.
    special.expect("t8 RENAME MySpecial Mine.Special\r\n", "t8 OK RENAME completed")
    special.expect(
        't9 LIST "" "Mine.*"\r\n',
        '* LIST (\\HasNoChildren \\Drafts \\Sent) "." Mine.Special',
        "t9 OK LIST completed",
    )
    special.expect("ta DELETE Mine.Special\r\n", "ta OK DELETE completed")
    special.expect("tb CREATE Mine.Special\r\n", "tb OK CREATE completed")
    special.expect(
        'tc LIST "" "Mine.*"\r\n',
        '* LIST (\\HasNoChildren) "." Mine.Special',
        "tc OK LIST completed",
    )
    # A name in modified UTF-7.
    special.expect("td CREATE Entw&APw-rfe (USE (\\drafts))\r\n", "td OK CREATE completed")
    special.expect(
        'te LIST (SPECIAL-USE) "" "E*"\r\n',
        '* LIST (\\Drafts) "." Entw&APw-rfe',
        "te OK LIST completed",
    )


def test_xlist_speaks_gmails_names(tmp_path: Path) -> None:
    """Gmail's XLIST, for the clients of its time: `* XLIST`, \\Inbox on INBOX, \\Spam for
    \\Junk, \\AllMail for \\All, \\Starred for \\Flagged."""
    config = (
        "[mailboxes]\n"
        "Junk = { special_use = '\\Junk', auto = \"create\" }\n"
        "Sent = { special_use = '\\Sent', auto = \"create\" }\n"
        "All = { special_use = '\\All', auto = \"create\" }\n"
        "Flagged = { special_use = '\\Flagged', auto = \"create\" }\n"
    )
    c = client(tmp_path, ("Lists.python",), config=config)
    assert "XLIST" in c.send("a CAPABILITY\r\n")[0].split()
    c.expect(
        'b XLIST "" "*"\r\n',
        '* XLIST (\\HasNoChildren \\Inbox) "." INBOX',
        '* XLIST (\\HasNoChildren \\AllMail) "." All',
        '* XLIST (\\HasNoChildren \\Starred) "." Flagged',
        '* XLIST (\\HasNoChildren \\Spam) "." Junk',
        '* XLIST (\\Noselect \\HasChildren) "." Lists',
        '* XLIST (\\HasNoChildren) "." Lists.python',
        '* XLIST (\\HasNoChildren \\Sent) "." Sent',
        "b OK XLIST completed",
    )
    c.expect('c XLIST "" ""\r\n', '* XLIST (\\Noselect) "." ""', "c OK XLIST completed")
    c.expect(
        'd XLIST (SPECIAL-USE) "" "*"\r\n', "d BAD XLIST: XLIST needs a reference and a pattern"
    )


# -- STATUS=SIZE (RFC 8438), DELETED and DELETED-STORAGE (RFC 9208 4.2) ---------------------------


def test_rfc8438_status_size_and_rfc9208_deleted(tmp_path: Path) -> None:
    c = client(tmp_path)
    sizes = [len(MSG1) + MSG1.count(b"\n"), len(MSG2)]  # CRLF sizes: RFC822.SIZE
    c.expect(
        "A042 STATUS INBOX (UIDNEXT MESSAGES SIZE)\r\n",
        f"* STATUS INBOX (MESSAGES 2 UIDNEXT 3 SIZE {sum(sizes)})",
        "A042 OK STATUS completed",
    )
    c.send("s SELECT INBOX\r\n")
    c.expect(
        "f FETCH 1:* RFC822.SIZE\r\n",
        f"* 1 FETCH (RFC822.SIZE {sizes[0]})",
        f"* 2 FETCH (RFC822.SIZE {sizes[1]})",
        "f OK FETCH completed",
    )
    c.send("t STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")
    c.expect(
        "A043 STATUS INBOX (DELETED-STORAGE DELETED MESSAGES DELETED SIZE)\r\n",
        f"* STATUS INBOX (MESSAGES 2 DELETED 1 SIZE {sum(sizes)} DELETED-STORAGE {sizes[1]})",
        "A043 OK STATUS completed",
    )
    c.expect("e EXPUNGE\r\n", "* 2 EXPUNGE", "e OK EXPUNGE completed")
    c.expect(
        "A044 STATUS INBOX (SIZE DELETED)\r\n",
        f"* STATUS INBOX (DELETED 0 SIZE {sizes[0]})",
        "A044 OK STATUS completed",
    )
    c.expect("A045 STATUS INBOX ()\r\n", "A045 BAD STATUS: STATUS needs at least one item")
    c.expect("A046 STATUS Nope (SIZE)\r\n", "A046 NO [NONEXISTENT] mailbox Nope does not exist")


# -- APPENDLIMIT (RFC 7889) -----------------------------------------------------------------------


def test_rfc7889_appendlimit(tmp_path: Path) -> None:
    c = Client(tmp_path, config="max_message_size = 257890\n" + NO_AUTO)
    assert "APPENDLIMIT=257890" in c.greeting.split()
    c.login()
    c.expect(
        "a001 STATUS INBOX (APPENDLIMIT)\r\n",
        "* STATUS INBOX (APPENDLIMIT 257890)",
        "a001 OK STATUS completed",
    )
    # Refused before the client sends it (RFC 7889 4: TOOBIG), and nothing is stored.
    (refused,) = c.send("a002 APPEND INBOX {257891}\r\n")
    assert re.fullmatch(r"a002 (NO|BAD) \[TOOBIG\] .*", refused), refused
    c.expect(
        "a003 APPEND INBOX {11+}\r\nSubject: x\r\n", "a003 OK [APPENDUID {n} 3] APPEND completed"
    )


# -- QUOTA (RFC 9208 4) -------------------------------------------------------------------------


def test_rfc9208_quota_from_the_passdb(tmp_path: Path) -> None:
    c = client(tmp_path, userdb="userdb_quota_rule=*:storage=1M")
    caps = c.send("a CAPABILITY\r\n")[0].split()
    assert "QUOTA" in caps and "QUOTA=RES-STORAGE" in caps and "QUOTA=RES-MESSAGE" not in caps
    # 2 messages of about 140 octets: 1 KiB used, rounded up as Dovecot does.
    c.expect(
        "A001 GETQUOTAROOT INBOX\r\n",
        '* QUOTAROOT INBOX "User quota"',
        '* QUOTA "User quota" (STORAGE 1 1024)',
        "A001 OK GETQUOTAROOT completed",
    )
    c.expect(
        'A003 GETQUOTA "User quota"\r\n',
        '* QUOTA "User quota" (STORAGE 1 1024)',
        "A003 OK GETQUOTA completed",
    )
    c.expect('A004 GETQUOTA ""\r\n', "A004 NO [NONEXISTENT] Quota root doesn't exist")
    c.expect(
        'A005 SETQUOTA "User quota" (STORAGE 512)\r\n',
        "A005 NO [NOPERM] Quota can be changed only by the administrator",
    )
    c.expect(
        'A006 SETQUOTA "User quota"\r\n',
        "A006 BAD SETQUOTA: SETQUOTA needs a quota root and a list of limits",
    )


def test_rfc9208_message_limit_and_overquota(tmp_path: Path) -> None:
    """No passdb rule: the definition in `maildirsize` is the limit (Maildir++), here three
    messages. APPEND and COPY over it end in NO [OVERQUOTA] and store nothing."""
    c = Client(tmp_path, config=NO_AUTO)
    (Path(c.store.root) / "maildirsize").write_text("0S,3C\n")  # usage not written: counted
    c.login()
    caps = c.send("a CAPABILITY\r\n")[0].split()
    assert "QUOTA=RES-MESSAGE" in caps and "QUOTA=RES-STORAGE" not in caps
    c.expect(
        "b GETQUOTAROOT INBOX\r\n",
        '* QUOTAROOT INBOX "User quota"',
        '* QUOTA "User quota" (MESSAGE 2 3)',
        "b OK GETQUOTAROOT completed",
    )
    c.expect("c APPEND INBOX {11+}\r\nSubject: x\r\n", "c OK [APPENDUID {n} 3] APPEND completed")
    c.expect(
        "d APPEND INBOX {11+}\r\nSubject: y\r\n",
        "d NO [OVERQUOTA] quota exceeded: 3 of 3 messages used, 1 more requested",
    )
    c.send("s SELECT INBOX\r\n")
    c.send("f CREATE Folder\r\n")
    c.expect(
        "e COPY 1 Folder\r\n",
        "e NO [OVERQUOTA] quota exceeded: 3 of 3 messages used, 1 more requested",
    )
    c.expect(
        "g STATUS Folder (MESSAGES)\r\n", "* STATUS Folder (MESSAGES 0)", "g OK STATUS completed"
    )
    c.expect(
        'h GETQUOTA "User quota"\r\n',
        '* QUOTA "User quota" (MESSAGE 3 3)',
        "h OK GETQUOTA completed",
    )


def test_rfc9208_no_limit(tmp_path: Path) -> None:
    """Without a limit there is no QUOTA capability, and no quota root (RFC 9208 4.1.2 still
    wants the QUOTAROOT response; Dovecot sends none)."""
    c = client(tmp_path)
    assert not [cap for cap in c.send("a CAPABILITY\r\n")[0].split() if cap.startswith("QUOTA")]
    c.expect("b GETQUOTAROOT INBOX\r\n", "* QUOTAROOT INBOX", "b OK GETQUOTAROOT completed")
    c.expect('c GETQUOTA "User quota"\r\n', "c NO [NONEXISTENT] Quota root doesn't exist")


# -- [mailboxes]: the folders every user gets -------------------------------------------------------


def test_default_folders_are_made_and_subscribed_at_login(tmp_path: Path) -> None:
    c = Client(tmp_path)
    assert c.store.list_folders() == ["INBOX"]
    c.login()
    assert c.store.list_folders() == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert c.store.subscriptions() == ["Drafts", "Sent", "Trash", "Junk", "Archive"]
    c.expect(
        'a LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)\r\n',
        '* LIST () "." INBOX',
        '* LIST (\\Subscribed \\Archive) "." Archive',
        '* LIST (\\Subscribed \\Drafts) "." Drafts',
        '* LIST (\\Subscribed \\Junk) "." Junk',
        '* LIST (\\Subscribed \\Sent) "." Sent',
        '* LIST (\\Subscribed \\Trash) "." Trash',
        "a OK LIST completed",
    )
    # iOS's "Sent Messages" is \Sent too, but made only by the client that wants it.
    c.send("b CREATE {13+}\r\nSent Messages\r\n")
    c.expect(
        'c LIST (SPECIAL-USE) "" "Sent*"\r\n',
        '* LIST (\\Sent) "." Sent',
        '* LIST (\\Sent) "." "Sent Messages"',
        "c OK LIST completed",
    )


def test_an_auto_folder_deleted_or_renamed_is_made_again(tmp_path: Path) -> None:
    """Dovecot lists an auto folder whatever is on disk, so DELETE empties it; an UNSUBSCRIBE
    of an `auto = "subscribe"` folder does not show in LSUB (as Dovecot)."""
    c = Client(tmp_path)
    c.login()
    c.store.mailbox("Junk").append(b"Subject: spam\r\n\r\nx\r\n")
    c.expect("a DELETE Junk\r\n", "a OK DELETE completed")
    c.expect("b STATUS Junk (MESSAGES)\r\n", "* STATUS Junk (MESSAGES 0)", "b OK STATUS completed")
    c.expect("c RENAME Sent Sent2023\r\n", "c OK RENAME completed")
    c.expect(
        'd LIST "" "Sent*"\r\n',
        '* LIST (\\HasNoChildren \\Sent) "." Sent',
        '* LIST (\\HasNoChildren) "." Sent2023',
        "d OK LIST completed",
    )
    c.expect("e UNSUBSCRIBE Trash\r\n", "e OK UNSUBSCRIBE completed")
    c.expect('f LSUB "" "T*"\r\n', '* LSUB (\\Trash) "." Trash', "f OK LSUB completed")
    assert "Trash" not in c.store.subscriptions()
    # Removed behind the server's back (another program): the next LIST makes it again.
    c.store.delete_folder("Drafts")
    c.expect(
        'g LIST "" "D*"\r\n', '* LIST (\\HasNoChildren \\Drafts) "." Drafts', "g OK LIST completed"
    )


def test_auto_create_is_not_subscribe(tmp_path: Path) -> None:
    config = '[mailboxes.Spam]\nspecial_use = "\\\\Junk"\nauto = "create"\n[mailboxes.Later]\nauto = "no"\n'
    c = client(tmp_path, config=config)
    assert c.store.list_folders() == ["INBOX", "Spam"]
    assert c.store.subscriptions() == []
    c.expect('a LSUB "" "*"\r\n', "a OK LSUB completed")


def test_a_folder_that_cannot_be_made_does_not_stop_the_login(tmp_path: Path) -> None:
    c = Client(tmp_path)
    # A file where the folder's directory would be.
    (Path(c.store.root) / ".Junk").write_text("not a folder")
    c.login()
    assert c.store.list_folders() == ["INBOX", "Archive", "Drafts", "Sent", "Trash"]


def test_check_config_reports_each_bad_entry_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mra.toml"
    path.write_text(
        "[mailboxes]\n"
        "Drafts = { special_use = '\\Drafts', auto = \"subscribe\" }\n"
        "Sent = { special_use = '\\Sent', auto = \"sometimes\" }\n"
        "\"Lists.python\" = { special_use = '\\Sent \\Outbox' }\n"
        'Bad = "x"\n'
        '"a..b" = {}\n'
        "[mailboxes.Junk]\n"
        "special_use = '\\Junk'\n"
        'autox = "create"\n'
        '[mailboxes."Entwürfe"]\n'
        "auto = 3\n"
        "special_use = ['\\Drafts']\n"
    )
    problems = [(p.line, p.message) for p in check_config(str(path))]
    assert problems == [
        (3, "[mailboxes] 'Sent' auto must be 'no', 'create' or 'subscribe', not 'sometimes'"),
        (
            4,
            "[mailboxes] 'Lists.python': unknown special use \\Outbox (known: \\All \\Archive \\Drafts \\Flagged \\Important \\Junk \\Sent \\Trash)",
        ),
        (
            5,
            "[mailboxes] 'Bad' must be a table like { special_use = '\\Sent', auto = \"subscribe\" }, not 'x'",
        ),
        (
            6,
            "[mailboxes] 'a..b': invalid mailbox name: empty hierarchy level (leading, trailing or double '.')",
        ),
        (9, "unknown key 'autox' in [mailboxes] 'Junk'; did you mean 'auto'?"),
        (11, "[mailboxes] 'Entwürfe' auto must be 'no', 'create' or 'subscribe', not 3"),
        (
            12,
            "[mailboxes] 'Entwürfe' special_use must be a string like '\\Sent \\Archive', not an array",
        ),
    ]
    mra = Path(sys.executable).parent / "mra"
    run = subprocess.run(
        [mra, "check-config", "--config", str(path)], capture_output=True, text=True
    )
    assert run.returncode != 0
    assert f"{path}:9: unknown key 'autox' in [mailboxes] 'Junk'" in run.stdout + run.stderr


def test_mailboxes_section_forms(tmp_path: Path) -> None:
    path = tmp_path / "mra.toml"
    path.write_text(
        "[mailboxes]\n"
        'INBOX = { auto = "subscribe" }\n'
        "\"Sent Messages\" = { special_use = '\\sent  \\ARCHIVE \\Sent' }\n"
        "[mailboxes.Drafts]\n"
        'special_use = "\\\\Drafts"\n'
    )
    folders = load_config(str(path)).mailboxes.folders
    assert [(f.name, f.special_use, f.auto) for f in folders] == [
        ("INBOX", (), "subscribe"),
        ("Sent Messages", ("\\Sent", "\\Archive"), "no"),
        ("Drafts", ("\\Drafts",), "no"),
    ]
    assert load_config(None).mailboxes.folders[1] == ("Sent", ("\\Sent",), "subscribe")


# -- the README's examples ----------------------------------------------------------------------


def _readme_section(heading: str) -> str:
    """From `heading` to the next heading (a `#` line outside a code block)."""
    text = README.read_text()
    start = text.index(heading)
    lines = text[start:].split("\n")
    fenced = False
    for i, line in enumerate(lines[1:], 1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            return "\n".join(lines[:i])
    return text[start:]


def _blocks(section: str, kind: str) -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", section, re.DOTALL | re.MULTILINE)


def test_readme_mailboxes_example(tmp_path: Path) -> None:
    """The configuration and the session of README's "Mailboxes and folders", as written."""
    section = _readme_section("#### Mailboxes and folders")
    (toml,) = _blocks(section, "toml")
    (session,) = _blocks(section, "imap")
    c = Client(tmp_path, config=toml, userdb="userdb_quota_rule=*:storage=1G")
    c.login()
    exchange: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("C: "):
            exchange.append((line[3:], []))
        elif line.startswith("S: "):
            exchange[-1][1].append(line[3:])
    assert exchange
    for command, answer in exchange:
        c.expect(command + "\r\n", *answer)


def test_readme_configuration_shows_the_default_mailboxes(tmp_path: Path) -> None:
    """The configuration section's example spells out the defaults of `[mailboxes]`."""
    (toml,) = _blocks(_readme_section("## Configuration file"), "toml")[:1]
    config = parse_config(toml.encode(), str(tmp_path / "mra.toml"))
    assert sorted(config.mailboxes.folders) == sorted(DEFAULT_MAILBOXES)
