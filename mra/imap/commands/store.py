"""Changing messages: STORE (RFC 3501 6.4.6), COPY (6.4.7), MOVE (RFC 6851), and their UID
forms (UIDPLUS, RFC 4315: COPYUID).

STORE takes the UNCHANGEDSINCE modifier of CONDSTORE (RFC 7162 3.1.3): a message whose modseq
is above it is left alone and named in `OK [MODIFIED set]` (sequence numbers, or UIDs for UID
STORE); the check and the change are made holding the folder's lock and one index transaction,
so another session or worker cannot slip a change in between, and a file renamed by any other
process after the check (`exact`) counts as modified too. With CONDSTORE on, the FETCHes a STORE
answers carry MODSEQ (only `MODSEQ` for .SILENT, for the messages it changed, as Dovecot and
the RFC's examples), and UID for UID STORE or with QRESYNC.

`\\Recent` cannot be stored (RFC 3501 2.3.2): the argument helpers answer BAD. A message
expunged by another session since the client last heard (RFC 2180 4.1): STORE answers its
flags as they would be (nothing is stored), COPY and MOVE fail whole with NO [EXPUNGEISSUED]
(RFC 5530) and let the EXPUNGE through, as Dovecot does (a UID COPY copies the others).
"""

from __future__ import annotations

from mailstore.errors import NotFound
from mra import activity
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom, as_flag_list, as_mailbox
from mra.imap.commands import condstore
from mra.imap.commands.enable import utf8
from mra.imap.commands.spec import Request
from mra.imap.values import Atom, ParenList
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import Mailbox
    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession

MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}


def store(s: ImapSession, req: Request) -> list[Output]:
    args = list(req.args)
    since = None
    modifiers = args[1] if len(args) == 4 else None
    if isinstance(modifiers, ParenList):
        since = _unchanged_since(modifiers)
        del args[1]
    if len(args) != 3 or not isinstance(args[1], Atom):
        raise ArgumentError("STORE needs a sequence set, an item and flags")
    view = s.selected()
    item = args[1].value.upper()
    silent = item.endswith(".SILENT")
    mode = MODES.get(item.removesuffix(".SILENT"))
    if mode is None:
        raise ArgumentError("STORE item must be FLAGS, +FLAGS or -FLAGS")
    value = args[2]
    flags = as_flag_list(value if isinstance(value, ParenList) else ParenList((value,)))
    if view.readonly:
        raise r.Refusal(r.READ_ONLY)
    pairs = view.resolve(args[0], req.uid)
    out = [condstore.enable(s)] if since is not None else []
    live = [u for _, u in pairs if view.message(u) is not None]
    activity.deleting(s, view, live, mode, flags)
    modified: set[int] = set()
    if since is None:
        changed = view.box.store_flags(live, mode, flags, view.tracker)
    else:
        condstore.require_modseqs(view)
        changed, modified = _store_unchanged(view, live, mode, flags, since)
    out.append(view.announcement())  # a new keyword: FLAGS before the FETCHes that show it
    with_uid = req.uid or view.qresync
    lines = []
    if view.condstore and silent:
        done = set(changed)
        for seq, u in pairs:
            if u in done:
                fields = [(b"UID", r.number(u))] if with_uid else []
                lines.append(r.fetch_response(seq, fields + view.modseq_item(u)))
    elif not silent or req.uid:  # UID STORE answers the UIDs even when silent (RFC 4315 4)
        for seq, u in pairs:
            modseq: list[tuple[bytes, bytes]] = []
            if u in modified:
                continue  # RFC 7162 3.1.3: told in MODIFIED, not in a FETCH
            if view.message(u) is not None:
                modseq = view.modseq_item(u)  # before FLAGS is read (selected.py)
                flag_text = view.flag_list(u)
            elif view.ghost(u) is not None:
                # Expunged elsewhere, not yet told (RFC 2180 4.2.1): the flags it would have
                # now, as Dovecot answers; nothing is stored.
                flag_text = r.flag_list(_changed(view.flags_of(u), mode, flags))
            else:
                continue  # a UID STORE does not find it
            fields = [(b"UID", r.number(u))] if with_uid or req.uid else []
            lines.append(r.fetch_response(seq, [*fields, *modseq, (b"FLAGS", flag_text)]))
    if view.unannounced:
        out.append(view.flags_lines())
    out += lines
    code = None
    if modified:
        numbers = sorted(modified) if req.uid else [n for n, u in pairs if u in modified]
        code = r.Code.modified(numbers)
    return s.ok(req, untagged=b"".join(out), code=code, text="" if code is None else _FAILED)


_FAILED = r.STORE_NOT_ALL.text


def _unchanged_since(value: ParenList) -> int:
    """STORE's modifiers: `(UNCHANGEDSINCE n)` (RFC 7162 3.1.3), nothing else."""
    items = list(value.items)
    since = None
    while items:
        if len(items) < 2 or as_atom(items[0]).upper() != "UNCHANGEDSINCE":
            raise ArgumentError("unknown STORE modifier")
        since = condstore.modseq_value(items[1], "UNCHANGEDSINCE")
        items = items[2:]
    if since is None:
        raise ArgumentError("empty STORE modifiers")
    return since


def _store_unchanged(
    view: SelectedView, uids: list[int], mode: str, flags: list[str], since: int
) -> tuple[list[int], set[int]]:
    """STORE UNCHANGEDSINCE: (the UIDs changed, the UIDs left alone as modified)."""
    with view.state.exclusive() as index:
        if index is None:
            raise r.Refusal(r.MODSEQS_UNAVAILABLE)
        view.box.sync()  # inside the transaction: no change can come between
        fit, modified = [], set()
        for u in uids:
            modseq = view.state.modseq(u)
            if modseq is None or modseq > since:
                modified.add(u)
            else:
                fit.append(u)
        changed, lost = view.box.change_flags(fit, mode, flags, view.tracker, exact=True)
    return changed, modified | set(lost)


def _changed(current: list[str], mode: str, flags: list[str]) -> list[str]:
    recent = [f for f in current if f == "\\Recent"]
    kept = [f for f in current if f != "\\Recent"]
    if mode == "set":
        kept = list(flags)
    elif mode == "add":
        kept += [f for f in flags if f not in kept]
    else:
        kept = [f for f in kept if f not in flags]
    return kept + recent


def target(s: ImapSession, name: str) -> Mailbox:
    """The mailbox APPEND, COPY or MOVE writes to; missing: NO [TRYCREATE] (RFC 3501 6.4.7)."""
    try:
        return s.mailstore().mailbox(name)
    except NotFound:
        raise r.Refusal(r.NO_TARGET) from None


def copy(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError(f"{req.name} needs a sequence set and a mailbox name")
    view = s.selected()
    move = req.spec.name == "MOVE"
    pairs = view.resolve(req.args[0], req.uid)
    dest_name = as_mailbox(req.args[1], utf8(s))
    dest = target(s, dest_name)
    if move and view.readonly:
        raise r.Refusal(r.READ_ONLY)
    wanted = [u for _, u in pairs if view.message(u) is not None]
    if len(wanted) != len(pairs) and not req.uid:
        raise r.Refusal(r.NO_LONGER_EXIST)
    copied = view.box.copy_to(wanted, dest)
    if len(copied) != len(wanted) and not req.uid:
        dest.expunge([b for _, b in copied])  # one vanished meanwhile: all or nothing
        raise r.Refusal(r.NO_LONGER_EXIST)
    if dest.path == view.box.path:  # copies with flags went to cur/: \Recent here
        flagged = {
            u for u in wanted if (m := view.message(u)) is not None and view.box.all_flags(m)
        }
        view.arriving([b for a, b in copied if a in flagged])
    activity.copied(s, dest_name, len(copied))
    code = None
    if copied:
        code = r.Code.copyuid(dest.uidvalidity, [a for a, _ in copied], [b for _, b in copied])
    if not move:
        return s.ok(req, code=code)
    removed = view.box.expunge([a for a, _ in copied], view.tracker)
    s.activity.expunged += len(removed)
    # RFC 6851 3.3: COPYUID goes in an untagged OK before the EXPUNGEs.
    untagged = r.say(None, r.MOVED, code) if code is not None else b""
    return s.ok(req, untagged=untagged + b"".join(view.forget(removed)))
