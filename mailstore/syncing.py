"""Sync: bring a folder's view (its UIDs, their files and flags) up to date with the disk.

How synchronisation works (the design note; Dovecot's maildir-sync.c solves the same problem)
============================================================================================
The truth is on disk: a message exists while a file with its base name is in `new/` or `cur/`,
its flags are the `:2,` letters of that name, and its UID is the `dovecot-uidlist` record of that
base. Anything may change the disk at any time: another server process, the delivery agent,
Dovecot itself, mutt. So every command starts with `sync()`, which must be cheap when nothing
changed and proportional to one directory listing when something did:

1. `dovecot-uidlist` and `dovecot-keywords` are re-read only when their stat identity changed,
   and an appended-to uidlist is read from where we stopped (see uidlist.py).
2. `new/` is stat()ed and listed only when its mtime changed; then `cur/`, in that order. A file
   moving from new/ to cur/ between the two looks is seen in one or the other, never in neither,
   because cur/ is looked at after new/. (A file seen in both is taken from cur/.)
3. A directory's mtime has the kernel's clock granularity (a few ms): a change in the same tick
   as our listing would leave the mtime we recorded unchanged. So a listing whose mtime was not
   older than the moment the listing began (minus a margin) is remembered as "dirty" and listed
   again at the next sync. In the steady state, a sync is three stat() calls.
   (Steps 2 and 3, and their inotify form, are listing.py.)
4. Files whose base has no UID get one under the uidlist lock, after listing new/ and cur/ again
   under that lock: every file that some other writer gave a UID is linked before it got it, so
   the listing under the lock sees all of them, and the UIDs we hand out are above every UID any
   process can have shown. UIDs therefore appear in ascending order to every session.
5. The result of a sync is a diff: UIDs added, UIDs removed, UIDs whose flags changed, the way
   pymap's SelectedMailbox diffs snapshots. Sessions turn it into EXISTS/EXPUNGE/FETCH.

Expunged messages leave dead records in the uidlist; it is rewritten (temp file + rename, under
the lock, after listing again) when they are many. A uidlist whose UIDVALIDITY changed under us
(a foreign rewrite, a restore from backup) resets the view: every UID is new.

Safety: every directory and file below the mail root is reached through folderdir.py, which never
follows a symlink there (the folder, `cur/`, `new/`, `tmp/` and the message files): a symlinked
`new/` lists as empty, a symlinked folder does not exist. Entries that are not regular files are
skipped and logged; a file that is hard-linked from elsewhere and owned by somebody other than the
folder's owner is not served (a planted link to someone else's file). A message that cannot be
read raises MessageUnreadable for that message alone: the rest of the folder is served.

UIDs are 32-bit and never reused within a UIDVALIDITY (RFC 3501 2.3.1.1). When they run out
(a `dovecot-uidlist` whose next UID is near 2^32, written by a damaged or hostile tool), the folder
gets a new UIDVALIDITY and its messages are numbered again from 1 in their old order (see
renumber): every session with the folder open sees the UIDVALIDITY change at its next sync.

The functions here take the Mailbox whose state they bring up to date (as adding.py does), its
lock held by the caller: the folder's state is one, and this is the code that writes most of it.
"""

from __future__ import annotations

import os
import stat
import time

from mailstore import log
from mailstore.errors import MailError, NotFound, TemporaryFailure
from mailstore.listing import SUBDIRS
from mailstore.lock import DotLock
from mailstore.message import Message, SyncResult, letters_of_name
from mailstore.uidlist import COURIER_NAME, UidsExhausted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.listing import Before
    from mailstore.mailbox import Mailbox

TMP_MAX_AGE = 36 * 3600  # maildir(5): files in tmp/ untouched for 36 hours are garbage
REWRITE_MIN_DEAD = 64


def sync(box: Mailbox) -> SyncResult:
    """One sync of `box` (lock held): what changed since the last, told to its hooks."""
    result = SyncResult()
    first = not box._loaded
    check_folder(box)
    box._keywords.refresh()
    box._uidlist.refresh()
    if not box._uidlist.exists:
        create_uidlist(box)
    check_uidvalidity(box, result, first)
    box._loaded = True
    listings = box._listings
    listings.scan(force=False)
    if listings.touched:
        touched, before = listings.take_touched()
        apply(box, touched, before, result)
        if box._uidvalidity != box._uidlist.uidvalidity:
            # UIDs ran out while new files were given theirs: the folder was numbered
            # again under a new UIDVALIDITY (renumber). Load it as such.
            check_uidvalidity(box, result, first)
            listings.scan(force=True)
            touched, before = listings.take_touched()
            apply(box, touched, before, result)
    if first:
        clean_tmp(box)
    if box.hooks is not None and (result or first):
        box.hooks.synced(result, first)
    return result


def check_uidvalidity(box: Mailbox, result: SyncResult, first: bool) -> None:
    """A uidlist with another UIDVALIDITY (rewritten by someone, restored from backup,
    renumbered): every UID of the view is gone, every message is new."""
    if box._uidvalidity == box._uidlist.uidvalidity:
        return
    if not first:
        log.warn("uidvalidity-changed", path=box.path)
        result.uidvalidity_changed = True
        result.removed = sorted(box._base_of)
        result.added = []
        result.changed = []
    box._uidvalidity = box._uidlist.uidvalidity
    box._uid_of.clear()
    box._base_of.clear()
    box._cache.clear()
    box._sorted = []
    box._listings.reset()


def check_folder(box: Mailbox) -> None:
    """NotFound if the folder's directory is gone or a symlink now; notice when it is
    another directory than at the last sync. One stat() when nothing changed: the kept
    descriptor is a directory that was at this place when opened, so reads through it
    stay inside the tree whatever is swapped in afterwards. Then, the directory is opened
    again (O_NOFOLLOW), and since inotify watches stay with the directories they were put
    on, wherever those were moved, they are dropped and new/ and cur/ listed again."""
    try:
        # The root may be a symlink the administrator made (followed); a folder may not.
        st = os.stat(box.path) if box._dir.name is None else os.lstat(box.path)
    except FileNotFoundError:
        raise NotFound(f"mailbox {box.name} does not exist") from None
    except OSError as exc:
        raise TemporaryFailure(f"cannot open mailbox {box.name}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        box._warn_once("mailbox-not-a-directory", box.path)
        raise NotFound(f"mailbox {box.name} does not exist")
    if (st.st_dev, st.st_ino) == box._folder_id:
        return
    box._dir.release()
    st = os.fstat(box._listings.folder_fd())
    folder_id = (st.st_dev, st.st_ino)
    if box._folder_id is not None and folder_id != box._folder_id:
        log.info("mailbox-directory-replaced", path=box.path)
        box._listings.folder_replaced()
    box._folder_id = folder_id
    box._owner = st.st_uid


def apply(box: Mailbox, touched: set[str], previous: dict[str, Before], result: SyncResult) -> None:
    """Turn listing changes into the visible state and the diff. `previous` holds the
    listings as they were before this sync, to tell flag changes from mere moves."""
    records = box._uidlist.records
    locate = box._listings.locate
    if not records.keys() >= touched:
        unknown = [b for b in touched if b not in records and locate(b) is not None]
        if unknown:
            more, before = assign_unknown(box)
            if box._uidlist.uidvalidity != box._uidvalidity:
                return  # renumbered: sync() loads the folder again
            touched |= more
            for sub in SUBDIRS:
                for base, name in before[sub].old.items():
                    previous[sub].remember(base, name)
    if not box._uid_of:
        load_all(box, result.added)
        touched = set()
    uid_of, base_of, cache = box._uid_of, box._base_of, box._cache
    for base in touched:
        rec = records.get(base)
        other = base_of.get(rec[0]) if rec is not None else None
        if other is not None and other != base:
            # The uidlist gives a UID we know as another message's: it was made again
            # under the same UIDVALIDITY (the folder deleted and made again within one
            # second, a backup restored). A UID names one message for as long as its
            # UIDVALIDITY lasts (RFC 3501 2.3.1.1), so the view cannot go on: loaded
            # again as for a new UIDVALIDITY (sync() sees the mismatch).
            log.warn("uid-reused", path=box.path, uid=rec[0] if rec else 0)
            box._uidvalidity = 0
            return
    added = result.added
    for base in touched:
        loc = locate(base)
        uid = uid_of.get(base)
        if loc is None:
            if uid is not None:
                del uid_of[base]
                del base_of[uid]
                ghost = cache.pop(uid, None)
                if ghost is None:
                    old = previous["cur"].get(base)
                    sub = "cur" if old else "new"
                    old = old or previous["new"].get(base)
                    if old:
                        ghost = Message(uid, base, sub, old)
                if ghost is not None:
                    result.ghosts[uid] = ghost
                result.removed.append(uid)
            continue
        if uid is None:
            rec = records.get(base)
            if rec is not None:  # else it vanished again while we assigned: next time
                uid = rec[0]
                uid_of[base] = uid
                base_of[uid] = base
                added.append(uid)
            continue
        old_name = previous["cur"].get(base) or previous["new"].get(base) or ""
        if letters_of_name(old_name) != letters_of_name(loc[1]):
            result.changed.append(uid)
        msg = cache.get(uid)
        if msg is not None:
            msg.subdir, msg.name = loc
            msg.letters = letters_of_name(loc[1])
    added.sort()
    ordered = box._sorted
    if result.removed:
        box._sorted = None
    elif added and ordered is not None:
        if not ordered or added[0] > ordered[-1]:
            # New mail: a copy, not a sort (callers may hold the old list).
            box._sorted = ordered + added
        else:
            box._sorted = None
    result.removed.sort()
    result.changed.sort()
    if result.removed:
        maybe_rewrite(box)


def load_all(box: Mailbox, added: list[int]) -> None:
    """The first load: every listed file with a UID is visible (no diffing, no objects)."""
    records = box._uidlist.records
    dirs = box._listings.dirs
    bases = dirs["cur"].listing.keys() | dirs["new"].listing.keys()
    box._uid_of = {b: records[b][0] for b in bases if b in records}
    box._base_of = {u: b for b, u in box._uid_of.items()}
    added.extend(box._base_of)


def assign_unknown(box: Mailbox) -> tuple[set[str], dict[str, Before]]:
    """Give UIDs to every listed file that has none: under the lock, after listing again.
    Returns what that listing changed, as Listings.take_touched."""
    listings = box._listings
    with DotLock(box._uidlist.path):
        box._uidlist.refresh()
        if not box._uidlist.exists:
            write_new_uidlist(box)
        listings.scan(force=True)
        touched = listings.take_touched()
        records = box._uidlist.records
        new_files = []
        for sub in ("cur", "new"):
            for base, name in listings.dirs[sub].listing.items():
                if base not in records:
                    new_files.append((base, name))
        if new_files:
            # In name order, which is delivery-time order for names made per maildir(5).
            seen: set[str] = set()
            ordered = []
            for base, name in sorted(new_files):
                if base not in seen:
                    seen.add(base)
                    ordered.append((base, name))
            try:
                box._uidlist.append(ordered)
            except UidsExhausted:
                renumber(box, [])
    return touched


def renumber(box: Mailbox, entries: list[tuple[str, str]]) -> None:
    """The UIDs ran out (lock held, listings current): a new UIDVALIDITY, and every file
    of the folder (with `entries`, just linked) numbered again from 1, in its old order.

    RFC 3501 2.3.1.1 allows nothing else: UIDs may not be reused, nor go past 2^32 - 1,
    under one UIDVALIDITY. Dovecot 2.3's Maildir code has no way out here (it asserts
    `next_uid < (uint32_t)-1` in maildir_uidlist_assign_uids() and treats a record "UID too
    high" as a corrupt uidlist); its mbox code renumbers ("Out of UIDs, renumbering them
    in mbox"), which is what this does for a Maildir."""
    present: dict[str, str] = {}
    for sub in SUBDIRS:  # new, then cur: a file in both is taken from cur (Listings.locate)
        present.update(box._listings.dirs[sub].listing)
    for base, name in entries:
        present.setdefault(base, name)
    old = box._uidlist.uidvalidity
    uidvalidity = box._new_uidvalidity()
    count = box._uidlist.renumber(present, uidvalidity, box.tmp_dir)
    log.warn(
        "uids-exhausted-renumbered",
        path=box.path,
        old_uidvalidity=old,
        uidvalidity=box._uidlist.uidvalidity,
        messages=count,
    )


def create_uidlist(box: Mailbox) -> None:
    with DotLock(box._uidlist.path):
        box._uidlist.refresh()
        if not box._uidlist.exists:
            write_new_uidlist(box)


def write_new_uidlist(box: Mailbox) -> None:
    """Create the uidlist (lock held): keep our view if we had one, else adopt Courier's."""
    ul = box._uidlist
    if box._loaded and box._uidvalidity:
        # Somebody removed the file under us: write back what we know rather than
        # invalidating every client's cache with a new UIDVALIDITY.
        ul.uidvalidity = box._uidvalidity
        ul.records = {b: (u, b, "") for b, u in box._uid_of.items()}
        ul.max_uid = max(box._base_of, default=0)
    elif not ul.load_foreign(os.path.join(box.path, COURIER_NAME)):
        ul.uidvalidity = box._new_uidvalidity()
        ul.header_next_uid = 1
    if not ul.guid:
        ul.guid = os.urandom(16).hex()
    ul.rewrite(box.tmp_dir)


def maybe_rewrite(box: Mailbox) -> None:
    """Rewrite the uidlist without its dead records when they are many (postponed, not
    waited for, when another process holds the lock)."""
    dead = len(box._uidlist.records) - len(box._uid_of)
    if dead < REWRITE_MIN_DEAD or dead * 4 < len(box._uid_of):
        return
    listings = box._listings
    try:
        with DotLock(box._uidlist.path, timeout=2.0):
            box._uidlist.refresh()
            listings.scan(force=True)
            present = set(listings.dirs["new"].listing)
            present.update(listings.dirs["cur"].listing)
            box._uidlist.rewrite(box.tmp_dir, keep=present)
    except MailError as exc:
        log.info("uidlist-rewrite-postponed", path=box.path, reason=exc.message)


def clean_tmp(box: Mailbox) -> None:
    """Remove what a crashed writer left in tmp/ (maildir(5)), at a folder's first sync."""
    limit = time.time() - TMP_MAX_AGE
    folder = box._dir
    try:
        with folder.hold(), folder.scandir("tmp") as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                    if st.st_mtime < limit and st.st_atime < limit:
                        folder.unlink("tmp", entry.name)
                except OSError:
                    continue
    except (OSError, MailError):
        return  # no tmp/ (made at the next delivery), or a symlink: nothing of ours
