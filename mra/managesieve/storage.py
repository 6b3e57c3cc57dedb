"""An account's Sieve scripts on disk, in Pigeonhole's layout, so that Dovecot's managesieve and
ours can serve the same home and `mda` finds the active script where it already looks.

The layout (Pigeonhole 0.5's default `sieve = file:~/sieve;active=~/.dovecot.sieve`)
-----------------------------------------------------------------------------------------
    ~/sieve/NAME.sieve       each script, exactly the octets uploaded
    ~/sieve/tmp/             scripts being written (`SECS.MUSECSPPID.HOST.tmp`), renamed
                             into place; left-overs older than 36 hours are removed (as
                             Pigeonhole's `unlink_old_files`)
    ~/.dovecot.sieve         the active script: a symlink `sieve/NAME.sieve` (relative, as
                             Pigeonhole writes it), or absent when no script is active

`~` is the home directory of the account (the passwd-file's sixth field, or /etc/passwd's),
whatever its mail location: Pigeonhole expands `~` with the home and refuses the storage of a
user without one ("relative to home directory, but home directory is not available"), and
`mda` reads `~/.dovecot.sieve` (mda/deliver.py `sieve_scripts`). So an account without a home
has no Sieve, here as there.

What Pigeonhole does and we do the same way: a name is any UTF-8 of 1 to 256 characters
without a control character (U+0000-001F, U+007F-009F), "/", U+00FF, U+2028 or U+2029
(`sieve_script_name_is_valid`: RFC 5804 section 1.6 plus "/" and, for its own reasons, "ÿ",
which we refuse too so that both servers accept the same names); a script is listed when its
file ends in ".sieve"; the active link is replaced atomically (a new link beside it, then
rename(2)); RENAMESCRIPT is link(2) + unlink(2), so the new name never overwrites a script and
an active script stays active throughout; a regular file `~/.dovecot.sieve` (one script
written by hand, from before ManageSieve) is "rescued" into `~/sieve/dovecot.orig.sieve`
before the first activation replaces it. Compiled binaries (`*.svbin`) are Dovecot's cache:
we neither write nor read them.

What we do beyond it
--------------------
* Writes are durable: the script is fsynced in tmp/, renamed, and the directory fsynced
  before OK; the active link's directory (the home) likewise.
* Nothing is reached through a symlink the user could have planted: the home is opened once
  (its path is the administrator's), everything below it by name relative to directory file
  descriptors with O_NOFOLLOW. `~/sieve` and `~/sieve/tmp` must be real directories (a
  symlinked `~/sieve` is refused: followed by a server running as root, it would read and
  write wherever it points); a script must be a regular file; the active link is read with
  readlink(2), never followed, and obeyed only when it points into `~/sieve`. Names never
  hold "/" or NUL, so a name cannot leave the directory.
* Run as root (system users), files, directories and links are created as the account's own
  (its uid and gid), as Pigeonhole's, which runs as the user; and a file is read only when
  the account (or we) own it and it has one link, so that a hard link to a file the user
  cannot read (where fs.protected_hardlinks is off) is not served to them.
* Quotas are checked and scripts written under an flock(2) on `~/sieve`, so two sessions of
  ours cannot both take the last free slot.

Every method blocks (directory scans, fsync): call them from the thread pool.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "ACTIVE_LINK",
    "NoSuchScript",
    "Quota",
    "QuotaExceeded",
    "ScriptExists",
    "ScriptIsActive",
    "ScriptStorage",
    "StorageError",
    "StorageFailure",
    "valid_name",
]

SIEVE_DIR = "sieve"
TMP_DIR = "tmp"
ACTIVE_LINK = ".dovecot.sieve"
EXTENSION = ".sieve"
COMPILED_SUFFIX = ".mdac"  # mda/sieve/compiled.py SUFFIX (a test holds them equal)
RESCUED = "dovecot.orig"  # Pigeonhole's name for a rescued regular ~/.dovecot.sieve
MAX_NAME_CHARS = 256  # Pigeonhole's SIEVE_MAX_SCRIPT_NAME_LEN (RFC 5804: at least 128)
NAME_MAX = 255  # octets of a file name (Linux)
TMP_MAX_AGE = 36 * 3600  # Pigeonhole's SIEVE_FILE_STORAGE_TMP_DELETE_SECS
_COPY_CHUNK = 1 << 16

_FORBIDDEN = frozenset([*range(0x20), 0x2F, *range(0x7F, 0xA0), 0xFF, 0x2028, 0x2029])


def valid_name(name: str) -> bool:
    """A script name Pigeonhole accepts (see the module docstring) whose file name fits."""
    if not name or len(name) > MAX_NAME_CHARS:
        return False
    if any(ord(c) in _FORBIDDEN or 0xD800 <= ord(c) <= 0xDFFF for c in name):
        return False  # surrogates: not UTF-8 (a file name that os.fsdecode escaped)
    return len(name.encode("utf-8")) + len(EXTENSION) <= NAME_MAX


def name_from_bytes(data: bytes) -> str | None:
    """The script name a client sent, or None if it is not UTF-8 or not valid."""
    try:
        name = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if valid_name(name) else None


# --- errors ---------------------------------------------------------------------------------


class StorageError(Exception):
    """A refusal the client is told about (each kind has its response code)."""


class NoSuchScript(StorageError):
    pass


class ScriptExists(StorageError):
    pass


class ScriptIsActive(StorageError):
    pass


class QuotaExceeded(StorageError):
    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(kind, limit)
        self.kind = kind  # "size", "scripts" or "storage"
        self.limit = limit


class StorageFailure(StorageError):
    """Not the client's doing (a symlinked ~/sieve, a disk error): logged, TRYLATER."""


@dataclass(frozen=True, slots=True)
class Quota:
    max_script_size: int
    max_scripts: int = 0  # 0 = no limit
    max_storage: int = 0  # 0 = no limit


# --- the storage ----------------------------------------------------------------------------


class _Dirs:
    """The home and (once they exist) ~/sieve and ~/sieve/tmp, as open directories."""

    __slots__ = ("home", "sieve", "tmp")

    def __init__(self, home: int) -> None:
        self.home = home
        self.sieve = -1
        self.tmp = -1

    def close(self) -> None:
        for fd in (self.tmp, self.sieve, self.home):
            if fd >= 0:
                os.close(fd)


class ScriptStorage:
    """One account's scripts. `owner` (uid, gid): who new files belong to when we run as
    root (None: whoever we are)."""

    def __init__(self, home: str, quota: Quota, owner: tuple[int, int] | None = None) -> None:
        if not home or not os.path.isabs(home):
            raise ValueError("a Sieve storage needs an absolute home directory")
        self.home = home
        self.quota = quota
        self.owner = owner if os.geteuid() == 0 else None
        self._cleaned = False

    # -- reading ----------------------------------------------------------------------------

    def list(self) -> list[tuple[str, bool]]:
        """Every script's name, sorted, and whether it is the active one."""
        dirs = self._open(create=False)
        try:
            if dirs.sieve < 0:
                return []
            active = self._active(dirs)
            return [(name, name == active) for name, _size in self._scripts(dirs)]
        finally:
            dirs.close()

    def active(self) -> str | None:
        dirs = self._open(create=False)
        try:
            return self._active(dirs) if dirs.sieve >= 0 else None
        finally:
            dirs.close()

    def open_script(self, name: str) -> tuple[int, int]:
        """An open file descriptor on the script and its size (the caller closes it)."""
        dirs = self._open(create=False)
        try:
            if dirs.sieve < 0:
                raise NoSuchScript(name)
            return self._open_script(dirs, name)
        finally:
            dirs.close()

    def read(self, name: str) -> bytes:
        fd, size = self.open_script(name)
        try:
            return _read_all(fd, size)
        finally:
            os.close(fd)

    def check_space(self, name: str, size: int) -> None:
        """HAVESPACE (RFC 5804 2.5): raise QuotaExceeded if storing `size` octets as `name`
        would fail."""
        if size > self.quota.max_script_size:
            raise QuotaExceeded("size", self.quota.max_script_size)
        dirs = self._open(create=False)
        try:
            if dirs.sieve >= 0:
                self._check_quota(dirs, name, size)
        finally:
            dirs.close()

    # -- writing ----------------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        """Store (or replace) a script: quota checked, written durably, atomically."""
        if len(data) > self.quota.max_script_size:
            raise QuotaExceeded("size", self.quota.max_script_size)
        with self._locked() as dirs:
            self._check_quota(dirs, name, len(data))
            self._write(dirs, name + EXTENSION, data)

    def delete(self, name: str) -> None:
        with self._locked() as dirs:
            self._script_stat(dirs, name)
            if self._active(dirs) == name:
                raise ScriptIsActive(name)
            _fs(os.unlink, name + EXTENSION, dir_fd=dirs.sieve)
            _quietly(os.unlink, _compiled_name(name), dir_fd=dirs.sieve)
            _fsync(dirs.sieve)

    def rename(self, old: str, new: str) -> None:
        """RENAMESCRIPT (RFC 5804 2.11): link, repoint the active link, unlink."""
        with self._locked() as dirs:
            self._script_stat(dirs, old)
            try:
                os.link(
                    old + EXTENSION,
                    new + EXTENSION,
                    src_dir_fd=dirs.sieve,
                    dst_dir_fd=dirs.sieve,
                    follow_symlinks=False,
                )
            except FileExistsError:
                raise ScriptExists(new) from None
            except FileNotFoundError:
                raise NoSuchScript(old) from None
            except OSError as exc:
                raise StorageFailure(f"link {old!r} to {new!r}: {exc.strerror}") from exc
            try:
                if self._active(dirs) == old:
                    self._link_active(dirs, new)
            except BaseException:
                _quietly(os.unlink, new + EXTENSION, dir_fd=dirs.sieve)
                raise
            _fs(os.unlink, old + EXTENSION, dir_fd=dirs.sieve)
            _quietly(os.unlink, _compiled_name(old), dir_fd=dirs.sieve)
            _fsync(dirs.sieve)

    def activate(self, name: str) -> bool:
        """Make `name` the active script; False if it already was (the link is made again
        anyway, which repairs a broken one, as Pigeonhole does)."""
        with self._locked() as dirs:
            self._script_stat(dirs, name)
            was = self._active(dirs)
            self._rescue(dirs)
            self._link_active(dirs, name)
            return was != name

    def deactivate(self) -> bool:
        """SETACTIVE "": no script active; False if none was."""
        with self._locked() as dirs:
            self._rescue(dirs)
            return self._unlink_active(dirs)

    # -- directories ------------------------------------------------------------------------

    def _open(self, create: bool) -> _Dirs:
        try:
            home = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageFailure(f"home directory {self.home}: {exc.strerror}") from exc
        dirs = _Dirs(home)
        try:
            dirs.sieve = self._subdir(home, SIEVE_DIR, create, "~/sieve")
            if dirs.sieve >= 0 and create:
                dirs.tmp = self._subdir(dirs.sieve, TMP_DIR, True, "~/sieve/tmp")
        except BaseException:
            dirs.close()
            raise
        return dirs

    def _subdir(self, parent: int, name: str, create: bool, label: str) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        for _attempt in range(2):
            try:
                return os.open(name, flags, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    return -1
                try:
                    os.mkdir(name, 0o700, dir_fd=parent)
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise StorageFailure(f"cannot create {label}: {exc.strerror}") from exc
                self._own(name, parent)
                _fsync(parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise StorageFailure(f"{label} is not a directory (a symlink?)") from exc
                raise StorageFailure(f"{label}: {exc.strerror}") from exc
        raise StorageFailure(f"{label} keeps changing")

    def _locked(self) -> _Lock:
        return _Lock(self)

    def _own(self, name: str, dir_fd: int) -> None:
        if self.owner is not None:
            os.chown(name, *self.owner, dir_fd=dir_fd, follow_symlinks=False)

    # -- scripts ----------------------------------------------------------------------------

    def _scripts(self, dirs: _Dirs) -> Iterator[tuple[str, int]]:
        """(name, size) of every script, sorted by name: regular files NAME.sieve."""
        found = []
        with os.scandir(dirs.sieve) as entries:
            for entry in entries:
                fname = entry.name
                if not fname.endswith(EXTENSION) or fname == EXTENSION:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone meanwhile
                if not stat.S_ISREG(st.st_mode):
                    continue
                name = fname[: -len(EXTENSION)]
                if valid_name(name):
                    found.append((name, st.st_size))
        found.sort()
        return iter(found)

    def _script_stat(self, dirs: _Dirs, name: str) -> os.stat_result:
        if dirs.sieve < 0:
            raise NoSuchScript(name)
        try:
            st = os.stat(name + EXTENSION, dir_fd=dirs.sieve, follow_symlinks=False)
        except FileNotFoundError:
            raise NoSuchScript(name) from None
        except OSError as exc:
            raise StorageFailure(f"script {name!r}: {exc.strerror}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NoSuchScript(name)  # a symlink, a directory: not a script of ours
        return st

    def _open_script(self, dirs: _Dirs, name: str) -> tuple[int, int]:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name + EXTENSION, flags, dir_fd=dirs.sieve)
        except FileNotFoundError:
            raise NoSuchScript(name) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NoSuchScript(name) from None
            raise StorageFailure(f"script {name!r}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NoSuchScript(name)
            self._check_readable(st, f"script {name!r}")
        except BaseException:
            os.close(fd)
            raise
        return fd, st.st_size

    def _check_readable(self, st: os.stat_result, label: str) -> None:
        """Run as root, read only what the account could read itself: its own file (or
        ours) with a single link."""
        if self.owner is None:
            return
        if st.st_uid not in (self.owner[0], os.geteuid()) or st.st_nlink != 1:
            raise StorageFailure(f"{label} is not the account's own file (owner or links)")

    def _check_quota(self, dirs: _Dirs, name: str, size: int) -> None:
        quota = self.quota
        if size > quota.max_script_size:
            raise QuotaExceeded("size", quota.max_script_size)
        if not quota.max_scripts and not quota.max_storage:
            return
        count, total = 1, size
        for other, other_size in self._scripts(dirs):
            if other == name:
                continue  # replaced
            count += 1
            total += other_size
        if quota.max_scripts and count > quota.max_scripts:
            raise QuotaExceeded("scripts", quota.max_scripts)
        if quota.max_storage and total > quota.max_storage:
            raise QuotaExceeded("storage", quota.max_storage)

    def _write(self, dirs: _Dirs, fname: str, data: bytes | int) -> None:
        """Write `data` (or copy the open file `data`) to tmp/, fsync, rename to `fname`."""
        self._clean_tmp(dirs)
        tmp = _tmp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=dirs.tmp)
        except OSError as exc:
            raise StorageFailure(f"cannot create ~/sieve/tmp/{tmp}: {exc.strerror}") from exc
        try:
            try:
                if isinstance(data, bytes):
                    _write_all(fd, data)
                else:
                    _copy(data, fd)
                os.fsync(fd)
                if self.owner is not None:
                    os.fchown(fd, *self.owner)
            finally:
                os.close(fd)
            os.rename(tmp, fname, src_dir_fd=dirs.tmp, dst_dir_fd=dirs.sieve)
        except OSError as exc:
            _quietly(os.unlink, tmp, dir_fd=dirs.tmp)
            raise StorageFailure(f"cannot write ~/sieve/{fname}: {exc.strerror}") from exc
        except BaseException:
            _quietly(os.unlink, tmp, dir_fd=dirs.tmp)
            raise
        _fsync(dirs.sieve)

    def _clean_tmp(self, dirs: _Dirs) -> None:
        """Once per storage: remove what an interrupted write left in tmp/ long ago."""
        if self._cleaned:
            return
        self._cleaned = True
        limit = time.time() - TMP_MAX_AGE
        with os.scandir(dirs.tmp) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                    if not stat.S_ISDIR(st.st_mode) and st.st_mtime < limit:
                        os.unlink(entry.name, dir_fd=dirs.tmp)
                except OSError:
                    continue

    # -- the active link --------------------------------------------------------------------

    def _active(self, dirs: _Dirs) -> str | None:
        """The active script's name, from the link `~/.dovecot.sieve`; None when there is no
        link, it is not a symlink, or it points anywhere but into ~/sieve (Pigeonhole reads
        all three as "no active script", and activation repairs them)."""
        try:
            target = os.readlink(ACTIVE_LINK, dir_fd=dirs.home)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EINVAL):
                return None
            raise StorageFailure(f"~/{ACTIVE_LINK}: {exc.strerror}") from exc
        return self._parse_link(target)

    def _parse_link(self, target: str) -> str | None:
        directory, _, fname = target.rpartition("/")
        if not fname.endswith(EXTENSION) or fname == EXTENSION:
            return None
        name = fname[: -len(EXTENSION)]
        if not valid_name(name):
            return None
        places = {os.path.join(self.home, SIEVE_DIR), os.path.join(_real(self.home), SIEVE_DIR)}
        for base in (self.home, _real(self.home)):
            where = os.path.normpath(os.path.join(base, directory)) if directory else base
            if where in places:
                return name
        return None

    def _link_active(self, dirs: _Dirs, name: str) -> None:
        """Point ~/.dovecot.sieve at `name`: a new link beside it, renamed over it."""
        target = f"{SIEVE_DIR}/{name}{EXTENSION}"
        now = time.time()
        new = (
            f"{ACTIVE_LINK}-new.{int(now)}.P{os.getpid()}M{int(now * 1e6) % 1000000}.{_hostname()}"
        )
        try:
            os.symlink(target, new, dir_fd=dirs.home)
        except OSError as exc:
            raise StorageFailure(f"cannot create ~/{new}: {exc.strerror}") from exc
        try:
            self._own(new, dirs.home)
            os.rename(new, ACTIVE_LINK, src_dir_fd=dirs.home, dst_dir_fd=dirs.home)
        except OSError as exc:
            _quietly(os.unlink, new, dir_fd=dirs.home)
            raise StorageFailure(f"cannot replace ~/{ACTIVE_LINK}: {exc.strerror}") from exc
        _fsync(dirs.home)

    def _unlink_active(self, dirs: _Dirs) -> bool:
        """Remove ~/.dovecot.sieve (a link, or a regular file `_rescue` copied first)."""
        try:
            os.unlink(ACTIVE_LINK, dir_fd=dirs.home)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageFailure(f"cannot remove ~/{ACTIVE_LINK}: {exc.strerror}") from exc
        _fsync(dirs.home)
        return True

    def _rescue(self, dirs: _Dirs) -> None:
        """A regular ~/.dovecot.sieve (a script written by hand) is copied to
        ~/sieve/dovecot.orig.sieve before a link replaces it, as Pigeonhole does."""
        try:
            st = os.stat(ACTIVE_LINK, dir_fd=dirs.home, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageFailure(f"~/{ACTIVE_LINK}: {exc.strerror}") from exc
        if stat.S_ISLNK(st.st_mode):
            return
        if not stat.S_ISREG(st.st_mode):
            raise StorageFailure(f"~/{ACTIVE_LINK} is neither a symlink nor a regular file")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(ACTIVE_LINK, flags, dir_fd=dirs.home)
        except OSError as exc:
            raise StorageFailure(f"~/{ACTIVE_LINK}: {exc.strerror}") from exc
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                raise StorageFailure(f"~/{ACTIVE_LINK} changed while being read")
            self._check_readable(fst, f"~/{ACTIVE_LINK}")
            self._write(dirs, RESCUED + EXTENSION, fd)
        finally:
            os.close(fd)


class _Lock:
    """`with storage._locked() as dirs`: the directories (created if need be), with an
    exclusive flock on ~/sieve for the block."""

    def __init__(self, storage: ScriptStorage) -> None:
        self.storage = storage
        self.dirs: _Dirs | None = None

    def __enter__(self) -> _Dirs:
        import fcntl

        self.dirs = self.storage._open(create=True)
        try:
            fcntl.flock(self.dirs.sieve, fcntl.LOCK_EX)
        except OSError as exc:
            self.dirs.close()
            raise StorageFailure(f"cannot lock ~/sieve: {exc.strerror}") from exc
        return self.dirs

    def __exit__(self, *exc: object) -> None:
        assert self.dirs is not None
        self.dirs.close()  # closing the descriptor releases the lock


# --- helpers --------------------------------------------------------------------------------


def _compiled_name(name: str) -> str:
    """The file name of mda's compiled form of script `name` (mda/sieve/compiled.py
    `cache_path`: `.NAME.sieve.mdac` beside the script). DELETESCRIPT and RENAMESCRIPT remove
    it with the script: it could never be used for another script (its key holds the
    script's name and inode), but nothing else would ever remove it."""
    return f".{name}{EXTENSION}{COMPILED_SUFFIX}"


def _hostname() -> str:
    return (socket.gethostname() or "localhost").replace("/", "_").replace(":", "_")


def _tmp_name() -> str:
    """Pigeonhole's temporary name without a script name: SECS.MUSECSPPID.HOST.tmp."""
    now = time.time_ns() // 1000
    return f"{now // 1000000}.M{now % 1000000}P{os.getpid()}.{_hostname()}.tmp"


def _real(path: str) -> str:
    return os.path.realpath(path)


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise StorageFailure(f"fsync: {exc.strerror}") from exc


def _fs(fn: object, name: str, *, dir_fd: int) -> None:
    """An unlink that reports a failure as the storage's."""
    try:
        fn(name, dir_fd=dir_fd)  # type: ignore[operator]
    except FileNotFoundError:
        raise NoSuchScript(name) from None
    except OSError as exc:
        raise StorageFailure(f"{name}: {exc.strerror}") from exc


def _quietly(fn: object, name: str, *, dir_fd: int) -> None:
    try:
        fn(name, dir_fd=dir_fd)  # type: ignore[operator]
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _copy(src: int, dst: int) -> None:
    while chunk := os.read(src, _COPY_CHUNK):
        _write_all(dst, chunk)


def _read_all(fd: int, size: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, max(size, _COPY_CHUNK)):
        chunks.append(chunk)
    return b"".join(chunks)
