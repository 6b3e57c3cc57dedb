"""Vacation replies through a real Postfix: mail goes in over SMTP, Postfix delivers it with
`mda` (pipe(8), a virtual domain), alice's Sieve script answers, and the reply goes back out
through `[mda] sendmail`, which here submits it to the same Postfix over SMTP, so that it is
delivered by Postfix and `mda` into the sender's own Maildir: the reply really reaches the
sender. A second message within `:days` gets no reply, nor does a list message.

Uses the harness of test_postfix_mda.py (private instance, nothing leaves the machine). Without
Postfix or root the module is skipped on a developer's machine and FAILS under CI.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

import pytest

from tests.interop.postfix import (
    PostfixInstance,
    free_port,
    make_message,
    postfix_available,
    remove_tree,
    running_as_root,
    traversable_tempdir,
)
from tests.interop.test_postfix_mda import (
    DELIVERY_TIMEOUT,
    MAIL_USER,
    VIRTUAL_DOMAIN,
    _missing,
    make_maildir,
    resolve_mda,
    write_file,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ALICE = f"alice@{VIRTUAL_DOMAIN}"
BOB = f"bob@{VIRTUAL_DOMAIN}"
USERS = ("alice", "bob")
SCRIPT = (
    'require "vacation";\nvacation :days 7 :subject "Out of office" "I am away until Monday.";\n'
)
# `[mda] sendmail`: submits to the private Postfix over SMTP, as `sendmail -i -f <> -- RCPT`.
INJECT = """#!/usr/bin/python3 -I
import smtplib, sys
args, sender, rcpts, i = sys.argv[1:], "", [], 0
while i < len(args):
    if args[i] == "-f":
        sender, i = args[i + 1], i + 2
        continue
    if args[i] == "--":
        rcpts += args[i + 1:]
        break
    if not args[i].startswith("-"):
        rcpts.append(args[i])
    i += 1
with smtplib.SMTP("127.0.0.1", {port}, local_hostname="mda.test") as smtp:
    smtp.sendmail("" if sender == "<>" else sender, rcpts, sys.stdin.buffer.read())
"""


class System:
    def __init__(self, postfix: PostfixInstance, vmail: Path) -> None:
        self.postfix = postfix
        self.vmail = vmail

    def maildir(self, user: str) -> Path:
        return self.vmail / VIRTUAL_DOMAIN / user

    def messages(self, user: str) -> list[bytes]:
        root = self.maildir(user)
        return [p.read_bytes() for sub in ("new", "cur") for p in sorted((root / sub).iterdir())]


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    if not postfix_available():
        _missing("Postfix 3.4 or newer is not installed")
    if not running_as_root():
        _missing("Postfix must be run as root")
    if not os.access("/usr/bin/python3", os.X_OK):
        _missing("/usr/bin/python3 is missing")
    nobody = pwd.getpwnam(MAIL_USER)
    base = traversable_tempdir("postfix-vacation-")
    postfix: PostfixInstance | None = None
    try:
        mda, _note = resolve_mda(base)
        vmail = base / "vmail"
        vmail.mkdir(mode=0o755)
        os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
        (vmail / VIRTUAL_DOMAIN).mkdir()
        os.chown(vmail / VIRTUAL_DOMAIN, nobody.pw_uid, nobody.pw_gid)
        for user in USERS:
            make_maildir(vmail / VIRTUAL_DOMAIN / user, nobody.pw_uid, nobody.pw_gid)
        home = vmail / VIRTUAL_DOMAIN / "alice"
        (home / "sieve").mkdir()
        write_file(home / "sieve" / "away.sieve", SCRIPT)
        (home / ".dovecot.sieve").symlink_to("sieve/away.sieve")  # Pigeonhole's layout
        for path in (home / "sieve", home / "sieve" / "away.sieve"):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        os.lchown(home / ".dovecot.sieve", nobody.pw_uid, nobody.pw_gid)

        port = free_port()
        conf = base / "mda"
        conf.mkdir(mode=0o755)
        inject = write_file(conf / "sendmail", INJECT.format(port=port), 0o755)
        write_file(conf / "access", "")
        write_file(conf / "domains", f"{VIRTUAL_DOMAIN}\n")
        write_file(conf / "aliases", "")
        write_file(conf / "virtusertable", "")
        write_file(
            conf / "passwd",
            "".join(
                f"{u}@{VIRTUAL_DOMAIN}:{{PLAIN}}x:{nobody.pw_uid}:{nobody.pw_gid}::"
                f"{vmail / VIRTUAL_DOMAIN / u}::\n"
                for u in USERS
            ),
        )
        write_file(
            conf / "mra.toml",
            f'[auth]\npasswd_file = "{conf / "passwd"}"\n'
            f'[mail]\nlocation = "{vmail}/%d/%n"\n'
            f'[maps]\naliases = "{conf / "aliases"}"\nvirtusertable = "{conf / "virtusertable"}"\n'
            f'access = "{conf / "access"}"\nlocal_domains = "{conf / "domains"}"\n'
            f'[mda]\nsendmail = "{inject}"\nmail_uid = "{MAIL_USER}"\n',
        )
        postfix = PostfixInstance(
            base / "postfix",
            port=port,
            main_cf={
                "virtual_mailbox_domains": VIRTUAL_DOMAIN,
                "virtual_mailbox_maps": "",
                "virtual_transport": "mda",
                "mda_destination_recipient_limit": "1",
            },
            master_cf=[
                "mda unix - n n - - pipe",
                f"  flags=Rhu user={MAIL_USER} argv={mda} --config {conf / 'mra.toml'}"
                " -f ${sender} -r ${recipient}",
            ],
            hostname="mx.virt.test",
            timeout=DELIVERY_TIMEOUT,
        )
        postfix.start()
        yield System(postfix, vmail)
    finally:
        if postfix is not None:
            postfix.stop()
        if os.environ.get("POSTFIX_KEEP"):
            print(f"\nPOSTFIX_KEEP: kept {base}")
        else:
            remove_tree(base)


def send_and_settle(system: System, tag: str, **extra: str) -> bytes:
    """Bob writes to alice; wait until everything it causes (a reply too) is delivered."""
    msgid = f"<{tag}-{time.time_ns()}@bob.test>"
    message = make_message(
        sender=BOB,
        to=ALICE,
        subject=f"question {tag}",
        body="Are you there?\n",
        message_id=msgid,
        extra_headers=extra,
    )
    queue_id = system.postfix.send(BOB, ALICE, message)
    entry = system.postfix.wait_for_status(queue_id, ALICE, timeout=DELIVERY_TIMEOUT)
    assert entry.status == "sent", entry.line
    system.postfix.wait_for_queue_empty(timeout=DELIVERY_TIMEOUT)
    return msgid.encode()


def replies(system: System) -> list[bytes]:
    return [m for m in system.messages("bob") if b"Out of office" in m]


def test_one_reply_reaches_the_sender_and_only_one(system: System) -> None:
    first = send_and_settle(system, "first")
    (reply,) = replies(system)
    header = BytesParser(policy=compat32).parsebytes(reply, headersonly=True)
    # The reply's envelope sender is null: pipe(8)'s flag R spells it <MAILER-DAEMON>.
    assert header["Return-Path"] in ("<>", "<MAILER-DAEMON>")
    assert "from=<>" in system.postfix.log()
    assert header["Auto-Submitted"].startswith("auto-replied")
    assert header["In-Reply-To"].encode() == first
    assert first in header["References"].encode()
    assert header["From"] == ALICE and header["To"] == BOB
    assert b"I am away until Monday." in reply
    # A second message within :days: delivered, and no second reply.
    send_and_settle(system, "second")
    assert len(replies(system)) == 1
    assert len(system.messages("alice")) == 2


def test_no_reply_to_a_list_message(system: System) -> None:
    before = len(replies(system))
    # Forget the reply already sent, so that the one-per-sender rule is not what stops it.
    (system.maildir("alice") / "sieve-tracking").unlink(missing_ok=True)
    send_and_settle(system, "list", **{"List-Id": "<dev.lists.virt.test>"})
    assert len(replies(system)) == before
    assert any(b"question list" in m for m in system.messages("alice"))
