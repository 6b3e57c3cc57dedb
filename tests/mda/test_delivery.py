"""`mda` run as a real process, as sendmail, Postfix and dovecot-lda style callers run it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.mda.conftest import MDA, MSG, ROOT, MdaEnv


def only(env: MdaEnv, user: str, folder: str = "INBOX") -> bytes:
    msgs = env.messages(user, folder)
    assert len(msgs) == 1, f"{user}/{folder} holds {len(msgs)} messages"
    return msgs[0]


def test_sendmail_local_mailer_style(env: MdaEnv) -> None:
    # sendmail's local_procmail: Return-Path already first on stdin, no From_ line.
    msg = b"Return-Path: <sender@remote.test>\n" + MSG
    r = env.run("-Y", "-f", "sender@remote.test", "-d", "alice@example.test", stdin=msg)
    assert (r.returncode, r.stderr) == (0, b"")
    stored = only(env, "alice@example.test")
    assert stored.startswith(
        b"Delivered-To: alice@example.test\nReturn-Path: <sender@remote.test>\n"
    )
    assert stored.count(b"Return-Path:") == 1
    assert stored.endswith(b"Hello Alice.\n")


def test_several_d_users_get_one_copy_each(env: MdaEnv) -> None:
    r = env.run("-f", "s@remote.test", "-d", "alice@example.test", "bob@example.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    only(env, "alice@example.test")
    assert only(env, "bob@example.test").startswith(b"Return-Path: <s@remote.test>\n")


def test_mail_local_style_bare_user(env: MdaEnv) -> None:
    r = env.run("-f", "s@remote.test", "-d", "wendy", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert b"Hello Alice." in only(env, "wendy")


def test_postfix_mailbox_command_environment(env: MdaEnv) -> None:
    # Postfix local(8): a From_ line, then its own Return-Path/Delivered-To, then the message.
    msg = (
        b"From sender@remote.test  Sun Nov 29 10:00:00 2026\n"
        b"Return-Path: <sender@remote.test>\nX-Original-To: wendy@example.test\n"
        b"Delivered-To: wendy@example.test\n" + MSG
    )
    environ = {
        "SENDER": "sender@remote.test",
        "RECIPIENT": "wendy@example.test",
        "USER": "wendy",
        "LOCAL": "wendy",
        "EXTENSION": "",
        "DOMAIN": "example.test",
        "HOME": "/nonexistent",
    }
    r = env.run(stdin=msg, env=environ)
    assert r.returncode == 0, r.stderr
    stored = only(env, "wendy")
    assert not stored.startswith(b"From ")
    assert stored.count(b"Delivered-To:") == 1  # Postfix's own, not a loop and not doubled
    assert stored.startswith(b"Return-Path: <sender@remote.test>\nX-Original-To:")


def test_postfix_pipe_style_full_address(env: MdaEnv) -> None:
    r = env.run("-f", "s@remote.test", "-r", "carol@virt.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert only(env, "carol@virt.test").startswith(
        b"Return-Path: <s@remote.test>\nDelivered-To: carol@virt.test\n"
    )


def test_virtusertable_then_aliases_with_one_copy_per_mailbox(env: MdaEnv) -> None:
    # list@virt.test -> team -> alice, bob, alice@example.test (alice twice: one copy).
    r = env.run("-f", "s@remote.test", "-r", "list@virt.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    only(env, "alice@example.test")
    only(env, "bob@example.test")


def test_virtusertable_to_a_user(env: MdaEnv) -> None:
    r = env.run("-f", "s@remote.test", "--recipient", "info@virt.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert only(env, "bob@example.test").startswith(
        b"Return-Path: <s@remote.test>\nDelivered-To: bob@example.test\n"
    )


def test_unknown_user_is_67_with_one_clear_line(env: MdaEnv) -> None:
    for args in (["-r", "nobody-here@virt.test"], ["-d", "nosuchuser"], ["-r", "x@example.test"]):
        r = env.run("-f", "s@remote.test", *args, stdin=MSG)
        assert r.returncode == 67, (args, r.stderr)
        line = r.stderr.decode()
        assert line.startswith("5.1.1 <") and "user unknown" in line, line
        assert line.count("\n") == 1 and "Traceback" not in line


def test_virtusertable_error_codes(env: MdaEnv) -> None:
    r = env.run("-r", "gone@virt.test", stdin=MSG)
    assert r.returncode == 67 and r.stderr.decode().startswith(
        "5.1.1 <gone@virt.test>: this address is gone"
    )
    r = env.run("-r", "busy@virt.test", stdin=MSG)
    assert r.returncode == 75 and r.stderr.decode().startswith("4.2.1")


def test_alias_error_target_is_honoured(env: MdaEnv) -> None:
    env.aliases.write_text("old: error:5.1.6:550 moved to new@example.test\n")
    r = env.run("-r", "old@example.test", stdin=MSG)
    assert r.returncode == 69 and b"5.1.6 <old@example.test>: moved to new@example.test" in r.stderr


def test_access_rules(env: MdaEnv) -> None:
    env.access.write_text(
        "To:alice@example.test  REJECT\n"
        "To:bob@example.test    DISCARD\n"
        "From:spam.test         ERROR:5.7.1:550 we do not want it\n"
        "From:slow.test         ERROR:4.7.1:451 slow down\n"
    )
    r = env.run("-f", "s@remote.test", "-r", "alice@example.test", stdin=MSG)
    assert r.returncode == 69 and r.stderr.startswith(b"5.")
    r = env.run("-f", "s@remote.test", "-r", "bob@example.test", stdin=MSG)
    assert r.returncode == 0 and env.messages("bob@example.test") == []
    r = env.run("-f", "x@spam.test", "-r", "carol@virt.test", stdin=MSG)
    assert r.returncode == 69 and b"5.7.1" in r.stderr and b"we do not want it" in r.stderr
    r = env.run("-f", "x@slow.test", "-r", "carol@virt.test", stdin=MSG)
    assert r.returncode == 75 and r.stderr.startswith(b"4.7.1")
    assert env.messages("carol@virt.test") == []


def test_delivered_to_loop_is_refused(env: MdaEnv) -> None:
    looped = b"Delivered-To: alice@example.test\nReceived: by relay\n" + MSG
    msg = b"Received: by us\n" + looped  # not the MTA's own header for this delivery
    r = env.run("-r", "alice@example.test", stdin=msg)
    assert r.returncode == 78 and r.stderr.startswith(b"5.4.6")  # EX_CONFIG, as sendmail
    assert env.messages("alice@example.test") == []


def test_folder_option_and_missing_folder(env: MdaEnv) -> None:
    env.make_folder("alice@example.test", "Lists.python")
    assert env.run("-m", "Lists.python", "-d", "alice@example.test", stdin=MSG).returncode == 0
    only(env, "alice@example.test", "Lists.python")
    r = env.run("-m", "Nope", "-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 0 and b"delivered to INBOX" in r.stderr
    only(env, "alice@example.test")
    r = env.run("-m", "../../etc", "-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 0
    assert len(env.messages("alice@example.test")) == 2


def test_forward_to_remote_goes_through_the_mta(env: MdaEnv) -> None:
    env.aliases.write_text("fwd: someone@far.test\n")
    r = env.run("-f", "s@remote.test", "-r", "fwd@example.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    log = env.sendmail_log.read_bytes()
    assert log.startswith(b"-i -f s@remote.test -- someone@far.test\n")
    assert MSG in log
    (env.base / "fail-sendmail").touch()
    r = env.run("-f", "s@remote.test", "-r", "fwd@example.test", stdin=MSG)
    assert r.returncode == 75


@pytest.mark.skipif(not ROOT, reason="program targets need a root-owned aliases file")
def test_program_and_file_targets_from_root_owned_aliases(env: MdaEnv) -> None:
    spool = env.base / "spool"  # the program runs as nobody and writes here
    spool.mkdir()
    os.chown(spool, env.uid, env.gid)
    out = spool / "program-out"
    script = env.etc / "prog.sh"
    script.write_text(f"#!/bin/sh\nid -u > {out}.uid\ncat > {out}\n")
    script.chmod(0o755)
    mbox = spool / "archive.mbox"
    env.aliases.write_text(f'prog: "|{script}"\narchive: {mbox}\n')
    os.chown(env.aliases, 0, 0)
    env.aliases.chmod(0o644)
    assert env.run("-f", "s@remote.test", "-r", "prog@example.test", stdin=MSG).returncode == 0
    assert MSG in out.read_bytes()
    assert out.with_suffix(".uid").read_text().strip() != "0"  # never as root
    r = env.run("-f", "s@remote.test", "-r", "archive@example.test", stdin=MSG + b"From the body\n")
    assert r.returncode == 0, r.stderr
    text = mbox.read_bytes()
    assert text.startswith(b"From s@remote.test ") and b"\n>From the body\n" in text


def test_program_target_from_include_is_refused(env: MdaEnv) -> None:
    inc = env.etc / "list.inc"
    inc.write_text('"|/bin/true"\n')
    env.aliases.write_text(f"inc: :include:{inc}\n")
    r = env.run("-r", "inc@example.test", stdin=MSG)
    assert r.returncode == 69 and b"unsafe" in r.stderr, r.stderr
    # An include in a directory anyone can write to is not followed at all: retry later.
    spool = env.base / "spool"
    spool.mkdir()
    spool.chmod(0o777)
    (spool / "list.inc").write_text("alice@example.test\n")
    env.aliases.write_text(f"inc2: :include:{spool}/list.inc\n")
    r = env.run("-r", "inc2@example.test", stdin=MSG)
    assert r.returncode == 75 and b"world-writable directory" in r.stderr, r.stderr
    assert env.messages("alice@example.test") == []


def test_sieve_filing_and_broken_script(env: MdaEnv) -> None:
    home = env.base / "home" / "alice"
    env.make_folder("alice@example.test", "Hello")
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "imap4flags"];\n'
        'if header :contains "subject" "hello" { fileinto :flags "\\\\Flagged" "Hello"; stop; }\n'
    )
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    assert b"Hello Alice." in only(env, "alice@example.test", "Hello")
    (home / ".dovecot.sieve").write_text("this is not sieve {")
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 0 and b"sieve" in r.stderr
    only(env, "alice@example.test")


def test_sieve_discard_and_create(env: MdaEnv) -> None:
    home = env.base / "home" / "bob"
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "mailbox"];\n'
        'if address :domain "from" "remote.test" { fileinto :create "Remote.Lists"; }\n'
        'if header :is "x-spam" "yes" { discard; }\n'
    )
    assert env.run("-d", "bob@example.test", stdin=MSG).returncode == 0
    only(env, "bob@example.test", "Remote.Lists")
    assert (
        env.run("-d", "bob@example.test", stdin=b"X-Spam: yes\nFrom: a@b.c\n\nx\n").returncode == 0
    )
    assert env.messages("bob@example.test") == []


def test_duplicates_are_dropped_when_enabled(env: MdaEnv) -> None:
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    assert len(env.messages("alice@example.test")) == 2  # off by default
    env.write_config("duplicate_window = 3600\n")
    assert env.run("-d", "bob@example.test", stdin=MSG).returncode == 0
    r = env.run("-d", "bob@example.test", stdin=MSG)
    assert r.returncode == 0 and b"duplicate" in r.stderr
    assert len(env.messages("bob@example.test")) == 1


def test_quota_is_a_temporary_failure_and_leaves_nothing(env: MdaEnv) -> None:
    text = env.passwd.read_text().replace(
        f"{env.base}/home/alice::", f"{env.base}/home/alice::userdb_quota_rule=*:bytes=250"
    )
    env.passwd.write_text(text)
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and r.stderr.startswith(b"4.2.2")
    assert len(env.messages("alice@example.test")) == 1
    assert os.listdir(env.root_of("alice@example.test") / "tmp") == []
    env.write_config("quota_bounce = true\n")
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 69 and r.stderr.startswith(b"5.2.2")


def test_usage_and_bad_input(env: MdaEnv) -> None:
    assert env.run(stdin=MSG).returncode == 64
    assert env.run("-x", "-d", "alice@example.test", stdin=MSG).returncode == 64
    r = env.run("-d", "alice@example.test", stdin=b"")
    assert r.returncode == 65
    r = env.run("-d", "alice@example.test", stdin=b"x" * 200_000)
    assert r.returncode == 69 and r.stderr.startswith(b"5.3.4")


def test_broken_config_is_temporary_never_a_traceback(env: MdaEnv) -> None:
    env.config.write_text("[mail\nlocation = 3\n")
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and b"Traceback" not in r.stderr and r.stderr.count(b"\n") == 1


def test_unreadable_map_is_temporary(env: MdaEnv) -> None:
    if ROOT:
        env.virtusertable.unlink()
        env.virtusertable.mkdir()  # unreadable even for root
    else:
        env.virtusertable.chmod(0)
    r = env.run("-r", "info@virt.test", stdin=MSG)
    assert r.returncode == 75, r.stderr


@pytest.mark.skipif(not ROOT, reason="mounting a file system needs root")
@pytest.mark.parametrize("options", ["size=16k", "ro"])
def test_full_or_read_only_file_system_is_75_with_nothing_partial(
    env: MdaEnv, options: str
) -> None:
    root = env.root_of("alice@example.test")
    root.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"mode=0755,{options}", "tmpfs", str(root)], check=True
    )
    try:
        if options != "ro":
            os.chown(root, env.uid, env.gid)
            for sub in ("cur", "new", "tmp"):
                (root / sub).mkdir()
                os.chown(root / sub, env.uid, env.gid)
        big = MSG + b"x" * 40_000 + b"\n"
        r = env.run("-d", "alice@example.test", stdin=big)
        assert r.returncode == 75, r.stderr
        assert r.stderr.startswith(b"4.") and b"Traceback" not in r.stderr
        if options != "ro":
            assert os.listdir(root / "new") == [] and os.listdir(root / "tmp") == []
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_terminating_signal_means_retry(env: MdaEnv) -> None:
    """SIGTERM while waiting for the message: exit 75 (Postfix's /bin/sh path would bounce a
    death by signal), and nothing is stored."""
    proc = subprocess.Popen(
        [MDA, "--config", str(env.config), "-d", "alice@example.test"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.stdin is not None
    proc.stdin.write(MSG[:20])
    proc.stdin.flush()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 75, err
    assert env.messages("alice@example.test") == []


def test_check_explains_resolution(env: MdaEnv) -> None:
    r = env.run("check", "list@virt.test")
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "list@virt.test" in out and "team" in out
    assert "mailbox of alice@example.test" in out and "mailbox of bob@example.test" in out
    r = env.run("check", "gone@virt.test")
    assert r.returncode == 67 and "NOT deliverable" in r.stdout.decode()
    assert env.messages("alice@example.test") == []


def test_newaliases_compiles_the_maps(env: MdaEnv) -> None:
    r = env.run("newaliases")
    assert r.returncode == 0, r.stderr
    assert Path(f"{env.aliases}.cdb").exists() and Path(f"{env.virtusertable}.cdb").exists()
    assert b"entries indexed" in r.stdout


def test_mda_is_a_fast_launcher() -> None:
    first = Path(MDA).read_text().splitlines()[0]
    assert first.endswith(" -IS"), first


def test_no_partial_file_when_killed(env: MdaEnv) -> None:
    """SIGKILL at random points of a real mda run: the MTA saw no success, and a visible file is
    always the whole message."""
    big = MSG + b"y" * 50_000 + b"\n"
    for i in range(30):
        proc = subprocess.Popen(
            [MDA, "--config", str(env.config), "-d", "alice@example.test"],
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(big)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep((i % 10) * 0.004)
        proc.kill()
        proc.wait()
    for stored in env.messages("alice@example.test"):
        assert stored.endswith(big)


def test_fuzz_sieve_names_no_folder_can_have_are_kept_in_inbox(env: MdaEnv) -> None:
    """Found by fuzz/sieve.py (`mailboxexists` of a name no folder can have raised inside the
    interpreter): a store asked whether `Lists/python` exists said InvalidName instead of
    no, so `fileinto "Lists/python"` (a slash for the dot: a common slip) failed the delivery,
    and `mailboxexists` made the whole script an error. Both keep the mail in INBOX now."""
    home = env.base / "home" / "alice"
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "mailbox"];\n'
        'if mailboxexists "Lists/python" { discard; stop; }\n'
        'fileinto "Lists/python";\n'
    )
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert b"no such folder, kept in INBOX" in r.stderr
    only(env, "alice@example.test")
    (home / ".dovecot.sieve").write_text(
        'require ["fileinto", "mailbox"];\nfileinto :create "Lists/python";\n'
    )
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert len(env.messages("alice@example.test")) == 2
