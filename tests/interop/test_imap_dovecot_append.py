# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""MULTIAPPEND, CATENATE with URL-PARTIAL, and BINARY against the real Dovecot 2.3.19 on one
Maildir (tests/interop/side_by_side.py), and against real clients (imapclient, curl).

Dovecot has all four. What each server stores is compared file by file: the same command is
sent to each with its own target folder (ours `Ours`, Dovecot's `Theirs`), then the two folders
are read from disk. Refusals are compared by status and response code. Where we answer
differently on purpose, the test says so (README: "Appending and fetching"):

* absolute IMAP URLs (`imap://user@host/...`) naming the logged-in user are taken; Dovecot
  takes relative ones only ("Relative URL required");
* a CATENATE that makes an empty message is refused, as an empty APPEND is; Dovecot stores it;
* BINARY data goes as a literal8 only when it holds NUL (RFC 3516 4.3 "SHOULD" use a string
  otherwise); Dovecot sends `~{n}` for any part it decoded, and `{0}` where we send `""`;
* a FETCH goes on past a message whose BINARY cannot be decoded; Dovecot stops there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailstore.store import MailStore
from mra.imap.mime import crlf
from tests.interop.side_by_side import SideBySide
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop]

AS_NOBODY = '[server]\nuser = "nobody"\nrequire_readable_installation = false\n'  # Dovecot's mail user: both write the same files
MESSAGES = [
    b"From: a@example.test\r\nSubject: first\r\n\r\nplain body\r\n",
    b"From: b@example.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"h=C3=A9llo =\r\nworld  \r\nend\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQF\r\nBgc=\r\n"
    b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\naW5uZXI=\r\n"
    b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nplain \xc3\xa9\r\n"
    b"--XX--\r\n",
    b"Subject: u\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n",
    b"Subject: b\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs*bG8=\r\n",
    b"Subject: q\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc=ZZdef\r\n",
]
_CODE = re.compile(rb"^\S+ (OK|NO|BAD) (?:\[([^\]]*)\])?")


def _folders(store: MailStore) -> None:
    store.create_folder("Ours")
    store.create_folder("Theirs")


@pytest.fixture
def both(require_dovecot: None) -> Iterator[SideBySide]:
    with SideBySide(MESSAGES, extra=AS_NOBODY, setup=_folders) as sides:
        sides.ours.ok("SELECT INBOX")
        sides.dovecot.ok("SELECT INBOX")
        yield sides


def outcome(lines: list[bytes]) -> tuple[bytes, bytes]:
    """(status, response code) of a tagged line; APPENDUID's UIDs left out (they differ)."""
    m = _CODE.match(lines[-1])
    assert m is not None, lines
    code = m.group(2) or b""
    return m.group(1), b"APPENDUID" if code.startswith(b"APPENDUID") else code


def stored(both: SideBySide, folder: str) -> list[tuple[bytes, list[str], float | None]]:
    """A folder's messages as the files say: octets (Dovecot stores LF line ends, we store
    what was sent: both serve CRLF), flags, and the INTERNALDATE a client gave (else it is
    the time of the APPEND, which differs)."""
    box = MailStore(str(both.maildir)).mailbox(folder)
    out = []
    for m in box.messages():
        date = box.internaldate(m)
        out.append((crlf(box.read_message(m.uid)), box.all_flags(m), date if date < 1e9 else None))
    return out


def append_same(both: SideBySide, command: str, *, code: bool = True) -> tuple[bytes, bytes]:
    """`command` (with `{box}`) asked of each server for its own folder: the same outcome
    (status and code; `code=False`: the status), and the same messages stored."""
    ours = outcome(both.ours.command(command.replace("{box}", "Ours")))
    dovecot = outcome(both.dovecot.command(command.replace("{box}", "Theirs")))
    assert ours == dovecot if code else ours[0] == dovecot[0], (command, ours, dovecot)
    assert stored(both, "Ours") == stored(both, "Theirs"), command
    return ours


def test_multiappend_stores_what_dovecot_stores(both: SideBySide) -> None:
    assert append_same(
        both,
        'APPEND {box} (\\Seen $Work) "07-Feb-1994 22:43:04 -0800" {12+}\r\nSubject: 1\r\n (\\Flagged) {12+}\r\nSubject: 2\r\n {12+}\r\nSubject: 3\r\n',
    ) == (b"OK", b"APPENDUID")
    # All or nothing: a zero-length message cancels the others (RFC 3502). We add [CANNOT].
    assert (
        append_same(both, "APPEND {box} {12+}\r\nSubject: 4\r\n {0+}\r\n", code=False)[0] == b"NO"
    )


def test_catenate_builds_what_dovecot_builds(both: SideBySide) -> None:
    for command in (
        'APPEND {box} CATENATE (URL "/INBOX/;UID=1" TEXT {6+}\r\nmore\r\n)',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=2/;SECTION=HEADER" URL ";UID=2/;SECTION=1.MIME" URL ";UID=2/;SECTION=1")',
        'APPEND {box} CATENATE (URL "./;UID=2/;SECTION=3" URL "../INBOX/;UID=2/;SECTION=3.1")',
        'APPEND {box} CATENATE (URL "/inbox/;uid=2/;section=text/;partial=10.30" URL "/IN%42OX/;UID=1/;PARTIAL=5")',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=2/;SECTION=HEADER.FIELDS%20(SUBJECT%20FROM)")',
        'APPEND {box} CATENATE (TEXT {14+}\r\nSubject: t\r\n\r\n URL "/INBOX/;UID=1/;SECTION=9" URL ";UID=1/;PARTIAL=999.5" TEXT {3+}\r\nend)',
        'APPEND {box} (\\Draft) CATENATE (URL "/INBOX/;UID=1") (\\Seen) CATENATE (TEXT {12+}\r\nSubject: 2\r\n) {12+}\r\nSubject: 3\r\n',
    ):
        assert append_same(both, command) == (b"OK", b"APPENDUID")


@pytest.mark.parametrize(
    "command",
    [
        'APPEND {box} CATENATE (URL "/INBOX/;UID=99")',
        'APPEND {box} CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=0")',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=1/;PARTIAL=0.0")',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=1;PARTIAL=1")',
        'APPEND {box} CATENATE (URL "http://x/INBOX/;UID=1")',
        'APPEND {box} CATENATE (URL "/INBOX/;UID=1/;URLAUTH=anonymous")',
        'APPEND {box} CATENATE (URL "/Nope/;UID=1")',
        'APPEND {box} CATENATE (URL "INBOX/;UID=1")',
        'APPEND {box} CATENATE (URL ";SECTION=1")',
        # the second message's URL fails: nothing of the first is stored
        'APPEND {box} {12+}\r\nSubject: 1\r\n CATENATE (TEXT {2+}\r\nab URL "/INBOX/;UID=77")',
        "APPEND {box} CATENATE ()",
        "APPEND {box} CATENATE (FOO {2+}\r\nab)",
        'APPEND Nope CATENATE (URL "/INBOX/;UID=1")',
    ],
)
def test_catenate_refusals_are_dovecots(both: SideBySide, command: str) -> None:
    status, _ = append_same(both, command)
    assert status != b"OK"


def test_catenate_differences_from_dovecot(both: SideBySide) -> None:
    # An absolute URL of the logged-in user: Dovecot wants relative URLs only.
    url = 'URL "imap://alice%40example.test@localhost/INBOX/;UID=1"'
    assert outcome(both.ours.command(f"APPEND Ours CATENATE ({url})"))[0] == b"OK"
    assert outcome(both.dovecot.command(f"APPEND Theirs CATENATE ({url})"))[0] == b"NO"
    # An empty message made of URLs: we refuse it as an empty APPEND; Dovecot stores it.
    url = 'URL "/INBOX/;UID=1/;SECTION=9"'
    assert outcome(both.ours.command(f"APPEND Ours CATENATE ({url})")) == (b"NO", b"CANNOT")
    assert outcome(both.dovecot.command(f"APPEND Theirs CATENATE ({url})"))[0] == b"OK"


BINARY_ITEMS = "(BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[3.1] BINARY.PEEK[4] BINARY.PEEK[1]<3.6>)"


def _literal_forms(lines: list[bytes]) -> list[bytes]:
    """An answer with its literal forms made alike: `~{n}` as `{n}`, `""` as `{0}`."""
    return [
        line.replace(b"~{", b"{").replace(b'"" ', b"{0}\r\n ").replace(b'"")', b"{0}\r\n)")
        for line in lines
    ]


def test_fetch_binary_answers_are_dovecots(both: SideBySide) -> None:
    for command in (
        "FETCH 1 (BINARY.PEEK[] BINARY.SIZE[] BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[9] BINARY.SIZE[9])",
        f"FETCH 2 {BINARY_ITEMS}",
        "FETCH 2 (BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[] BINARY.SIZE[])",
        "UID FETCH 1:2 (BINARY.SIZE[1] BINARY.PEEK[1]<2.5>)",
    ):
        ours, dovecot = both.both(command)
        assert _literal_forms(ours) == _literal_forms(dovecot), (command, ours, dovecot)
    # The literal forms: a literal8 for data with NUL, a literal for the rest (RFC 3516 4.3).
    ours, dovecot = both.both("FETCH 2 (BINARY.PEEK[2] BINARY.PEEK[1])")
    assert (
        ours[0].startswith(b"* 2 FETCH (BINARY[2] ~{8}\r\n\x00\x01") and b" BINARY[1] {" in ours[0]
    )
    assert b" BINARY[1] ~{" in dovecot[0]
    # BINARY sets \Seen, BINARY.SIZE does not, as Dovecot.
    both.same("FETCH 1 BINARY.SIZE[1]")
    ours, dovecot = both.both("FETCH 1 FLAGS")  # (\Recent is one session's: ours SELECTed first)
    assert b"\\Seen" not in ours[0] and b"\\Seen" not in dovecot[0]
    ours, _ = both.both("FETCH 1 BINARY[1]")  # (one Maildir: Dovecot then finds it seen)
    assert ours[0].endswith(b" FLAGS (\\Seen \\Recent))")


@pytest.mark.parametrize(("seq", "code"), [(3, b"UNKNOWN-CTE"), (4, b"PARSE"), (5, b"PARSE")])
def test_binary_refusals_are_dovecots(both: SideBySide, seq: int, code: bytes) -> None:
    for items in ("BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.PEEK[]"):
        ours = outcome(both.ours.command(f"FETCH {seq} {items}"))
        dovecot = outcome(both.dovecot.command(f"FETCH {seq} {items}"))
        assert ours == dovecot == (b"NO", code), (items, ours, dovecot)


BINARY_CONTENT = (
    b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
    b"--B\r\nContent-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) * 2 + b"\r\n"
    b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: Binary\r\n\r\nab\x00cd\nef\r\n"
    b"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhi \xc3\xa9\r\n--B--\r\n"
)


def test_binary_content_is_stored_as_dovecot_stores_it(both: SideBySide) -> None:
    n = len(BINARY_CONTENT)
    literal8 = b"APPEND {box} ~{%d+}\r\n" % n + BINARY_CONTENT
    for command in (
        literal8,
        b"APPEND {box} CATENATE (TEXT ~{%d+}\r\n" % n + BINARY_CONTENT + b")",
    ):
        for folder, side in (("Ours", both.ours), ("Theirs", both.dovecot)):
            tag = side.next_tag()
            side.send_raw(
                tag.encode() + b" " + command.replace(b"{box}", folder.encode()) + b"\r\n"
            )
            assert outcome(side._read_until_tagged(tag, "APPEND"))[0] == b"OK"
        assert stored(both, "Ours") == stored(both, "Theirs")
    both.ours.ok("SELECT Ours")
    both.dovecot.ok("SELECT Theirs")
    both.same(
        "FETCH 1:2 (BODYSTRUCTURE BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[3])"
    )
    # RFC 3516 4.3: BINARY.SIZE "MUST match" the octets BINARY sends. Dovecot's is 4 short for
    # this part (the CRs and LFs of the data counted as line ends), ours is the count.
    ours, dovecot = both.both("FETCH 1 BINARY.SIZE[1]")
    assert (
        ours[0] == b"* 1 FETCH (BINARY.SIZE[1] 512)"
        and dovecot[0] == b"* 1 FETCH (BINARY.SIZE[1] 508)"
    )


# --- real clients against our server ----------------------------------------------------------


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MraServer]:
    s = MraServer(tmp_path_factory.mktemp("mra"), listeners=("imap",))
    s.store().mailbox("INBOX").append(MESSAGES[1])
    s.start()
    yield s
    s.stop()


def imapclient_session(server: MraServer) -> Any:
    from imapclient import IMAPClient

    client = IMAPClient("127.0.0.1", port=server.ports["imap"], ssl=False, timeout=20)
    client.login("alice@example.test", PASSWORD)
    return client


def test_imapclient_multiappend_and_binary(server: MraServer) -> None:
    with imapclient_session(server) as client:
        assert {b"MULTIAPPEND", b"CATENATE", b"URL-PARTIAL", b"BINARY"} <= set(
            client.capabilities()
        )
        answer = client.multiappend(
            "INBOX",
            [
                b"Subject: one\r\n\r\n1\r\n",
                {"msg": b"Subject: two\r\n\r\n2\r\n", "flags": [b"\\Seen"]},
            ],
        )
        status, (text,) = answer
        assert status == "OK" and re.fullmatch(rb"\[APPENDUID \d+ 2:3\] APPEND completed", text)
        client.select_folder("INBOX")
        # (imapclient 4.1 reads no literal8: it would give BINARY[2], which holds NUL, as
        # the text "~{8}"; that part is the side-by-side tests')
        fetched = client.fetch(
            [1], ["BINARY.PEEK[1]", "BINARY.SIZE[1]", "BINARY.SIZE[2]", "BINARY.PEEK[3.1]"]
        )
        assert fetched[1][b"BINARY[1]"] == "héllo world\r\nend".encode()
        assert fetched[1][b"BINARY.SIZE[1]"] == 17
        assert fetched[1][b"BINARY.SIZE[2]"] == 8
        assert fetched[1][b"BINARY[3.1]"] == b"inner"
        fetched = client.fetch([2, 3], ["FLAGS", "BODY.PEEK[]"])
        assert fetched[3][b"FLAGS"] == (b"\\Seen",)
        assert fetched[3][b"BODY[]"] == b"Subject: two\r\n\r\n2\r\n"


def test_curl_fetches_what_catenate_takes_for_the_same_url(server: MraServer) -> None:
    """One IMAP URL, two uses, through curl: fetched (RFC 5092, `;PARTIAL=` of URL-PARTIAL),
    and given to APPEND CATENATE (RFC 4469), absolute and relative to the mailbox curl selects."""
    uidvalidity = server.store().mailbox("INBOX").uidvalidity
    base = f"imap://127.0.0.1:{server.ports['imap']}"

    def curl(*args: str) -> bytes:
        command = ["curl", "-s", "--max-time", "20", "-u", f"alice@example.test:{PASSWORD}"]
        return subprocess.run([*command, *args], capture_output=True, check=True).stdout

    for path, relative in (
        (f"/INBOX;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=1", ";UID=1/;SECTION=1"),
        (
            f"/INBOX;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=2/;PARTIAL=4.6",
            "./;UID=1/;SECTION=2/;PARTIAL=4.6",
        ),
        # (curl turns an offset alone, ;PARTIAL=6, into BODY[]<6>, which IMAP has not)
        ("/inbox/;UID=1/;SECTION=HEADER/;PARTIAL=6.30", ";UID=1/;SECTION=HEADER/;PARTIAL=6.30"),
    ):
        fetched = curl(base + path)
        assert fetched
        for url in (path, relative):
            curl(base + "/INBOX", "-X", f'APPEND INBOX CATENATE (URL "{url}")')
            box = server.store().mailbox("INBOX")
            assert box.read_message(box.uids()[-1]) == fetched, url
    assert (
        curl(base + f"/INBOX;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=1/;PARTIAL=2.5") == b"C3=A9"
    )


def _readme_examples() -> dict[str, str]:
    """The sh and python blocks of README.md's "Appending and fetching"."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("#### Appending and fetching", 1)[1].split("\n### ", 1)[0]
    return dict(re.findall(r"```(sh|python)\n(.*?)```", section, re.S))


def test_readme_examples(server: MraServer) -> None:
    examples = _readme_examples()
    assert set(examples) == {"sh", "python"}

    def run(*command: str) -> bytes:
        done = subprocess.run(command, capture_output=True, check=True, timeout=60)
        return done.stdout

    inbox = server.store().mailbox("INBOX")
    inbox.append(MESSAGES[0])  # UID 2
    port = str(server.ports["imap"])
    script = examples["sh"].replace("PASSWORD", PASSWORD).replace("1143", port)
    output = run("bash", "-e", "-c", script)
    inbox.sync()
    assert inbox.uids() == [1, 2, 3]  # the CATENATE
    header, text = MESSAGES[0].split(b"\r\n\r\n", 1)
    assert inbox.read_message(3) == header + b"\r\n\r\n" + text[:100]
    assert output.startswith(text[:100] + b"* 2 FETCH (BINARY.SIZE[1] 12 BINARY[1] {12}")
    code = examples["python"].replace("PASSWORD", PASSWORD).replace("1143", port)
    output = run(sys.executable, "-c", code)
    assert re.fullmatch(rb"\('OK', \[b'\[APPENDUID \d+ 4:5\] APPEND completed'\]\)\n", output)
