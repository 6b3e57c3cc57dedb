"""POP3 benchmark: `mra serve` (workers = 2, and 1) side by side with Dovecot's pop3, same mail.

    python -m bench.pop3 [--messages 200] [--clients 10,50] [--seconds 10] [--warmup 1]

One Maildir is seeded once (N messages of 2-50 KB of text, a few of them 1 MB with a base64
attachment, LF line ends as an MTA delivers them, a few lines that need dot-stuffing, all
already `\\Seen` so that no session changes anything) and cloned for every user of every
server: each server has its own directories, `dovecot-uidlist` and index files, and sees none
of the others' changes. Message files are hard-linked, not copied: a Maildir never writes a
message file after delivery (flags are renames, expunges unlinks), so the clones are
independent and byte-identical without writing ~1 GB of copies (whose write-back would run
during the measurement).

Servers, all started once for the whole run, each on its own loopback port:

* `mra serve` with `[server] workers = 2` (the issue's configuration) and `workers = 1`,
  dropping to `nobody` like Dovecot's mail processes;
* Dovecot's pop3 as a private daemon (`dovecot -F -c CONF`, stock 2.3 settings otherwise:
  one login process per connection, `auth_cache_size = 0`, the default index files next to the
  mail), mail processes as `nobody`, stopped with SIGTERM at the end. Skipped if missing.

Both read the same passwd-file (`{SHA512-CRYPT}` hashes, one user per client: our server locks
a mailbox for a POP3 session, RFC 1939's `[IN-USE]`).

Workloads, each with every --clients count of concurrent clients (Python threads on blocking
sockets, each client its own user), every cell first warmed up for --warmup seconds and then
measured for --seconds (the clients keep running across the boundary: steady state only):

* sessions/s: connect, USER/PASS, STAT, UIDL, QUIT;
* RETR MB/s: log in, STAT, LIST, RETR every message in turn, QUIT; bytes received per second
  (10^6 bytes per MB).

Correctness, so that a failure cannot pass for speed: before the run, one session per server
RETRieves every message and compares it byte for byte with what was seeded (CRLF), and the UIDL
listings of the servers are compared; during the run, every STAT must give the seeded count and
size, every UIDL list every message, every LIST give the seeded sizes, and every RETR send
exactly its LIST size plus one octet per dot-stuffed line (so the bytes RETRieved are the LIST
sizes). A client that sees an error stops and the cell is marked ERROR; so is a cell during which
the server logged an error.

The cells of one (workload, clients) pair run back to back for every server, in rotated order,
because these machines are noisy and only ratios measured side by side mean anything. The
server's CPU (the whole process tree, reaped children included) and the client's are measured
over each window: `srv ms/unit` is server CPU per session or per MB, independent of how busy
the 2 cores were; `cli cores` says whether the client came close to being the bottleneck, and
`other` how much of the machine something else (another job on the VM) took meanwhile.

Target (the issue's): `mra workers=2` at least Dovecot's throughput in every cell.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import NamedTuple, TextIO

from bench.common import (
    free_port,
    mail_ids,
    server_user_line,
    traversable_tempdir,
    wait_for_mra,
)
from bench.results import Chart, Recorder
from mailstore.store import MailStore
from mra.auth.passwords import hash_password

MRA = str(Path(sys.executable).parent / "mra")
DOVECOT = "/usr/sbin/dovecot"
DOMAIN = "example.test"
PASSWORD = "bench-Pop3-42"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMEOUT = 60.0  # seconds any one socket operation may take before the client gives up
STOP_WAIT = 6.0  # seconds a server may take to stop (mra gives sessions 5 s to finish)
RECV = 256 * 1024
MB = 1_000_000
WORKLOADS = ("sessions", "retr")
UNITS = {"sessions": "sessions/s", "retr": "MB/s"}
REFERENCE = "dovecot"


# ----------------------------------------------------------------------------------------------
# Messages


_TEXT = (
    "the mailbox server message delivery client account password folder quota backup archive "
    "migration relay storage monitoring weekend schedule meeting summary notes agreed points "
    "we should probably move this to next week because the numbers are not final yet and "
    "somebody has to check the invoices before they go out to the customers in the new system"
)


def _line_pool(rng: random.Random, count: int = 4000) -> list[bytes]:
    """Text lines, some quoted or blank, and about 2% starting with a dot (stuffed on the
    wire), a few being a lone dot: the line a careless server would take for the end."""
    words = _TEXT.split()
    pool = []
    for _ in range(count):
        line = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        r = rng.random()
        if r < 0.02:
            line = "." + line
        elif r < 0.025:
            line = "."
        elif r < 0.08:
            line = "> " + line
        elif r < 0.13:
            line = ""
        pool.append(line.encode() + b"\n")
    return pool


def _headers(i: int, subject: str, extra: str = "") -> bytes:
    return (
        f"Return-Path: <sender{i % 17}@remote.test>\n"
        f"Received: from mx.remote.test (mx.remote.test [192.0.2.{i % 250 + 1}])\n"
        f"\tby mail.{DOMAIN} (Postfix) with ESMTPS id 4Z{i:08X}\n"
        f"\tfor <user@{DOMAIN}>; Tue, 4 Mar 2025 10:{i % 60:02d}:17 +0100 (CET)\n"
        f"Message-ID: <{i}.bench-pop3@remote.test>\n"
        "Date: Tue, 4 Mar 2025 10:12:14 +0100\n"
        f"From: Sender {i % 17} <sender{i % 17}@remote.test>\n"
        f"To: Team <team@{DOMAIN}>\n"
        f"Subject: {subject} (#{i})\n"
        "MIME-Version: 1.0\n" + extra
    ).encode()


def make_messages(count: int, big: int, seed: int = 1939) -> list[bytes]:
    """`count` messages with LF line ends: `big` of them about 1 MB (a text part and a base64
    attachment), spread over the folder; the others 2-50 KB of text."""
    rng = random.Random(seed)
    pool = _line_pool(rng)
    big_at = {count * (k + 1) // (big + 1) for k in range(min(big, count))}
    messages = []
    for i in range(count):
        if i in big_at:
            boundary = f"=_bench_{i}"
            head = _headers(
                i,
                "scanned contract, signed",
                f'Content-Type: multipart/mixed; boundary="{boundary}"\n',
            )
            attachment = base64.encodebytes(rng.randbytes(740_000))
            body = (
                f"\n--{boundary}\nContent-Type: text/plain; charset=UTF-8\n\n".encode()
                + b"".join(rng.choices(pool, k=40))
                + f"\n--{boundary}\nContent-Type: application/pdf; name=contract.pdf\n"
                "Content-Transfer-Encoding: base64\n\n".encode()
                + attachment
                + f"\n--{boundary}--\n".encode()
            )
            messages.append(head + body)
            continue
        target = rng.randint(2 * 1024, 50 * 1024)
        head = _headers(i, "Re: migration plan", "Content-Type: text/plain; charset=UTF-8\n")
        parts = [head, b"\n"]
        size = len(head) + 1
        while size < target:
            line = pool[rng.randrange(len(pool))]
            parts.append(line)
            size += len(line)
        messages.append(b"".join(parts))
    return messages


def crlf(message: bytes) -> bytes:
    """The message as a POP3 server sends it (before dot-stuffing)."""
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Expected:
    """What every user's INBOX holds, as a client sees it."""

    contents: list[bytes]  # CRLF, in UID order
    sizes: list[int]  # what LIST must say
    wire: list[int]  # what RETR must send before `.CRLF`: the size plus one per stuffed dot
    count: int
    total: int

    @classmethod
    def of(cls, messages: list[bytes]) -> Expected:
        contents = [crlf(m) for m in messages]
        sizes = [len(c) for c in contents]
        wire = [
            len(c) + sum(1 for line in c.split(b"\r\n") if line.startswith(b".")) for c in contents
        ]
        return cls(contents, sizes, wire, len(sizes), sum(sizes))


# ----------------------------------------------------------------------------------------------
# Files


def chown_tree(root: Path, ids: tuple[int, int]) -> None:
    if os.geteuid() != 0:
        return
    uid, gid = ids
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chown(dirpath, uid, gid)
        for name in filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def seed(template: Path, messages: list[bytes]) -> None:
    """Deliver the messages through the store (UIDs, `,S=`/`,W=` names, dovecot-uidlist)."""
    box = MailStore(str(template)).mailbox("INBOX")
    for message in messages:
        box.append(message, flags=["\\Seen"])
    box.sync()


def clone(template: Path, dest: Path) -> None:
    """An independent Maildir with the same messages: new directories and control files,
    message files hard-linked (never written after delivery)."""
    for dirpath, _dirnames, filenames in os.walk(template):
        rel = os.path.relpath(dirpath, template)
        target = dest / rel
        target.mkdir(parents=True, exist_ok=True)
        linked = os.path.basename(dirpath) in ("cur", "new")
        for name in filenames:
            src = os.path.join(dirpath, name)
            if linked:
                os.link(src, target / name)
            else:
                shutil.copy2(src, target / name)


def user_names(count: int) -> list[str]:
    return [f"u{i:03d}@{DOMAIN}" for i in range(count)]


# ----------------------------------------------------------------------------------------------
# Processes and their CPU time


class Proc(NamedTuple):
    ppid: int
    sid: int  # session: every process a server starts stays in its session, even orphaned
    start: int  # start time (ticks after boot): tells a process from a later one with its pid
    ticks: int  # CPU of the process and of the children it reaped
    zombie: bool


def proc_table() -> dict[int, Proc]:
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data.rsplit(b")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        table[int(entry)] = Proc(
            int(fields[1]), int(fields[3]), int(fields[19]), ticks, fields[0] == b"Z"
        )
    return table


def descendants(table: dict[int, Proc], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree so far: each live process's own time plus that of the
    children it reaped (Dovecot's per-connection processes end up in the master's)."""
    table = proc_table()
    pids = descendants(table, root) | {root}
    return sum(table[p].ticks for p in pids if p in table) / CLK_TCK


def host_idle() -> tuple[int, int]:
    """(idle+iowait ticks, all ticks) of the whole machine so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values[:8])


class Daemon:
    """A server process we started, in its own session; stopped, with every descendant,
    even on errors."""

    label = ""
    port = 0

    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "server.log"
        self._log_file: TextIO | None = None

    def spawn(self, argv: list[str]) -> None:
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def cpu(self) -> float:
        assert self.proc is not None
        return tree_cpu(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def problems(self) -> list[str]:
        """The error lines of the server's log so far."""
        return []

    def _session(self) -> dict[int, Proc]:
        """Processes of the server's session (it is the session leader), zombies included."""
        assert self.proc is not None
        sid = self.proc.pid
        return {pid: p for pid, p in proc_table().items() if p.sid == sid}

    def stop(self) -> list[str]:
        """SIGTERM to the server; if it hangs, SIGTERM to every process of its session, and
        SIGKILL to whatever is still left (by pid, checking each is still the same process).
        Returns what did not stop on its own."""
        killed: list[str] = []
        if self.proc is None:
            return killed
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                killed.append(
                    f"{self.label}: still running {STOP_WAIT:g} s after SIGTERM, "
                    "sent SIGTERM to every process of its session"
                )
                for pid, p in self._session().items():
                    if p.zombie:
                        continue
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        # Orphans are reaped by init; wait for them to be gone, zombies included.
        deadline = time.monotonic() + 10
        while (left := self._session()) and time.monotonic() < deadline:
            time.sleep(0.1)
        table = proc_table()
        for pid, p in left.items():
            if pid in table and table[pid].start == p.start and not p.zombie:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(f"{self.label}: {pid} was still running, killed")
                except ProcessLookupError:
                    pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return killed


class MraDaemon(Daemon):
    def __init__(self, base: Path, workers: int, passwd: Path, mail: Path) -> None:
        super().__init__(base)
        self.label = f"mra workers={workers}"
        self.mail = mail
        (base / "access").write_text("")
        (base / "local-host-names").write_text(f"{DOMAIN}\n")
        self.config = base / "mra.toml"
        user = server_user_line()
        self.config.write_text(
            '[listen]\npop3 = "127.0.0.1:0"\n'
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{mail}/%d/%n"\n'
            f'[maps]\naccess = "{base}/access"\nlocal_domains = "{base}/local-host-names"\n'
            f"[server]\nworkers = {workers}\n{user}"
        )

    def start(self) -> None:
        self.spawn([MRA, "serve", "--config", str(self.config)])
        assert self.proc is not None
        self.port = wait_for_mra(self.log, self.proc, "pop3", self.label, 30)

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"Z error ", ln)]


class DovecotDaemon(Daemon):
    label = REFERENCE

    def __init__(self, base: Path, passwd: Path, mail: Path) -> None:
        super().__init__(base)
        self.mail = mail
        self.port = free_port()
        uid, gid = mail_ids()
        self.config = base / "dovecot.conf"
        self.dovecot_log = base / "dovecot.log"
        self.config.write_text(
            "protocols = pop3\n"
            "listen = 127.0.0.1\n"
            f"base_dir = {base}/run\n"
            f"state_dir = {base}/state\n"
            f"log_path = {self.dovecot_log}\n"
            "ssl = no\n"
            "disable_plaintext_auth = no\n"
            "auth_mechanisms = plain login\n"
            "first_valid_uid = 0\n"
            f"mail_uid = {uid}\n"
            f"mail_gid = {gid}\n"
            f"mail_location = maildir:{mail}/%d/%n\n"
            "passdb {\n"
            "  driver = passwd-file\n"
            f"  args = scheme=SHA512-CRYPT {passwd}\n"
            "}\n"
            "userdb {\n"
            "  driver = passwd-file\n"
            f"  args = {passwd}\n"
            "}\n"
            "service pop3-login {\n"
            "  inet_listener pop3 {\n"
            f"    port = {self.port}\n"
            "  }\n"
            "}\n"
        )

    def start(self) -> None:
        self.spawn([DOVECOT, "-F", "-c", str(self.config)])
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited {self.proc.returncode}:\n{self.log()}{self._dovecot_log()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(512).startswith(b"+OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start:\n{self.log()}{self._dovecot_log()}")

    def _dovecot_log(self) -> str:
        try:
            return self.dovecot_log.read_text(errors="replace")
        except OSError:
            return ""

    def problems(self) -> list[str]:
        text = self.log() + self._dovecot_log()
        return [ln for ln in text.splitlines() if re.search(r"(Error|Fatal|Panic):", ln)]


# ----------------------------------------------------------------------------------------------
# The client


class Pop3Error(Exception):
    pass


class Counters:
    """One client's running totals; the main thread reads them at the window's edges."""

    __slots__ = ("error", "messages", "payload", "rx", "sessions")

    def __init__(self) -> None:
        self.sessions = 0  # complete sessions (QUIT answered)
        self.rx = 0  # bytes received
        self.messages = 0  # messages RETRieved and checked
        self.payload = 0  # their unstuffed size, each equal to its LIST size
        self.error: str | None = None


class Conn:
    """A minimal POP3 client on a blocking socket: cheap enough for many threads."""

    def __init__(self, port: int, counters: Counters) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.counters = counters

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(RECV)
        if not chunk:
            raise Pop3Error("connection closed by the server")
        self.counters.rx += len(chunk)
        self.buf += chunk

    def line(self) -> bytes:
        buf = self.buf
        while (end := buf.find(b"\n")) < 0:
            self._fill()
        line = bytes(buf[: end + 1])
        del buf[: end + 1]
        return line

    def ok(self, command: bytes) -> bytes:
        self.sock.sendall(command)
        line = self.line()
        if not line.startswith(b"+OK"):
            raise Pop3Error(f"{command.split()[0].decode()}: {line!r}")
        return line

    def multiline(self) -> int:
        """Wait for a whole multi-line answer: `buf[:n]` (dot-stuffed, ending with CRLF unless
        empty), then `.CRLF`. Returns n; the caller removes n + 3 bytes.

        `CRLF.CRLF` cannot occur inside the data (a lone dot is stuffed), and we never
        pipeline, so the server sends nothing after it: the answer is complete exactly when
        the buffer ends with it. Checking the end of the buffer, not searching all of it,
        keeps the client's cost per MB at the cost of receiving it."""
        buf = self.buf
        while not buf.endswith(b"\r\n.\r\n"):
            if buf == b".\r\n":
                return 0
            self._fill()
        return len(buf) - 3

    def take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[: n + 3]
        return data

    def login(self, user: str) -> None:
        greeting = self.line()
        if not greeting.startswith(b"+OK"):
            raise Pop3Error(f"greeting: {greeting!r}")
        self.ok(b"USER %s\r\n" % user.encode())
        self.ok(b"PASS %s\r\n" % PASSWORD.encode())

    def stat(self, expected: Expected) -> None:
        parts = self.ok(b"STAT\r\n").split()
        if (int(parts[1]), int(parts[2])) != (expected.count, expected.total):
            raise Pop3Error(
                f"STAT {parts[1].decode()} {parts[2].decode()}, "
                f"expected {expected.count} {expected.total}"
            )

    def list_sizes(self) -> list[int]:
        self.ok(b"LIST\r\n")
        data = self.take(self.multiline())
        return [int(ln.split()[1]) for ln in data.split(b"\r\n")[:-1]]

    def uidl(self) -> list[bytes]:
        self.ok(b"UIDL\r\n")
        return self.take(self.multiline()).split(b"\r\n")[:-1]

    def retr_checked(self, n: int, wire: int) -> None:
        """RETR n, which must send exactly `wire` octets before `.CRLF` (without copying or
        scanning the message: the content itself was compared before the run)."""
        self.ok(b"RETR %d\r\n" % n)
        end = self.multiline()
        del self.buf[: end + 3]
        if end != wire:
            raise Pop3Error(f"RETR {n}: {end} octets on the wire, expected {wire}")

    def retr(self, n: int) -> bytes:
        """RETR n, unstuffed."""
        self.ok(b"RETR %d\r\n" % n)
        data = self.take(self.multiline())
        return b"\r\n".join(ln[1:] if ln.startswith(b".") else ln for ln in data.split(b"\r\n"))

    def quit(self) -> None:
        self.ok(b"QUIT\r\n")
        self.close()


def session_once(port: int, user: str, expected: Expected, counters: Counters) -> None:
    """Workload 1: connect, USER/PASS, STAT, UIDL, QUIT."""
    conn = Conn(port, counters)
    try:
        conn.login(user)
        conn.stat(expected)
        listed = conn.uidl()
        if len(listed) != expected.count:
            raise Pop3Error(f"UIDL listed {len(listed)} messages, expected {expected.count}")
        conn.quit()
    finally:
        conn.close()
    counters.sessions += 1


def retr_once(
    port: int, user: str, expected: Expected, counters: Counters, stop: threading.Event
) -> None:
    """Workload 2: log in, STAT, LIST, RETR every message (until told to stop), QUIT."""
    conn = Conn(port, counters)
    try:
        conn.login(user)
        conn.stat(expected)
        sizes = conn.list_sizes()
        if sizes != expected.sizes:
            raise Pop3Error("LIST sizes differ from the seeded messages")
        complete = True
        for n, (size, wire) in enumerate(zip(sizes, expected.wire, strict=True), 1):
            if stop.is_set():
                complete = False
                break
            conn.retr_checked(n, wire)
            counters.payload += size
            counters.messages += 1
        conn.quit()
    finally:
        conn.close()
    if complete:
        counters.sessions += 1


def client_loop(
    workload: str,
    port: int,
    user: str,
    expected: Expected,
    counters: Counters,
    stop: threading.Event,
) -> None:
    try:
        while not stop.is_set():
            if workload == "sessions":
                session_once(port, user, expected, counters)
            else:
                retr_once(port, user, expected, counters, stop)
    except Exception as exc:
        counters.error = f"{user}: {exc!r}"


def full_check(server: Daemon, user: str, expected: Expected) -> tuple[list[str], list[bytes]]:
    """One session that compares every message with what was seeded; (problems, UIDLs)."""
    problems: list[str] = []
    counters = Counters()
    conn = Conn(server.port, counters)
    try:
        conn.login(user)
        conn.stat(expected)
        if conn.list_sizes() != expected.sizes:
            problems.append("LIST sizes differ from the seeded messages")
        uidls = [ln.split(b" ", 1)[1] for ln in conn.uidl()]
        for n, content in enumerate(expected.contents, 1):
            got = conn.retr(n)
            if got != content:
                problems.append(f"RETR {n}: {len(got)} octets differ from the seeded message")
                if len(problems) > 3:
                    break
        conn.quit()
    except (OSError, Pop3Error) as exc:
        problems.append(repr(exc))
        uidls = []
    finally:
        conn.close()
    return [f"{server.label}: {p}" for p in problems], uidls


# ----------------------------------------------------------------------------------------------
# Cells


@dataclass
class Cell:
    workload: str
    clients: int
    server: str
    rate: float = 0.0  # sessions/s or MB/s
    server_cores: float = 0.0
    client_cores: float = 0.0
    host_idle: float = 0.0  # fraction of the machine idle during the window
    other_cores: float = 0.0  # busy, but neither the server nor the client: other load
    sessions: int = 0
    messages: int = 0
    errors: list[str] = field(default_factory=list)  # what the clients saw
    logged: list[str] = field(default_factory=list)  # error lines the server logged meanwhile

    @property
    def server_ms_per_unit(self) -> float:
        return self.server_cores * 1000 / self.rate if self.rate else float("nan")


def _totals(counters: list[Counters]) -> tuple[int, int, int, int]:
    return (
        sum(c.sessions for c in counters),
        sum(c.rx for c in counters),
        sum(c.messages for c in counters),
        sum(c.payload for c in counters),
    )


def _client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_cell(
    server: Daemon,
    workload: str,
    clients: int,
    users: list[str],
    expected: Expected,
    warmup: float,
    seconds: float,
) -> Cell:
    cell = Cell(workload, clients, server.label)
    logged = len(server.problems())
    stop = threading.Event()
    counters = [Counters() for _ in range(clients)]
    threads = [
        threading.Thread(
            target=client_loop,
            args=(workload, server.port, users[i], expected, counters[i], stop),
            daemon=True,
        )
        for i in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        before = _totals(counters)
        srv0, cli0, (idle0, all0) = server.cpu(), _client_cpu(), host_idle()
        t0 = time.perf_counter()
        time.sleep(seconds)
        after = _totals(counters)
        srv1, cli1, (idle1, all1) = server.cpu(), _client_cpu(), host_idle()
        elapsed = time.perf_counter() - t0
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT + 5)
    if any(t.is_alive() for t in threads):
        cell.errors.append("a client did not finish within the timeout")
    sessions, rx, messages, _payload = (a - b for a, b in zip(after, before, strict=True))
    cell.rate = (sessions if workload == "sessions" else rx / MB) / elapsed
    cell.sessions, cell.messages = sessions, messages
    cell.server_cores = (srv1 - srv0) / elapsed
    cell.client_cores = (cli1 - cli0) / elapsed
    cell.host_idle = (idle1 - idle0) / max(1, all1 - all0)
    busy = (all1 - all0 - (idle1 - idle0)) / CLK_TCK / elapsed
    cell.other_cores = busy - cell.server_cores - cell.client_cores
    cell.errors += [c.error for c in counters if c.error]
    if not server.alive():
        cell.errors.append(f"{server.label} is not running any more")
    cell.logged = server.problems()[logged:]
    return cell


# ----------------------------------------------------------------------------------------------
# Report


def fmt_rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def report(cells: list[Cell], servers: list[str], seconds: float) -> list[str]:
    """Print the table and the targets; returns the verdicts that missed."""
    by_key = {(c.workload, c.clients, c.server): c for c in cells}
    width = max(len(s) for s in servers)
    head = (
        f"{'workload':<11} {'clients':>7}  {'server':<{width}}  {'rate':>8} {'unit':<10} "
        f"{'x dovecot':>9}  {'srv cores':>9}  {'srv ms/unit':>11}  {'cli cores':>9}  "
        f"{'other':>5}  {'idle':>4}  check"
    )
    print(head)
    print("-" * len(head))
    for workload in WORKLOADS:
        for clients in sorted({c.clients for c in cells if c.workload == workload}):
            ref = by_key.get((workload, clients, REFERENCE))
            for name in servers:
                cell = by_key.get((workload, clients, name))
                if cell is None:
                    continue
                ratio = f"{cell.rate / ref.rate:.2f}x" if ref and ref.rate else ""
                done = (
                    f"{cell.sessions} sessions"
                    if workload == "sessions"
                    else f"{cell.messages} RETR, {cell.sessions} sessions"
                )
                per_unit = f"{cell.server_ms_per_unit:.2f}" if cell.rate else "-"
                check = f"ERROR: {cell.errors[0]}" if cell.errors else f"ok ({done})"
                if cell.logged:
                    check += f"; SERVER LOGGED {len(cell.logged)} ERRORS"
                print(
                    f"{workload:<11} {clients:>7}  {name:<{width}}  {fmt_rate(cell.rate):>8} "
                    f"{UNITS[workload]:<10} {ratio:>9}  {cell.server_cores:>9.2f}  "
                    f"{per_unit:>11}  {cell.client_cores:>9.2f}  "
                    f"{cell.other_cores:>5.2f}  {cell.host_idle:>4.0%}  {check}"
                )
        print()
    print(
        f"(rate over a {seconds:g} s window after the warm-up; x dovecot: rate / Dovecot's in the "
        "same run;\n srv cores: server CPU over the window, whole process tree; srv ms/unit: "
        "server CPU ms per session or per MB;\n cli cores: the benchmark client's CPU; other: "
        "the rest of the busy CPU (other load, unattributed kernel work);\n idle: the machine's "
        "idle share of its cores)"
    )
    missed: list[str] = []
    target = "mra workers=2"
    if any(c.server == REFERENCE for c in cells):
        print(f"\nTarget: {target} >= Dovecot's throughput")
        for workload in WORKLOADS:
            for clients in sorted({c.clients for c in cells if c.workload == workload}):
                ours = by_key.get((workload, clients, target))
                ref = by_key.get((workload, clients, REFERENCE))
                if ours is None or ref is None:
                    continue
                if ours.errors or ref.errors or not ref.rate:
                    missed.append(f"{workload} x{clients}")
                    print(f"  {UNITS[workload]:<10} {clients:>3} clients: not judged, errors")
                    continue
                times = ours.rate / ref.rate
                verdict = "ok" if times >= 1.0 else "MISSED"
                if verdict != "ok":
                    missed.append(f"{workload} x{clients}")
                print(
                    f"  {UNITS[workload]:<10} {clients:>3} clients: {fmt_rate(ours.rate):>8} vs "
                    f"{fmt_rate(ref.rate):>8}  = {times:.2f}x (target >= 1.00x)  {verdict}"
                )
    hot = [c for c in cells if c.client_cores > 0.85]
    if hot:
        print(
            "\nNote: the client used more than 0.85 of a core in "
            + ", ".join(f"{c.workload} x{c.clients} {c.server}" for c in hot)
            + ": those rates may be client-bound."
        )
    return missed


def record(cells: list[Cell], servers: list[str], seconds: float) -> None:
    """The cells for bench.charts: one chart per workload, rate against clients."""
    recorder = Recorder(
        "pop3",
        f"Rates over a {seconds:g} s window per cell, servers interleaved, every byte checked.",
    )
    rows = [
        [
            c.workload,
            str(c.clients),
            c.server,
            f"{fmt_rate(c.rate)} {UNITS[c.workload]}",
            f"{c.server_ms_per_unit:.2f}" if c.rate else "-",
        ]
        for c in cells
    ]
    recorder.table("POP3", ["workload", "clients", "server", "rate", "server CPU ms/unit"], rows)
    by_key = {(c.workload, c.clients, c.server): c for c in cells}
    for workload in WORKLOADS:
        counts = sorted({c.clients for c in cells if c.workload == workload})
        if not counts:
            continue
        series: dict[str, list[float | None]] = {}
        for name in servers:
            values = [by_key.get((workload, n, name)) for n in counts]
            series[name] = [v.rate if v is not None else None for v in values]
        x: list[str | float] = [f"{n} clients" for n in counts]
        recorder.chart(Chart(f"POP3 {workload}", "bar", "", UNITS[workload], x, series))
    recorder.save()


# ----------------------------------------------------------------------------------------------
# The run


@dataclass
class Setup:
    base: Path
    users: list[str]
    expected: Expected
    passwd: Path
    template: Path
    daemons: list[Daemon] = field(default_factory=list)

    def mail_for(self, name: str) -> Path:
        """A mail root with every user's clone of the template, owned by the mail user."""
        mail = self.base / name / "mail"
        for user in self.users:
            local, _, domain = user.partition("@")
            clone(self.template, mail / domain / local)
        chown_tree(self.base / name, mail_ids())
        return mail


def build(base: Path, count: int, big: int, users: int) -> Setup:
    messages = make_messages(count, big)
    template = base / "template"
    seed(template, messages)
    chown_tree(template, mail_ids())
    names = user_names(users)
    passwd = base / "passwd"
    passwd.write_text(
        "".join(f"{u}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n" for u in names)
    )
    return Setup(base, names, Expected.of(messages), passwd, template)


def start_servers(setup: Setup, with_dovecot: bool) -> None:
    for workers in (2, 1):
        name = f"mra{workers}"
        mail = setup.mail_for(name)
        ours = MraDaemon(setup.base / name, workers, setup.passwd, mail)
        setup.daemons.append(ours)
        ours.start()
    if with_dovecot:
        mail = setup.mail_for("dovecot")
        reference = DovecotDaemon(setup.base / "dovecot", setup.passwd, mail)
        setup.daemons.append(reference)
        reference.start()


def preflight(setup: Setup) -> list[str]:
    """Every message of user 0 byte for byte from every server (the servers in parallel);
    UIDLs compared; then one plain session for every user (Dovecot builds its index files on
    a user's first login)."""
    problems: list[str] = []
    listings: dict[str, list[bytes]] = {}
    results: dict[str, tuple[list[str], list[bytes]]] = {}

    def check(daemon: Daemon) -> None:
        try:
            results[daemon.label] = full_check(daemon, setup.users[0], setup.expected)
        except Exception as exc:
            results[daemon.label] = ([f"{daemon.label}: {exc!r}"], [])

    threads = [threading.Thread(target=check, args=(d,), daemon=True) for d in setup.daemons]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for daemon in setup.daemons:
        found, uidls = results.get(daemon.label, ([f"{daemon.label}: no result"], []))
        problems += found
        listings[daemon.label] = uidls
    ref = listings.get(REFERENCE)
    for label, uidls in listings.items():
        if ref is not None and uidls and ref and uidls != ref:
            diff = next((a, b) for a, b in zip(uidls, ref, strict=False) if a != b)
            print(
                f"note: {label}'s UIDLs differ from Dovecot's on the same uidlist "
                f"(first: {diff[0].decode()!r} vs {diff[1].decode()!r})"
            )
    for daemon in setup.daemons:
        for user in setup.users:
            counters = Counters()
            try:
                session_once(daemon.port, user, setup.expected, counters)
            except (OSError, Pop3Error) as exc:
                problems.append(f"{daemon.label}: {user}: {exc!r}")
                break
    return problems


def _interleaved(setup: Setup, clients: list[int]) -> Iterator[tuple[str, int, Daemon]]:
    """Every (workload, clients) pair for every server back to back, the order rotated."""
    turn = 0
    for workload in WORKLOADS:
        for n in clients:
            k = turn % len(setup.daemons)
            for daemon in setup.daemons[k:] + setup.daemons[:k]:
                yield workload, n, daemon
            turn += 1


# What varies between otherwise equal log lines: time stamps, process and session ids.
_VARYING = re.compile(r"^(?:\S+Z|\w{3} +\d+ [\d:]+) |\bpid=\d+|<\d+><[^>]*>")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pop3", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=200, help="messages in every INBOX")
    parser.add_argument("--big", type=int, default=3, help="how many of them are 1 MB")
    parser.add_argument("--clients", default="10,50", help="concurrent clients, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell")
    parser.add_argument("--no-dovecot", action="store_true", help="only our server")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    clients = [int(s) for s in args.clients.split(",") if s.strip()]
    if not clients or min(clients) < 1 or args.messages < 1:
        parser.error("--clients and --messages must be positive")
    if not os.access(MRA, os.X_OK):
        print(f"no {MRA}: run `make` first", file=sys.stderr)
        return 1
    with_dovecot = not args.no_dovecot and os.access(DOVECOT, os.X_OK)
    if not with_dovecot and not args.no_dovecot:
        print(f"dovecot: no {DOVECOT}, rows skipped (apt-get install dovecot-pop3d)")

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    base = traversable_tempdir("bench-pop3-")
    setup: Setup | None = None
    status = 0
    try:
        t0 = time.perf_counter()
        setup = build(base, args.messages, args.big, max(clients))
        start_servers(setup, with_dovecot)
        exp = setup.expected
        print(
            f"{exp.count} messages per INBOX ({min(exp.sizes):,}-{max(exp.sizes):,} octets, "
            f"{exp.total / MB:.1f} MB), {len(setup.users)} users per server, "
            f"{os.cpu_count()} CPUs, set-up {time.perf_counter() - t0:.1f} s"
            + (f", {_dovecot_version()}" if with_dovecot else "")
        )
        problems = preflight(setup)
        if problems:
            for p in problems:
                print(f"ERROR: {p}", file=sys.stderr)
            return 1
        print(
            f"pre-flight: every message byte-identical from {len(setup.daemons)} servers, "
            f"every user logged in once\n",
            flush=True,
        )
        cells = []
        for workload, n, daemon in _interleaved(setup, clients):
            cell = run_cell(daemon, workload, n, setup.users, exp, args.warmup, args.seconds)
            cells.append(cell)
        report(cells, [d.label for d in setup.daemons], args.seconds)
        failed = [c for c in cells if c.errors or c.logged]
        if not failed:
            record(cells, [d.label for d in setup.daemons], args.seconds)
        for cell in failed:
            for error in cell.errors[:3]:
                print(f"ERROR: {cell.workload} x{cell.clients} {cell.server}: {error}")
        for daemon in setup.daemons:
            logged = daemon.problems()
            if logged:
                # Distinct lines, without the time stamps and process ids that vary.
                distinct = list(dict.fromkeys(re.sub(_VARYING, "", ln) for ln in logged))
                print(f"\n{daemon.label} logged {len(logged)} errors, {len(distinct)} distinct:")
                for line in distinct[:5]:
                    print(f"  {line}")
        status = 1 if failed else 0
        print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr)
        status = 130
    finally:
        if setup is not None:
            for daemon in setup.daemons:
                for leftover in daemon.stop():
                    print(f"stopping {leftover}", file=sys.stderr)
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return status


def _dovecot_version() -> str:
    out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, check=False)
    return f"Dovecot {out.stdout.split()[0]}" if out.stdout else "Dovecot"


if __name__ == "__main__":
    sys.exit(main())
