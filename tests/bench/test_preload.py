"""bench.preload, as README's "What the preload costs" runs it (one start of each server
instead of five): the preloading server imports nothing after its privilege drop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.geteuid() != 0, reason="the preload happens before a privilege drop")
def test_readme_preload_measurement() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("**What the preload costs.**", 1)[1]
    (command,) = re.findall(r"```sh\nsudo (\S+ .*?)\s+#", section)
    argv = command.replace(".venv/bin/python", sys.executable).replace("--runs 5", "--runs 1")
    done = subprocess.run(
        argv.split(), cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    rows = {
        line.split()[0]: [float(x) for x in line.split()[1:]]
        for line in done.stdout.splitlines()
        if line.split()[:1] in (["preload"], ["lazy"]) and "all runs" not in line
    }
    assert set(rows) == {"preload", "lazy"}, done.stdout
    first_ms, cpu_ms, _check, rss, rss_session, _cpu, late = rows["preload"]
    assert first_ms > 0 and cpu_ms > 0 and rss > 10 and rss_session >= rss - 1
    assert late == 0  # nothing imported after the drop
