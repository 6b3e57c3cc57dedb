"""Real POP3 clients against a real `mra serve`: curl, fetchmail, getmail6 and mpop.

Alice's INBOX is seeded by dropping files into ``new/`` and ``cur/`` as another MDA (or a
mail reader) would, never through our store: dot lines, dot-dot lines, a MIME multipart
with a base64 attachment, raw UTF-8 in the header, CRLF line ends (with a CRLF split across
the server's read chunks), no final newline, and ~1 MiB whose chunk boundaries fall at
line-initial dots. Each test fetches them with one client, in plain POP3, POP3 over TLS
(POP3S) or STLS, and compares what the client delivered with the files byte for byte:
the server sends CRLF (and a CRLF before the terminating dot when a file has no final
newline); a client that writes LF is compared with the same bytes in LF.

Without a client its tests are skipped on a developer's machine and FAIL under CI (``CI``
set). Install them with::

    apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y curl fetchmail getmail6 mpop

``POP3_INTEROP_KEEP=1`` keeps the temporary trees (server, configs, deliveries).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.clients import (
    MAIL_USER,
    Seed,
    as_mail_user,
    assert_all_delivered,
    assert_clean_log,
    assert_same_bytes,
    by_name,
    chown_to_mail_user,
    client_env,
    crlf,
    maildir_files,
    message_name,
    require,
    run,
    running_as_root,
    seed_maildir,
    seed_messages,
    traversable_tempdir,
    write_private,
)
from tests.mra.conftest import PASSWORD, MraServer, certificate

pytestmark = [pytest.mark.interop]

USER = "alice@example.test"
HOST = "127.0.0.1"
CLIENT_TIMEOUT = 20  # the clients' own network timeouts, in seconds


@dataclass
class Seeded:
    server: MraServer
    seeds: list[Seed]
    maildir: Path  # alice's INBOX
    work: Path  # for client configs and deliveries (mode 0755: nobody may enter)
    cert: Path  # the server's self-signed certificate, readable by nobody

    @property
    def pop3(self) -> int:
        return self.server.ports["pop3"]

    @property
    def pop3s(self) -> int:
        return self.server.ports["pop3s"]

    def check_log(self, after: str) -> None:
        assert_clean_log(self.server.log(), after)

    def assert_untouched(self) -> None:
        """Every seeded message still on the server, its content unchanged."""
        present = {message_name(p.read_bytes()): p for p in maildir_files(self.maildir)}
        assert sorted(present) == sorted(s.name for s in self.seeds)
        for seed in self.seeds:
            assert_same_bytes(
                f"server file {seed.name}", present[seed.name].read_bytes(), seed.data
            )


@pytest.fixture
def seeded() -> Iterator[Seeded]:
    base = traversable_tempdir("mra-pop3-interop-")
    work = traversable_tempdir("pop3-clients-")
    server = MraServer(base, listeners=("pop3", "pop3s"))
    try:
        maildir = server.mail / "example.test" / "alice"
        seeds = seed_messages()
        seed_maildir(maildir, seeds)
        cert = work / "cert.pem"
        shutil.copyfile(certificate()[0], cert)
        cert.chmod(0o644)
        server.start()
        yield Seeded(server, seeds, maildir, work, cert)
    finally:
        server.stop()
        if not os.environ.get("POP3_INTEROP_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)


# Requested before `seeded` so that a missing client skips before a server starts.
@pytest.fixture
def fetchmail() -> str:
    return require("fetchmail", "fetchmail")


@pytest.fixture
def mpop() -> str:
    return require("mpop", "mpop")


# --------------------------------------------------------------------------------------
# curl
# --------------------------------------------------------------------------------------


def _curl(curl: str, s: Seeded, *args: str) -> tuple[bytes, bytes]:
    result = run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--user",
            f"{USER}:{PASSWORD}",
            *args,
        ],
        env=client_env(s.work),
    )
    return result.stdout, result.stderr


def _curl_fetch_all(curl: str, s: Seeded, url: str, *args: str) -> tuple[list[bytes], bytes]:
    """RETR every message in one curl run (`/[1-N]` globbing, one connection reused): the
    messages in message-number order, and curl's stderr."""
    out = s.work / "curl"
    out.mkdir()
    n = len(s.seeds)
    _, err = _curl(curl, s, *args, f"{url}/[1-{n}]", "--output", f"{out}/#1")
    files = {int(p.name): p.read_bytes() for p in out.iterdir()}
    assert sorted(files) == list(range(1, n + 1)), sorted(files)
    return [files[i] for i in range(1, n + 1)], err


def test_curl_list_uidl_and_retr(curl: str, seeded: Seeded) -> None:
    s = seeded
    url = f"pop3://{HOST}:{s.pop3}"
    sizes = {s.name: len(crlf(s.data)) for s in s.seeds}

    listing, _ = _curl(curl, s, f"{url}/")
    uidl, _ = _curl(curl, s, "--request", "UIDL", f"{url}/")
    again, _ = _curl(curl, s, "--request", "UIDL", f"{url}/")
    s.check_log("curl LIST/UIDL")
    s.assert_untouched()

    messages, _ = _curl_fetch_all(curl, s, url)
    assert_all_delivered("curl pop3://", by_name(messages), s.seeds, lf=False)
    s.check_log("curl RETR")

    # LIST: each message's CRLF size, in message-number order (as RETR numbered them).
    order = [message_name(m) for m in messages]
    sizes = {seed.name: len(crlf(seed.data)) for seed in s.seeds}
    expected = "".join(f"{i} {sizes[name]}\r\n" for i, name in enumerate(order, 1))
    assert listing.decode() == expected, "LIST"

    # UIDL: %08x%08x of UID and UIDVALIDITY, unique, ascending, stable across sessions.
    lines = uidl.decode().split("\r\n")
    assert lines[-1] == "" and len(lines) == len(order) + 1, uidl
    uids = [line.split(" ") for line in lines[:-1]]
    assert [int(n) for n, _ in uids] == list(range(1, len(order) + 1))
    assert all(re.fullmatch(r"[0-9a-f]{16}", u) for _, u in uids), uids
    assert len({u for _, u in uids}) == len(uids), "UIDLs are unique"
    assert len({u[8:] for _, u in uids}) == 1, "one UIDVALIDITY"
    assert [int(u[:8], 16) for _, u in uids] == sorted(int(u[:8], 16) for _, u in uids)
    assert again == uidl, "UIDLs are stable across sessions"

    # RETR marks \Seen at QUIT: every file now in cur/ with S, its content unchanged.
    s.assert_untouched()
    for path in maildir_files(s.maildir):
        assert path.parent.name == "cur", f"{path} not moved to cur/ after RETR"
        assert re.search(r":2,[A-Z]*S", path.name), f"{path.name} is not \\Seen after RETR"


def test_curl_pop3s(curl: str, seeded: Seeded) -> None:
    s = seeded
    messages, _ = _curl_fetch_all(curl, s, f"pop3s://{HOST}:{s.pop3s}", "--insecure")
    assert_all_delivered("curl pop3s://", by_name(messages), s.seeds, lf=False)
    s.check_log("curl pop3s://")


def test_curl_stls_ssl_reqd(curl: str, seeded: Seeded) -> None:
    """--ssl-reqd on the plain port: STLS first, the certificate checked, then login."""
    s = seeded
    messages, err = _curl_fetch_all(
        curl, s, f"pop3://{HOST}:{s.pop3}", "--ssl-reqd", "--cacert", str(s.cert), "--verbose"
    )
    trace = err.decode(errors="replace")
    assert "> STLS" in trace and "< +OK" in trace.split("> STLS", 1)[1], trace[-3000:]
    assert re.search(r"SSL connection using TLSv1\.[23]", trace), trace[-3000:]
    before_tls = trace.split("> STLS", 1)[0]
    assert "> AUTH" not in before_tls and "> USER" not in before_tls, before_tls
    assert_all_delivered("curl STLS", by_name(messages), s.seeds, lf=False)
    s.check_log("curl STLS")


# --------------------------------------------------------------------------------------
# fetchmail
# --------------------------------------------------------------------------------------

FETCHMAIL_NO_MAIL = 1  # fetchmail's exit status when there was nothing to fetch


def _fetchmail(
    fetchmail: str, s: Seeded, port: int, options: str, *, keep: bool, status: int = 0
) -> str:
    """One fetchmail run delivering each message through an MDA into ``work/fetchmail``,
    exiting with `status`; its verbose protocol trace."""
    out = s.work / "fetchmail"
    out.mkdir(exist_ok=True)
    deliver = s.work / "fetchmail-deliver.sh"
    deliver.write_text(f'#!/bin/sh\nexec cat > "$(mktemp {out}/msg.XXXXXX)"\n')
    deliver.chmod(0o755)
    rc = write_private(
        s.work / "fetchmailrc",
        "set no syslog\n"
        "set invisible\n"  # no Received: of its own
        f"poll {HOST} service {port} protocol pop3 uidl timeout {CLIENT_TIMEOUT}\n"
        f"  user '{USER}' password '{PASSWORD}' is 'localuser' here\n"
        f"  {options}\n"
        f"  {'keep' if keep else 'no keep'} no rewrite stripcr\n"
        f'  mda "{deliver}"\n',
    )
    env = client_env(s.work, FETCHMAILHOME=str(s.work))
    result = run(
        [
            fetchmail,
            "-f",
            str(rc),
            "-i",
            str(s.work / "fetchids"),
            "--nodetach",
            "--nosyslog",
            "-v",
        ],
        env=env,
        ok=(status,),
    )
    return (result.stdout + result.stderr).decode(errors="replace")


def _fetchmail_delivered(s: Seeded) -> dict[str, bytes]:
    return by_name(p.read_bytes() for p in sorted((s.work / "fetchmail").iterdir()))


def _tls_options(s: Seeded) -> str:
    return f"sslcertck sslcertfile '{s.cert}' sslcommonname 'localhost'"


def test_fetchmail_keep_then_nothing_new(fetchmail: str, seeded: Seeded) -> None:
    """`keep` + `uidl`: everything once, the server untouched, and a second run fetches
    nothing (the UIDLs are remembered and the server's are stable)."""
    s = seeded
    trace = _fetchmail(fetchmail, s, s.pop3, "sslproto ''", keep=True)  # plaintext, no STLS
    assert "POP3> STLS" not in trace
    assert_all_delivered("fetchmail keep", _fetchmail_delivered(s), s.seeds, lf=True, trace=trace)
    s.check_log("fetchmail keep")
    s.assert_untouched()

    trace = _fetchmail(fetchmail, s, s.pop3, "sslproto ''", keep=True, status=FETCHMAIL_NO_MAIL)
    assert len(list((s.work / "fetchmail").iterdir())) == len(s.seeds), trace
    assert "reading message" not in trace, trace
    s.check_log("fetchmail keep, second run")
    s.assert_untouched()


def test_fetchmail_no_keep_deletes(fetchmail: str, seeded: Seeded) -> None:
    s = seeded
    trace = _fetchmail(fetchmail, s, s.pop3, "sslproto ''", keep=False)
    assert trace.count("POP3> DELE ") == len(s.seeds), trace
    assert_all_delivered(
        "fetchmail no keep", _fetchmail_delivered(s), s.seeds, lf=True, trace=trace
    )
    assert maildir_files(s.maildir) == [], "messages left on the server after QUIT"
    s.check_log("fetchmail no keep")


def test_fetchmail_pop3s(fetchmail: str, seeded: Seeded) -> None:
    s = seeded
    trace = _fetchmail(fetchmail, s, s.pop3s, "ssl " + _tls_options(s), keep=True)
    assert re.search(r"SSL/TLS: using protocol TLSv1\.[23]", trace), trace[-3000:]
    assert_all_delivered("fetchmail ssl", _fetchmail_delivered(s), s.seeds, lf=True, trace=trace)
    s.check_log("fetchmail ssl")


def test_fetchmail_stls(fetchmail: str, seeded: Seeded) -> None:
    s = seeded
    trace = _fetchmail(fetchmail, s, s.pop3, "sslproto 'tls1.2+' " + _tls_options(s), keep=True)
    assert "POP3> STLS" in trace, trace[-3000:]
    assert re.search(r"SSL/TLS: using protocol TLSv1\.[23]", trace), trace[-3000:]
    assert trace.index("POP3> STLS") < trace.index("POP3> USER"), trace[-3000:]
    assert_all_delivered("fetchmail STLS", _fetchmail_delivered(s), s.seeds, lf=True, trace=trace)
    s.check_log("fetchmail STLS")


# --------------------------------------------------------------------------------------
# getmail6
# --------------------------------------------------------------------------------------


def _getmail(getmail: str, s: Seeded, retriever: str, *, delete: bool, read_all: bool) -> Path:
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
    port = s.pop3s if "SSL" in retriever else s.pop3
    tls = f"ca_certs = {s.cert}\nssl_cert_hostname = localhost\n" if "SSL" in retriever else ""
    rc = write_private(
        rcdir / "getmailrc",
        "[retriever]\n"
        f"type = {retriever}\n"
        f"server = {HOST}\n"
        f"port = {port}\n"
        f"username = {USER}\n"
        f"password = {PASSWORD}\n"
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
        "verbose = 1\n",
        mode=0o644,  # nobody reads it (from a directory it cannot write)
    )
    run(
        as_mail_user([getmail, f"--rcfile={rc}", f"--getmaildir={state}"]),
        env=client_env(state),
    )
    return dest


def _getmail_delivered(dest: Path) -> dict[str, bytes]:
    """The delivered messages less the one header getmail always adds (Return-Path:
    ``<unknown>``: POP3 has no envelope sender; Delivered-To and Received are off)."""
    owner = pwd.getpwnam(MAIL_USER).pw_uid if running_as_root() else os.geteuid()
    out: list[bytes] = []
    for path in maildir_files(dest):
        assert path.stat().st_uid == owner, f"{path} not delivered as {MAIL_USER}"
        data = path.read_bytes()
        first, sep, rest = data.partition(b"\n")
        assert first == b"Return-Path: <unknown>" and sep, data[:200]
        out.append(rest)
    return by_name(out)


def test_getmail_pop3_keep_then_nothing_new(getmail: str, seeded: Seeded) -> None:
    s = seeded
    dest = _getmail(getmail, s, "SimplePOP3Retriever", delete=False, read_all=False)
    assert_all_delivered("getmail pop3", _getmail_delivered(dest), s.seeds, lf=True)
    s.check_log("getmail SimplePOP3Retriever")
    s.assert_untouched()

    _getmail(getmail, s, "SimplePOP3Retriever", delete=False, read_all=False)
    assert len(maildir_files(dest)) == len(s.seeds), "getmail fetched messages again"
    s.check_log("getmail SimplePOP3Retriever, second run")


def test_getmail_pop3s_delete(getmail: str, seeded: Seeded) -> None:
    s = seeded
    dest = _getmail(getmail, s, "SimplePOP3SSLRetriever", delete=True, read_all=True)
    assert_all_delivered("getmail pop3s", _getmail_delivered(dest), s.seeds, lf=True)
    assert maildir_files(s.maildir) == [], "messages left on the server after QUIT"
    s.check_log("getmail SimplePOP3SSLRetriever")


# --------------------------------------------------------------------------------------
# mpop
# --------------------------------------------------------------------------------------


def _mpop(mpop: str, s: Seeded, tls: str, *args: str) -> str:
    """One mpop run into the Maildir ``work/mpop``; its debug trace (``--debug``)."""
    dest = s.work / "mpop"
    for sub in ("cur", "new", "tmp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    port = s.pop3s if "tls_starttls off" in tls else s.pop3
    rc = write_private(
        s.work / "mpoprc",
        "defaults\n"
        f"timeout {CLIENT_TIMEOUT}\n"
        "received_header off\n"
        f"uidls_file {s.work / 'mpop-uidls'}\n"
        f"delivery maildir {dest}\n"
        "account alice\n"
        f"host {HOST}\n"
        f"port {port}\n"
        f"user {USER}\n"
        f"password {PASSWORD}\n"
        f"{tls}\n",
    )
    result = run([mpop, "-C", str(rc), "--debug", *args, "alice"], env=client_env(s.work))
    return result.stdout.decode(errors="replace")


def _mpop_delivered(s: Seeded) -> dict[str, bytes]:
    return by_name(p.read_bytes() for p in maildir_files(s.work / "mpop"))


def test_mpop_plain_keep_then_nothing_new(mpop: str, seeded: Seeded) -> None:
    s = seeded
    trace = _mpop(mpop, s, "tls off\nauth user", "--keep")
    assert "--> STLS" not in trace and "--> USER " in trace
    assert_all_delivered("mpop plain", _mpop_delivered(s), s.seeds, lf=True, trace=trace)
    s.check_log("mpop plain")
    s.assert_untouched()

    trace = _mpop(mpop, s, "tls off\nauth user", "--keep")
    assert "--> RETR" not in trace, trace[-3000:]
    assert len(maildir_files(s.work / "mpop")) == len(s.seeds)
    s.check_log("mpop plain, second run")


def test_mpop_stls(mpop: str, seeded: Seeded) -> None:
    s = seeded
    trace = _mpop(
        mpop, s, f"tls on\ntls_starttls on\ntls_trust_file {s.cert}\nauth plain", "--keep"
    )
    head = trace.split("--> RETR", 1)[0]
    assert "--> STLS" in head and "TLS session parameters" in head, head[-3000:]
    assert head.index("--> STLS") < head.index("--> AUTH PLAIN"), head[-3000:]
    assert_all_delivered("mpop STLS", _mpop_delivered(s), s.seeds, lf=True, trace=trace)
    s.check_log("mpop STLS")
    s.assert_untouched()


def test_mpop_pop3s_delete(mpop: str, seeded: Seeded) -> None:
    s = seeded
    trace = _mpop(mpop, s, "tls on\ntls_starttls off\ntls_certcheck off\nauth login")
    head = trace.split("--> RETR", 1)[0]
    assert "TLS session parameters" in head and "--> AUTH LOGIN" in head, head[-3000:]
    assert_all_delivered("mpop pop3s", _mpop_delivered(s), s.seeds, lf=True, trace=trace)
    assert maildir_files(s.maildir) == [], "messages left on the server after QUIT"
    s.check_log("mpop pop3s")
