"""The folder index's FieldSource: what SORT, THREAD and PREVIEW need of each message, computed
once per message and kept in the folder index (issue #11).

The contract is mra/imap/sortfields.py's (the `sort` side's): a `FieldSource` answers
`fields(uids)` with one `SortFields` a message, in the order asked, leaving out messages that
are gone, and takes back the previews FETCH PREVIEW made (`remember_previews`). The parsing
source (sortsource.py) reads every message's header at every command; this one computes the
fields once with the very same function (`sortfields.fields_of`) from the header fields the
index keeps (searchindex.py: `fields_of` of that block is `fields_of` of the file's header),
and keeps the result in the index (`msg.sortf`), with the INTERNALDATE and size, so a later
SORT or THREAD of the folder, in any session, worker or after a restart, reads neither a file
nor a directory entry. The previews are kept the same way once FETCH PREVIEW made them.

Records once decoded are also kept in memory beside the folder's shared state, for every view
of the folder in this worker, with what SORT and THREAD derive from them (sortindex.FolderKeys:
the order of each sort key, THREAD's step 1): a UID names one message for as long as the
folder's UIDVALIDITY stays, so its fields never change (only a preview is added), and a second
SORT of 100,000 messages decodes no JSON (1.3 s) and sorts nothing again. The memory goes with
the state, which `[index] keep_folders` and `keep_messages` bound; records of messages
expunged since are dropped once they are as many as the live ones.

The record is the fields in the dataclass's order as JSON (`_Codec`), after a number naming
the dataclass's shape (its field names and types): a record of another shape, a value of the
wrong type, or anything that is not such a list (the index is an input, SECURITY.md 4) is not
used, and the fields are computed again and the record replaced. The contract's dataclass and
function are taken as they are, never copied: `source_for` finds them in sortfields.py.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import weakref
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mailstore.errors import NotFound
from mailstore.folderindex import SORTF_MAX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.folderstate import FolderState
    from mra.imap.selected import SelectedView
    from mra.imap.sortindex import FolderKeys

__all__ = ["IndexedFieldSource", "source_for"]

CHUNK = 2000  # messages whose records are read (and written) at once
PREVIEW_BATCH = 200  # previews gathered before they are written

# What `fields_of` is: (uid, arrival, size, header block or message, preview=, limits=).
Make = Callable[..., Any]


def _is_int(v: object) -> bool:
    return type(v) is int


def _is_float(v: object) -> bool:
    return type(v) in (int, float)


def _is_str(v: object) -> bool:
    return type(v) is str


def _is_bool(v: object) -> bool:
    return type(v) is bool


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


def _strings(v: object) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


# The field types the contract uses, as its annotations spell them (from __future__ import
# annotations: strings), and how a value read back from JSON is checked.
_CHECKS: dict[str, Callable[[object], bool]] = {
    "int": _is_int,
    "float": _is_float,
    "str": _is_str,
    "bool": _is_bool,
    "float | None": _optional(_is_float),
    "str | None": _optional(_is_str),
    "tuple[str, ...]": _strings,
}


class _Codec:
    """A record of the contract's dataclass `kind`, less its `uid` (the row's key)."""

    def __init__(self, kind: type[Any]) -> None:
        fields = [f for f in dataclasses.fields(kind) if f.name != "uid"]
        self.kind = kind
        self.names = [f.name for f in fields]
        self.tuples = {f.name for f in fields if str(f.type) == "tuple[str, ...]"}
        self.checks = [_CHECKS[str(f.type)] for f in fields]  # KeyError: a type not known here
        shape = ";".join(f"{f.name}:{f.type}" for f in fields)
        self.shape = zlib.crc32(shape.encode())

    def encode(self, record: Any) -> bytes:
        values = [getattr(record, name) for name in self.names]
        return json.dumps([self.shape, *values], ensure_ascii=False, separators=(",", ":")).encode()

    def decode(self, uid: int, data: bytes) -> Any | None:
        try:
            values = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if type(values) is not list or len(values) != len(self.names) + 1:
            return None
        if values[0] != self.shape:
            return None
        kw: dict[str, object] = {}
        for name, check, value in zip(self.names, self.checks, values[1:], strict=True):
            if not check(value):
                return None
            kw[name] = tuple(value) if name in self.tuples else value
        return self.kind(uid=uid, **kw)


_keys_lock = threading.Lock()


def _keys_for(state: FolderState, uidvalidity: int, live: int, keys_kept: int) -> FolderKeys:
    """The decoded records of `state`'s folder and what SORT and THREAD derive from them
    (sortindex.py), kept with the state (`derived`): new when its UIDVALIDITY changed,
    dropped when the expunged outnumber the `live` messages (they are decoded again)."""
    from mra.imap.sortindex import FolderKeys  # here: it imports the MIME code (see _contract)

    with _keys_lock:
        keys = state.derived
        if (
            not isinstance(keys, FolderKeys)
            or keys.uidvalidity != uidvalidity
            or len(keys.records) > 2 * live
        ):
            keys = state.derived = FolderKeys(uidvalidity, keys_kept)
        return keys


class IndexedFieldSource:
    """The fields of a view's messages from the folder index (see the module note)."""

    def __init__(self, view: SelectedView, kind: type[Any], make: Make) -> None:
        self._view = weakref.ref(view)
        self._codec = _Codec(kind)
        self._make = make
        # FETCH PREVIEW hands previews over one message at a time: written a chunk at a time.
        self._previews: dict[int, str] = {}
        self._previews_lock = threading.Lock()

    def fields(self, uids: Sequence[int]) -> list[Any]:
        view = self._view()
        if view is None:
            return []
        keys = self._known(view, uids)
        get, gone = keys.records.get, view.gone  # get: another thread may forget one meanwhile
        return [r for u in uids if u not in gone and (r := get(u)) is not None]

    def keys(self, uids: Sequence[int]) -> FolderKeys | None:
        """The folder's records and keys (sortindex.py), with a record for each of these
        messages that is still there; None when the view is gone."""
        view = self._view()
        return None if view is None else self._known(view, uids, tidy=True)

    def _known(self, view: SelectedView, uids: Sequence[int], tidy: bool = False) -> FolderKeys:
        """The folder's keys after the records missing for `uids` were read or computed: a
        warm folder's SORT looks up every UID once and reads nothing. `tidy`: records of
        messages expunged are forgotten too (a pass over the folder: for SORT and THREAD,
        which make one anyway, not for FETCH PREVIEW's one message at a time)."""
        self._keep_previews(view)
        keys = _keys_for(view.state, view.box.uidvalidity, len(view), view.sort_keys)
        records = keys.records
        missing = [u for u in uids if u not in records]
        if missing:
            keys.add(self._compute(view, missing))
        if tidy and len(records) > len(view.uids) and view.uids:
            # Records this view has no message for: below its newest UID, expunged (UIDs only
            # grow); above, messages another view of the folder knows already.
            live, newest = set(view.uids), view.uids[-1]
            keys.forget([u for u in list(records) if u < newest and u not in live])
        return keys

    def _compute(self, view: SelectedView, uids: list[int]) -> list[Any]:
        """The records of these messages: the index's where it has a good one, else computed
        and written to it; messages gone are left out."""
        from mra.imap.searching import IndexedHeaders

        box, state, codec = view.box, view.state, self._codec
        headers = IndexedHeaders(view, uids)
        out: list[Any] = []
        with box.reading():
            for i in range(0, len(uids), CHUNK):
                chunk = uids[i : i + CHUNK]
                kept = state.sort_fields(chunk)
                fresh: dict[int, bytes] = {}
                for uid in chunk:
                    msg = view.message(uid)
                    if msg is None:
                        continue
                    data = kept.get(uid)
                    record = None if data is None else codec.decode(uid, data)
                    if record is None:
                        try:
                            header = headers.block(uid)
                            arrival = box.internaldate(msg)
                            size = msg.vsize if msg.vsize is not None else box.message_vsize(msg)
                        except NotFound:
                            continue  # expunged by another process while we read
                        record = self._make(uid, arrival, size, header, limits=view.mime_limits)
                        data = codec.encode(record)
                        if len(data) <= SORTF_MAX:
                            fresh[uid] = data
                    out.append(record)
                state.keep_sort_fields(fresh)
        headers.keep()
        return out

    def remember_previews(self, previews: Mapping[int, str]) -> None:
        """Keep FETCH PREVIEW's texts in the messages' records (made first where missing):
        gathered, and written a chunk at a time or before the next `fields`."""
        with self._previews_lock:
            self._previews.update(previews)
            full = len(self._previews) >= PREVIEW_BATCH
        view = self._view()
        if full and view is not None:
            self._keep_previews(view)

    def _keep_previews(self, view: SelectedView) -> None:
        with self._previews_lock:
            previews, self._previews = self._previews, {}
        if not previews:
            return
        fresh = {}
        added = []
        for record in self.fields(sorted(previews)):
            text = previews.get(record.uid)
            if text is not None:
                with_preview = dataclasses.replace(record, preview=text)
                fresh[record.uid] = self._codec.encode(with_preview)
                added.append(with_preview)
        _keys_for(view.state, view.box.uidvalidity, len(view), view.sort_keys).add(added)
        view.state.keep_sort_fields(fresh)


_lock = threading.Lock()


def _contract() -> tuple[type[Any], Make]:
    """sortfields.py's SortFields and fields_of (imported here: sortfields imports the MIME
    code, which a session that never sorts need not load)."""
    from mra.imap import sortfields

    return sortfields.SortFields, sortfields.fields_of


def source_for(view: SelectedView, contract: tuple[type[Any], Make] | None = None) -> Any | None:
    """The view's index-backed field source (one per view); None when the folder has no index
    (NOMODSEQ): the caller then parses the messages. `contract`: (the record's dataclass, the
    function that computes it), sortfields.py's unless given."""
    if view.state.highest_modseq is None:
        return None
    contract = contract or _contract()
    with _lock:
        source = view.index_fields
        if not isinstance(source, IndexedFieldSource):
            source = view.index_fields = IndexedFieldSource(view, *contract)
        return source
