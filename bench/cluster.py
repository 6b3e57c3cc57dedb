"""`python -m bench.cluster`: the cluster through nginx's mail proxy, with 1, 2 and 3 nodes.

For each node count, a real nginx (Debian's, with the mail module) in front of a director
(`mra serve` with `[cluster]`: auth_http) and the nodes, all on this machine
(tests/cluster/harness.py builds it), measures:

* sessions/s: `--clients` threads for `--seconds`, each connecting through nginx, LOGIN,
  SELECT INBOX, FETCH 1:* (FLAGS), LOGOUT, over and over, each as its own user;
* commands/s: the same clients logged in once each, then NOOP, FETCH 1:* (FLAGS), SEARCH
  UNSEEN and UID STORE in turn for `--seconds`;
* each node's CPU time per command it served (the nodes share the machine's cores with
  nginx, the director and the clients: on 2 cores, more nodes cannot mean more throughput,
  but the CPU per command says what each node costs);
* what the proxy adds per login: one client, LOGIN + LOGOUT `--logins` times directly to a
  node and through nginx, the median of each, and the director's and nginx's CPU per login.

Passwords are SHA512-CRYPT (5,000 rounds): through nginx each login is checked twice, by the
director for nginx and by the node for nginx's own login to it.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable

from bench.imap import tree_cpu
from bench.results import Chart, Recorder
from tests.cluster.harness import PASSWORD, USERS, Cluster, nginx_available


def through_nginx(c: Cluster, user: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", c.nginx_ports["imap"], timeout=60)
    m.login(user, PASSWORD)
    return m


def run_for(seconds: float, clients: int, work: Callable[[int, Callable[[], bool]], int]) -> int:
    """`clients` threads each running `work(index, keep_going)`; the sum of their counts."""
    deadline = time.monotonic() + seconds
    counts = [0] * clients
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            counts[i] = work(i, lambda: time.monotonic() < deadline)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


def sessions(c: Cluster, seconds: float, clients: int) -> float:
    def work(i: int, going: Callable[[], bool]) -> int:
        done = 0
        while going():
            m = through_nginx(c, USERS[i])
            m.select("INBOX")
            m.fetch("1:*", "(FLAGS)")
            m.logout()
            done += 1
        return done

    start = time.monotonic()
    total = run_for(seconds, clients, work)
    return total / (time.monotonic() - start)


def commands(c: Cluster, seconds: float, clients: int) -> tuple[float, list[int]]:
    """Commands/s through nginx, and how many each node served."""
    per_node = [0] * len(c.nodes)
    lock = threading.Lock()

    def work(i: int, going: Callable[[], bool]) -> int:
        before = c.logins(USERS[i])
        m = through_nginx(c, USERS[i])
        node = [a - b for a, b in zip(c.logins(USERS[i]), before, strict=True)].index(1)
        m.select("INBOX")
        done = 0
        while going():
            m.noop()
            m.fetch("1:*", "(FLAGS)")
            m.search(None, "UNSEEN")
            m.uid("STORE", "1", "FLAGS", r"(\Seen)")
            done += 4
        m.logout()
        with lock:
            per_node[node] += done
        return done

    start = time.monotonic()
    total = run_for(seconds, clients, work)
    return total / (time.monotonic() - start), per_node


def timed_login(port: int, user: str) -> float:
    """Connect, read the greeting, LOGIN, LOGOUT: the seconds until LOGIN's OK. A bare socket,
    not imaplib (which asks CAPABILITY first: a round trip nginx answers itself)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(f"a LOGIN {user} {PASSWORD}\r\n".encode())
        while not (line := reader.readline()).startswith(b"a "):
            if not line:
                raise ConnectionError("closed during LOGIN")
        if not line.startswith(b"a OK"):
            raise ConnectionError(line.decode(errors="replace"))
        took = time.monotonic() - start
        sock.sendall(b"b LOGOUT\r\n")
        reader.read()
    return took


def login_overhead(c: Cluster, logins: int) -> dict[str, float]:
    """Logins straight to the user's node and through nginx, interleaved (the machine's load
    drifts), and the director's and nginx's CPU for the nginx ones."""
    user = USERS[0]
    before = c.logins(user)
    through_nginx(c, user).logout()
    node = [a - b for a, b in zip(c.logins(user), before, strict=True)].index(1)
    port = c.nodes[node].ports["imap"]
    assert c.director is not None and c.director.proc is not None and c.nginx is not None
    direct: list[float] = []
    proxied: list[float] = []
    cpu_director = cpu_nginx = 0.0
    for _ in range(logins):
        direct.append(timed_login(port, user))
        director_before, nginx_before = tree_cpu(c.director.proc.pid), tree_cpu(c.nginx.pid)
        proxied.append(timed_login(c.nginx_ports["imap"], user))
        cpu_director += tree_cpu(c.director.proc.pid) - director_before
        cpu_nginx += tree_cpu(c.nginx.pid) - nginx_before
    return {
        "direct_ms": statistics.median(direct) * 1000,
        "nginx_ms": statistics.median(proxied) * 1000,
        "director_cpu_ms": cpu_director / logins * 1000,
        "nginx_cpu_ms": cpu_nginx / logins * 1000,
    }


def seed(c: Cluster) -> None:
    for user in USERS:
        box = c.store(user).mailbox("INBOX")
        for i in range(20):
            box.append(f"Subject: bench {i}\r\n\r\nbody {i}\r\n".encode())


def node_cpu(c: Cluster) -> list[float]:
    return [tree_cpu(n.proc.pid) if n.proc is not None else 0.0 for n in c.nodes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1,2,3", help="node counts to measure")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--logins", type=int, default=40)
    args = parser.parse_args(argv)
    if not nginx_available():
        print("bench.cluster needs nginx and libnginx-mod-mail")
        return 1
    note = f"{os.cpu_count()} cores; {args.clients} clients, {args.seconds:g} s a cell"
    print(note)
    columns = [
        "nodes",
        "sessions/s",
        "commands/s",
        "CPU per command, each node",
        "login direct",
        "login via nginx",
        "director CPU/login",
        "nginx CPU/login",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    recorder = Recorder("cluster", note)
    rows: list[list[str]] = []
    counts: list[float] = []
    rates: list[float | None] = []
    cmd_rates: list[float | None] = []
    for count in (int(n) for n in args.nodes.split(",")):
        c = Cluster(nodes=count, health_interval=1.0)
        try:
            c.start()
            seed(c)
            rate = sessions(c, args.seconds, args.clients)
            cpu = node_cpu(c)
            cmd_rate, served = commands(c, args.seconds, args.clients)
            spent = [a - b for a, b in zip(node_cpu(c), cpu, strict=True)]
            per_cmd = ", ".join(
                f"{s / n * 1000:.2f} ms" if n else "-" for s, n in zip(spent, served, strict=True)
            )
            over = login_overhead(c, args.logins)
        finally:
            c.stop()
        row = [
            str(count),
            f"{rate:.0f}",
            f"{cmd_rate:.0f}",
            per_cmd,
            f"{over['direct_ms']:.1f} ms",
            f"{over['nginx_ms']:.1f} ms",
            f"{over['director_cpu_ms']:.2f} ms",
            f"{over['nginx_cpu_ms']:.2f} ms",
        ]
        print("| " + " | ".join(row) + " |", flush=True)
        rows.append(row)
        counts.append(float(count))
        rates.append(rate)
        cmd_rates.append(cmd_rate)
    recorder.table("Through nginx's mail proxy, by number of nodes", columns, rows)
    recorder.chart(
        Chart(
            "Sessions per second through nginx",
            "bar",
            "nodes",
            "sessions/s",
            [str(int(c)) for c in counts],
            {"sessions/s": rates},
        )
    )
    recorder.chart(
        Chart(
            "Commands per second through nginx",
            "bar",
            "nodes",
            "commands/s",
            [str(int(c)) for c in counts],
            {"commands/s": cmd_rates},
        )
    )
    recorder.save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
