"""What password checks cost: a bound on how many run at once, and a stand-in for unknown users.

Verifying a password is slow and big on purpose: an ARGON2ID check as `doveadm pw` makes it
takes 64 MiB for about a third of a second. Two consequences, one rule each (SECURITY.md,
headings 2 and 6):

* `BoundedVerify` lets at most `[auth] max_concurrent_hashes` checks run at once, across
  IMAP and POP3, LOGIN and SASL; the others wait their turn. The memory a flood of logins can
  take is then that number times the cost of one check, a setting, not the attacker's choice.
* An unknown user must cost what a known one costs, or the time of a failed login tells who
  exists. The stand-in an unknown user is checked against is the stored hash of a typical user
  of the database: one whose scheme and cost parameters (`cost_class`) are the most common
  there, so the check runs the same code for the same time. (A fixed ARGON2ID stand-in made
  every unknown user 0.3 s slower than the SHA512-CRYPT users migrated from Dovecot.) Its
  answer is never used: an unknown user fails whatever it says. `StandIn` recomputes it when
  the database changes.

Nothing here does I/O of its own except a stat() of the passwd-file, in the caller's thread.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from mailstore.errors import MailError
from mra.auth import passwords
from mra.auth.sasl import VerifyFunction

__all__ = ["BoundedVerify", "StandIn", "cost_class", "typical_hash"]


class BoundedVerify:
    """`verify` (`passwords.verify` or alike) with at most `limit` calls running at once.

    Thread-safe: callers are the thread pool's threads; those over the limit wait, in no
    particular order, for a running check to end.
    """

    def __init__(self, verify: VerifyFunction, limit: int) -> None:
        if limit < 1:
            raise ValueError("at least one password check must be allowed to run")
        self._verify = verify
        self._slots = threading.BoundedSemaphore(limit)
        self.limit = limit

    def __call__(self, stored: str, password: bytes, /, *, user: str | None = None) -> bool:
        with self._slots:
            return self._verify(stored, password, user=user)


def cost_class(stored: str, default_scheme: str = "CRYPT") -> str:
    """The scheme and cost parameters of a stored password, without its salt and digest.

    Two hashes of one class cost the same to check: `{SHA512-CRYPT}$6$rounds=10000$`,
    `{BLF-CRYPT}$2y$10`, `{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1`, `{SCRAM-SHA-256}4096`,
    plain `SSHA512`. For the `$id$...$salt$digest` forms, the parameters are the fields between
    the id and the digest that hold a `=` or only digits (SHA-crypt `rounds=`, the bcrypt cost,
    the argon2 `v=`/`m=,t=,p=`, Dovecot's PBKDF2 rounds), or, for yescrypt and scrypt (`$y$`,
    `$gy$`, `$7$`), the field after the id. "" for no password.
    """
    if not stored:
        return ""
    scheme, text = passwords.split_scheme(stored, default_scheme)
    name = scheme.upper()
    if text.startswith("$"):
        fields = text.split("$")
        ident = fields[1] if len(fields) > 1 else ""
        if ident in ("y", "gy", "7"):
            params = fields[2:3]
        else:
            params = [f for f in fields[2:-1] if "=" in f or f.isdigit()]
        return "$".join([name, ident, *params])
    if name.startswith("SCRAM-"):
        return f"{name}${text.split(',', 1)[0]}"
    return name


def typical_hash(stored_passwords: Iterable[str]) -> str | None:
    """A stored password of the most common cost class (the first seen of it), or None if
    there is none."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for stored in stored_passwords:
        key = cost_class(stored)
        if key:
            counts[key] += 1
            first.setdefault(key, stored)
    if not counts:
        return None
    return first[counts.most_common(1)[0][0]]


class StandIn:
    """The stand-in hash for a user database, recomputed when the database changes.

    `stored_passwords()` lists the database's stored passwords; `stamp()` is anything that
    changes when they may have (the passwd-file's stat, a generation counter). With no stored
    password at all (system users without /etc/shadow), the stand-in is `fallback`.
    Thread-safe enough: two threads may both recompute it, and each gets a right answer.
    """

    def __init__(
        self,
        stored_passwords: Callable[[], Iterable[str]],
        stamp: Callable[[], object],
        fallback: str = passwords.DUMMY_HASH,
    ) -> None:
        self._stored_passwords = stored_passwords
        self._stamp = stamp
        self._fallback = fallback
        self._cached: tuple[object, str] | None = None

    def __call__(self) -> str:
        stamp = self._stamp()
        cached = self._cached
        if cached is not None and cached[0] == stamp and stamp is not None:
            return cached[1]
        try:
            stand_in = typical_hash(self._stored_passwords()) or self._fallback
        except MailError:  # the database cannot be read now: the login reports that
            return self._fallback
        self._cached = (stamp, stand_in)
        return stand_in


def file_stamp(path: str) -> Callable[[], object]:
    """A `StandIn` stamp for a file: its identity, size and modification time (None if it
    cannot be read, which makes the next call look again)."""

    def stamp() -> object:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    return stamp
