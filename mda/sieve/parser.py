"""The Sieve parser: grammar (RFC 5228 section 8.2) and checks of every command's arguments.

Parsing is in two passes. The first follows the grammar only:

    start     = commands
    commands  = *command
    command   = identifier arguments (";" / block)
    block     = "{" commands "}"
    arguments = *argument [ test / test-list ]
    argument  = string-list / number / tag
    test      = identifier arguments
    test-list = "(" test *("," test) ")"

The second checks each command and test against its "Usage:" line (names, tagged arguments,
positional arguments and their types, tests and blocks), that every extension used was named
in a `require`, and prepares literals for evaluation. All errors carry the line.
"""

from __future__ import annotations

from . import nodes
from .errors import DEFAULT_LIMITS, Limits, SieveError
from .flags import split_flags, valid_flags
from .lexer import EOF, IDENT, NUMBER, STRING, TAG, Token, tokenize
from .matching import ASCII_CASEMAP, COMPARATORS, IS, Matcher
from .message import _tokens, address_part, parse_address_list

# Capabilities we implement (RFC 5228 section 6: case-sensitive). The two built-in
# comparators may be required but need not be (section 6.1).
EXTENSIONS = frozenset(
    {
        "fileinto",  # RFC 5228 section 4.1
        "envelope",  # RFC 5228 section 5.4
        "encoded-character",  # RFC 5228 section 2.4.2.4
        "comparator-i;octet",
        "comparator-i;ascii-casemap",
        "subaddress",  # RFC 5233
        "imap4flags",  # RFC 5232
        "copy",  # RFC 3894
        "mailbox",  # RFC 5490 section 3
    }
)

# ------------------------------------------------------------------------------ pass 1: grammar


# Plain classes rather than dataclasses: cheaper to create at import time (see nodes.py).


class _Arg:
    __slots__ = ("kind", "line", "number", "strings", "tag")

    def __init__(
        self,
        kind: str,
        line: int,
        *,
        tag: str = "",
        number: int = 0,
        strings: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind  # "tag", "number", "string" (a lone string) or "list" ([...])
        self.line = line
        self.tag = tag
        self.number = number
        self.strings = strings


class _Test:
    __slots__ = ("args", "line", "name", "test_list", "tests")

    def __init__(
        self, name: str, line: int, args: list[_Arg], tests: list[_Test], test_list: bool
    ) -> None:
        self.name = name
        self.line = line
        self.args = args
        self.tests = tests
        self.test_list = test_list  # the tests were given in parentheses


class _Command(_Test):
    __slots__ = ("block",)

    def __init__(
        self, name: str, line: int, args: list[_Arg], tests: list[_Test], test_list: bool
    ) -> None:
        super().__init__(name, line, args, tests, test_list)
        self.block: list[_Command] | None = None


def _describe(tok: Token) -> str:
    if tok.kind == IDENT:
        return f"identifier {tok.value!r}"
    if tok.kind == TAG:
        return f"tag ':{tok.value}'"
    if tok.kind == STRING:
        return "a string"
    if tok.kind == NUMBER:
        return f"number {tok.value}"
    if tok.kind == EOF:
        return "the end of the script"
    return repr(tok.kind)


class _Grammar:
    def __init__(self, tokens: list[Token], limits: Limits) -> None:
        self.tokens = tokens
        self.pos = 0
        self.max_nesting = limits.max_nesting

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != EOF:
            self.pos += 1
        return tok

    def expect(self, kind: str, what: str) -> Token:
        tok = self.take()
        if tok.kind != kind:
            raise SieveError(f"expected {what}, found {_describe(tok)}", tok.line)
        return tok

    def script(self) -> list[_Command]:
        commands = self.commands(0)
        tok = self.peek()
        if tok.kind != EOF:
            raise SieveError(f"expected a command, found {_describe(tok)}", tok.line)
        return commands

    def commands(self, depth: int) -> list[_Command]:
        commands: list[_Command] = []
        while self.peek().kind == IDENT:
            commands.append(self.command(depth))
        return commands

    def command(self, depth: int) -> _Command:
        name = self.take()
        args, tests, test_list = self.arguments(0)
        cmd = _Command(str(name.value), name.line, args, tests, test_list)
        tok = self.take()
        if tok.kind == "{":
            # RFC 5228 section 2.10.7: at least 15 levels of nested blocks.
            if depth + 1 > self.max_nesting:
                raise SieveError(f"blocks nested deeper than {self.max_nesting}", tok.line)
            cmd.block = self.commands(depth + 1)
            self.expect("}", "'}' or a command")
        elif tok.kind != ";":
            raise SieveError(
                f"expected ';' or '{{' to end {cmd.name!r}, found {_describe(tok)}", tok.line
            )
        return cmd

    def arguments(self, depth: int) -> tuple[list[_Arg], list[_Test], bool]:
        args: list[_Arg] = []
        while True:
            tok = self.peek()
            if tok.kind == STRING:
                self.take()
                args.append(_Arg("string", tok.line, strings=(str(tok.value),)))
            elif tok.kind == "[":
                self.take()
                strings = [str(self.expect(STRING, "a string in the string list").value)]
                while self.peek().kind == ",":
                    self.take()
                    strings.append(str(self.expect(STRING, "a string after ','").value))
                self.expect("]", "',' or ']' in the string list")
                args.append(_Arg("list", tok.line, strings=tuple(strings)))
            elif tok.kind == NUMBER:
                self.take()
                args.append(_Arg("number", tok.line, number=int(tok.value)))
            elif tok.kind == TAG:
                self.take()
                args.append(_Arg("tag", tok.line, tag=str(tok.value)))
            else:
                break
        tok = self.peek()
        if tok.kind == IDENT:
            return args, [self.test(depth + 1)], False
        if tok.kind == "(":
            self.take()
            tests = [self.test(depth + 1)]
            while self.peek().kind == ",":
                self.take()
                tests.append(self.test(depth + 1))
            self.expect(")", "',' or ')' in the test list")
            return args, tests, True
        return args, [], False

    def test(self, depth: int) -> _Test:
        tok = self.expect(IDENT, "a test")
        # RFC 5228 section 2.10.7: at least 15 levels of nested tests.
        if depth > self.max_nesting:
            raise SieveError(f"tests nested deeper than {self.max_nesting}", tok.line)
        args, tests, test_list = self.arguments(depth)
        return _Test(str(tok.value), tok.line, args, tests, test_list)


# -------------------------------------------------------------------------- pass 2: semantics

# A tagged argument: (group, value kind or None, extension or None). Tags of one group
# conflict with each other (RFC 5228 section 2.6: no conflicting or repeated arguments).
_TagSpec = tuple[str, str | None, str | None]

_COMPARATOR: dict[str, _TagSpec] = {"comparator": ("comparator", "string", None)}
_MATCH_TYPE: dict[str, _TagSpec] = {
    "is": ("match type", None, None),
    "contains": ("match type", None, None),
    "matches": ("match type", None, None),
}
_ADDRESS_PART: dict[str, _TagSpec] = {
    "all": ("address part", None, None),
    "localpart": ("address part", None, None),
    "domain": ("address part", None, None),
    "user": ("address part", None, "subaddress"),  # RFC 5233 section 4
    "detail": ("address part", None, "subaddress"),
}
_SIZE: dict[str, _TagSpec] = {"over": ("size", None, None), "under": ("size", None, None)}
_COPY: dict[str, _TagSpec] = {"copy": ("copy", None, "copy")}
_FLAGS: dict[str, _TagSpec] = {"flags": ("flags", "string-list", "imap4flags")}
_CREATE: dict[str, _TagSpec] = {"create": ("create", None, "mailbox")}

# Commands and tests that need an extension (RFC 5228 section 2.10.5).
_NEEDS = {
    "fileinto": "fileinto",
    "envelope": "envelope",
    "setflag": "imap4flags",
    "addflag": "imap4flags",
    "removeflag": "imap4flags",
    "hasflag": "imap4flags",
    "mailboxexists": "mailbox",
}
_COMMANDS = frozenset(
    {"require", "if", "elsif", "else", "stop", "keep", "discard", "fileinto", "redirect"}
    | {"setflag", "addflag", "removeflag"}
)
_TESTS = frozenset(
    {"address", "allof", "anyof", "envelope", "exists", "false", "header", "not", "size"}
    | {"true", "hasflag", "mailboxexists"}
)


class _Bound:
    """A command's arguments sorted out: tags by name (with their value), positionals."""

    __slots__ = ("positional", "tags")

    def __init__(self, tags: dict[str, _Arg | None], positional: list[_Arg]) -> None:
        self.tags = tags
        self.positional = positional

    def has(self, tag: str) -> bool:
        return tag in self.tags


def _is_identifier(name: str) -> bool:
    return (
        bool(name)
        and (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c == "_") for c in name)
    )


class _Checker:
    def __init__(self) -> None:
        self.extensions: set[str] = set()

    # -- strings

    def decode(self, value: str, line: int) -> str:
        if "encoded-character" in self.extensions and "${" in value:
            return decode_encoded_characters(value, line)
        return value

    def string(self, arg: _Arg) -> str:
        return self.decode(arg.strings[0], arg.line)

    def strings(self, arg: _Arg) -> tuple[str, ...]:
        return tuple(self.decode(s, arg.line) for s in arg.strings)

    # -- script structure

    def script(self, raw: list[_Command]) -> nodes.Script:
        i = 0
        # RFC 5228 section 3.2: require, if present, comes before anything else.
        while i < len(raw) and raw[i].name == "require":
            self.require(raw[i])
            i += 1
        commands = self.block(raw[i:])
        return nodes.Script(commands, frozenset(self.extensions))

    def require(self, cmd: _Command) -> None:
        self.no_test_no_block(cmd)
        bound = self.bind(cmd.name, cmd.line, cmd.args, {})
        self.positional(cmd.name, cmd.line, bound, ("string-list",))
        for capability in bound.positional[0].strings:
            if capability not in EXTENSIONS:
                # Section 2.10.5: nothing may run if a required extension is unavailable.
                raise SieveError(f"unsupported extension {capability!r} in require", cmd.line)
            self.extensions.add(capability)

    def block(self, raw: list[_Command]) -> tuple[nodes.Command, ...]:
        out: list[nodes.Command] = []
        chain: list[tuple[nodes.Test | None, tuple[nodes.Command, ...]]] | None = None
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

    def branch(self, cmd: _Command) -> tuple[nodes.Test | None, tuple[nodes.Command, ...]]:
        if cmd.args:
            raise SieveError(f"{cmd.name!r} takes no arguments besides its test", cmd.line)
        if cmd.block is None:
            raise SieveError(f"{cmd.name!r} needs a block", cmd.line)
        test: nodes.Test | None = None
        if cmd.name == "else":
            if cmd.tests:
                raise SieveError("'else' takes no test", cmd.line)
        else:
            if len(cmd.tests) != 1 or cmd.test_list:
                raise SieveError(f"{cmd.name!r} needs exactly one test", cmd.line)
            test = self.test(cmd.tests[0])
        return test, self.block(cmd.block)

    def no_test_no_block(self, cmd: _Command) -> None:
        if cmd.tests and not cmd.test_list and cmd.tests[0].name in _COMMANDS:
            raise SieveError(f"missing ';' after {cmd.name!r}", cmd.line)
        if cmd.tests:
            raise SieveError(f"{cmd.name!r} takes no test", cmd.line)
        if cmd.block is not None:
            raise SieveError(f"{cmd.name!r} takes no block; end it with ';'", cmd.line)

    def need(self, name: str, line: int) -> None:
        extension = _NEEDS.get(name)
        if extension is not None and extension not in self.extensions:
            raise SieveError(f"{name!r} needs require {extension!r}", line)

    # -- arguments

    def bind(self, name: str, line: int, args: list[_Arg], specs: dict[str, _TagSpec]) -> _Bound:
        """Sort arguments into tags and positionals (RFC 5228 section 2.6)."""
        tags: dict[str, _Arg | None] = {}
        groups: dict[str, str] = {}
        positional: list[_Arg] = []
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
            if extension is not None and extension not in self.extensions:
                raise SieveError(f"':{arg.tag}' needs require {extension!r}", arg.line)
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
            value: _Arg | None = None
            if value_kind is not None:
                if i >= len(args) or not self.kind_ok(args[i], value_kind):
                    raise SieveError(f"':{arg.tag}' must be followed by a {value_kind}", arg.line)
                value = args[i]
                i += 1
            tags[arg.tag] = value
        return _Bound(tags, positional)

    @staticmethod
    def kind_ok(arg: _Arg, kind: str) -> bool:
        if kind == "string":
            return arg.kind == "string"
        if kind == "string-list":
            return arg.kind in ("string", "list")
        return arg.kind == "number"

    def positional(self, name: str, line: int, bound: _Bound, kinds: tuple[str, ...]) -> None:
        got = bound.positional
        if len(got) != len(kinds):
            expected = ", ".join(kinds) if kinds else "no positional arguments"
            raise SieveError(
                f"{name!r} takes {len(kinds)} positional argument(s) ({expected}), got {len(got)}",
                got[len(kinds)].line if len(got) > len(kinds) else line,
            )
        for arg, kind in zip(got, kinds, strict=True):
            if not self.kind_ok(arg, kind):
                found = "a string list" if arg.kind == "list" else f"a {arg.kind}"
                raise SieveError(f"{name!r} expects a {kind} here, not {found}", arg.line)

    def matcher(self, bound: _Bound, keys: tuple[str, ...]) -> Matcher:
        comparator = ASCII_CASEMAP  # RFC 5228 section 2.7.3: the default
        value = bound.tags.get("comparator")
        if value is not None:
            comparator = self.string(value).lower()
            if comparator not in COMPARATORS:
                raise SieveError(f"unsupported comparator {comparator!r}", value.line)
        match_type = IS  # section 2.7.1: the default
        for tag in ("is", "contains", "matches"):
            if bound.has(tag):
                match_type = tag
        return Matcher.build(match_type, comparator, keys)

    @staticmethod
    def address_part(bound: _Bound) -> str:
        for tag in ("localpart", "domain", "user", "detail"):
            if bound.has(tag):
                return tag
        return "all"  # section 2.7.4: the default

    # -- tests

    def test(self, raw: _Test) -> nodes.Test:
        name, line = raw.name, raw.line
        if name not in _TESTS:
            if name in _COMMANDS:
                raise SieveError(f"{name!r} is a command, not a test", line)
            raise SieveError(f"unknown test {name!r}", line)
        self.need(name, line)
        if name in ("allof", "anyof"):
            if raw.args or not raw.test_list:
                raise SieveError(f"{name!r} takes a test list in parentheses", line)
            tests = tuple(self.test(t) for t in raw.tests)
            return nodes.AllOf(tests, line) if name == "allof" else nodes.AnyOf(tests, line)
        if name == "not":
            if raw.args or len(raw.tests) != 1 or raw.test_list:
                raise SieveError("'not' takes exactly one test", line)
            return nodes.Not(self.test(raw.tests[0]), line)
        if raw.tests:
            raise SieveError(f"{name!r} takes no test", line)
        if name in ("true", "false"):
            self.positional(name, line, self.bind(name, line, raw.args, {}), ())
            return nodes.Const(name == "true", line)
        if name == "header":
            bound = self.bind(name, line, raw.args, {**_COMPARATOR, **_MATCH_TYPE})
            self.positional(name, line, bound, ("string-list", "string-list"))
            names = tuple(n.lower() for n in self.strings(bound.positional[0]))
            keys = self.strings(bound.positional[1])
            return nodes.Header(names, self.matcher(bound, keys), line)
        if name in ("address", "envelope"):
            specs = {**_COMPARATOR, **_MATCH_TYPE, **_ADDRESS_PART}
            bound = self.bind(name, line, raw.args, specs)
            self.positional(name, line, bound, ("string-list", "string-list"))
            names = tuple(n.lower() for n in self.strings(bound.positional[0]))
            keys = self.strings(bound.positional[1])
            matcher = self.matcher(bound, keys)
            part = self.address_part(bound)
            if name == "address":
                return nodes.Address(names, part, matcher, line)
            for envelope_part in names:
                # Section 5.4: unknown envelope parts SHOULD be an error.
                if envelope_part not in ("from", "to"):
                    raise SieveError(f"unknown envelope part {envelope_part!r}", line)
            return nodes.Envelope(names, part, matcher, line)
        if name in ("exists", "mailboxexists"):
            bound = self.bind(name, line, raw.args, {})
            self.positional(name, line, bound, ("string-list",))
            if name == "exists":
                return nodes.Exists(tuple(self.strings(bound.positional[0])), line)
            return nodes.MailboxExists(self.strings(bound.positional[0]), line)
        if name == "size":
            bound = self.bind(name, line, raw.args, _SIZE)
            self.positional(name, line, bound, ("number",))
            # Section 5.9: exactly one of :over or :under.
            if not (bound.has("over") or bound.has("under")):
                raise SieveError("'size' needs ':over' or ':under'", line)
            return nodes.Size(bound.has("over"), bound.positional[0].number, line)
        # hasflag [MATCH-TYPE] [COMPARATOR] [<variable-list>] <list-of-flags> (RFC 5232 4)
        assert name == "hasflag"
        bound = self.bind(name, line, raw.args, {**_COMPARATOR, **_MATCH_TYPE})
        variables: tuple[str, ...] | None = None
        if len(bound.positional) == 2:
            self.positional(name, line, bound, ("string-list", "string-list"))
            variables = tuple(
                self.variable_name(v, bound.positional[0].line)
                for v in self.strings(bound.positional[0])
            )
            flags_arg = bound.positional[1]
        else:
            self.positional(name, line, bound, ("string-list",))
            flags_arg = bound.positional[0]
        keys = tuple(split_flags(self.strings(flags_arg)))
        return nodes.HasFlag(variables, self.matcher(bound, keys), line)

    @staticmethod
    def variable_name(name: str, line: int) -> str:
        # RFC 5229 section 3: variable-name = identifier; names are case-insensitive.
        if not _is_identifier(name):
            raise SieveError(f"invalid variable name {name!r}", line)
        return name.lower()

    # -- commands

    def command(self, cmd: _Command) -> nodes.Command:
        name, line = cmd.name, cmd.line
        if name not in _COMMANDS:
            if name in _TESTS:
                raise SieveError(f"{name!r} is a test, not a command", line)
            raise SieveError(f"unknown command {name!r}", line)
        self.need(name, line)
        self.no_test_no_block(cmd)
        if name in ("stop", "discard"):
            self.positional(name, line, self.bind(name, line, cmd.args, {}), ())
            return nodes.Stop(line) if name == "stop" else nodes.DiscardCommand(line)
        if name == "keep":
            bound = self.bind(name, line, cmd.args, _FLAGS)
            self.positional(name, line, bound, ())
            return nodes.KeepCommand(self.flags(bound), line)
        if name == "fileinto":
            bound = self.bind(name, line, cmd.args, {**_COPY, **_FLAGS, **_CREATE})
            self.positional(name, line, bound, ("string",))
            mailbox = self.string(bound.positional[0])
            check_mailbox_name(mailbox, bound.positional[0].line)
            return nodes.FileIntoCommand(
                mailbox, self.flags(bound), bound.has("copy"), bound.has("create"), line
            )
        if name == "redirect":
            bound = self.bind(name, line, cmd.args, _COPY)
            self.positional(name, line, bound, ("string",))
            arg = bound.positional[0]
            address = redirect_address(self.string(arg))
            if address is None:
                # Section 2.4.2.3: an outbound address must be a valid "sieve-address".
                raise SieveError(f"invalid redirect address {self.string(arg)!r}", arg.line)
            return nodes.RedirectCommand(address, bound.has("copy"), line)
        # setflag/addflag/removeflag [<variablename: string>] <list-of-flags: string-list>
        bound = self.bind(name, line, cmd.args, {})
        variable: str | None = None
        if len(bound.positional) == 2:
            self.positional(name, line, bound, ("string", "string-list"))
            variable = self.variable_name(self.string(bound.positional[0]), line)
            flags_arg = bound.positional[1]
        else:
            self.positional(name, line, bound, ("string-list",))
            flags_arg = bound.positional[0]
        strings = self.strings(flags_arg)
        # removeflag removes whatever it names; the others keep only valid flags (RFC 5232 2).
        flags = tuple(split_flags(strings)) if name == "removeflag" else valid_flags(strings)
        return nodes.FlagCommand(name, variable, flags, line)

    def flags(self, bound: _Bound) -> tuple[str, ...] | None:
        value = bound.tags.get("flags")
        return None if value is None else valid_flags(self.strings(value))


# ------------------------------------------------------------------------------------ helpers


def check_mailbox_name(mailbox: str, line: int) -> None:
    """Refuse names no mail store can hold; the store checks the rest when delivering."""
    if not mailbox:
        raise SieveError("empty mailbox name", line)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in mailbox):
        raise SieveError(f"control character in mailbox name {mailbox!r}", line)
    try:
        mailbox.encode("utf-8")
    except UnicodeEncodeError:
        raise SieveError(f"mailbox name {mailbox!r} is not valid UTF-8", line) from None


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


def decode_encoded_characters(value: str, line: int) -> str:
    """RFC 5228 section 2.4.2.4: replace "${hex:...}" and "${unicode:...}" in one pass.

    A sequence that is not well-formed stays as written; a well-formed one with a Unicode
    value outside 0-D7FF and E000-10FFFF is an error. The result is read as UTF-8; octets
    that are not valid UTF-8 are kept (with surrogateescape) so comparisons see them as-is.
    """
    out = bytearray()
    i = 0
    n = len(value)
    while i < n:
        start = value.find("${", i)
        if start < 0:
            out += _octets(value[i:])
            break
        out += _octets(value[i:start])
        decoded = _encoded_sequence(value, start, line)
        if decoded is None:
            out += b"$"
            i = start + 1
        else:
            out += decoded[0]
            i = decoded[1]
    return out.decode("utf-8", "surrogateescape")


def _octets(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
_BLANKS = frozenset(" \t\n")  # blank = WSP / CRLF (CRLF is "\n" once lexed)


def _encoded_sequence(value: str, start: int, line: int) -> tuple[bytes, int] | None:
    colon = value.find(":", start + 2, start + 10)  # "${unicode:" is the longest
    if colon < 0:
        return None
    kind = value[start + 2 : colon].lower()
    if kind not in ("hex", "unicode"):
        return None
    i = colon + 1
    n = len(value)
    items: list[str] = []
    while True:
        while i < n and value[i] in _BLANKS:
            i += 1
        if i >= n:
            return None
        if value[i] == "}":
            break
        if items and value[i - 1] not in _BLANKS:
            return None  # items must be separated by blanks
        j = i
        while j < n and value[j] in _HEXDIGITS:
            j += 1
        if j == i:
            return None
        items.append(value[i:j])
        i = j
    if not items:
        return None
    if kind == "hex":
        if any(len(item) > 2 for item in items):
            return None  # hex-pair = 1*2HEXDIG
        return bytes(int(item, 16) for item in items), i + 1
    chars: list[str] = []
    for item in items:
        code = int(item, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise SieveError(f"invalid Unicode character U+{item.upper()} in string", line)
        chars.append(chr(code))
    return "".join(chars).encode("utf-8"), i + 1


def parse(script_text: str, *, limits: Limits = DEFAULT_LIMITS) -> nodes.Script:
    """Parse and check a script; raise SieveError(message, line) on any error."""
    if len(script_text) > limits.max_script_size or (
        len(_octets(script_text)) > limits.max_script_size
    ):
        raise SieveError(f"script larger than {limits.max_script_size} octets", 1)
    tokens = tokenize(script_text)
    raw = _Grammar(tokens, limits).script()
    return _Checker().script(raw)
