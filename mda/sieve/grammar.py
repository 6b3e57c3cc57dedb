"""Pass 1 of the parser: the grammar of RFC 5228 section 8.2, nothing else.

    start     = commands
    commands  = *command
    command   = identifier arguments (";" / block)
    block     = "{" commands "}"
    arguments = *argument [ test / test-list ]
    argument  = string-list / number / tag
    test      = identifier arguments
    test-list = "(" test *("," test) ")"

The tree it builds is untyped (names, arguments, tests, blocks); `checker` gives it meaning.
Nesting of blocks and of tests is bounded here (`Limits.max_nesting`), so that neither pass
recurses deeper than that.
"""

from __future__ import annotations

from .errors import Limits, SieveError
from .lexer import EOF, IDENT, NUMBER, STRING, TAG, Token

# Plain classes rather than dataclasses: cheaper to create at import time (see nodes.py).


class Arg:
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


class RawTest:
    __slots__ = ("args", "line", "name", "test_list", "tests")

    def __init__(
        self, name: str, line: int, args: list[Arg], tests: list[RawTest], test_list: bool
    ) -> None:
        self.name = name
        self.line = line
        self.args = args
        self.tests = tests
        self.test_list = test_list  # the tests were given in parentheses


class RawCommand(RawTest):
    __slots__ = ("block",)

    def __init__(
        self, name: str, line: int, args: list[Arg], tests: list[RawTest], test_list: bool
    ) -> None:
        super().__init__(name, line, args, tests, test_list)
        self.block: list[RawCommand] | None = None


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


class Grammar:
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

    def script(self) -> list[RawCommand]:
        commands = self.commands(0)
        tok = self.peek()
        if tok.kind != EOF:
            raise SieveError(f"expected a command, found {_describe(tok)}", tok.line)
        return commands

    def commands(self, depth: int) -> list[RawCommand]:
        commands: list[RawCommand] = []
        while self.peek().kind == IDENT:
            commands.append(self.command(depth))
        return commands

    def command(self, depth: int) -> RawCommand:
        name = self.take()
        args, tests, test_list = self.arguments(0)
        cmd = RawCommand(str(name.value), name.line, args, tests, test_list)
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

    def arguments(self, depth: int) -> tuple[list[Arg], list[RawTest], bool]:
        args: list[Arg] = []
        while True:
            tok = self.peek()
            if tok.kind == STRING:
                self.take()
                args.append(Arg("string", tok.line, strings=(str(tok.value),)))
            elif tok.kind == "[":
                self.take()
                strings = [str(self.expect(STRING, "a string in the string list").value)]
                while self.peek().kind == ",":
                    self.take()
                    strings.append(str(self.expect(STRING, "a string after ','").value))
                self.expect("]", "',' or ']' in the string list")
                args.append(Arg("list", tok.line, strings=tuple(strings)))
            elif tok.kind == NUMBER:
                self.take()
                args.append(Arg("number", tok.line, number=int(tok.value)))
            elif tok.kind == TAG:
                self.take()
                args.append(Arg("tag", tok.line, tag=str(tok.value)))
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

    def test(self, depth: int) -> RawTest:
        tok = self.expect(IDENT, "a test")
        # RFC 5228 section 2.10.7: at least 15 levels of nested tests.
        if depth > self.max_nesting:
            raise SieveError(f"tests nested deeper than {self.max_nesting}", tok.line)
        args, tests, test_list = self.arguments(depth)
        return RawTest(str(tok.value), tok.line, args, tests, test_list)
