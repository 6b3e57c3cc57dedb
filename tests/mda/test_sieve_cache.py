"""The compiled-script cache (`mda.sieve.compiled`): the same decisions as parsing, used only
when only the user could have written it, rebuilt when anything it depends on changed; and
the real `mda` writing and using it (and root importing the parser only when it is needed).

The attacks: a cache planted by another user, or writable by one, or reached through a
symbolic link, would choose the actions of this user's deliveries (say, redirect all mail);
a stale cache would run a script that is not there any more."""

from __future__ import annotations

import glob
import marshal
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mda.sieve import cachewrite, compiled
from mda.sieve.errors import DEFAULT_LIMITS, SieveError
from mda.sieve.extensions import ALL_EXTENSIONS, EXTENSIONS
from mda.sieve.interpreter import Context, run_chain
from mda.sieve.message import SieveEnvelope, SieveMessage
from mda.sieve.parser import parse

from .conftest import ROOT, MdaEnv
from .test_sieve import ALICE, deliver, message, script

REPO = Path(__file__).resolve().parents[2]
CORPUS = sorted(glob.glob(str(REPO / "tests/interop/sieve_corpus/**/*.sieve"), recursive=True))


def _compiles(path: str) -> bool:
    try:
        parse(Path(path).read_text(), extensions=ALL_EXTENSIONS)
    except SieveError:
        return False  # the corpus's scripts that must be refused: nothing to cache
    return True


COMPILING = [p for p in CORPUS if _compiles(p)]
FILEINTO = 'require "fileinto";\nif header :contains "subject" "hello" { fileinto "Hello"; }\n'
DISCARD = "discard;\n"
OTHER_UID = 54321  # nobody's: stands for another user
RACY_SECONDS = compiled.RACY_SECONDS  # the real one, for the real mda


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process tests write scripts and read them back at once: the cache's "changed in
    the last seconds" rule (tested on its own below) would keep it from being written."""
    monkeypatch.setattr(compiled, "RACY_SECONDS", 0)
    yield


class Counting:
    """`parse`, counting its calls: a load that used the cache parsed nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, text: str, **kwargs: object) -> object:
        self.calls += 1
        return parse(text, **kwargs)  # type: ignore[arg-type]


def write(directory: Path, text: str, name: str = "main.sieve") -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def load(path: Path, counting: Counting, extensions: frozenset[str] = EXTENSIONS) -> object:
    return compiled.load(str(path), DEFAULT_LIMITS, extensions, parse=counting)  # type: ignore[arg-type]


def outcome(script: object, raw: bytes) -> object:
    """The actions, or the run-time error, of a script on a message."""
    try:
        return actions_of(script, raw)
    except SieveError as exc:
        return (type(exc).__name__, exc.message)


def actions_of(script: object, raw: bytes) -> list[object]:
    msg = SieveMessage.from_bytes(raw)
    env = SieveEnvelope("friend@remote.test", ALICE)
    return list(run_chain([script], msg, env, Context(now=1e9)).actions)  # type: ignore[list-item]


MESSAGES = [
    message(),
    message(subject="[list-3] invoice 42 x", extra="List-Id: <list3.example.org>\n"),
    message(sender="sender1@lists.example", subject="ticket #1234: broken"),
]


# -- the same decisions -------------------------------------------------------------------


@pytest.mark.parametrize("path", COMPILING, ids=lambda p: os.path.relpath(p, REPO))
def test_cached_tree_decides_as_the_parsed_one(path: str) -> None:
    """Every script of the Pigeonhole cross-check corpus that compiles: encoded, written with
    marshal and read back, it is the same tree and takes the same actions on the same
    messages."""
    tree = parse(Path(path).read_text(), extensions=ALL_EXTENSIONS)
    encoded = cachewrite.encode(tree)
    written = marshal.dumps(cachewrite.shared(encoded, {}))  # type: ignore[arg-type]
    again = compiled.decode(marshal.loads(written))
    assert cachewrite.encode(again) == encoded
    for raw in MESSAGES:
        assert outcome(again, raw) == outcome(tree, raw)


def test_benchmark_script_cached_decides_as_parsed(tmp_path: Path) -> None:
    from bench.mda import sieve_script

    path = write(tmp_path / "sieve", sieve_script(50))
    counting = Counting()
    first = load(path, counting)
    second = load(path, counting)
    assert counting.calls == 1  # the second came from the cache
    for raw in MESSAGES:
        assert actions_of(second, raw) == actions_of(first, raw)
    # Equal tags are one object in the cached tree (written once, `cachewrite.shared`).
    rule_0, rule_10 = (second.commands[i].branches[0][0] for i in (0, 10))  # type: ignore[attr-defined]
    assert rule_0.name == rule_10.name == "header"
    assert rule_0.tags == rule_10.tags and rule_0.tags is rule_10.tags
    assert any(actions_of(second, raw) != actions_of(second, MESSAGES[0]) for raw in MESSAGES)


def test_cache_is_written_beside_the_script_private(tmp_path: Path) -> None:
    path = write(tmp_path / "sieve", FILEINTO)
    link = tmp_path / ".dovecot.sieve"
    link.symlink_to("sieve/main.sieve")
    counting = Counting()
    load(link, counting)
    cache = tmp_path / "sieve" / ".main.sieve.mdac"
    assert compiled.cache_path(str(link)) == str(cache)
    st = cache.stat()
    assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o600
    assert not cache.name.endswith(".sieve")  # no ManageSieve script name can be a cache
    load(path, counting)
    assert counting.calls == 1


def test_script_errors_keep_their_line_and_are_not_cached(tmp_path: Path) -> None:
    path = write(tmp_path / "sieve", 'require "fileinto";\n\nfileinto "A";\nbogus;\n')
    counting = Counting()
    for _ in range(2):
        with pytest.raises(SieveError) as err:
            load(path, counting)
        assert err.value.line == 4
    assert counting.calls == 2
    assert not (tmp_path / "sieve" / ".main.sieve.mdac").exists()


def test_script_larger_than_the_limit_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "sieve", "keep;\n" + "#" * (DEFAULT_LIMITS.max_script_size + 10))
    with pytest.raises(SieveError, match="larger than"):
        load(path, Counting())


# -- stale caches -------------------------------------------------------------------------


def test_attack_stale_cache_after_edit_of_same_size_and_mtime(tmp_path: Path) -> None:
    """An edit that keeps the size and puts the old mtime back (`touch -r`) still changes
    the ctime: the old tree is not run."""
    path = write(tmp_path / "sieve", FILEINTO)
    counting = Counting()
    load(path, counting)
    st = path.stat()
    path.write_text(FILEINTO.replace("Hello", "Hellx"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    tree = load(path, counting)
    assert counting.calls == 2
    assert "Hellx" in repr(actions_of(tree, message()))


def test_attack_cache_of_another_file_is_not_used(tmp_path: Path) -> None:
    """A cache copied beside another script (another inode) is stale."""
    one = write(tmp_path / "sieve", DISCARD, "one.sieve")
    two = write(tmp_path / "sieve", FILEINTO, "two.sieve")
    counting = Counting()
    load(one, counting)
    os.replace(tmp_path / "sieve" / ".one.sieve.mdac", tmp_path / "sieve" / ".two.sieve.mdac")
    tree = load(two, counting)
    assert counting.calls == 2
    assert "Hello" in repr(actions_of(tree, message()))


def test_attack_cache_built_with_other_extensions_is_stale(tmp_path: Path) -> None:
    """A script compiled while editheader was enabled does not run once it is not."""
    path = write(tmp_path / "sieve", 'require "editheader";\naddheader "X-A" "1";\n')
    counting = Counting()
    load(path, counting, ALL_EXTENSIONS)
    with pytest.raises(SieveError, match="editheader"):
        load(path, counting, EXTENSIONS)
    assert counting.calls == 2


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"garbage",
        b"MDAC ('mda sieve cache'",
        "truncated",
        "wrong length",
        "not a tree",
        "unknown tag",
    ],
)
def test_attack_damaged_cache_is_rebuilt(tmp_path: Path, damage: object) -> None:
    path = write(tmp_path / "sieve", FILEINTO)
    counting = Counting()
    load(path, counting)
    cache = tmp_path / "sieve" / ".main.sieve.mdac"
    good = cache.read_bytes()
    header, _, body = good.partition(b"\n")
    length, _, data = body.partition(b"\n")
    if damage == "truncated":
        bad = good[:-10]
    elif damage == "wrong length":
        bad = header + b"\n" + str(int(length) + 1).encode() + b"\n" + data  # torn
    elif damage == "not a tree":
        other = marshal.dumps(["t", "keep", 1])
        bad = header + b"\n" + str(len(other)).encode() + b"\n" + other
    elif damage == "unknown tag":
        other = marshal.dumps(["Q", 1])
        bad = header + b"\n" + str(len(other)).encode() + b"\n" + other
    else:
        assert isinstance(damage, bytes)
        bad = damage
    cache.write_bytes(bad)
    tree = load(path, counting)
    assert counting.calls == 2
    assert "Hello" in repr(actions_of(tree, message()))
    assert cache.read_bytes() == good  # rebuilt


def test_recently_changed_script_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Racy: a change within the file system's timestamp granularity could keep the key."""
    monkeypatch.setattr(compiled, "RACY_SECONDS", 3600)
    path = write(tmp_path / "sieve", FILEINTO)
    counting = Counting()
    load(path, counting)
    load(path, counting)
    assert counting.calls == 2
    assert not (tmp_path / "sieve" / ".main.sieve.mdac").exists()


# -- who could have written it ------------------------------------------------------------


def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A script that files into Hello, and beside it a cache that is current for it but says
    "discard": what another user would plant to take this user's mail."""
    path = write(tmp_path / "sieve", FILEINTO)
    st = path.stat()
    key = compiled._key(st, DEFAULT_LIMITS, EXTENSIONS, "")
    cache = Path(compiled.cache_path(str(path)))
    assert cachewrite.write_cache(str(cache), key, parse(DISCARD))
    counting = Counting()
    assert actions_of(load(path, counting), message())[0].__class__.__name__ == "Discard"
    assert counting.calls == 0  # it would be used, as it is
    return path, cache


def files_into_hello(path: Path) -> bool:
    counting = Counting()
    tree = load(path, counting)
    return counting.calls == 1 and "Hello" in repr(actions_of(tree, message()))


@pytest.mark.skipif(not ROOT, reason="needs root to make a file another user's")
def test_attack_cache_owned_by_another_user_is_ignored(tmp_path: Path) -> None:
    path, cache = planted(tmp_path)
    os.chown(cache, OTHER_UID, OTHER_UID)
    cache.chmod(0o644)
    assert files_into_hello(path)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_attack_cache_writable_by_group_or_others_is_ignored(tmp_path: Path, mode: int) -> None:
    path, cache = planted(tmp_path)
    cache.chmod(mode)
    assert files_into_hello(path)
    assert cache.stat().st_mode & 0o777 == 0o600  # replaced by one only we can write


def test_attack_cache_in_a_directory_others_can_write_is_neither_read_nor_written(
    tmp_path: Path,
) -> None:
    path, cache = planted(tmp_path)
    (tmp_path / "sieve").chmod(0o1777)  # sticky and world-writable, as /tmp
    assert files_into_hello(path)
    good = cache.read_bytes()
    assert files_into_hello(path)
    assert cache.read_bytes() == good  # not rewritten there


@pytest.mark.skipif(not ROOT, reason="needs root to make a directory another user's")
def test_attack_cache_in_another_users_directory_is_ignored(tmp_path: Path) -> None:
    path, _ = planted(tmp_path)
    os.chown(tmp_path / "sieve", OTHER_UID, OTHER_UID)
    assert files_into_hello(path)


def test_attack_cache_reached_through_a_symbolic_link_is_ignored(tmp_path: Path) -> None:
    path, cache = planted(tmp_path)
    elsewhere = tmp_path / "elsewhere.mdac"
    os.replace(cache, elsewhere)
    cache.symlink_to(elsewhere)
    assert files_into_hello(path)
    assert not cache.is_symlink()  # replaced by a file of our own


# -- root's side: is the parser needed? ----------------------------------------------------


def test_root_imports_the_parser_only_without_a_current_cache(
    tmp_path: Path, env: MdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailstore.configcache import load_cached
    from mda.sieve import preload
    from mda.sieve.preload import PARSER, modules_for

    # As when the mailbox owner cannot read the installation (else nothing is preloaded).
    monkeypatch.setattr(preload, "_everyone_can_read", lambda path: False)
    config = load_cached(str(env.config))
    path = write(tmp_path / "sieve", FILEINTO)
    uid = os.geteuid()
    assert set(PARSER) <= set(modules_for([str(path)], config, uid))
    load(path, Counting())
    assert not set(PARSER) & set(modules_for([str(path)], config, uid))
    assert set(PARSER) <= set(modules_for([str(path)], config, OTHER_UID))  # not its cache
    path.write_text(FILEINTO + "keep;\n")
    assert set(PARSER) <= set(modules_for([str(path)], config, uid))


# -- the real mda -------------------------------------------------------------------------


def settle() -> None:
    """Let the script's change leave the racy window, so that mda writes the cache."""
    time.sleep(RACY_SECONDS + 0.2)


def test_mda_writes_the_cache_uses_it_and_follows_edits(env: MdaEnv) -> None:
    path = script(env, FILEINTO)
    env.make_folder(ALICE, "Hello")
    env.make_folder(ALICE, "Other")
    settle()
    cache = path.parent / ".main.sieve.mdac"
    for n in (1, 2):
        r = deliver(env, message())
        assert r.returncode == 0, r.stderr
        assert len(env.messages(ALICE, "Hello")) == n
        st = cache.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (env.uid, 0o600)
    written = cache.stat().st_mtime_ns
    deliver(env, message())
    assert cache.stat().st_mtime_ns == written  # read, not written again
    path.write_text(FILEINTO.replace('"Hello"', '"Other"'))
    r = deliver(env, message())
    assert r.returncode == 0, r.stderr
    assert len(env.messages(ALICE, "Other")) == 1 and len(env.messages(ALICE, "Hello")) == 3


def test_mda_includes_are_resolved_at_run_time(env: MdaEnv) -> None:
    """An included script has a cache of its own: editing it changes what the includer
    does, though the includer's cache is current."""
    script(env, 'require "include";\ninclude :personal "rules";\n')
    rules = env.base / "home" / "alice" / "sieve" / "rules.sieve"
    rules.write_text(FILEINTO)
    os.chown(rules, env.uid, env.gid)
    env.make_folder(ALICE, "Hello")
    env.make_folder(ALICE, "Other")
    settle()
    for _ in range(2):
        assert deliver(env, message()).returncode == 0
    assert (rules.parent / ".rules.sieve.mdac").exists()
    assert (rules.parent / ".main.sieve.mdac").exists()
    rules.write_text(FILEINTO.replace('"Hello"', '"Other"'))
    assert deliver(env, message()).returncode == 0
    assert len(env.messages(ALICE, "Hello")) == 2 and len(env.messages(ALICE, "Other")) == 1


@pytest.mark.skipif(not ROOT, reason="needs root to make a file another user's")
def test_attack_mda_ignores_a_cache_another_user_planted(env: MdaEnv) -> None:
    """mail_uid's cache (the default configuration's key) would be used, as the control
    shows; the same file owned by another user is not."""
    path = script(env, FILEINTO)
    env.make_folder(ALICE, "Hello")
    key = compiled._key(path.stat(), DEFAULT_LIMITS, EXTENSIONS, "")
    cache = path.parent / ".main.sieve.mdac"
    assert cachewrite.write_cache(str(cache), key, parse(DISCARD))
    os.chown(cache, env.uid, env.gid)
    r = deliver(env, message())
    assert r.returncode == 0 and b"discarded by sieve" in r.stderr  # the control
    os.chown(cache, OTHER_UID, OTHER_UID)
    cache.chmod(0o644)  # readable: only its owner tells it apart
    r = deliver(env, message())
    assert r.returncode == 0, r.stderr
    assert b"discarded" not in r.stderr
    assert len(env.messages(ALICE, "Hello")) == 1
