"""The nginx configuration `make cluster` writes is the one the README documents."""

from __future__ import annotations

import re
from pathlib import Path

from mra.cluster.demo import AUTH_HTTP, nginx_config
from mra.cluster.nginx import NginxMail

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_block() -> str:
    text = README.read_text()
    section = text[text.index("## Beyond one machine") :]
    match = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert match, "the README has no nginx block in its cluster section"
    return match.group(1)


def test_the_readme_shows_what_the_writer_writes() -> None:
    documented = NginxMail(
        auth_http=AUTH_HTTP,
        cert="/etc/mra/cert.pem",
        key="/etc/mra/key.pem",
        run_dir="/run/mra-nginx",
        user="www-data",
    )
    assert readme_block() == documented.render()


def test_make_cluster_writes_the_readme_s_configuration_with_its_own_paths(
    tmp_path: Path,
) -> None:
    written = nginx_config(tmp_path / "maildirs", tmp_path / "maildirs" / "cluster")
    written.user = "www-data"  # as root, make cluster says `nobody nogroup`
    text = (
        written.render()
        .replace(str(tmp_path / "maildirs" / "cluster" / "nginx"), "/run/mra-nginx")
        .replace(str(tmp_path / "maildirs" / "tls"), "/etc/mra")
    )
    assert text == readme_block()
