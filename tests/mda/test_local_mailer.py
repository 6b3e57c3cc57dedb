"""mda as sendmail's local mailer runs it (`mda -Y -f $g -a $h -d $u`), and the accounts that
must not get mail: what probing it found (issue #12)."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mda.cli import USAGE
from tests.mda.conftest import MDA, MSG, ROOT, MdaEnv

SHOP_SCRIPT = (
    'require ["fileinto", "envelope", "subaddress", "mailbox"];\n'
    'if envelope :detail "to" "shop" { fileinto :create "Shop"; stop; }\n'
    'if envelope :domain "to" "example.test" { fileinto :create "Ours"; }\n'
)


def with_script(env: MdaEnv, user: str, script: str) -> None:
    path = env.base / "home" / user / ".dovecot.sieve"
    path.write_text(script)
    os.chown(path, env.uid, env.gid)


@pytest.mark.parametrize(
    "args",
    [
        ("-a", "shop", "-d", "alice"),  # sendmail: the user name bare, the detail apart
        ("-d", "alice+shop"),
        ("-a", "shop", "-d", "alice@example.test"),
    ],
)
def test_attack_detail_given_apart_from_a_bare_user_reaches_sieve(
    env: MdaEnv, args: tuple[str, ...]
) -> None:
    """`envelope :detail "to"` used to see `alice+shop` with no domain, which is no address:
    the test never matched, and sendmail's `+detail` mail went to INBOX."""
    with_script(env, "alice", SHOP_SCRIPT)
    r = env.run("-Y", "-f", "sender@remote.test", *args, stdin=b"From sender@remote.test\n" + MSG)
    assert r.returncode == 0, r.stderr
    assert env.messages("alice@example.test", "Shop") != []
    assert env.messages("alice@example.test") == []


def test_bare_user_without_detail_is_an_address_of_the_local_domain(env: MdaEnv) -> None:
    """sendmail's `$h` is empty without a +detail: `-a ""`; Sieve still sees a full address."""
    with_script(env, "alice", SHOP_SCRIPT)
    r = env.run("-Y", "-f", "sender@remote.test", "-a", "", "-d", "alice", stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert not (env.root_of("alice@example.test") / ".Shop").exists()
    assert len(env.messages("alice@example.test", "Ours")) == 1
    # Delivered-To keeps the name sendmail gave.
    assert b"Delivered-To: alice\n" in env.messages("alice@example.test", "Ours")[0]


def test_attack_mail_for_an_account_without_a_home_is_refused_for_good(env: MdaEnv) -> None:
    """`nobody` (uid 65534, home /nonexistent) used to be a temporary failure: the MTA
    retried the mail for days before it bounced."""
    r = env.run("-f", "sender@remote.test", "-d", "nobody", stdin=MSG)
    assert r.returncode == 67, r.stderr
    assert r.stderr.startswith(b"5.2.1 <nobody>: mailbox unavailable")
    assert b"/nonexistent" in r.stderr
    check = env.run("check", "nobody")
    assert check.returncode == 67
    assert b"NOT deliverable: 5.2.1" in check.stdout


def test_first_valid_uid_is_a_setting(env: MdaEnv) -> None:
    env.write_config("")  # the config's [mail] is written by write_config; add to it below
    text = env.config.read_text().replace(
        "max_message_size = 100000\n", "max_message_size = 100000\nfirst_valid_uid = 70000\n"
    )
    env.config.write_text(text)
    r = env.run("-f", "sender@remote.test", "-d", "nobody", stdin=MSG)
    assert r.returncode == 67
    assert r.stderr.startswith(b"5.1.1 <nobody>: user unknown")


@pytest.fixture
def system_user(env: MdaEnv) -> Iterator[pwd.struct_passwd]:
    if not ROOT:
        pytest.skip("useradd needs root")
    from tests.interop.postfix import create_system_user, remove_system_user, unique_name

    name = unique_name("mdauid")
    user = create_system_user(name, env.base / "users" / name)
    try:
        yield user
    finally:
        remove_system_user(name)


def test_system_users_from_first_valid_uid_get_mail(
    env: MdaEnv, system_user: pwd.struct_passwd
) -> None:
    name, uid = system_user.pw_name, system_user.pw_uid
    assert uid >= 1000
    r = env.run("-f", "sender@remote.test", "-d", name, stdin=MSG)
    assert r.returncode == 0, r.stderr
    new = Path(system_user.pw_dir) / "Maildir" / "new"
    assert len(os.listdir(new)) == 1
    assert os.stat(next(new.iterdir())).st_uid == uid  # delivered as the user
    text = env.config.read_text().replace(
        "max_message_size = 100000\n",
        f"max_message_size = 100000\nfirst_valid_uid = {uid + 1}\n",
    )
    env.config.write_text(text)
    r = env.run("-f", "sender@remote.test", "-d", name, stdin=MSG)
    assert r.returncode == 67
    assert len(os.listdir(new)) == 1


def test_help_prints_the_usage_and_succeeds() -> None:
    for args in (["--help"], ["-h"], ["--config", "/nonexistent.toml", "--help"]):
        out = subprocess.run([MDA, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out
        assert out.stdout.strip() == USAGE
        assert out.stderr == ""


def test_usage_error_shows_the_usage_one_line_at_a_time() -> None:
    out = subprocess.run([MDA, "--no-such-option"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 64
    assert out.stderr.splitlines()[0] == "5.3.5 unknown option --no-such-option"
    assert out.stderr.splitlines()[1:] == USAGE.splitlines()
