"""Rendezvous hashing and the node entries: who holds a user, and who moves when a node goes."""

from __future__ import annotations

import pytest

from mailstore.clusternodes import Node, parse_node
from mailstore.config import ConfigError, parse_config
from mra.cluster.ring import Ring, rank

NODES = [parse_node(f"10.0.0.{i}", 143, 110, 24) for i in range(1, 6)]
USERS = [f"user{i}@example.test" for i in range(2000)]


def test_parse_node_with_and_without_ports() -> None:
    assert parse_node("10.0.0.1", 143, 110, 24) == Node("10.0.0.1", "10.0.0.1", 143, 110, 24)
    node = parse_node("  ::1   imap=1143 lmtp=1024 ", 143, 110, 24)
    assert (node.name, node.address, node.imap, node.pop3, node.lmtp) == (
        "::1 imap=1143 lmtp=1024",
        "::1",
        1143,
        110,
        1024,
    )
    assert node.port("pop3") == 110 and node.port("imap") == 1143


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "mail1.example.test",
        "10.0.0.1 imap=0",
        "10.0.0.1 imap=70000",
        "10.0.0.1 smtp=25",
        "10.0.0.1 imap=x",
    ],
)
def test_parse_node_refuses(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_node(entry, 143, 110, 24)


def test_config_reports_a_bad_node_on_its_line() -> None:
    text = b'[cluster]\nauth_http = "127.0.0.1:9000"\nnodes = ["10.0.0.1", "mail2"]\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/etc/mra/mra.toml")
    assert "3: [cluster] nodes: 'mail2' is not an IP address" in str(info.value)


def test_config_auth_http_needs_nodes() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(b'[cluster]\nauth_http = "127.0.0.1:9000"\n', "/etc/mra/mra.toml")
    assert "auth_http needs nodes" in str(info.value)


def test_every_user_has_one_owner_and_the_load_spreads() -> None:
    ring = Ring(NODES)
    owners = [ring.owner(u) for u in USERS]
    counts = {n.name: sum(1 for o in owners if o == n) for n in NODES}
    # 2000 users over 5 nodes: 400 each on average; a hash that is not lopsided.
    assert all(300 < c < 500 for c in counts.values()), counts


def test_the_owner_does_not_depend_on_the_order_of_nodes_or_the_case_of_names() -> None:
    assert Ring(NODES).owner("Alice@Example.TEST") == Ring(NODES[::-1]).owner("alice@example.test")


def test_a_node_down_moves_only_its_own_users_and_they_come_back() -> None:
    ring = Ring(NODES)
    before = {u: ring.owner(u) for u in USERS}
    down = NODES[2]
    assert ring.mark(down, up=False) is True
    assert ring.mark(down, up=False) is False  # no change: logged once
    during = {u: ring.owner(u) for u in USERS}
    for user in USERS:
        if before[user] == down:
            assert during[user] == rank(user, NODES)[1]  # its second choice
        else:
            assert during[user] == before[user]  # nobody else moves
    ring.mark(down, up=True)
    assert {u: ring.owner(u) for u in USERS} == before


def test_no_node_up_means_no_owner() -> None:
    ring = Ring(NODES[:1])
    ring.mark(NODES[0], up=False)
    assert ring.owner("alice@example.test") is None
