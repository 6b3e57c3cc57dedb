"""The attacks of issue #17 that got through `mda`, each run against the real command.

Every test is named after its attack and failed before the fix it guards (SECURITY.md,
heading 5, says which rule each one checks). Tests of `|program` and `/file` targets need a
root-owned aliases file, so they run only as root, as CI does.
"""

from __future__ import annotations

import os
import pwd
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mda.conftest import MDA, MSG, ROOT, MdaEnv

needs_root = pytest.mark.skipif(not ROOT, reason="program targets need a root-owned aliases file")


def one_line(r: subprocess.CompletedProcess[bytes]) -> str:
    """stderr, which must be exactly one line (Postfix quotes it), without its newline."""
    assert r.stderr.count(b"\n") == 1 and r.stderr.endswith(b"\n"), r.stderr
    return r.stderr.decode()[:-1]


def nothing_delivered(env: MdaEnv) -> None:
    for user in ("alice@example.test", "bob@example.test", "carol@virt.test", "wendy"):
        assert env.messages(user) == [], user
    assert env.sendmail_log.read_bytes() == b""


def wait_for(path: Path, what: str) -> None:
    """Wait for a file a program writes (a bound only to say it did not hang)."""
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.01)


# --- 1. files anyone could have written are not obeyed ---------------------------------------


def evil_sendmail(env: MdaEnv) -> Path:
    """A program the attacker would like mda to run; it leaves a mark if it ever runs."""
    mark = env.base / "evil-ran"
    script = env.base / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {mark}\ncat > /dev/null\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("mode", [0o666, 0o664])
def test_attack_writable_config_is_not_obeyed(env: MdaEnv, mode: int) -> None:
    """Anyone who can write mra.toml points `[mda] sendmail` at their program and an alias at
    a remote address: mda must refuse the file (75), not run the program."""
    evil = evil_sendmail(env)
    env.aliases.write_text("postmaster: someone@evil.example\n")
    text = env.config.read_text().replace(str(env.sendmail), str(evil))
    env.config.write_text(text)
    env.config.chmod(mode)
    r = env.run("-f", "s@remote.test", "-r", "postmaster@example.test", stdin=MSG)
    line = one_line(r)
    assert r.returncode == 75, line
    kind = "world" if mode & 0o002 else "group"
    assert line.startswith(f"4.3.5 {env.config}: not trusted ({kind}-writable file)"), line
    assert not (env.base / "evil-ran").exists()
    nothing_delivered(env)


def test_attack_config_in_a_writable_directory_is_not_obeyed(env: MdaEnv) -> None:
    """A safe file in a directory anyone can write to can be renamed away and replaced."""
    env.etc.chmod(0o777)
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and f"world-writable directory {env.etc}" in one_line(r)
    nothing_delivered(env)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_attack_config_owned_by_another_user_is_not_obeyed(env: MdaEnv) -> None:
    os.chown(env.config, pwd.getpwnam("nobody").pw_uid, -1)
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and "owned by uid" in one_line(r)
    nothing_delivered(env)


def test_attack_config_cache_does_not_bypass_the_check(env: MdaEnv) -> None:
    """The cache written while mra.toml was safe must not be used once the file is not:
    chmod leaves size and mtime, which the cache's stamp had, unchanged."""
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    assert Path(f"{env.config}.cache").exists()
    env.config.chmod(0o666)
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and "world-writable file" in one_line(r)
    assert len(env.messages("alice@example.test")) == 1


@pytest.mark.parametrize(
    ("name", "address"),
    [
        ("aliases", "postmaster@example.test"),
        ("virtusertable", "info@virt.test"),
        ("access", "alice@example.test"),
        ("local-host-names", "postmaster@example.test"),
        ("passwd", "alice@example.test"),
    ],
)
def test_attack_writable_map_is_not_obeyed(env: MdaEnv, name: str, address: str) -> None:
    """A map anyone can write would let them route anybody's mail to themselves."""
    env.access.write_text("From:spammer.example REJECT\n")
    path = env.etc / name
    path.chmod(0o666)
    r = env.run("-f", "s@remote.test", "-r", address, stdin=MSG)
    line = one_line(r)
    assert r.returncode == 75, line
    assert f"{path}: not trusted (world-writable file)" in line
    nothing_delivered(env)


@pytest.mark.parametrize("how", ["world-writable", "group-writable", "in a world-writable dir"])
def test_attack_untrusted_include_is_not_followed(env: MdaEnv, how: str) -> None:
    """The list is neither bounced (lost) nor delivered following the file: retried."""
    where = env.etc
    if how.startswith("in"):
        where = env.base / "open"
        where.mkdir()
        where.chmod(0o777)
    inc = where / "list.inc"
    inc.write_text("bob@example.test\n")
    inc.chmod({"world-writable": 0o646, "group-writable": 0o664}.get(how, 0o644))
    env.aliases.write_text(f"list: alice, :include:{inc}\n")
    r = env.run("-f", "s@remote.test", "-r", "list@example.test", stdin=MSG)
    line = one_line(r)
    assert r.returncode == 75 and "not trusted" in line, line
    nothing_delivered(env)  # not even alice: the retry would give her a second copy


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_attack_include_owned_by_a_local_user_is_not_followed(env: MdaEnv) -> None:
    inc = env.etc / "list.inc"
    inc.write_text("bob@example.test\n")
    os.chown(inc, 1, 1)  # daemon: neither root nor the mail user
    env.aliases.write_text(f"list: :include:{inc}\n")
    r = env.run("-r", "list@example.test", stdin=MSG)
    assert r.returncode == 75 and "owned by uid 1" in one_line(r)
    # The mail user may keep the lists: it can write every mailbox anyway.
    os.chown(inc, env.uid, env.gid)
    assert env.run("-r", "list@example.test", stdin=MSG).returncode == 0
    assert len(env.messages("bob@example.test")) == 1


def test_attack_writable_global_sieve_script_is_not_run(env: MdaEnv) -> None:
    script = env.etc / "before.sieve"
    script.write_text('require ["fileinto"]; fileinto "Junk";\n')
    env.write_config(f'sieve_before = "{script}"\n')
    assert env.run("-d", "alice@example.test", stdin=MSG).returncode == 0
    script.write_text("discard;\n")
    script.chmod(0o666)
    r = env.run("-d", "alice@example.test", stdin=MSG)
    assert r.returncode == 75 and "not trusted (world-writable file)" in one_line(r)
    assert len(env.messages("alice@example.test")) == 1


# --- 2. control characters in envelope values --------------------------------------------------

INJECTED = "x@remote.test\nX-Injected: yes"


def assert_not_injected(env: MdaEnv) -> None:
    for user in ("alice@example.test", "wendy"):
        for stored in env.messages(user):
            assert b"X-Injected" not in stored


@pytest.mark.parametrize(
    ("args", "environ", "dsn"),
    [
        (["-f", INJECTED, "-d", "alice@example.test"], {}, "5.1.7"),
        (["-f", "x@remote.test\r\nX-Injected: yes", "-d", "alice@example.test"], {}, "5.1.7"),
        (["-d", "alice@example.test"], {"SENDER": INJECTED}, "5.1.7"),
        (["-a", "x\nX-Injected: yes", "-d", "alice@example.test"], {}, "5.1.3"),
        (["-d", "alice@example.test\nX-Injected: yes"], {}, "5.1.3"),
        (["-r", "alice@example.test\nX-Injected: yes"], {}, "5.1.3"),
        (["-m", "INBOX\nX", "-d", "alice@example.test"], {}, "5.3.5"),
    ],
)
def test_attack_control_characters_in_the_envelope_are_refused(
    env: MdaEnv, args: list[str], environ: dict[str, str], dsn: str
) -> None:
    r = env.run(*args, stdin=MSG, env=environ)
    line = one_line(r)  # the value's newline is shown as \x0a, never as a second line
    assert r.returncode == 64 and line.startswith(dsn), line
    assert "\\x0a" in line
    assert_not_injected(env)
    nothing_delivered(env)


@pytest.mark.parametrize("variable", ["RECIPIENT", "ORIGINAL_RECIPIENT", "EXTENSION", "USER"])
def test_attack_control_characters_in_postfix_environment_are_refused(
    env: MdaEnv, variable: str
) -> None:
    """Postfix's mailbox_command gets the recipient in the environment; Delivered-To used to
    be written from RECIPIENT as it was."""
    environ = {"SENDER": "s@remote.test", "RECIPIENT": "wendy@example.test", "USER": "wendy"}
    environ[variable] = environ.get(variable, "x") + "\nX-Injected: yes"
    r = env.run(stdin=MSG, env=environ)
    assert r.returncode == 64 and "\\x0a" in one_line(r)
    assert_not_injected(env)
    nothing_delivered(env)


def test_attack_control_character_in_a_program_target_environment(env: MdaEnv) -> None:
    """A sender that reaches a program's SENDER variable or the MTA's argv is checked first."""
    env.aliases.write_text("fwd: someone@far.test\n")
    r = env.run("-f", "a\x01b@remote.test", "-r", "fwd@example.test", stdin=MSG)
    assert r.returncode == 64 and "\\x01" in one_line(r)
    nothing_delivered(env)


# --- 3. one spelling of an address for every lookup ----------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        '"bob"@example.test',
        "\\bob@example.test",
        '"b\\ob"@example.test',
        "BOB@Example.TEST.",
        "<bob@example.test>",
        "<@relay.example:bob@example.test>",
    ],
)
def test_attack_quoted_recipient_does_not_bypass_access_reject(env: MdaEnv, spelling: str) -> None:
    env.access.write_text("To:bob@example.test REJECT\n")
    r = env.run("-f", "s@remote.test", "-r", spelling, stdin=MSG)
    line = one_line(r)
    assert r.returncode == 69 and line.startswith("5.2.1"), line
    nothing_delivered(env)


@pytest.mark.parametrize(
    ("entry", "sender"),
    [
        ("spammer.example", "X@SPAMMER.EXAMPLE"),
        ("spammer.example", "x@spammer.example."),
        ("spammer.example", '"x"@spammer.example'),
        ("spammer.example", "x@Sub.Spammer.Example."),
        ("spammer.example", "x@\uff53\uff50\uff41\uff4d\uff4d\uff45\uff52.example"),
        ("x@spammer.example", '"x"@spammer.example'),
        ("x@spammer.example", "\\x@spammer.example"),
        ("b\u00fccher.example", "x@xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "x@B\u00dcCHER.example"),
        ("b\u00fccher.example", "x@B\u00fccher.example."),
    ],
)
def test_attack_sender_spelling_does_not_bypass_access_reject(
    env: MdaEnv, entry: str, sender: str
) -> None:
    env.access.write_text(f"From:{entry} REJECT\n")
    r = env.run("-f", sender, "-d", "alice@example.test", stdin=MSG)
    line = one_line(r)
    assert r.returncode == 69 and line.startswith("5.7.1"), line
    nothing_delivered(env)


@pytest.mark.parametrize(
    ("address", "owner"),
    [
        ('"info"@virt.test', "bob@example.test"),  # virtusertable
        ("INFO@Virt.Test.", "bob@example.test"),
        ('"postmaster"@example.test', "alice@example.test"),  # aliases
        ("\\postmaster@example.test", "alice@example.test"),
        ('"alice"@EXAMPLE.test.', "alice@example.test"),  # the user database
    ],
)
def test_attack_every_map_sees_the_same_spelling(env: MdaEnv, address: str, owner: str) -> None:
    """The virtusertable, the aliases and the user database are asked with the canonical
    spelling too: one address, one answer, whichever map decides."""
    r = env.run("-f", "s@remote.test", "-r", address, stdin=MSG)
    assert r.returncode == 0, r.stderr
    assert len(env.messages(owner)) == 1


# --- 4. signals --------------------------------------------------------------------------------

# Every signal whose default action ends a process and that can be caught.
TERMINATING = sorted(
    {
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGTRAP,
        signal.SIGABRT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGALRM,
        signal.SIGTERM,
        signal.SIGXCPU,
        signal.SIGVTALRM,
        signal.SIGPROF,
        signal.SIGIO,
        signal.SIGPWR,
        signal.SIGSYS,
        getattr(signal, "SIGSTKFLT", signal.SIGTERM),
        signal.SIGRTMIN,
        signal.SIGRTMIN + 5,
        signal.SIGRTMAX,
    }
)
FAULTS = [signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE]


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIGRTMIN+{signum - signal.SIGRTMIN}"


def signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def wait_until_set(pid: int, signum: int, field: str = "SigCgt") -> None:
    """Wait until mda has set up its handling of `signum`, and of SIGRTMAX, the last it sets
    (Python catches SIGINT by itself from the start). A bound, not a timing."""
    want = (1 << (signum - 1)) | (1 << (signal.SIGRTMAX - 1))
    deadline = time.monotonic() + 10
    while (signal_mask(pid, field) | signal_mask(pid, "SigCgt")) & want != want:
        if time.monotonic() > deadline:
            return  # send it anyway: the exit status will tell
        time.sleep(0.002)


def start(env: MdaEnv, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [MDA, "--config", str(env.config), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("signum", TERMINATING, ids=name)
def test_attack_signal_while_reading_the_message_is_a_retry(env: MdaEnv, signum: int) -> None:
    proc = start(env, "-f", "s@remote.test", "-d", "alice@example.test")
    assert proc.stdin is not None
    proc.stdin.write(MSG[:30])
    proc.stdin.flush()
    wait_until_set(proc.pid, signum)
    proc.send_signal(signum)
    _, err = proc.communicate(MSG[30:], timeout=30)
    assert proc.returncode == 75, (proc.returncode, err)
    assert err == f"4.3.0 interrupted by signal {signum}\n".encode()
    assert env.messages("alice@example.test") == []


@needs_root
@pytest.mark.parametrize("signum", TERMINATING, ids=name)
def test_attack_signal_while_a_program_runs_is_a_retry(env: MdaEnv, signum: int) -> None:
    """A signal while a `|program` delivery runs: the program is stopped, mda exits 75."""
    spool = env.base / "spool"  # the program runs as nobody and writes its pid here
    spool.mkdir()
    os.chown(spool, env.uid, env.gid)
    pidfile = spool / "program.pid"
    script = env.etc / "slow.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}.tmp\nmv {pidfile}.tmp {pidfile}\nsleep 60\n")
    script.chmod(0o755)
    env.aliases.write_text(f'slow: "|{script}"\n')
    proc = start(env, "-f", "s@remote.test", "-r", "slow@example.test")
    assert proc.stdin is not None
    proc.stdin.write(MSG)
    proc.stdin.close()
    wait_for(pidfile, "the program's start")
    program = int(pidfile.read_text())
    proc.send_signal(signum)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert proc.returncode == 75, (proc.returncode, err)
    assert err.startswith(b"4.3.0 ") and f"signal {signum}".encode() in err
    deadline = time.monotonic() + 30
    while Path(f"/proc/{program}").exists() and "Z" not in _state(program):
        assert time.monotonic() < deadline, (
            "the program was left running",
            _state(program),
            Path(f"/proc/{program}/cmdline").read_bytes(),
            Path(f"/proc/{program}/status").read_text(),
        )
        time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_attack_signals_during_maildir_writes_leave_nothing_half_written(env: MdaEnv) -> None:
    """SIGUSR1 and SIGALRM at random points of real deliveries of a 2 MB message: never a death
    by signal, never a partial file or a tmp/ leftover, every acknowledged copy stored."""
    env.write_config("")
    text = env.config.read_text().replace("max_message_size = 100000", "max_message_size = 4000000")
    env.config.write_text(text)
    big = MSG + b"z" * 2_000_000 + b"\n"
    rng = random.Random(17)
    acknowledged = 0
    for i in range(24):
        proc = start(env, "-f", "s@remote.test", "-d", "alice@example.test")
        assert proc.stdin is not None
        signum = (signal.SIGUSR1, signal.SIGALRM)[i % 2]
        wait_until_set(proc.pid, signum)
        try:
            proc.stdin.write(big)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(rng.random() * 0.03)
        proc.send_signal(signum)
        proc.wait(timeout=30)
        assert proc.returncode in (0, 75), proc.returncode
        acknowledged += proc.returncode == 0
    stored = env.messages("alice@example.test")
    assert len(stored) >= acknowledged
    assert all(m.endswith(big) for m in stored)
    assert os.listdir(env.root_of("alice@example.test") / "tmp") == []


@pytest.mark.parametrize("signum", FAULTS, ids=name)
def test_fault_signals_sent_with_kill_do_not_kill(env: MdaEnv, signum: int) -> None:
    """SIGSEGV and friends are ignored (a Python handler would spin on a real fault): sent by
    someone, they change nothing and the delivery reports its true outcome."""
    proc = start(env, "-f", "s@remote.test", "-d", "alice@example.test")
    assert proc.stdin is not None
    proc.stdin.write(MSG[:30])
    proc.stdin.flush()
    wait_until_set(proc.pid, signum, "SigIgn")
    proc.send_signal(signum)
    _, err = proc.communicate(MSG[30:], timeout=30)
    assert (proc.returncode, err) == (0, b"")
    assert len(env.messages("alice@example.test")) == 1


# --- 5. memory ---------------------------------------------------------------------------------

# Runs mda as a child of a small process (this one would lend it its own peak: a vfork'd
# child's exec keeps the parent's high-water mark) and prints the child's peak RSS in KiB.
PEAK = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    os.dup2(fd, 0)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def measure(env: MdaEnv, message: Path, *args: str) -> tuple[int, bytes, int]:
    """(exit status, stderr, peak resident set size in bytes) of one delivery of `message`."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(message), MDA, "--config", str(env.config), *args],
        capture_output=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    code, kib = out.stdout.split()
    return int(code), out.stderr, int(kib) * 1024


def peak_rss(env: MdaEnv, message: Path, *args: str) -> int:
    """mda's peak resident set size, in bytes, for one successful delivery of `message`."""
    code, err, peak = measure(env, message, *args)
    assert code == 0, err
    return peak


def write_message(path: Path, size: int) -> Path:
    line = b"x" * 75 + b"\n"
    with open(path, "wb") as f:
        f.write(MSG)
        for _ in range(size // len(line)):
            f.write(line)
    return path


@pytest.fixture
def big_env(env: MdaEnv) -> Iterator[MdaEnv]:
    text = env.config.read_text()
    env.config.write_text(text.replace("max_message_size = 100000", "max_message_size = 10**9"))
    env.config.write_text(env.config.read_text().replace("10**9", "1000000000"))
    yield env


def test_attack_large_message_is_held_once(big_env: MdaEnv) -> None:
    """A 45 MB message made mda hold 143 MB (the read chunks and their join, the copy without
    the From_ line, the copy with the trace headers); now the buffer is the only copy."""
    env = big_env
    size = 24 * 1024 * 1024
    small = peak_rss(env, write_message(env.base / "small.eml", 0), "-d", "alice@example.test")
    message = write_message(env.base / "big.eml", size)
    big = peak_rss(env, message, "-d", "alice@example.test")
    assert big - small < 1.5 * size, (small, big)


@needs_root
@pytest.mark.parametrize("target", ["program", "mbox"])
def test_attack_large_message_to_a_program_or_mbox_is_held_once(
    big_env: MdaEnv, target: str
) -> None:
    env = big_env
    spool = env.base / "spool"
    spool.mkdir()
    os.chown(spool, env.uid, env.gid)
    env.aliases.write_text(f"program: \"|/bin/sh -c 'cat > /dev/null'\"\nmbox: {spool}/box\n")
    size = 24 * 1024 * 1024
    small_message = write_message(env.base / "small.eml", 0)
    small = peak_rss(env, small_message, "-r", f"{target}@example.test")
    big = peak_rss(env, write_message(env.base / "big.eml", size), "-r", f"{target}@example.test")
    assert big - small < 1.5 * size, (small, big)


@needs_root
def test_attack_program_output_is_not_held(env: MdaEnv) -> None:
    """A program writing 200 MB to stdout made mda hold twice that; now it is drained and
    only `[mda] max_program_output` bytes are kept, for the error line."""
    env.aliases.write_text(
        "noisy: \"|/bin/sh -c 'head -c 200000000 /dev/zero; echo; echo last words; exit 1'\"\n"
    )
    env.write_config("program_shell = false\nmax_program_output = 100\n")
    small = peak_rss(env, write_message(env.base / "m.eml", 0), "-d", "alice@example.test")
    code, err, peak = measure(env, env.base / "m.eml", "-r", "noisy@example.test")
    assert code == 69 and err.endswith(b"failed (1): last words\n"), err
    assert peak - small < 16 * 1024 * 1024, (small, peak)


# --- 6. descriptors ------------------------------------------------------------------------------


# Starts mda (by exec, so with the same pid) holding `secret` open on the descriptors named.
INHERIT = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for n in map(int, sys.argv[2].split(",")):
    os.dup2(fd, n, inheritable=True)
os.execv(sys.argv[3], sys.argv[3:])
"""


@needs_root
def test_attack_inherited_descriptors_reach_neither_mda_nor_programs(env: MdaEnv) -> None:
    """Descriptors left open by whoever started mda (here 3, 9, 1000 and the highest the limit
    allows) are closed before anything runs: the program, and mda itself while it waits for
    it, hold none of them."""
    secret = env.base / "secret"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    spool = env.base / "spool"
    spool.mkdir()
    os.chown(spool, env.uid, env.gid)
    listing, release = spool / "fds", spool / "go"
    script = env.etc / "fds.sh"
    script.write_text(
        f"#!/bin/sh\nls -l /proc/self/fd/ > {listing}.tmp\nmv {listing}.tmp {listing}\n"
        f"while [ ! -e {release} ]; do sleep 0.01; done\n"
    )
    script.chmod(0o755)
    env.aliases.write_text(f'fds: "|{script}"\n')
    import resource

    highest = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 20) - 1
    wanted = ",".join(str(n) for n in (3, 9, 1000, highest))
    argv = [sys.executable, "-c", INHERIT, str(secret), wanted, MDA]
    proc = subprocess.Popen(
        [*argv, "--config", str(env.config), "-r", "fds@example.test"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.stdin is not None
    proc.stdin.write(MSG)
    proc.stdin.close()
    wait_for(listing, "the program's start")
    held = []
    for entry in Path(f"/proc/{proc.pid}/fd").iterdir():
        try:
            held.append(os.readlink(entry))
        except OSError:
            pass  # closed in between
    release.touch()
    assert proc.wait(timeout=30) == 0
    assert str(secret) not in held
    assert str(secret) not in listing.read_text()


# --- 7. expansions that end nowhere ---------------------------------------------------------------


@pytest.mark.parametrize(
    "lists",
    [
        {"a": ":include:{a}"},  # includes itself
        {"a": ":include:{b}", "b": ":include:{a}"},  # A -> B -> A
        {"a": ""},  # empty
        {"a": "# nobody here any more\n\n"},
    ],
    ids=["self-including", "include-loop", "empty", "only-comments"],
)
def test_attack_list_expanding_to_nothing_is_not_a_silent_success(
    env: MdaEnv, lists: dict[str, str]
) -> None:
    paths = {name: env.etc / f"{name}.inc" for name in ("a", "b")}
    for name, text in lists.items():
        paths[name].write_text(text.format(**{k: str(v) for k, v in paths.items()}))
    env.aliases.write_text(f"list: :include:{paths['a']}\n")
    r = env.run("-f", "s@remote.test", "-r", "list@example.test", stdin=MSG)
    line = one_line(r)
    assert r.returncode == 78, line  # EX_CONFIG, as sendmail maps 5.4.6
    assert line.startswith("5.4.6") and "aliasing/forwarding loop broken" in line, line
    nothing_delivered(env)
