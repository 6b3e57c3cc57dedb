"""A user's mail store: the Maildir++ root (INBOX) and its folders.

Layout, as Dovecot's Maildir++ (`LAYOUT=maildir++`, the default): INBOX is the root with `cur/ new/
tmp/`; folder `A.B` (`.` is the hierarchy separator) is the directory `.A.B/` in the root, named in
modified UTF-7, holding a `maildirfolder` file; subscriptions are in `subscriptions` in the root.
Every path is built from a validated name (names.py) and checked to stay inside the root, and
folder directories that are symlinks are not followed.

UIDVALIDITY values come from the root's `dovecot-uidvalidity` file (the last value given, in hex,
as Dovecot keeps it): a new folder gets max(now, last + 1), so a folder deleted and re-created
never gets its old UIDVALIDITY back (RFC 3501 2.3.1.1), and it is never 0 (Outlook breaks).
"""

from __future__ import annotations

import os
import stat
import time

from mailstore import log
from mailstore.errors import (
    AlreadyExists,
    InvalidName,
    MailError,
    NotFound,
    NotPossible,
    TemporaryFailure,
)
from mailstore.folderdir import adopt, adopt_path, make_dirs
from mailstore.lock import DotLock
from mailstore.mailbox import Mailbox
from mailstore.names import (
    INBOX,
    SEPARATOR,
    decode_mutf7,
    encode_mutf7,
    folder_dirname,
    is_inside,
    name_from_dirname,
)
from mailstore.names import validate_name as _validate
from mailstore.uidlist import replace_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.folderstate import SharedFolders
    from mailstore.quota import MaildirQuota, QuotaLimit

UIDVALIDITY_FILE = "dovecot-uidvalidity"
SUBSCRIPTIONS_FILE = "subscriptions"
MAILDIRFOLDER = "maildirfolder"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW  # made by us, never found there


def make_maildir(path: str, folder: bool) -> None:
    """Create a Maildir (cur/ new/ tmp/, and `maildirfolder` for a folder). As root, what is
    made belongs to the owner of the directory it is made in (folderdir.py)."""
    try:
        make_dirs(path, 0o700)
        for sub in ("cur", "new", "tmp"):
            try:
                os.mkdir(os.path.join(path, sub), 0o700)
            except FileExistsError:
                continue
            adopt_path(os.path.join(path, sub))
        if folder:
            marker = os.path.join(path, MAILDIRFOLDER)
            try:
                fd = os.open(marker, _NEW_FILE, 0o600)
            except FileExistsError:
                return
            try:
                adopt(fd, path)
            finally:
                os.close(fd)
    except OSError as exc:
        raise TemporaryFailure(f"cannot create mailbox: {exc.strerror}") from exc


class MailStore:
    """One user's Maildir++ tree. Keeps an open `Mailbox` per folder (so re-opening is a sync).

    A server process passes `folders`, its registry of shared folder states
    (mailstore/folderstate.py): the Mailbox of a folder is then the one every session of the
    process uses, with the folder index. `index_root`: where the indexes are, "" beside each
    folder (`mra.index`), a directory (its INBOX's index in it, a folder's in `.Name/`, as
    Dovecot's INDEX=), None for none (the delivery agent never opens an index)."""

    def __init__(
        self,
        root: str,
        *,
        create: bool = True,
        quota_limit: QuotaLimit | None = None,
        folders: SharedFolders | None = None,
        index_root: str | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self._folders = folders
        self._index_root = index_root
        if create:
            make_maildir(self.root, folder=False)
        elif not os.path.isdir(os.path.join(self.root, "cur")):
            raise NotFound("mail store does not exist")
        self._quota_limit = quota_limit
        self._quota: MaildirQuota | None = None
        self._mailboxes: dict[str, Mailbox] = {}

    # -- names and paths ------------------------------------------------------------------

    def path_of(self, name: str) -> str:
        dirname = folder_dirname(name)
        path = os.path.join(self.root, dirname) if dirname else self.root
        if not is_inside(self.root, path):  # defence in depth: names.py already refuses it
            raise InvalidName("invalid mailbox name")
        return path

    @property
    def quota(self) -> MaildirQuota | None:
        """The Maildir++ quota, when a limit is configured or a `maildirsize` file exists."""
        if self._quota is None and (
            self._quota_limit is not None or os.path.exists(os.path.join(self.root, "maildirsize"))
        ):
            from mailstore.quota import MaildirQuota

            self._quota = MaildirQuota(self.root, self._quota_limit)
        return self._quota

    def exists(self, name: str) -> bool:
        """Whether folder `name` exists; False for a name no folder can have (`a/b`): the
        question has an answer (Sieve's mailboxexists, mda's fileinto ask it of any name)."""
        try:
            path = self.path_of(name)
        except InvalidName:
            return False
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and os.path.isdir(os.path.join(path, "cur"))

    # -- mailboxes ------------------------------------------------------------------------

    def mailbox(self, name: str) -> Mailbox:
        """The open folder `name` (synced on first use). NotFound if it does not exist."""
        canonical = _validate(name, create=False)
        box = self._mailboxes.get(canonical)
        if box is not None:
            if os.path.isdir(os.path.join(box.path, "cur")):
                return box
            del self._mailboxes[canonical]
        if not self.exists(canonical):
            raise NotFound(f"mailbox {canonical} does not exist")
        path = self.path_of(canonical)

        def make() -> Mailbox:
            return Mailbox(path, canonical, self.new_uidvalidity, self.quota, root=self.root)

        if self._folders is not None:
            box = self._folders.mailbox(path, make, self.index_dir(canonical))
        else:
            box = make()
        self._mailboxes[canonical] = box
        return box

    def opened(self, name: str) -> Mailbox | None:
        """Folder `name` if this store has it open already, else None: no disk access (an
        IMAP SELECT asks whether it can answer without the thread pool)."""
        try:
            return self._mailboxes.get(_validate(name, create=False))
        except MailError:
            return None

    def index_dir(self, name: str) -> str | None:
        """Where folder `name`'s index is (see the class note): "" beside it, a directory, or
        None for none."""
        if self._index_root is None or self._index_root == "":
            return self._index_root
        dirname = folder_dirname(name)
        return os.path.join(self._index_root, dirname) if dirname else self._index_root

    def _forget(self, name: str) -> None:
        """Folder `name` was deleted or renamed away: its state and its index go (an index
        beside the folder went with it; one in `index_root` is removed here)."""
        self._mailboxes.pop(name, None)
        if self._folders is not None:
            self._folders.forget(self.path_of(name))
        where = self.index_dir(name)
        if where and name != INBOX and where != self._index_root:
            _rmtree(where)

    def list_folders(self) -> list[str]:
        """INBOX and every folder, sorted (INBOX first)."""
        names = []
        try:
            with os.scandir(self.root) as it:
                for entry in it:
                    if entry.name[0] != "." or not entry.is_dir(follow_symlinks=False):
                        continue
                    name = name_from_dirname(entry.name)
                    if name is None:
                        continue
                    if not os.path.isdir(os.path.join(entry.path, "cur")):
                        continue
                    names.append(name)
        except OSError as exc:
            raise TemporaryFailure(f"cannot list folders: {exc.strerror}") from exc
        names.sort()
        return [INBOX, *names]

    def create_folder(self, name: str) -> None:
        canonical = _validate(name, create=True)
        if canonical == INBOX or self.exists(canonical):
            raise AlreadyExists(f"mailbox {canonical} already exists")
        path = self.path_of(canonical)
        if os.path.lexists(path):
            raise AlreadyExists(f"mailbox {canonical} already exists")
        # Create under a temporary name and rename, so no half-made folder is ever listed.
        tmp = os.path.join(self.root, "tmp", f"newfolder.{os.getpid()}.{time.time_ns()}")
        make_maildir(tmp, folder=True)
        try:
            os.rename(tmp, path)
        except OSError as exc:
            _rmtree(tmp)
            if os.path.isdir(path):
                raise AlreadyExists(f"mailbox {canonical} already exists") from None
            raise TemporaryFailure(f"cannot create mailbox: {exc.strerror}") from exc
        # The UIDVALIDITY is fixed at creation, not at first open.
        self.mailbox(canonical).sync()

    def delete_folder(self, name: str) -> None:
        canonical = _validate(name, create=False)
        if canonical == INBOX:
            raise NotPossible("INBOX cannot be deleted")
        if not self.exists(canonical):
            raise NotFound(f"mailbox {canonical} does not exist")
        path = self.path_of(canonical)
        # Rename first (atomic: the folder vanishes at once), then remove at leisure. The
        # `..` prefix is never a folder name, so a crash leaves nothing listed.
        trash = os.path.join(self.root, f"..deleted.{os.getpid()}.{time.time_ns()}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            raise NotFound(f"mailbox {canonical} does not exist") from None
        except OSError as exc:
            raise TemporaryFailure(f"cannot delete mailbox: {exc.strerror}") from exc
        self._forget(canonical)
        _rmtree(trash)
        from mailstore import specialuse  # not on the delivery agent's path

        specialuse.folder_deleted(self.root, canonical)

    def rename_folder(self, old: str, new: str) -> None:
        """Rename a folder and its children; renaming INBOX moves its messages (RFC 3501 6.3.5)."""
        old_c = _validate(old, create=False)
        new_c = _validate(new, create=True)
        if new_c == INBOX or self.exists(new_c):
            raise AlreadyExists(f"mailbox {new_c} already exists")
        if old_c == INBOX:
            self._rename_inbox(new_c)
            return
        if not self.exists(old_c):
            raise NotFound(f"mailbox {old_c} does not exist")
        if (new_c + SEPARATOR).startswith(old_c + SEPARATOR):
            raise NotPossible("a mailbox cannot be moved into itself")
        prefix = old_c + SEPARATOR
        moves = [(old_c, new_c)]
        moves += [(n, new_c + n[len(old_c) :]) for n in self.list_folders() if n.startswith(prefix)]
        for _src, dst in moves:
            if self.exists(dst):
                raise AlreadyExists(f"mailbox {dst} already exists")
        for src, dst in moves:
            try:
                os.rename(self.path_of(src), self.path_of(dst))
            except OSError as exc:
                raise TemporaryFailure(f"cannot rename mailbox: {exc.strerror}") from exc
            self._forget(src)
        subs = self.subscriptions()
        if any(s == old_c or s.startswith(prefix) for s in subs):
            self._write_subscriptions(
                [new_c + s[len(old_c) :] if s == old_c or s.startswith(prefix) else s for s in subs]
            )
        from mailstore import specialuse

        specialuse.folder_renamed(self.root, old_c, new_c)

    def _rename_inbox(self, new: str) -> None:
        inbox = self.mailbox(INBOX)
        inbox.sync()
        self.create_folder(new)
        dest = self.mailbox(new)
        pairs = inbox.copy_to(inbox.uids(), dest)
        inbox.expunge([src for src, _ in pairs])

    # -- subscriptions --------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """Subscribed names, from Dovecot's `subscriptions` file (version 2 or the older 1)."""
        path = os.path.join(self.root, SUBSCRIPTIONS_FILE)
        try:
            with open(path, "rb") as f:
                data = f.read(1 << 20)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TemporaryFailure(f"cannot read subscriptions: {exc.strerror}") from exc
        lines = data.decode("utf-8", "replace").splitlines()
        if lines and lines[0].startswith("V\t"):
            # Version 2 (Dovecot 2.3): a header and a blank line, then one name per line in
            # modified UTF-7 with TAB between hierarchy levels.
            lines = [ln.replace("\t", SEPARATOR) for ln in lines[2:]]
        out = []
        for line in lines:
            if not line:
                continue
            try:
                name = _validate(decode_mutf7(line), create=False)
            except InvalidName:
                log.warn("subscription-ignored", line=line[:80])
                continue
            if name not in out:
                out.append(name)
        return out

    def subscribe(self, name: str) -> None:
        canonical = _validate(name, create=False)
        subs = self.subscriptions()
        if canonical not in subs:
            self._write_subscriptions([*subs, canonical])

    def unsubscribe(self, name: str) -> None:
        canonical = _validate(name, create=False)
        subs = self.subscriptions()
        if canonical in subs:
            self._write_subscriptions([s for s in subs if s != canonical])

    def _write_subscriptions(self, names: list[str]) -> None:
        path = os.path.join(self.root, SUBSCRIPTIONS_FILE)
        with DotLock(path):
            lines = [encode_mutf7(n).replace(SEPARATOR, "\t") + "\n" for n in names]
            data = ("V\t2\n\n" + "".join(lines)).encode()
            replace_file(path, data, os.path.join(self.root, "tmp"))

    # -- special use (RFC 6154 CREATE ... USE): mailstore/specialuse.py ------------------

    def user_special_uses(self) -> dict[str, tuple[str, ...]]:
        """The special uses the user gave folders (not the configuration's)."""
        from mailstore import specialuse

        return specialuse.read_user_uses(self.root)

    def set_special_use(self, name: str, uses: tuple[str, ...]) -> None:
        from mailstore import specialuse

        specialuse.set_user_uses(self.root, _validate(name, create=False), uses)

    # -- UIDVALIDITY ----------------------------------------------------------------------

    def new_uidvalidity(self) -> int:
        """The next UIDVALIDITY, kept as Dovecot keeps it: `dovecot-uidvalidity` holds the last
        value in hex, and an empty `dovecot-uidvalidity.<hex>` file marks it."""
        path = os.path.join(self.root, UIDVALIDITY_FILE)
        with DotLock(path):
            last = 0
            try:
                with open(path, "rb") as f:
                    text = f.read(64).decode("ascii", "replace").strip()
                last = int(text, 16) if text else 0
            except FileNotFoundError:
                pass
            except (OSError, ValueError):
                log.warn("uidvalidity-file-unreadable", path=path)
            value = max(int(time.time()), last + 1)
            if value >= 2**32:
                value = 1
            replace_file(path, f"{value:08x}".encode(), os.path.join(self.root, "tmp"))
            marker = f"{path}.{value:08x}"
            try:
                os.rename(f"{path}.{last:08x}", marker)
            except OSError:
                try:
                    fd = os.open(marker, _NEW_FILE, 0o444)
                    try:
                        adopt(fd, self.root)
                    finally:
                        os.close(fd)
                except OSError:
                    pass
        return value


def _rmtree(path: str) -> None:
    import shutil

    # rmtree does not follow symlinks: a planted link cannot make us delete outside the tree.
    shutil.rmtree(path, ignore_errors=True)
