"""The workers' control directory (mra/net/control.py): private, and not left behind by a
server that was killed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from mra.net.control import PID_FILE, PREFIX, make_directory, remove_stale


def _control(parent: Path, name: str, pid: int | str) -> Path:
    directory = parent / f"{PREFIX}{name}"
    directory.mkdir(mode=0o700)
    (directory / PID_FILE).write_text(f"{pid}\n")
    return directory


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_attack_killed_servers_leave_control_directories_forever(tmp_path: Path) -> None:
    """SIGKILL gives the parent no time to remove its directory: the next start does, and
    only that: a live server's directory, one being made, a link and a look-alike stay."""
    dead = _control(tmp_path, "abc", _dead_pid())
    (dead / "worker-1").write_bytes(b"")
    live = _control(tmp_path, "def", os.getpid())
    starting = tmp_path / f"{PREFIX}ghi"
    starting.mkdir()
    garbage = _control(tmp_path, "jkl", "x1")
    target = _control(tmp_path, "elsewhere-", _dead_pid()).rename(tmp_path / "elsewhere")
    (target / "precious").write_bytes(b"keep")
    link = tmp_path / f"{PREFIX}mno"
    link.symlink_to(target)
    made = Path(make_directory(str(tmp_path), ""))
    assert not dead.exists()
    assert live.is_dir() and starting.is_dir() and garbage.is_dir() and link.is_symlink()
    assert (target / "precious").read_bytes() == b"keep"
    assert made.name.startswith(PREFIX) and len(made.name) == len(PREFIX) + 8
    assert (made / PID_FILE).read_text() == f"{os.getpid()}\n"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_directory_owned_by_someone_else_stays(tmp_path: Path) -> None:
    dead = _control(tmp_path, "abc", _dead_pid())
    assert remove_stale(str(tmp_path), {os.geteuid() + 1}) == []
    assert dead.is_dir()
    assert remove_stale(str(tmp_path), {os.geteuid()}) == [dead.name]
