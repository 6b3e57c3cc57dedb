"""What the map targets share: a map file written where the maps trust it, opened twice (through
its compiled index, and parsed in memory), and the `:include:` files they may name."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TypeVar

from fuzz._harness import Finding, fresh_dir

M = TypeVar("M")

INCLUDES = os.path.join(os.path.dirname(fresh_dir("maps-probe")), "includes")
INCLUDE_FILES = {
    "list": 'alice, bob@example.org\n# a comment\n"|/bin/true", carol\n',
    "nested": f":include:{INCLUDES}/list, dave+x\n",
    "self": f":include:{INCLUDES}/self\n",
    "empty": "",
}


_CODE = re.compile(r"[45][0-9]{2}")
_DSN = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


def check_refusal(refusal: object) -> None:
    """A refusal goes back to the MTA as an SMTP reply: a 4xx or 5xx code and an RFC 3463
    status code, in ASCII digits."""
    code, dsn = getattr(refusal, "code", ""), getattr(refusal, "dsn", "")
    if not _CODE.fullmatch(code) or not _DSN.fullmatch(dsn):
        raise Finding(f"a refusal with code {code!r} and status {dsn!r}")


def make_includes() -> None:
    os.makedirs(INCLUDES, exist_ok=True)
    for name, text in INCLUDE_FILES.items():
        with open(os.path.join(INCLUDES, name), "w") as f:
            f.write(text)


def confine_includes() -> None:
    """`:include:` only of files in INCLUDES: a fuzzed aliases file may name any path, and
    reading /proc/kcore says nothing about our code (a real one is root's to write)."""
    from mda.maps import aliases
    from mda.maps.errors import MapError

    read = aliases._read_include

    def confined(path: str, trusted: frozenset[int]) -> str:
        if os.path.dirname(os.path.normpath(path)) != INCLUDES:
            raise MapError(path, "outside the fuzzer's include directory")
        return read(path, trusted)

    aliases._read_include = confined


def write_map(name: str, data: bytes) -> str:
    directory = fresh_dir(name)
    path = os.path.join(directory, "map")
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o644)
    return path


def open_twice(opener: Callable[..., M], path: str, **options: object) -> tuple[M, M, M]:
    """(compiled now, through the index just compiled, parsed in memory)."""
    rebuilt = opener(path, **options)
    indexed = opener(path, **options)
    memory = opener(path, write_index=False, index_path=path + ".none", **options)
    for m, origin in ((rebuilt, "rebuilt"), (indexed, "index"), (memory, "memory")):
        got = m.map.origin  # type: ignore[attr-defined]
        if got != origin:
            raise Finding(f"the map was opened from {got}, not {origin}")
    return rebuilt, indexed, memory


def addresses(keys: list[str], data: bytes) -> list[str]:
    """Addresses to look up: the first keys in two spellings, and the input's first line."""
    out = ["nobody@example.test"]
    for key in keys[:6]:
        out += [key, key + "+x@example.test"]
    out.append(data.split(b"\n", 1)[0][:200].decode("utf-8", "replace"))
    return out
