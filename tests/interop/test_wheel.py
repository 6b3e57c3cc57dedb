"""The wheel: built from the checkout, installed with pip into a fresh venv (its dependencies
from the package index), and used from there without the checkout: `mra serve` serves IMAP,
`mda` delivers, `python -m mda.launcher` writes the fast launcher, `--version` answers."""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mailstore import __version__

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.interop]


def run(*args: str, cwd: Path | None = None, timeout: float = 600) -> str:
    out = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )
    assert out.returncode == 0, f"{args}: {out.stdout}\n{out.stderr}"
    return out.stdout


def test_wheel_installs_and_serves_in_a_fresh_venv() -> None:
    base = Path(tempfile.mkdtemp(prefix="mra-wheel-"))
    try:
        wheels = base / "wheels"
        # From a copy of the tracked files: what a clone has, nothing of this working tree's.
        source = base / "src"
        files = run("git", "ls-files", "-z", cwd=REPO).split("\0")
        for name in filter(None, files):
            if (REPO / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, source / name)
        pip = [sys.executable, "-m", "pip"]
        run(*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(source))
        [wheel] = list(wheels.glob("mra_mda-*.whl"))
        assert wheel.name == f"mra_mda-{__version__}-py3-none-any.whl"
        shutil.rmtree(source)

        venv = base / "venv"
        run(sys.executable, "-m", "venv", str(venv))
        bin_ = venv / "bin"
        run(str(bin_ / "python"), "-m", "pip", "install", "-q", str(wheel), timeout=900)
        assert run(str(bin_ / "mra"), "--version").strip() == f"mra {__version__}"
        assert run(str(bin_ / "mda"), "--version").strip() == f"mda {__version__}"
        # The installed package, not the checkout, is what runs.
        where = run(str(bin_ / "python"), "-c", "import mra; print(mra.__file__)", cwd=base)
        assert where.startswith(str(venv))
        run(str(bin_ / "python"), "-m", "mda.launcher", str(bin_ / "mda"))
        assert (bin_ / "mda").read_text().startswith(f"#!{bin_ / 'python'} -IS")

        mail = base / "mail"
        mail.mkdir()
        ids, server_user = "", ""
        if os.geteuid() == 0:  # as an administrator would: the mail is nobody's
            import pwd

            nobody = pwd.getpwnam("nobody")
            base.chmod(0o755)  # the server, once nobody, reads its installation here
            os.chown(mail, nobody.pw_uid, nobody.pw_gid)
            ids, server_user = f"{nobody.pw_uid}:{nobody.pw_gid}", '[server]\nuser = "nobody"\n'
        (base / "passwd").write_text(f"alice@example.test:{{PLAIN}}secret:{ids or ':'}::::\n")
        (base / "mra.toml").write_text(
            '[listen]\nimap = "127.0.0.1:0"\n'
            f'[auth]\npasswd_file = "{base}/passwd"\nallow_plaintext = true\n'
            f'[mail]\nlocation = "{mail}/%d/%n"\n'
            '[maps]\naliases = ""\nvirtusertable = ""\naccess = ""\nlocal_domains = ""\n'
            + server_user
        )
        config = str(base / "mra.toml")
        delivered = subprocess.run(
            [str(bin_ / "mda"), "--config", config, "-d", "alice@example.test"],
            input=b"From: bob@example.test\nSubject: from the wheel\n\nhello\n",
            capture_output=True,
            timeout=60,
        )
        assert delivered.returncode == 0, delivered.stderr
        log_path = base / "serve.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [str(bin_ / "mra"), "serve", "--config", config],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=base,
            )
        try:
            deadline = time.monotonic() + 60
            port = 0
            while time.monotonic() < deadline and not port:
                m = re.search(
                    r"listening listener=imap address=127.0.0.1:(\d+)", log_path.read_text()
                )
                if m and " ready " in log_path.read_text():
                    port = int(m.group(1))
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.1)
            assert port, log_path.read_text()
            imap = imaplib.IMAP4("127.0.0.1", port)
            imap.login("alice@example.test", "secret")
            assert imap.select("INBOX") == ("OK", [b"1"])
            assert b"from the wheel" in imap.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")[1][0][1]
            imap.logout()
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
