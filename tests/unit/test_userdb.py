"""User database lookup over real passwd-files and the system's /etc/passwd."""

from __future__ import annotations

import copy
import logging
import os
import pwd
from pathlib import Path
from types import MappingProxyType

import pytest

from mailstore.config import load_config
from mailstore.configcache import load_cached, write_cache
from mailstore.errors import PermissionDenied, TemporaryFailure
from mailstore.userdb import (
    PasswdFile,
    SystemUsers,
    User,
    expand_location,
    open_userdb,
    parse_quota_rule,
)

SHA512 = "{SHA512-CRYPT}$6$rounds=5000$saltsalt$" + "A" * 86
BLF = "{BLF-CRYPT}$2y$05$" + "b" * 53

SAMPLE = f"""\
# Dovecot-style passwd-file
alice@example.test:{SHA512}:5000:5000::/home/vmail/alice::
bob@Example.TEST:{{PLAIN}}secret:5001:5001:Bob:/home/vmail/bob:/bin/false:userdb_mail=maildir:~/Mail
carol@example.test:{BLF}

   # an indented comment
wendy:{{PLAIN}}x:5003
Dave@other.test:{{PLAIN}}y:::::: userdb_quota_rule=*:storage=1G  extra_flag
erin@example.test:{{PLAIN}}z:5004:5004::/home/erin::mail=/srv/mail/erin quota_rule=*:bytes=1000
"""


def write(tmp_path: Path, text: str, name: str = "passwd") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> PasswdFile:
    return PasswdFile.load(write(tmp_path, SAMPLE), location="/var/vmail/%d/%n")


# --- parsing -------------------------------------------------------------------------------------


def test_full_entry(db: PasswdFile) -> None:
    alice = db.lookup("alice@example.test")
    assert alice == User(
        name="alice@example.test",
        local="alice",
        domain="example.test",
        password=SHA512,
        uid=5000,
        gid=5000,
        home="/home/vmail/alice",
        mail_root="/var/vmail/example.test/alice",
        quota_bytes=None,
        extra={},
    )


def test_schemes_are_kept_as_written(db: PasswdFile) -> None:
    assert db.lookup("alice@example.test").password == SHA512  # type: ignore[union-attr]
    assert db.lookup("bob@example.test").password == "{PLAIN}secret"  # type: ignore[union-attr]
    assert db.lookup("carol@example.test").password == BLF  # type: ignore[union-attr]


def test_missing_trailing_fields(db: PasswdFile) -> None:
    carol = db.lookup("carol@example.test")
    assert carol is not None
    assert (carol.uid, carol.gid, carol.home, carol.quota_bytes) == (None, None, "", None)
    assert carol.mail_root == "/var/vmail/example.test/carol"
    assert carol.extra == {}
    # wendy's short line parses, but a bare user has no domain for /var/vmail/%d/%n.
    with pytest.raises(PermissionDenied, match="domain"):
        db.lookup("wendy")
    short = PasswdFile.load(db.path, location="/var/vmail/local/%n").lookup("wendy")
    assert short is not None
    assert (short.uid, short.gid, short.domain, short.home) == (5003, None, "", "")
    assert short.mail_root == "/var/vmail/local/wendy"


def test_users_in_file_order(db: PasswdFile) -> None:
    # wendy is left out: a bare user has no %d for this location (see the broken-entry tests).
    assert [u.name for u in db.users()] == [
        "alice@example.test",
        "bob@Example.TEST",
        "carol@example.test",
        "Dave@other.test",
        "erin@example.test",
    ]


def test_password_is_not_in_repr(db: PasswdFile) -> None:
    assert "secret" not in repr(db.lookup("bob@example.test"))


def test_extra_fields_are_a_read_only_mapping(db: PasswdFile) -> None:
    dave = db.lookup("dave@other.test")
    assert dave is not None
    assert dave.extra == {"userdb_quota_rule": "*:storage=1G", "extra_flag": ""}
    with pytest.raises(TypeError):
        dave.extra["x"] = "y"  # type: ignore[index]
    hash(dave)  # a frozen User stays hashable despite its mapping


def test_user_is_immutable(db: PasswdFile) -> None:
    alice = db.lookup("alice@example.test")
    assert alice is not None
    with pytest.raises(AttributeError):
        alice.home = "/elsewhere"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del alice.uid
    with pytest.raises(AttributeError):
        alice.other = 1  # type: ignore[attr-defined]
    assert alice.home == "/home/vmail/alice"
    twin = copy.copy(alice)
    assert twin == alice and twin is not alice
    assert twin.password == SHA512


def test_user_equality_and_hash() -> None:
    fields = ("u@d", "u", "d", "{PLAIN}x", 1000, 1000, "/h", "/h/Maildir", None)
    user = User(*fields)
    assert user.extra == {}
    assert user == User(*fields, extra={})
    assert hash(user) == hash(User(*fields, extra=MappingProxyType({})))
    with_extra = User(*fields, extra={"k": "v"})
    assert with_extra != user
    assert hash(with_extra) == hash(user)  # extra is compared, not hashed
    assert (
        User("u@d", "u", "d", "{PLAIN}y", 1000, 1000, "/h", "/h/Maildir", None) != user
    )  # the password counts
    assert len({user, User(*fields)}) == 1
    assert user != fields
    assert repr(user) == (
        "User(name='u@d', local='u', domain='d', uid=1000, gid=1000, home='/h',"
        " mail_root='/h/Maildir', quota_bytes=None, extra=mappingproxy({}))"
    )
    match user:
        case User(name, local, domain):
            assert (name, local, domain) == ("u@d", "u", "d")


def test_extra_fields_override_location_and_quota(db: PasswdFile) -> None:
    bob = db.lookup("bob@example.test")
    assert bob is not None
    assert bob.mail_root == "/home/vmail/bob/Mail"  # userdb_mail=maildir:~/Mail
    assert bob.extra == {"userdb_mail": "maildir:~/Mail"}
    dave = db.lookup("dave@other.test")
    assert dave is not None
    assert dave.quota_bytes == 1024**3
    erin = db.lookup("erin@example.test")
    assert erin is not None
    assert erin.mail_root == "/srv/mail/erin"  # unprefixed mail=
    assert erin.quota_bytes == 1000  # quota_rule=*:bytes=1000


def test_userdb_prefixed_fields_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u@d.test:x:::::: mail=/a userdb_mail=/b"
        " quota_rule=*:bytes=1 userdb_quota_rule=*:bytes=2\n",
    )
    user = PasswdFile.load(path).lookup("u@d.test")
    assert user is not None
    assert (user.mail_root, user.quota_bytes) == ("/b", 2)


def test_uid_and_gid_by_name(tmp_path: Path) -> None:
    entry = next((p for p in pwd.getpwall() if p.pw_uid != 0), None)
    if entry is None:
        pytest.skip("no unprivileged account on this system")
    import grp

    group = grp.getgrgid(entry.pw_gid).gr_name
    path = write(tmp_path, f"u:x:{entry.pw_name}:{group}::/home/u\n")
    user = PasswdFile.load(path).lookup("u")
    assert user is not None
    assert (user.uid, user.gid) == (entry.pw_uid, entry.pw_gid)


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "u:{PLAIN}x:1000:1000::/home/u\r\n")
    user = PasswdFile.load(path).lookup("u")
    assert user is not None
    assert (user.password, user.home) == ("{PLAIN}x", "/home/u")


# --- malformed lines -----------------------------------------------------------------------------

BAD = """\
good:{PLAIN}secret1:1000:1000::/home/good
:{PLAIN}secret2:1000
bad uid:{PLAIN}secret3:1000
a@b@c:{PLAIN}secret4
baduid:{PLAIN}secret5:abc:1000::/home/x
relhome:{PLAIN}secret6:1000:1000::home/x
root-ish:{PLAIN}secret7:0:0::/root
quota:{PLAIN}secret8:1000:1000::/home/q::userdb_quota_rule=*:storage=lots
good:{PLAIN}secret9:1001:1001::/home/dup
escape:{PLAIN}secret10:1000:1000::/home/e::userdb_mail=/var/vmail/%d/%n
"""


def test_malformed_lines_are_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, BAD)
    with caplog.at_level(logging.WARNING, logger="mailstore.userdb"):
        db = PasswdFile.load(path, location="~/Maildir")
    good = db.lookup("good")
    assert good is not None
    assert good.home == "/home/good"  # the first of two entries wins
    assert [u.name for u in db.users()] == ["good"]

    messages = [r.getMessage() for r in caplog.records]
    assert all(r.name == "mailstore.userdb" for r in caplog.records)
    lines = sorted(int(m.split(" line ")[1].split(":")[0]) for m in messages)
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    for message in messages:
        assert "secret" not in message, message
    assert any("line 9: user 'good' already defined on line 1" in m for m in messages)
    assert any("line 7: user 'root-ish': uid 0 (root) is not allowed" in m for m in messages)


def test_users_with_broken_entries_fail_loudly(tmp_path: Path) -> None:
    """A user whose line is broken is not "no such user": mail must be deferred, not bounced."""
    db = PasswdFile.load(write(tmp_path, BAD), location="~/Maildir")
    for name in ("baduid", "relhome", "root-ish", "quota"):
        with pytest.raises(TemporaryFailure):
            db.lookup(name)
    # %d of a bare user is empty: refused like any other unsafe name.
    with pytest.raises(PermissionDenied):
        db.lookup("escape")
    # Unparseable names are simply not there.
    assert db.lookup("bad uid") is None
    assert db.lookup("a@b@c") is None


def test_non_utf8_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(b"ok:{PLAIN}x::::/home/ok\nbad\xff:{PLAIN}x\n")
    with caplog.at_level(logging.WARNING, logger="mailstore.userdb"):
        db = PasswdFile.load(str(path))
    assert db.lookup("ok") is not None
    assert any("line 2: not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_unreadable_file_is_a_temporary_failure(tmp_path: Path) -> None:
    with pytest.raises(TemporaryFailure) as info:
        PasswdFile.load(str(tmp_path / "missing"))
    assert str(tmp_path) not in str(info.value)  # clients may see the message


# --- lookups -------------------------------------------------------------------------------------


def test_virtual_user_only_in_its_domain(db: PasswdFile) -> None:
    assert db.lookup("alice@example.test") is not None
    assert db.lookup("alice@other.test") is None
    assert db.lookup("alice@other.test", local_domains=["other.test"]) is None
    assert db.lookup("alice") is None  # a bare login only matches bare entries


def test_bare_user_in_local_domains(tmp_path: Path) -> None:
    db = PasswdFile.load(write(tmp_path, "wendy:{PLAIN}x:1000:1000::/home/wendy\n"))
    wendy = db.lookup("wendy")
    assert wendy is not None
    assert wendy.mail_root == "/home/wendy/Maildir"
    assert db.lookup("wendy@example.test") is None
    assert db.lookup("wendy@example.test", local_domains={"example.test"}) == wendy
    assert db.lookup("wendy@EXAMPLE.test", local_domains=("Example.Test",)) == wendy
    assert db.lookup("wendy@other.test", local_domains={"example.test"}) is None


def test_virtual_entry_beats_bare_entry(tmp_path: Path) -> None:
    path = write(tmp_path, "al:x:1000::::\nal@example.test:y:1001::::\n")
    db = PasswdFile.load(path, location="/m/%u")
    user = db.lookup("al@example.test", local_domains={"example.test"})
    assert user is not None
    assert user.name == "al@example.test"
    bare = db.lookup("al")
    assert bare is not None
    assert bare.mail_root == "/m/al"


def test_lookup_ignores_case(db: PasswdFile) -> None:
    bob = db.lookup("BOB@example.TEST")
    assert bob is not None
    assert (bob.name, bob.local, bob.domain) == ("bob@Example.TEST", "bob", "Example.TEST")
    dave = db.lookup("dave@OTHER.test")
    assert dave is not None
    # The mail root follows the file, not the login: one user, one Maildir.
    assert dave.mail_root == "/var/vmail/other.test/Dave"
    assert db.lookup("DAVE@other.test") == dave


@pytest.mark.parametrize(
    "address", ["", "@example.test", "alice@", "alice@example.test@x", "al ice", "al\x00ice"]
)
def test_lookup_of_nonsense_is_none(db: PasswdFile, address: str) -> None:
    assert db.lookup(address) is None


# --- refresh -------------------------------------------------------------------------------------


def test_refresh_only_when_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "u1:x:1000::::\n")
    db = PasswdFile.load(path, location="/m/%u")
    assert db.refresh() is False
    assert db.lookup("u2") is None

    # Same size, new content: the mtime tells. Set it explicitly so that it differs even if
    # the rewrite lands within the same timestamp granule.
    before = os.stat(path)
    write(tmp_path, "u2:x:1000::::\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    assert db.refresh() is True
    assert db.refresh() is False
    assert db.lookup("u1") is None
    user = db.lookup("u2")
    assert user is not None
    assert user.mail_root == "/m/u2"


def test_lookup_notices_a_replaced_file(tmp_path: Path) -> None:
    path = write(tmp_path, "u1:x:1000::::\n")
    db = PasswdFile.load(path, location="/m/%u")
    # Replaced by rename, as editors and provisioning tools do: new inode, same mtime and size.
    stamp = os.stat(path)
    other = write(tmp_path, "u3:x:1000::::\n", name="passwd.new")
    os.utime(other, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    os.replace(other, path)
    assert db.lookup("u3") is not None
    assert db.lookup("u1") is None


def test_file_that_disappears(tmp_path: Path) -> None:
    path = write(tmp_path, "u1:x:1000::::\n")
    db = PasswdFile.load(path, location="/m/%u")
    os.unlink(path)
    with pytest.raises(TemporaryFailure):
        db.lookup("u1")


# --- location expansion --------------------------------------------------------------------------


def expand(template: str, user: str = "alice@example.test", home: str = "/home/alice") -> str:
    local, _, domain = user.partition("@")
    return expand_location(template, user=user, local=local, domain=domain, home=home)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/var/vmail/%d/%n", "/var/vmail/example.test/alice"),
        ("/var/vmail/%u", "/var/vmail/alice@example.test"),
        ("~/Maildir", "/home/alice/Maildir"),
        ("~", "/home/alice"),
        ("%h/mail", "/home/alice/mail"),
        ("Maildir", "/home/alice/Maildir"),  # relative: against the home
        ("maildir:~/Maildir", "/home/alice/Maildir"),
        ("/var/vmail/%d/%n/", "/var/vmail/example.test/alice"),
        ("/var//vmail/./%n", "/var/vmail/alice"),
        ("/var/100%%/%n", "/var/100%/alice"),
        ("/var/~/%n", "/var/~/alice"),  # only a leading ~ is the home
    ],
)
def test_expand_location(template: str, expected: str) -> None:
    assert expand(template) == expected


def test_expand_lowercase_modifier() -> None:
    assert expand("/v/%Ld/%Ln/%n", user="Bob@Example.TEST") == "/v/example.test/bob/Bob"


def test_home_of_root_directory() -> None:
    assert expand("~/Maildir", home="/") == "/Maildir"


@pytest.mark.parametrize(
    ("template", "user"),
    [
        ("/var/vmail/%d/%n", "../x@example.test"),
        ("/var/vmail/%d/%n", "a/b@example.test"),
        ("/var/vmail/%d/%n", "..@example.test"),
        ("/var/vmail/%d/%n", ".@example.test"),
        ("/var/vmail/%d/%n", "alice@.."),
        ("/var/vmail/%d/%n", "alice@ex/../.."),
        ("/var/vmail/%u", "../../etc"),
        ("/var/vmail/%Ln", "../x@example.test"),
        ("/var/vmail/%d/%n", "wendy"),  # %d empty: would collapse into another path
    ],
)
def test_expand_refuses_escapes(template: str, user: str) -> None:
    with pytest.raises(PermissionDenied):
        expand(template, user=user)


def test_unused_variables_are_not_checked() -> None:
    assert expand("/var/vmail/%n", user="wendy") == "/var/vmail/wendy"


@pytest.mark.parametrize("home", ["", "relative/home"])
def test_expand_needs_an_absolute_home(home: str) -> None:
    for template in ("~/Maildir", "%h/Maildir", "Maildir"):
        with pytest.raises(PermissionDenied):
            expand(template, home=home)
    assert expand("/var/vmail/%n", home=home) == "/var/vmail/alice"


@pytest.mark.parametrize("template", ["/v/%x", "/v/%", "mbox:~/mail", ""])
def test_expand_bad_template(template: str) -> None:
    with pytest.raises(TemporaryFailure):
        expand(template)


# --- quota rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("*:storage=1G", 1024**3),
        ("*:storage=100M", 100 * 1024**2),
        ("*:storage=512k", 512 * 1024),
        ("*:storage=2T", 2 * 1024**4),
        ("*:storage=1000B", 1000),
        ("*:storage=1000", 1000 * 1024),  # Dovecot: storage without a unit is KiB
        ("*:bytes=1000", 1000),
        ("*:storage=1G:messages=1000", 1024**3),
        ("?:storage=1M", 1024**2),
        ("*:storage=0", None),  # 0 = unlimited
        ("*:messages=10", None),
        ("*:ignore", None),
        ("Trash:storage=+100M", None),  # a mailbox rule, not the user's quota
    ],
)
def test_parse_quota_rule(rule: str, expected: int | None) -> None:
    assert parse_quota_rule(rule) == expected


@pytest.mark.parametrize(
    "rule", ["storage=1G", "*:storage=", "*:storage=1X", "*:storage=-1", "*:size=1", "*:storage=5%"]
)
def test_parse_quota_rule_rejects(rule: str) -> None:
    with pytest.raises(ValueError):
        parse_quota_rule(rule)


# --- system users --------------------------------------------------------------------------------


def test_system_user_root() -> None:
    root = pwd.getpwnam("root")
    users = SystemUsers()
    user = users.lookup("root")
    assert user == User(
        name="root",
        local="root",
        domain="",
        password="",
        uid=0,
        gid=root.pw_gid,
        home=root.pw_dir,
        mail_root=os.path.join(root.pw_dir, "Maildir"),
        quota_bytes=None,
        extra={},
    )
    assert users.lookup("ROOT") == user
    assert users.refresh() is False


def test_system_user_domains() -> None:
    users = SystemUsers()
    assert users.lookup("root@example.test") is None
    assert users.lookup("root@Example.Test", local_domains=["example.test"]) is not None
    assert users.lookup("no-such-user-here-at-all") is None
    assert users.lookup("ro/ot") is None
    assert users.lookup("") is None


def test_system_user_location_template() -> None:
    user = SystemUsers(location="/var/mail/%u/Maildir").lookup("root")
    assert user is not None
    assert user.mail_root == "/var/mail/root/Maildir"


def test_system_users_lists_root() -> None:
    assert "root" in {u.name for u in SystemUsers().users()}


# --- open_userdb ---------------------------------------------------------------------------------


def test_open_userdb_defaults_to_system_users() -> None:
    userdb = open_userdb(load_config(None))
    assert isinstance(userdb, SystemUsers)
    assert userdb.location == "~/Maildir"


def test_open_userdb_passwd_file(tmp_path: Path) -> None:
    write(tmp_path, "alice@example.test:{PLAIN}x:1000:1000::/home/alice\n")
    conf = tmp_path / "mra.toml"
    conf.write_text('[auth]\npasswd_file = "passwd"\n[mail]\nlocation = "maildir:/v/%d/%n"\n')
    userdb = open_userdb(load_config(str(conf)))
    assert isinstance(userdb, PasswdFile)
    user = userdb.lookup("alice@example.test")
    assert user is not None
    assert user.mail_root == "/v/example.test/alice"


def test_open_userdb_with_the_cached_config(tmp_path: Path) -> None:
    write(tmp_path, "alice@example.test:{PLAIN}x:1000:1000::/home/alice\n")
    conf = tmp_path / "mra.toml"
    conf.write_text('[auth]\npasswd_file = "passwd"\n[mail]\nlocation = "maildir:/v/%d/%n"\n')
    write_cache(str(conf))
    config = load_cached(str(conf))
    assert type(config).__name__ == "CachedConfig"
    userdb = open_userdb(config)
    assert isinstance(userdb, PasswdFile)
    assert userdb.path == str(tmp_path / "passwd")
    user = userdb.lookup("alice@example.test")
    assert user is not None
    assert user.mail_root == "/v/example.test/alice"
    system = open_userdb(load_cached(None))
    assert isinstance(system, SystemUsers)
    assert system.location == "~/Maildir"


@pytest.mark.parametrize(
    "rule", ["*:storage=G", "*:storage=1 G", "*:storage=\u0661", "*:storage=1GB"]
)
def test_parse_quota_rule_rejects_odd_numbers(rule: str) -> None:
    with pytest.raises(ValueError):
        parse_quota_rule(rule)


def test_open_userdb_missing_passwd_file(tmp_path: Path) -> None:
    conf = tmp_path / "mra.toml"
    conf.write_text('[auth]\npasswd_file = "missing"\n')
    with pytest.raises(TemporaryFailure):
        open_userdb(load_config(str(conf)))
