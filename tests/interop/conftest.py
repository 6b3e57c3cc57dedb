"""Fixtures that run the real Dovecot 2.3 on a Maildir (see ``tests/interop/dovecot.py``).

Without Dovecot the tests using these fixtures are skipped on a developer's machine but
FAIL when the ``CI`` environment variable is set, so CI cannot go green by accident.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.dovecot import (
    DOVECOT_IMAP,
    DOVECOT_PACKAGES,
    DOVECOT_POP3,
    INSTALL_HINT,
    MAIL_USER,
    DovecotFactory,
    dovecot_available,
    dovecot_pop3_available,
    make_maildir,
    remove_tree,
    running_as_root,
    traversable_tempdir,
)


def _missing(reason: str) -> None:
    message = f"{reason}: install the Debian packages {DOVECOT_PACKAGES} ({INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def require_dovecot() -> None:
    """Skip (or, under CI, fail) unless Dovecot's imap and pop3 binaries can run."""
    if not dovecot_available():
        _missing(f"Dovecot is not installed ({DOVECOT_IMAP} or doveconf missing)")
    if not dovecot_pop3_available():
        _missing(f"Dovecot's POP3 server is not installed ({DOVECOT_POP3} missing)")
    if running_as_root():
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            _missing(f"user {MAIL_USER!r} (needed to run Dovecot as non-root) does not exist")


@pytest.fixture
def dovecot_maildir(tmp_path: Path, require_dovecot: None) -> Iterator[Path]:
    """An empty Maildir (``cur``/``new``/``tmp``) owned by the mail user.

    It lives in its own mode-0755 temporary directory, not in ``tmp_path`` (which sits
    below the root-only ``/tmp/pytest-of-root``, where ``nobody`` cannot go).  A symlink
    ``tmp_path / "maildir"`` points at it.  Set ``DOVECOT_KEEP=1`` to keep it after the
    test for inspection.
    """
    base = traversable_tempdir("dovecot-maildir-")
    maildir = make_maildir(base / "Maildir")
    (tmp_path / "maildir").symlink_to(maildir)
    try:
        yield maildir
    finally:
        if not os.environ.get("DOVECOT_KEEP"):
            remove_tree(base)


@pytest.fixture
def dovecot(dovecot_maildir: Path) -> Iterator[DovecotFactory]:
    """Start Dovecot sessions: ``dovecot()`` / ``dovecot.imap(maildir=None, **options)``
    and ``dovecot.pop3(...)``; the Maildir defaults to ``dovecot_maildir``.  Options are
    those of ``DovecotImap`` (``index=``, ``settings=``, ``timeout=``, ...).  Every
    session still open is closed (and its process killed) at teardown."""
    factory = DovecotFactory(dovecot_maildir)
    try:
        yield factory
    finally:
        factory.close_all()


# Client fixtures shared by the POP3 and IMAP client tests. Requested before a test's server
# fixture, so that a missing client skips (or, under CI, fails) before a server starts.
@pytest.fixture
def curl() -> str:
    from tests.interop.clients import require

    return require("curl", "curl")


@pytest.fixture
def getmail() -> str:
    from tests.interop.clients import require

    return require("getmail", "getmail6")
