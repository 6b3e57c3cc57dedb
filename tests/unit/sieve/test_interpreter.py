"""Evaluation: implicit keep, duplicates, limits, runtime errors, script chains."""

from __future__ import annotations

import pytest

from mda.sieve import (
    DEFAULT_LIMITS,
    Discard,
    FileInto,
    Keep,
    Limits,
    Redirect,
    SieveEnvelope,
    SieveError,
    SieveMessage,
    SieveRuntimeError,
    evaluate,
    evaluate_chain,
    parse,
)

from ._util import ENVELOPE, MESSAGE_A, message, run

PREFIX = 'require ["fileinto", "copy", "imap4flags", "envelope", "mailbox", "variables"];\n'


def actions(body: str, raw: bytes = MESSAGE_A) -> list[object]:
    return list(run(PREFIX + body, raw))


# -- implicit keep (RFC 5228 section 2.10.2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", [Keep()]),
        ("stop;", [Keep()]),
        ("if false { discard; }", [Keep()]),
        ('addflag "x";', [Keep(frozenset({"x"}))]),
        ("keep;", [Keep()]),
        ("discard;", [Discard()]),
        ('fileinto "a";', [FileInto("a")]),
        ('redirect "a@b.example";', [Redirect("a@b.example")]),
        ('fileinto :copy "a";', [FileInto("a"), Keep()]),
        ('redirect :copy "a@b.example";', [Redirect("a@b.example"), Keep()]),
        ('fileinto :copy "a"; discard;', [FileInto("a")]),
        ("discard; keep;", [Keep()]),
        ("keep; discard;", [Keep()]),
        ('discard; fileinto "a";', [FileInto("a")]),
        ('redirect "a@b.example"; discard;', [Redirect("a@b.example")]),
        ('fileinto "a"; keep;', [FileInto("a"), Keep()]),
        ('keep; fileinto :copy "a";', [Keep(), FileInto("a")]),
        ('fileinto :copy "a"; fileinto "b";', [FileInto("a"), FileInto("b")]),
        ('fileinto "INBOX";', [Keep()]),
        ('fileinto "inbox"; fileinto :copy "a";', [Keep(), FileInto("a")]),
    ],
)
def test_implicit_keep_rules(body: str, expected: list[object]) -> None:
    assert actions(body) == expected


def test_result_is_never_empty_and_discard_is_alone() -> None:
    for body in ("discard;", "discard; discard;", "if true { discard; stop; } keep;"):
        assert actions(body) == [Discard()]


# -- duplicates (RFC 5228 section 2.10.3)


def test_duplicate_deliveries_are_merged() -> None:
    assert actions('fileinto "a"; fileinto "a"; fileinto :copy "a";') == [FileInto("a")]
    assert actions("keep; keep;") == [Keep()]
    assert actions('keep; fileinto "INBOX"; fileinto "Inbox";') == [Keep()]
    assert actions('fileinto :copy "INBOX";') == [Keep()]  # merged with the implicit keep
    # mailbox names other than INBOX are case-sensitive
    assert actions('fileinto "a"; fileinto "A";') == [FileInto("a"), FileInto("A")]
    # :create from either is kept; first position is kept
    assert actions('fileinto "a"; fileinto "b"; fileinto :create "a";') == [
        FileInto("a", create=True),
        FileInto("b"),
    ]


def test_duplicate_redirects_are_merged() -> None:
    body = 'redirect "a@b.example"; redirect "a@B.EXAMPLE"; redirect :copy "a@b.example";'
    assert actions(body) == [Redirect("a@b.example")]
    # the local part is case-sensitive
    assert actions('redirect "a@b.example"; redirect "A@b.example";') == [
        Redirect("a@b.example"),
        Redirect("A@b.example"),
    ]


# -- limits


def test_redirect_limit() -> None:
    four = "".join(f'redirect "u{i}@example.com";' for i in range(4))
    assert len(actions(four + 'redirect "u0@example.com";')) == 4
    with pytest.raises(SieveRuntimeError) as info:
        actions(four + '\nredirect "u4@example.com";')
    assert "more than 4 redirects" in info.value.message
    assert info.value.line == 3  # line 1 is PREFIX


def test_redirect_limit_is_configurable() -> None:
    script = parse('redirect "a@b.example"; redirect "c@d.example";')
    msg = SieveMessage.from_bytes(MESSAGE_A)
    with pytest.raises(SieveRuntimeError):
        evaluate(script, msg, ENVELOPE, limits=Limits(max_redirects=1))
    assert len(evaluate(script, msg, ENVELOPE, limits=Limits(max_redirects=2))) == 2


def test_action_limit_counts_the_implicit_keep() -> None:
    files = "".join(f'fileinto "b{i}";' for i in range(32))
    assert len(actions(files)) == 32
    copies = "".join(f'fileinto :copy "b{i}";' for i in range(31))
    assert len(actions(copies)) == 32  # 31 + the implicit keep
    with pytest.raises(SieveRuntimeError) as info:
        actions(copies + 'fileinto :copy "b31";')
    assert "more than 32 actions" in info.value.message
    with pytest.raises(SieveRuntimeError):
        actions(files + 'fileinto "b32";')
    # duplicates do not count
    assert len(actions(files + files)) == 32


def test_default_limits() -> None:
    assert Limits(1 << 20, 32, 32, 4) == DEFAULT_LIMITS


# -- runtime errors


def test_runtime_error_is_a_sieve_error_with_the_line() -> None:
    with pytest.raises(SieveError) as info:
        actions("keep;\n" + "".join(f'\nredirect "u{i}@example.com";' for i in range(5)))
    assert isinstance(info.value, SieveRuntimeError)
    assert info.value.line == 8  # PREFIX, keep, blank, four redirects, then the fifth


class BrokenMessage(SieveMessage):
    def header(self, name: str) -> list[str]:
        raise UnicodeError("weird header")


def test_unexpected_exceptions_become_runtime_errors() -> None:
    script = parse('keep;\n\nif header :is "subject" "x" { discard; }')
    msg = BrokenMessage([("Subject", "x")], 10)
    with pytest.raises(SieveRuntimeError) as info:
        evaluate(script, msg, ENVELOPE)
    assert info.value.line == 3
    assert "internal error" in info.value.message and "weird header" in info.value.message
    assert isinstance(info.value.__cause__, UnicodeError)


def test_mailbox_exists_callback_errors_become_runtime_errors() -> None:
    def broken(name: str) -> bool:
        raise OSError("store down")

    script = parse('require "mailbox";\nif mailboxexists "x" { discard; }')
    with pytest.raises(SieveRuntimeError) as info:
        evaluate(script, SieveMessage.from_bytes(MESSAGE_A), ENVELOPE, mailbox_exists=broken)
    assert info.value.line == 2


def test_invalid_header_names_never_match_and_never_fail() -> None:
    # RFC 5228 section 2.4.2.2
    raw = message("From: a@b.example\n")
    assert actions('if header :contains "From:" "" { discard; }', raw) == [Keep()]
    assert actions('if header :contains ["", "a b"] "" { discard; }', raw) == [Keep()]
    assert actions('if exists "From:" { discard; }', raw) == [Keep()]
    assert actions('if address :contains "From:" "" { discard; }', raw) == [Keep()]


def test_address_test_ignores_non_address_headers() -> None:
    raw = message("Subject: a@b.example\nFrom: c@d.example\n")
    assert actions('if address :is "subject" "a@b.example" { discard; }', raw) == [Keep()]
    assert actions('if address :is ["subject", "from"] "c@d.example" { discard; }', raw) == [
        Discard()
    ]
    assert actions(
        'if address :domain "X-Original-To" "e.example" { discard; }',
        message("X-Original-To: x@e.example\n"),
    ) == [Discard()]


def test_address_test_on_invalid_addresses() -> None:
    raw = message("To: root\nCc: Some Name\n")
    assert actions('if address :all "to" "root" { discard; }', raw) == [Discard()]
    assert actions('if address :localpart :contains "to" "" { discard; }', raw) == [Keep()]
    assert actions('if address :domain :contains "to" "" { discard; }', raw) == [Keep()]
    assert actions('if address :all "cc" "some name" { discard; }', raw) == [Discard()]


def test_header_sees_decoded_values_and_any_of_several_fields() -> None:
    raw = message("Subject: =?utf-8?q?caf=C3=A9?=\nReceived: a\nReceived: b\n")
    assert actions('if header :is "subject" "caf\u00e9" { discard; }', raw) == [Discard()]
    assert actions('if header :is "received" "b" { discard; }', raw) == [Discard()]
    assert actions('if header :is ["x", "received"] ["z", "a"] { discard; }', raw) == [Discard()]


def test_tests_short_circuit() -> None:
    script = parse('if anyof (true, header "x" "y") { discard; }')
    assert evaluate(script, BrokenMessage([], 1), ENVELOPE) == [Discard()]
    script = parse('if allof (false, header "x" "y") { discard; }')
    assert evaluate(script, BrokenMessage([], 1), ENVELOPE) == [Keep()]


def test_script_is_reusable() -> None:
    script = parse(PREFIX + 'addflag "x"; if header :contains "subject" "a" { discard; }')
    a = SieveMessage.from_bytes(message("Subject: a\n"))
    b = SieveMessage.from_bytes(message("Subject: b\n"))
    for _ in range(2):
        assert evaluate(script, a, ENVELOPE) == [Discard()]
        assert evaluate(script, b, ENVELOPE) == [Keep(frozenset({"x"}))]


def test_actions_are_frozen_dataclasses() -> None:
    keep = Keep(frozenset({"\\Seen"}))
    with pytest.raises(AttributeError):
        keep.flags = frozenset()  # type: ignore[misc]
    assert FileInto("a") == FileInto("a", frozenset(), False)
    assert hash(Redirect("a@b")) == hash(Redirect("a@b"))
    assert Discard() == Discard()


# -- chains: sieve_before, user script, sieve_after (Pigeonhole semantics)


def chain(*scripts: str, raw: bytes = MESSAGE_A) -> list[object]:
    parsed = [parse(PREFIX + s) for s in scripts]
    return list(evaluate_chain(parsed, SieveMessage.from_bytes(raw), ENVELOPE))


def test_chain_runs_next_script_while_keep_is_in_effect() -> None:
    assert chain("", "", "") == [Keep()]
    assert chain("", 'fileinto "user";', 'fileinto "after";') == [FileInto("user")]
    assert chain('fileinto "spam";', 'fileinto "user";') == [FileInto("spam")]
    assert chain("discard;", 'fileinto "user";') == [Discard()]
    assert chain('redirect "a@b.example";', "keep;") == [Redirect("a@b.example")]


def test_chain_copy_and_stop_let_the_next_script_run() -> None:
    assert chain('fileinto :copy "archive";', 'fileinto "user";') == [
        FileInto("archive"),
        FileInto("user"),
    ]
    assert chain("stop;", 'fileinto "user";') == [FileInto("user")]
    # stop ends only its own script
    assert chain('if true { stop; } fileinto "never";', "", 'fileinto "after";') == [
        FileInto("after")
    ]


def test_chain_explicit_keep_lets_the_next_script_run_and_stays() -> None:
    assert chain("keep;", "discard;") == [Keep()]
    assert chain("keep;", 'fileinto "user";') == [Keep(), FileInto("user")]
    assert chain('keep; fileinto "x";', 'fileinto "user";') == [
        Keep(),
        FileInto("x"),
        FileInto("user"),
    ]


def test_chain_implicit_keep_of_a_non_final_script_is_not_performed() -> None:
    assert chain('fileinto :copy "a";', 'fileinto "b";', "") == [FileInto("a"), FileInto("b")]


def test_chain_duplicates_merge_across_scripts() -> None:
    assert chain('fileinto :copy "a";', 'fileinto "a";') == [FileInto("a")]
    assert chain('redirect :copy "x@y.example";', 'redirect "x@y.example";') == [
        Redirect("x@y.example")
    ]


def test_chain_internal_flags_carry_over_named_variables_do_not() -> None:
    assert chain('addflag "\\\\Seen";', 'addflag "Junk";') == [Keep(frozenset({"\\Seen", "Junk"}))]
    assert chain('addflag "v" "x";', 'if hasflag "v" "x" { discard; }') == [Keep()]


def test_chain_limits_count_the_whole_sequence() -> None:
    before = "".join(f'redirect :copy "b{i}@example.com";' for i in range(3))
    user = "".join(f'redirect :copy "u{i}@example.com";' for i in range(2))
    with pytest.raises(SieveRuntimeError):
        chain(before, user)


def test_chain_runtime_error_anywhere_fails_the_whole_sequence() -> None:
    user = "".join(f'redirect "u{i}@example.com";' for i in range(5))
    with pytest.raises(SieveRuntimeError):
        chain('fileinto :copy "a";', user)


def test_empty_chain_keeps() -> None:
    assert evaluate_chain([], SieveMessage.from_bytes(MESSAGE_A), ENVELOPE) == [Keep()]


def test_envelope_and_limits_are_immutable_values() -> None:
    env = SieveEnvelope("a@b", "c@d")
    assert env == SieveEnvelope("a@b", "c@d") and env != SieveEnvelope("", "c@d")
    assert hash(env) == hash(SieveEnvelope("a@b", "c@d"))
    assert repr(env) == "SieveEnvelope(sender='a@b', recipient='c@d')"
    with pytest.raises(AttributeError):
        env.sender = "x"
    with pytest.raises(AttributeError):
        del env.recipient
    limits = Limits(max_redirects=1)
    assert limits == Limits(1 << 20, 32, 32, 1) and limits != DEFAULT_LIMITS
    assert hash(limits) == hash(Limits(max_redirects=1))
    assert "max_redirects=1" in repr(limits)
    with pytest.raises(AttributeError):
        limits.max_actions = 1
