"""aliases(5) (mda/maps/aliases.py): the file, its compiled index and the expansion of
addresses through it.

Input: the aliases file.

Properties:
- parsing never raises; keys are lower-case valid local names, each once;
- the index holds exactly the parsed entries, and a map read through it answers every lookup,
  expansion, explanation and owner exactly as the file parsed in memory;
- expanding an address raises nothing but MapError (an `:include:` that cannot be read),
  ends (loops and depth are bounded), and gives each final target once.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main, quiet_logs
    from fuzz._maps import (
        addresses,
        check_refusal,
        confine_includes,
        make_includes,
        open_twice,
        write_map,
    )
    from mda.maps.aliases import Aliases, _valid_local, parse_aliases
    from mda.maps.cdb import _META_KEY, CdbReader
    from mda.maps.errors import MapError

quiet_logs()
make_includes()
confine_includes()


def outcome(aliases: Aliases, address: str) -> list[str] | None:
    try:
        targets = aliases.expand(address)
    except MapError:
        return None
    for target in targets:
        if target.refusal is not None:
            check_refusal(target.refusal)
    keys = [t._dedupe_key() for t in targets]
    if len(set(keys)) != len(keys):
        raise Finding(f"{address!r} expands to a target twice: {targets!r}")
    return [repr(t) for t in targets]


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    entries, _warnings = parse_aliases(text, "aliases")
    keys = [k for k, _ in entries]
    if len(set(keys)) != len(keys):
        raise Finding(f"a key twice: {keys}")
    for key in keys:
        if key != key.lower() or not _valid_local(key) or "@" in key:
            raise Finding(f"key {key!r}")
    path = write_map("aliases", data)
    options = {"local_domains": ["example.test"], "trusted": frozenset({0})}
    _rebuilt, indexed, memory = open_twice(Aliases, path, **options)
    with CdbReader(path + ".cdb") as reader:
        stored = [(k, v) for k, v in reader.items() if k != _META_KEY]
    want = [
        (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for k, v in entries
        if "\0" not in k
    ]
    if stored != want:
        raise Finding(f"the index holds {stored[:5]}..., the file {want[:5]}...")
    for address in addresses(keys, data):
        if outcome(memory, address) is None:
            continue  # an :include: it cannot read
        explained = memory.explain(address)
        if indexed.explain(address) != explained:
            got = indexed.explain(address)
            raise Finding(f"{address!r}: {got} through the index, {explained} from the file")
        if (indexed.lookup(address), indexed.owner_of(address)) != (
            memory.lookup(address),
            memory.owner_of(address),
        ):
            raise Finding(f"lookup or owner_of {address!r} differs")


if __name__ == "__main__":
    main(test_one_input)
