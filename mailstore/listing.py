"""What a folder's `new/` and `cur/` hold, by base name, kept current at every sync.

Why apart: this is the part of a folder's sync that knows directories and nothing of UIDs
(syncing.py turns the changes found here into UIDs and a diff, through the uidlist). It
answers one question cheaply, "which base names changed location or name since the last
look?", and records the answer in `touched`, with the names as they were before in `before`.

How (steps 2 and 3 of the design note in syncing.py):
- `new/` is stat()ed and listed only when its mtime changed; then `cur/`, in that order. A
  file moving from new/ to cur/ between the two looks is seen in one or the other, never in
  neither, because cur/ is looked at after new/. (A file seen in both is taken from cur/.)
- A directory's mtime has the kernel's clock granularity (a few ms): a change in the same tick
  as our listing would leave the mtime we recorded unchanged. So a listing whose mtime was not
  older than the moment the listing began (minus a margin) is remembered as "dirty" and listed
  again at the next sync. In the steady state, a sync is three stat() calls.
- In a long-lived process with inotify (dirwatch.py), the queued events of a directory are
  replayed over its listing instead; a lost queue falls back to a listing.

Safety: every directory is reached through folderdir.py (no symlink followed below the mail
root): a symlinked `new/` lists as empty; entries that are not regular files, and names the
line-based uidlist cannot hold, are skipped and logged once. Two files with one base name get
the later one renamed to a base of its own (as Dovecot's maildir_fix_duplicate()).
"""

from __future__ import annotations

import os
import stat
import time

from mailstore import log
from mailstore.errors import MailError, NotFound, TemporaryFailure, UnsafePath
from mailstore.filenames import unique_base

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.dirwatch import DirWatch, Event
    from mailstore.folderdir import FolderDir

SUBDIRS = ("new", "cur")
DIRTY_MARGIN_NS = 50_000_000  # more than the kernel's coarse clock tick (<= 10 ms at HZ=100)


class DirState:
    """One directory's listing and what is known of its freshness."""

    __slots__ = ("__weakref__", "dirty", "events", "identity", "listing", "wd")

    def __init__(self) -> None:
        self.identity: tuple[int, int] | None = None  # (ino, mtime_ns)
        self.dirty = True
        self.listing: dict[str, str] = {}  # base -> file name
        # With a DirWatch (dirwatch.py): the changes since the last sync, or None when the
        # directory must be listed (not watched yet, or its events were lost).
        self.events: list[Event] | None = None
        self.wd = -1


class Before:
    """The listing of one directory as it was at the previous sync, for the names touched since
    (see syncing.apply): the old names are kept, the untouched ones are the live listing's."""

    __slots__ = ("absent", "old", "state")

    def __init__(self, state: DirState) -> None:
        self.state = state
        self.old: dict[str, str | None] = {}
        self.absent = False  # the directory was empty then: no need to remember each name

    def remember(self, base: str, name: str | None) -> None:
        if base not in self.old:
            self.old[base] = name

    def get(self, base: str) -> str | None:
        if base in self.old:
            return self.old[base]
        return None if self.absent else self.state.listing.get(base)


class Listings:
    """The listings of one folder's new/ and cur/ (`dirs`), through its FolderDir, and the
    bases they changed since the last `take_touched()`. Owned by one Mailbox, used under its
    lock; it is also the owner of the folder's inotify watches (released when it is gone)."""

    def __init__(self, folder: FolderDir, path: str, name: str, watch: DirWatch | None) -> None:
        self.dir = folder
        self.path = path
        self.name = name
        self.watch = watch
        self.dirs = {sub: DirState() for sub in SUBDIRS}
        # What listings and events changed since the last take_touched, and what was there
        # before.
        self.touched: set[str] = set()
        self.before = {sub: Before(self.dirs[sub]) for sub in SUBDIRS}
        self.warned: set[str] = set()

    def warn_once(self, event: str, path: str) -> None:
        """Log `event` for `path` once per folder: a bad file is met at every sync."""
        if path not in self.warned:
            self.warned.add(path)
            log.warn(event, path=path)

    def locate(self, base: str) -> tuple[str, str] | None:
        """(subdir, file name) of a base, cur/'s when it is in both."""
        name = self.dirs["cur"].listing.get(base)
        if name is not None:
            return "cur", name
        name = self.dirs["new"].listing.get(base)
        if name is not None:
            return "new", name
        return None

    def moved(self, base: str, old_sub: str, sub: str, name: str) -> None:
        """Record our own rename, so the next listing shows no change for it."""
        self.dirs[old_sub].listing.pop(base, None)
        self.dirs[sub].listing[base] = name

    def suspect(self) -> None:
        """List new/ and cur/ again at the next sync (see Mailbox.suspect)."""
        for state in self.dirs.values():
            state.dirty = True

    def reset(self) -> None:
        """Forget every listing: the next scan lists both directories in full."""
        for state in self.dirs.values():
            state.identity = None
            state.listing = {}
            state.events = None  # listed again in full
        self.touched.clear()
        self.before = {sub: Before(self.dirs[sub]) for sub in SUBDIRS}

    def folder_replaced(self) -> None:
        """The folder is another directory than at the last sync: inotify watches stay with
        the directories they were put on, wherever those were moved, so they are dropped and
        new/ and cur/ listed again."""
        watch = self.watch
        for state in self.dirs.values():
            if watch is not None and state.wd >= 0 and watch.usable:
                watch.unwatch(state)
            state.events = None
            state.identity = None

    def folder_fd(self) -> int:
        """The folder's directory; NotFound when it is missing, a symlink or not a directory
        (the store lists no such folder either)."""
        try:
            return self.dir.folder_fd()
        except FileNotFoundError:
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except UnsafePath:
            self.warn_once("mailbox-not-a-directory", self.path)
            raise NotFound(f"mailbox {self.name} does not exist") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot open mailbox {self.name}: {exc.strerror}") from exc

    def take_touched(self) -> tuple[set[str], dict[str, Before]]:
        """The bases changed since the last take, and the listings as they were before."""
        touched, before = self.touched, self.before
        self.touched = set()
        self.before = {sub: Before(self.dirs[sub]) for sub in SUBDIRS}
        return touched, before

    def scan(self, force: bool) -> None:
        """Bring the listings of new/ then cur/ up to date; the bases whose location changed
        go to self.touched. `force`: list even if the mtime did not change (with events there
        is no need: reading the queue to its end is as good as listing)."""
        watch = self.watch
        if watch is not None:
            if not watch.usable:
                self.stop_watching(watch)
                watch = None
            else:
                watch.drain()
        for sub in SUBDIRS:
            state = self.dirs[sub]
            path = os.path.join(self.path, sub)
            if watch is not None:
                events = watch.take(state)
                if events is not None:
                    if events and not self._replay(sub, state, events):
                        watch.unwatch(state)
                        self._list_dir(sub, state, path, watch)
                    continue
            self._list_dir(sub, state, path, watch, force)

    def stop_watching(self, watch: DirWatch) -> None:
        """Sync by mtime from now on (out of watches, or the watch is not ours to read)."""
        self.watch = None
        for state in self.dirs.values():
            if state.wd >= 0 and watch.usable:
                watch.unwatch(state)
            state.events = None
            state.wd = -1
            state.identity = None  # listed again

    def _subdir_stat(self, sub: str) -> os.stat_result | None:
        """`new/` or `cur/` for a listing (inside `self.dir.hold()`), made again if missing;
        None when it is a symlink or not a directory: what it holds is not this folder's, so
        the folder shows none of it (logged once)."""
        self.folder_fd()
        for _ in range(2):
            try:
                return self.dir.stat_dir(sub)
            except FileNotFoundError:
                self._recreate_subdir(sub)
            except UnsafePath:
                self.warn_once("symlink-refused", self.dir.where(sub))
                return None
            except OSError as exc:
                raise TemporaryFailure(f"cannot read {self.name}: {exc.strerror}") from exc
        raise TemporaryFailure(f"cannot read {self.name}: {sub}/ keeps vanishing")

    def _list_dir(
        self,
        sub: str,
        state: DirState,
        path: str,
        watch: DirWatch | None,
        force: bool = True,
    ) -> None:
        with self.dir.hold():
            self._list_dir_held(sub, state, path, watch, force)

    def _list_dir_held(
        self, sub: str, state: DirState, path: str, watch: DirWatch | None, force: bool
    ) -> None:
        if watch is None and not force and not state.dirty and state.identity is not None:
            # The common case without inotify: one fstatat() says nothing changed.
            try:
                quick = self.dir.lstat_dir(sub)
            except (OSError, MailError):
                quick = None
            if (
                quick is not None
                and stat.S_ISDIR(quick.st_mode)
                and (quick.st_ino, quick.st_mtime_ns) == state.identity
            ):
                return
        st = self._subdir_stat(sub)
        if st is None:
            # A symlink or not a directory: nothing in it is listed, and it is looked at
            # again at every sync (one failing open) until it is a directory again.
            if watch is not None and state.wd >= 0:
                watch.unwatch(state)
            self._set_listing(sub, state, {})
            state.identity = None
            state.dirty = True
            return
        identity = (st.st_ino, st.st_mtime_ns)
        snapshot = None
        if watch is not None:
            # Watched before listing: a change during the listing is queued, and replaying it
            # over a listing that already has it changes nothing.
            if state.wd >= 0:
                watch.unwatch(state)
            ok, snapshot = watch.watch(path, state, self)
            if not ok:
                self.stop_watching(watch)  # out of watches
                watch = None
            elif not _same_directory(path, st):
                # inotify watches by path: a directory swapped (for a symlink) between our
                # open and the watch is not ours. List through the descriptor, watch next time.
                watch.unwatch(state)
                snapshot = None
                watch = None
        elif not force and not state.dirty and identity == state.identity:
            return
        started = time.time_ns()
        if snapshot is not None:
            listing = snapshot  # another session of this process has the folder open
        else:
            listing = self.list_names(sub)
            if watch is not None:
                watch.seed(state, listing)
        state.dirty = st.st_mtime_ns >= started - DIRTY_MARGIN_NS
        state.identity = identity
        self._set_listing(sub, state, listing)

    def _set_listing(self, sub: str, state: DirState, listing: dict[str, str]) -> None:
        """Make `listing` the directory's, noting in self.touched the bases it changes."""
        old = state.listing
        before = self.before[sub]
        if not old:
            before.absent = True  # a first listing: 100,000 names need no remembering
            self.touched.update(listing)
        else:
            old_get = old.get
            changed = [b for b, n in listing.items() if old_get(b) != n]
            changed += [b for b in old if b not in listing]
            for b in changed:
                before.remember(b, old_get(b))
            self.touched.update(changed)
        state.listing = listing

    def _replay(self, sub: str, state: DirState, events: list[Event]) -> bool:
        """Apply queued inotify events to the listing (see dirwatch.replay)."""
        from mailstore.dirwatch import replay

        before = self.before[sub]
        touched = self.touched

        def changed(base: str, old: str | None) -> None:
            before.remember(base, old)
            touched.add(base)

        path = os.path.join(self.path, sub)
        return replay(state.listing, path, events, changed, self.warn_once)

    def _recreate_subdir(self, sub: str) -> None:
        # A Maildir missing cur/ or new/ (a tool that prunes empty directories): repair it
        # rather than fail, as Dovecot does.
        try:
            self.dir.mkdir(sub)
        except FileExistsError:
            pass
        except OSError as exc:
            raise TemporaryFailure(f"cannot create {sub}/ in {self.name}: {exc.strerror}") from exc

    def list_names(self, sub: str) -> dict[str, str]:
        """List `sub` in full: base -> file name of every usable message file."""
        listing: dict[str, str] = {}
        duplicates: list[str] = []
        path = self.dir.where(sub)
        try:
            with self.dir.scandir(sub) as it:
                for entry in it:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    # Names the line- and space-based uidlist could not store are left alone
                    # (checked inline: this loop runs once per message on a cold open).
                    if not (name.isascii() and name.isprintable()) or " " in name:
                        self.warn_once("unusable-file-name", os.path.join(path, name))
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        self.warn_once("not-a-regular-file", os.path.join(path, name))
                        continue
                    base = name.partition(":")[0]
                    prev = listing.get(base)
                    if prev is not None:
                        duplicates.append(max(prev, name))
                        if prev < name:
                            continue
                    listing[base] = name
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TemporaryFailure(f"cannot list {sub}/ of {self.name}: {exc.strerror}") from exc
        for name in duplicates:
            self._fix_duplicate(sub, name, listing)
        return listing

    def _fix_duplicate(self, sub: str, name: str, listing: dict[str, str]) -> None:
        """Two files with one base name (a copy made by hand, a backup restored over the
        folder): the one whose name sorts first keeps the base and its UID, and this one gets
        a base of its own, its flags kept, as Dovecot's maildir_fix_duplicate() does. Left as
        it was, it would hide behind the other until a flag change renamed that one to a name
        sorting after it, and the change would seem undone."""
        _, sep, info = name.partition(":")
        new = unique_base() + sep + info
        where = os.path.join(self.dir.where(sub), name)
        try:
            self.dir.rename(sub, name, sub, new)
        except (OSError, MailError):  # gone meanwhile (another process fixed it), or cannot be
            self.warn_once("duplicate-base", where)
            return
        log.warn("duplicate-base-renamed", path=where, to=new)
        listing[new.partition(":")[0]] = new


def _same_directory(path: str, st: os.stat_result) -> bool:
    """Whether `path` (followed) is still the directory `st` was taken of."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)
