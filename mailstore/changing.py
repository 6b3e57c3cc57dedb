"""Changes to the messages already in a folder: flags (a rename of the file, maildir(5)'s
`:2,` letters), the move from new/ to cur/ that claims a message for a reader, and expunge.
(Adding messages is adding.py.)

Why apart from the sync: these are the writes a session makes, each recorded at once in the
folder's own view (the listings and the Message objects) so that its next sync finds no change
for them, and told to the folder's hooks with the session as `origin` (SyncResult). A rename or
unlink that finds the file gone (another process renamed or removed it) syncs and tries again
on the new name, a few times. The functions take the Mailbox, as adding.py's do.
"""

from __future__ import annotations

from mailstore.errors import TemporaryFailure, UnsafePath
from mailstore.filenames import CHAR_TO_FLAG, FLAG_TO_CHAR, join_name
from mailstore.message import SyncResult, letters_of_name
from mailstore.syncing import maybe_rewrite

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from mailstore.mailbox import Mailbox
    from mailstore.message import Message


def letters_for(box: Mailbox, flags: Iterable[str]) -> str:
    """Maildir letters for IMAP flags (system flags and keywords; keywords get letters)."""
    system = []
    words = set()
    for flag in flags:
        ch = FLAG_TO_CHAR.get(canonical_system(flag))
        if ch is not None:
            system.append(ch)
        elif flag.startswith("\\"):
            continue  # \Recent and unknown system flags cannot be stored
        else:
            words.add(flag)
    letters = "".join(system)
    if words:
        letters += box._keywords.letters_for(words, box.tmp_dir)
    return letters


def change_flags(
    box: Mailbox,
    uids: Iterable[int],
    mode: str,
    flags: Iterable[str],
    origin: object,
    exact: bool,
) -> tuple[list[int], list[int]]:
    """See Mailbox.change_flags."""
    with box.lock:
        box._ensure_loaded()
        flags = list(flags)
        remove = mode == "remove"
        letters = _existing_letters(box, flags) if remove else letters_for(box, flags)
        changed: list[int] = []
        lost: list[int] = []
        with box._dir.hold():
            for uid in uids:
                done = _change_letters(box, uid, mode, letters, exact)
                if done is True:
                    changed.append(uid)
                elif done is None:
                    lost.append(uid)
        if changed and box.hooks is not None:
            result = SyncResult(origin)
            result.changed = changed
            box.hooks.synced(result, False)
        return changed, lost


def _existing_letters(box: Mailbox, flags: list[str]) -> str:
    out = []
    for flag in flags:
        ch = FLAG_TO_CHAR.get(canonical_system(flag))
        if ch is None and not flag.startswith("\\"):
            ch = box._keywords.letter_for(flag)
        if ch is not None:
            out.append(ch)
    return "".join(out)


def _change_letters(box: Mailbox, uid: int, mode: str, letters: str, exact: bool) -> bool | None:
    """True: changed; False: nothing to change (or gone); None: lost (see change_flags)."""
    for _ in range(3):
        msg = box._peek(uid)
        if msg is None:
            return False
        old = msg.letters
        if mode == "set":
            # Keep what IMAP cannot express: `P`, and letters of keywords with no name.
            kept = "".join(
                c
                for c in old
                if c not in CHAR_TO_FLAG
                and not ("a" <= c <= "z" and box._keywords.names[ord(c) - 97] is not None)
            )
            new = kept + letters
        elif mode == "add":
            new = old + letters
        else:
            new = "".join(c for c in old if c not in letters)
        new = "".join(sorted(set(new)))
        if new == old:
            return False
        name = join_name(msg.base, new)
        try:
            box._dir.rename(msg.subdir, msg.name, "cur", name)
        except FileNotFoundError:
            box.sync()
            if exact:
                return None
            continue
        except OSError as exc:
            raise TemporaryFailure(f"cannot change flags of {uid}: {exc.strerror}") from exc
        _moved(box, msg, "cur", name)
        return new != old
    return False


def _moved(box: Mailbox, msg: Message, sub: str, name: str) -> None:
    """Record our own rename, so the next listing shows no change for it."""
    box._listings.moved(msg.base, msg.subdir, sub, name)
    msg.subdir, msg.name = sub, name
    msg.letters = letters_of_name(name)


def mark_seen_by_reader(box: Mailbox, uids: Iterable[int]) -> list[int]:
    """See Mailbox.mark_seen_by_reader."""
    moved: list[int] = []
    with box.lock, box._dir.hold():
        for uid in uids:
            msg = box._peek(uid)
            if msg is None or msg.subdir != "new":
                continue
            name = join_name(msg.base, msg.letters)
            try:
                box._dir.rename("new", msg.name, "cur", name)
            except FileNotFoundError:
                continue
            except UnsafePath:
                # cur/ (or new/) is a symlink: nothing moves there, and the messages stay
                # in new/, readable. Not worth failing the SELECT that asked for this.
                box._warn_once("symlink-refused", box._dir.where("cur"))
                return moved
            except OSError as exc:
                raise TemporaryFailure(f"cannot move message {uid}: {exc.strerror}") from exc
            _moved(box, msg, "cur", name)
            moved.append(uid)
    return moved


def expunge(box: Mailbox, uids: Iterable[int], origin: object) -> list[int]:
    """See Mailbox.expunge (lock held)."""
    box._ensure_loaded()
    removed = []
    result = SyncResult(origin)
    dirs = box._listings.dirs
    with box._dir.hold():
        for uid in uids:
            for _ in range(3):
                msg = box._peek(uid)
                if msg is None:
                    break
                try:
                    box._dir.unlink(msg.subdir, msg.name)
                except FileNotFoundError:
                    box.sync()
                    continue
                except OSError as exc:
                    raise TemporaryFailure(f"cannot expunge {uid}: {exc.strerror}") from exc
                other = "new" if msg.subdir == "cur" else "cur"
                twin = dirs[other].listing.pop(msg.base, None)
                if twin is None and other == "new":
                    twin = msg.base
                if twin is not None:
                    try:
                        box._dir.unlink(other, twin)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        dirs[other].listing[msg.base] = twin
                        raise TemporaryFailure(f"cannot expunge {uid}: {exc.strerror}") from exc
                dirs[msg.subdir].listing.pop(msg.base, None)
                del box._uid_of[msg.base]
                del box._base_of[uid]
                result.ghosts[uid] = box._cache.pop(uid)
                box._sorted = None
                removed.append(uid)
                break
    if removed:
        if box.hooks is not None:
            result.removed = sorted(removed)
            box.hooks.synced(result, False)
        maybe_rewrite(box)
    return removed


def canonical_system(flag: str) -> str:
    # System flags are case-insensitive (RFC 3501 section 2.3.2).
    return "\\" + flag[1:].capitalize() if flag.startswith("\\") else flag
