"""virtusertable: sendmail 8.17's key order, %1/%2/%3, error: values, recursion."""

from __future__ import annotations

from pathlib import Path

import pytest

from mda.maps.errors import Refusal
from mda.maps.makemap import parse_makemap
from mda.maps.virtusertable import VirtUserTable, candidates, makemap, rewrite

ALL_FORMS = [
    ("bob+work@example.com", "exact-%1-%2-%3"),
    ("bob++@example.com", "plusplus-%1-%2-%3"),
    ("bob+*@example.com", "plusstar-%1-%2-%3"),
    ("bob@example.com", "user-%1-%2-%3"),
    ("++@example.com", "anyplusplus-%1-%2-%3"),
    ("+*@example.com", "anyplusstar-%1-%2-%3"),
    ("@example.com", "domain-%1-%2-%3"),
]


def table(tmp_path: Path, entries: list[tuple[str, str]] | str) -> VirtUserTable:
    if not isinstance(entries, str):
        entries = "".join(f"{k}\t{v}\n" for k, v in entries)
    path = tmp_path / "virtusertable"
    path.write_text(entries)
    return VirtUserTable(str(path))


def result(t: VirtUserTable, address: str) -> str | None:
    m = t.lookup(address)
    return None if m is None else m.result


def test_precedence_with_a_detail(tmp_path: Path) -> None:
    # Remove the winning key each time: the next one in sendmail's order must take over.
    expected = [
        "exact-bob+work--",  # exact hit: only %1, the whole local part
        "plusplus-bob-work-+work",
        "plusstar-bob-work-+work",
        "user-bob-work-+work",
        "anyplusplus-bob-work-+work",
        "anyplusstar-bob-work-+work",
        "domain-bob-work-+work",
    ]
    for i, want in enumerate(expected):
        t = table(tmp_path, ALL_FORMS[i:])
        m = t.lookup("bob+work@example.com")
        assert m is not None
        assert (m.key, m.result) == (ALL_FORMS[i][0], want)
    assert table(tmp_path, [("other@example.com", "x")]).lookup("bob+work@example.com") is None


def test_empty_detail_skips_the_plusplus_keys(tmp_path: Path) -> None:
    # `bob+@`: a `+` but nothing after it. `++` needs a detail ($+ + $+), `+*` does not.
    order = [k for k, _, _ in candidates("bob+@example.com")]
    assert order == [
        "bob+@example.com",
        "bob+*@example.com",
        "bob@example.com",
        "+*@example.com",
        "@example.com",
    ]
    t = table(tmp_path, ALL_FORMS[1:])
    assert result(t, "bob+@example.com") == "plusstar-bob--+"
    t = table(tmp_path, [("bob++@example.com", "pp"), ("++@example.com", "app")])
    assert t.lookup("bob+@example.com") is None


def test_address_without_detail_tries_only_user_then_domain(tmp_path: Path) -> None:
    assert [k for k, _, _ in candidates("bob@example.com")] == ["bob@example.com", "@example.com"]
    t = table(tmp_path, ALL_FORMS)
    assert result(t, "bob@example.com") == "user-bob--"
    t = table(tmp_path, ALL_FORMS[:3] + ALL_FORMS[4:])  # no bob@example.com
    assert result(t, "bob@example.com") == "domain-bob--"
    only_detail_keys = [
        ("bob+*@example.com", "a"),
        ("+*@example.com", "b"),
        ("++@example.com", "c"),
    ]
    assert table(tmp_path, only_detail_keys).lookup("bob@example.com") is None


def test_plus_at_the_start_is_not_a_detail(tmp_path: Path) -> None:
    assert [k for k, _, _ in candidates("+bob@example.com")] == [
        "+bob@example.com",
        "@example.com",
    ]
    t = table(tmp_path, ALL_FORMS)
    assert result(t, "+bob@example.com") == "domain-+bob--"


def test_detail_with_more_plus_signs_splits_at_the_first(tmp_path: Path) -> None:
    t = table(tmp_path, ALL_FORMS[2:])
    assert result(t, "bob+a+b@example.com") == "plusstar-bob-a+b-+a+b"


def test_case_insensitive_keys_case_kept_in_arguments(tmp_path: Path) -> None:
    t = table(tmp_path, [("BOB+*@Example.COM", "%1+%2@dest.example")])
    m = t.lookup("Bob+Work@EXAMPLE.com.")
    assert m is not None
    assert m.key == "bob+*@example.com"
    assert m.result == "Bob+Work@dest.example"


def test_domain_rewrite_keeps_the_user(tmp_path: Path) -> None:
    t = table(tmp_path, [("@old.example", "%1%3@new.example")])
    assert result(t, "alice@old.example") == "alice@new.example"
    assert result(t, "alice+x@old.example") == "alice+x@new.example"


def test_rewrite_escapes() -> None:
    assert rewrite("%1-%2-%3-%9", ("a", "b"), "k") == "a-b--"
    assert rewrite("100%% of %0", (), "key@x") == "100% of key@x"
    assert rewrite("%x and %", (), "k") == "%x and %"


def test_error_values(tmp_path: Path) -> None:
    t = table(
        tmp_path,
        [
            ("joe@bar.example", "error:nouser 550 No such user here"),
            ("jax@bar.example", "error:5.7.0:550 Address invalid"),
            ("@spam.example", "error:5.7.1:550 %1 is not wanted"),
            ("full@bar.example", "ERROR:4.2.2:450 mailbox full"),
        ],
    )
    m = t.lookup("joe@bar.example")
    assert m is not None and m.refusal == Refusal("550", "5.1.1", "No such user here")
    assert not m.is_local and m.result == ""
    m = t.lookup("jax@bar.example")
    assert m is not None and m.refusal == Refusal("550", "5.7.0", "Address invalid")
    m = t.lookup("eve@spam.example")
    assert m is not None and m.refusal == Refusal("550", "5.7.1", "eve is not wanted")
    m = t.lookup("full@bar.example")
    assert m is not None and m.refusal is not None and m.refusal.temporary


def test_local_and_remote_results(tmp_path: Path) -> None:
    t = table(tmp_path, [("info@v.example", "bob"), ("sales@v.example", "carol@other.example")])
    local = t.lookup("info@v.example")
    remote = t.lookup("sales@v.example")
    assert local is not None and local.is_local
    assert remote is not None and not remote.is_local


@pytest.mark.parametrize("address", ["bob", "", "@example.com", "bob@"])
def test_not_an_address(tmp_path: Path, address: str) -> None:
    t = table(tmp_path, ALL_FORMS)
    assert t.lookup(address) is None
    assert candidates(address) == []


def test_resolve_follows_virtual_results(tmp_path: Path) -> None:
    t = table(
        tmp_path,
        [
            ("info@v.example", "sales@v.example"),
            ("sales@v.example", "bob"),
            ("ext@v.example", "x@remote.example"),
        ],
    )
    hops = t.resolve("info@v.example")
    assert [h.result for h in hops] == ["sales@v.example", "bob"]
    assert hops[-1].is_local
    assert [h.result for h in t.resolve("ext@v.example")] == ["x@remote.example"]
    assert t.resolve("nobody@else.example") == []


@pytest.mark.parametrize(
    "entries",
    [
        [("a@v.example", "b@v.example"), ("b@v.example", "a@v.example")],
        [("a@v.example", "a@v.example")],
        [("@v.example", "%1@v.example")],
    ],
)
def test_resolve_breaks_loops(tmp_path: Path, entries: list[tuple[str, str]]) -> None:
    hops = table(tmp_path, entries).resolve("a@v.example")
    last = hops[-1]
    assert last.refusal is not None and last.refusal.dsn == "5.4.6"
    assert last.refusal.text.startswith("virtusertable loop: a@v.example")


def test_resolve_hop_limit(tmp_path: Path) -> None:
    t = table(tmp_path, [(f"u{i}@v.example", f"u{i + 1}@v.example") for i in range(20)])
    hops = t.resolve("u0@v.example", max_hops=5)
    assert len(hops) == 6
    assert hops[-1].refusal is not None and hops[-1].refusal.code == "554"


def test_explain(tmp_path: Path) -> None:
    t = table(tmp_path, [("bob+*@example.com", "%1-box"), ("@example.com", "catchall")])
    lines = t.explain("bob+x@example.com")
    assert lines[1:] == [
        "  bob+x@example.com: no entry",
        "  bob++@example.com: no entry",
        "  bob+*@example.com: %1-box (this user with any +detail)",
        "bob+x@example.com: matched bob+*@example.com (this user with any +detail)"
        " -> local name bob-box",
    ]
    assert t.explain("zed@nowhere.example")[-1] == "zed@nowhere.example: no virtusertable entry"
    assert "not a user@domain address" in t.explain("bob")[0]


def test_makemap_format_and_duplicates() -> None:
    text = (
        "# comment\n\nA@x.example\tone two\nb@x.example    b\na@x.example second\n  bad\nnovalue\n"
    )
    entries, warnings = parse_makemap(text, "vt")
    assert entries == [("a@x.example", "one two"), ("b@x.example", "b")]
    assert warnings == [
        "vt: line 5: key a@x.example: duplicate key (first kept)",
        "vt: line 6: syntax error: leading white space",
        "vt: line 7: no RHS for LHS novalue",
    ]


def test_makemap_rebuild_and_index_reuse(tmp_path: Path) -> None:
    path = tmp_path / "virtusertable"
    path.write_text("a@x.example b\n")
    built = makemap(str(path))
    assert built.origin == "rebuilt" and len(built.table) == 1
    t = VirtUserTable(str(path))
    assert t.map.origin == "index"
    assert result(t, "a@x.example") == "b"


def test_fuzz_percent_and_a_unicode_digit_is_no_argument() -> None:
    """Found by fuzz/maps_virtusertable.py: `%²` made int() raise (str.isdigit() is true for
    `²`) and every address the entry matched failed to resolve. sendmail's map_rewrite()
    takes ASCII digits only; anything else after `%` is copied as it is."""
    assert rewrite("x-%\u00b2-%1", ("a",), "k") == "x-%\u00b2-a"
    assert rewrite("%\u0661", ("a",), "k") == "%\u0661"
