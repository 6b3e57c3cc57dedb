"""mra(8), mda(8) and mra.toml(5) come from README.md (mra/manpages.py): groff reads them
without a warning, and together they name every setting of the configuration."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mailstore.config import _SECTIONS
from mra import manpages

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("man")
    written = manpages.write_all(out, REPO / "README.md")
    return {p.name: p.read_text() for p in written}


def test_three_pages_with_their_sections(pages: dict[str, str]) -> None:
    assert sorted(pages) == ["mda.8", "mra.8", "mra.toml.5"]
    assert pages["mra.8"].startswith(".TH MRA 8 ")
    assert "\n.SH OPERATING THE SERVER" not in pages["mra.8"]  # a subsection, not a section
    assert "\n.SS Operating the server\n" in pages["mra.8"]
    assert "\n.SH EXIT CODES" not in pages["mda.8"] and "\n.SS Exit codes\n" in pages["mda.8"]
    assert ".TH MRA.TOML 5 " in pages["mra.toml.5"]


def test_every_setting_is_documented(pages: dict[str, str]) -> None:
    text = "\n".join(pages.values())
    missing = [
        f"[{section}] {f.name}"
        for section, cls in _SECTIONS.items()
        if section != "mailboxes"  # a table of folders, not keys
        for f in dataclasses.fields(cls)
        if f.name not in text and f.name.replace("_", "\\_") not in text
    ]
    assert missing == []


@pytest.mark.skipif(shutil.which("groff") is None, reason="no groff")
def test_groff_reads_them_without_a_warning(pages: dict[str, str], tmp_path: Path) -> None:
    for name, text in pages.items():
        path = tmp_path / name
        path.write_text(text)
        out = subprocess.run(
            ["groff", "-k", "-man", "-Tutf8", "-ww", "-z", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
        assert out.returncode == 0 and out.stderr == "", f"{name}: {out.stderr[:2000]}"


def test_inline_markup() -> None:
    assert manpages._inline("use `mra who` **now**, see [README](#x)") == (
        "use \\fBmra who\\fR \\fBnow\\fR, see README"
    )
    assert manpages.to_roff([".hidden request"]) == [".PP", "\\&.hidden request"]
