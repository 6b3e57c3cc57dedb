"""Real IMAP clients against a real `mra serve`: curl, mbsync (isync), offlineimap3, getmail6
and s-nail.

Alice's Maildir++ tree is seeded by dropping files into ``new/`` and ``cur/`` as another MDA
(or a mail reader) would, never through our store: INBOX gets the POP3 tests' awkward messages
(dot lines, a MIME multipart with a base64 attachment, raw UTF-8 in the header, CRLF line ends,
no final newline, ~1 MiB) plus one with keywords (``dovecot-keywords``) and \\Answered; the
folders ``Archive``, ``Lists.python`` (its parent ``Lists`` does not exist), ``Entwürfe``
(stored as ``.Entw&APw-rfe``) and ``Junk`` hold a few small LF and CRLF messages. Each test
runs one client (plain IMAP, IMAPS or STARTTLS) and compares what it ended with against the
Maildir: the server sends every message with CRLF line ends and adds nothing, so a client
that stores CRLF must have the file's bytes in CRLF, and one that stores LF the same in LF.

Without a client its tests are skipped on a developer's machine and FAIL under CI (``CI``
set). Install them with::

    apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y \\
        curl isync offlineimap3 getmail6 s-nail

``IMAP_INTEROP_KEEP=1`` keeps the temporary trees (server, configs, client Maildirs).
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from tests.interop.clients import (
    MAIL_USER,
    Seed,
    as_mail_user,
    assert_clean_log,
    assert_same_bytes,
    chown_to_mail_user,
    client_env,
    crlf,
    message_name,
    require,
    run,
    running_as_root,
    seed_maildir,
    seed_messages,
    traversable_tempdir,
    write_private,
)
from tests.interop.dovecot import decode_mutf7, encode_mutf7, parse_imap
from tests.mra.conftest import PASSWORD, MraServer, certificate

pytestmark = [pytest.mark.interop]

USER = "alice@example.test"
HOST = "127.0.0.1"
TLS_HOST = "localhost"  # the name in the test certificate: clients that check it use this
CLIENT_TIMEOUT = 20  # the clients' own network timeouts, in seconds
KEYWORDS = ("$Forwarded", "Important")  # dovecot-keywords: letter a, letter b


# --------------------------------------------------------------------------------------
# The mail
# --------------------------------------------------------------------------------------


def _message(name: str, subject: str, body: str, *, eol: str = "\n", extra: str = "") -> bytes:
    lines = [
        "From: Sender <sender@example.org>",
        "To: alice@example.test",
        f"Subject: {subject}",
        "Date: Wed, 15 Nov 2023 08:00:00 +0100",
        f"Message-ID: <{name}@seed.test>",
        *extra.splitlines(),
        "",
        *body.splitlines(),
    ]
    return "".join(line + eol for line in lines).encode()


def _folder_seeds() -> dict[str, list[Seed]]:
    return {
        "Archive": [
            Seed("archive-lf", _message("archive-lf", "archived, LF", "old mail\n.\nend")),
            Seed(
                "archive-crlf",
                _message("archive-crlf", "archived, CRLF", "old mail\r\n..\r\n", eol="\r\n"),
                "cur",
                ":2,RS",
            ),
        ],
        "Lists.python": [
            Seed(
                "lists-python",
                _message(
                    "lists-python",
                    "[python] a list message",
                    "Python 3.11 is out.",
                    extra="List-Id: <python.example.org>",
                ),
                "cur",
                ":2,S",
            ),
        ],
        "Entwürfe": [
            Seed(
                "entwurf",
                _message(
                    "entwurf",
                    "=?utf-8?q?Entw=C3=BCrfe?=",
                    "Noch nicht fertig.",
                    extra="MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii",
                ),
                "cur",
                ":2,D",
            ),
        ],
        "Junk": [Seed("junk", _message("junk", "cheap pills", "buy now"))],
    }


def _inbox_seeds() -> list[Seed]:
    keywords = _message(
        "keywords",
        "keywords and answered",
        "This one carries $Forwarded and Important.",
        extra="In-Reply-To: <dot-line@seed.test>",
    )
    return [*seed_messages(), Seed("keywords", keywords, "cur", ":2,RSab")]


def lf(data: bytes) -> bytes:
    """What a client that stores LF line ends has for a file (nothing added at the end)."""
    return crlf(data).replace(b"\r\n", b"\n")


def strip_header(data: bytes, name: str) -> bytes:
    """`data` without the header field `name` (one a client added) in its header."""
    end = re.search(rb"\r?\n\r?\n", data)
    split = end.end() if end else len(data)
    field = re.compile(rb"^" + re.escape(name.encode()) + rb":[^\n]*\n", re.I | re.M)
    return field.sub(b"", data[:split], count=1) + data[split:]


def flags_of(path: Path) -> str:
    """The system-flag letters (``DFPRST``) of a Maildir file name, sorted."""
    _, sep, info = path.name.partition(":2,")
    return "".join(sorted(c for c in info if c.isupper())) if sep else ""


def keyword_letters(path: Path) -> str:
    _, sep, info = path.name.partition(":2,")
    return "".join(sorted(c for c in info if c.islower())) if sep else ""


def maildir_paths(root: Path) -> dict[str, Path]:
    """The message files of one Maildir by seed name (``new/`` and ``cur/``)."""
    out: dict[str, Path] = {}
    for sub in ("new", "cur"):
        if not (root / sub).is_dir():
            continue
        for path in sorted((root / sub).iterdir()):
            if path.is_file():
                name = message_name(path.read_bytes())
                assert name not in out, f"{name!r} twice in {root}: {out[name]} and {path}"
                out[name] = path
    return out


def maildir_state(root: Path) -> dict[str, tuple[str, bytes]]:
    """{seed name: (system flags, content)} of one Maildir."""
    return {n: (flags_of(p), p.read_bytes()) for n, p in maildir_paths(root).items()}


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


@dataclass
class Seeded:
    server: MraServer
    root: Path  # alice's Maildir++ root, which is INBOX
    folders: dict[str, list[Seed]]  # every seeded mailbox ("INBOX" included)
    work: Path  # client configs and Maildirs (mode 0755: nobody may enter)
    cert: Path  # the server's self-signed certificate, readable by nobody
    initial: dict[str, dict[str, tuple[str, bytes]]] = field(default_factory=dict)

    @property
    def imap(self) -> int:
        return self.server.ports["imap"]

    @property
    def imaps(self) -> int:
        return self.server.ports["imaps"]

    def maildir(self, folder: str) -> Path:
        return self.root if folder == "INBOX" else self.root / ("." + encode_mutf7(folder))

    def seeds(self, folder: str = "INBOX") -> list[Seed]:
        return self.folders[folder]

    def state(self, folder: str = "INBOX") -> dict[str, tuple[str, bytes]]:
        return maildir_state(self.maildir(folder))

    def check_log(self, after: str) -> None:
        assert_clean_log(self.server.log(), after)

    def assert_untouched(
        self, folders: Sequence[str] | None = None, *, added: Collection[str] = ()
    ) -> None:
        """Every seeded message still there with its flags and content (``new/`` may have
        moved to ``cur/``), and no other message but those named in `added`."""
        for folder in folders or list(self.folders):
            state = {k: v for k, v in self.state(folder).items() if k not in added}
            assert state == self.initial[folder], f"{folder} changed"

    def login(self) -> imaplib.IMAP4:
        m = imaplib.IMAP4(HOST, self.imap, timeout=CLIENT_TIMEOUT)
        m.login(USER, PASSWORD)
        return m

    def folders_listed(self) -> set[str]:
        """The folder names in the server's ``LIST "" *`` (through imaplib)."""
        m = self.login()
        try:
            typ, listing = m.list()
            assert typ == "OK", listing
        finally:
            m.logout()
        names: set[str] = set()
        for line in listing:
            assert isinstance(line, bytes), line
            name = parse_imap(line)[-1]
            assert isinstance(name, bytes), line
            names.add(decode_mutf7(name.decode()))
        return names

    def numbers(self, folder: str = "INBOX") -> dict[str, tuple[int, int]]:
        """{seed name: (sequence number, UID)} as the server numbers them (EXAMINE)."""
        m = self.login()
        try:
            typ, _ = m.select(f'"{encode_mutf7(folder)}"', readonly=True)
            assert typ == "OK", folder
            typ, data = m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert typ == "OK", data
        finally:
            m.logout()
        out: dict[str, tuple[int, int]] = {}
        for item in data:
            if isinstance(item, tuple):
                head = item[0].decode()
                match = re.match(r"(\d+) \(.*UID (\d+)", head)
                assert match, head
                out[message_name(item[1])] = (int(match.group(1)), int(match.group(2)))
        return out


@pytest.fixture
def seeded() -> Iterator[Seeded]:
    base = traversable_tempdir("mra-imap-interop-")
    work = traversable_tempdir("imap-clients-")
    # Only the seeded folders (no [mailboxes] auto folders): the clients' views are compared
    # with the seed.
    server = MraServer(base, "[mailboxes]\n", listeners=("imap", "imaps"))
    try:
        root = server.mail / "example.test" / "alice"
        folders = {"INBOX": _inbox_seeds(), **_folder_seeds()}
        s = Seeded(server, root, folders, work, work / "cert.pem")
        for folder, seeds in folders.items():
            seed_maildir(s.maildir(folder), seeds)
            if folder != "INBOX":
                (s.maildir(folder) / "maildirfolder").touch()
        (root / "dovecot-keywords").write_text(
            "".join(f"{i} {k}\n" for i, k in enumerate(KEYWORDS))
        )
        s.initial = {folder: s.state(folder) for folder in folders}
        shutil.copyfile(certificate()[0], s.cert)
        s.cert.chmod(0o644)
        server.start()
        yield s
    finally:
        server.stop()
        if not os.environ.get("IMAP_INTEROP_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


def seeded_flags(seed: Seed) -> str:
    return "".join(sorted(c for c in seed.info.removeprefix(":2,") if c.isupper()))


def seeded_keywords(seed: Seed) -> str:
    return "".join(sorted(c for c in seed.info.removeprefix(":2,") if c.islower()))


# Requested before `seeded` so that a missing client skips before a server starts.
@pytest.fixture
def mbsync() -> str:
    return require("mbsync", "isync")


@pytest.fixture
def offlineimap() -> str:
    return require("offlineimap", "offlineimap3")


@pytest.fixture
def snail() -> str:
    return require("s-nail", "s-nail")


# --------------------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------------------


def _curl(curl: str, s: Seeded, *args: str) -> tuple[bytes, str]:
    """One curl run (verbose): its stdout and its trace; the server log checked after."""
    result = run(
        [
            curl,
            "--silent",
            "--show-error",
            "--verbose",
            "--max-time",
            "30",
            "--user",
            f"{USER}:{PASSWORD}",
            *args,
        ],
        env=client_env(s.work),
    )
    s.check_log(f"curl {args[-1] if args else ''}")
    return result.stdout, result.stderr.decode(errors="replace")


def _curl_fetch(
    curl: str, s: Seeded, base_url: str, folder: str, *args: str
) -> tuple[dict[str, bytes], str]:
    """Every message of `folder`, by UID (``;UID=[1-n]`` globbing: one connection);
    the messages by seed name, and curl's trace."""
    out = s.work / f"curl-{len(list(s.work.glob('curl-*')))}"
    out.mkdir()
    n = len(s.seeds(folder))
    mailbox = encode_mutf7(folder).replace("&", "%26")
    url = f"{base_url}/{mailbox};UID=[1-{n}]"
    _, trace = _curl(curl, s, *args, url, "--output", f"{out}/#1")
    files = {int(p.name): p.read_bytes() for p in out.iterdir()}
    assert sorted(files) == list(range(1, n + 1)), (sorted(files), trace[-3000:])
    got: dict[str, bytes] = {}
    for data in files.values():
        got[message_name(data)] = data
    return got, trace


def _assert_crlf_copies(label: str, got: dict[str, bytes], seeds: Sequence[Seed]) -> None:
    """What a client that keeps the server's CRLF received: each file in CRLF, nothing added."""
    assert sorted(got) == sorted(seed.name for seed in seeds), label
    for seed in seeds:
        assert_same_bytes(f"{label}: {seed.name}", got[seed.name], crlf(seed.data))


def _assert_lf_copies(label: str, got: dict[str, bytes], seeds: Sequence[Seed]) -> None:
    assert sorted(got) == sorted(seed.name for seed in seeds), label
    for seed in seeds:
        assert_same_bytes(f"{label}: {seed.name}", got[seed.name], lf(seed.data))


def _list_lines(output: bytes) -> dict[str, tuple[set[str], str]]:
    """``* LIST`` lines: {decoded name: (attributes, delimiter)}."""
    out: dict[str, tuple[set[str], str]] = {}
    for line in output.splitlines():
        tokens = parse_imap(line + b"\r\n")
        assert tokens[:2] == [b"*", b"LIST"], line
        attrs, delim, name = tokens[2], tokens[3], tokens[4]
        assert isinstance(attrs, list) and isinstance(delim, bytes) and isinstance(name, bytes)
        out[decode_mutf7(name.decode())] = (
            {a.decode() for a in attrs if isinstance(a, bytes)},
            delim.decode(),
        )
    return out


EXPECTED_FOLDERS = {"INBOX", "Archive", "Lists", "Lists.python", "Entwürfe", "Junk"}


def test_curl_list_and_fetch_by_uid_sets_seen(curl: str, seeded: Seeded) -> None:
    """LIST of the folders, then every message by ``;UID=n`` (``UID FETCH n BODY[]``, not
    PEEK: the server must set \\Seen, and keep the other flags and keywords)."""
    s = seeded
    url = f"imap://{HOST}:{s.imap}"
    listing, _ = _curl(curl, s, f"{url}/")
    folders = _list_lines(listing)
    assert set(folders) == EXPECTED_FOLDERS, listing
    assert {delim for _, delim in folders.values()} == {"."}, listing
    assert "\\Noselect" in folders["Lists"][0] and "\\HasChildren" in folders["Lists"][0]
    assert "\\HasNoChildren" in folders["Archive"][0]
    s.assert_untouched()
    s.check_log("curl LIST")

    got, trace = _curl_fetch(curl, s, url, "INBOX")
    _assert_crlf_copies("curl imap://", got, s.seeds())
    fetches = re.findall(r"^> \S+ (UID FETCH \d+ \S+)", trace, re.M)
    assert fetches and all(f.endswith(" BODY[]") for f in fetches), fetches
    s.check_log("curl UID FETCH")

    after = maildir_paths(s.maildir("INBOX"))
    for seed in s.seeds():
        path = after[seed.name]
        assert path.parent.name == "cur", path
        assert flags_of(path) == "".join(sorted(set(seeded_flags(seed)) | {"S"})), path.name
        assert keyword_letters(path) == seeded_keywords(seed), path.name
        assert_same_bytes(f"server file {seed.name}", path.read_bytes(), seed.data)

    for folder in ("Lists.python", "Entwürfe"):
        got, _ = _curl_fetch(curl, s, url, folder)
        _assert_crlf_copies(f"curl imap:// {folder}", got, s.seeds(folder))
    s.check_log("curl UID FETCH in folders")


def test_curl_imaps(curl: str, seeded: Seeded) -> None:
    s = seeded
    url = f"imaps://{HOST}:{s.imaps}"
    listing, trace = _curl(curl, s, "--insecure", f"{url}/")
    assert set(_list_lines(listing)) == EXPECTED_FOLDERS, listing
    assert re.search(r"SSL connection using TLSv1\.[23]", trace), trace[-3000:]
    got, _ = _curl_fetch(curl, s, url, "INBOX", "--insecure")
    _assert_crlf_copies("curl imaps://", got, s.seeds())
    got, _ = _curl_fetch(curl, s, url, "Archive", "--insecure")
    _assert_crlf_copies("curl imaps:// Archive", got, s.seeds("Archive"))
    s.check_log("curl imaps://")


def test_curl_starttls_ssl_reqd(curl: str, seeded: Seeded) -> None:
    """--ssl-reqd on the plain port: STARTTLS first, the certificate checked (for
    ``localhost``), and only then authentication."""
    s = seeded
    got, trace = _curl_fetch(
        curl, s, f"imap://{TLS_HOST}:{s.imap}", "Archive", "--ssl-reqd", "--cacert", str(s.cert)
    )
    _assert_crlf_copies("curl STARTTLS", got, s.seeds("Archive"))
    starttls = re.search(r"^> \S+ STARTTLS\r?$", trace, re.M)
    assert starttls, trace[-3000:]
    assert re.search(r"SSL connection using TLSv1\.[23]", trace), trace[-3000:]
    assert "SSL certificate verify ok" in trace, trace[-3000:]
    login = re.compile(r"^> \S+ (AUTHENTICATE|LOGIN) ", re.M)
    before, after = trace[: starttls.start()], trace[starttls.end() :]
    assert not login.search(before) and login.search(after), trace[-3000:]
    assert not re.search(r"^< \* CAPABILITY .*STARTTLS", after, re.M), after[-3000:]
    s.check_log("curl STARTTLS")


def test_curl_append(curl: str, seeded: Seeded) -> None:
    """``-T file``: APPEND (curl sends ``(\\Seen)``); the file lands in the Maildir byte for
    byte as sent, CRLF or LF, and comes back by its UID in CRLF."""
    s = seeded
    crlf_message = _message(
        "appended-crlf", "appended by curl", "first line\r\n.\r\n..\r\nlast", eol="\r\n"
    )
    lf_message = _message("appended-lf", "appended by curl, LF", "Grüße\n.\nend").replace(
        b"Subject: appended by curl, LF\n",
        b"Subject: appended by curl, LF\nContent-Type: text/plain; charset=utf-8\n",
    )
    cases = (("INBOX", crlf_message), ("Lists.python", lf_message))
    for folder, message in cases:
        path = s.work / f"{message_name(message)}.eml"
        path.write_bytes(message)
        mailbox = encode_mutf7(folder)
        _, trace = _curl(curl, s, "--upload-file", str(path), f"imap://{HOST}:{s.imap}/{mailbox}")
        assert re.search(r"^> \S+ APPEND ", trace, re.M), trace[-3000:]
        uid = re.search(r"^< \S+ OK \[APPENDUID \d+ (\d+)\]", trace, re.M)
        assert uid, trace[-3000:]
        s.check_log(f"curl APPEND to {folder}")

        stored = maildir_paths(s.maildir(folder))
        new = set(stored) - {seed.name for seed in s.seeds(folder)}
        assert new == {message_name(message)}, sorted(stored)
        appended = stored[message_name(message)]
        assert_same_bytes(f"appended to {folder}", appended.read_bytes(), message)
        assert appended.parent.name == "cur" and flags_of(appended) == "S", appended

        back, _ = _curl(curl, s, f"imap://{HOST}:{s.imap}/{mailbox};UID={uid.group(1)}")
        assert_same_bytes(f"fetched back from {folder}", back, crlf(message))
    s.assert_untouched(added={"appended-crlf", "appended-lf"})
    s.check_log("curl UID FETCH of appended messages")


def test_curl_search(curl: str, seeded: Seeded) -> None:
    """``imap://host/INBOX?CRITERIA`` sends ``SEARCH CRITERIA`` and prints ``* SEARCH``."""
    s = seeded
    numbers = s.numbers()
    url = f"imap://{HOST}:{s.imap}/INBOX"
    out, _ = _curl(curl, s, f"{url}?UNSEEN")
    unseen = {numbers[seed.name][0] for seed in s.seeds() if "S" not in seeded_flags(seed)}
    assert _search_result(out) == unseen, out
    out, _ = _curl(curl, s, f"{url}?SUBJECT%20dot")
    with_dot = {
        numbers[seed.name][0]
        for seed in s.seeds()
        if "dot" in email.message_from_bytes(seed.data, policy=email.policy.default)["Subject"]
    }
    assert _search_result(out) == with_dot, out
    s.assert_untouched()
    s.check_log("curl SEARCH")


def _search_result(output: bytes) -> set[int]:
    lines = output.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("* SEARCH"), output
    return {int(n) for n in lines[0].split()[2:]}


# --------------------------------------------------------------------------------------
# mbsync (isync)
# --------------------------------------------------------------------------------------


def _mbsync(mbsync: str, s: Seeded, *, tls: str = "IMAPS", auth: str = "LOGIN") -> str:
    """One two-way sync of every folder into the Maildir tree ``work/mbsync``."""
    local = s.work / "mbsync"
    local.mkdir(exist_ok=True)
    port = s.imaps if tls == "IMAPS" else s.imap
    rc = write_private(
        s.work / "mbsyncrc",
        "IMAPAccount alice\n"
        f"Host {TLS_HOST}\n"
        f"Port {port}\n"
        f"User {USER}\n"
        f"Pass {PASSWORD}\n"
        f"SSLType {tls}\n"
        f"CertificateFile {s.cert}\n"
        f"AuthMechs {auth}\n"
        f"Timeout {CLIENT_TIMEOUT}\n"
        "\n"
        "IMAPStore remote\n"
        "Account alice\n"
        "\n"
        "MaildirStore local\n"
        f"Path {local}/\n"
        f"Inbox {local}/INBOX\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel alice\n"
        "Far :remote:\n"
        "Near :local:\n"
        "Patterns *\n"
        "Create Both\n"
        "Expunge Both\n"
        "SyncState *\n",
    )
    result = run([mbsync, "--config", str(rc), "--verbose", "alice"], env=client_env(s.work))
    trace = (result.stdout + result.stderr).decode(errors="replace")
    s.check_log(f"mbsync ({tls}, {auth})")
    return trace


def _mbsync_dir(s: Seeded, folder: str) -> Path:
    """Where mbsync keeps `folder` (``SubFolders Verbatim``: ``a.b`` is ``a/b``)."""
    return s.work / "mbsync" / Path(*encode_mutf7(folder).split("."))


def _assert_mbsync_in_sync(s: Seeded, folders: Sequence[str]) -> None:
    """Each folder has the same messages on both sides, with the same flags; the local
    copies are the server's in LF plus the ``X-TUID`` header mbsync adds."""
    for folder in folders:
        server = maildir_paths(s.maildir(folder))
        local = maildir_state(_mbsync_dir(s, folder))
        assert sorted(local) == sorted(server), folder
        for name, path in server.items():
            local_flags, local_data = local[name]
            # isync keeps $Forwarded (keyword letter a here) as the Maildir flag P (passed).
            forwarded = "P" if folder == "INBOX" and "a" in keyword_letters(path) else ""
            flags = "".join(sorted(flags_of(path) + forwarded))
            assert local_flags == flags, (folder, name, local_flags, flags)
            data = path.read_bytes()
            assert_same_bytes(
                f"mbsync {folder}: {name}",
                strip_header(local_data, "X-TUID"),
                lf(strip_header(data, "X-TUID")),  # in what mbsync uploaded too
            )


SYNCED = ("INBOX", "Archive", "Lists.python", "Entwürfe", "Junk")


def test_mbsync_imaps_initial_sync(mbsync: str, seeded: Seeded) -> None:
    s = seeded
    _mbsync(mbsync, s)
    _assert_mbsync_in_sync(s, SYNCED)
    s.assert_untouched()  # BODY.PEEK: nothing became \Seen
    assert not _mbsync_dir(s, "Lists").joinpath("cur").exists(), "\\Noselect parent synced"
    # A second run changes nothing on either side.
    before = {f: maildir_state(_mbsync_dir(s, f)) for f in SYNCED}
    _mbsync(mbsync, s)
    assert {f: maildir_state(_mbsync_dir(s, f)) for f in SYNCED} == before
    s.assert_untouched()


def test_mbsync_starttls_flags_both_ways(mbsync: str, seeded: Seeded) -> None:
    s = seeded
    _mbsync(mbsync, s, tls="STARTTLS", auth="PLAIN")
    # Locally: flag one message (rename to :2,F) and un-see another.
    local = maildir_paths(_mbsync_dir(s, "INBOX"))
    dot_line = local["dot-line"]
    dot_line.rename(dot_line.parent.parent / "cur" / (dot_line.name.split(":2,")[0] + ":2,F"))
    double_dot = local["double-dot"]
    assert flags_of(double_dot) == "S"
    double_dot.rename(double_dot.with_name(double_dot.name.split(":2,")[0] + ":2,"))
    # On the server: \Seen on one, -\Flagged on another.
    numbers = s.numbers()
    m = s.login()
    try:
        m.select("INBOX")
        for name, op, flag in (
            ("utf8-header", "+FLAGS", "\\Seen"),
            ("no-newline", "-FLAGS", "\\Flagged"),
        ):
            typ, data = m.uid("STORE", str(numbers[name][1]), op, f"({flag})")
            assert typ == "OK", data
    finally:
        m.logout()

    _mbsync(mbsync, s, tls="STARTTLS", auth="PLAIN")
    server = maildir_paths(s.maildir("INBOX"))
    assert flags_of(server["dot-line"]) == "F", server["dot-line"].name
    assert flags_of(server["double-dot"]) == "", server["double-dot"].name
    local = maildir_paths(_mbsync_dir(s, "INBOX"))
    assert flags_of(local["utf8-header"]) == "S", local["utf8-header"].name
    assert flags_of(local["no-newline"]) == "S", local["no-newline"].name
    assert keyword_letters(server["keywords"]) == "ab", "keywords lost on the server"
    _assert_mbsync_in_sync(s, SYNCED)


def test_mbsync_expunge_both_ways(mbsync: str, seeded: Seeded) -> None:
    s = seeded
    _mbsync(mbsync, s)
    maildir_paths(_mbsync_dir(s, "INBOX"))["dot-line"].unlink()
    maildir_paths(_mbsync_dir(s, "Archive"))["archive-lf"].unlink()
    numbers = s.numbers("Archive")
    m = s.login()
    try:
        m.select("Archive")
        typ, data = m.uid("STORE", str(numbers["archive-crlf"][1]), "+FLAGS.SILENT", "(\\Deleted)")
        assert typ == "OK", data
        typ, data = m.expunge()
        assert typ == "OK" and data == [b"2"], data
    finally:
        m.logout()

    _mbsync(mbsync, s)
    assert "dot-line" not in maildir_paths(s.maildir("INBOX"))
    assert maildir_paths(s.maildir("Archive")) == {}, "deleted locally, still on the server"
    assert maildir_paths(_mbsync_dir(s, "Archive")) == {}, "expunged on the server, still local"
    _assert_mbsync_in_sync(s, SYNCED)


def test_mbsync_new_local_folder_and_messages_appear_on_the_server(
    mbsync: str, seeded: Seeded
) -> None:
    s = seeded
    _mbsync(mbsync, s)
    new_messages = {
        "Projects": _message("project", "a folder made locally", "plans\n.\n"),
        "Projects.2024": _message("project-2024", "a subfolder made locally", "more plans"),
        "INBOX": _message("local-inbox", "written into the local INBOX", "hello\n"),
    }
    for folder, message in new_messages.items():
        target = _mbsync_dir(s, folder)
        for sub in ("cur", "new", "tmp"):
            (target / sub).mkdir(parents=True, exist_ok=True)
        (target / "cur" / f"1700000000.local{len(message)}.host:2,S").write_bytes(message)

    _mbsync(mbsync, s)
    names = s.folders_listed()
    assert names == EXPECTED_FOLDERS | {"Projects", "Projects.2024"}, names
    for folder, message in new_messages.items():
        stored = maildir_paths(s.maildir(folder))
        path = stored[message_name(message)]
        assert flags_of(path) == "S", path.name
        assert_same_bytes(
            f"uploaded to {folder}", strip_header(path.read_bytes(), "X-TUID"), crlf(message)
        )
    assert (s.maildir("Projects") / "maildirfolder").exists()
    _assert_mbsync_in_sync(s, (*SYNCED, "Projects", "Projects.2024"))


# --------------------------------------------------------------------------------------
# offlineimap3
# --------------------------------------------------------------------------------------


def test_offlineimap_imaps(offlineimap: str, seeded: Seeded) -> None:
    """One sync over IMAPS (certificate checked for ``localhost``), ``Junk`` filtered out:
    every other folder and message arrives, in LF, with its flags; the server unchanged."""
    s = seeded
    local = s.work / "offlineimap"
    metadata = s.work / "offlineimap-metadata"
    local.mkdir()
    rc = write_private(
        s.work / "offlineimaprc",
        "[general]\n"
        "accounts = alice\n"
        f"metadata = {metadata}\n"
        "maxsyncaccounts = 1\n"
        "\n"
        "[Account alice]\n"
        "localrepository = local\n"
        "remoterepository = remote\n"
        "\n"
        "[Repository local]\n"
        "type = Maildir\n"
        f"localfolders = {local}\n"
        "\n"
        "[Repository remote]\n"
        "type = IMAP\n"
        f"remotehost = {TLS_HOST}\n"
        f"remoteport = {s.imaps}\n"
        f"remoteuser = {USER}\n"
        f"remotepass = {PASSWORD}\n"
        "ssl = yes\n"
        f"sslcacertfile = {s.cert}\n"
        f"timeout = {CLIENT_TIMEOUT}\n"
        "folderfilter = lambda folder: folder != 'Junk'\n",
    )
    result = run(
        [offlineimap, "-c", str(rc), "-o", "-u", "basic"],
        env=client_env(s.work, PYTHONDONTWRITEBYTECODE="1"),
    )
    trace = (result.stdout + result.stderr).decode(errors="replace")
    assert "ERROR" not in trace, trace[-4000:]
    s.check_log("offlineimap")
    synced = [f for f in SYNCED if f != "Junk"]
    dirs = sorted(p.name for p in local.iterdir())
    assert dirs == sorted(encode_mutf7(f) for f in synced), dirs
    for folder in synced:
        got = maildir_state(local / encode_mutf7(folder))
        server = s.state(folder)
        assert sorted(got) == sorted(server), folder
        for name, (flags, data) in server.items():
            assert got[name][0] == flags, (folder, name, got[name][0], flags)
            assert_same_bytes(f"offlineimap {folder}: {name}", got[name][1], lf(data))
    s.assert_untouched()


# --------------------------------------------------------------------------------------
# getmail6
# --------------------------------------------------------------------------------------


def _getmail(
    getmail: str, s: Seeded, retriever: str, mailboxes: str, *, delete: bool, read_all: bool
) -> tuple[Path, str]:
    """One getmail run (as nobody when we are root) into the Maildir ``work/getmail``."""
    dest = s.work / "getmail"
    state = s.work / "getmail-state"  # oldmail files: written by getmail
    if not dest.exists():
        for sub in ("cur", "new", "tmp"):
            (dest / sub).mkdir(parents=True)
        state.mkdir()
        chown_to_mail_user(dest)
        chown_to_mail_user(state)
    rcdir = s.work / "getmail-rc"  # root's, not writable by nobody
    rcdir.mkdir(exist_ok=True)
    ssl_ = "SSL" in retriever
    tls = f"ca_certs = {s.cert}\nssl_cert_hostname = {TLS_HOST}\n" if ssl_ else ""
    rc = write_private(
        rcdir / "getmailrc",
        "[retriever]\n"
        f"type = {retriever}\n"
        f"server = {HOST}\n"
        f"port = {s.imaps if ssl_ else s.imap}\n"
        f"username = {USER}\n"
        f"password = {PASSWORD}\n"
        f"mailboxes = {mailboxes}\n"
        f"timeout = {CLIENT_TIMEOUT}\n"
        f"{tls}"
        "\n[destination]\n"
        "type = Maildir\n"
        f"path = {dest}/\n"
        "\n[options]\n"
        f"read_all = {read_all}\n"
        f"delete = {delete}\n"
        "delivered_to = false\n"
        "received = false\n"
        "message_log_syslog = false\n"
        "verbose = 2\n",
        mode=0o644,  # nobody reads it (from a directory it cannot write)
    )
    result = run(
        as_mail_user([getmail, f"--rcfile={rc}", f"--getmaildir={state}"]),
        env=client_env(state),
    )
    s.check_log(f"getmail {retriever}")
    return dest, (result.stdout + result.stderr).decode(errors="replace")


def _getmail_delivered(dest: Path) -> dict[str, tuple[str, bytes]]:
    """{seed name: (mailbox it came from, message)} less what getmail adds: a first line
    ``Return-Path: <unknown>`` (no envelope sender) and ``X-getmail-retrieved-from-mailbox``."""
    owner = pwd.getpwnam(MAIL_USER).pw_uid if running_as_root() else os.geteuid()
    out: dict[str, tuple[str, bytes]] = {}
    for path in sorted(p for sub in ("new", "cur") for p in (dest / sub).iterdir()):
        assert path.stat().st_uid == owner, f"{path} not delivered as {MAIL_USER}"
        first, _, rest = path.read_bytes().partition(b"\n")
        assert first == b"Return-Path: <unknown>", first
        match = re.search(rb"^X-getmail-retrieved-from-mailbox: (.*)\n", rest, re.M)
        assert match, rest[:500]
        name = message_name(rest)
        assert name not in out, f"{name} delivered twice"
        mailbox = str(make_header(decode_header(match.group(1).decode())))  # RFC 2047
        out[name] = (mailbox, strip_header(rest, "X-getmail-retrieved-from-mailbox"))
    return out


def test_getmail_imap_keep_then_nothing_new(getmail: str, seeded: Seeded) -> None:
    s = seeded
    dest, trace = _getmail(
        getmail, s, "SimpleIMAPRetriever", '("INBOX",)', delete=False, read_all=False
    )
    got = _getmail_delivered(dest)
    assert {mailbox for mailbox, _ in got.values()} == {"INBOX"}, trace
    _assert_lf_copies("getmail imap", {n: m for n, (_, m) in got.items()}, s.seeds())
    s.assert_untouched()  # BODY.PEEK: nothing deleted, nothing became \Seen

    _, trace = _getmail(
        getmail, s, "SimpleIMAPRetriever", '("INBOX",)', delete=False, read_all=False
    )
    assert len(_getmail_delivered(dest)) == len(s.seeds()), "getmail fetched messages again"
    n = len(s.seeds())
    assert f"0 messages (0 bytes) retrieved, {n} skipped" in trace, trace[-2000:]
    s.assert_untouched()


def test_getmail_imaps_several_mailboxes_delete(getmail: str, seeded: Seeded) -> None:
    s = seeded
    folders = ("INBOX", "Archive", "Entwürfe")
    mailboxes = "(" + ", ".join(f'"{f}"' for f in folders) + ",)"  # getmail encodes them
    dest, trace = _getmail(
        getmail, s, "SimpleIMAPSSLRetriever", mailboxes, delete=True, read_all=True
    )
    got = _getmail_delivered(dest)
    for folder in folders:
        from_here = {n: m for n, (box, m) in got.items() if box == folder}
        _assert_lf_copies(f"getmail imaps {folder}", from_here, s.seeds(folder))
        assert maildir_paths(s.maildir(folder)) == {}, f"{folder}: left on the server"
    assert len(got) == sum(len(s.seeds(f)) for f in folders), trace[-3000:]
    s.assert_untouched(["Lists.python", "Junk"])


# --------------------------------------------------------------------------------------
# s-nail
# --------------------------------------------------------------------------------------


def _snail(snail: str, s: Seeded, url: str, commands: str, *options: str) -> tuple[str, str]:
    """Run s-nail in batch mode on the IMAP folder `url` with `commands` on stdin;
    its output and its protocol trace (``-vv``)."""
    home = s.work / "s-nail"
    home.mkdir(exist_ok=True)
    argv = [
        snail,
        "-vv",
        "-n",  # no system-wide mail.rc
        "-#",  # batch mode
        "-S",
        "v15-compat",
        "-S",
        f"password={PASSWORD}",
        "-S",
        "imap-auth=login",
        "-S",
        f"socket-connect-timeout={CLIENT_TIMEOUT}",
        "-S",
        "ttycharset=utf-8",
        *options,
        "-f",
        url,
    ]
    try:
        result = subprocess.run(
            argv,
            input=commands.encode(),
            capture_output=True,
            timeout=40,
            env=client_env(home, LC_ALL="C.UTF-8", MAILRC="/dev/null", MBOX=str(home / "mbox")),
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"s-nail did not finish: {argv}\n{exc.stderr!r}", pytrace=False)
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    assert result.returncode == 0, (
        f"s-nail exited {result.returncode}\n{out[-3000:]}\n{err[-3000:]}"
    )
    s.check_log("s-nail")
    return out, err


def _printed(output: str) -> dict[str, str]:
    """s-nail's ``print`` output split per message, by seed name (from Message-ID)."""
    out: dict[str, str] = {}
    for part in re.split(r"^\[-- Message +\d+ -- .*\n", output, flags=re.M)[1:]:
        match = re.search(r"^Message-ID: <([^@>]+)@seed\.test>", part, re.M | re.I)
        assert match, part[:500]
        out[match.group(1)] = part
    return out


def _body_text(seed: Seed) -> str:
    """The body of a non-MIME (or text/plain) seed as s-nail shows it."""
    body = re.split(rb"\r?\n\r?\n", seed.data, maxsplit=1)[1]
    return lf(body).decode().rstrip("\n")


def test_snail_prints_messages_read_only(snail: str, seeded: Seeded) -> None:
    s = seeded
    url = f"imap://{USER.replace('@', '%40')}@{HOST}:{s.imap}/INBOX"
    out, trace = _snail(snail, s, url, "print *\nexit\n", "-R")
    assert re.search(r">>> \S+ EXAMINE ", trace), trace[-3000:]
    assert not re.search(r">>> \S+ (UID )?STORE ", trace), trace[-3000:]
    printed = _printed(out)
    assert sorted(printed) == sorted(seed.name for seed in s.seeds()), out[-3000:]
    for seed in s.seeds():
        if seed.name == "multipart":
            continue
        assert _body_text(seed) in printed[seed.name], (seed.name, printed[seed.name][-2000:])
    assert "Subject: Grüße aus Köln — 8-bit header, 日本語" in printed["utf8-header"]
    multipart = printed["multipart"]
    assert "The attachment is 6000 random bytes.\n.\n" in multipart, multipart
    assert 'filename="random.bin"' in multipart, multipart
    s.assert_untouched()


def test_snail_starttls_print_marks_seen(snail: str, seeded: Seeded) -> None:
    s = seeded
    seq = s.numbers("Archive")["archive-lf"][0]
    url = f"imap://{USER.replace('@', '%40')}@{TLS_HOST}:{s.imap}/Archive"
    out, trace = _snail(
        snail,
        s,
        url,
        f"print {seq}\nquit\n",
        "-S",
        "imap-use-starttls",
        "-S",
        f"tls-ca-file={s.cert}",
        "-S",
        "tls-ca-no-defaults",
    )
    assert re.search(r">>> \S+ STARTTLS", trace) and "TLS certificate ok" in trace, trace[-3000:]
    assert trace.index("STARTTLS") < trace.index(" LOGIN "), trace[-3000:]
    printed = _printed(out)
    assert list(printed) == ["archive-lf"], out
    assert "old mail\n.\nend" in printed["archive-lf"]
    after = maildir_paths(s.maildir("Archive"))
    assert flags_of(after["archive-lf"]) == "S", after["archive-lf"].name
    assert flags_of(after["archive-crlf"]) == "RS", after["archive-crlf"].name
