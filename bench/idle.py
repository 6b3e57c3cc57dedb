"""Memory against the number of IDLE connections, plain and TLS, against Dovecot.

    python -m bench.idle [--counts 1,100,1000,10000] [--workers 2] [--no-dovecot]
                         [--dovecot-max 1000] [--modes plain,tls] [--json FILE]
                         [--profile DIR]

For each server, each mode (IMAP, IMAPS) and each count N, a fresh server is started, N
connections log in, SELECT the same INBOX and enter IDLE (as Thunderbird keeps one per folder
and account, and every phone one), and then:

* the server's memory is read: the PSS (proportional set size, /proc/PID/smaps_rollup) of
  every process of the server summed, so that pages shared by forked processes (our workers,
  Dovecot's hundreds of imap processes) count once; RSS summed is shown too, and the memory of
  the same server with no client (its baseline);
* one message is delivered into the INBOX (written through mailstore, as mda writes it, by a
  process running as the mail user), and the time from its acknowledgement until every one of
  the N connections has read `* n EXISTS` is the fan-out time (issue #16: within 2 s), and
  the CPU seconds the server's processes used meanwhile its fan-out CPU (the delivery runs in
  a process of the bench, not the server's).

While iterating on the fan-out, `--counts 1000 --modes plain --no-dovecot --workers 1` is a
run of a minute. `--profile DIR` runs our server under cProfile (bench/imap.py's
PROFILE_WRAPPER, switched on just before the delivery and off once every connection heard it)
and writes DIR/00.prof, ... (`python -m pstats`); use it with `--workers 1`, where the one
process serves.

Our server runs with `[server] workers` (2, as the issue's targets) and the access map's
`Connect:127.0.0.1 OK`, so one host may hold every connection. Dovecot 2.3 runs with the
settings a site expecting thousands of connections would use: imap-login in its
high-performance mode (`service_count = 0`, one process per core) so that a TLS connection
does not keep a login process of its own, `process_limit`s and `mail_max_userip_connections`
raised to the count; everything else stock. Its imap processes serve one connection each (its
default); `--dovecot-clients K` makes each serve K (less memory, a slow user delays the others).

Dovecot runs only up to `--dovecot-max` connections (1,000): at 10,000 it would start 10,000
imap processes. A run without errors records its table and charts in bench/results/idle.json
(`python -m bench.charts`).

Passwords are `{PLAIN}` for both servers: the logins of 10,000 clients are not what is
measured. The client is one asyncio process; it raises its own descriptor limit, and the
servers' (`ulimit -n` as large as the hard limit allows) are raised for them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import ssl
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.common import (
    free_port,
    mail_ids,
    server_user_line,
    traversable_tempdir,
    wait_for_mra,
)
from bench.imap import DOVECOT, MRA, PROFILE_WRAPPER, PYTHON, Server, make_maildir, tree_cpu
from mra.selfsigned import generate_self_signed

DOMAIN = "example.test"
USER = f"idle@{DOMAIN}"
PASSWORD = "bench-Idle-42"
COUNTS = (1, 100, 1000, 10_000)
SETUP_AT_ONCE = 64  # connections being set up at the same time (the listen backlog is 128)
FANOUT_TARGET = 2.0  # seconds (issue #16)


# -- memory of a process tree ----------------------------------------------------------------


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def tree_memory(root: int) -> tuple[int, int, int]:
    """(PSS, RSS, processes) of `root` and all its descendants, in bytes."""
    pss = rss = count = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        count += 1
        for key, value in re.findall(r"^(Pss|Rss):\s+(\d+) kB", text, re.M):
            if key == "Pss":
                pss += int(value) * 1024
            else:
                rss += int(value) * 1024
    return pss, rss, count


# -- the servers -----------------------------------------------------------------------------


class Ours(Server):
    label = "ours"

    def __init__(
        self,
        base: Path,
        passwd: Path,
        cert: Path,
        key: Path,
        workers: int,
        profile: Path | None = None,
    ) -> None:
        super().__init__(base)
        self.profile = profile
        self.mail = base / "mail"
        self.mail.mkdir()
        (base / "access").write_text("Connect:127.0.0.1 OK\n")
        (base / "local-host-names").write_text(f"{DOMAIN}\n")
        self.config = base / "mra.toml"
        user = server_user_line()
        self.config.write_text(
            '[listen]\nimap = "127.0.0.1:0"\nimaps = "127.0.0.1:0"\n'
            f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{self.mail}/%d/%n"\n'
            f'[maps]\naccess = "{base}/access"\nlocal_domains = "{base}/local-host-names"\n'
            "[mailboxes]\n"
            f"[server]\nworkers = {workers}\n{user}"
            "[limits]\nmax_connections = 20000\n"
        )
        self.ports: dict[str, int] = {}

    def mail_for(self, user: str) -> Path:
        local, _, domain = user.partition("@")
        return self.mail / domain / local

    def start(self) -> None:
        serve = ["serve", "--config", str(self.config)]
        if self.profile is None:
            self.spawn([MRA, *serve])
        else:
            self.profile.mkdir(parents=True, exist_ok=True)
            self.spawn([PYTHON, "-c", PROFILE_WRAPPER, str(self.profile), *serve])
        assert self.proc is not None
        self.ports["plain"] = wait_for_mra(self.log, self.proc, "imap", "mra serve", 60)
        self.ports["tls"] = wait_for_mra(self.log, self.proc, "imaps", "mra serve", 60)
        time.sleep(0.5)  # the workers: "ready" is the supervisor's word

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"Z error |Traceback", ln)]


class Dovecot(Server):
    label = "dovecot"

    def __init__(
        self, base: Path, passwd: Path, cert: Path, key: Path, count: int, clients: int
    ) -> None:
        super().__init__(base)
        self.mail = base / "mail"
        self.mail.mkdir()
        self.ports = {"plain": free_port(), "tls": free_port()}
        uid, gid = mail_ids()
        room = count + 100
        self.config = base / "dovecot.conf"
        self.dovecot_log = base / "dovecot.log"
        self.config.write_text(
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            f"base_dir = {base}/run\n"
            f"state_dir = {base}/state\n"
            f"log_path = {self.dovecot_log}\n"
            f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "first_valid_uid = 0\n"
            f"mail_uid = {uid}\nmail_gid = {gid}\n"
            f"mail_location = maildir:{self.mail}/%d/%n\n"
            f"mail_max_userip_connections = {room}\n"
            f"default_client_limit = {2 * room + 100}\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            f"passdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    port = {self.ports['plain']}\n  }}\n"
            f"  inet_listener imaps {{\n    port = {self.ports['tls']}\n    ssl = yes\n  }}\n"
            "  service_count = 0\n"
            f"  process_min_avail = {os.cpu_count() or 1}\n"
            f"  client_limit = {room}\n"
            "}\n"
            "service imap {\n"
            f"  process_limit = {room}\n"
            f"  client_limit = {clients}\n"
            "}\n"
            f"service anvil {{\n  client_limit = {3 * room + 100}\n}}\n"
        )

    def mail_for(self, user: str) -> Path:
        local, _, domain = user.partition("@")
        return self.mail / domain / local

    def start(self) -> None:
        self.spawn([DOVECOT, "-F", "-c", str(self.config)])
        self.port = self.ports["plain"]
        self.wait_greeting("dovecot")

    def log(self) -> str:
        text = super().log()
        try:
            text += self.dovecot_log.read_text(errors="replace")
        except OSError:
            pass
        return text

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"(Error|Fatal|Panic):", ln)]


# -- the clients -----------------------------------------------------------------------------


class Idler:
    """One connection: logged in, INBOX selected, in IDLE; then waits for EXISTS."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.heard: float | None = None

    async def until(self, prefix: bytes) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError(f"closed while waiting for {prefix!r}")
            if line.startswith(prefix):
                return

    async def setup(self) -> None:
        await self.until(b"* OK")
        self.writer.write(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\n".encode())
        await self.until(b"b OK")
        self.writer.write(b"c IDLE\r\n")
        await self.until(b"+ ")

    async def wait_exists(self) -> None:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("closed in IDLE")
            if line.startswith(b"* ") and line.rstrip().endswith(b" EXISTS"):
                self.heard = time.monotonic()
                return


async def _open(port: int, tls: ssl.SSLContext | None, gate: asyncio.Semaphore) -> Idler:
    async with gate:
        for attempt in range(5):
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=tls, limit=1 << 16
                )
                break
            except OSError:
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        idler = Idler(reader, writer)
        await asyncio.wait_for(idler.setup(), 300)
        return idler


@dataclass
class Cell:
    server: str
    mode: str
    count: int
    opened: int = 0
    baseline_pss: int = 0
    pss: int = 0
    rss: int = 0
    processes: int = 0
    setup_seconds: float = 0.0
    fanout_seconds: float | None = None
    fanout_cpu: float | None = None  # CPU seconds of the server's processes during the fan-out
    heard: int = 0
    errors: list[str] = field(default_factory=list)


async def _measure(server: Server, mode: str, count: int, port: int, cell: Cell) -> None:
    tls = None
    if mode == "tls":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    gate = asyncio.Semaphore(SETUP_AT_ONCE)
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(_open(port, tls, gate) for _ in range(count)), return_exceptions=True
    )
    cell.setup_seconds = time.monotonic() - t0
    idlers = [r for r in results if isinstance(r, Idler)]
    cell.errors += sorted({repr(r)[:120] for r in results if isinstance(r, BaseException)})
    cell.opened = len(idlers)
    await asyncio.sleep(2.0)  # let the servers settle (freed buffers, finished logins)
    assert server.proc is not None
    cell.pss, cell.rss, cell.processes = tree_memory(server.proc.pid)
    if not idlers:
        return
    waiters = [asyncio.ensure_future(i.wait_exists()) for i in idlers]
    profiled = getattr(server, "profile", None) is not None
    if profiled:
        os.kill(server.proc.pid, signal.SIGUSR1)
        await asyncio.sleep(0.5)
    cpu_before = tree_cpu(server.proc.pid)
    acknowledged = await asyncio.get_running_loop().run_in_executor(
        None, deliver, server.mail_for(USER)
    )
    done, pending = await asyncio.wait(waiters, timeout=60)
    cell.fanout_cpu = tree_cpu(server.proc.pid) - cpu_before
    if profiled:
        os.kill(server.proc.pid, signal.SIGUSR2)
        await asyncio.sleep(2.0)
    for task in pending:
        task.cancel()
    heard = [i.heard for i in idlers if i.heard is not None]
    cell.heard = len(heard)
    if heard:
        cell.fanout_seconds = max(0.0, max(heard) - acknowledged)
    for task in done:
        if task.exception() is not None:
            cell.errors.append(repr(task.exception())[:120])
    for i in idlers:
        i.writer.transport.abort()


def deliver(inbox: Path) -> float:
    """Deliver one message as the mail user (a child process, as mda would); returns when
    it was acknowledged (time.monotonic())."""
    # Imported before the fork: the mail user may not be able to read this checkout. As
    # the server's processes: it stays root when the mail user cannot (server_user_line),
    # and then the files it made are root's.
    from mailstore.store import MailStore

    drop = bool(server_user_line())

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            uid, gid = mail_ids()
            if os.geteuid() == 0 and drop:
                os.setgid(gid)
                os.setuid(uid)
            box = MailStore(str(inbox)).mailbox("INBOX")
            box.append(b"From: a@example.test\r\nSubject: fan-out\r\n\r\nhello\r\n")
            os.write(write, b"x")
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(write)
    os.read(read, 1)
    acknowledged = time.monotonic()
    os.close(read)
    os.waitpid(pid, 0)
    return acknowledged


def run_cell(server: Server, mode: str, count: int) -> Cell:
    cell = Cell(server.label, mode, count)
    server.start()
    try:
        time.sleep(1.0)
        assert server.proc is not None
        cell.baseline_pss = tree_memory(server.proc.pid)[0]
        port = server.ports[mode]  # type: ignore[attr-defined]
        asyncio.run(_measure(server, mode, count, port, cell))
        cell.errors += server.problems()[:5]
    finally:
        server.stop()
    return cell


def raise_limits(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 2 * count + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < count + 200:
        print(f"warning: descriptor limit {want} is low for {count} connections", flush=True)


def report(cells: list[Cell]) -> None:
    print(
        f"\n{'server':8} {'mode':5} {'conns':>6} {'PSS MB':>8} {'RSS MB':>8} {'idle MB':>8} "
        f"{'KiB/conn':>9} {'procs':>6} {'setup s':>8} {'fan-out s':>9} {'CPU s':>6}"
    )
    for c in cells:
        per = (c.pss - c.baseline_pss) / max(c.opened, 1) / 1024
        fan = f"{c.fanout_seconds:.2f}" if c.fanout_seconds is not None else "-"
        cpu = f"{c.fanout_cpu:.2f}" if c.fanout_cpu is not None else "-"
        print(
            f"{c.server:8} {c.mode:5} {c.opened:6,} {c.pss / 1e6:8.1f} {c.rss / 1e6:8.1f} "
            f"{c.baseline_pss / 1e6:8.1f} {per:9.1f} {c.processes:6} {c.setup_seconds:8.1f} "
            f"{fan:>9} {cpu:>6}" + (f"  heard {c.heard}" if c.heard != c.opened else "")
        )
        for e in c.errors[:3]:
            print(f"    {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.idle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--counts", default=",".join(str(c) for c in COUNTS))
    parser.add_argument("--modes", default="plain,tls")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument("--no-ours", action="store_true")
    parser.add_argument("--dovecot-clients", type=int, default=1)
    parser.add_argument("--dovecot-max", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="write the measurements there too")
    parser.add_argument("--profile", type=Path, help="cProfile our server's fan-out into DIR")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    modes = args.modes.split(",")
    raise_limits(max(counts))
    base = traversable_tempdir("bench-idle-")
    cert, key = base / "cert.pem", base / "key.pem"
    generate_self_signed(str(cert), str(key))
    passwd = base / "passwd"
    passwd.write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    for p in (cert, key, passwd):
        p.chmod(0o644)
    print(
        f"IDLE connections: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"our workers {args.workers}",
        flush=True,
    )
    cells: list[Cell] = []
    run_number = 0
    try:
        for count in counts:
            for mode in modes:
                kinds = [] if args.no_ours else ["ours"]
                if (
                    not args.no_dovecot
                    and count <= args.dovecot_max
                    and os.access(DOVECOT, os.X_OK)
                ):
                    kinds.append("dovecot")
                for kind in kinds:
                    run_number += 1
                    where = base / f"{kind}-{run_number}"
                    server: Server
                    if kind == "ours":
                        server = Ours(where, passwd, cert, key, args.workers, args.profile)
                    else:
                        server = Dovecot(where, passwd, cert, key, count, args.dovecot_clients)
                    make_maildir(server.mail_for(USER), mail_ids())
                    cell = run_cell(server, mode, count)
                    cells.append(cell)
                    report([cell])
                    sys.stdout.flush()
    finally:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    report(cells)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cells], indent=1))
    if any(c.errors for c in cells):
        return 1
    record(cells, args.workers)
    return 0


def record(cells: list[Cell], workers: int) -> None:
    """The table and the charts of bench/results/idle.json (bench/results.py)."""
    from bench.results import Chart, Recorder

    recorder = Recorder(
        "idle",
        f"N connections in IDLE on one INBOX; PSS of the whole server; ours with workers = "
        f"{workers}; fan-out: from a delivery's acknowledgement until every connection has "
        "read EXISTS.",
    )
    recorder.table(
        "IDLE connections: memory and fan-out",
        ["server", "mode", "connections", "PSS MB", "KiB per connection", "fan-out s"],
        [
            [
                c.server,
                c.mode,
                f"{c.opened:,}",
                f"{c.pss / 1e6:.1f}",
                f"{(c.pss - c.baseline_pss) / max(c.opened, 1) / 1024:.1f}",
                f"{c.fanout_seconds:.2f}" if c.fanout_seconds is not None else "-",
            ]
            for c in cells
        ],
    )
    counts = sorted({c.count for c in cells})
    by = {(c.server, c.mode, c.count): c for c in cells}
    names = sorted({(c.server, c.mode) for c in cells})
    memory: dict[str, list[float | None]] = {}
    fanout: dict[str, list[float | None]] = {}
    for server, mode in names:
        label = f"{server} {'IMAPS' if mode == 'tls' else 'IMAP'}"
        memory[label] = [
            by[(server, mode, n)].pss / 1e6 if (server, mode, n) in by else None for n in counts
        ]
        fanout[label] = [
            by[(server, mode, n)].fanout_seconds if (server, mode, n) in by else None
            for n in counts
        ]
    x: list[str | float] = [float(n) for n in counts]
    recorder.chart(
        Chart("IDLE: server memory", "line", "connections", "PSS MB", x, memory, log_x=True)
    )
    recorder.chart(
        Chart("IDLE: delivery fan-out", "line", "connections", "seconds", x, fanout, log_x=True)
    )
    recorder.save()


if __name__ == "__main__":
    sys.exit(main())
