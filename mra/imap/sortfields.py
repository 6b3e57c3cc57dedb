"""What SORT, THREAD and PREVIEW need of a message, and how it is computed from the message.

The contract between the commands (commands/sort.py, sorting.py, threads.py, FETCH PREVIEW:
they see only this) and whoever keeps the fields (a `FieldSource`): the parsing source
(sortsource.py), which reads the header of every message it is asked about, or the folder
index, which computes the fields once per message with `fields_of` and keeps them, and which
the selected view hands out as its `field_source` (sortsource.source_for). Both compute a
field the same way because both call `fields_of`; the preview needs the whole message, and
may be left None (FETCH PREVIEW then makes it and hands it back: `remember_previews`).

Every rule is RFC 5256's as Dovecot 2.3 applies it (src/lib-storage/index/index-sort.c,
lib-imap/imap-base-subject.c, lib-mail/message-date.c and message-id.c), so that SORT and
THREAD answer as Dovecot does on the same Maildir (tests/interop/test_imap_dovecot_sort.py):

- strings are compared folded with i;unicode-casemap (casemap.fold: titlecase, decomposed),
  code point by code point, which is Dovecot's strcmp() of the UTF-8 octets;
- SUBJECT is the base subject of RFC 5256 2.1: RFC 2047 decoded, folded, blanks packed, then
  "Re:", "Fwd:", "[blob]", "(fwd)" and "[Fwd: ...]" taken off until none is left; `reply`
  says whether one of those marked a reply or forward (THREAD REFERENCES step 5 wants it);
- FROM, TO and CC are the mailbox (local part) of the first address of the first such field
  (RFC 5256 3), not decoded; DISPLAYFROM and DISPLAYTO (RFC 5957) the first address's
  display name, RFC 2047 decoded, else its `mailbox@domain`. A group's first entry is the
  group's name, as Dovecot's address parser gives it. No field: "";
- DATE is the first Date field, parsed as Dovecot parses it (`sent_date`); `date` is None
  when there is none or it cannot be parsed, and the commands then use the INTERNALDATE
  (RFC 5256 2.2);
- the Message-ID is the first valid `<id>` of the first Message-ID field, the angle brackets
  and blanks taken off, compared as it is (case and all); References gives every valid id in
  order; In-Reply-To its first one (THREAD uses it only when References has none).
"""

from __future__ import annotations

import binascii
import calendar
import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mra.imap import casemap, mime
from mra.imap.mime._tokens import ATEXT

__all__ = [
    "FieldSource",
    "SortFields",
    "base_subject",
    "fields_of",
    "first_address",
    "header_text",
    "message_ids",
    "preview_of",
    "sent_date",
]


@dataclass(frozen=True, slots=True)
class SortFields:
    """What SORT, THREAD and PREVIEW need of one message (made by `fields_of`)."""

    uid: int
    arrival: float
    """The INTERNALDATE (RFC 5256 ARRIVAL), in seconds; compared to the second."""
    date: float | None
    """The Date field, UTC seconds (to the second); None: missing or unparseable."""
    size: int
    """RFC822.SIZE (CRLF octets)."""
    subject: str
    """The base subject (RFC 5256 2.1), folded."""
    from_: str
    """The first From address's mailbox (RFC 5256 FROM), folded."""
    from_display: str
    """Its display name, or mailbox@domain (RFC 5957 DISPLAYFROM), folded."""
    to: str
    to_display: str
    cc: str
    message_id: str
    """The first valid id of Message-ID, without <>; "" when none."""
    in_reply_to: str
    """The first valid id of In-Reply-To; "" when none."""
    references: tuple[str, ...]
    """Every valid id of References, in order."""
    preview: str | None
    """The RFC 8970 preview text ("" when the message has none); None: not computed."""
    reply: bool = False
    """The subject had a reply or forward marker taken off (RFC 5256 5.C, 2.1 step 6)."""


class FieldSource(Protocol):
    """Where SORT, THREAD and PREVIEW get their fields."""

    def fields(self, uids: Sequence[int]) -> list[SortFields]:
        """The fields of these messages, in the order asked; a message that is gone
        (expunged meanwhile) is left out: callers match the answers by `uid`."""
        ...

    def remember_previews(self, previews: Mapping[int, str]) -> None:
        """Previews FETCH PREVIEW computed for messages whose `preview` was None: keep them
        if you can (a later PREVIEW (LAZY) answers them), or do nothing."""
        ...


def fields_of(
    uid: int,
    arrival: float,
    size: int,
    message: bytes | mime.Part,
    preview: bool = False,
    limits: mime.Limits = mime.DEFAULT_LIMITS,
) -> SortFields:
    """The fields of one message: `message` is its header block, or the whole message
    (parsed or not); `preview` computes the preview too, which needs the whole message;
    `limits` bound the parse (the server's `[limits]`, `SelectedView.mime_limits`)."""
    part = mime.parse(message, limits)
    first: dict[bytes, bytes] = {}
    for f in part.fields:
        if f.lname in _WANTED and f.lname not in first:
            first[f.lname] = _unfold(f.value)
    raw_subject = first.get(b"subject")
    subject, reply = ("", False) if raw_subject is None else base_subject(raw_subject)
    date = sent_date(_utf8(first[b"date"])) if b"date" in first else None
    from_, from_display = first_address(first.get(b"from", b""))
    to, to_display = first_address(first.get(b"to", b""))
    cc, _ = first_address(first.get(b"cc", b""))
    ids = message_ids(_octets(first.get(b"message-id", b"")), 1)
    references = tuple(message_ids(_octets(first.get(b"references", b""))))
    in_reply_to = message_ids(_octets(first.get(b"in-reply-to", b"")), 1)
    return SortFields(
        uid=uid,
        arrival=arrival,
        date=date,
        size=size,
        subject=subject,
        from_=from_,
        from_display=from_display,
        to=to,
        to_display=to_display,
        cc=cc,
        message_id=ids[0] if ids else "",
        in_reply_to=in_reply_to[0] if in_reply_to else "",
        references=references,
        preview=preview_of(part) if preview else None,
        reply=reply,
    )


def preview_of(message: bytes | mime.Part) -> str:
    """The RFC 8970 preview of a whole message (mra/imap/preview.py)."""
    from mra.imap import preview

    return preview.preview_text(mime.parse(message))


_WANTED = frozenset(
    {b"subject", b"date", b"from", b"to", b"cc", b"message-id", b"in-reply-to", b"references"}
)


def _unfold(value: bytes) -> bytes:
    return value.replace(b"\r\n", b"").replace(b"\n", b"") if b"\n" in value else value


def _octets(value: bytes) -> str:
    """Octets as they are, one character each (message ids are compared octet by octet)."""
    return value.decode("latin-1")


_REPLACEMENTS = re.compile("\ufffd{2,}")


def _utf8(value: bytes) -> str:
    """UTF-8, each run of octets that are not UTF-8 one U+FFFD, as Dovecot's
    uni_utf8_get_valid_data() and its normalizer read header octets."""
    text = value.decode("utf-8", "replace")
    return _REPLACEMENTS.sub("\ufffd", text) if "\ufffd\ufffd" in text else text


def _folded(text: str) -> str:
    """Folded for comparison; C strings end at a NUL, and so does Dovecot's comparison."""
    if "\0" in text:
        text = text.split("\0", 1)[0]
    return casemap.fold(text)


def header_text(value: bytes, fold: bool = False) -> str:
    """A header value with its RFC 2047 encoded words decoded as message-header-decode.c
    decodes them for SORT: `=?charset?b|q?text?=` anywhere (even inside a word, even with
    blanks in its text), blanks alone between two of them or before the first dropped, a
    broken one kept as written, bad base64 decoded as far as it goes. With `fold`, every
    piece is folded as it is decoded, except the octets of a charset Python does not know,
    which Dovecot appends as UTF-8 unfolded (so "=?bogus?q?abc?=" sorts as "abc")."""
    out: list[str] = []
    start = 0
    n = len(value)
    pos = value.find(b"=?")
    while 0 <= pos < n - 1:
        if pos != start and value[start:pos].strip(b" \t\r\n"):
            out.append(_piece(value[start:pos], None, fold))
        word = _encoded_word(value, pos + 2)
        if word is None:
            start = pos
            pos = value.find(b"=?", pos + 2)
            continue
        end, charset, data = word
        if data:
            out.append(_piece(data, charset, fold))
        start = end
        pos = value.find(b"=?", end)
    if start < n:
        out.append(_piece(value[start:], None, fold))
    return "".join(out)


_UTF8_NAMES = frozenset({"us-ascii", "ascii", "utf-8", "utf8"})


def _piece(data: bytes, charset: str | None, fold: bool) -> str:
    if charset is None or charset.lower() in _UTF8_NAMES:
        text = _utf8(data)
    else:
        try:
            info = codecs.lookup(charset)
            if not getattr(info, "_is_text_encoding", True):
                raise LookupError(charset)
            text = data.decode(info.name, "replace")
        except (LookupError, ValueError):
            return _utf8(data)  # an unknown charset: as UTF-8, and not folded
    return casemap.fold(text) if fold else text


_BASE64_PREFIX = re.compile(rb"[A-Za-z0-9+/\s]*")


def _encoded_word(value: bytes, i: int) -> tuple[int, str, bytes] | None:
    """`charset?e?text?=` at `i` (after "=?"): (where it ends, the charset, the octets), or
    None when it is not one (message_header_decode_encoded())."""
    q1 = value.find(b"?", i)
    q2 = value.find(b"?", q1 + 1) if q1 >= 0 else -1
    q3 = value.find(b"?", q2 + 1) if q2 >= 0 else -1
    if q3 < 0 or value[q3 + 1 : q3 + 2] != b"=":
        return None
    encoding = value[q1 + 1 : q1 + 2].lower()
    text = value[q2 + 1 : q3]
    if encoding == b"q":
        data = _q_decode(text)
    elif encoding == b"b":
        # As far as it is base64 ("show what we got so far"); a lone last sextet is no octet.
        valid = re.sub(rb"\s", b"", _BASE64_PREFIX.match(text).group())  # type: ignore[union-attr]
        if len(valid) % 4 == 1:
            valid = valid[:-1]
        try:
            data = binascii.a2b_base64(valid + b"=" * (-len(valid) % 4))
        except binascii.Error:
            data = b""
    else:
        return None
    return q3 + 2, value[i:q1].decode("latin-1"), data


_Q_SPECIAL = re.compile(rb"_|=(?:[0-9A-Fa-f]{2})?")


def _q_decode(text: bytes) -> bytes:
    """RFC 2047 Q: "_" a blank, "=XX" an octet, any other "=" kept as written."""

    def one(m: re.Match[bytes]) -> bytes:
        token = m.group()
        if token == b"_":
            return b" "
        return bytes((int(token[1:], 16),)) if len(token) == 3 else token

    return _Q_SPECIAL.sub(one, text)


# ---------------------------------------------------------------------------------------------
# The base subject (RFC 5256 2.1), as imap-base-subject.c extracts it

_BLANKS = re.compile(r"[ \t\r\n]+")


def base_subject(value: bytes) -> tuple[str, bool]:
    """(the base subject, folded; whether a reply or forward marker was taken off) of a
    Subject field's value (its octets, unfolded, not yet RFC 2047 decoded).

    The steps are RFC 5256 2.1's: (1) decode, fold, pack blanks; (2) take trailing blanks
    and "(fwd)" off; (3) a leading blank, or "[blob]... re/fw/fwd [blob]:"; (4) a leading
    "[blob]" if something is left after it; (5) repeat 3 and 4; (6) "[fwd: ...]" around the
    whole, then again from (2). Folding comes first, so "re:" is "RE:" by then.

    Linear in the subject (SECURITY.md 1): the text is never copied while steps are taken
    off (`start` and `end` move), and a run of blobs that no re/fw/fwd follows, which steps
    3 and 4 would take off one at a time, each time looking at the whole run again for the
    re/fw/fwd (quadratic, in Dovecot too), is taken off in one step."""
    text = header_text(value, fold=True)
    if "\0" in text:
        text = text.split("\0", 1)[0]  # a C string ends there
    text = _BLANKS.sub(" ", text)
    reply = False
    start = 0
    end = len(text)
    while True:
        while end > start:  # (2) subj-trailer = "(fwd)" / WSP
            if text[end - 1] == " ":
                end -= 1
            elif end - 5 >= start and text.startswith("(FWD)", end - 5):
                reply = True
                end -= 5
            else:
                break
        while True:  # (3) and (4), until neither applies (5)
            found, start, marked, run, last = _leader(text, start, end)
            reply = reply or marked
            if not marked and run > start:
                # (3) failed after a run of blobs: (4) takes them off, one per round, as
                # long as something is left after the one it takes, and (3) then fails
                # again at the same place.
                taken = run if run < end else last
                if taken != start:
                    start = taken
                    found = True
            if not found:
                after = _blob(text, start, end) if text.startswith("[", start, end) else None
                if after is not None and after < end:
                    start = after
                    found = True
            if not found:
                break
        # (6) subj-fwd = "[fwd:" subject "]"
        if text.startswith("[FWD:", start, end) and end - start >= 6 and text[end - 1] == "]":
            reply = True
            end -= 1
            start += 5
            continue
        return text[start:end], reply


_BLOB = re.compile(r"\[[^\[\]]*\] ?")


def _blob(text: str, i: int, end: int) -> int | None:
    """After `[...]` and one blank at `i` (subj-blob; BLOBCHAR is anything but [ and ])."""
    m = _BLOB.match(text, i, end)
    return None if m is None else m.end()


def _leader(text: str, start: int, end: int) -> tuple[bool, int, bool, int, int]:
    """subj-leader = (*subj-blob subj-refwd) / WSP at `start`: (found, the new start,
    whether it was a re/fw/fwd, where the run of blobs at the start ends, where its last
    blob starts). The leading blank goes even when the rest does not match."""
    found = False
    if text.startswith(" ", start, end):
        start += 1
        found = True
    i = last = start
    while text.startswith("[", i, end):
        after = _blob(text, i, end)
        if after is None:
            break
        last, i = i, after
    run = i
    if text.startswith("RE", i, end):
        i += 2
    elif text.startswith("FWD", i, end):
        i += 3
    elif text.startswith("FW", i, end):
        i += 2
    else:
        return found, start, False, run, last
    if text.startswith(" ", i, end):
        i += 1
    if text.startswith("[", i, end):
        after = _blob(text, i, end)
        if after is None:
            return found, start, False, run, last
        i = after
    if not text.startswith(":", i, end):
        return found, start, False, run, last
    return True, i + 1, True, run, last


# ---------------------------------------------------------------------------------------------
# The sent date, as message-date.c parses it

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_ZONES = {"EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360}
_ZONES.update({"PST": -480, "PDT": -420})


class _Cursor:
    """rfc822-parser.c's atoms and blanks over one value: `atom` returns the next atom (""
    at the end), skipping blanks and comments after it; None when the next octet is not
    atom text, or a comment does not end."""

    __slots__ = ("i", "n", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.n = len(s)

    def at(self, chars: str) -> bool:
        return self.i < self.n and self.s[self.i] in chars

    def skip(self) -> bool:
        """Blanks and (nested) comments; False for a comment that does not end."""
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "(":
                level = 0
                while self.i < n:
                    c = s[self.i]
                    if c == "\\":
                        self.i += 1
                    elif c == "(":
                        level += 1
                    elif c == ")":
                        level -= 1
                        if level == 0:
                            break
                    self.i += 1
                if self.i >= n:
                    return False
                self.i += 1
            else:
                break
        return True

    def atom(self) -> str | None:
        s, n, start = self.s, self.n, self.i
        if start >= n:
            return ""
        i = start
        while i < n and (ord(s[i]) > 0xFF or ATEXT[ord(s[i])]):
            i += 1
        if i == start:
            return None
        self.i = i
        if not self.skip():
            return None
        return s[start:i]


def _zone(token: str) -> int:
    """Minutes east of UTC; zones it does not know are UTC (message-date.c)."""
    if not token.isascii():
        return 0  # more than one octet in Dovecot's eyes, and none of its zones
    if len(token) == 5 and token[0] in "+-" and token[1:].isdigit() and token[1:].isascii():
        minutes = int(token[1:3]) * 60 + int(token[3:5])
        return minutes if token[0] == "+" else -minutes
    if len(token) == 1:
        # Military zones, the "correct way", as Dovecot (with its use of the letter as
        # written, not upper-cased, in the arithmetic).
        c, upper = ord(token), ord(token.upper())
        if upper < ord("J"):
            return (c - ord("A") + 1) * 60
        if upper == ord("J"):
            return 0
        if upper <= ord("M"):
            return (c - ord("A")) * 60
        if upper < ord("Z"):
            return (ord("M") - c) * 60
        return 0
    if len(token) == 3 and token[2] == "T":  # [ECMP][DS]T, the T as written
        return _ZONES.get(token[:2].upper() + "T", 0)
    return 0


def _digits(token: str | None, sizes: tuple[int, ...]) -> int | None:
    if token is None or len(token) not in sizes or not token.isascii() or not token.isdigit():
        return None
    return int(token)


# The usual form, `Mon, 7 Feb 1994 21:52:25 -0800 (PST)`, read in one step; anything else
# goes the long way (the same answer: tests/unit/imap/test_ext_sort.py checks both ways).
_USUAL_DATE = re.compile(
    r"[ \t]*(?:[A-Za-z]{3},[ \t]*)?([0-9]{1,2}) ([A-Za-z]{3}) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})(?:[ \t]+\([^()\\]*\))?[ \t]*"
)


def sent_date(value: str) -> float | None:
    """UTC seconds of a Date field's value, or None (message-date.c's rules):
    `[weekday ","] day month year hour ":" minute [":" second] [zone]`, day and hour of one
    or two digits, a two-digit year 70-99 as 19xx and 00-69 as 20xx, "." also separating the
    time, any month name whose first three letters are one, an unknown zone as UTC, a leap
    second as :59; a date that does not exist (31 Feb, 24:00) is None, as is 1 Jan 1970
    00:00:00 UTC, which Dovecot cannot tell from none."""
    m = _USUAL_DATE.fullmatch(value)
    if m is not None:
        try:
            month = _MONTHS.index(m[2].upper()) + 1
        except ValueError:
            return None
        year = int(m[3])
        if year < 1900:
            return None
        return _stamp(year, month, int(m[1]), int(m[4]), int(m[5]), int(m[6]), m[7])
    return _slow_date(value)


def _stamp(
    year: int, month: int, day: int, hour: int, minute: int, second: int, zone: str
) -> float | None:
    """utc_mktime(), which refuses what timegm() would have to normalise; a leap second is
    :59. None also for 0, which Dovecot takes for "no date"."""
    if second == 60:
        second = 59
    if not (
        1 <= day <= calendar.monthrange(year, month)[1]
        and hour < 24
        and minute < 60
        and second < 60
    ):
        return None
    stamp = calendar.timegm((year, month, day, hour, minute, second)) - _zone(zone) * 60
    return float(stamp) if stamp != 0 else None


def _slow_date(value: str) -> float | None:
    cur = _Cursor(value)
    if not cur.skip():
        return None
    token = cur.atom()
    if not token:
        return None
    if len(token) == 3:  # a weekday, then a comma
        if not cur.at(","):
            return None
        cur.i += 1
        if not cur.skip():
            return None
        token = cur.atom()
    day = _digits(token, (1, 2))
    month_name = cur.atom()
    if day is None or month_name is None or len(month_name) < 3:
        return None
    try:
        month = _MONTHS.index(month_name[:3].upper()) + 1
    except ValueError:
        return None
    year_token = cur.atom()
    year = _digits(year_token, (2, 4))
    hour = _digits(cur.atom(), (1, 2))
    if year is None or hour is None or not cur.at(":."):
        return None
    if len(year_token or "") == 2:
        year += 2000 if year < 70 else 1900
    elif year < 1900:
        return None
    cur.i += 1
    if not cur.skip():
        return None
    minute = _digits(cur.atom(), (2,))
    if minute is None:
        return None
    second = 0
    if cur.at(":."):
        cur.i += 1
        if not cur.skip():
            return None
        second_ = _digits(cur.atom(), (2,))
        if second_ is None:
            return None
        second = second_
    zone = cur.atom()
    if zone is None:
        return None
    return _stamp(year, month, day, hour, minute, second, zone)


# ---------------------------------------------------------------------------------------------
# Addresses and message ids


def first_address(value: bytes) -> tuple[str, str]:
    """(the mailbox, the display text) of the first address of an address field's value,
    both folded; ("", "") when there is none."""
    if not value:
        return "", ""
    addresses = mime.envelope_addresses(value)
    if not addresses:
        return "", ""
    a = addresses[0]
    mailbox = _utf8(a.mailbox) if a.mailbox is not None else ""
    display = ""
    if a.name is not None:
        display = header_text(a.name)
    if not display:
        if a.mailbox is not None and a.domain is not None:
            display = mailbox + "@" + _utf8(a.domain)
        else:
            display = mailbox
    return _folded(mailbox), _folded(display)


_ID_STOP = re.compile(r'[>"(\0]')
_ID_BLANKS = re.compile(r"[ \t\r\n]+")
_DOT_ATOM = re.compile(r"[^\x00-\x20\"(),.:;<>@\[\\\]\x7f]+")


def message_ids(value: str, limit: int | None = None) -> list[str]:
    """The valid ids of a Message-ID, In-Reply-To or References value, in order, without
    their angle brackets (message-id.c): `<local@domain>` with blanks removed; a quoted local
    part, comments or blanks around the dots are read the long way; anything else between
    `<` and `>` (no @, a domain literal) is skipped. At most `limit` of them."""
    out: list[str] = []
    i = 0
    while limit is None or len(out) < limit:
        i = value.find("<", i)
        if i < 0:
            break
        i += 1
        m = _ID_STOP.search(value, i)
        if m is None or m.group() == "\0":
            break
        j = m.start()
        if m.group() == ">":
            candidate = value[i:j]
            if "@" in candidate:
                out.append(_ID_BLANKS.sub("", candidate))
            i = j + 1
            continue
        parsed = _slow_id(value, i)
        if parsed is not None:
            text, i = parsed
            out.append(text)
        # else: go on looking for another "<" after this one
    return out


def _slow_id(value: str, i: int) -> tuple[str, int] | None:
    """`local@domain>` at `i` with quoted local parts, comments and folding: (the id, where
    it ends), or None (get_untokenized_msgid())."""
    cur = _Cursor(value)
    cur.i = i
    if not cur.skip():
        return None
    local = _quoted(cur) if cur.at('"') else _dot_atom(cur)
    if local is None or not cur.at("@"):
        return None
    cur.i += 1
    if not cur.skip():
        return None
    domain = _dot_atom(cur)
    if domain is None or not cur.at(">"):
        return None
    return local + "@" + domain, cur.i + 1


def _dot_atom(cur: _Cursor) -> str | None:
    """rfc822_parse_dot_atom: atoms joined by dots, blanks and comments allowed around them."""
    parts: list[str] = []
    while True:
        m = _DOT_ATOM.match(cur.s, cur.i)
        if m is None:
            return None
        parts.append(m.group())
        cur.i = m.end()
        if not cur.skip():
            return None
        if not cur.at("."):
            return ".".join(parts)
        cur.i += 1
        if not cur.skip() or cur.i >= cur.n:
            return None


def _quoted(cur: _Cursor) -> str | None:
    """rfc822_parse_quoted_string: the content, escapes and folding removed."""
    s, n = cur.s, cur.n
    out: list[str] = []
    i = cur.i + 1
    while i < n:
        c = s[i]
        if c == '"':
            cur.i = i + 1
            if not cur.skip():
                return None
            return "".join(out)
        if c == "\\" and i + 1 < n and s[i + 1] not in "\r\n\0":
            out.append(s[i + 1])
            i += 2
            continue
        if c not in "\r\n":
            out.append(c)
        i += 1
    return None
