"""`mra who|kick|reload|stats` and the metrics endpoint of a server with `workers = 2`: the
worker that takes a request answers for both (mra/net/control.py), with sessions spread over
both workers; a worker that does not answer is named, not waited for; and the bounds of the
admin socket and the metrics endpoint are `[admin]` settings."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mra.auth.passwords import hash_password
from tests.mra.conftest import MRA, PASSWORD, MraServer, children_of
from tests.mra.test_ops import admin_send, fields, mra, parse_prometheus, start, wait_for

USERS = [f"u{i}@example.test" for i in range(40)]


def two_workers(server_factory: type[MraServer], tmp_path: Path, extra: str = "") -> MraServer:
    control = tmp_path / "control"
    control.mkdir()
    s = server_factory(
        extra=f'[server]\nworkers = 2\n[admin]\ncontrol_dir = "{control}"\n{extra}',
        listeners=("imap", "pop3"),
    )
    hashed = hash_password(PASSWORD, "SHA512-CRYPT")
    with open(s.passwd, "a") as f:
        f.writelines(f"{u}:{hashed}::::::\n" for u in USERS)
    lines = f'admin = "unix:{tmp_path}/run/admin"\nmetrics = "127.0.0.1:0"\n'
    s.config.write_text(s.config.read_text().replace("[listen]\n", "[listen]\n" + lines, 1))
    s.start()
    deadline = time.monotonic() + 30
    assert s.proc is not None
    while len(re.findall(r"info ready worker=\d", s.log())) < 2:
        assert time.monotonic() < deadline, s.log()
        time.sleep(0.05)
    return s


def workers_of(s: MraServer) -> list[int]:
    """The pids of worker 0 and worker 1, from their `ready` lines, checked against the
    supervisor's children."""
    assert s.proc is not None
    ready = {int(n): int(p) for n, p in re.findall(r"info ready worker=(\d) pid=(\d+)", s.log())}
    pids = [ready[0], ready[1]]
    assert sorted(children_of(s.proc.pid)) == sorted(pids)
    return pids


def _login(s: MraServer, user: str) -> socket.socket:
    c = socket.create_connection(("127.0.0.1", s.ports["imap"]), timeout=20)
    c.recv(1000)
    c.sendall(f"a LOGIN {user} {PASSWORD}\r\n".encode())
    answer = b""
    while not re.search(rb"^a ", answer, re.M):
        chunk = c.recv(1000)
        assert chunk, answer
        answer += chunk
    assert b"a OK" in answer, answer
    return c


def on_each_worker(s: MraServer, users: list[str]) -> list[socket.socket]:
    """Log `users` in, the first half on worker 0 and the rest on worker 1. The workers share
    the listening socket and whichever waits accepts, so on a quiet machine one of them often
    took every connection: the other is stopped (SIGSTOP) while a worker takes its half."""
    pids = workers_of(s)
    halves = [users[: len(users) // 2], users[len(users) // 2 :]]
    socks = []
    for k, half in enumerate(halves):
        other = pids[1 - k]
        os.kill(other, signal.SIGSTOP)
        try:
            socks += [_login(s, user) for user in half]
        finally:
            os.kill(other, signal.SIGCONT)
    return socks


def spread_logins(s: MraServer) -> tuple[list[socket.socket], dict[str, int]]:
    """Six sessions, u0 to u5, three on each worker; the user -> worker pid of each, from the
    server's own `login` lines."""
    users = USERS[:6]
    socks = on_each_worker(s, users)
    where: dict[str, int] = {}
    for user in users:
        line = wait_for(s, rf"info login proto=imap user={re.escape(user)} .*").group(0)
        where[user] = int(fields(line)["pid"])
    assert sorted(where.values()) == sorted(workers_of(s) * 3), where
    return socks, where


def scrape(s: MraServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    url = f"http://127.0.0.1:{s.ports['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return parse_prometheus(answer.read().decode())


def test_who_kick_reload_stats_and_metrics_answer_for_both_workers(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    s = two_workers(server_factory, tmp_path)
    pids = workers_of(s)
    control = tmp_path / "control"
    (directory,) = list(control.iterdir())  # the run's private directory, and its sockets
    assert directory.stat().st_mode & 0o777 == 0o700
    # The sockets, and the parent's pid (so that a later start can remove it if we are killed)
    assert sorted(p.name for p in directory.iterdir()) == ["pid", "worker-0", "worker-1"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.iterdir())
    socks, where = spread_logins(s)
    assert set(where.values()) == set(pids)

    for _ in range(4):  # whichever worker takes the request, the answer is both workers'
        who = mra(s, "who")
        assert who.returncode == 0 and who.stderr == "", who.stderr
        rows = [fields(line) for line in who.stdout.splitlines()]
        assert {r["user"]: int(r["pid"]) for r in rows} == where
    one = json.loads(mra(s, "who", "u1@example.test", "--json").stdout)
    assert [(r["user"], r["pid"]) for r in one] == [("u1@example.test", where["u1@example.test"])]

    stats = mra(s, "stats")
    assert stats.returncode == 0 and stats.stderr == ""
    logins = re.search(
        r'^mra_logins_total\{protocol="imap",result="ok"\} (\d+)$', stats.stdout, re.M
    )
    assert logins and int(logins.group(1)) == len(where)
    assert re.search(r"^mra_worker_processes 2$", stats.stdout, re.M)
    for _ in range(4):
        samples = scrape(s)
        assert samples[("mra_logins_total", frozenset({("protocol", "imap"), ("result", "ok")}))]
        assert samples[("mra_worker_processes", frozenset())] == 2
        assert samples[("mra_worker_processes_unanswered", frozenset())] == 0
        assert samples[("mra_connections_open", frozenset({("listener", "imap")}))] == len(where)

    reload = json.loads(mra(s, "reload", "--json").stdout)
    assert reload == {"reloaded": True, "workers": 2}
    deadline = time.monotonic() + 20
    while s.log().count(" info reload ") < 2:
        assert time.monotonic() < deadline, s.log()
        time.sleep(0.05)

    # One user on each worker: each kick reaches the worker holding the user, wherever the
    # request lands (at least one of them lands on the other worker).
    by_pid = {pid: [u for u, p in where.items() if p == pid] for pid in pids}
    for pid in pids:
        user = by_pid[pid][0]
        kick = mra(s, "kick", user)
        assert kick.returncode == 0 and "kicked=1" in kick.stdout, (kick.stdout, kick.stderr)
        f = fields(wait_for(s, rf"info session-end proto=imap user={re.escape(user)} .*").group(0))
        assert f["reason"] == "kicked" and int(f["pid"]) == pid
    assert mra(s, "kick", "nobody@example.test").returncode == 1
    deadline = time.monotonic() + 20  # a kicked session is gone once its goodbye is out
    while len(json.loads(mra(s, "who", "--json").stdout)) != len(where) - 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for c in socks:
        c.close()
    assert s.stop() == 0
    assert list(control.iterdir()) == []  # the private directory went with the server


def test_attack_a_stopped_worker_is_named_not_waited_for(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """A worker that cannot answer (stopped, hung, killed) must not hang `mra who` or a
    scrape: it is named in the answer after `[admin] worker_timeout`, the others' answers
    are given; a worker restarted after a crash answers again."""
    s = two_workers(server_factory, tmp_path, extra="worker_timeout = 1\n")
    socks, where = spread_logins(s)
    stopped, running = workers_of(s)
    os.kill(stopped, signal.SIGSTOP)
    try:
        who = mra(s, "who")  # only the running worker accepts: it answers for itself
        assert who.returncode == 0
        assert re.search(r"worker \d did not answer: no answer within 1 seconds", who.stderr)
        rows = [fields(line) for line in who.stdout.splitlines()]
        assert {int(r["pid"]) for r in rows} == {running}
        assert len(rows) == list(where.values()).count(running)
        samples = scrape(s)
        assert samples[("mra_worker_processes", frozenset())] == 1
        assert samples[("mra_worker_processes_unanswered", frozenset())] == 1
        wait_for(s, r"warn admin-worker-unanswered worker=\d ")
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert len(json.loads(mra(s, "who", "--json").stdout)) == len(where)

    os.kill(stopped, signal.SIGKILL)  # the supervisor starts another in its place
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, s.log()
        pids = children_of(s.proc.pid) if s.proc else []
        if stopped not in pids and len(pids) == 2 and s.log().count("ready worker=") >= 3:
            break
        time.sleep(0.1)
    stats = mra(s, "stats")
    assert stats.stderr == "" and re.search(r"^mra_worker_processes 2$", stats.stdout, re.M)
    for c in socks:
        c.close()


def test_attack_a_control_socket_never_passes_a_request_on(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """A request on a worker's control socket is answered by that worker alone, even without
    `local: true`: passed on, two workers could ask each other forever."""
    s = two_workers(server_factory, tmp_path)
    _, where = spread_logins(s)
    (directory,) = list((tmp_path / "control").iterdir())
    second = workers_of(s)[1]
    os.kill(second, signal.SIGSTOP)  # were the request passed on, this would not answer
    try:
        for n in (0, 1):
            with socket.socket(socket.AF_UNIX) as c:
                c.settimeout(20)
                c.connect(str(directory / f"worker-{n}"))
                c.sendall(b'{"command": "who"}\n')
                if n == 1:
                    with pytest.raises(TimeoutError):  # the stopped one: no answer at all
                        c.settimeout(1)
                        c.recv(100)
                    continue
                answer = b""
                while chunk := c.recv(65536):
                    answer += chunk
            body = json.loads(answer)
            assert "unanswered" not in body
            pid = body["result"][0]["pid"]
            assert {r["pid"] for r in body["result"]} == {pid}
            assert len(body["result"]) == list(where.values()).count(pid)
    finally:
        os.kill(second, signal.SIGCONT)


def test_attack_admin_and_metrics_bounds_are_settings(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """`[admin] max_request`, `max_argument` and `metrics_max_request` are what the server
    holds a request to; a metrics request with a body is refused unread (413)."""
    sock = f"{tmp_path}/admin"
    s = start(
        server_factory,
        extra="[admin]\nmax_request = 300\nmax_argument = 64\nmetrics_max_request = 1024\n",
        admin=f"unix:{sock}",
        metrics="127.0.0.1:0",
    )

    long_user = "x" * 100
    assert admin_send(sock, b'{"command": "who", "user": "' + long_user.encode() + b'"}\n') == {
        "ok": False,
        "error": "who: user is longer than 64 characters",
    }
    padded = b'{"command": "who", "user": "a"' + b" " * 300 + b"}\n"
    assert admin_send(sock, padded) == {"ok": False, "error": "request longer than 300 octets"}
    assert admin_send(sock, b'{"command": "who"}\n') == {"ok": True, "result": []}

    def http(request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", s.ports["metrics"]), timeout=20) as c:
            c.sendall(request)
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
        return answer

    ok = http(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 ") and b"mra_worker_processes 1" in ok
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 1100 + b"\r\n\r\n"
    assert http(big).startswith(b"HTTP/1.1 400 ")
    # A megabyte of body after the refusal: dropped as it comes (the answer is not lost to a
    # reset), never held.
    body = b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n" + b"b" * 1_000_000
    assert http(body).startswith(b"HTTP/1.1 413 ")
    chunked = (
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    assert http(chunked).startswith(b"HTTP/1.1 413 ")
    assert s.proc is not None and s.proc.poll() is None


def test_check_config_reports_admin_bounds(tmp_path: Path) -> None:
    cfg = tmp_path / "mra.toml"
    cfg.write_text("[admin]\nmax_request = 10\nworker_timeout = 0\nmax_answer = 5\n")
    out = subprocess.run(
        [MRA, "check-config", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert re.search(r":2: .*max_request.*256", out.stdout + out.stderr)
    assert re.search(r":3: .*worker_timeout", out.stdout + out.stderr)
    assert re.search(r":4: .*max_answer", out.stdout + out.stderr)


def test_readme_several_workers_example(server_factory: type[MraServer], tmp_path: Path) -> None:
    """README's "Several workers": its mra.toml lines and its commands, as written (with this
    test's paths and ports)."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    section = text.split("**Several workers.**", 1)[1].split("\n**", 1)[0]
    (toml,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    (sh,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    toml = toml.replace("/run/mra/admin", f"{tmp_path}/run/admin").replace(":9154", ":0")
    listen = re.search(r"\[listen\]\n((?:\w+ = .*\n)+)", toml)
    assert listen is not None
    rest = toml.replace(listen.group(0), "")
    s = server_factory(extra=rest, listeners=("imap",))
    s.config.write_text(s.config.read_text().replace("[listen]\n", listen.group(0), 1))
    s.start()
    while len(re.findall(r"info ready worker=\d", s.log())) < 2:
        time.sleep(0.05)
    # The README kicks alice: her sessions on both workers (18: under
    # max_sessions_per_user_address, 20).
    socks = on_each_worker(s, ["alice@example.test"] * 18)
    deadline = time.monotonic() + 10  # the log lines may come after the answers
    while len(logins := re.findall(r"info login .*", s.log())) < len(socks):
        assert time.monotonic() < deadline, logins
        time.sleep(0.05)
    seen = [int(fields(line)["pid"]) for line in logins]
    assert sorted(set(seen)) == sorted(workers_of(s))
    env = {**os.environ, "PATH": f"{Path(MRA).parent}:{os.environ['PATH']}"}
    outputs = []
    for line in sh.splitlines():
        command = line.split("  #", 1)[0].strip()
        command = command.replace("/etc/mra/mra.toml", str(s.config))
        command = command.replace(":9154", f":{s.ports['metrics']}")
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
        outputs.append(done.stdout)
    who, kick, stats, scraped = outputs
    assert {int(fields(row)["pid"]) for row in who.splitlines()} == set(seen)
    assert f"kicked={len(socks)}" in kick
    assert stats == "mra_worker_processes 2\n"
    assert scraped == f'mra_logins_total{{protocol="imap",result="ok"}} {len(socks)}\n'
    for c in socks:
        c.close()
