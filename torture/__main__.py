"""Crash consistency: SIGKILL `mra serve` and `mda` at random moments of their writes.

    python -m torture [--kills 1000] [--seed N] [--restart-every 100]

One account, three folders (INBOX, A, B). Each round starts one IMAP command on a running
`mra serve` (APPEND, COPY, MOVE, EXPUNGE of a \\Deleted message, STORE +FLAGS) and one `mda`
delivery at the same time, then after a random 0-150 ms sends SIGKILL to every worker process
and to the mda (the supervisor forks new workers a second later, as after any crash). An
answer read before the kill is an acknowledgement:

* a tagged OK of APPEND (its APPENDUID), COPY and MOVE (COPYUID), EXPUNGE, STORE; mda's exit 0.

Then, on a new connection, the whole store is checked against the model of what was
acknowledged:

* every acknowledged message is present in its folder exactly once, with the UID it was
  acknowledged with (a delivery's UID is the one first seen, and must then stay);
* an acknowledged EXPUNGE, or the source of an acknowledged MOVE, is gone;
* an acknowledged STORE's flag is there;
* a message whose command was cut off is in that folder at most once (an APPEND or delivery
  either happened or not; a MOVE cut off may leave it in both folders, never in neither);
* nothing else appears, and every message file in new/ and cur/ is whole: it has the length
  its name says and ends with its own END line (nothing half-written is visible).

Every `--restart-every` rounds, and at the end, the whole server is SIGKILLed and started again,
and the fresh start must log no error. Exit status 0 when every check passed; the first
failure stops the run with what it saw.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import MAIL_USER, mail_ids, traversable_tempdir, wait_for_mra

BIN = Path(sys.executable).parent
USER = "torture@example.test"
PASSWORD = "torture-Kill-9"
FOLDERS = ("INBOX", "A", "B")
ID = re.compile(rb"X-Torture-Id: (\d+)")


class Failed(Exception):
    pass


def message(n: int, rng: random.Random) -> bytes:
    """Message `n`: 1 KB to 300 KB, so that a kill lands inside writes of every size."""
    lines = rng.choice((10, 100, 1000, 4000))
    body = b"".join(b"%d line %d %s\r\n" % (n, i, b"x" * 60) for i in range(lines))
    head = b"From: t@example.test\r\nSubject: torture %d\r\nX-Torture-Id: %d\r\n\r\n" % (n, n)
    return head + body + b"END %d\r\n" % n


@dataclass
class Model:
    """(folder, id) -> UID (None: acknowledged, UID not yet seen) of what must be there;
    `maybe`: what a cut-off command may or may not have left; `flagged`: acknowledged STOREs."""

    present: dict[tuple[str, int], int | None] = field(default_factory=dict)
    maybe: set[tuple[str, int]] = field(default_factory=set)
    flagged: set[tuple[str, int]] = field(default_factory=set)


class Server:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.mail = base / "mail"
        self.mail.mkdir()
        uid, gid = mail_ids()
        os.chown(self.mail, uid, gid)
        (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (base / "local-host-names").write_text("example.test\n")
        user = f'[server]\nuser = "{MAIL_USER}"\nworkers = 2\n' if os.geteuid() == 0 else ""
        mda = f'[mda]\nmail_uid = "{MAIL_USER}"\n' if os.geteuid() == 0 else ""
        self.config = base / "mra.toml"
        self.config.write_text(
            '[listen]\nimap = "127.0.0.1:0"\n'
            f'[auth]\npasswd_file = "{base}/passwd"\n'
            f'[mail]\nlocation = "{self.mail}/%d/%n"\n'
            f'[maps]\nlocal_domains = "{base}/local-host-names"\n' + user + mda
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def log_path(self) -> Path:
        return self.base / f"mra-{self.starts}.log"

    def log(self) -> str:
        return self.log_path().read_text(errors="replace")

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path(), "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "mra"), "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.port = wait_for_mra(self.log, self.proc, "imap", "mra serve", 120)

    def workers(self) -> list[int]:
        assert self.proc is not None
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(b")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(entry))
        return out

    def kill_all(self) -> None:
        assert self.proc is not None
        pids = self.workers()
        self.proc.kill()
        self.proc.wait()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def errors(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"Z error |Traceback", ln)]


def login(port: int, deadline: float = 60.0) -> imaplib.IMAP4:
    end = time.monotonic() + deadline
    while True:
        try:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
            m.login(USER, PASSWORD)
            return m
        except (OSError, imaplib.IMAP4.error):
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def scan(m: imaplib.IMAP4, folder: str) -> dict[int, list[tuple[int, bool]]]:
    """id -> [(UID, flagged)] of every message of `folder`, and each one checked whole."""
    typ, data = m.select(folder)
    if typ != "OK":
        raise Failed(f"SELECT {folder}: {data}")
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    if typ != "OK":
        raise Failed(f"FETCH {folder}: {data}")
    seen: dict[int, list[tuple[int, bool]]] = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, body = item
        found = ID.search(body)
        if found is None:
            raise Failed(f"{folder}: a message without its id: {body[:200]!r}")
        n = int(found.group(1))
        if not body.endswith(b"END %d\r\n" % n):
            raise Failed(f"{folder}: message {n} is cut short ({len(body)} octets)")
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        seen.setdefault(n, []).append((uid, b"\\Flagged" in meta))
    return seen


def check_files(root: Path) -> int:
    """Every visible message file is whole: its size is its name's S= and it ends with END."""
    count = 0
    for dirpath, _, names in os.walk(root):
        if os.path.basename(dirpath) not in ("new", "cur"):
            continue
        for name in names:
            data = Path(dirpath, name).read_bytes()
            size = re.search(r",S=(\d+)", name)
            if size is not None and int(size.group(1)) != len(data):
                raise Failed(f"{dirpath}/{name}: {len(data)} octets, its name says {size[1]}")
            if not re.search(rb"END \d+\r\n\Z", data):
                raise Failed(f"{dirpath}/{name}: half-written ({len(data)} octets)")
            count += 1
    return count


def verify(model: Model, port: int, root: Path) -> int:
    m = login(port)
    try:
        views = {f: scan(m, f) for f in FOLDERS}
    finally:
        try:
            m.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    for (folder, n), uid in list(model.present.items()):
        got = views[folder].get(n, [])
        if len(got) != 1:
            raise Failed(f"acknowledged {n} in {folder}: found {len(got)} times")
        if uid is not None and got[0][0] != uid:
            raise Failed(f"acknowledged {n} in {folder} had UID {uid}, now {got[0][0]}")
        model.present[(folder, n)] = got[0][0]
        if (folder, n) in model.flagged and not got[0][1]:
            raise Failed(f"acknowledged STORE +FLAGS \\Flagged of {n} in {folder} lost")
    for folder, view in views.items():
        for n, got in view.items():
            key = (folder, n)
            if key in model.present:
                continue
            if key not in model.maybe:
                raise Failed(f"{n} in {folder}: never acknowledged there, nor attempted")
            if len(got) > 1:
                raise Failed(f"{n} in {folder} after a cut-off command: {len(got)} copies")
    # What was uncertain is now known: the store's state is the model's.
    for key in model.maybe:
        folder, n = key
        got = views[folder].get(n, [])
        if got:
            model.present[key] = got[0][0]
    model.maybe.clear()
    model.flagged = {k for k in model.flagged if k in model.present}
    return check_files(root)


@dataclass
class Round:
    acknowledged: bool = False
    answer: object = None
    error: str = ""


def imap_op(m: imaplib.IMAP4, op: str, args: tuple[object, ...], out: Round) -> None:
    try:
        if op == "APPEND":
            folder, body = args
            out.answer = m.append(str(folder), None, None, body)  # type: ignore[arg-type]
        else:
            folder, uid, dest = args
            typ, _ = m.select(str(folder))
            if typ != "OK":
                return
            if op in ("COPY", "MOVE"):
                out.answer = m.uid(op, str(uid), str(dest))
                out.answer = (out.answer, m.untagged_responses.pop("OK", []))
            elif op == "STORE":
                out.answer = m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
            elif op == "EXPUNGE":
                typ, _ = m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
                if typ != "OK":
                    return
                out.answer = m.uid("EXPUNGE", str(uid))
        typ = out.answer[0] if op not in ("COPY", "MOVE") else out.answer[0][0]  # type: ignore[index]
        out.acknowledged = typ == "OK"
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
        out.error = repr(exc)


def copyuid(answer: object) -> int | None:
    text = repr(answer)
    found = re.search(r"COPYUID \d+ \d+ (\d+)", text)
    return int(found.group(1)) if found else None


def run(kills: int, seed: int, restart_every: int) -> int:
    rng = random.Random(seed)
    base = traversable_tempdir("torture-")
    server = Server(base)
    server.start()
    root = server.mail / "example.test" / "torture"
    m = login(server.port)
    for folder in FOLDERS[1:]:
        m.create(folder)
    m.logout()
    model = Model()
    next_id = 1
    counts: dict[str, int] = {}
    started = time.monotonic()
    try:
        for round_number in range(1, kills + 1):
            candidates = [k for k, uid in model.present.items() if uid is not None]
            op = rng.choice(("APPEND", "APPEND", "COPY", "MOVE", "EXPUNGE", "STORE"))
            if op != "APPEND" and not candidates:
                op = "APPEND"
            m = login(server.port)
            work = Round()
            args: tuple[object, ...]
            if op == "APPEND":
                folder, n = rng.choice(FOLDERS), next_id
                next_id += 1
                args = (folder, message(n, rng))
                model.maybe.add((folder, n))
            else:
                (folder, n), uid = rng.choice([(k, u) for k, u in model.present.items() if u])
                dests = [f for f in FOLDERS if (f, n) not in model.present and f != folder]
                if op in ("COPY", "MOVE") and not dests:
                    op = "STORE"
                dest = rng.choice(dests) if dests else ""
                args = (folder, uid, dest)
                if op in ("COPY", "MOVE"):
                    model.maybe.add((dest, n))
                if op in ("MOVE", "EXPUNGE"):
                    # Until the answer, the source copy may or may not be gone.
                    del model.present[(folder, n)]
                    model.maybe.add((folder, n))
            delivered = next_id
            next_id += 1
            model.maybe.add(("INBOX", delivered))
            mda = subprocess.Popen(
                [str(BIN / "mda"), "--config", str(server.config), "-d", USER],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            thread = threading.Thread(target=imap_op, args=(m, op, args, work))
            thread.start()
            try:
                assert mda.stdin is not None
                mda.stdin.write(message(delivered, rng))
                mda.stdin.close()
            except BrokenPipeError:
                pass
            time.sleep(rng.uniform(0, 0.15))
            for pid in server.workers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            mda.kill()
            mda_code = mda.wait()
            thread.join(60)
            if thread.is_alive():
                m.shutdown()
            # The acknowledgements.
            if mda_code == 0:
                model.present[("INBOX", delivered)] = None
                model.maybe.discard(("INBOX", delivered))
                counts["mda acknowledged"] = counts.get("mda acknowledged", 0) + 1
            if work.acknowledged:
                counts[f"{op} acknowledged"] = counts.get(f"{op} acknowledged", 0) + 1
                if op == "APPEND":
                    found = re.search(r"APPENDUID \d+ (\d+)", repr(work.answer))
                    model.present[(str(args[0]), n)] = int(found.group(1)) if found else None
                    model.maybe.discard((str(args[0]), n))
                elif op in ("COPY", "MOVE"):
                    model.present[(dest, n)] = copyuid(work.answer)
                    model.maybe.discard((dest, n))
                    if op == "MOVE":
                        model.maybe.discard((folder, n))
                elif op == "EXPUNGE":
                    model.maybe.discard((folder, n))
                elif op == "STORE":
                    model.flagged.add((folder, n))
            else:
                counts[f"{op} cut off"] = counts.get(f"{op} cut off", 0) + 1
            if round_number % restart_every == 0 or round_number == kills:
                server.kill_all()
                server.start()
                time.sleep(1.0)
                if server.errors():
                    raise Failed("the start after SIGKILL logged: " + server.errors()[0])
            files = verify(model, server.port, root)
            if round_number % 50 == 0 or round_number == kills:
                print(
                    f"{round_number} kills, {len(model.present)} messages, {files} files, "
                    f"{time.monotonic() - started:.0f} s",
                    flush=True,
                )
    except Failed as exc:
        print(f"FAILED after {round_number} kills (seed {seed}): {exc}", flush=True)
        print(f"kept for inspection: {base}", flush=True)
        return 1
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill_all()
    print(f"torture: {kills} SIGKILLs (seed {seed}), every check passed")
    for key in sorted(counts):
        print(f"  {key}: {counts[key]}")
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torture", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--restart-every", type=int, default=100)
    args = parser.parse_args(argv)
    return run(args.kills, args.seed, args.restart_every)


if __name__ == "__main__":
    sys.exit(main())
