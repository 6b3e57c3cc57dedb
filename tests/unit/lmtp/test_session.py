"""LMTP sessions as transcripts: octets in, replies out, with a real store and user database
(the thread pool's work done in line by `run_blocking`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from mailstore.config import load_config
from mailstore.store import MailStore
from mra.context import Connection, Services
from mra.lmtp.session import LmtpSession
from mra.lmtp.transaction import LmtpService
from mra.session import Call, Close, Output, Send, run_blocking

MAIL_UID = 65534


class Client:
    def __init__(self, base: Path, extra: str = "", euid: int = MAIL_UID) -> None:
        self.base = base
        (base / "mail").mkdir()
        (base / "passwd").write_text(
            "alice@example.test:{PLAIN}x::::::\n"
            "bob@example.test:{PLAIN}x::::::\n"
            "carol@example.test:{PLAIN}x::::::userdb_quota_rule=*:storage=1K\n"
        )
        (base / "aliases").write_text("team: alice@example.test, bob@example.test\n")
        (base / "local-host-names").write_text("example.test\n")
        (base / "mra.toml").write_text(
            f'[auth]\npasswd_file = "{base}/passwd"\n'
            f'[mail]\nlocation = "{base}/mail/%d/%n"\nmax_message_size = 2000\n'
            f'[maps]\naliases = "{base}/aliases"\naccess = "{base}/access"\n'
            f'virtusertable = "{base}/virtusertable"\n'
            f'local_domains = "{base}/local-host-names"\n' + extra
        )
        self.config = load_config(str(base / "mra.toml"))
        self.services = Services(self.config, None)
        self.services.shared("lmtp", lambda: LmtpService(self.config, euid=euid))
        self.session = LmtpSession(Connection("lmtp", "unix", unix=True), self.services)
        self.closed = False
        self.greeting = self._text(self.session.greeting())

    def _text(self, outputs: list[Output]) -> str:
        out = []
        for o in run_blocking(outputs):
            if isinstance(o, Send):
                out.append(o.data.decode())
            elif isinstance(o, Close):
                self.closed = True
        return "".join(out)

    def send(self, data: bytes | str) -> str:
        """Feed `data`; then, as the adapter does once a Call is answered, let the session go
        on with what it holds until it has nothing more to say."""
        raw = data.encode() if isinstance(data, str) else data
        text = self._text(self.session.data_received(raw))
        while not self.closed and (more := self._text(self.session.data_received(b""))):
            text += more
        return text

    def codes(self, data: bytes | str) -> list[str]:
        """The reply lines' code and status, `250 2.1.5` (a multi-line reply: its last)."""
        text = self.send(data)
        return [m.group(1) for m in re.finditer(r"^(\d{3}(?: \d\.\d\.\d+)?)[ \r]", text, re.M)]

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        local, _, domain = user.partition("@")
        root = self.base / "mail" / domain / local
        if not root.exists():
            return []
        box = MailStore(str(root), create=False).mailbox(folder)
        box.sync()
        return [box.read_message(uid) for uid in box.uids()]


@pytest.fixture
def client(tmp_path: Path) -> Client:
    c = Client(tmp_path)
    c.send("LHLO client.test\r\n")
    return c


def test_greeting_and_lhlo(tmp_path: Path) -> None:
    c = Client(tmp_path)
    assert c.greeting.startswith("220 ") and "LMTP" in c.greeting
    reply = c.send("LHLO client.test\r\n")
    lines = reply.split("\r\n")[:-1]
    assert [line[:4] for line in lines] == ["250-"] * (len(lines) - 1) + ["250 "]
    assert [line[4:] for line in lines[1:]] == [
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "SIZE 2000",
        "SMTPUTF8",
    ]


def test_one_reply_per_recipient_in_order(client: Client) -> None:
    replies = client.codes(
        "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
        "RCPT TO:<nobody-here@example.test>\r\nRCPT TO:<team@example.test>\r\nDATA\r\n"
    )
    assert replies == ["250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354"]
    assert client.codes("Subject: hi\r\n\r\nhello\r\n.\r\n") == ["250 2.0.0", "250 2.0.0"]
    # alice is reached twice (herself and through team): one copy.
    [alice] = client.messages("alice@example.test")
    [bob] = client.messages("bob@example.test")
    assert alice.startswith(b"Return-Path: <s@remote.test>\r\nDelivered-To: alice@example.test\r\n")
    assert b"\r\nReceived: from client.test (unix socket)\r\n\tby " in alice
    assert b"\tfor <alice@example.test>; " in alice
    assert alice.endswith(b"Subject: hi\r\n\r\nhello\r\n")
    assert b"\tfor <team@example.test>; " in bob


def test_over_quota_fails_alone(client: Client) -> None:
    client.codes("MAIL FROM:<s@remote.test>\r\n")
    client.codes("RCPT TO:<alice@example.test>\r\nRCPT TO:<carol@example.test>\r\n")
    client.codes("RCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert client.codes("Subject: big\r\n\r\n" + "x" * 1500 + "\r\n.\r\n") == [
        "250 2.0.0",
        "452 4.2.2",
        "250 2.0.0",
    ]
    assert len(client.messages("alice@example.test")) == 1
    assert client.messages("carol@example.test") == []


def test_quota_bounce_makes_it_permanent(tmp_path: Path) -> None:
    c = Client(tmp_path, "[mda]\nquota_bounce = true\n")
    c.send("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n")
    assert c.codes("Subject: big\r\n\r\n" + "x" * 1500 + "\r\n.\r\n") == ["552 5.2.2"]


def test_sequence_errors(client: Client) -> None:
    fresh = client.base / "fresh"
    fresh.mkdir()
    assert Client(fresh).codes("MAIL FROM:<a@b>\r\n") == ["503 5.5.1"]  # before LHLO
    assert client.codes("RCPT TO:<alice@example.test>\r\n") == ["503 5.5.1"]
    assert client.codes("DATA\r\n") == ["503 5.5.1"]
    assert client.codes("MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n") == ["250 2.1.0", "503 5.5.1"]
    assert client.codes("DATA\r\n") == ["503 5.5.1"]  # no valid recipients
    assert client.codes("RSET\r\nRCPT TO:<alice@example.test>\r\n") == ["250 2.0.0", "503 5.5.1"]
    assert client.codes("HELO x\r\nEHLO x\r\nBDAT 10\r\nFOO\r\n") == [
        "500 5.5.1",
        "500 5.5.1",
        "502 5.5.1",
        "500 5.5.2",
    ]
    assert client.codes("NOOP\r\nVRFY alice\r\nHELP\r\n") == ["250 2.0.0", "252 2.5.0", "214 2.0.0"]
    assert client.codes("QUIT\r\n") == ["221 2.0.0"]
    assert client.closed


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL FROM:<a@b> SIZE=2001", "552 5.3.4"),
        ("MAIL FROM:<a@b> SIZE=2000 BODY=8BITMIME SMTPUTF8", "250 2.1.0"),
        ("MAIL FROM:<a@b> BODY=BINARYMIME", "555 5.5.4"),
        ("MAIL FROM:<a@b> RET=FULL", "555 5.5.4"),
        ("MAIL FROM:<a@b> SIZE=x", "501 5.5.4"),
        ("MAIL FROM:a@b", "501 5.5.4"),
        ("MAIL FROM:<a@b", "501 5.5.4"),
        ("MAIL FROM: <a@b>", "250 2.1.0"),
        ("MAIL FROM:<@relay.test:a@b>", "250 2.1.0"),
        ('MAIL FROM:<"a b>c"@d>', "250 2.1.0"),
        ("MAIL FROM:<a b@c>", "501 5.5.4"),
        ("MAIL FROM:<j\u00f6e@b>", "553 5.6.7"),
        ("MAIL FROM:<j\u00f6e@b> SMTPUTF8", "250 2.1.0"),
        ("MAIL FROM:<\u200bx@b>", "553 5.1.7"),
        ("MAIL FROM:<" + "a" * 300 + "@b>", "501 5.5.4"),
    ],
)
def test_mail_from_arguments(client: Client, command: str, reply: str) -> None:
    assert client.codes(command + "\r\n") == [reply]


def test_mail_from_that_is_not_utf8(client: Client) -> None:
    assert client.codes(b"MAIL FROM:<j\xf6e@b> SMTPUTF8\r\n") == ["553 5.1.7"]


def test_rcpt_arguments(client: Client) -> None:
    client.codes("MAIL FROM:<>\r\n")
    assert client.codes("RCPT TO:<alice@example.test> NOTIFY=NEVER\r\n") == ["555 5.5.4"]
    assert client.codes("RCPT TO:<>\r\n") == ["501 5.5.4"]
    assert client.codes("RCPT TO:<ali\u00e7e@example.test>\r\n") == ["553 5.6.7"]
    assert client.codes("RCPT TO:<Alice@Example.TEST>\r\n") == ["250 2.1.5"]
    assert client.codes("RCPT TO:<alice+shop@example.test>\r\n") == ["250 2.1.5"]


def test_detail_reaches_sieve(client: Client, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "passwd").write_text(
        f"dave@example.test:{{PLAIN}}x:::: {home}::\n".replace(" ", "")
    )
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "envelope", "subaddress", "mailbox"];\n'
        'if envelope :detail "to" "shop" { fileinto :create "Shop"; }\n'
    )
    client.codes("MAIL FROM:<s@remote.test>\r\nRCPT TO:<dave+shop@example.test>\r\nDATA\r\n")
    assert client.codes("Subject: order\r\n\r\nx\r\n.\r\n") == ["250 2.0.0"]
    assert len(client.messages("dave@example.test", "Shop")) == 1


def test_refuses_to_deliver_as_root(tmp_path: Path) -> None:
    c = Client(tmp_path, euid=0)
    c.send("LHLO x\r\n")
    assert c.codes("MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\n") == ["250 2.1.0", "451 4.3.5"]


def test_pipelined_transactions(client: Client) -> None:
    one = "MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
    assert client.codes(one) == ["250 2.1.0", "250 2.1.5", "354"]
    replies = client.codes("Subject: 1\r\n\r\n.\r\n" + one + "Subject: 2\r\n\r\nx\r\n.\r\nQUIT\r\n")
    assert replies == ["250 2.0.0", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"]
    assert len(client.messages("alice@example.test")) == 2


def test_empty_message_is_refused(client: Client) -> None:
    client.codes("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert client.codes(".\r\n") == ["554 5.6.0"]


def test_message_starting_with_from_keeps_it(client: Client) -> None:
    client.codes("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    assert client.codes("From me, hello\r\n\r\nbody\r\n.\r\n") == ["250 2.0.0"]
    [stored] = client.messages("alice@example.test")
    assert b"\r\nFrom me, hello\r\n\r\nbody\r\n" in stored


def test_access_map_sender_rules(tmp_path: Path) -> None:
    c = Client(tmp_path)
    (tmp_path / "access").write_text("From:spam.test REJECT\nFrom:quiet.test DISCARD\n")
    c.send("LHLO x\r\n")
    assert c.codes("MAIL FROM:<x@spam.test>\r\nRCPT TO:<alice@example.test>\r\n") == [
        "250 2.1.0",
        "550 5.7.1",
    ]
    c.codes("RSET\r\n")
    assert c.codes("MAIL FROM:<x@quiet.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n") == [
        "250 2.1.0",
        "250 2.1.5",
        "354",
    ]
    assert c.codes("Subject: x\r\n\r\n.\r\n") == ["250 2.0.0"]
    assert c.messages("alice@example.test") == []


def test_loop_is_refused(client: Client) -> None:
    client.codes("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    looped = "Received: by x\r\nDelivered-To: alice@example.test\r\nSubject: x\r\n\r\n.\r\n"
    assert client.codes("X-Top: 1\r\n" + looped) == ["554 5.4.6"]


def test_shutdown_waits_for_the_delivery_replies(client: Client) -> None:
    session = client.session
    client.codes("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    outputs = session.data_received(b"Subject: x\r\n\r\n.\r\n")
    assert session.delivering
    assert session.shutdown() == []  # the replies first
    text = "".join(o.data.decode() for o in run_blocking(outputs) if isinstance(o, Send))
    assert text.startswith("250 2.0.0 <alice@example.test> delivered\r\n421 4.3.2 ")


def test_programs_and_forwards_of_the_aliases_file(tmp_path: Path) -> None:
    """From the server's threads: no preexec_fn in the child (mda.interrupt is not set up)."""
    out = tmp_path / "program-output"
    sent = tmp_path / "sendmail-output"
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f'#!/bin/sh\n{{ echo "$@"; cat; }} > {sent}\n')
    sendmail.chmod(0o755)
    c = Client(tmp_path, f'[mda]\nsendmail = "{sendmail}"\n')
    (tmp_path / "aliases").write_text(
        f"pipe: \"|/bin/sh -c 'cat > {out}'\"\nfwd: someone@elsewhere.test\n"
    )
    (tmp_path / "aliases").chmod(0o644)
    c.send("LHLO x\r\n")
    c.codes("MAIL FROM:<s@remote.test>\r\nRCPT TO:<pipe@example.test>\r\n")
    c.codes("RCPT TO:<fwd@example.test>\r\nDATA\r\n")
    assert c.codes("Subject: piped\r\n\r\nbody\r\n.\r\n") == ["250 2.0.0", "250 2.0.0"]
    assert b"Subject: piped" in out.read_bytes()
    assert sent.read_bytes().startswith(b"-i -f s@remote.test -- someone@elsewhere.test\n")


def test_remembered_recipients_follow_the_files(tmp_path: Path) -> None:
    """A recipient resolved before is answered without a thread, until a file changes."""
    c = Client(tmp_path)
    c.send("LHLO x\r\n")
    one = "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
    assert c.codes(one + "RSET\r\n") == ["250 2.1.0", "250 2.1.5", "250 2.0.0"]
    outputs = c.session.data_received(one.encode())
    assert not any(isinstance(o, Call) for o in outputs)  # remembered: no Call
    c.codes("RSET\r\n")
    passwd = tmp_path / "passwd"
    passwd.write_text(passwd.read_text().replace("alice@", "alicia@"))
    assert c.codes(one) == ["250 2.1.0", "550 5.1.1"]


def test_remembered_recipients_still_meet_the_senders_access_rules(tmp_path: Path) -> None:
    c = Client(tmp_path)
    (tmp_path / "access").write_text("From:spam.test REJECT\n")
    c.send("LHLO x\r\n")
    assert c.codes("MAIL FROM:<ok@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRSET\r\n") == [
        "250 2.1.0",
        "250 2.1.5",
        "250 2.0.0",
    ]
    assert c.codes("MAIL FROM:<x@spam.test>\r\nRCPT TO:<alice@example.test>\r\n") == [
        "250 2.1.0",
        "550 5.7.1",
    ]


ONE = "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"


def _deliver(client: Client, text: str) -> list[str]:
    assert client.codes(ONE) == ["250 2.1.0", "250 2.1.5", "354"]
    return client.codes(f"Subject: {text}\r\n\r\n{text}\r\n.\r\n")


def test_a_mailbox_removed_between_deliveries_is_made_again(client: Client) -> None:
    """The server keeps the mail stores it delivered to (mda.delivery.open_store): one whose
    Maildir was removed since is made again, not written into the void or refused."""
    assert _deliver(client, "one") == ["250 2.0.0"]
    shutil.rmtree(client.base / "mail" / "example.test" / "alice")
    assert _deliver(client, "two") == ["250 2.0.0"]
    [only] = client.messages("alice@example.test")
    assert only.endswith(b"\r\n\r\ntwo\r\n")


def test_a_mailbox_replaced_between_deliveries_gets_the_next_copy(client: Client) -> None:
    root = client.base / "mail" / "example.test" / "alice"
    assert _deliver(client, "one") == ["250 2.0.0"]
    root.rename(root.with_name("alice.old"))
    MailStore(str(root)).mailbox("INBOX").append(b"Subject: fresh\r\n\r\nfresh\r\n")
    assert _deliver(client, "two") == ["250 2.0.0"]
    box = MailStore(str(root), create=False).mailbox("INBOX")
    box.sync()
    assert box.uids() == [1, 2]
    assert box.read_message(2).endswith(b"\r\n\r\ntwo\r\n")
    assert len(client.messages("alice.old@example.test")) == 1


def test_uids_stay_right_when_another_writer_appends_between_deliveries(client: Client) -> None:
    """The server remembers where its last append left a folder's uidlist: a UID given by
    another writer since (an IMAP APPEND, Dovecot) is seen, never given twice."""
    root = client.base / "mail" / "example.test" / "alice"
    assert _deliver(client, "one") == ["250 2.0.0"]
    other = MailStore(str(root)).mailbox("INBOX")
    other.sync()
    assert other.append(b"Subject: other\r\n\r\nother\r\n") == 2
    assert _deliver(client, "three") == ["250 2.0.0"]
    assert other.append(b"Subject: other\r\n\r\nfour\r\n") == 4
    assert _deliver(client, "five") == ["250 2.0.0"]
    box = MailStore(str(root), create=False).mailbox("INBOX")
    box.sync()
    assert box.uids() == [1, 2, 3, 4, 5]
    bodies = [box.read_message(uid).rsplit(b"\r\n\r\n", 1)[1] for uid in box.uids()]
    assert bodies == [b"one\r\n", b"other\r\n", b"three\r\n", b"four\r\n", b"five\r\n"]
    text = (root / "dovecot-uidlist").read_text()
    assert len(text.splitlines()) == 6  # the header and one line per message


def test_a_maildirsize_made_between_deliveries_counts_the_next_copy(client: Client) -> None:
    """A quota file that appears after the server first delivered to the mailbox (Dovecot's,
    an admin's) is kept up to date from the next delivery on, as by a store made anew."""
    root = client.base / "mail" / "example.test" / "alice"
    assert _deliver(client, "one") == ["250 2.0.0"]
    size = root / "maildirsize"
    size.write_text("1000000S\n0 0\n")
    assert _deliver(client, "two") == ["250 2.0.0"]
    lines = size.read_text().splitlines()
    assert len(lines) == 3 and lines[2].endswith(" 1")  # the copy's bytes, one message


def test_a_maildir_missing_its_tmp_is_made_whole_by_the_retry(client: Client) -> None:
    """A Maildir whose tmp/ was removed after the server first delivered to it: that copy is
    deferred (4.x), and the MTA's retry finds the Maildir made whole again, as `mda` would."""
    root = client.base / "mail" / "example.test" / "alice"
    assert _deliver(client, "one") == ["250 2.0.0"]
    shutil.rmtree(root / "tmp")
    [deferred] = _deliver(client, "two")
    assert deferred.startswith("4")
    assert _deliver(client, "two") == ["250 2.0.0"]
    assert len(client.messages("alice@example.test")) == 2


def test_pipelined_replies_go_out_in_one_write(client: Client) -> None:
    """A pipelined MAIL, RCPT, DATA is answered with one Send (one write to the transport)."""
    assert _deliver(client, "one") == ["250 2.0.0"]  # alice is remembered from now on
    outputs = client.session.data_received(ONE.encode())
    assert [type(o) for o in outputs] == [Send]
    assert isinstance(outputs[0], Send)
    assert outputs[0].data.count(b"\r\n") == 3
    client.codes("Subject: x\r\n\r\nx\r\n.\r\n")
