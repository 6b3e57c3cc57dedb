"""The arguments of LMTP's commands: LHLO's name, MAIL's and RCPT's path and parameters.

    MAIL FROM:<reverse-path> [SP param...]      RFC 5321 4.1.1.2; "<>" is the null sender
    RCPT TO:<forward-path> [SP param...]        RFC 5321 4.1.1.3; "<Postmaster>" has no domain

A path may carry an obsolete source route (`<@a,@b:user@domain>`, dropped as RFC 5321 4.1.1.3
says) and a quoted local part (`<"a b"@domain>`: the `>` search skips quoted text). MAIL takes
SIZE=n (RFC 1870), BODY=7BIT|8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531); RCPT takes none (no
DSN is advertised): anything else is `555 5.5.4`. A path is at most 256 octets (RFC 5321
4.5.3.1.3), and goes through mda's own check (`mda.address.check`: no control or format
character, which would reach a header or a log line), and a non-ASCII address needs the
SMTPUTF8 parameter (`553 5.6.7`, RFC 6531 3.5). A line is already known to hold no CR, LF or
NUL (reader.py), and its octets that are not UTF-8 become surrogates, refused here.
"""

from __future__ import annotations

from mda.address import check as check_value
from mda.errors import BadAddress

MAX_PATH = 256  # RFC 5321 4.5.3.1.3, with its angle brackets


class Refusal(Exception):
    """A command refused for its arguments: the reply's code, status and text."""

    def __init__(self, code: int, status: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.status = status
        self.text = text


def split(line: bytes) -> tuple[str, str]:
    """(VERB in upper case, the rest) of a command line."""
    text = line.decode("utf-8", "surrogateescape")
    verb, _, rest = text.partition(" ")
    return verb.upper(), rest


def lhlo_name(rest: str) -> str:
    """LHLO's argument: a domain or an address literal, shown in our Received: line."""
    name = rest.strip()
    if not name or " " in name or len(name) > 255:
        raise Refusal(501, "5.5.4", "LHLO needs a domain name")
    if not name.isascii() or not name.isprintable():
        raise Refusal(501, "5.5.4", "LHLO's domain name must be printable ASCII")
    return name


def _path(rest: str, prefix: str) -> tuple[str, str]:
    """The text between the angle brackets after `prefix`, and what follows them."""
    if rest[: len(prefix)].upper() != prefix:
        raise Refusal(501, "5.5.4", f"Syntax: {prefix}<address>")
    text = rest[len(prefix) :].lstrip(" ")  # "FROM: <a>" is common, if not RFC 5321's
    if not text.startswith("<"):
        raise Refusal(501, "5.5.4", f"Syntax: {prefix}<address>")
    end = text.find(">", 1, MAX_PATH)
    if end > 0 and '"' not in text[:end] and "\\" not in text[:end]:
        # The usual path, nothing quoted or escaped: it ends at the first `>` (the same
        # answer as the loop below, without looking at each character).
        return text[1:end], text[end + 1 :]
    quoted = escaped = False
    for i in range(1, len(text)):
        c = text[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            if i + 1 > MAX_PATH:
                raise Refusal(501, "5.5.4", "Path too long")
            return text[1:i], text[i + 1 :]
        if i >= MAX_PATH:
            break
    raise Refusal(501, "5.5.4", "Path without its closing '>' or too long")


def _mailbox(path: str, utf8: bool, what: str, status: str) -> str:
    """The address of a path: no source route, checked."""
    if path.startswith("@"):
        colon = path.find(":")
        if colon < 0:
            raise Refusal(501, "5.5.4", "Bad source route")
        path = path[colon + 1 :]
    if not path.isascii() and any("\udc80" <= c <= "\udcff" for c in path):
        raise Refusal(553, status, f"The {what} address is not valid UTF-8")
    try:
        check_value(path, what, status)
    except BadAddress as exc:
        raise Refusal(553, status, exc.text) from None
    if " " in _unquoted(path):
        raise Refusal(501, "5.5.4", f"Space in the {what} address")
    if not path.isascii() and not utf8:
        raise Refusal(553, "5.6.7", "Non-ASCII address without SMTPUTF8")
    return path


def _unquoted(path: str) -> str:
    """The path without its quoted strings and escaped characters (where a space may be)."""
    if '"' not in path and "\\" not in path:
        return path
    out = []
    quoted = escaped = False
    for c in path:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif not quoted:
            out.append(c)
    return "".join(out)


def _params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        key = key.upper()
        if not key or key in params:
            raise Refusal(501, "5.5.4", f"Bad or repeated parameter {word}")
        params[key] = value if eq else None
    return params


class MailFrom:
    __slots__ = ("body", "sender", "size", "utf8")

    def __init__(self, sender: str, size: int | None, body: str, utf8: bool) -> None:
        self.sender = sender
        self.size = size
        self.body = body  # "7BIT" or "8BITMIME"
        self.utf8 = utf8


def mail_from(rest: str) -> MailFrom:
    path, tail = _path(rest, "FROM:")
    params = _params(tail)
    utf8 = "SMTPUTF8" in params
    if utf8 and params["SMTPUTF8"] is not None:
        raise Refusal(501, "5.5.4", "SMTPUTF8 takes no value")
    size: int | None = None
    body = "7BIT"
    for key, value in params.items():
        if key == "SIZE":
            if value is None or not value.isascii() or not value.isdigit() or len(value) > 20:
                raise Refusal(501, "5.5.4", "SIZE needs a number")
            size = int(value)
        elif key == "BODY":
            body = (value or "").upper()
            if body not in ("7BIT", "8BITMIME"):
                raise Refusal(555, "5.5.4", f"Unsupported parameter BODY={value}")
        elif key != "SMTPUTF8":
            raise Refusal(555, "5.5.4", f"Unsupported parameter {key}")
    sender = "" if path == "" else _mailbox(path, utf8, "sender", "5.1.7")
    return MailFrom(sender, size, body, utf8)


def rcpt_to(rest: str, utf8: bool) -> str:
    path, tail = _path(rest, "TO:")
    params = _params(tail)
    if params:
        raise Refusal(555, "5.5.4", f"Unsupported parameter {next(iter(params))}")
    if not path:
        raise Refusal(501, "5.5.4", "Empty recipient")
    return _mailbox(path, utf8, "recipient", "5.1.3")
