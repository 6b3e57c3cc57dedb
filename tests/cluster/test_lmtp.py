"""Deliveries through a real Postfix, routed by the director's socketmap to the user's node
over LMTP: an IDLE session through nginx wakes at once, and a node that is down is routed
around with nothing lost.

Postfix's `transport_maps = socketmap:inet:...:transport` is the only route to the nodes
(`virtual_transport` is `error:`), so a delivery that arrives went where the socketmap said.
"""

from __future__ import annotations

import dataclasses
import imaplib
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore.config import ListenConfig
from tests.cluster.harness import PASSWORD, USERS, Cluster, nginx_available
from tests.interop.postfix import PostfixInstance, make_message, postfix_available, running_as_root

HAS_LMTP = any(f.name == "lmtp" for f in dataclasses.fields(ListenConfig))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_LMTP, reason="mra serve without LMTP"),
    pytest.mark.skipif(not nginx_available(), reason="nginx with the mail module"),
    pytest.mark.skipif(
        not (postfix_available() and running_as_root()), reason="Postfix, run as root"
    ),
]
TIMEOUT = 60.0
SENDER = "sender@example.org"


@dataclasses.dataclass
class System:
    cluster: Cluster
    postfix: PostfixInstance

    def send(self, rcpt: str) -> tuple[str, str]:
        marker = f"cluster-{uuid.uuid4().hex}"
        msg = make_message(
            sender=SENDER,
            to=rcpt,
            subject=f"test {marker}",
            body=f"{marker}\n",
            message_id=f"<{marker}@client.test>",
        )
        return self.postfix.send(SENDER, [rcpt], msg), marker

    def relay_port(self, queue_id: str, rcpt: str) -> int:
        entry = self.postfix.wait_for_status(queue_id, rcpt, timeout=TIMEOUT)
        assert entry.status == "sent", entry.line
        match = re.search(r"relay=[^,]*\]:(\d+)", entry.line)
        assert match, entry.line
        return int(match.group(1))


@pytest.fixture(scope="module")
def system() -> Iterator[System]:
    cluster = Cluster(nodes=3, lmtp=True)
    postfix: PostfixInstance | None = None
    try:
        cluster.start()
        base = Path(tempfile.mkdtemp(prefix="postfix-cluster-"))
        base.chmod(0o755)  # Postfix's daemons run as `postfix`
        postfix = PostfixInstance(
            base,
            main_cf={
                "virtual_mailbox_domains": "example.test",
                "virtual_transport": "error:not routed by the socketmap",
                "transport_maps": f"socketmap:inet:127.0.0.1:{cluster.socketmap_port}:transport",
                "lmtp_connect_timeout": "5s",
                "queue_run_delay": "1s",
                "minimal_backoff_time": "1s",
                "maximal_backoff_time": "2s",
            },
            master_cf=["lmtp unix - - n - - lmtp"],
            timeout=TIMEOUT,
        )
        postfix.start()
        yield System(cluster, postfix)
    finally:
        if postfix is not None:
            postfix.stop()
        cluster.stop()


def home_lmtp(c: Cluster, user: str) -> int:
    """The LMTP port of the node nginx sends `user`'s logins to."""
    before = c.logins(user)
    imaplib.IMAP4("127.0.0.1", c.nginx_ports["imap"], timeout=TIMEOUT).login(user, PASSWORD)
    new = [a - b for a, b in zip(c.logins(user), before, strict=True)]
    return c.lmtp_ports[new.index(1)]


def test_idle_through_nginx_is_woken_by_an_lmtp_delivery_routed_by_the_socketmap(
    system: System,
) -> None:
    c, user = system.cluster, USERS[0]
    m = imaplib.IMAP4("127.0.0.1", c.nginx_ports["imap"], timeout=TIMEOUT)
    m.login(user, PASSWORD)
    m.select("INBOX")
    m.socket().sendall(b"i1 IDLE\r\n")
    assert m.readline().startswith(b"+")
    queue_id, marker = system.send(user)
    line = m.readline()  # the push, as soon as the node delivered
    assert b"EXISTS" in line, line
    m.socket().sendall(b"DONE\r\n")
    while not m.readline().startswith(b"i1 "):
        pass
    _, data = m.fetch("*", "BODY.PEEK[TEXT]")
    assert marker.encode() in data[0][1]  # type: ignore[index]
    m.logout()
    assert system.relay_port(queue_id, user) == home_lmtp(c, user)


def test_a_node_down_is_routed_around_and_nothing_is_lost(system: System) -> None:
    c = system.cluster
    victim = 2
    # A user of node 2 that no message went to yet (so no route was looked up before).
    user = next(u for u in USERS[1:] if home_lmtp(c, u) == c.lmtp_ports[victim])
    c.nodes[victim].kill()
    assert c.director is not None
    deadline = time.monotonic() + TIMEOUT
    while "node-down" not in c.director.log():
        assert time.monotonic() < deadline, "the director did not notice"
        time.sleep(0.05)
    queue_id, marker = system.send(user)
    port = system.relay_port(queue_id, user)
    assert port != c.lmtp_ports[victim]
    m = imaplib.IMAP4("127.0.0.1", c.nginx_ports["imap"], timeout=TIMEOUT)
    m.login(user, PASSWORD)
    m.select("INBOX")
    _, data = m.search(None, "BODY", marker)
    assert data[0], "the delivery made while the node was down is not there"
    m.logout()
    c.nodes[victim].start()
