"""The only writer of IMAP bytes: values, response codes and whole response lines (the value
fragments are made in mra/imap/fragments.py and re-exported here).

Every function returns `bytes`. Value functions (`astring`, `nstring`, `flag_list`, `mailbox`,
`paren`...) return a fragment to place inside a response; line functions (`tagged`, `untagged`,
`continuation`, `fetch_response`...) return whole lines ending in CRLF. A fragment may contain a
literal, whose `{n}` CRLF sits inside the line: that is how IMAP carries such strings.

Choosing the form of a string (RFC 3501 section 4.3, 9)
-------------------------------------------------------
* an atom, for `astring` only, when every octet is an ASTRING-CHAR and it does not spell NIL (a
  mailbox named NIL would read as nil to a careless client);
* a quoted string when every octet is 7-bit TEXT-CHAR (no NUL, CR, LF, nothing above 0x7f) and it
  is at most `QUOTED_MAX` octets; `"` and `\\` are escaped with `\\`;
* otherwise a literal `{n}` CRLF octets. NUL is not a CHAR8 either, but a message with NUL in it
  is still best sent as a literal than not at all; only FETCH BINARY's decoded data goes as a
  literal8 `~{n}` when it holds NUL (RFC 3516 4.3, `literal8`).

`mra.imap.parser` reads every one of these forms back to the same octets (tests prove it).

Text
----
Human-readable text (`resp-text`) is 7-bit and single-line: control characters become spaces,
non-ASCII becomes `?`, it is cut at `TEXT_MAX`, and never empty. Nothing a caller passes can add a
line to the response.

Status texts
------------
Every fixed status the server says (greeting, BYE, the NO of a read-only mailbox, a missing
APPEND/COPY target, a failed login...) is a `Say` constant below, written by `say()`. A command
that ends in one of them raises `Refusal(SAY)` and the dispatcher writes it after the updates the
session owes (mra/imap/session.py), so TRYCREATE, BADCHARSET, IN-USE and the rest go out one way.
Texts of syntax errors (BAD) stay with the grammar they describe (parser.py, the commands).

Kept lines
----------
What every command says again with the same words is made once and kept (`lru_cache`, at most
`KEPT_LINES` of each kind): `tag OK NOOP completed` but for its tag, a SELECT's FLAGS and
PERMANENTFLAGS for the same keywords, its `* OK [UIDVALIDITY n]`... A warm SELECT spent more
time writing its seven lines than finding what to put in them. Only short values are kept
(`KEPT_MAX` octets of flags or code data: never a COPYUID of a big COPY), so the caches hold
at most a few hundred KB whatever the clients do.

Store errors
------------
`error_code(kind)` and `store_error(tag, error)` are the one place the IMAP side maps the store's
`ErrorKind` to RFC 5530 response codes, as Dovecot's `imap_get_error_string()` does.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from mailstore.errors import ErrorKind, MailError
from mra.imap.events import BadCommand
from mra.imap.fragments import (
    _ASTRING_ATOM_RE,
    KEPT_LINES,
    KEPT_MAX,
    QUOTED_MAX,
    _flag,
    _is_inbox,
    astring,
    date_time,
    flag_list,
    literal,
    mailbox,
    nstring,
    number,
    paren,
    quoted,
    section_key,
    string,
)
from mra.imap.sequence import format_set

__all__ = [
    "CRLF",
    "QUOTED_MAX",
    "TEXT_MAX",
    "Code",
    "Refusal",
    "Say",
    "astring",
    "bad",
    "bad_command",
    "capability_response",
    "completed",
    "continuation",
    "continuation_data",
    "date_time",
    "error_code",
    "esearch_response",
    "exists",
    "expunge",
    "fetch_response",
    "flag_list",
    "flags_response",
    "list_response",
    "literal",
    "literal8",
    "mailbox",
    "nstring",
    "number",
    "paren",
    "quota_response",
    "quotaroot_response",
    "quoted",
    "recent",
    "say",
    "search_response",
    "section_key",
    "status_response",
    "store_error",
    "string",
    "tagged",
    "untagged",
    "untagged_status",
]

CRLF = b"\r\n"
TEXT_MAX = 1024
"""Longest human-readable text in a status response, in characters."""

_TAG_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_TEXT_BAD_RE = re.compile(r"[\x00-\x1f\x7f]")
_STATUSES = frozenset({"OK", "NO", "BAD", "BYE", "PREAUTH"})


# --- response codes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Code:
    """A response code, written `[NAME data]` (RFC 3501 7.1, RFC 5530, RFC 4315...).

    Constants for the codes without data (`Code.ALERT`, `Code.NONEXISTENT`...), class methods for
    the others (`Code.uidnext(5)`, `Code.copyuid(v, src, dst)`).
    """

    name: str
    data: bytes = b""

    def render(self) -> bytes:
        text = self.name.encode("ascii")
        return b"[" + text + (b" " + self.data if self.data else b"") + b"]"

    # RFC 3501
    ALERT: ClassVar[Code]
    PARSE: ClassVar[Code]
    READ_ONLY: ClassVar[Code]
    READ_WRITE: ClassVar[Code]
    TRYCREATE: ClassVar[Code]
    # RFC 4315 UIDPLUS, RFC 4469/7889 TOOBIG, RFC 7162 CLOSED
    UIDNOTSTICKY: ClassVar[Code]
    TOOBIG: ClassVar[Code]
    CLOSED: ClassVar[Code]
    # RFC 5530
    UNAVAILABLE: ClassVar[Code]
    AUTHENTICATIONFAILED: ClassVar[Code]
    AUTHORIZATIONFAILED: ClassVar[Code]
    EXPIRED: ClassVar[Code]
    PRIVACYREQUIRED: ClassVar[Code]
    CONTACTADMIN: ClassVar[Code]
    NOPERM: ClassVar[Code]
    INUSE: ClassVar[Code]
    EXPUNGEISSUED: ClassVar[Code]
    CORRUPTION: ClassVar[Code]
    SERVERBUG: ClassVar[Code]
    CLIENTBUG: ClassVar[Code]
    CANNOT: ClassVar[Code]
    LIMIT: ClassVar[Code]
    OVERQUOTA: ClassVar[Code]
    ALREADYEXISTS: ClassVar[Code]
    NONEXISTENT: ClassVar[Code]

    @classmethod
    def capability(cls, capabilities: Iterable[str]) -> Code:
        return cls("CAPABILITY", _atoms(capabilities))

    @classmethod
    def permanentflags(cls, flags: Iterable[str]) -> Code:
        """Include `\\*` in `flags` when clients may create keywords."""
        return cls("PERMANENTFLAGS", flag_list(flags))

    @classmethod
    def uidnext(cls, uid: int) -> Code:
        return cls("UIDNEXT", number(uid))

    @classmethod
    def uidvalidity(cls, uidvalidity: int) -> Code:
        return cls("UIDVALIDITY", number(uidvalidity))

    @classmethod
    def unseen(cls, seq: int) -> Code:
        return cls("UNSEEN", number(seq))

    @classmethod
    def appenduid(cls, uidvalidity: int, uids: int | Iterable[int]) -> Code:
        """RFC 4315: `APPENDUID <uidvalidity> <uid-set>` (a set after MULTIAPPEND)."""
        uid_set = format_set([uids] if isinstance(uids, int) else uids)
        return cls("APPENDUID", number(uidvalidity) + b" " + uid_set.encode("ascii"))

    @classmethod
    def copyuid(cls, uidvalidity: int, source: Iterable[int], dest: Iterable[int]) -> Code:
        """RFC 4315: `COPYUID <uidvalidity> <source set> <dest set>`, paired by position."""
        src = list(source)
        dst = list(dest)
        if len(src) != len(dst):
            raise ValueError("COPYUID needs as many destination UIDs as source UIDs")
        sets = format_set(src) + " " + format_set(dst)
        return cls("COPYUID", number(uidvalidity) + b" " + sets.encode("ascii"))

    @classmethod
    def highestmodseq(cls, modseq: int) -> Code:
        """RFC 7162 3.1.2.1: `HIGHESTMODSEQ n`."""
        return cls("HIGHESTMODSEQ", number(modseq))

    @classmethod
    def modified(cls, numbers: Iterable[int]) -> Code:
        """RFC 7162 3.1.3: `MODIFIED set`, the messages a STORE UNCHANGEDSINCE left alone."""
        return cls("MODIFIED", format_set(numbers).encode("ascii"))

    @classmethod
    def badcharset(cls, charsets: Iterable[str] = ()) -> Code:
        """`BADCHARSET (UTF-8 US-ASCII)`: the charsets SEARCH supports."""
        names = [astring(c.encode("ascii")) for c in charsets]
        return cls("BADCHARSET", paren(names) if names else b"")


def _atoms(words: Iterable[str]) -> bytes:
    out = []
    for word in words:
        raw = word.encode("ascii")
        if not _ASTRING_ATOM_RE.fullmatch(raw):
            raise ValueError(f"{word!r} is not an atom")
        out.append(raw)
    return b" ".join(out)


_SIMPLE_CODES = (
    "ALERT PARSE READ-ONLY READ-WRITE TRYCREATE UIDNOTSTICKY TOOBIG CLOSED UNAVAILABLE "
    "AUTHENTICATIONFAILED AUTHORIZATIONFAILED EXPIRED PRIVACYREQUIRED CONTACTADMIN NOPERM INUSE "
    "EXPUNGEISSUED CORRUPTION SERVERBUG CLIENTBUG CANNOT LIMIT OVERQUOTA ALREADYEXISTS NONEXISTENT"
)
for _name in _SIMPLE_CODES.split():
    setattr(Code, _name.replace("-", "_"), Code(_name))
del _name


# --- lines ----------------------------------------------------------------------------------


def _text(text: str) -> bytes:
    """resp-text's text: one line of 7-bit, never empty."""
    cleaned = _TEXT_BAD_RE.sub(" ", text[:TEXT_MAX]).strip()
    return cleaned.encode("ascii", "replace") if cleaned else b"-"


def _status(prefix: bytes, status: str, text: str, code: Code | None) -> bytes:
    if status not in _STATUSES:
        raise ValueError(f"{status!r} is not an IMAP status")
    head = prefix + b" " + status.encode("ascii") + b" "
    if code is not None:
        head += code.render() + b" "
    return head + _text(text) + CRLF


def tagged(tag: str, status: str, text: str, code: Code | None = None) -> bytes:
    """`tag OK|NO|BAD [code] text` CRLF."""
    return _status(_tag(tag), status, text, code)


def _tag(tag: str) -> bytes:
    raw = tag.encode("ascii", "replace")
    if not _TAG_RE.fullmatch(raw):
        raise ValueError(f"{tag!r} is not a valid tag")
    return raw


def untagged_status(status: str, text: str, code: Code | None = None) -> bytes:
    """`* OK|NO|BAD|BYE|PREAUTH [code] text` CRLF."""
    return _status(b"*", status, text, code)


def bad(tag: str | None, text: str, code: Code | None = None) -> bytes:
    """`tag BAD ...`, or `* BAD ...` when the tag is unknown."""
    if tag is None:
        return untagged_status("BAD", text, code)
    return tagged(tag, "BAD", text, code)


def bad_command(event: BadCommand) -> bytes:
    """The answer to the reader's BadCommand (and its subclasses: LimitExceeded, and
    ServerBusy, which is a NO)."""
    code = Code(event.code) if event.code else None
    if event.tag is not None and event.status != "BAD":
        return tagged(event.tag, event.status, event.message, code)
    return bad(event.tag, event.message, code)


def untagged(*parts: bytes) -> bytes:
    """`* part part ...` CRLF from written fragments: `untagged(b"FLAGS", flag_list(...))`."""
    return b"* " + b" ".join(parts) + CRLF


def continuation(text: str = "Ready") -> bytes:
    """`+ text` CRLF: the go-ahead for a literal, or `+ idling`."""
    return b"+ " + _text(text) + CRLF


def continuation_data(data: bytes) -> bytes:
    """`+ <base64>` CRLF: a SASL challenge (empty data gives `+ ` CRLF)."""
    return b"+ " + binascii.b2a_base64(data, newline=False) + CRLF


def capability_response(capabilities: Iterable[str]) -> bytes:
    return untagged(b"CAPABILITY", _atoms(capabilities))


def flags_response(flags: Iterable[str]) -> bytes:
    return untagged(b"FLAGS", flag_list(flags))


def exists(count: int) -> bytes:
    return untagged(number(count), b"EXISTS")


def recent(count: int) -> bytes:
    return untagged(number(count), b"RECENT")


def expunge(seq: int) -> bytes:
    return untagged(number(seq), b"EXPUNGE")


def fetch_response(seq: int, items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """`* seq FETCH (UID 4 FLAGS (\\Seen))` from (name, written value) pairs."""
    return untagged(number(seq), b"FETCH", paren(k + b" " + v for k, v in items))


def search_response(numbers: Iterable[int], modseq: int | None = None) -> bytes:
    """`* SEARCH 2 84 882` (numbers as given, space separated; none gives `* SEARCH`), and
    `(MODSEQ n)` after them when given (RFC 7162 3.1.5)."""
    tail = b" (MODSEQ %d)" % modseq if modseq else b""
    return b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + tail + CRLF


def esearch_response(tag: str, uid: bool, items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """`* ESEARCH (TAG "A285") UID MIN 7 MAX 3800` (RFC 4731, RFC 4466 2.6.2) from (name,
    written value) pairs."""
    head = b"* ESEARCH (TAG " + string(tag) + b")" + (b" UID" if uid else b"")
    return head + b"".join(b" " + k + b" " + v for k, v in items) + CRLF


def list_response(
    attributes: Iterable[str],
    delimiter: str | None,
    name: str,
    command: str = "LIST",
    childinfo: Iterable[str] = (),
    *,
    utf8: bool = False,
    oldname: str | None = None,
) -> bytes:
    """`* LIST (\\HasNoChildren) "." INBOX` (also LSUB, XLIST); a None delimiter is NIL.

    `childinfo`: the selection criteria a child matches, as RFC 5258 3.5's extended data item
    `(CHILDINFO ("SUBSCRIBED"))` (the tag unquoted, as Dovecot writes it). `oldname`: RFC 9051
    6.3.9.7's `("OLDNAME" ("inbox"))`, the name as the client gave it. `utf8`: see `mailbox`."""
    attrs = paren(_flag(a) for a in attributes)
    delim = b"NIL" if delimiter is None else quoted(delimiter)
    parts = [command.encode("ascii"), attrs, delim, mailbox(name, utf8)]
    criteria = [quoted(c) for c in childinfo]
    if criteria:
        parts.append(b"(CHILDINFO " + paren(criteria) + b")")
    if oldname is not None:
        parts.append(b'("OLDNAME" (' + _any_mailbox(oldname, utf8) + b"))")
    return untagged(*parts)


def _any_mailbox(name: str, utf8: bool) -> bytes:
    """A name as the client wrote it: `inbox` stays `"inbox"` (mailbox() would say INBOX), a
    quoted string as in RFC 9051 8's sample session."""
    if _is_inbox(name):
        return quoted(name)
    return mailbox(name, utf8)


def status_response(name: str, items: Mapping[str, int], *, utf8: bool = False) -> bytes:
    """`* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)`."""
    body = paren(_atoms([k]) + b" " + number(v) for k, v in items.items())
    return untagged(b"STATUS", mailbox(name, utf8), body)


def quotaroot_response(name: str, roots: Iterable[str], *, utf8: bool = False) -> bytes:
    """`* QUOTAROOT INBOX "User quota"` (RFC 9208 5.2)."""
    return untagged(b"QUOTAROOT", mailbox(name, utf8), *(astring(root) for root in roots))


def quota_response(root: str, resources: Iterable[tuple[str, int, int]]) -> bytes:
    """`* QUOTA "User quota" (STORAGE 10 512)` from (resource, usage, limit) (RFC 9208 5.1)."""
    body = paren(_atoms([n]) + b" " + number(u) + b" " + number(lim) for n, u, lim in resources)
    return untagged(b"QUOTA", astring(root), body)


# --- store errors ---------------------------------------------------------------------------

_ERROR_CODES = {
    ErrorKind.NOT_FOUND: Code.NONEXISTENT,
    ErrorKind.EXISTS: Code.ALREADYEXISTS,
    ErrorKind.INVALID_NAME: Code.CANNOT,
    ErrorKind.NO_QUOTA: Code.OVERQUOTA,
    ErrorKind.TEMPORARY: Code.UNAVAILABLE,
    ErrorKind.IN_USE: Code.INUSE,
    ErrorKind.PERMISSION: Code.NOPERM,
    ErrorKind.LIMIT: Code.LIMIT,
    ErrorKind.CORRUPT: Code.CORRUPTION,
    ErrorKind.NOT_POSSIBLE: Code.CANNOT,
}


def error_code(kind: str, *, trycreate: bool = False) -> Code:
    """The response code for a store error kind (unknown kinds: SERVERBUG).

    `trycreate=True` for APPEND/COPY/MOVE targets: a missing mailbox is then `TRYCREATE`
    (RFC 3501 6.3.11, 6.4.7) rather than `NONEXISTENT`.
    """
    if trycreate and kind == ErrorKind.NOT_FOUND:
        return Code.TRYCREATE
    return _ERROR_CODES.get(kind, Code.SERVERBUG)


def store_error(tag: str, error: MailError, *, trycreate: bool = False) -> bytes:
    """`tag NO [CODE] message` CRLF for a store failure."""
    return tagged(tag, "NO", error.message, error_code(error.kind, trycreate=trycreate))


# --- status texts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    """A fixed status response: `status [code] text`. `text` may hold `{name}` fields, filled
    by `say(..., name=value)`."""

    status: str
    text: str
    code: Code | None = None


def say(tag: str | None, what: Say, code: Code | None = None, **details: object) -> bytes:
    """The line for `what`: tagged, or untagged when `tag` is None. `code` replaces the
    constant's code (a CAPABILITY list, a COPYUID)."""
    code = code or what.code
    if not details and (code is None or len(code.data) <= KEPT_MAX):
        line = _kept_say(what, code)  # `* OK ...`: a tag takes the place of its `*`
        return line if tag is None else _tag(tag) + line[1:]
    text = what.text.format(**details) if details else what.text
    if tag is None:
        return untagged_status(what.status, text, code)
    return tagged(tag, what.status, text, code)


@lru_cache(maxsize=KEPT_LINES)
def _kept_say(what: Say, code: Code | None) -> bytes:
    return untagged_status(what.status, what.text, code)


def completed(tag: str, command: str, code: Code | None = None, text: str = "") -> bytes:
    """`tag OK [code] COMMAND completed`: the usual end of a command."""
    if (code is None or len(code.data) <= KEPT_MAX) and len(text) <= KEPT_MAX:
        return _tag(tag) + _kept_completion(command, code, text)
    return tagged(tag, "OK", text or f"{command} completed", code)


@lru_cache(maxsize=KEPT_LINES)
def _kept_completion(command: str, code: Code | None, text: str) -> bytes:
    """` OK [code] COMMAND completed` CRLF, without the tag."""
    return _status(b"", "OK", text or f"{command} completed", code)


class Refusal(Exception):
    """A command ends in a fixed NO (or BAD): raised by a handler, written by the dispatcher
    after the untagged updates the session owes."""

    def __init__(self, what: Say, code: Code | None = None, **details: object) -> None:
        super().__init__(what.text)
        self.what = what
        self.code = code
        self.details = details

    def line(self, tag: str) -> bytes:
        return say(tag, self.what, self.code, **self.details)


# Connection
GREETING = Say("OK", "mra ready.")
SHUTTING_DOWN = Say("BYE", "Server shutting down.")
INACTIVE = Say("BYE", "Disconnected for inactivity.")
TOO_MANY_ERRORS = Say("BYE", "Too many invalid commands.")
LOGGING_OUT = Say("BYE", "Logging out")
LOGOUT_DONE = Say("OK", "Logout completed")
SERVER_BUG = Say("NO", "Internal error", Code.SERVERBUG)
# Dispatch
UID_NEEDS_COMMAND = Say("BAD", "UID needs a command")
UNKNOWN_COMMAND = Say("BAD", "Unknown command {name}")
NOT_BEFORE_LOGIN = Say("BAD", "{name} is not valid before login")
NOT_WITHOUT_MAILBOX = Say("BAD", "{name} is not valid without a selected mailbox")
NOT_IN_STATE = Say("BAD", "{name} is not valid in this state")
NO_UID_FORM = Say("BAD", "{name} has no UID form")
# TLS and login
TLS_ACTIVE = Say("BAD", "TLS is already active")
TLS_UNAVAILABLE = Say("BAD", "TLS is not available")
TLS_BEGIN = Say("OK", "Begin TLS negotiation now")
PLAINTEXT_DISABLED = Say(
    "NO", "Plaintext authentication is disabled: use STARTTLS", Code.PRIVACYREQUIRED
)
UNSUPPORTED_MECHANISM = Say("NO", "Unsupported authentication mechanism", Code.CANNOT)
AUTH_CANCELLED = Say("BAD", "Authentication cancelled")
INVALID_BASE64 = Say("BAD", "Invalid base64 data")
AUTH_UNAVAILABLE = Say("NO", "Authentication is unavailable, try again later", Code.UNAVAILABLE)
AUTH_FAILED = Say("NO", "Authentication failed", Code.AUTHENTICATIONFAILED)
TOO_MANY_SESSIONS = Say("NO", "Too many sessions for this user", Code.LIMIT)
LOGGED_IN = Say("OK", "Logged in")
ALREADY_AUTHENTICATED = Say("BAD", "Already logged in")
# Mailboxes
PREVIOUS_CLOSED = Say("OK", "Previous mailbox closed.", Code.CLOSED)
CANNOT_OPEN = Say("NO", "Cannot open the mailbox", Code.SERVERBUG)
SELECTED = Say("OK", "Select completed")
EXAMINED = Say("OK", "Examine completed")
FLAGS_PERMITTED = Say("OK", "Flags permitted.")
READ_ONLY_FLAGS = Say("OK", "Read-only mailbox.")
FIRST_UNSEEN = Say("OK", "First unseen.")
UIDS_VALID = Say("OK", "UIDs valid")
NEXT_UID = Say("OK", "Predicted next UID")
MAILBOX_REPLACED = Say("BYE", "The mailbox was replaced, select it again")
NO_TARGET = Say("NO", "Mailbox does not exist", Code.TRYCREATE)
READ_ONLY = Say("NO", "Mailbox is read-only", Code.READ_ONLY)
CLOSED = Say("OK", "Close completed")
UNSELECTED = Say("OK", "Unselect completed")
# Messages
TOO_BIG = Say("NO", "Message too big (over {limit} octets)", Code.TOOBIG)
EMPTY_MESSAGE = Say("NO", "Refusing to save an empty message", Code.CANNOT)
# A message another session expunged, the client not yet told (RFC 2180 4.1, RFC 5530), as
# Dovecot answers: FETCH and SEARCH complete with what is known, COPY and MOVE fail whole.
ALREADY_EXPUNGED = Say("OK", "Some messages were already expunged", Code.EXPUNGEISSUED)
NO_LONGER_EXIST = Say("NO", "Some of the requested messages no longer exist", Code.EXPUNGEISSUED)
MOVED = Say("OK", "Moved")
BAD_CHARSET = Say("NO", "{reason}")  # with Code.badcharset(...)
# IDLE
IDLING = "idling"
STILL_HERE = Say("OK", "Still here")
IDLE_DONE = Say("OK", "IDLE terminated")
IDLE_BROKEN = Say("BAD", "IDLE ended: {problem}")
# IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855): commands/enable.py and the commands it names
NOT_NET_UNICODE = Say("NO", "The mailbox name {problem}", Code.CANNOT)  # RFC 9051 5.1
# Mailboxes and folders: LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, XLIST, STATUS=SIZE, QUOTA
USE_NOT_SUPPORTED = Say("NO", "{use} not supported", Code("USEATTR"))  # RFC 6154 5.3
NO_SUCH_QUOTA_ROOT = Say("NO", "Quota root doesn't exist", Code.NONEXISTENT)
QUOTA_IS_ADMINS = Say("NO", "Quota can be changed only by the administrator", Code.NOPERM)

# Appending and fetching: MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), BINARY (RFC 3516)
UNKNOWN_CTE = Say("NO", "Unknown Content-Transfer-Encoding", Code("UNKNOWN-CTE"))
INVALID_MIME_DATA = Say("NO", "Invalid data in MIME part", Code.PARSE)
BAD_URL = Say("NO", "{reason}")  # with badurl(url): CATENATE could not use that URL
APPEND_TOO_BIG = Say("NO", "APPEND too big (over {limit} octets in all)", Code.TOOBIG)
URLS_TOO_BIG = Say("NO", "CATENATE URLs name over {limit} octets of messages", Code.TOOBIG)
_URL_RESP_UNSAFE = re.compile(rb"[^\x20-\x5c\x5e-\x7e]")


def literal8(data: bytes) -> bytes:
    """`~{n}` CRLF and the octets (RFC 3516 literal8): binary data, NUL included."""
    return b"~{%d}\r\n" % len(data) + data


def badurl(url: bytes) -> Code:
    """`[BADURL url]` (RFC 4469 4.1): the URL as the client sent it. url-resp-text is any
    TEXT-CHAR but `]`; that, controls and 8-bit octets (which no URL holds unencoded) are
    %-encoded, so that the code stays one printable line the URL can be read back from."""
    text = _URL_RESP_UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], url)
    return Code("BADURL", text or b"-")


# CONDSTORE and QRESYNC (RFC 7162): commands/condstore.py and the commands it names
HIGHEST_MODSEQ = Say("OK", "Highest")  # with Code.highestmodseq(n), Dovecot's text
NO_MODSEQ = Say("OK", "No permanent modsequences", Code("NOMODSEQ"))
MODSEQS_UNAVAILABLE = Say("NO", "Mod-sequences are not available for this mailbox", Code.CANNOT)
STORE_NOT_ALL = Say("OK", "Conditional store failed.")  # with Code.modified(...)

# COMPRESS (RFC 4978): commands/compress.py
COMPRESSING = Say("OK", "{mechanism} active")  # the RFC's example; Dovecot: "Begin compression."
COMPRESSION_ACTIVE = Say("NO", "{mechanism} is already active", Code("COMPRESSIONACTIVE"))
TLS_AFTER_COMPRESS = Say("BAD", "STARTTLS is not possible once COMPRESS is active")
