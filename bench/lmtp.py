"""LMTP benchmark: durable deliveries a second into `mra serve`, side by side with Dovecot's lmtp.

    python -m bench.lmtp [--connections 1,4] [--seconds 5] [--warmup 1] [--rounds 3]
                         [--recipients 1]
    python -m bench.lmtp --profile DIR [--top 30]   # mra workers=1, 1 connection, cProfile

Each connection (a Python thread on a blocking unix socket, as Postfix's lmtp client connects)
delivers 4 KB messages one after the other to a user of its own: LHLO once, then per message
MAIL, RCPT and DATA pipelined (RFC 2920: the client waits for the 354), the message, and its
reply, which both servers send only once the message is stored (ours fsyncs the file and the
directory; Dovecot with its default `mail_fsync = optimized`). So one connection's rate is one
over the latency of a delivery: nothing is batched across messages. With --recipients K, each
message goes to K mailboxes of the connection's own (one RCPT each, one reply each after the
data): a delivery is then one copy, and the rates count copies.

Servers, each started once for the whole run, each on its own socket, mail of its own:

* `mra serve` with `[server] workers = 1`, and `workers = 2` (both cores), dropping to `nobody`
  as in production (LMTP writes every mailbox as the server's user);
* Dovecot's lmtp (`dovecot -F -c CONF`, Debian's dovecot-lmtpd, stock 2.3 settings otherwise:
  its default one lmtp process per connection, indexes next to the mail), mail as `nobody`,
  users from the same passwd-file. Skipped if missing (apt-get install dovecot-lmtpd).

Cells (server x connections) run back to back in rotated order, for --rounds rounds, each
warmed up for --warmup seconds and measured for --seconds (the connections keep delivering
across the boundaries); the table shows the median round. `srv ms` is the server's CPU time
(its whole process tree) per delivery over the window, which does not depend on how busy the
machine was; `cli cores` the benchmark's own CPU, `other` whatever else ran meanwhile (these
machines are shared: only ratios measured in the same run mean anything).

Correctness, so that a failure cannot pass for speed: every reply must be 250 (a client that
sees anything else stops, and the cell says ERROR), and at the end each user's Maildir must
hold exactly as many messages as were acknowledged, the first of them ending with the bytes
that were sent.

Each run first measures the disk's floor in the same directory (`fsync floor`): a bare Python
loop of what one delivery must make durable (write 4 KB to tmp/, fsync, rename into new/,
fsync new/), so that the table separates what the disk costs from what the servers spend.

With --syscalls, only `mra serve` with one worker runs (the --baseline checkout's code if
given), one connection, under `strace -c -f` for the window: its system calls per delivery.

With --profile DIR, only `mra serve` with one worker runs, one connection, under bench.imap's
cProfile wrapper (the reactor thread and every call of the thread pool, merged), switched on
for the measured window only; the profile is DIR/00.prof, and its top is printed.

Target (the issue's): at least 1,000 deliveries a second on one connection, and at 4.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import mail_ids, server_user_line, traversable_tempdir
from bench.imap import PROFILE_WRAPPER
from bench.pop3 import CLK_TCK, Daemon, host_idle
from bench.results import Chart, Recorder

MRA = str(Path(sys.executable).parent / "mra")
DOVECOT = "/usr/sbin/dovecot"
DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"
DOMAIN = "example.test"
SENDER = "sender@remote.test"
TIMEOUT = 60.0
SIZE = 4096
TARGET = 1000.0
REFERENCE = "dovecot"


def make_message(size: int = SIZE) -> bytes:
    """A plausible message of `size` octets, CRLF lines, nothing that needs dot-stuffing."""
    head = (
        "Received: from mx.remote.test (mx.remote.test [192.0.2.7])\r\n"
        f"\tby mail.{DOMAIN} (Postfix) with ESMTPS id 4ZBENCH\r\n"
        "\tfor <user@example.test>; Tue, 4 Mar 2025 10:12:17 +0100 (CET)\r\n"
        "Message-ID: <bench.lmtp@remote.test>\r\n"
        "Date: Tue, 4 Mar 2025 10:12:14 +0100\r\n"
        "From: Sender Person <sender@remote.test>\r\n"
        f"To: User <user@{DOMAIN}>\r\n"
        "Subject: Re: migration plan, notes from Tuesday\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n"
    ).encode()
    line = b"Following up on Tuesday's meeting, here is the summary of what we agreed.\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return (head + body)[: size - 2] + b"\r\n"


# ----------------------------------------------------------------------------------------------
# Servers


class MraLmtp(Daemon):
    def __init__(
        self,
        base: Path,
        workers: int,
        passwd: Path,
        mail: Path,
        profile: Path | None = None,
        serial: bool = False,
        tree: Path | None = None,
    ) -> None:
        super().__init__(base)
        self.label = f"mra workers={workers}" + (" serial" if serial else "")
        if tree is not None:
            self.label = f"baseline w={workers}"
        self.profile = profile
        self.tree = tree
        self.socket = base / "lmtp"
        (base / "access").write_text("")
        (base / "local-host-names").write_text(f"{DOMAIN}\n")
        user = server_user_line()
        self.config = base / "mra.toml"
        self.config.write_text(
            f'[listen]\nlmtp = "unix:{self.socket}"\n'
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{mail}/%d/%n"\n'
            f'[maps]\naccess = "{base}/access"\nlocal_domains = "{base}/local-host-names"\n'
            f'aliases = "{base}/aliases"\nvirtusertable = "{base}/virtusertable"\n'
            f"[server]\nworkers = {workers}\n{user}"
            + ("[lmtp]\nparallel_copies = 1\n" if serial else "")
        )

    def start(self) -> None:
        serve = ["serve", "--config", str(self.config)]
        if self.tree is not None:  # another checkout's code, ahead of the installed one
            self.spawn(["env", f"PYTHONPATH={self.tree}", MRA, *serve])
        elif self.profile is None:
            self.spawn([MRA, *serve])
        else:
            self.spawn([sys.executable, "-c", PROFILE_WRAPPER, str(self.profile), *serve])
        _wait_for_socket(self, self.socket)

    def problems(self) -> list[str]:
        """Errors, and stalls in which the reactor itself worked past the threshold (one
        that waited for a core, cpu_ms near 0, says the machine was busy: mra/net/stall.py)."""
        return [ln for ln in self.log().splitlines() if " error " in ln or _working_stall(ln)]


def _working_stall(line: str) -> bool:
    m = re.search(r"reactor-stall ms=\d+ cpu_ms=(\d+) threshold_ms=(\d+)", line)
    return m is not None and int(m.group(1)) >= int(m.group(2))


class DovecotLmtp(Daemon):
    label = REFERENCE

    def __init__(self, base: Path, passwd: Path, mail: Path) -> None:
        super().__init__(base)
        uid, gid = mail_ids()
        self.socket = base / "run" / "lmtp-bench"
        self.dovecot_log = base / "dovecot.log"
        self.config = base / "dovecot.conf"
        self.config.write_text(
            "protocols = lmtp\n"
            f"base_dir = {base}/run\n"
            f"state_dir = {base}/state\n"
            f"log_path = {self.dovecot_log}\n"
            "info_log_path = /dev/null\n"
            "ssl = no\n"
            "first_valid_uid = 0\n"
            f"mail_uid = {uid}\n"
            f"mail_gid = {gid}\n"
            f"mail_location = maildir:{mail}/%d/%n\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = {passwd}\n}}\n"
            "userdb {\n  driver = passwd-file\n"
            f"  args = {passwd}\n}}\n"
            "service lmtp {\n"
            "  unix_listener lmtp-bench {\n    mode = 0666\n  }\n"
            "}\n"
        )

    def start(self) -> None:
        self.spawn([DOVECOT, "-F", "-c", str(self.config)])
        _wait_for_socket(self, self.socket)

    def problems(self) -> list[str]:
        try:
            text = self.dovecot_log.read_text(errors="replace")
        except OSError:
            text = ""
        return [ln for ln in (self.log() + text).splitlines() if "Error:" in ln or "Fatal:" in ln]


def _wait_for_socket(server: Daemon, path: Path) -> None:
    assert server.proc is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.label} exited {server.proc.returncode}:\n{server.log()}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(path))
                if s.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.label} did not start:\n{server.log()}")


# ----------------------------------------------------------------------------------------------
# The client


class Counter:
    def __init__(self) -> None:
        self.delivered = 0
        self.error = ""


def one_connection(
    path: Path, rcpts: list[str]
) -> tuple[threading.Thread, threading.Event, Counter]:
    """A thread delivering a message to `rcpts` over one connection (`deliver_loop`), started;
    set the event to stop it."""
    stop = threading.Event()
    counter = Counter()
    thread = threading.Thread(
        target=deliver_loop, args=(path, rcpts, make_message(), counter, stop), daemon=True
    )
    thread.start()
    return thread, stop, counter


def deliver_loop(
    path: Path, rcpts: list[str], message: bytes, counter: Counter, stop: threading.Event
) -> None:
    """Deliver `message` to `rcpts` over one connection until `stop`; count the messages
    every recipient of which got its 250."""
    envelope = (
        f"MAIL FROM:<{SENDER}>\r\n"
        + "".join(f"RCPT TO:<{rcpt}>\r\n" for rcpt in rcpts)
        + "DATA\r\n"
    ).encode()
    expected = (b"250",) * (1 + len(rcpts)) + (b"354",)
    data = message + b".\r\n"
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(TIMEOUT)
            s.connect(str(path))
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"LHLO bench.test\r\n")
            while (line := f.readline())[3:4] == b"-":
                pass
            while not stop.is_set():
                s.sendall(envelope)
                for expect in expected:
                    line = f.readline()
                    if not line.startswith(expect):
                        raise RuntimeError(f"{expect.decode()} expected, got {line!r}")
                s.sendall(data)
                for _ in rcpts:
                    line = f.readline()
                    if not line.startswith(b"250"):
                        raise RuntimeError(f"after DATA: {line!r}")
                counter.delivered += 1
            s.sendall(b"QUIT\r\n")
            f.readline()
    except Exception as exc:
        counter.error = f"{type(exc).__name__}: {exc}"


@dataclass
class Cell:
    server: str
    connections: int
    rate: float = 0.0
    server_cores: float = 0.0
    client_cores: float = 0.0
    other_cores: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def server_ms(self) -> float:
        return self.server_cores * 1000 / self.rate if self.rate else float("nan")


def _client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_cell(
    server: MraLmtp | DovecotLmtp,
    connections: int,
    users: list[list[str]],
    message: bytes,
    warmup: float,
    seconds: float,
    acknowledged: dict[str, int],
) -> Cell:
    cell = Cell(server.label, connections)
    logged = len(server.problems())
    stop = threading.Event()
    counters = [Counter() for _ in range(connections)]
    threads = [
        threading.Thread(
            target=deliver_loop,
            args=(server.socket, users[i], message, counters[i], stop),
            daemon=True,
        )
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        before = sum(c.delivered for c in counters)
        srv0, cli0, (idle0, all0) = server.cpu(), _client_cpu(), host_idle()
        t0 = time.perf_counter()
        time.sleep(seconds)
        after = sum(c.delivered for c in counters)
        srv1, cli1, (idle1, all1) = server.cpu(), _client_cpu(), host_idle()
        elapsed = time.perf_counter() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT + 5)
    for i, c in enumerate(counters):
        for user in users[i]:
            acknowledged[user] = acknowledged.get(user, 0) + c.delivered
        if c.error:
            cell.errors.append(c.error)
    copies = len(users[0])
    cell.rate = (after - before) * copies / elapsed
    cell.server_cores = (srv1 - srv0) / elapsed
    cell.client_cores = (cli1 - cli0) / elapsed
    busy = (all1 - all0 - (idle1 - idle0)) / CLK_TCK / elapsed
    cell.other_cores = busy - cell.server_cores - cell.client_cores
    cell.errors += server.problems()[logged:]
    return cell


def check_mail(mail: Path, acknowledged: dict[str, int], message: bytes) -> list[str]:
    """Every acknowledged message is in its Maildir, and ends with what was sent."""
    problems = []
    for address, count in acknowledged.items():
        local, _, domain = address.partition("@")
        root = mail / domain / local
        files = sorted(p for sub in ("new", "cur") for p in (root / sub).glob("*"))
        if len(files) != count:
            problems.append(f"{root}: {len(files)} messages stored, {count} acknowledged")
        elif files and not _lf(files[0].read_bytes()).endswith(_lf(message)):
            # Dovecot stores LF line ends, we store what came: compared without the CRs.
            problems.append(f"{files[0]}: not the message that was sent")
    return problems


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def fsync_floor(directory: Path, seconds: float = 2.0) -> tuple[float, float]:
    """What the disk alone allows: write+fsync+rename+fsync-dir loops a second in `directory`
    (a Maildir's tmp/ and new/ there), and the loop's CPU ms per round (the rest is waiting)."""
    root = directory / "floor"
    for sub in ("tmp", "new"):
        (root / sub).mkdir(parents=True)
    data = make_message()
    tmp = os.open(root / "tmp", os.O_RDONLY | os.O_DIRECTORY)
    new = os.open(root / "new", os.O_RDONLY | os.O_DIRECTORY)
    try:
        n = 0
        cpu0, t0 = _client_cpu(), time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            name = f"m{n}"
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=tmp)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(name, name, src_dir_fd=tmp, dst_dir_fd=new)
            os.fsync(new)
            n += 1
        cpu = _client_cpu() - cpu0
    finally:
        os.close(tmp)
        os.close(new)
        # The loop's files stay until the run's end (they go with `directory`): removed now,
        # they would be thousands of "recently deleted" inodes in the block group where the
        # servers' mail is made next, and on ext4 without a journal every file the servers
        # create would step over each of them for the next minutes (mailstore/adding.py).
    return n / elapsed, cpu * 1000 / max(n, 1)


def profile_run(
    base: Path, out: Path, passwd: Path, users: list[list[str]], args: argparse.Namespace
) -> int:
    """mra workers=1 under cProfile, one connection: the window's profile, its top printed."""
    import pstats
    import signal

    uid, gid = mail_ids()
    home = base / "mra1"
    mail = home / "mail"
    mail.mkdir(parents=True)
    os.chown(mail, uid, gid)
    raw = base / "profile"
    raw.mkdir()
    raw.chmod(0o777)  # the server writes it as its mail user
    server = MraLmtp(home, 1, passwd, mail, profile=raw)
    server.start()
    try:
        assert server.proc is not None
        thread, stop, counter = one_connection(server.socket, users[0])
        time.sleep(args.warmup)
        server.proc.send_signal(signal.SIGUSR1)
        before = counter.delivered
        srv0 = server.cpu()
        time.sleep(args.seconds)
        server.proc.send_signal(signal.SIGUSR2)
        after = counter.delivered
        srv1 = server.cpu()
        stop.set()
        thread.join(timeout=TIMEOUT + 5)
        deadline = time.monotonic() + 30
        while not (raw / "00.prof").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        problems = server.stop()
    if counter.error or problems:
        print(f"ERROR: {counter.error} {problems}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(raw / "00.prof", out / "00.prof")
    n = after - before
    print(
        f"{n} deliveries in {args.seconds:g} s under the profiler, "
        f"{(srv1 - srv0) * 1000 / max(n, 1):.3f} ms server CPU each; {out / '00.prof'}"
    )
    stats = pstats.Stats(str(out / "00.prof"), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"/(mra|mailstore|mda)/", args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


def syscalls_run(base: Path, passwd: Path, users: list[list[str]], args: argparse.Namespace) -> int:
    """mra workers=1 (or --baseline's code), one connection, `strace -c -f` on the server for
    the window: the system calls per delivery, by name."""
    import signal
    import subprocess

    from bench.pop3 import proc_table

    uid, gid = mail_ids()
    home = base / "mra1"
    mail = home / "mail"
    mail.mkdir(parents=True)
    os.chown(mail, uid, gid)
    tree = args.baseline.resolve() if args.baseline is not None else None
    server = MraLmtp(home, 1, passwd, mail, tree=tree)
    server.start()
    out = base / "strace.txt"
    try:
        assert server.proc is not None
        pids = [pid for pid, p in proc_table().items() if p.sid == server.proc.pid]
        thread, stop, counter = one_connection(server.socket, users[0])
        time.sleep(args.warmup)
        trace = ["strace", "-c", "-f", "-o", str(out)]
        # The deliveries counted from before the tracer attaches to after it has detached:
        # the few cut in two at either end are under 1% of a few seconds' worth.
        before = counter.delivered
        with subprocess.Popen(
            [*trace, *(a for p in pids for a in ("-p", str(p)))], stderr=subprocess.DEVNULL
        ) as tracer:
            time.sleep(args.seconds)
            tracer.send_signal(signal.SIGINT)
        after = counter.delivered
        stop.set()
        thread.join(timeout=TIMEOUT + 5)
    finally:
        problems = server.stop()
    if counter.error or problems:
        print(f"ERROR: {counter.error} {problems}", file=sys.stderr)
        return 1
    n = max(after - before, 1)
    rows = []
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            if parts[-1] == "total":
                continue
            rows.append((int(parts[3]), parts[-1]))
    rows.sort(reverse=True)
    print(f"{server.label}: {n} deliveries under strace, system calls per delivery:")
    for calls, name in rows:
        print(f"  {name:<16} {calls / n:7.2f}")
    print(f"  {'total':<16} {sum(c for c, _ in rows) / n:7.2f}")
    return 0


# ----------------------------------------------------------------------------------------------
# Run and report


def report(
    cells: dict[tuple[str, int], list[Cell]], servers: list[str], conns: list[int]
) -> dict[tuple[str, int], Cell]:
    """Print the table and the targets; return the median cell of each (server, connections)."""
    ref = {n: cells[(REFERENCE, n)] for n in conns if (REFERENCE, n) in cells}
    print(
        f"{'server':<16} {'conns':>5} {'deliveries/s':>12} {'x dovecot':>9} {'srv ms':>7} "
        f"{'srv cores':>9} {'cli cores':>9} {'other':>6}"
    )
    medians: dict[tuple[str, int], Cell] = {}
    for n in conns:
        for label in servers:
            rounds = sorted(cells[(label, n)], key=lambda c: c.rate)
            cell = rounds[len(rounds) // 2]
            medians[(label, n)] = cell
            base = statistics.median(c.rate for c in ref[n]) if n in ref else 0.0
            ratio = f"{cell.rate / base:8.2f}x" if base else f"{'-':>9}"
            status = "  ERROR: " + "; ".join(cell.errors[:2]) if cell.errors else ""
            print(
                f"{label:<16} {n:>5} {cell.rate:>12,.0f} {ratio} {cell.server_ms:>7.3f} "
                f"{cell.server_cores:>9.2f} {cell.client_cores:>9.2f} {cell.other_cores:>6.2f}"
                f"{status}"
            )
    print(
        "\n(median of the rounds; srv ms: server CPU per delivery; other: cores busy with "
        "neither the server nor this client)"
    )
    print("\nTargets")
    for n in conns:
        for label in servers:
            if label == REFERENCE:
                continue
            cell = medians[(label, n)]
            verdict = "ok" if cell.rate >= TARGET and not cell.errors else "MISSED"
            rate = f"{cell.rate:,.0f}/s"
            print(f"  {label}, {n} connection(s): {rate} (target >= {TARGET:,.0f})  {verdict}")
    return medians


def record(
    medians: dict[tuple[str, int], Cell], servers: list[str], conns: list[int], k: int
) -> None:
    name, what = ("lmtp", "one user") if k == 1 else (f"lmtp-{k}rcpt", f"{k} users")
    recorder = Recorder(name, f"4 KB messages, {what} per connection, median of the rounds.")
    recorder.table(
        "Durable deliveries",
        ["server", "connections", "deliveries/s", "server CPU ms/delivery"],
        [
            [
                label,
                str(n),
                f"{medians[(label, n)].rate:,.0f}",
                f"{medians[(label, n)].server_ms:.2f}",
            ]
            for n in conns
            for label in servers
        ],
    )
    x: list[str | float] = [f"{n} connection{'s' if n > 1 else ''}" for n in conns]
    rates: dict[str, list[float | None]] = {
        label: [medians[(label, n)].rate for n in conns] for label in servers
    }
    cpu: dict[str, list[float | None]] = {
        label: [medians[(label, n)].server_ms for n in conns] for label in servers
    }
    recorder.chart(Chart("LMTP: deliveries per second", "bar", "", "deliveries/s", x, rates))
    recorder.chart(Chart("LMTP: server CPU per delivery", "bar", "", "ms", x, cpu))
    recorder.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lmtp", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--connections", default="1,4", help="connection counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before each window")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every cell")
    parser.add_argument("--no-dovecot", action="store_true", help="leave Dovecot out")
    parser.add_argument(
        "--recipients", type=int, default=1, help="recipients (mailboxes) of each message"
    )
    parser.add_argument(
        "--serial",
        action="store_true",
        help="also mra workers=1 with [lmtp] parallel_copies = 1 (the copies in a row)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="also mra workers=1 running another checkout's code (before/after in one run)",
    )
    parser.add_argument("--profile", type=Path, metavar="DIR", help="mra alone under cProfile")
    parser.add_argument(
        "--syscalls",
        action="store_true",
        help="mra workers=1 (or --baseline) alone under strace -c: system calls per delivery",
    )
    parser.add_argument("--top", type=int, default=30, help="functions shown with --profile")
    args = parser.parse_args(argv)
    if os.geteuid() == 0 and not server_user_line():
        # The server would stay root, and LMTP never delivers as root (451 4.3.5).
        print(
            f"ERROR: the mail user cannot reach this interpreter ({sys.executable}) or this "
            "checkout: LMTP refuses to deliver as root, so run the benchmark from a venv made "
            "with a Python the mail user can read (e.g. /usr/bin/python3 -m venv /var/tmp/venv)",
            file=sys.stderr,
        )
        return 1
    conns = [int(c) for c in args.connections.split(",") if c.strip()]
    base = traversable_tempdir("bench-lmtp-")
    servers: list[MraLmtp | DovecotLmtp] = []
    try:
        uid, gid = mail_ids()
        k = args.recipients
        users = [
            [f"user{i}@{DOMAIN}" if k == 1 else f"user{i}-{j}@{DOMAIN}" for j in range(k)]
            for i in range(max(conns))
        ]
        passwd = base / "passwd"
        passwd.write_text(
            "".join(f"{u}:{{PLAIN}}x:{uid}:{gid}::::\n" for group in users for u in group)
        )
        passwd.chmod(0o644)
        if args.profile is not None:
            return profile_run(base, args.profile.resolve(), passwd, users, args)
        if args.syscalls:
            return syscalls_run(base, passwd, users, args)
        floor, floor_cpu = fsync_floor(base)
        print(
            f"fsync floor in {base}: {floor:,.0f} write+fsync+rename+fsync-dir a second "
            f"({floor_cpu:.3f} ms CPU each)",
            flush=True,
        )
        plan: list[tuple[str, int | None]] = [("mra", 1), ("mra", 2)]
        if args.serial:
            plan.insert(1, ("serial", 1))
        if args.baseline is not None:
            plan.insert(0, ("baseline", 1))
        if not args.no_dovecot:
            if os.access(DOVECOT_LMTP, os.X_OK):
                plan.append((REFERENCE, None))
            else:
                print(f"dovecot: no {DOVECOT_LMTP}, left out (apt-get install dovecot-lmtpd)")
        for kind, workers in plan:
            home = base / (kind if workers is None else f"{kind}{workers}")
            home.mkdir()
            mail = home / "mail"
            mail.mkdir()
            os.chown(mail, uid, gid)
            if workers is None:
                servers.append(DovecotLmtp(home, passwd, mail))
            else:
                tree = args.baseline.resolve() if kind == "baseline" else None
                serial = kind == "serial"
                servers.append(MraLmtp(home, workers, passwd, mail, serial=serial, tree=tree))
        for server in servers:
            server.start()
        message = make_message()
        print(
            f"{len(message)}-octet messages, one user per connection, {args.rounds} rounds of "
            f"{args.warmup:g} + {args.seconds:g} s per cell, cells in rotated order\n",
            flush=True,
        )
        cells: dict[tuple[str, int], list[Cell]] = {}
        acknowledged: dict[Daemon, dict[str, int]] = {s: {} for s in servers}
        order = [(s, n) for n in conns for s in servers]
        for r in range(args.rounds):
            shift = r % len(order)
            for server, n in order[shift:] + order[:shift]:
                cell = run_cell(
                    server, n, users, message, args.warmup, args.seconds, acknowledged[server]
                )
                cells.setdefault((server.label, n), []).append(cell)
        medians = report(cells, [s.label for s in servers], conns)
        problems: list[str] = []
        for server in servers:
            problems += server.stop()
            problems += check_mail(server.base / "mail", acknowledged[server], message)
        problems += [
            f"{c.server}, {c.connections}: {e}"
            for cs in cells.values()
            for c in cs
            for e in c.errors
        ]
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        if not problems:
            record(medians, [s.label for s in servers], conns, k)
        return 1 if problems else 0
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
