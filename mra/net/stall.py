"""The reactor stall monitor: `reactor-stall ms=N` in the log when the event loop runs late.

Everything a worker does for every client runs on one thread, the reactor's: a callback that
takes 300 ms (a big folder listed on the reactor, a regular expression gone quadratic) makes
every other connection of that worker wait 300 ms. The monitor asks to be woken every
`interval` seconds and measures how late it is woken; lateness at or over the threshold
(`[server] reactor_stall_ms`) is a stall, logged as a warning with its length, so that a load
test can read the server log and assert there was none (SECURITY.md heading 1).

What it reports is a lower bound: a stall that starts just after a wake-up is seen as the stall
minus one interval, so the interval is at most half the threshold. It measures the loop, not a
command: it says *that* the loop was blocked, and the log lines around it say by whom. One timer
per worker, 20 wake-ups a second at the default.

Lateness has two causes: work on the reactor's thread, or no CPU for it (a machine whose cores
are all busy with other processes, a stopped process). Each line also gives `cpu_ms`, the CPU
time the reactor's thread used between the two wake-ups (the interval and the lateness): when
it is far below `ms`, the loop was waiting for a core, not working, and the stall says more
about the machine than about the server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from twisted.internet.base import DelayedCall

from mra import log
from mra.net.reactor import reactor

MAX_INTERVAL = 0.05  # seconds between wake-ups


class StallMonitor:
    def __init__(
        self,
        threshold_ms: int,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.threshold = threshold_ms / 1000.0
        self.interval = min(MAX_INTERVAL, self.threshold / 2)
        self._clock = clock
        self._cpu_clock = cpu_clock  # read on the reactor's thread: that thread's CPU time
        self._expected = 0.0
        self._cpu_at = 0.0
        self._call: DelayedCall | None = None
        self.stalls = 0

    def start(self) -> None:
        """Start watching (a threshold of 0 watches nothing)."""
        if self.threshold > 0 and self._call is None:
            self._schedule()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        self._expected = self._clock() + self.interval
        self._cpu_at = self._cpu_clock()
        self._call = reactor.callLater(self.interval, self._tick)

    def _tick(self) -> None:
        late = self._clock() - self._expected
        if late >= self.threshold:
            self.stalls += 1
            log.warn(
                "reactor-stall",
                ms=round(late * 1000),
                cpu_ms=round((self._cpu_clock() - self._cpu_at) * 1000),
                threshold_ms=round(self.threshold * 1000),
            )
        self._schedule()
