"""Special-use folders (RFC 6154) and the folders every user gets, as Dovecot's
`namespace inbox { mailbox NAME { special_use = ...  auto = ... } }` has them.

Two sources say what a folder is for:

* the administrator's `[mailboxes]` (mailstore/config.py): for a folder name, its special-use
  attributes and `auto` = "no", "create" or "subscribe". As in Dovecot the attributes belong
  to the name: RENAME Sent Sent2 leaves `\\Sent` with the name `Sent`.
* the user's own, given by `CREATE name (USE (\\Sent))` (RFC 6154 3). Dovecot 2.3 cannot store
  those (its `/private/specialuse` attribute is read-only, computed from the configuration:
  lib-storage/mailbox-attribute-internal.c), so they are kept in a file of ours beside
  `subscriptions`, `mra-special-use`: a `V\\t1` header and a blank line, then one line per
  folder, `<attributes separated by spaces> TAB <name in modified UTF-7>`. These belong to
  the folder: RENAME takes them along, DELETE drops them. Dovecot ignores the file.

Auto folders follow what Dovecot shows a client (lib-storage/list/mailbox-list-iter.c): they
always exist. Dovecot lists a missing one as if it existed and creates it when it is opened;
we create the missing ones when the user logs in (`ensure_folders`), and again at once after a
DELETE or RENAME took one away, so LIST, SELECT and APPEND find them as Dovecot's clients do.
DELETE of an auto folder therefore empties it; an administrator who wants users to be able to
remove one sets `auto = "no"`. `auto = "subscribe"` also subscribes the folder when it is
created, and LSUB and LIST (SUBSCRIBED) show it subscribed whatever the `subscriptions` file
says, as Dovecot does.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from mailstore import log
from mailstore.errors import AlreadyExists, MailError, TemporaryFailure
from mailstore.lock import DotLock
from mailstore.names import INBOX, SEPARATOR, decode_mutf7, encode_mutf7, validate_name
from mailstore.uidlist import replace_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from mailstore.store import MailStore

__all__ = [
    "AUTO_VALUES",
    "CREATABLE_USES",
    "DEFAULT_MAILBOXES",
    "SPECIAL_USES",
    "SPECIAL_USE_FILE",
    "MailboxSetting",
    "auto_subscribed",
    "ensure_folders",
    "parse_special_use",
]

SPECIAL_USE_FILE = "mra-special-use"
_MAX_FILE = 1 << 20  # as `subscriptions`: more than any real tree needs

SPECIAL_USES: tuple[str, ...] = ("\\All", "\\Archive", "\\Drafts", "\\Flagged")
SPECIAL_USES += ("\\Important", "\\Junk", "\\Sent", "\\Trash")
"""The attributes a configuration may name: RFC 6154 2 and RFC 8457's `\\Important`, the set
Dovecot 2.3 accepts (mail-storage-settings.c, mailbox_special_use_exists)."""

CREATABLE_USES = frozenset({"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"})
"""What `CREATE ... (USE (...))` may give a folder: advice about what to put in it. `\\All`,
`\\Flagged` and `\\Important` promise a collection the server would have to build (a virtual
mailbox, RFC 6154 3); a plain folder named so would lie, so they are refused with USEATTR."""

AUTO_VALUES = ("no", "create", "subscribe")

_CANONICAL = {use.upper(): use for use in SPECIAL_USES}


class MailboxSetting(NamedTuple):
    """One `[mailboxes]` entry: a folder name, its special-use attributes, its `auto`."""

    name: str
    special_use: tuple[str, ...] = ()
    auto: str = "no"


DEFAULT_MAILBOXES = (
    MailboxSetting("Drafts", ("\\Drafts",), "subscribe"),
    MailboxSetting("Sent", ("\\Sent",), "subscribe"),
    MailboxSetting("Sent Messages", ("\\Sent",), "no"),
    MailboxSetting("Trash", ("\\Trash",), "subscribe"),
    MailboxSetting("Junk", ("\\Junk",), "subscribe"),
    MailboxSetting("Archive", ("\\Archive",), "subscribe"),
)
"""Debian's 15-mailboxes.conf (Drafts, Junk, Trash, Sent and "Sent Messages", the name iOS
uses) plus Archive, each but "Sent Messages" created and subscribed at a user's first login:
Outlook, Apple Mail and iOS otherwise create their own, and a user ends up with two of each."""


def parse_special_use(text: str) -> tuple[str, ...]:
    """`'\\Sent \\Archive'` -> ("\\Sent", "\\Archive"), in canonical case, each once.

    ValueError naming the first attribute that is not one of `SPECIAL_USES`.
    """
    out: list[str] = []
    for word in text.split():
        use = _CANONICAL.get(word.upper())
        if use is None:
            raise ValueError(f"unknown special use {word} (known: {' '.join(SPECIAL_USES)})")
        if use not in out:
            out.append(use)
    return tuple(out)


def auto_subscribed(settings: Iterable[MailboxSetting]) -> list[str]:
    """The names `auto = "subscribe"` keeps subscribed."""
    return [s.name for s in settings if s.auto == "subscribe"]


def configured_uses(settings: Iterable[MailboxSetting]) -> dict[str, tuple[str, ...]]:
    """Name -> the administrator's attributes, for the names that have some."""
    return {s.name: s.special_use for s in settings if s.special_use}


def special_uses(
    settings: Iterable[MailboxSetting], user: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """Every folder name with special-use attributes: the configuration's, then the user's."""
    out = configured_uses(settings)
    for name, uses in user.items():
        have = out.get(name, ())
        out[name] = have + tuple(u for u in uses if u not in have)
    return out


def ensure_folders(store: MailStore, settings: Iterable[MailboxSetting]) -> list[str]:
    """Create every auto folder that is missing (and subscribe it for "subscribe"); return the
    names created. A folder that cannot be made is logged and skipped: it must never cost the
    user the login that called this."""
    created = []
    for setting in settings:
        if setting.auto == "no" or setting.name == INBOX:
            continue
        try:
            if store.exists(setting.name):
                continue
            try:
                store.create_folder(setting.name)
            except AlreadyExists:
                continue  # another session made it first
            created.append(setting.name)
            if setting.auto == "subscribe":
                store.subscribe(setting.name)
        except MailError as exc:
            log.warn("autocreate-failed", folder=setting.name, error=exc.message)
    return created


# -- the user's own special uses (CREATE ... USE) ------------------------------------------


def _path(root: str) -> str:
    return os.path.join(root, SPECIAL_USE_FILE)


def read_user_uses(root: str) -> dict[str, tuple[str, ...]]:
    """The `mra-special-use` file of the Maildir root: name -> attributes. Lines that do not
    parse are skipped (and logged): one bad line costs only itself."""
    try:
        fd = os.open(_path(root), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise TemporaryFailure(f"cannot read {SPECIAL_USE_FILE}: {exc.strerror}") from exc
    try:
        data = os.read(fd, _MAX_FILE)
    except OSError as exc:
        raise TemporaryFailure(f"cannot read {SPECIAL_USE_FILE}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    lines = data.decode("utf-8", "replace").split("\n")
    out: dict[str, tuple[str, ...]] = {}
    for line in lines[2:] if lines[:1] == ["V\t1"] else lines:
        if not line:
            continue
        uses_text, tab, encoded = line.partition("\t")
        try:
            if not tab:
                raise ValueError("no TAB")
            name = validate_name(decode_mutf7(encoded), create=False)
            uses = parse_special_use(uses_text)
        except (ValueError, MailError):
            log.warn("special-use-line-ignored", line=line[:80])
            continue
        if uses:
            out[name] = uses
    return out


def _write(root: str, uses: Mapping[str, tuple[str, ...]]) -> None:
    body = "".join(
        " ".join(attrs) + "\t" + encode_mutf7(name) + "\n" for name, attrs in sorted(uses.items())
    )
    replace_file(_path(root), ("V\t1\n\n" + body).encode("ascii"), os.path.join(root, "tmp"))


def set_user_uses(root: str, name: str, uses: tuple[str, ...]) -> None:
    """Give folder `name` these attributes (none: forget it), under the file's dot-lock."""
    with DotLock(_path(root)):
        current = read_user_uses(root)
        if uses:
            current[name] = uses
        elif current.pop(name, None) is None:
            return
        _write(root, current)


def folder_renamed(root: str, old: str, new: str) -> None:
    """RENAME moved `old` (and its children) to `new`: their attributes go along.

    Called once the folders have moved: a failure here is logged, not raised, because the
    RENAME itself succeeded (the attributes then stay with a name that no longer exists)."""
    if not os.path.lexists(_path(root)):
        return
    prefix = old + SEPARATOR
    try:
        with DotLock(_path(root)):
            current = read_user_uses(root)
            moved = {
                (new + name[len(old) :] if name == old or name.startswith(prefix) else name): uses
                for name, uses in current.items()
            }
            if moved != current:
                _write(root, moved)
    except MailError as exc:
        log.warn("special-use-not-moved", old=old, new=new, error=exc.message)


def folder_deleted(root: str, name: str) -> None:
    """DELETE removed `name`: it has no special use any more (its children keep theirs).
    As `folder_renamed`, a failure is logged: the folder is gone either way."""
    if not os.path.lexists(_path(root)):
        return
    try:
        set_user_uses(root, name, ())
    except MailError as exc:
        log.warn("special-use-not-dropped", folder=name, error=exc.message)
