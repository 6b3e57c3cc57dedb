"""`python -m bench.charts [DIR]`: draw the charts and write the page of the last results.

Reads every `NAME.json` a benchmark left in `bench/results/` (see bench/results.py), draws
each chart as `NAME-N.png` (matplotlib, no display needed) and writes `README.md` there: per
benchmark, when and where it ran, its tables in Markdown and its charts. Needs matplotlib
(`make bench` installs it: `pip install -e '.[bench]'`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.results import RESULTS_DIR, load

# The order benchmarks appear in on the page; others follow by name.
ORDER = [
    "load",
    "imap",
    "idle",
    "pop3",
    "lmtp",
    "mda",
    "store",
    "condstore",
    "sort",
    "auth",
    "cluster",
]


def markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    for row in rows:
        padded = list(row) + [""] * (len(columns) - len(row))
        lines.append("| " + " | ".join(cell(c) for c in padded) + " |")
    return lines


def draw(chart: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(chart["x"])
    series: dict[str, list[float | None]] = chart["series"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if chart["kind"] == "bar":
        n = max(1, len(series))
        width = 0.8 / n
        for i, (name, values) in enumerate(series.items()):
            positions = [j + (i - (n - 1) / 2) * width for j in range(len(x))]
            heights = [v if v is not None else 0.0 for v in values]
            bars = ax.bar(positions, heights, width, label=name)
            for bar, value in zip(bars, values, strict=True):
                if value is None:
                    bar.set_hatch("//")
                    bar.set_alpha(0.2)
        ax.set_xticks(range(len(x)))
        if len(x) > 5:
            ax.set_xticklabels([str(v) for v in x], rotation=30, ha="right")
        else:
            ax.set_xticklabels([str(v) for v in x])
    else:
        for name, values in series.items():
            points = [(xv, v) for xv, v in zip(x, values, strict=True) if v is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    if chart.get("log_x"):
        ax.set_xscale("log")
    if chart.get("log_y"):
        ax.set_yscale("log")
    ax.set_title(str(chart["title"]))
    ax.set_xlabel(str(chart["x_label"]))
    ax.set_ylabel(str(chart["y_label"]))
    ax.grid(True, axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render(directory: Path) -> Path:
    """Draw every chart and write README.md; return the page's path."""
    files = sorted(p for p in directory.glob("*.json"))
    results = [load(p) for p in files]
    rank = {name: i for i, name in enumerate(ORDER)}
    results.sort(key=lambda r: (rank.get(str(r["bench"]), len(ORDER)), str(r["bench"])))
    page = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.charts`) from the last complete run of each",
        "benchmark on the machine named under it. Every reference ran in the same run, on the",
        "same machine; ratios and the servers' CPU time per operation matter more than absolute",
        "figures, since the machines are shared.",
        "",
    ]
    for result in results:
        name = str(result["bench"])
        machine: dict[str, Any] = result["machine"]
        page += [f"## bench.{name}", ""]
        page.append(
            f"{result['started']}, {result['seconds']} s; {machine['cpus']} CPUs, load "
            f"{machine['load']}; {machine['python']}; Dovecot {machine['dovecot'] or 'absent'}."
        )
        if result.get("note"):
            page += ["", str(result["note"])]
        tables: list[dict[str, Any]] = result["tables"]
        charts: list[dict[str, Any]] = result["charts"]
        for table in tables:
            page += ["", f"**{table['title']}**", ""]
            page += markdown_table(table["columns"], table["rows"])
        for i, chart in enumerate(charts, 1):
            png = f"{name}-{i}.png"
            draw(chart, directory / png)
            page += ["", f"![{chart['title']}]({png})"]
        page.append("")
    out = directory / "README.md"
    out.write_text("\n".join(page))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else RESULTS_DIR
    if not directory.is_dir() or not any(directory.glob("*.json")):
        print(f"no results in {directory}: run a benchmark first (make bench)", file=sys.stderr)
        return 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    print(render(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
