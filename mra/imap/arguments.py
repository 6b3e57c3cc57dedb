"""Interpreting a command's values in the place the command gives them (RFC 3501 section 9).

`as_astring`, `as_string`, `as_nstring`, `as_atom`, `as_number`, `as_list`, `as_flag`,
`as_flag_list`, `as_mailbox` (modified UTF-7 decoded, or UTF-8 as sent when the session
enabled it; INBOX in any case is "INBOX"), `as_list_mailbox` (LIST patterns),
`as_sequence_set`, `as_date`, `as_date_time` interpret one value, raising `ArgumentError`
(answer BAD with its message); `as_mailbox` may also raise the store's `InvalidName` for bad
modified UTF-7 (answer as a store error).
"""

from __future__ import annotations

import datetime
import re
import unicodedata

from mailstore.errors import InvalidName
from mailstore.names import INBOX, decode_mutf7
from mra.imap.sequence import SequenceError, SequenceSet
from mra.imap.values import Atom, Nil, ParenList, String, Value

__all__ = [
    "ArgumentError",
    "as_astring",
    "as_atom",
    "as_date",
    "as_date_time",
    "as_flag",
    "as_flag_list",
    "as_list",
    "as_list_mailbox",
    "as_mailbox",
    "as_nstring",
    "as_number",
    "as_sequence_set",
    "as_string",
    "net_unicode_problem",
]

_MAX_NUMBER = 2**32 - 1


class ArgumentError(ValueError):
    """An argument of the wrong kind or form: answer `tag BAD <message>`."""


_ASTRING_ATOM_RE = re.compile(r'[^\x00-\x20\x7f-\uffff(){%*"\\]+')
_LIST_ATOM_RE = re.compile(r'[^\x00-\x20\x7f-\uffff(){"\\]+')
_KEYWORD_RE = re.compile(r'[^\x00-\x20\x7f-\uffff(){%*"\\\]]+')
_SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
}
_NUMBER_RE = re.compile(r"[0-9]{1,20}")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE_RE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME_RE = re.compile(
    rb"( [0-9]|[0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})"
    rb" ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{4})"
)


def _kind(value: Value) -> str:
    return type(value).__name__.lower()


def as_astring(value: Value) -> bytes:
    """`astring`: an atom of ASTRING-CHARs (so NIL is the three letters) or a string."""
    if isinstance(value, String):
        return value.value
    if isinstance(value, Atom) and _ASTRING_ATOM_RE.fullmatch(value.value):
        return value.value.encode("ascii")
    raise ArgumentError(f"expected a string, got {_kind(value)}")


def as_string(value: Value) -> bytes:
    """`string`: quoted or literal, not an atom."""
    if isinstance(value, String):
        return value.value
    raise ArgumentError(f"expected a quoted string or literal, got {_kind(value)}")


def as_nstring(value: Value) -> bytes | None:
    """`nstring`: NIL (None) or a string."""
    if isinstance(value, Nil):
        return None
    return as_string(value)


def as_atom(value: Value) -> str:
    """An atom's text as sent (NIL included); upper-case it to compare with keywords."""
    if isinstance(value, Atom):
        return value.value
    raise ArgumentError(f"expected an atom, got {_kind(value)}")


def as_number(value: Value, *, nonzero: bool = False, maximum: int = _MAX_NUMBER) -> int:
    """`number` (unsigned 32-bit by default; RFC 9051 number64: maximum=2**63 - 1)."""
    if isinstance(value, Atom) and _NUMBER_RE.fullmatch(value.value):
        n = int(value.value)
        if n > maximum:
            raise ArgumentError(f"number {value.value} is too large")
        if nonzero and n == 0:
            raise ArgumentError("expected a number greater than zero")
        return n
    raise ArgumentError("expected a number")


def as_list(value: Value) -> tuple[Value, ...]:
    """A parenthesized list's items."""
    if isinstance(value, ParenList):
        return value.items
    raise ArgumentError(f"expected a parenthesized list, got {_kind(value)}")


def as_flag(value: Value) -> str:
    """`flag`: a system flag (case normalised: `\\seen` -> `\\Seen`), `\\`-extension or keyword.

    `\\Recent` is not a `flag` (RFC 3501 9: it is only a `flag-fetch`): a client cannot store
    or append it. A keyword spelled NIL is an atom like any other.
    """
    if isinstance(value, Atom):
        text = value.value
        if text.startswith("\\"):
            if text.upper() == "\\RECENT":
                raise ArgumentError("\\Recent cannot be set by a client")
            if _KEYWORD_RE.fullmatch(text, 1):
                return _SYSTEM_FLAGS.get(text.upper(), text)
        elif _KEYWORD_RE.fullmatch(text):
            return text
    raise ArgumentError("invalid flag")


def as_flag_list(value: Value) -> list[str]:
    """`flag-list`: `(flag *(SP flag))`, possibly empty."""
    return [as_flag(item) for item in as_list(value)]


def _ascii(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ArgumentError("mailbox names are 7-bit: modified UTF-7 (RFC 3501 5.1.3)") from None


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # RFC 6855 3: octets with the high bit set that are not UTF-8 "MUST" be answered BAD.
        raise ArgumentError("mailbox name is not valid UTF-8") from None


def as_mailbox(value: Value, utf8: bool = False) -> str:
    """`mailbox`: an astring; INBOX in any (ASCII) case is "INBOX".

    `utf8` is the session's choice (ENABLE UTF8=ACCEPT or IMAP4rev2): the name is UTF-8 as
    sent (RFC 6855 3, RFC 9051 5.1), `&` only a character; otherwise it is modified UTF-7,
    decoded (RFC 3501 5.1.3). Raises ArgumentError (8-bit octets without `utf8`, or ones that
    are not UTF-8 with it), or the store's InvalidName for malformed modified UTF-7.
    """
    raw = as_astring(value)
    text = _utf8(raw) if utf8 else _ascii(raw)
    if text.isascii() and text.upper() == INBOX:
        return INBOX
    return text if utf8 else decode_mutf7(text)


_NOT_NET_UNICODE_RE = re.compile("[\x80-\x9f\u2028\u2029]")


def net_unicode_problem(name: str) -> str | None:
    """What keeps `name` from being created by a UTF-8 session, or None.

    RFC 9051 5.1: servers "MUST prohibit the creation of 8-bit mailbox names that do not
    comply with Net-Unicode" (RFC 5198: NFC); RFC 6855 3: names "MUST NOT contain control
    characters (U+0000-U+001F and U+0080-U+009F), a delete character (U+007F), a line
    separator (U+2028), or a paragraph separator (U+2029)" (the C0 ones and DEL the store
    refuses for every session). A name not in NFC is refused rather than normalised: the
    client would otherwise create one name and be shown another, and a folder made earlier
    under its decomposed name (through modified UTF-7) would stop being the one it names.
    """
    if name.isascii():
        return None
    if _NOT_NET_UNICODE_RE.search(name):
        return "holds a control character or a line or paragraph separator"
    if not unicodedata.is_normalized("NFC", name):
        return "is not in Unicode normalization form C"
    return None


def as_list_mailbox(value: Value, utf8: bool = False) -> str:
    """`list-mailbox` (LIST/LSUB patterns): like a mailbox, but atoms may hold `%` and `*`.

    A pattern is a question, not a name: one that is not valid modified UTF-7 (a lone `&`, 8-bit
    octets), or with `utf8` not valid UTF-8, is matched as it was written (undecodable octets
    as U+FFFD), and simply matches what it matches, as Dovecot does.
    """
    if isinstance(value, String):
        raw = value.value
        if utf8 or not raw.isascii():
            return raw.decode("utf-8", "replace")
        text = raw.decode("ascii")
    elif isinstance(value, Atom) and _LIST_ATOM_RE.fullmatch(value.value):
        text = value.value
    else:
        raise ArgumentError(f"expected a mailbox pattern, got {_kind(value)}")
    if utf8:
        return text
    try:
        return decode_mutf7(text)
    except InvalidName:
        return text


def as_sequence_set(value: Value) -> SequenceSet:
    """`sequence-set` (resolve it with the mailbox: see sequence.py)."""
    if isinstance(value, Atom):
        try:
            return SequenceSet.parse(value.value)
        except SequenceError as exc:
            raise ArgumentError(str(exc)) from None
    raise ArgumentError(f"expected a sequence set, got {_kind(value)}")


def _month(name: bytes) -> int:
    try:
        return _MONTHS.index(name.decode("ascii").upper()) + 1
    except ValueError:
        raise ArgumentError("invalid month name") from None


def as_date(value: Value) -> datetime.date:
    """`date` (SEARCH SINCE ...): `1-Feb-1994`, bare or quoted."""
    if isinstance(value, Atom):
        raw = value.value.encode("ascii")
    elif isinstance(value, String):
        raw = value.value
    else:
        raise ArgumentError(f"expected a date, got {_kind(value)}")
    m = _DATE_RE.fullmatch(raw)
    if m is None:
        raise ArgumentError("invalid date: expected d-Mon-yyyy")
    try:
        return datetime.date(int(m.group(3)), _month(m.group(2)), int(m.group(1)))
    except ValueError:
        raise ArgumentError("invalid date") from None


def as_date_time(value: Value) -> datetime.datetime:
    """`date-time` (APPEND): `"dd-Mon-yyyy hh:mm:ss +zzzz"`, as an aware datetime."""
    if not isinstance(value, String):
        raise ArgumentError(f"expected a quoted date-time, got {_kind(value)}")
    m = _DATE_TIME_RE.fullmatch(value.value)
    if m is None:
        raise ArgumentError('invalid date-time: expected "dd-Mon-yyyy hh:mm:ss +zzzz"')
    zone = int(m.group(8))
    hours, minutes = divmod(zone, 100)
    if minutes >= 60:
        raise ArgumentError("invalid time zone")
    offset = datetime.timedelta(hours=hours, minutes=minutes)
    try:
        return datetime.datetime(
            int(m.group(3)),
            _month(m.group(2)),
            int(m.group(1)),
            int(m.group(4)),
            int(m.group(5)),
            int(m.group(6)),
            tzinfo=datetime.timezone(-offset if m.group(7) == b"-" else offset),
        )
    except ValueError:
        raise ArgumentError("invalid date-time") from None
