"""access map: values, tags, sendmail's search order, SKIP, default REJECT texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mda.maps.access import (
    RCPT_REJECT_DEFAULT,
    REJECT_DEFAULT,
    AccessMap,
    _domain_walk,
    _net_walk,
    makemap,
    parse_value,
)
from mda.maps.errors import Refusal


def access(tmp_path: Path, text: str) -> AccessMap:
    path = tmp_path / "access"
    path.write_text(text)
    return AccessMap(str(path))


def action(decision: object) -> str | None:
    return None if decision is None else decision.action  # type: ignore[attr-defined]


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tag", "act", "reply"),
    [
        ("OK", "From", "OK", None),
        ("ok", "From", "OK", None),
        ("RELAY", "To", "RELAY", None),
        ("DISCARD", "From", "DISCARD", None),
        ("SKIP", "Connect", "SKIP", None),
        ("REJECT", "From", "REJECT", "550 5.7.1 Access denied"),
        ("REJECT", "Connect", "REJECT", "550 5.7.1 Access denied"),
        ("REJECT", "To", "REJECT", "550 5.2.1 Mailbox disabled for this recipient"),
        ('ERROR:"550 We don\'t accept mail from spammers"', "From", "ERROR",
         "550 5.0.0 We don't accept mail from spammers"),
        ('ERROR:5.7.1:"550 go away"', "From", "ERROR", "550 5.7.1 go away"),
        ("ERROR:5.7.1:550 go away", "From", "ERROR", "550 5.7.1 go away"),
        ("ERROR:550 5.7.0 in the text", "From", "ERROR", "550 5.7.0 in the text"),
        ("ERROR:450 try later", "From", "ERROR", "450 4.0.0 try later"),
        ('ERROR:4.7.1:"451 greylisted"', "To", "ERROR", "451 4.7.1 greylisted"),
        ("error:5.1.1:550 gone", "To", "ERROR", "550 5.1.1 gone"),
        ("550 legacy form", "From", "ERROR", "550 5.0.0 legacy form"),
        ("FRIEND", "Spam", "ERROR", "550 5.0.0 FRIEND"),
    ],
)  # fmt: skip
def test_parse_value(value: str, tag: str, act: str, reply: str | None) -> None:
    d = parse_value(value, tag)
    assert d.action == act
    assert (d.refusal.reply if d.refusal else None) == reply


def test_permanent_and_temporary() -> None:
    assert parse_value("REJECT", "From").permanent
    assert parse_value("ERROR:550 no", "From").permanent
    temp = parse_value("ERROR:451 later", "From")
    assert temp.temporary and not temp.permanent
    for word in ("OK", "RELAY", "DISCARD", "SKIP", "QUARANTINE:x"):
        d = parse_value(word, "From")
        assert not d.permanent and not d.temporary and d.refusal is None


def test_quarantine() -> None:
    d = parse_value("QUARANTINE:Mail from suspicious host", "Connect")
    assert d.action == "QUARANTINE" and d.text == "Mail from suspicious host"


def test_default_reject_texts() -> None:
    assert (REJECT_DEFAULT.code, REJECT_DEFAULT.dsn, REJECT_DEFAULT.text) == (
        "550",
        "5.7.1",
        "Access denied",
    )
    rcpt = RCPT_REJECT_DEFAULT
    assert rcpt.reply == "550 5.2.1 Mailbox disabled for this recipient"


# --- search order ----------------------------------------------------------------------------


def test_sender_order_full_then_user_then_domain(tmp_path: Path) -> None:
    lines = ["From:bob@x.example REJECT", "From:bob@ OK", "From:x.example DISCARD"]
    for i, want in enumerate(["REJECT", "OK", "DISCARD"]):
        m = access(tmp_path, "\n".join(lines[i:]) + "\n")
        assert action(m.check_sender("bob@x.example")) == want
    assert access(tmp_path, "From:other OK\n").check_sender("bob@x.example") is None


def test_full_address_beats_its_domain(tmp_path: Path) -> None:
    m = access(tmp_path, "From:x.example REJECT\nFrom:bob@x.example OK\n")
    assert action(m.check_sender("bob@x.example")) == "OK"
    assert action(m.check_sender("eve@x.example")) == "REJECT"


def test_parent_domains(tmp_path: Path) -> None:
    m = access(
        tmp_path,
        "From:cyberspammer.example REJECT\nFrom:okay.cyberspammer.example OK\nFrom:tld REJECT\n",
    )
    assert action(m.check_sender("a@cyberspammer.example")) == "REJECT"
    assert action(m.check_sender("a@mail.cyberspammer.example")) == "REJECT"
    assert action(m.check_sender("a@okay.cyberspammer.example")) == "OK"
    assert action(m.check_sender("a@b.okay.cyberspammer.example")) == "OK"
    assert action(m.check_sender("a@anything.tld")) == "REJECT"
    assert action(m.check_sender("a@x.tld.")) == "REJECT"
    assert m.check_sender("a@example") is None
    decision = m.check_sender("a@mail.cyberspammer.example")
    assert decision is not None and decision.key == "from:cyberspammer.example"


def test_domain_walk_and_net_walk() -> None:
    assert _domain_walk("sub.example.com") == ["sub.example.com", "example.com", "com"]
    assert _domain_walk("[192.168.1.7]") == ["[192.168.1.7]", "[192.168.1]", "[192.168]", "[192]"]
    assert _net_walk("10.1.2.3") == ["10.1.2.3", "10.1.2", "10.1", "10"]
    assert _net_walk("ipv6:1:2::3") == ["ipv6:1:2::3", "ipv6:1:2", "ipv6:1"]


def test_detail_forms(tmp_path: Path) -> None:
    m = access(tmp_path, "From:bob+news@x.example OK\nFrom:bob+*@x.example DISCARD\n")
    assert action(m.check_sender("bob+news@x.example")) == "OK"
    assert action(m.check_sender("bob+other@x.example")) == "DISCARD"
    assert action(m.check_sender("bob+@x.example")) == "DISCARD"
    assert m.check_sender("bob@x.example") is None
    m = access(tmp_path, "From:bob@x.example REJECT\n")
    assert action(m.check_sender("bob+any@x.example")) == "REJECT"
    m = access(tmp_path, "From:bob+*@ REJECT\nFrom:carol@ OK\n")
    assert action(m.check_sender("bob+y@anywhere.example")) == "REJECT"
    assert action(m.check_sender("carol+z@anywhere.example")) == "OK"


def test_tagged_before_untagged_and_untagged_applies_to_all(tmp_path: Path) -> None:
    m = access(tmp_path, "bob@x.example REJECT\nFrom:bob@x.example OK\nlegacy.example 550 no\n")
    assert action(m.check_sender("bob@x.example")) == "OK"
    assert action(m.check_recipient("bob@x.example")) == "REJECT"
    sender = m.check_sender("a@legacy.example")
    assert sender is not None and sender.permanent and sender.key == "legacy.example"
    assert action(m.check_recipient("a@legacy.example")) == "ERROR"
    assert action(m.check_connect("mx.legacy.example", None)) == "ERROR"
    assert m.search("From", [("D", "legacy.example")], untagged=False) is None


def test_tags_are_kept_apart(tmp_path: Path) -> None:
    m = access(tmp_path, "To:bob@x.example REJECT\nConnect:x.example REJECT\n")
    assert m.check_sender("bob@x.example") is None
    assert action(m.check_recipient("bob@x.example")) == "REJECT"


def test_keys_are_case_insensitive(tmp_path: Path) -> None:
    m = access(tmp_path, "FROM:Spammer@AOL.example REJECT\n")
    assert action(m.check_sender("spammer@aol.EXAMPLE")) == "REJECT"


def test_recipient_checks(tmp_path: Path) -> None:
    text = "To:off@local.example REJECT\nTo:full@ ERROR:4.2.2:450 mailbox full\nTo:bad.example OK\n"
    m = access(tmp_path, text)
    off = m.check_recipient("<off@local.example>")
    assert off is not None and off.refusal == RCPT_REJECT_DEFAULT
    full = m.check_recipient("full@local.example")
    assert full is not None and full.temporary
    assert full.refusal == Refusal("450", "4.2.2", "mailbox full")
    # the user@ step is for our own domains only (blacklist_recipients)
    assert m.check_recipient("full@remote.example", local=False) is None
    assert action(m.check_recipient("x@sub.bad.example")) == "OK"
    assert full.key == "to:full@"


def test_sender_special_cases(tmp_path: Path) -> None:
    m = access(tmp_path, "From:bob@ REJECT\n")
    assert m.check_sender("<>") is None  # RFC 1123: the null sender is always accepted
    assert m.check_sender("") is None
    assert action(m.check_sender("bob")) == "REJECT"  # unqualified: only the user@ key
    assert action(m.check_sender("<bob@anywhere.example>")) == "REJECT"


# --- SKIP --------------------------------------------------------------------------------------


def test_skip_in_a_domain_stops_the_walk(tmp_path: Path) -> None:
    m = access(tmp_path, "From:sub.example.com SKIP\nFrom:example.com REJECT\n")
    assert m.check_sender("a@sub.example.com") is None
    assert m.check_sender("a@deeper.sub.example.com") is None
    assert action(m.check_sender("a@other.example.com")) == "REJECT"


def test_skip_on_an_address_means_no_decision(tmp_path: Path) -> None:
    m = access(tmp_path, "From:a@sub.example.com SKIP\nFrom:example.com REJECT\n")
    assert m.check_sender("a@sub.example.com") is None
    assert action(m.check_sender("b@sub.example.com")) == "REJECT"


def test_connect_checks_name_then_address(tmp_path: Path) -> None:
    # cf/README's own example
    text = (
        "Connect:sendmail.example RELAY\n"
        "Connect:128.32 RELAY\n"
        "Connect:128.32.2 SKIP\n"
        "Connect:IPv6:1:2:3:4:5:6:7 RELAY\n"
        "Connect:suspicious.example QUARANTINE:Mail from suspicious host\n"
        "Connect:skipped.example SKIP\n"
        "Connect:10.1 REJECT\n"
    )
    m = access(tmp_path, text)
    assert action(m.check_connect("mx.sendmail.example", "192.0.2.1")) == "RELAY"
    assert action(m.check_connect(None, "128.32.7.1")) == "RELAY"
    assert m.check_connect(None, "128.32.2.9") is None
    assert action(m.check_connect(None, "IPv6:1:2:3:4:5:6:7:8")) == "RELAY"
    q = m.check_connect("host.suspicious.example", None)
    assert q is not None and q.action == "QUARANTINE"
    # SKIP on the name ends that walk only: the IP address is still looked up
    assert action(m.check_connect("a.skipped.example", "10.1.2.3")) == "REJECT"
    assert m.check_connect(None, None) is None


# --- explain, index ----------------------------------------------------------------------------


def test_explain(tmp_path: Path) -> None:
    m = access(tmp_path, "From:example.com REJECT\n")
    lines = m.explain("From", "bob@sub.example.com")
    assert lines[0] == f"From:bob@sub.example.com: lookup in {m.path}"
    assert "  F From:bob@sub.example.com: no entry" in lines
    assert "  U From:bob@: no entry" in lines
    assert "  D From:example.com: REJECT" in lines
    assert lines[-1] == (
        "From:bob@sub.example.com: REJECT 550 5.7.1 Access denied (key from:example.com: REJECT)"
    )
    assert m.explain("To", "x@y.example")[-1].endswith("no entry: default action")


def test_lookup_raw(tmp_path: Path) -> None:
    m = access(tmp_path, "From:a@b OK\nc@d REJECT\n")
    assert m.lookup("From", "A@B") == ("from:a@b", "OK")
    assert m.lookup("From", "c@d") == ("c@d", "REJECT")
    assert m.lookup("From", "c@d", untagged=False) is None


def test_makemap_and_index(tmp_path: Path) -> None:
    path = tmp_path / "access"
    path.write_text("From:a@b OK\nFrom:a@b REJECT\n")
    built = makemap(str(path))
    assert len(built.table) == 1 and built.warnings
    m = AccessMap(str(path))
    assert m.map.origin == "index"
    assert action(m.check_sender("a@b")) == "OK"  # makemap keeps the first
