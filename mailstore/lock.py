"""Dovecot-compatible dot-locks.

Dovecot guards `dovecot-uidlist` (and `dovecot-keywords`) with a `<file>.lock` created with
O_EXCL, holding `<pid>:<host>`, and considers it stale after 120 seconds without change, or at once
when it names a process of this host that no longer exists. Taking the same lock the same way is
what lets Dovecot and us write one Maildir at the same time. Readers never lock: writers only
append whole lines or replace the file by rename(), so a reader sees an old or a new state, never
a torn one (apart from a last line still being appended, which readers ignore).
"""

from __future__ import annotations

import errno
import os
import time

from mailstore import log, shared
from mailstore.errors import TemporaryFailure
from mailstore.filenames import hostname

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType

STALE_AFTER = 120.0  # seconds, Dovecot's MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT
EMPTY_STALE_AFTER = 2.0
DEFAULT_TIMEOUT = 30.0


class DotLock:
    """`with DotLock(path):` holds `path + ".lock"` for the duration of the block."""

    def __init__(self, path: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        self.timeout = timeout
        self._held = False

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.0005
        while True:
            try:
                self._create()
            except FileExistsError:
                if self._break_if_stale():
                    continue
            except OSError as exc:
                raise TemporaryFailure(
                    f"cannot create lock {os.path.basename(self.lock_path)}: {exc.strerror}"
                ) from exc
            else:
                self._held = True
                return
            if time.monotonic() >= deadline:
                raise TemporaryFailure(f"timed out waiting for {os.path.basename(self.lock_path)}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _create(self) -> None:
        """Make the lock file holding `<pid>:<host>`; FileExistsError if it exists. (A
        subclass may make it otherwise: mailstore/adding.py links a file it keeps.)"""
        fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{os.getpid()}:{hostname()}".encode())
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                os.unlink(self.lock_path)
            except FileNotFoundError:
                log.warn("lock-vanished", path=self.lock_path)

    def _break_if_stale(self) -> bool:
        """Remove the lock if its holder is gone or it is older than STALE_AFTER."""
        try:
            st = os.stat(self.lock_path)
            with open(self.lock_path, "rb") as f:
                content = f.read(256)
        except FileNotFoundError:
            return True  # released meanwhile: try again at once
        except OSError:
            return False
        if shared.enabled():
            # Other hosts share the file system: the mtime is the file server's clock
            # (mailstore/shared.py), so age is what we saw, not now minus the mtime.
            age = shared.observer.unchanged_for(
                self.lock_path, st.st_ino, st.st_size, st.st_mtime_ns
            )
        else:
            age = time.time() - st.st_mtime
        stale = age > STALE_AFTER
        if not stale and not content:
            # Created but never written: its creator died between open() and write(), which
            # are microseconds apart for a live one.
            stale = age > EMPTY_STALE_AFTER
        elif not stale:
            pid_text, _, host = content.decode("ascii", "replace").partition(":")
            if host == hostname() and pid_text.isdigit() and not _alive(int(pid_text)):
                stale = True
        if not stale:
            return False
        try:
            # Only remove the lock we judged: a new holder's lock is another inode.
            if os.stat(self.lock_path).st_ino == st.st_ino:
                os.unlink(self.lock_path)
                log.warn("stale-lock-removed", path=self.lock_path, content=content[:64])
        except FileNotFoundError:
            pass
        return True

    def __enter__(self) -> DotLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
