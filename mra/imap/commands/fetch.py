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
"""

from __future__ import annotations

from contextlib import nullcontext

from mailstore.errors import MailError, NotFound
from mra import log
from mra.imap import fetch as items
from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.commands.spec import Request
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
    if len(req.args) != 2:
        raise ArgumentError("FETCH needs a sequence set and items")
    view = s.selected()
    pairs = view.resolve(req.args[0], req.uid)
    wanted = items.parse_items(req.args[1])
    threaded = items.reads_messages(wanted) or items.sets_seen(wanted) or len(pairs) > INLINE_MAX
    return [Stream(_lines(s, req, view, pairs, wanted), lambda: [], threaded=threaded)]


def _lines(
    s: ImapSession,
    req: Request,
    view: SelectedView,
    pairs: list[tuple[int, int]],
    wanted: list[Item],
) -> Iterator[bytes]:
    seen_now: set[int] = set()
    if items.sets_seen(wanted) and not view.readonly:
        unseen = [u for _, u in pairs if (m := view.message(u)) is not None and not m.seen]
        if unseen:
            try:
                seen_now = set(view.box.store_flags(unseen, "add", ["\\Seen"]))
            except MailError as exc:
                yield s.updates(req) + r.store_error(req.tag, exc)
                return
    expunged = False  # a message expunged elsewhere was answered from what is known of it
    failed: bytes | None = None  # the tagged answer for the first message that failed
    reads = items.reads_messages(wanted)
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
                    data = items.render(view, uid, seq, wanted, req.uid, uid in seen_now)
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
