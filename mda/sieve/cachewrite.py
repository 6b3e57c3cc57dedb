"""Writing the compiled-script cache (`compiled.py` reads it and says what it holds and
when it is trusted): apart, because a delivery whose script is cached, the usual one, never
writes, and what it imports is what it pays for (tests/mda/test_sieve_cache.py).
"""

from __future__ import annotations

import marshal
import os

from .compiled import _CLASSES, REGEX_SLOTS, LazyBlock, _header
from .matching import Matcher, Regex
from .nodes import If, MatchSpec, Script

_SCALARS = (str, int, bytes, float, bool, type(None))


class Uncacheable(Exception):
    """The tree holds an object the cache cannot represent: the script is not cached."""


# -- encoding: lists are ours, everything else is plain data -------------------------------


def _plain(value: object) -> bool:
    """Whether `value` is written as it is: scalars, and tuples, frozensets and dicts of
    plain values. Lists never are: in a cache, a list is always an encoded object."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is tuple or kind is frozenset:
        return all(_plain(v) for v in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(_plain(k) and _plain(v) for k, v in value.items())  # type: ignore[attr-defined]
    return False


def encode(value: object) -> object:
    if _plain(value):
        return value
    kind = type(value)
    if kind is tuple:
        return ["t", *(encode(v) for v in value)]  # type: ignore[attr-defined]
    if kind is list:
        return ["l", *(encode(v) for v in value)]  # type: ignore[attr-defined]
    if kind is frozenset:
        return ["f", *(encode(v) for v in value)]  # type: ignore[attr-defined]
    if kind is dict:
        out: list[object] = ["d"]
        for k, v in value.items():  # type: ignore[attr-defined]
            out += [encode(k), encode(v)]
        return out
    if isinstance(value, If):
        # Each branch's block is decoded only when the branch runs (`LazyBlock`): most
        # rules of a filter set do not match, and their blocks are half the tree. The
        # branches are written flat, (test, block) after (test, block): one list to decode
        # per rule rather than three.
        flat: list[object] = ["I", value.line, value.name]
        for test, body in value.branches:
            flat += [encode(test), ["Z", encode(tuple(body))]]
        return flat
    if isinstance(value, LazyBlock):
        return ["Z", encode(tuple(value))]
    if kind is MatchSpec and _with_own_matcher(value):  # type: ignore[arg-type]
        # The usual case, all keys literal: the matcher is written inside its spec ("m"),
        # one list to decode rather than two.
        spec: MatchSpec = value  # type: ignore[assignment]
        matcher = spec.matcher
        assert matcher is not None
        return [
            "m",
            *(encode(getattr(spec, s)) for s in MATCH_SPEC_SLOTS),
            encode(matcher.keys),
            encode(matcher.prepared),
        ]
    for tag, (cls, slots) in _CLASSES.items():
        if kind is cls:
            return [tag, *(encode(getattr(value, s)) for s in slots)]
    if kind is Regex:  # made again from the pattern when a value needs it
        return ["R", None, *(encode(getattr(value, s)) for s in REGEX_SLOTS[1:])]
    raise Uncacheable(kind.__name__)


# The slots of a MatchSpec written in an "m" list, before its matcher's keys and prepared keys.
MATCH_SPEC_SLOTS = ("capture", "comparator", "keys", "match_type", "relation")


def _with_own_matcher(spec: MatchSpec) -> bool:
    """Whether the spec's matcher is the one its own fields make (all keys literal)."""
    matcher = spec.matcher
    return (
        type(matcher) is Matcher
        and matcher.comparator == spec.comparator
        and matcher.match_type == spec.match_type
        and matcher.relation == spec.relation
    )


def shared(value: object, memo: dict[object, object]) -> object:
    """The encoded tree with equal plain tuples, frozensets and dicts made one object each:
    marshal writes the repeats as references, and reading the cache builds each once (a
    filter set repeats its tags, `{'index': 0, 'last': False}`, and its header names a lot;
    about a third less to read). Sharing is safe because nothing changes a checked tree
    (nodes.py)."""
    kind = type(value)
    if kind is list:
        items: list[object] = value  # type: ignore[assignment]
        return [items[0], *(shared(v, memo) for v in items[1:])]
    key: object
    if kind is tuple or kind is frozenset:
        value = kind(shared(v, memo) for v in value)  # type: ignore[attr-defined]
        key = (kind, value)
    elif kind is dict:
        value = {k: shared(v, memo) for k, v in value.items()}  # type: ignore[attr-defined]
        key = (kind, tuple(value.items()))
    else:
        return value
    try:
        return memo.setdefault(key, value)
    except TypeError:  # holds something unhashable (a dict): written as it is
        return value


def write_cache(where: str, key: tuple[object, ...], script: Script) -> bool:
    """Write the cache atomically; False (and nothing left behind) when it cannot be."""
    try:
        body = marshal.dumps(shared(encode(script), {}))  # type: ignore[arg-type]  # plain data
    except (Uncacheable, ValueError, RecursionError):
        return False
    data = _header(key) + str(len(body)).encode() + b"\n" + body
    tmp = f"{where}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError:
        return False
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, where)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True
