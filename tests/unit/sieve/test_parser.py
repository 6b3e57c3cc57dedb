"""The parser: grammar (RFC 5228 section 8.2), argument checks, extensions, limits."""

from __future__ import annotations

import pytest

from mda.sieve import EXTENSIONS, Limits, SieveError, parse
from mda.sieve.nodes import If, Node

from ._util import parse_error

# (script, line of the error, fragment of the message)
ERRORS = [
    # grammar
    ("keep", 1, "expected ';' or '{'"),
    ("keep;\n\nkeep", 3, "expected ';' or '{'"),
    ("keep;\n}", 2, "expected a command"),
    ('"string";', 1, "expected a command"),
    ("if true {\nkeep;\n", 3, "expected '}'"),
    ("if true keep;", 1, "'if' needs a block"),
    ('keep\nfileinto "x";', 1, "missing ';' after 'keep'"),
    ('if header :is ["a",] "b" {}', 1, "a string after ','"),
    ('if header :is [] "b" {}', 1, "a string in the string list"),
    ('if header :is ["a" "b"] "c" {}', 1, "',' or ']'"),
    ("if anyof (true false) {}", 1, "'true' takes no test"),
    ("if anyof (true; false) {}", 1, "',' or ')'"),
    ("if anyof () {}", 1, "expected a test"),
    ("if anyof (true,) {}", 1, "expected a test"),
    # commands and tests
    ("frobnicate;", 1, "unknown command 'frobnicate'"),
    ("keep;\nif frob {}", 2, "unknown test 'frob'"),
    ("true;", 1, "'true' is a test, not a command"),
    ("if keep {}", 1, "'keep' is a command, not a test"),
    ("elsif true {}", 1, "'elsif' without a preceding 'if'"),
    ("if true {} else {}\nelse {}", 2, "'else' without a preceding 'if'"),
    ("if true {} keep; elsif true {}", 1, "'elsif' without a preceding 'if'"),
    ("if true;", 1, "'if' needs a block"),
    ("if {}", 1, "'if' needs exactly one test"),
    ("if (true) {}", 1, "'if' needs exactly one test"),
    ("if true {} else true {}", 1, "'else' takes no test"),
    ('if "x" true {}', 1, "takes no arguments besides its test"),
    ("keep {}", 1, "'keep' takes no block"),
    ("stop 1;", 1, "takes 0 positional argument"),
    ('discard "x";', 1, "takes 0 positional argument"),
    ("if not (true) {}", 1, "'not' takes exactly one test"),
    ("if not {}", 1, "'not' takes exactly one test"),
    ("if allof true {}", 1, "'allof' takes a test list"),
    ('if anyof "x" (true) {}', 1, "'anyof' takes a test list"),
    ("if true false {}", 1, "'true' takes no test"),
    ('if header "a" {}', 1, "takes 2 positional argument"),
    ('if header "a" "b" "c" {}', 1, "takes 2 positional argument"),
    ('if header 1 "b" {}', 1, "expects a string-list here, not a number"),
    ('if exists :is "a" {}', 1, "'exists' has no tagged argument ':is'"),
    ('if header :is :is "a" "b" {}', 1, "':is' repeated"),
    ('if header :is :matches "a" "b" {}', 1, "':matches' conflicts with ':is'"),
    ('if address :all :domain "a" "b" {}', 1, "conflicts with ':all'"),
    ('if header "a" :is "b" {}', 1, "':is' must come before the positional arguments"),
    ('if header :comparator "a" "x" "b" {}', 1, "unsupported comparator 'a'"),
    ('if header :comparator "i;ascii-numeric" "a" "b" {}', 1, "needs require 'comparator-"),
    ('if header :comparator "i;unicode-casemap" "a" "b" {}', 1, "unsupported comparator"),
    ('if header :comparator ["i;octet"] "a" "b" {}', 1, "must be followed by a string"),
    ("if header :comparator {}", 1, "must be followed by a string"),
    ("if size 100 {}", 1, "needs ':over' or ':under'"),
    ("if size :over :under 100 {}", 1, "conflicts with ':over'"),
    ('if size :over "100" {}', 1, "expects a number here, not a string"),
    ("if size :over {}", 1, "takes 1 positional argument"),
    ('require "fileinto"; fileinto ["a", "b"];', 1, "expects a string here, not a string list"),
    ('redirect "x";', 1, "invalid redirect address 'x'"),
    ('redirect "a@b, c@d";', 1, "invalid redirect address"),
    ('redirect "group: a@b;";', 1, "invalid redirect address"),
    ('redirect "<@route:a@b>";', 1, "invalid redirect address"),
    ('redirect "a b@c";', 1, "invalid redirect address"),
    ('require "fileinto";\nfileinto "";', 2, "empty mailbox name"),
    ('require "fileinto";\nfileinto "a\tb";', 2, "control character"),
    ('require "envelope";\nif envelope "cc" "x" {}', 2, "unknown envelope part 'cc'"),
    # require (RFC 5228 sections 3.2, 2.10.5)
    ('require "imapsieve";', 1, "unsupported extension 'imapsieve'"),
    ('require ["fileinto",\n "notify"];', 1, "unsupported extension 'notify'"),
    ('require "FILEINTO";', 1, "unsupported extension"),  # capabilities are case-sensitive
    ('require "editheader";', 1, "unsupported extension 'editheader'"),  # not configured
    ('require "comparator-i;unicode-casemap";', 1, "unsupported extension"),
    ('keep;\nrequire "fileinto";', 2, "'require' must come before"),
    ('if true {\n require "fileinto";\n}', 2, "'require' must come before"),
    ('require :x "fileinto";', 1, "has no tagged argument"),
    ("require;", 1, "takes 1 positional argument"),
    ('require "fileinto" { }', 1, "'require' takes no block"),
    # extensions used without require
    ('fileinto "x";', 1, "'fileinto' needs require 'fileinto'"),
    ('keep;\nif envelope "to" "x" {}', 2, "'envelope' needs require 'envelope'"),
    ('redirect :copy "a@b.c";', 1, "':copy' needs require 'copy'"),
    ('require "fileinto"; fileinto :create "x";', 1, "':create' needs require 'mailbox'"),
    ('keep :flags "\\\\Seen";', 1, "':flags' needs require 'imap4flags'"),
    ('if address :user "to" "x" {}', 1, "':user' needs require 'subaddress'"),
    ('if address :detail "to" "x" {}', 1, "':detail' needs require 'subaddress'"),
    ('setflag "\\\\Seen";', 1, "'setflag' needs require 'imap4flags'"),
    ('if hasflag "x" {}', 1, "'hasflag' needs require 'imap4flags'"),
    ('if mailboxexists "x" {}', 1, "'mailboxexists' needs require 'mailbox'"),
    # imap4flags arguments
    ('require "imap4flags"; setflag;', 1, "takes 1 positional argument"),
    ('require "imap4flags"; setflag "a" "b" "c";', 1, "positional argument(s)"),
    ('require "imap4flags"; setflag ["a"] "b";', 1, "expects a string here"),
    ('require ["imap4flags", "variables"]; setflag "a-b" "c";', 1, "invalid variable name 'a-b'"),
    ('require ["imap4flags", "variables"]; if hasflag ["1x"] "c" {}', 1, "invalid variable name"),
    ('require "imap4flags"; setflag "v" "c";', 1, "only with require 'variables'"),
    ('require "imap4flags"; if hasflag "v" "c" {}', 1, "only with require 'variables'"),
    (
        'require "imap4flags"; if hasflag :count "ge" "1" {}',
        1,
        "':count' needs require 'relational'",
    ),
    # encoded-character (RFC 5228 section 2.4.2.4)
    ('require "encoded-character";\nif header "s" "${unicode:200000}" {}', 2, "U+200000"),
    ('require "encoded-character";\nif header "s" "${Unicode:DF01}" {}', 2, "U+DF01"),
]


@pytest.mark.parametrize(("script", "line", "fragment"), ERRORS)
def test_errors(script: str, line: int, fragment: str) -> None:
    err = parse_error(script)
    assert fragment in err.message, err.message
    assert err.line == line, str(err)


def test_error_is_sieve_error_with_line() -> None:
    err = parse_error('require "fileinto";\n\n\nfileinto :bogus "x";')
    assert (err.message, err.line) == ("'fileinto' has no tagged argument ':bogus'", 4)
    assert str(err) == "line 4: 'fileinto' has no tagged argument ':bogus'"
    assert err.args == ("'fileinto' has no tagged argument ':bogus'", 4)


def test_all_extensions_can_be_required() -> None:
    parse("require [" + ", ".join(f'"{e}"' for e in sorted(EXTENSIONS)) + "];")
    # and several requires in a row
    parse('require "fileinto";\nrequire "copy";\nrequire ["envelope"];\nkeep;')


def test_builtin_comparators_need_no_require() -> None:
    parse('if header :comparator "i;octet" "a" "b" {}')
    parse('if header :comparator "I;ASCII-CASEMAP" "a" "b" {}')


def test_empty_script() -> None:
    assert parse("").commands == ()
    assert parse("# only a comment").commands == ()


def test_tags_in_any_order() -> None:
    a = parse('if header :comparator "i;octet" :contains "a" "b" {}')
    b = parse('if header :contains :comparator "i;octet" "a" "b" {}')
    for script in (a, b):
        cmd = script.commands[0]
        assert isinstance(cmd, If)
        test = cmd.branches[0][0]
        assert isinstance(test, Node) and test.name == "header" and test.match is not None
        assert (test.match.match_type, test.match.comparator) == ("contains", "i;octet")


def test_if_elsif_else_chain_is_one_node() -> None:
    script = parse("if false {} elsif false {} elsif true { keep; } else { discard; }\nkeep;")
    assert len(script.commands) == 2
    chain = script.commands[0]
    assert isinstance(chain, If)
    assert len(chain.branches) == 4
    assert chain.branches[3][0] is None
    assert "If(" in repr(chain)


def test_commands_are_prepared() -> None:
    script = parse(
        'require ["fileinto", "copy", "mailbox", "imap4flags"];\n'
        'fileinto :copy :create :flags ["\\\\seen x", "bad(flag"] "Lists.Sieve";\n'
        'redirect "Joe <joe@Example.COM>";\n'
        "keep;"
    )
    fileinto, redirect, keep = script.commands
    assert isinstance(fileinto, Node) and fileinto.name == "fileinto"
    assert fileinto.args == ("Lists.Sieve",)
    assert (fileinto.tags["copy"], fileinto.tags["create"]) == (True, True)
    assert fileinto.tags["flags"] == ("\\seen x", "bad(flag")  # checked when it runs
    assert isinstance(redirect, Node) and redirect.name == "redirect"
    assert redirect.args == ("joe@Example.COM",)
    assert isinstance(keep, Node) and keep.tags["flags"] is None
    assert script.extensions == {"fileinto", "copy", "mailbox", "imap4flags"}


def test_redirect_address_forms() -> None:
    for text, expected in [
        ("a@b.example", "a@b.example"),
        ("<a@b.example>", "a@b.example"),
        ('"Some One" <a@b.example>', "a@b.example"),
        ("Some One <a@b.example> (comment)", "a@b.example"),
        ('"quoted local"@b.example', "quoted local@b.example"),
    ]:
        if " " in expected:
            assert "invalid" in parse_error(f"redirect {_q(text)};").message
            continue
        cmd = parse(f"redirect {_q(text)};").commands[0]
        assert isinstance(cmd, Node)
        assert cmd.args == (expected,)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- encoded-character: the table of RFC 5228 section 2.4.2.4


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("$${hex:40}", "$@"),
        ("${hex: 40 }", "@"),
        ("${HEX: 40}", "@"),
        ("${hex:40", "${hex:40"),
        ("${hex:400}", "${hex:400}"),
        ("${hex:4${hex:30}}", "${hex:40}"),
        ("${unicode:40}", "@"),
        ("${ unicode:40}", "${ unicode:40}"),
        ("${UNICODE:40}", "@"),
        ("${UnICoDE:0000040}", "@"),
        ("${Unicode:40}", "@"),
        ("${Unicode:Cool}", "${Unicode:Cool}"),
        # more
        ("${hex:24 24}", "$$"),
        ("${hex:\n 41\t42 \n}", "AB"),
        ("${hex:c3 a9}", "\u00e9"),
        ("${unicode:2603 20 1F600}", "\u2603 \U0001f600"),
        ("${hex:}", "${hex:}"),
        ("${hex:4142}", "${hex:4142}"),
        ("${hex:41,42}", "${hex:41,42}"),
        ("${unicode:}", "${unicode:}"),
        ("${other:41}", "${other:41}"),
        ("no sequence", "no sequence"),
        ("$", "$"),
        ("${", "${"),
    ],
)
def test_encoded_character(written: str, value: str) -> None:
    script = parse(f'require "encoded-character";\nif header :is "x" {_q(written)} {{}}')
    chain = script.commands[0]
    assert isinstance(chain, If)
    test = chain.branches[0][0]
    assert isinstance(test, Node) and test.match is not None and test.match.matcher is not None
    assert test.match.matcher.keys == (value.lower().encode("utf-8"),)


def test_encoded_character_needs_require() -> None:
    script = parse('if header :is "x" "${hex:40}" {}')
    test = script.commands[0].branches[0][0]  # type: ignore[union-attr]
    assert test.match.matcher.keys == (b"${hex:40}",)  # type: ignore[union-attr]


def test_encoded_character_raw_octets_are_kept() -> None:
    # "${hex:ff}" is not UTF-8; the octet is kept as-is for octet comparisons.
    script = parse('require "encoded-character"; if header :is "x" "${hex:ff}" {}')
    test = script.commands[0].branches[0][0]  # type: ignore[union-attr]
    assert test.match.matcher.keys == (b"\xff",)  # type: ignore[union-attr]


def test_encoded_character_in_multiline_string() -> None:
    script = parse('require "encoded-character";\nif header :is "x" text:\n${hex:41}\n.\n {}')
    test = script.commands[0].branches[0][0]  # type: ignore[union-attr]
    assert test.match.matcher.keys == (b"a\n",)  # type: ignore[union-attr]


def test_encoded_character_in_mailbox_name() -> None:
    script = parse('require ["encoded-character", "fileinto"]; fileinto "${unicode:263A}";')
    cmd = script.commands[0]
    assert isinstance(cmd, Node)
    assert cmd.args == ("\u263a",)
    err = parse_error('require ["encoded-character", "fileinto"];\nfileinto "a${hex:0a}";')
    assert err.line == 2 and "control character" in err.message


# -- limits


def test_script_size_limit() -> None:
    limits = Limits(max_script_size=100)
    parse("#" * 99, limits=limits)
    err = parse_error_with(("#" * 101), limits)
    assert "larger than 100 octets" in err.message and err.line == 1
    # counted in UTF-8 octets
    parse_error_with("#" + "\u00e9" * 60, limits)


def parse_error_with(script: str, limits: Limits) -> SieveError:
    with pytest.raises(SieveError) as info:
        parse(script, limits=limits)
    return info.value


def test_default_size_limit_is_one_mebibyte() -> None:
    parse("#" * (1 << 20))
    assert "larger than" in parse_error("#" * ((1 << 20) + 1)).message


def nested_blocks(depth: int) -> str:
    return "if true {\n" * depth + "keep;\n" + "}\n" * depth


def nested_tests(depth: int) -> str:
    return "if " + "not " * (depth - 1) + "true {}"


def test_rfc_minimum_nesting_is_supported() -> None:
    # RFC 5228 section 2.10.7: at least fifteen levels of blocks and of tests.
    parse(nested_blocks(15))
    parse(nested_tests(15))
    parse("if " + "anyof(" * 14 + "true" + ")" * 14 + " {}")
    parse(nested_blocks(32))
    parse(nested_tests(32))


def test_nesting_limit() -> None:
    err = parse_error(nested_blocks(33))
    assert "blocks nested deeper than 32" in err.message and err.line == 33
    err = parse_error(nested_tests(33))
    assert "tests nested deeper than 32" in err.message and err.line == 1
    err = parse_error_with(nested_blocks(4), Limits(max_nesting=3))
    assert err.line == 4
    # deep nesting does not reach Python's recursion limit
    parse_error(nested_blocks(5000))
    parse_error(nested_tests(5000))
    parse_error("if " + "allof(" * 5000 + "true" + ")" * 5000 + " {}")


def test_many_flat_commands_are_fine() -> None:
    parse("keep;\n" * 20000)
    parse("if anyof(" + ", ".join(["true"] * 20000) + ") {}")


def test_error_inside_deep_structure_reports_its_line() -> None:
    err = parse_error('if true {\n  if true {\n    if header :is "a" {\n    }\n  }\n}')
    assert err.line == 3 and "takes 2 positional" in err.message


def test_semantic_error_in_nested_test_reports_its_line() -> None:
    err = parse_error('if anyof(true,\n  false,\n  header :foo "a" "b") {}')
    assert err.line == 3 and "':foo'" in err.message


def test_runtime_error_is_not_raised_by_parse() -> None:
    # Five redirects parse fine: the limit is checked when they are executed.
    parse("\n".join(f'redirect "u{i}@example.com";' for i in range(10)))


def test_sieve_error_is_exception() -> None:
    assert issubclass(SieveError, Exception)
