"""CONDSTORE and QRESYNC (RFC 7162): what they add to the other commands.

The modseqs come from the folder index (mailstore/folderindex.py) through the folder's shared
state; the view (mra/imap/selected.py) adds MODSEQ to the FETCHes it sends unasked, VANISHED
for EXPUNGE, and HIGHESTMODSEQ after a change. Here:

    SELECT/EXAMINE (CONDSTORE)         3.1.8: turns CONDSTORE on before the mailbox opens
    SELECT/EXAMINE (QRESYNC (v m [known-uids [(seqs uids)]]))
                                       3.2.5: after the usual answer, `VANISHED (EARLIER)` for
                                       the known UIDs expunged since m, and FETCH (UID FLAGS
                                       MODSEQ) for those changed since m (select.py calls
                                       `qresync_answer`)
    FETCH ... (CHANGEDSINCE m)         3.1.4.1: only messages with a modseq above m, MODSEQ
                                       added to the items (commands/fetch.py)
    UID FETCH ... (CHANGEDSINCE m VANISHED)
                                       3.2.6: `VANISHED (EARLIER)` first
    STORE ... (UNCHANGEDSINCE m)       3.1.3: commands/store.py
    SEARCH MODSEQ m                    3.1.5: searchkeys.ModSeq, `(MODSEQ n)` in the answer
    STATUS (HIGHESTMODSEQ)             3.1.6: commands/status.py

A CONDSTORE-enabling command (FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH
MODSEQ, STATUS HIGHESTMODSEQ, SELECT (CONDSTORE)) turns CONDSTORE on for the session; the first
time with a mailbox selected, the client is told HIGHESTMODSEQ (`enable`), as Dovecot does.

When the log of expunges does not reach back to a client's modseq (the index was rebuilt, or
its oldest entries dropped: `[index] expunge_log`), `VANISHED (EARLIER)` names every UID of the
range asked about that is not in the folder, below UIDNEXT (RFC 7162 3.2.10 allows UIDs the
client never knew), less those the client's sequence-match data shows it still agrees on
(3.2.5.2), as Dovecot's get_expunges_fallback().
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom
from mra.imap.commands.enable import CONDSTORE, condstore, qresync
from mra.imap.sequence import MAX_NUMBER, SequenceError, SequenceSet, contains, format_ranges
from mra.imap.values import Atom, ParenList, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession

MODSEQ_LIMIT = 2**63  # RFC 7162 7: mod-sequence-value is at most 2^63 - 1


def enable(s: ImapSession) -> bytes:
    """A CONDSTORE-enabling command: CONDSTORE on from now; with a mailbox selected, the
    first time, `* OK [HIGHESTMODSEQ n]` to send before the command's answer."""
    if condstore(s):
        return b""
    s.enabled |= {CONDSTORE}
    return s.view.enable_condstore() if s.view is not None else b""


def require_modseqs(view: SelectedView) -> None:
    """A command that needs modseqs on a folder without them (NOMODSEQ) answers NO."""
    if not view.modseqs:
        raise r.Refusal(r.MODSEQS_UNAVAILABLE)


def modseq_value(value: Value, what: str, zero: bool = True) -> int:
    """A mod-sequence-value (or -valzer when `zero`) argument: digits, below 2^63."""
    text = as_atom(value)
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ArgumentError(f"invalid {what}")
    number = int(text)
    if number >= MODSEQ_LIMIT or (number == 0 and not zero):
        raise ArgumentError(f"invalid {what}")
    return number


# -- SELECT (QRESYNC ...) ------------------------------------------------------------------------


@dataclass(frozen=True)
class QResync:
    """The QRESYNC parameter of SELECT/EXAMINE (RFC 7162 3.2.5)."""

    uidvalidity: int
    modseq: int
    known: list[range]  # the known UIDs, sorted merged ranges
    samples: list[tuple[int, int]]  # (sequence number, UID) pairs of the seq-match data


def select_params(s: ImapSession, value: Value) -> tuple[bool, QResync | None]:
    """SELECT's parameter list: (CONDSTORE asked, the QRESYNC parameter). BAD for anything
    else, as Dovecot's select_parse_options."""
    if not isinstance(value, ParenList):
        raise ArgumentError("SELECT parameters must be a list")
    items = list(value.items)
    want_condstore = False
    resync = None
    i = 0
    while i < len(items):
        name = as_atom(items[i]).upper()
        i += 1
        if name == "CONDSTORE":
            want_condstore = True
        elif name == "QRESYNC":
            if not qresync(s):
                raise ArgumentError("QRESYNC not enabled")
            param = items[i] if i < len(items) else None
            if not isinstance(param, ParenList):
                raise ArgumentError("QRESYNC parameters missing")
            resync = _qresync_param(param)
            i += 1
        else:
            raise ArgumentError(f"unknown SELECT parameter {name[:20]}")
    return want_condstore, resync


def _uid_set(value: Value, what: str) -> list[range]:
    """A sequence-set without `*` (known-uids, the seq-match sets) as sorted merged ranges."""
    try:
        sset = SequenceSet.parse(as_atom(value))
    except SequenceError as exc:
        raise ArgumentError(f"invalid {what}") from exc
    ranges = []
    for lo, hi in sset.ranges:
        if lo is None or hi is None or lo == 0 or hi == 0:
            raise ArgumentError(f"invalid {what}")
        ranges.append(range(min(lo, hi), max(lo, hi) + 1))
    return _merged(ranges)


def _merged(ranges: list[range]) -> list[range]:
    ranges.sort(key=lambda rng: rng.start)
    out: list[range] = []
    for rng in ranges:
        if out and rng.start <= out[-1].stop:
            if rng.stop > out[-1].stop:
                out[-1] = range(out[-1].start, rng.stop)
        else:
            out.append(rng)
    return out


def _qresync_param(value: ParenList) -> QResync:
    args = list(value.items)
    if len(args) < 2:
        raise ArgumentError("invalid QRESYNC parameters")
    text = as_atom(args[0])
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_NUMBER:
        raise ArgumentError("invalid QRESYNC UIDVALIDITY")
    uidvalidity = int(text)
    modseq = modseq_value(args[1], "QRESYNC modseq")
    rest = args[2:]
    known = [range(1, MAX_NUMBER + 1)]
    if rest and isinstance(rest[0], Atom):
        known = _uid_set(rest[0], "QRESYNC known-uids")
        rest = rest[1:]
    samples: list[tuple[int, int]] = []
    if rest and isinstance(rest[0], ParenList):
        samples = _samples(rest[0])
        rest = rest[1:]
    if rest:
        raise ArgumentError("invalid QRESYNC parameters")
    return QResync(uidvalidity, modseq, known, samples)


def _samples(value: ParenList) -> list[tuple[int, int]]:
    """The seq-match data `(known-sequence-set known-uid-set)` as (seq, UID) pairs: every
    UID of the set is matched with the sequence number in the same place, and the ends of
    each UID range are the samples (Dovecot's select_qresync_get_uids). The two sets must be
    as long as each other; they are never expanded (`1:4294967295` is two samples)."""
    if len(value.items) != 2:
        raise ArgumentError("invalid QRESYNC sequence-match data")
    seqs = _written_order(value.items[0], "QRESYNC known-sequence-set")
    uids = _written_order(value.items[1], "QRESYNC known-uid-set")
    if sum(len(x) for x in seqs) != sum(len(x) for x in uids):
        raise ArgumentError("invalid QRESYNC sets")
    samples = []
    seq_index = 0  # the position in `seqs` of the next UID
    for rng in uids:
        samples.append((_nth(seqs, seq_index), rng.start))
        if len(rng) > 1:
            samples.append((_nth(seqs, seq_index + len(rng) - 1), rng.stop - 1))
        seq_index += len(rng)
    return samples


def _written_order(value: Value, what: str) -> list[range]:
    """A set without `*`, its ranges in the order written (the seq-match sets pair by place)."""
    try:
        sset = SequenceSet.parse(as_atom(value))
    except SequenceError as exc:
        raise ArgumentError(f"invalid {what}") from exc
    out = []
    for lo, hi in sset.ranges:
        if lo is None or hi is None or lo == 0 or hi == 0:
            raise ArgumentError(f"invalid {what}")
        out.append(range(min(lo, hi), max(lo, hi) + 1))
    return out


def _nth(ranges: list[range], n: int) -> int:
    for rng in ranges:
        if n < len(rng):
            return rng[n]
        n -= len(rng)
    raise ArgumentError("invalid QRESYNC sets")


def qresync_answer(view: SelectedView, param: QResync) -> bytes:
    """What SELECT (QRESYNC ...) adds after the usual answer (RFC 7162 3.2.5), when the
    UIDVALIDITY is the folder's and it keeps modseqs; b"" otherwise."""
    if param.uidvalidity != view.box.uidvalidity or not view.modseqs:
        return b""
    out = [vanished_line(view, param.modseq, param.known, param.samples)]
    changed = view.state.changed_since(param.modseq) or []
    for uid in changed:
        seq = view.seq_of(uid)
        if seq is None or not contains(param.known, uid):
            continue
        items: list[tuple[bytes, bytes]] = [(b"UID", r.number(uid))]
        items.append((b"FLAGS", view.flag_list(uid)))
        modseq = view.modseq(uid)
        if modseq is not None:
            items.append((b"MODSEQ", b"(%d)" % modseq))
        out.append(r.fetch_response(seq, items))
    return b"".join(out)


def vanished_line(
    view: SelectedView,
    modseq: int,
    known: Sequence[range],
    samples: Sequence[tuple[int, int]] = (),
) -> bytes:
    """`* VANISHED (EARLIER) uids`: the UIDs of `known` expunged after `modseq`, or b"".
    A message the view still shows is never named (its expunge will come as VANISHED)."""
    uids = view.uids
    logged = view.state.vanished(modseq)
    top = view.box.next_uid - 1
    if logged is not None:
        found = [u for u in logged if u <= top and contains(known, u) and _absent(uids, u)]
        ranges = [range(u, u + 1) for u in found]
    else:
        ranges = _missing(known, uids, top)
        ranges = _drop_known(ranges, uids, samples)
    ranges = _merged(ranges)
    if not ranges:
        return b""
    return b"* VANISHED (EARLIER) " + format_ranges(ranges).encode("ascii") + b"\r\n"


def _absent(uids: list[int], uid: int) -> bool:
    i = bisect.bisect_left(uids, uid)
    return i >= len(uids) or uids[i] != uid


def _missing(known: Sequence[range], present: list[int], top: int) -> list[range]:
    """The UIDs of `known` up to `top` that are not in `present` (sorted), as ranges."""
    out: list[range] = []
    for rng in known:
        lo, hi = rng.start, min(rng.stop - 1, top)
        if lo > hi:
            continue
        i = bisect.bisect_left(present, lo)
        while lo <= hi:
            if i < len(present) and present[i] <= hi:
                if present[i] > lo:
                    out.append(range(lo, present[i]))
                lo = present[i] + 1
                i += 1
            else:
                out.append(range(lo, hi + 1))
                break
    return out


def _drop_known(
    ranges: list[range], uids: list[int], samples: Sequence[tuple[int, int]]
) -> list[range]:
    """Dovecot's expunges_drop_known: while the client's samples agree with the view (message
    `seq` is still UID `uid`), nothing up to that UID was expunged; drop it."""
    agreed = 0
    for seq, uid in samples:
        if seq > len(uids) or uids[seq - 1] != uid:
            break
        agreed = uid
    if not agreed:
        return ranges
    out = []
    for rng in ranges:
        if rng.stop - 1 <= agreed:
            continue
        out.append(range(max(rng.start, agreed + 1), rng.stop))
    return out


def uid_filter(value: Value) -> list[range]:
    """A UID FETCH's set as ranges of UIDs, `*` as the largest UID there can be (for the
    expunged UIDs of VANISHED, which the view no longer has)."""
    try:
        sset = SequenceSet.parse(as_atom(value))
    except SequenceError as exc:
        raise ArgumentError(str(exc)) from exc
    ranges = []
    for lo, hi in sset.ranges:
        a = MAX_NUMBER if lo is None else lo
        b = MAX_NUMBER if hi is None else hi
        a, b = min(a, b), max(a, b)
        if b:
            ranges.append(range(max(a, 1), b + 1))
    return _merged(ranges)
