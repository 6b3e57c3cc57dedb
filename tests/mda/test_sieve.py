"""Sieve through the real `mda`: vacation replies and what they are never sent to, rejects,
notifications, limits and loops, Pigeonhole's layout, `mda sieve check`. Mail leaving through
`[mda] sendmail` lands in the fake sendmail's log (conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import MDA, MdaEnv

ALICE = "alice@example.test"


def script(env: MdaEnv, text: str, user: str = "alice") -> Path:
    """Install `text` as the user's active script, the way Pigeonhole lays it out."""
    home = env.base / "home" / user
    sieve = home / "sieve"
    sieve.mkdir(exist_ok=True)
    (sieve / "main.sieve").write_text(text)
    link = home / ".dovecot.sieve"
    if not link.is_symlink():
        link.symlink_to("sieve/main.sieve")
    for path in (sieve, sieve / "main.sieve"):
        os.chown(path, env.uid, env.gid)
    return sieve / "main.sieve"


def message(
    sender: str = "friend@remote.test",
    to: str = ALICE,
    msgid: str = "<m1@remote.test>",
    extra: str = "",
    subject: str = "hello",
) -> bytes:
    return (
        f"From: Friend <{sender}>\nTo: {to}\nSubject: {subject}\nMessage-ID: {msgid}\n"
        f"References: <earlier@remote.test>\n{extra}\nHello Alice.\n"
    ).encode()


def deliver(
    env: MdaEnv, msg: bytes, sender: str = "friend@remote.test"
) -> subprocess.CompletedProcess[bytes]:
    return env.run("-f", sender, "-r", ALICE, stdin=msg)


def sent(env: MdaEnv) -> str:
    return env.sendmail_log.read_text()


def replies(env: MdaEnv) -> list[str]:
    """The messages handed to sendmail with a null sender, one string each."""
    out: list[str] = []
    for chunk in sent(env).split("-i -f <> -- ")[1:]:
        out.append(chunk)
    return out


VACATION = 'require "vacation";\nvacation :days 7 :subject "Away" "I am away until Monday.";\n'


def test_vacation_reply_once_per_sender_and_period(env: MdaEnv) -> None:
    script(env, VACATION)
    r = deliver(env, message())
    assert r.returncode == 0, r.stderr
    assert len(env.messages(ALICE)) == 1  # vacation keeps the message
    (reply,) = replies(env)
    head, _, body = reply.partition("\n\n")
    assert reply.startswith("friend@remote.test\n")  # to the envelope sender
    assert "Auto-Submitted: auto-replied" in head
    assert "In-Reply-To: <m1@remote.test>" in head
    assert "References: <earlier@remote.test> <m1@remote.test>" in head
    assert "Subject: Away" in head and f"From: {ALICE}" in head
    assert "I am away until Monday." in body
    # A second message from the same sender within :days gets no reply...
    r = deliver(env, message(msgid="<m2@remote.test>"))
    assert r.returncode == 0 and b"got one within" in r.stderr
    assert len(replies(env)) == 1
    assert len(env.messages(ALICE)) == 2
    # ... another sender does, and so does the first one under another :handle.
    deliver(env, message(sender="other@remote.test"), sender="other@remote.test")
    assert len(replies(env)) == 2
    script(env, VACATION.replace(":days 7", ':days 7 :handle "second"'))
    deliver(env, message(msgid="<m3@remote.test>"))
    assert len(replies(env)) == 3


def test_vacation_tracking_survives_in_the_mail_root(env: MdaEnv) -> None:
    script(env, VACATION)
    deliver(env, message())
    tracking = env.root_of(ALICE) / "sieve-tracking"
    lines = tracking.read_text().splitlines()
    assert len(lines) == 1
    expiry, key = lines[0].split()
    assert int(expiry) > 0 and len(key) == 64 and "friend" not in lines[0]
    assert tracking.stat().st_uid == env.uid


def test_vacation_is_never_sent_to_lists_robots_or_when_not_addressed(env: MdaEnv) -> None:
    script(env, VACATION)
    cases = [
        (message(extra="List-Id: <dev.lists.remote.test>"), "friend@remote.test", "mailing list"),
        (message(extra="Precedence: bulk"), "friend@remote.test", "Precedence: bulk"),
        (message(extra="Precedence: junk"), "friend@remote.test", "Precedence: junk"),
        (message(extra="Auto-Submitted: auto-generated"), "friend@remote.test", "auto-submitted"),
        (message(sender="MAILER-DAEMON@remote.test"), "MAILER-DAEMON@remote.test", "system"),
        (message(sender="owner-dev@remote.test"), "owner-dev@remote.test", "system"),
        (message(sender="dev-request@remote.test"), "dev-request@remote.test", "system"),
        (message(), "", "empty"),
        (message(to="someone-else@example.test"), "friend@remote.test", "none of the user's"),
    ]
    for i, (msg, sender, why) in enumerate(cases):
        msg = msg.replace(b"<m1@", f"<case{i}@".encode())
        r = deliver(env, msg, sender=sender)
        assert r.returncode == 0, r.stderr
        assert why.encode() in r.stderr, (why, r.stderr)
    assert replies(env) == []
    assert len(env.messages(ALICE)) == len(cases)


def test_vacation_addresses_are_the_users_too(env: MdaEnv) -> None:
    script(env, 'require "vacation";\nvacation :addresses ["alice@old.example"] "Away.";\n')
    deliver(env, message(to="Alice <alice@old.example>"))
    assert len(replies(env)) == 1


def test_concurrent_deliveries_send_one_reply(env: MdaEnv) -> None:
    script(env, VACATION)
    procs = [
        subprocess.Popen(
            [MDA, "--config", str(env.config), "-f", "friend@remote.test", "-r", ALICE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
        )
        for _ in range(8)
    ]
    for i, proc in enumerate(procs):
        proc.communicate(message(msgid=f"<c{i}@remote.test>"), timeout=60)
        assert proc.returncode == 0
    assert len(env.messages(ALICE)) == 8
    assert len(replies(env)) == 1


def test_reject_sends_a_notice_and_stores_nothing(env: MdaEnv) -> None:
    script(env, 'require "reject";\nreject "I do not want mail from you.";\n')
    r = deliver(env, message())
    assert r.returncode == 0, r.stderr
    assert env.messages(ALICE) == []
    (notice,) = replies(env)
    assert notice.startswith("friend@remote.test\n")
    assert "report-type=disposition-notification" in notice
    assert "I do not want mail from you." in notice
    assert "Disposition: automatic-action/MDN-sent-automatically; deleted" in notice


def test_ereject_refuses_the_delivery(env: MdaEnv) -> None:
    script(env, 'require "ereject";\nereject text:\nNo.\nReally not.\n.\n;\n')
    r = deliver(env, message())
    assert r.returncode == 69
    assert r.stderr.startswith(b"5.7.1") and b"No. Really not." in r.stderr
    assert env.messages(ALICE) == [] and replies(env) == []


def test_notify_by_mailto(env: MdaEnv) -> None:
    script(
        env,
        'require ["enotify", "variables"];\n'
        'if header :matches "subject" "*" { set "s" "${1}"; }\n'
        'notify :importance "1" :message "New: ${s}" "mailto:pager@example.test";\n',
    )
    deliver(env, message())
    (note,) = replies(env)
    assert note.startswith("pager@example.test\n")
    assert "Subject: New: hello" in note and "Auto-Submitted: auto-notified" in note
    assert len(env.messages(ALICE)) == 1
    deliver(env, message(msgid="<m9@x>", extra="Auto-Submitted: auto-replied"))
    assert len(replies(env)) == 1  # RFC 5436 2.7: none about auto-submitted mail


def test_redirect_loop_by_delivered_to_keeps_the_message(env: MdaEnv) -> None:
    script(env, 'redirect "bob@elsewhere.test";\n')
    r = deliver(env, message(extra="Delivered-To: bob@elsewhere.test"))
    assert r.returncode == 0 and b"loop" in r.stderr
    assert "bob@elsewhere.test" not in sent(env)
    assert len(env.messages(ALICE)) == 1


def test_redirect_limit_is_a_setting(env: MdaEnv) -> None:
    env.write_config("[sieve]\nmax_redirects = 1\n")
    script(env, 'redirect "a@elsewhere.test";\nredirect "b@elsewhere.test";\n')
    r = deliver(env, message())
    assert r.returncode == 0
    assert b"more than 1 redirects" in r.stderr and b"kept in INBOX" in r.stderr
    assert sent(env) == "" and len(env.messages(ALICE)) == 1


def test_actions_limit_is_a_setting(env: MdaEnv) -> None:
    env.write_config("[sieve]\nmax_actions = 2\n")
    script(env, 'require "fileinto";\nfileinto "a";\nfileinto "b";\nfileinto "c";\n')
    r = deliver(env, message())
    assert b"more than 2 actions" in r.stderr
    assert len(env.messages(ALICE)) == 1


def test_runtime_failure_keeps_the_message_and_says_why(env: MdaEnv) -> None:
    script(env, 'require ["include", "fileinto"];\nfileinto "x";\ninclude "missing";\n')
    r = deliver(env, message())
    assert r.returncode == 0
    assert b"line 3" in r.stderr and b"'missing' does not exist" in r.stderr
    assert len(env.messages(ALICE)) == 1


def test_include_recursion_and_depth_are_bounded(env: MdaEnv) -> None:
    path = script(env, 'require "include";\ninclude "main";\n')
    r = deliver(env, message())
    assert b"would recurse" in r.stderr and len(env.messages(ALICE)) == 1
    env.write_config("[sieve]\nmax_include_depth = 2\n")
    for name, target in (("main", "a"), ("a", "b"), ("b", "c")):
        (path.parent / f"{name}.sieve").write_text(f'require "include";\ninclude "{target}";\n')
    (path.parent / "c.sieve").write_text('require "fileinto";\nfileinto "deep";\n')
    r = deliver(env, message(msgid="<m2@x>"))
    assert b"nested deeper than 2" in r.stderr and len(env.messages(ALICE)) == 2


def test_pigeonhole_layout_and_compiled_files_ignored(env: MdaEnv) -> None:
    path = script(env, 'require ["include", "fileinto"];\ninclude :personal "lists";\n')
    (path.parent / "lists.sieve").write_text('require "fileinto";\nfileinto "Lists";\n')
    # Pigeonhole's compiled scripts next to them: garbage to us, never read.
    (path.parent / "main.svbin").write_bytes(b"\x00\xff not a script")
    (env.base / "home" / "alice" / ".dovecot.svbin").write_bytes(b"\x00")
    env.make_folder(ALICE, "Lists")
    r = deliver(env, message())
    assert r.returncode == 0, r.stderr
    assert len(env.messages(ALICE, "Lists")) == 1
    # A dangling active link (the script was deleted): delivered to INBOX, silently.
    path.unlink()
    r = deliver(env, message(msgid="<m2@x>"))
    assert r.returncode == 0 and len(env.messages(ALICE)) == 1


def test_global_include_needs_a_trusted_file(env: MdaEnv) -> None:
    global_dir = env.etc / "sieve-global"
    global_dir.mkdir()
    (global_dir / "spam.sieve").write_text('require "fileinto";\nfileinto "Junk";\n')
    env.write_config(f'[sieve]\nglobal_dir = "{global_dir}"\n')
    env.make_folder(ALICE, "Junk")
    script(env, 'require "include";\ninclude :global "spam";\n')
    assert deliver(env, message()).returncode == 0
    assert len(env.messages(ALICE, "Junk")) == 1
    (global_dir / "spam.sieve").chmod(0o666)
    r = deliver(env, message(msgid="<m2@x>"))
    assert r.returncode == 75 and b"spam.sieve" in r.stderr


def test_editheader_when_enabled(env: MdaEnv) -> None:
    text = 'require "editheader";\naddheader "X-Filtered" "yes";\ndeleteheader "subject";\n'
    script(env, text)
    r = deliver(env, message())
    assert b"unsupported extension 'editheader'" in r.stderr  # off by default, as Pigeonhole
    env.write_config('[sieve]\nextensions = ["+editheader"]\n')
    deliver(env, message(msgid="<m2@x>"))
    stored = env.messages(ALICE)[-1]
    head = stored.split(b"\n\n")[0]
    assert b"X-Filtered: yes" in head and b"Subject:" not in head
    assert stored.endswith(b"Hello Alice.\n")


def test_duplicate_remembers_delivered_messages(env: MdaEnv) -> None:
    script(env, 'require ["duplicate", "fileinto"];\nif duplicate { fileinto "Dupes"; }\n')
    env.make_folder(ALICE, "Dupes")
    deliver(env, message())
    deliver(env, message())
    assert len(env.messages(ALICE)) == 1 and len(env.messages(ALICE, "Dupes")) == 1


def test_spamtest_when_configured(env: MdaEnv) -> None:
    env.write_config('[sieve]\nspamtest_status_header = "X-Spam-Score"\nspamtest_max_value = 10\n')
    script(
        env,
        'require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];\n'
        'if spamtest :value "ge" :comparator "i;ascii-numeric" "5" { fileinto "Junk"; }\n',
    )
    env.make_folder(ALICE, "Junk")
    deliver(env, message(extra="X-Spam-Score: 8.1"))
    deliver(env, message(msgid="<m2@x>", extra="X-Spam-Score: 0.3"))
    assert len(env.messages(ALICE, "Junk")) == 1 and len(env.messages(ALICE)) == 1


def test_attack_backtracking_regex_is_stopped_by_the_cpu_limit(env: MdaEnv) -> None:
    """`(a+)+$` on "aaa...b" backtracks 2^40 times in Python's `re`: without the CPU time
    limit this delivery never ends (the harness gives up after 60 s)."""
    env.write_config("[sieve]\nmax_cpu_time = 1\n")
    script(
        env,
        'require ["regex", "fileinto"];\nif header :regex "subject" "^(a+)+$" { fileinto "x"; }\n',
    )
    r = deliver(env, message(subject="a" * 40 + "b"))
    assert r.returncode == 0
    assert b"CPU time limit" in r.stderr and b"kept in INBOX" in r.stderr
    assert len(env.messages(ALICE)) == 1


def test_mda_sieve_check(env: MdaEnv, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\nif true {\n  frobnicate;\n}\n')
    good = tmp_path / "good.sieve"
    good.write_text('require ["vacation", "regex"];\nvacation "away";\n')
    r = env.run("sieve", "check", str(good))
    assert (r.returncode, r.stderr) == (0, b"")
    r = env.run("sieve", "check", str(good), str(bad))
    assert r.returncode == 1
    assert r.stderr == f"{bad}:3: error: unknown command 'frobnicate'\n".encode()
    editheader = tmp_path / "edit.sieve"
    editheader.write_text('require "editheader";\n')
    assert b"unsupported extension" in env.run("sieve", "check", str(editheader)).stderr
    env.write_config('[sieve]\nextensions = "+editheader"\n')
    assert env.run("sieve", "check", str(editheader)).returncode == 0


def test_every_extension_runs_after_privileges_are_dropped(env: MdaEnv) -> None:
    """As root, mda imports what a script needs before it becomes the mailbox owner (who may
    not be able to read the installation): a script using every extension runs to its end."""
    env.write_config('[sieve]\nextensions = ["+editheader"]\n')
    script(
        env,
        'require ["body", "date", "mime", "foreverypart", "extracttext", "variables",\n'
        ' "duplicate", "enotify", "regex", "editheader", "fileinto", "relational",\n'
        ' "environment", "index", "vacation", "copy"];\n'
        'if body :contains "Alice" { addheader "X-Body" "yes"; }\n'
        'if currentdate :value "gt" "year" "2000" { set "y" "now"; }\n'
        'foreverypart { extracttext :first 5 "text"; }\n'  # no parts here: empty
        'if header :regex "subject" "^h(.)llo$" { set "r" "${1}"; }\n'
        'if not duplicate { notify "mailto:pager@example.test"; }\n'
        'if environment "location" "MDA" { fileinto :copy "Z-${y}-${r}-${text}"; }\n'
        'vacation "away";\n',
    )
    env.make_folder(ALICE, "Z-now-e-")
    r = deliver(env, message())
    assert r.returncode == 0 and b"error" not in r.stderr, r.stderr
    assert len(env.messages(ALICE, "Z-now-e-")) == 1
    assert b"X-Body: yes" in env.messages(ALICE)[0]
    assert len(replies(env)) == 2  # the notification and the vacation reply


def test_encoded_words_are_decoded_after_privileges_are_dropped(env: MdaEnv) -> None:
    script(env, 'require "fileinto";\nif header :is "subject" "héllo" { fileinto "Hello"; }\n')
    env.make_folder(ALICE, "Hello")
    r = deliver(env, message(subject="=?utf-8?b?aMOpbGxv?="))
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    assert len(env.messages(ALICE, "Hello")) == 1
