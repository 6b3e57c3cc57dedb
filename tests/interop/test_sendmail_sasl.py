"""sendmail's SMTP AUTH through Cyrus SASL, checked by our saslauthd socket.

The tutorial's set-up: sendmail offers `confAUTH_MECHANISMS` and relays for clients that
authenticated with a mechanism in `TRUST_AUTH_MECH`; libsasl2 runs PLAIN and LOGIN itself and
asks saslauthd for the password check (`pwcheck_method: saslauthd` in Sendmail.conf). Here
saslauthd is `mra serve`'s `[listen] saslauthd`, so sendmail checks mra's users.

One thing of this private set-up (see tests/interop/sendmail.py): Sendmail.conf can only be
/etc/sasl2/Sendmail.conf (sendmail empties its environment before it starts libsasl2), which
the fixture writes and removes. libsasl2 reaches saslauthd by a unix socket path only:
`[listen.saslauthd] address = "unix:PATH"`, mode 0600 and owned by the server's user by
default, which suits sendmail (its daemon runs as root).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.interop.sendmail import (
    SASL_CONF,
    SendmailInstance,
    ensure_sendmail,
    instance_dir,
    sasl_config,
)
from tests.interop.test_sendmail_mda import mda_entry
from tests.mra.conftest import PASSWORD, MraServer

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TIMEOUT = 60.0
# The README's lines for sendmail's SMTP AUTH (sendmail.mc and Sendmail.conf).
MC_AUTH = """\
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
"""


def sendmail_conf(mux: str) -> dict[str, str]:
    return {"pwcheck_method": "saslauthd", "saslauthd_path": mux, "mech_list": "PLAIN LOGIN"}


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass
class AuthSite:
    sendmail: SendmailInstance
    mra: MraServer
    swaks: str

    def swaks_run(self, *args: str) -> str:
        """swaks from 127.0.0.2: sendmail lets its own host (127.0.0.1, localhost) relay
        without AUTH; another loopback address is just a client."""
        proc = subprocess.run(
            [
                self.swaks,
                "--server",
                "127.0.0.1",
                "--port",
                str(self.sendmail.port),
                "--local-interface",
                "127.0.0.2",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def auth_site() -> Iterator[AuthSite]:
    if os.geteuid() != 0:
        _missing("the private sendmail runs as root")
    swaks = shutil.which("swaks")
    if swaks is None:
        _missing("swaks is not installed: install the Debian package swaks")
    assert swaks is not None
    problem = ensure_sendmail()
    if problem:
        _missing(f"the private sendmail cannot run: {problem} (see .ci/run)")
    if SASL_CONF.exists():
        _missing(f"{SASL_CONF} exists: this machine's own sendmail set-up is not ours to change")
    base = instance_dir("sendmail-sasl-")
    (base / "mra").mkdir(mode=0o755)
    mra = MraServer(base / "mra", listeners=("pop3",))
    mra.config.write_text(
        mra.config.read_text() + f'[listen.saslauthd]\naddress = "unix:{base}/mux"\n'
    )
    mra.start()
    sendmail = SendmailInstance(
        base / "sendmail",
        mda_path=mda_entry(),
        mda_argv="mda -Y -f $g -a $h -d $u",
        local_domains=["example.test"],
        mc_extra=MC_AUTH,
        resolvable=("example.test",),
    )
    try:
        with sasl_config(sendmail_conf(str(base / "mux"))), sendmail:
            yield AuthSite(sendmail, mra, swaks)
    finally:
        mra.stop()
        if not os.environ.get("SENDMAIL_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


def auth_then_relay(site: AuthSite, mech: str, user: str, password: str) -> tuple[str, str]:
    """The reply to AUTH and, after a 235, to a RCPT TO a remote address ("" if none)."""
    out = site.swaks_run(
        "--ehlo",
        "client.test",
        "--auth",
        mech,
        "--auth-user",
        user,
        "--auth-password",
        password,
        "--from",
        "alice@example.test",
        "--to",
        "friend@remote.example",
        "--quit-after",
        "RCPT",
    )
    replies = re.findall(r"^<[-~*]+ +(\d{3} .*)$", out, re.MULTILINE)
    verdicts = [r for r in replies[2:] if not r.startswith(("334", "221"))]
    assert verdicts, out
    if not verdicts[0].startswith("235"):
        return verdicts[0], ""
    assert verdicts[1].startswith("250"), out  # MAIL FROM
    return verdicts[0], verdicts[2]


def test_ehlo_offers_the_configured_mechanisms(auth_site: AuthSite) -> None:
    out = auth_site.swaks_run("--quit-after", "EHLO")
    (line,) = re.findall(r"^<-  250-AUTH (.*)$", out, re.MULTILINE)
    assert sorted(line.split()) == ["LOGIN", "PLAIN"]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_smtp_auth_through_cyrus_sasl_to_our_saslauthd(auth_site: AuthSite, mech: str) -> None:
    auth, rcpt = auth_then_relay(auth_site, mech, "alice@example.test", PASSWORD)
    assert auth.startswith("235 2.0.0 OK Authenticated"), auth
    # TRUST_AUTH_MECH: an authenticated client may relay.
    assert rcpt.startswith("250 2.1.5"), rcpt
    auth, _ = auth_then_relay(auth_site, mech, "alice@example.test", "not-" + PASSWORD)
    assert auth.startswith("535 5.7.0"), auth
    auth, _ = auth_then_relay(auth_site, mech, "nobody-here@example.test", PASSWORD)
    assert auth.startswith("535 5.7.0"), auth
    log = auth_site.mra.log()
    assert "login-failed proto=saslauthd login=nobody-here@example.test" in log
    assert PASSWORD not in log


def test_without_auth_no_relaying(auth_site: AuthSite) -> None:
    out = auth_site.swaks_run(
        "--from", "alice@example.test", "--to", "friend@remote.example", "--quit-after", "RCPT"
    )
    assert re.search(r"^<\*\* +550 5\.7\.1 .*Relaying denied", out, re.MULTILINE), out
