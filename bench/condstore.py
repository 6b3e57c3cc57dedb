"""Folder index benchmark: SELECT, CHANGEDSINCE and QRESYNC on a big folder, against Dovecot 2.3
with its index, in the same run (issue #11's targets).

    python -m bench.condstore [--messages 100000] [--runs 5] [--tries 1000]
    python -m bench.condstore --profile DIR --no-dovecot   # our server under cProfile

One folder of N messages is made (written directly, a third of them \\Seen, with its uidlist:
the set-up is not timed) and copied, so that `mra serve` (one worker) and Dovecot (a daemon,
its index inside the Maildir as in a default installation) have the same files, UIDs and
UIDVALIDITY. The client is the same for both (bench/imap.py's: raw sockets, one command at a
time); each time is the client's wall clock from sending a command to its tagged answer,
the median of `--runs` tries (of `--tries` for the NOOP and the warm SELECTs, at most
LATENCY_BUDGET seconds of them: Dovecot's SELECT in a QRESYNC session takes 70 ms):

    first SELECT (index build)        a fresh server, no index: the listing, the uidlist and
                                      the index made (Dovecot: its dovecot.index* files); the
                                      rate in messages a second
    NOOP                              a command's round trip through the server: what every
                                      command costs before its own work
    warm SELECT, unchanged            SELECT again in the same session (QRESYNC enabled) after
                                      UNSELECT, nothing changed (ours: the worker kept the
                                      folder's state)
    ..., no ENABLE                    the same in a session that enabled nothing
    server CPU a ...                  the server's CPU time (all its processes, from /proc) over
                                      the NOOPs and the UNSELECT + SELECT pairs above, divided
                                      by their number: less sensitive to a busy machine than
                                      the wall clock, and to the client's own cost
    second session's SELECT           a new connection selects the folder another one holds
    UID FETCH CHANGEDSINCE, 10 changes
                                      `UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)` after another
                                      session changed the flags of 10 messages (a NOOP first
                                      takes the untagged news, so only the FETCH is timed)
    QRESYNC SELECT, 10 expunges       `SELECT INBOX (QRESYNC (v m))` after another session
                                      expunged 10 messages
    index size                        octets on disk a message: mra.index (and its WAL); for
                                      Dovecot, its dovecot.index* files

Targets (the issue's): warm SELECT at most Dovecot's; a second session's SELECT under 10 ms;
CHANGEDSINCE and the QRESYNC SELECT under 10 ms and at most 2x Dovecot; the index at most
about 200 octets a message.

With --profile DIR our server runs under bench.imap's cProfile wrapper, switched on around the
NOOPs and the warm SELECTs (no ENABLE): DIR/NN-phase.prof, the top functions printed; the
results are not recorded then.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import mail_ids, traversable_tempdir
from bench.imap import DOMAIN, PASSWORD, Conn, DovecotServer, MraServer, Server, profile_hook
from bench.results import Chart, Recorder
from bench.store import make_folder
from mailstore.folderindex import NAME as INDEX_NAME
from mailstore.store import MailStore
from mra.auth.passwords import hash_password

USER = f"alice@{DOMAIN}"
CHANGES = 10
LATENCY_BUDGET = 10.0  # seconds of tries at most, per latency phase
CPU_PREFIX = "server CPU a "
_HIGHEST = re.compile(rb"\[HIGHESTMODSEQ (\d+)\]")
_VALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")


def login(server: Server) -> Conn:
    conn = Conn(server.port)
    conn.greeting()
    conn.command(f'LOGIN {USER} "{PASSWORD}"')
    return conn


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def highest_of(untagged: list[list[bytes]], status: bytes) -> int:
    for resp in [*untagged, [status]]:
        if m := _HIGHEST.search(resp[0]):
            return int(m.group(1))
    raise RuntimeError("no HIGHESTMODSEQ in the answer")


def latency(
    server: Server, conn: Conn, commands: list[str], tries: int
) -> tuple[float, float, int]:
    """(the median wall time of the last command, the server's CPU seconds per try, tries
    made): `commands` sent one after another, `tries` times or for LATENCY_BUDGET seconds."""
    times = []
    cpu = server.cpu()
    deadline = time.perf_counter() + LATENCY_BUDGET
    *before, last = commands
    while len(times) < tries and (len(times) < 5 or time.perf_counter() < deadline):
        for command in before:
            conn.command(command)
        times.append(timed(lambda: conn.command(last)))
    return statistics.median(times), (server.cpu() - cpu) / len(times), len(times)


def measure(
    server: Server,
    count: int,
    runs: int,
    tries: int,
    hook: Callable[[int, bool], None] | None = None,
) -> dict[str, float]:
    """Every phase of one server, in seconds (the median of `runs`, or of `tries`)."""
    out: dict[str, float] = {}
    a = login(server)
    a.command("ENABLE QRESYNC")
    out["first SELECT (index build)"] = timed(lambda: a.command("SELECT INBOX"))
    plain = login(server)  # no ENABLE: what a client without CONDSTORE sees
    plain.command("SELECT INBOX")
    for _ in range(50):  # warm-up, untimed
        plain.command("NOOP")
    if hook is not None:
        hook(0, True)
    wall, cpu, _ = latency(server, plain, ["NOOP"], tries)
    out["NOOP"] = wall
    if hook is not None:
        hook(0, False)
        hook(1, True)
    wall, cpu_plain, _ = latency(server, plain, ["UNSELECT", "SELECT INBOX"], tries)
    if hook is not None:
        hook(1, False)
    warm, cpu_warm, _ = latency(server, a, ["UNSELECT", "SELECT INBOX"], tries)
    out["warm SELECT, unchanged"] = warm
    out["warm SELECT, unchanged, no ENABLE"] = wall
    out[CPU_PREFIX + "NOOP"] = cpu
    out[CPU_PREFIX + "UNSELECT + warm SELECT, no ENABLE"] = cpu_plain
    out[CPU_PREFIX + "UNSELECT + warm SELECT (QRESYNC)"] = cpu_warm
    plain.close()
    second = []
    for _ in range(runs):
        b = login(server)
        second.append(timed(lambda b=b: b.command("SELECT INBOX")))  # type: ignore[misc]
        b.close()
    out["second session's SELECT"] = statistics.median(second)
    other = login(server)
    other.command("SELECT INBOX")
    changed, qresync = [], []
    step = max(1, count // (CHANGES * (runs + 1) * 2))
    uid = 1
    for _ in range(runs):
        untagged, status = a.command("NOOP")
        since = highest_of(*a.command("SELECT INBOX"))
        uids = ",".join(str(uid + i * step) for i in range(CHANGES))
        uid += CHANGES * step + 1
        other.command(f"UID STORE {uids} +FLAGS.SILENT ($Work)")
        a.command("NOOP")
        fetch = f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since})"
        changed.append(timed(lambda f=fetch: a.command(f)))  # type: ignore[misc]
        untagged, status = a.command("SELECT INBOX")
        since = highest_of(untagged, status)
        validity = int(_VALIDITY.search(b"".join(r[0] for r in untagged)).group(1))  # type: ignore[union-attr]
        a.command("UNSELECT")
        uids = ",".join(str(uid + i * step) for i in range(CHANGES))
        uid += CHANGES * step + 1
        other.command(f"UID STORE {uids} +FLAGS.SILENT (\\Deleted)")
        other.command(f"UID EXPUNGE {uids}")
        qresync.append(
            timed(lambda v=validity, s=since: a.command(f"SELECT INBOX (QRESYNC ({v} {s}))"))
        )
    out["UID FETCH CHANGEDSINCE, 10 changes"] = statistics.median(changed)
    out["QRESYNC SELECT, 10 expunges"] = statistics.median(qresync)
    a.close()
    other.close()
    return out


def index_octets(maildir: Path, dovecot: bool) -> int:
    total = 0
    for entry in os.scandir(maildir):
        name = entry.name
        if (dovecot and name.startswith("dovecot.index")) or (
            not dovecot and name.startswith(INDEX_NAME)
        ):
            total += entry.stat().st_size
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tries", type=int, default=1000, help="of NOOP and warm SELECT")
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument("--profile", type=Path, help="our server under cProfile, into DIR")
    args = parser.parse_args()
    count = args.messages
    base = traversable_tempdir("bench-condstore-")
    passwd = base / "passwd"
    passwd.write_text(f"{USER}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n")
    passwd.chmod(0o644)
    servers: list[Server] = [MraServer(base / "ours", passwd, args.profile)]
    if not args.no_dovecot and os.path.exists("/usr/sbin/dovecot"):
        servers.append(DovecotServer(base / "dovecot", passwd))
    results: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    try:
        source = base / "source"
        make_folder(source, count)
        MailStore(str(source)).mailbox("INBOX").sync()  # the uidlist both will read
        for server in servers:
            target = server.mail_for(USER)  # type: ignore[attr-defined]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target, symlinks=True)
            if os.geteuid() == 0:
                uid, gid = mail_ids()
                for dirpath, _dirs, files in os.walk(target.parent):
                    os.chown(dirpath, uid, gid)
                    for name in files:
                        os.chown(os.path.join(dirpath, name), uid, gid)
            server.start()
            hook = None
            if args.profile is not None and isinstance(server, MraServer):
                args.profile.mkdir(parents=True, exist_ok=True)
                hook = profile_hook(server, args.profile, list(PROFILED))
            try:
                results[server.label] = measure(server, count, args.runs, args.tries, hook)
                sizes[server.label] = index_octets(target, server.label == "dovecot")
                problems = server.problems()
                if problems:
                    print(f"{server.label}: problems in its log: {problems[:3]}", file=sys.stderr)
            finally:
                server.stop()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)
    report(results, sizes, count, profiled=args.profile is not None)
    if args.profile is not None:
        for path in sorted(args.profile.glob("*.prof")):
            print(f"\n=== {path} ===")
            stats = pstats.Stats(str(path), stream=sys.stdout)
            stats.sort_stats("cumulative").print_stats(r"/(mra|mailstore)/", 25)
            stats.sort_stats("tottime").print_stats(12)


PROFILED = ("noop", "warm-select-no-enable")  # the phases the profile hook names


TARGETS = {
    "warm SELECT, unchanged": (None, 1.0),
    "warm SELECT, unchanged, no ENABLE": (None, 1.0),
    "second session's SELECT": (0.010, None),
    "UID FETCH CHANGEDSINCE, 10 changes": (0.010, 2.0),
    "QRESYNC SELECT, 10 expunges": (0.010, 2.0),
}


def report(
    results: dict[str, dict[str, float]], sizes: dict[str, int], count: int, profiled: bool = False
) -> None:
    ours = results["ours"]
    theirs = results.get("dovecot", {})
    width = max(len(k) for k in ours) + 2
    print(f"{count:,} messages")
    print(f"{'phase':<{width}}{'ours':>12}{'dovecot':>12}{'ratio':>8}  target")
    for phase, value in ours.items():
        other = theirs.get(phase)
        ratio = f"{value / other:.2f}" if other else ""
        limit, factor = TARGETS.get(phase, (None, None))
        target = []
        if limit is not None:
            target.append(f"< {limit * 1000:.0f} ms")
        if factor is not None:
            target.append(f"<= {factor:g}x Dovecot")
        shown = f"{other * 1000:.2f} ms" if other else "-"
        print(f"{phase:<{width}}{value * 1000:>9.2f} ms{shown:>12}{ratio:>8}  {', '.join(target)}")
    first = ours["first SELECT (index build)"]
    line = f"{'index build rate':<{width}}{count / first:>9,.0f}/s"
    if "first SELECT (index build)" in theirs:
        line += f"{count / theirs['first SELECT (index build)']:>9,.0f}/s"
    print(line)
    for label, octets in sizes.items():
        print(f"index size ({label}): {octets:,} octets, {octets / count:.0f} a message")
    if not profiled:
        record(results, sizes, count)


def record(results: dict[str, dict[str, float]], sizes: dict[str, int], count: int) -> None:
    recorder = Recorder("condstore", f"One folder of {count:,} messages; medians of the runs.")
    ours, theirs = results["ours"], results.get("dovecot", {})
    rows = []
    for phase, value in ours.items():
        other = theirs.get(phase)
        rows.append(
            [
                phase,
                f"{value * 1000:.2f}",
                f"{other * 1000:.2f}" if other else "-",
                f"{value / other:.2f}" if other else "",
            ]
        )
    for label, octets in sizes.items():
        rows.append([f"index octets a message ({label})", f"{octets / count:.0f}", "", ""])
    recorder.table("The folder index (ms)", ["phase", "ours", "dovecot", "ratio"], rows)
    phases = [p for p in ours if p != "first SELECT (index build)" and not p.startswith(CPU_PREFIX)]
    x: list[str | float] = list(phases)
    series: dict[str, list[float | None]] = {"ours": [ours[p] * 1000 for p in phases]}
    if theirs:
        series["dovecot"] = [theirs[p] * 1000 if p in theirs else None for p in phases]
    recorder.chart(
        Chart("Folder index: resync and SELECT (log scale)", "bar", "", "ms", x, series, log_y=True)
    )
    recorder.save()


if __name__ == "__main__":
    main()
