"""Mailbox commands of the authenticated state: NAMESPACE (RFC 2342), CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB and STATUS (RFC 3501 6.3).

Folders are Maildir++ (`.A.B` for A/B, the separator is `.`), which needs no directory for a
parent: `A.B` may exist without `A`. LIST shows such a parent as `\\Noselect \\HasChildren`, as
Dovecot does. LIST and LSUB run in the thread pool (10,000 folders must not hold the reactor)
and cost O(folders x name length): each pattern is compiled once (patterns.py) and the
children of every folder are known from one pass over the names.
"""

from __future__ import annotations

from mailstore.names import INBOX, SEPARATOR
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_list_mailbox, as_mailbox
from mra.imap.commands.spec import Request
from mra.imap.patterns import Pattern
from mra.imap.values import Atom, ParenList
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mra.imap.session import ImapSession

STATUS_ITEMS = frozenset({"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"})


def namespace(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req, untagged=b'* NAMESPACE (("" ".")) NIL NIL\r\n')


def _one_name(req: Request) -> str:
    if len(req.args) != 1:
        raise ArgumentError(f"{req.name} needs a mailbox name")
    return as_mailbox(req.args[0])


def create(s: ImapSession, req: Request) -> list[Output]:
    name = _one_name(req).rstrip(SEPARATOR)  # RFC 3501 6.3.3: a trailing separator
    s.mailstore().create_folder(name)
    return s.ok(req)


def delete(s: ImapSession, req: Request) -> list[Output]:
    name = _one_name(req)
    if s.view is not None and s.view.name == name:
        s.unselect()
    s.mailstore().delete_folder(name)
    return s.ok(req)


def rename(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError("RENAME needs two mailbox names")
    s.mailstore().rename_folder(as_mailbox(req.args[0]), as_mailbox(req.args[1]))
    return s.ok(req)


def subscribe(s: ImapSession, req: Request) -> list[Output]:
    s.mailstore().subscribe(_one_name(req))
    return s.ok(req)


def unsubscribe(s: ImapSession, req: Request) -> list[Output]:
    s.mailstore().unsubscribe(_one_name(req))
    return s.ok(req)


def parents(names: Iterable[str]) -> set[str]:
    """Every proper ancestor of the names: `A` and `A.B` for `A.B.C`."""
    out: set[str] = set()
    for name in names:
        cut = name.rfind(SEPARATOR)
        while cut > 0:
            parent = name[:cut]
            if parent in out:
                break
            out.add(parent)
            cut = name.rfind(SEPARATOR, 0, cut)
    return out


def list_(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError(f"{req.name} needs a reference and a pattern")
    lsub = req.name == "LSUB"
    reference = as_list_mailbox(req.args[0])
    pattern = as_list_mailbox(req.args[1])
    if not pattern:
        if lsub:
            return s.ok(req)
        # RFC 3501 6.3.8: the empty pattern asks for the separator and the root.
        return s.ok(req, untagged=r.list_response(["\\Noselect"], SEPARATOR, "", req.name))
    matcher = Pattern(reference + pattern)
    store = s.mailstore()
    if lsub:
        found = _lsub(matcher, store.subscriptions())
    else:
        existing = set(store.list_folders())
        with_children = parents(existing)
        found = {}
        for name in existing | with_children:
            if matcher.match(name):
                if name not in existing:
                    found[name] = ["\\Noselect", "\\HasChildren"]
                elif name in with_children:
                    found[name] = ["\\HasChildren"]
                else:
                    found[name] = ["\\HasNoChildren"]
    out = [
        r.list_response(found[name], SEPARATOR, name, req.name)
        for name in sorted(found, key=lambda n: (n != INBOX, n))
    ]
    return s.ok(req, untagged=b"".join(out))


def _lsub(matcher: Pattern, subscribed: list[str]) -> dict[str, list[str]]:
    """LSUB's names and attributes, as Dovecot gives them: a subscribed name with none (it
    need not exist), and the parent of a subscribed name that `%` stops at, which is not
    subscribed itself, with `\\Noselect` (RFC 3501 6.3.9: LSUB "" "%" with foo/bar subscribed
    answers foo)."""
    found: dict[str, list[str]] = {name: [] for name in subscribed if matcher.match(name)}
    for name in subscribed:
        if name in found:
            continue
        for parent in parents([name]):
            if parent not in found and matcher.match(parent):
                found[parent] = ["\\Noselect"]
    return found


def status(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if len(args) != 2 or not isinstance(args[1], ParenList) or not args[1].items:
        raise ArgumentError("STATUS needs a mailbox name and a list of items")
    name = as_mailbox(args[0])
    items = []
    for v in args[1].items:
        if not isinstance(v, Atom) or v.value.upper() not in STATUS_ITEMS:
            raise ArgumentError("unknown STATUS item")
        items.append(v.value.upper())
    if s.view is not None and s.view.name == name:
        view = s.view
        box = view.box
        uids: list[int] = view.uids
        recent = len(view.recent)
    else:
        box = s.mailstore().mailbox(name)
        box.sync()
        uids = box.uids()
        recent = sum(1 for u in uids if box.get(u).recent)
    values = {}
    for item in items:
        if item == "MESSAGES":
            values[item] = len(uids)
        elif item == "RECENT":
            values[item] = recent
        elif item == "UIDNEXT":
            values[item] = box.next_uid
        elif item == "UIDVALIDITY":
            values[item] = box.uidvalidity
        elif item == "UNSEEN":
            values[item] = sum(1 for u in uids if u in box and not box.get(u).seen)
    return s.ok(req, untagged=r.status_response(name, values))
