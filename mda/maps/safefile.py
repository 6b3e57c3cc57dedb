"""May mda take instructions from this file? sendmail's safefile()/safedirpath(), for mda.

`mda` runs as root under sendmail's local mailer, and whatever its configuration, maps and
`:include:` files say it does with root's help: run `[mda] sendmail`, pick the uid a mailbox is
written as, forward a user's mail elsewhere. So such a file is obeyed only when nobody but a
trusted user could have written it (SECURITY.md, heading 5). A file is trusted when

- it is a regular file, owned by a trusted uid, and writable by neither its group nor others
  (sendmail: SFF_REGONLY, SFF_NOGWFILES, SFF_NOWWFILES);
- every directory on the way to it, symbolic links followed (each hop checked where it
  lives), is owned by a trusted uid and writable by neither group nor others, so that nobody
  else can rename another file into its place (sendmail's safedirpath() with SFF_SAFEDIRPATH).

One exception keeps `/tmp`-style directories usable without trusting them blindly: a directory
writable by others is accepted when it has the sticky bit, is owned by a trusted uid, and the
entry we go through in it is owned by a trusted uid. The sticky bit stops anyone but the
entry's owner, the directory's owner and root from renaming or removing it, which is the
reason sendmail's `DontBlameSendmail=TrustStickyBit` exists; checking the entry's owner is what
makes trusting it safe (an entry created first by someone else is refused).

Which uids are trusted depends on what the file controls. Root and the user mda runs as, for
everything (`default_trusted`): the configuration and the user database decide which uid mda
becomes and which program it runs, so nobody else may write them. The maps, the `:include:`
lists, `local_domains` and the global Sieve scripts only say where mail goes, so the owner of
`[mda] mail_uid`, who can read and write every mailbox anyway, may also keep them
(`with_mail_user`); programs and files in the aliases file still need a root-owned file
(`mda.maps.aliases`). ACLs are not looked at.

A refused file is a temporary failure (`MapError`, exit 75): the MTA keeps the mail, and the
administrator sees the one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import os

from mda.maps.errors import MapError

_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFDIR = 0o040000
_S_IFLNK = 0o120000
_S_ISVTX = 0o1000
_WRITABLE = 0o022  # group or others
_MAX_LINKS = 40  # as the kernel's own limit on symbolic links in one path (ELOOP)


def default_trusted() -> frozenset[int]:
    """Root and the user this process runs as: the least any caller trusts."""
    return frozenset((0, os.geteuid()))


def with_mail_user(mail_uid: str) -> frozenset[int]:
    """`default_trusted()` and the uid `[mda] mail_uid` names (a user name or a number)."""
    if not mail_uid:
        return default_trusted()
    if mail_uid.isascii() and mail_uid.isdigit():
        return default_trusted() | {int(mail_uid)}
    import pwd

    try:
        return default_trusted() | {pwd.getpwnam(mail_uid).pw_uid}
    except KeyError:
        return default_trusted()  # the delivery will say that the user does not exist


def unsafe_reason(path: str, st: os.stat_result, trusted: frozenset[int]) -> str | None:
    """Why the file `path`, whose (f)stat is `st`, must not be obeyed; None when it may be.

    `st` should be the fstat() of the descriptor actually read: the file checked is then the
    file used (the path's checks prove nobody untrusted could swap it in between).
    """
    why = _file_problem(st, trusted)
    if why is not None:
        return why
    return _path_problem(path, trusted)


def check(path: str, trusted: frozenset[int]) -> os.stat_result:
    """The stat of the trusted file `path`; MapError (a temporary failure) if it is not one."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise MapError(path, e.strerror or str(e)) from e
    why = unsafe_reason(path, st, trusted)
    if why is not None:
        raise MapError(path, refusal(why))
    return st


def refusal(why: str) -> str:
    """The text of a refused file's error line."""
    return f"not trusted ({why}): only root or the mail user may be able to change it"


def _file_problem(st: os.stat_result, trusted: frozenset[int]) -> str | None:
    if (st.st_mode & _S_IFMT) != _S_IFREG:
        return "not a regular file"
    if st.st_uid not in trusted:
        return f"owned by uid {st.st_uid}"
    if st.st_mode & 0o002:
        return "world-writable file"
    if st.st_mode & 0o020:
        return "group-writable file"
    return None


def _path_problem(path: str, trusted: frozenset[int]) -> str | None:
    """Walk `path` one component at a time from `/`, following symbolic links, checking every
    directory an entry is looked up in."""
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)
    pending = [p for p in path.split("/") if p][::-1]  # a stack: the next component on top
    current = "/"
    try:
        here = os.lstat(current)
    except OSError as e:
        return f"cannot check directory /: {e.strerror or e}"
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            # `current` holds no symbolic link, so its parent is the lexical one.
            current = os.path.dirname(current)
            try:
                here = os.lstat(current)
            except OSError as e:
                return f"cannot check directory {current}: {e.strerror or e}"
            continue
        entry = os.path.join(current, name)
        try:
            st = os.lstat(entry)
        except OSError as e:
            return f"cannot check {entry}: {e.strerror or e}"
        why = _directory_problem(current, here, st, trusted)
        if why is not None:
            return why
        kind = st.st_mode & _S_IFMT
        if kind == _S_IFLNK:
            links += 1
            if links > _MAX_LINKS:
                return f"too many symbolic links in {path}"
            try:
                target = os.readlink(entry)
            except OSError as e:
                return f"cannot read the symbolic link {entry}: {e.strerror or e}"
            pending.extend([p for p in target.split("/") if p][::-1])
            if target.startswith("/"):
                current = "/"
                try:
                    here = os.lstat(current)
                except OSError as e:
                    return f"cannot check directory /: {e.strerror or e}"
            continue
        if pending:
            if kind != _S_IFDIR:
                return f"{entry} is not a directory"
            current, here = entry, st
    return None


def _directory_problem(
    directory: str, st: os.stat_result, entry: os.stat_result, trusted: frozenset[int]
) -> str | None:
    """Why `directory` (stat `st`) lets someone untrusted replace `entry`; None if it does not."""
    if st.st_uid not in trusted:
        return f"directory {directory} is owned by uid {st.st_uid}"
    if st.st_mode & _WRITABLE:
        if st.st_mode & _S_ISVTX and entry.st_uid in trusted:
            return None  # sticky: only the entry's (trusted) owner may replace it
        kind = "world" if st.st_mode & 0o002 else "group"
        return f"{kind}-writable directory {directory}"
    return None
