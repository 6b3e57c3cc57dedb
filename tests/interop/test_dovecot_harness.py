"""Tests of the Dovecot harness itself, and a record of what Dovecot 2.3 writes on disk.

The on-disk assertions below are observations of the real Dovecot (2.3.19.1, Debian),
made through ``tests/interop/dovecot.py`` with ``INDEX=MEMORY``; the Python store has to
produce and accept the same files.  Run ``pytest -s tests/interop/test_dovecot_harness.py``
to see the files themselves: every test prints what it found.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from tests.interop import conftest
from tests.interop.dovecot import (
    DovecotCommandError,
    DovecotError,
    DovecotFactory,
    DovecotImap,
    DovecotTimeout,
    decode_mutf7,
    deliver_foreign,
    encode_mutf7,
    mail_owner,
    parse_imap,
)

pytestmark = pytest.mark.interop

# Three messages: LF-only line ends, CRLF line ends, and a raw 8-bit UTF-8 header.
MSG_LF = (
    b"From: Alice <alice@example.org>\n"
    b"To: Bob <bob@example.org>\n"
    b"Subject: LF only\n"
    b"Message-ID: <lf@example.org>\n"
    b"\n"
    b"line one\n"
    b"line two\n"
)
MSG_CRLF = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: CRLF\r\n"
    b"Message-ID: <crlf@example.org>\r\n"
    b"\r\n"
    b"line one\r\n"
    b"line two\r\n"
)
MSG_8BIT = (
    "From: Jörg Müller <joerg@example.org>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: Grüße aus Köln\r\n"
    "Message-ID: <utf8@example.org>\r\n"
    "\r\n"
    "Schöne Grüße\r\n"
).encode()

# <secs>.M<usecs>P<pid>.<host>,S=<size>,W=<vsize>:2,<flags>
DOVECOT_NAME = re.compile(
    r"(?P<base>(?P<secs>\d+)\.M(?P<usecs>\d+)P(?P<pid>\d+)\.(?P<host>[^,:/]+)"
    r",S=(?P<size>\d+),W=(?P<vsize>\d+))(?::2,(?P<flags>[A-Za-z]*))?"
)
UIDLIST_HEADER = re.compile(r"3 V(?P<uidvalidity>\d+) N(?P<next>\d+) G(?P<guid>[0-9a-f]{32})")


def show(title: str, content: bytes | str | list[str]) -> None:
    """Print an observation (visible with ``pytest -s`` or ``-rP``)."""
    if isinstance(content, list):
        text = "\n".join(content)
    elif isinstance(content, bytes):
        text = repr(content)
    else:
        text = content
    print(f"--- {title} ---\n{text}")


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def populate(dovecot: DovecotFactory) -> dict[str, int]:
    """APPEND the three messages with flags/keywords; return subject -> UID."""
    with dovecot.imap() as imap:
        uids = {
            "lf": imap.append("INBOX", MSG_LF, flags="\\Seen"),
            "crlf": imap.append(
                "INBOX", MSG_CRLF, flags="$Forwarded $Label1", date="01-Jan-2024 12:00:00 +0100"
            ),
            "8bit": imap.append("INBOX", MSG_8BIT, flags="\\Seen \\Flagged $Label1"),
        }
        imap.logout()
    result = {k: v for k, v in uids.items() if v is not None}
    assert result == {"lf": 1, "crlf": 2, "8bit": 3}, uids
    return result


def parse_uidlist(path: Path) -> tuple[re.Match[str], list[str]]:
    lines = path.read_text().split("\n")
    assert lines[-1] == "", "dovecot-uidlist ends with a newline"
    header = UIDLIST_HEADER.fullmatch(lines[0])
    assert header, f"unexpected dovecot-uidlist header {lines[0]!r}"
    return header, lines[1:-1]


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def test_preauth_session_lists_inbox_and_logs(dovecot: DovecotFactory) -> None:
    imap = dovecot.imap()
    assert imap.greeting.startswith(b"* PREAUTH [CAPABILITY IMAP4rev1")
    assert imap.list_mailboxes() == ["INBOX"]
    lines = imap.command("NOOP")
    assert lines[-1].startswith(b"A0002 OK")
    imap.logout()
    assert imap.returncode == 0
    assert "Logged out" in imap.read_log()


def test_runs_as_mail_user(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    with dovecot.imap() as imap:
        imap.append("INBOX", b"Subject: x\r\n\r\nx\r\n")
        uid, gid = mail_owner()
        for path in [dovecot_maildir / "dovecot-uidlist", *(dovecot_maildir / "new").iterdir()]:
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (uid, gid), path


def test_refused_command_raises_with_response(dovecot: DovecotFactory) -> None:
    with dovecot.imap() as imap:
        lines = imap.command('SELECT "NoSuchFolder"')
        assert imap.tagged_status(lines) == "NO"
        with pytest.raises(DovecotCommandError) as info:
            imap.select("NoSuchFolder")
        assert b"NO" in info.value.lines[-1]
        with pytest.raises(DovecotCommandError):
            imap.append("NoSuchFolder", b"Subject: x\r\n\r\n")


def test_literals_in_responses(dovecot: DovecotFactory) -> None:
    # Body lines that end in "{3}" must not confuse the reader: only the literal
    # announced at the end of a response line counts, and its bytes are read by count.
    message = b"Subject: braces {3}\r\n\r\ntext {3}\r\nabc\r\n{0}\r\n"
    with dovecot.imap() as imap:
        uid = imap.append("INBOX", message)
        assert uid == 1
        imap.select("INBOX")
        assert imap.fetch_body(1) == message
        # Two literals in one response line.
        items = imap.fetch("1", "(UID BODY.PEEK[HEADER] BODY.PEEK[TEXT])")[1]
        assert items["BODY[HEADER]"] == b"Subject: braces {3}\r\n\r\n"
        assert items["BODY[TEXT]"] == b"text {3}\r\nabc\r\n{0}\r\n"
        raw = imap.command("UID FETCH 1 (BODY.PEEK[TEXT])")
        assert len(raw) == 2
        assert raw[0].endswith(b"{20}\r\ntext {3}\r\nabc\r\n{0}\r\n)\r\n")


def test_large_message_round_trip(dovecot: DovecotFactory) -> None:
    body = b"".join(b"%07d " % i + b"x" * 70 + b"\r\n" for i in range(20000))  # ~1.5 MB
    message = b"Subject: big\r\n\r\n" + body
    with dovecot.imap() as imap:
        assert imap.append("INBOX", message) == 1
        imap.select("INBOX")
        assert imap.fetch_body(1) == message
    with dovecot.pop3() as pop:
        assert pop.retr(1) == message


def test_startup_failure_reports_dovecot_log(dovecot: DovecotFactory) -> None:
    with pytest.raises(DovecotError, match="no_such_setting") as info:
        dovecot.imap(settings={"no_such_setting": "1"})
    assert "closed the connection" in str(info.value)


def test_timeout_kills_wedged_session(dovecot: DovecotFactory) -> None:
    imap = dovecot.imap(timeout=1.0)
    imap.select("INBOX")
    with pytest.raises(DovecotTimeout, match=r"timed out after 1\.0s"):
        imap.command("IDLE")  # never completes without DONE
    assert imap.returncode is not None  # killed


def test_modified_utf7() -> None:
    assert encode_mutf7("Entwürfe") == "Entw&APw-rfe"
    assert encode_mutf7("A&B") == "A&-B"
    assert encode_mutf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    for name in ("Entwürfe", "A&B", "~peter/mail/台北/日本語", "Ω", "plain"):
        assert decode_mutf7(encode_mutf7(name)) == name


def test_parse_imap() -> None:
    line = (
        b"* 1 FETCH (UID 7 FLAGS (\\Seen $Label1) BODY[HEADER.FIELDS (SUBJECT)] {4}\r\n"
        b'ab\r\n X NIL "q\\"x")\r\n'
    )
    assert parse_imap(line) == [
        b"*",
        b"1",
        b"FETCH",
        [
            b"UID",
            b"7",
            b"FLAGS",
            [b"\\Seen", b"$Label1"],
            b"BODY[HEADER.FIELDS (SUBJECT)]",
            b"ab\r\n",
            b"X",
            None,
            b'q"x',
        ],
    ]


def test_missing_dovecot_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dovecot-imapd dovecot-pop3d"):
        conftest._missing("Dovecot is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dovecot-imapd dovecot-pop3d"):
        conftest._missing("Dovecot is not installed")


# --------------------------------------------------------------------------------------
# What Dovecot 2.3 writes (INDEX=MEMORY: no index files, uidlist and names only)
# --------------------------------------------------------------------------------------


def test_append_file_names_uidlist_and_keywords(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    populate(dovecot)
    md = dovecot_maildir
    show("maildir root", names(md))
    show("cur/", names(md / "cur"))
    # Flagged appends go straight to cur/ with the :2, info; nothing in new/ or tmp/.
    assert names(md / "new") == []
    assert names(md / "tmp") == []
    assert names(md) == [
        "cur",
        "dovecot-keywords",
        "dovecot-uidlist",
        "dovecot-uidvalidity",
        f"dovecot-uidvalidity.{(md / 'dovecot-uidvalidity').read_text()}",
        "new",
        "tmp",
    ]

    files = {}
    for name in names(md / "cur"):
        m = DOVECOT_NAME.fullmatch(name)
        assert m, f"unexpected file name {name!r}"
        files[name] = m
    assert len(files) == 3
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    for name, m in files.items():
        data = (md / "cur" / name).read_bytes()
        assert m["host"] == host
        assert int(m["size"]) == len(data), "S= is the size of the stored file"
        assert int(m["vsize"]) == len(crlf(data)), "W= is the size with CRLF line ends"

    # dovecot-keywords: "<index> <keyword>\n", index 0 -> letter a, 1 -> b, ...
    keywords = (md / "dovecot-keywords").read_bytes()
    show("dovecot-keywords", keywords)
    assert keywords == b"0 $Forwarded\n1 $Label1\n"

    # Flag letters: system flags upper case (alphabetical), then keyword letters.
    by_uid: dict[int, re.Match[str]] = {}
    header, records = parse_uidlist(md / "dovecot-uidlist")
    show("dovecot-uidlist", (md / "dovecot-uidlist").read_bytes())
    for record in records:
        uid_text, base = record.split(" :", 1)
        match = next(m for m in files.values() if m["base"] == base)
        by_uid[int(uid_text)] = match
    assert sorted(by_uid) == [1, 2, 3]
    assert [by_uid[u]["flags"] for u in (1, 2, 3)] == ["S", "ab", "FSb"]
    # Records are "<uid> :<file name without the :2, part>", no extension fields (the
    # sizes are in the name).  The header was written when the file was created, before
    # the first APPEND, and later APPENDs only add records: N stays 1 (stale), so the next
    # UID is max(N, last UID + 1).
    assert records == [f"{u} :{by_uid[u]['base']}" for u in (1, 2, 3)]
    assert header["next"] == "1"

    with dovecot.imap() as imap:
        info = imap.select("INBOX")
        assert info["uidvalidity"] == int(header["uidvalidity"])
        assert info["uidnext"] == 4
        assert info["exists"] == 3
        assert info["permanentflags"] == [
            "$Forwarded",
            "$Label1",
            "\\*",
            "\\Answered",
            "\\Deleted",
            "\\Draft",
            "\\Flagged",
            "\\Seen",
        ]
        # Without an index, files already in cur/ are not \Recent for a new session.
        assert info["recent"] == 0
        assert imap.uid_fetch_flags() == {
            1: {"\\Seen"},
            2: {"$Forwarded", "$Label1"},
            3: {"\\Seen", "\\Flagged", "$Label1"},
        }
    # dovecot-uidvalidity holds the last UIDVALIDITY handed out, 8 lower-case hex
    # digits and no newline; an empty read-only file of the same name + "." + value
    # sits beside it.
    last = (md / "dovecot-uidvalidity").read_bytes()
    show("dovecot-uidvalidity", last)
    assert last == f"{int(header['uidvalidity']):08x}".encode()
    marker = md / f"dovecot-uidvalidity.{last.decode()}"
    assert marker.stat().st_size == 0
    assert stat.S_IMODE(marker.stat().st_mode) == 0o444


def test_append_without_flags_goes_to_new(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    with dovecot.imap() as imap:
        imap.append("INBOX", b"Subject: plain\r\n\r\nx\r\n")
        imap.append("INBOX", b"Subject: seen\r\n\r\nx\r\n", flags="\\Seen")
        new, cur = names(dovecot_maildir / "new"), names(dovecot_maildir / "cur")
        show("new/ and cur/", [f"new/{n}" for n in new] + [f"cur/{n}" for n in cur])
        assert len(new) == 1
        assert DOVECOT_NAME.fullmatch(new[0]) and ":" not in new[0], "no :2, in new/"
        assert len(cur) == 1
        assert cur[0].endswith(":2,S")


def test_line_ends_and_8bit_are_stored_with_lf(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    populate(dovecot)
    with dovecot.imap() as imap:
        imap.select("INBOX")
        served = {uid: imap.fetch_body(uid) for uid in (1, 2, 3)}
        dates = imap.fetch("1:3", "(UID INTERNALDATE RFC822.SIZE)")
    stored = {}
    for name in names(dovecot_maildir / "cur"):
        data = (dovecot_maildir / "cur" / name).read_bytes()
        stored[data.split(b"\n")[2]] = (name, data)
    show("stored files", [f"{name}: {data!r}" for name, data in stored.values()])
    # Dovecot converts CRLF to LF when it saves, keeps LF as it is, keeps raw 8-bit bytes.
    expected = {
        b"Subject: LF only": MSG_LF,
        b"Subject: CRLF": MSG_CRLF.replace(b"\r\n", b"\n"),
        "Subject: Grüße aus Köln".encode(): MSG_8BIT.replace(b"\r\n", b"\n"),
    }
    assert {k: v[1] for k, v in stored.items()} == expected
    # ... and serves every message with CRLF.
    assert served == {1: crlf(MSG_LF), 2: MSG_CRLF, 3: MSG_8BIT}
    assert {u: d["RFC822.SIZE"] for u, d in dates.items()} == {
        u: str(len(served[u])).encode() for u in served
    }
    # The APPEND date becomes the file's mtime; the zone is lost (INTERNALDATE comes
    # back in Dovecot's local zone, which the harness sets to UTC).
    assert dates[2]["INTERNALDATE"] == b"01-Jan-2024 11:00:00 +0000"
    crlf_name = stored[b"Subject: CRLF"][0]
    assert (dovecot_maildir / "cur" / crlf_name).stat().st_mtime == 1704106800


def test_folders_subscriptions_and_maildirfolder(
    dovecot: DovecotFactory, dovecot_maildir: Path
) -> None:
    md = dovecot_maildir
    with dovecot.imap() as imap:
        raw_create = imap.command('CREATE "Entw&APw-rfe"')
        assert imap.tagged_status(raw_create) == "OK"
        imap.create("A.B")
        imap.subscribe("Entwürfe")
        imap.subscribe("A.B")
        raw_list = imap.command('LIST "" "*"')
        entries = imap.list_entries()
        lsub = imap.lsub()
    show("LIST", [line.decode().rstrip() for line in raw_list])
    assert b'* LIST (\\HasNoChildren) "." Entw&APw-rfe\r\n' in raw_list
    assert sorted(entries) == [
        ({"\\HasChildren", "\\Noselect"}, ".", "A"),
        ({"\\HasNoChildren"}, ".", "A.B"),
        ({"\\HasNoChildren"}, ".", "Entwürfe"),
        ({"\\HasNoChildren"}, ".", "INBOX"),
    ]
    assert lsub == ["Entwürfe", "A.B"]

    show("maildir root", names(md))
    # Maildir++: ".<name in modified UTF-7>", "." as separator; no directory for the
    # \Noselect parent "A".
    assert [n for n in names(md) if n.startswith(".")] == [".A.B", ".Entw&APw-rfe"]
    uidvalidities = []
    for folder in (".A.B", ".Entw&APw-rfe"):
        show(folder, names(md / folder))
        assert names(md / folder) == ["cur", "dovecot-uidlist", "maildirfolder", "new", "tmp"]
        assert (md / folder / "maildirfolder").read_bytes() == b""  # empty marker file
        uidlist = (md / folder / "dovecot-uidlist").read_bytes()
        show(f"{folder}/dovecot-uidlist", uidlist)
        header, records = parse_uidlist(md / folder / "dovecot-uidlist")
        assert records == []
        assert header["next"] == "1"
        uidvalidities.append(int(header["uidvalidity"]))
    # Each folder gets its own UIDVALIDITY from dovecot-uidvalidity, which then holds
    # the highest value handed out.
    assert (md / "dovecot-uidvalidity").read_text() == f"{max(uidvalidities):08x}"

    # subscriptions: "V\t2\n\n", then one name per line, modified UTF-7, with TAB as the
    # hierarchy separator, in the order subscribed.
    subscriptions = (md / "subscriptions").read_bytes()
    show("subscriptions", subscriptions)
    assert subscriptions == b"V\t2\n\nEntw&APw-rfe\nA\tB\n"


def test_foreign_delivery_to_new(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    md = dovecot_maildir
    populate(dovecot)
    before = (md / "dovecot-uidlist").read_text()
    name = "1700000000.M12345P999.mx.example.org"
    message = b"From: x@example.org\nSubject: foreign\n\nhello\n"
    deliver_foreign(md, name, message)

    # Opening read-only (EXAMINE, STATUS) assigns the UID but leaves the file in new/.
    with dovecot.imap() as imap:
        info = imap.examine("INBOX")
        assert info["exists"] == 4
        assert info["uidnext"] == 5
    assert names(md / "new") == [name]
    after_examine = (md / "dovecot-uidlist").read_text()
    assert after_examine == before + f"4 :{name}\n"

    # A read-write SELECT moves it to cur/ with an empty ":2," info and \Recent.
    with dovecot.imap() as imap:
        info = imap.select("INBOX")
        assert (info["exists"], info["recent"], info["uidnext"]) == (4, 1, 5)
        assert imap.uid_fetch_flags("4") == {4: {"\\Recent"}}
        assert names(md / "new") == []
        assert f"{name}:2," in names(md / "cur")
        after_select = (md / "dovecot-uidlist").read_text()
        show("dovecot-uidlist after the foreign delivery", after_select)
        assert after_select == after_examine

        sizes = imap.fetch("4", "(UID RFC822.SIZE X-GUID)")[4]
        assert sizes["RFC822.SIZE"] == str(len(crlf(message))).encode()
        assert sizes["X-GUID"] == name.encode(), "the GUID of a foreign file is its base name"
    # IMAP FETCHes do not change the uidlist (INDEX=MEMORY: size caching is off) ...
    assert (md / "dovecot-uidlist").read_text() == after_select

    # ... but a POP3 session, which wants every message's size, rewrites the whole file:
    # the header gets the real next UID and the record a W<vsize> field (the file name
    # has no W=).
    with dovecot.pop3() as pop:
        assert pop.list_sizes()[4] == len(crlf(message))
    rewritten = (md / "dovecot-uidlist").read_text()
    show("dovecot-uidlist after a POP3 LIST", rewritten)
    header, records = parse_uidlist(md / "dovecot-uidlist")
    assert header["next"] == "5"
    assert records[:3] == before.split("\n")[1:4]
    assert records[3] == f"4 W{len(crlf(message))} :{name}"
    owner = (md / "cur" / f"{name}:2,").stat()
    assert (owner.st_uid, owner.st_gid) == mail_owner()


def test_store_keywords_expunge_and_copy(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    md = dovecot_maildir
    populate(dovecot)
    with dovecot.imap() as imap:
        imap.create("Entwürfe")
        imap.select("INBOX")
        flags = imap.store(2, "+FLAGS", "(\\Answered $Junk)")
        assert flags == {2: {"\\Answered", "$Forwarded", "$Label1", "$Junk"}}
        # A new keyword is appended to dovecot-keywords; letters follow the index.
        assert (md / "dovecot-keywords").read_bytes() == b"0 $Forwarded\n1 $Label1\n2 $Junk\n"
        infos = sorted(n.rsplit(":2,", 1)[1] for n in names(md / "cur"))
        show("flag letters in cur/", infos)
        assert infos == ["FSb", "Rabc", "S"]

        # COPY hard-links the file into the folder under the same name.
        copied = imap.command('UID COPY 2 "Entw&APw-rfe"')
        assert imap.tagged_status(copied) == "OK"
        [copy] = names(md / ".Entw&APw-rfe" / "cur")
        assert copy in names(md / "cur")
        assert (md / "cur" / copy).stat().st_ino == (
            md / ".Entw&APw-rfe" / "cur" / copy
        ).stat().st_ino
        folder_records = parse_uidlist(md / ".Entw&APw-rfe" / "dovecot-uidlist")[1]
        assert folder_records == [f"1 :{copy.split(':2,')[0]}"]

        # EXPUNGE unlinks the file; the uidlist keeps the record until its next rewrite.
        before = (md / "dovecot-uidlist").read_text()
        imap.store(1, "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
        assert len(names(md / "cur")) == 2
        assert (md / "dovecot-uidlist").read_text() == before


def test_pop3_uidl_list_retr(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    populate(dovecot)
    dotted = b"Subject: dots\n\n.leading dot\n..two\n.\nend"
    deliver_foreign(dovecot_maildir, "1700000000.M1P1.dots", dotted)
    with dovecot.imap() as imap:
        uidvalidity = imap.examine("INBOX")["uidvalidity"]
    with dovecot.pop3() as pop:
        uidl = pop.uidl()
        show("POP3 UIDL", [f"{n} {u}" for n, u in uidl.items()])
        # Default pop3_uidl_format %08Xu%08Xv, which Dovecot prints in lower case.
        assert uidl == {n: f"{n:08x}{uidvalidity:08x}" for n in (1, 2, 3, 4)}
        sizes = pop.list_sizes()
        assert sizes == {
            1: len(crlf(MSG_LF)),
            2: len(MSG_CRLF),
            3: len(MSG_8BIT),
            4: len(crlf(dotted)),
        }
        assert pop.stat() == (4, sum(sizes.values()))
        assert pop.retr(1) == crlf(MSG_LF)
        # Dot-stuffing is undone by retr(); a missing final newline comes back as CRLF.
        assert pop.retr(4) == crlf(dotted) + b"\r\n"
        raw = pop.command("RETR 4")
        assert b"..leading dot\r\n" in raw and b"...two\r\n" in raw and raw[-1] == b".\r\n"
        pop.dele(1)
        pop.quit()
    assert len(names(dovecot_maildir / "cur")) == 3


def test_pop3_custom_uidl_format(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    populate(dovecot)
    with dovecot.pop3(settings={"pop3_uidl_format": "%f"}) as pop:
        uidl = pop.uidl()
    bases = {m["base"] for n in names(dovecot_maildir / "cur") if (m := DOVECOT_NAME.match(n))}
    assert set(uidl.values()) == bases


@pytest.mark.parametrize("index", ["private", None])
def test_on_disk_index_options(
    dovecot: DovecotFactory, dovecot_maildir: Path, index: str | None
) -> None:
    with dovecot.imap(index=index) as imap:
        imap.append("INBOX", b"Subject: x\r\n\r\nx\r\n")
        imap.create("X")
        imap.select("X")
        in_maildir = sorted(
            str(p.relative_to(dovecot_maildir))
            for p in dovecot_maildir.rglob("dovecot.*")
            if p.is_file()
        )
        if index == "private":
            assert imap.index_dir is not None
            assert imap.mail_location.endswith(f":INDEX={imap.index_dir}")
            in_index = sorted(
                str(p.relative_to(imap.index_dir)) for p in imap.index_dir.rglob("*") if p.is_file()
            )
            show("private index dir", in_index)
            assert in_maildir == []
            assert ".INBOX/dovecot.index.log" in in_index
            assert "dovecot.list.index.log" in in_index
        else:
            show("index files in the maildir", in_maildir)
            assert "dovecot.index.log" in in_maildir
            assert "dovecot.list.index.log" in in_maildir
            assert ".X/dovecot.index.log" in in_maildir


def test_memory_index_leaves_no_index_files(dovecot: DovecotFactory, dovecot_maildir: Path) -> None:
    populate(dovecot)
    with dovecot.imap() as imap:
        assert imap.mail_location == f"maildir:{dovecot_maildir}:INDEX=MEMORY"
        imap.create("X")
        imap.select("X")
    assert [p for p in dovecot_maildir.rglob("dovecot.*") if p.is_file()] == []


def test_session_tempdir_is_removed(dovecot: DovecotFactory) -> None:
    imap: DovecotImap = dovecot.imap()
    config = imap.config_path.read_text()
    show("generated dovecot.conf", config)
    assert "mail_location = maildir:" in config
    tempdir = imap.tempdir
    imap.close()
    assert not os.path.exists(tempdir)
