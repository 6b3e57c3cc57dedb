"""IMAP under load: many sessions on one mailbox at once, and how late the reactor ever ran.

    python -m bench.load [--clients 10,50] [--seconds 30] [--messages 2000] [--no-dovecot]
                         [--no-dovecot-hp]
                         [--kinds "FETCH BODY[] x5,NOOP"] [--each] [--profile DIR] [--top 30]
                         [--message-cache BYTES]

Each client logs in as the same user, selects the same INBOX, and then, until the time is up,
picks commands at random (weights below): FETCH of flags, of bodies, ENVELOPE and
BODYSTRUCTURE of a few messages, SEARCH on flags and on text, STORE and UNSTORE of flags and a
keyword, COPY to a folder, APPEND, EXPUNGE of a few messages it marked, LIST, STATUS, SELECT
again, IDLE for a moment, NOOP. The mailbox starts with `--messages` realistic messages (those
of bench/imap.py) and a few crafted ones (a 4 MB header, deep MIME), so that every kind of
work the server can be asked for is asked for while others wait.

What is reported, per server: commands per second and their latency (median, 99th
percentile) per kind, the answers that were not OK (by kind and text: under concurrency some
NO [EXPUNGEISSUED] are expected until issue #16), the server's CPU per command, and for our
server the reactor's lateness: `mra serve` runs with `[server] reactor_stall_ms = 20`, so every
time its event loop woke 20 ms or more late is in its log (mra/net/stall.py), and the longest
of them is the number issue #17 asks to keep under 100 ms. Dovecot (when installed) takes the
same load in the same run, for the commands per second: as installed (a login process per
connection) and in its high-performance mode (login processes that serve many connections,
one per core kept waiting; issue #16 compares against both).

`--message-cache 0` runs our server without the cache of what SEARCH TEXT and FETCH made of
messages (mra/imap/messagecache.py), of which every client here searching the same folder for
the same word is the best case. `--kinds` keeps only the named kinds of command (their weights
as below); `--each` runs each kind alone in turn, on each server, and prints the server's CPU
per command of each kind. With `--profile DIR` only our server runs, under the cProfile
wrapper of bench/imap.py (the thread pool's calls merged in) timed by each thread's CPU clock
(a wall clock would count the time a thread waits for a lock or for the GIL, summed over the
pool's threads), switched on for each run: one .prof per client count in DIR, and its top
entries printed, with each IMAP command handler's cumulative time, which is where the CPU per
kind of command goes.
"""

from __future__ import annotations

import argparse
import os
import pstats
import random
import re
import shutil
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.common import mail_ids, server_user_line, traversable_tempdir, wait_for_mra
from bench.imap import (
    DOMAIN,
    DOVECOT,
    PASSWORD,
    PROFILE_WRAPPER,
    PYTHON,
    Conn,
    DovecotServer,
    ImapError,
    MraServer,
    Server,
    make_maildir,
    make_messages,
    profile_hook,
)
from bench.results import Chart, Recorder
from mra.auth.passwords import hash_password
from tests.unit.imap_mime import attacks

USER = f"load@{DOMAIN}"
# The profiler of bench/imap.py on each thread's CPU time.
CPU_PROFILE_WRAPPER = PROFILE_WRAPPER.replace(
    "cProfile.Profile()", "cProfile.Profile(__import__('time').thread_time)"
)
WEIGHTS = {
    "NOOP": 10,
    "FETCH FLAGS 1:*": 8,
    "FETCH BODY[] x5": 10,
    "FETCH ENVELOPE BODYSTRUCTURE x20": 8,
    "SEARCH UNSEEN": 6,
    "SEARCH TEXT": 4,
    "STORE +FLAGS x5": 8,
    "STORE -FLAGS x5": 6,
    "COPY x5": 4,
    "APPEND": 6,
    "EXPUNGE": 3,
    "LIST": 4,
    "STATUS": 4,
    "SELECT": 2,
    "IDLE": 3,
}


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.failed: Counter[str] = Counter()

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)

    def fail(self, kind: str, why: str) -> None:
        text = re.sub(rb"\d+".decode(), "n", why)[:70]
        with self.lock:
            self.failed[f"{kind}: {text}"] += 1


class CpuProfiledServer(MraServer):
    """Our server under CPU_PROFILE_WRAPPER."""

    def start(self) -> None:
        assert self.profile is not None
        self.spawn(
            [
                PYTHON,
                "-c",
                CPU_PROFILE_WRAPPER,
                str(self.profile),
                "serve",
                "--config",
                str(self.config),
            ]
        )
        assert self.proc is not None
        self.port = wait_for_mra(self.log, self.proc, "imap", "mra serve", 60)


def client(
    port: int, seed: int, until: float, tally: Tally, kinds: list[str] | None = None
) -> None:
    rng = random.Random(seed)
    kinds = list(kinds or WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    conn = Conn(port)
    conn.greeting()
    conn.command(f'LOGIN {USER} "{PASSWORD}"')
    untagged, _ = conn.command("SELECT INBOX")
    exists = _exists(untagged) or 1
    body = b"From: load@example.test\r\nSubject: load\r\n\r\n" + b"x" * 2000 + b"\r\n"
    while time.monotonic() < until:
        kind = rng.choices(kinds, weights)[0]
        n = max(exists, 1)
        some = ",".join(str(rng.randint(1, n)) for _ in range(5))
        start = rng.randint(1, n)
        commands = {
            "NOOP": "NOOP",
            "FETCH FLAGS 1:*": "FETCH 1:* (FLAGS)",
            "FETCH BODY[] x5": f"FETCH {some} (BODY.PEEK[])",
            "FETCH ENVELOPE BODYSTRUCTURE x20": f"FETCH {start}:{min(n, start + 19)} "
            "(ENVELOPE BODYSTRUCTURE)",
            "SEARCH UNSEEN": "SEARCH UNSEEN",
            "SEARCH TEXT": "SEARCH TEXT needle",
            "STORE +FLAGS x5": f"STORE {some} +FLAGS (\\Seen $Label1)",
            "STORE -FLAGS x5": f"STORE {some} -FLAGS (\\Seen $Label1)",
            "COPY x5": f"COPY {some} Archive",
            "APPEND": "APPEND INBOX",
            "EXPUNGE": f"STORE {start} +FLAGS.SILENT (\\Deleted)",
            "LIST": 'LIST "" "*"',
            "STATUS": "STATUS Archive (MESSAGES UNSEEN)",
            "SELECT": "SELECT INBOX",
            "IDLE": "IDLE",
        }
        t0 = time.perf_counter()
        try:
            if kind == "APPEND":
                untagged, _ = conn.command(commands[kind], literal=body)
            elif kind == "IDLE":
                untagged = _idle(conn, rng.uniform(0.05, 0.3))
            else:
                untagged, _ = conn.command(commands[kind])
                if kind == "EXPUNGE":
                    more, _ = conn.command("EXPUNGE")
                    untagged += more
        except ImapError as exc:
            tally.fail(kind, str(exc).split(": ", 1)[-1])
            continue
        except OSError as exc:
            tally.fail(kind, f"connection: {exc}")
            return
        tally.add(kind, time.perf_counter() - t0)
        exists = _exists(untagged, exists) or exists
    conn.command("LOGOUT")
    conn.close()


def _exists(untagged: list[list[bytes]], current: int = 0) -> int:
    """The last EXISTS, less the EXPUNGEs after it, applied to `current`."""
    count = current
    for resp in untagged:
        line = resp[0]
        if m := re.match(rb"\* (\d+) EXISTS", line):
            count = int(m.group(1))
        elif re.match(rb"\* \d+ EXPUNGE", line):
            count -= 1
    return count


def _idle(conn: Conn, seconds: float) -> list[list[bytes]]:
    conn.tags += 1
    tag = b"a%04d" % conn.tags
    conn.sock.sendall(tag + b" IDLE\r\n")
    untagged = []
    while not (resp := conn.response())[0].startswith(b"+"):
        untagged.append(resp)
    time.sleep(seconds)
    conn.sock.sendall(b"DONE\r\n")
    while not (resp := conn.response())[0].startswith(tag):
        untagged.append(resp)
    if not resp[0].startswith(tag + b" OK"):
        raise ImapError(f"IDLE: {resp[0][:200]!r}")
    return untagged


def owner(server: Server) -> tuple[int, int]:
    """Who owns the mail: the mail user, unless our server stays root (from a checkout the mail
    user cannot enter, bench/common.py): then root, who writes its APPENDed files. Mail of
    another owner than the files the server writes would be refused once COPY hard-linked
    them ("a hard link to a file of another owner", mailstore/messagefile.py), and such
    failed commands would count as cheap ones."""
    if isinstance(server, MraServer) and os.geteuid() == 0 and not server_user_line():
        return 0, 0
    return mail_ids()


def fill(server: Server, count: int) -> None:
    """The mailbox as an MTA would have left it: files in cur/, a third \\Seen."""
    cur = server.mail_for(USER) / "cur"
    messages = [m.data for m in make_messages(count, seed=1605)]
    messages += [attacks.one_field(4_000_000), attacks.nested_multiparts(500)]
    for i, data in enumerate(messages):
        flags = "S" if i % 3 == 0 else ""
        (cur / f"1700000000.M{i}P1.load:2,{flags}").write_bytes(data)
    uid, gid = owner(server)
    if os.geteuid() == 0:
        for path in [cur, *cur.iterdir()]:
            os.chown(path, uid, gid)


def run(
    server: Server, clients: int, seconds: float, kinds: list[str] | None = None
) -> tuple[Tally, float, float]:
    tally = Tally()
    cpu0 = server.cpu()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=client, args=(server.port, seed, until, tally, kinds))
        for seed in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.perf_counter() - t0, server.cpu() - cpu0


def report(
    label: str, tally: Tally, wall: float, cpu: float, server: Server, log_from: int = 0
) -> list[str]:
    """Print the run's figures (stalls: those logged after `log_from` characters of the
    server's log); return the row of the summary table."""
    total = sum(len(v) for v in tally.latency.values())
    print(
        f"\n{label}: {total:,} commands in {wall:.1f} s = {total / wall:,.0f}/s, "
        f"server CPU {cpu * 1000 / max(total, 1):.2f} ms per command"
    )
    print(f"  {'command':36} {'count':>7} {'median ms':>10} {'p99 ms':>8}")
    for kind in WEIGHTS:
        values = sorted(tally.latency.get(kind, []))
        if values:
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(
                f"  {kind:36} {len(values):7,} {statistics.median(values) * 1000:10.1f} "
                f"{p99 * 1000:8.1f}"
            )
    for what, count in tally.failed.most_common():
        print(f"  not OK: {count:6,} x {what}")
    found = re.findall(r"reactor-stall ms=(\d+) cpu_ms=(\d+)", server.log()[log_from:])
    stalls = [(int(ms), int(cpu)) for ms, cpu in found]
    longest = ""
    if isinstance(server, MraServer):
        late, late_cpu = max(stalls, default=(0, 0))
        working = max((min(ms, busy) for ms, busy in stalls), default=0)
        longest = f"{late} ms ({late_cpu} ms CPU); working {working} ms"
        print(
            f"  reactor lateness of 20 ms or more: {len(stalls)} times, the longest {late} ms "
            f"with {late_cpu} ms of the reactor's CPU in it; the longest working on the reactor "
            f"(lateness and CPU both): {working} ms (issue #17: under 100 ms)"
        )
    return [
        label,
        f"{total / wall:,.0f}",
        f"{cpu * 1000 / max(total, 1):.2f}",
        f"{sum(tally.failed.values()):,}",
        longest,
    ]


def each_kind(servers: list[Server], counts: list[int], seconds: float, kinds: list[str]) -> None:
    """One run per kind of command and server: the server's CPU per command of each kind."""
    labels = [s.label for s in servers]
    print(
        f"\n  {'clients':>7} {'command':36}"
        + "".join(f" {x + ' ms':>12} {'/s':>6}" for x in labels)
    )
    for clients in counts:
        for kind in kinds:
            cells = []
            for server in servers:
                tally, wall, cpu = run(server, clients, seconds, [kind])
                total = sum(len(v) for v in tally.latency.values())
                cells.append(f" {cpu * 1000 / max(total, 1):12.2f} {total / wall:6.0f}")
            print(f"  {clients:7} {kind:36}" + "".join(cells), flush=True)


def print_profile(path: Path, top: int) -> None:
    """The IMAP command handlers by cumulative time (where each kind of command's CPU goes),
    then the project's functions by cumulative time, then everything by own time. The reactor
    thread's `epoll.poll` is idle time."""
    print(f"\n=== {path} ===")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"/mra/imap/commands/", top)
    stats.sort_stats("cumulative").print_stats(r"/(mra|mailstore)/", top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--clients", default="10,50", help="clients at once, comma-separated: one run each"
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument(
        "--no-dovecot-hp",
        action="store_true",
        help="leave out Dovecot in its high-performance mode (login processes kept)",
    )
    parser.add_argument(
        "--kinds", help=f"only these kinds of command, comma-separated, of: {', '.join(WEIGHTS)}"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="our server alone under cProfile: one .prof per run"
    )
    parser.add_argument(
        "--each", action="store_true", help="one run per kind of command: CPU ms per command"
    )
    parser.add_argument(
        "--message-cache",
        type=int,
        metavar="BYTES",
        help="our server's [limits] message_cache (0: none; default: the server's default)",
    )
    parser.add_argument("--top", type=int, default=30, help="functions shown per profile")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",") if c.strip()]
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else None
    if unknown := [k for k in kinds or [] if k not in WEIGHTS]:
        parser.error(f"unknown kinds {unknown}: the kinds are {list(WEIGHTS)}")
    profile_out = Path(args.profile).resolve() if args.profile else None
    base = traversable_tempdir("bench-load-")
    passwd = base / "passwd"
    passwd.write_text(f"{USER}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n")
    passwd.chmod(0o644)
    prof_tmp = None
    if profile_out is not None:
        prof_tmp = base / "profile"
        prof_tmp.mkdir()
        if os.geteuid() == 0:  # written by the server after it dropped privileges
            os.chown(prof_tmp, *mail_ids())
    ours = (MraServer if prof_tmp is None else CpuProfiledServer)(base / "ours", passwd, prof_tmp)
    with open(ours.config, "a") as f:
        f.write("reactor_stall_ms = 20\n")  # [server] is the config's last section
    if args.message_cache is not None:
        text = ours.config.read_text()
        ours.config.write_text(
            text.replace("[limits]\n", f"[limits]\nmessage_cache = {args.message_cache}\n", 1)
        )
    servers: list[Server] = [ours]
    if not args.no_dovecot and profile_out is None and os.access(DOVECOT, os.X_OK):
        servers.append(DovecotServer(base / "dovecot", passwd))
        if not args.no_dovecot_hp:
            servers.append(DovecotServer(base / "dovecot-hp", passwd, high_performance=True))
    try:
        for server in servers:
            make_maildir(server.mail_for(USER), owner(server))
            folder = server.mail_for(USER) / ".Archive"
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True)
            (folder / "maildirfolder").touch()
            if os.geteuid() == 0:
                for path in [folder, *folder.iterdir()]:
                    os.chown(path, *owner(server))
            server.prepare(USER)
            fill(server, args.messages)
            server.start()
        note = (
            f"{', '.join(map(str, counts))} clients for {args.seconds:.0f} s each on one "
            f"mailbox of {args.messages:,} messages (and two crafted ones)"
        )
        print(f"{note}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        recorder = Recorder("load", note + ": the commands and weights of bench/load.py.")
        rows: list[list[str]] = []
        rates: dict[str, list[float | None]] = {s.label: [] for s in servers}
        cpus: dict[str, list[float | None]] = {s.label: [] for s in servers}
        if args.each:
            each_kind(servers, counts, args.seconds, kinds or list(WEIGHTS))
            return 0
        hook = None
        if prof_tmp is not None:
            hook = profile_hook(ours, prof_tmp, [f"{c}-clients" for c in counts])
        for index, clients in enumerate(counts):
            for server in servers:
                log_from = len(server.log())
                if hook is not None:
                    hook(index, True)
                tally, wall, cpu = run(server, clients, args.seconds, kinds)
                if hook is not None:
                    hook(index, False)
                print(f"\n{clients} clients:", end="")
                row = report(server.label, tally, wall, cpu, server, log_from)
                rows.append([str(clients), *row])
                rates[server.label].append(float(row[1].replace(",", "")))
                cpus[server.label].append(float(row[2]))
                for line in server.problems()[:10]:
                    print(f"  log: {line}")
        if profile_out is not None and prof_tmp is not None:
            profile_out.mkdir(parents=True, exist_ok=True)
            for path in sorted(prof_tmp.glob("*-clients.prof")):
                shutil.copy(path, profile_out / path.name)
                print_profile(profile_out / path.name, args.top)
            return 0
        if kinds is not None:
            return 0  # a part of the load is not the benchmark: bench/results/ keeps the whole
        recorder.table(
            "Mixed IMAP load on one mailbox",
            ["clients", "server", "commands/s", "server CPU ms/command", "not OK", "longest stall"],
            rows,
        )
        x: list[str | float] = [f"{c} clients" for c in counts]
        recorder.chart(
            Chart("Mixed IMAP load: commands per second", "bar", "", "commands/s", x, rates)
        )
        recorder.chart(Chart("Mixed IMAP load: server CPU per command", "bar", "", "ms", x, cpus))
        recorder.save()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
