"""Each worker's own listening socket (mra/net/listeners.py `bind`, SO_REUSEPORT): connections
spread over the workers, and a killed worker's connections wait for its replacement."""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import time
from pathlib import Path

from tests.mra.conftest import PASSWORD, MraServer
from tests.mra.test_ops import fields
from tests.mra.test_ops_workers import USERS, two_workers, workers_of


def _login(s: MraServer, user: str) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=20)
    assert c.recv(1000).startswith(b"* OK")
    c.sendall(f"a LOGIN {user} {PASSWORD}\r\n".encode())
    answer = b""
    while not re.search(rb"^a ", answer, re.M):
        chunk = c.recv(1000)
        assert chunk, answer
        answer += chunk
    assert b"a OK" in answer, answer
    return c


def test_connections_one_after_another_are_spread_over_the_workers(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """With one socket shared by both workers, a quiet server gave 18 logins in a row to the
    same worker (on a quiet machine, 1 run in 10 of test_readme_several_workers_example);
    with a socket each, the kernel's hash of the peer's port spreads them whatever the
    scheduling (a worker with fewer than 5 of 40 has odds of about 1 in 10^7 by chance), and
    every worker's socket must be served, or the connections hashed to it would hang."""
    s = two_workers(server_factory, tmp_path)
    pids = workers_of(s)
    socks = [_login(s, user) for user in USERS]
    deadline = time.monotonic() + 20
    while len(logins := re.findall(r"info login .*", s.log())) < len(USERS):
        assert time.monotonic() < deadline, logins
        time.sleep(0.05)
    per_worker = collections.Counter(int(fields(line)["pid"]) for line in logins)
    assert set(per_worker) == set(pids)
    assert min(per_worker.values()) >= 5, per_worker
    for c in socks:
        c.close()


def test_a_killed_workers_connections_wait_for_its_replacement(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """The parent keeps every worker's socket open: the connections that reach a killed
    worker's socket wait in its backlog for the worker started in its place, none refused."""
    s = two_workers(server_factory, tmp_path)
    pids = workers_of(s)
    os.kill(pids[0], signal.SIGKILL)
    socks = []
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=20)
        socks.append(c)
    for c in socks:
        assert c.recv(1000).startswith(b"* OK")  # within the timeout: the restart's second
        c.close()
    assert "worker-died worker=0" in s.log()
