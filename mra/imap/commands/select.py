"""Selecting and leaving a mailbox: SELECT, EXAMINE (RFC 3501 6.3.1-2, RFC 9051 6.3.2-3), CLOSE,
UNSELECT (RFC 3691), CHECK, EXPUNGE and UID EXPUNGE (RFC 3501 6.4, RFC 4315 2.1).

Opening a mailbox reads its listing and uidlist, which grows with the folder: it runs in the
thread pool, unless the session has the folder open and its shared state is warm (`_warm`). A
SELECT of another mailbox first leaves the current one (`[CLOSED]`, RFC 7162 3.2.11), so a
failed SELECT leaves the session in the authenticated state (RFC 3501 6.3.1).

The answer names the folder's HIGHESTMODSEQ (RFC 7162 3.1.2.1: every SELECT of a folder that
keeps modseqs, as Dovecot does), or NOMODSEQ when its index cannot be used; the CONDSTORE and
QRESYNC parameters are commands/condstore.py's.
"""

from __future__ import annotations

from functools import lru_cache

from mailstore.errors import MailError
from mailstore.folderstate import FolderState
from mra import log
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_astring, as_mailbox
from mra.imap.commands import condstore, listing
from mra.imap.commands.enable import CONDSTORE, qresync, rev2, utf8
from mra.imap.commands.enable import condstore as condstore_on
from mra.imap.commands.spec import Request
from mra.imap.selected import SelectedView
from mra.session import Call, Output, Send

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.store import MailStore
    from mra.imap.session import ImapSession


def select(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) not in (1, 2):
        raise ArgumentError(f"{req.name} needs a mailbox name")
    name = as_mailbox(req.args[0], utf8(s))
    readonly = req.name == "EXAMINE"
    store = s.mailstore()
    closed = r.say(None, r.PREVIOUS_CLOSED) if s.view is not None else b""
    s.unselect()
    try:
        want_condstore, resync = (
            condstore.select_params(s, req.args[1]) if len(req.args) == 2 else (False, None)
        )
    except ArgumentError as exc:
        return [Send(closed + r.bad(req.tag, f"{req.name}: {exc}"))]
    if want_condstore:
        s.enabled |= {CONDSTORE}  # RFC 7162 3.1.8, before the mailbox opens (as Dovecot)
    is_rev2 = rev2(s)
    modseqs = condstore_on(s), qresync(s)

    def open_view() -> tuple[SelectedView, bytes]:
        # Opening syncs (a listing, for a folder this process does not have open yet).
        box = store.mailbox(name)
        view = SelectedView(
            box,
            readonly,
            s.services.mime_limits,
            is_rev2,
            *modseqs,
            sort_keys=s.services.sort_keys,
        )
        listed = listing.selected_line(s, name, as_astring(req.args[0])) if is_rev2 else b""
        untagged = _select_response(view, listed)
        if resync is not None:
            untagged += condstore.qresync_answer(view, resync)
        return view, untagged

    def opened(result: object) -> list[Output]:
        if isinstance(result, MailError):
            return [Send(closed + r.store_error(req.tag, result))]
        if isinstance(result, BaseException):
            log.error("select-failed", mailbox=name, error=repr(result))
            return [Send(closed + r.say(req.tag, r.CANNOT_OPEN))]
        assert isinstance(result, tuple)
        view, untagged = result
        s.select(view)
        done = r.say(
            req.tag,
            r.EXAMINED if readonly else r.SELECTED,
            r.Code.READ_ONLY if readonly else r.Code.READ_WRITE,
        )
        return [Send(closed + untagged + done)]

    if resync is None and not is_rev2 and _warm(store, name):
        try:
            result: object = open_view()
        except Exception as exc:  # as the thread pool hands it to `opened`
            result = exc
        return opened(result)
    return [Call(open_view, opened)]


def _warm(store: MailStore, name: str) -> bool:
    """Whether SELECT can open `name` on the reactor: the session has the folder open and its
    shared state is warm (FolderState.warm: nothing in the answer grows with the folder) after
    a sync, which costs what changed, as NOOP's on the reactor. A warm SELECT is then a few
    dozen microseconds of work, where the thread pool's round trip cost more than all of it.
    Not with QRESYNC parameters (their answer grows with what vanished) nor IMAP4rev2 (its
    LIST line looks at the folder's children)."""
    box = store.opened(name)
    state = None if box is None else box.hooks
    if box is None or not isinstance(state, FolderState) or not state.warm():
        return False
    try:
        box.sync()
    except MailError:
        return False  # the thread pool's open says what is wrong
    return state.warm()


def _select_response(view: SelectedView, listed: bytes) -> bytes:
    """RFC 3501 6.3.1's untagged data; for IMAP4rev2 (RFC 9051 6.3.2, Appendix E 10-12) the
    LIST line (`listed`) in their place of RECENT and the deprecated UNSEEN code, where
    Dovecot 2.4's cmd-select.c puts it, after the flags."""
    box = view.box
    flags = view.flags_lines()
    highest = view.highest if view.modseqs else None
    if view.rev2:
        return (
            flags + listed + _counts(len(view), None, None, box.uidvalidity, box.next_uid, highest)
        )
    counts = _counts(
        len(view), len(view.recent), view.first_unseen(), box.uidvalidity, box.next_uid, highest
    )
    return flags + counts


@lru_cache(maxsize=256)
def _counts(
    exists: int,
    recent: int | None,
    unseen: int | None,
    uidvalidity: int,
    uidnext: int,
    highest: int | None,
) -> bytes:
    """The lines after the flags (and IMAP4rev2's LIST line), kept for the next SELECT of a
    folder that has not changed: a warm SELECT spent as long writing them as finding what to
    put in them. `recent` None: IMAP4rev2's, without RECENT; `highest` None: NOMODSEQ."""
    out = [r.exists(exists)]
    if recent is not None:
        out.append(r.recent(recent))
    if unseen is not None:
        out.append(r.say(None, r.FIRST_UNSEEN, r.Code.unseen(unseen)))
    out.append(r.say(None, r.UIDS_VALID, r.Code.uidvalidity(uidvalidity)))
    out.append(r.say(None, r.NEXT_UID, r.Code.uidnext(uidnext)))
    if highest is not None:
        out.append(r.say(None, r.HIGHEST_MODSEQ, r.Code.highestmodseq(highest)))
    else:
        out.append(r.say(None, r.NO_MODSEQ))
    return b"".join(out)


def check(s: ImapSession, req: Request) -> list[Output]:
    return s.ok(req)


def close(s: ImapSession, req: Request) -> list[Output]:
    """CLOSE expunges silently (RFC 3501 6.4.2); UNSELECT does not (RFC 3691)."""
    view = s.selected()
    if req.name == "CLOSE" and not view.readonly:
        expunged = view.box.expunge([u for u in view.uids if _deleted(view, u)], view.tracker)
        s.activity.expunged += len(expunged)
    s.unselect()
    return [Send(r.say(req.tag, r.CLOSED if req.name == "CLOSE" else r.UNSELECTED))]


def _deleted(view: SelectedView, uid: int) -> bool:
    msg = view.message(uid)
    return msg is not None and msg.deleted


def expunge(s: ImapSession, req: Request) -> list[Output]:
    view = s.selected()
    if view.readonly:
        raise r.Refusal(r.READ_ONLY)
    candidates = view.uids
    if req.uid:
        if len(req.args) != 1:
            raise ArgumentError("UID EXPUNGE needs a UID set")
        candidates = [u for _, u in view.resolve(req.args[0], True)]  # `$` too (RFC 5182)
    elif req.args:
        raise ArgumentError("EXPUNGE takes no arguments")
    removed = view.box.expunge([u for u in candidates if _deleted(view, u)], view.tracker)
    s.activity.expunged += len(removed)
    return s.ok(req, untagged=b"".join(view.forget(removed)))
