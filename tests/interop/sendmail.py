"""Run a real, private sendmail 8.17 (Debian 12's) beside Postfix, for end-to-end tests.

Debian's sendmail packages conflict with Postfix, so they are not installed: `apt-get
download sendmail-bin sendmail-base sendmail-cf` and `dpkg-deb -x` unpack them below
SENDMAIL_ROOT (`.ci/run` does it; `ensure_sendmail()` does it when it is missing and apt can),
and the binary runs from there with its own configuration (`-C`), port, queue and maps:

* the .cf is built with m4 from a .mc, with the cf/ tree of the sendmail-cf package;
* the maps are built with the package's `makemap hash`, the aliases with `sendmail -bi`;
* the daemon runs in the foreground (`-bD`) on 127.0.0.1:PORT and is stopped with SIGTERM;
* nothing leaves the machine: no smart host, no DNS (`service.switch`: hosts from files).

Before it reads its configuration, sendmail qualifies the machine's host name (daemon.c,
myhostname()): a name without a dot ("vm" here) is looked up in DNS, and if that fails it
sleeps 60 s ("My unqualified host name (vm) unknown; sleeping for retry") and asks again.
So every sendmail command runs in namespaces of its own (`unshare --uts --mount`, root only)
where the host name is HOSTNAME and /etc/hosts is a private file naming it: the name is
qualified from that file, no DNS query is sent and nothing waits. The machine's own host name
and /etc/hosts are untouched (the mount is private to the namespace).

Facts this harness relies on (checked against 8.17.1.9-2+deb12u2):

* sendmail logs to syslog only, and no syslog daemon runs here: what a delivery did is read
  from the Maildirs, from the DSNs it sends back to the sender (a local mailbox), and from the
  queue (`sendmail -bp`), which shows a deferred message with its reason.
* sendmail clears its environment (main.c: `environ = emptyenviron`) before it initialises
  Cyrus SASL, and registers no config-path callback (only SASL_CB_VERIFYFILE and
  SASL_CB_PROXY_POLICY): libsasl2 can only read `Sendmail.conf` from its compiled-in path,
  /etc/sasl2 on Debian. `sasl_config()` writes it there for the SMTP AUTH test (only where no
  Sendmail.conf exists: sendmail is not installed on these machines, so nothing else reads it)
  and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

# Not below /tmp or /var/tmp: sendmail refuses its files where any directory on the way is
# world-writable, sticky or not ("World writable directory /tmp").
SENDMAIL_ROOT = Path(os.environ.get("MRA_SENDMAIL_ROOT", "/var/cache/mra-sendmail"))
PACKAGES = ("sendmail-bin", "sendmail-base", "sendmail-cf")
SASL_CONF = Path("/etc/sasl2/Sendmail.conf")
HOSTNAME = "mx.example.test"
COMMAND_TIMEOUT = 120.0
DEFAULT_TIMEOUT = 60.0


def binary(name: str = "sendmail") -> Path:
    return SENDMAIL_ROOT / "usr" / "libexec" / "sendmail" / name


def cf_dir() -> Path:
    return SENDMAIL_ROOT / "usr" / "share" / "sendmail" / "cf"


def missing() -> str:
    """Why the private sendmail cannot run ("" when it can)."""
    for path in (binary(), binary("makemap"), cf_dir() / "m4" / "cf.m4"):
        if not path.exists():
            return f"{path} is missing"
    for tool in ("m4",):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"{tool} is not installed (Debian package {tool})"
    return ""


def install(root: Path = SENDMAIL_ROOT) -> str:
    """`apt-get download` the packages and unpack them below `root`; "" or what failed."""
    return unpack_debs(PACKAGES, root, COMMAND_TIMEOUT)


def unpack_debs(packages: Sequence[str], root: Path, timeout: float) -> str:
    """`apt-get download` `packages` and `dpkg-deb -x` them below `root`, for an MTA that
    cannot be installed beside Postfix (sendmail here, Exim in test_exim.py): "" or what
    failed."""
    with tempfile.TemporaryDirectory(prefix="mta-debs-") as tmp:
        try:
            got = subprocess.run(
                ["apt-get", "download", "-q", *packages],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"apt-get download failed: {exc}"
        debs = sorted(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or len(debs) != len(packages):
            return f"apt-get download {' '.join(packages)} failed: {got.stderr.strip()[-500:]}"
        root.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            unpacked = subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True
            )
            if unpacked.returncode != 0:
                return f"dpkg-deb -x {deb.name} failed: {unpacked.stderr.strip()}"
    return ""


def ensure_sendmail() -> str:
    """ "" when the private sendmail can run, installing it first if it is missing."""
    problem = missing()
    if problem and os.geteuid() == 0:
        failed = install()
        problem = missing() if not failed else f"{problem}; {failed}"
    return problem


def instance_dir(prefix: str) -> Path:
    """A fresh mode-0755 directory for one instance, below SENDMAIL_ROOT/run: root-owned all
    the way up, none of it world-writable (sendmail's rule), every user may pass (mda writes
    the Maildirs below it as the mail user). The caller removes it."""
    parent = SENDMAIL_ROOT / "run"
    parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SendmailError(Exception):
    pass


def mc_text(base: Path, port: int, mda_argv: str, mda_path: str, extra: str = "") -> str:
    """The .mc: the tutorial's features, every file below `base`, the daemon on loopback."""
    return f"""divert(-1)
dnl A private sendmail for tests: every file below {base}, listening on 127.0.0.1:{port}.
divert(0)dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `mx.example.test')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `{base}/service.switch')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`QUEUE_DIR', `{base}/queue')dnl
define(`confPID_FILE', `{base}/sendmail.pid')dnl
define(`STATUS_FILE', `{base}/statistics')dnl
define(`ALIAS_FILE', `{base}/aliases')dnl
define(`confCW_FILE', `{base}/local-host-names')dnl
define(`confHELP_FILE', `{base}/helpfile')dnl
define(`confDELIVERY_MODE', `background')dnl
define(`confTO_QUEUEWARN', `0')dnl
define(`confPRIVACY_FLAGS', `authwarnings')dnl
FEATURE(`use_cw_file')dnl
FEATURE(`nocanonify')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`access_db', `hash -T<TMPF> {base}/access')dnl
FEATURE(`blocklist_recipients')dnl
FEATURE(`virtusertable', `hash {base}/virtusertable')dnl
FEATURE(`local_procmail', `{mda_path}', `{mda_argv}')dnl
dnl The users are mda's (its passwd-file), not /etc/passwd's: sendmail must not look them up.
MODIFY_MAILER_FLAGS(`LOCAL', `-w')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name=MTA')dnl
{extra}MAILER(`local')dnl
MAILER(`smtp')dnl
"""


class SendmailInstance:
    """A private sendmail below `base` (see the module documentation)."""

    def __init__(
        self,
        base: Path,
        *,
        mda_path: str,
        mda_argv: str,
        local_domains: list[str],
        aliases: str = "",
        virtusertable: str = "",
        access: str = "",
        mc_extra: str = "",
        resolvable: tuple[str, ...] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base = base
        self.port = free_port()
        self.timeout = timeout
        self.cf = base / "sendmail.cf"
        self.queue_dir = base / "queue"
        self.proc: subprocess.Popen[bytes] | None = None
        self.mc = mc_text(base, self.port, mda_argv, mda_path, mc_extra)
        self.hosts = base / "hosts"
        self.files = {
            "local-host-names": "".join(d + "\n" for d in local_domains),
            "aliases": aliases,
            "virtusertable": virtusertable,
            "access": access,
            "service.switch": "hosts files\naliases files\n",
            "helpfile": "",
            # Names sendmail looks up: its own, and the mail domains of the tests (a sender's
            # domain must resolve, `Domain of sender address ... does not exist`).
            "hosts": f"127.0.0.1 localhost {HOSTNAME} {' '.join(resolvable)}\n::1 localhost\n",
            "statistics": "",
        }

    # -- building ----------------------------------------------------------------------------

    def run(self, *argv: str, stdin: bytes = b"", check: bool = True) -> str:
        proc = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        if check and proc.returncode != 0:
            raise SendmailError(f"{' '.join(argv)} exited {proc.returncode}:\n{out}")
        return out

    def isolated(self, *argv: str) -> list[str]:
        """`argv` run with HOSTNAME as the host name and our hosts file as /etc/hosts."""
        script = 'hostname "$0" && mount --bind "$1" /etc/hosts && shift && exec "$@"'
        return ["unshare", "--uts", "--mount", "sh", "-c", script, HOSTNAME, str(self.hosts), *argv]

    def sendmail(self, *args: str, check: bool = True) -> str:
        return self.run(*self.isolated(str(binary()), "-C", str(self.cf), *args), check=check)

    def build(self) -> None:
        self.base.mkdir(mode=0o755, exist_ok=True)
        self.queue_dir.mkdir(mode=0o700, exist_ok=True)
        for name, text in self.files.items():
            path = self.base / name
            path.write_text(text)
            path.chmod(0o644)
        (self.base / "sendmail.mc").write_text(self.mc)
        cf = self.run(
            "m4",
            f"-D_CF_DIR_={cf_dir()}/",
            str(cf_dir() / "m4" / "cf.m4"),
            str(self.base / "sendmail.mc"),
        )
        self.cf.write_text(cf)
        self.cf.chmod(0o644)
        for name in ("virtusertable", "access"):
            path = self.base / name
            self.run(
                str(binary("makemap")),
                "-C",
                str(self.cf),
                "hash",
                str(path),
                stdin=path.read_bytes(),
            )
        self.sendmail("-bi")

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Self:
        self.build()
        self.proc = subprocess.Popen(
            self.isolated(str(binary()), "-C", str(self.cf), "-bD", "-q10s"),
            stdin=subprocess.DEVNULL,
            stdout=open(self.base / "daemon.out", "wb"),  # noqa: SIM115 (kept for the daemon)
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SendmailError(f"sendmail exited {self.proc.returncode}: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.settimeout(self.timeout)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise SendmailError(f"sendmail did not answer on port {self.port}: {self.output()}")

    def output(self) -> str:
        try:
            return (self.base / "daemon.out").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the queue ---------------------------------------------------------------------------

    def queue(self) -> str:
        """`mailq` of this instance: empty when nothing waits."""
        out = self.sendmail("-bp", check=False)
        return "" if "is empty" in out else out

    def wait_until(
        self, condition: Callable[[], bool], what: str, details: Callable[[], str] | None = None
    ) -> None:
        deadline = time.monotonic() + self.timeout
        while not condition():
            if time.monotonic() > deadline:
                extra = details() if details else ""
                raise SendmailError(f"timed out waiting for {what}\nqueue: {self.queue()}\n{extra}")
            time.sleep(0.1)


@contextlib.contextmanager
def sasl_config(settings: Mapping[str, str]) -> Iterator[Path]:
    """/etc/sasl2/Sendmail.conf for the test (see the module documentation)."""
    if SASL_CONF.exists():
        raise SendmailError(f"{SASL_CONF} exists already: not overwriting the system's")
    made_dir = not SASL_CONF.parent.exists()
    SASL_CONF.parent.mkdir(parents=True, exist_ok=True)
    SASL_CONF.write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
    SASL_CONF.chmod(0o644)
    try:
        yield SASL_CONF
    finally:
        SASL_CONF.unlink(missing_ok=True)
        if made_dir:
            with contextlib.suppress(OSError):
                SASL_CONF.parent.rmdir()
