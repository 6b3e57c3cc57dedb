"""`mda`: the command line, as sendmail's local mailer, Postfix and dovecot-lda call it.

    mda [--config PATH] [-f SENDER] [-a DETAIL] [-m FOLDER] -d USER [USER ...]   < message
    mda [--config PATH] [-f SENDER] [-m FOLDER] -r ADDRESS [-r ADDRESS ...]      < message
    mda [--config PATH]          (Postfix mailbox_command: USER, RECIPIENT... in the environment)
    mda check [--config PATH] ADDRESS...     how an address resolves, without delivering
    mda newaliases [--config PATH]           rebuild the compiled maps and the config cache
    mda [--config PATH] sieve check FILE...  compile Sieve scripts, as sievec (errors FILE:LINE)

Flags of procmail and mail.local (-d, -f, -a, -Y, -p, -t) and of dovecot-lda (-d, -f, -a, -m,
-r/--recipient, -e, -k) are accepted. The parser is written by hand: argparse would cost every
delivery a few milliseconds of imports.
"""

from __future__ import annotations

import gc
import os
import sys

from mda.deliver import Request, main_guard, run, say
from mda.errors import EX_OK, EX_TEMPFAIL, EX_USAGE, UsageError
from mda.interrupt import install as install_signal_handlers

DEFAULT_CONFIG = "/etc/mra/mra.toml"
# Environment a program could be subverted with (interpreter, loader, shell start-up).
_DANGEROUS = ("PYTHON", "LD_", "DYLD_", "PERL", "RUBY", "BASH_ENV", "ENV", "IFS", "CDPATH")

USAGE = """usage: mda [--config PATH] [-f SENDER] [-a DETAIL] [-m FOLDER] -d USER...
       mda [--config PATH] [-f SENDER] [-m FOLDER] -r ADDRESS
       mda [--config PATH]      (Postfix mailbox_command: USER, RECIPIENT... in the environment)
       mda check [--config PATH] ADDRESS...
       mda newaliases [--config PATH]
       mda [--config PATH] sieve check FILE...
       mda --help
       mda --version"""


def harden() -> None:
    """Before anything else: every signal means exit 75 (`mda.interrupt`), a clean
    environment, no inherited descriptors, a private umask."""
    install_signal_handlers()
    for key in list(os.environ):
        if key.startswith(_DANGEROUS):
            del os.environ[key]
    os.environ["PATH"] = "/usr/bin:/bin"
    close_inherited_descriptors()
    os.umask(0o077)


def close_inherited_descriptors() -> None:
    """Close every descriptor but 0-2 that whoever started us left open, whatever its number:
    mda switches to other uids, and runs programs, with what it holds. The descriptors are
    listed in /proc (a fixed range would miss one above it, and a range up to the largest
    possible number is a loop of two billion closes where close_range(2) is missing)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, os.sysconf("SC_OPEN_MAX")))
    for fd in fds:
        if fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listing's own descriptor, already closed


def parse(argv: list[str]) -> tuple[str, Request, list[str]]:
    """(command, request, positional arguments); raises UsageError."""
    req = Request()
    command = "deliver"
    args = list(argv)
    if args and args[0] in ("check", "newaliases", "sieve"):
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
        elif arg in ("--help", "-h"):
            command = "help"
        elif arg == "--version":
            command = "version"
        elif name in ("-Y", "-p", "-t", "-k", "-o"):
            pass  # procmail/dovecot-lda switches with no meaning for us
        elif name == "-e":
            pass  # dovecot-lda: errors to stderr, which is what we always do
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg}")
        else:
            rest.append(arg)
        i += 1
    if command == "deliver" and rest and rest[0] in ("check", "newaliases", "sieve"):
        command = rest.pop(0)  # `mda --config X check ADDRESS`
    if command == "deliver" and rest:
        raise UsageError(f"unexpected argument {rest[0]!r}")
    if command in ("help", "version"):
        rest = []
    return command, req, rest


def load_config(path: str | None) -> Config:
    """The configuration, if it is a file only root or the user mda runs as can change
    (`mda.maps.safefile`: it names the program mda runs and the uid it delivers as); else
    MapError, a temporary failure. The check comes before the cache is looked at, so a cache
    written while the file was trusted is not used once it is not."""
    if path is None and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    if path is None:
        from mailstore.config import load_config as load_defaults

        return load_defaults(None)
    from mailstore.configcache import load_cached
    from mda.maps.safefile import check as check_file
    from mda.maps.safefile import default_trusted

    check_file(path, default_trusted())
    return load_cached(path)


def check(req: Request, addresses: list[str]) -> int:
    """`mda check`: explain each address like `sendmail -bv`."""
    from mda.address import check as check_value
    from mda.address import visible
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
            check_value(address, "address")
            targets = dedupe(resolver.resolve_address(address, req.folder, trace))
        except Exception as exc:
            err = classify(exc)
            err.address = err.address or address
            print("\n".join(trace))
            print(visible(f"{address}: NOT deliverable: {err.line()}"))
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
    from mda.maps.errors import MapError
    from mda.maps.safefile import check as check_file
    from mda.maps.safefile import default_trusted, with_mail_user
    from mda.maps.virtusertable import makemap as virt_map

    path = req.config_path or (DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None)
    if path is not None:
        from mailstore.configcache import write_cache

        check_file(path, default_trusted())
        config = write_cache(path)
        print(f"{path}: configuration cache written")
    else:
        config = load_config(None)
    trusted = with_mail_user(config.mda.mail_uid)
    status = EX_OK
    for source, build in (
        (config.maps.aliases, alias_map),
        (config.maps.virtusertable, virt_map),
        (config.maps.access, access_map),
    ):
        if not os.path.exists(source):
            print(f"{source}: absent (an empty map)")
            continue
        try:
            loaded = build(source, trusted=trusted)
        except MapError as err:
            say(f"4.3.5 {err}")  # an untrusted map is not compiled, and mda will not use it
            status = EX_TEMPFAIL
            continue
        print(f"{source}: {len(loaded.table)} entries indexed")
        for warning in loaded.warnings:
            print(f"{source}: warning: {warning}")
    return status


def main(argv: list[str] | None = None) -> int:
    harden()

    def work() -> int:
        try:
            command, req, rest = parse(sys.argv[1:] if argv is None else argv)
        except UsageError as err:
            say(err.line())
            for line in USAGE.splitlines():
                say(line)  # one call per line: say() shows a newline as an escape
            return EX_USAGE
        if command == "help":
            print(USAGE)
            return EX_OK
        if command == "version":
            from mailstore import __version__

            print(f"mda {__version__}")
            return EX_OK
        if command == "check":
            return check(req, rest)
        if command == "newaliases":
            return newaliases(req)
        if command == "sieve":
            if not rest or rest[0] != "check":
                say("usage: mda [--config PATH] sieve check FILE...")
                return EX_USAGE
            from mda.sieve.checkcmd import check_files

            return check_files(rest[1:], load_config(req.config_path))
        # One delivery is one short process: the cyclic garbage collector only costs it time
        # (each collection walks every object, and a Sieve run makes enough of them to set it
        # off a dozen times); what a delivery leaves behind is freed when the process exits.
        gc.disable()
        config = load_config(req.config_path)
        if config.log.target == "stderr":
            return run(req, config)  # stderr is the MTA's: mda's one line says it all
        from mailstore import log

        try:
            log.configure_from(config.log, "mda")
        except OSError:
            # A log file this user may not append to must not defer the mail: the delivery
            # goes on, and its line on stderr (the MTA's log) is all that is said.
            return run(req, config)
        status = run(req, config)
        log.info(
            "mda-delivery",
            sender=req.sender,
            recipients=",".join(req.recipients or req.users),
            status=status,
        )
        return status

    return main_guard(work)


TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

if __name__ == "__main__":
    sys.exit(main())
