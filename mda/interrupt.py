"""Signals: none of them may kill mda, because the MTA bounces mail whose agent died by one.

Postfix's local(8) runs `mailbox_command` through /bin/sh and bounces the message when the
command is killed by a signal; only exit 75 (EX_TEMPFAIL) or 71 make it try again. A stray
SIGUSR1 or SIGALRM (an alarm left pending by whatever started us survives exec) used to end
mda with that signal. So (SECURITY.md, heading 5):

- every catchable signal whose default action ends the process (SIGHUP, SIGINT, SIGQUIT,
  SIGTERM, SIGUSR1/2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU, SIGIO, SIGPWR, SIGSYS, SIGTRAP,
  SIGABRT, SIGSTKFLT, the real-time signals) raises `Interrupted` at the next bytecode: the
  delivery unwinds (mailstore removes its tmp/ file, a program is killed, an mbox is truncated
  back, a forked child is stopped and waited for) and mda exits 75 with one line on stderr.
  Nothing was acknowledged; the MTA retries. The first signal ignores the rest, so that the
  clean-up itself is not interrupted;
- SIGSEGV, SIGBUS, SIGILL and SIGFPE are ignored: a Python handler for them turns a genuine
  fault into a busy loop (the C code faults again as soon as the handler returns), while an
  ignored one still kills on a genuine fault (the kernel forces it) and does nothing when sent
  with kill(): the delivery finishes and reports its true status. Children get them back at
  their default (`child_defaults`);
- SIGPIPE and SIGXFSZ stay ignored as Python sets them: they become EPIPE and EFBIG errors,
  which are temporary failures;
- SIGCHLD, SIGCONT, SIGURG and SIGWINCH (ignored by default), the stop signals and SIGKILL
  are left alone: nothing can catch SIGKILL, and a stopped mda is the MTA's time limit's job.

`install()` runs before anything else (the launcher calls it before importing the rest of
mda); only the interpreter's own start-up, a few milliseconds, is not covered. Once the outcome
is decided and written, `settle()` ignores every signal so that a late one cannot turn a
finished delivery into a retry (and a duplicate).

Only `_signal` is imported: the `signal` module would import `enum`, which alone costs more
than the rest of mda's start-up.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]
import sys

# Default action: ignore, stop or continue; or uncatchable. Left as they are.
_LEFT = frozenset(
    getattr(_signal, name)
    for name in (
        "SIGKILL",
        "SIGSTOP",
        "SIGCHLD",
        "SIGCONT",
        "SIGURG",
        "SIGWINCH",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGPIPE",
        "SIGXFSZ",
    )
    if hasattr(_signal, name)
)
# Hardware faults: ignored, never handled in Python (see the module notes).
FAULTS = frozenset(
    getattr(_signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE")
    if hasattr(_signal, name)
)

_handled: list[int] = []
_received: list[int] = []  # the signal that arrived, even if its exception was swallowed


class Interrupted(Exception):
    """A signal arrived: the delivery stops and is reported as a temporary failure."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


def _interrupted(signum: int, frame: object) -> None:
    _received.append(signum)
    for other in _handled:
        _signal.signal(other, _signal.SIG_IGN)
    raise Interrupted(signum)


def check() -> None:
    """Raise `Interrupted` if a signal arrived whose exception was swallowed: Python prints
    and drops exceptions raised where it cannot propagate them (a weakref callback, such as
    the import system's module locks, a `__del__`), so the raise alone is not enough. Called
    before every step that would make the delivery durable."""
    if _received:
        raise Interrupted(_received[0])


def _unraisable(unraisable: object) -> None:
    """sys.unraisablehook: an `Interrupted` raised where Python cannot propagate it (a weakref
    callback, a `__del__`) is not printed: `check()` raises it again before anything becomes
    durable, and the one line mda writes for it is the report. Anything else is printed as
    Python would."""
    if isinstance(getattr(unraisable, "exc_value", None), Interrupted):
        return
    sys.__unraisablehook__(unraisable)  # type: ignore[arg-type]


def install() -> None:
    """Turn every signal that would end the process into `Interrupted` (faults: ignored)."""
    if _handled:
        return
    sys.unraisablehook = _unraisable
    for signum in range(1, _signal.NSIG):
        if signum in _LEFT:
            continue
        try:
            if signum in FAULTS:
                _signal.signal(signum, _signal.SIG_IGN)
            else:
                _signal.signal(signum, _interrupted)
                _handled.append(signum)
        except (OSError, ValueError, RuntimeError):
            pass  # not a signal here, or one the C library keeps (glibc's 32 and 33)


def installed() -> bool:
    """Whether `install()` ran: `mda` itself, not the server (whose LMTP runs mda's library in
    threads, where a fork must not run Python code before exec: `child_defaults` is for mda)."""
    return bool(_handled)


def settle() -> None:
    """The outcome is decided: from now on no signal changes it."""
    for signum in _handled:
        try:
            _signal.signal(signum, _signal.SIG_IGN)
        except (OSError, ValueError):
            pass


def block() -> object:
    """Hold the handled signals back, around a fork: a signal that arrives between the fork
    and the `try` that would stop the child must wait until that `try` is entered (`unblock`
    inside it), or the child is left running while mda reports a failure. Returns the mask
    `unblock` restores."""
    return _signal.pthread_sigmask(_signal.SIG_BLOCK, _handled)


def unblock(previous: object) -> None:
    """Restore the mask `block` returned; a signal that came meanwhile is raised now."""
    _signal.pthread_sigmask(_signal.SIG_SETMASK, previous)


def child_defaults() -> None:
    """In a child about to exec (subprocess's preexec_fn): no signal blocked, the ignored
    faults back at their default. Handled signals need nothing: exec resets them itself."""
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
    for signum in FAULTS:
        _signal.signal(signum, _signal.SIG_DFL)
