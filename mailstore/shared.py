"""`[mail] shared = true`: the Maildirs are written by other hosts too (NFS, a cluster).

What changes, and why (a process turns it on with `enable()`, before opening mailboxes):

* **No listing trusted without a check.** inotify only hears this host's writes: a file
  another host delivers over NFS makes no event here. So the exact change tracking of
  mailstore/dirwatch.py is not turned on; every sync stat()s `new/` and `cur/` and lists a
  directory whose mtime moved (mailbox.py's design note: a same-tick mtime counts as dirty).
  That is Dovecot's behaviour on NFS too. The uidlist is re-read whenever its inode, size or
  mtime changed (uidlist.py), whoever appended to it.
* **A bound on how long an idle session may miss a change**: IDLE still gets inotify's
  immediate wake-up for this host's writes, and in any case polls at least every
  `[mail] shared_check_interval` seconds (Dovecot's `mailbox_idle_check_interval`, 30 s).
  A user's sessions meet on one node (mra/cluster), whose own deliveries wake them at once;
  the bound is for what another node wrote meanwhile.
* **Stale dotlocks judged by this host's clock** (lock.py): the lock file's mtime is set by
  the file server's clock, which may differ from ours by minutes, so "older than 120 s" is
  not asked of the mtime. A lock is stale when this process has seen it unchanged (same
  inode, size and mtime) for 120 s of its own monotonic clock, or at once when it names this
  host and a process of ours that is gone. (Dovecot's file_dotlock has the same inode/mtime
  "did it change while I waited" rule for NFS.) O_EXCL creation is atomic on NFSv3 and later,
  which is what Dovecot's `dotlock_use_excl = yes` (its default) assumes as well.

Two hosts appending to one folder at once keep UIDs unique and ascending: a UID is given
only under the uidlist dotlock, after reading the uidlist's end (uidlist.py), exactly as two
processes of one host do.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LockObserver", "enable", "enabled", "idle_check_interval"]

_interval: float | None = None  # set by enable(): the IDLE poll bound in seconds


def enable(check_interval: float) -> None:
    """This process shares its Maildirs with other hosts (see the module documentation)."""
    global _interval
    _interval = float(check_interval)
    from mailstore import uidlist

    if uidlist.remembered is None:
        uidlist.remembered = {}  # parses are still checked against the file's identity


def disable() -> None:
    global _interval
    _interval = None


def enabled() -> bool:
    return _interval is not None


def idle_check_interval(default: float) -> float:
    """Seconds an idle session may go without a sync: the bound in shared mode."""
    return default if _interval is None else min(default, _interval)


MAX_OBSERVED = 10_000  # lock paths remembered; the oldest observations go first


class LockObserver:
    """Stale-lock judgement by what this process saw: how long a lock has stayed the same file,
    same size and same mtime by our monotonic clock (lock.py compares it to its stale time).
    What was seen is remembered per lock path for the whole process, so that waiters that
    give up (a lock's timeout is shorter than the stale time) still add up to a judgement."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[str, tuple[tuple[int, int, int], float]] = {}

    def unchanged_for(self, path: str, ino: int, size: int, mtime_ns: int) -> float:
        """Seconds the lock has looked like this, by our clock (0 when it just changed)."""
        now = self.clock()
        identity = (ino, size, mtime_ns)
        seen = self._seen.get(path)
        if seen is None or seen[0] != identity:
            if len(self._seen) >= MAX_OBSERVED:
                self._seen.pop(next(iter(self._seen)))
            self._seen[path] = (identity, now)
            return 0.0
        return now - seen[1]


observer = LockObserver()
