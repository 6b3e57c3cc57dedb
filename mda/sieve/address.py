"""Outbound addresses a script names: redirect, vacation's :from and :addresses, notify."""

from __future__ import annotations

from .message import _tokens, address_part, parse_address_list


def redirect_address(value: str) -> str | None:
    """The addr-spec of a "sieve-address" (RFC 5228 section 2.4.2.3: addr-spec, or phrase
    "<" addr-spec ">"; no groups, no routes, one address), or None if it is not one."""
    if any(kind == "special" and tok in ",;:" for kind, tok in _tokens(value)):
        return None
    addresses = parse_address_list(value)
    if len(addresses) != 1:
        return None
    address = addresses[0]
    if address_part(address, "domain") is None or any(c in address for c in " \t\r\n"):
        return None
    return address
