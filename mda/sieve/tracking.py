"""What a user's scripts remember across deliveries: who got a vacation reply (RFC 5230
section 4.2: at most one per sender, handle and period) and which messages "duplicate" saw
(RFC 7352), as Pigeonhole keeps both in the LDA's duplicate database.

One file per user, `sieve-tracking` in the mail root (next to `mda-duplicates`): one line per
entry, `<expiry> <key>`, the key a SHA-256 in hex (nothing of the mail can be read back from
it). Readers read it whole; writers hold the dot-lock `sieve-tracking.lock` (as Dovecot's
locks: stale after 120 s or when its process is gone), so that two deliveries at once cannot
both decide to reply: `claim` checks and records in one locked step. The file is rewritten
without expired entries (atomically: a temporary file in the mail root's `tmp/`, fsync,
rename) whenever it is written, so it holds at most the entries still in force.
"""

from __future__ import annotations

import os
import time

NAME = "sieve-tracking"


class Tracker:
    """The tracking file of one mail root."""

    def __init__(self, mail_root: str) -> None:
        self.path = os.path.join(mail_root, NAME)
        self.tmp_dir = os.path.join(mail_root, "tmp")

    def _entries(self) -> dict[str, int]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return {}
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        out: dict[str, int] = {}
        now = int(time.time())
        for line in b"".join(chunks).decode("ascii", "replace").splitlines():
            expiry, _, key = line.partition(" ")
            if expiry.isdigit() and key and int(expiry) > now:
                out[key] = max(out.get(key, 0), int(expiry))
        return out

    def seen(self, key: bytes) -> bool:
        """Whether `key` is remembered and not expired."""
        return key.hex() in self._entries()

    def claim(self, key: bytes, seconds: int) -> bool:
        """Record `key` for `seconds` unless it is already in force: True if it was not (the
        caller may reply), False if it was. One locked step, so only one delivery wins."""
        from mailstore.lock import DotLock

        with DotLock(self.path):
            entries = self._entries()
            if key.hex() in entries:
                return False
            entries[key.hex()] = int(time.time()) + max(seconds, 1)
            self._write(entries)
        return True

    def remember(self, items: list[tuple[bytes, int, bool]]) -> None:
        """Record (key, seconds, refresh) entries; an entry in force keeps its expiry unless
        `refresh` (duplicate's :last, RFC 7352 section 3.3)."""
        if not items:
            return
        from mailstore.lock import DotLock

        with DotLock(self.path):
            entries = self._entries()
            now = int(time.time())
            for key, seconds, refresh in items:
                hexkey = key.hex()
                if refresh or hexkey not in entries:
                    entries[hexkey] = now + max(seconds, 1)
            self._write(entries)

    def _write(self, entries: dict[str, int]) -> None:
        from mailstore.uidlist import replace_file

        data = "".join(f"{expiry} {key}\n" for key, expiry in sorted(entries.items()))
        replace_file(self.path, data.encode("ascii"), self.tmp_dir)
