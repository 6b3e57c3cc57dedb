"""Dotlocks on storage other hosts share (`[mail] shared`): staleness by our own clock."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore import shared
from mailstore.errors import TemporaryFailure
from mailstore.lock import STALE_AFTER, DotLock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    saved = shared.observer
    shared.observer = shared.LockObserver(clock)
    shared.enable(30)
    yield clock
    shared.disable()
    shared.observer = saved


def held_by_another_host(path: Path, age: float) -> None:
    """A lock another node holds, whose mtime (the file server's clock) looks `age` old."""
    lock = Path(str(path) + ".lock")
    lock.write_text("4242:node2.example.test")
    then = time.time() - age
    os.utime(lock, (then, then))


def test_attack_shared_lock_with_a_skewed_mtime_is_not_broken(tmp_path: Path, clock: Clock) -> None:
    """A file server whose clock is an hour behind makes a live lock look an hour old: by
    mtime it would be broken at once and two nodes would give out the same UIDs."""
    path = tmp_path / "dovecot-uidlist"
    held_by_another_host(path, age=3600)
    with pytest.raises(TemporaryFailure):
        DotLock(str(path), timeout=0.05).acquire()
    assert Path(str(path) + ".lock").exists()


def test_shared_lock_unchanged_for_the_stale_time_by_our_clock_is_broken(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "dovecot-uidlist"
    held_by_another_host(path, age=0)
    with pytest.raises(TemporaryFailure):
        DotLock(str(path), timeout=0.05).acquire()  # first seen now
    clock.now += STALE_AFTER / 2
    with pytest.raises(TemporaryFailure):
        DotLock(str(path), timeout=0.05).acquire()  # seen unchanged, not long enough
    clock.now += STALE_AFTER / 2 + 1
    with DotLock(str(path), timeout=0.05):  # unchanged past the stale time: broken
        assert Path(str(path) + ".lock").read_text().startswith(f"{os.getpid()}:")


def test_shared_lock_that_changes_is_watched_again(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "dovecot-uidlist"
    held_by_another_host(path, age=0)
    with pytest.raises(TemporaryFailure):
        DotLock(str(path), timeout=0.05).acquire()
    clock.now += STALE_AFTER - 1
    held_by_another_host(path, age=-5)  # taken again by its holder (another mtime)
    clock.now += 10
    with pytest.raises(TemporaryFailure):
        DotLock(str(path), timeout=0.05).acquire()
