"""The checked syntax tree that `parse` produces and `evaluate` runs.

Every argument is already validated and, where it is a literal that needs preparing (match
keys, flags, addresses), prepared; evaluation never re-reads the script text.
"""

from __future__ import annotations

from .matching import Matcher


class _Node:
    """Plain classes, not dataclasses: creating a dataclass costs about a millisecond at
    import time, and the mda imports this for every message that has a script."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"


# ----------------------------------------------------------------------------------- tests


class Const(_Node):
    """`true` / `false` (RFC 5228 sections 5.6, 5.10)."""

    __slots__ = ("line", "value")

    def __init__(self, value: bool, line: int) -> None:
        self.value = value
        self.line = line


class Not(_Node):
    """RFC 5228 section 5.8."""

    __slots__ = ("line", "test")

    def __init__(self, test: Test, line: int) -> None:
        self.test = test
        self.line = line


class AllOf(_Node):
    """RFC 5228 section 5.2."""

    __slots__ = ("line", "tests")

    def __init__(self, tests: tuple[Test, ...], line: int) -> None:
        self.tests = tests
        self.line = line


class AnyOf(_Node):
    """RFC 5228 section 5.3."""

    __slots__ = ("line", "tests")

    def __init__(self, tests: tuple[Test, ...], line: int) -> None:
        self.tests = tests
        self.line = line


class Header(_Node):
    """RFC 5228 section 5.7. `names` are lower case."""

    __slots__ = ("line", "matcher", "names")

    def __init__(self, names: tuple[str, ...], matcher: Matcher, line: int) -> None:
        self.names = names
        self.matcher = matcher
        self.line = line


class Address(_Node):
    """RFC 5228 section 5.1; `part` is all/localpart/domain/user/detail."""

    __slots__ = ("line", "matcher", "names", "part")

    def __init__(self, names: tuple[str, ...], part: str, matcher: Matcher, line: int) -> None:
        self.names = names
        self.part = part
        self.matcher = matcher
        self.line = line


class Envelope(_Node):
    """RFC 5228 section 5.4; `parts` are "from" and/or "to"."""

    __slots__ = ("line", "matcher", "part", "parts")

    def __init__(self, parts: tuple[str, ...], part: str, matcher: Matcher, line: int) -> None:
        self.parts = parts
        self.part = part
        self.matcher = matcher
        self.line = line


class Exists(_Node):
    """RFC 5228 section 5.5."""

    __slots__ = ("line", "names")

    def __init__(self, names: tuple[str, ...], line: int) -> None:
        self.names = names
        self.line = line


class Size(_Node):
    """RFC 5228 section 5.9."""

    __slots__ = ("limit", "line", "over")

    def __init__(self, over: bool, limit: int, line: int) -> None:
        self.over = over
        self.limit = limit
        self.line = line


class HasFlag(_Node):
    """RFC 5232 section 4; `variables` None means the internal variable."""

    __slots__ = ("line", "matcher", "variables")

    def __init__(self, variables: tuple[str, ...] | None, matcher: Matcher, line: int) -> None:
        self.variables = variables
        self.matcher = matcher
        self.line = line


class MailboxExists(_Node):
    """RFC 5490 section 3.1."""

    __slots__ = ("line", "names")

    def __init__(self, names: tuple[str, ...], line: int) -> None:
        self.names = names
        self.line = line


Test = (
    Const
    | Not
    | AllOf
    | AnyOf
    | Header
    | Address
    | Envelope
    | Exists
    | Size
    | HasFlag
    | MailboxExists
)

# -------------------------------------------------------------------------------- commands


class If(_Node):
    """An if/elsif/else chain (RFC 5228 section 3.1); the else branch has test None."""

    __slots__ = ("branches", "line")

    def __init__(
        self, branches: tuple[tuple[Test | None, tuple[Command, ...]], ...], line: int
    ) -> None:
        self.branches = branches
        self.line = line


class Stop(_Node):
    """RFC 5228 section 3.3."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line


class KeepCommand(_Node):
    """RFC 5228 section 4.3; `flags` None: the internal flag variable (RFC 5232 section 5)."""

    __slots__ = ("flags", "line")

    def __init__(self, flags: tuple[str, ...] | None, line: int) -> None:
        self.flags = flags
        self.line = line


class FileIntoCommand(_Node):
    """RFC 5228 section 4.1 with :copy (RFC 3894), :create (RFC 5490), :flags (RFC 5232)."""

    __slots__ = ("copy", "create", "flags", "line", "mailbox")

    def __init__(
        self, mailbox: str, flags: tuple[str, ...] | None, copy: bool, create: bool, line: int
    ) -> None:
        self.mailbox = mailbox
        self.flags = flags
        self.copy = copy
        self.create = create
        self.line = line


class RedirectCommand(_Node):
    """RFC 5228 section 4.2 with :copy (RFC 3894); `address` is a checked addr-spec."""

    __slots__ = ("address", "copy", "line")

    def __init__(self, address: str, copy: bool, line: int) -> None:
        self.address = address
        self.copy = copy
        self.line = line


class DiscardCommand(_Node):
    """RFC 5228 section 4.4."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line


class FlagCommand(_Node):
    """setflag/addflag/removeflag (RFC 5232 section 3); `variable` None: the internal one."""

    __slots__ = ("flags", "line", "operation", "variable")

    def __init__(
        self, operation: str, variable: str | None, flags: tuple[str, ...], line: int
    ) -> None:
        self.operation = operation  # "setflag", "addflag" or "removeflag"
        self.variable = variable
        self.flags = flags
        self.line = line


Command = If | Stop | KeepCommand | FileIntoCommand | RedirectCommand | DiscardCommand | FlagCommand


class Script(_Node):
    """A parsed, checked script, ready for `evaluate`; never modified, so it can be cached
    and evaluated any number of times."""

    __slots__ = ("commands", "extensions")

    def __init__(self, commands: tuple[Command, ...], extensions: frozenset[str]) -> None:
        self.commands = commands
        self.extensions = extensions
