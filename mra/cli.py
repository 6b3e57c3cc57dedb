"""`mra`: serve, check a configuration, manage the passwd-file.

mra serve --config PATH
mra check-config --config PATH
mra user add NAME [--password-stdin] [--scheme ARGON2ID] [--config PATH]
mra user passwd NAME [--password-stdin] [--config PATH]
mra user del NAME [--config PATH]
mra user list [--config PATH]
mra who|kick|reload|stats ... [--config PATH]   the live server, over [listen] admin
mra --version
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from mailstore.config import ConfigError, check_config, load_config

DEFAULT_CONFIG = "/etc/mra/mra.toml"


def _config_path(args: argparse.Namespace) -> str | None:
    if args.config:
        return str(args.config)
    return DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None


def cmd_serve(args: argparse.Namespace) -> int:
    from mra.net.server import serve

    try:
        config = load_config(_config_path(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 78
    if not config.listen.enabled() and not (config.cluster.auth_http or config.cluster.socketmap):
        print("nothing to serve: the configuration has no [listen] entries", file=sys.stderr)
        return 78
    from mra.net.listeners import ListenError
    from mra.net.server import InstallationError

    try:
        return serve(config)
    except ListenError as exc:
        print(f"mra serve: {exc}", file=sys.stderr)
        return 71  # EX_OSERR, as a port already in use is
    except InstallationError as exc:
        print(f"mra serve: {exc}", file=sys.stderr)
        return 77  # EX_NOPERM
    except OSError as exc:  # the log file ([log] path) cannot be opened
        print(f"mra serve: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 73  # EX_CANTCREAT


def cmd_check_config(args: argparse.Namespace) -> int:
    path = _config_path(args)
    if path is None:
        print("no configuration file given (--config PATH)", file=sys.stderr)
        return 64
    problems = check_config(path)
    for p in problems:
        print(f"{path}:{p.line}: {p.message}" if p.line else f"{path}: {p.message}")
    if not problems:
        print(f"{path}: OK")
    return 1 if problems else 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("the passwords differ")
    if not password:
        raise SystemExit("an empty password is not allowed")
    return password


def cmd_user(args: argparse.Namespace) -> int:
    from mra.auth.passwdfile import PasswdEditor

    if args.action == "lookup":  # any user database, system users included
        from mra.admin.cli import run_store

        if not args.name:
            print("mra user lookup needs a NAME", file=sys.stderr)
            return 64
        args.command, args.user = "user-lookup", args.name
        return run_store(args, _config_path)
    config = load_config(_config_path(args))
    if not config.auth.passwd_file:
        print(
            "[auth] passwd_file is not set: system users are managed with adduser", file=sys.stderr
        )
        return 64
    editor = PasswdEditor(config.auth.passwd_file)
    if args.action == "list":
        for name in editor.names():
            print(name)
        return 0
    if not args.name:
        print(f"mra user {args.action} needs a NAME", file=sys.stderr)
        return 64
    if args.action == "del":
        return 0 if editor.delete(args.name) else _missing(args.name)
    from mra.auth.passwords import hash_password

    stored = hash_password(_read_password(args), args.scheme)
    if args.action == "add":
        if not editor.add(args.name, stored):
            print(f"{args.name} exists already", file=sys.stderr)
            return 1
        return 0
    return 0 if editor.set_password(args.name, stored) else _missing(args.name)


def _missing(name: str) -> int:
    print(f"no user {name}", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mra", description="POP3/IMAP server for Maildir++ stores")
    p.add_argument("--config", help=f"configuration file (default {DEFAULT_CONFIG})")
    from mailstore import __version__

    p.add_argument("--version", action="version", version=f"mra {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve every listener of the configuration")
    s.add_argument("--config", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)
    c = sub.add_parser("check-config", help="validate a configuration file")
    c.add_argument("--config", default=argparse.SUPPRESS)
    c.set_defaults(func=cmd_check_config)
    u = sub.add_parser("user", help="manage the passwd-file")
    u.add_argument("action", choices=["add", "passwd", "del", "list", "lookup"])
    u.add_argument("name", nargs="?")
    u.add_argument("--password-stdin", action="store_true")
    u.add_argument("--scheme", default=None, help="password scheme (default: ARGON2ID)")
    u.add_argument("--config", default=argparse.SUPPRESS)
    u.set_defaults(func=cmd_user)
    from mra.admin.cli import add_commands

    add_commands(sub, _config_path)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 78
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
