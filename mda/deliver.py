"""One delivery run: read the message, resolve the recipients, file or hand on each copy.

Each mailbox delivery runs with the mailbox owner's privileges: when started as root we fork and
drop to that user (or `[mda] mail_uid`) before touching any of its files, and never deliver as
root. Program and file targets, and mail handed back to the MTA, run as an unprivileged user
too. Exit status 0 means every copy is durable (fsync of the file and of the directory, see
mailstore); see errors.py for the rest.
"""

from __future__ import annotations

import os
import sys
import time

from mda.errors import (
    EX_OK,
    DeliveryError,
    Refused,
    TempFailure,
    UsageError,
    classify,
    worst,
)
from mda.message import Incoming
from mda.resolve import (
    DiscardTarget,
    FileTarget,
    ForwardTarget,
    MailboxTarget,
    ProgramTarget,
    Resolver,
    bare,
    dedupe,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config
    from mailstore.store import MailStore
    from mda.resolve import Target

SAFE_PATH = "/usr/bin:/bin"


class Request:
    """What the MTA asked for, from the command line and (for Postfix) the environment."""

    def __init__(self) -> None:
        self.config_path: str | None = None
        self.sender: str | None = None
        self.users: list[str] = []
        self.detail = ""
        self.recipients: list[str] = []
        self.folder: str | None = None


def say(line: str) -> None:
    """One line on stderr: Postfix and sendmail quote it in the log and the bounce."""
    try:
        os.write(2, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def run(request: Request, config: Config, stdin_fd: int = 0) -> int:
    """Deliver to every recipient of the request; the exit status for the MTA."""
    env = os.environ
    if not request.users and not request.recipients:
        # Postfix mailbox_command: the recipient is the unix user we run as.
        user = env.get("USER") or env.get("LOGNAME")
        if user and env.get("RECIPIENT"):
            request.users = [user]
            request.detail = request.detail or env.get("EXTENSION", "")
        else:
            raise UsageError("no recipient: use -d USER or -r ADDRESS")
    msg = Incoming.read(stdin_fd, config.mail.max_message_size)
    sender = _sender(request, msg)
    resolver = Resolver(config)
    codes: list[int] = []
    if resolver.check_sender(sender) is not None:
        say(f"discarded: sender <{sender}> is DISCARDed by the access map")
        return EX_OK
    targets: list[Target] = []
    for user in request.users:
        try:
            name, _, detail = user.partition("+")
            address = env.get("RECIPIENT", "") if len(request.users) == 1 else ""
            target = resolver.resolve_user(name, request.detail or detail, request.folder)
            if address and isinstance(target, MailboxTarget):
                target.address = address
            targets.append(target)
        except Exception as exc:
            codes.append(_report(exc, config, user))
    for rcpt in request.recipients:
        try:
            targets.extend(resolver.resolve_address(rcpt, request.folder))
        except Exception as exc:
            codes.append(_report(exc, config, rcpt))
    for problem in resolver.problems:
        codes.append(_report(problem, config, ""))
    final = dedupe(targets)
    for i, target in enumerate(final):
        try:
            deliver_target(target, msg, sender, config, last=i == len(final) - 1)
            codes.append(EX_OK)
        except Exception as exc:
            codes.append(_report(exc, config, getattr(target, "address", "")))
    return worst(codes)


def _report(exc: BaseException, config: Config, address: str) -> int:
    err = classify(exc, config.mda.quota_bounce)
    if address and not err.address:
        err.address = address
    say(err.line())
    return err.exit_code


def _sender(request: Request, msg: Incoming) -> str:
    """-f, else Postfix's SENDER, else the mbox From line, else the MTA's Return-Path."""
    if request.sender is not None:
        return bare(request.sender)
    env = os.environ.get("SENDER")
    if env is not None:
        return bare(env)
    if msg.from_line_sender:
        return "" if msg.from_line_sender == "MAILER-DAEMON" else bare(msg.from_line_sender)
    paths = msg.top_values("return-path")
    return bare(paths[0]) if paths else ""


def deliver_target(
    target: Target, msg: Incoming, sender: str, config: Config, last: bool = False
) -> None:
    """Deliver one copy. `last`: nothing needs root after this one, so privileges can be
    dropped for good instead of in a forked child (a fork less per ordinary delivery)."""
    if isinstance(target, DiscardTarget):
        say(f"discarded: {target.reason}")
        return
    if isinstance(target, MailboxTarget):
        msg.check_loop(target.address)
        data = msg.for_delivery(sender, target.address)
        ids = target_ids(target, config)
        if ids is not None:
            _preload(*_modules_for(target, config))
        work = lambda: store_in_mailbox(target, data, msg, sender, config)  # noqa: E731
        as_user(ids, work, config.mda.quota_bounce, fork=not last)
        return
    data = msg.for_delivery(sender, "")
    ids = unprivileged_ids(config)
    if ids is not None:
        _preload("subprocess", "shlex", "fcntl")
    if isinstance(target, ForwardTarget):
        as_user(ids, lambda: forward(config, sender, target.address, data), fork=not last)
    elif isinstance(target, ProgramTarget):
        as_user(ids, lambda: run_program(config, target.command, data, sender), fork=not last)
    elif isinstance(target, FileTarget):
        ids = file_ids(target.path, ids)
        as_user(ids, lambda: append_mbox(target.path, data, sender), fork=not last)


# -- privileges ---------------------------------------------------------------------------


def _preload(*modules: str) -> None:
    """Import, while still root, what the unprivileged child will need: the installation may
    not be readable by the mailbox owner (a venv under /root, for instance)."""
    for name in modules:
        __import__(name)


def _modules_for(target: MailboxTarget, config: Config) -> list[str]:
    names = ["mailstore.store"]
    if target.user.quota_bytes:
        names.append("mailstore.quota")
    if config.mda.duplicate_window:
        names += ["hashlib", "mda.dupes"]
    if sieve_scripts(target, config):
        names += ["mda.sieve", "subprocess"]
    return names


def target_ids(target: MailboxTarget, config: Config) -> tuple[int, int] | None:
    """The (uid, gid) to deliver as; None when we are not root (deliver as ourselves)."""
    if os.geteuid() != 0:
        return None
    user = target.user
    if user.uid is not None and user.uid != 0:
        return user.uid, user.gid if user.gid is not None else user.uid
    if config.mda.mail_uid:
        return _named_ids(config.mda.mail_uid)
    raise TempFailure(
        f"refusing to deliver to {user.name} as root: give the user a uid in the passwd-file "
        "or set [mda] mail_uid",
        dsn="4.3.5",
    )


def unprivileged_ids(config: Config) -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    return _named_ids(config.mda.mail_uid or "nobody")


def file_ids(path: str, fallback: tuple[int, int] | None) -> tuple[int, int] | None:
    """An mbox file is written as its owner (never root); a new one as the fallback user."""
    if os.geteuid() != 0:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return fallback
    return (st.st_uid, st.st_gid) if st.st_uid != 0 else fallback


def _named_ids(name: str) -> tuple[int, int]:
    import pwd

    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise TempFailure(f"no such user {name!r} for [mda] mail_uid", dsn="4.3.5") from None
    if pw.pw_uid == 0:
        raise TempFailure("[mda] mail_uid must not be root", dsn="4.3.5")
    return pw.pw_uid, pw.pw_gid


def as_user(
    ids: tuple[int, int] | None,
    work: Callable[[], None],
    quota_bounce: bool = False,
    fork: bool = True,
) -> None:
    """Run `work` with the given ids: in a forked child when we are root and more work needs
    root afterwards, so the parent keeps its privileges for the next recipient (the child's
    DeliveryError comes back as its line); otherwise by dropping privileges for good."""
    if ids is None:
        work()
        return
    if not fork:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
        work()
        return
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 75
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
            try:
                work()
                status = 0
            except BaseException as exc:
                failure = classify(exc, quota_bounce)
                report = f"{failure.exit_code} {failure.dsn} {failure.text}"
                os.write(write_fd, report.encode("utf-8", "replace"))
                status = failure.exit_code
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as r:
        report = r.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        return
    code, _, rest = report.partition(" ")
    dsn, _, text = rest.partition(" ")
    if code == "75" or not code.isdigit():
        raise TempFailure(text or "delivery process failed", dsn=dsn or "4.3.0")
    err = DeliveryError(text, dsn=dsn)
    err.exit_code = int(code)
    raise err


# -- mailboxes ----------------------------------------------------------------------------


def store_in_mailbox(
    target: MailboxTarget, data: bytes, msg: Incoming, sender: str, config: Config
) -> None:
    from mailstore.store import MailStore

    user = target.user
    quota = None
    if user.quota_bytes:
        from mailstore.quota import QuotaLimit

        quota = QuotaLimit(bytes=user.quota_bytes, messages=None)
    store = MailStore(user.mail_root, quota_limit=quota)
    if config.mda.duplicate_window and msg.message_id:
        from mda.dupes import Duplicates

        dupes = Duplicates(user.mail_root, config.mda.duplicate_window)
        if dupes.seen(msg.message_id):
            say(f"duplicate {msg.message_id} for {user.name} dropped")
            return
    else:
        dupes = None
    default = _usable_folder(store, target.folder or "INBOX")
    actions = sieve_actions(target, msg, sender, config, store)
    if actions is None:
        store.mailbox(default).append(data)
    else:
        perform(actions, store, default, data, sender, config)
    if dupes is not None:
        dupes.remember(msg.message_id)


def _usable_folder(store: MailStore, name: str) -> str:
    """The folder if it exists, else INBOX (dovecot-lda's behaviour for -m)."""
    from mailstore.errors import MailError

    try:
        if store.exists(name):
            return name
    except MailError:
        pass
    if name != "INBOX":
        say(f"folder {name!r} does not exist, delivered to INBOX")
    return "INBOX"


def sieve_scripts(target: MailboxTarget, config: Config) -> list[str]:
    paths = []
    if config.mda.sieve_before:
        paths.append(config.mda.sieve_before)
    home = target.user.home
    if home:
        paths.append(os.path.join(home, ".dovecot.sieve"))
    if config.mda.sieve_after:
        paths.append(config.mda.sieve_after)
    return [p for p in paths if os.path.isfile(p)]


def sieve_actions(
    target: MailboxTarget, msg: Incoming, sender: str, config: Config, store: MailStore
) -> list[object] | None:
    """The Sieve actions for this delivery, or None without a script. A broken script never
    loses mail: it is reported and the message is kept (RFC 5228 2.10.6)."""
    paths = sieve_scripts(target, config)
    if not paths:
        return None
    from mda.sieve import (
        SieveEnvelope,
        SieveError,
        SieveMessage,
        evaluate_chain,
        parse,
    )

    try:
        scripts = []
        for path in paths:
            with open(path, encoding="utf-8", errors="replace") as f:
                scripts.append(parse(f.read()))
        recipient = target.address
        if target.detail and "+" not in recipient:
            local, at, domain = recipient.partition("@")
            recipient = f"{local}+{target.detail}{at}{domain}"
        return list(
            evaluate_chain(
                scripts,
                SieveMessage.from_bytes(msg.raw),
                SieveEnvelope(sender, recipient),
                mailbox_exists=store.exists,
            )
        )
    except SieveError as exc:
        say(f"sieve script error ({exc}); message kept in INBOX")
    except OSError as exc:
        say(f"cannot read sieve script ({exc.strerror}); message kept in INBOX")
    return None


def perform(
    actions: list[object],
    store: MailStore,
    default: str,
    data: bytes,
    sender: str,
    config: Config,
) -> None:
    from mda.sieve import Discard, FileInto, Keep, Redirect

    for action in actions:
        if isinstance(action, Keep):
            store.mailbox(default).append(data, flags=sorted(action.flags))
        elif isinstance(action, FileInto):
            folder = action.mailbox
            if not store.exists(folder):
                if action.create:
                    store.create_folder(folder)
                else:
                    say(f"fileinto {folder!r}: no such folder, kept in INBOX")
                    folder = "INBOX"
            store.mailbox(folder).append(data, flags=sorted(action.flags))
        elif isinstance(action, Redirect):
            forward(config, sender, action.address, data)
        elif isinstance(action, Discard):
            say("discarded by sieve")


# -- other targets ------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    return {"PATH": SAFE_PATH, "LANG": "C"}


def forward(config: Config, sender: str, address: str, data: bytes) -> None:
    """Hand a copy back to the MTA: `sendmail -i -f SENDER -- RCPT`. Any failure is
    temporary: the MTA keeps the message and tries again."""
    import subprocess

    cmd = [config.mda.sendmail, "-i", "-f", sender or "<>", "--", address]
    try:
        proc = subprocess.run(
            cmd,
            input=data,
            capture_output=True,
            env=clean_env(),
            timeout=config.mda.program_timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TempFailure(f"cannot forward to {address}: {exc}", dsn="4.3.0") from exc
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TempFailure(
            f"forwarding to {address} failed ({proc.returncode}): {why[-1] if why else ''}",
            dsn="4.3.0",
        )


def run_program(config: Config, command: str, data: bytes, sender: str) -> None:
    """An aliases `|program` target: run without a shell (unless configured), with a timeout."""
    import subprocess

    if config.mda.program_shell:
        argv = ["/bin/sh", "-c", command]
    else:
        import shlex

        argv = shlex.split(command)
    env = clean_env()
    env["SENDER"] = sender
    try:
        proc = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            env=env,
            cwd="/",
            timeout=config.mda.program_timeout,
        )
    except subprocess.TimeoutExpired:
        raise TempFailure(f"program {argv[0]} timed out", dsn="4.3.0") from None
    except OSError as exc:
        raise TempFailure(f"cannot run {argv[0]}: {exc.strerror}", dsn="4.3.0") from exc
    if proc.returncode in (75, 71):
        raise TempFailure(f"program {argv[0]} asked to retry ({proc.returncode})", dsn="4.3.0")
    if proc.returncode != 0:
        raise Refused(f"program {argv[0]} failed ({proc.returncode})", dsn="5.3.0")


def append_mbox(path: str, data: bytes, sender: str) -> None:
    """An aliases `/file` target: append in mbox format, locked, and fsynced."""
    import fcntl

    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    body = data.replace(b"\r\n", b"\n")
    lines = body.split(b"\n")
    quoted = b"\n".join(b">" + ln if ln.lstrip(b">").startswith(b"From ") else ln for ln in lines)
    entry = f"From {sender or 'MAILER-DAEMON'} {stamp}\n".encode() + quoted.rstrip(b"\n") + b"\n\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise TempFailure(f"cannot open {path}: {exc.strerror}", dsn="4.3.0") from exc
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(entry)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)  # no partial message left in the mbox
            raise TempFailure(f"cannot write {path}: {exc.strerror}", dsn="4.3.0") from exc
    finally:
        os.close(fd)


if TYPE_CHECKING:
    from collections.abc import Callable


def main_guard(work: Callable[[], int]) -> int:
    """Run `work`; any exception becomes one line and an exit status, never a traceback."""
    try:
        return work()
    except BaseException as exc:  # a signal's KeyboardInterrupt included: retry later
        failure = classify(exc)
        say(failure.line())
        return failure.exit_code
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
