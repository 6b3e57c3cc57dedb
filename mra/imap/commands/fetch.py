"""FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8): the command; the items and their response text
are mra/imap/fetch.py's.

A FETCH that reads bodies (BODY[], not PEEK) sets `\\Seen` first, in one store operation, and
answers FLAGS for those messages even when not asked (RFC 3501 6.4.5). Responses are gathered
into writes of about 64 KiB (a write per message would cost a system call and a reactor pass
each for `FETCH 1:* FLAGS`) and written as a `Stream`, at the pace the client reads.
"""

from __future__ import annotations

from mailstore.errors import NotFound
from mra.imap import fetch as items
from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.commands.spec import Request
from mra.session import Output, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from mra.imap.session import ImapSession

BATCH = 64 * 1024


def fetch(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError("FETCH needs a sequence set and items")
    view = s.selected()
    pairs = view.resolve(req.args[0], req.uid)
    wanted = items.parse_items(req.args[1])
    seen_now: set[int] = set()
    if items.sets_seen(wanted) and not view.readonly:
        unseen = [u for _, u in pairs if (m := view.message(u)) is not None and not m.seen]
        if unseen:
            seen_now = set(view.box.store_flags(unseen, "add", ["\\Seen"]))

    def lines() -> Iterator[bytes]:
        missing = False
        batch: list[bytes] = []
        size = 0
        for seq, uid in pairs:
            try:
                data = items.render(view, uid, seq, wanted, req.uid, uid in seen_now)
            except (LookupError, NotFound):
                missing = True
                continue
            batch.append(data)
            size += len(data)
            if size >= BATCH:
                yield b"".join(batch)
                batch, size = [], 0
        if batch:
            yield b"".join(batch)
        tail = s.updates(req)
        if missing:
            yield tail + r.say(req.tag, r.EXPUNGE_ISSUED)
        else:
            yield tail + r.completed(req.tag, req.name)

    return [Stream(lines(), lambda: [])]
