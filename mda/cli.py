"""`mda`: the command line, as sendmail's local mailer, Postfix and dovecot-lda call it.

    mda [--config PATH] [-f SENDER] [-a DETAIL] [-m FOLDER] -d USER [USER ...]   < message
    mda [--config PATH] [-f SENDER] [-m FOLDER] -r ADDRESS [-r ADDRESS ...]      < message
    mda [--config PATH]          (Postfix mailbox_command: USER, RECIPIENT... in the environment)
    mda check [--config PATH] ADDRESS...     how an address resolves, without delivering
    mda newaliases [--config PATH]           rebuild the compiled maps and the config cache

Flags of procmail and mail.local (-d, -f, -a, -Y, -p, -t) and of dovecot-lda (-d, -f, -a, -m,
-r/--recipient, -e, -k) are accepted. The parser is written by hand: argparse would cost every
delivery a few milliseconds of imports.
"""

from __future__ import annotations

import os
import sys

from mda.deliver import Request, main_guard, run, say
from mda.errors import EX_OK, EX_USAGE, UsageError

DEFAULT_CONFIG = "/etc/mra/mra.toml"
# Environment a program could be subverted with (interpreter, loader, shell start-up).
_DANGEROUS = ("PYTHON", "LD_", "DYLD_", "PERL", "RUBY", "BASH_ENV", "ENV", "IFS", "CDPATH")

USAGE = """usage: mda [--config PATH] [-f SENDER] [-a DETAIL] [-m FOLDER] -d USER...
       mda [--config PATH] [-f SENDER] [-m FOLDER] -r ADDRESS
       mda check [--config PATH] ADDRESS...
       mda newaliases [--config PATH]"""


def harden() -> None:
    """Before anything else: a clean environment, no inherited descriptors, a private umask."""
    for key in list(os.environ):
        if key.startswith(_DANGEROUS):
            del os.environ[key]
    os.environ["PATH"] = "/usr/bin:/bin"
    os.closerange(3, 1 << 16)
    os.umask(0o077)
    # A death by signal is bounced by Postfix's /bin/sh path: turn the usual ones into an
    # orderly exit 75 instead (the MTA retries; nothing was acknowledged). `_signal`, not
    # `signal`, which would import `enum` at start-up.
    import _signal  # type: ignore[import-not-found]

    for signum in (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT, _signal.SIGXCPU):
        _signal.signal(signum, _interrupted)


class Interrupted(Exception):
    """A terminating signal arrived: classified as a temporary failure."""


def _interrupted(signum: int, frame: object) -> None:
    raise Interrupted(f"interrupted by signal {signum}")


def parse(argv: list[str]) -> tuple[str, Request, list[str]]:
    """(command, request, positional arguments); raises UsageError."""
    req = Request()
    command = "deliver"
    args = list(argv)
    if args and args[0] in ("check", "newaliases"):
        command = args.pop(0)
    rest: list[str] = []
    i = 0

    def value(flag: str) -> str:
        nonlocal i
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            return arg.split("=", 1)[1]
        if not arg.startswith("--") and len(arg) > 2:
            return arg[2:]  # -fsender
        i += 1
        if i >= len(args):
            raise UsageError(f"option {flag} needs a value")
        return args[i]

    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i + 1 :])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if name == "--config":
            req.config_path = value(name)
        elif name == "-f":
            req.sender = value(name)
        elif name == "-a":
            req.detail = value(name)
        elif name == "-m":
            req.folder = value(name)
        elif name in ("-r", "--recipient"):
            req.recipients.append(value(name))
        elif name == "-d":
            first = value(name)
            req.users.append(first)
            # procmail: every argument after -d is a recipient.
            while i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                req.users.append(args[i])
        elif name in ("-Y", "-p", "-t", "-k", "-o"):
            pass  # procmail/dovecot-lda switches with no meaning for us
        elif name == "-e":
            pass  # dovecot-lda: errors to stderr, which is what we always do
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg}")
        else:
            rest.append(arg)
        i += 1
    if command == "deliver" and rest and rest[0] in ("check", "newaliases"):
        command = rest.pop(0)  # `mda --config X check ADDRESS`
    if command == "deliver" and rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    return command, req, rest


def load_config(path: str | None) -> Config:
    if path is None and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    if path is None:
        from mailstore.config import load_config as load_defaults

        return load_defaults(None)
    from mailstore.configcache import load_cached

    return load_cached(path)


def check(req: Request, addresses: list[str]) -> int:
    """`mda check`: explain each address like `sendmail -bv`."""
    from mda.errors import classify
    from mda.resolve import MailboxTarget, Resolver, dedupe

    if not addresses:
        raise UsageError("mda check needs an address")
    config = load_config(req.config_path)
    status = EX_OK
    for address in addresses:
        resolver = Resolver(config)
        trace: list[str] = []
        try:
            targets = dedupe(resolver.resolve_address(address, req.folder, trace))
        except Exception as exc:
            err = classify(exc)
            err.address = err.address or address
            print("\n".join(trace))
            print(f"{address}: NOT deliverable: {err.line()}")
            status = max(status, err.exit_code)
            continue
        print("\n".join(trace))
        for target in targets:
            print(f"{address} -> {target.describe()}")
            if isinstance(target, MailboxTarget):
                print(f"    Delivered-To: {target.address}")
        for problem in resolver.problems:
            print(f"{address}: part not deliverable: {problem.line()}")
    return status


def newaliases(req: Request) -> int:
    """Rebuild every compiled map (and the config cache) now."""
    from mda.maps.access import makemap as access_map
    from mda.maps.aliases import newaliases as alias_map
    from mda.maps.virtusertable import makemap as virt_map

    path = req.config_path or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    if path is not None:
        from mailstore.configcache import write_cache

        config = write_cache(path)
        print(f"{path}: configuration cache written")
    else:
        config = load_config(None)
    for source, build in (
        (config.maps.aliases, alias_map),
        (config.maps.virtusertable, virt_map),
        (config.maps.access, access_map),
    ):
        if os.path.exists(source):
            loaded = build(source)
            print(f"{source}: {len(loaded.table)} entries indexed")
            for warning in loaded.warnings:
                print(f"{source}: warning: {warning}")
        else:
            print(f"{source}: absent (an empty map)")
    return EX_OK


def main(argv: list[str] | None = None) -> int:
    harden()

    def work() -> int:
        try:
            command, req, rest = parse(sys.argv[1:] if argv is None else argv)
        except UsageError as err:
            say(err.line())
            say(USAGE)
            return EX_USAGE
        if command == "check":
            return check(req, rest)
        if command == "newaliases":
            return newaliases(req)
        return run(req, load_config(req.config_path))

    return main_guard(work)


TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

if __name__ == "__main__":
    sys.exit(main())
