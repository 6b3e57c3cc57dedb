"""Refusals and the error-spec grammar shared by aliases, virtusertable and access."""

from __future__ import annotations

import pytest

from mda.maps.errors import (
    EX_TEMPFAIL,
    MapError,
    Refusal,
    dequote,
    is_dsn,
    make_refusal,
    parse_error_spec,
    split_reply,
)


def test_map_error_is_a_temporary_failure() -> None:
    err = MapError("/etc/aliases", "Permission denied")
    assert err.exit_status == EX_TEMPFAIL == 75
    assert err.path == "/etc/aliases"
    assert str(err) == "/etc/aliases: Permission denied"


def test_refusal_permanent_and_temporary() -> None:
    perm = Refusal("550", "5.1.1", "User unknown")
    temp = Refusal("451", "4.3.0", "Try later")
    assert perm.permanent and not perm.temporary
    assert temp.temporary and not temp.permanent
    assert perm.reply == "550 5.1.1 User unknown" == str(perm)
    assert perm == Refusal("550", "5.1.1", "User unknown")
    assert hash(perm) == hash(Refusal("550", "5.1.1", "User unknown"))
    assert perm != temp


@pytest.mark.parametrize(
    ("spec", "reply"),
    [
        # cf/README's two examples
        ("nouser 550 No such user here", "550 5.1.1 No such user here"),
        ("5.7.0:550 Address invalid", "550 5.7.0 Address invalid"),
        # the forms of the brief and of mailertable
        ("5.1.1:550 no such user", "550 5.1.1 no such user"),
        ("nouser text", "550 5.1.1 text"),
        ("nouser:text", "550 5.1.1 text"),
        ("550 no such user", "550 5.0.0 no such user"),
        ("67 gone", "550 5.1.1 gone"),
        ("nouser", "550 5.1.1 User unknown"),
        ("NOUSER Gone", "550 5.1.1 Gone"),
        ("User unknown here", "550 5.0.0 User unknown here"),
        ('5.1.1:"550 quoted, text"', "550 5.1.1 quoted, text"),
        ("550 5.1.2 host gone", "550 5.1.2 host gone"),
        # temporary ones
        ("4.2.2:450 mailbox full", "450 4.2.2 mailbox full"),
        ("tempfail", "451 4.0.0 Deferred"),
        ("451 later", "451 4.0.0 later"),
        ("4.3.0:try later", "450 4.3.0 try later"),
        # a DSN of another class than the code is not kept
        ("5.1.1:450 mixed", "450 4.0.0 mixed"),
    ],
)
def test_parse_error_spec(spec: str, reply: str) -> None:
    assert parse_error_spec(spec).reply == reply


def test_attack_unicode_digits_in_an_error_spec() -> None:
    # fuzz maps_aliases found "error:5.1.²0 gone" taken as a DSN: "²".isdigit() is true.
    assert not is_dsn("5.1.²0") and not is_dsn("5.\u0661.1")
    assert parse_error_spec("5.1.²0:550 gone").reply == "550 5.0.0 5.1.²0:550 gone"
    assert parse_error_spec("55²:gone").permanent


def test_parse_error_spec_temporary_flags() -> None:
    assert parse_error_spec("tempfail x").temporary
    assert parse_error_spec("nouser x").permanent


def test_split_reply() -> None:
    assert split_reply("550 5.1.1 No such user") == ("550", "5.1.1", "No such user")
    assert split_reply("550-continued") == (None, None, "550-continued")
    assert split_reply("550- text") == ("550", None, "text")
    assert split_reply('"451 4.3.0 later"') == ("451", "4.3.0", "later")
    assert split_reply("just text") == (None, None, "just text")
    assert split_reply("250 not a refusal") == (None, None, "250 not a refusal")


def test_make_refusal_fills_missing_parts() -> None:
    assert make_refusal(None, "4.2.2", "full").reply == "450 4.2.2 full"
    assert make_refusal(None, "5.7.1", "no").reply == "550 5.7.1 no"
    assert make_refusal("554", None, "no").reply == "554 5.0.0 no"
    assert make_refusal(None, None, "no").reply == "550 5.0.0 no"
    assert make_refusal(None, None, "no", default_code="553").reply == "553 5.0.0 no"


def test_is_dsn_and_dequote() -> None:
    assert is_dsn("5.1.1") and is_dsn("4.7.100") and is_dsn("2.0.0")
    assert not is_dsn("5.1") and not is_dsn("6.1.1") and not is_dsn("5.a.1")
    assert not is_dsn("55.1.1") and not is_dsn("5.1.1000")
    assert dequote('"a \\"b\\" c"') == 'a "b" c'
    assert dequote("plain") == "plain"
    assert dequote('"') == '"'
