"""The inotify fan-out of mra/net/watch.py: one delivery (several events, on new/ and cur/)
wakes each session idling on the folder once, all in one `folderstate.one_sync()` round."""

from __future__ import annotations

from pathlib import Path

from twisted.python.filepath import FilePath

from mailstore import folderstate
from mra.net.watch import Watcher

_MOVED_TO = 0x80


def test_attack_delivery_events_wake_each_idle_session_once_with_one_sync(
    tmp_path: Path,
) -> None:
    """Every event called every session's callback (each then armed a timer and synced the
    folder on its own): a delivery's rename into new/ and the first reader's move to cur/
    were two wake-ups of every session, each with a sync. Now the events are gathered and
    each session is woken once, inside one round in which the folder syncs once."""
    for sub in ("new", "cur"):
        (tmp_path / sub).mkdir()
    w = Watcher()
    if not w.available:
        import pytest

        pytest.skip("no inotify here")
    woken: list[tuple[int, object]] = []
    callbacks = []
    for n in range(20):

        def wake(n: int = n) -> None:
            woken.append((n, getattr(folderstate._round, "number", None)))

        callbacks.append(wake)
        for sub in ("new", "cur"):
            assert w.watch(str(tmp_path / sub), wake)
    gone = callbacks[-1]  # this one stops idling before the wake-up
    try:
        w._fired(None, FilePath(str(tmp_path / "new" / "1.M1P1.host").encode()), _MOVED_TO)
        w._fired(None, FilePath(str(tmp_path / "cur" / "1.M1P1.host:2,").encode()), _MOVED_TO)
        assert woken == []  # gathered, not called per event
        timer = w._timer
        assert timer is not None and timer.active()
        for sub in ("new", "cur"):
            w.unwatch(str(tmp_path / sub), gone)
        timer.cancel()
        w._wake()
    finally:
        for wake in callbacks:
            for sub in ("new", "cur"):
                w.unwatch(str(tmp_path / sub), wake)
    assert sorted(n for n, _ in woken) == list(range(19))  # each once, the one gone not at all
    rounds = {number for _, number in woken}
    assert len(rounds) == 1 and None not in rounds
