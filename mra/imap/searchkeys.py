"""What SEARCH keys match (RFC 3501 section 6.4.4 and the extensions): one message as SEARCH
sees it, and the keys of a search program, as pure functions. mra/imap/search.py parses a
program into these keys; what a key reads of a message (lazily, once) is
mra/imap/searchmessage.py.

Matching, `Key.match`, reads a :class:`SearchContext`. Keys on flags, sizes, dates and
numbers never call ``raw()``; the message is loaded (once) and parsed only for header and body
keys, and only if the cheaper keys of an AND/OR did not settle it.

- String keys match as substrings of decoded text, both sides folded by the i;unicode-casemap
  comparator (RFC 5051, as Dovecot applies it: mra/imap/casemap.py): case-insensitively, a
  precomposed "é" as "e" + U+0301, "ß" not as "ss". Headers are RFC 2047-decoded and
  unfolded, bodies of text parts transfer-decoded and charset-decoded. BODY searches the text
  parts, TEXT the header fields of the message and of its parts plus the text parts.
  ``HEADER name ""`` matches when the field exists.
- BEFORE/ON/SINCE compare the date of the INTERNALDATE in the server's time zone (the ``tz``
  argument of ``matches``; None means the local zone of this process); SAVEDBEFORE/SAVEDON/
  SAVEDSINCE (RFC 8514) the date of the save date, the same way.
- SENTBEFORE/SENTON/SENTSINCE compare the date written in the Date header, ignoring its time
  and zone (RFC 3501). A message without a parseable Date is sent on 1-Jan-1970, as in
  Dovecot.
- OLDER/YOUNGER (RFC 5032) compare the INTERNALDATE, to the second, with the time the
  program was parsed.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Container, Iterator
from dataclasses import dataclass, field

from mra.imap.casemap import fold_key
from mra.imap.searchmessage import MessageContext as MessageContext
from mra.imap.searchmessage import SearchContext as SearchContext
from mra.imap.searchmessage import SearchMessage
from mra.imap.searchmessage import _header_end as _header_end
from mra.imap.searchmessage import _raw_values as _raw_values
from mra.imap.searchmessage import address_text as address_text

# ---------------------------------------------------------------------------------------------
# The program: a tree of keys

# The name the keys (and search.py's tests of matching) give the message they match.
_Message = SearchMessage

COST_FLAGS = 0  # flags, sizes, dates, numbers: no message access
COST_HEADER = 1
COST_BODY = 2


class Key:
    """A search key; ``cost`` orders the evaluation of AND/OR operands."""

    @property
    def cost(self) -> int:
        return COST_FLAGS

    def match(self, m: _Message) -> bool:
        raise NotImplementedError

    def walk(self) -> Iterator[Key]:
        yield self


@dataclass(frozen=True)
class All(Key):
    def match(self, m: _Message) -> bool:
        return True


@dataclass(frozen=True)
class Flag(Key):
    """A system flag (``\\seen``, lower case) is set, or (``present=False``) is not."""

    flag: str
    present: bool = True

    def match(self, m: _Message) -> bool:
        return (self.flag in m.flags) == self.present


@dataclass(frozen=True)
class Keyword(Key):
    keyword: str
    present: bool = True

    def match(self, m: _Message) -> bool:
        return (self.keyword.lower() in m.keywords) == self.present


@dataclass(frozen=True)
class Size(Key):
    larger: bool
    octets: int

    def match(self, m: _Message) -> bool:
        size = m.ctx.size
        return size > self.octets if self.larger else size < self.octets


@dataclass(frozen=True)
class Date(Key):
    """``op`` is "before", "on" or "since"; ``source`` the date compared: "internal" (the
    INTERNALDATE), "sent" (the Date header) or "saved" (the save date, RFC 8514: a message
    without one matches none of the three)."""

    op: str
    date: _dt.date
    source: str = "internal"

    @property
    def cost(self) -> int:
        return COST_HEADER if self.source == "sent" else COST_FLAGS

    def match(self, m: _Message) -> bool:
        if self.source == "sent":
            day = m.sent_date()
        elif self.source == "saved":
            saved = m.saved_date()
            if saved is None:
                return False
            day = saved
        else:
            day = m.internal_date()
        if self.op == "before":
            return day < self.date
        if self.op == "on":
            return day == self.date
        return day >= self.date


@dataclass(frozen=True)
class Within(Key):
    """OLDER (``older``) and YOUNGER (RFC 5032): the INTERNALDATE is at or before ``limit``,
    or at or after it, ``limit`` being the time of the search less the interval. To the
    second, as Dovecot compares its whole seconds."""

    older: bool
    limit: int

    def match(self, m: _Message) -> bool:
        stamp = int(m.ctx.internaldate)
        return stamp <= self.limit if self.older else stamp >= self.limit


@dataclass(frozen=True)
class SavedDateSupported(Key):
    """SAVEDATESUPPORTED (RFC 8514 section 4): every message, when the mailbox keeps save
    dates (a Maildir always does), else none."""

    def match(self, m: _Message) -> bool:
        return m.ctx.savedate is not None


@dataclass(frozen=True)
class ModSeq(Key):
    """MODSEQ (RFC 7162 3.1.5): the message's modseq is at least ``value``. A context
    without modseqs (a folder without an index) has 0: nothing matches but MODSEQ 0."""

    value: int

    def match(self, m: _Message) -> bool:
        modseq = getattr(m.ctx, "modseq", 0)
        return bool(modseq >= self.value)


@dataclass(frozen=True)
class MessageSet(Key):
    """A sequence-set (``uid=False``) or ``UID`` set, as resolved by the caller's hook."""

    raw: bytes
    uid: bool
    members: Container[int] = field(compare=False)

    def match(self, m: _Message) -> bool:
        return (m.ctx.uid if self.uid else m.ctx.seqno) in self.members


@dataclass(frozen=True)
class Header(Key):
    """A header field contains ``text`` (FROM, TO, CC, BCC, SUBJECT and HEADER).

    As Dovecot 2.3 compares them (index-search.c, `search_header_arg`), a field's value is
    taken in one of three forms: ``plain`` for HEADER, the value as is; ``address`` for FROM,
    TO, CC and BCC, the address list parsed and written again in one normal form
    (`address_text`: comments dropped, every address as ``name <mailbox@domain>``, groups as
    ``group: ...;``); ``lwsp`` for SUBJECT, runs of blanks made one space. Encoded words are
    decoded after that, as Dovecot's header search decodes them.
    """

    name: str
    text: str
    form: str = "plain"
    folded: str = field(init=False, repr=False, compare=False)
    quick: bytes | None = field(init=False, repr=False, compare=False)
    words: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_needle(self)
        # The normal forms only drop, quote and space what the field holds: the runs of
        # letters and digits of the text must all be in the raw field for it to match, and
        # those of Dovecot's stand-ins for a missing mailbox or domain are left out.
        words = tuple(w for w in _WORD.findall(self.quick or b"") if w not in _FILLED_IN)
        # (`w not in _FILLED_IN` is a substring test: "box" could come from the stand-in.)
        object.__setattr__(self, "words", words)

    @property
    def cost(self) -> int:
        return COST_HEADER

    def match(self, m: _Message) -> bool:
        if self.quick is not None:
            plain = m.plain_header()
            if plain is not None:
                if self.form == "plain" and self.quick not in plain:
                    return False
                if self.form != "plain" and any(w not in plain for w in self.words):
                    return False
        needle = self.folded
        return any(needle in value for value in m.header(self.name, self.form))


_WORD = re.compile(rb"[a-z0-9]+")
_FILLED_IN = b"missing_mailbox missing_domain"  # what Dovecot's parser writes for a missing part


@dataclass(frozen=True)
class Body(Key):
    text: str
    folded: str = field(init=False, repr=False, compare=False)
    quick: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_needle(self)

    @property
    def cost(self) -> int:
        return COST_BODY

    def match(self, m: _Message) -> bool:
        return m.body_contains(self.folded, self.quick)


def _set_needle(key: Header | Body | Text) -> None:
    """The folded text, once per search; `quick`, its octets in lower case for the scans of
    SearchMessage.plain and plain_header, when it holds no line break or other control."""
    folded = fold_key(key.text)
    object.__setattr__(key, "folded", folded)
    # An empty text matches wherever the field (or, for BODY, anything) exists: no shortcut.
    quick = folded.lower().encode() if folded and folded.isprintable() else None
    object.__setattr__(key, "quick", quick)


@dataclass(frozen=True)
class Text(Key):
    text: str
    folded: str = field(init=False, repr=False, compare=False)
    quick: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_needle(self)
        if self.quick is not None and (b":" in self.quick or self.quick.startswith(b" ")):
            # The text writes each field "Name: value", whatever blanks the file has
            # around the colon: no scan of the file can rule out a key that holds the colon
            # or starts with that space.
            object.__setattr__(self, "quick", None)

    @property
    def cost(self) -> int:
        return COST_BODY

    def match(self, m: _Message) -> bool:
        return m.text_contains(self.folded, self.quick)


@dataclass(frozen=True)
class Not(Key):
    key: Key

    @property
    def cost(self) -> int:
        return self.key.cost

    def match(self, m: _Message) -> bool:
        return not self.key.match(m)

    def walk(self) -> Iterator[Key]:
        yield self
        yield from self.key.walk()


@dataclass(frozen=True)
class Or(Key):
    """Either key; built with the cheaper key on the left (it is tried first)."""

    left: Key
    right: Key

    @property
    def cost(self) -> int:
        return max(self.left.cost, self.right.cost)

    def match(self, m: _Message) -> bool:
        return self.left.match(m) or self.right.match(m)

    def walk(self) -> Iterator[Key]:
        yield self
        yield from self.left.walk()
        yield from self.right.walk()


@dataclass(frozen=True)
class And(Key):
    """All keys; built cheapest first, so that flags can settle it before the message
    is read."""

    keys: tuple[Key, ...]

    @property
    def cost(self) -> int:
        return max((k.cost for k in self.keys), default=COST_FLAGS)

    def match(self, m: _Message) -> bool:
        return all(k.match(m) for k in self.keys)

    def walk(self) -> Iterator[Key]:
        yield self
        for k in self.keys:
            yield from k.walk()
