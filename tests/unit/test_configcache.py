"""The delivery agent's configuration cache: used when trustworthy and current, never otherwise.

Whether a load came from the cache is seen from outside, in a fresh interpreter: a load from the
cache never imports `mailstore.config` (nor anything costly), a load from the file must.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstore import configcache
from mailstore.config import Config, ConfigError, Endpoint, load_config
from mailstore.configcache import cache_path, load_cached, write_cache
from tests.unit.test_imports import COSTLY

ROOT = os.geteuid() == 0

FULL = """\
[listen]
imap  = "127.0.0.1:143"
imaps = "[::1]:993"
pop3  = ":110"
pop3s = ""

[tls]
cert = "tls/cert.pem"        # relative: against the configuration's directory
key  = "/etc/mra/key.pem"

[auth]
passwd_file = "passwd"
allow_plaintext = true

[mail]
location = "maildir:/var/vmail/%d/%n"
max_message_size = 1048576

[maps]
aliases = "aliases"
virtusertable = "/etc/mail/virtusertable"
access = "/etc/mail/access"
local_domains = "local-host-names"

[mda]
sendmail = "/usr/lib/sendmail"
quota_bounce = true
duplicate_window = 3600
program_timeout = 30
mail_uid = 5000
program_shell = true
sieve_before = "sieve/before.sieve"
sieve_after = "/etc/mra/after.sieve"

[server]
workers = 4
user = "mra"
"""

# Run in a fresh interpreter: load, then report what was imported (before `json`, which imports
# `re`) and a few settings.
LOADER = """\
import sys
from mailstore.configcache import load_cached
config = load_cached(sys.argv[1])
modules = sorted(sys.modules)
import json
print(json.dumps({
    "modules": modules,
    "workers": config.server.workers,
    "location": config.mail.location,
    "aliases": config.maps.aliases,
}))
"""


def load_in_subprocess(path: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-S", "-c", LOADER, path],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def from_cache(path: str) -> bool:
    """Load in a fresh interpreter; True if that was from the cache (no mailstore.config)."""
    modules = load_in_subprocess(path)["modules"]
    assert isinstance(modules, list)
    return "mailstore.config" not in modules


def write(directory: Path, text: str, name: str = "mra.toml") -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def set_mtime(path: str, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def assert_same(cached: object, real: Config) -> None:
    """Every attribute of `real`, recursively, is in `cached` with the same value and type."""
    if isinstance(cached, Config):
        assert cached == real
        return
    assert getattr(cached, "path") == real.path  # noqa: B009
    for section in dataclasses.fields(real):
        if section.name == "path":
            continue
        real_section = getattr(real, section.name)
        cached_section = getattr(cached, section.name)
        for setting in dataclasses.fields(real_section):
            want = getattr(real_section, setting.name)
            got = getattr(cached_section, setting.name)
            if isinstance(want, Endpoint):
                want = (want.host, want.port)  # the cache keeps plain tuples
            where = f"{section.name}.{setting.name}"
            assert (type(got), got) == (type(want), want), where


# --- the cache is written and used ---------------------------------------------------------------


def test_cache_is_written_and_then_used(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    assert not os.path.exists(cache_path(path))
    config = load_cached(path)
    assert isinstance(config, Config)  # the first load is the real thing
    st = os.lstat(cache_path(path))
    assert st.st_mode & 0o777 == 0o644
    assert st.st_uid == os.geteuid()

    cached = load_cached(path)
    assert not isinstance(cached, Config)
    assert_same(cached, config)
    assert from_cache(path)


def test_a_load_from_the_cache_imports_nothing_costly(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    result = load_in_subprocess(path)
    modules = result["modules"]
    assert isinstance(modules, list)
    assert "mailstore.config" not in modules
    assert [m for m in modules if m.split(".")[0] in COSTLY] == []
    assert result["workers"] == 4
    assert result["location"] == "/var/vmail/%d/%n"
    assert result["aliases"] == str(tmp_path / "aliases")


def test_cached_config_equals_the_real_one(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    real = load_config(path)
    write_cache(path)
    cached = load_cached(path)
    assert not isinstance(cached, Config)
    assert_same(cached, real)
    assert cached.tls.cert == str(tmp_path / "tls" / "cert.pem")
    assert cached.listen.enabled() == real.listen.enabled()
    assert cached.listen.pop3s is None
    assert cached.mda.mail_uid == "5000"
    assert cached.mda.sieve_before == str(tmp_path / "sieve" / "before.sieve")


def test_cached_config_is_read_only(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    cached = load_cached(path)
    with pytest.raises(AttributeError):
        cached.server.workers = 8  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cached.server = cached.server  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del cached.mail.location
    with pytest.raises(AttributeError):
        cached.mail.other = 1  # type: ignore[attr-defined]
    assert cached.server.workers == 4
    # Copies and pickles rebuild it, read-only again.
    for twin in (copy.copy(cached), copy.deepcopy(cached), pickle.loads(pickle.dumps(cached))):
        assert twin == cached
        assert hash(twin) == hash(cached)
        assert_same(twin, load_config(path))
    assert "workers=4" in repr(cached.server)


def test_defaults_need_no_file_and_no_config_module() -> None:
    assert_same(load_cached(None), load_config(None))
    code = (
        "import sys\n"
        "from mailstore.configcache import load_cached\n"
        "load_cached(None)\n"
        "print('mailstore.config' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert out.stdout.strip() == "False"


def test_the_cached_layout_is_configs() -> None:
    """configcache describes Config without importing it: the two must not drift apart."""
    defaults = Config()
    expected = {
        section.name: {
            setting.name: getattr(getattr(defaults, section.name), setting.name)
            for setting in dataclasses.fields(getattr(defaults, section.name))
        }
        for section in dataclasses.fields(Config)
        if section.name != "path"
    }
    assert expected == configcache._DEFAULTS
    # Same order too, so that the reprs read like Config's.
    assert list(configcache._DEFAULTS) == list(expected)
    for name, section in expected.items():
        assert list(configcache._DEFAULTS[name]) == list(section)


# --- a stale cache is not used -------------------------------------------------------------------


def test_stale_cache_after_an_edit(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    before = os.stat(path)
    write(tmp_path, FULL.replace("workers = 4", "workers = 16"))
    set_mtime(path, before.st_mtime_ns + 2_000_000_000)
    assert not from_cache(path)  # and that load rewrote the cache...
    assert from_cache(path)  # ...which the next one uses
    assert load_cached(path).server.workers == 16


def test_stale_cache_after_a_touch(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    set_mtime(path, os.stat(path).st_mtime_ns - 5_000_000_000)
    assert not from_cache(path)


def test_edit_invisible_to_stat_is_still_seen(tmp_path: Path) -> None:
    """Same inode, same size, same mtime (an edit within one timestamp tick): new content."""
    path = write(tmp_path, FULL)
    write_cache(path)
    before = os.stat(path)
    write(tmp_path, FULL.replace("workers = 4", "workers = 5"))
    set_mtime(path, before.st_mtime_ns)
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert load_cached(path).server.workers == 5


def test_replaced_file_is_seen(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    stamp = os.stat(path)
    other = write(tmp_path, FULL.replace("workers = 4", "workers = 6"), name="new.toml")
    set_mtime(other, stamp.st_mtime_ns)
    os.replace(other, path)
    assert load_cached(path).server.workers == 6


def test_moved_configuration_is_read_again(tmp_path: Path) -> None:
    """Relative paths are resolved against the configuration's directory."""
    old = tmp_path / "old"
    old.mkdir()
    write_cache(write(old, FULL))
    new = tmp_path / "new"
    old.rename(new)
    path = str(new / "mra.toml")
    assert not from_cache(path)
    assert load_cached(path).maps.aliases == str(new / "aliases")


def test_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, FULL)
    monkeypatch.chdir(tmp_path)
    write_cache("mra.toml")
    cached = load_cached("mra.toml")
    assert not isinstance(cached, Config)
    assert cached.path == "mra.toml"
    assert_same(cached, load_config("mra.toml"))


# --- an untrusted cache is not used --------------------------------------------------------------


def test_group_or_world_writable_cache_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    for mode in (0o664, 0o646):
        write_cache(path)
        os.chmod(cache_path(path), mode)
        assert not from_cache(path)
        # That load, by the owner, put a trustworthy one in its place.
        assert os.stat(cache_path(path)).st_mode & 0o777 == 0o644
        assert from_cache(path)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_cache_owned_by_another_user_is_ignored(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    path = write(tmp_path, FULL)
    write_cache(path)
    os.chown(cache_path(path), nobody.pw_uid, nobody.pw_gid)
    assert not from_cache(path)
    assert os.stat(cache_path(path)).st_uid == 0  # rewritten by root
    assert from_cache(path)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_cache_owned_by_the_configurations_owner_is_used(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    path = write(tmp_path, FULL)
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    write_cache(path)
    os.chown(cache_path(path), nobody.pw_uid, nobody.pw_gid)
    assert from_cache(path)


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_attack_cache_is_not_used_once_the_configuration_is_writable(
    tmp_path: Path, mode: int
) -> None:
    """A cache written while the file was safe must not keep vouching for it after a chmod
    (which leaves size and mtime alone), and no cache is written for such a file."""
    path = write(tmp_path, FULL)
    write_cache(path)
    assert from_cache(path)
    os.chmod(path, mode)
    assert not from_cache(path)
    os.unlink(cache_path(path))
    assert_same(load_cached(path), load_config(path))
    assert not os.path.exists(cache_path(path))
    with pytest.raises(PermissionError):
        write_cache(path)


@pytest.mark.skipif(not ROOT, reason="chown needs root")
def test_attack_cache_is_not_used_after_the_configuration_changes_owner(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    os.chown(path, pwd.getpwnam("nobody").pw_uid, -1)
    assert not from_cache(path)


def test_symlinked_cache_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    os.rename(cache_path(path), tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", cache_path(path))
    assert not from_cache(path)
    assert not os.path.islink(cache_path(path))  # replaced, not written through
    assert from_cache(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xe9\x00\x00", None])
def test_corrupt_cache_is_ignored(tmp_path: Path, content: bytes | None) -> None:
    path = write(tmp_path, FULL)
    if content is None:
        # Valid marshal data of the wrong shape, as another version could leave it.
        import marshal

        content = marshal.dumps(("mailstore.configcache/1", (1, 2, 3, 4)))
    Path(cache_path(path)).write_bytes(content)
    os.chmod(cache_path(path), 0o644)
    assert_same(load_cached(path), load_config(path))
    assert from_cache(path)


def test_cache_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    os.mkfifo(cache_path(path), 0o644)
    assert_same(load_cached(path), load_config(path))
    assert os.path.isfile(cache_path(path))  # replaced by a real cache
    assert from_cache(path)


# --- writing ---------------------------------------------------------------------------------


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory everyone can enter (tmp_path's parents are private to us)."""
    directory = Path(tempfile.mkdtemp(prefix="configcache-"))
    os.chmod(directory, 0o755)
    yield directory
    os.chmod(directory, 0o755)
    shutil.rmtree(directory)


UNPRIVILEGED_LOADER = """\
import json, os, sys
import mailstore.config, mailstore.configcache  # first: the stdlib may be unreadable to nobody
os.setgroups([])
os.setgid(int(sys.argv[3]))
os.setuid(int(sys.argv[2]))
config = mailstore.configcache.load_cached(sys.argv[1])
print(json.dumps([type(config).__name__, config.server.workers]))
"""


def load_as_nobody(path: str) -> object:
    """Load in a fresh interpreter running as nobody (we are root); what came back."""
    nobody = pwd.getpwnam("nobody")
    out = subprocess.run(
        [sys.executable, "-S", "-c", UNPRIVILEGED_LOADER, path, *map(str, nobody[2:4])],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    return json.loads(out.stdout)


def test_unwritable_directory_still_works(public_dir: Path) -> None:
    path = write(public_dir, FULL)
    os.chmod(path, 0o644)
    if ROOT:
        # The delivery agent as the unprivileged user it usually runs as.
        assert load_as_nobody(path) == ["Config", 4]
    else:
        os.chmod(public_dir, 0o555)
        assert_same(load_cached(path), load_config(path))
    assert sorted(os.listdir(public_dir)) == ["mra.toml"]  # no cache, no temporary file


@pytest.mark.skipif(not ROOT, reason="needs another user to be")
def test_no_cache_is_written_that_would_not_be_trusted(public_dir: Path) -> None:
    """Somebody else (not root, not the owner) does not leave a cache that nobody would use."""
    path = write(public_dir, FULL)
    os.chmod(public_dir, 0o777)
    assert load_as_nobody(path) == ["Config", 4]
    assert sorted(os.listdir(public_dir)) == ["mra.toml"]


def test_write_failure_is_silent_for_load_but_not_for_write_cache(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    os.mkdir(cache_path(path))  # cannot be replaced by a file, even by root
    assert_same(load_cached(path), load_config(path))
    with pytest.raises(OSError):
        write_cache(path)
    assert sorted(os.listdir(tmp_path)) == ["mra.toml", "mra.toml.cache"]  # no temporary left
    assert os.listdir(cache_path(path)) == []


def test_write_cache_rewrites_a_current_cache(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    first = os.stat(cache_path(path)).st_ino
    config = write_cache(path)
    assert isinstance(config, Config)
    assert config == load_config(path)
    assert os.stat(cache_path(path)).st_ino != first


def test_cache_is_no_more_readable_than_the_configuration(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    os.chmod(path, 0o600)
    write_cache(path)
    assert os.stat(cache_path(path)).st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    write_cache(path)
    st = os.stat(cache_path(path))
    assert st.st_mode & 0o777 == 0o640
    assert st.st_gid == os.stat(path).st_gid
    assert from_cache(path)


def test_umask_does_not_change_the_mode(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    os.chmod(path, 0o644)
    old = os.umask(0o077)
    try:
        write_cache(path)
    finally:
        os.umask(old)
    assert os.stat(cache_path(path)).st_mode & 0o777 == 0o644


# --- errors --------------------------------------------------------------------------------------


def test_bad_configuration_raises_and_writes_no_cache(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nworkers = 0\n")
    for load in (load_cached, write_cache):
        with pytest.raises(ConfigError) as info:
            load(path)
        assert "[server] workers must be at least 1" in str(info.value)
    assert not os.path.exists(cache_path(path))


def test_bad_edit_is_not_hidden_by_the_cache(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    write(tmp_path, FULL + "[bogus]\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_cached(path)


def test_missing_configuration(tmp_path: Path) -> None:
    path = str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_cached(path)
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        write_cache(path)


def test_removed_configuration_is_not_served_from_its_cache(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    write_cache(path)
    os.unlink(path)
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_cached(path)


def test_directory_as_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_cached(str(tmp_path))
