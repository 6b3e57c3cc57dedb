"""Scripts cached compiled on disk, so that a delivery neither parses its user's script again
nor imports the parser: Pigeonhole keeps `.svbin` files beside its scripts for the same reason.

Parsing a 50-rule script costs a delivery more than running it (about 2 ms, and 1 ms more to
import the lexer, grammar, checker and command table), each time the same script. `load`
looks for `.NAME.mdac` beside the script (`~/sieve/.filters.sieve.mdac` for
`~/.dovecot.sieve` -> `~/sieve/filters.sieve`): the checked tree (`nodes`) as plain tuples,
strings and numbers written with `marshal` (which imports nothing and cannot make objects
other than those; `pickle` could, and costs an import). Pigeonhole's `.svbin` files are never
read, and no cache name ends in ".sieve", so no ManageSieve script name can make one.

When a cache is used (each a `test_attack_*` in tests/mda/test_sieve_cache.py):

- Its key is everything the tree depends on: the script's device, inode, size, mtime and
  ctime (of the file opened, after symbolic links), the enabled extensions, the limits, the
  script's name (for includes) and the format (`FORMAT`, the node classes' slots). Anything
  else is stale: the script is parsed again and the cache rewritten.
- Who could have written it: the cache file must be a regular file (not a link) owned by the
  user we run as, writable by nobody else, in a directory owned by that user or root that
  nobody else can write to. Otherwise it is ignored and never written: a cache another user
  could write would let that user choose the actions of this user's deliveries (a redirect
  of all mail). Within those rules only the user can write it, who can write the script too.
- Any file that does not decode to exactly the tree's shape (truncated, garbage, a class
  that is not a node, more than `MAX_FACTOR` times the script's size limit) is stale.
- It is written (by `cachewrite.py`, imported only then) atomically (a new file, then
  rename(2)), mode 0600, never fsynced: a torn file after a crash is only stale. It is not
  written for a script changed in the last `RACY_SECONDS` (a change within the file
  system's timestamp granularity could leave the key as it was: "racy git"), nor for a tree
  with an object it cannot write; failing to write it (a full disk, a read-only home) is
  not an error, the delivery goes on.

Includes are resolved when the script runs (`delivery._Includes`), each through `load`: an
included script has its own cache, keyed by its own file.
"""

from __future__ import annotations

import marshal
import os
import stat

from .errors import Limits, SieveError
from .matching import Matcher, Regex
from .nodes import If, MatchSpec, Node, Script
from .strings import Template

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FORMAT = 4
SUFFIX = ".mdac"
RACY_SECONDS = 2
MAX_FACTOR = 32  # a cache file larger than this many times max_script_size is not read


# tag -> (class, the slots written, in this order)
_CLASSES: dict[str, tuple[type[object], tuple[str, ...]]] = {
    "N": (Node, Node.__slots__),
    "I": (If, If.__slots__),
    "M": (MatchSpec, MatchSpec.__slots__),
    "X": (Matcher, Matcher.__slots__),
    "P": (Template, Template.__slots__),
    "S": (Script, Script.__slots__),
}
# `matching.Regex`: its compiled form is not written, but made again when a value needs it
REGEX_SLOTS = ("compiled", "ignore_case", "literals", "pattern")


def _class_table(tag: str) -> tuple[type[object], tuple[str, ...]] | None:
    if tag == "R":
        return Regex, REGEX_SLOTS
    return _CLASSES.get(tag)


# The modules whose code decides what tree a script compiles to, or how it is written here.
_TREE_MODULES = (
    "compiled",
    "cachewrite",
    "nodes",
    "parser",
    "lexer",
    "grammar",
    "checker",
    "commands",
    "matching",
    "strings",
    "stringparse",
    "regex",
    "extensions",
)
_SHAPE: list[tuple[object, ...]] = []


def _shape() -> tuple[object, ...]:
    """Part of the key: the node classes' slots, and the size and mtime of the source of
    every module that shapes the tree (`_TREE_MODULES`), so that a cache written by another
    version of the code (a fix in how a command is checked, say) is stale, not run."""
    if not _SHAPE:
        here = os.path.dirname(__file__)
        sources: list[object] = []
        for name in _TREE_MODULES:
            try:
                st = os.stat(os.path.join(here, name + ".py"))
                sources.append((name, st.st_size, st.st_mtime_ns))
            except OSError:
                sources.append((name, None))  # an installation without sources
        slots = tuple((tag, slots) for tag, (_, slots) in _CLASSES.items())
        _SHAPE.append((slots, REGEX_SLOTS, tuple(sources)))
    return _SHAPE[0]


def _node(value: list[object]) -> Node:
    """A node from its whole list (tag first): the most frequent object, so its members
    are decoded here, without the list of decoded items `decode` makes for the others."""
    obj = _new(Node)
    _, args, block, line, match, name, tags, tests = value
    obj.line, obj.name = line, name  # type: ignore[assignment]
    obj.args = decode(args) if type(args) is list else args  # type: ignore[assignment]
    obj.block = decode(block) if type(block) is list else block  # type: ignore[assignment]
    obj.match = decode(match) if type(match) is list else match  # type: ignore[assignment]
    obj.tags = decode(tags) if type(tags) is list else tags  # type: ignore[assignment]
    obj.tests = decode(tests) if type(tests) is list else tests  # type: ignore[assignment]
    return obj


def _if(items: list[object]) -> If:
    obj = _new(If)
    obj.line, obj.name = items[0], items[1]  # type: ignore[assignment]
    obj.branches = tuple(zip(items[2::2], items[3::2], strict=True))  # type: ignore[arg-type]
    return obj


def _match_spec(items: list[object]) -> MatchSpec:
    obj = _new(MatchSpec)
    obj.capture, obj.comparator, obj.keys, obj.match_type, obj.matcher, obj.relation = items  # type: ignore[assignment]
    return obj


def _spec_with_matcher(items: list[object]) -> MatchSpec:
    spec = _new(MatchSpec)
    matcher = _new(Matcher)
    capture, comparator, keys, match_type, relation, matcher_keys, prepared = items
    spec.capture, spec.comparator, spec.keys = capture, comparator, keys  # type: ignore[assignment]
    spec.match_type, spec.relation, spec.matcher = match_type, relation, matcher  # type: ignore[assignment]
    matcher.comparator, matcher.keys, matcher.match_type = comparator, matcher_keys, match_type  # type: ignore[assignment]
    matcher.prepared, matcher.relation = prepared, relation  # type: ignore[assignment]
    return spec


def _matcher(items: list[object]) -> Matcher:
    obj = _new(Matcher)
    obj.comparator, obj.keys, obj.match_type, obj.prepared, obj.relation = items  # type: ignore[assignment]
    return obj


def _template(items: list[object]) -> Template:
    obj = _new(Template)
    (obj.pieces,) = items  # type: ignore[assignment]
    return obj


def _script(items: list[object]) -> Script:
    obj = _new(Script)
    obj.commands, obj.extensions, obj.name = items  # type: ignore[assignment]
    return obj


def _regex(items: list[object]) -> Regex:
    obj = _new(Regex)
    obj.compiled, obj.ignore_case, obj.literals, obj.pattern = items  # type: ignore[assignment]
    return obj


def _dict(items: list[object]) -> dict[object, object]:
    if len(items) % 2:
        raise ValueError("not a cache")
    return dict(zip(items[::2], items[1::2], strict=True))


_new = object.__new__
# What each tag is made into. The builders assign the slots in the order of `_CLASSES`
# (checked below): one tuple assignment is several times faster than a setattr loop, and
# reading the cache is on every delivery's path.
_BUILD: dict[object, Callable[[list[object]], object]] = {
    "t": tuple,
    "l": list,
    "f": frozenset,
    "d": _dict,
    "I": _if,
    "M": _match_spec,
    "m": _spec_with_matcher,
    "X": _matcher,
    "P": _template,
    "S": _script,
    "R": _regex,
}
if (
    Node.__slots__ != ("args", "block", "line", "match", "name", "tags", "tests")
    or If.__slots__ != ("branches", "line", "name")
    or MatchSpec.__slots__ != ("capture", "comparator", "keys", "match_type", "matcher", "relation")
    or Matcher.__slots__ != ("comparator", "keys", "match_type", "prepared", "relation")
    or Template.__slots__ != ("pieces",)
    or Script.__slots__ != ("commands", "extensions", "name")
    or Regex.__slots__ != REGEX_SLOTS
):
    raise ImportError("mda.sieve.compiled: the node classes changed; update the builders")


def decode(value: object) -> object:
    """The tree `cachewrite.encode` wrote. A malformed one raises ValueError, TypeError, KeyError or
    IndexError, and is only stale. Plain values are taken as marshal made them: the file is
    the user's own (see the module docstring), and a value of the wrong type only fails the
    run, which keeps the message (RFC 5228 section 2.10.6)."""
    if type(value) is not list:
        return value
    tag = value[0]
    if tag == "N":
        return _node(value)
    if tag == "Z":
        return LazyBlock(value[1])
    return _BUILD[tag]([decode(v) if type(v) is list else v for v in value[1:]])


class LazyBlock:
    """The commands of an if/elsif/else branch, decoded the first time the branch runs. A
    block that does not decode fails that run (`run_chain`: the message is kept)."""

    __slots__ = ("commands", "encoded")

    def __init__(self, encoded: object) -> None:
        self.encoded = encoded
        self.commands: tuple[object, ...] | None = None

    def __iter__(self) -> Iterator[object]:
        if self.commands is None:
            commands = decode(self.encoded)
            if type(commands) is not tuple:
                raise ValueError("not a cache")
            self.commands = commands
            self.encoded = None
        return iter(self.commands)


# -- the cache file --------------------------------------------------------------------------


def cache_path(script_path: str) -> str:
    """Where the cache of the script at `script_path` (after symbolic links) lives."""
    real = os.path.realpath(script_path)
    head, tail = os.path.split(real)
    return os.path.join(head, f".{tail}{SUFFIX}")


def _only_ours(st: os.stat_result, owners: tuple[int, ...]) -> bool:
    """Owned by one of `owners` and writable by nobody else (no group or other write)."""
    return st.st_uid in owners and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _directory_is_safe(directory: str, uid: int) -> bool:
    try:
        st = os.stat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _only_ours(st, (uid, 0))


def _key(
    st: os.stat_result, limits: Limits, extensions: frozenset[str], name: str
) -> tuple[object, ...]:
    return (
        "mda sieve cache",
        FORMAT,
        _shape(),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        tuple(sorted(extensions)),
        tuple(getattr(limits, n) for n in limits.__slots__),
        name,
    )


def _header(key: tuple[object, ...]) -> bytes:
    """The file's first line: its key, as `repr` writes it (marshal's output for equal values
    may differ, repr's does not). Then a line with the length of the marshal data."""
    return b"MDAC " + repr(key).encode("utf-8", "surrogateescape") + b"\n"


def _open_trusted(where: str, uid: int, limits: Limits) -> tuple[int, int] | None:
    """(fd, size) of the cache file if only `uid` could have written it; else None."""
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    size_limit = MAX_FACTOR * limits.max_script_size + 65536
    if not stat.S_ISREG(st.st_mode) or not _only_ours(st, (uid,)) or st.st_size > size_limit:
        os.close(fd)
        return None
    return fd, st.st_size


def _body_length(data: bytes, header: bytes, size: int) -> int | None:
    """The length of the marshal data the file says it holds, if `data` (its start) has the
    expected header and the file is exactly as long as it says (not torn)."""
    if not data.startswith(header):
        return None
    end = data.find(b"\n", len(header), len(header) + 21)
    digits = data[len(header) : end]
    if end < 0 or not digits.isdigit():
        return None
    length = int(digits)
    return length if size == end + 1 + length else None


def read_cache(where: str, key: tuple[object, ...], limits: Limits) -> Script | None:
    """The cached tree at `where` if it may be trusted and its key is `key`; else None."""
    opened = _open_trusted(where, os.geteuid(), limits)
    if opened is None:
        return None
    fd, size = opened
    try:
        data = os.read(fd, size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    header = _header(key)
    if _body_length(data, header, len(data)) is None:
        return None
    try:
        body = data[data.index(b"\n", len(header)) + 1 :]
        script = decode(marshal.loads(body))
    except (ValueError, EOFError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return script if type(script) is Script else None


def is_current(path: str, uid: int, limits: Limits, extensions: frozenset[str]) -> bool:
    """Whether the script at `path` has a cache that `uid`'s run will use: what root asks,
    before it drops to `uid`, to know whether the run needs the parser (`preload`). Only
    the file's metadata and first line are read, never its data."""
    try:
        key = _key(os.stat(path), limits, extensions, "")
    except OSError:
        return False
    where = cache_path(path)
    if not _directory_is_safe(os.path.dirname(where), uid):
        return False
    opened = _open_trusted(where, uid, limits)
    if opened is None:
        return False
    fd, size = opened
    header = _header(key)
    try:
        start = os.read(fd, len(header) + 21)
    except OSError:
        return False
    finally:
        os.close(fd)
    return _body_length(start, header, size) is not None


def _parser(where: str | None) -> Callable[..., Script]:
    """`parser.parse`. It is imported late only when root saw a current cache (`is_current`):
    if that cache turned out unusable after all and this process cannot import the parser
    (our installation unreadable to the mailbox owner), the cache is removed and the
    delivery deferred; the MTA's retry finds no cache, and root imports the parser first."""
    try:
        from .parser import parse
    except ImportError:
        from mda.errors import TempFailure

        if where is not None:
            try:
                os.unlink(where)
            except OSError:
                pass
        raise TempFailure("the Sieve parser cannot be imported now; try again later") from None
    return parse


def load(
    path: str,
    limits: Limits,
    extensions: frozenset[str],
    name: str = "",
    parse: Callable[..., Script] | None = None,
) -> Script:
    """The checked script at `path`: from its cache when one may be trusted and is current,
    else read and parsed (SieveError with the line, as `parser.parse`; a script larger than
    the limit is one too) and cached for the next delivery. OSError if it cannot be read.

    `parse` is for tests (to count parses); by default `parser.parse`, imported only here."""
    import time

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        before = os.fstat(fd)
        key = _key(before, limits, extensions, name)
        where = cache_path(path)
        uid = os.geteuid()
        trusted_dir = _directory_is_safe(os.path.dirname(where), uid)
        if trusted_dir:
            script = read_cache(where, key, limits)
            if script is not None:
                return script
        chunks = []
        size = 0
        while size <= limits.max_script_size:
            chunk = os.read(fd, limits.max_script_size + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limits.max_script_size:
            raise SieveError(f"script larger than {limits.max_script_size} octets", 1)
        text = b"".join(chunks).decode("utf-8", "replace")
        if parse is None:
            parse = _parser(where if trusted_dir else None)
        script = parse(text, limits=limits, extensions=extensions, name=name)
        after = os.fstat(fd)
        changed = max(after.st_mtime_ns, after.st_ctime_ns)
        settled = time.time_ns() - changed >= RACY_SECONDS * 1_000_000_000
        if (
            trusted_dir
            and settled
            and _key(after, limits, extensions, name) == key
            and os.stat(os.path.dirname(where)).st_uid == uid
        ):
            try:
                from .cachewrite import write_cache
            except ImportError:  # our installation unreadable here: only not cached
                return script
            write_cache(where, key, script)
        return script
    finally:
        os.close(fd)
