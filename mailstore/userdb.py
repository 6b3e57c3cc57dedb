"""The user database: who a login name or a recipient is, and where their mail lives.

This looks users up; it does not verify passwords (the `password` field is handed to whoever
does). Two sources, chosen by `[auth] passwd_file` (see `open_userdb`):

* `PasswdFile`: a passwd-file in Dovecot's format, one user a line,

      user:{SCHEME}hash:uid:gid:gecos:home:shell:extra fields

  where everything after the password may be empty or missing, blank lines and `#` comments are
  ignored, and the extra fields are space-separated `key=value` pairs. `userdb_mail=` (or
  `mail=`) overrides the mail location, with or without Dovecot's `maildir:` prefix, and
  `userdb_quota_rule=*:storage=1G` (or `quota_rule=`) sets the quota.

* `SystemUsers`: the accounts in /etc/passwd, mail in `~/Maildir` by default.

A bare name (`wendy`) is a user of every local domain; `user@domain` is a virtual user of that
domain only. Lookups ignore case in both the local part and the domain, like sendmail's aliases
and Dovecot's usual `auth_username_format = %Lu`; the `User` returned carries the name as written
in the file, so a user's mail directory does not depend on how they typed their login.

A mail location is a template: `%u` the user name as written in the passwd-file, `%n` its local
part, `%d` its domain, `%h` or a leading `~` the home directory, `%%` a percent sign, and `%L`
before a letter lowercases the value (`%Ln`). No name expanded into a path may escape the mail
root: a value with a `/`, or one that is empty, `.` or `..`, is refused with PermissionDenied.
"""

from __future__ import annotations

import grp
import os
import pwd

from mailstore.errors import MailError, PermissionDenied, TemporaryFailure
from mailstore.location import LOCATION_VARIABLES, check_location, strip_location_prefix

# This module is on the delivery agent's start-up path: no `typing`, `dataclasses`, `logging`,
# `re` or `collections` at run time (see mailstore/filenames.py), and not `mailstore.config`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping
    from types import MappingProxyType

    from mailstore.config import Config
else:
    MappingProxyType = type(type.__dict__)  # types.MappingProxyType, without importing `types`

__all__ = [
    "PasswdFile",
    "SystemUsers",
    "User",
    "expand_location",
    "open_userdb",
    "parse_quota_rule",
]

_WARNING = 30  # logging.WARNING
_ERROR = 40  # logging.ERROR


def _log(level: int, message: str, *args: object) -> None:
    """Log to "mailstore.userdb", importing `logging` only when there is something to log."""
    import logging

    logging.getLogger("mailstore.userdb").log(level, message, *args)


_NO_EXTRA: Mapping[str, str] = MappingProxyType({})


class User:
    """One user, with the mail location already expanded. Immutable and hashable.

    Equality compares every field; the hash leaves out `extra` (a mapping) and `repr` leaves out
    the password.
    """

    __slots__ = (
        "domain",
        "extra",
        "gid",
        "home",
        "local",
        "mail_root",
        "name",
        "password",
        "quota_bytes",
        "uid",
    )
    __match_args__ = (
        "name",
        "local",
        "domain",
        "password",
        "uid",
        "gid",
        "home",
        "mail_root",
        "quota_bytes",
        "extra",
    )

    if TYPE_CHECKING:
        # Read-only to the type checker too, as the fields of a frozen dataclass are.

        @property
        def name(self) -> str: ...  # as written in the passwd-file: "alice@example.test", "wendy"
        @property
        def local(self) -> str: ...  # the part before '@' (the whole name for a bare user)
        @property
        def domain(self) -> str: ...  # "" for a bare (every local domain) or system user
        @property
        def password(self) -> str: ...  # "{SCHEME}hash" as stored; "" = none, nobody logs in
        @property
        def uid(self) -> int | None: ...
        @property
        def gid(self) -> int | None: ...
        @property
        def home(self) -> str: ...  # "" when the entry has none
        @property
        def mail_root(self) -> str: ...  # absolute, normalised Maildir root
        @property
        def quota_bytes(self) -> int | None: ...  # None = no limit
        @property
        def extra(self) -> Mapping[str, str]: ...  # the passwd-file's extra fields

    def __init__(
        self,
        name: str,
        local: str,
        domain: str,
        password: str,
        uid: int | None,
        gid: int | None,
        home: str,
        mail_root: str,
        quota_bytes: int | None,
        extra: Mapping[str, str] = _NO_EXTRA,
    ) -> None:
        init = object.__setattr__
        init(self, "name", name)
        init(self, "local", local)
        init(self, "domain", domain)
        init(self, "password", password)
        init(self, "uid", uid)
        init(self, "gid", gid)
        init(self, "home", home)
        init(self, "mail_root", mail_root)
        init(self, "quota_bytes", quota_bytes)
        init(self, "extra", extra)

    def _key(self) -> tuple[object, ...]:
        return (
            self.name,
            self.local,
            self.domain,
            self.password,
            self.uid,
            self.gid,
            self.home,
            self.mail_root,
            self.quota_bytes,
        )

    def __reduce__(self) -> tuple[type[User], tuple[object, ...]]:
        # For copy and pickle: the default would restore the slots by refused assignments.
        return self.__class__, (*self._key(), self.extra)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, User) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key() and self.extra == other.extra

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__qualname__}(name={self.name!r}, local={self.local!r},"
            f" domain={self.domain!r}, uid={self.uid!r}, gid={self.gid!r}, home={self.home!r},"
            f" mail_root={self.mail_root!r}, quota_bytes={self.quota_bytes!r},"
            f" extra={self.extra!r})"
        )

    if not TYPE_CHECKING:
        # Hidden from the type checker, which then reports assignments to unknown attributes.

        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(f"cannot assign to field {name!r}: a User is immutable")

        def __delattr__(self, name: str) -> None:
            raise AttributeError(f"cannot delete field {name!r}: a User is immutable")


def expand_location(template: str, *, user: str, local: str, domain: str, home: str) -> str:
    """The Maildir root a location template gives for one user.

    A relative result is taken relative to the home. Raises PermissionDenied when a name would
    escape the mail root or a needed value (home, domain) is missing, and TemporaryFailure when
    the template itself is invalid (a configuration mistake, not the user's).
    """
    template = strip_location_prefix(template)
    if (problem := check_location(template)) is not None:
        raise TemporaryFailure(f"invalid mail location template: {problem}")
    names = {"u": ("user name", user), "n": ("local part", local), "d": ("domain", domain)}
    out: list[str] = []
    i = 0
    if template == "~" or template.startswith("~/"):
        out.append(_home(home))
        i = 1
    while i < len(template):
        char = template[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        var = template[i + 1]
        if var == "%":
            out.append("%")
            i += 2
            continue
        lower = var == "L"
        if lower:
            i += 1
            var = template[i + 1]
        assert var in LOCATION_VARIABLES  # check_location has made sure
        if var == "h":
            value = _home(home)
        else:
            what, value = names[var]
            _check_component(what, value)
        out.append(value.lower() if lower else value)
        i += 2
    result = "".join(out)
    if not os.path.isabs(result):
        result = os.path.join(_home(home), result)
    result = os.path.normpath(result)
    # POSIX lets normpath keep a leading "//"; one slash is the same directory and less odd.
    return "/" + result.lstrip("/")


def _home(home: str) -> str:
    if not home:
        raise PermissionDenied("the mail location needs a home directory and the user has none")
    if not os.path.isabs(home):
        raise PermissionDenied("the user's home directory is not an absolute path")
    return home


def _check_component(what: str, value: str) -> None:
    if not value:
        raise PermissionDenied(f"the mail location uses the {what}, which is empty")
    if value in (".", "..") or "/" in value or "\0" in value:
        raise PermissionDenied(f"the {what} {value!r} cannot be part of a path")


_UNIT_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz%")
_UNITS = {"": None, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_quota_rule(rule: str) -> int | None:
    """The byte limit of a Dovecot quota rule like "*:storage=1G"; None = no limit.

    As in Dovecot, `storage=` without a unit counts KiB, `bytes=` counts bytes, 0 means no limit
    and `*:ignore` means no quota. Rules for one mailbox ("Trash:storage=+100M") do not set the
    user's quota and give None. Raises ValueError for a rule Dovecot would refuse.
    """
    mask, colon, limits = rule.partition(":")
    if not colon:
        raise ValueError("a quota rule is MAILBOX:LIMITS")
    if mask not in ("*", "?"):
        return None
    if limits == "ignore":
        return None
    quota: int | None = None
    for limit in limits.split(":"):
        key, _, value = limit.partition("=")
        if key not in ("storage", "bytes", "messages"):
            raise ValueError(f"unknown quota limit {key!r}")
        # NUMBER[UNIT]: ASCII digits, then at most one letter or '%'.
        digits, unit = (value[:-1], value[-1]) if value[-1:] in _UNIT_LETTERS else (value, "")
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"bad quota limit {limit!r}")
        unit = unit.upper()
        if unit not in _UNITS:
            raise ValueError(f"bad unit in quota limit {limit!r}")
        if key == "messages":
            continue  # only the size limit is ours to enforce
        multiplier = _UNITS[unit] or (1024 if key == "storage" else 1)
        quota = int(digits) * multiplier
    return quota or None


class _Broken:
    """An entry whose user exists but cannot be used: lookups say so instead of "no such user",
    so that mail for them is deferred, not bounced, while the administrator fixes the file."""

    __slots__ = ("error", "message")

    def __init__(self, error: Callable[[str], MailError], message: str) -> None:
        self.error = error
        self.message = message


_Entry = User | _Broken


def _split_address(address: str) -> tuple[str, str] | None:
    """(local, domain) of a login or address, or None when it cannot name any user."""
    local, at, domain = address.partition("@")
    if not local or (at and not domain) or "@" in domain:
        return None
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in address):
        return None
    return local, domain


class PasswdFile:
    """A Dovecot-style passwd-file, re-read whenever it changes on disk.

    Every `lookup` and `users` call first does a cheap stat and re-reads the file only if its
    inode, size or modification time changed, so edits take effect without a restart. Not
    thread-safe (the servers are single-threaded), but a reload swaps the table in one step.
    """

    def __init__(self, path: str, *, location: str = "~/Maildir") -> None:
        self.path = path
        self.location = location
        self._stamp: tuple[int, int, int, int] | None = None
        self._entries: dict[tuple[str, str], _Entry] = {}

    @classmethod
    def load(cls, path: str, *, location: str = "~/Maildir") -> PasswdFile:
        """Read the file now; raises TemporaryFailure if it cannot be read."""
        db = cls(path, location=location)
        db.refresh()
        return db

    def refresh(self) -> bool:
        """Re-read the file if it changed; True if it was re-read.

        Raises TemporaryFailure if it cannot be read: serving a stale table could let a removed
        user in, and an empty one would bounce mail for everyone.
        """
        try:
            st = os.stat(self.path)
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp == self._stamp:
                return False
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except OSError as e:
            _log(_ERROR, "passwd-file %s: cannot read: %s", self.path, e.strerror)
            # The path stays out of the message: clients may be shown it.
            raise TemporaryFailure("the user database is unavailable") from e
        self._entries = self._parse(data)
        self._stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        return True

    def lookup(self, address: str, local_domains: Collection[str] = ()) -> User | None:
        """The user a login name or recipient address names, or None if there is none.

        `alice@example.test` finds the entry `alice@example.test`, or else a bare `alice` if
        example.test is one of `local_domains`; a bare `alice` finds only a bare entry. Raises
        MailError if the entry exists but is unusable (see the log for the line).
        """
        self.refresh()
        parts = _split_address(address)
        if parts is None:
            return None
        local, domain = parts[0].lower(), parts[1].lower()
        entry = self._entries.get((local, domain))
        if entry is None and domain and domain in {d.lower() for d in local_domains}:
            entry = self._entries.get((local, ""))
        if isinstance(entry, _Broken):
            raise entry.error(entry.message)
        return entry

    def users(self) -> Iterator[User]:
        """Every usable user, in file order."""
        self.refresh()
        for entry in list(self._entries.values()):
            if isinstance(entry, User):
                yield entry

    def _parse(self, data: bytes) -> dict[tuple[str, str], _Entry]:
        entries: dict[tuple[str, str], _Entry] = {}
        first_line: dict[tuple[str, str], int] = {}
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                self._warn(number, "not valid UTF-8; line ignored")
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            # Extra fields may contain ':' themselves (userdb_mail=maildir:~/Maildir).
            fields = line.split(":", 7)
            name = fields[0]
            parts = _split_address(name)
            if parts is None:
                # Never echo the line: a misplaced colon could put a password anywhere in it.
                self._warn(number, "no valid user name; line ignored")
                continue
            key = (parts[0].lower(), parts[1].lower())
            if key in entries:
                self._warn(number, f"user {name!r} already defined on line {first_line[key]}")
                continue
            first_line[key] = number
            fields += [""] * (8 - len(fields))
            try:
                entries[key] = self._user(name, parts, fields)
            except (ValueError, MailError) as e:
                self._warn(number, f"user {name!r}: {e}; lookups will fail")
                error: Callable[[str], MailError] = (
                    type(e) if isinstance(e, MailError) else TemporaryFailure
                )
                message = e.message if isinstance(e, MailError) else "user entry is unusable"
                entries[key] = _Broken(error, message)
        return entries

    def _warn(self, number: int, message: str) -> None:
        _log(_WARNING, "passwd-file %s line %d: %s", self.path, number, message)

    def _user(self, name: str, parts: tuple[str, str], fields: list[str]) -> User:
        _, password, uid_text, gid_text, _gecos, home, _shell, extra_text = fields
        uid = _parse_id(uid_text, "uid", lambda n: pwd.getpwnam(n).pw_uid)
        gid = _parse_id(gid_text, "gid", lambda n: grp.getgrnam(n).gr_gid)
        if home and not os.path.isabs(home):
            raise ValueError("home directory is not an absolute path")
        extra: dict[str, str] = {}
        for item in extra_text.split():
            k, _, v = item.partition("=")
            extra[k] = v
        location = extra.get("userdb_mail", extra.get("mail", self.location))
        rule = extra.get("userdb_quota_rule", extra.get("quota_rule"))
        quota = parse_quota_rule(rule) if rule is not None else None
        local, domain = parts
        return User(
            name=name,
            local=local,
            domain=domain,
            password=password,
            uid=uid,
            gid=gid,
            home=home,
            mail_root=expand_location(location, user=name, local=local, domain=domain, home=home),
            quota_bytes=quota,
            extra=MappingProxyType(extra),
        )


def _parse_id(text: str, what: str, by_name: Callable[[str], int]) -> int | None:
    if not text:
        return None
    if text.isascii() and text.isdigit():
        number = int(text)
    else:
        try:
            number = by_name(text)
        except KeyError:
            raise ValueError(f"unknown {what} {text!r}") from None
    if number == 0:
        # As Dovecot refuses it: a virtual user must never make delivery run as root.
        raise ValueError(f"{what} 0 (root) is not allowed")
    return number


class SystemUsers:
    """The accounts of /etc/passwd (through `pwd`), for `[auth] passwd_file = ""`.

    Every account is a bare user (a user of every local domain). The password is left ""
    because the system's hashes live in /etc/shadow, which is for the password checker.
    """

    def __init__(self, location: str = "~/Maildir") -> None:
        self.location = location

    def refresh(self) -> bool:
        """Nothing to re-read: `pwd` asks the system each time."""
        return False

    def lookup(self, address: str, local_domains: Collection[str] = ()) -> User | None:
        parts = _split_address(address)
        if parts is None:
            return None
        local, domain = parts
        if domain and domain.lower() not in {d.lower() for d in local_domains}:
            return None
        # System names are lowercase by convention; the name as typed covers the exceptions.
        for candidate in dict.fromkeys((local.lower(), local)):
            try:
                entry = pwd.getpwnam(candidate)
            except KeyError:
                continue
            return self._user(entry)
        return None

    def users(self) -> Iterator[User]:
        """Every account whose mail location can be expanded."""
        for entry in pwd.getpwall():
            try:
                yield self._user(entry)
            except MailError:
                continue

    def _user(self, entry: pwd.struct_passwd) -> User:
        return User(
            name=entry.pw_name,
            local=entry.pw_name,
            domain="",
            password="",
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            home=entry.pw_dir,
            mail_root=expand_location(
                self.location,
                user=entry.pw_name,
                local=entry.pw_name,
                domain="",
                home=entry.pw_dir,
            ),
            quota_bytes=None,
        )


def open_userdb(config: Config) -> PasswdFile | SystemUsers:
    """The user database the configuration names; raises TemporaryFailure if unreadable.

    Only `config.auth.passwd_file` and `config.mail.location` are read, so the configuration may
    also be the cached one of `mailstore.configcache.load_cached`.
    """
    if config.auth.passwd_file:
        return PasswdFile.load(config.auth.passwd_file, location=config.mail.location)
    return SystemUsers(location=config.mail.location)
