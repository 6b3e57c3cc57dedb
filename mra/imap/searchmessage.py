"""One message as SEARCH matching sees it (mra/imap/searchkeys.py holds the keys that match).

A :class:`SearchContext` is what the server offers of a message (flags, dates, sizes, and
``raw()`` for its bytes); :class:`SearchMessage` wraps it for one search and derives, lazily and
once, what keys compare: folded header values in the form each key wants, the body and TEXT
texts, the three dates. Nothing is read or parsed until a key asks for it.

Why apart from the keys: this is the costly side of SEARCH, and where its shortcuts live. A
plain message (ASCII, no base64 or quoted-printable, charsets that map ASCII to itself) is
searched by a scan of its octets before any MIME parse (`plain`, `plain_header`,
`text_contains`), and FROM/TO/CC/BCC compare the address list written again as Dovecot 2.3
writes it (`address_text`, its `message_address_write`), so both servers answer alike.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from typing import Protocol

from mailstore.content import header_end
from mra.imap import mime
from mra.imap.casemap import fold as _fold


class SearchContext(Protocol):
    """One message as SEARCH sees it.  ``flags`` are the system flags it has, backslash
    included (``\\Seen``, ``\\Answered``, ``\\Flagged``, ``\\Deleted``, ``\\Draft`` and the
    session's ``\\Recent``); ``keywords`` its keywords; ``internaldate`` in seconds since the
    epoch; ``size`` the RFC822.SIZE (CRLF octets); ``savedate`` the save date (RFC 8514),
    None where the store keeps none.  ``raw()`` returns the message as stored; it is only
    called when a key needs the header or body."""

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
    @property
    def savedate(self) -> float | None: ...
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
    savedate: float | None = None
    modseq: int = 0

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


# See SearchMessage.plain. A charset name counts only when nothing but a delimiter follows it.
_IDENTITY_CHARSET = re.compile(
    rb"charset[ \t\r\n]*=[ \t\r\n]*\"?"
    rb"(?:us-ascii|ascii|utf-8|utf8|iso-8859-[0-9]{1,2}|windows-125[0-8]|koi8-[ru])"
    rb"(?=[\";\s]|$)"
)
_DAY_OF_WEEK = re.compile(r"^\s*[A-Za-z]+\s*,")


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


class SearchMessage:
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

    def _limits(self) -> mime.Limits:
        """What may be parsed of the message: the server's `[limits]` (the context says), or
        Dovecot's defaults."""
        limits = getattr(self.ctx, "mime_limits", None)
        return limits if isinstance(limits, mime.Limits) else mime.DEFAULT_LIMITS

    @property
    def part(self) -> mime.Part:
        if self._part is None:
            self._part = mime.parse(self.raw(), self._limits())
        return self._part

    @property
    def top(self) -> mime.Part:
        """The top-level header alone: parsed without the body's MIME structure, which a
        header key (SUBJECT, FROM, HEADER...) never needs."""
        if self._part is not None:
            return self._part
        if self._top is None:
            self._top = mime.parse(self._header_block(), self._limits())
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
        folding is ASCII upper case, so the body text is made of pieces of these bytes, and a
        BODY key whose folded text (with no line break) is not in them cannot match. Most
        messages of a mailbox are like that, and proving the absence costs a scan instead of a
        MIME parse. Lower case because `bytes.lower()` is the quicker of the two: the key's
        octets (`quick`) are its folded text in lower case, which an ASCII text that holds the
        folded key in upper case holds in lower case.
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
        # match is inside one part.
        return any(needle in _fold(text) for text in mime.body_texts(self.part))

    def text_contains(self, needle: str, quick: bytes | None) -> bool:
        """Whether the folded text of the message (header fields and body) holds `needle`;
        `quick` is its octets when it has no line break, no colon, no other control and
        does not start with a space.

        A plain message (see plain) with no encoded word anywhere (no "=?": the header
        fields of the parts and of enclosed messages are in the body) has as its text its
        own octets with the line breaks removed (unfolding), folded, each field written
        "Name: value" where the raw field may have other blanks around its colon: a key
        with no colon that does not start with a space never spans that junction, so if
        its octets are not in the message's octets without line breaks, the text cannot
        hold it. That rules out most messages of a TEXT search with a scan instead of a
        MIME parse, which is where a SEARCH TEXT spent its time (issue #16).

        What the context keeps for the next searches (`remembered_text`): the folded text of
        a message once made, or this scan form of a plain one (octets: it rules out, it
        cannot tell a match); either spares the file read.
        """
        scan: bytes | None = None
        if self._text is None:
            remembered = getattr(self.ctx, "remembered_text", None)
            kept = remembered() if remembered is not None else None
            if isinstance(kept, bytes):
                scan = kept
            else:
                self._text = kept
        if self._text is None and quick is not None:
            if scan is None:
                scan = self._scan_form()
                remember = getattr(self.ctx, "remember_text", None)
                if scan is not None and remember is not None:
                    remember(scan)
            if scan is not None and quick not in scan:
                return False
        return needle in self.text()

    def _scan_form(self) -> bytes | None:
        """The octets of a plain message with no encoded word, in lower case, line breaks
        removed (see text_contains); None for any other message."""
        plain = self.plain()
        if plain is None or b"=?" in plain:
            return None
        return plain.replace(b"\r\n", b"").replace(b"\n", b"")

    def body(self) -> str:
        if self._body is None:
            self._body = _fold("\n".join(mime.body_texts(self.part)))
        return self._body

    def text(self) -> str:
        """The folded text TEXT compares: every header field, "Name: value", then the body
        text. A context may keep it (`remember_text`) for the next search, which offers it
        (`remembered_text`, see text_contains): mra/imap/messagecache.py."""
        if self._text is None:
            headers = "\n".join(mime.all_header_texts(self.part))
            self._text = _fold(headers) + "\n" + self.body()
            remember = getattr(self.ctx, "remember_text", None)
            if remember is not None:
                remember(self._text)
        return self._text

    def internal_date(self) -> _dt.date:
        stamp = self.ctx.internaldate
        if self.tz is None:
            return _dt.datetime.fromtimestamp(stamp).date()
        return _dt.datetime.fromtimestamp(stamp, self.tz).date()

    def saved_date(self) -> _dt.date | None:
        stamp = self.ctx.savedate
        if stamp is None:
            return None
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
