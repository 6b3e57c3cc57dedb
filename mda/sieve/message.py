"""The message and envelope as Sieve sees them.

Only the header block is parsed up front; the body is looked at only by the tests that need
it ("body", "mime", extracttext: see `mime.py`), from the one buffer the caller holds. The
header can be edited ("editheader", RFC 5293): tests after an edit see the edited header.
Decoding is done here by hand rather than with the `email` package: it is cheaper to
import, and its behaviour does not change between Python patch releases (for instance
`email.utils.getaddresses` became strict in 3.11.x for CVE-2023-27043).

- Header values are unfolded (RFC 5322 section 2.2.3) and RFC 2047 encoded-words are decoded
  (RFC 5228 section 2.7.2); charsets Python does not know are left encoded, as 2.7.2 allows.
- Octets of a header that are not UTF-8 (RFC 6532) are read as ISO-8859-1.
- Addresses are parsed from the raw (not yet decoded) value, so that an encoded display name
  that decodes to "," or "<" cannot split or invent an address.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .mime import Part


# RFC 5228 section 5.1: the address test MUST cover From, To, Cc, Bcc, Sender, Resent-From,
# Resent-To and SHOULD cover other headers with an address-list; this is Pigeonhole's list
# plus Disposition-Notification-To. The address test never matches other headers.
ADDRESS_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "sender",
        "resent-from",
        "resent-to",
        "reply-to",
        "resent-reply-to",
        "resent-sender",
        "resent-cc",
        "resent-bcc",
        "return-path",
        "disposition-notification-to",
        "for-approval",
        "for-handling",
        "for-comment",
        "apparently-to",
        "errors-to",
        "delivered-to",
        "return-receipt-to",
        "x-admin",
        "read-receipt-to",
        "x-confirm-reading-to",
        "return-receipt-requested",
        "registered-mail-reply-requested-by",
        "mail-followup-to",
        "mail-reply-to",
        "abuse-reports-to",
        "x-complaints-to",
        "x-report-abuse-to",
        "x-beenthere",
        "x-original-from",
        "x-original-to",
    }
)

# RFC 5233: the separator between :user and :detail, as Dovecot's recipient_delimiter.
SUBADDRESS_SEPARATOR = "+"


def is_header_name(name: str) -> bool:
    """Whether `name` is a syntactically valid header field name: RFC 5322 section 3.6.8's
    ftext, printable US-ASCII (33-126) except ":". (ASCII printable is 32-126: the space is
    excluded apart. Every header test asks, so no loop over the characters in Python.)"""
    return (
        bool(name)
        and name.isascii()
        and name.isprintable()
        and ":" not in name
        and (" " not in name)
    )


class SieveMessage:
    """Read access to a message's header, size and body, as the Sieve tests need it, and the
    header edits of "editheader"."""

    __slots__ = (
        "_address_cache",
        "_fields",
        "_header_cache",
        "_index",
        "_mime",
        "body_start",
        "edited",
        "raw",
        "size",
    )

    def __init__(
        self,
        headers: Iterable[tuple[str, str]],
        size: int,
        raw: bytes | bytearray | None = None,
        body_start: int = 0,
    ) -> None:
        """`headers`: (name, raw value) pairs in message order; a value may still be folded
        and hold encoded-words. `size`: octets of the message in RFC 5322 form (CRLF line
        endings), which is what RFC 5228 section 5.9 compares. `raw`: the whole message, for
        the tests that read the body (never copied)."""
        self._fields: list[tuple[str, str]] = list(headers)
        self._index: dict[str, list[str]] = {}
        self._header_cache: dict[str, list[str]] = {}
        self._address_cache: dict[str, list[str]] = {}
        self._reindex()
        self.size = size
        self.raw = raw
        self.body_start = body_start
        self.edited = False
        self._mime: object = None

    def _reindex(self) -> None:
        self._index = {}
        for name, value in self._fields:
            self._index.setdefault(name.lower(), []).append(value)
        self._header_cache = {}
        self._address_cache = {}

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray) -> SieveMessage:
        """Build from a whole raw message; only the header block is parsed (and copied: the
        delivery agent passes its one buffer of a possibly large message, which is kept by
        reference for the body tests).

        Line endings may be CRLF or LF. The size (RFC 5228 section 5.9) is the octets as
        received, which is what Pigeonhole compares (`mail_get_physical_size` in its
        tst-size.c): a message that came with LF line ends is that much smaller.
        """
        size = len(raw)
        end = _header_end(raw)
        body_start = end
        if raw.startswith(b"\r\n", end):
            body_start += 2
        elif raw.startswith(b"\n", end):
            body_start += 1
        return cls(parse_header_block(bytes(raw[:end])), size, raw, body_start)

    def raw_header(self, name: str) -> list[str]:
        """The raw (folded, undecoded) values of every `name` field, in order."""
        return list(self._index.get(name.lower(), ()))

    def header(self, name: str) -> list[str]:
        """Every `name` field, unfolded, RFC 2047-decoded, leading/trailing blanks removed."""
        key = name.lower()
        cached = self._header_cache.get(key)
        if cached is None:
            cached = [decode_header_value(v) for v in self._index.get(key, ())]
            self._header_cache[key] = cached
        return list(cached)

    def has_header(self, name: str) -> bool:
        return name.lower() in self._index

    def addresses(self, name: str) -> list[str]:
        """The addr-specs ("local@domain") of every `name` field, groups flattened.

        Display names, comments and group names are dropped (RFC 5228 section 5.1). An entry
        that is not a valid address is kept as its text, so only :all can match it.
        """
        key = name.lower()
        cached = self._address_cache.get(key)
        if cached is None:
            cached = []
            for value in self._index.get(key, ()):
                cached.extend(parse_address_list(unfold(value)))
            self._address_cache[key] = cached
        return list(cached)

    def field_addresses(self, name: str) -> list[list[str]]:
        """The addresses of each `name` field separately (for ":index", RFC 5260 6)."""
        return [parse_address_list(unfold(v)) for v in self._index.get(name.lower(), ())]

    # -- the body

    def body(self) -> bytes:
        """The body octets as received (":raw", RFC 5173 5.1)."""
        if self.raw is None:
            return b""
        return bytes(self.raw[self.body_start :])

    def mime(self) -> Part:
        """The MIME tree (built on first use)."""
        if self._mime is None:
            from .mime import parse_message

            self._mime = parse_message(self.raw if self.raw is not None else b"")
        return self._mime  # type: ignore[return-value]

    # -- editheader (RFC 5293)

    def add_header(self, name: str, value: str, last: bool) -> None:
        """Add a field at the top (or, `last`, the bottom); `value` is already encoded."""
        field = (name, " " + value)
        if last:
            self._fields.append(field)
        else:
            self._fields.insert(0, field)
        self.edited = True
        self._reindex()

    def delete_header(self, name: str, index: int, last: bool, keep: object) -> None:
        """Delete the `name` fields (only the `index`th, counted from the end with `last`)
        for which `keep(decoded value)` is false."""
        key = name.lower()
        positions = [i for i, (field, _) in enumerate(self._fields) if field.lower() == key]
        if index:
            if index > len(positions):
                return
            positions = [positions[-index] if last else positions[index - 1]]
        doomed = {
            i
            for i in positions
            if not keep(decode_header_value(self._fields[i][1]))  # type: ignore[operator]
        }
        if doomed:
            self._fields = [f for i, f in enumerate(self._fields) if i not in doomed]
            self.edited = True
            self._reindex()

    def header_block(self) -> bytes:
        """The (edited) header block, CRLF line ends, with its empty line."""
        out = bytearray()
        for name, value in self._fields:
            text = (name + ":" + value).replace("\r\n", "\n").replace("\n", "\r\n")
            out += text.encode("utf-8", "surrogateescape") + b"\r\n"
        return bytes(out + b"\r\n")


class SieveEnvelope:
    """The SMTP envelope: `sender` is the MAIL FROM address ("" for the null reverse-path
    "<>"), `recipient` the RCPT TO address that brought the message to this user.

    Immutable; a plain class rather than a frozen dataclass, which costs ~1 ms to create."""

    __slots__ = ("recipient", "sender")

    sender: str
    recipient: str

    def __init__(self, sender: str, recipient: str) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "recipient", recipient)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"SieveEnvelope is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"SieveEnvelope is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SieveEnvelope)
            and self.sender == other.sender
            and self.recipient == other.recipient
        )

    def __hash__(self) -> int:
        return hash((self.sender, self.recipient))

    def __repr__(self) -> str:
        return f"SieveEnvelope(sender={self.sender!r}, recipient={self.recipient!r})"


# ---------------------------------------------------------------------------------------------
# Header block


def _header_end(raw: bytes | bytearray) -> int:
    """Index where the header block ends (the empty line that separates it from the body)."""
    if raw.startswith(b"\n") or raw.startswith(b"\r\n"):
        return 0
    ends = [p + 1 for p in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if p >= 0]
    return min(ends) if ends else len(raw)


def decode_octets(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_header_block(block: bytes) -> list[tuple[str, str]]:
    """Split a header block into (name, raw value) pairs; values keep their folding.

    Lines that are not fields (an mbox "From " line, garbage) are skipped, and so are
    continuation lines that follow them. RFC 5228 section 2.4.2.2: blanks between the name and
    the colon are ignored.
    """
    fields: list[tuple[str, str]] = []
    current: list[str] | None = None  # [name, value] being built
    for raw_line in block.split(b"\n"):
        line = decode_octets(raw_line[:-1] if raw_line.endswith(b"\r") else raw_line)
        if line[:1] in (" ", "\t"):
            if current is not None:
                current[1] += "\r\n" + line
            continue
        if current is not None:
            fields.append((current[0], current[1]))
            current = None
        colon = line.find(":")
        if colon <= 0:
            continue
        name = line[:colon].rstrip(" \t")
        if not is_header_name(name):
            continue
        current = [name, line[colon + 1 :]]
    if current is not None:
        fields.append((current[0], current[1]))
    return fields


def decode_header_value(value: str) -> str:
    """A field value as the tests compare it: unfolded, RFC 2047-decoded, trimmed."""
    return decode_rfc2047(unfold(value)).strip(" \t\r\n")


def unfold(value: str) -> str:
    """RFC 5322 section 2.2.3: remove each line break that is followed by a blank."""
    return value.replace("\r\n", "").replace("\n", "")


# ---------------------------------------------------------------------------------------------
# RFC 2047 encoded-words

_ESPECIALS = frozenset('()<>@,;:"/[]?.= \t')
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _decode_word(word: str) -> str | None:
    """Decode one `=?charset?enc?text?=` (already known to have that shape), or None."""
    try:
        charset, encoding, text = word[2:-2].split("?")
    except ValueError:
        return None
    charset = charset.split("*", 1)[0]  # RFC 2231 section 5: charset*language
    if not charset or any(c in _ESPECIALS for c in charset):
        return None
    enc = encoding.lower()
    if enc == "b":
        if any(c not in _BASE64 for c in text):
            return None
        try:
            import binascii  # only for a message that has base64 encoded-words

            data = binascii.a2b_base64(text + "=" * (-len(text) % 4))
        except binascii.Error:
            return None
    elif enc == "q":
        data = _decode_q(text)
    else:
        return None
    try:
        # bytes.decode refuses codecs that are not text encodings ("base64", "rot13").
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return None


def _decode_q(text: str) -> bytes:
    out = bytearray()
    raw = text.encode("latin-1", "replace")
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x5F:  # "_" is a space (RFC 2047 section 4.2)
            out.append(0x20)
        elif c == 0x3D and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        else:
            out.append(c)
        i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def decode_rfc2047(value: str) -> str:
    """Decode the encoded-words in a header value (RFC 2047 section 6.2).

    Blanks between two adjacent encoded-words are dropped; an encoded-word that cannot be
    decoded (unknown charset, bad base64) stays as it was.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    i = 0
    last_was_word = False
    while True:
        start = value.find("=?", i)
        if start < 0:
            break
        end = _encoded_word_end(value, start)
        if end < 0:
            out.append(value[i : start + 2])
            last_was_word = False
            i = start + 2
            continue
        decoded = _decode_word(value[start:end])
        between = value[i:start]
        if decoded is None:
            out.append(between + value[start:end])
            last_was_word = False
        else:
            if not (last_was_word and between.strip(" \t\r\n") == ""):
                out.append(between)
            out.append(decoded)
            last_was_word = True
        i = end
    out.append(value[i:])
    return "".join(out)


def _encoded_word_end(value: str, start: int) -> int:
    """End index of an encoded-word starting at `start`, or -1 if there is none there."""
    # =?charset?X?text?= : find the three "?" after "=?", the text ends at "?=".
    q1 = value.find("?", start + 2)
    if q1 < 0 or q1 == start + 2:
        return -1
    if q1 + 2 >= len(value) or value[q1 + 2] != "?":
        return -1
    end = value.find("?=", q1 + 3)
    if end < 0:
        return -1
    if any(c in " \t\r\n" for c in value[start:end]):
        return -1
    return end + 2


# ---------------------------------------------------------------------------------------------
# RFC 5322 address lists (section 3.4), leniently: obsolete routes, groups, comments.


def _tokens(value: str) -> list[tuple[str, str]]:
    """Tokens of an address list: ("special", c), ("word", text), ("quoted", text),
    ("literal", "[...]"), and ("space", " ") where blanks or comments separated two tokens."""
    tokens: list[tuple[str, str]] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c in " \t\r\n(" and tokens and tokens[-1][0] != "space":
            tokens.append(("space", " "))
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                if value[i] == "\\":
                    i += 2
                    continue
                if value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
        elif c == '"':
            i += 1
            chars: list[str] = []
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(value[i])
                i += 1
            i += 1
            tokens.append(("quoted", "".join(chars)))
        elif c == "[":
            end = value.find("]", i)
            end = n if end < 0 else end + 1
            tokens.append(("literal", value[i:end]))
            i = end
        elif c in "<>@,;:":
            tokens.append(("special", c))
            i += 1
        else:
            j = i
            while j < n and value[j] not in ' \t\r\n()"[<>@,;:':
                j += 1
            if j == i:  # a stray ")"
                j += 1
            tokens.append(("word", value[i:j]))
            i = j
    return tokens


def _addr_spec(tokens: list[tuple[str, str]]) -> str:
    """Join the tokens of an addr-spec (local-part "@" domain), a quoted local-part unquoted.

    Blanks and comments are dropped around "@" and "." (RFC 5322 obsolete syntax allows
    them there), but kept between two words, which no valid address has ("a b@c")."""
    out: list[str] = []
    for index, (kind, tok) in enumerate(tokens):
        if kind == "space":
            before = tokens[index - 1] if index > 0 else ("special", "")
            after = tokens[index + 1] if index + 1 < len(tokens) else ("special", "")
            if (
                before[0] != "special"
                and after[0] not in ("special", "space")
                and not before[1].endswith(".")
                and not after[1].startswith(".")
            ):
                out.append(" ")
            continue
        out.append(tok)
    return "".join(out).strip()


def parse_address_list(value: str) -> list[str]:
    """The addr-specs of an address-list header value, in order; groups are flattened and
    their names dropped, empty addresses ("<>", empty groups) are skipped."""
    result: list[str] = []
    pending: list[tuple[str, str]] = []  # tokens since the last separator
    saw_angle = False
    tokens = _tokens(value)
    i = 0
    n = len(tokens)

    def flush() -> None:
        nonlocal saw_angle
        if not saw_angle and pending:
            # Without "@" this is a bare local part ("root") or junk: only :all matches it.
            result.append(_addr_spec(pending))
        pending.clear()
        saw_angle = False

    while i < n:
        kind, tok = tokens[i]
        if kind == "special" and tok == "<":
            j = i + 1
            inner: list[tuple[str, str]] = []
            while j < n and tokens[j] != ("special", ">"):
                inner.append(tokens[j])
                j += 1
            # obs-route: "<@a,@b:user@domain>" keeps what follows the last ":".
            for k in range(len(inner) - 1, -1, -1):
                if inner[k] == ("special", ":"):
                    inner = inner[k + 1 :]
                    break
            if inner:
                result.append(_addr_spec(inner))
            saw_angle = True
            pending.clear()
            i = j + 1
            continue
        if kind == "special" and tok in ",;":
            flush()
        elif kind == "special" and tok == ":":
            # "display-name :" starts a group: the name is not an address.
            pending.clear()
            saw_angle = False
        elif not saw_angle:
            pending.append((kind, tok))
        i += 1
    flush()
    return [a for a in result if a]


# ---------------------------------------------------------------------------------------------
# Address parts (RFC 5228 section 2.7.4, RFC 5233 section 4)


def address_part(address: str, part: str) -> str | None:
    """The `part` ("all", "localpart", "domain", "user", "detail") of an addr-spec, or None
    when the address has no such part (invalid address, or no detail)."""
    if part == "all":
        return address
    at = address.rfind("@")
    if at <= 0 or at == len(address) - 1:
        return None  # not a valid address: never matched by :localpart/:domain
    if part == "domain":
        return address[at + 1 :]
    local = address[:at]
    if part == "localpart":
        return local
    user, sep, detail = local.partition(SUBADDRESS_SEPARATOR)
    if part == "user":
        return user  # the whole local part when there is no separator
    return detail if sep else None  # part == "detail"


def envelope_address(address: str) -> str:
    """An SMTP path as an addr-spec: without angle brackets and without a source route
    (RFC 5228 section 5.4: "All tests against envelopes MUST drop source routes")."""
    address = address.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    if address.startswith("@"):
        colon = address.find(":")
        if colon >= 0:
            address = address[colon + 1 :]
    return address
