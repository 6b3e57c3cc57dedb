"""Every status line POP3 sends, and the one mapping of store errors to response codes.

The session (session.py) holds no text of its own: it names a response here, the way
`mra/imap/response.py` is the only writer of IMAP bytes. Status lines are `+OK text` or
`-ERR [CODE] text` (RFC 1939 section 3); a text that carries a value (a number, a size) is a
function, the others constants.

Response codes (RFC 2449 section 8 extended by RFC 3206, advertised as RESP-CODES and
AUTH-RESP-CODE in CAPA):

* `[IN-USE]`: the mailbox is locked by another POP3 session (RFC 2449 8.1.1), or the user has too
  many sessions;
* `[AUTH]`: the credentials were refused, or cannot be given this way (RFC 3206 section 5);
* `[SYS/TEMP]`: a failure of the server that will likely pass (RFC 3206 section 4): a lock
  timeout, a full disk, the user database unreachable;
* `[SYS/PERM]`: one that will not pass without an administrator (RFC 3206 section 4);
* `[LOGIN-DELAY]` is never sent: nothing limits how often a user may log in, only failed logins
  are slowed down.

Store errors are mapped once, from their `ErrorKind` (`store_error`), as Dovecot's
`client_send_storage_error()` maps `enum mail_error` for POP3: TEMP and NOQUOTA are
`[SYS/TEMP]`, everything else `[SYS/PERM]`; `in-use` is `[IN-USE]`, which RFC 2449 defines for
exactly that; a message expunged meanwhile (`not-found`) gets no code, since nothing is wrong
with the system (Dovecot: `-ERR Message N expunged.`).

Every text is 7-bit and single-line: a value that came from elsewhere (the server's refusal
texts, a host name) has its control characters replaced, so nothing can add a line.
"""

from __future__ import annotations

import base64

from mailstore.errors import ErrorKind, MailError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

IN_USE = "IN-USE"
AUTH = "AUTH"
SYS_TEMP = "SYS/TEMP"
SYS_PERM = "SYS/PERM"

_CODE_OF_KIND: dict[str, str | None] = {
    ErrorKind.TEMPORARY: SYS_TEMP,
    ErrorKind.NO_QUOTA: SYS_TEMP,
    ErrorKind.IN_USE: IN_USE,  # the store's kind for "another session holds the mailbox"
    ErrorKind.NOT_FOUND: None,
    ErrorKind.EXISTS: SYS_PERM,
    ErrorKind.INVALID_NAME: SYS_PERM,
    ErrorKind.PERMISSION: SYS_PERM,
    ErrorKind.LIMIT: SYS_PERM,
    ErrorKind.CORRUPT: SYS_PERM,
    ErrorKind.NOT_POSSIBLE: SYS_PERM,
}
LIST_MAX = 30  # message numbers named in one status line (RFC 2449: lines up to 512 octets)


def code_of(kind: str) -> str | None:
    """The response code for a store error kind (unknown kinds are temporary)."""
    return _CODE_OF_KIND.get(kind, SYS_TEMP)


# -- status lines ----------------------------------------------------------------------------


def ok(text: str = "") -> bytes:
    return f"+OK {_clean(text)}\r\n".encode() if text else b"+OK\r\n"


def err(text: str, code: str | None = None) -> bytes:
    prefix = f"[{code}] " if code else ""
    return f"-ERR {prefix}{_clean(text)}\r\n".encode()


def store_error(error: MailError, text: str) -> bytes:
    """`-ERR` with the code of the store error's kind and our text (the store's message may
    name files: it goes to the log, not to the client)."""
    return err(text, code_of(error.kind))


def multiline(first: str, lines: Iterable[str]) -> bytes:
    """`+OK first`, the lines, and the terminating `.` (RFC 1939 section 3; the lines here
    never start with `.`: capability names, numbers, UIDLs)."""
    body = "".join(f"{line}\r\n" for line in lines)
    return ok(first) + f"{body}.\r\n".encode()


def multiline_chunks(first: str, lines: Iterable[str], size: int = 1 << 16) -> Iterator[bytes]:
    """`multiline` as chunks of about `size` octets, made as they are pulled: a listing of
    100,000 messages is written at the pace the client reads it, never held whole."""
    yield ok(first)
    batch: list[str] = []
    held = 0
    for line in lines:
        batch.append(line)
        held += len(line) + 2
        if held >= size:
            yield "".join(f"{x}\r\n" for x in batch).encode()
            batch, held = [], 0
    yield "".join(f"{x}\r\n" for x in batch).encode() + b".\r\n"


def _clean(text: str) -> str:
    if text.isascii() and text.isprintable():
        return text
    return "".join(c if " " <= c <= "~" else "?" for c in text)


# -- the texts -------------------------------------------------------------------------------


def greeting(host: str) -> bytes:
    return ok(f"{host} POP3 ready")


def refused(text: str) -> bytes:
    """The server turned the connection away (access rules, limits) before any command."""
    return err(text, SYS_PERM)


SHUTTING_DOWN = err("Server shutting down", SYS_TEMP)
IDLE_TIMEOUT = err("Disconnected for inactivity")

# Bad commands: each counts towards the limit of bad commands in a row.
LINE_TOO_LONG = "line too long"
BAD_CHARACTERS = "Invalid characters in command"
UNKNOWN_COMMAND = "Unknown command"
TOO_MANY_BAD = err("Too many bad commands, closing")
TLS_ACTIVE = "TLS is already active"
TLS_UNAVAILABLE = "TLS is not available"
USER_NEEDS_NAME = "USER needs a name"
USER_FIRST = "USER first"
BAD_BASE64 = "Invalid base64 data"
TOP_ARGUMENTS = "TOP needs a message number and a line count"


def not_in_this_state(verb: str) -> str:
    return f"{verb} is not valid in this state"


def needs_login(verb: str) -> str:
    return f"{verb} needs a login first"


def bad_command(why: str) -> bytes:
    return err(why)


# AUTHORIZATION
def challenge(data: bytes) -> bytes:
    """A SASL server challenge (RFC 5034 section 4)."""
    return b"+ " + base64.b64encode(data) + b"\r\n"


CAPABILITIES = "Capability list follows"
BEGIN_TLS = ok("Begin TLS negotiation")
PLAINTEXT_USE_STLS = err(
    "Plaintext authentication disallowed on non-secure connections: use STLS", AUTH
)
PLAINTEXT_DISALLOWED = err("Plaintext authentication disallowed", AUTH)
UNKNOWN_MECHANISM = err("Unsupported authentication mechanism", AUTH)
AUTH_CANCELLED = err("Authentication cancelled", AUTH)
AUTH_FAILED = err("Authentication failed", AUTH)
AUTH_UNAVAILABLE = err("Authentication is unavailable, try again later", SYS_TEMP)
MAILBOX_LOCKED = err("Mailbox is locked by another POP3 session", IN_USE)
TOO_MANY_SESSIONS = err("Too many sessions for this user", IN_USE)
OPEN_FAILED = "Cannot open the mailbox, try again later"
LOGGED_IN = ok("Logged in.")
LOGGING_OUT = ok("Logging out")

# TRANSACTION
NO_SUCH_MESSAGE = err("No such message")
SCAN_LISTING = "scan listing follows"
UNIQUE_ID_LISTING = "unique-id listing follows"
TOP_FOLLOWS = ok("Top of message follows")
MARKED_DELETED = ok("Marked to be deleted.")


def maildrop(count: int, octets: int) -> bytes:
    """STAT (RFC 1939 section 5)."""
    return ok(f"{count} {octets}")


def scan_line(number: int, octets: int) -> str:
    return f"{number} {octets}"


def uidl_line(number: int, uidl: str) -> str:
    return f"{number} {uidl}"


def message_size(octets: int) -> bytes:
    """RETR's first line."""
    return ok(f"{octets} octets")


def message_gone(number: int) -> bytes:
    """RETR/TOP of a message another client expunged since the login."""
    return err(f"Message {number} is no longer available")


def message_failed(number: int, error: MailError) -> bytes:
    """RETR/TOP of a message whose file cannot be read (or another store error): that message
    only; the session goes on."""
    if error.kind == ErrorKind.NOT_FOUND:
        return message_gone(number)
    return store_error(error, f"Message {number} cannot be read")


# UPDATE (RFC 1939 section 6): +OK only when every message marked deleted is gone.
LOGGED_OUT = ok("Logging out.")
UPDATE_FAILED = "Some deleted messages were not removed"


def not_removed(numbers: list[int], error: MailError | None) -> bytes:
    """QUIT when some deletions did not happen: which ones, with the code of the first error
    (SYS/TEMP when a message simply came back)."""
    named = " ".join(str(n) for n in numbers[:LIST_MAX])
    if len(numbers) > LIST_MAX:
        named += f" and {len(numbers) - LIST_MAX} more"
    word = "Message" if len(numbers) == 1 else "Messages"
    text = f"{word} {named} not removed"
    return err(text, SYS_TEMP) if error is None else store_error(error, text)
