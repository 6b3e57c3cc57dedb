"""SEARCH and UID SEARCH (RFC 3501 6.4.4): the command; the program is mra/imap/search.py's and
its run over the view mra/imap/searching.py's.

A program that only looks at flags, sizes, dates and sets runs on the reactor when the folder
is small (a flags-only SEARCH of 1,000 messages takes about 0.3 ms); one that reads messages,
or a very big folder, runs in the thread pool as an explicit `Call`.
"""

from __future__ import annotations

from mra.imap import response as r
from mra.imap.commands.spec import Request
from mra.imap.searching import SearchFailed, compile_search, run_search
from mra.session import Call, Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

INLINE_MAX = 20_000  # messages a SEARCH without message keys runs on the reactor


def search(s: ImapSession, req: Request) -> list[Output]:
    view = s.selected()
    try:
        program = compile_search(view, req.args)
    except SearchFailed as exc:
        raise r.Refusal(r.BAD_CHARSET, r.Code.badcharset(exc.charsets), reason=str(exc)) from None

    def run(s: ImapSession, req: Request) -> list[Output]:
        numbers = run_search(view, program, req.uid)
        return s.ok(req, untagged=r.search_response(numbers))

    if program.needs_message or len(view) > INLINE_MAX:
        return [Call(lambda: s.run_guarded(req, run), s.after_call)]
    return run(s, req)
