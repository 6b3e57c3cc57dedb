"""The lexer: RFC 5228 section 8.1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mda.sieve import SieveError, parse
from mda.sieve.lexer import EOF, IDENT, NUMBER, STRING, TAG, Token, tokenize


def kinds(text: str) -> list[tuple[str, str | int]]:
    return [(t.kind, t.value) for t in tokenize(text) if t.kind != EOF]


def lex_error(text: str) -> SieveError:
    with pytest.raises(SieveError) as info:
        tokenize(text)
    return info.value


def test_basic_tokens() -> None:
    assert kinds('if header :Is ["a", "b"] 10 { keep; }') == [
        (IDENT, "if"),
        (IDENT, "header"),
        (TAG, "is"),
        ("[", "["),
        (STRING, "a"),
        (",", ","),
        (STRING, "b"),
        ("]", "]"),
        (NUMBER, 10),
        ("{", "{"),
        (IDENT, "keep"),
        (";", ";"),
        ("}", "}"),
    ]


def test_identifiers_and_tags_are_case_insensitive_strings_are_not() -> None:
    assert kinds('FileInto :COPY "MixedCase"') == [
        (IDENT, "fileinto"),
        (TAG, "copy"),
        (STRING, "MixedCase"),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("100", 100), ("1K", 1024), ("1k", 1024), ("2M", 2 << 20), ("3G", 3 << 30)],
)
def test_numbers_and_quantifiers(text: str, value: int) -> None:
    # Section 2.4.1: K, M, G are powers of two.
    assert kinds(text) == [(NUMBER, value)]


def test_number_limits() -> None:
    assert kinds("2147483647") == [(NUMBER, 2**31 - 1)]  # the RFC minimum
    assert kinds("0000000000000000000000000007") == [(NUMBER, 7)]
    assert "too large" in lex_error("9223372036854775808").message
    assert "too large" in lex_error("9000000000G").message
    assert "too large" in lex_error("1" * 5000).message  # no int() on huge digit strings


def test_number_glued_to_identifier_is_an_error() -> None:
    assert "invalid number" in lex_error("size :over 10X").message
    assert "invalid number" in lex_error("size :over 10KB").message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'"plain"', "plain"),
        (r'"a\"b"', 'a"b'),
        (r'"a\\b"', "a\\b"),
        (r'"\a\b\c"', "abc"),  # undefined escapes lose the backslash (section 2.4.2)
        (r'"\\\\"', "\\\\"),
        (r'"\*"', "*"),
        ('""', ""),
        ('"two\nlines"', "two\nlines"),  # quoted strings may span lines
        ('"two\r\nlines"', "two\nlines"),
        ('"caf\u00e9 \u2603"', "caf\u00e9 \u2603"),  # UTF-8 in strings
        ('"#not a comment /* nor this */"', "#not a comment /* nor this */"),
    ],
)
def test_quoted_strings(text: str, value: str) -> None:
    assert kinds(text) == [(STRING, value)]


def test_multiline_string_with_dot_stuffing() -> None:
    text = "text:\r\nline one\r\n..dot-stuffed\r\n.not stuffed\r\n...\r\n\r\n.\r\n"
    tokens = tokenize(text)
    assert tokens[0].kind == STRING and tokens[0].multiline
    # Section 2.4.2: ".." loses a dot; ".foo" stays ".foo"; the last CRLF is part of the value.
    assert tokens[0].value == "line one\n.dot-stuffed\n.not stuffed\n..\n\n"


def test_multiline_string_forms() -> None:
    assert kinds("text:\n.\n") == [(STRING, "")]
    assert kinds("TEXT:  \t\n x\n.\n") == [(STRING, " x\n")]
    # A hash comment may follow "text:" (but not a bracket comment).
    assert kinds("text: # comment\nbody\n.\n;") == [(STRING, "body\n"), (";", ";")]
    # Comment characters inside are text.
    assert kinds("text:\n# not a comment\n/* nor this\n.\n") == [
        (STRING, "# not a comment\n/* nor this\n")
    ]
    # The final "." may end the script without a line break.
    assert kinds("text:\nx\n.") == [(STRING, "x\n")]


def test_multiline_string_errors() -> None:
    assert "line break" in lex_error("text: x\n.\n").message
    assert "line break" in lex_error("text: /* c */\nx\n.\n").message
    err = lex_error("keep;\nfileinto text:\nno end\n. \n")
    assert "unterminated multi-line" in err.message and err.line == 2


def test_multiline_string_line_numbers() -> None:
    tokens = tokenize("text:\na\nb\n.\nkeep")
    assert tokens[0].line == 1
    assert tokens[1].kind == IDENT and tokens[1].line == 5


@pytest.mark.parametrize(
    "text",
    [
        "keep;# comment at the end without newline",
        "keep; # comment\n",
        "keep /* inline */ ;",
        "/* before */ keep;",
        "keep/**/;",
        "keep /* multi\nline\n*/ ;",
        "keep /* stars ** inside * / */;",
        "keep #; not code\n;",
        "keep\t;",
    ],
)
def test_comments_are_whitespace(text: str) -> None:
    assert kinds(text) == [(IDENT, "keep"), (";", ";")]


def test_comments_in_odd_places_parse() -> None:
    script = (
        'require /* a */ [ /* b */ "fileinto" /* c */ , # d\n "envelope" ] /* e */ ;\n'
        'if /* f */ header /* g */ :is # h\n "to" "x" /* i */ { # j\n'
        'fileinto /* k */ "box" /* l */ ; /* m */ } # n'
    )
    parse(script)


def test_bracket_comments_do_not_nest() -> None:
    # "/* a /* b */" ends at the first "*/"; the following "*/" is not valid syntax.
    assert "unexpected character" in lex_error("/* a /* b */ */").message


def test_line_numbers_after_strings() -> None:
    tokens = tokenize('"a\nb\\\nc\\\\" x\n"\\"" y')
    assert tokens[0].value == "a\nb\nc\\"
    assert [(t.value, t.line) for t in tokens if t.kind == IDENT] == [("x", 3), ("y", 4)]


def test_line_numbers() -> None:
    tokens = tokenize("a\nb /* x\ny */ c\r\n\r\n# z\nd")
    assert [(t.value, t.line) for t in tokens if t.kind == IDENT] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 6),
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('keep;\n"unterminated', 2, "unterminated quoted string"),
        ('"ends with backslash\\', 1, "unterminated quoted string"),
        ("keep;\n\n/* unterminated", 3, "unterminated /* comment"),
        ("keep;\nkeep\r;", 2, "CR not followed by LF"),
        ("keep;\n\0", 2, "NUL"),
        ('"NUL \0 inside"', 1, "NUL"),
        ("keep;\n@", 2, "unexpected character '@'"),
        ("keep: x", 1, "tag name"),
        (": x", 1, "tag name"),
        ("\ufeffkeep;", 1, "U+FEFF"),  # no BOM in the grammar
        ("k\u00e9ep;", 1, "unexpected character"),  # identifiers are ASCII
    ],
)
def test_errors_have_line_numbers(text: str, line: int, fragment: str) -> None:
    err = lex_error(text)
    assert err.line == line
    assert fragment in err.message
    assert str(err).startswith(f"line {line}: ")


def test_token_repr() -> None:
    assert repr(Token(IDENT, "keep", 3)) == "Token('identifier', 'keep', line=3)"


@given(st.text(max_size=200))
def test_tokenize_only_raises_sieve_error(text: str) -> None:
    try:
        tokenize(text)
    except SieveError:
        pass


@given(
    st.lists(
        st.sampled_from(
            [
                *['"s"', "[", "]", "(", ")", "{", "}", ",", ";", ":is", "10K", "text:\nx\n.\n"],
                *["if", "keep", "header", "not", "anyof", "require", "else", "# c\n", "/* c */"],
            ]
        ),
        max_size=30,
    )
)
def test_parse_only_raises_sieve_error(parts: list[str]) -> None:
    try:
        parse(" ".join(parts))
    except SieveError:
        pass
