"""One Maildir, our server and Dovecot 2.3, the same command to both: the untagged answers must
be the same (tagged texts differ by design: Dovecot adds timings).

    with SideBySide(messages) as both:
        both.ours.ok("SELECT INBOX")
        both.dovecot.ok("SELECT INBOX")
        both.same('SEARCH FROM "<jorg"')

Our side is a real `mra serve` (tests/mra/conftest.py); Dovecot's is a PREAUTH session on the
same Maildir with INDEX=MEMORY, so it knows only what the files say (tests/interop/dovecot.py).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from types import TracebackType
from typing import Self

from mailstore.store import MailStore
from tests.interop.dovecot import DovecotImap, chown_tree, make_maildir, traversable_tempdir
from tests.interop.test_imap_dovecot_compare import MraImap
from tests.mra.conftest import MraServer

_VOLATILE = re.compile(rb"^\* OK \[NOMODSEQ\]")


class SideBySide:
    """`extra`: more of our configuration (TOML); `settings`: more of Dovecot's; `setup`: what
    to do with alice's store before both servers start (folders, subscriptions)."""

    def __init__(
        self,
        messages: list[bytes],
        extra: str = "",
        settings: dict[str, str] | None = None,
        setup: Callable[[MailStore], object] | None = None,
    ) -> None:
        self.base = traversable_tempdir("mra-side-by-side-")  # Dovecot's user must get in
        self.server = server = MraServer(self.base, extra, listeners=("imap",))
        self.maildir = make_maildir(server.mail / "example.test" / "alice")
        box = server.store().mailbox("INBOX")
        for message in messages:
            box.append(message)
        if setup is not None:
            setup(server.store())
        chown_tree(self.maildir)
        server.start()
        self.ours = MraImap(server)
        self.dovecot = DovecotImap(self.maildir, settings=settings)

    def both(self, command: str) -> tuple[list[bytes], list[bytes]]:
        """Each server's answer: its untagged lines, then its tagged status word."""
        return _answer(self.ours.command(command)), _answer(self.dovecot.command(command))

    def same(self, command: str, *, any_order: bool = False) -> list[bytes]:
        """Assert both answer alike (`any_order`: the untagged lines as a set, for LIST)."""
        ours, dovecot = self.both(command)
        if any_order:
            ours, dovecot = sorted(ours[:-1]) + ours[-1:], sorted(dovecot[:-1]) + dovecot[-1:]
        assert ours == dovecot, f"{command}:\n ours:    {ours}\n dovecot: {dovecot}"
        return ours

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ours.close()
        self.dovecot.close()
        self.server.stop()
        if not os.environ.get("IMAP_INTEROP_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)


def _answer(lines: list[bytes]) -> list[bytes]:
    untagged = [line.rstrip(b"\r\n") for line in lines[:-1] if not _VOLATILE.match(line)]
    status = lines[-1].split(b" ", 2)[1]
    return [*untagged, status]
