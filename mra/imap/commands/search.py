"""SEARCH and UID SEARCH (RFC 3501 6.4.4) with the RETURN options of ESEARCH (RFC 4731) and
SEARCHRES (RFC 5182): the command; the program is mra/imap/search.py's and its run over the
view mra/imap/searching.py's.

`SEARCH RETURN (MIN MAX ALL COUNT SAVE) program`: with RETURN, the answer is one
`* ESEARCH (TAG "tag") [UID] [MIN n] [MAX n] [ALL set] [COUNT n]` instead of `* SEARCH`
(RFC 4731 3.1: MIN, MAX and ALL only when something matched, COUNT always; `RETURN ()` is
`RETURN (ALL)`), in Dovecot's order. An IMAP4rev2 session always gets ESEARCH (RFC 9051
6.4.4, Appendix E 4): no RETURN is RETURN (ALL). MIN or MAX alone stops at the first match
from either end.
SAVE keeps the result as `$` (the view's `saved`): all that matched, or only the MIN and MAX
messages when SAVE comes with MIN and/or MAX and neither ALL nor COUNT (RFC 5182 2.4); SAVE
alone answers no ESEARCH. A SAVE search that fails with NO (an unknown charset, a message that
cannot be read) empties `$`; one that fails with BAD leaves it as it was (RFC 5182 2.1).

A program that only looks at flags, sizes, dates and sets runs on the reactor when the folder
is small (a flags-only SEARCH of 1,000 messages takes about 0.3 ms); one that reads messages or
stats every file (the save date), or a very big folder, runs in the thread pool as an explicit
`Call`.

MODSEQ (RFC 7162 3.1.5) turns CONDSTORE on and adds the highest modseq of the messages found
to the answer: `* SEARCH 2 5 (MODSEQ n)`, or `MODSEQ n` last in ESEARCH, where with MIN or
MAX alone only those messages count (3.1.10, as Dovecot's imap-search.c); nothing found,
no MODSEQ.
"""

from __future__ import annotations

from mailstore.errors import MailError
from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.commands import condstore
from mra.imap.commands.enable import utf8_accept
from mra.imap.commands.spec import Request
from mra.imap.messagecache import MessageCache, message_cache
from mra.imap.searching import SearchFailed, compile_search, run_search, saved_result
from mra.imap.sequence import SequenceSet, format_set
from mra.imap.values import Atom, ParenList, Value
from mra.session import Call, Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.search import SearchProgram
    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession

INLINE_MAX = 20_000  # messages a SEARCH without message keys runs on the reactor
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
NOTHING_SAVED = SequenceSet(())


def return_options(args: list[Value]) -> tuple[frozenset[str] | None, list[Value]]:
    """The RETURN options (None without RETURN) and the rest of the arguments. RETURN not
    followed by a list is not RETURN: the program parser then calls it an unknown key."""
    if len(args) < 2 or not isinstance(args[1], ParenList):
        return None, args
    first = args[0]
    if not isinstance(first, Atom) or first.value.upper() != "RETURN":
        return None, args
    options = set()
    for item in args[1].items:
        if not isinstance(item, Atom):
            raise ArgumentError("SEARCH return options must be atoms")
        name = item.value.upper()
        if name not in RETURN_OPTIONS:
            raise ArgumentError(f"unknown SEARCH return option {name[:20]}")
        options.add(name)
    return frozenset(options or {"ALL"}), args[2:]


def search(s: ImapSession, req: Request) -> list[Output]:
    view = s.selected()
    options, args = return_options(req.args)
    if options is None and view.rev2:
        options = frozenset({"ALL"})  # RFC 9051 6.4.4: always ESEARCH, ALL when none asked
    if utf8_accept(s) and args and isinstance(args[0], Atom) and args[0].value.upper() == "CHARSET":
        # RFC 6855 3: after ENABLE UTF8=ACCEPT the client "MUST NOT issue a SEARCH command
        # that contains a charset specification"; the server "SHOULD reject the command with a
        # BAD response (due to the conflicting charset labels)", as Dovecot 2.4 does.
        raise ArgumentError("CHARSET is not allowed after ENABLE UTF8=ACCEPT")
    save = options is not None and "SAVE" in options
    try:
        program = compile_search(view, args)  # `$` is read here, before a SAVE replaces it
    except SearchFailed as exc:
        if save:
            view.saved = NOTHING_SAVED
        raise r.Refusal(r.BAD_CHARSET, r.Code.badcharset(exc.charsets), reason=str(exc)) from None

    head = b""
    if program.uses_modseq:
        head = condstore.enable(s)  # a CONDSTORE-enabling command (RFC 7162 3.1)
        condstore.require_modseqs(view)

    def run(s: ImapSession, req: Request) -> list[Output]:
        try:
            untagged = head + _answer(view, program, options, req, message_cache(s.services))
        except MailError:
            if save:
                view.saved = NOTHING_SAVED
            raise
        # Messages expunged elsewhere, not yet reported, were left out (RFC 2180 4.1.3).
        code = r.Code.EXPUNGEISSUED if view.gone else None
        return s.ok(req, untagged=untagged, code=code)

    if program.needs_message or program.stats_files or len(view) > INLINE_MAX:
        return [Call(lambda: s.run_guarded(req, run), s.after_call)]
    return run(s, req)


def _answer(
    view: SelectedView,
    program: SearchProgram,
    options: frozenset[str] | None,
    req: Request,
    texts: MessageCache | None = None,
) -> bytes:
    """Run the program; the untagged answer; the saved result kept when asked."""
    uids = view.uids
    if options is None:
        found = run_search(view, program, texts=texts)
        numbers = [uids[n - 1] for n in found] if req.uid else found
        return r.search_response(numbers, _highest(view, program, found))
    ends_only = not options & {"ALL", "COUNT"} and bool(options & {"MIN", "MAX"})
    if ends_only:
        found = run_search(view, program, limit=1, texts=texts) if "MIN" in options else []
        if "MAX" in options and (found or "MIN" not in options):
            last = run_search(view, program, reverse=True, limit=1, texts=texts)
            found = sorted(set(found + last))
    else:
        found = run_search(view, program, texts=texts)
    if "SAVE" in options:
        view.saved = saved_result(view, found)
        if options == {"SAVE"}:
            return b""
    numbers = [uids[n - 1] for n in found] if req.uid else found
    items: list[tuple[bytes, bytes]] = []
    if numbers and "MIN" in options:
        items.append((b"MIN", r.number(numbers[0])))
    if numbers and "MAX" in options:
        items.append((b"MAX", r.number(numbers[-1])))
    if numbers and "ALL" in options:
        items.append((b"ALL", format_set(numbers).encode("ascii")))
    if "COUNT" in options:
        items.append((b"COUNT", r.number(len(numbers))))
    ends = [found[0], found[-1]] if ends_only and found else found
    highest = _highest(view, program, ends)
    if highest:
        items.append((b"MODSEQ", r.number(highest)))
    return r.esearch_response(req.tag, req.uid, items)


def _highest(view: SelectedView, program: SearchProgram, found: list[int]) -> int | None:
    """The highest modseq of the messages found, for a program with MODSEQ (else None)."""
    if not program.uses_modseq or not found:
        return None
    uids = view.uids
    return max((view.state.modseq(uids[n - 1]) or 0 for n in found), default=0) or None
