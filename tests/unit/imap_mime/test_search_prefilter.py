"""mra.imap.search shortcuts (_Message.plain, plain_header, body_contains) against the slow path.

The shortcuts rule messages out by a byte scan, or search the body part by part, instead of
searching the joined and folded body or the decoded header values. They may only ever save
work: every answer must be the one of the slow path. The reference answers here are computed
that slow way, each from a fresh _Message, so no state cached by a shortcut leaks into them.

The message generators mix pieces that keep a message scannable (ASCII, 7bit, charsets that
map ASCII to itself) with pieces that each should disqualify it (base64, quoted-printable,
utf-7, utf-16, EBCDIC, RFC 2231 charsets, encoded words, 8-bit octets), so that both sides of
every condition of the scans are reached: nested messages of every kind, and small messages
with exactly one disqualifier, which catch a scan that forgot one of its checks (each such
mutation of search.py was tried and fails these properties).
"""

from __future__ import annotations

import base64
import codecs
import functools
import itertools
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mra.imap import mime, search

# ---------------------------------------------------------------------------------------------
# The two sides of the comparison


def ctx(raw: bytes) -> search.MessageContext:
    return search.MessageContext(
        uid=1,
        seqno=1,
        flags=set(),
        keywords=set(),
        internaldate=0.0,
        size=len(raw),
        loader=lambda: raw,
    )


def fresh(raw: bytes) -> search._Message:
    return search._Message(ctx(raw), None)


def body_reference(raw: bytes, needle: str) -> bool:
    return search._fold(needle) in fresh(raw).body()


def header_reference(raw: bytes, name: str, needle: str, form: str = "plain") -> bool:
    folded = search._fold(needle)
    return any(folded in value for value in fresh(raw).header(name, form))


def text_reference(raw: bytes, needle: str) -> bool:
    return search._fold(needle) in fresh(raw).text()


def text_shortcut(raw: bytes, needle: str) -> bool:
    return search.Text(needle).match(fresh(raw))


def body_shortcut(raw: bytes, needle: str) -> bool:
    return search.Body(needle).match(fresh(raw))


def header_shortcut(raw: bytes, name: str, needle: str, form: str = "plain") -> bool:
    return search.Header(name, needle, form).match(fresh(raw))


FORMS = ("plain", "address", "lwsp")


def program_form(name: str) -> str:
    """The form of a field's value that SEARCH compares (Header's docstring)."""
    key = name.lower()
    return "lwsp" if key == "subject" else "address" if key in _PROGRAM_KEYS else "plain"


_PROGRAM_KEYS = {"from": b"FROM", "to": b"TO", "cc": b"CC", "bcc": b"BCC", "subject": b"SUBJECT"}


def header_program(name: str, needle: bytes) -> list[search.Token]:
    key = _PROGRAM_KEYS.get(name.lower())
    if key is not None:
        return [key, needle]
    return [b"HEADER", name.encode("ascii"), needle]


# ---------------------------------------------------------------------------------------------
# Message generator
#
# A message is drawn in one of three styles: only pieces the scans trust, those plus one kind
# of disqualifier (so that a scan which forgot that one check would be caught: with several
# disqualifiers at once another check hides the gap), or anything.

BASE64 = "base64"
QP = "quoted-printable"
CHARSET = "charset"  # a charset that does not map ASCII to itself
PARAM = "param"  # a charset parameter spelled in a way the scan does not read
BODY_8BIT = "8-bit body"
PROSE = "prose"  # words of structure in body text
ENCODED = "encoded word"
HEADER_8BIT = "8-bit header"
KINDS = (BASE64, QP, CHARSET, PARAM, BODY_8BIT, PROSE, ENCODED, HEADER_8BIT)


@dataclass(frozen=True)
class Style:
    allow: frozenset[str]  # the kinds of disqualifier the message may have


# Mostly one kind: that is where a missing check shows.
STYLES = st.sampled_from(
    [Style(frozenset()), Style(frozenset(KINDS))]
    + [Style(frozenset([kind])) for kind in KINDS for _ in range(3)]
)

# Prose that the scan must not mistake for structure: "charset=utf-8" in a body keeps the
# message scannable (it names an identity charset), the PROSE words make the scan give up.
SAFE_WORDS = ["hello", "World", "APPLE", "kelvin", "Istanbul", "cafe", "a", "b", "=41", "+AGE-"]
SAFE_WORDS += ["charset=utf-8 ", 'charset="us-ascii"', "foo bar", ";", '"', ".", "-", "\x00"]
PROSE_WORDS = ["base64", "Quoted-Printable", "charset", "charset=utf-16", "charsets"]
NON_ASCII_WORDS = ["é", "É", "e\u0301", "Straße", "\u212a", "\u00c5", "\u0130", "ΣΑΣ", "naïve"]
NON_ASCII_WORDS += ["日本", "\u00a0", "ǅ", "Ärger"]
# Body line ends: CRLF and bare LF; a tab is no line break but is not printable either.
BODY_SEPARATORS = [" ", " ", "", "\r\n", "\n", "\t"]
HEADER_SEPARATORS = [" ", " ", "", "\t"]
FOLDS = [b"\r\n ", b"\r\n\t", b"\r\n  "]
# Words found nowhere else in the message: a needle cut from a decoded part is then absent
# from the raw octets whenever decoding changed them, which is what a wrong scan trips on.
WORD = st.integers(0, 52**6).map(
    lambda n: "".join(string.ascii_letters[n // 52**i % 52] for i in range(3 + n % 4))
)

# Charsets that map ASCII octets to the same characters (named in _IDENTITY_CHARSET, or
# unknown and so read as UTF-8), and charsets that do not.
SAFE_CHARSETS = ["us-ascii", "US-ASCII", "utf-8", "UTF8", "iso-8859-1", "ISO-8859-15"]
SAFE_CHARSETS += ["windows-1252", "koi8-r", "KOI8-U", "iso-8859-12"]
OTHER_CHARSETS = ["utf-16", "UTF-16LE", "utf-7", "UTF-7", "iso-2022-jp", "cp037"]
OTHER_CHARSETS += ["ebcdic-cp-us", "x-unknown-cs", "utf-32le"]


def _param_plain(name: str) -> str:
    return f"; charset={name}"


def _param_quoted(name: str) -> str:
    return f'; charset="{name}"'


def _param_folded(name: str) -> str:
    return f";\r\n\tCharSet = {name}"


def _param_folded_value(name: str) -> str:
    return f"; CHARSET=\r\n {name}; format=flowed"


def _param_rfc2231_extended(name: str) -> str:
    return f"; charset*={name}''"


def _param_rfc2231_single(name: str) -> str:
    return f"; charset*0={name}"


def _param_rfc2231_split(name: str) -> str:
    cut = len(name) // 2
    return f'; charset*1="{name[cut:]}"; charset*0="{name[:cut]}"'


def _param_comment(name: str) -> str:
    return f"; charset=(note){name}"


def _param_lookalike(name: str) -> str:
    return f"; x-charset-note=1; charset={name}"


ParamForm = Callable[[str], str]
SAFE_FORMS: list[ParamForm] = [_param_plain, _param_quoted, _param_folded, _param_folded_value]
OTHER_FORMS: list[ParamForm] = [
    _param_rfc2231_extended,
    _param_rfc2231_single,
    _param_rfc2231_split,
    _param_comment,
    _param_lookalike,
]

SAFE_ENCODINGS = [None, "7bit", "8bit", "7BIT", "binary", "x-unknown"]
BASE64_SPELLINGS = ["base64", "BASE64", "Base64"]
QP_SPELLINGS = ["quoted-printable", "Quoted-Printable", "QUOTED-PRINTABLE"]

# One drawn number per random.Random: drawing every coin flip from hypothesis costs more
# than the test, and shrinking the escapes of a QP body is not worth it.
SEEDED = st.integers(0, 2**32 - 1).map(random.Random)


def _codec(charset: str | None) -> str:
    """The codec that writes text the way mra.imap.mime (_text._decode_charset) reads it."""
    if charset is None:
        return "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return "utf-8"


@functools.cache
def _encodings(style: Style) -> st.SearchStrategy[str | None]:
    encodings: list[str | None] = list(SAFE_ENCODINGS)
    if BASE64 in style.allow:
        encodings += BASE64_SPELLINGS * 2
    if QP in style.allow:
        encodings += QP_SPELLINGS * 2
    return st.sampled_from(encodings)


# Strategies are built once per style: building one costs more than drawing from it.
@functools.cache
def body_text(style: Style) -> st.SearchStrategy[str]:
    pool = SAFE_WORDS + BODY_SEPARATORS
    if PROSE in style.allow:
        pool = pool + PROSE_WORDS
    if BODY_8BIT in style.allow:
        pool = pool + NON_ASCII_WORDS * 2
    piece = st.one_of(st.sampled_from(pool), WORD)
    return st.lists(piece, min_size=1, max_size=10).map("".join)


def quoted_printable(data: bytes, rnd: random.Random) -> bytes:
    """QP with escapes where needed and at random (=41 for "A" too, in either hex case), and
    soft line breaks at random."""
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i : i + 2] == b"\r\n":
            out += b"\r\n"
            i += 2
            continue
        c = data[i]
        i += 1
        if c == 0x0A:
            out += b"\n"
            continue
        if c == 0x3D or c > 0x7E or (c < 0x20 and c != 0x09) or rnd.random() < 0.2:
            out += (b"=%02X" if rnd.random() < 0.5 else b"=%02x") % c
        else:
            out.append(c)
        if rnd.random() < 0.1:
            out += b"=\r\n"
    return bytes(out)


def transfer_encode(data: bytes, encoding: str | None, rnd: random.Random) -> bytes:
    lowered = (encoding or "").lower()
    if lowered == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    if lowered == "quoted-printable":
        return quoted_printable(data, rnd)
    return data


Entity = tuple[list[bytes], bytes]  # the Content-* header lines and the body of one part


@functools.cache
def _charsets(style: Style) -> tuple[st.SearchStrategy[str | None], st.SearchStrategy[ParamForm]]:
    charsets: list[str | None] = [None, *SAFE_CHARSETS]
    if CHARSET in style.allow:
        charsets += OTHER_CHARSETS * 2
    forms = SAFE_FORMS + (OTHER_FORMS if PARAM in style.allow else [])
    return st.sampled_from(charsets), st.sampled_from(forms)


# Without a Content-Type the part is text/plain in US-ASCII (or not MIME at all).
SUBTYPES = st.sampled_from(["plain", "html", "PLAIN", None])


@st.composite
def text_leaf(draw: st.DrawFn, style: Style) -> Entity:
    rnd = draw(SEEDED)
    text = draw(body_text(style))
    charsets, forms = _charsets(style)
    charset = draw(charsets)
    subtype = draw(SUBTYPES)
    codec = _codec(charset)
    if BODY_8BIT in style.allow and draw(st.integers(0, 3)) == 0:
        codec = draw(st.sampled_from(["utf-8", "latin-1"]))  # mislabelled
    data = text.encode(codec, "replace")
    encoding = draw(_encodings(style))
    lines: list[bytes] = []
    if subtype is not None:
        param = "" if charset is None else draw(forms)(charset)
        lines.append(f"Content-Type: text/{subtype}{param}\r\n".encode())
    if encoding is not None:
        lines.append(f"Content-Transfer-Encoding: {encoding}\r\n".encode())
    return lines, transfer_encode(data, encoding, rnd)


@st.composite
def attachment(draw: st.DrawFn, style: Style) -> Entity:
    """Not searched by BODY, but its octets are in the scanned message."""
    rnd = draw(SEEDED)
    data = draw(body_text(style)).encode("utf-8")
    encoding = draw(_encodings(style))
    kind = draw(st.sampled_from(["application/octet-stream", 'application/pdf; name="a.pdf"']))
    lines = [f"Content-Type: {kind}\r\n".encode()]
    if encoding is not None:
        lines.append(f"Content-Transfer-Encoding: {encoding}\r\n".encode())
    return lines, transfer_encode(data, encoding, rnd)


@st.composite
def multipart(draw: st.DrawFn, style: Style, depth: int) -> Entity:
    subtype = draw(st.sampled_from(["mixed", "alternative", "related"]))
    # No boundary is a prefix of another (boundaries match as prefixes, as in Dovecot).
    boundary = f"=_B{depth}{draw(st.sampled_from('xyz'))}_=".encode()
    children = draw(st.lists(entity(style, depth + 1), min_size=1, max_size=3))
    body = bytearray()
    if draw(st.booleans()):
        body += b"preamble text\r\n"
    for lines, child in children:
        body += b"--" + boundary + b"\r\n" + b"".join(lines) + b"\r\n" + child + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    if draw(st.booleans()):
        body += b"epilogue\r\n"
    lines = [b"Content-Type: multipart/" + subtype.encode() + b'; boundary="' + boundary + b'"\r\n']
    return lines, bytes(body)


@st.composite
def rfc822(draw: st.DrawFn, style: Style, depth: int) -> Entity:
    return [b"Content-Type: message/rfc822\r\n"], draw(whole_message(style, depth + 1))


@functools.cache
def entity(style: Style, depth: int) -> st.SearchStrategy[Entity]:
    leaves: list[st.SearchStrategy[Entity]] = [text_leaf(style), text_leaf(style)]
    leaves.append(attachment(style))
    if depth < 2:
        leaves += [multipart(style, depth), rfc822(style, depth)]
    return st.one_of(leaves)


@st.composite
def encoded_word(draw: st.DrawFn, q_only: bool = False) -> bytes:
    rnd = draw(SEEDED)
    piece = st.one_of(WORD, st.sampled_from(SAFE_WORDS[:8] + NON_ASCII_WORDS + [" "]))
    text = "".join(draw(st.lists(piece, max_size=3)))
    charset = draw(st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "koi8-r", "x-unknown"]))
    data = text.encode(_codec(charset), "replace")
    if not q_only and draw(st.booleans()):
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?=".encode()
    out = bytearray(f"=?{charset}?{draw(st.sampled_from('Qq'))}?".encode())
    for c in data:
        if c == 0x20:
            out += b"_"
        elif chr(c).isalnum() and c < 0x80 and rnd.random() > 0.3:
            out.append(c)
        else:
            out += b"=%02X" % c
    return bytes(out + b"?=")


@functools.cache
def header_pieces(style: Style) -> st.SearchStrategy[bytes]:
    pieces: list[st.SearchStrategy[bytes]] = [
        st.sampled_from([w.encode() for w in SAFE_WORDS if w != "\x00"]),
        WORD.map(str.encode),
        st.sampled_from([s.encode() for s in HEADER_SEPARATORS]),
        st.sampled_from(FOLDS),
        # Split by a fold, an encoded word is no encoded word: "= ?" once unfolded. (Q only:
        # base64 padding before "?=" would make a "=?" of its own.)
        encoded_word(q_only=True).map(lambda w: w[:1] + b"\r\n " + w[1:]),
    ]
    if ENCODED in style.allow:
        pieces += [encoded_word(), encoded_word()]
    if HEADER_8BIT in style.allow:
        eight_bit = [w.encode("utf-8") for w in NON_ASCII_WORDS] + ["Café".encode("latin-1")]
        pieces += [st.sampled_from(eight_bit)] * 2
    return st.one_of(pieces)


def _no_final_fold(value: bytes) -> bytes:
    """A fold must not end the field: the line after it would be blank, ending the header."""
    while value.endswith((b"\r\n ", b"\r\n\t", b"\r\n  ")):
        value = value[: value.rindex(b"\r\n")]
    return value


@functools.cache
def header_value(style: Style) -> st.SearchStrategy[bytes]:
    return st.lists(header_pieces(style), max_size=6).map(b"".join).map(_no_final_fold)


OPTIONAL_FIELDS = [
    b"To: ",  # a duplicate field
    b"Cc: ",
    b"X-Note: ",
    b"SUBJECT:",
    b"Received: from a\r\n\tby b; ",
    b"a line without colon ",
]


@st.composite
def header_fields(draw: st.DrawFn, style: Style) -> list[bytes]:
    fields = [
        b"Subject: " + draw(header_value(style)),
        b"From: " + draw(header_value(style)) + b" <alice@example.org>",
        b"To: " + draw(header_value(style)),
    ]
    for prefix in OPTIONAL_FIELDS:
        if draw(st.integers(0, 3)) == 0:
            fields.append(prefix + draw(header_value(style)))
    return [f + b"\r\n" for f in draw(st.permutations(fields))]


@st.composite
def whole_message(draw: st.DrawFn, style: Style, depth: int = 0) -> bytes:
    head = b"".join(draw(header_fields(style)))
    if draw(st.booleans()):
        head += b"MIME-Version: 1.0\r\n"  # without it, a part with no Content-Type is not MIME
    lines, body = draw(entity(style, depth))
    return head + b"".join(lines) + b"\r\n" + body


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    raw = draw(whole_message(draw(STYLES)))
    ends = draw(st.sampled_from(["crlf", "lf", "lf header"]))
    if ends == "lf":
        return raw.replace(b"\r\n", b"\n")
    if ends == "lf header":
        cut = raw.find(b"\r\n\r\n")
        return raw[:cut].replace(b"\r\n", b"\n") + raw[cut:]
    return raw


# ---------------------------------------------------------------------------------------------
# Needle generator

SPECIAL_NEEDLES = ["", " ", "\n", "\r\n", "\t", "a\nb", "o\r\nw", "\x00", "\u00a0", "é"]
SPECIAL_NEEDLES += ["e\u0301", "k", "K", "\u212a", "straße", "STRASSE", "å", "\u00c5", "i\u0307"]
SPECIAL_NEEDLES += ["\u0130", "σ", "ς", "=41", "+age-", "a", "hello world", "charset", "é="]
SPECIAL_NEEDLES += ["=?", "caf", "ǆ", "ǅ"]
RANDOM_NEEDLE = st.text(
    alphabet=st.sampled_from(list("abcehklosw ßé\u212a\u00c5\u0130=?+-_\t\n\x00")), max_size=5
)
CASES: list[Callable[[str], str]] = [str, str.upper, str.lower, str.swapcase]
ANY_INDEX = st.integers(0, 2**16)
NEEDLE_KINDS = st.sampled_from(["likely"] * 3 + ["other", "seam", "special", "random"])


def pick(data: st.DataObject, items: list[str]) -> str:
    return items[data.draw(ANY_INDEX) % len(items)]


def substring(data: st.DataObject, sources: list[str]) -> str:
    """A piece of the searched text, in any case, so that matches do happen; long enough to
    be found nowhere else by chance (SPECIAL_NEEDLES has the short ones)."""
    usable = [s for s in sources if s]
    if not usable:
        return ""
    source = pick(data, usable)
    start = data.draw(ANY_INDEX) % len(source)
    piece = source[start : start + data.draw(st.integers(3, 16))]
    return data.draw(st.sampled_from(CASES))(piece)


def seam(data: st.DataObject, texts: list[str]) -> str:
    """The end of one part's text joined to the start of the next: found only if some single
    part holds it, never across the two."""
    pairs = [(a, b) for a, b in itertools.pairwise(texts) if a and b]
    if not pairs:
        return ""
    a, b = pairs[data.draw(ANY_INDEX) % len(pairs)]
    k = data.draw(st.integers(1, 6))
    return a[-k:] + b[:k]


def draw_needle(data: st.DataObject, likely: list[str], others: list[str], texts: list[str]) -> str:
    kind = data.draw(NEEDLE_KINDS)
    if kind == "likely":
        return substring(data, likely)
    if kind == "other":
        return substring(data, others)
    if kind == "seam":
        return seam(data, texts)
    if kind == "special":
        return data.draw(st.sampled_from(SPECIAL_NEEDLES))
    return data.draw(RANDOM_NEEDLE)


def utf8(needle: str) -> bytes | None:
    """The needle as a client sends it; None if it cannot be (a lone surrogate from a
    utf-7 body)."""
    try:
        return needle.encode("utf-8")
    except UnicodeEncodeError:
        return None


# ---------------------------------------------------------------------------------------------
# Small messages with exactly one disqualifier


@st.composite
def forced_leaf(draw: st.DrawFn, kind: str) -> Entity:
    """A text part that certainly has the disqualifier `kind`, in a body whose words occur
    nowhere else."""
    rnd = draw(SEEDED)
    text = draw(body_text(Style(frozenset([kind]))))
    charset = draw(st.sampled_from([None, *SAFE_CHARSETS]))
    forms = SAFE_FORMS
    encoding = draw(st.sampled_from(SAFE_ENCODINGS))
    if kind == BASE64:
        encoding = draw(st.sampled_from(BASE64_SPELLINGS))
    elif kind == QP:
        encoding = draw(st.sampled_from(QP_SPELLINGS))
    elif kind in (CHARSET, PARAM):
        # Mostly charsets that write ASCII text as ASCII octets of other meaning (NULs
        # between letters, "+-" for "+"), so that only the charset check keeps them out.
        charset = draw(st.sampled_from(["UTF-16LE", "utf-32le", "utf-7", *OTHER_CHARSETS]))
        forms = SAFE_FORMS if kind == CHARSET else OTHER_FORMS
        text += "+" + draw(WORD)
    elif kind == BODY_8BIT:
        text += draw(st.sampled_from(NON_ASCII_WORDS)) + draw(body_text(Style(frozenset())))
    data = text.encode(_codec(charset), "replace")
    if kind == BODY_8BIT and draw(st.booleans()):
        data = text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    param = "" if charset is None else draw(st.sampled_from(forms))(charset)
    lines = [f"Content-Type: text/{draw(st.sampled_from(['plain', 'html']))}{param}\r\n".encode()]
    if encoding is not None:
        lines.append(f"Content-Transfer-Encoding: {encoding}\r\n".encode())
    return lines, transfer_encode(data, encoding, rnd)


@st.composite
def one_disqualifier_messages(draw: st.DrawFn) -> bytes:
    """Small messages with exactly one kind of disqualifier, beside a plain part or alone."""
    kind = draw(st.sampled_from([BASE64, QP, CHARSET, PARAM, BODY_8BIT]))
    event(kind)
    parts = [draw(forced_leaf(kind))]
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, 1)), draw(text_leaf(Style(frozenset()))))
    head = b"Subject: " + draw(WORD).encode() + b"\r\nMIME-Version: 1.0\r\n"
    if len(parts) == 1:
        lines, body = parts[0]
    else:
        body = b"".join(b"--=_F_=\r\n" + b"".join(ls) + b"\r\n" + b + b"\r\n" for ls, b in parts)
        body += b"--=_F_=--\r\n"
        lines = [b'Content-Type: multipart/mixed; boundary="=_F_="\r\n']
    raw = head + b"".join(lines) + b"\r\n" + body
    return raw.replace(b"\r\n", b"\n") if draw(st.booleans()) else raw


FORCED_HEADER_PIECE = st.one_of(
    encoded_word(),
    st.sampled_from([w.encode("utf-8") for w in NON_ASCII_WORDS]),
    st.just("Café".encode("latin-1")),
    st.sampled_from(FOLDS),
)


@st.composite
def one_disqualifier_headers(draw: st.DrawFn) -> bytes:
    """A header with one field that certainly has an encoded word, 8-bit octets or a fold."""
    forced = draw(FORCED_HEADER_PIECE)
    plain = header_value(Style(frozenset()))
    value = draw(plain) + b" " + draw(WORD).encode() + forced + draw(WORD).encode() + draw(plain)
    name = draw(st.sampled_from([b"Subject", b"From", b"To", b"X-Note"]))
    fields = [name + b": " + value, b"Subject: " + draw(WORD).encode(), b"To: a@example.org"]
    raw = b"".join(f + b"\r\n" for f in draw(st.permutations(fields))) + b"\r\nbody\r\n"
    return raw.replace(b"\r\n", b"\n") if draw(st.booleans()) else raw


# ---------------------------------------------------------------------------------------------
# Properties


def check_body(raw: bytes, data: st.DataObject) -> None:
    texts = list(mime.body_texts(raw))
    event("scanned" if fresh(raw).plain() is not None else "parsed")
    others = ["\n".join(texts), raw.decode("latin-1")]
    # Several needles per message: drawing a message costs far more than searching it.
    for _ in range(data.draw(st.integers(3, 8))):
        needle = draw_needle(data, texts, others, texts)
        expected = body_reference(raw, needle)
        event(f"match={expected}")
        assert body_shortcut(raw, needle) == expected, needle
        octets = utf8(needle)
        if octets is not None:
            assert search.parse_search([b"BODY", octets]).matches(ctx(raw)) == expected, needle


HEADER_NAMES = ["subject", "from", "to", "cc", "bcc", "x-note", "Received", "SUBJECT"]


def check_headers(raw: bytes, data: st.DataObject) -> None:
    block = raw[: search._header_end(raw)]
    event("scanned" if fresh(raw).plain_header() is not None else "parsed")
    present = [f.name.decode("latin-1") for f in mime.parse(block).fields]
    others = [block.decode("latin-1"), block.decode("utf-8", "replace")]
    others += [v for n in present for v in mime.header_values(block, n)]
    # After a BODY key the whole message is parsed and header() reads that parse, while
    # plain_header still scans the header block alone: the two must agree.
    warmed = fresh(raw)
    assert warmed.part is not None
    for _ in range(data.draw(st.integers(3, 8))):
        name = pick(data, HEADER_NAMES + present * 3)
        values = mime.header_values(block, name) + fresh(raw).header(name, "address")
        needle = draw_needle(data, values, others, [])
        for form in FORMS:
            expected = header_reference(raw, name, needle, form)
            event(f"{form} match={expected}")
            assert header_shortcut(raw, name, needle, form) == expected, (name, needle, form)
            assert search.Header(name, needle, form).match(warmed) == expected, (name, needle)
        octets = utf8(needle)
        if octets is not None and search._FIELD_NAME.fullmatch(name.encode("latin-1")):
            program = search.parse_search(header_program(name, octets))
            expected = header_reference(raw, name, needle, program_form(name))
            assert program.matches(ctx(raw)) == expected, (name, needle)


def check_text(raw: bytes, data: st.DataObject) -> None:
    texts = list(mime.body_texts(raw)) + list(mime.all_header_texts(raw))
    event("scanned" if fresh(raw).plain() is not None and b"=?" not in raw else "parsed")
    others = ["\n".join(texts), raw.decode("latin-1"), raw.decode("utf-8", "replace")]
    for _ in range(data.draw(st.integers(3, 8))):
        needle = draw_needle(data, texts, others, texts)
        expected = text_reference(raw, needle)
        event(f"match={expected}")
        assert text_shortcut(raw, needle) == expected, needle
        octets = utf8(needle)
        if octets is not None:
            assert search.parse_search([b"TEXT", octets]).matches(ctx(raw)) == expected, needle


FEW = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FEW
@given(raw=messages(), data=st.data())
def test_body_key_agrees_with_the_slow_path(raw: bytes, data: st.DataObject) -> None:
    check_body(raw, data)


@MANY
@given(raw=one_disqualifier_messages(), data=st.data())
def test_body_key_with_one_disqualifier(raw: bytes, data: st.DataObject) -> None:
    check_body(raw, data)


@FEW
@given(raw=messages(), data=st.data())
def test_header_keys_agree_with_the_slow_path(raw: bytes, data: st.DataObject) -> None:
    check_headers(raw, data)


@MANY
@given(raw=one_disqualifier_headers(), data=st.data())
def test_header_keys_with_one_disqualifier(raw: bytes, data: st.DataObject) -> None:
    check_headers(raw, data)


@FEW
@given(raw=messages(), data=st.data())
def test_text_key_agrees_with_the_slow_path(raw: bytes, data: st.DataObject) -> None:
    check_text(raw, data)


@MANY
@given(raw=one_disqualifier_messages(), data=st.data())
def test_text_key_with_one_disqualifier(raw: bytes, data: st.DataObject) -> None:
    check_text(raw, data)


@MANY
@given(raw=one_disqualifier_headers(), data=st.data())
def test_text_key_with_one_header_disqualifier(raw: bytes, data: st.DataObject) -> None:
    check_text(raw, data)


# ---------------------------------------------------------------------------------------------
# Hand-written edge cases

PLAIN = (
    b"From: Alice <alice@example.org>\r\n"
    b"Subject: Weekly report\r\n"
    b"\tcontinued here\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Hello World, see charset=utf-8 below.\r\n"
)


def mixed(*parts: bytes) -> bytes:
    body = b"".join(b"--XX\r\n" + p + b"\r\n" for p in parts)
    return (
        b"Subject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n' + body + b"--XX--\r\n"
    )


def text_part(body: bytes, params: bytes = b"", cte: bytes | None = None) -> bytes:
    head = b"Content-Type: text/plain" + params + b"\r\n"
    if cte is not None:
        head += b"Content-Transfer-Encoding: " + cte + b"\r\n"
    return head + b"\r\n" + body


BODY_CASES: list[tuple[str, bytes, str, bool]] = [
    ("absent from a plain message", PLAIN, "goodbye", False),
    ("other case", PLAIN, "hELLO wORLD", True),
    ("prose names a charset", PLAIN, "charset=UTF-8", True),
    ("utf-7 letters in ASCII octets", text_part(b"x+AGE-x", b"; charset=utf-7"), "xax", True),
    ("utf-7 octets are not the text", text_part(b"x+AGE-x", b"; charset=utf-7"), "age", False),
    ("qp escape of a letter", text_part(b"=41pple", cte=b"quoted-printable"), "apple", True),
    ("qp soft break", text_part(b"app=\r\nle", cte=b"Quoted-Printable"), "apple", True),
    ("base64 text", text_part(b"aGVsbG8gd29ybGQ=\r\n", cte=b"BASE64"), "lo wor", True),
    ("utf-16 text", text_part("hi".encode("utf-16"), b'; charset="utf-16"'), "hi", True),
    ("ebcdic text", text_part("abc".encode("cp037"), b"; charset=cp037"), "abc", True),
    ("ebcdic octets", text_part("abc".encode("cp037"), b"; charset=cp037"), "\x81", False),
    ("rfc 2231 charset", text_part(b"+AGE-", b"; charset*0=utf-7"), "a", True),
    ("kelvin needle", PLAIN, "\u212a", False),
    ("kelvin needle, k in text", text_part(b"kelvin"), "\u212aELVIN", True),
    ("kelvin sign in text", text_part("\u212aelvin".encode(), b"; charset=utf-8"), "kel", True),
    ("A with ring", text_part("\u00c5ngstr\u00f6m".encode()), "a\u030angstro", True),
    ("A with ring, plain a", text_part("\u00c5ngstr\u00f6m".encode()), "angstrom", False),
    ("dotted capital I", text_part("\u0130stanbul".encode()), "i\u0307stan", True),
    ("sharp s is not ss", text_part("Stra\u00dfe".encode()), "STRASSE", False),
    ("sharp s", text_part("Stra\u00dfe".encode()), "STRA\u00dfE", True),
    ("final sigma", text_part("ΟΔΟΣ".encode()), "οδοσ", True),
    ("across two parts", mixed(text_part(b"foo"), text_part(b"bar")), "foobar", False),
    ("across two parts, line break", mixed(text_part(b"foo"), text_part(b"bar")), "o\nb", True),
    ("kelvin across parts", mixed(text_part(b"x"), text_part("\u212a".encode())), "x\nk", True),
    ("attachment not searched", mixed(b"Content-Type: application/x\r\n\r\nzip"), "zip", False),
    # Bodies are searched as IMAP serves them: bare LF line ends become CRLF.
    ("bare LF", b"Subject: s\n\nline one\nline two\n", "one\nline", False),
    ("bare LF, CRLF needle", b"Subject: s\n\nline one\nline two\n", "one\r\nline", True),
    ("NUL", b"Subject: s\r\n\r\na\x00b\r\n", "a\x00B", True),
    ("tab", b"Subject: s\r\n\r\na\tb\r\n", "A\tb", True),
    ("empty needle, text part", PLAIN, "", True),
    ("non-MIME ignores CTE", b"Content-Transfer-Encoding: base64\r\n\r\naGk=\r\n", "agk=", True),
]


@pytest.mark.parametrize(
    ("raw", "needle", "expected"),
    [pytest.param(raw, needle, expected, id=name) for name, raw, needle, expected in BODY_CASES],
)
def test_body_edge_cases(raw: bytes, needle: str, expected: bool) -> None:
    assert body_reference(raw, needle) == expected
    assert body_shortcut(raw, needle) == expected


FOLDED = (
    b"From: =?utf-8?Q?J=C3=BCrgen?= <j@example.org>\r\n"
    b"Subject: Hello\r\n"
    b" world =?iso-8859-1?B?Y2Fm6Q==?=\r\n"
    b"To: =\r\n ?utf-8?Q?x?=\r\n"
    b"Cc: \xc3\xa9t\xc3\xa9\r\n"
    b"No colon here\r\n"
    b"\r\n"
    b"body\r\n"
)

HEADER_CASES: list[tuple[str, bytes, str, str, bool]] = [
    ("fold, space kept", PLAIN, "subject", "report\tcontinued", True),
    ("fold, line break gone", PLAIN, "subject", "report\r\n\tcontinued", False),
    ("absent", PLAIN, "subject", "monthly", False),
    ("other field", PLAIN, "from", "report", False),
    ("case", PLAIN, "FROM", "ALICE@", True),
    ("needle across the fold", FOLDED, "subject", "hello world", True),
    ("encoded word", FOLDED, "subject", "world café", True),
    ("encoded word, q", FOLDED, "from", "jürgen", True),
    ("encoded word, raw form", FOLDED, "from", "=c3=bc", False),
    ("encoded word split by a fold", FOLDED, "to", "= ?utf-8?q?x?=", True),
    ("8-bit octets", FOLDED, "cc", "ÉTÉ", True),
    ("field without colon", FOLDED, "no colon here", "", True),
    ("missing field, empty needle", FOLDED, "bcc", "", False),
    ("fold with bare LF", b"Subject: a\n b\n\nx\n", "subject", "a b", True),
    ("kelvin needle", PLAIN, "subject", "wee\u212a", True),
]


@pytest.mark.parametrize(
    ("raw", "name", "needle", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in HEADER_CASES],
)
def test_header_edge_cases(raw: bytes, name: str, needle: str, expected: bool) -> None:
    assert header_reference(raw, name, needle) == expected
    assert header_shortcut(raw, name, needle) == expected


SPACED = b"Subject  :   Weekly report\r\nX-Note:plain\r\n\r\nbody\r\n"
TEXT_CASES: list[tuple[str, bytes, str, bool]] = [
    ("absent from a plain message", PLAIN, "goodbye", False),
    ("in the body", PLAIN, "world, SEE", True),
    ("in a header value", PLAIN, "weekly rep", True),
    ("a field name", PLAIN, "subject", True),
    ("across a fold", PLAIN, "report\tcontinued", True),
    ("across the colon, blanks around it in the file", SPACED, "subject: weekly", True),
    ("across the colon, none in the file", SPACED, "x-note: plain", True),
    ("name and colon", SPACED, "subject:", True),
    ("the space after the colon", SPACED, " plain", True),
    ("the space after the colon, a folded value", b"To: \r\n\thello\r\n\r\nx\r\n", " he", True),
    ("the file's blanks are not the text's", SPACED, "subject  :", False),
    ("across two fields", PLAIN, "report\ncontinued", False),
    ("encoded word", b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n", "caf\u00e9", True),
    (
        "encoded word in a part header",
        mixed(b"X-Note: =?utf-8?b?aGVsbG8=?=\r\n\r\nx"),
        "hello",
        True,
    ),
    ("part header", mixed(b"X-Note: inner\r\n\r\nx"), "note: inner", True),
    ("qp body", text_part(b"app=\r\nle", cte=b"quoted-printable"), "apple", True),
    ("empty needle", PLAIN, "", True),
]


@pytest.mark.parametrize(
    ("raw", "needle", "expected"),
    [pytest.param(raw, needle, expected, id=name) for name, raw, needle, expected in TEXT_CASES],
)
def test_text_edge_cases(raw: bytes, needle: str, expected: bool) -> None:
    assert text_reference(raw, needle) == expected
    assert text_shortcut(raw, needle) == expected


@pytest.mark.parametrize(
    ("raw", "scannable"),
    [
        pytest.param(PLAIN, True, id="plain"),
        pytest.param(text_part(b"x", b'; charset="ISO-8859-15"'), True, id="iso-8859-15"),
        pytest.param(text_part(b"x", b";\r\n CHARSET =\r\n koi8-r"), True, id="folded charset"),
        pytest.param(text_part(b"x", b"; charset=utf-7"), False, id="utf-7"),
        pytest.param(text_part(b"x", b"; charset=utf-16"), False, id="utf-16"),
        pytest.param(text_part(b"x", b"; charset=utf-8(c)"), False, id="comment"),
        pytest.param(text_part(b"x", b"; charset*=utf-8''"), False, id="rfc 2231"),
        pytest.param(text_part(b"the charset is"), False, id="charset in prose"),
        pytest.param(text_part(b"x", cte=b"Base64"), False, id="base64"),
        pytest.param(text_part(b"x", cte=b"QUOTED-PRINTABLE"), False, id="qp"),
        pytest.param(text_part("é".encode()), False, id="8-bit"),
    ],
)
def test_which_messages_are_scanned(raw: bytes, scannable: bool) -> None:
    assert (fresh(raw).plain() is not None) == scannable


@pytest.mark.parametrize(
    ("raw", "scannable"),
    [
        pytest.param(PLAIN, True, id="plain"),
        pytest.param(FOLDED, False, id="8-bit and encoded words"),
        pytest.param(b"Subject: =\r\n ?utf-8?q?x?=\r\n\r\n", True, id="split encoded word"),
        pytest.param(b"Subject: a=\r\n?b\r\n\r\n", False, id="=? once unfolded"),
        pytest.param(b"Subject: \xe9\r\n\r\n", False, id="8-bit"),
    ],
)
def test_which_headers_are_scanned(raw: bytes, scannable: bool) -> None:
    assert (fresh(raw).plain_header() is not None) == scannable


@pytest.mark.parametrize("needle", ["\n", "\r\n", "\t", "a\x00b", "x\u2028y", "\u0085"])
def test_no_scan_for_needles_with_controls(needle: str) -> None:
    # A line break could match across two parts of the joined body: only body() can say.
    assert search.Body(needle).quick is None
    assert search.Header("subject", needle).quick is None


@pytest.mark.parametrize("needle", [" ", "a b", "é", "\u212a"])
def test_scan_for_printable_needles(needle: str) -> None:
    assert search.Body(needle).quick == search._fold(needle).lower().encode()


class ParseCalled(Exception):
    pass


def _refuse_parse(raw: bytes | mime.Part, limits: mime.Limits = mime.DEFAULT_LIMITS) -> mime.Part:
    raise ParseCalled


def test_absent_needle_rules_a_plain_message_out_without_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mime, "parse", _refuse_parse)
    c = ctx(PLAIN)
    m = search._Message(c, None)
    assert not search.Body("goodbye").match(m)
    assert not search.Header("subject", "goodbye").match(m)
    assert not search.parse_search([b"BODY", b"goodbye"]).matches(c)
    assert c.loads == 1
    # The same message needs the parse as soon as the scan cannot settle the key, which shows
    # that the scan is what spared it above.
    with pytest.raises(ParseCalled):
        search.Body("hello").match(search._Message(ctx(PLAIN), None))
    with pytest.raises(ParseCalled):
        search.Body("\n").match(search._Message(ctx(PLAIN), None))


def test_text_key_rules_a_plain_message_out_without_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SEARCH TEXT over a mailbox parsed every message (issue #16: most of the server's CPU
    under the mixed load); a plain message without the key's octets needs no parse."""
    monkeypatch.setattr(mime, "parse", _refuse_parse)
    c = ctx(PLAIN)
    assert not search.Text("goodbye").match(search._Message(c, None))
    assert not search.parse_search([b"TEXT", b"goodbye"]).matches(c)
    # What the scan cannot settle is parsed: the key is there, a colon is in the key, the
    # message has an encoded word.
    for needle in ("hello", "subject: x", "go:odbye", " goodbye"):
        with pytest.raises(ParseCalled):
            search.Text(needle).match(search._Message(ctx(PLAIN), None))
    with pytest.raises(ParseCalled):
        search.Text("goodbye").match(fresh(PLAIN + b"=?utf-8?q?x?=\r\n"))


def test_no_shortcut_for_an_encoded_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mime, "parse", _refuse_parse)
    raw = text_part(b"Z29vZGJ5ZQ==\r\n", cte=b"base64")  # "goodbye"
    with pytest.raises(ParseCalled):
        search.Body("goodbye").match(fresh(raw))
    with pytest.raises(ParseCalled):
        search.Header("subject", "goodbye").match(fresh(FOLDED))


def test_header_scan_reads_only_the_header_loader() -> None:
    def no_file() -> bytes:
        raise AssertionError("the message file was read")

    block = PLAIN[: search._header_end(PLAIN)]
    c = search.MessageContext(
        uid=1,
        seqno=1,
        flags=set(),
        keywords=set(),
        internaldate=0.0,
        size=len(PLAIN),
        loader=no_file,
        header_loader=lambda: block,
    )
    m = search._Message(c, None)
    assert not search.Header("subject", "goodbye").match(m)
    assert search.Header("subject", "weekly").match(m)
    assert c.loads == 0


NO_TEXT_PARTS = [
    pytest.param(b"Content-Type: application/octet-stream\r\n\r\nxyz\r\n", id="application"),
    pytest.param(b"Content-Type: multipart/mixed\r\n\r\nxyz\r\n", id="multipart, no boundary"),
    pytest.param(mixed(b"Content-Type: image/png\r\n\r\nxyz"), id="attachments only"),
    pytest.param(
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n",
        id="base64 application",
    ),
]


@pytest.mark.parametrize("raw", NO_TEXT_PARTS)
def test_empty_body_needle_without_text_parts(raw: bytes) -> None:
    # The part-by-part search once answered False here (no part to search) while the joined
    # body, empty, holds "".
    assert body_reference(raw, "")
    assert body_shortcut(raw, "")
    assert search.parse_search([b"BODY", b""]).matches(ctx(raw))
