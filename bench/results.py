"""What a benchmark run measured, kept for `python -m bench.charts`.

Each benchmark prints its own tables as it goes; it also hands its figures to a `Recorder`,
which writes `bench/results/NAME.json` when the run ends: the tables as they were printed
(cells as text, so nothing is reformatted later) and the series to draw, with the machine's
state at the time (CPUs, load, Python, Dovecot). `bench.charts` turns every JSON file there
into PNG charts and one Markdown page, `bench/results/README.md`, which the README links to.

A run that was interrupted or failed writes nothing: the page always shows complete runs.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FORMAT = 1


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Chart:
    """`kind`: "bar" (one group of bars per x, one bar per series) or "line" (x numeric).
    A None in a series is a value that was not measured (a reference not installed)."""

    title: str
    kind: str
    x_label: str
    y_label: str
    x: list[str | float]
    series: dict[str, list[float | None]]
    log_x: bool = False
    log_y: bool = False


@dataclass
class Recorder:
    bench: str
    note: str = ""
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        self.tables.append(Table(title, list(columns), [[str(c) for c in row] for row in rows]))

    def chart(self, chart: Chart) -> None:
        if chart.kind not in ("bar", "line"):
            raise ValueError(f"unknown chart kind {chart.kind!r}")
        for name, values in chart.series.items():
            if len(values) != len(chart.x):
                raise ValueError(f"series {name!r}: {len(values)} values for {len(chart.x)} x")
        self.charts.append(chart)

    def save(self, directory: Path | None = None) -> Path:
        """Write NAME.json (atomically: a reader never sees half a file) into `directory`,
        else $BENCH_RESULTS, else bench/results/."""
        directory = directory or Path(os.environ.get("BENCH_RESULTS") or RESULTS_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "bench": self.bench,
            "note": self.note,
            "machine": machine(),
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "tables": [asdict(t) for t in self.tables],
            "charts": [asdict(c) for c in self.charts],
        }
        path = directory / f"{self.bench}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
        return path


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "dovecot": dovecot_version(),
        "system": platform.platform(terse=True),
    }


def dovecot_version() -> str:
    try:
        out = subprocess.run(
            ["dovecot", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def load(path: Path) -> dict[str, Any]:
    """One results file, checked enough that a damaged one is refused with its name."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a results file of format {FORMAT}")
    for key in ("bench", "tables", "charts", "machine"):
        if key not in data:
            raise ValueError(f"{path}: no {key!r}")
    return data
