"""Delivery benchmark: `mda` as the MTA runs it, one process per message, side by side with
the bare interpreter, procmail and dovecot-lda.

    python -m bench.mda [--messages 200] [--aliases-sizes 10,100000] [--rounds 5]

Every row delivers the same N messages (about 3 KB each, with realistic headers), one process
each, stdin from a file as an MTA hands it over, into a fresh Maildir of its own. The rows are
interleaved in rounds (round 1 of every row, then round 2, ... with the order rotated), so a
slow spell of these noisy machines falls on all rows alike; only ratios measured in the same
run mean anything. After the run every Maildir must hold exactly the expected number of
messages in new/, so a failing delivery cannot pass for a fast one.

Rows:

* `python -I -S -c pass`: the venv's interpreter starting and exiting, the floor for any Python
  delivery agent and the reference of the targets;
* `mda -d USER` with a tiny configuration;
* `mda -r alias@example.test` through an aliases file of each size in --aliases-sizes (the
  compiled `.cdb` index is built beforehand with `mda --config C newaliases`);
* `mda -d USER` for a user whose `~/.dovecot.sieve` has 50 rules (`sieve_script`: what a
  filter editor writes, none of which matches, so every test runs and the mail goes to INBOX);
* `procmail -m procmailrc` with `DEFAULT=.../Maildir/` (Debian: `apt-get install procmail`;
  skipped if missing), run as root as an MTA's mailbox_command would;
* `dovecot-lda -c dovecot.conf -e -f SENDER` (Debian: `apt-get install dovecot-core`; skipped
  if missing), with a private dovecot.conf (INDEX=MEMORY), started as `nobody` directly (the
  userdb lookup of `-d USER` needs a running auth service).

As root, `mda` drops to `nobody` for each delivery (`[mda] mail_uid`), as in production.

The Sieve row measures the usual case, a script written long before the mail arrives: its
compiled form is cached beside it by the first delivery (mda/sieve/compiled.py), but not
while the script is younger than the cache's racy window (`RACY_SECONDS`). The run waits out
that window before the warm-up deliveries, and stops if the cache was not written.

Targets (the issues'): mda per message at most 2x the bare interpreter's start-up; the 10- and
100,000-line aliases files within 10% of each other; the 50-rule Sieve script at most 20% over
the same delivery without one (issue #13).
"""

from __future__ import annotations

import argparse
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.results import Chart, Recorder
from mda.sieve.compiled import RACY_SECONDS, cache_path

MDA = str(Path(sys.executable).parent / "mda")
PROCMAIL = shutil.which("procmail", path="/usr/bin:/bin:/usr/local/bin")
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
ROOT = os.geteuid() == 0
DOMAIN = "example.test"
ALIAS = "alias"  # -r alias@example.test
SENDER = "sender@remote.test"
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


# ----------------------------------------------------------------------------------------------
# Messages


_BODY = (
    "Hi all,\n\n"
    "Following up on Tuesday's meeting, here is the summary of what we agreed on and the open\n"
    "points. Please correct me if I misremembered anything; I would like to send the final\n"
    "version to the steering group by the end of the week.\n\n"
    "1. The migration of the remaining mailboxes starts on the 14th, one domain per night.\n"
    "2. Quotas stay as they are until the new storage is in place; no exceptions for now.\n"
    "3. The old relay keeps accepting mail for two more weeks, then it only bounces.\n"
    "4. Backups: nightly snapshots are kept for 30 days, weekly ones for six months.\n\n"
    "Open points:\n"
    "- who answers the support queue during the switch-over weekend;\n"
    "- whether the archive accounts move in the first or the last batch;\n"
    "- the wording of the announcement to users (draft attached in the wiki).\n\n"
    "> On Tue, Mar 4, 2025 at 10:12 AM Bob <bob@example.test> wrote:\n"
    "> I can take the Saturday shift, but somebody else needs to cover Sunday.\n"
    "> Also, let's make sure the monitoring alerts go to the new list before we start.\n\n"
    "Thanks for the quick turnaround on the storage quote, by the way: the numbers look\n"
    "reasonable and I have forwarded them to purchasing with a note to hurry.\n\n"
    "Thanks,\n-- \nAlice\n"
)


def make_message(i: int) -> bytes:
    """A plausible ~3 KB message: a relay trail, the usual headers, a text body."""
    headers = (
        f"Return-Path: <{SENDER}>\n"
        f"Received: from mx.remote.test (mx.remote.test [192.0.2.{i % 250 + 1}])\n"
        f"\tby mail.{DOMAIN} (Postfix) with ESMTPS id 4Z{i:08X}\n"
        f"\tfor <{ALIAS}@{DOMAIN}>; Tue, 4 Mar 2025 10:{i % 60:02d}:17 +0100 (CET)\n"
        "Received: from [10.0.0.7] (unknown [198.51.100.23])\n"
        "\t(Authenticated sender: sender)\n"
        "\tby mx.remote.test (Postfix) with ESMTPSA id 7A1B2C3D4E\n"
        f"\tfor <{ALIAS}@{DOMAIN}>; Tue, 4 Mar 2025 10:{i % 60:02d}:15 +0100 (CET)\n"
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=remote.test; s=mail;\n"
        "\tt=1741079715; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
        "\th=Date:From:To:Subject:From;\n"
        "\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSwganVzdCBzb21lIGJ5dGVzIG9mIHRoZSByaWdo\n"
        "\t dCBsZW5ndGggdG8gbG9vayBsaWtlIG9uZSBpbiB0aGUgaGVhZGVyIG9mIGEgcmVhbCBtZXNzYWdl\n"
        f"Message-ID: <{i}.{int(time.time())}.bench@remote.test>\n"
        "Date: Tue, 4 Mar 2025 10:12:14 +0100\n"
        "MIME-Version: 1.0\n"
        "User-Agent: Mozilla Thunderbird\n"
        "Content-Language: en-US\n"
        f"To: Team <{ALIAS}@{DOMAIN}>\n"
        "Cc: Bob <bob@example.test>, Carol <carol@example.test>\n"
        "From: Sender Person <sender@remote.test>\n"
        f"Subject: Re: migration plan, notes from Tuesday (#{i})\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
        "Content-Transfer-Encoding: 7bit\n"
    )
    body = (
        _BODY
        + "\n"
        + "".join(f"[{n}] https://wiki.example.test/migration/{n}\n" for n in range(12))
    )
    return (headers + "\n" + body).encode()


# ----------------------------------------------------------------------------------------------
# Set-up of each row


def mail_ids() -> tuple[int, int]:
    """Who owns the Maildirs: nobody as root (deliveries drop to it), else ourselves."""
    if ROOT:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def count_new(maildir: Path) -> int:
    try:
        return len(os.listdir(maildir / "new"))
    except FileNotFoundError:
        return 0


def sieve_script(rules: int = 50) -> str:
    """A filter set as Roundcube's or Thunderbird's editors write them: `rules` rules of the
    usual kinds (header, address, envelope, size, exists, anyof/allof, :matches, :regex,
    variables), none matching the benchmark's messages."""
    kinds = [
        'if header :contains "subject" "[list-{i}]" {{ fileinto "Lists.l{i}"; stop; }}',
        'if address :is "from" "sender{i}@lists.example" {{ fileinto "From.s{i}"; }}',
        'if address :domain :is ["from", "sender"] "domain{i}.example" {{ fileinto "D{i}"; }}',
        'if header :matches "list-id" "*<list{i}.example.org>*" {{ fileinto "L{i}"; stop; }}',
        'if anyof (header :contains "x-spam-flag" "YES{i}", size :over {size}M) '
        '{{ fileinto "Junk"; stop; }}',
        'if allof (exists "x-mailer-{i}", header :is "x-priority" "{i}") '
        '{{ addflag "\\\\Flagged"; }}',
        'if envelope :detail "to" "tag{i}" {{ fileinto :create "Plus.tag{i}"; }}',
        'if header :regex "subject" "^ticket #{i}[0-9]+:" {{ fileinto "Tickets"; }}',
        'if header :matches "subject" "*invoice {i} *" {{ set "n" "${{1}}"; '
        'fileinto "Invoices.${{n}}"; }}',
        'if not header :contains "to" ["team{i}@", "all{i}@"] {{ }} else {{ fileinto "Team{i}"; }}',
    ]
    lines = [
        'require ["fileinto", "imap4flags", "envelope", "subaddress", "mailbox", "regex", '
        '"variables"];'
    ]
    for i in range(rules):
        lines.append(f"# rule:[rule {i}]")
        lines.append(kinds[i % len(kinds)].format(i=i, size=100 + i))
    return "\n".join(lines) + "\n"


@dataclass
class Row:
    label: str
    argv: list[str]
    maildir: Path | None  # None: delivers nothing (the bare interpreter)
    ids: tuple[int, int] | None = None  # run the process as this (uid, gid) (dovecot-lda)
    env: dict[str, str] = field(default_factory=lambda: dict(ENV))
    times: list[float] = field(default_factory=list)  # seconds per round
    cpu: list[float] = field(default_factory=list)  # CPU seconds (user + system) per round
    counts: list[int] = field(default_factory=list)  # messages per round
    failures: list[str] = field(default_factory=list)

    def run_one(self, msg_path: Path) -> None:
        with open(msg_path, "rb") as stdin:
            uid, gid = self.ids if self.ids is not None else (None, None)
            proc = subprocess.run(
                self.argv,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self.env,
                check=False,
                user=uid,
                group=gid,
                extra_groups=None if self.ids is None else [],
            )
        if proc.returncode != 0 and len(self.failures) < 3:
            err = proc.stderr.decode(errors="replace").strip()
            self.failures.append(f"exit {proc.returncode}: {err[-400:]}")

    def run_round(self, msgs: list[Path]) -> None:
        c0 = children_cpu()
        t0 = time.perf_counter()
        for path in msgs:
            self.run_one(path)
        self.times.append(time.perf_counter() - t0)
        self.cpu.append(children_cpu() - c0)
        self.counts.append(len(msgs))

    @property
    def total(self) -> float:
        return sum(self.times)

    @property
    def n(self) -> int:
        return sum(self.counts)

    @property
    def per_msg(self) -> float:
        """Seconds per message over the whole run."""
        return self.total / self.n

    @property
    def cpu_per_msg(self) -> float:
        """CPU seconds (user + system, of the delivery processes) per message: what the
        targets compare, less sensitive than wall time to the other loads of the machine."""
        return sum(self.cpu) / self.n

    @property
    def median_round(self) -> float:
        """Seconds per message in the median round (less sensitive to one slow spell)."""
        return statistics.median(t / c for t, c in zip(self.times, self.counts, strict=True))


def children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Setup:
    """Everything under one temporary directory that nobody can traverse."""

    def __init__(self, base: Path, alias_sizes: list[int], mda: str = MDA) -> None:
        self.base = base
        self.mda = mda
        self.uid, self.gid = mail_ids()
        self.etc = base / "etc"
        self.vmail = base / "vmail"
        self.etc.mkdir()
        self.vmail.mkdir()
        os.chown(self.vmail, self.uid, self.gid)
        self.users = ["direct", "sieve50"] + [f"aliased{size}" for size in alias_sizes]
        self.passwd = self.etc / "passwd"
        self.passwd.write_text(
            "".join(
                f"{user}@{DOMAIN}:{{PLAIN}}x:{self.uid}:{self.gid}::{base}/home/{user}::\n"
                for user in self.users
            )
        )
        for user in self.users:
            home = base / "home" / user
            home.mkdir(parents=True)
            os.chown(home, self.uid, self.gid)
        # Pigeonhole's layout: ~/.dovecot.sieve -> sieve/filters.sieve
        sieve_dir = base / "home" / "sieve50" / "sieve"
        sieve_dir.mkdir()
        (sieve_dir / "filters.sieve").write_text(sieve_script(50))
        self.sieve_written = time.time()
        self.sieve_cache = Path(cache_path(str(sieve_dir / "filters.sieve")))
        (base / "home" / "sieve50" / ".dovecot.sieve").symlink_to("sieve/filters.sieve")
        for path in (sieve_dir, sieve_dir / "filters.sieve"):
            os.chown(path, self.uid, self.gid)
        (self.etc / "local-host-names").write_text(f"{DOMAIN}\n")
        (self.etc / "virtusertable").write_text("")
        (self.etc / "access").write_text("")
        self.tiny = self.write_config("tiny", self.etc / "no-aliases")

    def write_config(self, name: str, aliases: Path) -> Path:
        config = self.etc / f"{name}.toml"
        config.write_text(
            f'[auth]\npasswd_file = "{self.passwd}"\n'
            f'[mail]\nlocation = "{self.vmail}/%d/%n"\n'
            f'[maps]\naliases = "{aliases}"\nvirtusertable = "{self.etc}/virtusertable"\n'
            f'access = "{self.etc}/access"\nlocal_domains = "{self.etc}/local-host-names"\n'
            "[mda]\n" + ('mail_uid = "nobody"\n' if ROOT else "")
        )
        return config

    def maildir_of(self, user: str) -> Path:
        return self.vmail / DOMAIN / user

    def aliases_config(self, size: int) -> Path:
        """A config whose aliases file has `size` lines, ours among them, indexed beforehand."""
        path = self.etc / f"aliases-{size}"
        target = f"aliased{size}"
        fixed = ["postmaster: root", f"root: {target}", "abuse: postmaster"]
        filler = max(0, size - 2 - len(fixed))  # the comment line, our alias, the fixed ones
        lines = [f"# {size} lines, generated by bench.mda"]
        for i in range(filler):
            if i == filler // 2:
                lines.append(f"{ALIAS}: {target}")  # in the middle of a big file
            if i % 10 == 0:
                lines.append(f"list{i:06d}: user{i:06d}, user{i + 1:06d}@{DOMAIN}, ops@remote.test")
            elif i % 10 == 1:
                lines.append(f"User.Name{i:06d}: user{i:06d}")
            else:
                lines.append(f"user{i:06d}: person{i:06d}@remote.test")
        if filler == 0:
            lines.append(f"{ALIAS}: {target}")
        lines += fixed
        path.write_text("\n".join(lines) + "\n")
        config = self.write_config(f"aliases-{size}", path)
        out = subprocess.run(
            [self.mda, "--config", str(config), "newaliases"],
            capture_output=True,
            env=ENV,
            check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"mda newaliases failed: {out.stderr.decode(errors='replace')}")
        if not Path(f"{path}.cdb").exists():
            raise SystemExit(f"mda newaliases built no {path}.cdb")
        return config

    def procmail_row(self) -> Row | None:
        if PROCMAIL is None:
            return None
        home = self.base / "procmail"
        home.mkdir()  # procmail creates Maildir/{cur,new,tmp}, but not its parent
        rc = home / "procmailrc"
        rc.write_text(f"DEFAULT={home}/Maildir/\n")
        return Row("procmail -m rc (DEFAULT=Maildir/)", [PROCMAIL, "-m", str(rc)], home / "Maildir")

    def dovecot_row(self) -> Row | None:
        if not os.access(DOVECOT_LDA, os.X_OK):
            return None
        home = self.base / "dovecot"
        run = home / "run"
        run.mkdir(parents=True)
        os.chown(home, self.uid, self.gid)
        os.chown(run, self.uid, self.gid)
        conf = self.etc / "dovecot.conf"
        conf.write_text(
            "protocols =\n"
            f"base_dir = {run}\n"
            f"state_dir = {run}\n"
            f"mail_location = maildir:{home}/Maildir:INDEX=MEMORY\n"
            "log_path = /dev/stderr\n"
            "info_log_path = /dev/null\n"
            "ssl = no\n"
        )
        env = {**ENV, "HOME": str(home), "USER": pwd.getpwuid(self.uid).pw_name}
        argv = [DOVECOT_LDA, "-c", str(conf), "-e", "-f", SENDER]
        return Row(
            "dovecot-lda -c conf -e" + (" (as nobody)" if ROOT else ""),
            argv,
            home / "Maildir",
            ids=(self.uid, self.gid) if ROOT else None,
            env=env,
        )


# ----------------------------------------------------------------------------------------------
# The run


def run_rows(rows: list[Row], msgs: list[Path], rounds: int, warmup: int) -> None:
    for row in rows:
        for path in msgs[:warmup]:
            row.run_one(path)
    chunks = [msgs[r::rounds] for r in range(rounds)]
    for r, chunk in enumerate(chunks):
        order = rows[r % len(rows) :] + rows[: r % len(rows)]
        for row in order:
            row.run_round(chunk)


def check(rows: list[Row], warmup: int) -> list[str]:
    problems = []
    for row in rows:
        if row.failures:
            problems.append(f"{row.label}: failed deliveries: {row.failures[0]}")
        if row.maildir is None:
            continue
        expected = warmup + row.n
        found = count_new(row.maildir)
        if found != expected:
            problems.append(f"{row.label}: {found} messages in {row.maildir}/new, not {expected}")
    return problems


def report(rows: list[Row], bare: Row, alias_rows: dict[int, Row], others: list[Row]) -> None:
    ref = bare.per_msg
    width = max(len(row.label) for row in rows)
    print(
        f"{'':{width}}  {'n':>4}  {'total s':>7}  {'ms/msg':>7}  {'median':>7}  "
        f"{'cpu ms':>7}  {'msg/s':>6}  {'x bare':>6}"
    )
    for row in rows:
        print(
            f"{row.label:{width}}  {row.n:>4}  {row.total:>7.2f}  {row.per_msg * 1e3:>7.2f}  "
            f"{row.median_round * 1e3:>7.2f}  {row.cpu_per_msg * 1e3:>7.2f}  "
            f"{1 / row.per_msg:>6.0f}  {row.per_msg / ref:>6.2f}"
        )
    print(
        f"\n(median: ms/msg of the median round; cpu ms: CPU (user + system) per message; "
        f"x bare: ms/msg over {bare.label!r}; load average {os.getloadavg()[0]:.1f})"
    )

    mda_rows = [row for row in rows if row.label.startswith("mda")]
    print("\nTargets")
    for row in mda_rows:
        ratio = row.per_msg / ref
        verdict = "ok" if ratio <= 2.0 else "MISSED"
        print(f"  {row.label:{width}}  {ratio:5.2f}x bare start-up (target <= 2.00x)  {verdict}")
    sizes = sorted(alias_rows)
    if len(sizes) >= 2:
        small, big = alias_rows[sizes[0]], alias_rows[sizes[-1]]
        diff = big.per_msg / small.per_msg - 1
        verdict = "ok" if abs(diff) <= 0.10 else "MISSED"
        print(
            f"  aliases {sizes[-1]:,} vs {sizes[0]:,} lines: {diff:+.1%} per message "
            f"(median rounds {big.median_round / small.median_round - 1:+.1%}; "
            f"target within 10%)  {verdict}"
        )
    if others:
        print("\nmda vs the others (ms/msg ratio; above 1 means mda is slower)")
        print(f"  {'':{width}}  " + "  ".join(f"{o.label.split()[0]:>12}" for o in others))
        for row in mda_rows:
            cells = "  ".join(f"{row.per_msg / o.per_msg:>11.2f}x" for o in others)
            print(f"  {row.label:{width}}  {cells}")


def record(rows: list[Row], bare: Row, count: int, rounds: int) -> None:
    recorder = Recorder(
        "mda", f"{count} deliveries per row, one process each, {rounds} interleaved rounds."
    )
    recorder.table(
        "Deliveries",
        ["", "ms/msg", "median round ms/msg", "CPU ms/msg", "msg/s", "x bare"],
        [
            [
                row.label,
                f"{row.per_msg * 1e3:.2f}",
                f"{row.median_round * 1e3:.2f}",
                f"{row.cpu_per_msg * 1e3:.2f}",
                f"{1 / row.per_msg:.0f}",
                f"{row.per_msg / bare.per_msg:.2f}",
            ]
            for row in rows
        ],
    )
    shown = [row for row in rows if row is not bare]
    recorder.chart(
        Chart(
            "Deliveries per second, one process each",
            "bar",
            "",
            "messages/s",
            [row.label for row in shown],
            {"messages/s": [1 / row.per_msg for row in shown]},
        )
    )
    recorder.save()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mda", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200, help="deliveries per row")
    parser.add_argument(
        "--aliases-sizes", default="10,100000", help="lines of the aliases files, comma-separated"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed deliveries first, per row (at least 1)"
    )
    parser.add_argument(
        "--mda",
        default=MDA,
        help="the mda command to measure (another checkout's launcher, to compare)",
    )
    args = parser.parse_args(argv)
    mda = args.mda
    sizes = [int(s) for s in args.aliases_sizes.split(",") if s.strip()]
    count = args.messages
    rounds = max(1, min(args.rounds, count))
    warmup = max(1, args.warmup)  # at least one: it writes the Sieve cache

    if not os.access(mda, os.X_OK):
        print(f"no {mda}: run `make` (or `python -m mda.launcher {mda}`) first", file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="bench-mda-"))
    try:
        base.chmod(0o755)  # nobody must be able to reach its Maildirs
        t0 = time.perf_counter()
        setup = Setup(base, sizes, mda)
        msg_dir = base / "messages"
        msg_dir.mkdir()
        msgs = []
        for i in range(max(count, warmup)):
            path = msg_dir / f"{i:05d}.eml"
            path.write_bytes(make_message(i))
            msgs.append(path)
        sizes_b = [p.stat().st_size for p in msgs]
        bare = Row(
            f"{Path(sys.executable).name} -I -S -c pass",
            [sys.executable, "-I", "-S", "-c", "pass"],
            None,
        )
        rows = [bare]
        rows.append(
            Row(
                "mda -d user (tiny config)",
                [mda, "--config", str(setup.tiny), "-f", SENDER, "-d", f"direct@{DOMAIN}"],
                setup.maildir_of("direct"),
            )
        )
        sieve_row = Row(
            "mda -d user (50-rule Sieve script)",
            [mda, "--config", str(setup.tiny), "-f", SENDER, "-d", f"sieve50@{DOMAIN}"],
            setup.maildir_of("sieve50"),
        )
        rows.append(sieve_row)
        alias_rows: dict[int, Row] = {}
        for size in sizes:
            config = setup.aliases_config(size)
            alias_rows[size] = Row(
                f"mda -r alias ({size:,}-line aliases)",
                [mda, "--config", str(config), "-f", SENDER, "-r", f"{ALIAS}@{DOMAIN}"],
                setup.maildir_of(f"aliased{size}"),
            )
            rows.append(alias_rows[size])
        others = []
        pm = setup.procmail_row()
        if pm is None:
            print("procmail: not installed, row skipped (apt-get install procmail)")
        else:
            others.append(pm)
        dv = setup.dovecot_row()
        if dv is None:
            print(f"dovecot-lda: no {DOVECOT_LDA}, row skipped (apt-get install dovecot-core)")
        else:
            others.append(dv)
        rows += others
        print(
            f"{count} messages of {min(sizes_b)}-{max(sizes_b)} bytes per row, one process each, "
            f"{rounds} interleaved rounds, {warmup} warm-up deliveries per row "
            f"(set-up {time.perf_counter() - t0:.1f} s)\n"
        )
        # Out of the racy window, so that the warm-up writes the compiled cache (above).
        time.sleep(max(0.0, setup.sieve_written + RACY_SECONDS + 0.1 - time.time()))
        run_rows(rows, msgs[:count], rounds, warmup)
        if not setup.sieve_cache.exists():
            print(f"ERROR: no Sieve cache {setup.sieve_cache} after the warm-up", file=sys.stderr)
            return 1
        report(rows, bare, alias_rows, others)
        plain = rows[1]
        extra = sieve_row.per_msg / plain.per_msg - 1
        extra_cpu = sieve_row.cpu_per_msg / plain.cpu_per_msg - 1
        verdict = "ok" if max(extra, extra_cpu) <= 0.20 else "MISSED"
        print(
            f"  50-rule Sieve script: {extra:+.1%} per message over {plain.label!r} "
            f"(median rounds {sieve_row.median_round / plain.median_round - 1:+.1%}; "
            f"CPU {extra_cpu:+.1%}; target at most +20%, in time and in CPU)  {verdict}"
        )
        problems = check(rows, warmup)
        for problem in problems:
            print(f"ERROR: {problem}", file=sys.stderr)
        if not problems:
            record(rows, bare, count, rounds)
        return 1 if problems else 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
