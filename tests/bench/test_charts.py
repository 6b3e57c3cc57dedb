"""bench.results and bench.charts: what a benchmark records becomes a page with tables and
charts; and one real benchmark (bench.load, shortened) records what it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import charts
from bench.results import Chart, Recorder, load

ROOT = Path(__file__).resolve().parents[2]


def test_recorded_tables_and_charts_become_a_page(tmp_path: Path) -> None:
    rec = Recorder("imap", "a note")
    rec.table("Phases", ["phase", "ours", "dovecot"], [["LOGIN", "3.1", "4.0"], ["A|B", "1", "-"]])
    rec.chart(
        Chart(
            "Bars",
            "bar",
            "",
            "ms",
            ["LOGIN", "SELECT"],
            {"ours": [3.1, 1.0], "dovecot": [4.0, None]},
            log_y=True,
        )
    )
    rec.chart(
        Chart(
            "Lines",
            "line",
            "messages",
            "ms",
            [10.0, 100.0, 1000.0],
            {"open": [1.0, 5.0, 40.0]},
            log_x=True,
        )
    )
    path = rec.save(tmp_path)
    assert load(path)["bench"] == "imap"
    Recorder("load").save(tmp_path)
    page = charts.render(tmp_path).read_text()
    # load comes before imap on the page, whatever the file names' order
    assert page.index("## bench.load") < page.index("## bench.imap")
    assert "| LOGIN | 3.1 | 4.0 |" in page
    assert "| A\\|B | 1 | - |" in page  # a | in a cell does not break the table
    assert "![Bars](imap-1.png)" in page and "![Lines](imap-2.png)" in page
    for name in ("imap-1.png", "imap-2.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_a_series_of_the_wrong_length_is_refused() -> None:
    rec = Recorder("x")
    with pytest.raises(ValueError, match="2 values for 3"):
        rec.chart(Chart("t", "bar", "", "", ["a", "b", "c"], {"s": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="kind"):
        rec.chart(Chart("t", "pie", "", "", ["a"], {"s": [1.0]}))


def test_a_file_of_another_format_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"format": 0}))
    with pytest.raises(ValueError, match=r"old\.json"):
        charts.render(tmp_path)


def test_charts_without_results_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert charts.main([str(tmp_path)]) == 1
    assert "no results" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_load_records_what_it_measured(tmp_path: Path) -> None:
    env = dict(os.environ, BENCH_RESULTS=str(tmp_path))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--clients",
            "2",
            "--seconds",
            "2",
            "--messages",
            "20",
            "--no-dovecot",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = load(tmp_path / "load.json")
    (table,) = data["tables"]
    (row,) = table["rows"]
    assert row[:2] == ["2", "ours"]
    rate = float(row[2].replace(",", ""))
    assert f"= {row[2]}/s" in out.stdout and rate > 0
    assert f"server CPU {row[3]} ms per command" in out.stdout  # the figure printed, not another
    assert data["charts"][0]["title"].startswith("Mixed IMAP load")
