"""`make run`, as a new user runs it: it sets up the demo, serves it, and a client can log in."""

from __future__ import annotations

import imaplib
import os
import poplib
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_PORTS = (1143, 1993, 1110, 1995)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def run_demo(demo_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    out = demo_dir.parent / "make-run.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MRA_DEMO_DIR": str(demo_dir)},
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        if " ready " in text and not port_free(1995):
            return proc, out
        if proc.poll() is not None:
            raise AssertionError(f"make run exited {proc.returncode}:\n{text}")
        time.sleep(0.2)
    raise AssertionError(f"make run did not come up:\n{out.read_text(errors='replace')}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_make_run_serves_the_demo_and_keeps_data() -> None:
    if not all(port_free(p) for p in DEMO_PORTS):
        pytest.fail("the demo ports 1143/1993/1110/1995 are taken: is a `make run` running?")
    base = Path(tempfile.mkdtemp(prefix="mra-demo-"))
    base.chmod(0o755)
    demo = base / "maildirs"
    proc, log = run_demo(demo)
    try:
        text = log.read_text()
        assert "delivered 5 demo messages through mda" in text
        assert "curl" in text and "Thunderbird" in text
        passwords = dict(
            line.split(" ", 1) for line in (demo / "demo-passwords").read_text().splitlines()
        )
        assert passwords["alice@example.test"] in text  # printed for the user
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3_SSL("127.0.0.1", 1995, context=ctx, timeout=30)
        p.user("alice@example.test")
        p.pass_(passwords["alice@example.test"])
        assert p.stat()[0] == 4  # three to her, and the one to info@ (-> team: alice, bob)
        p.quit()
        p = poplib.POP3_SSL("127.0.0.1", 1995, context=ctx, timeout=30)
        p.user("bob@example.test")
        p.pass_(passwords["bob@example.test"])
        assert p.stat()[0] == 2  # his own and the one to info@ (virtusertable -> team)
        p.quit()
        with imaplib.IMAP4("127.0.0.1", 1143) as imap:
            assert imap.welcome.startswith(b"* OK")
    finally:
        stop(proc)
    # A second run keeps the data and delivers nothing again.
    proc, log = run_demo(demo)
    try:
        assert "delivered" not in log.read_text()
        p = poplib.POP3_SSL("127.0.0.1", 1995, context=ctx, timeout=30)
        p.user("alice@example.test")
        p.pass_(passwords["alice@example.test"])
        assert p.stat()[0] == 4
        p.quit()
    finally:
        stop(proc)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="the private-directory case is root's")
def test_attack_make_run_as_root_from_a_private_directory() -> None:
    """A clone in /root or a `mktemp -d` directory (mode 700): `nobody` cannot reach the demo,
    which used to end in a traceback (passwd-file entries with uid 0, refused). Now it says it
    keeps root, serves, and does so again on a second run."""
    if not all(port_free(p) for p in DEMO_PORTS):
        pytest.fail("the demo ports 1143/1993/1110/1995 are taken: is a `make run` running?")
    base = Path(tempfile.mkdtemp(prefix="mra-private-"))
    assert base.stat().st_mode & 0o777 == 0o700
    demo = base / "maildirs"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    for run in (1, 2):
        proc, log = run_demo(demo)
        try:
            text = log.read_text()
            assert "Traceback" not in text
            assert "note: running as root, and 'nobody' cannot reach" in text
            assert ("delivered 5 demo messages" in text) == (run == 1)
            passwords = dict(
                line.split(" ", 1) for line in (demo / "demo-passwords").read_text().splitlines()
            )
            p = poplib.POP3_SSL("127.0.0.1", 1995, context=ctx, timeout=30)
            p.user("alice@example.test")
            p.pass_(passwords["alice@example.test"])
            assert p.stat()[0] == 4
            p.quit()
        finally:
            stop(proc)
