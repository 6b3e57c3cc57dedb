"""SMTP AUTH in a real Postfix, checked by our auth socket (`smtpd_sasl_type = dovecot`).

A private Postfix (tests/interop/postfix.py) asks a real `mra serve` over the Dovecot auth
protocol, on a unix socket in Postfix's queue directory given to the `postfix` user. swaks
plays the SMTP client with `--auth PLAIN` and `--auth LOGIN`: the right password is 235, a
wrong one and an unknown user 535, exactly as with Dovecot's auth behind it. The settings
are the README's (section "SMTP AUTH: the MTA checks passwords with mra").

Without Postfix or swaks (or without root) the tests are skipped on a developer's machine and
FAIL under CI (`CI` set), as the other interop tests.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.interop.postfix import (
    INSTALL_HINT,
    PostfixInstance,
    postfix_available,
    remove_tree,
    running_as_root,
    traversable_tempdir,
)
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

SWAKS_PACKAGE = "swaks"
TIMEOUT = 60.0


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# The socket lives in Postfix's queue directory, where a chrooted smtpd (Debian's default)
# still finds it; Postfix's smtpd runs as `postfix`, so the socket is given to that user.
SOCKET = "private/mra-auth"


def sasl_settings() -> dict[str, str]:
    """The README's Postfix settings for SMTP AUTH through our auth socket."""
    return {
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": SOCKET,
        "smtpd_sasl_security_options": "noanonymous",
        # Loopback, so no TLS here; on a public port: smtpd_tls_auth_only = yes.
        "smtpd_tls_auth_only": "no",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject_unauth_destination",
        "mynetworks": "127.0.0.1/32",
    }


def mra_auth_listener(postfix: PostfixInstance) -> str:
    """The README's `[listen]` entry for it (MraServer writes `[listen]` itself; TOML lets a
    sub-table follow it anywhere)."""
    return (
        "[listen.auth]\n"
        f'address = "unix:{postfix.queue_dir}/{SOCKET}"\n'
        'owner = "postfix"\ngroup = "postfix"\nmode = 0o660\n'
    )


@pytest.fixture(scope="module")
def swaks() -> str:
    path = shutil.which("swaks")
    if path is None:
        _missing(f"swaks is not installed: install the Debian package {SWAKS_PACKAGE}")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def mail_system(swaks: str) -> Iterator[tuple[PostfixInstance, MraServer]]:
    if not running_as_root():
        _missing("Postfix must be started as root")
    if not postfix_available():
        _missing(f"Postfix is not installed ({INSTALL_HINT})")
    base = traversable_tempdir("postfix-sasl-")
    (base / "mra").mkdir(mode=0o755)
    postfix = PostfixInstance(base / "postfix", main_cf=sasl_settings())
    # smtpd asks the socket as soon as a client connects, so it must be there before Postfix
    # starts: make queue/private as `postfix start` would (owned by postfix, mode 0700).
    private = postfix.queue_dir / "private"
    private.mkdir(mode=0o700, parents=True)
    pw = pwd.getpwnam("postfix")
    os.chown(private, pw.pw_uid, pw.pw_gid)
    mra = MraServer(base / "mra", listeners=("pop3",))
    mra.config.write_text(mra.config.read_text() + mra_auth_listener(postfix))
    try:
        mra.start()
        with postfix:
            yield postfix, mra
    finally:
        mra.stop()
        if not os.environ.get("POSTFIX_KEEP"):
            remove_tree(base)


RELAY_DENIED = "Relay access denied"


def swaks_run(swaks: str, postfix: PostfixInstance, *args: str) -> str:
    proc = subprocess.run(
        [swaks, "--server", postfix.host, "--port", str(postfix.port), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return proc.stdout + proc.stderr


def smtp_auth(
    swaks: str, postfix: PostfixInstance, mech: str, user: str, password: str
) -> tuple[str, bool | None]:
    """The server's reply code to the AUTH exchange, and whether a RCPT TO a remote address
    after it passed the relay check (None when swaks gave up after a failed AUTH). Relaying is
    allowed to SASL-authenticated clients only (`permit_sasl_authenticated`); the recipient is
    refused after that check all the same, since this Postfix sends nothing out."""
    output = swaks_run(
        swaks,
        postfix,
        "--ehlo",
        "client.test",
        "--auth",
        mech,
        "--auth-user",
        user,
        "--auth-password",
        password,
        "--from",
        "sender@example.test",
        "--to",
        "friend@remote.example",
        "--quit-after",
        "RCPT",
    )
    # swaks marks what the server sent with "<-" ("<~" under TLS), an error reply "<**".
    # The last line of each reply only (a multi-line reply has "250-" before it).
    replies = re.findall(r"^<[-~*]\*? +((\d{3}) .*)$", output, re.MULTILINE)
    assert replies, f"no server replies in swaks' output:\n{output}"
    assert re.search(r"^<-  250-AUTH .*\bPLAIN\b", output, re.MULTILINE), output
    # The greeting, EHLO, the challenges (334) and QUIT (221) aside, the verdicts.
    verdicts = [(code, text) for text, code in replies[2:] if code not in ("334", "221")]
    auth = verdicts[0][0]
    if auth != "235":
        assert len(verdicts) == 1, output  # nothing after a failed AUTH
        return auth, None
    (mail, _), (_, rcpt) = verdicts[1:3]
    assert mail == "250", output
    return auth, RELAY_DENIED not in rcpt


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtp_auth_through_the_auth_socket(
    mail_system: tuple[PostfixInstance, MraServer], swaks: str, mech: str
) -> None:
    postfix, mra = mail_system
    user = "alice@example.test"
    assert smtp_auth(swaks, postfix, mech, user, PASSWORD) == ("235", True), postfix.log()
    assert smtp_auth(swaks, postfix, mech, user, "not-" + PASSWORD) == ("535", None)
    assert smtp_auth(swaks, postfix, mech, "nobody-here@example.test", PASSWORD) == (
        "535",
        None,
    )
    assert f"SASL {mech} authentication failed" in postfix.log()
    # Our log names the failures, with the SMTP client's address Postfix passed as rip=
    # (successes are Postfix's to log, and a debug line of ours).
    log = mra.log()
    assert f"login-failed proto=auth login={user} ip=127.0.0.1 mech={mech}" in log
    assert "login-failed proto=auth login=nobody-here@example.test" in log
    assert PASSWORD not in log


def test_ehlo_offers_what_the_auth_socket_announces(
    mail_system: tuple[PostfixInstance, MraServer], swaks: str
) -> None:
    postfix, _ = mail_system
    output = swaks_run(swaks, postfix, "--quit-after", "EHLO")
    (line,) = re.findall(r"^<-  250-AUTH (.*)$", output, re.MULTILINE)
    # SHA512-CRYPT hashes only: no challenge-response mechanism can work, none is offered.
    assert sorted(line.split()) == ["LOGIN", "PLAIN"]
    # Without AUTH, the same RCPT is refused by the relay check: the 235 above is what let
    # the client through.
    output = swaks_run(
        swaks,
        postfix,
        "--from",
        "a@example.test",
        "--to",
        "b@remote.example",
        "--quit-after",
        "RCPT",
    )
    assert RELAY_DENIED in output, output
