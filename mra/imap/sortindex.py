"""The derived structures SORT and THREAD read, kept per folder state beside its records and
updated as messages come and go, as Dovecot keeps sort-string ids and a thread index in its
index files (index-sort-string.c, index-thread.c), so that a warm SORT or THREAD of 100,000
messages compares integers and does no per-message Python work it did before (issue #11).

`FolderKeys` holds, for one folder state (mra/imap/indexsource.py keeps one per state, for
every view of the folder in this worker):

- `records`: each known message's `SortFields` (a UID names one message for as long as the
  UIDVALIDITY stays, so its fields never change);
- per sort key (sorting.KEYS), made the first time the key is used: the key's value of each
  message, every known UID in the order of (value, UID), and, when a program needs them
  (REVERSE, or more than one key), dense ranks (equal values, equal ranks; integers compared
  in C). A new message is put in its place in each order (bisect: O(log n) comparisons and
  one move of the list), not sorted again; the ranks are made again from the order (one pass)
  only when next needed. UIDs expunged stay in the orders, which are filtered by the messages
  a command asks for anyway, until the records are dropped (indexsource: when the expunged
  outnumber the live ones);
- THREAD's step 1 (threads.Linked: the message-id -> node map and the parent links, and what
  steps 2 and 3 make of them) over the UIDs last threaded: a THREAD of the same messages plus
  newer ones (an APPEND, a delivery) links only the new ones; messages expunged are taken out
  when that leaves what step 1 without them makes (Linked.remove: a message that changed no
  link but its own); any other set (another search, an expunged message that shaped its
  thread) links them all again.

A message's key order is the order of its UID among equals, and a view's sequence numbers go
up with its UIDs, so "ties are broken by sequence number" (RFC 5256 3) holds.

Nothing here is an answer kept for a command: every SORT orders the messages its search
matched, every THREAD runs steps 2 to 5 (threads.py) over them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

from mra.imap import sorting, threads
from mra.imap.sortfields import SortFields

__all__ = ["INSERT_LIMIT", "KEYS_KEPT", "REMOVE_LIMIT", "FolderKeys"]

INSERT_LIMIT = 2000
"""New messages put into the orders one by one; more at once drop the orders, which are then
sorted again when next used (cheaper than that many moves of a 100,000-entry list)."""

KEYS_KEPT = 4
"""The default of `[index] sort_keys`: sort keys whose order a folder keeps (each about 72
octets a message, ranks 60 more once a REVERSE or a second key needed them), the ones used
last: clients sort by two or three."""

REMOVE_LIMIT = 1000
"""Messages taken out of THREAD's step 1 at once (threads.Linked.remove, each a walk along
its siblings); more expunged since the last THREAD: step 1 is taken again over the others."""


class _Key:
    """One sort key (`get`, sorting.KEYS's) over the folder's records (all of them, as the
    FolderKeys keeps them): the UIDs in (value, UID) order, the place of each in UID order,
    and dense ranks."""

    __slots__ = ("get", "order", "positions", "ranks", "records", "top")

    def __init__(self, records: dict[int, SortFields], get: Callable[[SortFields], int | str]):
        self.records, self.get = records, get
        by_uid = sorted(records)
        order = by_uid[:]
        order.sort(key=lambda u: get(records[u]))  # stable: equal values stay in UID order
        # New int objects, made in this order: an answer reads them one after the other in
        # memory instead of jumping across the records' (twice as fast for 100,000 here).
        self.order = [u + 0 for u in order]
        position = dict(zip(by_uid, range(1, len(by_uid) + 1), strict=True))
        self.positions: list[int] | None = [position[u] + 0 for u in order]
        self.ranks: dict[int, int] | None = None
        self.top = by_uid[-1] if by_uid else 0

    def insert(self, uid: int) -> None:
        """A new record's UID, put in its place."""
        records, get, order = self.records, self.get, self.order
        newest = uid > self.top
        self.top = max(self.top, uid)
        where = bisect.bisect_right(
            order, (get(records[uid]), uid), key=lambda u: (get(records[u]), u)
        )
        order.insert(where, uid)
        if newest and self.positions is not None:
            self.positions.insert(where, len(order))  # the others keep their places
        else:
            self.positions = None  # made again when next needed
        self.ranks = None

    def remove(self, gone: set[int]) -> None:
        """Messages expunged: out of the order, the places of the others one lower for each
        one taken out before them (new int objects, in order again)."""
        order, positions = self.order, self.positions
        if positions is not None:
            lost = sorted(p for u, p in zip(order, positions, strict=True) if u in gone)
            if len(lost) == 1:
                at = lost[0]
                self.positions = [
                    p - (p > at) for u, p in zip(order, positions, strict=True) if u not in gone
                ]
            else:
                self.positions = [
                    p - bisect.bisect_left(lost, p)
                    for u, p in zip(order, positions, strict=True)
                    if u not in gone
                ]
        self.order = [u for u in order if u not in gone]
        self.ranks = None

    def numbered(self) -> tuple[list[int], list[int]]:
        """The order and each UID's place among all the UIDs (from 1)."""
        if self.positions is None:
            by_uid = sorted(self.order)
            position = dict(zip(by_uid, range(1, len(by_uid) + 1), strict=True))
            self.positions = [position[u] + 0 for u in self.order]
        return self.order, self.positions

    def dense_ranks(self) -> dict[int, int]:
        ranks = self.ranks
        if ranks is None:
            records, get = self.records, self.get
            ranks = {}
            rank = 0
            previous: object = None
            for uid in self.order:
                value = get(records[uid])
                if value != previous:
                    rank += 1
                    previous = value
                ranks[uid] = rank
            self.ranks = ranks
        return ranks


class FolderKeys:
    """The records of one folder state's messages and what is derived from them (see the
    module note). Thread-safe: the commands run in the thread pool, several sessions at once."""

    def __init__(self, uidvalidity: int, keys_kept: int = KEYS_KEPT) -> None:
        self.uidvalidity = uidvalidity
        self.keys_kept = keys_kept  # `[index] sort_keys`
        self.records: dict[int, SortFields] = {}
        self._keys: dict[str, _Key] = {}
        self._linked: threads.Linked | None = None
        self._linked_uids: list[int] = []
        self.lock = threading.RLock()

    def add(self, records: Sequence[SortFields]) -> None:
        """New messages' records (or a record again, with its preview: same keys)."""
        with self.lock:
            known = self.records
            fresh = [f for f in records if f.uid not in known]
            for f in records:
                known[f.uid] = f
            if not fresh:
                return
            if len(fresh) > INSERT_LIMIT:
                self._keys.clear()
                return
            for key in self._keys.values():
                for f in fresh:
                    key.insert(f.uid)

    def forget(self, uids: Sequence[int]) -> None:
        """Messages expunged: their records go, and they leave every order (a SORT of every
        message then needs no filtering)."""
        with self.lock:
            records = self.records
            gone = {u for u in uids if u in records}
            if not gone:
                return
            for uid in gone:
                del records[uid]
            if len(gone) > INSERT_LIMIT:
                self._keys.clear()
                return
            for key in self._keys.values():
                key.remove(gone)

    def _key(self, name: str) -> _Key:
        """The key, made if needed; the one used longest ago goes when more than `keys_kept`
        would be kept (with none kept, the key is made for this sort alone)."""
        keys = self._keys
        key = keys.pop(name, None)
        if key is None:
            while keys and len(keys) >= self.keys_kept:
                del keys[next(iter(keys))]
            key = _Key(self.records, sorting.KEYS[name])
        if self.keys_kept > 0:
            keys[name] = key  # the last used last
        return key

    def sort(
        self, uids: Sequence[int], program: Sequence[tuple[str, bool]]
    ) -> tuple[list[int], list[int] | None]:
        """The UIDs (in sequence order; those without a record are left out) in the program's
        order, what sorting.sort_uids gives for their records; and, when it has them at hand,
        the place of each in `uids` (from 1), else None."""
        with self.lock:
            records = self.records
            if len(program) == 1:
                name, reverse = program[0]
                key = self._key(name)
                if (
                    not reverse
                    and len(uids) == len(records)
                    and all(map(records.__contains__, uids))
                ):
                    order, positions = key.numbered()  # all of them: nothing to filter
                    return list(order), list(positions)
                wanted = set(uids)
                out = [u for u in key.order if u in wanted]
                if reverse:  # stable: equal values keep the UID order
                    out.sort(key=key.dense_ranks().__getitem__, reverse=True)
                return out, None
            out = [u for u in uids if u in records]
            for name, reverse in reversed(program):
                out.sort(key=self._key(name).dense_ranks().__getitem__, reverse=reverse)
            return out, None

    def thread(self, uids: Sequence[int], algorithm: str) -> threads.Thread:
        """THREAD `algorithm` of these UIDs (in UID order; those without a record are left
        out), step 1 of REFERENCES and REFS continued from the last one when it can be."""
        with self.lock:
            records = self.records
            fields = [records[u] for u in uids if u in records]
            if algorithm == "ORDEREDSUBJECT":
                return threads.orderedsubject(fields)
            linked = self._linked
            if linked is None or not self._continued(linked, fields):
                linked = self._linked = threads.Linked()
                linked.add(fields)
                self._linked_uids = [f.uid for f in fields]
            return threads.finish(linked, refs=algorithm == "REFS")

    def _continued(self, linked: threads.Linked, fields: list[SortFields]) -> bool:
        """Step 1 brought from the UIDs it was last taken over to these: messages newer than
        all of those linked, others taken out when Linked.remove can (an EXPUNGE); False
        when it cannot be (another search, an older message)."""
        done = self._linked_uids
        asked = [f.uid for f in fields]
        old = bisect.bisect_right(asked, done[-1]) if done else 0
        if asked[:old] != done:
            kept = set(asked[:old])
            gone = [u for u in done if u not in kept]
            if (
                len(done) - len(gone) != old  # an older message not linked before
                or len(gone) > REMOVE_LIMIT
                or not linked.remove(gone)
            ):
                return False
            del done[:]
            done.extend(asked[:old])
        linked.add(fields[old:])
        done.extend(asked[old:])
        return True
