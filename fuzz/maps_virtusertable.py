"""sendmail's virtusertable (mda/maps/virtusertable.py, makemap.py): the file, its compiled
index, and addresses resolved through it.

Input: the virtusertable file (`key value` lines).

Properties:
- parsing never raises, and every key is stored in the canonical spelling (`mda.address`);
- the index answers every lookup, resolution and explanation as the file parsed in memory;
- resolving an address raises nothing, ends (loops and hops are bounded: at most
  MAX_HOPS + 1 steps, a loop ends in a 5.4.6 refusal), and only a last step may refuse.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main, quiet_logs
    from fuzz._maps import addresses, check_refusal, open_twice, write_map
    from mda.maps.virtusertable import MAX_HOPS, VirtUserTable, parse_virtusertable

quiet_logs()


def resolved(table: VirtUserTable, address: str) -> list[str]:
    hops = table.resolve(address)
    if len(hops) > MAX_HOPS + 1:
        raise Finding(f"{address!r} took {len(hops)} hops")
    if any(h.refusal is not None for h in hops[:-1]):
        raise Finding(f"{address!r}: a refusal before the last hop: {hops!r}")
    if hops and hops[-1].refusal is not None:
        check_refusal(hops[-1].refusal)
    return [h.describe() for h in hops]


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    entries, _ = parse_virtusertable(text, "virtusertable")
    keys = [k for k, _ in entries]
    path = write_map("virtusertable", data)
    _rebuilt, indexed, memory = open_twice(VirtUserTable, path, trusted=frozenset({0}))
    for key, value in entries:
        if "\0" not in key and indexed.map.get(key) != value:
            raise Finding(f"{key!r}: {indexed.map.get(key)!r} through the index, {value!r} parsed")
    for address in [*addresses(keys, data), *keys[:6]]:
        expected = resolved(memory, address)
        if resolved(indexed, address) != expected:
            raise Finding(
                f"{address!r}: {resolved(indexed, address)} through the index, {expected}"
            )
        if indexed.explain(address) != memory.explain(address):
            raise Finding(f"explain {address!r} differs")


if __name__ == "__main__":
    main(test_one_input)
