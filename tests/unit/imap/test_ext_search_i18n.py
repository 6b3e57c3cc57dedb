"""SEARCH in every charset Python knows, and I18NLEVEL=1 (RFC 5255): the i;unicode-casemap
comparator (RFC 5051) as Dovecot applies it, its quick ways against its definition, and what
it may not do on the reactor. The same searches are asked of Dovecot in
tests/interop/test_imap_dovecot_search.py; the other SEARCH extensions are in
test_ext_search.py.
"""

from __future__ import annotations

import codecs
import encodings
import random
import unicodedata

import pytest

from mra.imap import casemap, charsets
from mra.imap.search import MessageContext, SearchError, parse_search
from tests.unit.imap.test_ext_search import fill, message, rfc4731_box, select
from tests.unit.imap.test_session_transcripts import Client

# ---------------------------------------------------------------------------------------------
# Charsets


CHARSET_MESSAGES = [
    message(1, body="Grüße aus Köln, café au lait"),
    message(2, body="Привет, мир: съешь же ещё этих мягких булок"),
    message(3, body="こんにちは世界 日本語のテキスト"),
    message(4, body="你好，世界 中文的文字"),
    message(5, body="Ελληνικά: καλημέρα κόσμε"),
]


@pytest.fixture
def charset_box(c: Client) -> Client:
    fill(c, [(m, [], None) for m in CHARSET_MESSAGES])
    select(c)
    return c


@pytest.mark.parametrize(
    ("charset", "text", "found"),
    [
        ("ISO-8859-1", "KÖLN", "1"),
        ("iso-8859-15", "café", "1"),
        ("WINDOWS-1252", "grüße", "1"),
        ("KOI8-R", "МИР", "2"),
        ("koi8-u", "булок", "2"),
        ("WINDOWS-1251", "Ещё", "2"),
        ("ISO-8859-5", "привет", "2"),
        ("SHIFT_JIS", "日本語", "3"),
        ("EUC-JP", "こんにちは", "3"),
        ("ISO-2022-JP", "テキスト", "3"),
        ("GB2312", "中文", "4"),
        ("GBK", "你好", "4"),
        ("GB18030", "世界", "3 4"),
        ("BIG5", "世界", "3 4"),
        ("ISO-8859-7", "ΚΑΛΗΜΈΡΑ", "5"),
        ("UTF-16", "Köln", "1"),
        ("UTF-16BE", "καλημέρα", "5"),
        ("UTF-7", "Grüße", "1"),
        ("US-ASCII", "aus", "1"),
        ("latin1", "au lait", "1"),
    ],
)
def test_search_in_charsets(charset_box: Client, charset: str, text: str, found: str) -> None:
    c = charset_box
    raw = text.encode(codecs.lookup(charset.replace("US-ASCII", "ascii")).name)
    c.expect(
        b"a SEARCH CHARSET %s BODY {%d+}\r\n%s\r\n" % (charset.encode(), len(raw), raw),
        f"* SEARCH {found}",
        "a OK SEARCH completed",
    )


def test_charset_errors(charset_box: Client) -> None:
    c = charset_box
    listed = " ".join(charsets.PREFERRED)
    c.expect(
        "a SEARCH CHARSET X-UNKNOWN BODY x\r\n",
        f"a NO [BADCHARSET ({listed})] X-UNKNOWN is not a charset this server knows",
    )
    for name in (
        "base64",
        "rot13",
        "zlib",
        "hex",
        "idna",
        "punycode",
        "unicode_escape",
        "undefined",
        "aliases",
        "charmap",
    ):
        c.expect(f"b SEARCH CHARSET {name} BODY x\r\n", "b NO [BADCHARSET {any}] {any}")
    c.expect("c SEARCH CHARSET X-UNKNOWN ALL\r\n", "c NO [BADCHARSET {any}] {any}")  # no string
    c.expect(
        "d SEARCH CHARSET X-UNKNOWN NONSENSE\r\n", "d BAD SEARCH: unknown search key 'NONSENSE'"
    )
    c.expect(
        b"e SEARCH CHARSET UTF-8 BODY {2+}\r\n\xff\xfe\r\n",
        "e BAD SEARCH: BODY: the string is not valid UTF-8",
    )
    c.expect(
        b"f SEARCH CHARSET SHIFT_JIS BODY {1+}\r\n\x82\r\n",
        "f BAD SEARCH: BODY: the string is not valid SHIFT_JIS",
    )
    c.expect(
        b"g SEARCH CHARSET UTF-16 BODY {3+}\r\nabc\r\n",
        "g BAD SEARCH: BODY: the string is not valid UTF-16",
    )
    # As Dovecot: US-ASCII is read as UTF-8 (charset_is_utf8), 8-bit octets and all.
    c.expect(
        b"h SEARCH CHARSET US-ASCII BODY {5+}\r\nK\xc3\xb6ln\r\n",
        "* SEARCH 1",
        "h OK SEARCH completed",
    )
    c.expect("i SEARCH CHARSET\r\n", "i BAD SEARCH: CHARSET needs a charset name")


def test_every_listed_charset_is_known() -> None:
    for name in charsets.PREFERRED:
        decode = charsets.decoder(name)
        assert decode is not None, name
        codec = "utf-8" if name == "US-ASCII" else name
        assert decode("abc".encode(codec)) == "abc", name
    for alias in (
        "ISO_8859-1:1987",
        "csISOLatin1",
        "IBM819",
        "l1",
        "Latin-1",
        "CP1252",
        "ks_c_5601-1987",
        "SJIS",
        "utf8",
        "UTF8",
        "x-unknown",
    ):
        assert (charsets.decoder(alias) is None) == (alias == "x-unknown"), alias


def test_attack_unknown_charset_names_do_not_grow_the_codec_cache() -> None:
    """encodings.search_function remembers every name it was asked, misses included: a
    client sending unknown charset after unknown charset must not reach it."""
    cache = encodings._cache  # type: ignore[attr-defined]
    before = len(cache)
    for n in range(2000):
        with pytest.raises(Exception) as info:
            parse_search([b"CHARSET", b"x-%d-%s" % (n, b"q" * 50), b"BODY", b"x"])
        assert type(info.value).__name__ == "BadCharsetError"
    assert charsets.decoder("x" * 10_000) is None
    assert len(cache) <= before + 1  # at most the codecs our table names


# ---------------------------------------------------------------------------------------------
# I18NLEVEL=1: i;unicode-casemap (RFC 5051) as Dovecot applies it


@pytest.mark.parametrize(
    ("text", "key", "match"),
    [
        ("Köln", "KÖLN", True),  # titlecase: case does not matter
        ("Ko\u0308ln", "köln", True),  # "ö" precomposed is "o" + U+0308
        ("Köln", "Koln", False),  # ...which keeps its diaeresis
        ("Köln", "ko", True),
        ("straße", "STRASSE", False),  # no full mappings: "ß" is not "ss"
        ("STRASSE", "straße", False),
        ("straße", "STRAẞE", False),  # nor the capital sharp s (no simple mapping between)
        ("ıi", "II", True),  # dotless i titlecases to I
        ("ſeed", "seed", True),  # long s titlecases to S
        ("5 µg", "5 μg", True),  # micro sign titlecases to Greek mu
        ("ϐ", "β", True),  # beta symbol
        ("x²", "x2", True),  # compatibility decompositions count
        ("ｆｕｌｌ", "FULL", True),  # fullwidth: titlecased first, then decomposed
        ("Ⅻ", "xii", True),
        ("ﬁne", "fine", False),  # the ligature decomposes to "fi" in lower case, not titlecased
        ("ﬁne", "ﬁ", True),
        ("ǖ", "ü", False),  # one level: "Ü" + macron, not "U" + diaeresis + macron
        ("ǖ", "u", False),
        ("é", "e", True),  # "É" is "E" + acute: one level is all it takes
        ("\u212b", "\u00c5", False),  # the angstrom sign is "Å" undecomposed, "Å" is "A" + ring
        ("ǅ", "dž", False),  # a titlecase digraph keeps no decomposition
        ("Σίσυφος", "ΣΊΣΥΦΟΣ", True),
        ("ΣΊΣΥΦΟΣ", "σίσυφος", True),  # final sigma too
        ("한국어", "한국", True),  # Hangul syllables decompose algorithmically, both sides
        ("한국어", "\u1112\u1161", True),
    ],
)
def test_unicode_casemap(text: str, key: str, match: bool) -> None:
    raw = message(1, body=text)
    ctx = MessageContext(1, 1, set(), set(), 0.0, len(raw), lambda: raw)
    assert parse_search([b"BODY", key.encode()]).matches(ctx) is match
    assert (casemap.fold_key(key) in casemap.fold(text)) is match


def test_rfc5255_section_4_6_strings(c: Client) -> None:
    """The four strings of RFC 5255 4.6, as bodies: (1) and (3) hold octets that are not
    UTF-8, (4) is KOI8-R. The valid text of each is found case-insensitively."""
    bodies = [
        (b"\xd0\xc0\xd0\xbd\xd0\xb4\xd1\x80\xd0\xb5\xd0\xb9", "utf-8"),
        (b"\xd1\x81\xd0\x95\xd0\xa0\xd0\x93\xd0\x95\xd0\x99", "utf-8"),
        (b"\xd0\x92\xd0\xb0\xd1\x81\xd0\xb8\xd0\xbb\xd0\xb8\xff\xb9", "utf-8"),
        (b"\xe1\xcc\xc5\xcb\xd3\xc5\xca", "koi8-r"),
    ]
    fill(
        c,
        [
            (
                b"Subject: s\r\nContent-Type: text/plain; charset=%s\r\n\r\n%s\r\n"
                % (cs.encode(), b),
                [],
                None,
            )
            for b, cs in bodies
        ],
    )
    select(c)
    for n, word in [(2, "сергей"), (3, "ВАСИЛИ"), (4, "Алексей"), (1, "НДРЕЙ")]:
        raw = word.encode()
        c.expect(
            b"a SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s\r\n" % (len(raw), raw),
            f"* SEARCH {n}",
            "a OK SEARCH completed",
        )


def test_fold_is_the_same_character_by_character() -> None:
    """The fast paths of casemap.fold (str.upper + NFKD, the split around the characters they
    would get wrong) give exactly the character-by-character fold."""
    rnd = random.Random(5051)
    pools = [
        (0x20, 0x7F),
        (0xA0, 0x250),
        (0x300, 0x370),
        (0x370, 0x530),
        (0x10A0, 0x1100),
        (0x1E00, 0x2000),
        (0x2100, 0x2200),
        (0x3000, 0x3100),
        (0x4E00, 0x4E80),
        (0xAC00, 0xAD00),
        (0xFB00, 0xFB50),
        (0xFF00, 0xFFF0),
        (0x10400, 0x10450),
        (0x1D400, 0x1D800),
        (0x1D150, 0x1D170),
        (0x2F800, 0x2F810),
    ]
    for _ in range(3000):
        length = rnd.randrange(1, 40)
        weights = [rnd.random() for _ in pools]
        chars = []
        for _ in range(length):
            lo, hi = rnd.choices(pools, weights)[0]
            chars.append(chr(rnd.randrange(lo, hi)))
        text = "".join(chars)
        expected = "".join(map(casemap.fold_char, text))
        assert casemap.fold(text) == expected, ascii(text)
        assert casemap.fold_key(text) == expected, ascii(text)
    for text in [
        "Grüße aus der Straße, " * 30,  # Latin-1 with "ß": the placeholder's way
        "„Grüße“ aus der Straße – " * 30,  # not Latin-1, "ß" the only slow character
        "Straße \ue000 ß",  # the placeholder is in the text: not its way
        "Straße ǖ 😀 ﬁ " * 3,  # a few slow characters: the pieces between them
        "Phở Hà Nội " * 20,  # many: character by character
    ]:
        assert casemap.fold(text) == "".join(map(casemap.fold_char, text)), text
    # The Latin-1 way scans for "ß" alone: no other Latin-1 character is slow.
    casemap.fold("é")
    assert casemap._tables is not None and casemap._tables.latin1_but_sharp_s == []


def test_no_character_past_the_tables_is_folded() -> None:
    """casemap's tables stop at MAPPED_BELOW: nothing after it titlecases or decomposes."""
    for code in range(casemap.MAPPED_BELOW, 0x110000):
        c = chr(code)
        if c.title() != c or unicodedata.decomposition(c):
            raise AssertionError(f"U+{code:04X} has a mapping past the tables")


def test_search_strings_are_checked_before_anything_runs() -> None:
    with pytest.raises(SearchError):
        parse_search([b"CHARSET", b"UTF-16", b"BODY", b"abc"])


def test_attack_a_non_ascii_key_builds_no_table_on_the_reactor(c: Client) -> None:
    """The first non-ASCII text a process folds builds casemap's tables (a tenth of a second
    or more): a search key, folded when the command is parsed, on the reactor, never does;
    the message text is folded in the thread pool."""
    from mra.session import Call

    rfc4731_box(c)
    select(c)
    built, casemap._tables = casemap._tables, None
    try:
        command = b"a SEARCH SUBJECT {5+}\r\nK\xc3\xb6ln TEXT {2+}\r\n\xc7\x96\r\n"
        outputs = c.session.data_received(command)
        assert isinstance(outputs[-1], Call)  # what follows runs in the thread pool
        assert casemap._tables is None
        assert casemap.fold_key("Köln ǖ") == "KO\u0308LN \u00dc\u0304"
        assert casemap._tables is None
    finally:
        casemap._tables = built


def test_i18nlevel_1_transcript(c: Client) -> None:
    """The README's example: the long s titlecases to S, the sharp s to nothing but itself."""
    fill(
        c, [(message(n, body=text), [], None) for n, text in enumerate(["ſeed", "SEED", "ßeed"], 1)]
    )
    select(c)
    c.expect("a SEARCH BODY seed\r\n", "* SEARCH 1 2", "a OK SEARCH completed")
    c.expect(
        b"b SEARCH CHARSET UTF-8 BODY {5+}\r\n\xc3\x9feed\r\n",
        "* SEARCH 3",
        "b OK SEARCH completed",
    )
