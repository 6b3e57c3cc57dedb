"""The ManageSieve settings: `[listen] sieve` and `[managesieve]`, checked like the others."""

from __future__ import annotations

from pathlib import Path

from mailstore.config import Endpoint, check_config, load_config


def test_defaults() -> None:
    config = load_config(None)
    assert config.listen.sieve is None  # off unless asked for
    assert config.managesieve.max_script_size == 1024 * 1024  # Pigeonhole's default
    assert config.managesieve.max_scripts == 100
    assert config.managesieve.max_storage == 10 * 1024 * 1024


def test_settings_and_their_problems(tmp_path: Path) -> None:
    path = tmp_path / "mra.toml"
    path.write_text(
        '[listen]\nsieve = "127.0.0.1:4190"\n'
        "[managesieve]\nmax_script_size = 65536\nmax_scripts = 0\nmax_storage = 0\n"
    )
    config = load_config(str(path))
    assert config.listen.sieve == Endpoint("127.0.0.1", 4190)
    assert config.listen.enabled() == {"sieve": Endpoint("127.0.0.1", 4190)}
    assert (config.managesieve.max_scripts, config.managesieve.max_storage) == (0, 0)
    path.write_text(
        '[listen]\nsieve = "localhost"\n'
        "[managesieve]\nmax_script_size = 0\nmax_scripts = -1\nmax_script = 5\n"
    )
    problems = [(p.line, p.message) for p in check_config(str(path))]
    assert [line for line, _ in problems] == [2, 4, 5, 6]
    assert "did you mean 'max_scripts'" in problems[3][1]
