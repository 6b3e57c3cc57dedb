"""The workers' shared listening sockets (mra/net/server.py): a worker that cannot accept
(stopped, hung, killed) leaves new connections to the others."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from tests.mra.conftest import MraServer
from tests.mra.test_ops_workers import two_workers, workers_of


def _greeted(s: MraServer, count: int) -> None:
    socks = [
        socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=20) for _ in range(count)
    ]
    for c in socks:
        assert c.recv(1000).startswith(b"* OK")  # within the timeout, from a live worker
        c.close()


def test_attack_a_hung_worker_holds_new_connections(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """A worker stopped (as a hung one would be) takes no new connection: the other greets
    every one. With one socket per worker (SO_REUSEPORT), tried once, the kernel gave the
    stopped worker its share and they waited."""
    s = two_workers(server_factory, tmp_path)
    stopped, _ = workers_of(s)
    os.kill(stopped, signal.SIGSTOP)
    try:
        _greeted(s, 20)
    finally:
        os.kill(stopped, signal.SIGCONT)


def test_a_killed_workers_connections_go_to_the_others(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    s = two_workers(server_factory, tmp_path)
    killed, _ = workers_of(s)
    os.kill(killed, signal.SIGKILL)
    _greeted(s, 20)
    assert "worker-died worker=0" in s.log()
