"""Maildir++ quota: the `maildirsize` file, as Courier and Dovecot 2.3 keep it.

The file lives in the Maildir root. Its first line is the quota definition (`1000000S,1000C`:
S = bytes, C = messages, 0 or absent = unlimited); every further line is a `<bytes> <count>`
delta, possibly negative, and the usage is the sum of all deltas. Deltas are appended with one
write() of the whole line on an O_APPEND descriptor, so concurrent writers never interleave and
no lock is needed (Courier's README.maildirquota).

The file is rebuilt from the messages on disk when it cannot be trusted (the rules of the
Maildir++ spec plus the ones Dovecot adds, see `_needs_recalculation`). A rebuild sums every
message in `cur/` and `new/` of the root and of every `.Folder`, Trash included as Dovecot does,
takes each size from the `,S=<size>` of the file name and stat()s only files without one, then
replaces the file through a temporary file in `tmp/` and rename().
"""

from __future__ import annotations

import errno
import os
import stat
import time

from mailstore.errors import NoQuota, TemporaryFailure
from mailstore.filenames import sizes_of
from mailstore.folderdir import adopt, adopt_path

__all__ = ["MAILDIRSIZE", "MaildirQuota", "QuotaLimit"]

MAILDIRSIZE = "maildirsize"

# Courier's README.maildirquota: a maildirsize of 5120 bytes or more is rebuilt. Dovecot reads at
# most 5120 bytes and rebuilds when it got that many, so exactly 5120 already triggers it.
_MAX_FILE_SIZE = 5120

# README.maildirquota / Dovecot's MAILDIRSIZE_STALE_SECS: an over-quota result is not trusted
# from a file last written more than 15 minutes ago.
_STALE_SECONDS = 15 * 60

# How often one cur/ or new/ is re-read when its mtime moved while it was being summed.
_SCAN_ATTEMPTS = 3

# No `re`, `dataclasses` or `secrets` here: this module is on the delivery agent's start-up path.


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _definition_part(part: str) -> tuple[int, str] | None:
    """`<digits>S` or `<digits>C` -> (value, letter)."""
    if len(part) >= 2 and part[-1] in "SC" and _digits(part[:-1]):
        return int(part[:-1]), part[-1]
    return None


def _delta_line(line: str) -> tuple[int, int] | None:
    """`<bytes> <count>` (signed, separated and surrounded by spaces or tabs)."""
    fields = line.replace("\t", " ").split(" ")
    fields = [f for f in fields if f]
    if len(fields) != 2:
        return None
    values = []
    for field in fields:
        sign = -1 if field.startswith("-") else 1
        digits = field[1:] if sign < 0 else field
        if not _digits(digits):
            return None
        values.append(sign * int(digits))
    return values[0], values[1]


class QuotaLimit:
    """A Maildir++ quota definition. None (or 0, normalised to None) means unlimited."""

    __slots__ = ("bytes", "messages")
    bytes: int | None
    messages: int | None

    def __init__(self, bytes: int | None, messages: int | None) -> None:
        for field, value in (("bytes", bytes), ("messages", messages)):
            if value is not None and value < 0:
                raise ValueError(f"quota {field} limit must not be negative: {value}")
            # Maildir++: "0S" means no byte limit; one spelling keeps comparisons honest.
            object.__setattr__(self, field, value or None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("QuotaLimit is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuotaLimit):
            return NotImplemented
        return (self.bytes, self.messages) == (other.bytes, other.messages)

    def __hash__(self) -> int:
        return hash((self.bytes, self.messages))

    def __repr__(self) -> str:
        return f"QuotaLimit(bytes={self.bytes!r}, messages={self.messages!r})"

    @property
    def unlimited(self) -> bool:
        return self.bytes is None and self.messages is None

    def exceeded_by(self, used_bytes: int, used_messages: int) -> bool:
        """True if the usage is over (not at) either limit."""
        return (self.bytes is not None and used_bytes > self.bytes) or (
            self.messages is not None and used_messages > self.messages
        )

    @classmethod
    def parse(cls, text: str) -> QuotaLimit:
        """Parse a definition such as `1000000S,1000C`, `1000C` or `0S`.

        Strict, for configuration: raises ValueError for anything but comma-separated
        `<digits>S` / `<digits>C` parts, each at most once.
        """
        values: dict[str, int] = {}
        for part in text.split(","):
            parsed = _definition_part(part)
            if parsed is None:
                raise ValueError(f"invalid Maildir++ quota definition: {text!r}")
            if parsed[1] in values:
                raise ValueError(f"Maildir++ quota definition repeats {parsed[1]!r}: {text!r}")
            values[parsed[1]] = parsed[0]
        return cls(bytes=values.get("S"), messages=values.get("C"))

    @classmethod
    def _parse_lenient(cls, text: str) -> QuotaLimit:
        # The header of an existing file is read the way Dovecot's maildir_parse_limit() does:
        # parts it does not understand are skipped, the last of a repeated part wins.
        values: dict[str, int] = {}
        for part in text.split(","):
            parsed = _definition_part(part.strip())
            if parsed is not None:
                values[parsed[1]] = parsed[0]
        return cls(bytes=values.get("S"), messages=values.get("C"))

    def __str__(self) -> str:
        # Dovecot's maildirsize_write(): "<n>S" when there is a byte limit or no limit at all
        # (never an empty header line), ",<n>C" when there is a message limit.
        parts: list[str] = []
        if self.bytes is not None or self.messages is None:
            parts.append(f"{self.bytes or 0}S")
        if self.messages is not None:
            parts.append(f"{self.messages}C")
        return ",".join(parts)


UNLIMITED = QuotaLimit(bytes=None, messages=None)


class _FileState:
    """What one read of maildirsize found."""

    __slots__ = ("definition", "delta_lines", "mtime", "usable", "used_bytes", "used_messages")

    def __init__(
        self,
        definition: QuotaLimit,
        used_bytes: int,
        used_messages: int,
        delta_lines: int,
        mtime: float,
        usable: bool,  # False: broken or too large, the sums must not be used
    ) -> None:
        self.definition = definition
        self.used_bytes = used_bytes
        self.used_messages = used_messages
        self.delta_lines = delta_lines
        self.mtime = mtime
        self.usable = usable


def _temporary(action: str, exc: OSError) -> TemporaryFailure:
    # The message may reach a client (errors.py): name the operation and errno, not the path.
    reason = errno.errorcode.get(exc.errno or 0, "I/O error")
    return TemporaryFailure(f"quota: {action} failed ({reason})")


class MaildirQuota:
    """The Maildir++ quota of one Maildir root.

    `limit` is the configured definition. With None the definition in an existing maildirsize
    is used (a sysadmin or another program may have written it), and without that file there is
    no quota. Every method may raise `TemporaryFailure` on I/O errors.

    Contract with the callers, as in Dovecot: call `check` before storing a message and `add`
    after the message file is in place (or, with negative deltas, after it is removed). `add`
    may rebuild the file instead of appending, and a rebuild already sees the change.
    """

    def __init__(self, root: str, limit: QuotaLimit | None) -> None:
        self.root = root
        self.configured = limit
        self.path = os.path.join(root, MAILDIRSIZE)

    # -- public API ---------------------------------------------------------------------------

    def effective_limit(self) -> QuotaLimit:
        """The limit in force: the configured one, else the file's header, else unlimited."""
        if self.configured is not None:
            return self.configured
        fd = self._open(os.O_RDONLY)
        if fd is None:
            return UNLIMITED
        try:
            return self._read(fd).definition
        finally:
            os.close(fd)

    def usage(self) -> tuple[int, int]:
        """(bytes, messages) in use, from maildirsize, rebuilding it when the rules say so.

        Without a quota and without a maildirsize the messages are summed but no file is made.
        """
        fd = self._open(os.O_RDONLY)
        try:
            _limit, totals, _rebuilt = self._refresh(fd)
        finally:
            if fd is not None:
                os.close(fd)
        if totals is None:
            totals, _stable = self._scan()
        return totals

    def check(self, add_bytes: int, add_messages: int = 1) -> None:
        """Raise `NoQuota` if adding this much would go over a limit; reaching it is fine."""
        if self.configured is not None and self.configured.unlimited:
            return  # no quota: no file to read
        fd = self._open(os.O_RDONLY)
        try:
            limit, totals, _rebuilt = self._refresh(fd)
        finally:
            if fd is not None:
                os.close(fd)
        if totals is None or limit.unlimited:
            return
        used_bytes, used_messages = totals
        # Only growth is refused: an expunge (negative delta) must always be possible.
        if add_bytes > 0 and limit.bytes is not None and used_bytes + add_bytes > limit.bytes:
            raise NoQuota(
                f"quota exceeded: {used_bytes} of {limit.bytes} bytes used, "
                f"{add_bytes} more requested"
            )
        if (
            add_messages > 0
            and limit.messages is not None
            and used_messages + add_messages > limit.messages
        ):
            raise NoQuota(
                f"quota exceeded: {used_messages} of {limit.messages} messages used, "
                f"{add_messages} more requested"
            )

    def add(self, delta_bytes: int, delta_messages: int) -> None:
        """Record a change of usage: append `<bytes> <count>` to maildirsize.

        A no-op when there is no quota and no maildirsize. When the file must be rebuilt (or is
        missing under a quota) it is rebuilt instead, and the rebuild already counts the change.
        """
        if delta_bytes == 0 and delta_messages == 0:
            return
        # The descriptor the header was read from is the one appended to, as Dovecot does: if
        # another process replaces the file meanwhile, our line goes to the old inode and is
        # lost with it, which is right when the new file was counted after our change.
        fd = self._open(os.O_RDWR | os.O_APPEND)
        try:
            _limit, totals, rebuilt = self._refresh(fd)
            if totals is None or rebuilt or fd is None:
                return
            line = f"{delta_bytes} {delta_messages}\n".encode("ascii")
            try:
                # One write() of the whole line on O_APPEND: atomic against other appenders.
                written = os.write(fd, line)
            except OSError as exc:
                raise _temporary("appending to maildirsize", exc) from exc
            if written != len(line):
                # A partial line has no LF and is ignored by readers until the next append
                # glues onto it, which makes the file unparsable and forces a rebuild.
                raise TemporaryFailure("quota: short write to maildirsize")
        finally:
            if fd is not None:
                os.close(fd)

    def recalculate(self) -> tuple[int, int]:
        """Sum the messages on disk and write a fresh maildirsize; return (bytes, messages)."""
        return self._recalculate(self.effective_limit())

    # -- reading ------------------------------------------------------------------------------

    def _open(self, flags: int) -> int | None:
        try:
            return os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _temporary("opening maildirsize", exc) from exc

    def _read(self, fd: int) -> _FileState:
        try:
            st = os.fstat(fd)
            os.lseek(fd, 0, os.SEEK_SET)
            chunks: list[bytes] = []
            size = 0
            while size < _MAX_FILE_SIZE:
                chunk = os.read(fd, _MAX_FILE_SIZE - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise _temporary("reading maildirsize", exc) from exc
        data = b"".join(chunks)
        too_large = len(data) >= _MAX_FILE_SIZE

        # A last line without LF may be an append still in progress (or a torn one): skip it,
        # as Dovecot's maildirsize_read() does.
        end = data.rfind(b"\n")
        complete = data[:end] if end >= 0 else b""
        try:
            text = complete.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        lines = text.split("\n") if text else []
        definition = QuotaLimit._parse_lenient(lines[0]) if lines else UNLIMITED

        usable = not too_large and bool(text) and "\0" not in text and len(lines) > 1
        used_bytes = used_messages = 0
        if usable:
            for line in lines[1:]:
                delta = _delta_line(line)
                if delta is None:
                    usable = False
                    break
                used_bytes += delta[0]
                used_messages += delta[1]
            if used_bytes < 0 or used_messages < 0:
                usable = False  # corrupt: more was removed than was ever added
        return _FileState(
            definition=definition,
            used_bytes=used_bytes,
            used_messages=used_messages,
            delta_lines=max(len(lines) - 1, 0),
            mtime=st.st_mtime,
            usable=usable,
        )

    def _needs_recalculation(self, state: _FileState, limit: QuotaLimit) -> bool:
        if not state.usable:
            return True  # missing header or sums, unparsable line, negative sums, >= 5120 bytes
        if self.configured is not None and state.definition != self.configured:
            return True  # the configured definition changed: the header must be rewritten
        if limit.exceeded_by(state.used_bytes, state.used_messages):
            # Over quota is only believed from a fresh summary: README.maildirquota rebuilds a
            # file older than 15 minutes, Dovecot also one with more than one delta line.
            if state.delta_lines > 1:
                return True
            if state.mtime < time.time() - _STALE_SECONDS:
                return True
        return False

    def _refresh(self, fd: int | None) -> tuple[QuotaLimit, tuple[int, int] | None, bool]:
        """(limit in force, usage or None when there is neither quota nor file, rebuilt?)."""
        if fd is None:
            limit = self.configured if self.configured is not None else UNLIMITED
            if limit.unlimited:
                # Dovecot: without limits and without the file, quota is not tracked at all.
                return limit, None, False
            return limit, self._recalculate(limit), True
        state = self._read(fd)
        limit = self.configured if self.configured is not None else state.definition
        if self._needs_recalculation(state, limit):
            return limit, self._recalculate(limit), True
        return limit, (state.used_bytes, state.used_messages), False

    # -- rebuilding ---------------------------------------------------------------------------

    def _maildirs(self) -> list[str]:
        # The root (INBOX) and every Maildir++ folder `.Name`, Trash included (Dovecot counts
        # every mailbox). Folders whose names another program spelled oddly still hold mail on
        # this disk, so any dot-directory counts, not only names the store would create.
        dirs = [self.root]
        try:
            with os.scandir(self.root) as it:
                for entry in it:
                    if entry.name in (".", "..") or not entry.name.startswith("."):
                        continue
                    try:
                        # Not a symlink: what it leads to is not this user's (SECURITY.md 4).
                        if entry.is_dir(follow_symlinks=False):
                            dirs.append(entry.path)
                    except OSError:
                        continue  # vanished or unreadable entry: not a folder we can sum
        except OSError as exc:
            raise _temporary("listing the mail root", exc) from exc
        return dirs

    @staticmethod
    def _sum_dir(path: str) -> tuple[int, int, bool]:
        """(bytes, messages, stable) for one cur/ or new/; stable = mtime did not move."""
        total_bytes = total_messages = 0
        for _attempt in range(_SCAN_ATTEMPTS):
            try:
                before = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return 0, 0, True
            except OSError as exc:
                raise _temporary("reading a mail folder", exc) from exc
            if not stat.S_ISDIR(before.st_mode):
                return 0, 0, True  # a symlinked cur/ or new/ holds none of this user's mail
            total_bytes = total_messages = 0
            try:
                with os.scandir(path) as it:
                    for entry in it:
                        if entry.name.startswith("."):
                            continue  # Maildir readers skip dot files (cr.yp.to/proto/maildir)
                        size = sizes_of(entry.name.partition(":")[0])[0]
                        if size is None:
                            try:
                                st = entry.stat(follow_symlinks=False)
                            except FileNotFoundError:
                                continue  # expunged or moved while we looked
                            if not stat.S_ISREG(st.st_mode):
                                continue
                            size = st.st_size
                        total_bytes += size
                        total_messages += 1
                after = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return 0, 0, True
            except OSError as exc:
                raise _temporary("reading a mail folder", exc) from exc
            # A delivery or expunge during the listing moves the directory's mtime; then the
            # sum may have missed it, so read again (Dovecot instead gives up writing the file).
            if (before.st_mtime_ns, before.st_ino) == (after.st_mtime_ns, after.st_ino):
                return total_bytes, total_messages, True
        return total_bytes, total_messages, False

    def _scan(self) -> tuple[tuple[int, int], bool]:
        total_bytes = total_messages = 0
        stable = True
        for maildir in self._maildirs():
            for sub in ("new", "cur"):  # never tmp/: those are not delivered yet
                b, c, ok = self._sum_dir(os.path.join(maildir, sub))
                total_bytes += b
                total_messages += c
                stable = stable and ok
        return (total_bytes, total_messages), stable

    def _recalculate(self, limit: QuotaLimit) -> tuple[int, int]:
        totals, stable = self._scan()
        if stable:
            self._write(limit, totals)
        # else: the maildir kept changing under us; like Dovecot, do not write a file that may
        # be wrong. The reason for rebuilding is still there, so the next call tries again.
        return totals

    def _write(self, limit: QuotaLimit, totals: tuple[int, int]) -> None:
        content = f"{limit}\n{totals[0]} {totals[1]}\n".encode("ascii")
        tmp_dir = os.path.join(self.root, "tmp")
        # Unique like a Maildir tmp name (time, pid, random), so concurrent rebuilds never share
        # a temporary file; the last rename() wins and both wrote a complete file.
        tmp_name = f"{time.time_ns()}.P{os.getpid()}R{os.urandom(8).hex()}.{MAILDIRSIZE}"
        tmp_path = os.path.join(tmp_dir, tmp_name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            try:
                fd = os.open(tmp_path, flags, 0o600)
            except FileNotFoundError:
                # A Maildir missing tmp/ is repaired the way Dovecot does; mkdir (not makedirs)
                # so a missing root stays an error instead of being created here.
                os.mkdir(tmp_dir, 0o700)
                adopt_path(tmp_dir)
                fd = os.open(tmp_path, flags, 0o600)
        except OSError as exc:
            raise _temporary("creating maildirsize", exc) from exc
        try:
            try:
                adopt(fd, self.root)  # as root: the mail root owner's (folderdir.py)
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp_path, self.path)
        except OSError as exc:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass
            raise _temporary("writing maildirsize", exc) from exc
