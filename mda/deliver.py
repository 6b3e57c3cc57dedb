"""`mda`'s delivery run: read the message, resolve the recipients, make each copy as its owner.

The thin command-line side of the delivery library (mda/delivery.py, shared with LMTP): the
request from the command line and Postfix's environment, the message from stdin, privileges,
and one exit status for the MTA. Each mailbox delivery runs with the mailbox owner's
privileges: when started as root we fork and drop to that user (or `[mda] mail_uid`) before
touching any of its files, and never deliver as root. Program and file targets, and mail
handed back to the MTA, run as an unprivileged user too. Exit status 0 means every copy is
durable (fsync of the file and of the directory, see mailstore); see errors.py for the rest.

Every envelope value is checked before it is used (`mda.address.check`): a control character
in the sender, a recipient, the +detail or Postfix's environment refuses the delivery rather
than reaching a header, a map, a program or a log line. Recipients are resolved before
anything is written: if any of them cannot be resolved now (a map or list that is unreadable
or not trusted), nothing is delivered and the MTA retries the whole message, so that the
retry cannot duplicate the copies of the others.
"""

from __future__ import annotations

import os
import sys

from mda.address import bare, check, visible
from mda.errors import (
    EX_OK,
    EX_TEMPFAIL,
    DeliveryError,
    TempFailure,
    UsageError,
    classify,
    worst,
)
from mda.interrupt import block, settle, unblock
from mda.interrupt import check as check_interrupted
from mda.message import Incoming
from mda.resolve import DiscardTarget, FileTarget, MailboxTarget, Resolver, dedupe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config
    from mda.resolve import Target

# What Postfix's local(8) passes (notes/clients-and-mtas.md) and mda reads: checked like the
# command line. The sender's DSN is 5.1.7 (bad sender address syntax), a recipient's 5.1.3.
_ENVELOPE_ENV = ("RECIPIENT", "ORIGINAL_RECIPIENT", "EXTENSION", "USER", "LOGNAME")


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
    """One line on stderr: Postfix and sendmail quote it in the log and the bounce. Control
    characters are written as escapes: whatever a sender put in, it stays one line."""
    try:
        os.write(2, (visible(line) + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def check_envelope(request: Request) -> None:
    """Refuse (BadAddress) any command-line or environment value with a control character."""
    env = os.environ
    if request.sender is not None:
        check(request.sender, "sender", "5.1.7")
    if "SENDER" in env:
        check(env["SENDER"], "sender", "5.1.7")
    for name in _ENVELOPE_ENV:
        if name in env:
            check(env[name], name)
    check(request.detail, "detail")
    if request.folder is not None:
        check(request.folder, "folder", "5.3.5")


def run(request: Request, config: Config, stdin_fd: int = 0) -> int:
    """Deliver to every recipient of the request; the exit status for the MTA."""
    env = os.environ
    check_envelope(request)
    if config.mail.shared:
        # Other hosts write these Maildirs too: dotlocks are judged by what this host saw,
        # not by their mtime (mailstore/shared.py), as the server's are.
        from mailstore import shared

        shared.enable(config.mail.shared_check_interval)
    if not request.users and not request.recipients:
        # Postfix mailbox_command: the recipient is the unix user we run as.
        user = env.get("USER") or env.get("LOGNAME")
        if user and env.get("RECIPIENT"):
            request.users = [user]
            request.detail = request.detail or env.get("EXTENSION", "")
        else:
            raise UsageError("no recipient: use -d USER or -r ADDRESS")
    msg = Incoming.read(stdin_fd, config.mail.max_message_size)
    check_interrupted()  # a signal while reading whose exception was swallowed
    sender = _sender(request, msg)
    resolver = Resolver(config)
    codes: list[int] = []
    if resolver.check_sender(sender) is not None:
        say(f"discarded: sender <{sender}> is DISCARDed by the access map")
        return EX_OK
    targets: list[Target] = []
    for user in request.users:
        try:
            check(user, "recipient")
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
            check(rcpt, "recipient")
            targets.extend(resolver.resolve_address(rcpt, request.folder))
        except Exception as exc:
            codes.append(_report(exc, config, rcpt))
    for problem in resolver.problems:
        codes.append(_report(problem, config, ""))
    if EX_TEMPFAIL in codes:
        # The MTA will retry every recipient (the line above says why): a copy delivered now
        # would be a second copy then.
        return EX_TEMPFAIL
    final = dedupe(targets)
    for i, target in enumerate(final):
        try:
            check_interrupted()
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
    """-f, else Postfix's SENDER, else the mbox From line, else the MTA's Return-Path;
    BadAddress (5.1.7) if it holds a control character."""
    if request.sender is not None:
        sender = request.sender
    elif "SENDER" in os.environ:
        sender = os.environ["SENDER"]
    elif msg.from_line_sender:
        sender = "" if msg.from_line_sender == "MAILER-DAEMON" else msg.from_line_sender
    else:
        paths = msg.top_values("return-path")
        sender = paths[0] if paths else ""
    return check(bare(sender), "sender", "5.1.7")


def deliver_target(
    target: Target, msg: Incoming, sender: str, config: Config, last: bool = False
) -> None:
    """Deliver one copy (mda.delivery) with the right privileges. `last`: nothing needs root
    after this one, so privileges can be dropped for good instead of in a forked child (a
    fork less per ordinary delivery)."""
    from mda.delivery import deliver_copy, sieve_scripts

    scripts: list[str] | None = None

    def work() -> None:
        deliver_copy(target, msg, sender, config, say, sole_writer=True, scripts=scripts)

    if isinstance(target, DiscardTarget):
        work()
        return
    if isinstance(target, MailboxTarget):
        msg.check_loop(target.address)
        ids = target_ids(target, config)
        # Found while still root: the global scripts are trusted by root's rules, not by
        # those of the mailbox owner we become.
        scripts = sieve_scripts(target, config)
        if ids is not None:
            _preload(*_modules_for(target, config, scripts, ids[0]))
        as_user(ids, work, config.mda.quota_bounce, fork=not last)
        return
    ids = unprivileged_ids(config)
    if ids is not None:
        _preload("subprocess", "select", "shlex", "fcntl", "mda.external")
    if isinstance(target, FileTarget):
        ids = file_ids(target.path, ids)
    as_user(ids, work, fork=not last)


# -- privileges ---------------------------------------------------------------------------


def _preload(*modules: str) -> None:
    """Import, while still root, what the unprivileged child will need: the installation may
    not be readable by the mailbox owner (a venv under /root, for instance)."""
    for name in modules:
        __import__(name)


def _modules_for(target: MailboxTarget, config: Config, scripts: list[str], uid: int) -> list[str]:
    """What a mailbox copy made as `uid` will import, loaded while still root (`_preload`)."""
    names = ["mailstore.store", "mailstore.keywords"]  # every sync reads the keywords file
    if target.user.quota_bytes:
        names.append("mailstore.quota")
    if config.mda.duplicate_window:
        names += ["hashlib", "mda.dupes"]
    if scripts:
        from mda.sieve.preload import modules_for

        names += modules_for(scripts, config, uid)
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
    mask = block()  # until each side is inside the `try` that cleans up after it
    pid = os.fork()
    if pid == 0:
        status = 75
        try:
            unblock(mask)
            os.close(read_fd)
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
            try:
                work()
                status = 0
                settle()  # done: a late signal must not make the parent report a failure
            except BaseException as exc:
                failure = classify(exc, quota_bounce)
                report = f"{failure.exit_code} {failure.dsn} {failure.text}"
                os.write(write_fd, report.encode("utf-8", "replace")[:_REPORT_MAX])
                status = failure.exit_code
        finally:
            os._exit(status)
    try:
        unblock(mask)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as r:
            report = r.read(_REPORT_MAX).decode("utf-8", "replace")
        _, status = os.waitpid(pid, 0)
    except BaseException:
        # Interrupted: the child must not go on delivering after we report a failure.
        _stop_child(pid)
        raise
    if os.waitstatus_to_exitcode(status) == 0:
        return
    code, _, rest = report.partition(" ")
    dsn, _, text = rest.partition(" ")
    if code == "75" or not code.isdigit():
        raise TempFailure(text or "delivery process failed", dsn=dsn or "4.3.0")
    err = DeliveryError(text, dsn=dsn)
    err.exit_code = int(code)
    raise err


_REPORT_MAX = 4096  # a child's report is one error line


def _stop_child(pid: int) -> None:
    """Ask a forked delivery to stop (it unwinds as for any signal) and wait for it."""
    import _signal  # type: ignore[import-not-found]

    try:
        os.kill(pid, _signal.SIGTERM)
        os.waitpid(pid, 0)
    except OSError:
        pass


if TYPE_CHECKING:
    from collections.abc import Callable


def main_guard(work: Callable[[], int]) -> int:
    """Run `work`; any exception becomes one line and an exit status, never a traceback.
    Once the status is known, no signal may change it (`mda.interrupt.settle`)."""
    try:
        code = work()
        settle()
        return code
    except BaseException as exc:  # a signal's Interrupted included: retry later
        settle()
        failure = classify(exc)
        say(failure.line())
        return failure.exit_code
    finally:
        try:
            sys.stdout.flush()
        except Exception:
            pass
