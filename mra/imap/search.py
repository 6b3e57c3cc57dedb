"""IMAP SEARCH programs (RFC 3501 section 6.4.4): parsing and matching, as pure functions.

Input: the SEARCH arguments as the command parser has tokenised them, a list of
:data:`Token`: atoms, quoted strings and literals as ``bytes``, parenthesised lists as
nested Python lists.  ``[b"CHARSET", b"UTF-8", b"OR", b"FROM", b"bob", b"SEEN"]`` or
``[b"NOT", [b"SEEN", b"1:5"], b"SUBJECT", b"caf\\xc3\\xa9"]``.  Atoms and strings are not
told apart: a key name given as a quoted string is accepted too.

:func:`parse_search` returns a :class:`SearchProgram` or raises :class:`SearchError`
(answer BAD) or :class:`BadCharsetError` (answer ``NO [BADCHARSET (UTF-8 US-ASCII)]``).
The charset is optional (UTF-8 when absent, as Dovecot does); the strings must then be
valid UTF-8 (US-ASCII is a subset).

Message sets: a sequence-set argument (``1:4,7``, ``5:*``, and ``$`` of RFC 5182) and the
argument of ``UID`` are handed to the caller's ``resolve_set(raw, uid)`` hook, which returns
the member numbers (anything with ``in``), so that ``*``, the sequence-to-UID mapping and
``$`` stay the caller's business.  Without a hook, :class:`SequenceSet` is used and ``*``
means "no upper bound".

Matching, :meth:`SearchProgram.matches`, reads a :class:`SearchContext`.  Keys on flags,
sizes, dates and numbers never call ``raw()``; the message is loaded (once) and parsed only
for header and body keys, and only if the cheaper keys of an AND/OR did not settle it.

- String keys match case-insensitively as substrings of decoded text (compared after
  canonical decomposition and lower-casing, as Dovecot does; "ß" is not "ss"):
  headers RFC 2047-decoded and unfolded, bodies of text parts transfer-decoded and
  charset-decoded.  BODY searches the text parts, TEXT the header fields of the message
  and of its parts plus the text parts.  ``HEADER name ""`` matches when the field exists.
- BEFORE/ON/SINCE compare the date of the INTERNALDATE in the server's time zone (the
  ``tz`` argument of ``matches``; None means the local zone of this process).
- SENTBEFORE/SENTON/SENTSINCE compare the date written in the Date header, ignoring its
  time and zone (RFC 3501).  A message without a parseable Date is sent on 1-Jan-1970,
  as in Dovecot.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from collections.abc import Callable, Container, Iterator, Sequence, Set
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from typing import Protocol, TypeAlias

from mailstore.content import header_end
from mra.imap import mime

__all__ = [
    "BadCharsetError",
    "MessageContext",
    "SearchContext",
    "SearchError",
    "SearchProgram",
    "SequenceSet",
    "Token",
    "parse_search",
]

Token: TypeAlias = "bytes | list[Token]"
SetResolver: TypeAlias = Callable[[bytes, bool], Container[int]]

CHARSETS = ("UTF-8", "US-ASCII")


class SearchError(Exception):
    """A malformed search program: answer ``BAD`` (``status``) with this message."""

    status = "BAD"
    code: bytes | None = None


class BadCharsetError(SearchError):
    """An unsupported CHARSET: answer ``NO [BADCHARSET (UTF-8 US-ASCII)]``."""

    status = "NO"
    code = b"BADCHARSET (UTF-8 US-ASCII)"


# ---------------------------------------------------------------------------------------------
# What a message looks like to SEARCH


class SearchContext(Protocol):
    """One message as SEARCH sees it.  ``flags`` are the system flags it has, backslash
    included (``\\Seen``, ``\\Answered``, ``\\Flagged``, ``\\Deleted``, ``\\Draft`` and the
    session's ``\\Recent``); ``keywords`` its keywords; ``internaldate`` in seconds since the
    epoch; ``size`` the RFC822.SIZE (CRLF octets).  ``raw()`` returns the message as stored;
    it is only called when a key needs the header or body."""

    @property
    def uid(self) -> int: ...
    @property
    def seqno(self) -> int: ...
    @property
    def flags(self) -> Set[str]: ...
    @property
    def keywords(self) -> Set[str]: ...
    @property
    def internaldate(self) -> float: ...
    @property
    def size(self) -> int: ...
    def raw(self) -> bytes: ...


@dataclass
class MessageContext:
    """A ready-made :class:`SearchContext`: the message bytes come from ``loader``, called
    at most once (``loads`` counts the calls, for tests)."""

    uid: int
    seqno: int
    flags: Set[str]
    keywords: Set[str]
    internaldate: float
    size: int
    loader: Callable[[], bytes]
    loads: int = 0
    _raw: bytes | None = field(default=None, repr=False)
    # Optional: the header block alone, e.g. from a cache, so header keys need no file read.
    header_loader: Callable[[], bytes] | None = None

    def raw(self) -> bytes:
        if self._raw is None:
            self.loads += 1
            self._raw = self.loader()
        return self._raw

    def header_block(self) -> bytes:
        if self._raw is None and self.header_loader is not None:
            return self.header_loader()
        raw = self.raw()
        return raw[: _header_end(raw)]


# ---------------------------------------------------------------------------------------------
# Sequence sets


_SET_ATOM = re.compile(rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*")


def is_sequence_set(raw: bytes) -> bool:
    """True for ``sequence-set`` syntax (RFC 3501) or ``$`` (RFC 5182)."""
    return raw == b"$" or _SET_ATOM.fullmatch(raw) is not None


@dataclass(frozen=True)
class SequenceSet:
    """A parsed sequence-set; ``None`` stands for ``*``.  Ranges are kept low..high."""

    ranges: tuple[tuple[int | None, int | None], ...]

    @classmethod
    def parse(cls, raw: bytes) -> SequenceSet:
        if _SET_ATOM.fullmatch(raw) is None:
            raise SearchError(f"invalid sequence set {raw.decode('latin-1')!r}")
        ranges: list[tuple[int | None, int | None]] = []
        for item in raw.split(b","):
            first, _, last = item.partition(b":")
            lo = None if first == b"*" else int(first)
            hi = lo if not last else (None if last == b"*" else int(last))
            if lo == 0 or hi == 0:
                raise SearchError("0 is not a valid message number")
            if lo is None or (hi is not None and lo > hi):
                lo, hi = hi, lo
            ranges.append((lo, hi))
        return cls(tuple(ranges))

    def resolve(self, largest: int | None) -> SequenceSet:
        """``*`` replaced by ``largest`` (RFC 3501: ``5:*`` in a 3-message mailbox is 3:5)."""
        if largest is None:
            return self
        out: list[tuple[int | None, int | None]] = []
        for lo, hi in self.ranges:
            lo2 = largest if lo is None else lo
            hi2 = largest if hi is None else hi
            out.append((min(lo2, hi2), max(lo2, hi2)))
        return SequenceSet(tuple(out))

    def __contains__(self, n: object) -> bool:
        if not isinstance(n, int):
            return False
        for lo, hi in self.ranges:
            if lo is None:  # "*" alone: the largest, unknown here
                continue
            if n >= lo and (hi is None or n <= hi):
                return True
        return False


def _default_resolver(raw: bytes, uid: bool) -> Container[int]:
    if raw == b"$":
        raise SearchError("$ (SEARCHRES) needs a saved result")
    return SequenceSet.parse(raw)


# ---------------------------------------------------------------------------------------------
# The program: a tree of keys

COST_FLAGS = 0  # flags, sizes, dates, numbers: no message access
COST_HEADER = 1
COST_BODY = 2


# See _Message.plain. A charset name counts only when nothing but a delimiter follows it.
_IDENTITY_CHARSET = re.compile(
    rb"charset[ \t\r\n]*=[ \t\r\n]*\"?"
    rb"(?:us-ascii|ascii|utf-8|utf8|iso-8859-[0-9]{1,2}|windows-125[0-8]|koi8-[ru])"
    rb"(?=[\";\s]|$)"
)
_DAY_OF_WEEK = re.compile(r"^\s*[A-Za-z]+\s*,")


def _fold(text: str) -> str:
    """Comparison form, close to Dovecot's: canonical decomposition (so "ö" precomposed
    or not is the same) and simple lower case (no "ß" -> "ss", no ligature splitting)."""
    return unicodedata.normalize("NFD", text).lower().replace("\u03c2", "\u03c3")


def _raw_values(part: mime.Part, name: str) -> list[bytes]:
    """Every value of the field `name` as it is written, unfolded, not decoded."""
    key = name.encode("latin-1", "replace")
    out = []
    for f in part.fields:
        if f.lname == key and f.value_start >= 0:
            out.append(part.buf[f.value_start : f.end].replace(b"\r\n", b"").replace(b"\n", b""))
    return out


def _formed(raw: bytes, form: str) -> str:
    """A raw field value (unfolded) in the `address` or `lwsp` form, encoded words decoded."""
    if form == "address":
        raw = address_text(mime.envelope_addresses(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if form == "lwsp":
        text = _LWSP.sub(" ", text.lstrip(" \t"))
    return mime.decode_rfc2047(text).strip(" \t")


def _header_end(raw: bytes) -> int:
    """Where the header block ends (after its blank line), or the whole message."""
    end = header_end(raw)
    return end if end >= 0 else len(raw)


class _Message:
    """What matching needs of one message; the message itself is parsed lazily."""

    __slots__ = (
        "_body",
        "_flags",
        "_headers",
        "_keywords",
        "_part",
        "_plain",
        "_plain_header",
        "_raw",
        "_text",
        "_top",
        "ctx",
        "tz",
    )

    def __init__(self, ctx: SearchContext, tz: _dt.tzinfo | None) -> None:
        self.ctx = ctx
        self.tz = tz
        self._flags: Set[str] | None = None
        self._keywords: Set[str] | None = None
        self._plain: bytes | bool | None = False  # False: not looked at yet (see plain)
        self._plain_header: bytes | bool | None = False
        self._raw: bytes | None = None
        self._part: mime.Part | None = None
        self._top: mime.Part | None = None
        self._headers: dict[tuple[str, str], list[str]] = {}
        self._body: str | None = None
        self._text: str | None = None

    @property
    def flags(self) -> Set[str]:
        """Lower case. A context may offer them folded already (`folded_flags`): a server
        can remember the sets per combination of flags instead of folding per message."""
        if self._flags is None:
            folded = getattr(self.ctx, "folded_flags", None)
            self._flags = folded if folded is not None else {f.lower() for f in self.ctx.flags}
        return self._flags

    @property
    def keywords(self) -> Set[str]:
        if self._keywords is None:
            folded = getattr(self.ctx, "folded_keywords", None)
            if folded is not None:
                self._keywords = folded
            else:
                self._keywords = {k.lower() for k in self.ctx.keywords}
        return self._keywords

    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = self.ctx.raw()  # a file read, for a server: once per message
        return self._raw

    @property
    def part(self) -> mime.Part:
        if self._part is None:
            self._part = mime.parse(self.raw())
        return self._part

    @property
    def top(self) -> mime.Part:
        """The top-level header alone: parsed without the body's MIME structure, which a
        header key (SUBJECT, FROM, HEADER...) never needs."""
        if self._part is not None:
            return self._part
        if self._top is None:
            self._top = mime.parse(self._header_block())
        return self._top

    def header(self, name: str, form: str = "plain") -> list[str]:
        """The values of a field, folded, in the form a key compares (see Header)."""
        key = name.lower()
        values = self._headers.get((key, form))
        if values is None:
            if form == "plain":
                values = [_fold(v) for v in mime.header_values(self.top, key)]
            else:
                values = [_fold(_formed(raw, form)) for raw in _raw_values(self.top, key)]
            self._headers[(key, form)] = values
        return values

    def plain(self) -> bytes | None:
        """The message in lower case when its body text is the message's own bytes, or None.

        That holds when the message is ASCII, no part is base64 or quoted-printable, and every
        charset named maps ASCII to itself: then decoding the text parts changes nothing and
        folding is ASCII lower case, so the body text is made of pieces of these bytes, and a
        BODY key whose folded text (with no line break) is not in them cannot match. Most
        messages of a mailbox are like that, and proving the absence costs a scan instead of a
        MIME parse.
        """
        if self._plain is False:
            raw = self.raw()
            low = raw.lower() if raw.isascii() else b""
            if (
                low
                and b"base64" not in low
                and b"quoted-printable" not in low
                and low.count(b"charset") == len(_IDENTITY_CHARSET.findall(low))
            ):
                self._plain = low
            else:
                self._plain = None
        return self._plain if isinstance(self._plain, bytes) else None

    def plain_header(self) -> bytes | None:
        """The header block unfolded (line ends removed) in lower case, when every field value
        is a piece of it: the block is ASCII and holds no encoded word (RFC 2047) once
        unfolded. Otherwise None. (See plain: the same argument, for header keys.)"""
        if self._plain_header is False:
            block = self._header_block()
            low = block.lower().replace(b"\r\n", b"").replace(b"\n", b"")
            ok = block.isascii() and b"=?" not in low
            self._plain_header = low if ok else None
        return self._plain_header if isinstance(self._plain_header, bytes) else None

    def _header_block(self) -> bytes:
        block = getattr(self.ctx, "header_block", None)
        if block is not None:
            return block()  # type: ignore[no-any-return]
        raw = self.raw()
        return raw[: _header_end(raw)]

    def body_contains(self, needle: str, quick: bytes | None) -> bool:
        """Whether the folded body text holds `needle`; `quick` is its octets when it has no
        line break (see plain)."""
        if self._body is not None or quick is None:
            return needle in self.body()
        plain = self.plain()
        if plain is not None and quick not in plain:
            return False
        # body() joins the parts' texts with line breaks, which `needle` does not hold: a
        # match is inside one part, and an ASCII text folds by lower case alone.
        for text in mime.body_texts(self.part):
            if needle in (text.lower() if text.isascii() else _fold(text)):
                return True
        return False

    def body(self) -> str:
        if self._body is None:
            self._body = _fold("\n".join(mime.body_texts(self.part)))
        return self._body

    def text(self) -> str:
        if self._text is None:
            headers = "\n".join(mime.all_header_texts(self.part))
            self._text = _fold(headers) + "\n" + self.body()
        return self._text

    def internal_date(self) -> _dt.date:
        stamp = self.ctx.internaldate
        if self.tz is None:
            return _dt.datetime.fromtimestamp(stamp).date()
        return _dt.datetime.fromtimestamp(stamp, self.tz).date()

    def sent_date(self) -> _dt.date:
        """The date written in the first Date field; 1-Jan-1970 if there is none or it
        cannot be parsed (as Dovecot: later Date fields are not looked at)."""
        values = mime.header_values(self.top, "date")
        if values:
            parsed = parsedate_tz(_DAY_OF_WEEK.sub("", values[0]))
            if parsed is not None:
                try:
                    return _dt.date(parsed[0], parsed[1], parsed[2])
                except ValueError:
                    pass
        return _dt.date(1970, 1, 1)


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
    """``op`` is "before", "on" or "since"; ``sent`` picks the Date header over the
    INTERNALDATE."""

    op: str
    date: _dt.date
    sent: bool = False

    @property
    def cost(self) -> int:
        return COST_HEADER if self.sent else COST_FLAGS

    def match(self, m: _Message) -> bool:
        day = m.sent_date() if self.sent else m.internal_date()
        if self.op == "before":
            return day < self.date
        if self.op == "on":
            return day == self.date
        return day >= self.date


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
_ATEXT = frozenset(b"!#$%&'*+-/=?^_`{|}~") | frozenset(range(0x30, 0x3A))
_ATEXT |= (
    frozenset(range(0x41, 0x5B)) | frozenset(range(0x61, 0x7B)) | frozenset(range(0x80, 0x100))
)
_LWSP = re.compile(r"[ \t]+")


def _maybe_quoted(word: bytes, dot_too: bool) -> bytes:
    """Dovecot's `str_append_maybe_escape`: quoted when a character is not atext (a dot
    counts only in names), with `"`, `\\` and `'` escaped."""
    if all(c in _ATEXT or (c == 0x2E and not dot_too) for c in word):
        return word
    escaped = re.sub(rb"([\"\\'])", rb"\\\1", word)
    return b'"' + escaped + b'"'


def address_text(addresses: Sequence[mime.Address]) -> bytes:
    """An address list written as Dovecot's `message_address_write` writes it, which is the
    form FROM, TO, CC and BCC search in."""
    out = bytearray()
    first = True
    in_group = False
    for a in addresses:
        if first:
            first = False
        else:
            out += b", "
        if a.domain is None:
            if not in_group:  # a group starts: its name is in `mailbox`
                name = a.mailbox or b""
                if not name:
                    out += b'""'
                else:
                    out += name if b"=?" in name else _maybe_quoted(name, True)
                out += b": "
                first = True
            else:  # the group ends
                if out.endswith(b", "):
                    del out[-2:]
                elif out.endswith(b": "):
                    del out[-1:]
                out += b";"
            in_group = not in_group
            continue
        mailbox = a.mailbox or b""
        if a.name is not None:
            out += a.name if b"=?" in a.name else _maybe_quoted(a.name, True)
        if a.route is not None or mailbox or a.domain:
            if a.name:
                out += b" "
            out += b"<"
            if a.route is not None:
                out += a.route + b":"
            out += _maybe_quoted(mailbox, False) if mailbox else b'""'
            if a.domain:
                out += b"@" + a.domain
            out += b">"
    return bytes(out)


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


def _set_needle(key: Header | Body) -> None:
    """The folded text, once per search; `quick`, its octets for the scans of
    _Message.plain and plain_header, when it holds no line break or other control."""
    folded = _fold(key.text)
    object.__setattr__(key, "folded", folded)
    # An empty text matches wherever the field (or, for BODY, anything) exists: no shortcut.
    quick = folded.encode() if folded and folded.isprintable() else None
    object.__setattr__(key, "quick", quick)


@dataclass(frozen=True)
class Text(Key):
    text: str

    @property
    def cost(self) -> int:
        return COST_BODY

    def match(self, m: _Message) -> bool:
        return _fold(self.text) in m.text()


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


@dataclass(frozen=True)
class SearchProgram:
    """A parsed search program: ``key`` (an AND of the top-level keys) and the charset."""

    key: Key
    charset: str = "UTF-8"

    @property
    def flags_only(self) -> bool:
        """True if the answer for a message depends on its flags and keywords alone, so one
        evaluation per combination of flags answers for every message that has it."""
        return all(isinstance(k, (All, Flag, Keyword, Not, Or, And)) for k in self.key.walk())

    @property
    def needs_message(self) -> bool:
        """True if some key reads the header or body (``raw()`` may be called)."""
        return self.key.cost > COST_FLAGS

    def matches(self, ctx: SearchContext, tz: _dt.tzinfo | None = None) -> bool:
        return self.key.match(_Message(ctx, tz))

    def search(self, contexts: Sequence[SearchContext], tz: _dt.tzinfo | None = None) -> list[int]:
        """The sequence numbers of the matching messages, in order (a convenience)."""
        return [c.seqno for c in contexts if self.matches(c, tz)]


# ---------------------------------------------------------------------------------------------
# Parsing

_FLAG_KEYS = {
    b"ANSWERED": ("\\answered", True),
    b"DELETED": ("\\deleted", True),
    b"DRAFT": ("\\draft", True),
    b"FLAGGED": ("\\flagged", True),
    b"RECENT": ("\\recent", True),
    b"SEEN": ("\\seen", True),
    b"UNANSWERED": ("\\answered", False),
    b"UNDELETED": ("\\deleted", False),
    b"UNDRAFT": ("\\draft", False),
    b"UNFLAGGED": ("\\flagged", False),
    b"UNSEEN": ("\\seen", False),
    b"OLD": ("\\recent", False),
}
_HEADER_KEYS = {b"FROM": "from", b"TO": "to", b"CC": "cc", b"BCC": "bcc", b"SUBJECT": "subject"}
_DATE_KEYS = {
    b"BEFORE": ("before", False),
    b"ON": ("on", False),
    b"SINCE": ("since", False),
    b"SENTBEFORE": ("before", True),
    b"SENTON": ("on", True),
    b"SENTSINCE": ("since", True),
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        [
            b"JAN",
            b"FEB",
            b"MAR",
            b"APR",
            b"MAY",
            b"JUN",
            b"JUL",
            b"AUG",
            b"SEP",
            b"OCT",
            b"NOV",
            b"DEC",
        ]
    )
}
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_NUMBER = re.compile(rb"[0-9]+")
_FIELD_NAME = re.compile(rb"[!-9;-~]+")  # RFC 5322 ftext


def parse_date(raw: bytes) -> _dt.date:
    """An IMAP ``date`` (``1-Feb-1994``, quotes already removed by the tokenizer)."""
    m = _DATE.fullmatch(raw)
    month = _MONTHS.get(m.group(2).upper()) if m else None
    if m is None or month is None:
        raise SearchError(f"invalid date {raw.decode('latin-1')!r}")
    try:
        return _dt.date(int(m.group(3)), month, int(m.group(1)))
    except ValueError:
        raise SearchError(f"invalid date {raw.decode('latin-1')!r}") from None


def _and(keys: list[Key]) -> Key:
    if len(keys) == 1:
        return keys[0]
    return And(tuple(sorted(keys, key=lambda k: k.cost)))  # sorted() is stable


class _Parser:
    def __init__(self, resolve_set: SetResolver) -> None:
        self.resolve_set = resolve_set

    def string(self, token: Token, what: str) -> str:
        if not isinstance(token, bytes):
            raise SearchError(f"{what}: a string is needed, not a list")
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise SearchError(f"{what}: the string is not valid UTF-8") from None

    def atom(self, token: Token, what: str) -> bytes:
        if not isinstance(token, bytes):
            raise SearchError(f"{what}: an atom is needed, not a list")
        return token

    def keys(self, tokens: Sequence[Token]) -> list[Key]:
        keys: list[Key] = []
        i = 0
        while i < len(tokens):
            key, i = self.key(tokens, i)
            keys.append(key)
        return keys

    def arg(self, tokens: Sequence[Token], i: int, name: bytes) -> Token:
        if i >= len(tokens):
            raise SearchError(f"{name.decode()} needs an argument")
        return tokens[i]

    def key(self, tokens: Sequence[Token], i: int) -> tuple[Key, int]:
        token = tokens[i]
        i += 1
        if isinstance(token, list):
            if not token:
                raise SearchError("empty parenthesised search key list")
            return _and(self.keys(token)), i
        name = token.upper()
        if name == b"ALL":
            return All(), i
        if name in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[name]
            return Flag(flag, present), i
        if name == b"NEW":
            return _and([Flag("\\recent"), Flag("\\seen", False)]), i
        if name in (b"KEYWORD", b"UNKEYWORD"):
            kw = self.atom(self.arg(tokens, i, name), "KEYWORD")
            return Keyword(kw.decode("utf-8", "replace"), name == b"KEYWORD"), i + 1
        if name in _HEADER_KEYS:
            text = self.string(self.arg(tokens, i, name), name.decode())
            header = _HEADER_KEYS[name]
            form = "lwsp" if header == "subject" else "address"
            return Header(header, text, form), i + 1
        if name == b"HEADER":
            field_name = self.atom(self.arg(tokens, i, name), "HEADER")
            if _FIELD_NAME.fullmatch(field_name) is None:
                raise SearchError("HEADER: invalid field name")
            text = self.string(self.arg(tokens, i + 1, name), "HEADER")
            return Header(field_name.decode("ascii"), text), i + 2
        if name == b"BODY":
            return Body(self.string(self.arg(tokens, i, name), "BODY")), i + 1
        if name == b"TEXT":
            return Text(self.string(self.arg(tokens, i, name), "TEXT")), i + 1
        if name in (b"LARGER", b"SMALLER"):
            number = self.atom(self.arg(tokens, i, name), name.decode())
            if _NUMBER.fullmatch(number) is None or len(number) > 20:
                raise SearchError(f"{name.decode()}: invalid number")
            return Size(name == b"LARGER", int(number)), i + 1
        if name in _DATE_KEYS:
            op, sent = _DATE_KEYS[name]
            date = parse_date(self.atom(self.arg(tokens, i, name), name.decode()))
            return Date(op, date, sent), i + 1
        if name == b"NOT":
            if i >= len(tokens):
                raise SearchError("NOT needs a search key")
            inner, i = self.key(tokens, i)
            return Not(inner), i
        if name == b"OR":
            if i >= len(tokens):
                raise SearchError("OR needs two search keys")
            left, i = self.key(tokens, i)
            if i >= len(tokens):
                raise SearchError("OR needs two search keys")
            right, i = self.key(tokens, i)
            if right.cost < left.cost:
                left, right = right, left
            return Or(left, right), i
        if name == b"UID":
            raw = self.atom(self.arg(tokens, i, name), "UID")
            if not is_sequence_set(raw):
                raise SearchError("UID: invalid sequence set")
            return MessageSet(raw, True, self.resolve_set(raw, True)), i + 1
        if is_sequence_set(token):
            return MessageSet(token, False, self.resolve_set(token, False)), i
        raise SearchError(f"unknown search key {token.decode('latin-1')!r}")


def parse_search(args: Sequence[Token], *, resolve_set: SetResolver | None = None) -> SearchProgram:
    """Parse the arguments of SEARCH (after the command name, ``CHARSET x`` included).

    ``resolve_set(raw, uid)`` turns a sequence set (``uid=False``) or the argument of
    ``UID`` (``uid=True``) into the numbers it contains; it may raise :class:`SearchError`.
    """
    tokens = list(args)
    charset = "UTF-8"
    if tokens and isinstance(tokens[0], bytes) and tokens[0].upper() == b"CHARSET":
        if len(tokens) < 2 or not isinstance(tokens[1], bytes):
            raise SearchError("CHARSET needs a charset name")
        name = tokens[1].decode("latin-1").upper()
        if name not in CHARSETS:
            raise BadCharsetError(f"unsupported charset {name}")
        charset = name
        tokens = tokens[2:]
    if not tokens:
        raise SearchError("empty search program")
    keys = _Parser(resolve_set or _default_resolver).keys(tokens)
    return SearchProgram(_and(keys), charset)
