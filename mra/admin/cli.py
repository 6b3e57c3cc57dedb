"""`mra who|kick|reload|stats`: the live server's commands, over `[listen] admin`.

    mra who [USER]                 the sessions open now: protocol, user, address, duration,
                                   octets in and out, IDLE
    mra kick USER [--ip ADDRESS]   end a user's sessions (the protocol's goodbye first)
    mra reload                     as SIGHUP: TLS certificate, user database, access map, log
    mra stats                      the server's counters, as `mra_* value` lines

Each prints one line per item, `key=value` (the log's format), or JSON with `--json`. With
`[server] workers` above 1 the answer is every worker's (the worker that takes the request
asks the others, mra/net/control.py): `who` lists all their sessions with each one's `pid` and
`worker`, `kick` reaches the worker holding the user, `reload` reloads them all, `stats` sums
them. A worker that does not answer is named on stderr, and the others' answer printed. Exit
status: 0, 1 when the server refused the request or `kick` found nobody, 69
(EX_UNAVAILABLE) when no server answers, 78 when `[listen] admin` is not configured.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mailstore.config import Config, UnixEndpoint
from mailstore.log import quote
from mra.admin.client import ask, server_uids
from mra.admin.protocol import AdminError

EX_UNAVAILABLE = 69
EX_CONFIG = 78


def add_commands(sub: Any, config_path: Any) -> None:
    """The subcommands, on `mra`'s parser (`config_path(args)` finds the configuration)."""
    w = sub.add_parser("who", help="list the sessions open now")
    w.add_argument("user", nargs="?")
    k = sub.add_parser("kick", help="end a user's sessions")
    k.add_argument("user")
    k.add_argument("--ip", help="only the sessions from this address")
    sub.add_parser("reload", help="re-read certificates, users and the access map (as SIGHUP)")
    sub.add_parser("stats", help="the server's counters")
    for name in ("who", "kick", "reload", "stats"):
        p = sub.choices[name]
        p.add_argument("--config", default=argparse.SUPPRESS)
        p.add_argument("--json", action="store_true", help="print the answer as JSON")
        p.set_defaults(func=lambda args, c=config_path: run(args, c))
    # On the store directly (mra/admin/store.py), beside a running server or without one.
    m = sub.add_parser("mailbox", help="list|status|create|delete|rename a user's folders")
    m.add_argument("action", choices=["list", "status", "create", "delete", "rename"])
    m.add_argument("user")
    m.add_argument("names", nargs="*")
    for name, text in (
        ("expunge", "expunge the messages an IMAP SEARCH query matches"),
        ("search", "the UIDs an IMAP SEARCH query matches"),
        ("fetch", "IMAP FETCH the messages a query matches (items: default FLAGS ENVELOPE...)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("user")
        p.add_argument("mailbox")
        p.add_argument("query", nargs="+", help="IMAP SEARCH keys, e.g. SEEN BEFORE 1-Jan-2026")
        if name == "fetch":
            p.add_argument("--items", default="", help='e.g. "(BODY.PEEK[HEADER])"')
    q = sub.add_parser("quota", help="a user's quota: get, or recalc from the Maildir")
    q.add_argument("action", choices=["get", "recalc"])
    q.add_argument("user")
    r = sub.add_parser("force-resync", help="list a user's folders in full, update uidlists")
    r.add_argument("user")
    r.add_argument("mailbox", nargs="*")
    a = sub.add_parser("auth", help="auth test USER [PASSWORD]: check a password")
    a.add_argument("action", choices=["test"])
    a.add_argument("user")
    a.add_argument("password", nargs="?", help="default: read from the terminal or stdin")
    for name in ("mailbox", "expunge", "search", "fetch", "quota", "force-resync", "auth"):
        p = sub.choices[name]
        p.add_argument("--config", default=argparse.SUPPRESS)
        p.set_defaults(func=lambda args, c=config_path: run_store(args, c))


def run_store(args: argparse.Namespace, config_path: Any) -> int:
    from mailstore.config import load_config
    from mailstore.errors import ErrorKind, MailError
    from mra.admin import store

    config = load_config(config_path(args))
    command = args.command
    try:
        if command == "auth":
            return auth_test(config, args.user, args.password)
        if command == "mailbox":
            rest = [args.action, *args.names]
        elif command in ("expunge", "search", "fetch"):
            rest = [args.mailbox, " ".join(args.query)]
            if command == "fetch" and args.items:
                rest.append(args.items)
        elif command == "quota":
            rest = [args.action]
        elif command == "force-resync":
            rest = list(args.mailbox)
        else:
            rest = []
        lines = store.run(config, command, args.user, rest)
    except AdminError as exc:
        print(f"mra {command}: {exc}", file=sys.stderr)
        return 1
    except MailError as exc:
        print(f"mra {command}: {exc.message}", file=sys.stderr)
        return 75 if exc.kind == ErrorKind.TEMPORARY else 1
    for line in lines:
        print(line)
    return 0


def auth_test(config: Config, user: str, password: str | None) -> int:
    """`mra auth test`: 0 and `passdb: USER auth succeeded` when the password is right,
    1 otherwise (an unknown user and a wrong password look alike, as to a client)."""
    from mra.auth.glue import make_authenticator

    if password is None:
        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass("Password: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    auth = make_authenticator(config)
    found = auth.authenticator.authenticate(user, password)
    if found is None:
        print(f"passdb: {user} auth failed", file=sys.stderr)
        return 1
    print(f"passdb: {user} auth succeeded (user={found.name})")
    return 0


def socket_path(config: Config) -> str | None:
    listener = config.listen.admin
    return listener.path if isinstance(listener, UnixEndpoint) else None


def run(args: argparse.Namespace, config_path: Any) -> int:
    from mailstore.config import load_config

    config = load_config(config_path(args))
    path = socket_path(config)
    if path is None:
        print(
            f'mra {args.command}: [listen] admin is not set (admin = "unix:/run/mra/admin")',
            file=sys.stderr,
        )
        return EX_CONFIG
    request: dict[str, Any] = {}
    if args.command in ("who", "kick") and args.user:
        request["user"] = args.user
    if args.command == "kick" and args.ip:
        request["ip"] = args.ip
    try:
        result, unanswered = ask(
            path,
            args.command,
            timeout=config.admin.timeout,
            max_answer=config.admin.max_answer,
            expected_uids=server_uids(config.server.user),
            **request,
        )
    except AdminError as exc:
        print(f"mra {args.command}: {exc}", file=sys.stderr)
        text = str(exc)
        unavailable = "is `mra serve` running" in text or "no answer" in text
        return EX_UNAVAILABLE if unavailable else 1
    for missing in unanswered:  # the others' answers are printed: this says what is not
        print(
            f"mra {args.command}: worker {missing.get('worker')} did not answer: "
            f"{missing.get('error')}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        show(args.command, result)
    if args.command == "kick" and isinstance(result, dict) and not result.get("kicked"):
        return 1
    return 0


def show(command: str, result: Any) -> None:
    if command == "who":
        for row in result:
            print(" ".join(f"{k}={quote(v)}" for k, v in row.items() if v is not None))
    elif command == "stats":
        from mra.metrics import render

        sys.stdout.write(
            "".join(line + "\n" for line in render(result).splitlines() if line[:1] != "#")
        )
    else:
        print(" ".join(f"{k}={quote(v)}" for k, v in result.items()))
