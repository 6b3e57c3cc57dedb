"""SORT and THREAD (RFC 5256), UID SORT and UID THREAD, with SORT=DISPLAY (RFC 5957) and ESORT
(RFC 5267): the commands; the order is mra/imap/sorting.py's, the trees mra/imap/threads.py's,
over the fields of the view's source (mra/imap/sortsource.py), read off what the folder keeps
(mra/imap/sortindex.py: each key's order, THREAD's step 1) when the folder index has them.

`SORT [RETURN (MIN MAX ALL COUNT SAVE)] (program) charset search-key...`: the messages the
search matches (commands/search.py's program, `$` and all), in the program's order, as
`* SORT 5 3 4` or, with RETURN (ESORT, RFC 5267 3), one `* ESEARCH (TAG "t") [UID] ...` where,
as in Dovecot, MIN and MAX are the first and the last message in the sorted order and ALL is
the sorted list as a sequence set (only consecutive ascending runs become ranges: `3:5,1:2`).
SAVE keeps the messages as `$` (RFC 5182), all of them, or only the MIN and MAX ones when
only those were asked for.

`THREAD algorithm charset search-key...`: `* THREAD (2)(3 6 (4 23)(44 7 96))`.

Both read every matching message's fields, which grows with the folder: they run in the
thread pool (their table rows say `thread=True`). A message expunged by another session that
this one has not been told of is left out, and the command ends with OK [EXPUNGEISSUED].
"""

from __future__ import annotations

from mailstore.errors import MailError
from mra.imap import response as r
from mra.imap import sorting, threads
from mra.imap.arguments import ArgumentError, as_astring
from mra.imap.commands.search import NOTHING_SAVED, return_options
from mra.imap.commands.spec import Request
from mra.imap.indexsource import IndexedFieldSource
from mra.imap.searching import SearchFailed, compile_search, run_search, saved_result
from mra.imap.searchkeys import All
from mra.imap.sequence import format_set
from mra.imap.sortsource import source_for
from mra.imap.values import Atom, ParenList, String, Value
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.search import SearchProgram
    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession


def _charset_and_program(view: SelectedView, args: list[Value], save: bool) -> SearchProgram:
    """The search program after the charset (which SORT and THREAD must name, RFC 5256)."""
    if not args:
        raise ArgumentError("a charset and a search program are needed")
    charset = as_astring(args[0])
    try:
        return compile_search(view, [Atom("CHARSET"), String(charset), *args[1:]])
    except SearchFailed as exc:
        if save:
            view.saved = NOTHING_SAVED
        raise r.Refusal(r.BAD_CHARSET, r.Code.badcharset(exc.charsets), reason=str(exc)) from None


def _matching(view: SelectedView, program: SearchProgram) -> dict[int, int]:
    """The sequence number of each UID the program matches, in sequence order."""
    uids = view.uids
    if isinstance(program.key, All):  # `ALL`, what clients send most: no message visited
        gone = view.gone
        if not gone:
            return dict(zip(uids, range(1, len(uids) + 1), strict=True))
        return {u: n for n, u in enumerate(uids, 1) if u not in gone}
    return {uids[n - 1]: n for n in run_search(view, program)}


def _sorted(
    view: SelectedView, uids: list[int], program: list[tuple[str, bool]]
) -> tuple[list[int], list[int] | None]:
    """The UIDs in the sort program's order, from the folder's keys when the folder index
    keeps its records (sortindex.py), else sorted from the fields read now; and the place of
    each in `uids` when that came at no cost (else None)."""
    source = source_for(view)
    if isinstance(source, IndexedFieldSource):
        keys = source.keys(uids)
        if keys is not None:
            return keys.sort(uids, program)
    return sorting.sort_uids(source.fields(uids), program), None


def _threaded(view: SelectedView, uids: list[int], algorithm: str) -> threads.Thread:
    """The THREAD `algorithm` tree of the UIDs, continuing the folder's step 1 when it can."""
    source = source_for(view)
    if isinstance(source, IndexedFieldSource):
        keys = source.keys(uids)
        if keys is not None:
            return keys.thread(uids, algorithm)
    fields = source.fields(uids)
    if algorithm == "ORDEREDSUBJECT":
        return threads.orderedsubject(fields)
    return threads.references(fields, refs=algorithm == "REFS")


def _numbers(numbers: list[int]) -> bytes:
    """` 5 3 4`: one formatting in C (five times faster than a str a number, joined)."""
    return ((" %d" * len(numbers)) % tuple(numbers)).encode("ascii")


def sort(s: ImapSession, req: Request) -> list[Output]:
    view = s.selected()
    options, args = return_options(req.args)
    if not args or not isinstance(args[0], ParenList):
        raise ArgumentError("SORT needs a parenthesised sort program")
    names = []
    for item in args[0].items:
        if not isinstance(item, Atom):
            raise ArgumentError("sort keys are atoms")
        names.append(item.value)
    try:
        program = sorting.parse_program(names)
    except sorting.SortError as exc:
        raise ArgumentError(str(exc)) from None
    save = options is not None and "SAVE" in options
    search = _charset_and_program(view, args[1:], save)
    try:
        seq_of = _matching(view, search)
        order, places = _sorted(view, list(seq_of), program)
    except MailError:
        if save:
            view.saved = NOTHING_SAVED
        raise
    if req.uid:
        numbers = order
    elif places is not None and len(seq_of) == len(view.uids):
        numbers = places  # every message matched, none expunged: the place is the number
    else:
        numbers = list(map(seq_of.__getitem__, order))
    if options is None:
        untagged = b"* SORT" + _numbers(numbers) + b"\r\n"
    else:
        untagged = _esort(view, options, order, numbers, seq_of, req)
    code = r.Code.EXPUNGEISSUED if view.gone else None
    return s.ok(req, untagged=untagged, code=code)


def _esort(
    view: SelectedView,
    options: frozenset[str],
    order: list[int],
    numbers: list[int],
    seq_of: dict[int, int],
    req: Request,
) -> bytes:
    """The ESEARCH answer of a SORT with RETURN (RFC 5267 3), and `$` when asked."""
    if "SAVE" in options:
        ends_only = not options & {"ALL", "COUNT"} and bool(options & {"MIN", "MAX"})
        kept = order
        if ends_only and order:
            kept = ([order[0]] if "MIN" in options else []) + (
                [order[-1]] if "MAX" in options else []
            )
        view.saved = saved_result(view, sorted({seq_of[u] for u in kept}))
        if options == {"SAVE"}:
            return b""
    items: list[tuple[bytes, bytes]] = []
    if numbers and "MIN" in options:
        items.append((b"MIN", r.number(numbers[0])))
    if numbers and "MAX" in options:
        items.append((b"MAX", r.number(numbers[-1])))
    if numbers and "ALL" in options:
        items.append((b"ALL", format_set(numbers).encode("ascii")))
    if "COUNT" in options:
        items.append((b"COUNT", r.number(len(numbers))))
    return r.esearch_response(req.tag, req.uid, items)


def thread(s: ImapSession, req: Request) -> list[Output]:
    view = s.selected()
    if not req.args or not isinstance(req.args[0], Atom):
        raise ArgumentError("THREAD needs an algorithm")
    algorithm = req.args[0].value.upper()
    if algorithm not in threads.ALGORITHMS:
        raise ArgumentError(f"unknown thread algorithm {req.args[0].value[:20]}")
    search = _charset_and_program(view, req.args[1:], False)
    seq_of = _matching(view, search)
    tree = _threaded(view, list(seq_of), algorithm)
    number = int if req.uid else seq_of.__getitem__
    untagged = threads.write(tree, number) + b"\r\n"
    code = r.Code.EXPUNGEISSUED if view.gone else None
    return s.ok(req, untagged=untagged, code=code)


def capabilities() -> list[str]:
    """What this module implements (RFC 5256 section 5: THREAD=<algorithm> each)."""
    return ["SORT", "SORT=DISPLAY", "ESORT"] + [f"THREAD={a}" for a in threads.ALGORITHMS]
