"""The SEARCH family asked of Dovecot 2.3 and of us on one Maildir (tests/interop/side_by_side.py):
ESEARCH, SEARCHRES, WITHIN, SAVEDATE, charsets and the i;unicode-casemap comparator. The
untagged answers must be the same, and the tagged status.

Two differences are allowed, by design, and normalised before comparing: the tag inside an
ESEARCH answer (each connection numbers its own commands, and ours logged in first), and the
day of a SAVEDATE, space-padded by us as in our INTERNALDATE, zero-padded by Dovecot
(RFC 3501 `date-day-fixed` allows both). Dovecot answers an unknown charset with a bare
`[BADCHARSET]`, we list the charsets we know: the NO is tagged, so only its status is compared.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from mailstore.store import MailStore
from tests.interop.dovecot import traversable_tempdir
from tests.interop.side_by_side import SideBySide
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop]

DAY = 24 * 3600
_TAG = re.compile(rb'\(TAG "[^"]*"\)')
_PADDED_DAY = re.compile(rb'SAVEDATE " ([0-9])-')


def _normal(lines: list[bytes]) -> list[bytes]:
    return [_PADDED_DAY.sub(rb'SAVEDATE "0\1-', _TAG.sub(b'(TAG "*")', line)) for line in lines]


def same(both: SideBySide, command: str | bytes) -> list[bytes]:
    """Both servers' answers to one command, alike once normalised (see the docstring)."""
    if isinstance(command, bytes):  # 8-bit literals: sent as they are
        ours, dovecot = _raw(both, command)
    else:
        ours, dovecot = both.both(command)
    ours, dovecot = _normal(ours), _normal(dovecot)
    assert ours == dovecot, f"{command!r}:\n ours:    {ours}\n dovecot: {dovecot}"
    return ours


def _raw(both: SideBySide, command: bytes) -> tuple[list[bytes], list[bytes]]:
    answers = []
    for side in (both.ours, both.dovecot):
        tag = side.next_tag()
        side.send_raw(tag.encode() + b" " + command + b"\r\n")
        lines = side._read_until_tagged(tag, command.decode("latin-1"))
        lines = [line for line in lines if not line.startswith(b"+ ")]  # a literal's go-ahead
        untagged = [line.rstrip(b"\r\n") for line in lines[:-1]]
        answers.append([*untagged, lines[-1].split(b" ", 2)[1]])
    return answers[0], answers[1]


def message(n: int, sender: str = "Jones <jones@example.test>", body: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: alice@example.test\r\nSubject: message {n}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body or f'body {n}'}\r\n"
    ).encode()


def _rfc4731_box(store: MailStore) -> None:
    """As tests/unit/imap/test_ext_search.py: FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith" is
    2, 10 and 11; 1-3 seen; 6-20 deleted; and one message from five days ago."""
    box = store.mailbox("INBOX")
    for n in range(1, 21):
        flags = []
        if n <= 3:
            flags.append("\\Seen")
        if n in (2, 5, 10, 11, 15):
            flags.append("\\Flagged")
        if n >= 6:
            flags.append("\\Deleted")
        sender = "Smith <smith@example.test>" if n == 5 else "Jones <jones@example.test>"
        date = 631195200.0 if n == 15 else 1136116800.0 + n * DAY  # 1990, and January 2006
        box.append(message(n, sender), flags, date)
    box.append(message(21), [], time.time() - 5 * DAY)


ESEARCH = [
    'SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    'SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    "SEARCH RETURN (MIN) UNSEEN",
    "SEARCH RETURN (COUNT) DELETED",
    "UID SEARCH RETURN (MIN MAX) 1:5000",
    "SEARCH RETURN (MIN MAX ALL COUNT) SEEN",
    "SEARCH RETURN (MAX MIN MAX) DELETED",
    # (not KEYWORD nothing: Dovecot makes the keyword it is asked about, and says so)
    "SEARCH RETURN (MIN MAX ALL) SUBJECT nothing",
    "UID SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing",
    "UID SEARCH RETURN (ALL) NOT DELETED",
    "SEARCH RETURN (ALL) OR FROM smith SUBJECT 1",
    "search return (count) charset utf-8 subject message",
    "SEARCH RETURN (FOO) ALL",
    "SEARCH RETURN ALL",
    "SEARCH RETURN (SAVE) SEEN",
    # A search key is a criterion, not an address: past the last message, nothing matches.
    "SEARCH 30",
    "SEARCH 19:30",
    "SEARCH NOT 30",
    "SEARCH 1,30",
    "UID SEARCH 3:5000",
    "SEARCH 0",
    # WITHIN (RFC 5032): only message 21 is from this week
    "SEARCH YOUNGER 259200",
    "SEARCH RETURN (COUNT) OLDER 259200",
    "SEARCH UNSEEN YOUNGER 864000",
    "SEARCH OLDER 0",
    "SEARCH YOUNGER 4294967296",
    "SEARCH YOUNGER x",
]


def test_esearch_and_within_are_dovecots(require_dovecot: None) -> None:
    with SideBySide([], setup=_rfc4731_box) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for command in ESEARCH:
            same(both, command)
        # `30:*` of 21 messages is `21:30` (RFC 3501 9: `*` is the last message), message 21;
        # Dovecot reads `*` there as 2^32 - 1 and finds nothing.
        ours, dovecot = both.both("SEARCH 30:*")
        assert (ours, dovecot) == ([b"* SEARCH 21", b"OK"], [b"* SEARCH", b"OK"])


SEARCHRES = [
    # RFC 5182 examples 1, 3, 4 and 10, and $ when nothing is saved yet
    "FETCH $ UID",
    "SEARCH $",
    'SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
    "FETCH $ (UID)",  # (not FLAGS: Dovecot lists \\Flagged before \\Deleted, we the reverse)
    'SEARCH RETURN (SAVE) SINCE 1-Jan-2004 NOT FROM "Smith"',
    "UID SEARCH UID $ SMALLER 150",
    "UID SEARCH $ SMALLER 150",
    "SEARCH CHARSET UTF-8 (OR $ 1,15:21) SUBJECT 1",
    'SEARCH RETURN (ALL SAVE) SINCE 12-Feb-2005 NOT FROM "Smith" DELETED',
    "SEARCH RETURN (ALL) $",
    'SEARCH RETURN (SAVE MIN) SINCE 12-Feb-2005 NOT FROM "Smith" DELETED',
    "FETCH $ UID",
    'SEARCH RETURN (MAX SAVE MIN) SINCE 12-Feb-2005 NOT FROM "Smith" DELETED',
    "UID FETCH $ UID",
    'SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2005 NOT FROM "Smith" DELETED',
    "SEARCH RETURN (ALL) $",
    'UID SEARCH RETURN (SAVE MAX) SINCE 12-Feb-2005 NOT FROM "Smith" DELETED',
    "SEARCH $",
    # a failed SAVE search: BAD keeps $, NO empties it; NO without SAVE keeps it
    "SEARCH RETURN (SAVE) NONSENSE",
    "SEARCH $",
    "SEARCH CHARSET X-UNKNOWN SUBJECT x",
    "SEARCH $",
    "SEARCH RETURN (SAVE) CHARSET X-UNKNOWN SUBJECT x",
    "SEARCH $",
    "FETCH $ UID",
    "UID SEARCH RETURN (SAVE) UID 4:6",
    "FETCH $ UID",
    "FETCH $,1 UID",
    "SEARCH $,1",
]


def test_searchres_is_dovecots(require_dovecot: None) -> None:
    with SideBySide([], setup=_rfc4731_box) as both:
        both.ours.ok("EXAMINE INBOX")
        both.dovecot.ok("EXAMINE INBOX")
        for command in SEARCHRES:
            same(both, command)


SAVEDATE = [
    "FETCH 1:* (SAVEDATE)",
    "UID FETCH 2 (UID SAVEDATE)",
    "SEARCH SAVEDATESUPPORTED",
    "SEARCH SAVEDSINCE 1-Jan-2000",
    "SEARCH SAVEDBEFORE 1-Jan-2000",
    "SEARCH SAVEDON 1-Jan-2000",
    "SEARCH RETURN (COUNT) OR SAVEDBEFORE 1-Jan-2000 SEEN",
]


def test_savedate_is_dovecots(require_dovecot: None) -> None:
    """The save date of a file Dovecot has no index for is its ctime: the same for both."""
    with SideBySide([message(1), message(2), message(3)]) as both:
        both.ours.ok("SELECT INBOX")  # moves the messages to cur/: their ctimes change
        both.dovecot.ok("SELECT INBOX")
        for command in SAVEDATE:
            same(both, command)


CHARSET_BODIES = [
    "Grüße aus Köln, café au lait",
    "Привет, мир: съешь же ещё этих мягких булок",
    "こんにちは世界 日本語のテキスト",
    "你好，世界 中文的文字",
    "Ελληνικά: καλημέρα κόσμε",
]
CHARSET_SEARCHES = [
    ("ISO-8859-1", "KÖLN"),
    ("iso-8859-15", "café"),
    ("WINDOWS-1252", "grüße"),
    ("KOI8-R", "МИР"),
    ("KOI8-U", "булок"),
    ("WINDOWS-1251", "Ещё"),
    ("ISO-8859-5", "привет"),
    ("SHIFT_JIS", "日本語"),
    ("EUC-JP", "こんにちは"),
    ("ISO-2022-JP", "テキスト"),
    ("GB2312", "中文"),
    ("GBK", "你好"),
    ("GB18030", "世界"),
    ("BIG5", "世界"),
    ("ISO-8859-7", "ΚΑΛΗΜΈΡΑ"),
    ("UTF-16BE", "καλημέρα"),
    ("UTF-7", "Grüße"),
    ("latin1", "au lait"),
    ("cp1252", "Köln"),
]


def test_charsets_are_dovecots(require_dovecot: None) -> None:
    with SideBySide([message(n, body=b) for n, b in enumerate(CHARSET_BODIES, 1)]) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for charset, text in CHARSET_SEARCHES:
            raw = text.encode(charset)
            command = b"SEARCH CHARSET %s BODY {%d+}\r\n%s" % (charset.encode(), len(raw), raw)
            answer = same(both, command)
            assert answer[-1] == b"OK" and answer[0] != b"* SEARCH", (charset, answer)
        # A string with a NUL octet (UTF-16 and UTF-32 of ASCII letters) stops at the NUL in
        # Dovecot, which then calls the rest "Invalid search key": we search the whole.
        raw = "Köln".encode("utf-16")
        ours, dovecot = _raw(both, b"SEARCH CHARSET UTF-16 BODY {%d+}\r\n%s" % (len(raw), raw))
        assert (ours, dovecot) == ([b"* SEARCH 1", b"OK"], [b"BAD"])
        for command in [
            b"SEARCH CHARSET US-ASCII BODY {5+}\r\nK\xc3\xb6ln",  # read as UTF-8, as Dovecot
            b"SEARCH CHARSET UTF-8 BODY {2+}\r\n\xff\xfe",  # BAD: invalid
            b"SEARCH CHARSET SHIFT_JIS BODY {1+}\r\n\x82",
            b"SEARCH CHARSET X-UNKNOWN BODY x",  # NO [BADCHARSET...]
            b"SEARCH CHARSET base64 BODY x",
            b"SEARCH CHARSET rot13 BODY x",
            b"SEARCH CHARSET idna BODY x",
            b"SEARCH CHARSET unicode_escape BODY x",
            b"SEARCH CHARSET X-UNKNOWN ALL",
        ]:
            same(both, command)


# Where the i;unicode-casemap comparator as Dovecot applies it differs from case-insensitive
# matching after canonical decomposition (what we did before), and where it does not.
CASEMAP_BODIES = [
    "Köln Ko\u0308ln straße STRASSE ıi ſeed 5 µg ϐ x² ｆｕｌｌ Ⅻ",
    "ﬁne ǖ é \u212b ǅ Σίσυφος 한국어",
    "plain ascii Koln STRASSE fine u e",
]
CASEMAP_KEYS = [
    "KÖLN",
    "köln",
    "Koln",
    "STRASSE",
    "straße",
    "STRAẞE",
    "II",
    "seed",
    "5 μg",
    "β",
    "x2",
    "FULL",
    "xii",
    "fine",
    "ﬁ",
    "ü",
    "u",
    "Ǖ",
    "e",
    "É",
    "\u00c5",
    "A",
    "dž",
    "ǅ",
    "ΣΊΣΥΦΟΣ",
    "σίσυφος",
    "한국",
    "\u1112\u1161",
]


def test_unicode_casemap_is_dovecots(require_dovecot: None) -> None:
    with SideBySide([message(n, body=b) for n, b in enumerate(CASEMAP_BODIES, 1)]) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for key in CASEMAP_KEYS:
            raw = key.encode()
            same(both, b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s" % (len(raw), raw))
            same(both, b"SEARCH CHARSET UTF-8 TEXT {%d+}\r\n%s" % (len(raw), raw))


def test_rfc5255_strings_are_dovecots(require_dovecot: None) -> None:
    """RFC 5255 4.6's four strings as bodies: two hold octets that are not UTF-8, one is
    KOI8-R; their valid text is found alike."""
    bodies = [
        (b"\xd0\xc0\xd0\xbd\xd0\xb4\xd1\x80\xd0\xb5\xd0\xb9", b"utf-8"),
        (b"\xd1\x81\xd0\x95\xd0\xa0\xd0\x93\xd0\x95\xd0\x99", b"utf-8"),
        (b"\xd0\x92\xd0\xb0\xd1\x81\xd0\xb8\xd0\xbb\xd0\xb8\xff\xb9", b"utf-8"),
        (b"\xe1\xcc\xc5\xcb\xd3\xc5\xca", b"koi8-r"),
    ]
    head = b"Subject: s\r\nContent-Type: text/plain; charset=%s\r\n\r\n"
    messages = [head % c + b + b"\r\n" for b, c in bodies]
    with SideBySide(messages) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        for word in ["сергей", "ВАСИЛИ", "Алексей", "НДРЕЙ", "\ufffd", "Васили\ufffd"]:
            raw = word.encode()
            same(both, b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s" % (len(raw), raw))


def test_imapclient_searches_in_its_charsets() -> None:
    """A real client (imapclient) against `mra serve`: it encodes its search strings in the
    charset it names, and reads SAVEDATE and the capabilities."""
    from imapclient import IMAPClient

    base = traversable_tempdir("mra-imapclient-")
    server = MraServer(base, "", listeners=("imap",))
    try:
        box = server.store().mailbox("INBOX")
        for n, body in enumerate(CHARSET_BODIES, 1):
            box.append(message(n, body=body), [], time.time() - n * DAY)
        server.start()
        c = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=30)
        c.login("alice@example.test", PASSWORD)
        for cap in (b"ESEARCH", b"SEARCHRES", b"WITHIN", b"SAVEDATE", b"I18NLEVEL=1"):
            assert c.has_capability(cap.decode())
        c.select_folder("INBOX")
        assert c.search(["BODY", "köln"], charset="ISO-8859-1") == [1]
        assert c.search(["BODY", "МИР"], charset="KOI8-R") == [2]
        assert c.search(["BODY", "日本語"], charset="SHIFT_JIS") == [3]
        assert c.search(["YOUNGER", 2 * DAY + 3600]) == [1, 2]
        assert c.search(["OLDER", 3 * DAY + 3600]) == [4, 5]
        assert set(c.search(["SAVEDATESUPPORTED"])) == {1, 2, 3, 4, 5}
        saved = c.fetch([1], ["SAVEDATE"])[1][b"SAVEDATE"]
        assert re.fullmatch(rb"[ 0-9][0-9]-[A-Z][a-z]{2}-[0-9]{4} [0-9:]{8} [+-][0-9]{4}", saved)
        c.logout()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
