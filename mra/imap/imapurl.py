"""IMAP URLs (RFC 5092) as CATENATE (RFC 4469) takes them: which part of which of the user's own
messages a URL names. Pure parsing: no store, no I/O.

    imap://alice%40example.test@mail.example.test/INBOX;UIDVALIDITY=3/;UID=20/;SECTION=1.2
    /Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER        (RFC 4469's examples)
    ;UID=20/;SECTION=1/;PARTIAL=0.100                            (relative: the selected mailbox)

The forms (RFC 5092 section 11, `imapurl` and `relative-ref`):

* absolute, `imap://` iserver, and network-path, `//` iserver: the user in iserver must be the
  logged-in user (compared as the user database compares names); `;AUTH=` may follow it, and
  `;AUTH=` alone (`imap://;AUTH=*@host/...`) names whoever logs in (RFC 5092 3.2), the
  logged-in user here. A URL without userinfo is anonymous access (3.2) and names nobody's mail
  here. The host is not checked: a server reached through proxies and DNS aliases cannot know
  every name it has, and the URL reaches only the logged-in user's mail whatever host it names.
  Dovecot 2.3 takes relative URLs only (README: IMAP extensions).
* absolute-path, `/mailbox[;UIDVALIDITY=n]/;UID=n...`.
* relative-path, resolved as RFC 3986 5.2 says, against the selected mailbox seen as a
  directory, `/<mailbox>;UIDVALIDITY=<v>/` (RFC 4469 3 gives the base `imap://user@server/
  mailbox`; like Dovecot, the mailbox is taken with an implicit `/` after it, without which
  `;UID=20` would lose it): `;UID=20`, `./;UID=20`, `../Drafts/;UID=5`. Without a selected
  mailbox only the forms above are possible.

The path is then `enc-mailbox [;UIDVALIDITY=nz] /;UID=nz [/;SECTION=enc-section]
[/;PARTIAL=number[.nz]]`: keys in any case, %-escapes decoded, the mailbox name in UTF-8 (an
IMAP URL carries the name, not its modified UTF-7 form, and Dovecot reads it so). A message
list (no UID, or a `?` search), URLAUTH (`;URLAUTH=`, `;EXPIRE=`) and anything else are
refused: `UrlError`, which the command answers with `NO [BADURL url]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["MessagePartUrl", "UrlError", "parse"]

_MAX_NUMBER = 2**32 - 1
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# What may appear in a URL unescaped (RFC 3986 unreserved, sub-delims, gen-delims but the
# brackets, which only an IP-literal host may hold, and "%").
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%]*")
_HOST_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%\[\]]*")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})?")
_UIDVALIDITY = re.compile(r";UIDVALIDITY=([0-9]*)\Z", re.I)
_UID = re.compile(r"/;UID=", re.I)
_REST = re.compile(
    r"([0-9]*)(?:/;SECTION=([^;]*?))?(?:/;PARTIAL=([0-9]*)(?:\.([0-9]*))?)?\Z", re.I | re.S
)
_URLAUTH = re.compile(r";(?:URLAUTH|EXPIRE)=", re.I)
_AUTH = re.compile(r";AUTH=", re.I)
# What the base mailbox may show unescaped: unreserved and sub-delims but ";" (RFC 5092 bchar).
_MAILBOX_SAFE = "!$&'()*+,=:@-._~"


class UrlError(ValueError):
    """The URL is not one CATENATE can use; the text says why (for `NO [BADURL url] text`)."""


@dataclass(frozen=True, slots=True)
class MessagePartUrl:
    """A message part URL: `section` as written after `;SECTION=` (decoded; "" for the
    whole message), `partial` the octets to take (offset, length or None for the rest)."""

    mailbox: str
    uidvalidity: int | None
    uid: int
    section: str
    partial: tuple[int, int | None] | None


def parse(
    url: str,
    *,
    users: tuple[str, ...],
    mailbox: str | None = None,
    uidvalidity: int | None = None,
) -> MessagePartUrl:
    """The message part `url` names. `users`: the names the logged-in user goes by (an
    absolute URL must name one of them); `mailbox` and `uidvalidity`: the selected mailbox,
    the base of relative URLs (None when none is selected)."""
    rest = url
    scheme = _SCHEME.match(rest)
    if scheme is not None:
        if scheme.group().lower() != "imap:":
            raise UrlError("Invalid IMAP URL: Not an IMAP URL")
        rest = rest[scheme.end() :]
        if not rest.startswith("//"):
            raise UrlError("Invalid IMAP URL: Absolute IMAP URL requires `//' after `imap:'")
    authority = None
    if rest.startswith("//"):
        end = rest.find("/", 2)
        authority, rest = (rest[2:], "") if end < 0 else (rest[2:end], rest[end:])
    if not _URL_CHARS.fullmatch(rest) or not _HOST_CHARS.fullmatch(authority or ""):
        raise UrlError("Invalid IMAP URL: invalid character in URL")
    if "#" in rest:
        raise UrlError("Invalid IMAP URL: a fragment is not part of an IMAP URL")
    if authority is not None:
        _check_server(authority, users)
        path = _remove_dot_segments(rest)
    elif rest.startswith("/"):
        path = _remove_dot_segments(rest)
    else:
        if mailbox is None:
            raise UrlError("Mailbox-relative IMAP URL, but no mailbox selected")
        base = "/" + quote(mailbox.encode("utf-8"), safe=_MAILBOX_SAFE)
        if uidvalidity is not None:
            base += f";UIDVALIDITY={uidvalidity}"
        path = _remove_dot_segments(base + "/" + rest)
    return _message_part(path)


def _check_server(authority: str, users: tuple[str, ...]) -> None:
    """iserver = [iuserinfo "@"] host [":" port]: a user of ours, on any host."""
    userinfo, at, host = authority.rpartition("@")
    if not host or host.startswith(":"):
        raise UrlError("Invalid IMAP URL: IMAP URL does not allow empty host identifier")
    if not at:
        raise UrlError("Invalid IMAP URL: anonymous access is not possible here")
    auth = _AUTH.search(userinfo)
    enc_user = userinfo[: auth.start()] if auth else userinfo
    if auth and not enc_user:
        return  # whoever authenticates
    user = _decode(enc_user, "user name")
    if not user or user.lower() not in {u.lower() for u in users}:
        raise UrlError("Invalid IMAP URL: only the logged-in user's messages can be used")


def _message_part(path: str) -> MessagePartUrl:
    if "?" in path:
        raise UrlError("Invalid messagepart IMAP URL")
    if _URLAUTH.search(path):
        raise UrlError("Invalid IMAP URL: URLAUTH is not supported")
    m = _UID.search(path)
    if m is None:
        raise UrlError("Invalid messagepart IMAP URL")
    mailbox_ref, rest = path[1 : m.start()], path[m.end() :]
    uidvalidity = None
    v = _UIDVALIDITY.search(mailbox_ref)
    if v is not None:
        uidvalidity = _nz_number(v.group(1), "UIDVALIDITY")
        mailbox_ref = mailbox_ref[: v.start()]
    if ";" in mailbox_ref:
        raise UrlError("Invalid IMAP URL: Encountered stray ';' in mailbox reference")
    mailbox = _decode(mailbox_ref, "mailbox name")
    if not mailbox:
        raise UrlError("Invalid IMAP URL: empty mailbox name")
    parts = _REST.fullmatch(rest)
    if parts is None:
        segment = rest.split("/", 1)[-1] if "/" in rest else rest
        raise UrlError(f"Invalid IMAP URL: Unexpected IMAP URL path segment: `{segment[:80]}'")
    uid = _nz_number(parts.group(1), "UID")
    section = ""
    if parts.group(2) is not None:
        section = _decode(parts.group(2), "section")
        if not section:
            raise UrlError("Invalid IMAP URL: Empty SECTION value")
    partial = None
    if parts.group(3) is not None:
        if not parts.group(3):
            raise UrlError("Invalid IMAP URL: Empty PARTIAL offset")
        length = None if parts.group(4) is None else _nz_number(parts.group(4), "PARTIAL size")
        partial = (_number(parts.group(3), "PARTIAL offset"), length)
    name = "INBOX" if mailbox.upper() == "INBOX" else mailbox
    return MessagePartUrl(name, uidvalidity, uid, section, partial)


def _number(text: str, what: str) -> int:
    if not text:
        raise UrlError(f"Invalid IMAP URL: Empty {what} value")
    value = int(text[:12])
    if len(text) > 12 or value > _MAX_NUMBER:
        raise UrlError("Invalid IMAP URL: IMAP number is too high")
    return value


def _nz_number(text: str, what: str) -> int:
    value = _number(text, what)
    if value == 0:
        raise UrlError(f"Invalid IMAP URL: {what} cannot be zero")
    return value


def _decode(text: str, what: str) -> str:
    """%-escapes decoded, as UTF-8."""
    out = bytearray()
    pos = 0
    for m in _PCT.finditer(text):
        if m.group(1) is None:
            raise UrlError(f"Invalid IMAP URL: invalid %-encoding in the {what}")
        out += text[pos : m.start()].encode("ascii")
        out.append(int(m.group(1), 16))
        pos = m.end()
    out += text[pos:].encode("ascii")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise UrlError(f"Invalid IMAP URL: the {what} is not UTF-8") from None


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4: `.` and `..` segments of an absolute path resolved."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif segment == ".":
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)
