# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""UTF8=ACCEPT (RFC 6855), and the UTF-8 mailbox names IMAP4rev2 shares with it (RFC 9051 5.1,
Appendix E 16), as transcripts of a session without sockets.

After `ENABLE UTF8=ACCEPT` (or `ENABLE IMAP4rev2`) mailbox names are UTF-8 both ways: taken as
sent (quoted or literal), written quoted when they can be; `&` is a character like another.
A session that did not ask is never sent an 8-bit name, nor 8-bit octets in a quoted string:
the attack tests below hold that line. Messages with UTF-8 headers (RFC 6532) are answered the
same to both kinds of session, 8-bit strings as literals, as Dovecot does."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mra.imap import response as r
from mra.imap.arguments import as_mailbox
from tests.interop.dovecot import encode_mutf7, imap_quote
from tests.unit.imap.test_response import _read_back
from tests.unit.imap.test_session_transcripts import Client

# RFC 6532 3: UTF-8 in header field values, addresses included.
I18N_MESSAGE = (
    "From: Jörg Müller <jörg@müller.example>\r\n"
    "To: alice@example.test\r\n"
    "Subject: Grüße aus Zürich\r\n"
    "Message-ID: <grüße@example.test>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: text/plain; charset="utf-8"; name="Grüße.txt"\r\n'
    "\r\n"
    "Grüße!\r\n"
).encode()


ASTRING_ATOM = r'[^\x00-\x20\x7f-\U0010ffff(){%*"\\]+'  # RFC 3501 ASTRING-CHAR


def utf8(c: Client, capability: str = "UTF8=ACCEPT") -> Client:
    c.login()
    c.expect(f"e ENABLE {capability}\r\n", f"* ENABLED {capability}", "e OK ENABLE completed")
    return c


def quoted_strings(data: bytes) -> list[bytes]:
    """Every quoted string of IMAP response bytes, the contents of literals skipped."""
    found, i = [], 0
    while i < len(data):
        m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(data, i)
        if m:
            i = m.end() + int(m.group(1))
        elif data[i : i + 1] == b'"':
            m = re.compile(rb'"((?:[^"\\]|\\.)*)"', re.S).match(data, i)
            assert m, data[i : i + 40]
            found.append(m.group(1))
            i = m.end()
        else:
            i += 1
    return found


def raw(c: Client, line: bytes) -> bytes:
    """What the session answers, as bytes."""
    from mra.session import Send, run_blocking

    return b"".join(
        o.data for o in run_blocking(c.session.data_received(line)) if isinstance(o, Send)
    )


def test_names_both_ways_in_utf8(c: Client) -> None:
    """RFC 6855 3: names in UTF-8 in every command that takes or gives one; on disk in
    Dovecot's layout (modified UTF-7 directory names), so a legacy session sees the same
    folder in modified UTF-7."""
    utf8(c)
    c.expect('a CREATE "Entwürfe"\r\n', "a OK CREATE completed")
    assert os.path.isdir(os.path.join(c.store.root, ".Entw&APw-rfe"))
    c.expect("b CREATE {13+}\r\nEntwürfe.€\r\n", "b OK CREATE completed")  # a literal too
    c.expect(
        'c LIST "" "Entw*"\r\n',
        '* LIST (\\HasChildren) "." "Entwürfe"',
        '* LIST (\\HasNoChildren) "." "Entwürfe.€"',
        "c OK LIST completed",
    )
    c.expect('d SUBSCRIBE "Entwürfe.€"\r\n', "d OK SUBSCRIBE completed")
    c.expect('e LSUB "" "*€"\r\n', '* LSUB () "." "Entwürfe.€"', "e OK LSUB completed")
    c.expect(
        'f LIST (SUBSCRIBED) "" "Entwürfe.%" RETURN (STATUS (MESSAGES))\r\n',
        '* LIST (\\Subscribed) "." "Entwürfe.€"',
        '* STATUS "Entwürfe.€" (MESSAGES 0)',
        "f OK LIST completed",
    )
    c.expect('g RENAME "Entwürfe.€" "Entwürfe.£"\r\n', "g OK RENAME completed")
    c.expect(
        'h STATUS "Entwürfe.£" (MESSAGES UIDNEXT)\r\n',
        '* STATUS "Entwürfe.£" (MESSAGES 0 UIDNEXT 1)',
        "h OK STATUS completed",
    )
    c.expect(
        'i GETQUOTAROOT "Entwürfe"\r\n', '* QUOTAROOT "Entwürfe"', "i OK GETQUOTAROOT completed"
    )
    c.expect(
        'j XLIST "" "Entwürfe"\r\n',
        '* XLIST (\\HasChildren) "." "Entwürfe"',
        "j OK XLIST completed",
    )
    c.expect(
        'k APPEND "Entwürfe" {11+}\r\nSubject: x\r\n\r\n', "k OK [APPENDUID {n} 1] APPEND completed"
    )
    c.send('l SELECT "Entwürfe"\r\n')
    c.expect('m COPY 1 "Entwürfe.£"\r\n', "m OK [COPYUID {n} 1 1] COPY completed")
    c.expect(
        'n MOVE 1 "Entwürfe.£"\r\n',
        "* OK [COPYUID {n} 1 2] Moved",
        "* 1 EXPUNGE",
        "n OK MOVE completed",
    )
    c.expect('o DELETE "Entwürfe.£"\r\n', "o OK DELETE completed")
    c.expect('p UNSUBSCRIBE "Entwürfe.€"\r\n', "p OK UNSUBSCRIBE completed")
    c.expect("q LOGOUT\r\n", "{any}", "{any}")
    legacy = Client(Path(c.store.root).parent.parent.parent)
    legacy.login()
    legacy.expect(
        'r LIST "" "Entw*"\r\n', '* LIST (\\HasNoChildren) "." Entw&APw-rfe', "r OK LIST completed"
    )


def test_names_are_literal_ampersand_and_inbox(c: Client) -> None:
    """In UTF-8 `&` is only a character (RFC 9051 A.1 is IMAP4rev1's convention): `A&B` is a
    folder named so, `Entw&APw-rfe` another than `Entwürfe`; INBOX in any ASCII case is INBOX."""
    c.store.create_folder("Entwürfe")
    utf8(c)
    c.expect('a CREATE "A&B"\r\n', "a OK CREATE completed")
    assert os.path.isdir(os.path.join(c.store.root, ".A&-B"))
    c.expect(
        'b LIST "" "A*"\r\n',
        '* LIST (\\HasNoChildren) "." A&B',
        '* LIST (\\HasNoChildren \\Archive) "." Archive',
        "b OK LIST completed",
    )
    c.expect("c STATUS Entw&APw-rfe (MESSAGES)\r\n", "c NO [NONEXISTENT] {any}")
    c.expect(
        "d STATUS iNbOx (MESSAGES)\r\n", "* STATUS INBOX (MESSAGES 2)", "d OK STATUS completed"
    )


def test_imap4rev2_names_are_utf8_too(c: Client) -> None:
    """RFC 9051 5.1 and Appendix E 16: IMAP4rev2 alone gives UTF-8 names, and SELECT's LIST
    line names the mailbox so; CHARSET stays allowed (RFC 9051 6.4.4), unlike UTF8=ACCEPT."""
    c.store.create_folder("Entwürfe")
    utf8(c, "IMAP4rev2")
    c.expect(
        'a LIST "" "Entw*"\r\n', '* LIST (\\HasNoChildren) "." "Entwürfe"', "a OK LIST completed"
    )
    lines = c.send('b SELECT "Entwürfe"\r\n')
    assert (
        '* LIST (\\HasNoChildren) "." "Entwürfe"' in lines
        and lines[-1] == "b OK [READ-WRITE] Select completed"
    )
    c.expect("c SEARCH CHARSET UTF-8 ALL\r\n", '* ESEARCH (TAG "c")', "c OK SEARCH completed")


def test_search_strings_in_utf8_and_no_charset(c: Client) -> None:
    """RFC 6855 3: quoted strings may hold UTF-8, SEARCH's strings included; CHARSET is then
    BAD ("due to the conflicting charset labels"); the message's own UTF-8 header is found."""
    c.store.mailbox("INBOX").append(I18N_MESSAGE)
    utf8(c).send("s SELECT INBOX\r\n")
    c.expect('a SEARCH SUBJECT "grüsse"\r\n', "* SEARCH", "a OK SEARCH completed")
    c.expect('b SEARCH SUBJECT "grüße" FROM "müller"\r\n', "* SEARCH 3", "b OK SEARCH completed")
    c.expect(
        'c SEARCH CHARSET UTF-8 SUBJECT "Grüße"\r\n',
        "c BAD SEARCH: CHARSET is not allowed after ENABLE UTF8=ACCEPT",
    )
    c.expect(
        "d SEARCH RETURN (COUNT) CHARSET US-ASCII ALL\r\n",
        "d BAD SEARCH: CHARSET is not allowed after ENABLE UTF8=ACCEPT",
    )


def test_append_utf8_data_rfc6855_4(c: Client) -> None:
    """RFC 6855 4: `APPEND mailbox UTF8 (~{n})`, also as a CATENATE part, stores the message as
    sent; UTF8 needs a literal8; a session that did not enable UTF-8 does not know UTF8."""
    n = len(I18N_MESSAGE)
    c.login()
    c.expect(
        f"a APPEND INBOX UTF8 (~{{{n}+}}\r\n".encode() + I18N_MESSAGE + b")\r\n",
        "a BAD APPEND: APPEND takes for each message flags, a date, and a literal or CATENATE (...)",
    )
    c.expect("u UNAUTHENTICATE\r\n", "u OK UNAUTHENTICATE completed")
    utf8(c)
    c.expect(
        f"b APPEND INBOX (\\Seen) UTF8 (~{{{n}+}}\r\n".encode() + I18N_MESSAGE + b")\r\n",
        "b OK [APPENDUID {n} 3] APPEND completed",
    )
    c.expect(
        f"c APPEND INBOX UTF8 ({{{n}+}}\r\n".encode() + I18N_MESSAGE + b")\r\n",
        "c BAD APPEND: UTF8 takes a literal8: UTF8 (~{n})",
    )
    c.expect(
        b"d APPEND INBOX CATENATE (TEXT {19+}\r\nX-Note: catenated\r\n UTF8 (~{%d+}\r\n" % n
        + I18N_MESSAGE
        + b"))\r\n",
        "d OK [APPENDUID {n} 4] APPEND completed",
    )
    box = c.store.mailbox("INBOX")
    box.sync()
    assert box.read_message(3) == I18N_MESSAGE
    assert box.read_message(4) == b"X-Note: catenated\r\n" + I18N_MESSAGE


def test_utf8_headers_answered_alike_to_both_sessions(tmp_path: Path) -> None:
    """RFC 6855 3 and 7: a message with UTF-8 headers (RFC 6532). Its ENVELOPE and
    BODYSTRUCTURE strings with 8-bit octets go as literals, to a legacy session as to a UTF-8
    one, byte for byte what Dovecot sends (tests/interop/test_imap_dovecot_utf8.py); never as
    a quoted string to the legacy session."""
    answers = []
    for capability in ("", "UTF8=ACCEPT", "IMAP4rev2"):
        home = tmp_path / (capability or "legacy")
        home.mkdir()
        c = Client(home)
        c.store.mailbox("INBOX").append(I18N_MESSAGE)
        utf8(c, capability) if capability else c.login()
        c.send("s EXAMINE INBOX\r\n")
        answers.append(
            raw(c, b"f FETCH 3 (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        )
    assert answers[0] == answers[1] == answers[2]
    legacy = answers[0]
    assert b'"Gr\xc3\xbc\xc3\x9fe aus Z\xc3\xbcrich"' not in legacy
    assert b"{19}\r\nGr\xc3\xbc\xc3\x9fe aus Z\xc3\xbcrich" in legacy
    assert (
        b'(("J\xc3\xb6rg M\xc3\xbcller"' not in legacy
        and b"{13}\r\nJ\xc3\xb6rg M\xc3\xbcller" in legacy
    )
    assert all(s.isascii() for s in quoted_strings(legacy)), quoted_strings(legacy)


def test_attack_utf8_names_never_reach_a_legacy_session(tmp_path: Path) -> None:
    """Folders named in UTF-8 by a UTF-8 session (or anyone) are listed to a session that did
    not enable UTF-8 in modified UTF-7 only, in every answer that names a mailbox: nothing
    8-bit, nothing outside quoted strings and literals that it could misread."""
    c = utf8(Client(tmp_path))
    names = ["Entwürfe", "日本語.台北", "Ǆ & ǅ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
    for name in names:
        c.expect(f'c CREATE "{name}"\r\n', "c OK CREATE completed")
        c.expect(f'c SUBSCRIBE "{name}"\r\n', "c OK SUBSCRIBE completed")
    legacy = Client(tmp_path)
    legacy.login()
    out = b"".join(
        raw(legacy, line)
        for line in (
            b'a LIST "" "*"\r\n',
            b'b LSUB "" "*"\r\n',
            b'c XLIST "" "*"\r\n',
            b'd LIST (SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES) CHILDREN)\r\n',
            b"e STATUS Entw&APw-rfe (MESSAGES)\r\n",
            b"f GETQUOTAROOT Entw&APw-rfe\r\n",
        )
    )
    assert out.isascii(), out
    for name in names:  # tests/interop's own modified UTF-7 encoder, the store's aside
        encoded = encode_mutf7(name)
        written = encoded if re.fullmatch(ASTRING_ATOM, encoded) else imap_quote(encoded)
        assert b' "." ' + written.encode() + b"\r\n" in out, name


def test_attack_invalid_utf8_mailbox_name_is_bad(c: Client) -> None:
    """RFC 6855 3: octets with the high bit set that are not UTF-8 "MUST" be rejected with BAD
    (overlong forms, surrogates, a cut sequence, Latin-1): nothing reaches the store."""
    utf8(c)
    for i, octets in enumerate((b"\xc0\xaf", b"\xed\xa0\x80", b"Gr\xc3", b"Gr\xfc\xdfe")):
        c.expect(
            b'%d CREATE "' % i + octets + b'"\r\n',
            f"{i} BAD CREATE: mailbox name is not valid UTF-8",
        )
        c.expect(
            b"%d SELECT {%d+}\r\n" % (i, len(octets)) + octets + b"\r\n",
            f"{i} BAD SELECT: mailbox name is not valid UTF-8",
        )
    assert sorted(os.listdir(c.store.root)) == sorted(
        [
            ".Archive",
            ".Drafts",
            ".Junk",
            ".Sent",
            ".Trash",
            "cur",
            "new",
            "tmp",
            "dovecot-uidlist",
            "dovecot-uidvalidity",
            "subscriptions",
        ]
        + [n for n in os.listdir(c.store.root) if n.startswith("dovecot-uidvalidity.")]
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Caf\u0065\u0301", "is not in Unicode normalization form C"),  # e + combining acute
        ("Line\u2028Two", "holds a control character or a line or paragraph separator"),
        ("Para\u2029", "holds a control character or a line or paragraph separator"),
        ("C1\u0085x", "holds a control character or a line or paragraph separator"),
    ],
)
def test_attack_names_that_are_not_net_unicode_are_not_created(
    c: Client, name: str, problem: str
) -> None:
    """RFC 9051 5.1: a server "MUST prohibit the creation of 8-bit mailbox names that do not
    comply with Net-Unicode" (NFC); RFC 6855 3: no C1 controls, no line or paragraph separator.
    CREATE and RENAME refuse them; such a folder made another way (through modified UTF-7 by a
    legacy client, which is answered as before) stays reachable under its own name."""
    utf8(c)
    c.expect(f'a CREATE "{name}"\r\n', f"a NO [CANNOT] The mailbox name {problem}")
    c.expect(f'b RENAME Archive "{name}"\r\n', f"b NO [CANNOT] The mailbox name {problem}")
    c.store.create_folder(name)
    c.expect(
        f'c STATUS "{name}" (MESSAGES)\r\n',
        f'* STATUS "{name}" (MESSAGES 0)',
        "c OK STATUS completed",
    )
    c.expect(f'd DELETE "{name}"\r\n', "d OK DELETE completed")


def test_attack_dotless_i_inbox_is_not_inbox(tmp_path: Path) -> None:
    """`str.upper()` makes INBOX of "ınbox" (U+0131, dotless i), a name any client may
    create (in modified UTF-7 `&ATE-nbox`): it was listed as `INBOX`, a second INBOX the
    client could never open. Only ASCII spellings are INBOX, both ways, in either session."""
    c = Client(tmp_path)
    c.login()
    c.expect("a CREATE &ATE-nbox\r\n", "a OK CREATE completed")
    assert _inboxes(c.send('b LIST "" "*"\r\n')) == ['"." INBOX', '"." &ATE-nbox']
    c.expect(
        "c STATUS &ATE-nbox (MESSAGES)\r\n",
        "* STATUS &ATE-nbox (MESSAGES 0)",
        "c OK STATUS completed",
    )
    (tmp_path / "u").mkdir()
    u = utf8(Client(tmp_path / "u"))
    u.expect('a CREATE "ınbox"\r\n', "a OK CREATE completed")
    assert _inboxes(u.send('b LIST "" "*"\r\n')) == ['"." INBOX', '"." "ınbox"']
    u.expect(
        'c STATUS "ınbox" (MESSAGES)\r\n', '* STATUS "ınbox" (MESSAGES 0)', "c OK STATUS completed"
    )


def _inboxes(lines: list[str]) -> list[str]:
    return [
        line.split(") ", 1)[1]
        for line in lines
        if line.lower().endswith("nbox") or line.endswith('nbox"')
    ]


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_mailbox_name_reads_back_in_either_form(name: str) -> None:
    """What `response.mailbox` writes, `as_mailbox` reads back, in the session's form; the
    legacy form is 7-bit, the UTF-8 form quoted whenever a quoted string can hold it."""
    expected = "INBOX" if name.isascii() and name.upper() == "INBOX" else name
    legacy = r.mailbox(name)
    assert legacy.isascii() and as_mailbox(_read_back(legacy)) == expected
    written = r.mailbox(name, utf8=True)
    assert as_mailbox(_read_back(written), utf8=True) == expected
    if not re.search("[\0\r\n]", name) and expected != "INBOX" and len(name.encode()) <= 1024:
        assert not written.startswith(b"{")
    if re.fullmatch(ASTRING_ATOM, name) and expected != "INBOX" and name.upper() != "NIL":
        assert written == name.encode()  # `&` is a character: no `&-` as in modified UTF-7


def test_quoted_utf8_names_escape_and_long_ones_are_literals() -> None:
    assert r.mailbox('Zoë "the" \\ one', utf8=True) == '"Zoë \\"the\\" \\\\ one"'.encode()
    long = "ü" * 600
    assert r.mailbox(long, utf8=True) == b"{1200}\r\n" + long.encode()
    assert r.mailbox("A&B", utf8=True) == b"A&B" and r.mailbox("A&B") == b"A&-B"
