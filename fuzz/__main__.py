"""Run the fuzz targets: `python -m fuzz [--seconds N] [--timeout S] [TARGET ...]`.

Each target runs in a process of its own for N seconds of its own time, one after the other
(`--jobs 2` runs two at once), on its seed corpus `fuzz/corpus/<target>/` (replayed first,
so every input that once failed is tried again) and a working corpus in
`fuzz/.work/<target>/` that grows between runs (git-ignored). An input that raises or takes
longer than the timeout is written to `fuzz/.work/crashes/` and the run fails: reproduce it
with `python -m fuzz.<target> FILE`.

`make fuzz` is the long run (FUZZ_SECONDS per target, 1 s timeout); `make test` ends with a
short one (a few seconds each, a generous timeout: the machine may be busy).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS: dict[str, list[str]] = {
    # target: extra libFuzzer options
    "imap_reader": ["-dict=fuzz/dicts/imap.dict"],
    "imap_session": ["-dict=fuzz/dicts/imap.dict", "-max_len=2048"],
    "imap_search": ["-dict=fuzz/dicts/imap.dict", "-max_len=2048"],
    "mime": ["-dict=fuzz/dicts/mime.dict", "-max_len=16384"],
    "pop3": ["-dict=fuzz/dicts/pop3.dict", "-max_len=2048"],
    "sasl": ["-max_len=1024"],
    "mutf7": ["-max_len=512"],
    "maildir_names": ["-dict=fuzz/dicts/maildir.dict", "-max_len=2048"],
    "uidlist": ["-dict=fuzz/dicts/maildir.dict"],
    "keywords": ["-dict=fuzz/dicts/maildir.dict", "-max_len=2048"],
    "maps_aliases": ["-dict=fuzz/dicts/maps.dict"],
    "maps_virtusertable": ["-dict=fuzz/dicts/maps.dict"],
    "maps_access": ["-dict=fuzz/dicts/maps.dict"],
    "maps_cdb": [],
    "sieve": ["-dict=fuzz/dicts/sieve.dict", "-max_len=8192"],
    "managesieve": ["-dict=fuzz/dicts/managesieve.dict", "-max_len=4096"],
    "managesieve_reader": ["-dict=fuzz/dicts/managesieve.dict", "-max_len=2048"],
    "auth_dovecot": ["-dict=fuzz/dicts/auth.dict", "-max_len=2048"],
    "saslauthd": ["-max_len=1024"],
}


def command(target: str, seconds: float, timeout: float, work: str) -> list[str]:
    seeds = os.path.join(HERE, "corpus", target)
    crashes = os.path.join(work, "crashes") + os.sep
    corpus = os.path.join(work, target)
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    return [
        sys.executable,
        "-m",
        f"fuzz.{target}",
        f"-max_total_time={max(1, round(seconds))}",
        f"-timeout={max(1, round(timeout))}",
        "-rss_limit_mb=2048",
        f"-artifact_prefix={crashes}{target}-",
        "-print_final_stats=1",
        *TARGETS[target],
        corpus,
        seeds,
    ]


class Run:
    """One target's run: its processes one after the other, until its time is used up."""

    def __init__(self, target: str, seconds: float) -> None:
        self.target = target
        self.left = seconds
        self.cpu = 0.0
        self.wall = 0.0
        self.runs = 0
        self.notes: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(TARGETS)})")
    parser.add_argument("--seconds", type=float, default=60, help="per target (default 60)")
    parser.add_argument("--timeout", type=float, default=1, help="per input (default 1 s)")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument(
        "--cpu-seconds",
        type=float,
        default=0,
        help="run each target until it has had this much CPU time (on a busy machine "
        "--seconds of wall time may be a fraction of it)",
    )
    parser.add_argument("--work", default=os.path.join(HERE, ".work"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    root = os.path.dirname(HERE)
    os.makedirs(os.path.join(args.work, "logs"), exist_ok=True)
    failed: list[str] = []
    pending = [Run(t, args.seconds) for t in args.targets or TARGETS]
    running: list[Run] = []
    with open(os.path.join(args.work, "history.log"), "a") as history:
        while pending or running:
            while pending and len(running) < max(1, args.jobs):
                run = pending.pop(0)
                _start(run, args, root)
                running.append(run)
            time.sleep(0.2)
            for run in list(running):
                assert run.proc is not None
                # wait4, not poll: the child's CPU time is what a fuzzing run is measured in.
                pid, status, usage = os.wait4(run.proc.pid, os.WNOHANG)
                if pid == 0:
                    continue
                code = os.waitstatus_to_exitcode(status)
                took = time.monotonic() - run.started
                run.cpu += usage.ru_utime + usage.ru_stime
                run.wall += took
                run.left -= took
                log = os.path.join(args.work, "logs", f"{run.target}.log")
                run.runs += _executed(log)
                short = run.cpu < args.cpu_seconds - 5  # not its CPU time yet
                more = run.left > 5 or short
                if code != 0 and _busy_timeout(run, log, args.timeout, root):
                    code = 0  # the rest of its time, if any, below
                if code == 0 and more:
                    if short:  # about the wall time the missing CPU time takes
                        wanted = (args.cpu_seconds - run.cpu) * run.wall / max(run.cpu, 1)
                        run.left = max(run.left, 30.0, wanted)
                    _start(run, args, root)
                    continue
                running.remove(run)
                result = "ok" if code == 0 else f"FAILED (exit {code})"
                line = (
                    f"{run.target:20} {result:18} {run.wall:6.0f} s, {run.cpu:6.0f} s CPU, "
                    f"{run.runs} inputs, {_stats(log)}"
                )
                print(line, *run.notes, sep="\n    ", flush=True)
                stamp = time.strftime("%Y-%m-%d %H:%M")
                history.write(f"{stamp} timeout={args.timeout:g} {line}\n")
                for note in run.notes:
                    history.write(f"    {note}\n")
                history.flush()
                if code != 0:
                    failed.append(run.target)
                    _show_failure(log)
    if failed:
        print(f"fuzz: {len(failed)} target(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _start(run: Run, args: argparse.Namespace, root: str) -> None:
    with open(os.path.join(args.work, "logs", f"{run.target}.log"), "wb") as log:
        cmd = command(run.target, run.left, args.timeout, args.work)
        run.proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    run.started = time.monotonic()


def _executed(log: str) -> int:
    with open(log, "rb") as f:
        for raw in f:
            if raw.startswith(b"stat::number_of_executed_units:"):
                return int(raw.split(b":")[-1])
    return 0


def _busy_timeout(run: Run, log: str, timeout: float, root: str) -> bool:
    """A timeout that does not happen again when the input runs alone: the machine was busy
    (its cores are shared). Noted, the input kept aside, and the target goes on."""
    with open(log, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if "ERROR: libFuzzer: timeout" not in text:
        return False
    artifact = text.rpartition("Test unit written to ")[2].split("\n")[0].strip()
    if not os.path.isfile(artifact):
        return False
    probe = (
        "import sys, time; path = sys.argv[1]; sys.argv = sys.argv[:1]; "
        f"import fuzz.{run.target} as t; data = open(path, 'rb').read(); "
        "t.test_one_input(data); s = time.perf_counter(); t.test_one_input(data); "
        "print(time.perf_counter() - s)"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", probe, artifact],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=True,
        )
        alone = float(out.stdout.split()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return False
    if alone >= timeout / 2:
        return False
    kept = os.path.join(os.path.dirname(artifact), "busy-" + os.path.basename(artifact))
    os.replace(artifact, kept)
    run.notes.append(f"a timeout that took {alone:.3f} s alone (machine busy): {kept}")
    return True


def _stats(log: str) -> str:
    """`exec/s, coverage` from libFuzzer's final statistics of the last process."""
    found: dict[str, str] = {}
    with open(log, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace")
            if line.startswith("stat::"):
                key, _, value = line[6:].partition(":")
                found[key.strip()] = value.strip()
            elif " cov: " in line:
                found["cov"] = line.split(" cov: ")[1].split()[0]
    return f"{found.get('average_exec_per_sec', '?')}/s, coverage {found.get('cov', '?')}"


def _show_failure(log: str) -> None:
    with open(log, "rb") as f:
        lines = f.read().decode("utf-8", "replace").splitlines()
    start = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), 0)
    if not start:
        start = next((i for i, line in enumerate(lines) if "ERROR: libFuzzer" in line), 0)
    shown = [line for line in lines[start:] if not line.startswith(("INFO:", "#"))]
    print("\n".join("    " + line for line in shown[:60]), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
