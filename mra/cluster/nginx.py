"""The nginx configuration of a cluster's mail proxy, as `make cluster` writes it and the
README documents it.

nginx (Debian: `nginx` with `libnginx-mod-mail`) does the client side: the listeners, TLS and
STARTTLS, and the login dialogue (IMAP LOGIN and AUTHENTICATE PLAIN/LOGIN, POP3 USER/PASS and
AUTH PLAIN/LOGIN; nginx cannot relay a SASL exchange, so only mechanisms that give it the
password). It asks `[cluster] auth_http` (mra/cluster/authhttp.py) whether the login is right
and which node holds the user, logs in to that node with the same name and password, and
then copies bytes both ways until either side closes: IDLE, APPEND and COMPRESS pass through.

What the writer chooses and why:
* `daemon off`, and every file it writes (pid, error log) under `run_dir`, so that one
  unprivileged or private instance needs nothing of /var or /etc; as root, `user` names the
  unprivileged account its workers run as (the master only binds and reads the keys).
* `imap_capabilities` / `pop3_capabilities`: what nginx announces before login (after login
  the client talks to the node, and asks again: RFC 3501 section 6.2.3 says it may).
* `proxy_pass_error_message on`: the node's own NO/-ERR text reaches the client.
* `auth_http_timeout` longer than the longest failure delay (15 s): a throttled guess is
  answered late on purpose (`[cluster] max_login_attempts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so"
IMAP_CAPABILITIES = ("IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
POP3_CAPABILITIES = ("TOP", "USER", "UIDL", "PIPELINING")


@dataclass
class NginxMail:
    auth_http: str  # "127.0.0.1:9000"
    cert: str
    key: str
    run_dir: str
    imap: str = "127.0.0.1:2143"  # "" = that listener is off
    imaps: str = "127.0.0.1:2993"
    pop3: str = "127.0.0.1:2110"
    pop3s: str = "127.0.0.1:2995"
    user: str = ""  # `user` directive (only when nginx starts as root)
    server_name: str = "localhost"
    starttls: str = "on"  # "only" refuses a login before STARTTLS
    worker_processes: int = 1
    extra: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            "# nginx mail proxy in front of mra nodes (written by mra/cluster/nginx.py)",
            f"load_module {MAIL_MODULE};",
            "daemon off;",
            f"worker_processes {self.worker_processes};",
            f"pid {self.run_dir}/nginx.pid;",
            f"error_log {self.run_dir}/error.log info;",
        ]
        if self.user:
            lines.append(f"user {self.user};")
        lines += [
            "events { worker_connections 1024; }",
            "",
            "mail {",
            f"    server_name {self.server_name};",
            f"    auth_http {self.auth_http}/auth;",
            "    auth_http_timeout 30s;",
            "    proxy_pass_error_message on;",
            "    imap_auth plain login;",
            "    pop3_auth plain;",
            "    imap_capabilities " + " ".join(f'"{c}"' for c in IMAP_CAPABILITIES) + ";",
            "    pop3_capabilities " + " ".join(f'"{c}"' for c in POP3_CAPABILITIES) + ";",
            f"    ssl_certificate {self.cert};",
            f"    ssl_certificate_key {self.key};",
            "    ssl_protocols TLSv1.2 TLSv1.3;",
            *(f"    {line}" for line in self.extra),
        ]
        for address, protocol, tls in (
            (self.imap, "imap", False),
            (self.imaps, "imap", True),
            (self.pop3, "pop3", False),
            (self.pop3s, "pop3", True),
        ):
            if not address:
                continue
            listen = f"{address} ssl" if tls else address
            starttls = "" if tls else f" starttls {self.starttls};"
            lines.append(f"    server {{ listen {listen}; protocol {protocol};{starttls} }}")
        lines.append("}")
        return "\n".join(lines) + "\n"
