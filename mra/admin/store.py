"""The commands that work on a user's mail directly, beside a running server (doveadm's
`mailbox`, `expunge`, `search`, `fetch`, `quota`, `force-resync`), and `user lookup`,
`auth test`.

They do not reimplement IMAP: each runs the server's own IMAP session (mra/imap/session.py),
logged in as the user without a password, fed the IMAP commands the request means and run
to completion in this process (`run_blocking`). So `mra search alice INBOX 'FROM bob SINCE
1-Jan-2026'` takes exactly the SEARCH syntax (RFC 9051 6.4.4) a client may send, and the
store is changed through the same code, locks included (the uidlist lock, the quota file),
as a client's commands, which is what makes it safe beside a running server.

Run as root, the command first becomes the user's uid and gid (as mda does), so that what it
writes is theirs; run as anyone else, it works with its own rights.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from mra.admin.protocol import AdminError

if TYPE_CHECKING:
    from mailstore.config import Config
    from mailstore.userdb import User
    from mra.imap.session import ImapSession

_TAGGED = re.compile(rb"^(A\d+) (OK|NO|BAD) ?(.*)$")


def lookup(config: Config, name: str) -> User:
    from mra.auth.glue import make_authenticator

    auth = make_authenticator(config)
    user = auth.authenticator.lookup_for_sasl(name)
    if user is None:
        raise AdminError(f"no such user: {name}")
    return user


def become(user: User) -> None:
    """As root: the user's ids for good (this process does nothing else afterwards)."""
    if os.geteuid() != 0 or user.uid is None:
        return
    if user.uid == 0:
        raise AdminError(f"{user.name}: uid 0 is not a mail user")
    os.setgroups([])
    os.setgid(user.gid if user.gid is not None else user.uid)
    os.setuid(user.uid)


class Imap:
    """The user's IMAP session, in this process."""

    def __init__(self, config: Config, user: User) -> None:
        from mra.auth.glue import make_authenticator
        from mra.context import Connection, Services
        from mra.imap.session import ImapSession
        from mra.session import run_blocking

        conn = Connection("admin", "local", tls=True, unix=True)
        self.session: ImapSession = ImapSession(conn, Services(config, make_authenticator(config)))
        run_blocking(self.session.greeting())
        self.session.logged_in(user, None)
        self.number = 0

    def command(self, text: str) -> list[bytes]:
        """Run one command; its untagged answers (literals inline). AdminError on NO/BAD."""
        from mra.session import Send, run_blocking

        self.number += 1
        tag = f"A{self.number}"
        outputs = run_blocking(self.session.data_received(f"{tag} {text}\r\n".encode()))
        data = b"".join(o.data for o in outputs if isinstance(o, Send))
        lines = data.split(b"\r\n")
        for i, line in enumerate(lines):
            m = _TAGGED.match(line)
            if m and m.group(1) == tag.encode():
                if m.group(2) != b"OK":
                    text = m.group(3).decode("utf-8", "replace")
                    raise AdminError(re.sub(r"^\[[^]]*\] ", "", text))
                return _untagged(b"\r\n".join(lines[:i]))
        raise AdminError(f"no answer to {text.split(' ', 1)[0]}")


def _untagged(data: bytes) -> list[bytes]:
    """The untagged responses of an answer, one item each (a literal kept with its line)."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        end = data.find(b"\r\n", i)
        end = len(data) if end < 0 else end
        line = data[i:end]
        m = re.search(rb"\{(\d+)\+?\}$", line)
        while m:  # a literal: its octets, then the rest of the response
            start = end + 2
            stop = start + int(m.group(1))
            end = data.find(b"\r\n", stop)
            end = len(data) if end < 0 else end
            line = data[i:end]
            m = re.search(rb"\{(\d+)\+?\}$", data[stop:end])
        if line:
            out.append(line)
        i = end + 2
    return out


def quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (UTF-8: the session has UTF8=ACCEPT on)."""
    if any(c in name for c in "\r\n\0"):
        raise AdminError("a mailbox name cannot hold a line break")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uids(lines: list[bytes]) -> list[int]:
    uids: list[int] = []
    for line in lines:
        if line.startswith(b"* SEARCH"):
            uids += [int(n) for n in line.split()[2:] if n.isdigit()]
    return uids


def _ranges(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


def run(config: Config, command: str, user_name: str, args: list[str]) -> list[str]:
    """Carry out one store command for a user: the lines to print."""
    user = lookup(config, user_name)
    if command == "user-lookup":
        return [
            f"{key}={value}"
            for key, value in (
                ("user", user.name),
                ("uid", user.uid),
                ("gid", user.gid),
                ("home", user.home),
                ("mail", user.mail_root),
                ("quota_bytes", user.quota_bytes),
            )
            if value not in (None, "")
        ]
    become(user)
    imap = Imap(config, user)
    imap.command("ENABLE UTF8=ACCEPT")
    if command == "mailbox":
        return _mailbox(imap, args)
    if command in ("search", "expunge", "fetch"):
        if len(args) < 2:
            raise AdminError(f"{command} needs MAILBOX and a SEARCH query")
        box, query = args[0], args[1]
        imap.command(("SELECT " if command == "expunge" else "EXAMINE ") + quoted(box))
        uids = _uids(imap.command(f"UID SEARCH {query}"))
        if command == "search":
            return [" ".join(str(u) for u in uids)] if uids else []
        if command == "fetch":
            items = args[2] if len(args) > 2 else "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"
            if not uids:
                return []
            return [
                line.decode("utf-8", "replace")
                for line in imap.command(f"UID FETCH {_ranges(uids)} {items}")
            ]
        if uids:
            imap.command(f"UID STORE {_ranges(uids)} +FLAGS.SILENT (\\Deleted)")
            imap.command(f"UID EXPUNGE {_ranges(uids)}")
        return [f"expunged={len(uids)}"]
    if command == "quota":
        return _quota(imap, user, args)
    if command == "force-resync":
        return _resync(imap, args)
    raise AdminError(f"no such command: {command}")


def _mailbox(imap: Imap, args: list[str]) -> list[str]:
    if not args:
        raise AdminError("mailbox needs list, status, create, delete or rename")
    action, names = args[0], args[1:]
    if action == "list":
        out = []
        for line in imap.command('LIST "" "*"'):
            m = re.match(rb'\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
            if m:
                out.append(_unquote(m.group(2)))
        return out
    if action == "status":
        wanted = names or _mailbox(imap, ["list"])
        out = []
        for name in wanted:
            [line] = [
                x
                for x in imap.command(
                    f"STATUS {quoted(name)} (MESSAGES UNSEEN RECENT UIDNEXT UIDVALIDITY SIZE)"
                )
                if x.startswith(b"* STATUS")
            ]
            items = re.search(rb"\(([^()]*)\)$", line)
            pairs = items.group(1).split() if items else []
            fields = " ".join(
                f"{k.decode().lower()}={v.decode()}"
                for k, v in zip(pairs[::2], pairs[1::2], strict=True)
            )
            out.append(f"mailbox={_quote_field(name)} {fields}")
        return out
    if action == "create" and names:
        for name in names:
            imap.command(f"CREATE {quoted(name)}")
        return []
    if action == "delete" and names:
        for name in names:
            imap.command(f"DELETE {quoted(name)}")
        return []
    if action == "rename" and len(names) == 2:
        imap.command(f"RENAME {quoted(names[0])} {quoted(names[1])}")
        return []
    raise AdminError(f"mailbox {action}: wrong arguments")


def _quota(imap: Imap, user: User, args: list[str]) -> list[str]:
    action = args[0] if args else "get"
    store = imap.session.store
    assert store is not None
    quota = store.quota
    if action == "recalc":
        if quota is None:
            return ["quota=none"]
        used, messages = quota.recalculate()
        return [f"bytes={used} messages={messages}"]
    if action != "get":
        raise AdminError("quota takes get or recalc")
    used, messages = quota.usage() if quota is not None else (0, 0)
    limit = user.quota_bytes or "-"
    return [f"bytes={used} messages={messages} limit_bytes={limit}"]


def _resync(imap: Imap, args: list[str]) -> list[str]:
    """List each folder in full and bring its dovecot-uidlist up to date: what a new
    process does (no listing is cached across processes), for every folder at once."""
    store = imap.session.store
    assert store is not None
    names = args or store.list_folders()
    out = []
    for name in names:
        box = store.mailbox(name)
        box.sync()
        out.append(f"mailbox={_quote_field(name)} messages={len(box.uids())}")
    return out


def _unquote(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    if text.startswith('"') and text.endswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _quote_field(value: str) -> str:
    from mailstore.log import quote

    return quote(value)
