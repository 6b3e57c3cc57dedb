"""A cluster on loopback for the tests: `mra serve` nodes over one mail root, a director (an
`mra serve` with only `[cluster]`: auth_http and socketmap) and a real nginx mail proxy.

Each node listens on free ports of 127.0.0.1, found by starting it on port 0 and reading its
log; its configuration is then rewritten with the ports it got, so that a node killed by a
test comes back where the director expects it. nginx's ports are found free beforehand.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mailstore.store import MailStore
from mra.auth.passwords import hash_password
from mra.cluster.nginx import MAIL_MODULE, NginxMail
from tests.mra.conftest import certificate

MRA = str(Path(sys.executable).parent / "mra")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PASSWORD = "sesame-Open-42"
USERS = tuple(f"user{i}@example.test" for i in range(12))
START_TIMEOUT = 30.0
NOBODY = 65534


def nginx_available() -> bool:
    return os.path.exists(NGINX) and os.path.exists(MAIL_MODULE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """One `mra serve`, its configuration file and its log."""

    def __init__(self, base: Path, name: str, config: str) -> None:
        self.name = name
        self.config_path = base / f"{name}.toml"
        self.config_path.write_text(config)
        self.log_path = base / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [MRA, "serve", "--config", str(self.config_path)], stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log()
            if text.count(" ready ") > self._readies:
                found = re.findall(r"listening listener=(\w+) address=[\d.]+:(\d+)", text)
                self.ports = {name: int(port) for name, port in found}
                self._readies += 1
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start:\n{self.log()}")

    _readies = 0

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Cluster:
    """`nodes` mra nodes, a director and nginx, all on 127.0.0.1."""

    def __init__(
        self,
        nodes: int = 3,
        node_extra: str = "",
        director_extra: str = "",
        proxies: tuple[str, ...] = ("127.0.0.1",),
        health_interval: float = 0.25,
        with_nginx: bool = True,
        lmtp: bool = False,
        auth_http: str = "127.0.0.1:0",
    ) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="mra-cluster-"))
        self.base.chmod(0o755)
        self.mail = self.base / "mail"
        self.mail.mkdir()
        self.cert, self.key = certificate()
        self.passwd = self.base / "passwd"
        hashed = hash_password(PASSWORD, "SHA512-CRYPT")
        self.passwd.write_text("".join(f"{u}:{hashed}::::::\n" for u in USERS))
        (self.base / "local-host-names").write_text("example.test\n")
        (self.base / "access").write_text("")
        self.proxies = proxies
        self.health_interval = health_interval
        self.node_extra = node_extra
        self.director_extra = director_extra
        self.with_nginx = with_nginx
        self.auth_http = auth_http
        # LMTP on each node: the server then runs as `nobody` (it refuses to deliver as
        # root), so the mail root is nobody's and the test must not write it as root.
        self.lmtp = lmtp
        if lmtp:
            os.chown(self.mail, NOBODY, NOBODY)
            self.node_extra += '[server]\nuser = "nobody"\nrequire_readable_installation = false\n'
        self.nodes = [Process(self.base, f"node{i}", "") for i in range(nodes)]
        # Each node's LMTP port, fixed beforehand: the socketmap's answers name it.
        self.lmtp_ports = [free_port() for _ in range(nodes)]
        self.director: Process | None = None
        self.nginx: subprocess.Popen[bytes] | None = None
        self.nginx_ports: dict[str, int] = {}

    def common(self) -> str:
        return (
            f'[tls]\ncert = "{self.cert}"\nkey = "{self.key}"\n'
            f'[auth]\npasswd_file = "{self.passwd}"\n'
            f'[mail]\nlocation = "{self.mail}/%d/%n"\nshared = true\n'
            f'[maps]\naccess = "{self.base}/access"\n'
            f'local_domains = "{self.base}/local-host-names"\n'
        )

    def node_names(self) -> list[str]:
        return [
            f"127.0.0.1 imap={n.ports['imap']} pop3={n.ports['pop3']} lmtp={lmtp}"
            for n, lmtp in zip(self.nodes, self.lmtp_ports, strict=True)
        ]

    def cluster_section(self, auth_http: str = "", socketmap: str = "") -> str:
        nodes = ", ".join(f'"{n}"' for n in self.node_names())
        proxies = ", ".join(f'"{p}"' for p in self.proxies)
        # A generous timeout: a loaded test machine must not mark a live node down (a killed
        # one refuses the connection at once, whatever the timeout).
        text = f"[cluster]\nnodes = [{nodes}]\nproxies = [{proxies}]\n"
        text += f"health_interval = {self.health_interval}\nhealth_timeout = 5.0\n"
        if auth_http:
            text += f'auth_http = "{auth_http}"\n'
        if socketmap:
            text += f'socketmap = "{socketmap}"\n'
        return text

    def lmtp_listener(self, node: Process) -> str:
        if not self.lmtp:
            return ""
        return f'lmtp = "127.0.0.1:{self.lmtp_ports[self.nodes.index(node)]}"\n'

    def start(self) -> None:
        """Start everything. A node restarted on the port it got (or an LMTP port chosen
        beforehand) can meet another process that took that port meanwhile (other test runs
        share the machine): then everything starts again on fresh ports."""
        for attempt in range(3):
            try:
                self._start()
                return
            except RuntimeError as exc:
                self._stop_processes()
                if "Address already in use" not in str(exc) or attempt == 2:
                    self._remove()
                    raise
                self.lmtp_ports = [free_port() for _ in self.nodes]
                for node in self.nodes:
                    node.log_path.unlink(missing_ok=True)
                    node._readies = 0
                if self.director is not None:
                    self.director.log_path.unlink(missing_ok=True)
                    self.director = None
                shutil.rmtree(self.base / "nginx", ignore_errors=True)
            except BaseException:
                self.stop()
                raise

    def _start(self) -> None:
        for node in self.nodes:
            node.config_path.write_text(
                '[listen]\nimap = "127.0.0.1:0"\npop3 = "127.0.0.1:0"\n'
                + self.lmtp_listener(node)
                + self.common()
                + self.node_extra
            )
            node.start()
        # Each node now knows the others (its `[cluster]`: proxies exempt), on fixed ports.
        for node in self.nodes:
            node.stop()
        for node in self.nodes:
            node.config_path.write_text(
                f'[listen]\nimap = "127.0.0.1:{node.ports["imap"]}"\n'
                f'pop3 = "127.0.0.1:{node.ports["pop3"]}"\n'
                + self.lmtp_listener(node)
                + self.common()
                + self.node_extra
                + self.cluster_section()
            )
            node.start()
        self.director = Process(
            self.base,
            "director",
            self.common()
            + self.cluster_section(self.auth_http, "127.0.0.1:0")
            + self.director_extra,
        )
        self.director.start()
        if self.with_nginx:
            self._start_nginx()

    @property
    def auth_http_port(self) -> int:
        assert self.director is not None
        return self.director.ports["auth_http"]

    @property
    def socketmap_port(self) -> int:
        assert self.director is not None
        return self.director.ports["socketmap"]

    def _start_nginx(self) -> None:
        run = self.base / "nginx"
        run.mkdir()
        self.nginx_ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        conf = NginxMail(
            auth_http=f"127.0.0.1:{self.auth_http_port}",
            cert=str(self.cert),
            key=str(self.key),
            run_dir=str(run),
            user="nobody nogroup" if os.geteuid() == 0 else "",
            imap=f"127.0.0.1:{self.nginx_ports['imap']}",
            imaps=f"127.0.0.1:{self.nginx_ports['imaps']}",
            pop3=f"127.0.0.1:{self.nginx_ports['pop3']}",
            pop3s=f"127.0.0.1:{self.nginx_ports['pop3s']}",
        )
        (run / "nginx.conf").write_text(conf.render())
        self.nginx_log = run / "error.log"
        self.nginx = subprocess.Popen(
            [NGINX, "-p", str(run), "-c", str(run / "nginx.conf"), "-e", str(self.nginx_log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.nginx_ports["pop3s"]), 1).close()
                return
            except OSError:
                if self.nginx.poll() is not None:
                    raise RuntimeError("nginx exited:\n" + self.nginx_log.read_text()) from None
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def store(self, user: str) -> MailStore:
        local, _, domain = user.partition("@")
        return MailStore(str(self.mail / domain / local))

    def logins(self, user: str) -> list[int]:
        """How many times each node logged `user` in (IMAP and POP3)."""
        pattern = re.compile(rf"login proto=\w+ user={re.escape(user)} ")
        return [len(pattern.findall(n.log())) for n in self.nodes]

    def stop(self) -> None:
        self._stop_processes()
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def _stop_processes(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for proc in [*self.nodes, self.director]:
            if proc is not None:
                proc.stop()
