"""Postfix's own socketmap client (`postmap -q`, the code its trivial-rewrite runs for
`transport_maps = socketmap:...`) against the director: the LMTP next hop of a user is the
node nginx sends that user's logins to."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.cluster.harness import PASSWORD, USERS, Cluster
from tests.cluster.test_nginx import auth_request, nginx_headers

POSTMAP = shutil.which("postmap") or "/usr/sbin/postmap"
pytestmark = pytest.mark.skipif(not shutil.which("postmap"), reason="Postfix's postmap")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(nodes=3, with_nginx=False)
    c.start()
    yield c
    c.stop()


def postmap(c: Cluster, key: str) -> subprocess.CompletedProcess[str]:
    table = f"socketmap:inet:127.0.0.1:{c.socketmap_port}:transport"
    return subprocess.run(
        [POSTMAP, "-q", key, table], capture_output=True, text=True, timeout=30, check=False
    )


def test_postfix_routes_each_user_to_the_node_of_its_logins(cluster: Cluster) -> None:
    lmtp_of_imap = {
        str(n.ports["imap"]): port
        for n, port in zip(cluster.nodes, cluster.lmtp_ports, strict=True)
    }
    seen = set()
    for user in USERS:
        answer = auth_request(cluster.auth_http_port, nginx_headers(user, PASSWORD))
        assert answer.getheader("Auth-Status") == "OK"
        lmtp = lmtp_of_imap[answer.getheader("Auth-Port") or ""]
        result = postmap(cluster, user)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"lmtp:inet:[127.0.0.1]:{lmtp}"
        seen.add(lmtp)
    assert len(seen) > 1


def test_postfix_gets_notfound_for_a_domain_key(cluster: Cluster) -> None:
    result = postmap(cluster, "example.test")
    assert result.returncode == 1 and result.stdout == ""  # not found: no error
