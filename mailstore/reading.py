"""Reading a folder's messages: their files, headers, sizes and dates.

Why apart: this is all the folder does for a FETCH, a RETR or a SEARCH, and none of it changes
the folder. Every failure to open or read one file is MessageUnreadable for that message alone
(see messagefile.py: symlinks, planted hard links to someone else's file, unreadable modes);
NotFound means the message is gone (expunged meanwhile). A file that moved (a flag change by
another process) is found again after a sync, a few times. Files are opened holding the folder's
lock (they are reached through its descriptors) and read without it. The functions take the
Mailbox, as adding.py's do.
"""

from __future__ import annotations

import os
import stat

from mailstore.content import header_end, vsize_of_file
from mailstore.errors import MessageUnreadable, NotFound, UnsafePath
from mailstore.filenames import sizes_of
from mailstore.messagefile import failure, open_file, read_all, refusal, unreadable_by_mode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.errors import MailError
    from mailstore.mailbox import Mailbox
    from mailstore.message import Message

HEADER_READ = 8192
HEADER_MAX = 1 << 20
HEADER_CACHE = 5_000  # messages per open mailbox: a few KiB each in practice


class Reading:
    """Mailbox.reading(): the folder's descriptors held, the lock only while counting."""

    __slots__ = ("box", "hold")

    def __init__(self, box: Mailbox) -> None:
        self.box = box
        self.hold = box._dir.hold()

    def __enter__(self) -> None:
        with self.box.lock:
            self.hold.__enter__()

    def __exit__(self, *exc: object) -> None:
        with self.box.lock:
            self.hold.__exit__()


def check_servable(box: Mailbox, msg: Message) -> None:
    """See Mailbox.check_servable."""
    try:
        with box.lock:
            st = box._dir.lstat(msg.subdir, msg.name)
    except FileNotFoundError:
        return  # renamed meanwhile: the read finds it again
    except UnsafePath:
        raise MessageUnreadable(msg.uid, "its directory is a symlink") from None
    except OSError as exc:
        raise read_failed(box, msg.uid, exc) from None
    if stat.S_ISLNK(st.st_mode):
        reason: str | None = "a symlink"
        event = "symlink-refused"
    else:
        reason = refusal(st, box._owner)
        event = "foreign-file-refused"
        if reason is None:
            reason = unreadable_by_mode(st)
            event = "message-unreadable"
    if reason is not None:
        box._warn_once(event, box._dir.where(msg.subdir, msg.name))
        raise MessageUnreadable(msg.uid, reason)


def open_fd(box: Mailbox, uid: int, base: str | None = None) -> tuple[int, int]:
    """A descriptor of the message's file, and the file's size (opened holding the lock;
    the caller reads without it). With `base`, the file of that base whatever UID it has."""
    with box.lock:
        for _ in range(3):
            if base is None:
                msg = box.get(uid)
                sub, name = msg.subdir, msg.name
            else:
                found = box.uid_of_base(base) is not None
                loc = box._listings.locate(base) if found else None
                if loc is None:
                    raise NotFound(f"message {uid} is no longer there")
                sub, name = loc
            try:
                return open_file(box._dir, sub, name, box._owner, uid, box._warn_once)
            except FileNotFoundError:
                box.sync()  # renamed (flags changed) or expunged by another process: look again
        raise NotFound(f"message {uid} keeps moving")


def read_message(box: Mailbox, uid: int) -> bytes:
    """The whole file of a message, as stored."""
    # os.read() straight into one bytes object: no buffered file object per message. A
    # message file never changes, so its size from fstat() is the whole of it.
    fd, size = open_fd(box, uid)
    try:
        data = read_all(fd, size)
    except OSError as exc:
        raise read_failed(box, uid, exc) from None
    finally:
        os.close(fd)
    msg = box._peek(uid)
    if msg is not None and msg.base not in box._headers:
        _remember_header(box, uid, data)
    return data


def read_failed(box: Mailbox, uid: int, exc: OSError) -> MailError:
    """The error for a read of message `uid` that failed with `exc` (logged once)."""
    msg = box._peek(uid)
    where = box._dir.where(msg.subdir, msg.name) if msg is not None else box.path
    return failure(uid, exc, where, box._warn_once)


def read_header(box: Mailbox, uid: int) -> bytes:
    """See Mailbox.read_header."""
    msg = box.get(uid)
    cached = box._headers.get(msg.base)
    if cached is not None:
        return cached
    try:
        with box.open_message(uid) as f:
            data = f.read(HEADER_READ)
            while header_end(data) < 0 and len(data) < HEADER_MAX:
                more = f.read(HEADER_READ)
                if not more:
                    break
                data += more
    except OSError as exc:
        raise read_failed(box, uid, exc) from None
    return _remember_header(box, uid, data)


def _remember_header(box: Mailbox, uid: int, data: bytes) -> bytes:
    end = header_end(data)
    header = data if end < 0 else data[:end]
    if len(box._headers) >= HEADER_CACHE:
        box._headers.clear()  # bounded memory; refilled by the next FETCH or SEARCH
    msg = box._peek(uid)
    if msg is not None:
        box._headers[msg.base] = header
    return header


def measure(box: Mailbox, msg: Message) -> tuple[int, int]:
    """Both sizes of a message whose name lacks one: counted from the file, where the
    name says nothing (a name may carry `,W=` without `,S=`: what it says is kept, so a
    size never changes between two calls)."""
    try:
        with box.open_message(msg.uid) as f:
            size, vsize = vsize_of_file(f)
    except OSError as exc:
        raise read_failed(box, msg.uid, exc) from None
    named_size, named_vsize = sizes_of(msg.base)
    sizes = (
        size if named_size is None else named_size,
        vsize if named_vsize is None else named_vsize,
    )
    msg._sizes = sizes
    return sizes


def internaldate(box: Mailbox, msg: Message) -> float:
    """See Mailbox.internaldate."""
    for _ in range(3):
        if msg._internaldate is not None:
            return msg._internaldate
        try:
            with box.lock:
                msg._internaldate = box._dir.lstat(msg.subdir, msg.name).st_mtime
        except FileNotFoundError:
            box.sync()
            msg = box.get(msg.uid)
        except UnsafePath:
            raise MessageUnreadable(msg.uid, "its directory is a symlink") from None
        except OSError as exc:
            raise read_failed(box, msg.uid, exc) from None
    raise NotFound(f"message {msg.uid} keeps moving")


def save_date(box: Mailbox, msg: Message) -> float:
    """See Mailbox.save_date."""
    try:
        st = os.stat(os.path.join(box.path, msg.subdir, msg.name))
    except FileNotFoundError:
        box.sync()
        msg = box.get(msg.uid)
        st = os.stat(os.path.join(box.path, msg.subdir, msg.name))
    return st.st_ctime
