"""What SEARCH and FETCH made of a message, kept per process for the next commands.

Why. Under a mixed load (bench/load.py, issue #16) SEARCH TEXT was nine tenths of the server's
CPU: each one read every message of the folder, parsed its MIME structure, decoded and folded
its header fields and text parts, to compare one key; and each FETCH ENVELOPE BODYSTRUCTURE
read and parsed its messages again (Dovecot keeps both in its dovecot.index.cache). A client
searches the same folder again and again (Thunderbird's quick filter searches at each letter
typed; webmail; several clients of one account), and clients fetch the same structures again
(each device of an account, each new session of one), while a Maildir message never changes
under its base name (Maildir's own rule: new content is a new file with a new name; flags
change only the `:2,` suffix). So what was made once answers the next commands without a file
read:

* `TEXT`: the folded text SEARCH TEXT compares (searchkeys._Message.text), or, for a plain
  message that a byte scan rules out without a parse, that scan's form of it (octets);
* `ENVELOPE`, `BODYSTRUCTURE`, `BODY`: the FETCH items as sent (fetch.py).

Bounds (SECURITY.md 2). One cache per worker process, of `[limits] message_cache` bytes at
most (as `sys.getsizeof` counts the values), least recently used first out; a value larger
than an eighth of it is never kept, so one huge message cannot empty it. 0 turns it off. The
key is the folder's path, the message's base name and the kind of value: a session only ever
asks for messages of the folders it may open, so no account is answered from another's. A
message expunged is not asked for again (the view no longer gives it); its values age out.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Services

SHARED_KEY = "imap-message-cache"

TEXT = "TEXT"


class MessageCache:
    """Values under (folder path, base name, kind), least recently used out first. Searches
    and FETCHes run in the thread pool, several at once: every access holds the lock."""

    __slots__ = ("_lock", "_values", "budget", "largest", "used")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.largest = budget // 8
        self.used = 0
        self._values: OrderedDict[tuple[str, str, str], str | bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, folder: str, base: str, kind: str) -> str | bytes | None:
        key = (folder, base, kind)
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, folder: str, base: str, kind: str, value: str | bytes) -> None:
        size = sys.getsizeof(value)
        if size > self.largest:
            return
        key = (folder, base, kind)
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self.used -= sys.getsizeof(old)
            self._values[key] = value
            self.used += size
            while self.used > self.budget:
                _, dropped = self._values.popitem(last=False)
                self.used -= sys.getsizeof(dropped)


def message_cache(services: Services) -> MessageCache | None:
    """The process's cache (None when `[limits] message_cache` is 0)."""
    budget = services.config.limits.message_cache
    if budget <= 0:
        return None
    return services.shared(SHARED_KEY, lambda: MessageCache(budget))
