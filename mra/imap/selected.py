"""One session's view of its selected mailbox: sequence numbers and the updates it owes.

Sequence numbers are this session's alone: message n is `uids[n - 1]`. The store is the truth
and changes under us (other sessions, other processes, mda, Dovecot); each `sync()` of the
store gives a diff, which this view turns into the untagged responses RFC 3501 7.4 asks for:
`* n EXISTS` for new mail, `* n FETCH (FLAGS ...)` for flags changed elsewhere, and
`* n EXPUNGE` for messages gone. EXPUNGE renumbers, so it is held back while the client may be
relying on sequence numbers (RFC 3501 7.4.1: never during FETCH, STORE or SEARCH): until then
the message keeps its number, and reading it answers NO [EXPUNGEISSUED] (RFC 5530).

`\\Recent` (RFC 3501 2.3.2) is per session here as in Dovecot: a read-write SELECT claims the
messages still in new/ by moving them to cur/; the rename succeeds for one session only, and
only that session sees them as recent. A message this session APPENDs or COPYs into its own
mailbox with flags goes straight to cur/: it is recent for this session (`arriving`). EXAMINE
shows what is in new/ as recent and moves nothing (RFC 3501 6.3.2: EXAMINE MUST NOT cause
messages to lose \\Recent).

Keywords are announced before they are shown (RFC 3501 7.2.6): SELECT's FLAGS names the
folder's keywords, and a keyword that a message gains later (a STORE here or elsewhere, a COPY,
an APPEND, a delivery with Sieve flags) is announced with an untagged FLAGS and OK
[PERMANENTFLAGS] before the first FETCH that shows it. Every flag text is made on a cache miss
(`flag_text`), which is where a keyword not yet announced is noticed; the callers ask
`announcement()` before they write what they rendered.

The folder's state is shared by the sessions of the process (mailstore/folderstate.py): the
view holds a tracker in its change log, and the folder's UID list until it differs from it (a
view copies it to change it, and takes the shared one back once they agree again), so a
hundred views of one big folder do not hold a hundred lists. Modseqs (RFC 7162): with
CONDSTORE, every FETCH this view sends unasked carries MODSEQ (and UID with QRESYNC, as
Dovecot's imap-sync.c); with QRESYNC, expunges are reported as one VANISHED, and the view tells
the client its new HIGHESTMODSEQ after a change, never one above an expunge it is holding back
(RFC 7162 3.2: `told_highest` stays at the value of the last moment nothing was held back).
"""

from __future__ import annotations

import bisect
import functools

from mailstore import folderstate
from mailstore.errors import MailError
from mra import log
from mra.imap import indexsource, mime
from mra.imap import response as r
from mra.imap.arguments import as_sequence_set
from mra.imap.sequence import SequenceSet, format_set
from mra.imap.values import Atom, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import Mailbox, Message, SyncResult

Folded = tuple[frozenset[str], frozenset[str]]
SYSTEM_FLAGS = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
MAX_KEYWORDS = 26
NOTHING_SAVED = SequenceSet(())  # immutable: one for every view

# What a view holds while it is empty: one shared set instead of a 216-octet one per view and
# per attribute (issue #16: the memory of 10,000 idling connections; `recent`, `gone` and
# `_arriving` are empty in nearly every one of them). A view replaces it with a set of its own
# on the first change (`_recent`, `_gone`, `_arriving_set`).
_NO_UIDS: frozenset[int] = frozenset()
_NO_NAMES: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=1024)
def _watch_paths(path: str) -> tuple[str, ...]:
    """One tuple per folder for all the sessions idling in it (two strings of about 100 octets
    each per session otherwise)."""
    return (f"{path}/new", f"{path}/cur")


class SelectedView:
    # Slots: a view's 30 attributes in a __dict__ were 1.6 KB per idling session (issue #16).
    # `__weakref__`: indexsource and sortsource key their caches by view.
    __slots__ = (
        "__weakref__",
        "_arriving",
        "_fetch_highest",
        "_flag_text",
        "_folded",
        "_ghosts",
        "_owned",
        "_pending_highest",
        "_unannounced",
        "announced",
        "box",
        "claimed_highest",
        "condstore",
        "gone",
        "highest",
        "index_fields",
        "mime_limits",
        "parsed_fields",
        "qresync",
        "readonly",
        "recent",
        "rev2",
        "saved",
        "sort_keys",
        "state",
        "told_highest",
        "tracker",
        "uids",
    )

    def __init__(
        self,
        box: Mailbox,
        readonly: bool,
        mime_limits: mime.Limits = mime.DEFAULT_LIMITS,
        rev2: bool = False,
        condstore: bool = False,
        qresync: bool = False,
        sort_keys: int = 4,
    ) -> None:
        self.box = box
        self.readonly = readonly
        self.mime_limits = mime_limits  # what FETCH and SEARCH may parse of one message
        self.sort_keys = sort_keys  # `[index] sort_keys`: orders kept for SORT (sortindex.py)
        self.rev2 = rev2
        """IMAP4rev2 (RFC 9051 Appendix E 12, 21): no \\Recent and no RECENT (new mail is
        still moved to cur/, as Dovecot does), and every unsolicited FETCH names the UID."""
        self.condstore = condstore or qresync  # RFC 7162 3.1: MODSEQ in every FETCH sent unasked
        self.qresync = qresync  # RFC 7162 3.2: VANISHED for EXPUNGE, UID in FETCH sent unasked
        self.state = folderstate.of(box)
        self.tracker, self.uids = self.state.open_view()  # `uids` is shared: see _own
        self._owned = False
        self.highest = self.tracker.highest  # HIGHESTMODSEQ as of the last take
        self.told_highest = self.highest  # ... as the client may take it (see the note)
        self._fetch_highest = 0  # the highest MODSEQ sent in a FETCH since the last take
        self.claimed_highest: int | None = None  # see updates(claim=True)
        self._pending_highest: int | None = None
        # The shared empty set until the first change (see _NO_UIDS): changed through
        # `_recent()`, `_gone()` and `_arriving_set()`, which make the view's own.
        self.recent: frozenset[int] | set[int] = _NO_UIDS
        self.gone: frozenset[int] | set[int] = _NO_UIDS  # expunged in the store, not reported
        self._arriving: frozenset[int] | set[int] = _NO_UIDS  # own APPEND/COPY into this box
        # Of `gone`: their last state, for RFC 2180 4.1. This and the two caches of flag texts
        # below are made on first use: three empty dicts were 192 octets per idling session.
        self._ghosts: dict[int, Message] | None = None
        self.announced: frozenset[str] = frozenset(box.known_keywords()) or _NO_NAMES
        self._unannounced = False  # a flag text showed a keyword not in `announced`
        self._flag_text: dict[tuple[tuple[str, ...], bool], bytes] | None = None  # flag_list
        self._folded: dict[tuple[tuple[str, ...], bool], Folded] | None = None  # folded_flags
        self.saved = NOTHING_SAVED  # SEARCHRES `$`: UIDs (commands/search.py)
        # Where SORT, THREAD and FETCH PREVIEW get the messages' fields, made on first use:
        # from the folder index (indexsource.source_for), or parsed (sortsource.source_for).
        self.index_fields: object = None
        self.parsed_fields: object = None
        last = self.uids[-1] if self.uids else 0
        self._claim_recent([u for u in box.recent_uids() if u <= last])

    def _recent(self) -> set[int]:
        if not isinstance(self.recent, set):
            self.recent = set()
        return self.recent

    def _gone(self) -> set[int]:
        if not isinstance(self.gone, set):
            self.gone = set()
        return self.gone

    def _arriving_set(self) -> set[int]:
        if not isinstance(self._arriving, set):
            self._arriving = set()
        return self._arriving

    def watch_paths(self) -> tuple[str, ...]:
        """What IDLE watches (the adapter's inotify watches): new/ and cur/."""
        return _watch_paths(self.box.path)

    @property
    def name(self) -> str:
        return self.box.name

    @property
    def field_source(self) -> object | None:
        """SORT, THREAD and PREVIEW's fields kept in the folder index (indexsource.py); None
        without an index: sortsource.source_for then parses the messages."""
        return indexsource.source_for(self)

    def _claim_recent(self, uids: list[int]) -> None:
        """Never raises (see `updates`): a message that vanished again meanwhile is simply
        not claimed, and a rename that fails leaves the message to whoever comes next."""
        new = [u for u in uids if (m := self.message(u)) is not None and m.recent]
        claimed: list[int] = []
        if self._arriving:
            claimed += [u for u in uids if u in self._arriving]
            self._arriving_set().difference_update(uids)
        if new:
            if self.readonly:
                claimed += new
            else:
                try:
                    claimed += self.box.mark_seen_by_reader(new)
                except MailError as exc:
                    log.warn("recent-claim-failed", mailbox=self.name, error=exc.message)
        if claimed and not self.rev2:
            self._recent().update(claimed)

    def arriving(self, uids: list[int]) -> None:
        """This session just APPENDed or COPYed these into its own mailbox, with flags: they
        went straight to cur/, where no other session can claim them. (Those without flags
        went to new/: the rename of whoever syncs first decides, as for a delivery.)"""
        if not self.readonly:
            self._arriving_set().update(uids)

    def resolve(self, value: Value, uid: bool) -> list[tuple[int, int]]:
        """(seq, uid) pairs of a command's sequence set, of sequence numbers or of UIDs; `$`
        is the saved search result (RFC 5182), UIDs in either kind of command."""
        uids = self.uids
        return [(i, uids[i - 1]) for rng in self.ranges(value, uid) for i in rng]

    def ranges(self, value: Value, uid: bool) -> list[range]:
        """`resolve` as sorted ranges of sequence numbers (nothing expanded)."""
        uids = self.uids
        if isinstance(value, Atom) and value.value == "$":
            return self.saved.resolve_uids(uids)
        sset = as_sequence_set(value)
        return sset.resolve_uids(uids) if uid else sset.resolve_seqs(len(uids))

    def __len__(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def message(self, uid: int) -> Message | None:
        """The store's message, or None when it was expunged (reported or not)."""
        if uid in self.gone:
            return None
        try:
            return self.box.get(uid)
        except Exception:
            return None

    def ghost(self, uid: int) -> Message | None:
        """The last state of a message expunged elsewhere that the client has not been told
        of yet (None for any other)."""
        ghosts = self._ghosts
        return ghosts.get(uid) if ghosts is not None and uid in self.gone else None

    def flags_of(self, uid: int) -> list[str]:
        msg = self.message(uid) or self.ghost(uid)
        if msg is None:
            return []
        flags = self.box.all_flags(msg)
        if uid in self.recent:
            flags.append("\\Recent")
        return flags

    def flag_list(self, uid: int) -> bytes:
        """`(\\Seen $Label1)` of a message, as FETCH FLAGS sends it; the text is made once per
        combination of flags, not once per message."""
        msg = self.message(uid)
        return b"()" if msg is None else self.flag_text(msg)

    def flag_text(self, msg: Message) -> bytes:
        """flag_list of a message at hand."""
        key = (self.box.flag_names(msg.flag_key), msg.uid in self.recent)
        cache = self._flag_text
        if cache is None:
            cache = self._flag_text = {}
        text = cache.get(key)
        if text is None:
            if len(cache) > 4096:
                cache.clear()
            flags = self.flags_of(msg.uid)
            if any(f not in self.announced for f in flags if not f.startswith("\\")):
                self._unannounced = True
            text = cache[key] = r.flag_list(flags)
        return text

    def flags_lines(self) -> bytes:
        """`* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for the folder's keywords now."""
        keywords = self.box.known_keywords()
        if not self.announced.issuperset(keywords):
            self.announced = self.announced.union(keywords)
        self._unannounced = False
        flags = SYSTEM_FLAGS + keywords
        if self.readonly:
            return r.flags_response(flags) + r.say(
                None, r.READ_ONLY_FLAGS, r.Code.permanentflags([])
            )
        # Past Dovecot's 26 keyword letters (a-z) no new keyword fits: no `\\*` then.
        permanent = [*flags, "\\*"] if len(keywords) < MAX_KEYWORDS else flags
        return r.flags_response(flags) + r.say(
            None, r.FLAGS_PERMITTED, r.Code.permanentflags(permanent)
        )

    @property
    def unannounced(self) -> bool:
        """A flag text made since the last announcement showed a new keyword."""
        return self._unannounced

    def announcement(self) -> bytes:
        """The FLAGS lines to send before what was just rendered, if it showed a keyword the
        client has not been told of, or the folder has keywords it has not been told of."""
        try:
            if self._unannounced or not self.announced.issuperset(self.box.known_keywords()):
                return self.flags_lines()
        except MailError as exc:  # the keyword file could not be read: next time
            log.warn("keywords-unreadable", mailbox=self.name, error=exc.message)
        return b""

    def folded_flags(self, msg: Message) -> Folded:
        """(system flags, keywords) of a message in lower case, as SEARCH compares them; the
        sets are made once per combination of flags, not once per message."""
        key = (self.box.flag_names(msg.flag_key), msg.uid in self.recent)
        cache = self._folded
        if cache is None:
            cache = self._folded = {}
        folded = cache.get(key)
        if folded is None:
            if len(cache) > 4096:
                cache.clear()
            names, recent = key
            system = {f.lower() for f in names if f.startswith("\\")}
            if recent:
                system.add("\\recent")
            keywords = frozenset(f.lower() for f in names if not f.startswith("\\"))
            folded = cache[key] = (frozenset(system), keywords)
        return folded

    def first_unseen(self) -> int | None:
        """SELECT's UNSEEN: the folder's first unseen message (kept by the shared state),
        when this view has it; else found the long way."""
        uid = self.state.first_unseen()
        seq = None if uid is None else self.seq_of(uid)
        if seq is not None or uid is None:
            return seq
        for i, u in enumerate(self.uids, 1):
            msg = self.message(u)
            if msg is not None and not msg.seen:
                return i
        return None

    # -- modseqs (RFC 7162) ----------------------------------------------------------------

    @property
    def modseqs(self) -> bool:
        """The folder keeps modseqs (its index is open): else NOMODSEQ."""
        return self.state.highest_modseq is not None

    def modseq(self, uid: int) -> int | None:
        """The message's modseq for a FETCH (remembered: see `_note_highest`)."""
        modseq = self.state.modseq(uid)
        if modseq is not None and modseq > self._fetch_highest:
            self._fetch_highest = modseq
        return modseq

    def modseq_item(self, uid: int) -> list[tuple[bytes, bytes]]:
        """`MODSEQ (n)` as a FETCH item, when the view uses modseqs and the message has one."""
        if not self.condstore:
            return []
        modseq = self.modseq(uid)
        return [] if modseq is None else [(b"MODSEQ", b"(%d)" % modseq)]

    def enable_condstore(self) -> bytes:
        """A CONDSTORE-enabling command (RFC 7162 3.1) in this view: from now on MODSEQ goes
        with every FETCH sent unasked; the first time, the client is told HIGHESTMODSEQ (as
        Dovecot's imap_client_enable_condstore)."""
        if self.condstore:
            return b""
        self.condstore = True
        if self.highest:
            self.told_highest = self.highest
            return r.say(None, r.HIGHEST_MODSEQ, r.Code.highestmodseq(self.highest))
        return b""

    def _note_highest(self, highest: int) -> None:
        """With QRESYNC, tell the client a HIGHESTMODSEQ it did not learn from the MODSEQs
        of the FETCHes just sent; while expunges are held back, never one above them
        (RFC 7162 3.2; Dovecot's imap_sync_send_highestmodseq)."""
        self.highest = highest
        send = None
        if self.qresync and highest:
            if self.gone:
                if self._fetch_highest > self.told_highest:
                    send = self.told_highest
            elif highest > self.told_highest and highest > self._fetch_highest:
                send = highest
            if not self.gone:
                self.told_highest = highest
        self._fetch_highest = 0
        self._pending_highest = send

    def updates(self, expunges: bool, claim: bool = False) -> list[bytes]:
        """Sync with the store; the untagged responses for what changed.

        `expunges`: whether EXPUNGE responses may be sent now (not during FETCH, STORE, SEARCH).
        `claim`: a HIGHESTMODSEQ to tell goes to `claimed_highest`, for the tagged OK of the
        command (as Dovecot puts it there), instead of an untagged OK.
        Once `take_changes` has handed over the changes, nothing here may raise: what the view
        records and what it answers must stay one (a lost EXISTS would leave the client a
        message short, and every number after it wrong).
        """
        result = self.state.take(self.tracker, self.uids)
        out: list[bytes] = []
        if result.uidvalidity_changed:
            return [r.say(None, r.MAILBOX_REPLACED)]
        if result.changed or result.added:
            announce = self.announcement()
            if announce:
                out.append(announce)
        for uid in result.removed:
            if self.seq_of(uid) is not None:
                self._gone().add(uid)
                ghost = result.ghosts.get(uid)
                if ghost is not None:
                    if self._ghosts is None:
                        self._ghosts = {}
                    self._ghosts[uid] = ghost
            elif uid in self.recent:
                self._recent().discard(uid)
        if expunges and self.gone:
            out += self.report_expunges()
        added = [u for u in result.added if not self.uids or u > self.uids[-1]]
        if added:
            self._extend(added, result)
            self._claim_recent(added)
            out.append(r.exists(len(self.uids)))
            if not self.rev2:
                out.append(r.recent(len(self.recent)))
        with_uid = self.rev2 or self.qresync
        for uid in result.changed:
            seq = self.seq_of(uid)
            if seq is not None and uid not in self.gone:
                fields = [(b"UID", r.number(uid))] if with_uid else []
                fields += self.modseq_item(uid)  # before FLAGS is read: never newer than them
                fields.append((b"FLAGS", self.flag_list(uid)))
                out.append(r.fetch_response(seq, fields))
        if self._owned and not self.gone and result.uids is not None:
            shared = result.uids
            if shared == self.uids:
                self.uids = shared  # one list again for every view that agrees
                self._owned = False
        self._note_highest(result.highest)
        pending, self._pending_highest = self._pending_highest, None
        if pending is not None:
            if claim:
                self.claimed_highest = pending
            else:
                out.append(r.say(None, r.HIGHEST_MODSEQ, r.Code.highestmodseq(pending)))
        return out

    def _extend(self, added: list[int], result: SyncResult) -> None:
        """New mail at the end of the view. A view that holds the folder's list and has lost
        nothing since holds, after this change, what the folder's list is at the end of it
        (`result.uids`, folderstate.py): it takes that list, not a copy of its own with the
        new UIDs, so that 10,000 idling views of a big folder copy nothing when mail comes."""
        old = self.uids
        shared = result.uids
        if (
            not self._owned
            and not self.gone
            and not result.removed
            and shared is not None
            and len(shared) == len(old) + len(added)
            and shared[-1] == added[-1]
        ):
            self.uids = shared
            return
        self.uids = old + added
        self._owned = True

    def report_expunges(self) -> list[bytes]:
        """`* n EXPUNGE` for every message gone, highest first so each number is still right;
        with QRESYNC one `* VANISHED uids` (RFC 7162 3.2.10)."""
        out = []
        gone = self.gone
        vanished = []
        for uid in sorted(gone, reverse=True):
            seq = self.seq_of(uid)
            if seq is not None:
                if self.qresync:
                    vanished.append(uid)
                else:
                    out.append(r.expunge(seq))
            if uid in self.recent:
                self._recent().discard(uid)
        if vanished:
            out.append(b"* VANISHED " + format_set(sorted(vanished)).encode("ascii") + b"\r\n")
        self.uids = [u for u in self.uids if u not in gone]
        self._owned = True
        self.gone = _NO_UIDS
        self._ghosts = None
        return out

    def forget(self, uids: list[int]) -> list[bytes]:
        """Our own EXPUNGE removed these: report them now (the caller may send EXPUNGE)."""
        self._gone().update(u for u in uids if self.seq_of(u) is not None)
        for u in uids:
            if u in self.recent:
                self._recent().discard(u)
        return self.report_expunges()
