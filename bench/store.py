"""Store benchmark: open and sync of 10,000 and 100,000-message folders, and delivery cost.

Prints a table. The reference, in the same run, is Dovecot 2.3 opening the same folder with no
index (`EXAMINE INBOX` in a PREAUTH `imap` process with INDEX=MEMORY: it must read the same
dovecot-uidlist and list the same directory), because these machines are noisy and only ratios
measured side by side mean anything.

    python -m bench.store [--sizes 10000,100000] [--deliveries 300]
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.results import Chart, Recorder
from mailstore.mailbox import Mailbox
from mailstore.store import MailStore

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
MSG = b"From: bench@example.test\nSubject: bench\n\n" + b"body line\n" * 30


def make_folder(root: Path, count: int) -> None:
    """A Maildir with `count` messages in cur/, written directly (the set-up is not measured)."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    size, vsize = len(MSG), len(MSG) + MSG.count(b"\n")
    now = int(time.time()) - 86400
    for i in range(count):
        name = (
            f"{now + i // 1000}.M{i % 1000}P1Q{i}.bench,S={size},W={vsize}:2,{'S' if i % 3 else ''}"
        )
        fd = os.open(root / "cur" / name, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, MSG)
        os.close(fd)
    old = time.time() - 3600  # directories that settled long ago, as in production
    for sub in ("cur", "new"):
        os.utime(root / sub, (old, old))


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    """Median seconds of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def in_child(code: str, root: Path) -> float:
    """Seconds a fresh interpreter spends on `code` (after its own imports)."""
    script = (
        "import time, sys\n"
        "from mailstore.store import MailStore\n"
        "t0 = time.perf_counter()\n"
        f"{code}\n"
        "print(time.perf_counter() - t0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(root)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip())


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def dovecot_examine(root: Path) -> float | None:
    """Seconds for Dovecot (no index) to open the folder, or None without Dovecot."""
    if not os.path.exists(DOVECOT_IMAP):
        return None
    tmp = Path(tempfile.mkdtemp(prefix="bench-dovecot-"))
    tmp.chmod(0o755)
    conf = tmp / "dovecot.conf"
    lines = [
        "protocols = imap",
        "ssl = no",
        f"base_dir = {tmp / 'run'}",
        f"state_dir = {tmp / 'state'}",
        f"log_path = {tmp / 'log'}",
        f"mail_location = maildir:{root}:INDEX=MEMORY",
        "first_valid_uid = 0",
    ]
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        lines += [f"mail_uid = {pw.pw_uid}", f"mail_gid = {pw.pw_gid}"]
    conf.write_text("\n".join(lines) + "\n")
    env = {"USER": "bench", "HOME": str(tmp), "PATH": "/usr/bin:/bin"}
    script = b"a EXAMINE INBOX\r\nb LOGOUT\r\n"
    try:
        # One run without the EXAMINE gives the process start-up cost to subtract.
        def run(data: bytes) -> float:
            t0 = time.perf_counter()
            subprocess.run(
                [DOVECOT_IMAP, "-c", str(conf)],
                input=data,
                env=env,
                capture_output=True,
                check=True,
                timeout=300,
            )
            return time.perf_counter() - t0

        base = min(run(b"b LOGOUT\r\n") for _ in range(3))
        return max(min(run(script) for _ in range(3)) - base, 0.0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def chown_to_nobody(root: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("nobody")
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid)


def folder_rows(count: int, base: Path) -> list[tuple[str, str, str, str]]:
    root = base / f"f{count}"
    make_folder(root, count)
    rows = []
    first = in_child("MailStore(sys.argv[1]).mailbox('INBOX').sync()", root)
    rows.append((f"{count:,}: first open, no uidlist (assigns UIDs)", ms(first), "", ""))
    chown_to_nobody(root)
    reference = dovecot_examine(root)
    cold_label = "cold open with uidlist (new process"
    if drop_caches():
        cold = in_child("MailStore(sys.argv[1]).mailbox('INBOX').sync()", root)
        rows.append((f"{count:,}: {cold_label}, caches dropped)", ms(cold), "", ""))
    cold = min(in_child("MailStore(sys.argv[1]).mailbox('INBOX').sync()", root) for _ in range(3))
    target = "< 1000 ms" if count >= 100_000 else ""
    rows.append(
        (f"{count:,}: {cold_label}, page cache warm)", ms(cold), ratio(cold, reference), target)
    )
    box = MailStore(str(root)).mailbox("INBOX")
    box.sync()
    warm = timed(box.sync, repeat=200)
    rows.append(
        (f"{count:,}: warm re-sync, unchanged", ms(warm), "", "< 5 ms" if count >= 100_000 else "")
    )
    # One delivery by another process, then the re-sync that picks it up.
    Mailbox(str(root), "INBOX", lambda: 1).append(MSG)
    one = timed(box.sync)
    rows.append((f"{count:,}: re-sync after one new delivery", ms(one), "", ""))
    uid = box.uids()[len(box) // 2]
    box.store_flags([uid], "add", ["\\Flagged"])
    flag = timed(box.sync)
    rows.append((f"{count:,}: re-sync after a flag change (lists cur/)", ms(flag), "", ""))
    # The server's way (mailstore/dirwatch.py): inotify names what changed, nothing is listed.
    from mailstore import dirwatch

    if dirwatch.enable() is not None:
        watched = MailStore(str(root)).mailbox("INBOX")
        watched.sync()
        Mailbox(str(root), "INBOX", lambda: 1).append(MSG)
        one = timed(watched.sync)
        rows.append((f"{count:,}: server (inotify): re-sync after a delivery", ms(one), "", ""))
        box.sync()
        box.store_flags([box.uids()[len(box) // 3]], "add", ["\\Flagged"])
        flag = timed(watched.sync)
        label = f"{count:,}: server (inotify): re-sync after a flag change elsewhere"
        rows.append((label, ms(flag), "", ""))
        # A second session of the same process: the kept listings and uidlist parse.
        second = timed(lambda: MailStore(str(root)).mailbox("INBOX").sync(), repeat=3)
        label = f"{count:,}: server (inotify): open by a second session"
        rows.append((label, ms(second), ratio(second, reference), ""))
        dirwatch.disable()
    if reference is not None:
        rows.append(
            (f"{count:,}: Dovecot EXAMINE, no index (reference)", ms(reference), "1.00", "")
        )
    shutil.rmtree(root)
    return rows


def delivery_rows(count: int, base: Path) -> list[tuple[str, str, str, str]]:
    # The folders above left a lot of writeback behind: let it finish, or it lands in the
    # fsyncs measured here.
    os.sync()
    root = base / "deliver"
    MailStore(str(root)).mailbox("INBOX").sync()
    # The floor: what any durable Maildir delivery costs (write, fsync file, link, fsync dir).
    tmp, new = root / "tmp", root / "new"

    def raw(i: int) -> None:
        path = tmp / f"raw{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, MSG)
        os.fsync(fd)
        os.close(fd)
        os.link(path, new / f"raw{i}")
        os.unlink(path)
        dfd = os.open(new, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)

    t0 = time.perf_counter()
    for i in range(count):
        raw(i)
    floor = (time.perf_counter() - t0) / count
    for name in os.listdir(new):
        os.unlink(new / name)
    MailStore(str(root)).mailbox("INBOX").sync()

    t0 = time.perf_counter()
    for _ in range(count):
        # A fresh Mailbox per message, as each mda process has.
        Mailbox(str(root), "INBOX", lambda: 1).append(MSG)
    ours = (time.perf_counter() - t0) / count
    return [
        ("delivery: write+fsync+link+fsync dir (the floor)", ms(floor), "1.00", ""),
        ("delivery: mailstore append (incl. the floor)", ms(ours), ratio(ours, floor), ""),
        ("delivery: store's own cost (append - floor)", ms(ours - floor), "", "< 1 ms"),
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ratio(value: float, reference: float | None) -> str:
    return f"{value / reference:.2f}" if reference else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--deliveries", type=int, default=300)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-store-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        rows = []
        for count in (int(s) for s in args.sizes.split(",")):
            rows += folder_rows(count, base)
        rows += delivery_rows(args.deliveries, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'store benchmark':<{width}}  {'time':>12}  {'ratio':>6}  target")
    for label, value, rat, target in rows:
        print(f"{label:<{width}}  {value:>12}  {rat:>6}  {target}")
    record(rows)


def record(rows: list[tuple[str, str, str, str]]) -> None:
    """The table for bench.charts, and one line per kind of open against the folder size."""
    recorder = Recorder("store", "The store alone (no server), then its use by `mra serve`.")
    recorder.table(
        "Opening and re-syncing a folder", ["", "time", "ratio", "target"], [list(r) for r in rows]
    )
    by_kind: dict[str, dict[int, float]] = {}
    for label, value, _, _ in rows:
        size, sep, kind = label.partition(": ")
        if sep and size.replace(",", "").isdigit() and value.endswith(" ms"):
            by_kind.setdefault(kind, {})[int(size.replace(",", ""))] = float(value[:-3])
    sizes = sorted({n for values in by_kind.values() for n in values})
    if len(sizes) >= 2:
        x: list[str | float] = [float(n) for n in sizes]
        series = {kind: [values.get(n) for n in sizes] for kind, values in by_kind.items()}
        recorder.chart(
            Chart(
                "Opening a folder against its size",
                "line",
                "messages",
                "ms",
                x,
                series,
                log_x=True,
                log_y=True,
            )
        )
    recorder.save()


if __name__ == "__main__":
    main()
