"""aliases(5): parsing, expansion, includes, program/file safety, owners, explanations."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from mda.maps.aliases import (
    Aliases,
    Target,
    classify,
    include_targets,
    logical_lines,
    newaliases,
    parse_aliases,
    split_detail,
    split_targets,
)
from mda.maps.errors import MapError, Refusal

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def load(tmp_path: Path, text: str, **kw: object) -> Aliases:
    """An aliases file in tmp_path (below /tmp, a sticky directory: trusted because the entries
    on the way, pytest's, belong to us; see mda.maps.safefile)."""
    return Aliases(str(write(tmp_path / "aliases", text)), **kw)  # type: ignore[arg-type]


def got(targets: list[Target]) -> list[tuple[str, str]]:
    return [(t.kind, t.address) for t in targets]


def refusals(targets: list[Target]) -> list[Refusal]:
    return [t.refusal for t in targets if t.refusal is not None]


# --- parsing ---------------------------------------------------------------------------------


def test_parse_basic_and_case_folding() -> None:
    entries, warnings = parse_aliases("Staff: Bob, alice@Example.org\n", "f")
    assert entries == [("staff", "Bob, alice@Example.org")]
    assert warnings == []


def test_continuation_lines_with_space_tab_and_backslash() -> None:
    text = "list: a,\n  b,\n\tc\nother: d, \\\ne\nlast: f\n"
    entries = dict(parse_aliases(text, "f")[0])
    assert split_targets(entries["list"]) == ["a", "b", "c"]
    assert split_targets(entries["other"]) == ["d", "e"]
    assert entries["last"] == "f"
    assert logical_lines(text)[1] == (4, "other: d, e")


def test_comments_and_blank_lines() -> None:
    text = "# header\n\na: b\n   \n# a: c\nd: e\n"
    entries, warnings = parse_aliases(text, "f")
    assert entries == [("a", "b"), ("d", "e")]
    assert warnings == []


def test_a_comment_ends_an_entry_and_swallows_its_continuation() -> None:
    # contline() joins a space-led line to whatever precedes it, comments included.
    entries, _ = parse_aliases("a: b,\n# note\n  c\n", "f")
    assert entries == [("a", "b,")]


def test_crlf_line_ends() -> None:
    entries, _ = parse_aliases("a: b,\r\n  c\r\nd: e\r\n", "f")
    assert dict(entries) == {"a": "b,  c", "d": "e"}


def test_malformed_lines_are_reported_and_skipped() -> None:
    text = "  leading: x\nnocolon here\nempty:\nbad name: x\nuser@host: x\nok: y\n"
    entries, warnings = parse_aliases(text, "/etc/aliases")
    assert entries == [("ok", "y")]
    assert len(warnings) == 5
    assert warnings[0] == "/etc/aliases: line 1: non-continuation line starts with space"
    assert "missing colon" in warnings[1]
    assert "missing value for alias" in warnings[2]
    assert "illegal alias name" in warnings[3] and "illegal alias name" in warnings[4]


def test_duplicate_name_last_wins_with_warning() -> None:
    entries, warnings = parse_aliases("a: one\nb: x\nA: two\n", "f")
    assert dict(entries) == {"a": "two", "b": "x"}
    assert warnings == ["f: line 3: a... Warning: duplicate alias name a"]


def test_unbalanced_quote_is_reported() -> None:
    _, warnings = parse_aliases('a: "|/bin/x, b\n', "f")
    assert "unbalanced" in warnings[0]


def test_split_targets_respects_quotes_and_escapes() -> None:
    rhs = '"|/usr/bin/prog a, b", bob , "/var/x y",\\,c, ,last'
    assert split_targets(rhs) == ['"|/usr/bin/prog a, b"', "bob", '"/var/x y"', "\\,c", "last"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob", ("local", "bob")),
        ("bob+x", ("local", "bob+x")),
        ("Bob <bob@example.org>", ("remote", "bob@example.org")),
        ("bob@example.org", ("remote", "bob@example.org")),
        ('"john doe"@example.org', ("remote", '"john doe"@example.org')),
        ("|/usr/bin/vacation bob", ("program", "/usr/bin/vacation bob")),
        ('"|/usr/bin/prog a, b"', ("program", "/usr/bin/prog a, b")),
        ("/var/mail/archive", ("file", "/var/mail/archive")),
        ('"/var/mail/my archive"', ("file", "/var/mail/my archive")),
        (":include:/etc/mail/list", ("include", "/etc/mail/list")),
        (":INCLUDE: /etc/mail/list", ("include", "/etc/mail/list")),
        ("error:nouser gone", ("error", "nouser gone")),
        ("ERROR:5.1.1:550 gone", ("error", "5.1.1:550 gone")),
        ("\\bob", ("noalias", "bob")),
        ('"unbalanced', ("invalid", "Unbalanced '\"'")),
        ("two words", ("invalid", "invalid local name")),
        ("@example.org", ("invalid", "invalid address")),
        ("bob@", ("invalid", "invalid address")),
    ],
)
def test_classify(text: str, expected: tuple[str, str]) -> None:
    assert classify(text) == expected


def test_split_detail() -> None:
    assert split_detail("bob+work") == ("bob", "work", True)
    assert split_detail("bob+") == ("bob", "", True)
    assert split_detail("bob") == ("bob", "", False)
    assert split_detail("+bob") == ("+bob", "", False)
    assert split_detail("a+b+c") == ("a", "b+c", True)


def test_include_targets() -> None:
    text = "# members\nbob, carol\n\n  dave  \n# x\n eve@example.org\n"
    assert include_targets(text) == ["bob", "carol", "dave", "eve@example.org"]


# --- expansion -------------------------------------------------------------------------------


def test_plain_user_without_alias(tmp_path: Path) -> None:
    a = load(tmp_path, "x: y\n")
    assert got(a.expand("bob")) == [("local", "bob")]
    assert a.expand("Bob")[0].value == "bob"


def test_recursive_expansion_and_chain(tmp_path: Path) -> None:
    a = load(tmp_path, "staff: admins, carol@example.org\nadmins: bob, alice\n")
    targets = a.expand("staff")
    assert got(targets) == [("local", "bob"), ("local", "alice"), ("remote", "carol@example.org")]
    assert targets[0].chain == ("staff", "admins")
    assert targets[2].chain == ("staff",)
    assert targets[0].origin == a.path


def test_names_are_case_insensitive(tmp_path: Path) -> None:
    a = load(tmp_path, "PostMaster: Root\nroot: bob\n")
    assert got(a.expand("POSTMASTER")) == [("local", "bob")]
    assert a.lookup("postmaster") == "Root"


def test_quoted_program_target_with_comma(tmp_path: Path) -> None:
    a = load(tmp_path, 'bot: "|/usr/bin/prog a, b", bob\n')
    assert got(a.expand("bot")) == [("program", "|/usr/bin/prog a, b"), ("local", "bob")]


def test_self_reference_is_delivered_locally(tmp_path: Path) -> None:
    a = load(tmp_path, "bob: bob, bob@elsewhere.example\n")
    assert got(a.expand("bob")) == [("local", "bob"), ("remote", "bob@elsewhere.example")]


def test_cycle_is_broken_at_the_repeated_name(tmp_path: Path) -> None:
    a = load(tmp_path, "a: b, x\nb: a, y\n")
    targets = a.expand("a")
    assert got(targets) == [("local", "a"), ("local", "y"), ("local", "x")]
    assert targets[0].chain == ("a", "b")


def test_long_cycle(tmp_path: Path) -> None:
    a = load(tmp_path, "a: b\nb: c\nc: d\nd: a\n")
    assert got(a.expand("c")) == [("local", "c")]


def test_shared_member_is_expanded_once(tmp_path: Path) -> None:
    a = load(tmp_path, "all: l1, l2\nl1: m, p1\nl2: m, p2\nm: deep\n")
    assert got(a.expand("all")) == [("local", "deep"), ("local", "p1"), ("local", "p2")]
    assert any("already expanded" in line for line in a.explain("all"))


def test_duplicates_are_removed(tmp_path: Path) -> None:
    text = (
        "team: bob, Bob, bob@example.org, bob@EXAMPLE.org, alice, sub, \\bob\n"
        "sub: bob, alice, carol\n"
    )
    a = load(tmp_path, text)
    assert got(a.expand("team")) == [
        ("local", "bob"),
        ("remote", "bob@example.org"),
        ("local", "alice"),
        ("local", "carol"),
    ]
    assert any("duplicate suppressed" in line for line in a.explain("team"))


def test_different_details_are_different_mailboxes(tmp_path: Path) -> None:
    a = load(tmp_path, "both: bob+a, bob+b, bob+a\n")
    assert got(a.expand("both")) == [("local", "bob+a"), ("local", "bob+b")]


def _chain_file(n: int, last: str = "final") -> str:
    return "".join(f"a{i}: a{i + 1}\n" for i in range(n - 1)) + f"a{n - 1}: {last}\n"


def test_depth_limit_is_ten_like_sendmail(tmp_path: Path) -> None:
    # a0 .. a9 are aliases (10 expansions): a10 arrives at level 10 and is delivered.
    a = load(tmp_path, _chain_file(10, "a10"))
    assert got(a.expand("a0")) == [("local", "a10")]
    # One more alias and the last address is 11 deep: sendmail's "loop broken" error.
    b = load(tmp_path, _chain_file(11, "a11"))
    targets = b.expand("a0")
    assert [t.kind for t in targets] == ["error"]
    assert targets[0].refusal == Refusal(
        "554", "5.4.6", "aliasing/forwarding loop broken (11 aliases deep; 10 max)"
    )


def test_depth_limit_is_configurable(tmp_path: Path) -> None:
    text = _chain_file(11, "a11")
    assert got(load(tmp_path, text, max_depth=20).expand("a0")) == [("local", "a11")]
    targets = load(tmp_path, "a: b\nb: c\nc: d\n", max_depth=2).expand("a")
    assert targets[0].kind == "error" and targets[0].refusal is not None
    assert targets[0].refusal.dsn == "5.4.6"


def test_backslash_user_bypasses_aliasing(tmp_path: Path) -> None:
    a = load(tmp_path, "bob: \\bob, bob@backup.example\ncarol: \\bob\n")
    assert got(a.expand("bob")) == [("local", "bob"), ("remote", "bob@backup.example")]
    assert got(a.expand("carol")) == [("local", "bob")]


def test_attack_backslash_or_quotes_in_the_address_do_not_bypass_aliasing(tmp_path: Path) -> None:
    """`\\user` skips aliasing only on an alias's right-hand side: in the address a sender
    chose it is RFC 5321 quoting, and `\\bob`, `"bob"` are `bob`, aliased like it."""
    a = load(tmp_path, "bob: error:5.1.1:550 gone\ncarol: \\carol, carol@backup.example\n")
    for spelling in ("\\bob", '"bob"', '"\\bob"', "\\bob+x", '"b\\ob"'):
        assert refusals(a.expand(spelling)) == [Refusal("550", "5.1.1", "gone")], spelling
    assert got(a.expand("\\carol")) == [("local", "carol"), ("remote", "carol@backup.example")]
    # A literal backslash (quoted) is part of the name, which no alias or user has.
    assert got(a.expand('"\\\\bob"')) == [("local", "\\bob")]


def test_plus_detail_lookup_order(tmp_path: Path) -> None:
    text = "bob+work: worker\nbob+*: plus\nbob: plain\ncarol: carolyn\n"
    a = load(tmp_path, text)
    assert got(a.expand("bob+work")) == [("local", "worker")]
    assert got(a.expand("bob+home")) == [("local", "plus")]
    assert a.expand("bob+home")[0].chain == ("bob+*",)
    assert got(a.expand("bob+")) == [("local", "plus")]
    assert got(a.expand("bob")) == [("local", "plain")]
    assert got(a.expand("carol+x")) == [("local", "carolyn")]
    assert a.expand("carol+x")[0].chain == ("carol",)


def test_plus_detail_is_kept_for_delivery(tmp_path: Path) -> None:
    a = load(tmp_path, "erin: erin, erin@backup.example\nx: y\n")
    targets = a.expand("dave+folder")
    assert got(targets) == [("local", "dave+folder")]
    assert (targets[0].value, targets[0].detail) == ("dave", "folder")
    # through a self-referencing alias, the local copy keeps the detail too
    assert got(a.expand("erin+tag")) == [("local", "erin+tag"), ("remote", "erin@backup.example")]


def test_detail_falling_back_into_its_own_alias(tmp_path: Path) -> None:
    a = load(tmp_path, "bob: bob+inbox, bob@backup.example\n")
    assert got(a.expand("bob")) == [("local", "bob+inbox"), ("remote", "bob@backup.example")]


def test_error_targets(tmp_path: Path) -> None:
    text = (
        "gone: error:nouser 550 No such user here\n"
        "moved: error:5.1.6:550 moved away\n"
        "later: error:4.2.1:450 try later\n"
        "list: bob, gone\n"
    )
    a = load(tmp_path, text)
    assert refusals(a.expand("gone")) == [Refusal("550", "5.1.1", "No such user here")]
    assert refusals(a.expand("moved")) == [Refusal("550", "5.1.6", "moved away")]
    later = a.expand("later")[0]
    assert later.refusal is not None and later.refusal.temporary
    mixed = a.expand("list")
    assert got(mixed) == [("local", "bob"), ("error", "error:nouser 550 No such user here")]
    assert mixed[1].chain == ("list", "gone")


def test_invalid_targets_are_refused(tmp_path: Path) -> None:
    a = load(tmp_path, 'bad: two words, "unbalanced, quote\n')
    targets = a.expand("bad")
    assert got(targets) == [("error", "two words"), ("error", '"unbalanced, quote')]
    assert [r.reply for r in refusals(targets)] == [
        "553 5.1.3 two words... invalid local name",
        "553 5.1.3 \"unbalanced, quote... Unbalanced '\"'",
    ]


def test_local_domains(tmp_path: Path) -> None:
    a = load(
        tmp_path, "a: bob@LocalHost., c@remote.example\nbob: robert\n", local_domains=["localhost"]
    )
    assert got(a.expand("a")) == [("local", "robert"), ("remote", "c@remote.example")]
    b = load(tmp_path, "staff: bob\n", local_domains=["example.com"])
    assert got(b.expand("staff@Example.com")) == [("local", "bob")]
    assert got(b.expand("staff@other.example")) == [("remote", "staff@other.example")]
    c = load(tmp_path, "staff: bob\n")
    assert got(c.expand("<staff@example.com>")) == [("remote", "staff@example.com")]


# --- programs and files ----------------------------------------------------------------------


@needs_root
def test_root_owned_aliases_may_name_programs_and_files(tmp_path: Path) -> None:
    a = load(tmp_path, 'bot: "|/usr/bin/robot", /var/spool/archive\n')
    assert a.programs_allowed
    assert got(a.expand("bot")) == [("program", "|/usr/bin/robot"), ("file", "/var/spool/archive")]


def mail_user() -> frozenset[int]:
    """Root, ourselves and `nobody`, as with `[mda] mail_uid = "nobody"`."""
    return frozenset({0, os.geteuid(), pwd.getpwnam("nobody").pw_uid})


@needs_root
def test_aliases_not_owned_by_root_may_not(tmp_path: Path) -> None:
    """An aliases file of the mail user is obeyed for addresses, never for programs."""
    path = write(tmp_path / "aliases", 'bot: "|/usr/bin/robot", /var/spool/archive, bob\n')
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    a = Aliases(str(path), trusted=mail_user())
    assert not a.programs_allowed
    targets = a.expand("bot")
    assert [t.kind for t in targets] == ["error", "error", "local"]
    assert targets[0].refusal is not None and targets[1].refusal is not None
    assert targets[0].refusal.reply.startswith("550 5.7.1 Address |/usr/bin/robot is unsafe")
    assert "not owned by root" in targets[0].refusal.text
    assert "unsafe for mailing to files" in targets[1].refusal.text


@needs_root
def test_owner_change_takes_effect_even_with_a_current_index(tmp_path: Path) -> None:
    path = write(tmp_path / "aliases", 'bot: "|/usr/bin/robot"\n')
    assert Aliases(str(path)).expand("bot")[0].kind == "program"
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    a = Aliases(str(path), trusted=mail_user())
    assert a.map.origin == "index"
    assert a.expand("bot")[0].kind == "error"
    with pytest.raises(MapError, match="owned by uid"):
        Aliases(str(path))  # and nobody is not trusted at all unless it is the mail user


@pytest.mark.parametrize(("mode", "why"), [(0o664, "group-writable"), (0o646, "world-writable")])
def test_attack_writable_aliases_file_is_not_read(tmp_path: Path, mode: int, why: str) -> None:
    path = write(tmp_path / "aliases", 'bot: "|/usr/bin/robot"\nbob: bob@evil.example\n', mode)
    with pytest.raises(MapError, match=f"not trusted \\({why} file\\)") as e:
        Aliases(str(path))
    assert e.value.exit_status == 75


@pytest.mark.parametrize(
    ("address", "text"),
    [
        ("|/bin/sh -c evil", "Cannot mail directly to programs"),
        ("/etc/passwd", "Cannot mail directly to files"),
        (":include:/etc/shadow", "Cannot mail directly to :include:s"),
        ('"|/bin/sh"', "Cannot mail directly to programs"),
        ("error:nouser x", "Cannot mail directly to error: targets"),
    ],
)
def test_the_address_itself_cannot_be_a_program_file_or_include(
    tmp_path: Path, address: str, text: str
) -> None:
    a = load(tmp_path, "x: y\n")
    assert refusals(a.expand(address)) == [Refusal("550", "5.7.1", text)]


# --- :include: ---------------------------------------------------------------------------------


def test_include(tmp_path: Path) -> None:
    inc = write(tmp_path / "list.inc", "# members\nbob, carol\n\ndave@example.org\n")
    a = load(tmp_path, f"list: :include:{inc}, eve\n")
    targets = a.expand("list")
    assert got(targets) == [
        ("local", "bob"),
        ("local", "carol"),
        ("remote", "dave@example.org"),
        ("local", "eve"),
    ]
    assert targets[0].chain == ("list", f":include:{inc}")
    assert targets[0].origin == f":include:{inc}"
    assert targets[3].origin == a.path


@needs_root
def test_include_members_are_aliased_and_aliases_may_run_programs(tmp_path: Path) -> None:
    # The program comes from the root-owned aliases file, not from the include: allowed.
    inc = write(tmp_path / "list.inc", "robot\nbob\n")
    a = load(tmp_path, f'list: :include:{inc}\nrobot: "|/usr/bin/robot"\nbob: robert\n')
    targets = a.expand("list")
    assert got(targets) == [("program", "|/usr/bin/robot"), ("local", "robert")]
    assert targets[0].chain == ("list", f":include:{inc}", "robot")
    assert targets[0].origin == a.path


def test_include_cannot_produce_programs_or_files(tmp_path: Path) -> None:
    inc = write(tmp_path / "list.inc", '"|/usr/bin/evil", /etc/passwd, bob\n')
    a = load(tmp_path, f"list: :include:{inc}\n")
    targets = a.expand("list")
    assert [t.kind for t in targets] == ["error", "error", "local"]
    assert targets[0].refusal is not None and targets[1].refusal is not None
    assert "unsafe for mailing to programs" in targets[0].refusal.text
    assert "from an :include: file" in targets[0].refusal.text
    assert "unsafe for mailing to files" in targets[1].refusal.text
    assert targets[0].origin == f":include:{inc}"


def test_nested_and_self_including_includes(tmp_path: Path) -> None:
    inner = write(tmp_path / "inner.inc", "carol\n")
    outer = tmp_path / "outer.inc"
    write(outer, f"bob, :include:{inner}, :include:{outer}\n")
    a = load(tmp_path, f"list: :include:{outer}, :include:{inner}\n")
    assert got(a.expand("list")) == [("local", "bob"), ("local", "carol")]


def test_include_needs_an_absolute_path(tmp_path: Path) -> None:
    a = load(tmp_path, "list: :include:relative.inc\n")
    (t,) = a.expand("list")
    assert t.refusal is not None and t.refusal.dsn == "5.2.4"
    assert "not an absolute path" in t.refusal.text


def test_missing_include_is_a_temporary_failure(tmp_path: Path) -> None:
    a = load(tmp_path, f"list: :include:{tmp_path}/missing.inc\n")
    with pytest.raises(MapError) as e:
        a.expand("list")
    assert e.value.exit_status == 75


def refused_include(a: Aliases, name: str = "list") -> str:
    """The reason an expansion stopped at an untrusted include: a temporary failure."""
    with pytest.raises(MapError) as e:
        a.expand(name)
    assert e.value.exit_status == 75
    return e.value.reason


@pytest.mark.parametrize(("mode", "why"), [(0o646, "world-writable"), (0o664, "group-writable")])
def test_attack_writable_include_is_not_followed(tmp_path: Path, mode: int, why: str) -> None:
    inc = write(tmp_path / "list.inc", "bob\n", mode=mode)
    a = load(tmp_path, f"list: :include:{inc}, carol\n")
    assert refused_include(a).startswith(f":include: file not trusted ({why} file)")


@needs_root
def test_attack_include_owned_by_another_user_is_not_followed(tmp_path: Path) -> None:
    inc = write(tmp_path / "list.inc", "bob\n")
    os.chown(inc, pwd.getpwnam("nobody").pw_uid, -1)
    assert "owned by uid" in refused_include(load(tmp_path, f"list: :include:{inc}\n"))
    # ... unless that user is the mail user, trusted with the lists.
    a = load(tmp_path, f"list: :include:{inc}\n", trusted=mail_user())
    assert got(a.expand("list")) == [("local", "bob")]


def test_include_in_a_world_writable_directory_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    inc = write(d / "list.inc", "bob\n")
    why = refused_include(load(tmp_path, f"list: :include:{inc}\n"))
    assert f"world-writable directory {d}" in why


def test_sticky_directory_is_trusted_for_entries_of_trusted_owners(tmp_path: Path) -> None:
    """Like /tmp: nobody but the entry's owner may replace an entry of a sticky directory, so
    a trusted owner's entry is safe there (sendmail's TrustStickyBit, with the owner checked)."""
    d = tmp_path / "sticky"
    d.mkdir()
    d.chmod(0o1777)
    inc = write(d / "list.inc", "bob\n")
    text = f"list: :include:{inc}\n"
    assert got(load(tmp_path, text).expand("list")) == [("local", "bob")]
    if os.geteuid() == 0:
        os.chown(inc, pwd.getpwnam("nobody").pw_uid, -1)
        assert "owned by uid" in refused_include(load(tmp_path, text))


@needs_root
def test_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "theirs"
    d.mkdir()
    inc = write(d / "list.inc", "bob\n")
    os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    why = refused_include(load(tmp_path, f"list: :include:{inc}\n"))
    assert f"directory {d} is owned by uid" in why


def test_symlink_into_a_world_writable_directory_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    real = write(d / "list.inc", "bob\n")
    safe = tmp_path / "safe"
    safe.mkdir()
    (safe / "list.inc").symlink_to(real)
    why = refused_include(load(tmp_path, f"list: :include:{safe}/list.inc\n"))
    assert "world-writable directory" in why
    # A link through a relative path and `..` is followed the same way.
    (safe / "rel.inc").symlink_to("../open/list.inc")
    why = refused_include(load(tmp_path, f"list: :include:{safe}/rel.inc\n"))
    assert f"world-writable directory {d}" in why


def test_include_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in refused_include(load(tmp_path, f"list: :include:{fifo}\n"))
    why = refused_include(load(tmp_path, f"list: :include:{tmp_path}\n"))
    assert "not a regular file" in why


# --- owners ------------------------------------------------------------------------------------


def test_owner_of(tmp_path: Path) -> None:
    text = (
        "staff: bob\nowner-staff: Alice@example.org\n"
        "big: bob\nowner-big: alice, carol\n"
        'prog: bob\nowner-prog: "|/usr/bin/x"\n'
        "owner-owner: postmaster\n"
    )
    a = load(tmp_path, text)
    assert a.owner_of("staff") == "Alice@example.org"
    assert a.owner_of("STAFF") == "Alice@example.org"
    assert a.owner_of("big") == "owner-big"
    assert a.owner_of("prog") == "owner-prog"
    assert a.owner_of("nolist") is None
    assert a.owner_of("owner-staff") == "postmaster"
    assert load(tmp_path, "owner-a: x\n").owner_of("owner-a") is None


# --- explanation, index, rebuild ---------------------------------------------------------------


def test_explain(tmp_path: Path) -> None:
    a = load(tmp_path, "staff: bob, bob, alice@example.org\nowner-staff: carol\nbob: bob, x\n")
    lines = a.explain("staff")
    assert lines[0] == f"staff: expansion using {a.path}"
    assert "  staff: aliased to bob, bob, alice@example.org" in lines
    assert any("self-reference" in line for line in lines)
    assert "bob... deliverable: local user bob (via staff -> bob)" in lines
    assert "alice@example.org... deliverable: remote address alice@example.org (via staff)" in lines
    assert lines[-1] == "errors to: carol"


def test_second_open_uses_the_index_with_the_same_results(tmp_path: Path) -> None:
    text = "staff: admins, carol@example.org\nadmins: bob, alice\nbob+*: bobby\n"
    first = load(tmp_path, text)
    assert first.map.origin == "rebuilt"
    second = Aliases(first.path)
    assert second.map.origin == "index"
    for address in ("staff", "admins", "bob+x", "nobody"):
        assert got(second.expand(address)) == got(first.expand(address))


def test_newaliases_reports_count_and_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "aliases", "a: b\na: c\nnocolon\nd: e\n")
    result = newaliases(str(path))
    assert result.origin == "rebuilt"
    assert len(result.table) == 2
    assert len(result.warnings) == 2
    a = Aliases(str(path))
    assert a.map.origin == "index"
    assert a.warnings == []
    assert a.lookup("a") == "c"


def test_missing_aliases_file_is_a_map_error(tmp_path: Path) -> None:
    with pytest.raises(MapError):
        Aliases(str(tmp_path / "nope"))


def test_unwritable_index_still_expands(tmp_path: Path) -> None:
    (tmp_path / "aliases.cdb").mkdir()
    (tmp_path / "aliases.cdb" / "x").write_text("")
    a = load(tmp_path, "staff: bob\n")
    assert a.map.origin == "memory"
    assert got(a.expand("staff")) == [("local", "bob")]
