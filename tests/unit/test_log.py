"""The one logging path (mailstore/log.py): formats, targets, the rate limit, and `[log]`."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore import log
from mailstore.config import check_config, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    log.configure()
    log.set_tag("")
    log._windows.clear()


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_text_line_has_level_event_fields_and_pid(tmp_path: Path) -> None:
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out))
    log.info("login", proto="imap", user="alice", skipped=None)
    [line] = lines(out)
    stamp, rest = line.split(" ", 1)
    assert stamp.endswith("Z") and "T" in stamp
    assert rest == f"info login proto=imap user=alice pid={os.getpid()}"


def test_attack_forged_log_line_through_a_user_name(tmp_path: Path) -> None:
    """A user name with a newline and `key=value` text cannot start a line of its own or pass
    for a field: it is quoted and its control characters escaped."""
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out))
    log.warn("login-failed", user='x\n2026-01-01T00:00:00Z info login user=root "')
    [line] = lines(out)
    assert "\n" not in line and "\\x0a" in line
    # One field: the quoted value runs, escapes and all, up to the pid.
    assert re.fullmatch(r'\S+ warn login-failed user="(?:[^"\\]|\\.)*" pid=\d+', line), line


def test_json_format_is_one_object_a_line(tmp_path: Path) -> None:
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out), format="json", program="mda")
    log.set_tag(" worker=2")
    log.error("delivery-failed", user="bob\nx", size=12, pid="forged")
    [line] = lines(out)
    record = json.loads(line)
    assert record["event"] == "delivery-failed" and record["level"] == "error"
    assert record["program"] == "mda" and record["worker"] == 2
    assert record["user"] == "bob\nx" and record["size"] == 12
    assert record["pid"] == os.getpid()  # a field cannot overwrite the record's own keys


def test_level_filters_but_listeners_see_everything(tmp_path: Path) -> None:
    out = tmp_path / "mra.log"
    seen: list[str] = []

    def listen(level: str, event: str, fields: object) -> None:
        seen.append(event)

    log.configure(target="file", path=str(out), level="warn")
    log.subscribe(listen)
    try:
        log.info("quiet")
        log.warn("loud")
    finally:
        log.unsubscribe(listen)
    assert seen == ["quiet", "loud"]
    assert [line.split()[2] for line in lines(out)] == ["loud"]


def test_attack_repeated_error_cannot_fill_the_disk(tmp_path: Path) -> None:
    """One error a client can trigger on every command is written `rate_limit` times per
    interval; the rest are counted and reported once as `log-suppressed`."""
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out), rate_limit=3, rate_interval=0.2)
    for _ in range(1000):
        log.error("bad-thing", ip="192.0.2.1")
    log.info("other")  # info is never held back
    assert [line.split()[2] for line in lines(out)] == ["bad-thing"] * 3 + ["other"]
    time.sleep(0.3)
    log.flush_suppressed()
    last = lines(out)[-1]
    assert " warn log-suppressed event=bad-thing count=997 " in last


def test_rotated_file_is_opened_again(tmp_path: Path) -> None:
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out))
    log.info("before")
    out.rename(tmp_path / "mra.log.1")
    log.info("after")
    assert [line.split()[2] for line in lines(out)] == ["after"]
    assert [line.split()[2] for line in lines(tmp_path / "mra.log.1")] == ["before"]


def test_attack_log_path_is_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "shadow"
    target.write_text("")
    (tmp_path / "mra.log").symlink_to(target)
    with pytest.raises(OSError):
        log.configure(target="file", path=str(tmp_path / "mra.log"))
    assert target.read_text() == ""


def test_syslog_datagrams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    monkeypatch.setattr(log, "SYSLOG_SOCKET", path)
    try:
        log.configure(target="syslog", facility="local3", program="mra")
        log.warn("disk-full", path="/var/mail")
        data = server.recv(4096).decode()
    finally:
        server.close()
    assert data.startswith(f"<{19 * 8 + 4}>")  # local3.warning (RFC 3164 4.1.1)
    assert f"mra[{os.getpid()}]: warn disk-full path=/var/mail" in data


def test_journald_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    monkeypatch.setattr(log, "JOURNAL_SOCKET", path)
    try:
        log.configure(target="journald")
        log.info("login", user="alice", note="two\nlines")
        data = server.recv(65536)
    finally:
        server.close()
    assert b"\nMRA_USER=alice\n" in data and b"\nMRA_EVENT=login\n" in data
    assert b"\nMRA_NOTE\n" + (9).to_bytes(8, "little") + b"two\nlines\n" in data


def test_stdlib_logging_is_forwarded(tmp_path: Path) -> None:
    out = tmp_path / "mra.log"
    log.configure(target="file", path=str(out))
    log.forward_stdlib_logging()
    logging.getLogger("mailstore.userdb").warning("line %d of %s is bad", 3, "passwd")
    [line] = lines(out)
    assert " warn log logger=mailstore.userdb " in line
    assert 'message="line 3 of passwd is bad"' in line


def test_log_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "mra.toml"
    path.write_text(
        '[log]\ntarget = "file"\nformat = "xml"\nlevel = "loud"\n[listen]\nadmin = "127.0.0.1:9"\n'
    )
    messages = [p.message for p in check_config(str(path))]
    assert any("[log] format must be one of" in m for m in messages)
    assert any("[log] level must be one of" in m for m in messages)
    assert any('target = "file" needs a path' in m for m in messages)
    assert any("[listen] admin must be a unix socket" in m for m in messages)
    ok = tmp_path / "ok.toml"
    ok.write_text('[log]\ntarget = "file"\npath = "mra.log"\nformat = "json"\n')
    assert check_config(str(ok)) == []
    assert load_config(str(ok)).log.path == str(tmp_path / "mra.log")


def test_version_flags() -> None:
    from mailstore import __version__

    out = subprocess.run(
        [sys.executable, "-m", "mda", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"mda {__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == f"mra {__version__}"
    # One version: the wheel's metadata reads it from mailstore (tests/interop/test_wheel.py).
    assert 'version = { attr = "mailstore.__version__" }' in (REPO / "pyproject.toml").read_text()
