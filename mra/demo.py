"""`make run`: a working demo out of the box, from `maildirs/`.

The first run writes `maildirs/demo.toml`, a passwd-file with alice@example.test and
bob@example.test (random passwords, kept in `maildirs/demo-passwords` so every run can print
them), a self-signed certificate for localhost, the sendmail maps, and delivers a handful of
realistic messages through `mda`. Every run then serves IMAP 1143, IMAPS 1993, POP3 1110 and
POP3S 1995 on 127.0.0.1. Running it again keeps everything; delete `maildirs/*` to start over.
"""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
import sys
import time
from pathlib import Path

USERS = ("alice@example.test", "bob@example.test")
PORTS = {"imap": 1143, "imaps": 1993, "pop3": 1110, "pop3s": 1995}


def _traversable_by(path: Path, uid: int) -> bool:
    """Whether `uid` can reach `path` (every ancestor searchable), tested in a child."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(pwd.getpwuid(uid).pw_gid)
            os.setuid(uid)
            os.stat(path)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def privilege_note(base: Path, root: bool, mail_user: str) -> str:
    """The one line `make run` says about privileges."""
    if not root:
        return f"note: running as {pwd.getpwuid(os.getuid()).pw_name}: no privileges to drop"
    if mail_user:
        return f"note: running as root: the server drops to '{mail_user}' once its ports are bound"
    return (
        f"note: running as root, and 'nobody' cannot reach {base}: the demo server keeps root "
        "(clone into a directory others can enter, /srv for instance, to have it drop to 'nobody')"
    )


def setup(base: Path) -> tuple[Path, dict[str, str], bool]:
    """Write what is missing; (config path, passwords, whether mail was just delivered)."""
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    config = base / "demo.toml"
    secrets_file = base / "demo-passwords"
    passwords: dict[str, str] = {}
    if secrets_file.exists():
        for line in secrets_file.read_text().splitlines():
            user, _, password = line.partition(" ")
            passwords[user] = password
    root = os.geteuid() == 0
    mail_user = ""
    uid, gid = os.getuid(), os.getgid()
    blocked = base
    if root:
        # The demo's mail and the server's own code (mra serve refuses to start as a user
        # that cannot read it) must both be within nobody's reach.
        nobody = pwd.getpwnam("nobody")
        here = Path(__file__).resolve()
        blocked = next((p for p in (base, here) if not _traversable_by(p, nobody.pw_uid)), base)
        if all(_traversable_by(p, nobody.pw_uid) for p in (base, here)):
            mail_user = "nobody"
            uid, gid = nobody.pw_uid, nobody.pw_gid
    print(privilege_note(blocked, root, mail_user))
    # The passwd-file's uid and gid: the mail user's, or none at all when the server keeps
    # root (the userdb rightly refuses uid 0; empty fields mean "the server's own").
    ids = f"{uid}:{gid}" if not root or mail_user else ":"
    if not config.exists():
        from mra.auth.passwords import hash_password
        from mra.selfsigned import generate_self_signed

        (base / "tls").mkdir(exist_ok=True)
        if not (base / "tls" / "cert.pem").exists():
            generate_self_signed(str(base / "tls" / "cert.pem"), str(base / "tls" / "key.pem"))
        passwords = {u: secrets.token_urlsafe(9) for u in USERS}
        secrets_file.write_text("".join(f"{u} {p}\n" for u, p in passwords.items()))
        secrets_file.chmod(0o600)
        (base / "passwd").write_text(
            "".join(
                f"{u}:{hash_password(p, 'BLF-CRYPT')}:{ids}::::\n" for u, p in passwords.items()
            )
        )
        (base / "mail").mkdir(exist_ok=True)
        os.chown(base / "mail", uid, gid)
        (base / "aliases").write_text("postmaster: alice@example.test\nteam: alice, bob\n")
        (base / "virtusertable").write_text("info@example.test  team\n")
        (base / "access").write_text("")
        (base / "local-host-names").write_text("example.test\n")
        lines = [
            "# The `make run` demo: written by mra/demo.py, safe to edit.",
            "[listen]",
            *(f'{name} = "127.0.0.1:{port}"' for name, port in PORTS.items()),
            "[tls]",
            'cert = "tls/cert.pem"',
            'key = "tls/key.pem"',
            "[auth]",
            'passwd_file = "passwd"',
            "[mail]",
            f'location = "{base / "mail"}/%d/%n"',
            "[maps]",
            'aliases = "aliases"',
            'virtusertable = "virtusertable"',
            'access = "access"',
            'local_domains = "local-host-names"',
            "[mda]",
            'sendmail = "/usr/sbin/sendmail"',
            *([f'mail_uid = "{mail_user}"'] if mail_user else []),
            "[server]",
            *([f'user = "{mail_user}"'] if mail_user else []),
        ]
        config.write_text("\n".join(lines) + "\n")
    delivered = False
    marker = base / "mail" / ".demo-delivered"
    if not marker.exists():
        deliver_demo_mail(config, base, mail_user)
        marker.touch()
        delivered = True
    return config, passwords, delivered


def demo_messages() -> list[tuple[str, bytes]]:
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())

    def msg(frm: str, to: str, subject: str, body: str, extra: str = "") -> bytes:
        mid = secrets.token_hex(8)
        return (
            f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: {now}\n"
            f"Message-ID: <{mid}@demo.example.test>\nMIME-Version: 1.0\n{extra}"
            f"\n{body}"
        ).encode()

    attachment = (
        'Content-Type: multipart/mixed; boundary="b1"\n',
        "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        'The notes are attached. Grüße!\n\n--b1\nContent-Type: text/plain; name="notes.txt"\n'
        'Content-Disposition: attachment; filename="notes.txt"\n'
        "Content-Transfer-Encoding: base64\n\nTm90ZXMgZnJvbSB0aGUgbWVldGluZy4K\n--b1--\n",
    )
    return [
        (
            "alice@example.test",
            msg(
                "Bob <bob@example.test>",
                "Alice <alice@example.test>",
                "Lunch on Friday?",
                "Hi Alice,\n\nlunch on Friday at noon?\n\nBob\n",
            ),
        ),
        (
            "alice@example.test",
            msg(
                "Carol <carol@remote.test>",
                "alice@example.test",
                "=?utf-8?q?Meeting_notes_=E2=80=93_Q4?=",
                attachment[1],
                attachment[0],
            ),
        ),
        (
            "alice@example.test",
            msg(
                "noreply@lists.example.test",
                "alice@example.test",
                "[announce] Release 1.0",
                "It is out.\n.\nA line with a single dot above.\n",
            ),
        ),
        (
            "info@example.test",
            msg(
                "Dave <dave@remote.test>",
                "info@example.test",
                "Question about the product",
                "Hello team,\n\nhow do I start?\n",
            ),
        ),
        (
            "bob@example.test",
            msg(
                "Alice <alice@example.test>",
                "bob@example.test",
                "Re: Lunch on Friday?",
                "Sounds good.\n\n> lunch on Friday at noon?\n",
            ),
        ),
    ]


def deliver_demo_mail(config: Path, base: Path, mail_user: str) -> None:
    mda = Path(sys.executable).parent / "mda"
    if os.geteuid() == 0 and not mail_user:
        # Running as root from a checkout `nobody` cannot reach: mda would rightly refuse to
        # write mailboxes as root, so the demo mail goes straight into the store instead.
        from mailstore.configcache import load_cached
        from mailstore.store import MailStore
        from mailstore.userdb import open_userdb

        db = open_userdb(load_cached(str(config)))
        for rcpt, data in demo_messages():
            # info@ -> team -> alice, bob: what virtusertable and aliases make of it in mda
            for name in USERS if rcpt == "info@example.test" else (rcpt,):
                user = db.lookup(name)
                assert user is not None
                MailStore(user.mail_root).mailbox("INBOX").append(data)
        return
    for rcpt, data in demo_messages():
        result = subprocess.run(
            [str(mda), "--config", str(config), "-f", "demo@example.test", "-r", rcpt],
            input=data,
            capture_output=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"mda could not deliver the demo mail: {result.stderr.decode()}")


def banner(passwords: dict[str, str], base: Path) -> str:
    alice = passwords.get("alice@example.test", "?")
    try:
        where = str(base.relative_to(Path.cwd()))
    except ValueError:
        where = str(base)  # MRA_DEMO_DIR outside the working directory
    lines = [
        "",
        f"mra demo: serving the mail in {where}/ on 127.0.0.1",
        "  IMAP 1143 (STARTTLS), IMAPS 1993, POP3 1110 (STLS), POP3S 1995",
        "",
        f"Users (passwords are in {where}/demo-passwords):",
        *(f"  {u}  password: {p}" for u, p in passwords.items()),
        "",
        "Try it:",
        f"  curl -k 'imaps://127.0.0.1:1993/INBOX' -u 'alice@example.test:{alice}'",
        f"  curl -k 'imaps://127.0.0.1:1993/INBOX;UID=1' -u 'alice@example.test:{alice}'",
        f"  curl -k 'pop3s://127.0.0.1:1995/' -u 'alice@example.test:{alice}'",
        "",
        "Thunderbird: Account Settings > Add Mail Account, then 'Configure manually':",
        "  incoming IMAP, server 127.0.0.1, port 1993, SSL/TLS, normal password,",
        "  username alice@example.test; accept the self-signed certificate when asked.",
        "",
        f"Deliver more mail:  .venv/bin/mda --config {where}/demo.toml -r alice@example.test < msg",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    base = Path(os.environ.get("MRA_DEMO_DIR", "maildirs")).absolute()
    config, passwords, delivered = setup(base)
    if delivered:
        print(f"delivered {len(demo_messages())} demo messages through mda")
    print(banner(passwords, base), flush=True)
    from mailstore.config import load_config
    from mra.net.server import serve

    return serve(load_config(str(config)))


if __name__ == "__main__":
    sys.exit(main())
