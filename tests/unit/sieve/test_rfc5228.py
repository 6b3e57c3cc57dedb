"""The examples of RFC 5228, run against its messages A and B (section 1.2)."""

from __future__ import annotations

import pytest

from mda.sieve import Discard, FileInto, Keep, Redirect, SieveEnvelope, SieveMessage

from ._util import MESSAGE_A, MESSAGE_B, message, parse_error, run

OTHER = message("From: someone@example.net\nTo: me@example.com\nDate: x\nSubject: hello\n")


def big(size: int) -> SieveMessage:
    return SieveMessage([("From", " a@b.example")], size)


# -- section 2.3: comments


def test_2_3_hash_comment() -> None:
    script = "if size :over 100k { # this is a comment\n   discard;\n}\n"
    assert run(script, MESSAGE_A) == [Keep()]
    assert run(script, big(100 * 1024 + 1)) == [Discard()]


def test_2_3_bracket_comment() -> None:
    script = (
        "if size :over 100K { /* this is a comment\n"
        "   this is still a comment */ discard /* this is a comment\n"
        "   */ ;\n"
        "}\n"
    )
    assert run(script, MESSAGE_A) == [Keep()]
    assert run(script, big(102401)) == [Discard()]
    assert run(script, big(102400)) == [Keep()]


# -- section 2.4.2.4: encoded-character


def test_2_4_2_4_encoded_character() -> None:
    # "message B is discarded, since the specified test string is equivalent to "$$$"."
    script = (
        'require "encoded-character";\n'
        'if header :contains "Subject" "$${hex:24 24}" {\n   discard;\n}'
    )
    assert run(script, MESSAGE_B) == [Discard()]
    assert run(script, MESSAGE_A) == [Keep()]


# -- section 2.5.1: test lists


def test_2_5_1_test_list() -> None:
    script = (
        'if anyof (not exists ["From", "Date"],\n'
        '          header :contains "from" "fool@example.com") {\n'
        "   discard;\n"
        "}"
    )
    assert run(script, MESSAGE_A) == [Keep()]
    assert run(script, message("From: a@b.example\n")) == [Discard()]  # no Date
    assert run(script, message("From: Fool <fool@example.com>\nDate: x\n")) == [Discard()]


# -- section 2.7.3: comparators


def test_2_7_3_octet_comparator() -> None:
    script = (
        'if header :contains :comparator "i;octet" "Subject"\n'
        '      "MAKE MONEY FAST" {\n'
        "   discard;\n"
        "}"
    )
    assert run(script, message("Subject: You can MAKE MONEY FAST\n")) == [Discard()]
    assert run(script, message("Subject: You can Make Money Fast\n")) == [Keep()]


# -- section 2.10.2: implicit keep


def test_2_10_2_implicit_keep() -> None:
    assert run("if size :over 500K { discard; }", MESSAGE_A) == [Keep()]
    assert run("if size :over 500K { discard; }", MESSAGE_B) == [Keep()]
    assert run("", MESSAGE_A) == [Keep()]


# -- section 3.1: if/elsif/else

SCRIPT_3_1_A = """require "fileinto";
if header :contains "from" "coyote" {
   discard;
} elsif header :contains ["subject"] ["$$$"] {
   discard;
} else {
   fileinto "INBOX";
}"""

SCRIPT_3_1_B = """if header :contains ["From"] ["coyote"] {
   redirect "acm@example.com";
} elsif header :contains "Subject" "$$$" {
   redirect "postmaster@example.com";
} else {
   redirect "field@example.com";
}"""


def test_3_1_both_messages_dropped() -> None:
    assert run(SCRIPT_3_1_A, MESSAGE_A) == [Discard()]
    assert run(SCRIPT_3_1_A, MESSAGE_B) == [Discard()]
    assert run(SCRIPT_3_1_A, OTHER) == [Keep()]  # fileinto "INBOX" is the keep mailbox


def test_3_1_redirects() -> None:
    assert run(SCRIPT_3_1_B, MESSAGE_A) == [Redirect("acm@example.com")]
    assert run(SCRIPT_3_1_B, MESSAGE_B) == [Redirect("postmaster@example.com")]
    assert run(SCRIPT_3_1_B, OTHER) == [Redirect("field@example.com")]


# -- section 3.2: require


def test_3_2_require_examples() -> None:
    # Both examples name extensions we implement; an unknown one is an error with its line.
    assert run('require ["fileinto", "reject"];') == [Keep()]
    assert run('require "fileinto";\nrequire "vacation";') == [Keep()]
    err = parse_error('require "fileinto";\nrequire "x-unknown";')
    assert err.line == 2 and "'x-unknown'" in err.message
    assert run('require ["fileinto"];\nrequire "fileinto";\nkeep;') == [Keep()]


# -- section 3.3: stop


def test_3_3_stop() -> None:
    assert run("stop;\ndiscard;") == [Keep()]  # the implicit keep is taken
    assert run('require "fileinto";\nfileinto "x";\nstop;\nkeep;') == [FileInto("x")]
    assert run("if true { if true { stop; } discard; }\ndiscard;") == [Keep()]
    assert run("discard;\nstop;\nkeep;") == [Discard()]


# -- section 4


def test_4_1_fileinto() -> None:
    script = (
        'require "fileinto";\n'
        'if header :contains ["from"] "coyote" {\n   fileinto "INBOX.harassment";\n}'
    )
    assert run(script, MESSAGE_A) == [FileInto("INBOX.harassment")]
    assert run(script, MESSAGE_B) == [Keep()]


def test_4_2_redirect() -> None:
    assert run('redirect "bart@example.com";') == [Redirect("bart@example.com")]


@pytest.mark.parametrize("size", [0, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 10 << 20])
def test_4_3_keep_scripts_are_identical(size: int) -> None:
    first = run("if size :under 1M { keep; } else { discard; }", big(size))
    second = run("if not size :under 1M { discard; }", big(size))
    assert first == second
    assert first == ([Keep()] if size < 1024 * 1024 else [Discard()])


def test_4_4_discard() -> None:
    script = 'if header :contains ["from"] ["idiot@example.com"] {\n   discard;\n}'
    assert run(script, message("From: An Idiot <idiot@example.com>\n")) == [Discard()]
    assert run(script, MESSAGE_A) == [Keep()]
    # fileinto+discard is equivalent to fileinto
    assert run('require "fileinto"; fileinto "a"; discard;') == [FileInto("a")]


# -- section 5


def test_5_1_address() -> None:
    script = 'if address :is :all "from" "tim@example.com" {\n   discard;\n}'
    assert run(script, message("From: Tim <tim@example.com>\n")) == [Discard()]
    assert run(script, message("From: TIM@EXAMPLE.COM (Tim)\n")) == [Discard()]
    assert run(script, message("From: tim@example.com.evil\n")) == [Keep()]
    # the phrase is never matched
    script = 'if address :contains "from" "Tim" { discard; }'
    assert run(script, message("From: Tim <x@example.com>\n")) == [Keep()]


@pytest.mark.parametrize(
    ("tests", "allof", "anyof"),
    [("false, false", False, False), ("false, true", False, True), ("true, true", True, True)],
)
def test_5_2_5_3_allof_anyof(tests: str, allof: bool, anyof: bool) -> None:
    assert (run(f"if allof ({tests}) {{ discard; }}") == [Discard()]) is allof
    assert (run(f"if anyof ({tests}) {{ discard; }}") == [Discard()]) is anyof


def test_5_4_envelope() -> None:
    script = 'require "envelope";\nif envelope :all :is "from" "tim@example.com" {\n   discard;\n}'
    assert run(script, env=SieveEnvelope("tim@example.com", "me@example.com")) == [Discard()]
    assert run(script, env=SieveEnvelope("<TIM@example.com>", "me@example.com")) == [Discard()]
    assert run(script, env=SieveEnvelope("someone@example.com", "me@example.com")) == [Keep()]


def test_5_5_exists() -> None:
    script = 'if not exists ["From","Date"] {\n   discard;\n}'
    assert run(script, MESSAGE_A) == [Keep()]
    assert run(script, message("From: a@b.example\n")) == [Discard()]
    assert run(script, message("Date: today\n")) == [Discard()]


def test_5_7_header_empty_key() -> None:
    raw = message("X-Caffeine: C8H10N4O2\n")
    assert run('if header :is ["X-Caffeine"] [""] { discard; }', raw) == [Keep()]
    assert run('if header :contains ["X-Caffeine"] [""] { discard; }', raw) == [Discard()]
    # a missing header matches no key, not even the empty one
    assert run('if header :contains ["X-Missing"] [""] { discard; }', raw) == [Keep()]
    # "absent or doesn't contain any non-whitespace characters"
    script = 'if not header :matches "Cc" "?*" { discard; }'
    assert run(script, message("Cc:   \n")) == [Discard()]
    assert run(script, raw) == [Discard()]
    assert run(script, message("Cc: a@b.example\n")) == [Keep()]


def test_5_9_size_exactly_4000_is_neither_over_nor_under() -> None:
    msg = big(4000)
    assert run("if size :over 4000 { discard; }", msg) == [Keep()]
    assert run("if size :under 4000 { discard; }", msg) == [Keep()]
    assert run("if size :over 3999 { discard; }", msg) == [Discard()]
    assert run("if size :under 4001 { discard; }", msg) == [Discard()]


# -- section 9: extended example

EXTENDED_EXAMPLE = """#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];

#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"""


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Sender: owner-ietf-mta-filters@imc.org\nTo: me@example.com\n", FileInto("filter")),
        ("From: boss@example.com\nTo: someone@elsewhere.example\n", Keep()),
        ("From: x@elsewhere.example\nTo: Me <ME@example.com>\n", Keep()),
        ("From: x@elsewhere.example\nTo: you@elsewhere.example\n", FileInto("spam")),
        (
            "From: x@elsewhere.example\nCc: me@example.com\nSubject: Make MONEY fast\n",
            FileInto("spam"),
        ),
        (
            "From: x@elsewhere.example\nBcc: me@example.com\nSubject: university diplomas\n",
            FileInto("spam"),
        ),
        ("From: x@elsewhere.example\nCc: me@example.com\nSubject: hi\n", FileInto("personal")),
    ],
)
def test_9_extended_example(headers: str, expected: object) -> None:
    assert run(EXTENDED_EXAMPLE, message(headers)) == [expected]
