"""Pass 2 of the parser: what each command and test means, checked against its "Usage:" line.

Each command and test has an entry in `COMMANDS` or `TESTS` (spec.py and extchecks.py): the
extension it needs, its tagged arguments (grouped: two tags of one group conflict, RFC 5228
section 2.6) and a builder that checks the positional arguments and prepares the node. What
is checked here, for all of them: that every extension used was named in a `require` (RFC 5228
section 2.10.5), that tagged arguments come first and once, the kinds of the positional
arguments, that tests and blocks are where they may be, and every literal that can be checked
before run time (comparators, match types, regular expressions, addresses, mailbox names).
Errors carry the line and stop the check (we report the first problem, as `sievec` reports
each problem with its line).

"ihave" (RFC 5463) is decided here too: an `if ihave [...]` whose capabilities are all
available makes them available (as if required) from there on; when one is not, the block is
not checked at all (it may use commands we do not know) and the branch never runs.
"""

from __future__ import annotations

from . import nodes
from .errors import RegexError, SieveError
from .grammar import Arg, RawCommand, RawTest
from .matching import (
    ASCII_CASEMAP,
    ASCII_NUMERIC,
    COMPARATORS,
    COUNT,
    IS,
    MATCHES,
    REGEX,
    RELATIONS,
    VALUE,
    check_match,
)
from .stringparse import decode_encoded_characters, parse_template
from .strings import Template, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# A tagged argument: (group, value kind or None, extension or None).
TagSpec = tuple[str, str | None, str | None]

COMPARATOR: dict[str, TagSpec] = {"comparator": ("comparator", "string", None)}
MATCH_TYPE: dict[str, TagSpec] = {
    "is": ("match type", None, None),
    "contains": ("match type", None, None),
    "matches": ("match type", None, None),
    "regex": ("match type", None, "regex"),
    "value": ("match type", "string", "relational"),
    "count": ("match type", "string", "relational"),
}
MATCHING = {**COMPARATOR, **MATCH_TYPE}
ADDRESS_PART: dict[str, TagSpec] = {
    "all": ("address part", None, None),
    "localpart": ("address part", None, None),
    "domain": ("address part", None, None),
    "user": ("address part", None, "subaddress"),  # RFC 5233 section 4
    "detail": ("address part", None, "subaddress"),
}
INDEX: dict[str, TagSpec] = {
    "index": ("index", "number", "index"),  # RFC 5260 section 6
    "last": ("last", None, "index"),
}


class Bound:
    """A command's arguments sorted out: tags by name (with their value), positionals."""

    __slots__ = ("line", "name", "positional", "tags")

    def __init__(self, name: str, line: int, tags: dict[str, Arg | None], positional: list[Arg]):
        self.name = name
        self.line = line
        self.tags = tags
        self.positional = positional

    def has(self, tag: str) -> bool:
        return tag in self.tags


class Spec:
    """How to check one command or test: the extension it needs (None: core), its tags, and
    the builder that makes its node from the bound arguments."""

    __slots__ = ("block", "build", "extension", "tags", "tests")

    def __init__(
        self,
        extension: str | None,
        tags: dict[str, TagSpec],
        build: Callable[[Checker, Bound, RawTest], nodes.Node],
        *,
        block: bool = False,
        tests: bool = False,
    ) -> None:
        self.extension = extension
        self.tags = tags
        self.build = build
        self.block = block  # a command that takes a block (foreverypart)
        self.tests = tests  # a test that takes tests (allof, anyof, not)


class Checker:
    """Checks one script. `available`: the capabilities `require` may name."""

    def __init__(
        self, available: frozenset[str], commands: dict[str, Spec], tests: dict[str, Spec]
    ) -> None:
        self.available = available
        self.extensions: set[str] = set()
        self.commands = commands
        self.tests = tests
        self.loop_names: list[str] = []  # foreverypart :name labels, innermost last
        self.loops = 0

    # -- strings

    def _decode(self, value: str, line: int) -> str:
        if "encoded-character" in self.extensions and "${" in value:
            return decode_encoded_characters(value, line)
        return value

    def value(self, arg: Arg) -> Value:
        """A string argument, prepared: with "variables", it may be a Template."""
        text = self._decode(arg.strings[0], arg.line)
        if "variables" in self.extensions:
            namespaces = frozenset({"global"}) if "include" in self.extensions else frozenset()
            return parse_template(text, arg.line, namespaces=namespaces)
        return text

    def values(self, arg: Arg) -> tuple[Value, ...]:
        saved = arg.strings
        out: list[Value] = []
        for s in saved:
            out.append(self.value(Arg("string", arg.line, strings=(s,))))
        return tuple(out)

    def constant(self, arg: Arg, what: str) -> str:
        """A string argument that must be known at compile time."""
        value = self.value(arg)
        if isinstance(value, Template):
            raise SieveError(f"{what} must be a constant string (no variables)", arg.line)
        return value

    def constants(self, arg: Arg, what: str) -> tuple[str, ...]:
        out = []
        for value in self.values(arg):
            if isinstance(value, Template):
                raise SieveError(f"{what} must be constant strings (no variables)", arg.line)
            out.append(value)
        return tuple(out)

    def raw_strings(self, arg: Arg) -> tuple[str, ...]:
        """Strings with encoded characters decoded and no variable substitution."""
        return tuple(self._decode(s, arg.line) for s in arg.strings)

    # -- script structure

    def script(self, raw: list[RawCommand], name: str = "") -> nodes.Script:
        i = 0
        # RFC 5228 section 3.2: require, if present, comes before anything else.
        while i < len(raw) and raw[i].name == "require":
            self.require(raw[i])
            i += 1
        commands = self.block(raw[i:])
        return nodes.Script(commands, frozenset(self.extensions), name)

    def require(self, cmd: RawCommand) -> None:
        self.no_test_no_block(cmd)
        bound = self.bind(cmd.name, cmd.line, cmd.args, {})
        self.positional(bound, ("string-list",))
        for capability in bound.positional[0].strings:
            if capability not in self.available:
                # Section 2.10.5: nothing may run if a required extension is unavailable.
                raise SieveError(f"unsupported extension {capability!r} in require", cmd.line)
            self.extensions.add(capability)
        if "extracttext" in self.extensions and "variables" not in self.extensions:
            raise SieveError("'extracttext' needs require 'variables' (RFC 5703 7)", cmd.line)

    def block(self, raw: list[RawCommand]) -> tuple[nodes.Command, ...]:
        out: list[nodes.Command] = []
        chain: list[tuple[nodes.Node | None, tuple[nodes.Command, ...]]] | None = None
        chain_line = 0
        for cmd in raw:
            if cmd.name in ("elsif", "else"):
                # Section 3.1: elsif and else MUST only follow an if or elsif.
                if chain is None:
                    raise SieveError(f"{cmd.name!r} without a preceding 'if'", cmd.line)
                chain.append(self.branch(cmd))
                if cmd.name == "else":
                    out.append(nodes.If(tuple(chain), chain_line))
                    chain = None
                continue
            if chain is not None:
                out.append(nodes.If(tuple(chain), chain_line))
                chain = None
            if cmd.name == "if":
                chain = [self.branch(cmd)]
                chain_line = cmd.line
            elif cmd.name == "require":
                raise SieveError("'require' must come before any other command", cmd.line)
            else:
                out.append(self.command(cmd))
        if chain is not None:
            out.append(nodes.If(tuple(chain), chain_line))
        return tuple(out)

    def branch(self, cmd: RawCommand) -> tuple[nodes.Node | None, tuple[nodes.Command, ...]]:
        if cmd.args:
            raise SieveError(f"{cmd.name!r} takes no arguments besides its test", cmd.line)
        if cmd.block is None:
            raise SieveError(f"{cmd.name!r} needs a block", cmd.line)
        test: nodes.Node | None = None
        if cmd.name == "else":
            if cmd.tests:
                raise SieveError("'else' takes no test", cmd.line)
        else:
            if len(cmd.tests) != 1 or cmd.test_list:
                raise SieveError(f"{cmd.name!r} needs exactly one test", cmd.line)
            raw_test = cmd.tests[0]
            if raw_test.name == "ihave" and "ihave" in self.extensions:
                test = self.test(raw_test)
                if test.name == "false":
                    return test, ()  # RFC 5463 section 4: the block is not checked
            else:
                test = self.test(raw_test)
        return test, self.block(cmd.block)

    def no_test_no_block(self, cmd: RawCommand) -> None:
        if cmd.tests and not cmd.test_list and cmd.tests[0].name in self.commands:
            raise SieveError(f"missing ';' after {cmd.name!r}", cmd.line)
        if cmd.tests:
            raise SieveError(f"{cmd.name!r} takes no test", cmd.line)
        if cmd.block is not None:
            raise SieveError(f"{cmd.name!r} takes no block; end it with ';'", cmd.line)

    def need(self, extension: str | None, what: str, line: int) -> None:
        if extension is None or extension in self.extensions:
            return
        if extension == "spamtest" and "spamtestplus" in self.extensions:
            return  # RFC 5235 section 3.2: spamtestplus brings spamtest
        if extension == "vacation" and "vacation-seconds" in self.extensions:
            return  # RFC 6131 section 2: vacation-seconds brings vacation
        raise SieveError(f"{what} needs require {extension!r}", line)

    # -- arguments

    def bind(self, name: str, line: int, args: list[Arg], specs: dict[str, TagSpec]) -> Bound:
        """Sort arguments into tags and positionals (RFC 5228 section 2.6)."""
        tags: dict[str, Arg | None] = {}
        groups: dict[str, str] = {}
        positional: list[Arg] = []
        i = 0
        while i < len(args):
            arg = args[i]
            i += 1
            if arg.kind != "tag":
                positional.append(arg)
                continue
            spec = specs.get(arg.tag)
            if spec is None:
                raise SieveError(f"{name!r} has no tagged argument ':{arg.tag}'", arg.line)
            group, value_kind, extension = spec
            self.need(extension, f"':{arg.tag}'", arg.line)
            if positional:
                # Section 2.6.2: tagged arguments come before positional ones.
                raise SieveError(
                    f"':{arg.tag}' must come before the positional arguments of {name!r}",
                    arg.line,
                )
            if group in groups:
                other = groups[group]
                what = "repeated" if other == arg.tag else f"conflicts with ':{other}'"
                raise SieveError(f"':{arg.tag}' {what} ({group})", arg.line)
            groups[group] = arg.tag
            value: Arg | None = None
            if value_kind is not None:
                if i >= len(args) or not self.kind_ok(args[i], value_kind):
                    raise SieveError(f"':{arg.tag}' must be followed by a {value_kind}", arg.line)
                value = args[i]
                i += 1
            tags[arg.tag] = value
        return Bound(name, line, tags, positional)

    @staticmethod
    def kind_ok(arg: Arg, kind: str) -> bool:
        if kind == "string":
            return arg.kind == "string"
        if kind == "string-list":
            return arg.kind in ("string", "list")
        return arg.kind == "number"

    def positional(self, bound: Bound, kinds: tuple[str, ...], optional: int = 0) -> None:
        """Check the positional arguments: `kinds`, of which the last `optional` may be
        missing."""
        got = bound.positional
        least = len(kinds) - optional
        if not least <= len(got) <= len(kinds):
            expected = ", ".join(kinds) if kinds else "no positional arguments"
            count = str(len(kinds)) if not optional else f"{least} to {len(kinds)}"
            raise SieveError(
                f"{bound.name!r} takes {count} positional argument(s) ({expected}), got {len(got)}",
                got[len(kinds)].line if len(got) > len(kinds) else bound.line,
            )
        for arg, kind in zip(got, kinds, strict=False):
            if not self.kind_ok(arg, kind):
                found = "a string list" if arg.kind == "list" else f"a {arg.kind}"
                raise SieveError(f"{bound.name!r} expects a {kind} here, not {found}", arg.line)

    def tag_value(self, bound: Bound, tag: str) -> Value | None:
        arg = bound.tags.get(tag)
        return None if arg is None else self.value(arg)

    def tag_number(self, bound: Bound, tag: str) -> int | None:
        arg = bound.tags.get(tag)
        return None if arg is None else arg.number

    def match(
        self, bound: Bound, keys_arg: Arg, default_comparator: str = ASCII_CASEMAP
    ) -> nodes.MatchSpec:
        """The match type, comparator and keys of a test (RFC 5228 2.7, RFC 5231)."""
        comparator = default_comparator  # RFC 5228 section 2.7.3: i;ascii-casemap by default
        arg = bound.tags.get("comparator")
        if arg is not None:
            comparator = self.constant(arg, "a comparator name").lower()
            if comparator not in COMPARATORS:
                raise SieveError(f"unsupported comparator {comparator!r}", arg.line)
            if comparator == ASCII_NUMERIC and f"comparator-{ASCII_NUMERIC}" not in (
                self.extensions
            ):
                raise SieveError(
                    f"comparator {comparator!r} needs require 'comparator-{ASCII_NUMERIC}'",
                    arg.line,
                )
        match_type = IS  # section 2.7.1: the default
        relation = ""
        for tag in ("is", "contains", "matches", "regex", "value", "count"):
            if bound.has(tag):
                match_type = tag
        if match_type in (VALUE, COUNT):
            rel_arg = bound.tags[match_type]
            assert rel_arg is not None
            relation = self.constant(rel_arg, "a relational operator").lower()
            if relation not in RELATIONS:
                raise SieveError(f"invalid relational operator {relation!r}", rel_arg.line)
        check_match(match_type, comparator, bound.line)
        keys = self.values(keys_arg)
        capture = "variables" in self.extensions and match_type in (MATCHES, REGEX)
        try:
            return nodes.MatchSpec(match_type, relation, comparator, keys, capture)
        except RegexError as exc:
            raise SieveError(f"invalid regular expression: {exc}", keys_arg.line) from None

    @staticmethod
    def address_part(bound: Bound) -> str:
        for tag in ("localpart", "domain", "user", "detail"):
            if bound.has(tag):
                return tag
        return "all"  # section 2.7.4: the default

    def index(self, bound: Bound) -> tuple[int, bool]:
        """RFC 5260 section 6: ":index N [:last]"; (0, False) without it."""
        number = self.tag_number(bound, "index")
        if number is None:
            if bound.has("last"):
                raise SieveError("':last' needs ':index'", bound.line)
            return 0, False
        if number < 1:
            raise SieveError("':index' counts from 1", bound.line)
        return number, bound.has("last")

    # -- tests and commands

    def test(self, raw: RawTest) -> nodes.Node:
        name, line = raw.name, raw.line
        spec = self.tests.get(name)
        if spec is None:
            if name in self.commands or name in ("if", "elsif", "else", "require"):
                raise SieveError(f"{name!r} is a command, not a test", line)
            raise SieveError(f"unknown test {name!r}", line)
        self.need(spec.extension, repr(name), line)
        if spec.tests:
            return spec.build(self, Bound(name, line, {}, list(raw.args)), raw)
        if raw.tests:
            raise SieveError(f"{name!r} takes no test", line)
        return spec.build(self, self.bind(name, line, raw.args, spec.tags), raw)

    def command(self, cmd: RawCommand) -> nodes.Node:
        name, line = cmd.name, cmd.line
        spec = self.commands.get(name)
        if spec is None:
            if name in self.tests:
                raise SieveError(f"{name!r} is a test, not a command", line)
            raise SieveError(f"unknown command {name!r}", line)
        self.need(spec.extension, repr(name), line)
        if spec.block:
            if cmd.tests:
                raise SieveError(f"{name!r} takes no test", line)
            if cmd.block is None:
                raise SieveError(f"{name!r} needs a block", line)
        else:
            self.no_test_no_block(cmd)
        return spec.build(self, self.bind(name, line, cmd.args, spec.tags), cmd)

    def sub_block(self, raw: RawTest) -> tuple[nodes.Command, ...]:
        assert isinstance(raw, RawCommand) and raw.block is not None
        return self.block(raw.block)
