"""The checked syntax tree that `parse` produces and the interpreter runs.

One node class for every command and test, as Pigeonhole's operations are one table: `name`
says what it is, `tags` and `args` hold its arguments already checked and prepared (strings
decoded, literals folded and compiled, strings with variables as `Template`s), `tests` and
`block` its tests and commands, `match` its match type, comparator and keys. Evaluation never
reads the script text again, and a `Script` is never modified, so it can be cached and run any
number of times.
"""

from __future__ import annotations

from .matching import Matcher
from .strings import Template, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class MatchSpec:
    """A test's match type (with relation), comparator and key-list. `matcher` is built at
    parse time when every key is a literal; otherwise the interpreter builds one per run."""

    __slots__ = ("capture", "comparator", "keys", "match_type", "matcher", "relation")

    def __init__(
        self,
        match_type: str,
        relation: str,
        comparator: str,
        keys: tuple[Value, ...],
        capture: bool,
    ) -> None:
        self.match_type = match_type
        self.relation = relation
        self.comparator = comparator
        self.keys = keys
        self.capture = capture  # set match variables (RFC 5229 3.2) when it matches
        self.matcher: Matcher | None = None
        if not any(isinstance(k, Template) for k in keys):
            self.matcher = Matcher(match_type, comparator, [str(k) for k in keys], relation)

    def __repr__(self) -> str:
        return f"MatchSpec({self.match_type!r}, {self.comparator!r}, {self.keys!r})"


class Node:
    """A command or a test. `tags`: tag name -> prepared value (True for a tag without one);
    `args`: the positional arguments, prepared; `block`: None for a test or a command that
    takes none."""

    __slots__ = ("args", "block", "line", "match", "name", "tags", "tests")

    def __init__(
        self,
        name: str,
        line: int,
        *,
        tags: Mapping[str, object] | None = None,
        args: tuple[object, ...] = (),
        tests: tuple[Node, ...] = (),
        block: tuple[Command, ...] | None = None,
        match: MatchSpec | None = None,
    ) -> None:
        self.name = name
        self.line = line
        self.tags: dict[str, object] = dict(tags) if tags else {}
        self.args = args
        self.tests = tests
        self.block = block
        self.match = match

    def __repr__(self) -> str:
        return f"Node({self.name!r}, line={self.line}, tags={self.tags!r}, args={self.args!r})"


class If:
    """An if/elsif/else chain (RFC 5228 section 3.1); the else branch has test None."""

    __slots__ = ("branches", "line", "name")

    def __init__(self, branches: tuple[tuple[Node | None, tuple[Command, ...]], ...], line: int):
        self.branches = branches
        self.line = line
        self.name = "if"

    def __repr__(self) -> str:
        return f"If(line={self.line}, branches={self.branches!r})"


Command = Node | If


class Script:
    """A parsed, checked script: its commands and the extensions it required."""

    __slots__ = ("commands", "extensions", "name")

    def __init__(
        self, commands: tuple[Command, ...], extensions: frozenset[str], name: str = ""
    ) -> None:
        self.commands = commands
        self.extensions = extensions
        self.name = name
