"""Scripts on disk (mra/managesieve/storage.py): Pigeonhole's layout, atomic and durable
writes, quotas, and names and links that try to leave the user's sieve directory."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from mra.managesieve.storage import (
    NoSuchScript,
    Quota,
    QuotaExceeded,
    ScriptExists,
    ScriptIsActive,
    ScriptStorage,
    StorageFailure,
    valid_name,
)
from tests.unit.managesieve._client import Client

QUOTA = Quota(max_script_size=1 << 20, max_scripts=100, max_storage=10 << 20)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def store(home: Path) -> ScriptStorage:
    return ScriptStorage(str(home), QUOTA)


def test_pigeonhole_layout(home: Path, store: ScriptStorage) -> None:
    store.put("main", b"keep;\r\n")
    store.put("vacation", b"discard;")
    assert store.activate("main") is True
    assert (home / "sieve" / "main.sieve").read_bytes() == b"keep;\r\n"
    assert os.readlink(home / ".dovecot.sieve") == "sieve/main.sieve"
    assert os.listdir(home / "sieve" / "tmp") == []
    assert stat.S_IMODE((home / "sieve").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "sieve" / "main.sieve").stat().st_mode) == 0o600
    # Where mda reads the user's script (mda/deliver.py sieve_scripts): through the link.
    assert (home / ".dovecot.sieve").read_bytes() == b"keep;\r\n"
    assert store.list() == [("main", True), ("vacation", False)]
    assert store.activate("main") is False
    assert store.activate("vacation") is True
    assert store.active() == "vacation"
    assert store.deactivate() is True and store.deactivate() is False
    assert not os.path.lexists(home / ".dovecot.sieve")


def test_no_sieve_directory_means_no_scripts(home: Path, store: ScriptStorage) -> None:
    assert store.list() == [] and store.active() is None
    with pytest.raises(NoSuchScript):
        store.read("x")
    store.check_space("x", 10)
    assert not (home / "sieve").exists()  # reading creates nothing


def test_links_written_by_dovecot_are_understood(home: Path, store: ScriptStorage) -> None:
    store.put("a", b"keep;")
    for target in ("sieve/a.sieve", f"{home}/sieve/a.sieve", "./sieve/../sieve/a.sieve"):
        os.symlink(target, home / "new")
        os.rename(home / "new", home / ".dovecot.sieve")
        assert store.active() == "a", target


def test_rename_keeps_the_active_script_active(home: Path, store: ScriptStorage) -> None:
    store.put("old", b"keep;")
    store.put("other", b"discard;")
    store.activate("old")
    store.rename("old", "new")
    assert store.list() == [("new", True), ("other", False)]
    assert (home / ".dovecot.sieve").read_bytes() == b"keep;"
    with pytest.raises(ScriptExists):
        store.rename("new", "other")
    with pytest.raises(NoSuchScript):
        store.rename("gone", "x")
    assert (home / "sieve" / "other.sieve").read_bytes() == b"discard;"


def test_delete(store: ScriptStorage) -> None:
    store.put("a", b"keep;")
    store.put("b", b"keep;")
    store.activate("a")
    with pytest.raises(ScriptIsActive):
        store.delete("a")
    store.delete("b")
    with pytest.raises(NoSuchScript):
        store.delete("b")
    assert store.list() == [("a", True)]


def _compile(home: Path, name: str) -> Path:
    """What a delivery leaves beside the script: mda's compiled cache of it."""
    from mda.sieve.compiled import cache_path

    cache = Path(cache_path(str(home / "sieve" / f"{name}.sieve")))
    cache.write_bytes(b"compiled")
    return cache


def test_compiled_caches_go_with_deleted_and_renamed_scripts(
    home: Path, store: ScriptStorage
) -> None:
    store.put("a", b"keep;")
    store.put("b", b"keep;")
    store.put("c", b"keep;")
    gone, renamed, kept = _compile(home, "a"), _compile(home, "b"), _compile(home, "c")
    store.delete("a")
    store.rename("b", "bb")
    assert not gone.exists() and not renamed.exists() and kept.exists()
    assert sorted(os.listdir(home / "sieve")) == [".c.sieve.mdac", "bb.sieve", "c.sieve", "tmp"]
    store.delete("bb")  # no cache: nothing to remove, no error
    assert store.list() == [("c", False)]


def test_a_regular_dovecot_sieve_is_rescued_before_activation(
    home: Path, store: ScriptStorage
) -> None:
    """Pigeonhole's sieve_file_storage_active_rescue_regular: a script written by hand as
    ~/.dovecot.sieve is kept as ~/sieve/dovecot.orig.sieve."""
    (home / ".dovecot.sieve").write_bytes(b'require "fileinto";\nfileinto "Old";\n')
    assert store.active() is None
    store.put("new", b"keep;")
    store.activate("new")
    assert (home / "sieve" / "dovecot.orig.sieve").read_bytes().startswith(b"require")
    assert store.list() == [("dovecot.orig", False), ("new", True)]
    (home / "sieve" / "dovecot.orig.sieve").unlink()
    os.unlink(home / ".dovecot.sieve")
    (home / ".dovecot.sieve").write_bytes(b"discard;")
    assert store.deactivate() is True
    assert (home / "sieve" / "dovecot.orig.sieve").read_bytes() == b"discard;"


def test_writes_are_fsynced_before_they_return(
    home: Path, store: ScriptStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        real(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", spy)
    store.put("a", b"keep;")
    assert synced[-1] == str(home / "sieve")  # the rename, made durable
    assert any("/sieve/tmp/" in path for path in synced)  # the data, before the rename
    synced.clear()
    store.activate("a")
    assert synced[-1] == str(home)


def test_left_overs_in_tmp_are_removed_after_36_hours(home: Path, store: ScriptStorage) -> None:
    store.put("a", b"keep;")
    old, recent = home / "sieve" / "tmp" / "old.tmp", home / "sieve" / "tmp" / "recent.tmp"
    old.write_bytes(b"x")
    recent.write_bytes(b"x")
    past = time.time() - 37 * 3600
    os.utime(old, (past, past))
    ScriptStorage(str(home), QUOTA).put("b", b"keep;")
    assert sorted(os.listdir(home / "sieve" / "tmp")) == ["recent.tmp"]


def test_files_belong_to_the_account_when_we_run_as_root(home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give files away")
    store = ScriptStorage(str(home), QUOTA, owner=(4242, 4343))
    store.put("a", b"keep;")
    store.activate("a")
    for path in (home / "sieve", home / "sieve" / "tmp", home / "sieve" / "a.sieve"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (4242, 4343), path
    st = os.lstat(home / ".dovecot.sieve")
    assert (st.st_uid, st.st_gid) == (4242, 4343)


# --- quotas ---------------------------------------------------------------------------------


def test_quotas(home: Path) -> None:
    store = ScriptStorage(str(home), Quota(max_script_size=100, max_scripts=3, max_storage=250))
    for name in ("a", "b", "c"):
        store.put(name, b"x" * 80)
    with pytest.raises(QuotaExceeded) as too_many:
        store.put("d", b"keep;")
    assert (too_many.value.kind, too_many.value.limit) == ("scripts", 3)
    store.put("c", b"y" * 90)  # a replacement is not one more
    with pytest.raises(QuotaExceeded) as full:
        store.put("c", b"y" * 100)  # 80 + 80 + 100 > 250
    assert (full.value.kind, full.value.limit) == ("storage", 250)
    with pytest.raises(QuotaExceeded) as big:
        store.check_space("a", 101)
    assert big.value.kind == "size"
    assert (home / "sieve" / "c.sieve").read_bytes() == b"y" * 90


def test_attack_thousands_of_scripts(tmp_path: Path) -> None:
    """A client filling the directory stops at max_scripts; thousands put there by other means
    are listed (streamed) and counted, and refuse one more."""
    c = Client(tmp_path, config="[managesieve]\nmax_scripts = 100\n")
    c.login()
    for i in range(100):
        assert c.put(f"s{i:03}", "keep;") == ['OK "PUTSCRIPT completed."']
    assert c.put("one-more", "keep;") == [
        'NO (QUOTA/MAXSCRIPTS) "Script count quota exceeded, max 100 scripts."'
    ]
    assert c.put("s000", "discard;") == ['OK "PUTSCRIPT completed."']
    for i in range(5000):
        (c.home / "sieve" / f"shell{i:05}.sieve").write_bytes(b"keep;")
    lines = c.send("LISTSCRIPTS\r\n")
    assert len(lines) == 5101 and lines[-1] == 'OK "Listscripts completed."'
    c.expect(
        'HAVESPACE "x" 5\r\n',
        'NO (QUOTA/MAXSCRIPTS) "Script count quota exceeded, max 100 scripts."',
    )


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("main", True),
        ("summer script", True),
        ("Ferien-Skript ☀", True),
        ("..", True),  # the file "...sieve", inside ~/sieve
        ("x" * 249, True),  # "x" * 249 + ".sieve": 255 octets, the longest file name
        ("x" * 250, False),
        ("é" * 125, False),  # 250 octets in UTF-8: the file name would not fit
        ("", False),
        ("../evil", False),
        ("a/b", False),
        ("/etc/passwd", False),
        ("a\0b", False),
        ("a\nb", False),
        ("tab\there", False),
        ("del\x7f", False),
        ("c1\x85", False),
        ("\u2028", False),
        ("\u2029", False),
        ("\xff", False),  # Pigeonhole refuses it; so do we, so that both accept the same names
        ("\udcff", False),  # a file name that was not UTF-8
    ],
)
def test_names(name: str, valid: bool) -> None:
    assert valid_name(name) is valid


@pytest.mark.parametrize(
    "name",
    [b"../evil", b"../../etc/cron.d/x", b"/etc/passwd", b"a\0b", b"sub/dir", b"\xff\xfe"],
)
def test_attack_names_that_leave_the_sieve_directory(tmp_path: Path, name: bytes) -> None:
    c = Client(tmp_path)
    c.login()
    literal = b"{%d+}\r\n%s" % (len(name), name)
    for command in (
        b"PUTSCRIPT " + literal + b" {5+}\r\nkeep;\r\n",
        b"GETSCRIPT " + literal + b"\r\n",
    ):
        assert c.send(command) == ['NO "Invalid script name."']
    for command in (b"SETACTIVE ", b"DELETESCRIPT ", b'RENAMESCRIPT "a" ', b"HAVESPACE "):
        tail = b" 5\r\n" if command == b"HAVESPACE " else b"\r\n"
        assert c.send(command + literal + tail) == ['NO "Invalid script name."']
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "passwd"]
    assert [p.name for p in written] == ["mra.toml"]


# --- symlinks and other files in the sieve directory ----------------------------------------


def test_attack_symlinked_script_is_neither_read_nor_listed(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret")
    (c.home / "sieve").mkdir()
    os.symlink(secret, c.home / "sieve" / "evil.sieve")
    c.expect("LISTSCRIPTS\r\n", 'OK "Listscripts completed."')
    for command in (
        'GETSCRIPT "evil"',
        'SETACTIVE "evil"',
        'DELETESCRIPT "evil"',
        'RENAMESCRIPT "evil" "x"',
    ):
        c.expect(command + "\r\n", 'NO (NONEXISTENT) "There is no script by that name."')
    c.expect(c.put_command("evil", "discard;"), 'OK "PUTSCRIPT completed."')
    assert secret.read_bytes() == b"root's secret"  # the link was replaced, not followed
    assert (c.home / "sieve" / "evil.sieve").read_bytes() == b"discard;"


def test_attack_symlinked_sieve_directory_is_refused(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.sieve").write_bytes(b"keep;")
    os.symlink(elsewhere, c.home / "sieve")
    c.expect("LISTSCRIPTS\r\n", 'NO (TRYLATER) "Temporary failure, try again later."')
    c.expect('GETSCRIPT "x"\r\n', 'NO (TRYLATER) "Temporary failure, try again later."')
    c.expect(c.put_command("y", "keep;"), 'NO (TRYLATER) "Temporary failure, try again later."')
    assert sorted(os.listdir(elsewhere)) == ["x.sieve"]


def test_attack_symlinked_tmp_directory_is_refused(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (c.home / "sieve").mkdir()
    os.symlink(elsewhere, c.home / "sieve" / "tmp")
    c.expect(c.put_command("y", "keep;"), 'NO (TRYLATER) "Temporary failure, try again later."')
    assert os.listdir(elsewhere) == []


def test_attack_active_link_pointing_outside_is_not_active(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    c.put("main", "keep;")
    for target in ("/etc/passwd", "/etc/x.sieve", "../../etc/x.sieve", "sieve/../../x.sieve"):
        os.symlink(target, c.home / "new")
        os.rename(c.home / "new", c.home / ".dovecot.sieve")
        c.expect("LISTSCRIPTS\r\n", '"main"', 'OK "Listscripts completed."')
    c.expect('SETACTIVE "main"\r\n', 'OK "Setactive completed."')  # repaired
    assert os.readlink(c.home / ".dovecot.sieve") == "sieve/main.sieve"


def test_attack_hard_link_to_a_file_the_account_cannot_read(tmp_path: Path) -> None:
    """Run as root for system users, GETSCRIPT must not hand out a file the user linked in
    but could not read (fs.protected_hardlinks off, or a link made before the user lost
    access)."""
    if os.geteuid() != 0:
        pytest.skip("only a server running as root could read it")
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret")
    secret.chmod(0o600)
    home = tmp_path / "home"
    home.mkdir()
    (home / "sieve").mkdir()
    os.link(secret, home / "sieve" / "x.sieve")
    store = ScriptStorage(str(home), QUOTA, owner=(4242, 4242))
    with pytest.raises(StorageFailure):
        store.read("x")
    os.link(secret, home / ".dovecot.sieve")
    store.put("a", b"keep;")
    with pytest.raises(StorageFailure):  # not "rescued" into the user's directory either
        store.activate("a")
    assert not (home / "sieve" / "dovecot.orig.sieve").exists()


def test_attack_fifo_as_a_script_does_not_hang(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    (c.home / "sieve").mkdir()
    os.mkfifo(c.home / "sieve" / "f.sieve")
    c.expect('GETSCRIPT "f"\r\n', 'NO (NONEXISTENT) "There is no script by that name."')
    c.expect('SETACTIVE "f"\r\n', 'NO (NONEXISTENT) "There is no script by that name."')
    c.expect("LISTSCRIPTS\r\n", 'OK "Listscripts completed."')
