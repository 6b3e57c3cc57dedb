"""mda.maps.safefile: which files mda may take instructions from (SECURITY.md 5.1)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from mda.maps.errors import MapError
from mda.maps.safefile import check, default_trusted, unsafe_reason, with_mail_user

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="chown needs root")
US = default_trusted()


def reason(path: Path, trusted: frozenset[int] = US) -> str | None:
    return unsafe_reason(str(path), os.stat(path), trusted)


def make(path: Path, mode: int = 0o644) -> Path:
    path.write_text("x\n")
    path.chmod(mode)
    return path


def test_a_file_of_ours_in_our_directories_is_trusted(tmp_path: Path) -> None:
    # tmp_path lies below /tmp: sticky, and every entry on the way is ours.
    assert reason(make(tmp_path / "f")) is None
    assert check(str(tmp_path / "f"), US).st_size == 2


@pytest.mark.parametrize(
    ("mode", "why"), [(0o666, "world-writable file"), (0o664, "group-writable file")]
)
def test_writable_files_are_not(tmp_path: Path, mode: int, why: str) -> None:
    assert reason(make(tmp_path / "f", mode)) == why
    with pytest.raises(MapError, match="not trusted"):
        check(str(tmp_path / "f"), US)


def test_only_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert reason(tmp_path / "fifo") == "not a regular file"


@pytest.mark.parametrize(("mode", "kind"), [(0o777, "world"), (0o775, "group")])
def test_writable_directory_on_the_way(tmp_path: Path, mode: int, kind: str) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    f = make(d / "sub" / "f")
    d.chmod(mode)
    assert reason(f) == f"{kind}-writable directory {d}"


@needs_root
def test_owners(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    d = tmp_path / "d"
    d.mkdir()
    f = make(d / "f")
    os.chown(f, nobody, -1)
    assert reason(f) == f"owned by uid {nobody}"
    assert reason(f, with_mail_user("nobody")) is None
    assert reason(f, with_mail_user(str(nobody))) is None
    os.chown(d, nobody, -1)
    assert reason(f, US) == f"owned by uid {nobody}"
    os.chown(f, 0, -1)
    assert reason(f) == f"directory {d} is owned by uid {nobody}"


@needs_root
def test_sticky_directory_needs_a_trusted_entry(tmp_path: Path) -> None:
    d = tmp_path / "sticky"
    d.mkdir()
    d.chmod(0o1777)
    f = make(d / "f")
    assert reason(f) is None
    sub = d / "sub"
    sub.mkdir()
    g = make(sub / "g")
    os.chown(sub, pwd.getpwnam("nobody").pw_uid, -1)  # an entry someone else made first
    assert reason(g) == f"world-writable directory {d}"


def test_symbolic_links_are_followed_and_each_hop_checked(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    real = make(open_dir / "f")
    safe = tmp_path / "safe"
    safe.mkdir()
    (safe / "abs").symlink_to(real)
    (safe / "rel").symlink_to("../open/f")
    (safe / "dirlink").symlink_to(open_dir)
    assert reason(safe / "abs") is None
    open_dir.chmod(0o777)
    for link in (safe / "abs", safe / "rel", safe / "dirlink" / "f"):
        assert reason(link) == f"world-writable directory {open_dir}", link
    # The link itself lives somewhere too: a link in a writable directory is refused.
    (open_dir / "back").symlink_to(safe / "abs")
    open_dir.chmod(0o755)
    assert reason(open_dir / "back") is None
    open_dir.chmod(0o757)
    assert reason(open_dir / "back") == f"world-writable directory {open_dir}"


def test_symbolic_link_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    make(tmp_path / "f")
    st = os.stat(tmp_path / "f")
    assert unsafe_reason(str(tmp_path / "a"), st, US) == f"too many symbolic links in {tmp_path}/a"


def test_relative_path_and_dot_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "w"
    (base / "d").mkdir(parents=True)
    make(base / "f")
    monkeypatch.chdir(base / "d")
    assert unsafe_reason("./../f", os.stat("../f"), US) is None
    base.chmod(0o777)  # anyone could rename d or f away
    assert unsafe_reason("../f", os.stat("../f"), US) == f"world-writable directory {base}"
