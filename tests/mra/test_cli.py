"""The `mra` command line: check-config, user management, and the twistd plugin."""

from __future__ import annotations

import os
import poplib
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailstore.userdb import PasswdFile
from mra.auth.passwords import verify
from tests.mra.conftest import MraServer

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def mra(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mra"), *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_check_config_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    cfg = tmp_path / "mra.toml"
    cfg.write_text('[listen]\nimap = "127.0.0.1:99999"\n[server]\nworkers = "two"\nbogus = 1\n')
    r = mra("check-config", "--config", str(cfg))
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(f"{cfg}:2:" in line for line in lines)
    assert any(f"{cfg}:4:" in line and "workers" in line for line in lines)
    assert any(f"{cfg}:5:" in line and "bogus" in line for line in lines)
    cfg.write_text('[listen]\nimap = "127.0.0.1:143"\n')
    r = mra("check-config", "--config", str(cfg))
    assert r.returncode == 0 and "OK" in r.stdout


def test_user_add_passwd_list_del(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("# keep this comment\nwendy:{PLAIN}x:::::: \n")
    cfg = tmp_path / "mra.toml"
    cfg.write_text(f'[auth]\npasswd_file = "{passwd}"\n')
    assert (
        mra(
            "user",
            "add",
            "bob@example.test",
            "--password-stdin",
            "--config",
            str(cfg),
            stdin="first-pw\n",
        ).returncode
        == 0
    )
    r = mra(
        "user", "add", "bob@example.test", "--password-stdin", "--config", str(cfg), stdin="x\n"
    )
    assert r.returncode == 1 and "exists" in r.stderr
    user = PasswdFile.load(str(passwd), location="/var/vmail/%d/%n").lookup("bob@example.test")
    assert user is not None and verify(user.password, b"first-pw")
    assert user.password.startswith(("{ARGON2ID}", "{BLF-CRYPT}"))
    assert (
        mra(
            "user",
            "passwd",
            "bob@example.test",
            "--password-stdin",
            "--config",
            str(cfg),
            stdin="second-pw\n",
        ).returncode
        == 0
    )
    user = PasswdFile.load(str(passwd), location="/var/vmail/%d/%n").lookup("bob@example.test")
    assert user is not None and verify(user.password, b"second-pw")
    assert mra("user", "list", "--config", str(cfg)).stdout.split() == ["wendy", "bob@example.test"]
    assert mra("user", "del", "wendy", "--config", str(cfg)).returncode == 0
    assert passwd.read_text().startswith("# keep this comment\n")
    assert "wendy" not in passwd.read_text()
    assert "second-pw" not in passwd.read_text()


def test_twistd_plugin_serves(server_factory: type[MraServer]) -> None:
    s = server_factory(listeners=("pop3",))
    text = s.config.read_text().replace('pop3 = "127.0.0.1:0"', 'pop3 = "127.0.0.1:21119"')
    s.config.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [str(BIN / "twistd"), "-n", "--pidfile=", "mra", "--config", str(s.config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                p = poplib.POP3("127.0.0.1", 21119, timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert p.getwelcome().startswith(b"+OK")
        p.quit()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
