"""The "mailto" notification method of "enotify" (RFC 5435, RFC 5436): which URIs are valid,
what a method can do, and what a notification is made of (`mda.sieve.send` sends it).

A mailto URI (RFC 6068): `mailto:` addr-specs separated by ",", then `?` and `hname=hvalue`
pairs joined by "&", all percent-encoded. The recipients are the addresses of the path and
of the "to", "cc" and "bcc" fields; "subject" and "body" fill the notification; fields that
would lie about its origin or route are ignored (RFC 5436 section 2.7).
"""

from __future__ import annotations

from .address import redirect_address

# RFC 5436 section 2.7: "... MUST ignore any header fields from the URI other than ..." what
# the originator may set; these are never taken from the URI.
_IGNORED = frozenset(
    {
        "received",
        "from",
        "sender",
        "return-path",
        "auto-submitted",
        "message-id",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
        "delivered-to",
    }
)


class Mailto:
    """A parsed mailto URI: recipients, the other header fields, the body."""

    __slots__ = ("body", "headers", "recipients")

    def __init__(self, recipients: list[str], headers: list[tuple[str, str]], body: str):
        self.recipients = recipients
        self.headers = headers
        self.body = body


def _unpercent(text: str) -> str | None:
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in b"0123456789abcdefABCDEF" for c in pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_mailto(uri: str) -> Mailto | str:
    """The parsed URI, or a string saying what is wrong with it."""
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "mailto":
        return "only the mailto method is supported"
    if any(c in uri for c in ' \t\r\n<>"') or not uri.isprintable():
        return "characters that need percent-encoding"
    path, _, query = rest.partition("?")
    recipients: list[str] = []
    headers: list[tuple[str, str]] = []
    body = ""
    for part in path.split(",") if path else []:
        address = _unpercent(part)
        if address is None or redirect_address(address) is None:
            return f"invalid recipient {part!r}"
        recipients.append(redirect_address(address) or address)
    for item in query.split("&") if query else []:
        name_text, eq, value_text = item.partition("=")
        name = _unpercent(name_text)
        value = _unpercent(value_text)
        if name is None or value is None or not eq or not name:
            return f"invalid header field {item!r}"
        lowered = name.lower()
        if lowered == "body":
            body = value
        elif lowered in ("to", "cc", "bcc"):
            for address in value.split(","):
                found = redirect_address(address.strip())
                if found is None:
                    return f"invalid recipient {address!r} in {name}"
                recipients.append(found)
        elif lowered not in _IGNORED:
            if any(c in value for c in "\r\n"):
                return f"line break in header field {name!r}"
            headers.append((name, value))
    if not recipients:
        return "no recipient"
    return Mailto(recipients, headers, body)


def check_method(uri: str) -> str | None:
    """None when `uri` is a method we can notify by, else why not."""
    parsed = parse_mailto(uri)
    return parsed if isinstance(parsed, str) else None


def method_capability(uri: str, capability: str) -> str | None:
    """RFC 5435 section 5: the one capability, "online"; mailto can only say "maybe" (RFC
    5436 section 2.3). None for an invalid method or an unknown capability."""
    if check_method(uri) is not None or capability.lower() != "online":
        return None
    return "maybe"
