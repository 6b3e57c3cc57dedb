"""FETCH (RFC 3501 6.4.5 and 7.4.2): which items a client asked for, and their response text.

Bodies are served with CRLF line ends, whatever the file holds, and every size and offset a
client sees (RFC822.SIZE, `<origin.count>` partials) counts in that form. The message is read
and parsed once per message and FETCH, only when an item needs more than flags and sizes.
BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516) are binary.py's: the same part, its transfer
encoding removed; BINARY.SIZE sets no \\Seen, as it sends no content.
"""

from __future__ import annotations

import datetime

from mra.imap import binary, mime, sortsource
from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.values import Atom, FetchAtt, ParenList, Section, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.mailbox import Mailbox, Message
    from mra.imap.messagecache import MessageCache
    from mra.imap.selected import SelectedView

MACROS = {
    "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
    "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
    "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"],
}
SIMPLE = {
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "UID",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "SAVEDATE",  # RFC 8514
    "MODSEQ",  # RFC 7162 3.1.4
}
SETS_SEEN = {"RFC822", "RFC822.TEXT"}
# PREVIEW (RFC 8970): the item with its modifiers, `PREVIEW (LAZY)`; the text is preview.py's
PREVIEW_ITEMS = {False: "PREVIEW", True: "PREVIEW (LAZY)"}

Item = str | FetchAtt


def parse_items(value: Value) -> list[Item]:
    """The fetch attributes of a FETCH command: a macro, one item or a list of items."""
    if isinstance(value, ParenList):
        values = list(value.items)
        if not values:
            raise ArgumentError("FETCH needs at least one item")
    else:
        values = [value]
        if isinstance(value, Atom) and value.value.upper() in MACROS:
            return list(MACROS[value.value.upper()])
    items: list[Item] = []
    i = 0
    while i < len(values):
        v = values[i]
        i += 1
        if isinstance(v, FetchAtt):
            items.append(v)
        elif isinstance(v, Atom) and v.value.upper() in SIMPLE:
            items.append(v.value.upper())
        elif isinstance(v, Atom) and v.value.upper() == "PREVIEW":
            lazy = False
            if i < len(values) and isinstance(values[i], ParenList):
                modifiers = values[i]
                assert isinstance(modifiers, ParenList)
                if not modifiers.items:  # RFC 8970 7: "(" preview-mod *(SP preview-mod) ")"
                    raise ArgumentError("empty PREVIEW modifier list")
                for m in modifiers.items:
                    if not (isinstance(m, Atom) and m.value.upper() == "LAZY"):
                        raise ArgumentError("unknown PREVIEW modifier")  # RFC 8970 3.1
                    lazy = True
                i += 1
            items.append(PREVIEW_ITEMS[lazy])
        else:
            raise ArgumentError("unknown FETCH item")
    return items


def _section_spec(section: Section) -> mime.SectionSpec:
    return mime.SectionSpec(
        part=section.part,
        text=section.text or "",
        fields=tuple(f.upper().encode() for f in section.fields),
    )


def sets_seen(items: list[Item]) -> bool:
    return any(
        (isinstance(i, FetchAtt) and not i.peek and i.name != "BINARY.SIZE") or i in SETS_SEEN
        for i in items
    )


CHEAP = frozenset({"UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "MODSEQ"})


def reads_messages(items: list[Item]) -> bool:
    """Whether rendering opens message files (anything but UID, FLAGS, sizes and dates)."""
    return any(i not in CHEAP for i in items)


def internaldate(seconds: float) -> bytes:
    dt = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return r.date_time(dt)


def render(
    view: SelectedView,
    uid: int,
    seq: int,
    items: list[Item],
    with_uid: bool,
    seen_now: bool,
    kept: MessageCache | None = None,
) -> bytes:
    """`* seq FETCH (...)` for one message. `seen_now`: \\Seen was just set by this FETCH, so
    FLAGS goes along even when not asked for (RFC 3501 6.4.5). `kept`: the process's cache of
    ENVELOPE, BODYSTRUCTURE and BODY as sent (messagecache.py)."""
    box = view.box
    msg = view.message(uid)
    if msg is None:
        raise LookupError(uid)
    out: list[bytes] = []
    body: _Body | None = None  # made only for items that read the message
    if with_uid and "UID" not in items:
        out.append(b"UID %d" % uid)
    # The modseq before the flags: the flags shown are never older than it (selected.py).
    modseq = view.modseq(uid) if "MODSEQ" in items or (seen_now and view.condstore) else None
    for item in items:
        if isinstance(item, FetchAtt) and item.name.startswith("BINARY"):
            body = body or _Body(box, msg, view.mime_limits)
            out.append(binary.fetch_item(body.content(), item))
        elif isinstance(item, FetchAtt):
            body = body or _Body(box, msg, view.mime_limits)
            section = item.section
            if not section.part and not section.text:
                data: bytes | None = body.whole()  # BODY[]: the bytes, no MIME parse needed
            else:
                data = mime.section(body.content(), _section_spec(section))
            if data is None:
                raise ArgumentError("invalid section")
            if item.partial is not None:
                origin, count = item.partial
                data = mime.partial(data, origin, count)
            out.append(r.section_key(item) + b" " + (r.literal(data) if data else b'""'))
        elif item == "UID":
            out.append(b"UID %d" % uid)
        elif item == "FLAGS":
            out.append(b"FLAGS " + view.flag_text(msg))
        elif item == "MODSEQ":
            out.append(b"MODSEQ (%d)" % (modseq or 0))
        elif item == "INTERNALDATE":
            out.append(b"INTERNALDATE " + internaldate(box.internaldate(msg)))
        elif item == "SAVEDATE":  # a Maildir always has one (NIL is for stores without)
            out.append(b"SAVEDATE " + internaldate(box.save_date(msg)))
        elif item == "RFC822.SIZE":
            vsize = msg.vsize
            out.append(b"RFC822.SIZE %d" % (box.message_vsize(msg) if vsize is None else vsize))
        elif item in _STRUCTURES:
            value = kept.get(box.path, msg.base, item) if kept is not None else None
            if not isinstance(value, bytes):
                body = body or _Body(box, msg, view.mime_limits)
                value = _STRUCTURES[item](body.content())
                if kept is not None:
                    kept.put(box.path, msg.base, item, value)
            out.append(value)
        else:
            body = body or _Body(box, msg, view.mime_limits)
            if item == "RFC822":
                out.append(b"RFC822 " + r.literal(body.whole()))
            elif item == "RFC822.HEADER":
                out.append(b"RFC822.HEADER " + r.literal(body.content().header))
            elif item == "RFC822.TEXT":
                out.append(b"RFC822.TEXT " + r.literal(body.content().body))
            elif item in PREVIEW_ITEMS.values():
                text = sortsource.fetch_preview(view, uid, body.content, item != "PREVIEW")
                out.append(b"PREVIEW " + r.nstring(None if text is None else text.encode()))
    if seen_now and "FLAGS" not in items:
        out.append(b"FLAGS " + view.flag_text(msg))
    if seen_now and modseq is not None and "MODSEQ" not in items:
        out.append(b"MODSEQ (%d)" % modseq)  # RFC 7162 3.1: a FETCH that set \Seen
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(out))


# The items made of a message's MIME structure alone, as sent: what the process keeps of them.
_STRUCTURES = {
    "ENVELOPE": lambda part: b"ENVELOPE " + mime.envelope(part),
    "BODYSTRUCTURE": lambda part: b"BODYSTRUCTURE " + mime.bodystructure(part, True),
    "BODY": lambda part: b"BODY " + mime.bodystructure(part, False),
}


def flags_plan(items: list[Item], with_uid: bool) -> tuple[bool, ...] | None:
    """For a FETCH of nothing but UID and FLAGS (`FETCH 1:* (FLAGS)`, `UID FETCH 1:* FLAGS`,
    a client's resync of a whole folder): the items shown, in order, True for FLAGS and False
    for UID, for render_flags; None for any other FETCH."""
    if not items or any(i != "UID" and i != "FLAGS" for i in items):
        return None
    shown = items if not with_uid or "UID" in items else ["UID", *items]
    return tuple(i == "FLAGS" for i in shown)


def render_flags(view: SelectedView, msg: Message, seq: int, plan: tuple[bool, ...]) -> bytes:
    """render() of a message at hand for a flags_plan: what render makes of these items,
    without its walk through every kind of item (a resync renders every message)."""
    if plan == (True,):
        return b"* %d FETCH (FLAGS %s)\r\n" % (seq, view.flag_text(msg))
    if plan == (False, True):
        return b"* %d FETCH (UID %d FLAGS %s)\r\n" % (seq, msg.uid, view.flag_text(msg))
    out = [b"FLAGS " + view.flag_text(msg) if flags else b"UID %d" % msg.uid for flags in plan]
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(out))


_NEEDS_FILE = frozenset(
    {"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)


def render_ghost(
    view: SelectedView, msg: Message, seq: int, items: list[Item], with_uid: bool
) -> bytes:
    """`* seq FETCH (...)` for a message another session expunged that this session has not
    been told of yet (RFC 2180 4.1.1): what the store still knows of it (flags, UID, size from
    its file name, its date if it was read), and NIL for what needed the file, as Dovecot
    answers."""
    uid = msg.uid
    out: list[bytes] = []
    if with_uid and "UID" not in items:
        out.append(b"UID %d" % uid)
    for item in items:
        if isinstance(item, FetchAtt):
            out.append(r.section_key(item) + b" NIL")
        elif item == "UID":
            out.append(b"UID %d" % uid)
        elif item == "FLAGS":
            out.append(b"FLAGS " + view.flag_text(msg))
        elif item == "RFC822.SIZE" and msg.vsize is not None:
            out.append(b"RFC822.SIZE %d" % msg.vsize)
        elif item == "INTERNALDATE" and msg.known_internaldate is not None:
            out.append(b"INTERNALDATE " + internaldate(msg.known_internaldate))
        elif item in _NEEDS_FILE:
            out.append(item.encode("ascii") + b" NIL")
        elif item in PREVIEW_ITEMS.values():
            out.append(b"PREVIEW NIL")
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(out))


class _Body:
    """One message's bytes (CRLF) and MIME structure, read and parsed at most once per FETCH."""

    __slots__ = ("_box", "_limits", "_msg", "_part", "_raw")

    def __init__(self, box: Mailbox, msg: Message, limits: mime.Limits) -> None:
        self._box = box
        self._msg = msg
        self._limits = limits
        self._raw: bytes | None = None
        self._part: mime.Part | None = None

    def whole(self) -> bytes:
        if self._raw is None:
            msg = self._msg
            raw = self._box.read_message(msg.uid)
            # `,S=` equal to `,W=` and to the length read: no bare LF to convert, no need to
            # count line ends through the message.
            if not (msg.size == len(raw) and msg.vsize == msg.size):
                raw = mime.crlf(raw)
            self._raw = raw
        return self._raw

    def content(self) -> mime.Part:
        if self._part is None:
            self._part = mime.parse(self.whole(), self._limits)
        return self._part
