"""FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8): the command; the items and their response text
are mra/imap/fetch.py's.

The answer is a `Stream` of chunks of about 64 KiB (a write per message would cost a system
call and a reactor pass each for `FETCH 1:* FLAGS`), written at the pace the client reads.
Making a chunk that opens messages (bodies, ENVELOPE, BODYSTRUCTURE), or one of a big set,
is work that grows with the mailbox and the messages: such a stream is `threaded`, each chunk
made in the thread pool, and the reactor only writes (issue #17: a crafted 40 MB header must
not stall every session). Only FLAGS, UID, sizes and dates of up to `INLINE_MAX` messages are
rendered on the reactor.

A FETCH that reads bodies (BODY[], not PEEK) sets `\\Seen` first, in one store operation, and
answers FLAGS for those messages even when not asked (RFC 3501 6.4.5). A message another
session expunged, this session not yet told (RFC 2180 4.1), is answered from what the store
still knows of it (flags, size; NIL for what needed its file) and the command ends in `OK
[EXPUNGEISSUED]` (RFC 5530), as Dovecot answers; a UID FETCH is followed by the EXPUNGE. A message
that cannot be read is left out, and the command ends with the store's error for it, so one
broken file never costs the others their answer. So is a message whose BINARY cannot be
decoded (NO [UNKNOWN-CTE] or NO [PARSE]); Dovecot stops the FETCH at it instead.

CONDSTORE and QRESYNC (RFC 7162, commands/condstore.py): the MODSEQ item; the modifier
`(CHANGEDSINCE m)` keeps the messages whose modseq is above m (found in the folder index, not
by walking the set) and adds MODSEQ to the items; `UID FETCH ... (CHANGEDSINCE m VANISHED)`
first names the UIDs of the set expunged since m (`VANISHED (EARLIER)`, 3.2.6).
"""

from __future__ import annotations

from contextlib import nullcontext

from mailstore.errors import MailError, NotFound
from mra import log
from mra.imap import fetch as items
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom
from mra.imap.commands import condstore
from mra.imap.commands.enable import qresync
from mra.imap.commands.spec import Request
from mra.imap.messagecache import message_cache
from mra.imap.sequence import contains
from mra.imap.values import Atom, ParenList, Value
from mra.session import Output, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from mra.imap.fetch import Item
    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession

BATCH = 64 * 1024
INLINE_MAX = 5_000  # messages whose flags, sizes and dates a FETCH renders on the reactor


def fetch(s: ImapSession, req: Request) -> list[Output]:
    args = list(req.args)
    if _lazy_preview(args):
        args = [args[0], ParenList((args[1], args[2]))]  # `PREVIEW (LAZY)` alone (RFC 8970)
    if len(args) not in (2, 3):
        raise ArgumentError("FETCH needs a sequence set and items")
    view = s.selected()
    wanted = items.parse_items(args[1])
    since, vanished = _modifiers(s, req, args[2]) if len(args) == 3 else (None, False)
    head = b""
    if since is not None or "MODSEQ" in wanted:
        head = condstore.enable(s)  # a CONDSTORE-enabling command (RFC 7162 3.1)
        condstore.require_modseqs(view)
    if since is None:
        pairs = view.resolve(args[0], req.uid)
    else:
        if "MODSEQ" not in wanted:
            wanted.append("MODSEQ")  # RFC 7162 3.1.4.1, where Dovecot puts it: last
        ranges = view.ranges(args[0], req.uid)
        pairs = []
        for uid in view.state.changed_since(since) or []:
            seq = view.seq_of(uid)
            if seq is not None and contains(ranges, seq):
                pairs.append((seq, uid))
        if vanished:
            known = condstore.uid_filter(args[0])
            head += condstore.vanished_line(view, since, known)
    threaded = items.reads_messages(wanted) or items.sets_seen(wanted) or len(pairs) > INLINE_MAX
    return [Stream(_lines(s, req, view, pairs, wanted, head), lambda: [], threaded=threaded)]


def _lazy_preview(args: list[Value]) -> bool:
    """`FETCH set PREVIEW (LAZY)`: the one item unparenthesized with its modifier (RFC 8970),
    which reads like an item and FETCH modifiers (`FETCH set FLAGS (CHANGEDSINCE 5)`)."""
    if len(args) != 3 or not isinstance(args[1], Atom) or not isinstance(args[2], ParenList):
        return False
    return args[1].value.upper() == "PREVIEW" and all(
        isinstance(v, Atom) and v.value.upper() == "LAZY" for v in args[2].items
    )


def _modifiers(s: ImapSession, req: Request, value: Value) -> tuple[int | None, bool]:
    """FETCH's modifiers (RFC 7162 3.1.4.1, 3.2.6): (CHANGEDSINCE m, VANISHED asked)."""
    if not isinstance(value, ParenList):
        raise ArgumentError("FETCH modifiers must be a list")
    args = list(value.items)
    since = None
    vanished = False
    while args:
        name = as_atom(args.pop(0)).upper()
        if name == "CHANGEDSINCE" and args:
            since = condstore.modseq_value(args.pop(0), "CHANGEDSINCE modseq")
        elif name == "VANISHED" and req.uid:
            if not qresync(s):
                raise ArgumentError("QRESYNC not enabled")
            vanished = True
        else:
            raise ArgumentError("unknown FETCH modifier")
    if vanished and since is None:
        raise ArgumentError("VANISHED used without CHANGEDSINCE")
    return since, vanished


def _lines(
    s: ImapSession,
    req: Request,
    view: SelectedView,
    pairs: list[tuple[int, int]],
    wanted: list[Item],
    head: bytes = b"",
) -> Iterator[bytes]:
    if head:
        yield head
    seen_now: set[int] = set()
    if items.sets_seen(wanted) and not view.readonly:
        unseen = [u for _, u in pairs if (m := view.message(u)) is not None and not m.seen]
        if unseen:
            try:
                seen_now = set(view.box.store_flags(unseen, "add", ["\\Seen"], view.tracker))
            except MailError as exc:
                yield s.updates(req) + r.store_error(req.tag, exc)
                return
    expunged = False  # a message expunged elsewhere was answered from what is known of it
    failed: bytes | None = None  # the tagged answer for the first message that failed
    reads = items.reads_messages(wanted)
    kept = message_cache(s.services) if reads else None
    plan = items.flags_plan(wanted, req.uid)
    i = 0
    while True:
        batch: list[bytes] = []
        size = 0
        # A chunk at a time, with cur/ and new/ held open while it is made (its reads then
        # open only their files), and let go before the chunk is handed over.
        with view.box.reading() if reads else nullcontext():
            while i < len(pairs) and size < BATCH:
                seq, uid = pairs[i]
                i += 1
                msg = view.message(uid)
                try:
                    if msg is None:
                        raise LookupError(uid)
                    if plan is not None:
                        data = items.render_flags(view, msg, seq, plan)
                    else:
                        data = items.render(view, uid, seq, wanted, req.uid, uid in seen_now, kept)
                except (LookupError, NotFound):
                    # Expunged by another session, this one not told yet (RFC 2180 4.1):
                    # answered with what is still known, as Dovecot; a UID FETCH is then
                    # followed by the EXPUNGE, a FETCH by number ends in OK [EXPUNGEISSUED].
                    ghost = msg or view.ghost(uid)
                    if ghost is None:
                        continue
                    data = items.render_ghost(view, ghost, seq, wanted, req.uid)
                    expunged = not req.uid
                except r.Refusal as exc:  # BINARY of a part that does not decode (RFC 3516)
                    failed = failed or exc.line(req.tag)
                    continue
                except MailError as exc:
                    log.error("fetch-failed", mailbox=view.name, uid=uid, error=exc.message)
                    failed = failed or r.store_error(req.tag, exc)
                    continue
                except Exception as exc:  # a bug in rendering one message: the others go out
                    log.error("fetch-failed", mailbox=view.name, uid=uid, error=repr(exc))
                    failed = failed or r.say(req.tag, r.SERVER_BUG)
                    continue
                if view.unannounced:  # a keyword the client was not told of: FLAGS first
                    batch.append(view.flags_lines())
                batch.append(data)
                size += len(data)
                s.activity.fetched += reads
        if i < len(pairs):
            yield b"".join(batch)
            continue
        tail = b"".join(batch) + s.updates(req)
        if failed is not None:
            yield tail + failed
        elif expunged:
            yield tail + r.say(req.tag, r.ALREADY_EXPUNGED)
        else:
            yield tail + r.completed(req.tag, req.name)
        return
