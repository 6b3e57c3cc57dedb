"""Duplicate suppression: the same Message-ID delivered to the same mailbox within a window.

Opt-in (`[mda] duplicate_window`, seconds), as procmail's `formail -D` is. The record lives in
the user's mail root, `mda-duplicates`: one `<expiry> <id>` line per delivery, appended under a
dot-lock and pruned of expired lines once it grows. Message-IDs are stored hashed, so the file
reveals nothing about the mail.
"""

from __future__ import annotations

import os
import time

from mailstore.lock import DotLock
from mailstore.uidlist import replace_file

NAME = "mda-duplicates"
PRUNE_AT = 256 * 1024


class Duplicates:
    def __init__(self, mail_root: str, window: int) -> None:
        self.path = os.path.join(mail_root, NAME)
        self.tmp_dir = os.path.join(mail_root, "tmp")
        self.window = window

    @staticmethod
    def _key(message_id: str) -> str:
        import hashlib

        return hashlib.sha256(message_id.strip().encode("utf-8", "replace")).hexdigest()[:32]

    def _entries(self) -> list[tuple[int, str]]:
        try:
            with open(self.path, "rb") as f:
                text = f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            expiry, _, key = line.partition(" ")
            if expiry.isdigit() and key:
                out.append((int(expiry), key))
        return out

    def seen(self, message_id: str) -> bool:
        key = self._key(message_id)
        now = int(time.time())
        return any(k == key and expiry > now for expiry, k in self._entries())

    def remember(self, message_id: str) -> None:
        line = f"{int(time.time()) + self.window} {self._key(message_id)}\n".encode()
        with DotLock(self.path):
            try:
                size = os.path.getsize(self.path)
            except FileNotFoundError:
                size = 0
            if size > PRUNE_AT:
                now = int(time.time())
                keep = [f"{e} {k}\n" for e, k in self._entries() if e > now]
                replace_file(self.path, "".join(keep).encode() + line, self.tmp_dir)
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
