"""The table of commands and tests: for each, the extension it needs, its tagged arguments
and how its positional arguments are checked and prepared (the "Usage:" lines of the RFCs).

The interpreter (`interpreter.py`, `evaltests.py`) runs the nodes these builders make; what
each node's `tags` and `args` hold is written next to its builder.
"""

from __future__ import annotations

from .address import redirect_address
from .checker import (
    ADDRESS_PART,
    COMPARATOR,
    INDEX,
    MATCHING,
    Bound,
    Checker,
    Spec,
    TagSpec,
)
from .errors import SieveError
from .flags import split_flags
from .grammar import Arg, RawTest
from .message import is_header_name
from .nodes import MatchSpec, Node
from .stringparse import check_variable_name, sort_modifiers
from .strings import MODIFIERS, Value, check_mailbox_name

# ---------------------------------------------------------------------------- control, tests


def _const_test(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ())
    return Node(b.name, b.line)


def _test_list(c: Checker, b: Bound, raw: RawTest) -> Node:
    if b.positional or not raw.test_list:
        raise SieveError(f"{b.name!r} takes a test list in parentheses", b.line)
    return Node(b.name, b.line, tests=tuple(c.test(t) for t in raw.tests))


def _not(c: Checker, b: Bound, raw: RawTest) -> Node:
    if b.positional or len(raw.tests) != 1 or raw.test_list:
        raise SieveError("'not' takes exactly one test", b.line)
    return Node("not", b.line, tests=(c.test(raw.tests[0]),))


_MIME: dict[str, TagSpec] = {
    "mime": ("mime", None, "mime"),  # RFC 5703 section 4
    "anychild": ("anychild", None, "mime"),
}
_MIME_OPTIONS: dict[str, TagSpec] = {
    "type": ("mime option", None, "mime"),
    "subtype": ("mime option", None, "mime"),
    "contenttype": ("mime option", None, "mime"),
    "param": ("mime option", "string-list", "mime"),
}


def _mime_tags(c: Checker, b: Bound, tags: dict[str, object]) -> None:
    """:mime, :anychild and the header options (RFC 5703 section 4.1)."""
    if b.has("mime"):
        tags["mime"] = True
        if b.has("anychild"):
            tags["anychild"] = True
        for option in ("type", "subtype", "contenttype", "param"):
            if b.has(option):
                arg = b.tags[option]
                tags["option"] = option
                tags["params"] = () if arg is None else c.values(arg)
    elif any(b.has(t) for t in ("anychild", "type", "subtype", "contenttype", "param")):
        raise SieveError("':anychild' and the MIME options need ':mime'", b.line)


def _header(c: Checker, b: Bound, raw: RawTest) -> Node:
    # header [:mime [:anychild] [OPTION]] [:index N [:last]] [COMPARATOR] [MATCH-TYPE]
    #        <header-names: string-list> <key-list: string-list>
    c.positional(b, ("string-list", "string-list"))
    index, last = c.index(b)
    tags: dict[str, object] = {"index": index, "last": last}
    _mime_tags(c, b, tags)
    names = c.values(b.positional[0])
    return Node("header", b.line, tags=tags, args=(names,), match=c.match(b, b.positional[1]))


def _address(c: Checker, b: Bound, raw: RawTest) -> Node:
    # address [:mime [:anychild]] [:index N [:last]] [COMPARATOR] [ADDRESS-PART] [MATCH-TYPE]
    #         <header-list: string-list> <key-list: string-list>
    c.positional(b, ("string-list", "string-list"))
    index, last = c.index(b)
    tags: dict[str, object] = {"index": index, "last": last, "part": c.address_part(b)}
    _mime_tags(c, b, tags)
    names = c.values(b.positional[0])
    return Node("address", b.line, tags=tags, args=(names,), match=c.match(b, b.positional[1]))


def _envelope(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string-list", "string-list"))
    parts = c.values(b.positional[0])
    for part in parts:
        # RFC 5228 section 5.4: unknown envelope parts SHOULD be an error.
        if isinstance(part, str) and part.lower() not in ("from", "to"):
            raise SieveError(f"unknown envelope part {part!r}", b.line)
    tags = {"part": c.address_part(b)}
    return Node("envelope", b.line, tags=tags, args=(parts,), match=c.match(b, b.positional[1]))


def _exists(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string-list",))
    tags: dict[str, object] = {}
    _mime_tags(c, b, tags)
    return Node(b.name, b.line, tags=tags, args=(c.values(b.positional[0]),))


def _size(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("number",))
    # RFC 5228 section 5.9: exactly one of :over or :under.
    if not (b.has("over") or b.has("under")):
        raise SieveError("'size' needs ':over' or ':under'", b.line)
    return Node("size", b.line, tags={"over": b.has("over")}, args=(b.positional[0].number,))


def _need_variables(c: Checker, b: Bound) -> None:
    """RFC 5232 section 1: a variable name in imap4flags without "variables" is an error."""
    if "variables" not in c.extensions:
        raise SieveError(f"{b.name!r} takes a variable name only with require 'variables'", b.line)


def _variable_list(c: Checker, b: Bound) -> tuple[tuple[str, ...] | None, int]:
    """imap4flags' optional leading variable list (RFC 5232): (names or None, first flag arg)."""
    if len(b.positional) == 2:
        _need_variables(c, b)
        names = tuple(check_variable_name(n, b.line) for n in c.raw_strings(b.positional[0]))
        return names, 1
    return None, 0


def _hasflag(c: Checker, b: Bound, raw: RawTest) -> Node:
    # hasflag [MATCH-TYPE] [COMPARATOR] [<variable-list>] <list-of-flags> (RFC 5232 4)
    c.positional(b, ("string-list", "string-list"), optional=1)
    variables, first = _variable_list(c, b)
    spec = c.match(b, b.positional[first])
    if spec.matcher is not None:
        # RFC 5232 section 4: each key is a list of flags too ("\\Seen \\Flagged").
        keys = tuple(split_flags(str(k) for k in spec.keys))
        spec = MatchSpec(spec.match_type, spec.relation, spec.comparator, keys, spec.capture)
    return Node("hasflag", b.line, args=(variables,), match=spec)


def _string(c: Checker, b: Bound, raw: RawTest) -> Node:
    # string [MATCH-TYPE] [COMPARATOR] <source: string-list> <key-list> (RFC 5229 5)
    c.positional(b, ("string-list", "string-list"))
    return Node(
        "string", b.line, args=(c.values(b.positional[0]),), match=c.match(b, b.positional[1])
    )


_BODY: dict[str, TagSpec] = {
    "raw": ("transform", None, None),
    "content": ("transform", "string-list", None),
    "text": ("transform", None, None),
}


def _body(c: Checker, b: Bound, raw: RawTest) -> Node:
    # body [COMPARATOR] [MATCH-TYPE] [BODY-TRANSFORM] <key-list> (RFC 5173 4)
    c.positional(b, ("string-list",))
    transform = "raw" if b.has("raw") else ("content" if b.has("content") else "text")
    types: tuple[Value, ...] = ("text",)
    arg = b.tags.get("content")
    if arg is not None:
        types = c.values(arg)
    tags = {"transform": transform, "types": types}
    return Node("body", b.line, tags=tags, match=c.match(b, b.positional[0]))


_ZONE: dict[str, TagSpec] = {
    "zone": ("zone", "string", None),
    "originalzone": ("zone", None, None),
}


def _date(c: Checker, b: Bound, raw: RawTest) -> Node:
    # date [:zone Z / :originalzone] [COMPARATOR] [MATCH-TYPE] [:index N [:last]]
    #      <header-name: string> <date-part: string> <key-list>            (RFC 5260 4)
    # currentdate [:zone Z] [COMPARATOR] [MATCH-TYPE] <date-part> <key-list>
    from .timeparts import DATE_PARTS, check_zone

    current = b.name == "currentdate"
    kinds = ("string", "string-list") if current else ("string", "string", "string-list")
    c.positional(b, kinds)
    if current and b.has("originalzone"):
        raise SieveError("'currentdate' has no tagged argument ':originalzone'", b.line)
    tags: dict[str, object] = {"zone": c.tag_value(b, "zone"), "original": b.has("originalzone")}
    zone = tags["zone"]
    if isinstance(zone, str):
        check_zone(zone, b.line)
    index, last = (0, False) if current else c.index(b)
    tags["index"] = index
    tags["last"] = last
    part_arg = b.positional[0 if current else 1]
    part = c.value(part_arg)
    if isinstance(part, str):
        if part.lower() not in DATE_PARTS:
            raise SieveError(f"unknown date part {part!r}", part_arg.line)
        part = part.lower()
    args: tuple[object, ...] = (part,) if current else (c.value(b.positional[0]), part)
    return Node(b.name, b.line, tags=tags, args=args, match=c.match(b, b.positional[-1]))


_DUPLICATE: dict[str, TagSpec] = {
    "handle": ("handle", "string", None),
    "header": ("id", "string", None),
    "uniqueid": ("id", "string", None),
    "seconds": ("seconds", "number", None),
    "last": ("last", None, None),
}


def _duplicate(c: Checker, b: Bound, raw: RawTest) -> Node:
    # duplicate [:handle H] [:header NAME / :uniqueid V] [:seconds N] [:last] (RFC 7352 3)
    c.positional(b, ())
    header = c.tag_value(b, "header")
    if isinstance(header, str) and not is_header_name(header):
        raise SieveError(f"invalid header name {header!r}", b.line)
    tags = {
        "handle": c.tag_value(b, "handle") or "",
        "header": header,
        "uniqueid": c.tag_value(b, "uniqueid"),
        "seconds": c.tag_number(b, "seconds"),
        "last": b.has("last"),
    }
    return Node("duplicate", b.line, tags=tags)


def _environment(c: Checker, b: Bound, raw: RawTest) -> Node:
    # environment [COMPARATOR] [MATCH-TYPE] <name: string> <key-list> (RFC 5183 4)
    c.positional(b, ("string", "string-list"))
    name = c.value(b.positional[0])
    return Node("environment", b.line, args=(name,), match=c.match(b, b.positional[1]))


def _ihave(c: Checker, b: Bound, raw: RawTest) -> Node:
    # ihave <capabilities: string-list> (RFC 5463 3): known at compile time.
    c.positional(b, ("string-list",))
    wanted = c.constants(b.positional[0], "the capabilities of 'ihave'")
    if all(w in c.available for w in wanted):
        c.extensions.update(wanted)
        return Node("true", b.line)
    return Node("false", b.line)


def _mailboxexists(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string-list",))
    return Node("mailboxexists", b.line, args=(c.values(b.positional[0]),))


def _valid_notify_method(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string-list",))
    return Node(b.name, b.line, args=(c.values(b.positional[0]),))


def _notify_method_capability(c: Checker, b: Bound, raw: RawTest) -> Node:
    # notify_method_capability [COMPARATOR] [MATCH-TYPE] <uri> <capability> <key-list>
    c.positional(b, ("string", "string", "string-list"))
    args = (c.value(b.positional[0]), c.value(b.positional[1]))
    return Node(b.name, b.line, args=args, match=c.match(b, b.positional[2]))


def _spamtest(c: Checker, b: Bound, raw: RawTest) -> Node:
    # spamtest [:percent] [COMPARATOR] [MATCH-TYPE] <value: string> (RFC 5235 3.1, 3.2)
    # virustest [COMPARATOR] [MATCH-TYPE] <value: string>
    c.positional(b, ("string",))
    if b.has("percent") and "spamtestplus" not in c.extensions:
        raise SieveError("':percent' needs require 'spamtestplus'", b.line)
    tags = {"percent": b.has("percent")}
    # RFC 5235 section 3 makes i;ascii-numeric the default comparator; Pigeonhole keeps
    # i;ascii-casemap (tst-spamvirustest.c), and scripts written for it count on that.
    return Node(b.name, b.line, tags=tags, match=c.match(b, b.positional[0]))


TESTS: dict[str, Spec] = {
    "true": Spec(None, {}, _const_test),
    "false": Spec(None, {}, _const_test),
    "allof": Spec(None, {}, _test_list, tests=True),
    "anyof": Spec(None, {}, _test_list, tests=True),
    "not": Spec(None, {}, _not, tests=True),
    "header": Spec(None, {**MATCHING, **INDEX, **_MIME, **_MIME_OPTIONS}, _header),
    "address": Spec(None, {**MATCHING, **ADDRESS_PART, **INDEX, **_MIME}, _address),
    "envelope": Spec("envelope", {**MATCHING, **ADDRESS_PART}, _envelope),
    "exists": Spec(None, dict(_MIME), _exists),
    "size": Spec(None, {"over": ("size", None, None), "under": ("size", None, None)}, _size),
    "hasflag": Spec("imap4flags", MATCHING, _hasflag),
    "mailboxexists": Spec("mailbox", {}, _mailboxexists),
    "string": Spec("variables", MATCHING, _string),
    "body": Spec("body", {**MATCHING, **_BODY}, _body),
    "date": Spec("date", {**MATCHING, **_ZONE, **INDEX}, _date),
    "currentdate": Spec("date", {**MATCHING, **_ZONE}, _date),
    "duplicate": Spec("duplicate", _DUPLICATE, _duplicate),
    "environment": Spec("environment", MATCHING, _environment),
    "ihave": Spec("ihave", {}, _ihave),
    "valid_notify_method": Spec("enotify", {}, _valid_notify_method),
    "notify_method_capability": Spec("enotify", MATCHING, _notify_method_capability),
    "spamtest": Spec("spamtest", {**MATCHING, "percent": ("percent", None, None)}, _spamtest),
    "virustest": Spec("virustest", MATCHING, _spamtest),
}

# ---------------------------------------------------------------------------------- commands


def _bare(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ())
    return Node(b.name, b.line)


_FLAGS: dict[str, TagSpec] = {"flags": ("flags", "string-list", "imap4flags")}
_COPY: dict[str, TagSpec] = {"copy": ("copy", None, "copy")}


def _flags_tag(c: Checker, b: Bound) -> tuple[Value, ...] | None:
    arg = b.tags.get("flags")
    return None if arg is None else c.values(arg)


def _keep(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ())
    return Node("keep", b.line, tags={"flags": _flags_tag(c, b)})


def _fileinto(c: Checker, b: Bound, raw: RawTest) -> Node:
    # fileinto [:copy] [:flags L] [:create] <mailbox: string>
    c.positional(b, ("string",))
    mailbox = c.value(b.positional[0])
    if isinstance(mailbox, str):
        check_mailbox_name(mailbox, b.positional[0].line)
    tags = {"flags": _flags_tag(c, b), "copy": b.has("copy"), "create": b.has("create")}
    return Node("fileinto", b.line, tags=tags, args=(mailbox,))


def _redirect(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string",))
    arg = b.positional[0]
    value = c.value(arg)
    if isinstance(value, str):
        address = redirect_address(value)
        if address is None:
            # Section 2.4.2.3: an outbound address must be a valid "sieve-address".
            raise SieveError(f"invalid redirect address {value!r}", arg.line)
        value = address
    return Node("redirect", b.line, tags={"copy": b.has("copy")}, args=(value,))


def _flag_command(c: Checker, b: Bound, raw: RawTest) -> Node:
    # setflag/addflag/removeflag [<variablename: string>] <list-of-flags: string-list>
    if len(b.positional) == 2:
        c.positional(b, ("string", "string-list"))
        _need_variables(c, b)
        variable: str | None = check_variable_name(c.raw_strings(b.positional[0])[0], b.line)
    else:
        c.positional(b, ("string-list",))
        variable = None
    flags = c.values(b.positional[-1])
    return Node(b.name, b.line, tags={"variable": variable}, args=(flags,))


_SET: dict[str, TagSpec] = {
    name: (name, None, "enotify" if name == "encodeurl" else None) for name in MODIFIERS
}


def _set(c: Checker, b: Bound, raw: RawTest) -> Node:
    # set [MODIFIER...] <name: string> <value: string> (RFC 5229 4)
    c.positional(b, ("string", "string"))
    name = check_variable_name(
        c.raw_strings(b.positional[0])[0], b.line, global_ok="include" in c.extensions
    )
    modifiers = sort_modifiers([t for t in b.tags], b.line)
    return Node("set", b.line, tags={"modifiers": modifiers}, args=(name, c.value(b.positional[1])))


def _check_address(value: Value, what: str, line: int) -> None:
    if isinstance(value, str) and redirect_address(value) is None:
        raise SieveError(f"invalid {what} address {value!r}", line)


_VACATION: dict[str, TagSpec] = {
    "days": ("period", "number", None),
    "seconds": ("period", "number", "vacation-seconds"),
    "subject": ("subject", "string", None),
    "from": ("from", "string", None),
    "addresses": ("addresses", "string-list", None),
    "mime": ("mime", None, None),
    "handle": ("handle", "string", None),
}


def _vacation(c: Checker, b: Bound, raw: RawTest) -> Node:
    # vacation [":days" N / ":seconds" N] [":subject" S] [":from" S] [":addresses" L]
    #          [":mime"] [":handle" S] <reason: string>             (RFC 5230 4, RFC 6131)
    c.positional(b, ("string",))
    sender = c.tag_value(b, "from")
    if sender is not None:
        _check_address(sender, "':from'", b.line)
    addresses = b.tags.get("addresses")
    seconds = None
    if b.has("days"):
        seconds = (c.tag_number(b, "days") or 0) * 86400
    elif b.has("seconds"):
        seconds = c.tag_number(b, "seconds")
    tags = {
        "seconds": seconds,
        "subject": c.tag_value(b, "subject"),
        "from": sender,
        "addresses": () if addresses is None else c.values(addresses),
        "mime": b.has("mime"),
        "handle": c.tag_value(b, "handle"),
    }
    return Node("vacation", b.line, tags=tags, args=(c.value(b.positional[0]),))


def _reject(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string",))
    return Node(b.name, b.line, args=(c.value(b.positional[0]),))


_INCLUDE: dict[str, TagSpec] = {
    "personal": ("location", None, None),
    "global": ("location", None, None),
    "once": ("once", None, None),
    "optional": ("optional", None, None),
}


def check_script_name(name: str, line: int) -> None:
    """RFC 6609 section 3.2 / RFC 5804 section 1.6: a script name is not a path."""
    if not name or "/" in name or name in (".", "..") or any(ord(ch) < 0x20 for ch in name):
        raise SieveError(f"invalid script name {name!r}", line)
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        raise SieveError("script name longer than 255 octets", line)


def _include(c: Checker, b: Bound, raw: RawTest) -> Node:
    # include [:personal / :global] [:once] [:optional] <value: string> (RFC 6609 3.2)
    c.positional(b, ("string",))
    name = c.constant(b.positional[0], "the name of an included script")
    check_script_name(name, b.line)
    tags = {
        "global": b.has("global"),
        "once": b.has("once"),
        "optional": b.has("optional"),
    }
    return Node("include", b.line, tags=tags, args=(name,))


def _global(c: Checker, b: Bound, raw: RawTest) -> Node:
    # global <value: string-list> (RFC 6609 3.4); needs "variables".
    if "variables" not in c.extensions:
        raise SieveError("'global' needs require 'variables'", b.line)
    c.positional(b, ("string-list",))
    names = tuple(check_variable_name(n, b.line) for n in c.raw_strings(b.positional[0]))
    return Node("global", b.line, args=(names,))


_NOTIFY: dict[str, TagSpec] = {
    "from": ("from", "string", None),
    "importance": ("importance", "string", None),
    "options": ("options", "string-list", None),
    "message": ("message", "string", None),
}


def _notify(c: Checker, b: Bound, raw: RawTest) -> Node:
    # notify [":from" S] [":importance" <"1"/"2"/"3">] [":options" L] [":message" S]
    #        <method: string>                                           (RFC 5435 3)
    from .notify import check_method

    c.positional(b, ("string",))
    importance = c.tag_value(b, "importance")
    if isinstance(importance, str) and importance not in ("1", "2", "3"):
        raise SieveError(f'\':importance\' must be "1", "2" or "3", not {importance!r}', b.line)
    method = c.value(b.positional[0])
    if isinstance(method, str):
        problem = check_method(method)
        if problem is not None:
            raise SieveError(f"invalid notify method {method!r}: {problem}", b.line)
    sender = c.tag_value(b, "from")
    if sender is not None:
        _check_address(sender, "':from'", b.line)
    options = b.tags.get("options")
    tags = {
        "from": sender,
        "importance": importance or "2",
        "options": () if options is None else c.values(options),
        "message": c.tag_value(b, "message"),
    }
    return Node("notify", b.line, tags=tags, args=(method,))


def _foreverypart(c: Checker, b: Bound, raw: RawTest) -> Node:
    # foreverypart [":name" <name: string>] <block> (RFC 5703 3)
    c.positional(b, ())
    name = "" if not b.has("name") else c.constant(_tag(b, "name"), "a loop name")
    c.loop_names.append(name)
    c.loops += 1
    try:
        block = c.sub_block(raw)
    finally:
        c.loop_names.pop()
        c.loops -= 1
    return Node("foreverypart", b.line, tags={"name": name}, block=block)


def _tag(b: Bound, tag: str) -> Arg:
    arg = b.tags[tag]
    assert arg is not None
    return arg


def _break(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ())
    if not c.loops:
        raise SieveError("'break' outside of 'foreverypart'", b.line)
    name = "" if not b.has("name") else c.constant(_tag(b, "name"), "a loop name")
    if name and name not in c.loop_names:
        raise SieveError(f"'break :name {name!r}' names no enclosing loop", b.line)
    return Node("break", b.line, tags={"name": name})


def _extracttext(c: Checker, b: Bound, raw: RawTest) -> Node:
    # extracttext [MODIFIER] [":first" number] <varname: string> (RFC 5703 7)
    c.positional(b, ("string",))
    if not c.loops:
        raise SieveError("'extracttext' outside of 'foreverypart'", b.line)
    name = check_variable_name(c.raw_strings(b.positional[0])[0], b.line, global_ok=True)
    modifiers = sort_modifiers([t for t in b.tags if t != "first"], b.line)
    tags = {"modifiers": modifiers, "first": c.tag_number(b, "first")}
    return Node("extracttext", b.line, tags=tags, args=(name,))


def _addheader(c: Checker, b: Bound, raw: RawTest) -> Node:
    # addheader [":last"] <field-name: string> <value: string> (RFC 5293 5)
    c.positional(b, ("string", "string"))
    name = c.value(b.positional[0])
    if isinstance(name, str) and not is_header_name(name):
        raise SieveError(f"invalid header name {name!r}", b.line)
    value = c.value(b.positional[1])
    tags = {"last": b.has("last")}
    return Node("addheader", b.line, tags=tags, args=(name, value))


def _deleteheader(c: Checker, b: Bound, raw: RawTest) -> Node:
    # deleteheader [":index" N [":last"]] [COMPARATOR] [MATCH-TYPE] <field-name: string>
    #              [<value-patterns: string-list>]                       (RFC 5293 6)
    c.positional(b, ("string", "string-list"), optional=1)
    name = c.value(b.positional[0])
    if isinstance(name, str) and not is_header_name(name):
        raise SieveError(f"invalid header name {name!r}", b.line)
    index = b.tags.get("index")
    number = 0 if index is None else index.number
    if b.has("last") and index is None:
        raise SieveError("':last' needs ':index'", b.line)
    match = c.match(b, b.positional[1]) if len(b.positional) == 2 else None
    tags = {"index": number, "last": b.has("last")}
    return Node("deleteheader", b.line, tags=tags, args=(name,), match=match)


def _error(c: Checker, b: Bound, raw: RawTest) -> Node:
    c.positional(b, ("string",))
    return Node("error", b.line, args=(c.value(b.positional[0]),))


_MODIFIER_TAGS: dict[str, TagSpec] = _SET
_DELETEHEADER_TAGS: dict[str, TagSpec] = {
    **MATCHING,
    "index": ("index", "number", None),
    "last": ("last", None, None),
}

COMMANDS: dict[str, Spec] = {
    "stop": Spec(None, {}, _bare),
    "keep": Spec(None, _FLAGS, _keep),
    "discard": Spec(None, {}, _bare),
    "redirect": Spec(None, _COPY, _redirect),
    "fileinto": Spec(
        "fileinto", {**_COPY, **_FLAGS, "create": ("create", None, "mailbox")}, _fileinto
    ),
    "setflag": Spec("imap4flags", {}, _flag_command),
    "addflag": Spec("imap4flags", {}, _flag_command),
    "removeflag": Spec("imap4flags", {}, _flag_command),
    "set": Spec("variables", _SET, _set),
    "vacation": Spec("vacation", _VACATION, _vacation),
    "reject": Spec("reject", {}, _reject),
    "ereject": Spec("ereject", {}, _reject),
    "include": Spec("include", _INCLUDE, _include),
    "return": Spec("include", {}, _bare),
    "global": Spec("include", {}, _global),
    "notify": Spec("enotify", _NOTIFY, _notify),
    "foreverypart": Spec(
        "foreverypart", {"name": ("name", "string", None)}, _foreverypart, block=True
    ),
    "break": Spec("foreverypart", {"name": ("name", "string", None)}, _break),
    "extracttext": Spec(
        "extracttext",
        {**_MODIFIER_TAGS, "first": ("first", "number", None)},
        _extracttext,
    ),
    "addheader": Spec("editheader", {"last": ("last", None, None)}, _addheader),
    "deleteheader": Spec("editheader", _DELETEHEADER_TAGS, _deleteheader),
    "error": Spec("ihave", {}, _error),
}

__all__ = ["COMMANDS", "COMPARATOR", "TESTS", "check_mailbox_name", "check_script_name"]
