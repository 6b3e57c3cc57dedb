"""IDLE (RFC 2177): the session waits for `DONE` while the adapter watches the mailbox.

While idling, the adapter calls `mailbox_changed()` when inotify sees the folder change (or
every `IDLE_POLL` seconds without inotify), and the session pushes EXISTS, EXPUNGE and FETCH
at once: no command is in progress that uses sequence numbers. A keep-alive `* OK` goes out
when nothing happened for `IDLE_KEEPALIVE` seconds, before NATs forget the connection.
"""

from __future__ import annotations

import time

from mra.imap import response as r
from mra.imap.commands.spec import Request
from mra.session import Output, Send

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

IDLE_POLL = 1.0


def idle(s: ImapSession, req: Request) -> list[Output]:
    s.idle_tag = req.tag
    s.idle_since = time.monotonic()
    s.poll_interval = IDLE_POLL
    if s.view is not None:
        s.watch_paths = s.view.watch_paths()
    s.feed_reader(s.reader.expect_done())
    return [Send(s.updates(req) + r.continuation(r.IDLING))]


def done(s: ImapSession, problem: str | None) -> list[Output]:
    """DONE arrived, or (`problem`) a line that is not DONE."""
    tag, s.idle_tag = s.idle_tag, None
    s.poll_interval = None
    s.watch_paths = ()
    assert tag is not None
    if problem is not None:
        return [Send(r.say(tag, r.IDLE_BROKEN, problem=problem))]
    return [Send(s.updates(None) + r.say(tag, r.IDLE_DONE))]
