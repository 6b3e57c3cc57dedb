"""What the protocol benchmarks share: who owns the mail, where it can live, free ports."""

from __future__ import annotations

import os
import pwd
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MAIL_USER = "nobody"  # Dovecot refuses to access mail as root


def server_user_line() -> str:
    """The `[server] user` line of our server's configuration: as root, drop to the mail user
    when it can read our installation and interpreter (mra serve refuses to start otherwise,
    exit 77); from a checkout it cannot enter (a clone under /root) the server stays root, as
    the test suite's servers do."""
    if os.geteuid() != 0:
        return ""
    import sys

    def others_reach(path: Path) -> bool:
        return all(p.stat().st_mode & 0o001 for p in path.parents)

    here = Path(__file__).resolve()
    python = Path(sys.executable).resolve()
    if others_reach(here) and others_reach(python):
        return f'user = "{MAIL_USER}"\n'
    return ""


def mail_ids() -> tuple[int, int]:
    """Who owns the mail: nobody as root (Dovecot refuses to access mail as root)."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam(MAIL_USER)
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def traversable_tempdir(prefix: str) -> Path:
    """A fresh mode-0755 directory whose ancestors all let the mail user through."""

    def ok(path: Path) -> bool:
        return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])

    for parent in (Path(tempfile.gettempdir()), Path("/var/tmp"), Path("/tmp")):
        if parent.is_dir() and ok(parent):
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            path.chmod(0o755)
            return path
    raise SystemExit("no temporary directory that the mail user can traverse")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_mra(
    log: Callable[[], str],
    proc: subprocess.Popen[bytes],
    listener: str,
    label: str,
    timeout: float,
) -> int:
    """Wait until `mra serve` says `ready`; the port its `listener` got (it was asked for 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log()
        m = re.search(rf"listening listener={listener} address=[\d.]+:(\d+)", text)
        if m and " ready " in text:
            return int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"{label} exited {proc.returncode}:\n{text}")
        time.sleep(0.05)
    raise RuntimeError(f"{label} did not start:\n{log()}")
