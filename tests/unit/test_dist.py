"""The systemd unit in dist/ is one systemd accepts, with every option spelled right."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    venv = str(Path(sys.executable).parent.parent)
    unit = (REPO / "dist" / "mra.service").read_text().replace("/opt/mra/.venv", venv)
    (tmp_path / "mra.service").write_text(unit)
    out = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mra.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
