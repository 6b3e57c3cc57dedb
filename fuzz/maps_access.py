"""sendmail's access map (mda/maps/access.py): the file, its compiled index, and the
sender, recipient and connection checks made through it.

Input: the access file (`[Tag:]key value` lines).

Properties:
- parsing never raises;
- the index answers every check and explanation as the file parsed in memory;
- a decision is one of the actions the map knows, and a refusal has a 4xx or 5xx code;
- no check raises, whatever the address or host.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main, quiet_logs
    from fuzz._maps import addresses, check_refusal, open_twice, write_map
    from mda.maps.access import AccessDecision, AccessMap, parse_access

quiet_logs()
ACTIONS = {"OK", "RELAY", "REJECT", "DISCARD", "ERROR", "QUARANTINE", "SKIP"}


def decided(decision: AccessDecision | None) -> str:
    if decision is None:
        return "-"
    if decision.action not in ACTIONS:
        raise Finding(f"action {decision.action!r}")
    if decision.refusal is not None:
        check_refusal(decision.refusal)
    return decision.describe()


def checks(access: AccessMap, address: str) -> list[str]:
    host, _, ip = address.partition(" ")
    return [
        decided(access.check_sender(address)),
        decided(access.check_recipient(address)),
        decided(access.check_recipient(address, local=False)),
        decided(access.check_connect(host or None, ip or "192.0.2.1")),
        *access.explain("From", address),
    ]


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    entries, _ = parse_access(text, "access")
    keys = [k.partition(":")[2] or k for k, _ in entries]
    path = write_map("access", data)
    _rebuilt, indexed, memory = open_twice(AccessMap, path, trusted=frozenset({0}))
    for address in [*addresses(keys, data), "mail.example.test 192.0.2.7", "[192.0.2.7]"]:
        expected = checks(memory, address)
        if checks(indexed, address) != expected:
            raise Finding(f"{address!r}: {checks(indexed, address)} through the index, {expected}")


if __name__ == "__main__":
    main(test_one_input)
