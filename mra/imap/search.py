"""IMAP SEARCH programs (RFC 3501 section 6.4.4 and the extensions): parsing a program into
the keys of mra/imap/searchkeys.py, which match messages, as pure functions.

Input: the SEARCH arguments as the command parser has tokenised them, a list of
:data:`Token`: atoms, quoted strings and literals as ``bytes``, parenthesised lists as
nested Python lists.  ``[b"CHARSET", b"UTF-8", b"OR", b"FROM", b"bob", b"SEEN"]`` or
``[b"NOT", [b"SEEN", b"1:5"], b"SUBJECT", b"caf\\xc3\\xa9"]``.  Atoms and strings are not
told apart: a key name given as a quoted string is accepted too. (The RETURN options of
ESEARCH, RFC 4731, come before all this: mra/imap/commands/search.py reads them.)

:func:`parse_search` returns a :class:`SearchProgram` or raises :class:`SearchError`
(answer BAD) or :class:`BadCharsetError` (answer ``NO [BADCHARSET (...)]``). The charset is
optional (UTF-8 when absent, as Dovecot does); any charset Python's codecs know is accepted
(mra/imap/charsets.py) and the strings are decoded from it. As in Dovecot, an unknown charset
is found out at the first string, or at the end of a program without strings: a program
broken before that answers BAD.

Message sets: a sequence-set argument (``1:4,7``, ``5:*``, and ``$`` of RFC 5182) and the
argument of ``UID`` are handed to the caller's ``resolve_set(raw, uid)`` hook, which returns
the member numbers (anything with ``in``), so that ``*``, the sequence-to-UID mapping and
``$`` stay the caller's business.  Without a hook, :class:`SequenceSet` is used and ``*``
means "no upper bound".

Keys and what they match: mra/imap/searchkeys.py. A program is an AND of its keys, the
cheapest first (flags before headers before bodies).
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from mra.imap import casemap, charsets
from mra.imap.searchkeys import (
    COST_FLAGS,
    All,
    And,
    Body,
    Date,
    Flag,
    Header,
    Key,
    Keyword,
    MessageContext,
    MessageSet,
    ModSeq,
    Not,
    Or,
    SavedDateSupported,
    SearchContext,
    Size,
    Text,
    Within,
    address_text,
)
from mra.imap.searchkeys import _header_end as _header_end
from mra.imap.searchkeys import _Message as _Message

__all__ = [
    "BadCharsetError",
    "MessageContext",
    "SearchContext",
    "SearchError",
    "SearchProgram",
    "SequenceSet",
    "Token",
    "address_text",
    "parse_search",
]

# The tests of matching reach its internals (_Message, _fold, _header_end) through this module.
_fold = casemap.fold

Token: TypeAlias = "bytes | list[Token]"
SetResolver: TypeAlias = Callable[[bytes, bool], Container[int]]

CHARSETS = charsets.PREFERRED
MAX_INTERVAL = 2**32 - 1
"""OLDER/YOUNGER take an nz-number (RFC 5032 section 3), 32 bits as every IMAP number."""


class SearchError(Exception):
    """A malformed search program: answer ``BAD`` (``status``) with this message."""

    status = "BAD"
    code: bytes | None = None


class BadCharsetError(SearchError):
    """An unsupported CHARSET: answer ``NO [BADCHARSET (UTF-8 US-ASCII ...)]``."""

    status = "NO"
    code = b"BADCHARSET (" + " ".join(CHARSETS).encode("ascii") + b")"


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
    def uses_modseq(self) -> bool:
        """A MODSEQ key (RFC 7162 3.1.5): the answer names the highest modseq found."""
        return any(isinstance(k, ModSeq) for k in self.key.walk())

    @property
    def needs_message(self) -> bool:
        """True if some key reads the header or body (``raw()`` may be called)."""
        return self.key.cost > COST_FLAGS

    @property
    def stats_files(self) -> bool:
        """True if some key asks the file system about every message (the save date)."""
        return any(
            isinstance(k, SavedDateSupported) or (isinstance(k, Date) and k.source == "saved")
            for k in self.key.walk()
        )

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
_NOT_IN_REV2 = frozenset({b"RECENT", b"NEW"})
_HEADER_KEYS = {b"FROM": "from", b"TO": "to", b"CC": "cc", b"BCC": "bcc", b"SUBJECT": "subject"}
_DATE_KEYS = {
    b"BEFORE": ("before", "internal"),
    b"ON": ("on", "internal"),
    b"SINCE": ("since", "internal"),
    b"SENTBEFORE": ("before", "sent"),
    b"SENTON": ("on", "sent"),
    b"SENTSINCE": ("since", "sent"),
    # SAVEDATE (RFC 8514 section 4)
    b"SAVEDBEFORE": ("before", "saved"),
    b"SAVEDON": ("on", "saved"),
    b"SAVEDSINCE": ("since", "saved"),
}
_WITHIN_KEYS = {b"OLDER": True, b"YOUNGER": False}  # WITHIN (RFC 5032)
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
    def __init__(
        self,
        resolve_set: SetResolver,
        charset: str,
        decode: Callable[[bytes], str] | None,
        now: int,
        rev2: bool = False,
    ) -> None:
        self.resolve_set = resolve_set
        self.charset = charset
        self.decode = decode
        self.now = now
        self.rev2 = rev2

    def string(self, token: Token, what: str) -> str:
        if not isinstance(token, bytes):
            raise SearchError(f"{what}: a string is needed, not a list")
        if self.decode is None:
            raise BadCharsetError(f"{self.charset} is not a charset this server knows")
        try:
            return self.decode(token)
        except ValueError:  # UnicodeDecodeError, or a codec's own complaint
            raise SearchError(f"{what}: the string is not valid {self.charset}") from None

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

    def modseq(self, tokens: Sequence[Token], i: int) -> tuple[Key, int]:
        """`MODSEQ ["/flags/<flag>" priv|shared|all] <mod-sequence-valzer>` (RFC 7162 3.1.5):
        the entry is checked and not used, as every flag of a message shares its modseq."""
        value = self.atom(self.arg(tokens, i, b"MODSEQ"), "MODSEQ")
        if _NUMBER.fullmatch(value) is None:
            entry = value
            kind = self.atom(self.arg(tokens, i + 1, b"MODSEQ"), "MODSEQ").lower()
            if not entry.lower().startswith(b"/flags/") or kind not in (b"priv", b"shared", b"all"):
                raise SearchError("MODSEQ: invalid entry")
            value = self.atom(self.arg(tokens, i + 2, b"MODSEQ"), "MODSEQ")
            i += 2
        if _NUMBER.fullmatch(value) is None or len(value) > 19 or int(value) >= 2**63:
            raise SearchError("MODSEQ: invalid mod-sequence")
        return ModSeq(int(value)), i + 1

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
        if self.rev2 and name in _NOT_IN_REV2:
            # RFC 9051 9 has no RECENT or NEW keys (\Recent is gone, Appendix E 12); as Dovecot
            # 2.4 (mail-search-register-imap.c), OLD stays: with nothing recent, every message.
            raise SearchError(f"unknown search key {token.decode('latin-1')!r}")
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
            op, source = _DATE_KEYS[name]
            date = parse_date(self.atom(self.arg(tokens, i, name), name.decode()))
            return Date(op, date, source), i + 1
        if name in _WITHIN_KEYS:
            number = self.atom(self.arg(tokens, i, name), name.decode())
            if _NUMBER.fullmatch(number) is None or not 0 < int(number) <= MAX_INTERVAL:
                raise SearchError(f"{name.decode()}: invalid interval")
            return Within(_WITHIN_KEYS[name], self.now - int(number)), i + 1
        if name == b"SAVEDATESUPPORTED":
            return SavedDateSupported(), i
        if name == b"MODSEQ":
            return self.modseq(tokens, i)
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


def parse_search(
    args: Sequence[Token],
    *,
    resolve_set: SetResolver | None = None,
    now: float | None = None,
    rev2: bool = False,
) -> SearchProgram:
    """Parse the arguments of SEARCH (after the command name and the RETURN options,
    ``CHARSET x`` included).

    ``resolve_set(raw, uid)`` turns a sequence set (``uid=False``) or the argument of
    ``UID`` (``uid=True``) into the numbers it contains; it may raise :class:`SearchError`.
    ``now`` is the time OLDER and YOUNGER count back from (the time of the call when None);
    Dovecot too takes it once, when it parses the command. ``rev2``: IMAP4rev2's keys (no
    RECENT, no NEW).
    """
    tokens = list(args)
    charset = "UTF-8"
    if tokens and isinstance(tokens[0], bytes) and tokens[0].upper() == b"CHARSET":
        if len(tokens) < 2 or not isinstance(tokens[1], bytes):
            raise SearchError("CHARSET needs a charset name")
        charset = tokens[1].decode("latin-1")
        tokens = tokens[2:]
    if not tokens:
        raise SearchError("empty search program")
    decode = charsets.decoder(charset)
    clock = int(time.time() if now is None else now)
    parser = _Parser(resolve_set or _default_resolver, charset, decode, clock, rev2)
    keys = parser.keys(tokens)
    if decode is None:  # a program without strings still names its charset (as Dovecot)
        raise BadCharsetError(f"{charset} is not a charset this server knows")
    return SearchProgram(_and(keys), charset.upper())
