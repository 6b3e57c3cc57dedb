"""`make cluster`: three `mra serve` nodes over one mail root, nginx's mail proxy in front.

On 127.0.0.1: nginx on 2143 (IMAP, STARTTLS), 2993 (IMAPS), 2110 (POP3, STARTTLS) and 2995
(POP3S); a director (`mra serve` with only `[cluster]`) answering nginx's `auth_http` on 9000
and Postfix's `socketmap` on 9001; three nodes with `[mail] shared = true` on
10143/10110/10024, 10243/10210/10124 and 10343/10310/10224 (IMAP/POP3/LMTP, LMTP where the
server has it). The mail root is a copy of `make run`'s demo mail (maildirs/cluster/mail,
made once, kept between runs; delete maildirs/cluster to start over), with its users and
passwords. Ctrl-C stops everything.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mailstore.config import ListenConfig
from mra.cluster.nginx import MAIL_MODULE, NginxMail

NGINX_PORTS = {"imap": 2143, "imaps": 2993, "pop3": 2110, "pop3s": 2995}
AUTH_HTTP = "127.0.0.1:9000"
SOCKETMAP = "127.0.0.1:9001"
NODES = [
    {"imap": 10143 + 100 * i, "pop3": 10110 + 100 * i, "lmtp": 10024 + 100 * i} for i in range(3)
]
START_TIMEOUT = 30.0


def has_lmtp() -> bool:
    return any(f.name == "lmtp" for f in dataclasses.fields(ListenConfig))


def node_entries() -> list[str]:
    return [f"127.0.0.1 imap={n['imap']} pop3={n['pop3']} lmtp={n['lmtp']}" for n in NODES]


def cluster_section(extra: str = "") -> str:
    nodes = ", ".join(f'"{e}"' for e in node_entries())
    return f'[cluster]\nnodes = [{nodes}]\nproxies = ["127.0.0.1"]\n{extra}'


def common(demo: Path, mail: Path, mail_user: str) -> str:
    return (
        f'[tls]\ncert = "{demo}/tls/cert.pem"\nkey = "{demo}/tls/key.pem"\n'
        f'[auth]\npasswd_file = "{demo}/passwd"\n'
        f'[mail]\nlocation = "{mail}/%d/%n"\nshared = true\nshared_check_interval = 5\n'
        f'[maps]\naliases = "{demo}/aliases"\nvirtusertable = "{demo}/virtusertable"\n'
        f'access = "{demo}/access"\nlocal_domains = "{demo}/local-host-names"\n'
        + (
            f'[mda]\nmail_uid = "{mail_user}"\n[server]\nuser = "{mail_user}"\n'
            # A checkout the mail user cannot enter (a clone under /root): the nodes say so
            # in their logs and serve, everything imported before they drop to that user.
            "require_readable_installation = false\n"
            if mail_user
            else ""
        )
    )


def write_configs(demo: Path, base: Path, mail_user: str) -> list[Path]:
    mail = base / "mail"
    paths = []
    for i, ports in enumerate(NODES):
        listen = (
            f'[listen]\nimap = "127.0.0.1:{ports["imap"]}"\npop3 = "127.0.0.1:{ports["pop3"]}"\n'
        )
        if has_lmtp():
            listen += f'lmtp = "127.0.0.1:{ports["lmtp"]}"\n'
        path = base / f"node{i}.toml"
        path.write_text(listen + common(demo, mail, mail_user) + cluster_section())
        paths.append(path)
    director = base / "director.toml"
    director.write_text(
        common(demo, mail, mail_user)
        + cluster_section(f'auth_http = "{AUTH_HTTP}"\nsocketmap = "{SOCKETMAP}"\n')
    )
    paths.append(director)
    return paths


def copy_mail(demo: Path, base: Path) -> None:
    """The demo's mail root, copied once, with its owner."""
    target = base / "mail"
    if target.exists():
        return
    source = demo / "mail"
    shutil.copytree(source, target, symlinks=True)
    st = source.stat()
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(target):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.lchown(name, st.st_uid, st.st_gid)


def wait_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if proc.poll() is not None:
                tail = log.read_text()[-2000:]
                raise SystemExit(f"{name} exited; its log, {log}:\n{tail}") from None
            time.sleep(0.1)
    raise SystemExit(f"{name} did not start listening on {port}; see {log}")


def nginx_config(demo: Path, base: Path) -> NginxMail:
    return NginxMail(
        auth_http=AUTH_HTTP,
        cert=str(demo / "tls" / "cert.pem"),
        key=str(demo / "tls" / "key.pem"),
        run_dir=str(base / "nginx"),
        user="nobody nogroup" if os.geteuid() == 0 else "",
        imap=f"127.0.0.1:{NGINX_PORTS['imap']}",
        imaps=f"127.0.0.1:{NGINX_PORTS['imaps']}",
        pop3=f"127.0.0.1:{NGINX_PORTS['pop3']}",
        pop3s=f"127.0.0.1:{NGINX_PORTS['pop3s']}",
    )


def main() -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx) or not os.path.exists(MAIL_MODULE):
        print("make cluster needs nginx and its mail module:", file=sys.stderr)
        print("  apt-get install nginx libnginx-mod-mail", file=sys.stderr)
        return 1
    from mra.demo import setup

    demo = Path(os.environ.get("MRA_DEMO_DIR", "maildirs")).resolve()
    _, passwords, _ = setup(demo)
    base = demo / "cluster"
    base.mkdir(exist_ok=True)
    (base / "logs").mkdir(exist_ok=True)
    (base / "nginx").mkdir(exist_ok=True)
    copy_mail(demo, base)
    mail_user = ""
    conf_text = (demo / "demo.toml").read_text()
    for line in conf_text.splitlines():
        if line.startswith("user = "):
            mail_user = line.split("=", 1)[1].strip().strip('"')
    configs = write_configs(demo, base, mail_user)
    conf = nginx_config(demo, base)
    (base / "nginx" / "nginx.conf").write_text(conf.render())
    mra = str(Path(sys.executable).parent / "mra")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def stop(*_: object) -> None:
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        for _name, proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    try:
        for path in configs:
            log = base / "logs" / f"{path.stem}.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    [mra, "serve", "--config", str(path)], stdout=out, stderr=out
                )
            procs.append((path.stem, proc))
            port = NODES[len(procs) - 1]["imap"] if path.stem != "director" else 9000
            wait_port(port, proc, path.stem, log)
        log = base / "nginx" / "error.log"
        proc = subprocess.Popen(
            [
                nginx,
                "-p",
                str(base / "nginx"),
                "-c",
                str(base / "nginx" / "nginx.conf"),
                "-e",
                str(log),
            ],
        )
        procs.append(("nginx", proc))
        wait_port(NGINX_PORTS["pop3s"], proc, "nginx", log)
        print_help(base, passwords)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        dead = [name for name, p in procs if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited; see {base}/logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the cluster")
        return 0
    finally:
        stop()


def print_help(base: Path, passwords: dict[str, str]) -> None:
    users = "\n".join(f"    {u}  {p}" for u, p in passwords.items())
    lmtp = (
        "" if has_lmtp() else "  (this build of mra serve has no LMTP: the next hops are unused)\n"
    )
    print(
        f"""
The cluster is up: nginx in front of 3 mra nodes over one mail root ({base}/mail).

  IMAP   127.0.0.1:2143 (STARTTLS)    IMAPS  127.0.0.1:2993
  POP3   127.0.0.1:2110 (STARTTLS)    POP3S  127.0.0.1:2995

Users (the demo's):
{users}

Try:
  curl -k --ssl-reqd 'imap://127.0.0.1:2143/INBOX?ALL' -u 'alice@example.test:PASSWORD'
  curl -k 'pop3s://127.0.0.1:2995/' -u 'bob@example.test:PASSWORD'
  openssl s_client -quiet -starttls imap -connect 127.0.0.1:2143

Which node holds a user (Postfix's own socketmap client):
  postmap -q alice@example.test socketmap:inet:{SOCKETMAP}:transport
{lmtp}Postfix, to deliver by LMTP to the user's node (main.cf):
  transport_maps = socketmap:inet:{SOCKETMAP}:transport

Logs: {base}/logs/ (each login says its node), nginx: {base}/nginx/error.log
Ctrl-C stops everything.
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
