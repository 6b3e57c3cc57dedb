"""CATENATE (RFC 4469) with URL-PARTIAL (RFC 5550 5): the octets a URL of APPEND's CATENATE list
stands for, "as if the literal returned in a FETCH BODY response were put in place" (RFC 4469
3): the part of one of the logged-in user's messages, read from the store.

A URL that cannot be used ends the APPEND in `NO [BADURL url] reason` (RFC 4469 4.1), naming
the first such URL: one that does not parse or names another user (imapurl.py), a mailbox that
does not exist, a UIDVALIDITY that is not the mailbox's ("Invalid UIDVALIDITY"), a UID that is
not there ("Message not found"), a section that is not one. A part that does not exist is
empty, as FETCH BODY answers it. A failure of the store itself (a disk error) is the store's
error, not the URL's.

What one APPEND may cost (SECURITY.md 2): a message it composes is at most the largest
message (`NO [TOOBIG]`, RFC 4469 4.2), and each message its URLs name is read and parsed once
per command, all of them together within the command's budget (`[mail] max_append_size`):
RFC 4469's examples name one message three times (HEADER, 1.MIME, 1), and ten thousand URLs
naming a 50 MB message must not read 500 GB in a thread of the pool every session shares.
"""

from __future__ import annotations

from mailstore.errors import MailError, NotFound
from mra.imap import imapurl, mime
from mra.imap import response as r
from mra.imap.values import String

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

__all__ = ["Catenation"]


class _Source:
    """A message a URL named: its octets (CRLF) and, once a section is asked, its parse."""

    __slots__ = ("_root", "limits", "octets")

    def __init__(self, octets: bytes, limits: mime.Limits) -> None:
        self.octets = octets
        self.limits = limits
        self._root: mime.Part | None = None

    def root(self) -> mime.Part:
        if self._root is None:
            self._root = mime.parse(self.octets, self.limits)
        return self._root


class Catenation:
    """The CATENATE messages of one APPEND command, and what their URLs have read."""

    def __init__(self, s: ImapSession, largest: int, budget: int) -> None:
        self.s = s
        self.largest = largest  # octets of one composed message
        self.budget = budget  # octets of messages the URLs may read, together
        self.read = 0
        self._sources: dict[tuple[str, int], _Source] = {}

    def compose(self, parts: list[String | bytes]) -> bytes:
        """A message from its parts in order: TEXT literals (Strings) and URLs (bytes)."""
        pieces: list[bytes] = []
        size = 0
        for part in parts:
            data = part.value if isinstance(part, String) else self.octets(part)
            size += len(data)
            if size > self.largest:
                raise r.Refusal(r.TOO_BIG, limit=self.largest)
            pieces.append(data)
        return b"".join(pieces)

    def octets(self, url: bytes) -> bytes:
        """The octets of `url` (a CATENATE URL as sent); Refusal(BAD_URL) if it is unusable."""
        try:
            text = url.decode("ascii")
        except UnicodeDecodeError:
            raise _bad(url, "Invalid IMAP URL: invalid character in URL") from None
        s = self.s
        view = s.view
        user = s.user
        assert user is not None
        names = (user.name, f"{user.local}@{user.domain}") if user.domain else (user.name,)
        try:
            where = imapurl.parse(
                text,
                users=names,
                mailbox=None if view is None else view.name,
                uidvalidity=None if view is None else view.box.uidvalidity,
            )
        except imapurl.UrlError as exc:
            raise _bad(url, str(exc)) from None
        try:
            box = s.mailstore().mailbox(where.mailbox)
            box.sync()  # a message given its UID just now (an APPENDUID) is there to be named
        except MailError as exc:
            raise _bad(url, exc.message) from None
        if where.uidvalidity is not None and where.uidvalidity != box.uidvalidity:
            raise _bad(url, "Invalid UIDVALIDITY")
        source = self._sources.get((box.path, where.uid))
        if source is None:
            try:
                octets = mime.crlf(box.read_message(where.uid))
            except NotFound:
                raise _bad(url, "Message not found") from None
            self.read += len(octets)
            if self.read > self.budget:
                raise r.Refusal(r.URLS_TOO_BIG, limit=self.budget)
            source = self._sources[(box.path, where.uid)] = _Source(
                octets, self.s.services.mime_limits
            )
        if where.section:
            spec = mime.parse_section_spec(where.section.encode("utf-8"))
            if spec is None:
                raise _bad(url, "Invalid section")
            data = mime.section(source.root(), spec) or b""
        else:
            data = source.octets
        if where.partial is not None:
            offset, length = where.partial
            data = mime.partial(data, offset, length)
        return data


def _bad(url: bytes, reason: str) -> r.Refusal:
    return r.Refusal(r.BAD_URL, r.badurl(url), reason=reason)
