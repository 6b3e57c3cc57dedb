"""Two nodes on one mailbox at once (`[mail] shared = true`), under load: APPEND, STORE and
EXPUNGE from both. No UID is lost or given twice, UIDs ascend, and both views converge.

The sessions go to the nodes directly (not through nginx, which would keep the user on one
node): this is what happens for a health interval after a node changes state, or when an
administrator points a client at a node.
"""

from __future__ import annotations

import imaplib
import re
import threading
from collections.abc import Iterator

import pytest

from tests.cluster.harness import PASSWORD, USERS, Cluster

TIMEOUT = 60.0
ROUNDS = 40
USER = USERS[5]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(nodes=2, with_nginx=False)
    c.start()
    yield c
    c.stop()


def login(c: Cluster, node: int) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", c.nodes[node].ports["imap"], timeout=TIMEOUT)
    m.login(USER, PASSWORD)
    m.select("INBOX")
    return m


def worker(
    c: Cluster,
    node: int,
    name: str,
    appended: list[int],
    expunged: set[int],
    errors: list[BaseException],
) -> None:
    """One session on `node`: APPEND, STORE, and every fourth message EXPUNGE."""
    try:
        m = login(c, node)
        for i in range(ROUNDS):
            subject = f"{name}-{i}"
            status, data = m.append(
                "INBOX", None, None, f"Subject: {subject}\r\n\r\nbody\r\n".encode()
            )
            assert status == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0])  # type: ignore[arg-type]
            assert match, data
            uid = int(match.group(1))
            appended.append(uid)
            m.uid("STORE", str(uid), "+FLAGS", r"(\Seen)")
            if i % 4 == 3:
                m.uid("STORE", str(uid), "+FLAGS", r"(\Deleted)")
                status, _ = m.expunge()
                assert status == "OK"
                expunged.add(uid)
            m.noop()
        m.logout()
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def view(m: imaplib.IMAP4) -> dict[int, tuple[str, frozenset[str]]]:
    m.noop()
    status, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert status == "OK"
    found: dict[int, tuple[str, frozenset[str]]] = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        meta = part[0].decode()
        uid = int(re.search(r"UID (\d+)", meta).group(1))  # type: ignore[union-attr]
        flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()  # type: ignore[union-attr]
        subject = part[1].decode().split(":", 1)[1].strip()
        found[uid] = (subject, frozenset(flags) - {"\\Recent"})
    return found


def test_two_nodes_writing_one_folder_keep_uids_unique_and_views_converge(
    cluster: Cluster,
) -> None:
    appended: list[list[int]] = [[] for _ in range(4)]
    expunged: set[int] = set()
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=worker, args=(cluster, w % 2, f"w{w}", appended[w], expunged, errors)
        )
        for w in range(4)
    ]
    # Two sessions per node: four writers, two hosts' worth of processes.
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    uids = [uid for a in appended for uid in a]
    assert len(uids) == 4 * ROUNDS
    assert len(uids) == len(set(uids)), "a UID was given twice"
    for a in appended:  # each session's UIDs ascend as it appends
        assert a == sorted(a)
    views = [view(login(cluster, n)) for n in (0, 1)]
    assert views[0] == views[1], "the two nodes see different mailboxes"
    expected = {uid for uid in uids if uid not in expunged}
    assert set(views[0]) == expected, "a message was lost or an expunged one came back"
    assert all(flags == frozenset({"\\Seen"}) for _, flags in views[0].values())
