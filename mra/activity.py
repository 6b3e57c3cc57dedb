"""What a session did to the mail, for the line that ends it (Dovecot's `logout_format`).

    info session-end proto=imap user=alice ip=192.0.2.7 duration=912.4 in=4211 out=188342
        reason=logout fetched=12 deleted=3 expunged=3 trashed=2

* `fetched`: messages whose content was sent (a body, a header, ENVELOPE, BODYSTRUCTURE;
  POP3 RETR and TOP), Dovecot's fetch_hdr_count and fetch_body_count together;
* `deleted`: messages that got the `\\Deleted` flag (IMAP STORE), or were marked for
  deletion (POP3 DELE);
* `expunged`: messages removed from a folder (EXPUNGE, CLOSE, MOVE; POP3 at QUIT);
* `trashed`: messages copied or moved into a folder whose special use is `\\Trash`.

The handlers count as they act (one line each); `mra.sessionlog` writes the line when the
connection ends, however it ends.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mra.imap.selected import SelectedView
    from mra.imap.session import ImapSession


class Activity:
    __slots__ = ("deleted", "expunged", "fetched", "trashed")

    def __init__(self) -> None:
        self.fetched = 0
        self.deleted = 0
        self.expunged = 0
        self.trashed = 0

    def fields(self) -> dict[str, int]:
        return {
            "fetched": self.fetched,
            "deleted": self.deleted,
            "expunged": self.expunged,
            "trashed": self.trashed,
        }


def deleting(
    s: ImapSession, view: SelectedView, uids: Iterable[int], mode: str, flags: Iterable[str]
) -> None:
    """A STORE is about to run: count the messages it gives `\\Deleted` that lacked it."""
    if mode == "remove" or "\\Deleted" not in flags:
        return
    for uid in uids:
        msg = view.message(uid)
        if msg is not None and not msg.deleted:
            s.activity.deleted += 1


def copied(s: ImapSession, folder: str, count: int) -> None:
    """A COPY or MOVE put `count` messages into `folder`: trashed if it is a Trash."""
    if not count:
        return
    from mailstore import specialuse

    try:
        uses = specialuse.special_uses(
            s.services.config.mailboxes.folders, s.mailstore().user_special_uses()
        )
    except Exception:  # the count must never cost the command its answer
        return
    if "\\Trash" in uses.get(folder, ()):
        s.activity.trashed += count
