"""Maildir file names, as Dovecot 2.3 writes and reads them.

A message file is named `<base>:2,<flags>`. The base is unique per Maildir (D. J. Bernstein's
maildir(5): `<secs>.M<usecs>P<pid>Q<n>.<host>`) and never changes; Dovecot appends `,S=<size>`
(bytes on disk) and `,W=<size>` (size with CRLF line ends) to it so that sizes need no stat() or
read(). The part after `:2,` holds the flags: the standard ones in ASCII order (`D` draft, `F`
flagged, `P` passed, `R` replied, `S` seen, `T` trashed) and keyword letters `a`..`z`, whose
meaning is the per-folder `dovecot-keywords` file. A message keeps its base for life, so the base
is the key that ties a file to its UID in `dovecot-uidlist`.

This module is on the delivery agent's start-up path: it imports nothing costly.
"""

from __future__ import annotations

import os
import time

INFO_SEP = ":"
INFO_PREFIX = ":2,"

# IMAP system flag <-> Maildir flag letter. `P` (passed) has no IMAP flag: it is kept as it is.
FLAG_TO_CHAR = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
CHAR_TO_FLAG = {c: f for f, c in FLAG_TO_CHAR.items()}
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_counter = 0
_hostname: str | None = None


def hostname() -> str:
    """The host part of a unique name, with the characters maildir(5) says to escape escaped.

    `,` is escaped too because it separates the `S=`/`W=` fields Dovecot reads from the base.
    """
    global _hostname
    if _hostname is None:
        # os.uname() rather than socket.gethostname(): `socket` pulls in `enum` at start-up.
        host = os.uname().nodename or "localhost"
        _hostname = (
            host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054").replace(" ", "_")
        )
    return _hostname


def unique_base(size: int | None = None, vsize: int | None = None) -> str:
    """A new unique base name, `<secs>.M<usecs>P<pid>Q<n>.<host>[,S=..][,W=..]`.

    The delivery code links the file with O_EXCL semantics (link() never overwrites), so even a
    clash with a name made by another host or a restarted process is caught, not lost.
    """
    global _counter
    _counter += 1
    now = time.time_ns() // 1000
    secs, usecs = divmod(now, 1_000_000)
    base = f"{secs}.M{usecs}P{os.getpid()}Q{_counter}.{hostname()}"
    if size is not None:
        base += f",S={size}"
    if vsize is not None:
        base += f",W={vsize}"
    return base


def base_of(name: str) -> str:
    return name.partition(INFO_SEP)[0]


def sizes_of(base: str) -> tuple[int | None, int | None]:
    """The `,S=` and `,W=` values of a base, or None where absent or malformed."""
    # The usual name ends `,S=<n>,W=<n>` (ours and Dovecot's): two rpartitions, no split.
    # FETCH RFC822.SIZE 1:* asks this of every message of a folder.
    head, sep, w = base.rpartition(",W=")
    if sep and _is_size(w):
        _, sep, s = head.rpartition(",S=")
        if sep and _is_size(s):
            return int(s), int(w)
    return _sizes_of_fields(base)


def _is_size(text: str) -> bool:
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses, and for
    # "١٢", which it reads as 12 (a name only another program could have written).
    return text.isascii() and text.isdigit() and len(text) < 19


def _sizes_of_fields(base: str) -> tuple[int | None, int | None]:
    size = vsize = None
    if "," not in base:
        return None, None
    for field in base.split(",")[1:]:
        if field.startswith("S="):
            size = _int_or_none(field[2:])
        elif field.startswith("W="):
            vsize = _int_or_none(field[2:])
    return size, vsize


def _int_or_none(text: str) -> int | None:
    return int(text) if _is_size(text) else None


def join_name(base: str, letters: str | None) -> str:
    """The file name for a base and its flag letters (None: a name without info, as in new/)."""
    if letters is None:
        return base
    return base + INFO_PREFIX + "".join(sorted(set(letters)))
