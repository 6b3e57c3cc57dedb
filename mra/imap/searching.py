"""SEARCH over the selected view: the parser's values become search.py's tokens, sequence sets
resolve against this session's numbering, and each message is read only if a key needs it.

The saved result of SEARCHRES (RFC 5182), `$`, is the view's `saved`: UIDs, as ranges, so that
an expunged message simply drops out of it (section 2.1: "When a message listed in the search
result variable is EXPUNGEd, it is automatically removed from the list") and a new SELECT,
EXAMINE or CLOSE, which ends the view, forgets it.
"""

from __future__ import annotations

import itertools

from mailstore.errors import NotFound
from mra.imap import search, searchindex
from mra.imap.arguments import ArgumentError
from mra.imap.messagecache import TEXT
from mra.imap.sequence import SequenceError, SequenceSet
from mra.imap.values import Atom, FetchAtt, ParenList, String, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Iterator

    from mailstore.mailbox import Message
    from mra.imap.messagecache import MessageCache
    from mra.imap.selected import SelectedView


class SearchFailed(Exception):
    """A CHARSET the server cannot search in: NO [BADCHARSET (charsets)] (RFC 3501 6.4.4)."""

    def __init__(self, message: str, charsets: tuple[str, ...]) -> None:
        super().__init__(message)
        self.charsets = charsets


def to_tokens(values: list[Value] | tuple[Value, ...]) -> list[object]:
    out: list[object] = []
    for v in values:
        if isinstance(v, ParenList):
            out.append(to_tokens(v.items))
        elif isinstance(v, String):
            out.append(v.value)
        elif isinstance(v, Atom):
            out.append(v.value.encode())
        elif isinstance(v, FetchAtt):
            raise ArgumentError("unexpected item in SEARCH")
    return out


def compile_search(view: SelectedView, args: list[Value]) -> search.SearchProgram:
    """The search program of a SEARCH command, its sequence sets resolved against the view.
    Raises ArgumentError (BAD) or SearchFailed (NO [BADCHARSET])."""
    uids = view.uids

    def resolve(raw: bytes, as_uid: bool) -> Container[int]:
        if raw == b"$":  # SEARCHRES: UIDs, in `SEARCH $` as in `SEARCH UID $`
            ranges = view.saved.resolve_uids(uids)
        else:
            try:
                sset = SequenceSet.parse(raw.decode("ascii"))
                if as_uid:
                    ranges = sset.resolve_uids(uids)
                else:  # beyond the last message: nothing more to match (as Dovecot)
                    ranges = sset.resolve_seqs(len(uids), strict=False)
            except (SequenceError, UnicodeDecodeError, ValueError) as exc:
                raise search.SearchError(f"invalid sequence set: {exc}") from exc
        # Both resolve to sequence numbers; the contexts below are numbered the same way.
        return {i for rng in ranges for i in rng}

    try:
        program = search.parse_search(
            to_tokens(args),  # type: ignore[arg-type]
            resolve_set=resolve,
            rev2=view.rev2,
        )
    except search.BadCharsetError as exc:
        raise SearchFailed(str(exc), search.CHARSETS) from exc
    except search.SearchError as exc:
        raise ArgumentError(str(exc)) from exc
    return program


def run_search(
    view: SelectedView,
    program: search.SearchProgram,
    *,
    reverse: bool = False,
    limit: int | None = None,
    texts: MessageCache | None = None,
) -> list[int]:
    """The sequence numbers of the matching messages, ascending (descending with `reverse`);
    at most `limit` of them: ESEARCH's MIN needs the first match only, MAX the last. `texts`
    keeps the folded texts TEXT compares for the next searches (messagecache.py)."""
    numbered: Iterable[tuple[int, int]] = enumerate(view.uids, 1)
    if reverse:
        numbered = reversed(list(numbered))
    if program.flags_only:
        matches = _flags_only_matches(view, program, numbered)
    else:
        headers = None
        if searchindex.wanted_fields(program) and view.state.highest_modseq is not None:
            numbered = list(numbered)
            headers = IndexedHeaders(view, [u for _seq, u in numbered])
        matches = _message_matches(view, program, numbered, headers, texts)
        if headers is not None:
            try:
                return list(itertools.islice(matches, limit))
            finally:
                headers.keep()
    if limit is None:
        return list(matches)
    return list(itertools.islice(matches, limit))


def _message_matches(
    view: SelectedView,
    program: search.SearchProgram,
    numbered: Iterable[tuple[int, int]],
    headers: IndexedHeaders | None = None,
    texts: MessageCache | None = None,
) -> Iterator[int]:
    """A message another session expunged while we read (its file gone, the session not yet
    told) matches nothing: its data is gone, and the search goes on with the others."""
    for seq, u in numbered:
        msg = view.message(u)
        if msg is None:
            continue
        try:
            if program.matches(_Context(view, msg, seq, headers, texts)):
                yield seq
        except NotFound:
            continue


def _flags_only_matches(
    view: SelectedView, program: search.SearchProgram, numbered: Iterable[tuple[int, int]]
) -> Iterator[int]:
    """UNSEEN, DELETED, KEYWORD $Junk...: decided once per combination of flags, which a
    mailbox has few of, instead of once per message."""
    recent = view.recent
    verdicts: dict[tuple[str, bool], bool] = {}
    for seq, u in numbered:
        msg = view.message(u)
        if msg is None:
            continue
        key = (msg.flag_key, u in recent)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = program.matches(_Context(view, msg, seq))
        if verdict:
            yield seq


def saved_result(view: SelectedView, seqs: list[int]) -> SequenceSet:
    """The UIDs of these messages (sequence numbers, ascending) as `$` keeps them: a run of
    consecutive messages is one range of UIDs, whatever UIDs expunged before left between."""
    uids = view.uids
    ranges: list[tuple[int | None, int | None]] = []
    start = prev = 0
    for seq in seqs:
        if prev and seq == prev + 1:
            prev = seq
            continue
        if prev:
            ranges.append((uids[start - 1], uids[prev - 1]))
        start = prev = seq
    if prev:
        ranges.append((uids[start - 1], uids[prev - 1]))
    return SequenceSet(tuple(ranges))


class IndexedHeaders:
    """The indexed header fields (searchindex.py) of the messages of one command, in the order
    it visits them (`order`), from the folder index a chunk at a time; what the index lacks is
    read from the files and handed to the index (`keep`, a chunk at a time and at the end).
    `block(uid)` is the header block to parse for these fields: SEARCH uses it, and so can a
    FieldSource for SORT and THREAD (sortfields.fields_of of the block is that of the file)."""

    CHUNK = 2000

    __slots__ = ("_asked", "_blocks", "_fresh", "_last", "_next", "_order", "_view")

    def __init__(self, view: SelectedView, order: list[int]) -> None:
        self._view = view
        self._order = order
        self._next = 0
        self._asked: set[int] = set()
        self._blocks: dict[int, bytes] = {}
        self._fresh: dict[int, bytes] = {}
        self._last: tuple[int, bytes] = (0, b"")

    def block(self, uid: int) -> bytes:
        """The header block to search for `uid`: the kept fields, or the file's header."""
        order = self._order
        while uid not in self._asked and self._next < len(order):
            chunk = order[self._next : self._next + self.CHUNK]
            self._next += len(chunk)
            self._asked.update(chunk)
            self._blocks.update(self._view.state.cached_headers(chunk))
        if uid == self._last[0]:
            return self._last[1]  # a message's keys ask again (plain_header, then top)
        kept = self._blocks.pop(uid, None)
        if kept is not None:
            self._last = (uid, kept)
            return kept
        header = self._view.box.read_header(uid)
        fields = searchindex.indexed_block(header)
        if fields is not None and uid in self._asked:
            self._fresh[uid] = fields
            if len(self._fresh) >= self.CHUNK:
                self.keep()
        return header

    def keep(self) -> None:
        fresh, self._fresh = self._fresh, {}
        self._view.state.cache_headers(fresh)


class _Context:
    """One message as search.py sees it. Only what a key asks for is computed: UNSEEN needs
    no stat() of INTERNALDATE, no size, and certainly no file read."""

    __slots__ = (
        "_flags",
        "_folded",
        "_headers",
        "_texts",
        "_view",
        "mime_limits",
        "msg",
        "seqno",
        "uid",
    )

    def __init__(
        self,
        view: SelectedView,
        msg: Message,
        seq: int,
        headers: IndexedHeaders | None = None,
        texts: MessageCache | None = None,
    ) -> None:
        self._view = view
        self._headers = headers
        self._texts = texts
        self.mime_limits = view.mime_limits
        self.msg = msg
        self.seqno = seq
        self.uid = seq  # UID keys were resolved to sequence numbers (see `resolve` above)
        self._flags: list[str] | None = None
        self._folded: tuple[frozenset[str], frozenset[str]] | None = None

    def _all(self) -> list[str]:
        if self._flags is None:
            self._flags = self._view.flags_of(self.msg.uid)
        return self._flags

    @property
    def flags(self) -> set[str]:
        return {f for f in self._all() if f.startswith("\\")}

    @property
    def keywords(self) -> set[str]:
        return {f for f in self._all() if not f.startswith("\\")}

    @property
    def folded_flags(self) -> frozenset[str]:
        if self._folded is None:
            self._folded = self._view.folded_flags(self.msg)
        return self._folded[0]

    @property
    def folded_keywords(self) -> frozenset[str]:
        if self._folded is None:
            self._folded = self._view.folded_flags(self.msg)
        return self._folded[1]

    @property
    def internaldate(self) -> float:
        return self._view.box.internaldate(self.msg)

    @property
    def savedate(self) -> float | None:
        return self._view.box.save_date(self.msg)

    @property
    def size(self) -> int:
        return self._view.box.message_vsize(self.msg)

    @property
    def modseq(self) -> int:
        return self._view.state.modseq(self.msg.uid) or 0

    def raw(self) -> bytes:
        return self._view.box.read_message(self.msg.uid)

    def remembered_text(self) -> str | bytes | None:
        """The folded text kept by an earlier search, or the scan form of a plain message
        (searchkeys._Message.text_contains). (A message expunged since is not asked for:
        `view.message` no longer gives it, see _message_matches.)"""
        if self._texts is None:
            return None
        return self._texts.get(self._view.box.path, self.msg.base, TEXT)

    def remember_text(self, text: str | bytes) -> None:
        if self._texts is not None:
            self._texts.put(self._view.box.path, self.msg.base, TEXT, text)

    def header_block(self) -> bytes:
        if self._headers is not None:
            return self._headers.block(self.msg.uid)
        return self._view.box.read_header(self.msg.uid)
