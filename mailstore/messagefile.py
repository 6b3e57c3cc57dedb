"""Opening and reading one message file, so that a bad file costs only its own message.

A Maildir holds whatever its user, another program or an attacker put there: a symlink to a file
the server can read and the user cannot, a hard link to another user's message, a file nobody
may read (mode 000), a bad disk block. The server serves many users from one process, so none
of these may be served, and none may stop the rest of the folder from being served: every
failure to open or read one file becomes MessageUnreadable for that message (logged once per
file by the mailbox), and only failures of the process itself (out of descriptors or memory)
stay TemporaryFailure.

The checks, on the open descriptor (no window between check and use):
* opened with O_NOFOLLOW through the folder's directory descriptors (folderdir.py), so neither
  the file nor any directory below the mail root is a symlink;
* a regular file (not a FIFO, which would block a read forever, nor a device);
* a file with more than one link is served only when the folder's owner owns it: a link to a
  file of somebody else is a planted one (our own hard links, COPY between folders, keep the
  owner).
"""

from __future__ import annotations

import errno
import os
import stat

from mailstore.errors import ErrorKind, MailError, MessageUnreadable, TemporaryFailure, UnsafePath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from mailstore.folderdir import FolderDir

# Failures of the process, not of the file: the next message would fail the same way.
_PROCESS_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS)
_REFUSED = (errno.EACCES, errno.EPERM, errno.ELOOP)


def open_file(
    folder: FolderDir,
    sub: str,
    name: str,
    owner: int,
    uid: int,
    warn: Callable[[str, str], None],
) -> tuple[int, int]:
    """A descriptor of the message file `sub/name` and its size. FileNotFoundError is left to
    the caller (the file was renamed or expunged: sync and look again)."""
    where = folder.where(sub, name)
    try:
        fd = folder.open(sub, name, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except UnsafePath:
        warn("symlink-refused", folder.where(sub))
        raise MessageUnreadable(uid, "its directory is a symlink or not a directory") from None
    except OSError as exc:
        raise failure(uid, exc, where, warn) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise failure(uid, exc, where, warn) from None
    reason = refusal(st, owner)
    if reason is not None:
        os.close(fd)
        warn("foreign-file-refused", where)
        raise MessageUnreadable(uid, reason)
    return fd, st.st_size


def refusal(st: os.stat_result, owner: int) -> str | None:
    """Why a file with this stat() is not served (None: it is)."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_nlink > 1 and st.st_uid != owner:
        return "a hard link to a file of another owner"
    return None


def unreadable_by_mode(st: os.stat_result) -> str | None:
    """Whether this process lacks read permission by the file's mode bits, as the kernel
    decides (the owner's bits for the owner, else the group's, else the others'; root reads
    anything). ACLs are not looked at: such a file fails at its open instead."""
    uid = os.geteuid()
    if uid == 0:
        return None
    if st.st_uid == uid:
        allowed = st.st_mode & stat.S_IRUSR
    elif st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        allowed = st.st_mode & stat.S_IRGRP
    else:
        allowed = st.st_mode & stat.S_IROTH
    return None if allowed else "Permission denied"


def read_all(fd: int, size: int) -> bytes:
    """`size` bytes (less if the file is shorter) with as few os.read() calls as it takes:
    one, for a file that is not being written (a message file never is)."""
    data = os.read(fd, size)
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


def failure(
    uid: int, exc: OSError, where: str, warn: Callable[[str, str], None] | None = None
) -> MailError:
    """The error for an OSError met while opening or reading message `uid`."""
    if exc.errno in _PROCESS_ERRORS:
        return TemporaryFailure(f"cannot read message {uid}: {exc.strerror}")
    if warn is not None:
        warn("symlink-refused" if exc.errno == errno.ELOOP else "message-unreadable", where)
    if exc.errno == errno.ELOOP:
        return MessageUnreadable(uid, "a symlink")
    kind = ErrorKind.PERMISSION if exc.errno in _REFUSED else ErrorKind.TEMPORARY
    return MessageUnreadable(uid, exc.strerror or "read failed", kind)
