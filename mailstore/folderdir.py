"""The files of one Maildir folder, reached without following a symlink below the mail root.

Why
===
The server reads, and `mda` writes, the mail of many users as one system user (`vmail`). A user
who can make a symlink inside their own Maildir (`new -> /var/vmail/other/new`, a folder
`.Old -> /var/vmail/other`, a message file `-> /etc/shadow`) must not get the server to list,
serve, rename or deliver into anything outside their tree. Checking a path and then using it
leaves a window in which a directory is swapped for a symlink, so no path below the mail root is
ever handed to the kernel here: the folder directory is opened relative to the root, and `cur/`,
`new/` and `tmp/` relative to the folder, each with O_NOFOLLOW | O_DIRECTORY; message files are
opened, listed, linked, renamed and removed relative to those descriptors (openat, fdopendir,
linkat, renameat, unlinkat), message files again with O_NOFOLLOW. A descriptor names the real
directory that was at that place when it was opened, so whatever is reached through it lies
under the root, whatever is renamed meanwhile.

The root itself is what the configuration names (`[mail] location`, a passwd-file home): an
administrator may make it a symlink (`/var/vmail -> /srv/vmail`), and it is followed.

Which descriptors are kept
==========================
The folder's descriptor is kept until `release()`: the mailbox checks at every sync, with one
stat(), that the folder's path still names that directory, and opens it again when not (so a
folder replaced or made a symlink since the last sync is seen then). The descriptors of
`cur/`, `new/` and `tmp/` are opened for one operation, or for one `hold()` block (a flag change
of 10,000 messages opens `cur/` once), and closed after it. They are not kept longer because an
open descriptor of a deleted directory holds back its IN_DELETE_SELF (inotify reports it when the
last descriptor closes): a mailbox object still waiting for the garbage collector would keep the
process's shared listing of a replaced `cur/` from ever being refreshed (dirwatch.py). So a
message read costs one openat() of its directory more than a read by path (about 3-5 us here).
Not thread-safe, like the mailbox that owns it.

Who owns what we create
=======================
A server left running as root (`[server] user` empty) serves the Maildirs of users that own
them. Dovecot never writes there as root: its mail processes run as the user (the userdb's
uid, or `mail_uid`), and `mda` here delivers as the user too. So when we run as root, every
file and directory created below a mail root is given the owner and group of the directory it
is made in (the folder, for a message, an index or a `cur/` made again; the mail root, for a
new folder; the parent, for each directory `make_dirs` makes): exactly what it would have had if
that directory's owner had made it. Without it, the user's own `mda` cannot write the
root-owned dovecot-uidlist, and COPY's hard links of root-owned files are refused as planted
links to someone else's file (messagefile.py). A file is given away through its descriptor
before it is renamed or linked into place, a directory by name without following a symlink;
not as root, nothing is done (what we make is ours, as the directory's owner would have it).
"""

from __future__ import annotations

import errno
import os

from mailstore.errors import UnsafePath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from os import _ScandirIterator  # the stubs' name for what os.scandir() returns

FOLDER = ""  # the folder directory itself, as a `sub` argument
SUBDIRS = ("cur", "new", "tmp")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class FolderDir:
    """One folder: `root` (followed if a symlink) and `name`, the folder's directory in it
    (`.Sent`), or None when the folder is the root itself (INBOX)."""

    __slots__ = ("_folder", "_held", "_holding", "name", "path", "root")

    def __init__(self, root: str, name: str | None) -> None:
        self._folder = -1
        self._holding = 0
        self._held: dict[str, int] = {}
        if name is not None and (not name or "/" in name or name in (".", "..")):
            raise ValueError(f"not a directory name: {name!r}")
        self.root = root
        self.name = name
        self.path = root if name is None else os.path.join(root, name)

    @classmethod
    def of_path(cls, path: str, root: str | None, inbox: bool) -> FolderDir:
        """The FolderDir of a folder at `path`: Maildir++ folders are directories directly in
        the root, INBOX is the root."""
        path = os.path.abspath(path)
        if inbox and (root is None or os.path.abspath(root) == path):
            return cls(path, None)
        parent, name = os.path.split(path)
        if root is not None and os.path.abspath(root) != parent:
            raise ValueError(f"{path} is not a folder of {root}")
        return cls(parent, name)

    def __del__(self) -> None:
        self.release()

    def release(self) -> None:
        """Close the folder's descriptor: the next use opens it again (and so sees a folder
        replaced or turned into a symlink since)."""
        self._close_held()
        fd, self._folder = self._folder, -1
        if fd >= 0:
            os.close(fd)

    def hold(self) -> _Hold:
        """`with folder.hold():` keeps the descriptors of `cur/`, `new/`, `tmp/` opened in the
        block until its end, for operations on many messages."""
        return _Hold(self)

    def _close_held(self) -> None:
        held, self._held = self._held, {}
        for fd in held.values():
            os.close(fd)

    def folder_fd(self) -> int:
        """The folder's directory. Raises UnsafePath for a symlink or a non-directory,
        OSError (FileNotFoundError...) otherwise."""
        if self._folder < 0:
            if self.name is None:
                self._folder = os.open(self.root, _ROOT_FLAGS)
            else:
                root_fd = os.open(self.root, _ROOT_FLAGS)
                try:
                    self._folder = _open_dir(self.name, root_fd, self.path)
                finally:
                    os.close(root_fd)
        return self._folder

    def _sub(self, sub: str) -> tuple[int, bool]:
        """The descriptor of `cur`, `new` or `tmp`, and whether the caller must close it."""
        fd = self._held.get(sub)
        if fd is not None:
            return fd, False
        if sub not in SUBDIRS:
            raise ValueError(f"not a Maildir directory: {sub!r}")
        fd = _open_dir(sub, self.folder_fd(), os.path.join(self.path, sub))
        if self._holding:
            self._held[sub] = fd
            return fd, False
        return fd, True

    def where(self, sub: str, name: str = "") -> str:
        """A path for log lines (never opened)."""
        return os.path.join(self.path, sub, name) if name else os.path.join(self.path, sub)

    # -- the directories ------------------------------------------------------------------

    def stat_dir(self, sub: str) -> os.stat_result:
        """fstat() of `cur`, `new` or `tmp` (UnsafePath if it is a symlink or no directory)."""
        fd, own = self._sub(sub)
        try:
            return os.fstat(fd)
        finally:
            if own:
                os.close(fd)

    def lstat_dir(self, sub: str) -> os.stat_result:
        """lstat() of `cur`, `new` or `tmp` in the folder, without opening it (a symlink is
        reported as one)."""
        if sub not in SUBDIRS:
            raise ValueError(f"not a Maildir directory: {sub!r}")
        return os.stat(sub, dir_fd=self.folder_fd(), follow_symlinks=False)

    def scandir(self, sub: str) -> _ScandirIterator[str]:
        """The entries of `sub`, as a context manager (their `path` is the bare name: use
        `where` for log lines). Only inside `hold()`: a DirEntry's stat() uses the very
        descriptor given to os.scandir(), which must stay open while entries are used."""
        if not self._holding:
            raise RuntimeError("FolderDir.scandir() outside hold()")
        fd, _ = self._sub(sub)
        return os.scandir(fd)

    def fsync(self, sub: str) -> None:
        fd, own = self._sub(sub)
        try:
            os.fsync(fd)
        finally:
            if own:
                os.close(fd)

    def mkdir(self, sub: str) -> None:
        """Make a missing `cur/`, `new/` or `tmp/` again (the folder's owner's, as root)."""
        if sub not in SUBDIRS:
            raise ValueError(f"not a Maildir directory: {sub!r}")
        folder = self.folder_fd()
        os.mkdir(sub, 0o700, dir_fd=folder)
        adopt_name(sub, folder)

    # -- files in cur/, new/, tmp/ (the name is a single component: no `/`) ------------------

    def open(self, sub: str, name: str, flags: int, mode: int = 0o600) -> int:
        """Open `sub/name`; a file this makes (O_CREAT | O_EXCL) is the folder owner's, as
        root. Never a file that was there already: a hard link planted by the user to a file
        of someone else's would be given to the user."""
        fd, own = self._sub(sub)
        try:
            new = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
            if flags & os.O_CREAT and flags & os.O_EXCL:  # made by us, not found there
                try:
                    adopt(new, self.folder_fd())
                except BaseException:
                    os.close(new)
                    try:
                        os.unlink(name, dir_fd=fd)
                    except OSError:
                        pass
                    raise
            return new
        finally:
            if own:
                os.close(fd)

    def lstat(self, sub: str, name: str) -> os.stat_result:
        fd, own = self._sub(sub)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            if own:
                os.close(fd)

    def unlink(self, sub: str, name: str) -> None:
        fd, own = self._sub(sub)
        try:
            os.unlink(name, dir_fd=fd)
        finally:
            if own:
                os.close(fd)

    def rename(self, sub: str, name: str, to_sub: str, to_name: str) -> None:
        with self.hold():
            src, _ = self._sub(sub)
            dst, _ = self._sub(to_sub)
            os.rename(name, to_name, src_dir_fd=src, dst_dir_fd=dst)

    def link(self, sub: str, name: str, to: FolderDir, to_sub: str, to_name: str) -> None:
        """A hard link of `sub/name` as `to_sub/to_name` of folder `to` (maybe this one). A
        symlink is linked as itself, never its target (linkat without AT_SYMLINK_FOLLOW)."""
        with self.hold(), to.hold():
            src, _ = self._sub(sub)
            dst, _ = to._sub(to_sub)
            os.link(name, to_name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)


class _Hold:
    __slots__ = ("folder",)

    def __init__(self, folder: FolderDir) -> None:
        self.folder = folder

    def __enter__(self) -> FolderDir:
        self.folder._holding += 1
        return self.folder

    def __exit__(self, *exc: object) -> None:
        folder = self.folder
        folder._holding -= 1
        if not folder._holding:
            folder._close_held()


def new_owner(directory: int | str) -> tuple[int, int] | None:
    """Who what we create in `directory` (a descriptor, or a path, followed) must belong to:
    its owner and group when we run as root, None otherwise (see "Who owns what we create")."""
    if os.geteuid() != 0:
        return None
    st = os.fstat(directory) if isinstance(directory, int) else os.stat(directory)
    return st.st_uid, st.st_gid


def adopt(fd: int, directory: int | str) -> None:
    """As root, give the file open as `fd` the owner and group of `directory`, where it is
    made or goes; nothing otherwise. Before it is renamed or linked into place."""
    owner = new_owner(directory)
    if owner is not None:
        os.fchown(fd, *owner)


def adopt_name(name: str, dir_fd: int) -> None:
    """As root, give `name` (just made in the directory `dir_fd`) that directory's owner and
    group, without following a symlink put in its place meanwhile; nothing otherwise."""
    owner = new_owner(dir_fd)
    if owner is not None:
        os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)


def make_dirs(path: str, mode: int) -> None:
    """os.makedirs(path, mode, exist_ok=True), and as root each directory it makes gets the
    owner and group of the one it is made in."""
    path = os.path.abspath(path)
    missing: list[str] = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for made in reversed(missing):
        try:
            os.mkdir(made, mode)
        except FileExistsError:
            if not os.path.isdir(made):
                raise
            continue  # made meanwhile by someone else: theirs
        adopt_path(made)


def adopt_path(path: str) -> None:
    """As root, give `path` (just made by us) the owner and group of the directory it is in,
    without following a symlink put in its place meanwhile; nothing otherwise."""
    owner = new_owner(os.path.dirname(os.path.abspath(path)))
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)


def _open_dir(name: str, parent: int, path: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        # O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY on anything else but a directory
        # ENOTDIR. Either way it is not a directory of this Maildir.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{os.path.basename(path)} is a symlink or not a directory") from None
        raise
