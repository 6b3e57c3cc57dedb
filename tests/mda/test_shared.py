"""`[mail] shared = true` reaches mda: a delivery into Maildirs other hosts write follows the
store's shared-storage rules (mailstore/shared.py: dotlocks judged by what this host saw)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore import shared
from mailstore.config import load_config
from mda import deliver


def _run(tmp_path: Path, shared_line: str) -> int:
    config_path = tmp_path / "mra.toml"
    config_path.write_text(
        f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n{shared_line}'
        f'[auth]\npasswd_file = "{tmp_path}/passwd"\n'
    )
    (tmp_path / "passwd").write_text("")
    message = tmp_path / "msg"
    message.write_bytes(b"Subject: x\n\nbody\n")
    request = deliver.Request()
    request.users = ["nobody-here@example.test"]  # unknown: 67, after the setting is applied
    fd = os.open(message, os.O_RDONLY)
    try:
        return deliver.run(request, load_config(str(config_path)), fd)
    finally:
        os.close(fd)


def test_shared_mode_reaches_mda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "_interval", None)
    _run(tmp_path, "shared = true\nshared_check_interval = 7\n")
    assert shared.enabled() and shared.idle_check_interval(30) == 7


def test_not_shared_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "_interval", None)
    _run(tmp_path, "")
    assert not shared.enabled()
