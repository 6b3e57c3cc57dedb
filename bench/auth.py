"""Auth socket benchmark: SMTP AUTH checks a second, our `[listen] auth` against Dovecot's auth.

    python -m bench.auth [--seconds 5] [--warmup 1] [--connections 4] [--depth 8]

What an MTA asks of the socket under load: `AUTH <id> PLAIN service=smtp ... resp=<base64>`
lines over the Dovecot auth protocol (mra/authserver/dovecot.py), answered `OK <id>`. Each of
--connections client threads keeps --depth requests in flight on its own connection (ids tell
the answers apart), so neither server waits for the client between requests.

Servers, started once, each reading the same passwd-file (one file per scheme, 50 users):

* `mra serve` with `[listen] auth` on a unix socket, with `[server] workers = 1` and
  `workers = 2`, `[auth] max_concurrent_hashes` left at 4;
* Dovecot 2.3's auth process (`dovecot -F -c CONF`, `protocols = ` none: only the auth
  service, its `auth-client` unix socket, `auth_cache_size = 0` as by default: every request
  verifies the password). Skipped if Dovecot is missing.

Schemes: `{BLF-CRYPT}` with cost 5 (what `doveadm pw -s BLF-CRYPT` makes) and `{PLAIN}`: the
first is all hashing, the second all protocol and lookup. Every answer must be OK for the
request's id, or the cell is marked ERROR. Per cell: requests a second over the window after
the warm-up, and the server's CPU per request (its whole process tree: Dovecot's master, auth
and anvil; our workers), which does not depend on how busy the 2 cores were. The cells of one
scheme run back to back for every server, in rotated order: these machines are noisy and only
ratios measured side by side mean much.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import traversable_tempdir
from bench.pop3 import Daemon, host_idle
from bench.results import Chart, Recorder
from mra.auth.passwords import hash_password

MRA = str(Path(sys.executable).parent / "mra")
DOVECOT = "/usr/sbin/dovecot"
DOMAIN = "example.test"
PASSWORD = "bench-Auth-42"
USERS = 50
SCHEMES = ("BLF-CRYPT", "PLAIN")
TIMEOUT = 60.0


def write_passwd(path: Path, scheme: str) -> None:
    if scheme == "BLF-CRYPT":
        # One cost-5 hash per user, as `doveadm pw -s BLF-CRYPT` makes them.
        import bcrypt

        def make() -> str:
            return "{BLF-CRYPT}" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()
    else:

        def make() -> str:
            return hash_password(PASSWORD, scheme)

    path.write_text("".join(f"user{i}@{DOMAIN}:{make()}::::::\n" for i in range(USERS)))
    path.chmod(0o644)


class MraAuth(Daemon):
    def __init__(self, base: Path, workers: int, passwd: Path) -> None:
        super().__init__(base)
        self.label = f"mra workers={workers}"
        base.mkdir(parents=True, exist_ok=True)
        (base / "access").write_text("")
        (base / "local-host-names").write_text(f"{DOMAIN}\n")
        self.config = base / "mra.toml"
        self.socket_path = base / "auth-client"
        self.config.write_text(
            f'[listen]\nauth = "unix:{self.socket_path}"\n'
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{base}/mail/%d/%n"\n'
            f'[maps]\naccess = "{base}/access"\nlocal_domains = "{base}/local-host-names"\n'
            f"[server]\nworkers = {workers}\n"
        )

    def start(self) -> None:
        self.spawn([MRA, "serve", "--config", str(self.config)])
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while " ready " not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.label} did not start:\n{self.log()}")
            time.sleep(0.05)

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(str(self.socket_path))
        return s

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if " error " in ln or "Traceback" in ln]


class DovecotAuth(Daemon):
    label = "dovecot"

    def __init__(self, base: Path, passwd: Path) -> None:
        super().__init__(base)
        base.mkdir(parents=True, exist_ok=True)
        self.socket_path = base / "auth-client"
        self.dovecot_log = base / "dovecot.log"
        self.config = base / "dovecot.conf"
        self.config.write_text(
            "protocols =\n"
            f"base_dir = {base}/run\n"
            f"state_dir = {base}/state\n"
            f"log_path = {self.dovecot_log}\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = {passwd}\n}}\n"
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
            "service auth {\n"
            f"  unix_listener {self.socket_path} {{\n    mode = 0666\n  }}\n"
            "}\n"
        )

    def start(self) -> None:
        self.spawn([DOVECOT, "-F", "-c", str(self.config)])
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited {self.proc.returncode}:\n{self._log()}")
            try:
                with self.connect() as s:
                    if s.recv(4096).startswith(b"VERSION"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start:\n{self._log()}")

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(str(self.socket_path))
        return s

    def _log(self) -> str:
        try:
            return self.log() + self.dovecot_log.read_text(errors="replace")
        except OSError:
            return self.log()

    def problems(self) -> list[str]:
        # Our clients leave with requests in flight when a window ends: not the server's fault.
        return [
            ln
            for ln in self._log().splitlines()
            if ("Error:" in ln or "Fatal:" in ln) and "pending requests" not in ln
        ]


# ----------------------------------------------------------------------------------------------
# The client


class Counter:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = 0
        self.error = ""


def client_loop(
    server: MraAuth | DovecotAuth, depth: int, counter: Counter, stop: threading.Event
) -> None:
    """One MTA connection: handshake, then `depth` PLAIN requests in flight until `stop`."""
    try:
        with server.connect() as sock:
            sock.sendall(
                b"VERSION\t1\t2\nCPID\t%d\n" % (os.getpid() + threading.get_ident() % 1000)
            )
            buffer = b""
            while b"DONE\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                buffer += chunk
            buffer = buffer.split(b"DONE\n", 1)[1]
            lines = [
                b"AUTH\t%%d\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tresp=%s\n"
                % base64.b64encode(f"\0user{i}@{DOMAIN}\0{PASSWORD}".encode())
                for i in range(USERS)
            ]
            next_id = 1
            for _ in range(depth):
                sock.sendall(lines[next_id % USERS] % next_id)
                next_id += 1
            while not stop.is_set():
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buffer += chunk
                *answers, buffer = buffer.split(b"\n")
                out = []
                for answer in answers:
                    if not answer.startswith(b"OK\t"):
                        raise RuntimeError(f"unexpected answer {answer[:80]!r}")
                    counter.done += 1
                    out.append(lines[next_id % USERS] % next_id)
                    next_id += 1
                if out:
                    sock.sendall(b"".join(out))
    except Exception as exc:
        counter.error = repr(exc)


@dataclass
class Cell:
    server: str
    scheme: str
    rate: float
    server_ms: float  # server CPU per request
    client_cores: float
    other: float  # cores busy with neither (another job on the machine)
    error: str


def run_cell(server: MraAuth | DovecotAuth, scheme: str, args: argparse.Namespace) -> Cell:
    stop = threading.Event()
    counters = [Counter() for _ in range(args.connections)]
    threads = [
        threading.Thread(target=client_loop, args=(server, args.depth, c, stop), daemon=True)
        for c in counters
    ]
    for t in threads:
        t.start()
    time.sleep(args.warmup)
    done0, srv0, cli0, idle0 = (
        sum(c.done for c in counters),
        server.cpu(),
        time.process_time(),
        host_idle(),
    )
    start = time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - start
    done1, srv1, cli1, idle1 = (
        sum(c.done for c in counters),
        server.cpu(),
        time.process_time(),
        host_idle(),
    )
    stop.set()
    for t in threads:
        t.join(TIMEOUT)
    requests = done1 - done0
    busy = 1 - (idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1])
    cores = os.cpu_count() or 1
    srv_cores = (srv1 - srv0) / elapsed
    cli_cores = (cli1 - cli0) / elapsed
    error = next((c.error for c in counters if c.error), "")
    problems = server.problems()
    if problems and not error:
        error = problems[-1][:120]
    return Cell(
        server.label,
        scheme,
        requests / elapsed,
        1000 * (srv1 - srv0) / max(1, requests),
        cli_cores,
        max(0.0, busy * cores - srv_cores - cli_cores),
        error,
    )


def report(cells: list[Cell]) -> list[str]:
    lines = [
        f"{'scheme':<10} {'server':<15} {'req/s':>8} {'x dovecot':>9} {'srv ms/req':>10} "
        f"{'cli cores':>9} {'other':>6}"
    ]
    for scheme in SCHEMES:
        ref = next((c.rate for c in cells if c.scheme == scheme and c.server == "dovecot"), 0.0)
        for c in (c for c in cells if c.scheme == scheme):
            ratio = f"{c.rate / ref:.2f}x" if ref and not c.error else "-"
            rate = "ERROR" if c.error else f"{c.rate:,.0f}"
            lines.append(
                f"{scheme:<10} {c.server:<15} {rate:>8} {ratio:>9} {c.server_ms:>10.3f} "
                f"{c.client_cores:>9.2f} {c.other:>6.2f}" + (f"  {c.error}" if c.error else "")
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--depth", type=int, default=8, help="requests in flight per connection")
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="BLF-CRYPT,PLAIN")
    args = parser.parse_args(argv)
    with_dovecot = not args.no_dovecot and os.access(DOVECOT, os.X_OK)
    base = traversable_tempdir("bench-auth-")
    cells: list[Cell] = []
    problems: list[str] = []
    try:
        for round_number, scheme in enumerate(args.schemes.split(",")):
            passwd = base / f"passwd-{scheme}"
            write_passwd(passwd, scheme)
            servers: list[MraAuth | DovecotAuth] = [
                MraAuth(base / f"mra1-{scheme}", 1, passwd),
                MraAuth(base / f"mra2-{scheme}", 2, passwd),
            ]
            if with_dovecot:
                servers.append(DovecotAuth(base / f"dovecot-{scheme}", passwd))
            try:
                for server in servers:
                    server.start()
                shift = round_number % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    cells.append(run_cell(server, scheme, args))
                    print(f"  {scheme} {server.label}: {cells[-1].rate:,.0f} req/s", flush=True)
            finally:
                for server in servers:
                    problems += server.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("\n".join(report(cells)))
    print(
        f"(PLAIN requests over the Dovecot auth protocol, {args.connections} connections x "
        f"{args.depth} in flight; rate over a {args.seconds:g} s window after the warm-up; "
        "srv ms/req: the server's CPU per request, its whole process tree)"
    )
    for line in problems:
        print(line)
    if any(c.error for c in cells):
        return 1
    record(cells, args)
    return 0


def record(cells: list[Cell], args: argparse.Namespace) -> None:
    recorder = Recorder(
        "auth",
        f"PLAIN over the Dovecot auth protocol, {args.connections} connections x {args.depth} "
        "in flight.",
    )
    recorder.table(
        "Password checks",
        ["scheme", "server", "requests/s", "server CPU ms/request"],
        [[c.scheme, c.server, f"{c.rate:,.0f}", f"{c.server_ms:.3f}"] for c in cells],
    )
    schemes = list(dict.fromkeys(c.scheme for c in cells))
    servers = list(dict.fromkeys(c.server for c in cells))
    by_key = {(c.scheme, c.server): c.server_ms for c in cells}
    x: list[str | float] = list(schemes)
    series = {name: [by_key.get((scheme, name)) for scheme in schemes] for name in servers}
    recorder.chart(
        Chart("Auth: server CPU per password check", "bar", "", "ms", x, series, log_y=True)
    )
    recorder.save()


if __name__ == "__main__":
    sys.exit(main())
