"""Which node holds a user: rendezvous (highest random weight) hashing over the healthy nodes.

Every node ranks a user by `blake2b(node name, user name)`; the user's node is the healthy
node ranked highest. Each nginx `auth_http` answer and each Postfix `socketmap` answer asks
the same question, so a user's IMAP, POP3 and LMTP sessions all meet on one node, where its
IDLE sessions hear deliveries through inotify and its uidlist lock is taken by one host.

Why rendezvous and not a ring of virtual points or `hash % n`: when a node goes down, only its
own users move (each to its second-ranked node), and when it comes back exactly those users
return; the others never move. It needs no table, no state shared between the processes that
answer, and costs one hash per node per question, which for a few dozen nodes is nothing next
to a password check. (Thaler and Ravishankar, "Using name-based mappings to increase hit
rates", IEEE/ACM ToN 6(1), 1998.)

Pure and Twisted-free: the health checks (mra/cluster/health.py) only call `mark`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from mailstore.clusternodes import Node, parse_node

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import ClusterConfig

__all__ = ["Ring", "nodes_of", "rank", "user_key"]


def user_key(name: str) -> str:
    """The name a user is hashed by: the user database's own name for the account, folded
    to lower case so that `Alice@Example.test` from a client and `alice@example.test` from
    an envelope meet."""
    return name.strip().lower()


def _weight(node: Node, user: str) -> int:
    digest = hashlib.blake2b(
        user.encode("utf-8", "surrogateescape"), digest_size=8, key=node.name.encode("utf-8")[:64]
    )
    return int.from_bytes(digest.digest(), "big")


def rank(user: str, nodes: Iterable[Node]) -> list[Node]:
    """The nodes from the user's first choice to its last (ties, astronomically rare, go to
    the node name that sorts first, so that every answering process agrees)."""
    key = user_key(user)
    return sorted(nodes, key=lambda node: (-_weight(node, key), node.name))


def nodes_of(config: ClusterConfig) -> list[Node]:
    """The nodes the configuration lists (checked by `mra check-config` already)."""
    return [
        parse_node(text, config.imap_port, config.pop3_port, config.lmtp_port)
        for text in config.nodes
    ]


class Ring:
    """The configured nodes and which of them answered their last health check."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = tuple(nodes)
        self._down: set[str] = set()

    def mark(self, node: Node, up: bool) -> bool:
        """Record a health check; True when the node's state changed."""
        was_up = node.name not in self._down
        if up:
            self._down.discard(node.name)
        else:
            self._down.add(node.name)
        return was_up != up

    def is_up(self, node: Node) -> bool:
        return node.name not in self._down

    def healthy(self) -> list[Node]:
        return [node for node in self.nodes if node.name not in self._down]

    def owner(self, user: str) -> Node | None:
        """The user's node among the healthy ones; None when none is."""
        ranked = rank(user, self.healthy())
        return ranked[0] if ranked else None
