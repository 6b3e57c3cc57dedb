"""`make run`, as a new user runs it: it sets up the demo, serves it, and a client can log in."""

from __future__ import annotations

import imaplib
import os
import poplib
import shutil
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


def system_python() -> str | None:
    """A Python 3.11+ outside any user's home (the distribution's), for the ordinary user."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            done = subprocess.run(
                [candidate, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 11))"],
                capture_output=True,
            )
            if done.returncode == 0:
                return candidate
    return None


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="making a user (useradd) is root's")
def test_make_run_as_an_ordinary_user_from_a_private_clone(tmp_path: Path) -> None:
    """A new user clones into a directory only they can enter and runs `make run` with the
    system Python: it builds .venv, serves, says in one line that it has no privileges to
    drop, and does so again on a second run; never a traceback."""
    python = system_python()
    if python is None or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("needs a system Python 3.11, useradd and setpriv")
    if not all(port_free(p) for p in DEMO_PORTS):
        pytest.fail("the demo ports 1143/1993/1110/1995 are taken: is a `make run` running?")
    user = f"mrarun{os.getpid() % 100000}"
    base = Path(tempfile.mkdtemp(prefix="mra-user-"))  # pytest's own tmp_path is root's only
    base.chmod(0o755)
    home = base / "home"
    subprocess.run(
        ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", "-U", user],
        check=True,
        capture_output=True,
    )
    try:
        home.chmod(0o700)
        clone = home / "private" / "mra"
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, files):
            source = REPO / os.fsdecode(name)
            if source.is_file():
                target = clone / os.fsdecode(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        (home / "private").chmod(0o700)
        subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
        env = {
            "HOME": str(home),
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHON": python,
            "LANG": "C.UTF-8",
            **{k: v for k, v in os.environ.items() if k.startswith("PIP_")},
        }
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
        for run in (1, 2):
            out = tmp_path / f"make-run-{run}.log"
            with open(out, "wb") as log:
                proc = subprocess.Popen(
                    [*as_user, "make", "--no-print-directory", "run"],
                    cwd=clone,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            try:
                deadline = time.monotonic() + 900  # the first run builds .venv
                while " ready " not in out.read_text(errors="replace") or port_free(1995):
                    assert proc.poll() is None, out.read_text(errors="replace")
                    assert time.monotonic() < deadline, out.read_text(errors="replace")
                    time.sleep(0.5)
                text = out.read_text(errors="replace")
                assert "Traceback" not in text
                assert f"note: running as {user}: no privileges to drop" in text
                assert ("delivered 5 demo messages" in text) == (run == 1)
                passwords = dict(
                    line.split(" ", 1)
                    for line in (clone / "maildirs" / "demo-passwords").read_text().splitlines()
                )
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                p = poplib.POP3_SSL("127.0.0.1", 1995, context=ctx, timeout=30)
                p.user("alice@example.test")
                p.pass_(passwords["alice@example.test"])
                assert p.stat()[0] == 4
                p.quit()
                mail = clone / "maildirs" / "mail"
                assert mail.stat().st_uid == home.stat().st_uid  # the user's, not root's
            finally:
                stop(proc)
            assert "Traceback" not in out.read_text(errors="replace")
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
