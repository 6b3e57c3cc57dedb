"""A bound on the CPU time one Sieve run may take (Pigeonhole's sieve_max_cpu_time).

A script and a message together can ask for a lot of work: a `:regex` key like `(a+)+$`
backtracks exponentially in Python's `re` on "aaaa...b", a `:matches` key with many stars is
quadratic, a body test walks a large message. Rather than prove each bound, the whole run
(parsing, includes, evaluation) gets a budget of process CPU time: an `ITIMER_PROF` timer whose
SIGPROF raises `CpuLimitExceeded` (a SieveRuntimeError) at the next bytecode. Python's `re`
engine checks for signals every few thousand steps of a match, so a runaway match ends too.
The message is then kept in INBOX, as for any run-time error (RFC 5228 section 2.10.6), and
the error says why (SECURITY.md, heading 1).

Only the delivery agent uses this, in its main thread (signals are delivered there only); the
handler replaced here is mda's own (`mda.interrupt`), put back afterwards. The timer is
disarmed before the handler is restored, and a signal still pending is swallowed, so that a
late SIGPROF can never be taken for a signal that stops the delivery.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]

from .errors import SieveRuntimeError


class CpuLimitExceeded(SieveRuntimeError):
    """The run used up its CPU time."""


class _State:
    armed = False
    seconds = 0.0


def _on_sigprof(signum: int, frame: object) -> None:
    if _State.armed:
        _State.armed = False
        raise CpuLimitExceeded(
            f"execution exceeded the CPU time limit ({_State.seconds:g} s, [sieve] max_cpu_time)",
            0,
        )


def _flush() -> None:
    """A Python-level call: pending signal handlers run at its start."""


class cpu_limit:
    """`with cpu_limit(seconds):` raises CpuLimitExceeded once the block has used `seconds`
    of CPU time (user and system). `seconds` <= 0: no limit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.previous: object = None

    def __enter__(self) -> cpu_limit:
        if self.seconds > 0:
            self.previous = _signal.signal(_signal.SIGPROF, _on_sigprof)
            _State.seconds = self.seconds
            _State.armed = True
            _signal.setitimer(_signal.ITIMER_PROF, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seconds > 0:
            _State.armed = False
            _signal.setitimer(_signal.ITIMER_PROF, 0)
            _flush()
            _signal.signal(_signal.SIGPROF, self.previous)
