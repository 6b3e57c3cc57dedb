"""Mailbox commands of the authenticated state: NAMESPACE (RFC 2342), CREATE (with RFC 6154's
USE), DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3); and what a login prepares.
LIST, LSUB and XLIST are in listing.py, STATUS in status.py, QUOTA in quota.py.

Folders are Maildir++ (mailstore/store.py). The folders every user gets (`[mailboxes]` with
`auto`, mailstore/specialuse.py) are made when the user logs in, and again at once when a
DELETE or RENAME took one away: Dovecot lists such a folder as existing whatever is on disk,
so its clients never see it missing (DELETE of one empties it). These commands change the tree
and may remove a whole folder: they run in the thread pool.
"""

from __future__ import annotations

from mailstore import specialuse
from mailstore.names import SEPARATOR
from mra import log
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom, as_list, as_mailbox, net_unicode_problem
from mra.imap.commands import quota
from mra.imap.commands.enable import utf8
from mra.imap.commands.spec import Request
from mra.imap.values import ParenList, Value
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession


def prepare(s: ImapSession) -> None:
    """At login, in the thread pool: the auto folders, and the user's quota limit (which the
    capabilities name). Never fails the login: what cannot be done is logged."""
    specialuse.ensure_folders(s.mailstore(), s.services.config.mailboxes.folders)
    try:
        s.quota_limit = quota.read_limit(s)
    except Exception as exc:  # a broken maildirsize must not keep the user out
        log.error("quota-unreadable", user=s.user.name if s.user else "", error=repr(exc))


def namespace(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req, untagged=b'* NAMESPACE (("" ".")) NIL NIL\r\n')


def _one_name(s: ImapSession, req: Request) -> str:
    if len(req.args) != 1:
        raise ArgumentError(f"{req.name} needs a mailbox name")
    return as_mailbox(req.args[0], utf8(s))


def _new_name(s: ImapSession, value: Value) -> str:
    """A name CREATE or RENAME is to make: a UTF-8 session's must be Net-Unicode."""
    name = as_mailbox(value, utf8(s))
    problem = net_unicode_problem(name) if utf8(s) else None
    if problem is not None:
        raise r.Refusal(r.NOT_NET_UNICODE, problem=problem)
    return name


def _uses(req: Request) -> tuple[str, ...]:
    """RFC 6154 3 / RFC 4466 create-params: `(USE (\\Drafts \\Sent))`; () without them. An
    attribute the store cannot give a folder is refused before anything is created."""
    if len(req.args) == 1:
        return ()
    params = req.args[1]
    if len(req.args) != 2 or not isinstance(params, ParenList):
        raise ArgumentError("CREATE takes a mailbox name and (parameters)")
    uses: list[str] = []
    items = params.items
    if len(items) % 2:
        raise ArgumentError("CREATE parameters come in pairs: (USE (\\Sent))")
    for key, value in zip(items[::2], items[1::2], strict=True):
        if as_atom(key).upper() != "USE":
            raise ArgumentError(f"unknown CREATE parameter {as_atom(key)[:40]}")
        for attr in as_list(value):
            word = as_atom(attr)
            try:
                parsed = specialuse.parse_special_use(word)
            except ValueError:
                parsed = ()
            use = parsed[0] if parsed else word
            if use not in specialuse.CREATABLE_USES:
                raise r.Refusal(r.USE_NOT_SUPPORTED, use=word[:40])
            if use not in uses:
                uses.append(use)
    return tuple(uses)


def create(s: ImapSession, req: Request) -> list[Output]:
    if not req.args:
        raise ArgumentError("CREATE needs a mailbox name")
    name = _new_name(s, req.args[0]).rstrip(SEPARATOR)  # RFC 3501 6.3.3: a trailing separator
    uses = _uses(req)
    store = s.mailstore()
    store.create_folder(name)
    if uses:
        try:
            store.set_special_use(name, uses)
        except Exception:
            # RFC 6154 3: without its special use the mailbox MUST NOT be created.
            store.delete_folder(name)
            raise
    return s.ok(req)


def _restore_auto(s: ImapSession) -> None:
    specialuse.ensure_folders(s.mailstore(), s.services.config.mailboxes.folders)


def delete(s: ImapSession, req: Request) -> list[Output]:
    name = _one_name(s, req)
    if s.view is not None and s.view.name == name:
        s.unselect()
    s.mailstore().delete_folder(name)
    _restore_auto(s)
    return s.ok(req)


def rename(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError("RENAME needs two mailbox names")
    old = as_mailbox(req.args[0], utf8(s))
    s.mailstore().rename_folder(old, _new_name(s, req.args[1]))
    _restore_auto(s)
    return s.ok(req)


def subscribe(s: ImapSession, req: Request) -> list[Output]:
    s.mailstore().subscribe(_one_name(s, req))
    return s.ok(req)


def unsubscribe(s: ImapSession, req: Request) -> list[Output]:
    s.mailstore().unsubscribe(_one_name(s, req))
    return s.ok(req)
