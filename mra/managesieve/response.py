"""Everything the ManageSieve server says (RFC 5804 sections 1.2, 1.3, 4): the only writer of
bytes, and every text in one place.

A response is `OK`, `NO` or `BYE`, an optional response code in parentheses and an optional
human-readable string. A string goes out quoted when it can (at most 1024 octets, no CR, LF or
NUL, RFC 5804's `quoted`), else as a literal `{n}` CRLF octets: a multi-line error message, a
script, a name with a line break cannot be quoted.

Response codes (section 1.3) and where they are used:

    NONEXISTENT       the script named does not exist (GETSCRIPT, SETACTIVE, DELETESCRIPT,
                      RENAMESCRIPT)
    ALREADYEXISTS     RENAMESCRIPT to a name that is taken
    ACTIVE            DELETESCRIPT of the active script
    QUOTA/MAXSIZE     a script over `[managesieve] max_script_size` (HAVESPACE, PUTSCRIPT,
                      CHECKSCRIPT)
    QUOTA/MAXSCRIPTS  one script more than `max_scripts`
    QUOTA/MAXSTORAGE  all scripts together over `max_storage` (Pigeonhole's code)
    TRYLATER          a temporary failure: the disk, the user database, a busy server
    ENCRYPT-NEEDED    PLAIN or LOGIN over a connection that is neither TLS nor loopback
    TAG               NOOP's echo (section 2.13)
    WARNINGS          a script that compiles with warnings (PUTSCRIPT, CHECKSCRIPT, SETACTIVE)
"""

from __future__ import annotations

from collections.abc import Iterable

# Response codes (RFC 5804 section 1.3; QUOTA/MAXSTORAGE is Pigeonhole's).
# No text holds a parenthesis: clients that find the response code with a greedy match up to
# the last ")" of the line (the `managesieve` Python module) would read the text into it.
NONEXISTENT = "NONEXISTENT"
ALREADYEXISTS = "ALREADYEXISTS"
ACTIVE = "ACTIVE"
QUOTA_MAXSIZE = "QUOTA/MAXSIZE"
QUOTA_MAXSCRIPTS = "QUOTA/MAXSCRIPTS"
QUOTA_MAXSTORAGE = "QUOTA/MAXSTORAGE"
TRYLATER = "TRYLATER"
ENCRYPT_NEEDED = "ENCRYPT-NEEDED"
WARNINGS = "WARNINGS"

IMPLEMENTATION = "mra ManageSieve"
VERSION = "1.0"

# --- texts ----------------------------------------------------------------------------------

GREETING = "mra ManageSieve ready."
CAPABILITY_DONE = "Capability completed."
NOOP_DONE = "NOOP completed."
NOOP_TAGGED = "Done"
LOGOUT_DONE = "Logout completed."
TLS_BEGIN = "Begin TLS negotiation now."
TLS_DONE = "TLS negotiation successful."
TLS_ACTIVE = "TLS is already active."
TLS_UNAVAILABLE = "TLS is not available on this server."
LOGGED_IN = "Logged in."
UNAUTHENTICATED = "Unauthenticate completed."
AUTH_FAILED = "Authentication failed."
AUTH_CANCELLED = "Authentication cancelled."
AUTH_BAD_RESPONSE = "Invalid response to the authentication challenge."
AUTH_UNAVAILABLE = "Temporary authentication failure."
ALREADY_AUTHENTICATED = "Already authenticated."
UNSUPPORTED_MECHANISM = "Unsupported authentication mechanism."
PLAINTEXT_DISALLOWED = "Plaintext authentication disallowed on non-secure connections."
TOO_MANY_SESSIONS = "Too many sessions for this account, try again later."
NO_HOME = "Sieve scripts are kept in the home directory, and this account has none."
NEED_LOGIN = "Authenticate first."
NOT_AUTHENTICATED = "Not authenticated."
UNKNOWN_COMMAND = "Unknown command."
TOO_MANY_BAD = "Too many invalid commands."
IDLE_TIMEOUT = "Disconnected for inactivity."
SHUTTING_DOWN = "Server shutting down."
SERVER_BUSY = "Server busy, try again later."
TEMPORARY_FAILURE = "Temporary failure, try again later."
BAD_ARGUMENTS = "Invalid arguments."
BAD_NAME = "Invalid script name."
BAD_SIZE = "Invalid script size."
BAD_TAG = "Invalid echo tag."
EMPTY_SCRIPT = "The script is empty."
NO_SUCH_SCRIPT = "There is no script by that name."
SCRIPT_EXISTS = "A script with that name already exists."
SCRIPT_ACTIVE = "You may not delete the active script; deactivate it first."
PUT_DONE = "PUTSCRIPT completed."
CHECK_DONE = "Script checked successfully."
LIST_DONE = "Listscripts completed."
GET_DONE = "Getscript completed."
SETACTIVE_DONE = "Setactive completed."
ALREADY_ACTIVE = "Script is already active."
DEACTIVATED = "Sieve processing disabled."
DELETE_DONE = "Deletescript completed."
RENAME_DONE = "Renamescript completed."
HAVESPACE_DONE = "Putscript would succeed."


def too_large(limit: int) -> str:
    return f"Script is too large, max {limit} bytes."


def too_many_scripts(limit: int) -> str:
    return f"Script count quota exceeded, max {limit} scripts."


def storage_full(limit: int) -> str:
    return f"Script storage quota exceeded, max {limit} bytes."


def not_in_state(name: str) -> str:
    return f"{name} is not allowed in this state."


# --- syntax ---------------------------------------------------------------------------------

_QUOTED_MAX = 1024  # RFC 5804 section 4: `quoted` holds at most 1024 octets


def string(value: str | bytes) -> bytes:
    """A ManageSieve string: quoted when it can be, else a literal `{n}` (literal-s2c)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) <= _QUOTED_MAX and not any(c in data for c in b"\r\n\0"):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(data)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def _status(kind: bytes, text: str | None, code: str | None, code_arg: str | bytes | None) -> bytes:
    out = kind
    if code is not None:
        out += b" (" + code.encode("ascii")
        if code_arg is not None:
            out += b" " + string(code_arg)
        out += b")"
    if text is not None:
        out += b" " + string(text)
    return out + b"\r\n"


def ok(text: str | None = None, code: str | None = None, arg: str | bytes | None = None) -> bytes:
    return _status(b"OK", text, code, arg)


def no(text: str | None = None, code: str | None = None) -> bytes:
    return _status(b"NO", text, code, None)


def bye(text: str, code: str | None = None) -> bytes:
    return _status(b"BYE", text, code, None)


def capabilities(caps: Iterable[tuple[str, str | None]]) -> bytes:
    """The capability lines (section 1.7): `"NAME" "value"` or `"NAME"`."""
    out = b""
    for name, value in caps:
        out += string(name)
        if value is not None:
            out += b" " + string(value)
        out += b"\r\n"
    return out


def script_line(name: str, active: bool) -> bytes:
    """A LISTSCRIPTS line (section 2.7)."""
    return string(name) + (b" ACTIVE\r\n" if active else b"\r\n")


def challenge(data: bytes) -> bytes:
    """A SASL challenge (section 2.1): a string of base64, then CRLF."""
    import base64

    return string(base64.b64encode(data)) + b"\r\n"
