"""End to end: mail over SMTP into a real sendmail 8.17, delivered by our `mda` into Maildirs.

One private sendmail serves the module (tests/interop/sendmail.py), built from the README's
.mc: `FEATURE(local_procmail)` running `mda -Y -f $g -a $h -d $u`, `FEATURE(virtusertable)`,
`FEATURE(access_db)` with `blocklist_recipients`, an aliases file. The recipients are mda's
virtual users (its passwd-file, Maildirs below vmail/ owned by `nobody`, `[mda] mail_uid`),
so sendmail's local mailer is told not to look them up in /etc/passwd (`-w`).

What is checked is what a sendmail site expects: the tutorial's aliases, virtusertable entries
(`@domain` catch-all, `%1`, `+detail`, `error:`) and access rules (REJECT, DISCARD, ERROR:550)
put each message in the right Maildir, once, or refuse it with the right reply; and each exit
code of mda turns into what sendmail should make of it (clients-and-mtas.md: it retries 75,
bounces the rest): a DSN with the status back to the sender, or the message kept in the queue.

Without the private sendmail (or root, m4, apt) the module is skipped on a developer's machine
and FAILS under CI (`CI` set). `SENDMAIL_KEEP=1` keeps the tree for inspection.
"""

from __future__ import annotations

import email
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.policy import compat32
from pathlib import Path

import pytest

from tests.interop.sendmail import SendmailInstance, ensure_sendmail, instance_dir

pytestmark = [pytest.mark.interop, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MAIL_USER = "nobody"
USERS = ("alice", "bob", "carol", "dave", "sender")
SENDER = "sender@example.test"
MAX_MESSAGE = 20_000  # mda's [mail] max_message_size: a bigger message is refused (69)
TIMEOUT = 60.0

ALIASES = """\
postmaster: sender
MAILER-DAEMON: postmaster
info: alice
team: alice, bob
"""
VIRTUSERTABLE = """\
sales@example.test       bob
carol+shop@example.test  bob
alice+*@example.test     alice
old@example.test         error:5.1.1:550 This address is no longer in use
@example.org             %1%3@example.test
@catchall.test           carol
"""
ACCESS = """\
From:spammer@bad.example  REJECT
From:discard.example      DISCARD
To:closed@example.test    ERROR:5.7.1:550 This list is closed
"""
DOMAINS = ("example.test", "example.org", "catchall.test")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def mda_entry() -> str:
    entry = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "mda"
    for candidate in (entry, REPO / ".venv" / "bin" / "mda"):
        if candidate.exists():
            return str(candidate)
    pytest.fail("the mda entry point is missing: run `make .venv/.installed`")


@dataclass
class Site:
    sendmail: SendmailInstance
    base: Path
    vmail: Path
    swaks: str

    def maildir(self, user: str) -> Path:
        return self.vmail / user

    def messages(self, user: str) -> list[Message]:
        found = []
        for sub in ("new", "cur"):
            directory = self.maildir(user) / sub
            if directory.is_dir():
                for path in sorted(directory.iterdir()):
                    found.append(email.message_from_bytes(path.read_bytes(), policy=compat32))
        return found

    def with_subject(self, user: str, subject: str) -> list[Message]:
        return [m for m in self.messages(user) if m["Subject"] == subject]

    def wait_for(self, user: str, subject: str) -> Message:
        self.sendmail.wait_until(
            lambda: bool(self.with_subject(user, subject)),
            f"{subject!r} in {user}'s Maildir",
            lambda: f"daemon output: {self.sendmail.output()}",
        )
        return self.with_subject(user, subject)[0]

    def swaks_run(self, *args: str) -> str:
        proc = subprocess.run(
            [self.swaks, "--server", "127.0.0.1", "--port", str(self.sendmail.port), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        return proc.stdout + proc.stderr

    def send_raw(self, to: str, data: bytes, mail_options: tuple[str, ...] = ()) -> None:
        """Submit `data` as it is (smtplib: swaks has no DSN options)."""
        with smtplib.SMTP("127.0.0.1", self.sendmail.port, "client.test", timeout=TIMEOUT) as smtp:
            refused = smtp.sendmail(SENDER, [to], data, mail_options=list(mail_options))
        assert refused == {}

    def send(
        self, to: str, subject: str, *, sender: str = SENDER, extra: tuple[str, ...] = ()
    ) -> str:
        """Submit a message; swaks' transcript."""
        return self.swaks_run(
            "--ehlo",
            "client.test",
            "--from",
            sender,
            "--to",
            to,
            "--header",
            f"Subject: {subject}",
            *extra,
        )


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    if os.geteuid() != 0:
        _missing("the private sendmail runs as root (its daemon, unshare, mda's uid switch)")
    swaks = shutil.which("swaks")
    if swaks is None:
        _missing("swaks is not installed: install the Debian package swaks")
    assert swaks is not None
    problem = ensure_sendmail()
    if problem:
        _missing(f"the private sendmail cannot run: {problem} (see .ci/run)")
    base = instance_dir("sendmail-mda-")
    nobody = pwd.getpwnam(MAIL_USER)
    vmail = base / "vmail"
    vmail.mkdir(mode=0o755)
    os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
    # dave's Maildir belongs to root: mda, writing as nobody, fails for now (75).
    for sub in ("", "cur", "new", "tmp"):
        (vmail / "dave" / sub).mkdir(mode=0o700, exist_ok=True)
    conf = base / "mda"
    conf.mkdir(mode=0o755)
    for name in ("aliases", "virtusertable", "access"):
        write(conf / name, "")  # sendmail applied its own maps; -d does not alias again
    write(conf / "local-host-names", "example.test\n")
    write(conf / "passwd", "".join(f"{u}:{{PLAIN}}x::::::\n" for u in USERS))
    config = write(
        conf / "mra.toml",
        '[auth]\npasswd_file = "passwd"\n'
        f'[mail]\nlocation = "{vmail}/%n"\nmax_message_size = {MAX_MESSAGE}\n'
        '[maps]\naliases = "aliases"\nvirtusertable = "virtusertable"\naccess = "access"\n'
        'local_domains = "local-host-names"\n'
        '[mda]\nmail_uid = "nobody"\n',
    )
    sendmail = SendmailInstance(
        base / "sendmail",
        mda_path=mda_entry(),
        mda_argv=f"mda --config {config} -Y -f $g -a $h -d $u",
        local_domains=list(DOMAINS),
        aliases=ALIASES,
        virtusertable=VIRTUSERTABLE,
        access=ACCESS,
        resolvable=(*DOMAINS, "bad.example", "discard.example"),
    )
    try:
        with sendmail:
            yield Site(sendmail, base, vmail, swaks)
    finally:
        if not os.environ.get("SENDMAIL_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


ACCEPTED = re.compile(r"^<-  250 2\.0\.0 (\S+) Message accepted for delivery$", re.MULTILINE)


def subject() -> str:
    return f"test {uuid.uuid4().hex[:12]}"


def reply_to(transcript: str, command: str) -> str:
    """The server's (last) reply line after the client's `command` line."""
    lines = transcript.splitlines()
    for i, line in enumerate(lines):
        if line.startswith((" -> ", " ~> ")) and line[4:].upper().startswith(command):
            for answer in lines[i + 1 :]:
                if re.match(r"^<[-~*]+ +\d{3} ", answer):
                    return answer.split(None, 1)[1]
    raise AssertionError(f"no reply to {command} in:\n{transcript}")


@pytest.mark.parametrize(
    ("rcpt", "mailbox"),
    [
        ("alice@example.test", "alice"),
        ("info@example.test", "alice"),  # aliases
        ("sales@example.test", "bob"),  # virtusertable, a local name
        ("carol@example.org", "carol"),  # @domain with %1
        ("anyone@catchall.test", "carol"),  # @domain catch-all
        ("carol+shop@example.test", "bob"),  # user+detail, exact
        ("alice+lists@example.test", "alice"),  # user+*
        ("bob+news@example.org", "bob"),  # @domain with %1%3: the +detail carried over
    ],
)
def test_the_tutorials_maps_put_mail_in_the_right_maildir(
    site: Site, rcpt: str, mailbox: str
) -> None:
    title = subject()
    transcript = site.send(rcpt, title)
    assert ACCEPTED.search(transcript), transcript
    message = site.wait_for(mailbox, title)
    # sendmail's P flag wrote Return-Path; mda added one Delivered-To for the mailbox.
    assert message.get_all("Return-Path") == [f"<{SENDER}>"]
    assert len(message.get_all("Delivered-To") or []) == 1
    for other in USERS:
        if other != mailbox:
            assert site.with_subject(other, title) == [], other


def test_an_alias_to_two_users_gives_each_one_copy(site: Site) -> None:
    title = subject()
    site.send("team@example.test,alice@example.test", title)
    site.wait_for("alice", title)
    site.wait_for("bob", title)
    assert len(site.with_subject("alice", title)) == 1
    assert len(site.with_subject("bob", title)) == 1


def test_access_reject_error_and_discard(site: Site) -> None:
    rejected = site.send("alice@example.test", subject(), sender="spammer@bad.example")
    assert reply_to(rejected, "MAIL FROM").startswith("550 5.7.1"), rejected
    closed = site.send("closed@example.test", subject())
    assert reply_to(closed, "RCPT TO") == "550 5.7.1 <closed@example.test>... This list is closed"
    gone = site.send("old@example.test", subject())
    assert reply_to(gone, "RCPT TO").startswith("550 5.1.1"), gone
    assert "This address is no longer in use" in gone
    # DISCARD: accepted, then dropped. A message sent after it arrives; the discarded never.
    discarded = subject()
    transcript = site.send("alice@example.test", discarded, sender="someone@discard.example")
    assert ACCEPTED.search(transcript), transcript
    control = subject()
    site.send("alice@example.test", control)
    site.wait_for("alice", control)
    assert site.with_subject("alice", discarded) == []


def dsn_for(site: Site, title: str) -> tuple[Message, dict[str, str]]:
    """The DSN sendmail sent back to the sender about the message titled `title`, and the
    per-recipient fields of its message/delivery-status part (RFC 3464)."""
    found: list[Message] = []

    def arrived() -> bool:
        found[:] = [m for m in site.messages("sender") if title in m.as_string()]
        return bool(found)

    site.sendmail.wait_until(arrived, f"a DSN about {title!r}")
    report = found[0]
    assert report.get_content_type() == "multipart/report"
    status_part = next(
        p for p in report.walk() if p.get_content_type() == "message/delivery-status"
    )
    blocks = [b for b in status_part.get_payload() if isinstance(b, Message)]
    fields = {k.lower(): v for block in blocks[1:] for k, v in block.items()}
    return report, fields


def transcript_of(report: Message) -> str:
    """The human-readable part of a DSN: sendmail's transcript, with the mailer's output."""
    first = report.get_payload(0)
    assert isinstance(first, Message)
    return str(first.get_payload(decode=True), "utf-8", "replace")


def test_unknown_user_67_bounces_with_5_1_1(site: Site) -> None:
    title = subject()
    site.send("ghost@example.test", title)
    report, fields = dsn_for(site, title)
    # sendmail's own mapping of EX_NOUSER (conf.c, deliver.c giveresponse()).
    assert (fields["action"], fields["status"]) == ("failed", "5.1.1")
    assert fields["diagnostic-code"] == "X-Unix; 67"
    assert fields["final-recipient"] == "RFC822; ghost@example.test"
    # mda's own line is in the transcript sendmail quotes.
    assert "5.1.1" in transcript_of(report) and "ghost" in transcript_of(report)


def test_too_big_69_bounces(site: Site) -> None:
    title = subject()
    big = f"From: {SENDER}\r\nSubject: {title}\r\n\r\n" + ("x" * 70 + "\r\n") * 300
    # RET=HDRS: a DSN carrying the whole message would be too big for the sender's mailbox.
    site.send_raw("bob@example.test", big.encode(), ("RET=HDRS",))
    report, fields = dsn_for(site, title)
    # EX_UNAVAILABLE: sendmail says 5.5.0 whatever the mailer printed; mda's 5.3.4 line is in
    # the transcript for the sender to read.
    assert (fields["action"], fields["status"]) == ("failed", "5.5.0")
    assert fields["diagnostic-code"] == "X-Unix; 69"
    assert "5.3.4 message too big" in transcript_of(report)
    assert site.with_subject("bob", title) == []


def test_loop_78_bounces(site: Site) -> None:
    """A message that already went through carol's mailbox (mda wrote `Delivered-To: carol`
    there) comes back to her: a loop. sendmail adds no Delivered-To of its own."""
    title = subject()
    looped = (
        f"Received: from mx.example.test by mx.example.test\r\nFrom: {SENDER}\r\n"
        f"Subject: {title}\r\nDelivered-To: carol\r\n\r\nback again\r\n"
    )
    site.send_raw("carol@example.test", looped.encode())
    report, fields = dsn_for(site, title)
    # EX_CONFIG is final for sendmail too (it retries only 75, 71 and 74).
    assert (fields["action"], fields["status"]) == ("failed", "5.5.0")
    assert fields["diagnostic-code"] == "X-Unix; 78"
    assert "5.4.6" in transcript_of(report)
    assert site.with_subject("carol", title) == []


def test_attack_loop_through_a_full_address_delivered_to_bounces(site: Site) -> None:
    """The message went through carol's mailbox on another hop that writes the full address
    (our LMTP, Postfix, Dovecot: `Delivered-To: carol@example.test`), and a forward brings it
    back here, where sendmail's local mailer names her `carol` (`-d $u`). The loop check
    compares what the message says with the address the mail was for (carol@example.test),
    not only with the bare name: before, the copy was stored and the loop went round again.
    sendmail turns mda's 78 into a final DSN."""
    title = subject()
    looped = (
        f"Received: from mx.example.test by mx.example.test\r\nFrom: {SENDER}\r\n"
        f"Subject: {title}\r\nDelivered-To: Carol@Example.Test\r\n\r\nback again\r\n"
    )
    site.send_raw("carol@example.test", looped.encode())
    report, fields = dsn_for(site, title)
    assert (fields["action"], fields["status"]) == ("failed", "5.5.0")
    assert fields["diagnostic-code"] == "X-Unix; 78"
    assert "5.4.6" in transcript_of(report) and "loop" in transcript_of(report)
    assert site.with_subject("carol", title) == []


def test_delivered_to_for_another_user_is_no_loop(site: Site) -> None:
    """A Delivered-To for someone else (carol's copy forwarded to alice) is no loop."""
    title = subject()
    forwarded = (
        f"From: {SENDER}\r\nSubject: {title}\r\nDelivered-To: carol@example.test\r\n"
        "\r\nforwarded\r\n"
    )
    site.send_raw("alice@example.test", forwarded.encode())
    site.wait_for("alice", title)


def test_temporary_failure_75_stays_in_the_queue(site: Site) -> None:
    title = subject()
    transcript = site.send("dave@example.test", title)
    queue_id = ACCEPTED.search(transcript)
    assert queue_id, transcript

    def deferred() -> bool:
        return "Deferred" in site.sendmail.queue() and queue_id.group(1) in site.sendmail.queue()

    site.sendmail.wait_until(deferred, "the message to dave to be deferred")
    queue = site.sendmail.queue()
    assert "<dave@example.test>" in queue
    assert "Deferred: local mailer" in queue
    # No bounce: the sender hears nothing while sendmail retries.
    assert not [m for m in site.messages("sender") if title in m.as_string()]
