"""Changing messages: STORE (RFC 3501 6.4.6), COPY (6.4.7), MOVE (RFC 6851), and their UID
forms (UIDPLUS, RFC 4315: COPYUID).

`\\Recent` cannot be stored (RFC 3501 2.3.2): the argument helpers answer BAD. A message
expunged by another session since the client last heard is left out, and the command ends in
NO [EXPUNGEISSUED] (RFC 5530) once the others are done.
"""

from __future__ import annotations

from mailstore.errors import NotFound
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_flag_list, as_mailbox
from mra.imap.commands.enable import utf8
from mra.imap.commands.spec import Request
from mra.imap.values import Atom, ParenList
from mra.session import Output, Send

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import Mailbox
    from mra.imap.session import ImapSession

MODES = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}


def store(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if len(args) != 3 or not isinstance(args[1], Atom):
        raise ArgumentError("STORE needs a sequence set, an item and flags")
    view = s.selected()
    if view.readonly:
        raise r.Refusal(r.READ_ONLY)
    item = args[1].value.upper()
    silent = item.endswith(".SILENT")
    mode = MODES.get(item.removesuffix(".SILENT"))
    if mode is None:
        raise ArgumentError("STORE item must be FLAGS, +FLAGS or -FLAGS")
    value = args[2]
    flags = as_flag_list(value if isinstance(value, ParenList) else ParenList((value,)))
    pairs = view.resolve(args[0], req.uid)
    live = [(seq, u) for seq, u in pairs if view.message(u) is not None]
    view.box.store_flags([u for _, u in live], mode, flags)
    out = [view.announcement()]  # a new keyword: FLAGS before the FETCHes that show it
    if not silent or req.uid:  # UID STORE answers the UIDs even when silent (RFC 4315 4)
        lines = []
        for seq, u in live:
            fields = [(b"FLAGS", view.flag_list(u))]
            if req.uid:
                fields.insert(0, (b"UID", r.number(u)))
            lines.append(r.fetch_response(seq, fields))
        if view.unannounced:
            out.append(view.flags_lines())
        out += lines
    if len(live) != len(pairs):
        return [Send(b"".join(out) + s.updates(req) + r.say(req.tag, r.EXPUNGE_ISSUED))]
    return s.ok(req, untagged=b"".join(out))


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
    dest = target(s, as_mailbox(req.args[1], utf8(s)))
    if move and view.readonly:
        raise r.Refusal(r.READ_ONLY)
    copied = view.box.copy_to([u for _, u in pairs], dest)
    if dest.path == view.box.path:
        view.arriving([b for _, b in copied])
    code = None
    if copied:
        code = r.Code.copyuid(dest.uidvalidity, [a for a, _ in copied], [b for _, b in copied])
    if not move:
        return s.ok(req, code=code)
    removed = view.box.expunge([a for a, _ in copied])
    # RFC 6851 3.3: COPYUID goes in an untagged OK before the EXPUNGEs.
    untagged = r.say(None, r.MOVED, code) if code is not None else b""
    return s.ok(req, untagged=untagged + b"".join(view.forget(removed)))
