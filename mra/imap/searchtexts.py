"""The folded text SEARCH TEXT compares, kept per message for the process's next searches.

Why. Under a mixed load (bench/load.py, issue #16) SEARCH TEXT was nine tenths of the server's
CPU: each one read every message of the folder, parsed its MIME structure, decoded and folded
its header fields and text parts, to compare one key. A client searches the same folder again
and again (Thunderbird's quick filter searches at each letter typed; webmail; several clients
of one account), and a Maildir message never changes under its base name (Maildir's own
rule: new content is a new file with a new name; flags change only the `:2,` suffix), so
the folded text made once can answer the next searches without a file read. Of a plain
message, which a byte scan rules out without a parse (searchkeys._Message.text_contains),
what is kept is that scan's form of it: the file is not read again either.

Bounds (SECURITY.md 2). One cache per worker process, of `[limits] search_text_cache` bytes
of text at most (as `sys.getsizeof` counts them), least recently used first out; a text larger
than an eighth of it is never kept, so one huge message cannot empty it. 0 turns it off. The
key is the folder's path and the message's base name: a session only ever asks for messages of
the folders it may open, so the texts of one account are not another's. A message expunged is
not asked for again (the view no longer gives it); its text ages out.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Services

SHARED_KEY = "imap-search-texts"


class TextCache:
    """Folded message texts (or scan forms) under (folder path, base name), least recently
    used out first.
    Searches run in the thread pool, several at once: every access holds the lock."""

    __slots__ = ("_lock", "_texts", "budget", "largest", "used")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.largest = budget // 8
        self.used = 0
        self._texts: OrderedDict[tuple[str, str], str | bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, folder: str, base: str) -> str | bytes | None:
        key = (folder, base)
        with self._lock:
            text = self._texts.get(key)
            if text is not None:
                self._texts.move_to_end(key)
            return text

    def put(self, folder: str, base: str, text: str | bytes) -> None:
        size = sys.getsizeof(text)
        if size > self.largest:
            return
        key = (folder, base)
        with self._lock:
            old = self._texts.pop(key, None)
            if old is not None:
                self.used -= sys.getsizeof(old)
            self._texts[key] = text
            self.used += size
            while self.used > self.budget:
                _, dropped = self._texts.popitem(last=False)
                self.used -= sys.getsizeof(dropped)


def text_cache(services: Services) -> TextCache | None:
    """The process's cache (None when `[limits] search_text_cache` is 0)."""
    budget = services.config.limits.search_text_cache
    if budget <= 0:
        return None
    return services.shared(SHARED_KEY, lambda: TextCache(budget))
