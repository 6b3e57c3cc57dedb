"""Every reply LMTP sends: the only place its texts live (as mra/pop3/response.py for POP3).

A reply is `CODE SP D.S.N SP text CRLF` (RFC 5321 4.2, RFC 2034 enhanced status codes, which
LHLO advertises), or several lines `CODE-text` with the last `CODE SP text` (LHLO). The 220
greeting and the 354 go without a status code, as RFC 2034 section 3 says. Failures of a
delivery are mapped to a code once, by their DSN, in `mda.errors.smtp_reply` (shared with
`mda`, which maps the same errors to exit codes).

Every text is 7-bit and one line: a value that came from elsewhere (an address, a failure's
text) has its control characters shown as escapes and anything past ASCII as `\\u` escapes, so
that nothing a client sends can end a reply or start another.
"""

from __future__ import annotations

from mda.errors import smtp_reply

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mda.errors import DeliveryError

EXTENSIONS = ("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE", "SMTPUTF8")


def _line(code: int, status: str, text: str) -> bytes:
    return f"{code} {status} {safe(text)}\r\n".encode("ascii")


def safe(text: str) -> str:
    """A value for a reply: one line of ASCII."""
    if text.isascii() and text.isprintable():
        return text  # the usual case, without looking at each character
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return out.encode("ascii", "backslashreplace").decode("ascii")


def greeting(host: str) -> bytes:
    return f"220 {safe(host)} LMTP server ready\r\n".encode("ascii")


def lhlo(host: str, max_size: int) -> bytes:
    """The LHLO reply (RFC 2033 4.1): our name, then the extensions, SIZE with its bound
    (RFC 1870)."""
    lines = [safe(host)] + [f"SIZE {max_size}" if e == "SIZE" else e for e in EXTENSIONS]
    out = "".join(f"250-{line}\r\n" for line in lines[:-1]) + f"250 {lines[-1]}\r\n"
    return out.encode("ascii")


SENDER_OK = _line(250, "2.1.0", "Sender OK")
RECIPIENT_OK = _line(250, "2.1.5", "Recipient OK")
GO_AHEAD = b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"
OK = _line(250, "2.0.0", "OK")
BYE = _line(221, "2.0.0", "Bye")
VRFY = _line(252, "2.5.0", "Cannot VRFY a user, but will take mail for a recipient")
HELP = _line(214, "2.0.0", "LMTP, RFC 2033: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")

SEND_LHLO = _line(503, "5.5.1", "Send LHLO first")
NESTED_MAIL = _line(503, "5.5.1", "Sender already given")
NEED_MAIL = _line(503, "5.5.1", "Need MAIL first")
NO_RECIPIENTS = _line(503, "5.5.1", "No valid recipients")
USE_LHLO = _line(500, "5.5.1", "This is LMTP: use LHLO")
NOT_IMPLEMENTED = _line(502, "5.5.1", "Command not implemented")
UNKNOWN = _line(500, "5.5.2", "Unknown command")
TOO_MANY_ERRORS = _line(421, "4.7.0", "Too many errors, closing the connection")
TOO_MANY_RECIPIENTS = _line(452, "4.5.3", "Too many recipients")
SHUTTING_DOWN = _line(421, "4.3.2", "Server shutting down")
TIMEOUT = _line(421, "4.4.2", "Idle for too long, closing the connection")


def refused(why: str) -> bytes:
    """The connection is refused (the access map, a connection limit): 421, then closed."""
    return _line(421, "4.3.2", why)


def syntax(why: str) -> bytes:
    """A command whose arguments we cannot read (501 5.5.4), or a line refused whole
    (`reader.BadLine`: 500 5.5.2)."""
    return _line(501, "5.5.4", why)


def bad_line(why: str) -> bytes:
    return _line(500, "5.5.2", why)


def unsupported(param: str) -> bytes:
    return _line(555, "5.5.4", f"Unsupported parameter {param}")


def too_big(max_size: int) -> bytes:
    return _line(552, "5.3.4", f"Message too big (over {max_size} octets)")


def bad_address(code: int, status: str, why: str) -> bytes:
    return _line(code, status, why)


def delivered(recipient: str) -> bytes:
    return _line(250, "2.0.0", f"<{recipient}> delivered")


def failure(err: DeliveryError) -> bytes:
    """A recipient's failure (at RCPT, or its reply after DATA)."""
    return _line(smtp_reply(err), err.dsn, err.line().partition(" ")[2])


def no_memory() -> bytes:
    return _line(452, "4.3.1", "Insufficient system storage, try again later")


def nul_in_message() -> bytes:
    return _line(554, "5.6.0", "Message holds a NUL character")


def bare_lf_in_message() -> bytes:
    return _line(554, "5.6.0", "Message holds a bare LF (line feed without carriage return)")
