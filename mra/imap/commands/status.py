"""STATUS (RFC 3501 6.3.10) and its items from later RFCs; also what LIST-STATUS sends.

    MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN     RFC 3501
    HIGHESTMODSEQ                                  RFC 7162 3.1.6 (0: a folder without modseqs)
    DELETED                                        RFC 9051 6.3.11, RFC 9208 4.2.1
    SIZE                                           RFC 8438 (STATUS=SIZE)
    DELETED-STORAGE                                RFC 9208 4.2.2
    APPENDLIMIT                                    RFC 7889 5

The answer names the items in that fixed order, whatever the order asked, as Dovecot does
(imap-status.c) and as RFC 3501's example shows (`(UIDNEXT MESSAGES)` -> `(MESSAGES 231 UIDNEXT
44292)`); an item asked twice is answered once. SIZE is the sum of the messages' RFC822.SIZE
(CRLF sizes, read from the `,W=` of the file names; RFC 8438 asks at least that sum), and
DELETED-STORAGE that sum over the `\\Deleted` messages, which RFC 9208 4.2.2 allows in place of
the exact space an EXPUNGE frees. APPENDLIMIT is the server's `[mail] max_message_size`, the
same for every folder (RFC 7889 3: also advertised as `APPENDLIMIT=n`).

STATUS runs in the thread pool (`thread=True`): counting grows with the folder.
"""

from __future__ import annotations

from mailstore import folderstate
from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_atom, as_list, as_mailbox
from mra.imap.commands import condstore
from mra.imap.commands.enable import rev2, utf8
from mra.imap.commands.spec import Request
from mra.imap.values import Value
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

ITEMS = (
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "HIGHESTMODSEQ",
    "DELETED",
    "SIZE",
    "DELETED-STORAGE",
    "APPENDLIMIT",
)
_CHEAP = frozenset({"MESSAGES", "UIDNEXT", "UIDVALIDITY", "APPENDLIMIT", "HIGHESTMODSEQ"})
_MAX_NUMBER = 2**32 - 1  # APPENDLIMIT is a `number` (RFC 7889 7)


def append_limit(s: ImapSession) -> int:
    """The largest APPEND the server takes (RFC 7889), within IMAP's 32-bit numbers."""
    return min(s.services.config.mail.max_message_size, _MAX_NUMBER)


def parse_items(value: Value, rev2: bool = False) -> list[str]:
    """`(MESSAGES UNSEEN)` -> the items in answer order; BAD for an empty list (as Dovecot:
    RFC 3501's grammar wants one) or an unknown item. IMAP4rev2 has no RECENT (RFC 9051 9
    `status-att`, Appendix E 12): unknown there, as in Dovecot 2.4's imap-status.c."""
    asked = set()
    for item in as_list(value):
        name = as_atom(item).upper()
        if name not in ITEMS or (rev2 and name == "RECENT"):
            raise ArgumentError(f"unknown STATUS item {name[:40]}")
        asked.add(name)
    if not asked:
        raise ArgumentError("STATUS needs at least one item")
    return [name for name in ITEMS if name in asked]


def values(s: ImapSession, name: str, items: list[str]) -> dict[str, int]:
    """The items of folder `name`; the store's NotFound when it does not exist. The selected
    folder is answered from the session's view: what the client has been told."""
    view = s.view if s.view is not None and s.view.name == name else None
    if view is not None:
        box = view.box
        uids: list[int] = view.uids
        walk = set(items) - _CHEAP
    else:
        # Another folder: RECENT from new/'s listing, UNSEEN counted once per change of the
        # folder (folderstate.py), so the common poll (MESSAGES RECENT UIDNEXT UNSEEN) of a
        # big folder reads no message.
        box = s.mailstore().mailbox(name)
        box.sync()
        uids = box.uids()
        walk = set(items) - _CHEAP - {"RECENT", "UNSEEN"}
    messages = [box.get(u) for u in uids if u in box] if walk else []
    out = {}
    for item in items:
        if item == "MESSAGES":
            out[item] = len(uids)
        elif item == "RECENT":
            out[item] = len(view.recent) if view is not None else len(box.recent_uids())
        elif item == "UIDNEXT":
            out[item] = box.next_uid
        elif item == "UIDVALIDITY":
            out[item] = box.uidvalidity
        elif item == "UNSEEN":
            if view is None:
                out[item] = folderstate.of(box).unseen_count()
            else:
                out[item] = sum(not m.seen for m in messages)
        elif item == "HIGHESTMODSEQ":
            highest = view.highest if view is not None else folderstate.of(box).highest_modseq
            out[item] = highest or 0
        elif item == "DELETED":
            out[item] = sum(m.deleted for m in messages)
        elif item == "SIZE":
            out[item] = sum(box.message_vsize(m) for m in messages)
        elif item == "DELETED-STORAGE":
            out[item] = sum(box.message_vsize(m) for m in messages if m.deleted)
        elif item == "APPENDLIMIT":
            out[item] = append_limit(s)
    return out


def status(s: ImapSession, req: Request) -> list[Output]:
    args = req.args
    if len(args) != 2:
        raise ArgumentError("STATUS needs a mailbox name and a list of items")
    name = as_mailbox(args[0], utf8(s))
    items = parse_items(args[1], rev2(s))
    head = condstore.enable(s) if "HIGHESTMODSEQ" in items else b""  # RFC 7162 3.1
    answer = r.status_response(name, values(s, name, items), utf8=utf8(s))
    return s.ok(req, untagged=head + answer)
