"""`[sieve]` in the configuration: every setting with its default, problems reported with
their line, and what the delivery agent makes of them (limits, enabled extensions)."""

from __future__ import annotations

from pathlib import Path

from mailstore.config import check_config, load_config
from mailstore.configcache import load_cached
from mda.sieve import EXTENSIONS, Limits
from mda.sieve.delivery import extensions_for, limits_of


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mra.toml"
    path.write_text(text)
    return str(path)


def test_defaults_are_pigeonholes() -> None:
    config = load_config(None)
    assert limits_of(config) == Limits()  # the engine's defaults, Pigeonhole's
    assert extensions_for(config) == EXTENSIONS
    assert config.sieve.max_cpu_time == 10
    assert config.sieve.vacation_default_period == 7 * 86400


def test_settings_reach_the_engine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[sieve]\nextensions = "+editheader -vacation"\nmax_redirects = 1\n'
        'global_dir = "global"\nspamtest_status_header = "X-Spam-Score"\n'
        "spamtest_max_value = 7.5\n",
    )
    for config in (load_config(path), load_cached(path)):
        assert limits_of(config).max_redirects == 1
        enabled = extensions_for(config)
        assert {"editheader", "spamtest", "spamtestplus"} <= enabled
        assert "vacation" not in enabled and "virustest" not in enabled
        assert config.sieve.global_dir == str(tmp_path / "global")
        assert config.sieve.spamtest_max_value == 7.5


def test_problems_have_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[sieve]\n"
        'extensions = ["+frobnicate"]\n'
        'spamtest_status_type = "percent"\n'
        'virustest_status_header = "X-Virus: (a"\n'
        "max_actions = 0\n"
        "vacation_min_period = -1\n",
    )
    found = [(p.line, p.message) for p in check_config(path)]
    assert (2, "[sieve] unknown Sieve extension 'frobnicate'") in found
    assert any(line == 3 and "'score', 'strlen' or 'text'" in msg for line, msg in found)
    assert any(line == 4 and "regular expression" in msg for line, msg in found)
    assert any(line == 5 and "at least 1" in msg for line, msg in found)
    assert any(line == 6 and "at least 0" in msg for line, msg in found)
