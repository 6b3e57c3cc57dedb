"""`python -m bench.preload`: what importing everything before the privilege drop costs `mra
serve` at start-up (mra/preload.py), run as root.

Two servers on one configuration, started in turn `--runs` times each:

* `preload`: `[server] user = "nobody"`: mra serve imports every module it can need, checks
  the installation, then drops privileges (what the issue asks for);
* `lazy`: no `[server] user`: nothing is dropped, so nothing is preloaded, and modules are
  imported when first needed (what an ordinary user's `make run` does).

For each start: the wall time from exec to the first IMAP greeting, the CPU time (user +
system) the server had used by then (and its installation check's child, "check"), its resident
memory (VmRSS) then, and again after a first session (LOGIN, CREATE of a folder with a
non-ASCII name: the utf-7/utf-16 codecs, SELECT, FETCH, LOGOUT). CPU time and memory are
the machine-independent figures: wall time depends on the load of a shared machine, which is
printed with the results.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "preload-Bench-42"
USER = "alice@example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def setup(base: Path) -> None:
    from mra.auth.passwords import hash_password

    nobody = pwd.getpwnam("nobody")
    (base / "passwd").write_text(f"{USER}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n")
    for name in ("preload", "lazy"):
        mail = base / name / "mail"
        mail.mkdir(parents=True)
        if name == "preload":
            os.chown(mail, nobody.pw_uid, nobody.pw_gid)
        (base / name / "access").write_text("")
    (base / "local-host-names").write_text("example.test\n")


def config(base: Path, name: str, port: int) -> Path:
    path = base / name / "mra.toml"
    path.write_text(
        f'[listen]\nimap = "127.0.0.1:{port}"\n'
        f'[auth]\npasswd_file = "{base / "passwd"}"\n'
        f'[mail]\nlocation = "{base / name / "mail"}/%d/%n"\n'
        f'[maps]\naccess = "{base / name / "access"}"\n'
        f'local_domains = "{base / "local-host-names"}"\n'
        + (
            '[server]\nuser = "nobody"\nrequire_readable_installation = false\n'
            if name == "preload"
            else ""
        )
    )
    return path


def cpu_seconds(pid: int, children: bool = False) -> float:
    """The CPU time of `pid`, or of the children it waited for (the installation check)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def one_start(base: Path, name: str) -> dict[str, float]:
    port = free_port()
    cfg = config(base, name, port)
    mra = str(Path(sys.executable).parent / "mra")
    log = open(base / name / "mra.log", "wb")  # noqa: SIM115 (the server's, closed below)
    started = time.monotonic()
    proc = subprocess.Popen([mra, "serve", "--config", str(cfg)], stdout=log, stderr=log)
    try:
        deadline = started + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError((base / name / "mra.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    if c.recv(100).startswith(b"* OK"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("no greeting")
            time.sleep(0.005)
        first = time.monotonic() - started
        result = {
            "first_ms": first * 1000,
            "cpu_ms": cpu_seconds(proc.pid) * 1000,
            "child_ms": cpu_seconds(proc.pid, children=True) * 1000,
        }
        result["rss_start"] = rss_mib(proc.pid)
        imap = imaplib.IMAP4("127.0.0.1", port, timeout=30)
        imap.login(USER, PASSWORD)
        imap.create("&ANw-bersicht-" + str(int(started * 1000)))  # "Übersicht-..."
        imap.select("INBOX")
        imap.append("INBOX", None, None, b"Subject: x\r\n\r\nbody\r\n")
        imap.fetch("1:*", "(FLAGS ENVELOPE BODYSTRUCTURE)")
        imap.logout()
        result["rss_session"] = rss_mib(proc.pid)
        result["cpu_session_ms"] = cpu_seconds(proc.pid) * 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    text = (base / name / "mra.log").read_text()
    result["late_imports"] = float(text.count("late-import"))
    result["errors"] = float(text.count(" error "))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preload", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="starts of each server (5)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.preload: run it as root (the preload happens before a privilege drop)")
        return 1
    base = Path(tempfile.mkdtemp(prefix="mra-bench-preload-"))
    base.chmod(0o755)
    try:
        setup(base)
        runs: dict[str, list[dict[str, float]]] = {"preload": [], "lazy": []}
        for _ in range(args.runs):
            for name in ("preload", "lazy"):
                runs[name].append(one_start(base, name))
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"{'':8} {'first conn ms':>14} {'CPU ms':>8} {'check ms':>9} {'RSS MiB':>8} "
            f"{'after session':>14} {'CPU ms':>8} {'late imports':>13}"
        )
        for name, results in runs.items():

            def med(key: str, results: list[dict[str, float]] = results) -> float:
                return statistics.median(r[key] for r in results)

            print(
                f"{name:8} {med('first_ms'):14.0f} {med('cpu_ms'):8.0f} {med('child_ms'):9.0f} "
                f"{med('rss_start'):8.1f} {med('rss_session'):14.1f} "
                f"{med('cpu_session_ms'):8.0f} {med('late_imports'):13.0f}"
            )
        for name, results in runs.items():
            print(
                name,
                "all runs (first conn ms, CPU ms):",
                [(round(r["first_ms"]), round(r["cpu_ms"])) for r in results],
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
