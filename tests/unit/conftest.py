"""Mailbox tests run twice: syncing by directory mtime (as mda does) and by inotify events
(as the server does, see mailstore/dirwatch.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailstore import dirwatch


@pytest.fixture(params=["mtime", "inotify"])
def sync_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "inotify" and dirwatch.enable() is None:
        pytest.fail("inotify is not available on this machine")
    yield str(request.param)
    dirwatch.disable()
