"""`mra who|kick|reload|stats`: the live server's commands, over `[listen] admin`.

    mra who [USER]                 the sessions open now: protocol, user, address, duration,
                                   octets in and out, IDLE
    mra kick USER [--ip ADDRESS]   end a user's sessions (the protocol's goodbye first)
    mra reload                     as SIGHUP: TLS certificate, user database, access map, log
    mra stats                      the server's counters, as `mra_* value` lines

Each prints one line per item, `key=value` (the log's format), or JSON with `--json`. Exit
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
        result = ask(path, args.command, expected_uids=server_uids(config.server.user), **request)
    except AdminError as exc:
        print(f"mra {args.command}: {exc}", file=sys.stderr)
        text = str(exc)
        unavailable = "is `mra serve` running" in text or "no answer" in text
        return EX_UNAVAILABLE if unavailable else 1
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
