"""LIST (RFC 3501 6.3.8, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154),
LSUB (6.3.9) and Gmail's XLIST.

    LIST [(selection options)] reference pattern|(patterns) [RETURN (return options)]

Folders are Maildir++ (`.A.B` for A.B), which needs no directory for a parent: `A.B` may exist
without `A`. Such a parent is listed when a pattern reaches it, as Dovecot does: `\\Noselect`
in a plain LIST, `\\NonExistent` in an extended one (RFC 5258 3: it "implies \\NoSelect").
What each form answers is Dovecot 2.3's (imap/cmd-list.c, lib-storage/list/mailbox-list-iter.c)
and compared with it side by side (tests/interop/test_imap_dovecot_mailboxes.py):

- A plain LIST returns `\\HasChildren`/`\\HasNoChildren` and the special-use attributes; an
  extended one (selection options, a list of patterns, or RETURN) only what it asks for:
  CHILDREN, SUBSCRIBED (implied by the SUBSCRIBED selection), SPECIAL-USE (implied by the
  SPECIAL-USE selection), STATUS.
- Selection: SUBSCRIBED lists subscribed names, existing or not (`\\NonExistent`); SPECIAL-USE
  the folders that have a special use; both, the names that are both. REMOTE changes nothing
  (there are no remote folders). RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE (else BAD) and
  adds, with `(CHILDINFO ("SUBSCRIBED"))`, each name the pattern matches that has a subscribed
  descendant (RFC 5258 3.5); with SPECIAL-USE alone it adds nothing, as in Dovecot, which
  supports it only for namespace prefixes and we have none.
- RETURN (STATUS (...)) sends a STATUS response after the LIST line of every selected folder
  that exists (RFC 5819 2), none for `\\Noselect`/`\\NonExistent` names, none for a parent
  listed only for CHILDINFO. A folder that vanished before its STATUS is listed `\\Noselect`.
- LSUB answers as before (RFC 3501 6.3.9 and Dovecot, see `_lsub`), plus the special-use
  attributes: Dovecot sends them to LSUB too, because Outlook 2013 reads them there.
- XLIST is LIST for clients of Gmail's time (older iOS and Apple Mail, Outlook with Gmail
  settings), which find the Sent, Drafts, Trash and Spam folders in its `* XLIST` lines, by
  Gmail's attribute names (`\\Spam` for `\\Junk`, `\\AllMail` for `\\All`, `\\Starred` for
  `\\Flagged`) and with `\\Inbox` on INBOX. Dovecot accepts the command but answers `* LIST`
  with RFC 6154's names, which those clients do not read.

The subscribed names are the `subscriptions` file and the `auto = "subscribe"` folders of
`[mailboxes]` (mailstore/specialuse.py); the special uses are the configuration's and those the
user gave with CREATE (USE). Everything here runs in the thread pool (the table's `thread=True`):
10,000 folders, or a STATUS of each, must not hold the reactor. The cost is O(folders x name
length) for the names (the patterns, however many, are compiled once into one automaton that
reads a name once, patterns.py; the children of every folder are known from one pass) plus one
STATUS per listed folder when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailstore import specialuse
from mailstore.errors import MailError, NotFound
from mailstore.names import INBOX, SEPARATOR
from mra import log
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom, as_list_mailbox
from mra.imap.commands import status as status_
from mra.imap.commands.enable import rev2, utf8
from mra.imap.commands.spec import Request
from mra.imap.patterns import PatternSet
from mra.imap.values import Atom, ParenList, Value
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mra.imap.session import ImapSession

SELECTION_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})

# Gmail's XLIST names for RFC 6154's attributes (those without one keep theirs: \Drafts,
# \Sent, \Trash, \Archive, \Important).
XLIST_NAMES = {"\\Junk": "\\Spam", "\\All": "\\AllMail", "\\Flagged": "\\Starred"}


@dataclass(slots=True)
class ListQuery:
    """What one LIST asks: the patterns (reference joined), selection and return options."""

    verb: str
    patterns: list[str]
    extended: bool = False
    select_subscribed: bool = False
    select_special_use: bool = False
    recursive: bool = False
    return_subscribed: bool = False
    return_children: bool = False
    return_special_use: bool = False
    status_items: list[str] = field(default_factory=list)
    root: bool = False
    """RFC 3501 6.3.8: a plain LIST with the empty pattern asks for the separator and root."""
    utf8: bool = False
    """The names are written in UTF-8 (enable.utf8), not modified UTF-7."""


def parse(req: Request, utf8: bool = False, rev2: bool = False) -> ListQuery:
    """The command's arguments as a ListQuery; ArgumentError (BAD) for anything else. `utf8`:
    the session's names are UTF-8 (enable.utf8), not modified UTF-7; `rev2`: IMAP4rev2's
    STATUS items (status.parse_items)."""
    args = list(req.args)
    verb = req.name
    if verb != "LIST":  # LSUB and XLIST take a reference and a pattern, nothing more
        if len(args) != 2:
            raise ArgumentError(f"{verb} needs a reference and a pattern")
        reference, pattern = as_list_mailbox(args[0], utf8), as_list_mailbox(args[1], utf8)
        if not pattern:  # XLIST: the root request, as LIST's; LSUB: nothing (as Dovecot)
            return ListQuery(verb, [], root=verb == "XLIST")
        query = ListQuery(verb, [reference + pattern])
        query.return_children = query.return_special_use = verb == "XLIST"
        return query
    query = ListQuery(verb, [])
    first = args[0] if args else None
    if isinstance(first, ParenList):
        query.extended = True
        _selection(query, first.items)
        args.pop(0)
    if len(args) < 2:
        raise ArgumentError("LIST needs a reference and a pattern")
    reference = as_list_mailbox(args[0], utf8)
    patterns = args[1]
    if isinstance(patterns, ParenList):
        query.extended = True
        # RFC 5258 3: an empty pattern in a list is not the root request; it matches nothing.
        # An empty list matches nothing either (Dovecot: OK, no lines).
        items = [as_list_mailbox(p, utf8) for p in patterns.items]
        query.patterns = [reference + p for p in items if p]
    else:
        pattern = as_list_mailbox(patterns, utf8)
        query.patterns = [reference + pattern]
        query.root = not pattern
    rest = args[2:]
    if rest:
        if len(rest) != 2 or not _is_atom(rest[0], "RETURN") or not isinstance(rest[1], ParenList):
            raise ArgumentError("LIST takes RETURN (options) after the patterns, nothing else")
        query.extended = True
        _returns(query, rest[1].items, rev2)
    if not query.extended:
        query.return_children = query.return_special_use = True  # Dovecot's plain LIST
    else:
        query.root = False  # RFC 5258 3: an extended LIST's "" matches nothing
    return query


def _is_atom(value: Value, word: str) -> bool:
    return isinstance(value, Atom) and value.value.upper() == word


def _selection(query: ListQuery, items: Iterable[Value]) -> None:
    for item in items:
        option = as_atom(item).upper()
        if option not in SELECTION_OPTIONS:
            raise ArgumentError(f"unknown selection option {option[:40]}")  # RFC 5258 3: BAD
        if option == "SUBSCRIBED":
            query.select_subscribed = query.return_subscribed = True
        elif option == "SPECIAL-USE":
            query.select_special_use = query.return_special_use = True
        elif option == "RECURSIVEMATCH":
            query.recursive = True
    if query.recursive and not (query.select_subscribed or query.select_special_use):
        # RFC 5258 3.1: "MUST NOT occur as the only selection option (or only with REMOTE)".
        raise ArgumentError("RECURSIVEMATCH must not be the only selection option")


def _returns(query: ListQuery, items: tuple[Value, ...], rev2: bool) -> None:
    i = 0
    while i < len(items):
        option = as_atom(items[i]).upper()
        if option == "SUBSCRIBED":
            query.return_subscribed = True
        elif option == "CHILDREN":
            query.return_children = True
        elif option == "SPECIAL-USE":
            query.return_special_use = True
        elif option == "STATUS" and i + 1 < len(items) and isinstance(items[i + 1], ParenList):
            query.status_items = status_.parse_items(items[i + 1], rev2)
            i += 1
        else:
            raise ArgumentError(f"unknown return option {option[:40]}")
        i += 1


# -- the command ------------------------------------------------------------------------------


def list_(s: ImapSession, req: Request) -> list[Output]:
    query = parse(req, utf8(s), rev2(s))
    query.utf8 = utf8(s)
    if query.root:
        return s.ok(req, untagged=r.list_response(["\\Noselect"], SEPARATOR, "", req.name))
    if query.verb == "LSUB":
        return s.ok(req, untagged=_lsub(s, query.patterns))
    return s.ok(req, untagged=b"".join(_list(s, query)))


def selected_line(s: ImapSession, name: str, supplied: bytes) -> bytes:
    """SELECT's and EXAMINE's LIST line for IMAP4rev2 (RFC 9051 6.3.2: "The list of mailbox
    attributes MUST be accurate"): what a plain LIST says of the name, its children and its
    special use, and the name as the client wrote it when that is not the name (RFC 9051 8:
    `select inbox` gives `("OLDNAME" ("inbox"))`). In the thread pool, with the SELECT."""
    prefix = name + SEPARATOR
    children = any(f.startswith(prefix) for f in s.mailstore().list_folders())
    attrs = ["\\HasChildren" if children else "\\HasNoChildren", *_special_uses(s).get(name, ())]
    written = supplied.decode("utf-8", "replace")  # as_mailbox took it as UTF-8 already
    oldname = written if written != name else None
    return r.list_response(attrs, SEPARATOR, name, utf8=True, oldname=oldname)


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (n != INBOX, n))


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


def _ancestors(name: str) -> Iterable[str]:
    cut = name.rfind(SEPARATOR)
    while cut > 0:
        yield name[:cut]
        cut = name.rfind(SEPARATOR, 0, cut)


def _subscribed(s: ImapSession) -> set[str]:
    settings = s.services.config.mailboxes.folders
    return set(s.mailstore().subscriptions()) | set(specialuse.auto_subscribed(settings))


def _special_uses(s: ImapSession) -> dict[str, tuple[str, ...]]:
    settings = s.services.config.mailboxes.folders
    return specialuse.special_uses(settings, s.mailstore().user_special_uses())


def _existing(s: ImapSession) -> set[str]:
    """The folders, with the auto folders made again if something (another program, Dovecot)
    removed them since the login: Dovecot lists them whatever is on disk."""
    store = s.mailstore()
    existing = set(store.list_folders())
    settings = s.services.config.mailboxes.folders
    if any(f.auto != "no" and f.name not in existing for f in settings):
        existing.update(specialuse.ensure_folders(store, settings))
    return existing


def _list(s: ImapSession, q: ListQuery) -> list[bytes]:
    match = PatternSet([p for p in q.patterns if p]).match
    existing = _existing(s)
    with_children = parents(existing)
    want_subscriptions = q.select_subscribed or q.return_subscribed
    subscribed = _subscribed(s) if want_subscriptions else set()
    uses = _special_uses(s) if q.return_special_use or q.select_special_use else {}

    childinfo: set[str] = set()
    if q.select_subscribed:
        selected = {n for n in subscribed if match(n)}
        if q.select_special_use:
            selected = {n for n in selected if n in uses}
        if q.recursive:
            # RFC 5258 3.5: CHILDINFO on each listed name with a descendant that meets the
            # selection criteria; a name that does not meet them itself is listed for it only
            # when such a descendant is not listed (the pattern does not match it): "servers
            # SHOULD suppress redundant CHILDINFO responses", which Dovecot does.
            for name in subscribed:
                if q.select_special_use and name not in uses:
                    continue
                for parent in _ancestors(name):
                    if match(parent) and (parent in selected or name not in selected):
                        childinfo.add(parent)
    elif q.select_special_use:
        selected = {n for n in existing if n in uses and match(n)}
    else:
        selected = {n for n in existing | with_children if match(n)}

    xlist = q.verb == "XLIST"
    out = []
    for name in _ordered(selected | childinfo):
        attrs = []
        if q.return_subscribed and name in subscribed:
            attrs.append("\\Subscribed")
        exists = name in existing
        if not exists:
            attrs.append("\\NonExistent" if q.extended else "\\Noselect")
        if q.return_children:
            # A name with CHILDINFO has children, if only subscribed ones (as Dovecot answers;
            # RFC 5258's example 10 has `\HasNoChildren` there, which it does not require).
            children = name in with_children or name in childinfo
            attrs.append("\\HasChildren" if children else "\\HasNoChildren")
        if q.return_special_use:
            for use in uses.get(name, ()):
                attrs.append(XLIST_NAMES.get(use, use) if xlist else use)
        if xlist and name == INBOX:
            attrs.append("\\Inbox")
        status = None
        if q.status_items and exists and name in selected:
            status = _status(s, name, q.status_items)
            if status is None:
                attrs.append("\\Noselect")  # RFC 5819 2: gone meanwhile
        criteria = ["SUBSCRIBED"] if name in childinfo else []
        out.append(r.list_response(attrs, SEPARATOR, name, q.verb, childinfo=criteria, utf8=q.utf8))
        if status:
            out.append(status)
    return out


def _status(s: ImapSession, name: str, items: list[str]) -> bytes | None:
    """The STATUS line of one listed folder: None if it no longer exists, b"" when it could not
    be read (RFC 5819 2: the server "MAY drop the corresponding STATUS reply")."""
    try:
        return r.status_response(name, status_.values(s, name, items), utf8=utf8(s))
    except NotFound:
        return None
    except MailError as exc:
        log.warn("list-status-failed", folder=name, error=exc.message)
        return b""


def _lsub(s: ImapSession, patterns: list[str]) -> bytes:
    """LSUB's lines, as Dovecot gives them: a subscribed name with no attributes but its
    special uses (it need not exist), and the parent of a subscribed name that `%` stops at,
    which is not subscribed itself, with `\\Noselect` (RFC 3501 6.3.9: LSUB "" "%" with
    foo/bar subscribed answers foo)."""
    if not patterns:
        return b""
    match = PatternSet(patterns).match
    subscribed = _subscribed(s)
    found: dict[str, list[str]] = {name: [] for name in subscribed if match(name)}
    for name in subscribed:
        if name in found:
            continue
        for parent in _ancestors(name):
            if parent not in found and match(parent):
                found[parent] = ["\\Noselect"]
    uses = _special_uses(s)
    lines = [
        r.list_response([*found[n], *uses.get(n, ())], SEPARATOR, n, "LSUB", utf8=utf8(s))
        for n in _ordered(found)
    ]
    return b"".join(lines)
