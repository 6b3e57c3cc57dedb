"""What a folder hands out: a `Message` (one visible message, as its file name describes it) and
a `SyncResult` (what changed between two looks at the folder).

Both are plain values, apart from the folder (mailbox.py) so that the modules that read, change
and sync a folder (reading.py, changing.py, syncing.py) and the protocols above share them
without importing the folder. A Message is made on demand and kept by the folder, which updates
its location when the file is renamed; nothing in it is read from the disk but on request.
"""

from __future__ import annotations

from mailstore.filenames import CHAR_TO_FLAG, sizes_of


class Message:
    """A message visible in the folder. Flags are the file name's letters.

    Sizes come from the base name's `,S=`/`,W=` on first use, not at load: a cold open of a
    100,000-message folder must not parse 100,000 names it may never be asked about.
    """

    __slots__ = ("_internaldate", "_sizes", "base", "letters", "name", "subdir", "uid")

    def __init__(self, uid: int, base: str, subdir: str, name: str) -> None:
        self.uid = uid
        self.base = base
        self.subdir = subdir
        self.name = name
        self.letters = letters_of_name(name)
        self._sizes: tuple[int | None, int | None] | None = None
        self._internaldate: float | None = None

    @property
    def size(self) -> int | None:
        """Bytes on disk, when the name says (else see Mailbox.message_size)."""
        if self._sizes is None:
            self._sizes = sizes_of(self.base)
        return self._sizes[0]

    @property
    def vsize(self) -> int | None:
        """CRLF size, when the name says (else see Mailbox.message_vsize)."""
        if self._sizes is None:
            self._sizes = sizes_of(self.base)
        return self._sizes[1]

    @property
    def recent(self) -> bool:
        """Still in new/: no mail reader has looked at it yet (maildir(5))."""
        return self.subdir == "new"

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(CHAR_TO_FLAG[c] for c in self.letters if c in CHAR_TO_FLAG)

    @property
    def known_internaldate(self) -> float | None:
        """The INTERNALDATE if it was read (Mailbox.internaldate), else None: no stat()."""
        return self._internaldate

    @property
    def seen(self) -> bool:
        return "S" in self.letters

    @property
    def deleted(self) -> bool:
        return "T" in self.letters

    @property
    def flag_key(self) -> str:
        """Equal for messages with equal flags and keywords: a cache key for what a protocol
        derives from flags (see Mailbox.flag_names)."""
        return self.letters

    def __repr__(self) -> str:
        return f"<Message uid={self.uid} {self.subdir}/{self.name}>"


class SyncResult:
    """What changed since the previous sync, in UIDs; and, for the messages removed, the last
    state the store knew them in (`ghosts`: their flags and sizes from the file name, their
    date if it was read), so that a reader that has not yet told its client of the expunge
    can still answer for them what needs no file (IMAP: RFC 2180 4.1)."""

    __slots__ = (
        "added",
        "changed",
        "ghosts",
        "highest",
        "modseqs",
        "origin",
        "removed",
        "uids",
        "uidvalidity_changed",
    )

    def __init__(self, origin: object = None) -> None:
        self.added: list[int] = []
        self.removed: list[int] = []
        self.changed: list[int] = []
        self.ghosts: dict[int, Message] = {}
        self.uidvalidity_changed = False
        # Filled by the folder's hooks (mailstore/folderstate.py) when it keeps an index: the
        # modseq of every added or changed UID, and the folder's HIGHESTMODSEQ after this.
        self.modseqs: dict[int, int] = {}
        self.highest = 0
        # Who made the change, for a change this process made itself (a STORE: that session
        # has answered it already); None for what a sync found.
        self.origin = origin
        # Set by FolderState.take: the folder's UID list as of the end of what it merged.
        self.uids: list[int] | None = None

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.uidvalidity_changed)

    def __repr__(self) -> str:
        return f"<SyncResult +{self.added} -{self.removed} ~{self.changed}>"


def letters_of_name(name: str) -> str:
    """The flag letters of a Maildir file name (after `:2,`; none without it)."""
    i = name.find(":2,")
    return name[i + 3 :] if i >= 0 else ""
