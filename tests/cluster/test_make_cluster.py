"""`make cluster`, as a user runs it: it comes up, a client logs in through nginx, the login
lands on one of the nodes, and Ctrl-C (SIGINT to the process group) stops every process."""

from __future__ import annotations

import imaplib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mra.cluster.demo import NGINX_PORTS, NODES
from tests.cluster.harness import nginx_available

REPO = Path(__file__).resolve().parents[2]
PORTS = (*NGINX_PORTS.values(), 9000, 9001, *(n["imap"] for n in NODES))


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.skipif(not nginx_available(), reason="nginx with the mail module")
def test_make_cluster_serves_through_nginx_and_ctrl_c_stops_it_all() -> None:
    if not all(port_free(p) for p in PORTS):
        pytest.skip("make cluster's ports are in use")
    top = Path(tempfile.mkdtemp(prefix="mra-make-cluster-"))
    top.chmod(0o755)  # the nodes run as `nobody`, as the demo's server does
    demo = top / "maildirs"
    out = demo.parent / "make-cluster.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "cluster"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MRA_DEMO_DIR": str(demo)},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while "The cluster is up" not in out.read_text(errors="replace"):
            assert proc.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(0.2)
        password = dict(
            line.split(" ", 1) for line in (demo / "demo-passwords").read_text().splitlines()
        )["alice@example.test"]
        m = imaplib.IMAP4("127.0.0.1", NGINX_PORTS["imap"], timeout=30)
        m.login("alice@example.test", password)
        status, data = m.select("INBOX")
        assert status == "OK" and int(data[0] or 0) >= 3  # the demo's mail, copied
        m.logout()
        logs = [p.read_text() for p in (demo / "cluster" / "logs").glob("node*.log")]
        assert sum("login proto=imap user=alice@example.test" in t for t in logs) == 1
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert all(port_free(p) for p in PORTS), "something of the cluster kept running"
