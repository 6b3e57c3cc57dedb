"""SORT and THREAD benchmark: `SORT (DATE)`, `SORT (SUBJECT)` and `THREAD REFERENCES` on a big
folder, against Dovecot 2.3 with its index, and the algorithms alone.

    python -m bench.sort [--messages 100000] [--runs 5] [--no-dovecot] [--algorithms-only]

Two parts.

1. The algorithms alone (mra/imap/sorting.py, threads.py), on the fields of the messages
   already made (`sortfields.fields_of`, which is timed too: it is what a first SORT pays per
   message when nothing keeps the fields, and what the folder index pays once per message).
   This is the part a faster field source cannot change.

2. The servers: the same N messages (a mailing list: threads with References, Re: and
   [list] prefixes, dates that tie and some that cannot be parsed) written once into a
   Maildir for each server, `mra serve` and Dovecot's daemon (its index files next to the
   mail, as installed). One session each: SELECT, then the first SORT (DATE) (Dovecot fills
   its cache, we read every header unless the folder index has the fields), then `--runs`
   rounds of the three commands, timed at the client, the median shown with the server's CPU
   time over each command (its whole process tree, from /proc); then, `--runs` times, each
   command right after an APPEND of one message and right after an EXPUNGE of one (the change
   itself not timed; the command ran just before it), which shows what is kept per folder
   being updated. Every answer is
   compared with Dovecot's: they must be the same, number for number (the generated dates
   stay within 1970-2106, where Dovecot's 32-bit dates and ours agree).

With the folder index merged (the view's `field_source`), part 2 measures it with no change
here: rerun `python -m bench.sort` (and `--messages 100000` is the issue's target size).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path

from bench.common import mail_ids, traversable_tempdir
from bench.imap import (
    DOMAIN,
    DOVECOT,
    MRA,
    PASSWORD,
    Conn,
    DovecotServer,
    MraServer,
    Server,
    _dovecot_version,
    _raise_interrupt,
    make_maildir,
)
from bench.results import Chart, Recorder
from mra.auth.passwords import hash_password
from mra.imap import sorting, threads
from mra.imap.sortfields import fields_of
from mra.imap.sortindex import FolderKeys

USER = f"bench@{DOMAIN}"
COMMANDS = ("SORT (DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL", "THREAD REFERENCES UTF-8 ALL")
WORDS = [
    "migration",
    "plan",
    "backup",
    "schedule",
    "quota",
    "warning",
    "relay",
    "storage",
    "invoice",
    "meeting",
    "notes",
    "release",
    "candidate",
    "build",
    "failure",
    "weekend",
    "on-call",
    "budget",
    "review",
    "draft",
    "numbers",
]
PEOPLE = [f"Person {i} <person{i}@example.org>" for i in range(400)]


def make_messages(count: int, seed: int = 5256) -> list[tuple[bytes, float]]:
    """(message, INTERNALDATE): a mailing list's archive. A third of the messages start a
    thread; the others reply to an earlier message of a recent thread, with References (a
    few only In-Reply-To), "Re: " and "[list] " as people write them."""
    rng = random.Random(seed)
    out: list[tuple[bytes, float]] = []
    threads_open: list[tuple[str, list[str]]] = []  # (subject, ids of its messages)
    start = 1_500_000_000
    for i in range(count):
        msgid = f"<{i}.{seed}@list.example.org>"
        stamp = start + i * 300 + rng.randrange(-3000, 3000)
        if not threads_open or rng.random() < 0.33:
            subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
            subject = f"{subject} {rng.randrange(1000)}"
            refs: list[str] = []
            threads_open.append((subject, [msgid]))
            if len(threads_open) > 500:
                threads_open.pop(0)
            shown = subject
        else:
            subject, ids = rng.choice(threads_open[-200:])
            parent = rng.randrange(len(ids))
            refs = ids[: parent + 1][-10:]
            ids.append(msgid)
            shown = rng.choice(("Re: ", "RE: ", "Re: Re: ", "[list] Re: ", "Fwd: ")) + subject
        headers = [
            f"From: {rng.choice(PEOPLE)}",
            "To: The List <list@example.org>",
            f"Subject: {shown}",
            f"Message-ID: {msgid}",
        ]
        if rng.random() < 0.995:
            t = time.gmtime(stamp)
            headers.append(time.strftime("Date: %a, %d %b %Y %H:%M:%S +0000", t))
        if refs:
            if rng.random() < 0.1:
                headers.append(f"In-Reply-To: {refs[-1]}")
            else:
                headers.append("References: " + " ".join(refs))
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
        data = ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()
        out.append((data, float(stamp + rng.randrange(0, 600))))
    return out


def write_maildir(path: Path, messages: list[tuple[bytes, float]]) -> None:
    """The messages as files in cur/ (so no renames on SELECT), their sizes in the names as
    Dovecot writes them, the INTERNALDATE as the mtime."""
    cur = path / "cur"
    ids = mail_ids()
    for i, (data, stamp) in enumerate(messages):
        # Names in message order, so that both servers give the same UIDs (in name order).
        name = cur / f"{1_600_000_000 + i}.M1P1.bench,S={len(data)},W={len(data)}:2,"
        name.write_bytes(data)
        os.utime(name, (stamp, stamp))
        if os.geteuid() == 0:
            os.chown(name, *ids)


def best(fn: object, runs: int) -> float:
    """The least CPU time of `runs` calls (the process's: this part runs in one thread; CPU
    time, not wall time, as other work shares the machine)."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - t)
    return min(times)


def algorithms(messages: list[tuple[bytes, float]], runs: int) -> dict[str, float]:
    """The best CPU time of each part, in ms, by name (printed as it goes)."""
    print(f"algorithms on {len(messages)} messages' fields (CPU, best of {runs}):")
    t = time.process_time()
    fields = [
        fields_of(uid, stamp, len(data), data[: data.index(b"\r\n\r\n") + 4])
        for uid, (data, stamp) in enumerate(messages, 1)
    ]
    took = time.process_time() - t
    print(f"  {'fields_of (header parse)':<52} {took * 1000:9.1f} ms  {len(fields) / took:,.0f}/s")
    parts = {"fields_of (header parse)": took * 1000}

    def show(name: str, ms: float) -> None:
        print(f"  {name:<52} {ms:9.1f} ms")
        parts[name] = ms

    date, subject = [("DATE", False)], [("SUBJECT", False)]
    show("SORT (DATE), from the fields", best(lambda: sorting.sort_uids(fields, date), runs) * 1000)
    show(
        "SORT (SUBJECT), from the fields",
        best(lambda: sorting.sort_uids(fields, subject), runs) * 1000,
    )
    show(
        "THREAD REFERENCES, from the fields", best(lambda: threads.references(fields), runs) * 1000
    )
    tree = threads.references(fields)
    show(
        "THREAD REFERENCES, writing the answer", best(lambda: threads.write(tree, int), runs) * 1000
    )
    # The keys kept per folder (sortindex.py): made at the first command, then read; after one
    # new message (put in place) and one expunged (taken out), each change a message of its own.
    spare = 2 * runs
    keys = FolderKeys(1)
    keys.add(fields[:-spare])
    uids = [f.uid for f in fields[:-spare]]
    for label, run in (
        ("SORT (DATE)", lambda: keys.sort(uids, date)),
        ("SORT (SUBJECT)", lambda: keys.sort(uids, subject)),
        ("THREAD REFERENCES", lambda: keys.thread(uids, "REFERENCES")),
    ):
        show(f"{label}, kept keys: made", best(run, 1) * 1000)
        show(f"{label}, kept keys: warm", best(run, runs) * 1000)
    added = iter(fields[-spare:])
    rng = random.Random(1)
    for label, change, program in (
        ("SORT (SUBJECT)", "new message", subject),
        ("THREAD REFERENCES", "new message", None),
        ("SORT (SUBJECT)", "expunged", subject),
        ("THREAD REFERENCES", "expunged", None),
    ):
        times = []
        for _ in range(runs // 2 + 1):
            if change == "new message":
                f = next(added)
                keys.add([f])
                uids.append(f.uid)
            else:
                gone = uids.pop(rng.randrange(len(uids) // 2, len(uids)))
                keys.forget([gone])
            t = time.process_time()
            if program is None:
                keys.thread(uids, "REFERENCES")
            else:
                keys.sort(uids, program)
            times.append(time.process_time() - t)
        show(f"{label}, kept keys: after one {change}", min(times) * 1000)
    return parts


def timed(server: Server, conn: Conn, command: str) -> tuple[float, float, bytes]:
    """The command's time at the client, the server's CPU seconds over it (its whole process
    tree, thread pool included: bench.imap.tree_cpu), and its SORT or THREAD answer."""
    cpu = server.cpu()
    t = time.perf_counter()
    untagged, _ = conn.command(command)
    took = time.perf_counter() - t
    cpu = server.cpu() - cpu
    answer = b"".join(b"".join(r) for r in untagged if r[0].startswith((b"* SORT", b"* THREAD")))
    return took, cpu, answer


def servers_part(
    base: Path,
    messages: list[tuple[bytes, float]],
    extra: list[tuple[bytes, float]],
    runs: int,
    dovecot: bool,
    parts: dict[str, float],
    started: float,
) -> int:
    passwd = base / "passwd"
    passwd.write_text(f"{USER}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n")
    passwd.chmod(0o644)
    servers: list[Server] = [MraServer(base / "ours", passwd)]
    if dovecot:
        servers.append(DovecotServer(base / "dovecot", passwd))
    status = 0
    try:
        t = time.perf_counter()
        for server in servers:
            box = server.mail_for(USER)
            make_maildir(box, mail_ids())
            write_maildir(box, messages)
            server.start()
        print(
            f"\n{len(messages)} messages written for each server in {time.perf_counter() - t:.0f} s"
        )
        if dovecot:
            print(f"against {_dovecot_version()}")
        results: dict[str, dict[str, list[float]]] = {}
        cpus: dict[str, dict[str, list[float]]] = {}
        answers: dict[str, dict[str, bytes]] = {}
        for server in servers:
            conn = Conn(server.port)
            conn.greeting()
            conn.command(f"LOGIN {USER} {PASSWORD}")
            phases = ("SELECT", "first SORT (DATE)", *COMMANDS)
            times: dict[str, list[float]] = {c: [] for c in phases}
            cpu: dict[str, list[float]] = {c: [] for c in phases}
            took, used, _ = timed(server, conn, "SELECT INBOX")
            times["SELECT"].append(took)
            cpu["SELECT"].append(used)
            took, used, _ = timed(server, conn, COMMANDS[0])
            times["first SORT (DATE)"].append(took)
            cpu["first SORT (DATE)"].append(used)
            mine: dict[str, bytes] = {}
            for _ in range(runs):
                for command in COMMANDS:
                    took, used, answer = timed(server, conn, command)
                    times[command].append(took)
                    cpu[command].append(used)
                    mine[command] = answer
            # Right after a change: what is kept per folder is updated, not made again.
            fresh = iter(extra)
            for n in range(runs):
                for i, command in enumerate(COMMANDS):
                    conn.command(command)  # so that the one change below is all it missed
                    data, stamp = next(fresh)
                    when = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(stamp))
                    conn.command(f'APPEND INBOX "{when}"', data)
                    phase = f"after APPEND: {command.split(' UTF-8')[0]}"
                    took, used, answer = timed(server, conn, command)
                    times.setdefault(phase, []).append(took)
                    cpu.setdefault(phase, []).append(used)
                    mine[f"{phase} {n}"] = answer
                    uid = 1000 + 7 * (n * len(COMMANDS) + i)
                    conn.command(f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
                    conn.command("EXPUNGE")
                    phase = f"after EXPUNGE: {command.split(' UTF-8')[0]}"
                    took, used, answer = timed(server, conn, command)
                    times.setdefault(phase, []).append(took)
                    cpu.setdefault(phase, []).append(used)
                    mine[f"{phase} {n}"] = answer
            conn.command("LOGOUT")
            conn.close()
            results[server.label] = times
            cpus[server.label] = cpu
            answers[server.label] = mine
        labels = list(results)
        print(
            f"\n{'phase (median ms)':<30}"
            + "".join(f"{label:>12}{label + ' cpu':>14}" for label in labels)
        )
        for phase in results[labels[0]]:
            row = f"{phase:<30}"
            for label in labels:
                row += f"{statistics.median(results[label][phase]) * 1000:12.1f}"
                row += f"{statistics.median(cpus[label][phase]) * 1000:14.1f}"
            print(row)
        print(
            "(time at the client; cpu: the server's whole process tree from /proc, in ticks of"
            f" {1000 / os.sysconf('SC_CLK_TCK'):g} ms)"
        )
        if dovecot:
            for command in answers["ours"]:
                if answers["ours"][command] != answers["dovecot"].get(command):
                    print(f"DIFFERENT ANSWERS to {command}")
                    status = 1
            if not status:
                print("answers: the same as Dovecot's, number for number")
        if not status:
            record(len(messages), runs, parts, results, cpus, started)
        for server in servers:
            for line in server.problems()[:3]:
                print(f"{server.label} logged: {line[:200]}")
    finally:
        for server in servers:
            server.stop()
    return status


def record(
    count: int,
    runs: int,
    parts: dict[str, float],
    results: dict[str, dict[str, list[float]]],
    cpus: dict[str, dict[str, list[float]]],
    started: float,
) -> None:
    """bench/results/sort.json (bench/results.py), for `python -m bench.charts`: only a run
    whose answers were Dovecot's (or that had no Dovecot to compare with)."""
    labels = list(results)
    phases = list(results[labels[0]])
    recorder = Recorder(
        "sort",
        started=started,
        note=f"{count:,} messages of a mailing list, one Maildir per server; median of {runs}"
        " rounds, time at the client and the server's CPU (its whole process tree).",
    )
    columns = ["phase"]
    for label in labels:
        columns += [f"{label} ms", f"{label} CPU ms"]
    rows = []
    for phase in phases:
        row = [phase]
        for label in labels:
            row.append(f"{statistics.median(results[label][phase]) * 1000:,.1f}")
            row.append(f"{statistics.median(cpus[label][phase]) * 1000:,.1f}")
        rows.append(row)
    recorder.table(f"SORT and THREAD on {count:,} messages", columns, rows)
    recorder.table(
        f"The algorithms alone, on {count:,} messages' fields (CPU, best of {runs})",
        ["part", "ms"],
        [[name, f"{ms:,.1f}"] for name, ms in parts.items()],
    )
    x: list[str | float] = list(COMMANDS)
    recorder.chart(
        Chart(
            f"SORT and THREAD on {count:,} messages",
            "bar",
            "",
            "ms",
            x,
            {
                label: [statistics.median(results[label][c]) * 1000 for c in COMMANDS]
                for label in labels
            },
            log_y=True,
        )
    )
    recorder.chart(
        Chart(
            "SORT and THREAD: server CPU per command",
            "bar",
            "",
            "ms",
            x,
            {
                label: [statistics.median(cpus[label][c]) * 1000 for c in COMMANDS]
                for label in labels
            },
            log_y=True,
        )
    )
    recorder.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sort", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-dovecot", action="store_true")
    parser.add_argument("--algorithms-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    started = time.time()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} before the runs")
    # The messages APPENDed after the warm runs, one before each command: the list's next ones.
    messages = make_messages(args.messages + len(COMMANDS) * args.runs)
    messages, extra = messages[: args.messages], messages[args.messages :]
    parts = algorithms(messages, args.runs)
    if args.algorithms_only:
        return 0
    if not os.access(MRA, os.X_OK):
        print(f"no {MRA}: run `make` first", file=sys.stderr)
        return 1
    dovecot = not args.no_dovecot and os.access(DOVECOT, os.X_OK)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    base = traversable_tempdir("bench-sort-")
    try:
        return servers_part(base, messages, extra, args.runs, dovecot, parts, started)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
