"""The script commands of the authenticated state (RFC 5804 sections 2.5 to 2.12): HAVESPACE,
PUTSCRIPT, CHECKSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT.

Each checks its arguments on the reactor and does its work in the thread pool (`Call`): the
disk (storage.py: scans, fsync) and the Sieve parser (checker.py: a 1 MiB script takes a while)
never run on the reactor. A storage error becomes its answer in one place, `_failed`.

What the RFC leaves to us, and what we chose:
* PUTSCRIPT checks the quota (as HAVESPACE would), then compiles, then stores, as Pigeonhole
  does; an empty script is refused ("A script of zero length SHOULD be disallowed", 2.6).
  Errors come back as `NO "line N: error: ..."`, several lines as a literal; a script that
  compiles with warnings is stored and answered `OK (WARNINGS) "line N: warning: ..."`.
* SETACTIVE compiles the script again unless it is active already, as Pigeonhole does: a
  script put there by other means (a shell, an older server) that does not compile is not
  made active, since `mda` would only keep every message in INBOX with an error.
* LISTSCRIPTS is made in the thread and sent as a Stream, so a directory of 100,000 scripts
  costs the client's pace and 64 KiB at a time, not a 5 MB answer at once.
* GETSCRIPT streams the file it opened (in the thread, O_NOFOLLOW, a regular file), exactly
  the size it had when opened; a file shortened meanwhile ends the connection rather than
  let the client read the next answer as part of the script.
"""

from __future__ import annotations

import os

from mra import log
from mra.managesieve import checker
from mra.managesieve import response as r
from mra.managesieve.reader import Arg, Atom
from mra.managesieve.session import (
    AUTH,
    Handler,
    ManageSieveSession,
    Refusal,
    arity,
    string_arg,
)
from mra.managesieve.storage import (
    NoSuchScript,
    QuotaExceeded,
    ScriptExists,
    ScriptIsActive,
    StorageError,
    name_from_bytes,
)
from mra.session import Call, Output, Send, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_CHUNK = 1 << 16
_MAX_NUMBER = 2**32 - 1


def _name(arg: Arg) -> str:
    name = name_from_bytes(string_arg(arg))
    if name is None:
        raise Refusal(r.BAD_NAME)
    return name


def _number(arg: Arg) -> int:
    if not isinstance(arg, Atom) or not arg.value.isdigit() or len(arg.value) > 10:
        raise Refusal(r.BAD_SIZE, bad=True)
    value = int(arg.value)
    if value > _MAX_NUMBER:
        raise Refusal(r.BAD_SIZE, bad=True)
    return value


def _run(
    s: ManageSieveSession,
    command: str,
    work: Callable[[], object],
    done: Callable[[object], list[Output]],
) -> list[Output]:
    """`work` in the thread pool, then `done(result)`; a StorageError (or a bug) in either
    becomes its answer."""

    def then(result: object) -> list[Output]:
        if isinstance(result, BaseException):
            return _failed(s, command, result)
        try:
            return done(result)
        except Exception as exc:
            return _failed(s, command, exc)

    return [Call(work, then)]


def _failed(s: ManageSieveSession, command: str, exc: BaseException) -> list[Output]:
    """The one mapping of storage errors to answers (RFC 5804 1.3)."""
    if isinstance(exc, NoSuchScript):
        return [Send(r.no(r.NO_SUCH_SCRIPT, r.NONEXISTENT))]
    if isinstance(exc, ScriptExists):
        return [Send(r.no(r.SCRIPT_EXISTS, r.ALREADYEXISTS))]
    if isinstance(exc, ScriptIsActive):
        return [Send(r.no(r.SCRIPT_ACTIVE, r.ACTIVE))]
    if isinstance(exc, QuotaExceeded):
        if exc.kind == "scripts":
            return [Send(r.no(r.too_many_scripts(exc.limit), r.QUOTA_MAXSCRIPTS))]
        if exc.kind == "storage":
            return [Send(r.no(r.storage_full(exc.limit), r.QUOTA_MAXSTORAGE))]
        return [Send(r.no(r.too_large(exc.limit), r.QUOTA_MAXSIZE))]
    if isinstance(exc, StorageError):
        log.error("managesieve-storage-failed", command=command, user=s.user_name(), error=exc)
    else:
        log.error("managesieve-command-failed", command=command, error=repr(exc))
    return [Send(r.no(r.TEMPORARY_FAILURE, r.TRYLATER))]


def _problems(problems: list[checker.Problem]) -> list[Output]:
    return [Send(r.no(_text(problems)))]


def _text(problems: list[checker.Problem]) -> str:
    return "\r\n".join(str(p) for p in problems)


def _ok(text: str, report: checker.Report) -> list[Output]:
    """OK, or OK (WARNINGS) with them when the script compiled with warnings (RFC 5804 2.6)."""
    if report.warnings:
        return [Send(r.ok(_text(report.warnings), r.WARNINGS))]
    return [Send(r.ok(text))]


# --- the commands ---------------------------------------------------------------------------


def havespace(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 2)
    name, size = _name(args[0]), _number(args[1])
    store = s.store()
    return _run(
        s,
        "HAVESPACE",
        lambda: store.check_space(name, size),
        lambda _: [Send(r.ok(r.HAVESPACE_DONE))],
    )


def putscript(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 2)
    name, script = _name(args[0]), string_arg(args[1])
    if not script:
        raise Refusal(r.EMPTY_SCRIPT)
    store = s.store()

    def work() -> checker.Report:
        store.check_space(name, len(script))
        report = checker.check(script, s.services.config)
        if not report.errors:
            store.put(name, script)
        return report

    def done(result: object) -> list[Output]:
        assert isinstance(result, checker.Report)
        if result.errors:
            return _problems(result.errors)
        log.info("sieve-put", user=s.user_name(), script=name, size=len(script))
        return _ok(r.PUT_DONE, result)

    return _run(s, "PUTSCRIPT", work, done)


def checkscript(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    # RFC 5804 2.12: syntax only, never the quota.
    arity(args, 1)
    script = string_arg(args[0])

    def done(result: object) -> list[Output]:
        assert isinstance(result, checker.Report)
        return _problems(result.errors) if result.errors else _ok(r.CHECK_DONE, result)

    return _run(s, "CHECKSCRIPT", lambda: checker.check(script, s.services.config), done)


def listscripts(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 0)

    def done(result: object) -> list[Output]:
        assert isinstance(result, list)
        return [Stream(_lines(result), lambda: [Send(r.ok(r.LIST_DONE))])]

    return _run(s, "LISTSCRIPTS", s.store().list, done)


def _lines(scripts: list[tuple[str, bool]]) -> Iterator[bytes]:
    chunk = b""
    for name, active in scripts:
        chunk += r.script_line(name, active)
        if len(chunk) >= _CHUNK:
            yield chunk
            chunk = b""
    if chunk:
        yield chunk


def setactive(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 1)
    store = s.store()
    if string_arg(args[0]) == b"":
        return _run(
            s,
            "SETACTIVE",
            store.deactivate,
            lambda _: _logged(s, "sieve-deactivate", "", r.DEACTIVATED),
        )
    name = _name(args[0])

    def work() -> tuple[checker.Report, bool]:
        report = checker.Report([], [])
        if store.active() != name:
            report = checker.check(store.read(name), s.services.config)
            if report.errors:
                return report, False
        return report, store.activate(name)

    def done(result: object) -> list[Output]:
        assert isinstance(result, tuple)
        report, activated = result
        if report.errors:
            return _problems(report.errors)
        if not activated:
            return [Send(r.ok(r.ALREADY_ACTIVE))]
        log.info("sieve-activate", user=s.user_name(), script=name)
        return _ok(r.SETACTIVE_DONE, report)

    return _run(s, "SETACTIVE", work, done)


def _logged(s: ManageSieveSession, event: str, name: str, text: str) -> list[Output]:
    log.info(event, user=s.user_name(), script=name or None)
    return [Send(r.ok(text))]


def getscript(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 1)
    name = _name(args[0])

    def done(result: object) -> list[Output]:
        assert isinstance(result, tuple)
        fd, size = result
        return [
            Send(b"{%d}\r\n" % size),
            Stream(_file(fd, size), lambda: [Send(b"\r\n" + r.ok(r.GET_DONE))], threaded=True),
        ]

    return _run(s, "GETSCRIPT", lambda: s.store().open_script(name), done)


class ScriptShortened(OSError):
    """The script file lost octets while GETSCRIPT sent it (the adapter logs it, closes)."""


def _file(fd: int, size: int) -> Iterator[bytes]:
    """Exactly `size` octets of the open file, then it is closed."""
    try:
        left = size
        while left:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                raise ScriptShortened(fd)
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)


def deletescript(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 1)
    name = _name(args[0])
    store = s.store()
    return _run(
        s,
        "DELETESCRIPT",
        lambda: store.delete(name),
        lambda _: _logged(s, "sieve-delete", name, r.DELETE_DONE),
    )


def renamescript(s: ManageSieveSession, args: tuple[Arg, ...]) -> list[Output]:
    arity(args, 2)
    old, new = _name(args[0]), _name(args[1])
    store = s.store()

    def done(_: object) -> list[Output]:
        log.info("sieve-rename", user=s.user_name(), script=old, to=new)
        return [Send(r.ok(r.RENAME_DONE))]

    return _run(s, "RENAMESCRIPT", lambda: store.rename(old, new), done)


_AUTH = frozenset({AUTH})
SCRIPT_COMMANDS: dict[str, tuple[Handler, frozenset[str]]] = {
    "HAVESPACE": (havespace, _AUTH),
    "PUTSCRIPT": (putscript, _AUTH),
    "CHECKSCRIPT": (checkscript, _AUTH),
    "LISTSCRIPTS": (listscripts, _AUTH),
    "SETACTIVE": (setactive, _AUTH),
    "GETSCRIPT": (getscript, _AUTH),
    "DELETESCRIPT": (deletescript, _AUTH),
    "RENAMESCRIPT": (renamescript, _AUTH),
}
