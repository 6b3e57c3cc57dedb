"""The tests of the extensions (RFC 5228 section 5 has the base ones, `evaltests`), and what
the ":mime" forms of header, address and exists need (RFC 5703 section 4): apart, so that a
script using none of them imports none of this (`interpreter._tests` looks here only for a
test `evaltests` does not have)."""

from __future__ import annotations

from . import nodes
from .actions import Track
from .evaltests import select
from .interpreter import Run
from .message import is_header_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def mime_parts(run: Run, test: nodes.Node) -> list[object]:
    """The MIME parts a ":mime" test looks at (RFC 5703 section 4.1): the current part (the
    message outside foreverypart), and with ":anychild" its descendants too."""
    current = run.parts[-1] if run.parts else run.msg.mime()
    if test.tags.get("anychild"):
        return [current, *current.walk()]  # type: ignore[attr-defined]
    return [current]


def part_fields(run: Run, part: object, name: str) -> list[str]:
    """Raw values of `name` in a part; the top-level part's are the (edited) message's."""
    if part is run.msg.mime() and not run.parts:
        return run.msg.raw_header(name)
    return part.header(name)  # type: ignore[attr-defined,no-any-return]


def mime_option(value: str, name: str, option: str, params: list[str]) -> list[str]:
    """RFC 5703 section 4.2: :type, :subtype, :contenttype (Content-Type only) and :param
    (Content-Type and Content-Disposition)."""
    from .params import parse_params

    lowered = name.lower()
    if option == "param":
        if lowered not in ("content-type", "content-disposition"):
            return []
        _, found = parse_params(value)
        return [found[p.lower()] for p in params if p.lower() in found]
    if lowered != "content-type":
        return []
    main, _ = parse_params(value)
    kind, _, sub = main.partition("/")
    if option == "type":
        return [kind]
    if option == "subtype":
        return [sub]
    return [main]


def _hasflag(run: Run, test: nodes.Node) -> bool:
    from .flags import FlagSet, split_flags

    variables = test.args[0]
    if variables is None:
        flags = run.internal_flags.as_tuple()
    else:
        found = FlagSet()
        found.add(run.get_variable(name) for name in variables)  # type: ignore[attr-defined]
        flags = found.as_tuple()
    spec = test.match
    assert spec is not None
    if spec.matcher is None:
        # RFC 5232 section 4: the keys are lists of flags too ("\\Seen \\Flagged").
        keys = tuple(split_flags(run.expand_all(spec.keys)))
        spec = nodes.MatchSpec(spec.match_type, spec.relation, spec.comparator, keys, spec.capture)
    return run.match(spec, flags)


def _mailboxexists(run: Run, test: nodes.Node) -> bool:
    names = run.expand_all(test.args[0])  # type: ignore[arg-type]
    return all(run.context.mailbox_exists(name) for name in names)


def _string(run: Run, test: nodes.Node) -> bool:
    values = run.expand_all(test.args[0])  # type: ignore[arg-type]
    if test.match is not None and test.match.match_type == "count":
        # RFC 5229 section 5: with :count, empty strings are not counted.
        values = [v for v in values if v]
    return run.match(test.match, values)


def _type_matches(part: object, wanted: list[str]) -> bool:
    media = part.media_type  # type: ignore[attr-defined]
    full = f"{media}/{part.subtype}"  # type: ignore[attr-defined]
    for want in wanted:
        want = want.lower()
        if want == "" or want == full or ("/" not in want and want == media):
            return True
    return False


def _body(run: Run, test: nodes.Node) -> bool:
    """RFC 5173: :raw the undecoded body, :content the decoded parts of those types, :text
    the text parts (the same as :content "text")."""
    transform = test.tags["transform"]
    if transform == "raw":
        values = [run.msg.body().decode("utf-8", "surrogateescape")]
    else:
        wanted = run.expand_all(test.tags["types"])  # type: ignore[arg-type]
        root = run.msg.mime()
        values = []
        for part in [root, *root.walk()]:
            if part.media_type in ("multipart",) or part.children:
                continue  # RFC 5173 5.2: containers are not tested, their parts are
            if _type_matches(part, wanted):
                if part.media_type == "text":
                    values.append(part.text())
                else:
                    values.append(part.content().decode("utf-8", "surrogateescape"))
    return run.match(test.match, values)


def _zone_of(run: Run, test: nodes.Node, stamp: int, original: int | None) -> int:
    from .timeparts import local_offset, parse_zone

    zone = test.tags.get("zone")
    if zone is not None:
        offset = parse_zone(run.expand(zone))  # type: ignore[arg-type]
        if offset is not None:
            return offset
    if test.tags.get("original") and original is not None:
        return original
    return local_offset(stamp)


def _date(run: Run, test: nodes.Node) -> bool:
    """RFC 5260 section 4: a date part of a header's date, in the chosen zone."""
    from .timeparts import date_part, parse_date

    header = run.expand(test.args[0])  # type: ignore[arg-type]
    part = run.expand(test.args[1]).lower()  # type: ignore[arg-type]
    index, last = int(test.tags["index"]), bool(test.tags["last"])  # type: ignore[call-overload]
    values: list[str] = []
    if is_header_name(header):
        for text in select(run.msg.header(header), index, last):
            if header.lower() == "received":
                text = text.rpartition(";")[2]  # RFC 5260 section 4: the date after ";"
            parsed = parse_date(text)
            if parsed is None:
                continue
            stamp, original = parsed
            value = date_part(stamp, _zone_of(run, test, stamp, original), part)
            if value:
                values.append(value)
    return run.match(test.match, values)


def _currentdate(run: Run, test: nodes.Node) -> bool:
    from .timeparts import date_part

    part = run.expand(test.args[0]).lower()  # type: ignore[arg-type]
    stamp = int(run.context.now)
    value = date_part(stamp, _zone_of(run, test, stamp, None), part)
    return run.match(test.match, [value] if value else [])


def _duplicate(run: Run, test: nodes.Node) -> bool:
    """RFC 7352 section 3: was a message with this id seen (for this handle) within the
    period? What is seen is remembered only when the delivery succeeds (`Track`)."""
    tags = test.tags
    if tags["uniqueid"] is not None:
        ident = run.expand(tags["uniqueid"])  # type: ignore[arg-type]
    else:
        name = "message-id" if tags["header"] is None else run.expand(tags["header"])  # type: ignore[arg-type]
        values = run.msg.header(name) if is_header_name(name) else []
        ident = values[0] if values else ""
    if not ident:
        return False
    import hashlib

    handle = run.expand(tags["handle"])  # type: ignore[arg-type]
    kind = "uniqueid" if tags["uniqueid"] is not None else "header"
    key = hashlib.sha256(f"duplicate\0{kind}\0{handle}\0{ident}".encode("utf-8", "surrogateescape"))
    digest = key.digest()
    seen = run.duplicates.get(digest)
    if seen is None:
        seen = run.context.duplicate_seen(digest)
        run.duplicates[digest] = seen
        default, longest = run.context.duplicate_periods
        seconds = tags["seconds"]
        period = default if not isinstance(seconds, int) else min(seconds, longest)
        run.tracks.append(Track(digest, period, bool(tags["last"])))
    return seen


def _environment(run: Run, test: nodes.Node) -> bool:
    name = run.expand(test.args[0]).lower()  # type: ignore[arg-type]
    value = run.context.environment.get(name)
    return value is not None and run.match(test.match, [value])


def _valid_notify_method(run: Run, test: nodes.Node) -> bool:
    from .notify import check_method

    uris = run.expand_all(test.args[0])  # type: ignore[arg-type]
    return all(check_method(uri) is None for uri in uris)


def _notify_method_capability(run: Run, test: nodes.Node) -> bool:
    from .notify import method_capability

    uri = run.expand(test.args[0])  # type: ignore[arg-type]
    capability = run.expand(test.args[1])  # type: ignore[arg-type]
    value = method_capability(uri, capability)
    return value is not None and run.match(test.match, [value])


def _spamtest(run: Run, test: nodes.Node) -> bool:
    from .spamtest import StatusTest

    configured = run.context.virus if test.name == "virustest" else run.context.spam
    value = "0"
    if isinstance(configured, StatusTest):
        value = configured.value(run.msg, bool(test.tags.get("percent")))
    return run.match(test.match, [value])


EXTENSION_TESTS: dict[str, Callable[[Run, nodes.Node], bool]] = {
    "hasflag": _hasflag,
    "mailboxexists": _mailboxexists,
    "string": _string,
    "body": _body,
    "date": _date,
    "currentdate": _currentdate,
    "duplicate": _duplicate,
    "environment": _environment,
    "valid_notify_method": _valid_notify_method,
    "notify_method_capability": _notify_method_capability,
    "spamtest": _spamtest,
    "virustest": _spamtest,
}
