"""The mailbox and LIST extensions side by side with Dovecot 2.3, both configured alike: our
`[mailboxes]` given to Dovecot as `namespace inbox { mailbox NAME { special_use = ... auto =
... } }` (written from our own settings, so the two cannot drift apart), the user's quota as
`quota = maildir:User quota` with the same rule. Then a real client (imapclient) on our server.

Both servers work on one Maildir (tests/interop/side_by_side.py); ours runs as the mail user
Dovecot runs as, so the folders each makes the other can use. A command that changes the tree
is sent to one server, and what both then show is compared.

Where our answers differ from Dovecot's, by design (README "Mailboxes and folders"), the
test says so and checks the difference itself: XLIST, STATUS DELETED, CREATE with USE, and
GETQUOTAROOT for a user without a limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import imapclient
import pytest
from imapclient.imapclient import JUNK, SENT

from mailstore.specialuse import DEFAULT_MAILBOXES, MailboxSetting
from mailstore.store import MailStore
from tests.interop.dovecot import mail_owner, running_as_root
from tests.interop.side_by_side import SideBySide
from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.conftest import server_factory as server_factory  # the fixture

pytestmark = [pytest.mark.interop]

MESSAGES = [
    b"From: a@example.test\r\nSubject: one\r\n\r\nhello\r\n",
    b"From: b@example.test\r\nSubject: two\r\n\r\nhello again, a longer body\r\n",
]
# Ours runs as the user Dovecot accesses mail as (root only binds).
AS_MAIL_USER = (
    f'[server]\nuser = "{mail_owner()[0]}"\nrequire_readable_installation = false\n'
    if running_as_root()
    else ""
)


def dovecot_settings(
    folders: Iterable[MailboxSetting] = DEFAULT_MAILBOXES, quota_rule: str | None = None
) -> dict[str, str]:
    """Dovecot's configuration for our `[mailboxes]` and quota.

    The harness writes `key = value` lines; a section is written as a key holding the whole
    block, its last line a comment that the ` = ` lands in."""
    block = ["namespace inbox {", "  inbox = yes", "  separator = ."]
    for f in folders:
        block += [f'  mailbox "{f.name}" {{', f"    auto = {f.auto}"]
        if f.special_use:
            block.append(f"    special_use = {' '.join(f.special_use)}")
        block.append("  }")
    block += [
        "}",
        "mail_plugins = quota",
        "protocol imap {",
        "  mail_plugins = quota imap_quota",
        "}",
        "plugin {",
        "  quota = maildir:User quota",
        *([f"  quota_rule = {quota_rule}"] if quota_rule else []),
        "}",
        "# (the harness's ` = ` goes here)",
    ]
    return {"\n".join(block): ""}


def our_config(folders: Iterable[MailboxSetting] | None, *, as_mail_user: bool = True) -> str:
    """Our `[mailboxes]` for the same folders (None: the default, no section at all)."""
    head = AS_MAIL_USER if as_mail_user else ""
    if folders is None:
        return head
    lines = ["[mailboxes]"]
    for f in folders:
        lines.append(
            f'"{f.name}" = {{ special_use = \'{" ".join(f.special_use)}\', auto = "{f.auto}" }}'
        )
    return head + "\n".join(lines) + "\n"


def passdb_quota(rule: str) -> Callable[[MailStore], None]:
    """A setup step giving alice `userdb_quota_rule=<rule>` in our passwd-file (MraServer keeps
    it at base/passwd, the Maildir at base/mail/<domain>/<name>)."""

    def setup(store: MailStore) -> None:
        passwd = Path(store.root).parents[2] / "passwd"
        lines = passwd.read_text().splitlines()
        passwd.write_text(
            "".join(
                line + (f"userdb_quota_rule={rule}" if line.startswith("alice@") else "") + "\n"
                for line in lines
            )
        )

    return setup


def then(*steps: Callable[[MailStore], object]) -> Callable[[MailStore], None]:
    def setup(store: MailStore) -> None:
        for step in steps:
            step(store)

    return setup


def folders_and_subscriptions(store: MailStore) -> None:
    # ASCII names only: our server runs as the mail user, and an interpreter installed under
    # /root (pyenv) cannot load the UTF-16 codec after the switch. Modified UTF-7 names are
    # compared in test_imap_dovecot_answers.py.
    for name in ("a.b.c", "m", "m.n", "Lists.python", "Sent Messages"):
        store.create_folder(name)
    store.mailbox("m").append(b"Subject: in m\r\n\r\nx\r\n")
    for name in ("a.b.c", "x.y", "m", "m.n.o"):
        store.subscribe(name)


def grouped(lines: list[bytes]) -> list[bytes]:
    """The untagged lines as a sorted list of LIST lines each with the STATUS after it, and the
    status word: LIST-STATUS's order matters within a folder, not between folders."""
    groups: list[bytes] = []
    for line in lines[:-1]:
        if line.startswith(b"* STATUS ") and groups:
            groups[-1] += b"\n" + line
        else:
            groups.append(line)
    return [*sorted(groups), lines[-1]]


def same_listing(both: SideBySide, command: str) -> list[bytes]:
    ours, dovecot = both.both(command)
    ours, dovecot = grouped(ours), grouped(dovecot)
    assert ours == dovecot, f"{command}:\n ours:    {ours}\n dovecot: {dovecot}"
    return ours


LISTINGS = [
    'LIST "" "*"',
    'LIST "" "%"',
    'LIST "" "Lists.%"',
    'LSUB "" "*"',
    'LSUB "" "%"',
    'LIST (SUBSCRIBED) "" "*"',
    'LIST (SUBSCRIBED) "" "%" RETURN (CHILDREN)',
    'LIST (SPECIAL-USE) "" "*"',
    'LIST (SPECIAL-USE) "" "%" RETURN (CHILDREN)',
    'LIST (SUBSCRIBED SPECIAL-USE) "" "*"',
    'LIST (SPECIAL-USE RECURSIVEMATCH) "" "%"',
    'LIST (REMOTE) "" "%" RETURN (CHILDREN)',
    'LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED CHILDREN)',
    'LIST "" "*" RETURN ()',
    'LIST () "" "*"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
    'LIST "" ("INBOX" "Sent*" "")',
    'LIST "" ("m" "m.*" "a%")',
    'LIST "" ()',
    'LIST () "" ""',
    'LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN SIZE UIDNEXT RECENT))',
    'LIST "" "*" RETURN (STATUS (MESSAGES) SPECIAL-USE)',
    'LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES UIDVALIDITY))',
    'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (STATUS (MESSAGES))',
    # refused alike
    'LIST (RECURSIVEMATCH) "" "*"',
    'LIST (REMOTE RECURSIVEMATCH) "" "*"',
    'LIST (BOGUS) "" "*"',
    'LIST "" "*" RETURN (BOGUS)',
    'LIST "" "*" RETURN (STATUS)',
    'LIST "" "*" RETURN (STATUS ())',
    'LIST "" "*" EXTRA',
]


def test_lists_of_the_default_folders_are_dovecots(require_dovecot: None) -> None:
    """The default [mailboxes] against Debian's 15-mailboxes.conf plus Archive: the folders
    our login made and Dovecot's virtual ones look the same, in every LIST form."""
    with SideBySide(
        MESSAGES,
        extra=our_config(None),
        settings=dovecot_settings(),
        setup=folders_and_subscriptions,
    ) as both:
        for command in LISTINGS:
            same_listing(both, command)
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        # (not RECENT: the session that selects first takes \Recent, RFC 3501 2.3.2)
        same_listing(both, 'LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN SIZE))')


RFC5258_FRUIT = ("Fruit", "Fruit.Apple", "Fruit.Banana", "Tofu", "Vegetable", "Vegetable.Broccoli")
RFC5258_SUBSCRIBED = ("INBOX", "Fruit.Banana", "Fruit.Peach", "Vegetable", "Vegetable.Broccoli")
RFC5258_EXAMPLE_9 = ("foo2", "foo2.bar1", "foo2.bar2", "baz2", "baz2.bar2", "baz2.bar22")
RFC5258_EXAMPLE_9 += ("eps2", "eps2.mamba", "qux2.bar2", "foo", "music.rock", "Moo", "Foo.Baz")
RFC5258_EXAMPLE_9_SUBSCRIBED = ("foo2.bar1", "foo2.bar2", "baz2.bar2", "baz2.bar22", "eps2")
RFC5258_EXAMPLE_9_SUBSCRIBED += ("eps2.mamba", "qux2.bar2", "foo.bar", "Moo", "Foo.Baz")


def rfc5258_hierarchies(store: MailStore) -> None:
    for name in RFC5258_FRUIT + RFC5258_EXAMPLE_9:
        store.create_folder(name)
    for name in RFC5258_SUBSCRIBED + RFC5258_EXAMPLE_9_SUBSCRIBED:
        store.subscribe(name)


def test_rfc5258_and_rfc5819_examples_are_dovecots(require_dovecot: None) -> None:
    """The RFC examples' commands on their hierarchies, no special folders on either side."""
    with SideBySide(
        MESSAGES,
        extra=our_config(()),
        settings=dovecot_settings(()),
        setup=rfc5258_hierarchies,
    ) as both:
        for command in (
            'LIST "" "*"',
            'LIST (SUBSCRIBED) "" "*"',
            'LIST () "" "%" RETURN (CHILDREN)',
            'LIST (REMOTE) "" "%" RETURN (CHILDREN)',
            'LIST (REMOTE SUBSCRIBED) "" "*"',
            'LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)',
            'LIST "" ("INBOX" "Fruit" "Vegetable.%")',
            'LIST (SUBSCRIBED) "" "%"',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
            'LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"',
            'LIST (RECURSIVEMATCH SUBSCRIBED) "" "*"',
            'LIST "" ("foo" "foo.*")',
            'LIST (SUBSCRIBED) "" "foo.*"',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)',
            'LIST () "" "m%" RETURN (CHILDREN)',
            'LIST "" ("m%" "music.rock")',
            'LIST "" % RETURN (STATUS (MESSAGES UNSEEN))',
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))',
            'LSUB "" "%"',
            'LSUB "" "*"',
        ):
            same_listing(both, command)


def test_auto_folders_stay_as_dovecot_shows_them(require_dovecot: None) -> None:
    """An auto folder deleted or renamed (by us or by Dovecot) is there again for both; one
    unsubscribed still shows in LSUB; special uses from the configuration stay with the name."""
    with SideBySide(
        MESSAGES,
        extra=our_config(None),
        settings=dovecot_settings(),
        setup=folders_and_subscriptions,
    ) as both:
        both.ours.ok("DELETE Junk")
        same_listing(both, 'LIST "" "*"')
        both.dovecot.ok("DELETE Trash")  # on disk it is gone; Dovecot lists it all the same
        same_listing(both, 'LIST "" "*"')
        same_listing(both, 'LIST "" "T*" RETURN (STATUS (MESSAGES))')
        both.ours.ok("RENAME Sent Sent2023")
        same_listing(both, 'LIST "" "*"')
        both.dovecot.ok("RENAME Drafts Drafts2023")
        same_listing(both, 'LIST "" "*" RETURN (SPECIAL-USE)')
        both.ours.ok("UNSUBSCRIBE Archive")
        same_listing(both, 'LSUB "" "*"')
        same_listing(both, 'LIST (SUBSCRIBED) "" "*"')
        both.dovecot.ok("UNSUBSCRIBE Sent")
        same_listing(both, 'LSUB "" "*"')


def test_status_items_are_dovecots(require_dovecot: None) -> None:
    """STATUS=SIZE and the order of the items; DELETED and DELETED-STORAGE, which Dovecot 2.3
    does not have (BAD there), answer as RFC 9208 says."""
    with SideBySide(MESSAGES, extra=our_config(()), settings=dovecot_settings(())) as both:
        for command in (
            "STATUS INBOX (UIDNEXT MESSAGES SIZE)",
            "STATUS INBOX (SIZE UNSEEN RECENT UIDVALIDITY MESSAGES UIDNEXT)",
            "STATUS INBOX (SIZE SIZE)",
            "STATUS INBOX ()",
            "STATUS INBOX (BOGUS)",
            "STATUS Nope (SIZE)",
        ):
            both.same(command)
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        both.ours.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        both.same("STATUS INBOX (MESSAGES SIZE UNSEEN)")
        ours, dovecot = both.both("STATUS INBOX (DELETED DELETED-STORAGE)")
        size = len(MESSAGES[1])
        assert ours == [f"* STATUS INBOX (DELETED 1 DELETED-STORAGE {size})".encode(), b"OK"]
        assert dovecot[-1] == b"BAD"


def test_quota_answers_are_dovecots(require_dovecot: None) -> None:
    """A 1 MiB limit from the passdb (Dovecot: the same quota_rule)."""
    with SideBySide(
        MESSAGES,
        extra=our_config(()),
        settings=dovecot_settings((), quota_rule="*:storage=1M"),
        setup=passdb_quota("*:storage=1M"),
    ) as both:
        for command in (
            "GETQUOTAROOT INBOX",
            "GETQUOTAROOT nothere",
            'GETQUOTA "User quota"',
            'GETQUOTA ""',
            "GETQUOTA nothere",
        ):
            both.same(command)
        for command in ('SETQUOTA "User quota" (STORAGE 10)', 'SETQUOTA "" (MESSAGE 1)'):
            ours, dovecot = both.both(command)
            assert ours == dovecot == [b"NO"], command
        caps = both.ours.ok("CAPABILITY")[0].split()
        assert b"QUOTA" in caps and b"QUOTA=RES-STORAGE" in caps
        assert b"QUOTA=RES-MESSAGE" not in caps


def test_quota_from_maildirsize_and_overquota_are_dovecots(require_dovecot: None) -> None:
    """No rule on either side: the limit written in maildirsize (Maildir++) counts, here three
    messages. An APPEND or COPY over it is NO [OVERQUOTA] from both, and stores nothing."""

    def maildirsize(store: MailStore) -> None:
        Path(store.root, "maildirsize").write_text("1048576S,3C\n")
        store.create_folder("Folder")

    with SideBySide(
        MESSAGES, extra=our_config(()), settings=dovecot_settings(()), setup=maildirsize
    ) as both:
        both.same("GETQUOTAROOT INBOX")
        both.ours.ok("APPEND INBOX {11+}\r\nSubject: 3\r\n")
        both.same('GETQUOTA "User quota"')
        for command in (
            "APPEND INBOX {11+}\r\nSubject: 4\r\n",
            "APPEND Folder {11+}\r\nSubject: 4\r\n",
        ):
            ours, dovecot = both.ours.command(command), both.dovecot.command(command)
            for lines in (ours, dovecot):
                assert re.match(rb"A\d+ NO \[OVERQUOTA\] ", lines[-1]), (command, lines)
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for server in (both.ours, both.dovecot):
            lines = server.command("COPY 1 Folder")
            assert re.match(rb"A\d+ NO \[OVERQUOTA\] ", lines[-1]), lines
        both.same("STATUS Folder (MESSAGES)")
        both.same('GETQUOTA "User quota"')


def test_differences_from_dovecot_are_the_documented_ones(require_dovecot: None) -> None:
    """XLIST: ours `* XLIST` with Gmail's names, Dovecot `* LIST` with RFC 6154's, for the same
    folders. CREATE with USE: Dovecot 2.3 ignores the parameter. GETQUOTAROOT without a limit:
    ours the QUOTAROOT RFC 9208 wants, Dovecot none."""
    with SideBySide(
        MESSAGES,
        extra=our_config(None),
        settings=dovecot_settings(),
        setup=folders_and_subscriptions,
    ) as both:
        ours, dovecot = both.both('XLIST "" "*"')
        gmail = {b"\\Junk": b"\\Spam", b"\\All": b"\\AllMail", b"\\Flagged": b"\\Starred"}
        expected = []
        for line in dovecot[:-1]:
            m = re.fullmatch(rb"\* LIST \((.*?)\) (.*)", line)
            assert m is not None, line
            attrs = [gmail.get(a, a) for a in m.group(1).split()]
            if m.group(2) == b'"." INBOX':
                attrs.append(b"\\Inbox")
            expected.append(b"* XLIST (" + b" ".join(attrs) + b") " + m.group(2))
        assert sorted(ours[:-1]) == sorted(expected) and ours[-1] == dovecot[-1] == b"OK"
        assert any(b"\\Spam" in line for line in ours)

        # Dovecot 2.3 does not offer CREATE-SPECIAL-USE: it ignores USE and makes a plain
        # folder (which RFC 6154 3 forbids a server that has the capability to do).
        assert both.ours.ok("CREATE Receipts (USE (\\Archive))")
        assert both.dovecot.ok("CREATE Invoices (USE (\\Archive))")
        ours, dovecot = both.both('LIST (SPECIAL-USE) "" ("Receipts" "Invoices")')
        assert ours == [b'* LIST (\\Archive) "." Receipts', b"OK"] and dovecot == [b"OK"]

        ours, dovecot = both.both("GETQUOTAROOT INBOX")
        assert ours == [b"* QUOTAROOT INBOX", b"OK"] and dovecot == [b"OK"]


# -- a real client -----------------------------------------------------------------------------


def test_imapclient_finds_the_special_folders_and_the_quota(
    server_factory: type[MraServer],
) -> None:
    """imapclient as a program would use it: the Sent folder by SPECIAL-USE (and, as older
    clients do, by XLIST), LIST-STATUS, STATUS SIZE, the quota."""
    # Names no client guesses: found by their attributes or not at all.
    folders = (
        MailboxSetting("Gesendet", ("\\Sent",), "subscribe"),
        MailboxSetting("Unerwünscht", ("\\Junk",), "create"),
    )
    server = server_factory(our_config(folders, as_mail_user=False), listeners=("imap",))
    passdb_quota("*:storage=10M")(server.store())
    box = server.store().mailbox("INBOX")
    for message in MESSAGES:
        box.append(message)
    server.start()
    client = imapclient.IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False)
    try:
        client.login("alice@example.test", PASSWORD)
        caps = client.capabilities()
        for cap in (b"LIST-EXTENDED", b"LIST-STATUS", b"SPECIAL-USE", b"XLIST", b"STATUS=SIZE"):
            assert cap in caps
        assert b"QUOTA=RES-STORAGE" in caps and b"APPENDLIMIT=52428800" in caps
        assert client.find_special_folder(SENT) == "Gesendet"
        assert client.find_special_folder(JUNK) == "Unerwünscht"
        listed = {name: flags for flags, _, name in client.list_folders()}
        assert listed["Gesendet"] == (b"\\HasNoChildren", b"\\Sent")
        xlist = {name: flags for flags, _, name in client.xlist_folders()}
        assert b"\\Inbox" in xlist["INBOX"] and b"\\Spam" in xlist["Unerwünscht"]
        status = client.folder_status("INBOX", [b"MESSAGES", b"SIZE", b"UNSEEN", b"APPENDLIMIT"])
        size = sum(map(len, MESSAGES))
        assert status == {b"MESSAGES": 2, b"SIZE": size, b"UNSEEN": 2, b"APPENDLIMIT": 52428800}
        roots, quotas = client.get_quota_root("INBOX")
        assert roots.quota_roots == ["User quota"]
        (quota,) = quotas
        assert (quota.quota_root, quota.resource, quota.limit) == ("User quota", "STORAGE", 10240)
        assert client.get_quota() == quotas
    finally:
        client.logout()
    assert server.store().subscriptions() == ["Gesendet"]
