"""Folder names: modified UTF-7 (RFC 3501 5.1.3) and the Maildir++ directory mapping."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailstore.errors import ErrorKind, InvalidName
from mailstore.names import (
    MAX_COMPONENT_OCTETS,
    MAX_NAME_OCTETS,
    SEPARATOR,
    decode_mutf7,
    encode_mutf7,
    folder_dirname,
    is_inside,
    name_from_dirname,
    validate_name,
)

# Any text without surrogate code points (those have no UTF-16 form).
no_surrogates = st.text(st.characters(exclude_categories=["Cs"]))

# --- modified UTF-7 -----------------------------------------------------------------------------

EXAMPLES = [
    ("", ""),
    ("INBOX", "INBOX"),
    ("&", "&-"),
    ("A&B", "A&-B"),
    ("&&", "&-&-"),
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
    ("Entwürfe", "Entw&APw-rfe"),
    ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
    ("Черновики", "&BCcENQRABD0EPgQyBDgEOgQ4-"),
    ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),  # ',' where base64 has '/'
    ("😀", "&2D3eAA-"),  # astral: a surrogate pair in UTF-16
    ("a😀b🎉", "a&2D3eAA-b&2DzfiQ-"),
    ("ä&ö", "&AOQ-&-&APY-"),  # "&-" right after a run is the escaped '&', not a second run
    ("\t", "&AAk-"),  # control characters are encoded, not passed through
    ("\x7f", "&AH8-"),
]


@pytest.mark.parametrize(("text", "encoded"), EXAMPLES)
def test_encode_examples(text: str, encoded: str) -> None:
    assert encode_mutf7(text) == encoded


@pytest.mark.parametrize(("text", "encoded"), EXAMPLES)
def test_decode_examples(text: str, encoded: str) -> None:
    assert decode_mutf7(encoded) == text


def test_rfc3501_example() -> None:
    assert decode_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"


INVALID_MUTF7 = [
    # (encoded, fragment of the error message)
    ("&", "without closing"),
    ("abc&AGE", "without closing"),
    ("&U,BTFw", "without closing"),
    ("&AG!-", "not a modified BASE64 character"),
    ("&AG/-", "not a modified BASE64 character"),  # '/' is plain base64, modified uses ','
    ("&AGE=-", "not a modified BASE64 character"),  # no padding in modified BASE64
    ("&AOR-", "non-zero bits"),  # &AOQ- is the correct spelling of U+00E4
    ("&A-", "truncated"),  # one character: 6 bits, no octet
    ("&AOQA5-", "truncated"),  # a whole extra character after U+00E4
    ("&AOQA-", "odd number of UTF-16 octets"),  # three octets
    ("&AGE-", "printable US-ASCII"),  # 'a' must represent itself
    ("&ACY-", "printable US-ASCII"),  # '&' is written "&-"
    ("&AGEA5A-", "printable US-ASCII"),  # 'a' inside a run with U+00E4
    ("&AOQ-&APY-", "two adjacent"),  # should have been the single run &AOQA9g-
    ("&AGE-&AGE-", "printable US-ASCII"),  # (adjacent too, but the first run is already bad)
    ("&2D0-", "unpaired"),  # lone high surrogate
    ("&3gA-", "unpaired"),  # lone low surrogate
    ("&2D3YPQ-", "unpaired"),  # high surrogate followed by high surrogate
    ("&3gDYPQ-", "unpaired"),  # low before high
    ("ä", "outside printable US-ASCII"),  # raw non-ASCII is never in the encoded form
    ("a\tb", "outside printable US-ASCII"),
    ("a\x7fb", "outside printable US-ASCII"),
]


@pytest.mark.parametrize(("encoded", "reason"), INVALID_MUTF7)
def test_decode_rejects(encoded: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason) as info:
        decode_mutf7(encoded)
    assert info.value.kind is ErrorKind.INVALID_NAME


def test_escaped_ampersand_after_a_run_is_not_a_second_run() -> None:
    assert decode_mutf7("&AOQ-&-") == "ä&"
    assert decode_mutf7("&AOQA9g-") == "äö"


def test_encode_refuses_lone_surrogate() -> None:
    with pytest.raises(InvalidName):
        encode_mutf7("a\ud800b")


@given(no_surrogates)
def test_mutf7_round_trip(text: str) -> None:
    encoded = encode_mutf7(text)
    assert all(0x20 <= ord(c) <= 0x7E for c in encoded)
    assert decode_mutf7(encoded) == text


@given(no_surrogates)
def test_mutf7_encoding_is_canonical(text: str) -> None:
    # Decoding is strict, so re-encoding what decodes gives back the very same string.
    encoded = encode_mutf7(text)
    assert encode_mutf7(decode_mutf7(encoded)) == encoded


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_decode_never_crashes_on_printable_ascii(s: str) -> None:
    try:
        text = decode_mutf7(s)
    except InvalidName:
        return
    assert encode_mutf7(text) == s


# --- validate_name ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["INBOX", "inbox", "Inbox", "iNbOx"])
def test_inbox_is_case_insensitive(name: str) -> None:
    assert validate_name(name) == "INBOX"


@pytest.mark.parametrize(
    "name",
    ["inbox.x", "INBOX.x", "Sent", "A.B.C", "Entwürfe", "Черновики", "😀.🎉", "a&b", "back\\slash"],
)
def test_valid_names_keep_their_case(name: str) -> None:
    assert validate_name(name) == name


def test_dotless_i_is_not_inbox() -> None:
    # str.upper() maps U+0131 to 'I'; RFC 3501's case-insensitivity is about ASCII only.
    assert validate_name("ınbox") == "ınbox"


INVALID_NAMES = [
    # (name, fragment of the error message)
    ("", "empty name"),
    (".", "empty hierarchy level"),
    (".A", "empty hierarchy level"),  # leading separator
    ("A.", "empty hierarchy level"),  # trailing separator
    ("A..B", "empty hierarchy level"),  # two separators in a row
    ("A/B", "'/'"),
    ("/etc", "'/'"),
    ("../x", "'/'"),
    ("A\x00B", "control characters"),
    ("A\nB", "control characters"),
    ("A\x1fB", "control characters"),
    ("A\x7fB", "control characters"),
    ("~peter", "'~'"),
    ("A%", "wildcards"),
    ("*", "wildcards"),
    ("A\ud800", "unpaired surrogate"),
    ("x" * (MAX_COMPONENT_OCTETS + 1), "hierarchy level is too long"),
    ("ü" * 80, "hierarchy level is too long"),  # 80 characters, 216 octets encoded
    (SEPARATOR.join(["x" * 100] * 3), "name too long"),
]


@pytest.mark.parametrize(("name", "reason"), INVALID_NAMES)
def test_validate_name_refuses(name: str, reason: str) -> None:
    with pytest.raises(InvalidName, match=reason) as info:
        validate_name(name)
    assert info.value.message.startswith("invalid mailbox name: ")
    assert info.value.kind is ErrorKind.INVALID_NAME


def test_tilde_allowed_inside() -> None:
    assert validate_name("A.~b") == "A.~b"
    assert validate_name("a~") == "a~"


def test_wildcards_allowed_for_existing_names() -> None:
    assert validate_name("50%", create=False) == "50%"
    assert validate_name("*", create=False) == "*"
    with pytest.raises(InvalidName):
        validate_name("A/B", create=False)


def test_length_limits_at_the_boundary() -> None:
    assert validate_name("x" * MAX_COMPONENT_OCTETS)
    longest = SEPARATOR.join(["x" * 200, "y" * (MAX_NAME_OCTETS - 1 - 201)])
    assert len(folder_dirname(longest)) == MAX_NAME_OCTETS
    with pytest.raises(InvalidName):
        validate_name(longest + "z")


# --- directory mapping --------------------------------------------------------------------------

DIRNAMES = [
    ("INBOX", ""),
    ("Sent", ".Sent"),
    ("A.B", ".A.B"),
    ("inbox.x", ".inbox.x"),
    ("Entwürfe", ".Entw&APw-rfe"),
    ("Archiv.Entwürfe", ".Archiv.Entw&APw-rfe"),
    ("Черновики", ".&BCcENQRABD0EPgQyBDgEOgQ4-"),
    ("😀", ".&2D3eAA-"),
    ("Tom & Jerry", ".Tom &- Jerry"),
]


@pytest.mark.parametrize(("name", "dirname"), DIRNAMES)
def test_folder_dirname(name: str, dirname: str) -> None:
    assert folder_dirname(name) == dirname


@pytest.mark.parametrize(("name", "dirname"), DIRNAMES[1:])
def test_name_from_dirname(name: str, dirname: str) -> None:
    assert name_from_dirname(dirname) == name


def test_folder_dirname_canonicalises_inbox() -> None:
    assert folder_dirname("inbox") == ""


def test_folder_dirname_validates() -> None:
    with pytest.raises(InvalidName):
        folder_dirname("A..B")
    with pytest.raises(InvalidName):
        folder_dirname("../../etc")


@pytest.mark.parametrize(
    "dirname",
    [
        "",
        ".",
        "..",
        "cur",
        "new",
        "tmp",
        "maildirsize",
        "dovecot-uidlist",
        "Sent",  # no leading '.'
        "..Sent",  # empty first level
        ".Sent.",  # empty last level
        ".A..B",
        ".&AGE-",  # not valid modified UTF-7
        ".&AOQ",
        ".Entwürfe",  # raw UTF-8 on disk is not what Dovecot writes
        ".INBOX",  # would shadow INBOX, which is the root
        ".inbox",
        ".~x",
        ".a\tb",
    ],
)
def test_name_from_dirname_ignores(dirname: str) -> None:
    assert name_from_dirname(dirname) is None


def test_name_from_dirname_lists_wildcard_folders() -> None:
    # Made by another program: still listed, though the store would not create it.
    assert name_from_dirname(".50%") == "50%"


valid_component = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="./%*"),
    min_size=1,
    max_size=8,
).filter(lambda c: not c.startswith("~"))


# At most 4 levels of 8 characters: even all astral (45 octets a level encoded), a name stays
# under the length limits, which have their own tests.
@given(st.lists(valid_component, min_size=1, max_size=4))
def test_dirname_round_trip(components: list[str]) -> None:
    name = SEPARATOR.join(components)
    canonical = validate_name(name)
    dirname = folder_dirname(canonical)
    if canonical == "INBOX":
        assert dirname == ""
        return
    assert dirname.startswith(".")
    assert "/" not in dirname and all(0x20 <= ord(c) <= 0x7E for c in dirname)
    assert name_from_dirname(dirname) == canonical


# --- is_inside ----------------------------------------------------------------------------------


def test_is_inside(tmp_path: object) -> None:
    root = os.path.join(str(tmp_path), "mail")
    assert is_inside(root, root)
    assert is_inside(root, root + "/")
    assert is_inside(root, os.path.join(root, ".Sent", "cur"))
    assert is_inside(root, os.path.join(root, "a", "..", ".Sent"))
    assert not is_inside(root, os.path.join(root, ".."))
    assert not is_inside(root, os.path.join(root, "..", "other"))
    assert not is_inside(root, root + "x")  # a sibling sharing the prefix
    assert not is_inside(root, "/etc/passwd")
    assert not is_inside(root, os.path.join(root, ".Sent", "..", "..", "x"))


def test_is_inside_relative_paths() -> None:
    assert is_inside("mail", "mail/.Sent")
    assert is_inside("mail", os.path.abspath("mail/.Sent"))
    assert not is_inside("mail", "mail/../x")
