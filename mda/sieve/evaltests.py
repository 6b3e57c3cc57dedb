"""The tests of RFC 5228 section 5 (with their extensions' tags; the extensions' own tests
are in `exttests`): each takes the run and its node and answers True or False. Values are
gathered first, then matched by `Run.match`, which applies the "any combination" rule,
:count, and sets the match variables."""

from __future__ import annotations

from . import nodes
from .interpreter import Run
from .message import (
    ADDRESS_HEADERS,
    address_part,
    decode_header_value,
    envelope_address,
    is_header_name,
    parse_address_list,
    unfold,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def _true(run: Run, test: nodes.Node) -> bool:
    return True


def _false(run: Run, test: nodes.Node) -> bool:
    return False


def _not(run: Run, test: nodes.Node) -> bool:
    return not run.test(test.tests[0])


def _allof(run: Run, test: nodes.Node) -> bool:
    return all(run.test(t) for t in test.tests)


def _anyof(run: Run, test: nodes.Node) -> bool:
    return any(run.test(t) for t in test.tests)


def select(values: list[str], index: int, last: bool) -> list[str]:
    """RFC 5260 section 6: only the index'th field (from the end with :last)."""
    if not index:
        return values
    if index > len(values):
        return []
    return [values[-index] if last else values[index - 1]]


def _header(run: Run, test: nodes.Node) -> bool:
    names = run.expand_all(test.args[0])  # type: ignore[arg-type]
    index, last = int(test.tags["index"]), bool(test.tags["last"])  # type: ignore[call-overload]
    values: list[str] = []
    # RFC 5228 section 2.4.2.2: invalid header names never match, without error.
    valid = [n for n in names if is_header_name(n)]
    if test.tags.get("mime"):
        option = test.tags.get("option")
        params = run.expand_all(test.tags.get("params", ()))  # type: ignore[arg-type]
        from .exttests import mime_option, mime_parts, part_fields

        for part in mime_parts(run, test):
            for name in valid:
                raw = select(part_fields(run, part, name), index, last)
                for value in raw:
                    if option:
                        values.extend(mime_option(unfold(value), name, str(option), params))
                    else:
                        values.append(decode_header_value(value))
    else:
        for name in valid:
            values.extend(select(run.msg.header(name), index, last))
    return run.match(test.match, values)


def _address(run: Run, test: nodes.Node) -> bool:
    names = [n.lower() for n in run.expand_all(test.args[0])]  # type: ignore[arg-type]
    index, last = int(test.tags["index"]), bool(test.tags["last"])  # type: ignore[call-overload]
    part = str(test.tags["part"])
    addresses: list[str] = []
    # RFC 5228 section 5.1: the address test only looks at headers that hold addresses.
    valid = [n for n in names if n in ADDRESS_HEADERS]
    if test.tags.get("mime"):
        from .exttests import mime_parts, part_fields

        for mime_part in mime_parts(run, test):
            for name in valid:
                for value in select(part_fields(run, mime_part, name), index, last):
                    addresses.extend(parse_address_list(unfold(value)))
    else:
        for name in valid:
            if index:
                for field in _select_fields(run, name, index, last):
                    addresses.extend(field)
            else:
                addresses.extend(run.msg.addresses(name))
    values = [v for a in addresses if (v := address_part(a, part)) is not None]
    return run.match(test.match, values)


def _select_fields(run: Run, name: str, index: int, last: bool) -> list[list[str]]:
    fields = run.msg.field_addresses(name)
    if index > len(fields):
        return []
    return [fields[-index] if last else fields[index - 1]]


def _envelope(run: Run, test: nodes.Node) -> bool:
    part = str(test.tags["part"])
    values: list[str] = []
    for name in run.expand_all(test.args[0]):  # type: ignore[arg-type]
        name = name.lower()
        if name == "from":
            address = envelope_address(run.env.sender)
            if not address:
                # RFC 5228 section 5.4: the null reverse-path is matched as the empty
                # string, regardless of the address part.
                values.append("")
                continue
        elif name == "to":
            address = envelope_address(run.env.recipient)
        else:
            continue
        value = address_part(address, part)
        if value is not None:
            values.append(value)
    return run.match(test.match, values)


def _exists(run: Run, test: nodes.Node) -> bool:
    names = run.expand_all(test.args[0])  # type: ignore[arg-type]
    if not all(is_header_name(n) for n in names):
        return False
    if test.tags.get("mime"):
        from .exttests import mime_parts, part_fields

        return any(all(part_fields(run, part, n) for n in names) for part in mime_parts(run, test))
    return all(run.msg.has_header(n) for n in names)


def _size(run: Run, test: nodes.Node) -> bool:
    # RFC 5228 section 5.9: strictly greater / strictly less.
    limit = test.args[0]
    assert isinstance(limit, int)
    size: int = run.msg.size
    return size > limit if test.tags["over"] else size < limit


TESTS: dict[str, Callable[[Run, nodes.Node], bool]] = {
    "true": _true,
    "false": _false,
    "not": _not,
    "allof": _allof,
    "anyof": _anyof,
    "header": _header,
    "address": _address,
    "envelope": _envelope,
    "exists": _exists,
    "size": _size,
}
