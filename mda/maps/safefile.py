"""Is a file safe to take delivery instructions from? sendmail's safefile()/safedirpath(), trimmed.

sendmail refuses an `:include:` (or `.forward`) file that someone other than its owner could
have written: a file that is not a regular file, a world-writable file, or one reached through
a world-writable directory (libsmutil/safefile.c: SFF_REGONLY, SFF_NOWWFILES, SFF_SAFEDIRPATH).
Anyone able to write there could add recipients to a list or replace the file outright.

Like sendmail, a world-writable directory is unsafe even with the sticky bit set (as /tmp is)
unless the administrator opts in, which sendmail spells `DontBlameSendmail=TrustStickyBit`.
Group-writable directories are accepted here: on Debian /etc/mail is group-writable by smmsp,
and refusing that would refuse every mailing list.
"""

from __future__ import annotations

import os

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_ISVTX = 0o1000
_S_IWOTH = 0o002


def _ancestors(directory: str) -> list[str]:
    """`/a/b` -> [`/`, `/a`, `/a/b`]."""
    out = ["/"]
    path = ""
    for part in directory.split("/"):
        if part:
            path += "/" + part
            out.append(path)
    return out


def unsafe_reason(path: str, st: os.stat_result, *, trust_sticky_bit: bool = False) -> str | None:
    """Why the file `path`, whose (f)stat is `st`, is unsafe; None when it is safe.

    `st` should come from fstat() of the descriptor actually read, so that the file checked is
    the file used. The directories checked are those of the path as written and those of its
    resolved location: a symlink through a world-writable directory is as unsafe as a file in it.
    """
    if (st.st_mode & _S_IFMT) != _S_IFREG:
        return "not a regular file"
    if st.st_mode & _S_IWOTH:
        return "world-writable file"
    absolute = os.path.abspath(path)
    dirs = _ancestors(os.path.dirname(absolute))
    for d in _ancestors(os.path.dirname(os.path.realpath(absolute))):
        if d not in dirs:
            dirs.append(d)
    for d in dirs:
        try:
            mode = os.stat(d).st_mode
        except OSError as e:
            return f"cannot check directory {d}: {e.strerror or e}"
        if mode & _S_IWOTH and not (trust_sticky_bit and mode & _S_ISVTX):
            return f"world-writable directory {d}"
    return None
