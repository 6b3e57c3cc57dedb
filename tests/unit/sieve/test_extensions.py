"""Extensions: subaddress (RFC 5233), copy (RFC 3894), imap4flags (RFC 5232), mailbox (RFC 5490),
envelope details, with the examples of each RFC."""

from __future__ import annotations

import pytest

from mda.sieve import Discard, FileInto, Keep, Redirect, Reject, SieveEnvelope

from ._util import MESSAGE_A, message, run

# -- RFC 5233 subaddress

RFC5233_EXAMPLE = """require ["envelope", "subaddress", "fileinto"];

# In this example the same user account receives mail for both
# "ken@example.com" and "postmaster@example.com"

# File all messages to postmaster into a single mailbox,
# ignoring the :detail part.
if envelope :user "to" "postmaster" {
    fileinto "inbox.postmaster";
    stop;
}

# File mailing list messages (subscribed as "ken+mta-filters").
if envelope :detail "to" "mta-filters" {
    fileinto "inbox.ietf-mta-filters";
}

# Redirect all mail sent to "ken+foo".
if envelope :detail "to" "foo" {
    redirect "ken@example.net";
}
"""


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("postmaster@example.com", [FileInto("inbox.postmaster")]),
        ("postmaster+mta-filters@example.com", [FileInto("inbox.postmaster")]),
        ("ken+mta-filters@example.com", [FileInto("inbox.ietf-mta-filters")]),
        ("ken+foo@example.com", [Redirect("ken@example.net")]),
        ("ken+FOO@example.com", [Redirect("ken@example.net")]),
        ("ken@example.com", [Keep()]),
        ("ken+bar@example.com", [Keep()]),
    ],
)
def test_rfc5233_example(recipient: str, expected: list[object]) -> None:
    env = SieveEnvelope("list@lists.example.org", recipient)
    assert run(RFC5233_EXAMPLE, env=env) == expected


SUBADDRESS_MESSAGE = message(
    "From: stephan+@example.org\nTo: timo+spam@example.net\nCC: nico@example.com\n"
    "Subject: fetch my spam\nBcc: undisclosed-recipients:;\n"
)


@pytest.mark.parametrize(
    ("test", "matched"),
    [
        # ":user" is the whole local-part when there is no detail
        ('address :user "cc" "nico"', True),
        ('address :user "to" "timo"', True),
        ('address :user "from" "stephan"', True),
        ('address :detail "to" "spam"', True),
        ('address :detail "to" "SPAM"', True),
        ('address :detail :comparator "i;octet" "to" "SPAM"', False),
        # no detail: fails to match any key, even "" and "*"
        ('address :detail :matches "cc" ["*", "?"]', False),
        ('address :detail :contains "cc" ""', False),
        ('address :detail :is "cc" ""', False),
        # an empty detail is ""
        ('address :detail "from" ""', True),
        ('address :detail :contains "to" "pa"', True),
        ('address :user :contains "bcc" "undisclosed"', False),  # group names are not addresses
        ('address :detail :contains "bcc" ""', False),
    ],
)
def test_rfc5233_address_parts(test: str, matched: bool) -> None:
    script = f'require "subaddress";\nif {test} {{ discard; }}'
    assert (run(script, SUBADDRESS_MESSAGE) == [Discard()]) is matched


def test_subaddress_on_envelope_from_and_null_sender() -> None:
    script = (
        'require ["envelope", "subaddress"];\nif envelope :detail "from" "request" { discard; }'
    )
    env = SieveEnvelope("list+request@lists.example.net", "me@example.com")
    assert run(script, env=env) == [Discard()]
    # The null reverse-path is the empty string whatever the address part (RFC 5228 5.4).
    null = SieveEnvelope("", "me@example.com")
    script = 'require ["envelope", "subaddress"];\nif envelope :detail "from" "" { discard; }'
    assert run(script, env=null) == [Discard()]
    script = 'require "envelope";\nif envelope :domain :is "from" "" { discard; }'
    assert run(script, env=SieveEnvelope("<>", "me@example.com")) == [Discard()]
    script = 'require "envelope";\nif envelope :localpart :contains "from" "x" { discard; }'
    assert run(script, env=null) == [Keep()]


def test_envelope_parts_and_routes() -> None:
    env = SieveEnvelope("<@relay.example:bounce@lists.example.org>", "Me+Box@Example.COM")
    base = 'require ["envelope", "subaddress"];\nif envelope '
    assert run(base + ':all :is "from" "bounce@lists.example.org" { discard; }', env=env) == [
        Discard()
    ]
    assert run(base + ':domain :is "to" "example.com" { discard; }', env=env) == [Discard()]
    assert run(base + ':localpart :is "TO" "me+box" { discard; }', env=env) == [Discard()]
    assert run(base + ':user :is ["from", "to"] "me" { discard; }', env=env) == [Discard()]
    assert run(base + ':comparator "i;octet" :user :is "to" "me" { discard; }', env=env) == [Keep()]


# -- RFC 3894 copy


def test_rfc3894_fileinto_copy() -> None:
    script = (
        'require ["copy", "fileinto"];\nfileinto :copy "incoming";\n\n'
        "# ... more processing follows ...\n"
    )
    assert run(script) == [FileInto("incoming"), Keep()]


def test_rfc3894_explicit_keep_is_a_poor_substitute() -> None:
    # Section 1: "the discard is ineffective against the explicit keep".
    script = (
        'require "fileinto";\nfileinto "unfiltered";\nkeep;\n\n'
        'if header "Subject" "MAKE MONEY FAST!!!"\n{\n        discard;\n}'
    )
    spam = message("Subject: MAKE MONEY FAST!!!\n")
    assert run(script, spam) == [FileInto("unfiltered"), Keep()]
    # With :copy the discard works.
    script = (
        'require ["fileinto", "copy"];\nfileinto :copy "unfiltered";\n'
        'if header "Subject" "MAKE MONEY FAST!!!" { discard; }'
    )
    assert run(script, spam) == [FileInto("unfiltered")]
    assert run(script, MESSAGE_A) == [FileInto("unfiltered"), Keep()]


def test_redirect_copy() -> None:
    assert run('require "copy"; redirect :copy "a@b.example";') == [
        Redirect("a@b.example"),
        Keep(),
    ]
    assert run('require "copy"; redirect :copy "a@b.example"; discard;') == [
        Redirect("a@b.example")
    ]


# -- RFC 5490 mailbox


def test_rfc5490_example_with_reject() -> None:
    script = (
        'require ["fileinto", "reject", "mailbox"];\n'
        'if mailboxexists "Partners" {\n   fileinto "Partners";\n} else {\n'
        '   reject "This message was not accepted by the Mailstore";\n}'
    )
    assert run(script, mailbox_exists=lambda name: name == "Partners") == [FileInto("Partners")]
    assert run(script) == [Reject("This message was not accepted by the Mailstore")]


def test_rfc5490_mailboxexists() -> None:
    script = (
        'require ["fileinto", "mailbox"];\n'
        'if mailboxexists "Partners" {\n   fileinto "Partners";\n} else {\n   discard;\n}'
    )
    assert run(script, mailbox_exists=lambda name: name == "Partners") == [FileInto("Partners")]
    assert run(script, mailbox_exists=lambda name: False) == [Discard()]
    assert run(script) == [Discard()]  # without a callback only INBOX exists
    script = 'require "mailbox";\nif mailboxexists ["INBOX", "inbox"] { discard; }'
    assert run(script) == [Discard()]
    # all of the listed mailboxes must exist
    script = 'require "mailbox";\nif mailboxexists ["a", "b"] { discard; }'
    assert run(script, mailbox_exists=lambda name: name == "a") == [Keep()]
    assert run(script, mailbox_exists=lambda name: name in "ab") == [Discard()]


def test_rfc5490_fileinto_create() -> None:
    assert run('require ["fileinto", "mailbox"]; fileinto :create "New.Box";') == [
        FileInto("New.Box", create=True)
    ]
    # fileinto :create "INBOX" is the keep mailbox
    assert run('require ["fileinto", "mailbox"]; fileinto :create "INBOX";') == [Keep()]


# -- RFC 5232 imap4flags


def flags_of(script: str, raw: bytes = MESSAGE_A) -> list[object]:
    # "variables" too: RFC 5232 section 1, a named flag variable needs it.
    return list(run('require ["imap4flags", "fileinto", "variables"];\n' + script, raw))


def test_rfc5232_3_1_setflag_example() -> None:
    script = 'if size :over 500K {\n    setflag "\\\\Deleted";\n}'
    assert flags_of(script) == [Keep()]
    big = message("Subject: x\n", "x" * 600 * 1024)
    assert flags_of(script, big) == [Keep(frozenset({"\\Deleted"}))]


def test_rfc5232_3_1_flag_variable_example() -> None:
    # The RFC passes the variable with "${flagvar}" (with "variables", as flags_of requires).
    script = (
        'if header :contains "from" "boss@frobnitzm.example.edu" {\n'
        '    setflag "flagvar" "\\\\Flagged";\n'
        '    if hasflag "flagvar" "\\\\flagged" {\n'
        '        fileinto :flags "\\\\Flagged" "INBOX.From Boss";\n'
        "    }\n"
        "}"
    )
    boss = message("From: boss@frobnitzm.example.edu\n")
    assert flags_of(script, boss) == [FileInto("INBOX.From Boss", frozenset({"\\Flagged"}))]
    # the named variable does not touch the internal one
    assert flags_of('setflag "flagvar" "\\\\Flagged";') == [Keep()]


@pytest.mark.parametrize(
    "adds",
    [
        'addflag "\\\\Deleted";\naddflag "\\\\Answered";',
        'addflag ["\\\\Deleted", "\\\\Answered"];',
        'addflag "\\\\Deleted \\\\Answered";',
        'addflag "\\\\Answered \\\\Deleted";',
        'addflag "  \\\\answered   \\\\DELETED ";',
        'addflag ["", "\\\\Deleted", "", "\\\\Answered", "\\\\deleted"];',
    ],
)
def test_rfc5232_3_2_addflag_forms_are_equivalent(adds: str) -> None:
    assert flags_of(adds) == [Keep(frozenset({"\\Deleted", "\\Answered"}))]
    named = adds.replace("addflag ", 'addflag "flagvar" ')
    check = (
        'if allof (hasflag "flagvar" "\\\\Deleted", hasflag "flagvar" "\\\\Answered") { discard; }'
    )
    assert flags_of(named + "\n" + check) == [Discard()]


def test_rfc5232_3_3_removeflag_example() -> None:
    script = (
        'if header :contains "Disposition-Notification-To" "mel@example.com" {\n'
        '    addflag "flagvar" "$MDNRequired";\n'
        "}\n"
        'if header :contains "from" "imap@cac.washington.example.edu" {\n'
        '    removeflag "flagvar" "$MDNRequired";\n'
        '    if not hasflag "flagvar" "$mdnrequired" { fileinto "INBOX.imap-list"; }\n'
        "}"
    )
    raw = message(
        "Disposition-Notification-To: mel@example.com\nFrom: imap@cac.washington.example.edu\n"
    )
    assert flags_of(script, raw) == [FileInto("INBOX.imap-list")]


def test_removeflag_on_internal_variable_and_absent_flags() -> None:
    script = 'addflag ["a", "B", "c"];\nremoveflag ["b", "zzz", ""];\nremoveflag "A";'
    assert flags_of(script) == [Keep(frozenset({"c"}))]


def test_setflag_replaces() -> None:
    assert flags_of('addflag "a";\nsetflag "b";') == [Keep(frozenset({"b"}))]
    assert flags_of('addflag "a";\nsetflag "";') == [Keep()]


def test_rfc5232_4_hasflag_examples() -> None:
    internal = 'setflag "A B";\n'
    assert flags_of(internal + 'if hasflag :is "b A" { discard; }') == [Discard()]
    assert flags_of(internal + 'if hasflag ["b","A"] { discard; }') == [Discard()]
    assert flags_of(internal + 'if hasflag "C" { discard; }') == [Keep(frozenset({"A", "B"}))]
    my_var = (
        'setflag "MyVar" "NonJunk Junk gnus-forward $Forwarded NotJunk JunkRecorded $Junk'
        ' $NotJunk";\n'
    )
    true_tests = [
        'hasflag :contains "MyVar" "Junk"',
        'hasflag :contains "MyVar" "forward"',
        'hasflag :contains "MyVar" ["label", "forward"]',
        'hasflag :contains "MyVar" ["junk", "forward"]',
        'hasflag :contains "MyVar" "junk forward"',
        'hasflag :contains "MyVar" "forward junk"',
    ]
    for test in true_tests:
        assert flags_of(my_var + f"if {test} {{ discard; }}") == [Discard()], test
    for test in [
        'hasflag :contains "MyVar" "label"',
        'hasflag :contains "MyVar" ["label1", "label2"]',
    ]:
        assert flags_of(my_var + f"if {test} {{ discard; }}") == [Keep()], test


def test_hasflag_variants() -> None:
    assert flags_of('addflag "$Label1";\nif hasflag :matches "$label?" { discard; }') == [Discard()]
    assert flags_of('addflag "X";\nif hasflag :comparator "i;octet" "x" { discard; }') == [
        Keep(frozenset({"X"}))
    ]
    # variable lists: any variable, unknown variables are empty
    script = 'addflag "v2" "seen";\nif hasflag ["v1", "V2"] "SEEN" { discard; }'
    assert flags_of(script) == [Discard()]
    assert flags_of('if hasflag "nosuchvar" "" { discard; }') == [Keep()]
    assert flags_of('if hasflag :contains "" { discard; }') == [Keep()]  # no flags at all


def test_rfc5232_relational_count_example() -> None:
    script = (
        'require ["imap4flags", "relational", "comparator-i;ascii-numeric", "fileinto",\n'
        ' "variables"];\n'
        'addflag "MyFlags" ["a", "b"];\n'
        'if hasflag :count "ge" :comparator "i;ascii-numeric" "MyFlags" "2" {fileinto "two";}\n'
        'removeflag "MyFlags" "a";\n'
        'if hasflag :count "ge" :comparator "i;ascii-numeric" "MyFlags" "2" {fileinto "no";}'
    )
    assert run(script) == [FileInto("two")]


def test_rfc5232_5_flags_argument() -> None:
    script = 'fileinto :flags "\\\\Deleted" "INBOX.From Boss";'
    assert flags_of(script) == [FileInto("INBOX.From Boss", frozenset({"\\Deleted"}))]
    # without :flags, keep and fileinto take the internal variable at that moment
    script = 'addflag "a";\nfileinto "x";\naddflag "b";\nkeep;\nfileinto :flags "" "y";'
    assert flags_of(script) == [
        FileInto("x", frozenset({"a"})),
        Keep(frozenset({"a", "b"})),
        FileInto("y"),
    ]


def test_rfc5232_implicit_keep_takes_internal_variable_at_the_end() -> None:
    script = 'addflag "\\\\Seen";\nif true { addflag "Junk"; }\nremoveflag "\\\\seen";'
    assert flags_of(script) == [Keep(frozenset({"Junk"}))]


def test_rfc5232_invalid_flags_are_ignored() -> None:
    script = (
        'addflag ["\\\\Recent", "\\\\Unknown", "bad(flag", "bad*", "caf\u00e9", "ok",'
        ' "\\\\SEEN", "x]y", "%p", "{q"];'
    )
    assert flags_of(script) == [Keep(frozenset({"ok", "\\Seen"}))]
    assert flags_of('keep :flags ["\\\\Recent", "$Forwarded"];') == [
        Keep(frozenset({"$Forwarded"}))
    ]


def test_rfc5232_last_flag_list_wins_on_duplicates() -> None:
    script = (
        'fileinto :flags "a" "box";\nfileinto :flags "b" "box";\nkeep :flags "c";\nkeep :flags "d";'
    )
    assert flags_of(script) == [FileInto("box", frozenset({"b"})), Keep(frozenset({"d"}))]


def test_rfc5232_extended_example_with_variables() -> None:
    # RFC 5232 section 6, the flag parts of the example (the rest needs "relational").
    script = (
        "#\n# Example Sieve Filter\n# Declare any optional features or extension used by the"
        ' script\n#\nrequire ["fileinto", "imap4flags", "variables"];\n'
        '#\nif size :over 1 { addflag "MyFlags" "Big"; }\n'
        'if header :contains "From" "coyote" { addflag "MyFlags" "Boss"; }\n'
        'if hasflag "MyFlags" "Boss" { fileinto :flags "${MyFlags}" "Boss"; }'
    )
    assert run(script) == [FileInto("Boss", frozenset({"Big", "Boss"}))]


def test_imap4flags_not_required_means_no_flags() -> None:
    assert run("keep;") == [Keep()]
