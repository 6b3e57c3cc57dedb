"""Run a real, private Postfix instance for end-to-end delivery tests.

:class:`PostfixInstance` writes its own ``main.cf`` and ``master.cf`` into a temporary
directory and runs ``postfix -c DIR start``: its own ``queue_directory`` and
``data_directory``, smtpd on a free port on 127.0.0.1 only, no outbound mail at all
(``default_transport`` and ``relay_transport`` are ``error:``, no smtp/lmtp client service
exists), and the log in a plain file (``maillog_file`` through the ``postlog`` service, so
no syslog is needed).  A Postfix the package may have started (the default instance in
``/etc/postfix``) is neither used nor touched: other directories, another port.

Facts this harness relies on (checked against Debian 12's Postfix 3.7.11):

* ``postfix -c DIR start`` must be run as root, and accepts a non-default configuration
  directory from root without ``alternate_config_directories``.  The queue directory must
  exist (root-owned); Postfix creates what is missing below it and the data directory
  itself, and waits until the master is up (``master -w``).  A listener that cannot bind
  makes ``postfix start`` fail with ``fatal: bind ...: Address already in use`` in the log.
* Postfix passes ``MAIL_CONFIG=DIR`` in the environment of the master and of every daemon
  it starts.  :meth:`PostfixInstance.stop`
  uses it to find, by process id, anything of this instance that outlived ``postfix stop``.
* ``maillog_file`` must start with one of ``maillog_file_prefixes``, which is set to the
  instance's own directory.
* local(8) runs ``mailbox_command`` as the recipient (uid and gid of the unix user) and
  prepends ``From sender date``, ``Return-Path:``, ``X-Original-To:`` and (with the default
  ``prepend_delivered_header``) ``Delivered-To:``.  pipe(8) prepends only what its
  ``flags=`` ask for.  Both use the sysexits code of the command: 75 defers, anything else
  non-zero bounces, and a leading ``5.X.X``/``4.X.X`` in the command's output becomes the
  DSN status.

Every wait is bounded by a timeout, and the instance is stopped (master killed if need be)
whatever happens in the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path
from types import TracebackType
from typing import Any, Self

SBIN = Path("/usr/sbin")
POSTFIX = SBIN / "postfix"
POSTCONF = SBIN / "postconf"
POSTQUEUE = SBIN / "postqueue"
POSTSUPER = SBIN / "postsuper"
POSTFIX_PACKAGES = "postfix"
INSTALL_HINT = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
    f"--no-install-recommends {POSTFIX_PACKAGES}"
)
MIN_VERSION = (3, 4)  # maillog_file and the postlog service
DEFAULT_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0  # for one postfix/postqueue/postsuper command

OUTBOUND_DISABLED = "error:outbound mail disabled"

# master.cf, without the smtpd listener (added with the instance's port) and without any
# SMTP/LMTP client: nothing can leave the machine.  No service is chrooted.
#   service    type        private unpriv chroot wakeup maxproc command
BASE_MASTER_CF = """\
pickup     unix        n       -      n      60     1       pickup
cleanup    unix        n       -      n      -      0       cleanup
qmgr       unix        n       -      n      300    1       qmgr
rewrite    unix        -       -      n      -      -       trivial-rewrite
bounce     unix        -       -      n      -      0       bounce
defer      unix        -       -      n      -      0       bounce
trace      unix        -       -      n      -      0       bounce
verify     unix        -       -      n      -      1       verify
flush      unix        n       -      n      1000?  0       flush
proxymap   unix        -       -      n      -      -       proxymap
proxywrite unix        -       -      n      -      1       proxymap
showq      unix        n       -      n      -      -       showq
error      unix        -       -      n      -      -       error
retry      unix        -       -      n      -      -       error
discard    unix        -       -      n      -      -       discard
local      unix        -       n      n      -      -       local
anvil      unix        -       -      n      -      1       anvil
scache     unix        -       -      n      -      1       scache
postlog    unix-dgram  n       -      n      -      1       postlogd
"""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def postfix_version() -> tuple[int, ...]:
    """Postfix's ``mail_version`` as numbers, e.g. ``(3, 7, 11)``."""
    out = subprocess.run(
        [str(POSTCONF), "-d", "-h", "mail_version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout.strip()
    return tuple(int(p) for p in re.findall(r"\d+", out)[:3])


def postfix_available() -> bool:
    """True if Postfix (with ``maillog_file`` support) is installed here."""
    if not all(_executable(p) for p in (POSTFIX, POSTCONF, POSTQUEUE, POSTSUPER)):
        return False
    try:
        return postfix_version() >= MIN_VERSION
    except (OSError, subprocess.SubprocessError, ValueError):
        return False


def running_as_root() -> bool:
    return os.geteuid() == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _others_can_traverse(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in [path, *path.parents])


def traversable_tempdir(prefix: str = "postfix-") -> Path:
    """A fresh mode-0755 root-owned directory whose ancestors all let any user through
    (pytest's ``tmp_path`` is below the root-only ``/tmp/pytest-of-root``, where neither
    ``nobody`` nor a recipient's uid can go).  The caller removes it."""
    candidates = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]
    parent = next((c for c in candidates if c.is_dir() and _others_can_traverse(c)), None)
    if parent is None:
        raise PostfixError("no temporary directory that other users can traverse")
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------------------
# Throw-away unix users (local(8) delivers to system users only)
# --------------------------------------------------------------------------------------


def create_system_user(name: str, home: Path) -> pwd.struct_passwd:
    """``useradd -m -d HOME`` a user with its own group and no login shell."""
    home.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["useradd", "-m", "-d", str(home), "-s", "/usr/sbin/nologin", "-U", name],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    return pwd.getpwnam(name)


def remove_system_user(name: str, *, remove_home: bool = True) -> None:
    """``userdel -r`` (``userdel`` if not ``remove_home``); quiet if the user is gone."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return
    # userdel -r complains (exit 12) when the user has no mail spool; the user is gone anyway.
    argv = ["userdel", "-r", name] if remove_home else ["userdel", name]
    subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT)


def unique_name(prefix: str) -> str:
    """A user name that exists neither in /etc/passwd nor as a group yet."""
    for _ in range(100):
        name = f"{prefix}{os.urandom(3).hex()}"
        try:
            pwd.getpwnam(name)
        except KeyError:
            return name
    raise PostfixError("could not find a free user name")


def run_as(user: str, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """Run ``argv`` as ``user`` (its primary group only, cwd ``/``, no stdin); return the
    exit status (-1 if it could not be started or timed out) and its output."""
    try:
        proc = subprocess.run(
            list(argv),
            user=user,
            group=pwd.getpwnam(user).pw_gid,
            extra_groups=[],
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return -1, f"{argv[0]}: {exc}"
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()


def check_runnable_as(user: str, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> str:
    """ "" if ``argv`` run as ``user`` exits 0, else what went wrong.  Used to find out,
    before Postfix does, whether a delivery user can run the delivery command at all."""
    status, output = run_as(user, argv, timeout)
    return "" if status == 0 else f"exit {status}: {output[-2000:]}"


# --------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------

_DELIVERY_RE = re.compile(
    r"postfix/(?P<program>[\w/.-]+)\[(?P<pid>\d+)\]: (?P<queue_id>[0-9A-Za-z]+): "
    r"to=<(?P<to>[^>]*)>(?:, orig_to=<(?P<orig_to>[^>]*)>)?, (?P<rest>.*)$"
)
_STATUS_RE = re.compile(r"(?:^|, )status=(?P<status>\w+)(?: \((?P<text>.*)\))?$")


@dataclass(frozen=True)
class LogEntry:
    """One delivery attempt as logged: ``QUEUEID: to=<..>, relay=.., dsn=.., status=..``."""

    line: str
    program: str  # e.g. "local", "pipe", "error"
    queue_id: str
    to: str
    orig_to: str | None
    relay: str
    dsn: str
    status: str  # sent, bounced, deferred, expired, ...
    text: str  # the explanation in parentheses after the status

    @classmethod
    def parse(cls, line: str) -> LogEntry | None:
        m = _DELIVERY_RE.search(line)
        if not m:
            return None
        rest = m.group("rest")
        status = _STATUS_RE.search(rest)
        if not status:
            return None
        fields = dict(f.split("=", 1) for f in rest[: status.start()].split(", ") if "=" in f)
        return cls(
            line=line,
            program=m.group("program"),
            queue_id=m.group("queue_id"),
            to=m.group("to"),
            orig_to=m.group("orig_to"),
            relay=fields.get("relay", ""),
            dsn=fields.get("dsn", ""),
            status=status.group("status"),
            text=status.group("text") or "",
        )


class PostfixError(Exception):
    """Postfix could not be run, or did not do something in time; carries its log."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        if log.strip():
            tail = "\n".join(log.rstrip().splitlines()[-60:])
            message = f"{message}\n--- postfix maillog (last lines) ---\n{tail}"
        super().__init__(message)


class PostfixTimeout(PostfixError):
    pass


# --------------------------------------------------------------------------------------
# The instance
# --------------------------------------------------------------------------------------


def render_main_cf(settings: Mapping[str, str]) -> str:
    return "".join(f"{name} = {value}\n" for name, value in settings.items())


class PostfixInstance:
    """A private Postfix below ``base`` (``base/etc``, ``base/queue``, ``base/data``,
    ``base/maillog``), smtpd on ``127.0.0.1:port``.

    ``main_cf`` adds to or overrides the defaults of :meth:`default_main_cf`;
    ``master_cf`` lines are appended to the services of ``BASE_MASTER_CF`` (pipe(8)
    transports and the like; continuation lines start with white space).

    Use as a context manager, or call :meth:`start` and :meth:`stop` (which is safe to
    call more than once, and after a failed start).
    """

    def __init__(
        self,
        base: str | os.PathLike[str],
        *,
        main_cf: Mapping[str, str] | None = None,
        master_cf: Iterable[str] = (),
        port: int | None = None,
        hostname: str = "mx.local.test",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base = Path(base)
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "queue"
        self.data_dir = self.base / "data"
        self.maillog = self.base / "maillog"
        self.host = "127.0.0.1"
        self._fixed_port = port is not None
        self.port = port or free_port(self.host)
        self.hostname = hostname
        self.timeout = timeout
        self.settings: dict[str, str] = self.default_main_cf()
        self.settings.update(main_cf or {})
        self.extra_master_cf = list(master_cf)
        self._started = False

    # -- configuration -----------------------------------------------------------------

    def default_main_cf(self) -> dict[str, str]:
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.base),
            "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2] or self.hostname,
            "myorigin": "$myhostname",
            "mydestination": "$myhostname, localhost",
            "inet_interfaces": self.host,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": "$myhostname ESMTP",
            # Nothing leaves this machine: no relay host, every non-local address fails.
            "relayhost": "",
            "relay_domains": "",
            "default_transport": OUTBOUND_DISABLED,
            "relay_transport": OUTBOUND_DISABLED,
            # Do not read the system's /etc/aliases (nor NIS): local(8) sees users only.
            "alias_maps": "",
            "alias_database": "",
            "recipient_delimiter": "+",
            "biff": "no",
            "append_dot_mydomain": "no",
            "command_time_limit": "120s",
            "delay_warning_time": "0",
        }

    def master_cf_text(self) -> str:
        listener = f"{self.host}:{self.port} inet n - n - - smtpd\n"
        extra = "".join(line.rstrip("\n") + "\n" for line in self.extra_master_cf)
        return listener + BASE_MASTER_CF + extra

    def write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        # Postfix wants these root-owned and not writable by others; it creates what is
        # below the queue directory itself (and the data directory, owned by mail_owner).
        for directory in (self.config_dir, self.queue_dir):
            directory.mkdir(mode=0o755, exist_ok=True)
        for name, text in (
            ("main.cf", render_main_cf(self.settings)),
            ("master.cf", self.master_cf_text()),
        ):
            path = self.config_dir / name
            path.write_text(text)
            path.chmod(0o644)

    # -- running commands --------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
        env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        env["LANG"] = env["LC_ALL"] = "C"
        return env

    def run(
        self, *argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a Postfix command (``postfix``, ``postqueue``, ``postsuper``, ``postconf``
        or anything else that takes ``-c DIR``) on this instance."""
        program, *args = argv
        cmd = [str(SBIN / program) if "/" not in program else program, "-c", str(self.config_dir)]
        try:
            proc = subprocess.run(
                cmd + args,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostfixTimeout(f"{' '.join(cmd + args)} timed out", self.log()) from exc
        if check and proc.returncode != 0:
            raise PostfixError(
                f"{' '.join(cmd + args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}",
                self.log(),
            )
        return proc

    def postconf(self, name: str) -> str:
        """The value of one parameter as this instance sees it (``postconf -c DIR -h``)."""
        return self.run("postconf", "-h", name).stdout.strip()

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Self:
        if not running_as_root():
            raise PostfixError("Postfix must be started as root")
        self._started = True  # from here on stop() has something to clean up
        for attempt in range(3):
            self.write_config()
            check = self.run("postfix", "check", check=False)
            if check.returncode != 0:
                raise PostfixError(
                    f"postfix check failed:\n{check.stdout}{check.stderr}", self.log()
                )
            try:
                self.run("postfix", "start")
                break
            except PostfixError as exc:
                # The port we were given by the kernel was taken in between: take another.
                lost_race = f"port {self.port}: Address already in use" in exc.log
                if self._fixed_port or not lost_race or attempt == 2:
                    raise
                self.stop()
                self._started = True
                self.port = free_port(self.host)
        self._wait_for_port()
        return self

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as s:
                    s.settimeout(self.timeout)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise PostfixTimeout(f"smtpd did not answer on {self.host}:{self.port}", self.log())
            time.sleep(0.1)

    def master_pid(self) -> int | None:
        try:
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def processes(self) -> list[int]:
        """Pids of every process of this instance (master, daemons, their commands):
        those with ``MAIL_CONFIG=<config_dir>`` in their environment."""
        marker = f"MAIL_CONFIG={self.config_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in env.split(b"\0"):
                found.append(int(entry.name))
        return found

    def stop(self, timeout: float | None = None) -> None:
        """``postfix -c DIR stop``, wait for the master to go, then SIGKILL whatever of
        this instance is left (by pid).  Never raises for a Postfix that is already down."""
        if not self._started:
            return
        timeout = self.timeout if timeout is None else timeout
        master = self.master_pid()
        if master is not None:
            with contextlib.suppress(PostfixError):
                self.run("postfix", "stop", check=False, timeout=timeout)
        deadline = time.monotonic() + timeout
        while master is not None and _alive(master) and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(3):
            leftovers = self.processes()
            if master is not None and _alive(master) and master not in leftovers:
                leftovers.append(master)
            if not leftovers:
                break
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        self._started = False

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

    # -- mail in -----------------------------------------------------------------------

    def send(
        self,
        mail_from: str,
        rcpt_to: str | Sequence[str],
        message: bytes | str | Message,
        *,
        timeout: float | None = None,
    ) -> str:
        """Submit one message over SMTP; return its queue id.

        A refusal raises smtplib's ``SMTPSenderRefused``, ``SMTPRecipientsRefused`` (any
        recipient refused) or ``SMTPDataError``, with Postfix's reply."""
        rcpts = [rcpt_to] if isinstance(rcpt_to, str) else list(rcpt_to)
        if isinstance(message, Message):
            data = message.as_bytes()
        elif isinstance(message, str):
            data = message.encode("utf-8")
        else:
            data = message
        with smtplib.SMTP(
            self.host, self.port, local_hostname="client.test", timeout=timeout or self.timeout
        ) as smtp:
            smtp.ehlo()
            code, reply = smtp.mail(mail_from)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, mail_from)
            refused: dict[str, tuple[int, bytes]] = {}
            for rcpt in rcpts:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, reply)
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
            code, reply = smtp.data(data)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
        m = re.search(rb"queued as ([0-9A-Za-z]+)", reply)
        if not m:
            raise PostfixError(f"no queue id in the reply to DATA: {reply!r}", self.log())
        return m.group(1).decode()

    # -- the queue ---------------------------------------------------------------------

    def queue(self) -> list[dict[str, Any]]:
        """The messages in the queue (``postqueue -j``), one dict each: ``queue_id``,
        ``queue_name`` (maildrop, incoming, active, deferred, hold), ``recipients``..."""
        out = self.run("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def _queue_dump(self) -> str:
        try:
            return f"queue: {self.queue()}"
        except PostfixError as exc:
            return f"queue: unknown ({exc.args[0]})"

    def queue_ids(self) -> set[str]:
        return {str(m["queue_id"]) for m in self.queue()}

    def wait_for_queue_empty(self, timeout: float | None = None) -> None:
        """Wait until no message is left in any queue (``postqueue -j`` prints nothing)."""
        self.wait_until(lambda: not self.queue(), "the queue to empty", timeout, self._queue_dump)

    def wait_until_gone(self, queue_id: str, timeout: float | None = None) -> None:
        """Wait until ``queue_id`` has left the queue (delivered or bounced)."""
        self.wait_until(
            lambda: queue_id not in self.queue_ids(),
            f"{queue_id} to leave the queue",
            timeout,
            self._queue_dump,
        )

    def flush(self, queue_id: str | None = None) -> None:
        """Try deferred mail now: one message (``postqueue -i ID``) or all (``-f``)."""
        if queue_id is None:
            self.run("postqueue", "-f")
        else:
            self.run("postqueue", "-i", queue_id)

    def delete(self, queue_id: str) -> None:
        """Drop a message from the queue (``postsuper -d ID``); quiet if it is gone."""
        self.run("postsuper", "-d", queue_id, check=False)

    # -- the log -----------------------------------------------------------------------

    def log(self) -> str:
        """Everything in this instance's maillog so far ("" before there is one)."""
        try:
            return self.maillog.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_entries(self) -> list[LogEntry]:
        """Every delivery attempt logged so far, oldest first."""
        entries = []
        for line in self.log().splitlines():
            entry = LogEntry.parse(line)
            if entry:
                entries.append(entry)
        return entries

    def deliveries(
        self,
        recipient: str | None = None,
        *,
        queue_id: str | None = None,
        status: str | None = None,
    ) -> list[LogEntry]:
        """Logged delivery attempts, filtered by recipient (``to=`` or ``orig_to=``,
        case-insensitively), queue id and status."""
        rcpt = recipient.lower() if recipient is not None else None
        return [
            e
            for e in self.log_entries()
            if (rcpt is None or rcpt in (e.to.lower(), (e.orig_to or "").lower()))
            and (queue_id is None or e.queue_id == queue_id)
            and (status is None or e.status == status)
        ]

    def bounces_for(self, recipient: str, *, queue_id: str | None = None) -> list[LogEntry]:
        """The ``status=bounced`` entries for ``recipient`` (optionally of one message)."""
        return self.deliveries(recipient, queue_id=queue_id, status="bounced")

    def wait_for_status(
        self,
        queue_id: str,
        recipient: str,
        statuses: Iterable[str] = ("sent", "bounced", "deferred", "expired"),
        timeout: float | None = None,
    ) -> LogEntry:
        """Wait until the log shows a delivery attempt of ``queue_id`` to ``recipient``
        ending in one of ``statuses``; return the first such entry."""
        wanted = set(statuses)
        found: list[LogEntry] = []

        def seen() -> bool:
            found[:] = [
                e for e in self.deliveries(recipient, queue_id=queue_id) if e.status in wanted
            ]
            return bool(found)

        self.wait_until(
            seen,
            f"status {'/'.join(sorted(wanted))} of {queue_id} to <{recipient}>",
            timeout,
            self._queue_dump,
        )
        return found[0]

    def wait_until(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float | None = None,
        details: Callable[[], str] | None = None,
    ) -> None:
        """Poll ``condition`` until it is true; after ``timeout`` seconds (default: the
        instance's) raise PostfixTimeout naming ``what``, with ``details()`` and the log."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        delay = 0.05
        while not condition():
            if time.monotonic() > deadline:
                extra = f"\n{details()}" if details else ""
                raise PostfixTimeout(f"timed out waiting for {what}{extra}", self.log())
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def make_message(
    *,
    sender: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    extra_headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Fri, 01 Nov 2024 12:00:00 +0000"
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def remove_tree(path: str | os.PathLike[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)
