"""Before the privilege drop: everything preloaded, and the installation readable by the
server's user (mra/preload.py)."""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def test_attack_non_ascii_folder_after_the_drop(server_factory: type[MraServer]) -> None:
    """CREATE of a folder named in Chinese needs the utf-16 codec (modified UTF-7): once the
    server is `nobody`, an interpreter under /root (pyenv) could not import it, and the answer
    was NO [SERVERBUG]. Everything is imported before the drop; nothing is imported after."""
    s = server_factory(
        '[server]\nuser = "nobody"\nrequire_readable_installation = false\n', listeners=("imap",)
    )
    os.chown(s.mail, *_nobody())
    s.start()
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    imap.login("alice@example.test", PASSWORD)
    name = "&ZeVnLIqe-"  # 日本語 in modified UTF-7
    assert imap.create(name)[0] == "OK", s.log()
    assert imap.select(name)[0] == "OK"
    assert imap.search("KOI8-R", "SUBJECT", "x")[0] in ("OK", "NO")
    imap.logout()
    assert "late-import" not in s.log()
    assert "SERVERBUG" not in s.log()


def _nobody() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def test_attack_installation_unreadable_by_the_server_user(
    server_factory: type[MraServer],
) -> None:
    """The server's own code where `[server] user` cannot read it (a clone in /root): it
    refuses to start and names the path, rather than failing later on a lazy import."""
    s = server_factory('[server]\nuser = "nobody"\n', listeners=("imap",))
    private = Path(tempfile.mkdtemp(prefix="mra-code-"))  # mode 700
    try:
        for package in ("mailstore", "mra", "mda"):
            shutil.copytree(
                REPO / package, private / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        proc = subprocess.run(
            [sys.executable, "-m", "mra.cli", "serve", "--config", str(s.config)],
            cwd=private,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(private)
    assert proc.returncode == 77, proc.stderr
    assert "[server] user 'nobody' cannot read the server's installation" in proc.stderr
    assert str(private) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreadable_installation_may_be_accepted(server_factory: type[MraServer]) -> None:
    """`[server] require_readable_installation = false` (a checkout under /root that the
    administrator knows of): the same installation is said in the log, and the server serves,
    everything imported before the drop."""
    s = server_factory(
        '[server]\nuser = "nobody"\nrequire_readable_installation = false\n', listeners=("imap",)
    )
    os.chown(s.mail, *_nobody())
    private = Path(tempfile.mkdtemp(prefix="mra-code-"))  # mode 700
    try:
        for package in ("mailstore", "mra", "mda"):
            shutil.copytree(
                REPO / package, private / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        proc = subprocess.Popen(
            [sys.executable, "-m", "mra.cli", "serve", "--config", str(s.config)],
            cwd=private,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            seen = ""
            while "listening" not in seen or "installation-unreadable" not in seen:
                line = proc.stderr.readline()
                assert line, seen  # it exited
                seen += line
            port = int(re.search(r"listener=imap address=127\.0\.0\.1:(\d+)", seen).group(1))  # type: ignore[union-attr]
            imap = imaplib.IMAP4("127.0.0.1", port)
            imap.login("alice@example.test", PASSWORD)
            assert imap.create("&ZeVnLIqe-")[0] == "OK"
            imap.logout()
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        shutil.rmtree(private)
    assert str(private) in seen
