"""Postfix's socketmap protocol against the session, without a server: framing, answers,
bounds. The real Postfix client (`postmap -q`) is in tests/cluster/test_postfix.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstore.config import parse_config
from mra.auth.glue import AuthService
from mra.cluster.ring import Ring, nodes_of
from mra.cluster.socketmap import SocketmapSession, netstring
from mra.context import Connection, Services
from mra.session import Close, Send, run_blocking


@pytest.fixture
def session(tmp_path: Path) -> SocketmapSession:
    (tmp_path / "passwd").write_text("alice@example.test:{PLAIN}x::::::\n")
    (tmp_path / "domains").write_text("example.test\n")
    config = parse_config(
        (
            f'[auth]\npasswd_file = "{tmp_path}/passwd"\n'
            f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n'
            f'[maps]\nlocal_domains = "{tmp_path}/domains"\naliases = "{tmp_path}/none"\n'
            f'virtusertable = "{tmp_path}/none"\n'
            '[cluster]\nsocketmap = "127.0.0.1:0"\nmax_request = 300\n'
            'nodes = ["10.0.0.1 lmtp=2401", "10.0.0.2 lmtp=2402", "10.0.0.3 lmtp=2403"]\n'
        ).encode(),
        str(tmp_path / "mra.toml"),
    )
    services = Services(config, AuthService(config))
    ring = Ring(nodes_of(config.cluster))
    s = SocketmapSession(Connection("socketmap", "127.0.0.1"), services, ring)
    assert s.greeting() == []
    return s


def sent(outputs: list[object]) -> bytes:
    return b"".join(o.data for o in run_blocking(outputs) if isinstance(o, Send))  # type: ignore[arg-type]


def test_a_user_is_routed_to_its_node(session: SocketmapSession) -> None:
    owner = session.ring.owner("alice@example.test")
    assert owner is not None
    expected = netstring(f"OK lmtp:inet:[{owner.address}]:{owner.lmtp}")
    assert sent(session.data_received(netstring("transport alice@example.test"))) == expected
    # The local part without the domain finds the same user (local domains), so the same node.
    assert sent(session.data_received(netstring("transport Alice@Example.test"))) == expected


def test_unknown_addresses_are_still_routed_and_domains_are_notfound(
    session: SocketmapSession,
) -> None:
    owner = session.ring.owner("postmaster@example.test")
    assert owner is not None
    out = sent(session.data_received(netstring("transport postmaster@example.test")))
    assert out == netstring(f"OK lmtp:inet:[{owner.address}]:{owner.lmtp}")
    assert sent(session.data_received(netstring("transport example.test"))) == netstring(
        "NOTFOUND "
    )
    assert sent(session.data_received(netstring("virtual alice@example.test"))) == netstring(
        "PERM unknown map name"
    )


def test_requests_split_and_joined_anywhere(session: SocketmapSession) -> None:
    data = netstring("transport example.test") * 2
    out = b""
    for i in range(len(data)):
        out += sent(session.data_received(data[i : i + 1]))
    assert out == netstring("NOTFOUND ") * 2
    assert sent(session.data_received(data)) == netstring("NOTFOUND ") * 2


def test_no_node_up_is_a_temporary_failure(session: SocketmapSession) -> None:
    for node in session.ring.nodes:
        session.ring.mark(node, up=False)
    out = sent(session.data_received(netstring("transport alice@example.test")))
    assert out == netstring("TEMP no mail node is up")


@pytest.mark.parametrize(
    "data",
    [b"301:" + b"x" * 301 + b",", b"12345678901", b"x5:hello,", b"5:hello;"],
)
def test_attack_socketmap_bad_framing_ends_the_connection(
    session: SocketmapSession, data: bytes
) -> None:
    """An overlong request, a length that is not a number, a missing comma: the framing can
    not be trusted past them; the connection ends without reading (or holding) more."""
    out = run_blocking(session.data_received(data))
    assert any(isinstance(o, Close) for o in out)
    assert session.data_received(netstring("transport example.test")) == []
