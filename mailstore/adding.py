"""Adding messages to a folder: delivery, APPEND and COPY, durable before acknowledged.

The order (maildir(5), and what Dovecot does): the message is written to a new file in `tmp/`
and fsynced; it is hard-linked into `new/` (or `cur/` when it has flags) under its final name,
never replacing a name (link() fails where rename() would overwrite); the directory is fsynced;
only then does it get its UID, appended to `dovecot-uidlist` under the uidlist's dot-lock. A
failure before the UID takes back what was linked, so the MTA's retry cannot make a duplicate.
Every file is reached through the folder's directory descriptors (folderdir.py): a symlinked
`tmp/`, `new/` or `cur/` receives nothing.

When the UIDs run out (UidsExhausted), the folder is renumbered under the lock (Mailbox._renumber)
and the new messages get the last UIDs of the new numbering; a mailbox with a view syncs then,
so that its `uidvalidity` (APPENDUID, COPYUID) is the one the UIDs belong to.
"""

from __future__ import annotations

import os

from mailstore.content import VsizeCounter
from mailstore.errors import MailError, NotFound, TemporaryFailure, UnsafePath
from mailstore.filenames import join_name, unique_base
from mailstore.lock import DotLock
from mailstore.uidlist import UidsExhausted, write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import BinaryIO

    from mailstore.folderdir import FolderDir
    from mailstore.mailbox import Mailbox, Message


def append(
    box: Mailbox,
    source: bytes | BinaryIO,
    flags: Iterable[str] = (),
    internaldate: float | None = None,
    keep_lock: bool = False,
) -> int:
    """Store a message durably and give it a UID (the next sync shows it as added).
    `keep_lock`: the caller adds message after message (LMTP): see `_UidlistLock`."""
    with box.lock:
        letters = box.letters_for(flags) if flags else ""
        # The folder's descriptor as it is now: a delivery into a folder replaced since the
        # last sync goes to the new one, as a delivery by path would.
        box._dir.release()
    tmp_name, counter = write_tmp(box, source, internaldate)
    return commit(box, [(tmp_name, counter.size, counter.vsize, letters)], keep_lock)[0]


def append_many(
    box: Mailbox, messages: Iterable[tuple[bytes | BinaryIO, Iterable[str], float | None]]
) -> list[int]:
    """Store several messages all or nothing (IMAP MULTIAPPEND, RFC 3502): each is written to
    tmp/ and fsynced first, and only when all are there (and within the quota together) are
    they linked into the folder and given UIDs, in order, by one `commit`, which takes back
    every link if one fails. A failure before that, the iterable's own included (it may make
    each message as it is asked for), leaves nothing but the tmp/ files it removes."""
    with box.lock:
        box._dir.release()
    staged: list[tuple[str, int, int, str]] = []
    try:
        for source, flags, internaldate in messages:
            with box.lock:
                letters = box.letters_for(flags) if flags else ""
            tmp_name, counter = write_tmp(box, source, internaldate)
            staged.append((tmp_name, counter.size, counter.vsize, letters))
        if box.quota is not None and len(staged) > 1:
            box.quota.check(sum(s[1] for s in staged), len(staged))
    except BaseException:
        with box.lock:
            for tmp_name, *_ in staged:
                unlink_quietly(box._dir, "tmp", tmp_name)
        raise
    return commit(box, staged) if staged else []


def write_tmp(
    box: Mailbox, source: bytes | BinaryIO, internaldate: float | None
) -> tuple[str, VsizeCounter]:
    """Write the message to a new file in tmp/, fsynced; returns its name there. The folder's
    lock is held to open the file only: the writing and the fsync are done without it."""
    counter = VsizeCounter()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for _ in range(5):
        tmp_name = unique_base()
        try:
            with box.lock:
                fd = box._dir.open("tmp", tmp_name, flags, 0o600)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise TemporaryFailure(f"cannot create a file in tmp/: {exc.strerror}") from exc
    else:
        raise TemporaryFailure("cannot find a unique file name in tmp/")
    try:
        try:
            if isinstance(source, bytes | bytearray | memoryview):
                counter.feed(bytes(source))
                write_all(fd, source)
            else:
                while chunk := source.read(1 << 16):
                    counter.feed(chunk)
                    write_all(fd, chunk)
            os.fsync(fd)
            if internaldate is not None:
                os.utime(fd, (internaldate, internaldate))
        finally:
            os.close(fd)
        if box.quota is not None:
            box.quota.check(counter.size, 1)
    except BaseException as exc:
        with box.lock:
            unlink_quietly(box._dir, "tmp", tmp_name)
        if isinstance(exc, OSError):
            raise TemporaryFailure(f"cannot write message: {exc.strerror}") from exc
        raise
    return tmp_name, counter


def unlink_quietly(folder: FolderDir, sub: str, name: str) -> None:
    try:
        folder.unlink(sub, name)
    except (OSError, MailError):
        pass


def commit(
    box: Mailbox, files: list[tuple[str, int, int, str]], keep_lock: bool = False
) -> list[int]:
    """Link written tmp/ files into new/ (cur/ when flagged), fsync, then assign UIDs."""
    with box.lock:
        return _commit(box, files, keep_lock)


def _commit(box: Mailbox, files: list[tuple[str, int, int, str]], keep_lock: bool) -> list[int]:
    hint = _uidlist_hint(box)
    entries: list[tuple[str, str]] = []
    linked: list[tuple[str, str]] = []
    dirs_used = set()
    folder = box._dir
    left = 0  # files[:left] are linked and their tmp/ names gone
    with box._dir.hold():
        try:
            for tmp_name, size, vsize, letters in files:
                sub = "cur" if letters else "new"
                for attempt in range(5):
                    unique = tmp_name if attempt == 0 else unique_base()
                    base = f"{unique},S={size},W={vsize}"
                    name = join_name(base, letters) if letters else base
                    try:
                        # link(), not rename(): it never replaces an existing name.
                        folder.link("tmp", tmp_name, folder, sub, name)
                        linked.append((sub, name))
                        break
                    except FileExistsError:
                        continue
                else:
                    raise TemporaryFailure("cannot find a unique message file name")
                unlink_quietly(box._dir, "tmp", tmp_name)
                left += 1
                entries.append((base, name))
                dirs_used.add(sub)
            for sub in dirs_used:
                folder.fsync(sub)
        except BaseException as exc:  # a signal's exception too (mda: SECURITY.md 5)
            # Not durable, so not acknowledged: take back what was linked, and the MTA's
            # retry cannot produce a duplicate.
            for sub, name in linked:
                unlink_quietly(box._dir, sub, name)
            if isinstance(exc, OSError):
                raise TemporaryFailure(f"cannot deliver: {exc.strerror}") from exc
            raise
        finally:
            for tmp_name, *_ in files[left:]:
                unlink_quietly(box._dir, "tmp", tmp_name)
    try:
        with _UidlistLock(box.path, box._uidlist.path) if keep_lock else DotLock(box._uidlist.path):
            uids = _assign_uids(box, entries, hint)
    except BaseException as exc:
        # No UID, so not acknowledged (a lock that stays taken, an unreadable uidlist): take
        # back what was linked too, or the MTA's retry (mda's 75) would store it twice.
        for sub, name in linked:
            unlink_quietly(box._dir, sub, name)
        if isinstance(exc, OSError):
            raise TemporaryFailure(f"cannot assign UIDs: {exc.strerror}") from exc
        raise
    if box.quota is not None:
        box.quota.add(sum(f[1] for f in files), len(files))
    if box._loaded and box._uidlist.exists and box._uidlist.uidvalidity != box._uidvalidity:
        # The UIDs are of another UIDVALIDITY than the view's (renumbered just now, or
        # rewritten by someone): sync, so that `uidvalidity` (APPENDUID) is theirs and the
        # sessions viewing this folder hear of it.
        box.sync()
    return uids


# The uidlist's dot-lock, taken for every message added, is a file made and removed each time:
# an inode allocated and freed per message. On ext4 without a journal (this project's test
# machines) a freed inode counts as "recently deleted" for a minute or more, and every
# allocation in its group steps over each of those (ext4's find_inode_bit), so that making any
# file there costs more the more locks were made in the last minutes: a write+fsync+rename
# loop that also made and removed a lock file ran at a quarter of its rate here, and the
# kernel's CPU per LMTP delivery fell by 0.7 to 1 ms without it (bench/lmtp.py). So a caller
# that adds message after message (LMTP in the server: `keep_lock`) makes the lock by link()
# of a file this process keeps in the folder's tmp/, holding `<pid>:<host>` as any dot-lock
# does, its mtime set at each taking: the lock file others see is the same in every respect
# (name, content, freshness, so Dovecot's and our staleness rules judge it alike), it is made
# with the same exclusion (link() fails where the name exists, as O_EXCL does), it is removed
# the same way, and no inode is freed. Folder path -> the name of its kept file in tmp/, the
# most recent STASHES_MAX of them (an evicted one is removed; one left by a killed process is
# tmp/ garbage that the 36-hour clean-up removes, Dovecot's as ours). Made per process: a
# forked child (Sieve's, mra/lmtp/isolate.py) takes its locks with O_EXCL.
_stashes: dict[str, str] = {}
_stash_pid = 0  # the process _stashes belongs to
STASHES_MAX = 1000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _UidlistLock(DotLock):
    """The uidlist's dot-lock, made by link() of a file the process keeps (see `_stashes`)."""

    def __init__(self, folder: str, path: str) -> None:
        super().__init__(path)
        self.folder = folder

    def _create(self) -> None:
        global _stash_pid
        if _stash_pid != os.getpid():
            if _stash_pid:  # a forked child: the parent's kept files say the parent's pid
                super()._create()
                return
            _stash_pid = os.getpid()
        stashes = _stashes
        # tmp/ by a descriptor, never through a symlink (folderdir.py); the kept file's mtime
        # set now, so that the lock looks as fresh as one just made (staleness is its age).
        tmp = os.open(os.path.join(self.folder, "tmp"), _DIR_FLAGS)
        try:
            for attempt in range(2):
                name = stashes.get(self.folder)
                if name is None:
                    name = _new_stash(tmp, stashes, self.folder)
                try:
                    os.utime(name, dir_fd=tmp, follow_symlinks=False)
                    os.link(name, self.lock_path, src_dir_fd=tmp, follow_symlinks=False)
                    return
                except FileNotFoundError:
                    # The kept file is gone (a tmp/ clean-up): make another, once.
                    if stashes.get(self.folder) == name:
                        del stashes[self.folder]
                    if attempt:
                        raise
        finally:
            os.close(tmp)


def _new_stash(tmp: int, stashes: dict[str, str], folder: str) -> str:
    """A new kept lock file in the folder's tmp/ (`tmp`), named like any temporary file."""
    from mailstore.filenames import hostname

    name = unique_base() + ".uidlist-lock"
    fd = os.open(
        name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=tmp
    )
    try:
        os.write(fd, f"{os.getpid()}:{hostname()}".encode())
    finally:
        os.close(fd)
    kept = stashes.setdefault(folder, name)
    if kept != name:  # another thread made one for this folder meanwhile: use that one
        _unlink_at(tmp, name)
        return kept
    while len(stashes) > STASHES_MAX:
        try:
            old_folder = next(iter(stashes))
            old = stashes.pop(old_folder)
        except (KeyError, RuntimeError, StopIteration):
            break  # another thread changed the dict meanwhile: trimmed next time
        try:
            os.unlink(os.path.join(old_folder, "tmp", old))
        except OSError:
            pass
    return name


def _unlink_at(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _assign_uids(
    box: Mailbox, entries: list[tuple[str, str]], hint: tuple[int, int] | None
) -> list[int]:
    """UIDs for files just linked (the uidlist lock held)."""
    if hint is not None:
        uids = box._uidlist.append_after(entries, hint)
        if uids is not None:
            return uids
    box._uidlist.refresh()
    if not box._uidlist.exists:
        box._write_new_uidlist()
    try:
        return box._uidlist.append(entries)
    except UidsExhausted:
        box._scan_dirs(force=True)
        box._renumber(entries)
        return [box._uidlist.records[base][0] for base, _ in entries]


def _uidlist_hint(box: Mailbox) -> tuple[int, int] | None:
    """(inode, size) of the uidlist before our files are linked: any UID given to them
    by another process is appended after that point (see UidList.append_after)."""
    if box._loaded:
        return None
    try:
        st = os.stat(box._uidlist.path)
    except OSError:
        return None
    return st.st_ino, st.st_size


def _stage_copy(box: Mailbox, msg: Message, dest: Mailbox) -> tuple[str, int, int]:
    """A copy of `msg` in dest's tmp/ (a hard link, else the bytes): its name and sizes.
    NotFound when the message was expunged meanwhile."""
    vsize = box.message_vsize(msg)
    size = box.message_size(msg)
    tmp_name = unique_base()
    try:
        box._dir.link(msg.subdir, msg.name, dest._dir, "tmp", tmp_name)
    except FileNotFoundError:
        box.sync()
        if msg.uid not in box._base_of:
            raise NotFound(f"message {msg.uid} is no longer there") from None
        with box.open_message(msg.uid) as f:
            tmp_name, _ = write_tmp(dest, f, box.internaldate(msg))
    except (OSError, UnsafePath):
        # Another file system, a link limit, a symlinked directory: copy the bytes
        # (open_message refuses what must not be read).
        with box.open_message(msg.uid) as f:
            tmp_name, _ = write_tmp(dest, f, box.internaldate(msg))
    return tmp_name, size, vsize


def copy(box: Mailbox, uids: Iterable[int], dest: Mailbox) -> list[tuple[int, int]]:
    """Copy messages with their flags; returns (source UID, destination UID) pairs.

    Hard links where possible (as Dovecot's maildir_copy_with_hardlinks), a byte copy
    otherwise. Keyword letters are translated to the destination's keyword file.
    """
    staged: list[tuple[str, int, int, str]] = []
    sources: list[int] = []
    with _Both(box, dest):
        box._ensure_loaded()
        dest._dir.release()  # a fresh look at the destination folder (see append)
        with box._dir.hold(), dest._dir.hold():
            try:
                for uid in uids:
                    msg = box._peek(uid)
                    if msg is None:
                        continue
                    flags = list(msg.flags) + box._keywords.letters_to_names(msg.letters)
                    letters = dest.letters_for(flags)
                    kept = "".join(c for c in msg.letters if c == "P")
                    try:
                        tmp_name, size, vsize = _stage_copy(box, msg, dest)
                    except NotFound:
                        continue  # expunged meanwhile: missing from the pairs returned
                    staged.append((tmp_name, size, vsize, letters + kept))
                    sources.append(uid)
            except BaseException:
                for tmp_name, *_ in staged:
                    unlink_quietly(dest._dir, "tmp", tmp_name)
                raise
    if not staged:
        return []
    if dest.quota is not None:
        dest.quota.check(sum(s[1] for s in staged), len(staged))
    new_uids = commit(dest, staged)
    return list(zip(sources, new_uids, strict=True))


class _Both:
    """The locks of two folders (or of one twice), always taken in the same order, so that
    two COPYs in opposite directions never wait for each other (see Mailbox.lock)."""

    __slots__ = ("locks",)

    def __init__(self, a: Mailbox, b: Mailbox) -> None:
        self.locks = [a.lock] if a.lock is b.lock else sorted((a.lock, b.lock), key=id)

    def __enter__(self) -> None:
        for lock in self.locks:
            lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self.locks):
            lock.__exit__(None, None, None)
