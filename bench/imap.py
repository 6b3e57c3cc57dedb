"""IMAP benchmark: one scripted session, phase by phase, against `mra serve`, Dovecot and pymap.

    python -m bench.imap [--messages 1000] [--runs 5] [--pymap-runs 1]
    python -m bench.imap --profile DIR     # our server alone under cProfile, one file per phase

The same client code (raw sockets, synchronizing literals, no pipelining: one command at a
time, as imaplib does) runs the same session against each server:

    connect + LOGIN, SELECT INBOX (empty), APPEND the N messages one by one (a third of them
    with \\Seen), SELECT INBOX again (now N messages), FETCH 1:* (FLAGS RFC822.SIZE),
    UID FETCH 1:* (BODY.PEEK[]), SEARCH SUBJECT / FROM / UNSEEN / BODY, STORE 1:* +FLAGS
    (\\Seen), STORE 1:* +FLAGS ($Label1), COPY 1:N/2 Archive (CREATE untimed), STORE 1:N/2
    +FLAGS (\\Deleted), EXPUNGE, LOGOUT.

Every phase is timed on its own (wall clock at the client, from sending the command to the
tagged answer, parsing included: the client is the same for every server); the table shows the
median over the runs. The server's CPU time over each phase (its whole process tree, reaped
children included) is shown too: it is less sensitive to the noise of a shared machine.

Each run is a fresh session on a fresh, empty Maildir (one user per run), the servers started
once: our server with `[server] workers = 1`, mail processes as `nobody` when run as root;
Dovecot 2.3's imap as a private daemon (stock settings, its index files next to the mail as in
a real installation), skipped if missing; pymap's maildir backend from a separate temporary
venv (`pip install pymap`, cached in $TMPDIR/bench-imap-pymap-venv), skipped with the reason if
it cannot be installed or run. Before the runs, one untimed warm-up session per server (a few
messages, every phase) takes one-off costs (imports, first login) out of the measurement.

The messages are realistic: 2-10 KB, CRLF, a quarter multipart/alternative (text + HTML), a
sixth multipart/mixed with a base64 attachment, some text parts quoted-printable.

Verified in every run, so that an error cannot pass for speed (a failed check marks the run
ERROR, and the phases from it on are not timed): every tagged answer OK; EXISTS 0 and then N;
APPENDUIDs increasing; N sizes equal to the appended messages' and the \\Seen flags as
appended; N bodies byte for byte equal to the appended messages, in UID order; every SEARCH
result equal to the expected message set (computed from the generated messages); FLAGS of all
N messages after each STORE; Archive holding N/2 messages; N/2 EXPUNGE responses and the N/2
right UIDs left. pymap returns messages with LF line ends (and RFC822.SIZE counted so): that
is accepted for pymap only, with a note.

Targets (the issue's), at 1,000 messages: every phase at most 2x Dovecot's time, and at least
10x faster than pymap.

With --profile DIR, only our server runs (one warm-up, one run), under a cProfile wrapper that
SIGUSR1/SIGUSR2 switch on and off around each phase, the thread-pool work included (one profile
per call, merged): DIR/NN-phase.prof, and the top functions by cumulative time of every phase
are printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import os
import pstats
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from bench.common import (
    free_port,
    mail_ids,
    server_user_line,
    traversable_tempdir,
    wait_for_mra,
)
from bench.results import Chart, Recorder
from mra.auth.passwords import hash_password

PYTHON = sys.executable
MRA = str(Path(PYTHON).parent / "mra")
DOVECOT = "/usr/sbin/dovecot"
DOMAIN = "example.test"
PASSWORD = "bench-Imap-42"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIMEOUT = 120.0  # seconds any one socket operation may take before the client gives up
RECV = 256 * 1024
PYMAP_VENV = Path(tempfile.gettempdir()) / "bench-imap-pymap-venv"
WARMUP_MESSAGES = 40
KEYWORD = "$Label1"
SUBJECT_NEEDLE = "quarterly"
FROM_NEEDLE = "carol.tanaka@partner"
BODY_NEEDLE = "zebrafish"
TARGET_DOVECOT = 2.0  # ours / Dovecot at most
TARGET_PYMAP = 10.0  # pymap / ours at least

OURS, DOVECOT_LABEL, PYMAP = "ours", "dovecot", "pymap"

PHASES = (
    "LOGIN",
    "SELECT (empty)",
    "APPEND xN",
    "SELECT (N)",
    "FETCH FLAGS SIZE",
    "UID FETCH BODY[]",
    "SEARCH SUBJECT",
    "SEARCH FROM",
    "SEARCH UNSEEN",
    "SEARCH BODY",
    "STORE +\\Seen",
    "STORE +keyword",
    "COPY 1:N/2",
    "STORE +\\Deleted",
    "EXPUNGE",
    "LOGOUT",
)


# ----------------------------------------------------------------------------------------------
# Messages


_TEXT = (
    "the mailbox server message delivery client account password folder quota backup archive "
    "migration relay storage monitoring weekend schedule meeting summary notes agreed points "
    "we should probably move this to next week because the numbers are not final yet and "
    "somebody has to check the invoices before they go out to the customers quarterly budget "
    "review draft attached please find below thanks regards"
)
_WORDS = _TEXT.split()
_ACCENTED = ("café", "déjà", "naïve", "Zürich", "façade", "señor", "smörgåsbord")

SENDERS = (
    ("Alice Martin", "alice.martin@example.org"),
    ("Bob Dupont", "bob.dupont@example.org"),
    ("Carol Tanaka", "carol.tanaka@partner.test"),
    ("Dave Okafor", "dave@lists.example.net"),
    ("Erin Schulz", "erin.schulz@example.com"),
    ("Frank Moreau", "frank@vendor.example"),
    ("Grace Lindqvist", "grace.l@example.org"),
    ("Heidi Novak", "heidi@example.com"),
    ("Ivan Petrov", "ivan.petrov@partner.test"),
    ("Judy Carol", "judy.carol@example.net"),
)
SUBJECTS = (
    "Re: migration plan",
    "Meeting notes, {day}",
    "Invoice {n} for your account",
    "Fwd: backup schedule",
    "Quota warning for folder Archive",
    "Re: Re: relay storage monitoring",
    "Quarterly numbers (draft {n})",
    "weekend on-call schedule",
)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri")


@dataclass(frozen=True)
class Message:
    data: bytes  # CRLF, as APPENDed
    seen: bool  # APPENDed with \Seen
    subject: str
    sender: str  # the From header's value
    needle: bool  # BODY_NEEDLE is in a text part


def _text_lines(rng: random.Random, count: int, needle: bool, accents: bool) -> list[str]:
    lines = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 11))]
        if accents and rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(_ACCENTED))
        r = rng.random()
        line = " ".join(words)
        if r < 0.06:
            line = "> " + line
        elif r < 0.12:
            line = ""
        lines.append(line)
    if needle:
        lines.insert(rng.randrange(len(lines) + 1), f"the {BODY_NEEDLE} samples arrive on Monday")
    return lines


def _qp(line: str) -> str:
    """Quoted-printable for a short line (no soft breaks needed below 76 octets)."""
    out = []
    for byte in line.encode():
        out.append(chr(byte) if 32 < byte < 127 and byte != 61 else f"={byte:02X}")
    return "".join(out).replace("=20", " ")


def _text_part(rng: random.Random, size: int, needle: bool) -> tuple[str, str]:
    """(headers, body) of a text/plain part of about `size` octets."""
    qp = rng.random() < 0.3
    lines = _text_lines(rng, max(3, size // 60), needle, accents=qp)
    if qp:
        head = (
            "Content-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
        )
        return head, "\r\n".join(_qp(ln) for ln in lines) + "\r\n"
    return "Content-Type: text/plain; charset=us-ascii\r\n", "\r\n".join(lines) + "\r\n"


def make_messages(count: int, seed: int = 3501) -> list[Message]:
    rng = random.Random(seed)
    messages = []
    for i in range(count):
        name, address = SENDERS[rng.randrange(len(SENDERS))]
        sender = f"{name} <{address}>"
        subject = SUBJECTS[rng.randrange(len(SUBJECTS))].format(n=1000 + i, day=DAYS[i % 5])
        needle = rng.random() < 0.06
        seen = i % 3 == 0
        target = rng.randint(2 * 1024, 10 * 1024)
        date = f"{DAYS[i % 5]}, {1 + i % 28} Mar 2025 10:{i % 60:02d}"
        head = (
            f"Return-Path: <{address}>\r\n"
            f"Received: from mx.remote.test (mx.remote.test [192.0.2.{i % 250 + 1}])\r\n"
            f"\tby mail.{DOMAIN} (Postfix) with ESMTPS id 4Z{i:08X}\r\n"
            f"\tfor <user@{DOMAIN}>; {date}:17 +0100\r\n"
            f"Date: {date}:14 +0100\r\n"
            f"From: {sender}\r\n"
            f"To: Team <team@{DOMAIN}>\r\n"
            f"Subject: {subject}\r\n"
            f"Message-ID: <{i}.{seed}.bench-imap@{address.split('@')[1]}>\r\n"
            "MIME-Version: 1.0\r\n"
        )
        kind = rng.random()
        room = max(600, target - len(head) - 200)
        if kind < 0.25:
            boundary = f"=_alt_{i}"
            text_head, text = _text_part(rng, room // 2, needle)
            paragraphs = "".join(
                f"<p>{ln}</p>\r\n" for ln in text.replace("\r\n\r\n", "\r\n").split("\r\n") if ln
            )
            if text_head.endswith("quoted-printable\r\n"):
                paragraphs = "".join(
                    f"<p>{ln}</p>\r\n" for ln in _text_lines(rng, 8, needle, False)
                )
            html = f"<html><body>\r\n{paragraphs}</body></html>\r\n"
            body = (
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
                "This is a multi-part message in MIME format.\r\n"
                f"--{boundary}\r\n{text_head}\r\n{text}"
                f"--{boundary}\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n{html}"
                f"--{boundary}--\r\n"
            )
        elif kind < 0.42:
            boundary = f"=_mixed_{i}"
            text_head, text = _text_part(rng, room // 3, needle)
            blob = base64.encodebytes(rng.randbytes(max(300, room * 2 // 4))).decode()
            body = (
                f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
                f"--{boundary}\r\n{text_head}\r\n{text}"
                f'--{boundary}\r\nContent-Type: application/pdf; name="report-{i}.pdf"\r\n'
                f'Content-Disposition: attachment; filename="report-{i}.pdf"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n"
                + blob.replace("\n", "\r\n")
                + f"--{boundary}--\r\n"
            )
        else:
            text_head, text = _text_part(rng, room, needle)
            body = f"{text_head}\r\n{text}"
        data = (head + body).encode()
        messages.append(Message(data, seen, subject, sender, needle))
    return messages


@dataclass(frozen=True)
class Expected:
    """What the session must see, as sets of 1-based sequence numbers at SEARCH time."""

    messages: list[Message]
    subject: set[int]
    sender: set[int]
    unseen: set[int]
    body: set[int]

    @classmethod
    def of(cls, messages: list[Message]) -> Expected:
        def where(pred: Callable[[Message], bool]) -> set[int]:
            return {n for n, m in enumerate(messages, 1) if pred(m)}

        return cls(
            messages,
            where(lambda m: SUBJECT_NEEDLE in m.subject.lower()),
            where(lambda m: FROM_NEEDLE in m.sender.lower()),
            where(lambda m: not m.seen),
            where(lambda m: m.needle),
        )


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


# ----------------------------------------------------------------------------------------------
# Processes


def make_maildir(path: Path, ids: tuple[int, int] | None) -> None:
    """An empty Maildir, owned by the mail user."""
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    if ids is not None and os.geteuid() == 0:
        for p in [path.parent, path, *(path / s for s in ("cur", "new", "tmp"))]:
            os.chown(p, *ids)


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree so far: each live process's time plus that of the
    children it reaped (Dovecot's finished login processes end up in the master's)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        table[int(entry)] = (int(fields[1]), ticks)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][1]
        todo += children.get(pid, [])
    return total / CLK_TCK


class Server:
    """A server process we started, in its own session; stopped, with its process group,
    even on errors."""

    label = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "server.log"
        self._log_file: TextIO | None = None
        self.notes: list[str] = []  # deviations accepted, said once in the report

    def spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._log_file = open(self.log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def problems(self) -> list[str]:
        return []

    def cpu(self) -> float:
        assert self.proc is not None
        return tree_cpu(self.proc.pid)

    def mail_for(self, user: str) -> Path:
        """Where `user`'s INBOX is (created empty before the run)."""
        raise NotImplementedError

    def prepare(self, user: str) -> None:
        """Anything the server needs in a fresh Maildir."""

    def start(self) -> None:
        raise NotImplementedError

    def wait_greeting(self, what: str) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what} exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(512).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not start:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid  # the session (and group) leader: start_new_session
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # children left behind, if any
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class MraServer(Server):
    label = OURS

    def __init__(self, base: Path, passwd: Path, profile: Path | None = None) -> None:
        super().__init__(base)
        self.mail = base / "mail"
        self.mail.mkdir()
        self.profile = profile
        (base / "access").write_text("")
        (base / "local-host-names").write_text(f"{DOMAIN}\n")
        self.config = base / "mra.toml"
        user = server_user_line()
        self.config.write_text(
            '[listen]\nimap = "127.0.0.1:0"\n'
            f'[auth]\npasswd_file = "{passwd}"\n'
            f'[mail]\nlocation = "{self.mail}/%d/%n"\n'
            f'[maps]\naccess = "{base}/access"\nlocal_domains = "{base}/local-host-names"\n'
            # No auto folders, as Dovecot's default configuration: the same work per session.
            "[mailboxes]\n"
            # bench.load logs in up to 50 sessions of one user from one address
            "[limits]\nmax_sessions_per_user = 1000\nmax_sessions_per_user_address = 1000\n"
            f"[server]\nworkers = 1\n{user}"
        )

    def mail_for(self, user: str) -> Path:
        local, _, domain = user.partition("@")
        return self.mail / domain / local

    def start(self) -> None:
        serve = ["serve", "--config", str(self.config)]
        if self.profile is None:
            self.spawn([MRA, *serve])
        else:
            self.spawn([PYTHON, "-c", PROFILE_WRAPPER, str(self.profile), *serve])
        assert self.proc is not None
        self.port = wait_for_mra(self.log, self.proc, "imap", "mra serve", 60)

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"Z error |Traceback", ln)]


class DovecotServer(Server):
    label = DOVECOT_LABEL

    def __init__(self, base: Path, passwd: Path, high_performance: bool = False) -> None:
        super().__init__(base)
        if high_performance:
            self.label = DOVECOT_LABEL + " (high-performance)"
        self.mail = base / "mail"
        self.mail.mkdir()
        self.port = free_port()
        uid, gid = mail_ids()
        self.config = base / "dovecot.conf"
        self.dovecot_log = base / "dovecot.log"
        self.config.write_text(
            "protocols = imap\n"
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
            f"mail_location = maildir:{self.mail}/%d/%n\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            "passdb {\n"
            "  driver = passwd-file\n"
            f"  args = scheme=SHA512-CRYPT {passwd}\n"
            "}\n"
            "userdb {\n"
            "  driver = passwd-file\n"
            f"  args = {passwd}\n"
            "}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    port = {self.port}\n  }}\n"
            "  inet_listener imaps {\n    port = 0\n  }\n"
            # Dovecot's "high-performance mode" (doc.dovecot.org, Login processes): login
            # processes serve many connections and one per core waits, instead of a new
            # process for each connection.
            + (
                "  service_count = 0\n"
                f"  process_min_avail = {os.cpu_count() or 1}\n"
                "  vsz_limit = 1G\n"
                if high_performance
                else ""
            )
            + "}\n"
            # bench.load logs in up to 50 sessions of one user from one address
            "protocol imap {\n  mail_max_userip_connections = 1000\n}\n"
        )

    def mail_for(self, user: str) -> Path:
        local, _, domain = user.partition("@")
        return self.mail / domain / local

    def start(self) -> None:
        self.spawn([DOVECOT, "-F", "-c", str(self.config)])
        self.wait_greeting("dovecot")

    def log(self) -> str:
        text = super().log()
        with suppress(OSError):
            text += self.dovecot_log.read_text(errors="replace")
        return text

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if re.search(r"(Error|Fatal|Panic):", ln)]


class PymapServer(Server):
    label = PYMAP

    def __init__(self, base: Path, executable: str, users: list[str]) -> None:
        super().__init__(base)
        self.executable = executable
        self.mail = base / "mail"
        self.mail.mkdir()
        self.port = free_port()
        # pymap's users files: a passwd-like file (home directory relative to the base) and a
        # shadow-like one. Without passlib it checks `$pbkdf2-sha256$ROUNDS$salt$digest`; 5,000
        # rounds cost about what SHA512-CRYPT's 5,000 do for the other two.
        salt = os.urandom(16)
        digest = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 5000)
        b64 = base64.b64encode
        secret = f"$pbkdf2-sha256$5000${b64(salt).decode()}${b64(digest).decode()}"
        (self.mail / "pymap-etc-passwd").write_text(
            "".join(f"{u}::1000:1000::{self._home(u)}:\r\n" for u in users)
        )
        (self.mail / "pymap-etc-shadow").write_text("".join(f"{u}:{secret}\r\n" for u in users))

    @staticmethod
    def _home(user: str) -> str:
        local, _, domain = user.partition("@")
        return f"{domain}/{local}"

    def mail_for(self, user: str) -> Path:
        return self.mail / self._home(user)

    def prepare(self, user: str) -> None:
        """pymap's Maildir keeps only the keywords its dovecot-keywords file defines: define
        the one the session stores (the others create the file themselves)."""
        (self.mail_for(user) / "dovecot-keywords").write_text(f"0 {KEYWORD}\n")

    def start(self) -> None:
        argv = [self.executable, "--host", "127.0.0.1", "--port", str(self.port)]
        self.spawn([*argv, "maildir", str(self.mail)])
        self.wait_greeting("pymap")

    def problems(self) -> list[str]:
        return [ln for ln in self.log().splitlines() if "Traceback" in ln or " ERROR " in ln]


def pymap_executable(explicit: str | None) -> tuple[str | None, str]:
    """(pymap's path, "") or (None, why not), installing it into a venv of its own once."""
    exe = Path(explicit) if explicit else PYMAP_VENV / "bin" / "pymap"
    if not exe.exists():
        if explicit:
            return None, f"no {exe}"
        print(f"installing pymap into {PYMAP_VENV} (once; not the project's venv) ...", flush=True)
        shutil.rmtree(PYMAP_VENV, ignore_errors=True)
        steps = (
            ["python3", "-m", "venv", str(PYMAP_VENV)],
            [str(PYMAP_VENV / "bin" / "pip"), "install", "-q", "pymap"],
        )
        for argv in steps:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return None, f"{' '.join(argv[:3])}: {exc}"
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, f"{' '.join(argv[:3])} failed: {' | '.join(tail)}"
    try:
        done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{exe} --version: {exc}"
    if done.returncode != 0:
        return None, f"{exe} --version failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return str(exe), done.stdout.strip()


# The server under cProfile, switched on by SIGUSR1 and off (and dumped) by SIGUSR2: one
# profiler for the reactor thread and one per call handed to the thread pool (cProfile follows
# one thread), merged into one file per phase.
PROFILE_WRAPPER = r"""
import cProfile, os, pstats, signal, sys, threading
from twisted.internet import threads
out = sys.argv.pop(1)
lock = threading.Lock()
state = {"on": False, "main": None, "parts": [], "n": 0}
def on(signum, frame):
    with lock:
        state["parts"] = []
    state["on"] = True
    state["main"] = prof = cProfile.Profile()
    prof.enable()
def off(signum, frame):
    prof = state["main"]
    prof.disable()
    state["on"] = False
    with lock:
        parts, state["parts"] = state["parts"], []
    stats = pstats.Stats(prof)
    for part in parts:
        stats.add(part)
    path = os.path.join(out, "%02d.prof" % state["n"])
    state["n"] += 1
    stats.dump_stats(path + ".tmp")
    os.rename(path + ".tmp", path)
original = threads.deferToThread
def deferToThread(f, *args, **kwargs):
    def run(*args, **kwargs):
        if not state["on"]:
            return f(*args, **kwargs)
        prof = cProfile.Profile()
        prof.enable()
        try:
            return f(*args, **kwargs)
        finally:
            prof.disable()
            with lock:
                state["parts"].append(prof)
    return original(run, *args, **kwargs)
threads.deferToThread = deferToThread
signal.signal(signal.SIGUSR1, on)
signal.signal(signal.SIGUSR2, off)
from mra.cli import main
sys.exit(main(sys.argv[1:]))
"""


# ----------------------------------------------------------------------------------------------
# The client


class ImapError(Exception):
    pass


_LITERAL = re.compile(rb"\{(\d+)\}$")
_FETCH = re.compile(rb"^\* (\d+) FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_BODY = re.compile(rb"\bBODY\[\] \{(\d+)\}$")
_CODE_NUMBERS = re.compile(rb"\[(?:APPENDUID|COPYUID) (\d+) ([\d:,]+)")

Response = list[bytes]  # text, literal, text, ...: the literals at the odd indices


class Conn:
    """A minimal IMAP client on a blocking socket: one command at a time, synchronizing
    literals (wait for the server's `+`), responses with their literals read whole."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.tags = 0

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(RECV)
        if not chunk:
            raise ImapError("connection closed by the server")
        self.buf += chunk

    def _line(self) -> bytes:
        scan = self.pos
        while (end := self.buf.find(b"\r\n", scan)) < 0:
            scan = max(self.pos, len(self.buf) - 1)
            self._fill()
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def response(self) -> Response:
        if self.pos > 1 << 20:
            del self.buf[: self.pos]
            self.pos = 0
        parts = [self._line()]
        while m := _LITERAL.search(parts[-1]):
            parts.append(self._take(int(m.group(1))))
            parts.append(self._line())
        return parts

    def greeting(self) -> None:
        line = self.response()[0]
        if not line.startswith(b"* OK"):
            raise ImapError(f"greeting: {line[:200]!r}")

    def command(self, cmd: str, literal: bytes | None = None) -> tuple[list[Response], bytes]:
        """(untagged responses, tagged OK line); anything but OK raises."""
        self.tags += 1
        tag = b"a%04d " % self.tags
        untagged: list[Response] = []
        if literal is None:
            self.sock.sendall(tag + cmd.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + cmd.encode() + b" {%d}\r\n" % len(literal))
            while True:
                resp = self.response()
                if resp[0].startswith(b"+"):
                    break
                if resp[0].startswith(tag):
                    raise ImapError(f"{cmd}: {resp[0][:300]!r}")
                untagged.append(resp)
            self.sock.sendall(literal + b"\r\n")
        while True:
            resp = self.response()
            if resp[0].startswith(tag):
                status = resp[0][len(tag) :]
                if not status.startswith(b"OK"):
                    raise ImapError(f"{cmd[:60]}: {status[:300]!r}")
                return untagged, status
            untagged.append(resp)


@dataclass
class Fetched:
    uid: int | None = None
    size: int | None = None
    flags: list[bytes] | None = None
    body: bytes | None = None


def parse_fetches(responses: list[Response]) -> dict[int, Fetched]:
    """The FETCH responses by sequence number, items merged (a server may send unsolicited
    FLAGS-only ones as well)."""
    out: dict[int, Fetched] = {}
    for resp in responses:
        m = _FETCH.match(resp[0])
        if not m:
            continue
        item = out.setdefault(int(m.group(1)), Fetched())
        for i in range(0, len(resp), 2):
            text = resp[i]
            if u := _UID.search(text):
                item.uid = int(u.group(1))
            if s := _SIZE.search(text):
                item.size = int(s.group(1))
            if f := _FLAGS.search(text):
                item.flags = f.group(1).split()
            if _BODY.search(text) and i + 1 < len(resp):
                item.body = resp[i + 1]
    return out


def exists(responses: list[Response]) -> int | None:
    found = None
    for resp in responses:
        if m := re.match(rb"^\* (\d+) EXISTS$", resp[0]):
            found = int(m.group(1))
    return found


def search_result(responses: list[Response]) -> set[int]:
    numbers: set[int] = set()
    for resp in responses:
        if resp[0].upper().startswith(b"* SEARCH"):
            numbers.update(int(n) for n in resp[0].split()[2:])
    return numbers


def has_flag(item: Fetched, flag: str) -> bool:
    return item.flags is not None and flag.lower().encode() in (f.lower() for f in item.flags)


# ----------------------------------------------------------------------------------------------
# The session


class Check(Exception):
    """A verification failed: the run is an error, whatever its times."""


@dataclass
class Run:
    server: str
    times: dict[str, float] = field(default_factory=dict)  # seconds, wall clock
    cpu: dict[str, float] = field(default_factory=dict)  # server CPU seconds
    error: str | None = None


def _same(server: Server, got: bytes, want: bytes, what: str) -> None:
    if got == want:
        return
    if server.label == PYMAP and got == lf(want):
        note = "pymap sends messages with LF line ends (RFC822.SIZE counted so), not CRLF"
        if note not in server.notes:
            server.notes.append(note)
        return
    raise Check(f"{what}: {len(got)} octets differ from the {len(want)} appended")


def session(
    server: Server,
    user: str,
    expected: Expected,
    phase_hook: Callable[[int, bool], None] | None = None,
) -> Run:
    """The scripted session; every phase timed, every result checked."""
    run = Run(server.label)
    messages = expected.messages
    n = len(messages)
    half = n // 2
    conn: Conn | None = None
    uids: list[int] = []
    current = [PHASES[0]]  # the phase running or last run, for the error message

    def phase(index: int, fn: Callable[[], None]) -> None:
        name = current[0] = PHASES[index]
        if phase_hook:
            phase_hook(index, True)
        cpu0 = server.cpu()
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        run.cpu[name] = server.cpu() - cpu0
        if phase_hook:
            phase_hook(index, False)
        run.times[name] = elapsed

    def cmd(text: str, literal: bytes | None = None) -> tuple[list[Response], bytes]:
        assert conn is not None
        return conn.command(text, literal)

    state: dict[str, object] = {}

    def login() -> None:
        nonlocal conn
        conn = Conn(server.port)
        conn.greeting()
        cmd(f'LOGIN "{user}" "{PASSWORD}"')

    def select_empty() -> None:
        state["select0"] = exists(cmd("SELECT INBOX")[0])

    def append() -> None:
        codes = state["appenduids"] = []
        for m in messages:
            flags = "(\\Seen) " if m.seen else ""
            _, status = cmd(f"APPEND INBOX {flags}".rstrip(), m.data)
            if c := _CODE_NUMBERS.search(status):
                codes.append((int(c.group(1)), int(c.group(2))))

    def select_full() -> None:
        state["select1"] = exists(cmd("SELECT INBOX")[0])

    def fetch_flags() -> None:
        state["flags"] = parse_fetches(cmd("FETCH 1:* (FLAGS RFC822.SIZE)")[0])

    def fetch_bodies() -> None:
        state["bodies"] = parse_fetches(cmd("UID FETCH 1:* (BODY.PEEK[])")[0])

    def searcher(key: str, query: str) -> Callable[[], None]:
        def go() -> None:
            state[key] = search_result(cmd(f"SEARCH {query}")[0])

        return go

    def storer(key: str, seqs: str, flag: str) -> Callable[[], None]:
        def go() -> None:
            state[key] = parse_fetches(cmd(f"STORE {seqs} +FLAGS ({flag})")[0])

        return go

    def copy() -> None:
        state["copy"] = cmd(f"COPY 1:{half} Archive")[1]

    def expunge() -> None:
        state["expunged"] = [
            r[0] for r in cmd("EXPUNGE")[0] if re.match(rb"^\* \d+ EXPUNGE$", r[0])
        ]

    def logout() -> None:
        untagged, _ = cmd("LOGOUT")
        if not any(r[0].startswith(b"* BYE") for r in untagged):
            raise Check("LOGOUT: no BYE")

    def check_flags(count: int, flag: str) -> None:
        """Untimed: a server need not answer STORE with the flags that did not change."""
        got = parse_fetches(cmd("FETCH 1:* (FLAGS)")[0])
        flagged = [s for s, item in got.items() if has_flag(item, flag)]
        if flagged != list(range(1, count + 1)):
            raise Check(f"STORE +FLAGS ({flag}): {len(flagged)} messages have it, not 1:{count}")

    try:
        phase(0, login)
        phase(1, select_empty)
        if state["select0"] != 0:
            raise Check(f"SELECT INBOX: {state['select0']} EXISTS in a fresh mailbox, not 0")
        phase(2, append)
        codes = state["appenduids"]
        assert isinstance(codes, list)
        if codes and (
            len(codes) != n
            or len({v for v, _ in codes}) != 1
            or any(b <= a for (_, a), (_, b) in itertools.pairwise(codes))
        ):
            raise Check("APPEND: APPENDUIDs not one UIDVALIDITY with increasing UIDs")
        phase(3, select_full)
        if state["select1"] != n:
            raise Check(f"SELECT INBOX: {state['select1']} EXISTS after {n} APPENDs")

        phase(4, fetch_flags)
        got = state["flags"]
        assert isinstance(got, dict)
        if sorted(s for s, item in got.items() if item.size is not None) != list(range(1, n + 1)):
            raise Check(f"FETCH 1:* (FLAGS RFC822.SIZE): {len(got)} answers, {n} expected")
        for s, m in enumerate(messages, 1):
            size = got[s].size
            if size != len(m.data) and not (server.label == PYMAP and size == len(lf(m.data))):
                raise Check(f"FETCH {s}: RFC822.SIZE {size}, appended {len(m.data)} octets")
            if has_flag(got[s], "\\Seen") != m.seen:
                raise Check(f"FETCH {s}: FLAGS {got[s].flags}, appended seen={m.seen}")

        phase(5, fetch_bodies)
        got = state["bodies"]
        assert isinstance(got, dict)
        if sorted(s for s, item in got.items() if item.body is not None) != list(range(1, n + 1)):
            raise Check(f"UID FETCH 1:* (BODY.PEEK[]): {len(got)} bodies, {n} expected")
        uids = [got[s].uid or 0 for s in range(1, n + 1)]
        if any(b <= a for a, b in itertools.pairwise(uids)) or not uids[0]:
            raise Check("UID FETCH: UIDs missing or not increasing")
        for s, m in enumerate(messages, 1):
            _same(server, got[s].body or b"", m.data, f"UID FETCH {uids[s - 1]} BODY[]")
        state.clear()

        searches = (
            ("SEARCH SUBJECT", f"SUBJECT {SUBJECT_NEEDLE}", expected.subject),
            ("SEARCH FROM", f'FROM "{FROM_NEEDLE}"', expected.sender),
            ("SEARCH UNSEEN", "UNSEEN", expected.unseen),
            ("SEARCH BODY", f"BODY {BODY_NEEDLE}", expected.body),
        )
        for index, (name, query, want) in enumerate(searches, 6):
            phase(index, searcher(name, query))
            if state[name] != want:
                found = state[name]
                assert isinstance(found, set)
                raise Check(f"{len(found)} found, {len(want)} expected")

        phase(10, storer("seen", "1:*", "\\Seen"))
        check_flags(n, "\\Seen")
        phase(11, storer("keyword", "1:*", KEYWORD))
        check_flags(n, KEYWORD)

        cmd("CREATE Archive")
        phase(12, copy)
        archived = b"".join(
            r[0] for r in cmd("STATUS Archive (MESSAGES)")[0] if r[0].startswith(b"* STATUS")
        )
        if not re.search(rb"MESSAGES %d\)" % half, archived):
            raise Check(f"COPY 1:{half} Archive: Archive says {archived!r}")

        phase(13, storer("deleted", f"1:{half}", "\\Deleted"))
        check_flags(half, "\\Deleted")
        phase(14, expunge)
        expunged = state["expunged"]
        assert isinstance(expunged, list)
        if len(expunged) != half:
            raise Check(f"EXPUNGE: {len(expunged)} EXPUNGE responses, {half} expected")
        left = {int(x) for x in b" ".join(cmd("UID SEARCH ALL")[0][0][0].split()[2:]).split()}
        if left != set(uids[half:]):
            raise Check(f"after EXPUNGE: {len(left)} UIDs left, not the last {n - half}")

        phase(15, logout)
    except (Check, ImapError, OSError) as exc:
        run.error = f"{current[0]}: {exc}"
    finally:
        if conn is not None:
            conn.close()
    return run


# ----------------------------------------------------------------------------------------------
# Report


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def shown(phase: str, n: int) -> str:
    return phase.replace("xN", f"x{n}").replace("N/2", str(n // 2)).replace("(N)", f"({n})")


def medians(runs: list[Run], attr: str, average: bool = False) -> dict[str, float]:
    """Per phase, the median (or the mean) over the runs without errors that timed it."""
    out = {}
    for name in PHASES:
        values = [getattr(r, attr)[name] for r in runs if not r.error and name in r.times]
        if values:
            out[name] = statistics.fmean(values) if average else statistics.median(values)
    return out


def report(results: dict[str, list[Run]], servers: list[str], n: int) -> list[str]:
    """Print the tables; returns the phases that missed a target."""
    wall = {s: medians(results.get(s, []), "times") for s in servers}
    cpu = {s: medians(results.get(s, []), "cpu", average=True) for s in servers}
    runs = {s: sum(1 for r in results.get(s, []) if not r.error) for s in servers}
    have_dc, have_pm = DOVECOT_LABEL in servers, PYMAP in servers
    head = f"{'phase':<18}" + "".join(f"{s + ' ms':>12}" for s in servers)
    if have_dc:
        head += f"{'ours/dovecot':>14}"
    if have_pm:
        head += f"{'pymap/ours':>12}"
    if have_dc or have_pm:
        head += "  target"
    print(f"Wall time per phase, median of {', '.join(f'{runs[s]} {s}' for s in servers)} runs:")
    print(head)
    print("-" * len(head))
    missed: list[str] = []
    totals = {s: 0.0 for s in servers}
    for name in PHASES:
        row = f"{shown(name, n):<18}"
        for s in servers:
            value = wall[s].get(name)
            if value is not None:
                totals[s] += value
            row += f"{fmt_ms(value):>12}"
        ours = wall[OURS].get(name)
        verdicts = []
        if have_dc:
            ref = wall[DOVECOT_LABEL].get(name)
            if ours and ref:
                ratio = ours / ref
                row += f"{ratio:>13.2f}x"
                if ratio > TARGET_DOVECOT:
                    verdicts.append(f"> {TARGET_DOVECOT:g}x dovecot")
            else:
                row += f"{'-':>14}"
        if have_pm:
            slow = wall[PYMAP].get(name)
            if ours and slow:
                ratio = slow / ours
                row += f"{ratio:>11.1f}x"
                if ratio < TARGET_PYMAP:
                    verdicts.append(f"< {TARGET_PYMAP:g}x pymap")
            else:
                row += f"{'-':>12}"
        if ours is None:
            verdicts.append("no result")
        if verdicts:
            missed.append(name)
        if have_dc or have_pm:
            row += "  " + ("MISSED: " + ", ".join(verdicts) if verdicts else "ok")
        print(row)
    row = f"{'total':<18}" + "".join(f"{fmt_ms(totals[s]):>12}" for s in servers)
    if have_dc and totals.get(DOVECOT_LABEL):
        row += f"{totals[OURS] / totals[DOVECOT_LABEL]:>13.2f}x"
    if have_pm and totals.get(PYMAP) and totals[OURS]:
        row += f"{totals[PYMAP] / totals[OURS]:>11.1f}x"
    print("-" * len(head))
    print(row)

    print("\nServer CPU per phase (ms, whole process tree, mean over the runs):")
    head2 = f"{'phase':<18}" + "".join(f"{s + ' cpu':>12}" for s in servers)
    if have_dc:
        head2 += f"{'ours/dovecot':>14}"
    print(head2)
    print("-" * len(head2))
    for name in PHASES:
        row = f"{shown(name, n):<18}" + "".join(f"{fmt_ms(cpu[s].get(name)):>12}" for s in servers)
        ours, ref = cpu[OURS].get(name), cpu.get(DOVECOT_LABEL, {}).get(name)
        if have_dc:
            row += f"{ours / ref:>13.2f}x" if ours and ref else f"{'-':>14}"
        print(row)
    print(
        f"(CPU from /proc, counted in ticks of {1000 / CLK_TCK:g} ms: below a few ticks it is "
        "only a rough figure)"
    )
    if not (have_dc or have_pm):
        return []
    print(
        f"\nTargets at {n} messages: ours <= {TARGET_DOVECOT:g}x Dovecot's time and pymap >= "
        f"{TARGET_PYMAP:g}x ours, per phase: "
        + (f"missed in {len(missed)} of {len(PHASES)}" if missed else "all met")
    )
    return missed


def record(results: dict[str, list[Run]], servers: list[str], n: int) -> None:
    """The run's medians for bench.charts: wall and CPU time per phase, per server."""
    wall = {s: medians(results.get(s, []), "times") for s in servers}
    cpu = {s: medians(results.get(s, []), "cpu", average=True) for s in servers}
    runs = ", ".join(f"{len(results.get(s, []))} {s}" for s in servers)
    recorder = Recorder(
        "imap",
        f"One session after another through the phases of bench/imap.py on {n} messages "
        f"(median of {runs} runs); every answer checked.",
    )
    rows = []
    for name in PHASES:
        row = [shown(name, n)]
        row += [fmt_ms(wall[s].get(name)) for s in servers]
        row += [fmt_ms(cpu[s].get(name)) for s in servers]
        rows.append(row)
    recorder.table(
        "Time per phase (ms)",
        ["phase", *(f"{s} wall" for s in servers), *(f"{s} CPU" for s in servers)],
        rows,
    )
    x: list[str | float] = [shown(name, n) for name in PHASES]
    recorder.chart(
        Chart(
            "IMAP phases: wall time (log scale)",
            "bar",
            "",
            "ms",
            x,
            {s: [_ms(wall[s].get(name)) for name in PHASES] for s in servers},
            log_y=True,
        )
    )
    recorder.save()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# ----------------------------------------------------------------------------------------------
# Profiling


def profile_hook(server: MraServer, out: Path, slugs: list[str]) -> Callable[[int, bool], None]:
    """SIGUSR1 before a phase, SIGUSR2 after it; waits for the server to write the profile."""
    count = [0]

    def hook(index: int, start: bool) -> None:
        assert server.proc is not None
        if start:
            server.proc.send_signal(signal.SIGUSR1)
            time.sleep(0.02)  # let the handler run before the command arrives
            return
        server.proc.send_signal(signal.SIGUSR2)
        path = out / f"{count[0]:02d}.prof"
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if path.exists():
            path.rename(out / f"{index:02d}-{slugs[index]}.prof")
        count[0] += 1

    return hook


def print_profiles(out: Path, run: Run, top: int) -> None:
    """Per phase: the project's functions by cumulative time, then everything by own time.
    The reactor thread's `epoll.poll` is idle time (waiting for the client, or for the thread
    pool, whose calls are profiled and merged in)."""
    for index, name in enumerate(PHASES):
        files = sorted(out.glob(f"{index:02d}-*.prof"))
        if not files or name not in run.times:
            continue
        print(f"\n=== {name}: {fmt_ms(run.times[name])} ms (under the profiler), {files[0]} ===")
        stats = pstats.Stats(str(files[0]), stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(r"/(mra|mailstore)/", top)
        stats.sort_stats("tottime").print_stats(max(5, top // 3))


# ----------------------------------------------------------------------------------------------
# The run


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _dovecot_version() -> str:
    out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, check=False)
    return f"Dovecot {out.stdout.split()[0]}" if out.stdout else "Dovecot"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.imap", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--messages", type=int, default=1000, help="messages APPENDed per run")
    parser.add_argument("--runs", type=int, default=5, help="runs for ours and Dovecot")
    parser.add_argument("--pymap-runs", type=int, default=1, help="runs for pymap (it is slow)")
    parser.add_argument("--no-dovecot", action="store_true", help="skip Dovecot")
    parser.add_argument("--no-pymap", action="store_true", help="skip pymap")
    parser.add_argument("--pymap", metavar="PATH", help="a pymap executable to use")
    parser.add_argument(
        "--profile", metavar="DIR", help="profile our server alone, one .prof per phase in DIR"
    )
    parser.add_argument("--top", type=int, default=25, help="functions shown per profiled phase")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.messages < 2 or args.runs < 1 or args.pymap_runs < 0:
        parser.error("--messages must be at least 2 and --runs at least 1")
    if not os.access(MRA, os.X_OK):
        print(f"no {MRA}: run `make` first", file=sys.stderr)
        return 1

    profile_out = Path(args.profile).resolve() if args.profile else None
    with_dovecot = not args.no_dovecot and profile_out is None
    if with_dovecot and not os.access(DOVECOT, os.X_OK):
        print(f"dovecot: no {DOVECOT}, column skipped (apt-get install dovecot-imapd)")
        with_dovecot = False
    pymap_exe: str | None = None
    pymap_version = ""
    if not args.no_pymap and profile_out is None and args.pymap_runs > 0:
        pymap_exe, why = pymap_executable(args.pymap)
        if pymap_exe is None:
            print(f"pymap: skipped, {why}")
        else:
            pymap_version = why

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    base = traversable_tempdir("bench-imap-")
    servers: list[Server] = []
    status = 0
    t_start = time.perf_counter()
    try:
        messages = make_messages(args.messages)
        expected = Expected.of(messages)
        warm = Expected.of(make_messages(WARMUP_MESSAGES, seed=7))
        runs = 1 if profile_out else args.runs
        users = ["warmup@" + DOMAIN] + [f"run{i}@{DOMAIN}" for i in range(max(runs, 1))]
        passwd = base / "passwd"
        passwd.write_text(
            "".join(f"{u}:{hash_password(PASSWORD, 'SHA512-CRYPT')}::::::\n" for u in users)
        )
        passwd.chmod(0o644)
        prof_tmp: Path | None = None
        if profile_out is not None:
            prof_tmp = base / "profile"
            prof_tmp.mkdir()
            if os.geteuid() == 0:
                os.chown(prof_tmp, *mail_ids())
        servers.append(MraServer(base / OURS, passwd, prof_tmp))
        if with_dovecot:
            servers.append(DovecotServer(base / DOVECOT_LABEL, passwd))
        if pymap_exe is not None:
            servers.append(PymapServer(base / PYMAP, pymap_exe, users))
        for server in list(servers):
            for user in users:
                make_maildir(server.mail_for(user), mail_ids())
                server.prepare(user)
            try:
                server.start()
            except RuntimeError as exc:
                if server.label == OURS:
                    raise
                print(f"{server.label}: skipped, could not start: {exc}")
                server.stop()
                servers.remove(server)
        sizes = [len(m.data) for m in messages]
        kinds = sum(1 for m in messages if b"multipart/" in m.data)
        print(
            f"{len(messages)} messages per run ({min(sizes):,}-{max(sizes):,} octets, "
            f"{sum(sizes) / 1e6:.1f} MB, {kinds} multipart); searches expect "
            f"{len(expected.subject)} SUBJECT, {len(expected.sender)} FROM, "
            f"{len(expected.unseen)} UNSEEN, {len(expected.body)} BODY; {os.cpu_count()} CPUs"
        )
        names = [s.label for s in servers]
        load = os.getloadavg()[0]
        if load > 0.5:
            print(f"note: load average {load:.1f} before the runs: other work shares the CPUs")
        versions = []
        if with_dovecot and DOVECOT_LABEL in names:
            versions.append(_dovecot_version())
        if PYMAP in names:
            versions.append(pymap_version)
        if versions:
            print("against " + ", ".join(versions))

        for server in servers:
            warm_run = session(server, users[0], warm)
            if warm_run.error:
                raise SystemExit(f"{server.label}: warm-up failed: {warm_run.error}")
        print(f"warm-up sessions ok ({WARMUP_MESSAGES} messages each)\n", flush=True)

        results: dict[str, list[Run]] = {s.label: [] for s in servers}
        if profile_out is not None and prof_tmp is not None:
            ours = servers[0]
            assert isinstance(ours, MraServer)
            hook = profile_hook(ours, prof_tmp, [_slug(p) for p in PHASES])
            run = session(ours, users[1], expected, hook)
            results[OURS].append(run)
            profile_out.mkdir(parents=True, exist_ok=True)
            for f in prof_tmp.glob("*.prof"):
                shutil.copy(f, profile_out / f.name)
            report(results, [OURS], args.messages)
            print_profiles(profile_out, run, args.top)
            if run.error:
                print(f"ERROR: {run.error}")
                status = 1
            return status

        for k in range(max(args.runs, args.pymap_runs)):
            turn = servers[k % len(servers) :] + servers[: k % len(servers)]
            for server in turn:
                limit = args.pymap_runs if server.label == PYMAP else args.runs
                if k >= limit:
                    continue
                t0 = time.perf_counter()
                run = session(server, users[1 + k], expected)
                results[server.label].append(run)
                took = time.perf_counter() - t0
                verdict = f"ERROR: {run.error}" if run.error else "verified"
                print(f"run {k + 1} {server.label:<8} {took:6.1f} s  {verdict}", flush=True)
        print()
        missed = report(results, names, args.messages)
        for server in servers:
            for note in server.notes:
                print(f"note: {note}")
            logged = server.problems()
            if logged:
                print(f"{server.label} logged {len(logged)} errors, e.g.: {logged[0][:200]}")
        errors = [r for rs in results.values() for r in rs if r.error]
        status = 1 if errors else 0
        if not errors:
            record(results, names, args.messages)
        if missed:
            shown_missed = ", ".join(shown(p, args.messages) for p in missed)
            print(f"phases missing a target: {shown_missed}")
        print(f"\n(total {time.perf_counter() - t_start:.0f} s)")
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr)
        status = 130
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return status


if __name__ == "__main__":
    sys.exit(main())
