"""Running parsed scripts against a message: control, actions, implicit keep, variables,
includes, script chains. The tests themselves are in `evaltests.py` and `exttests.py`.

Evaluation has no side effects on the world: it returns actions (and duplicate-tracking
entries) for the caller to carry out; what it asks of the world (does a mailbox exist, was
this message seen, an included script) goes through the caller's `Context`.
"""

from __future__ import annotations

from . import nodes
from .actions import (
    Action,
    Discard,
    FileInto,
    Keep,
    Notify,
    Redirect,
    Reject,
    Track,
    Vacation,
)
from .errors import DEFAULT_LIMITS, Limits, SieveError, SieveRuntimeError
from .flags import FlagSet, split_flags, valid_flags
from .matching import Matcher
from .message import SieveEnvelope, SieveMessage
from .strings import Template, Value, apply_modifiers, check_mailbox_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

if TYPE_CHECKING:
    MailboxExists = Callable[[str], bool]
    LoadInclude = Callable[[bool, str], nodes.Script | None]
else:  # only annotations use them: `collections.abc` would cost an import of `collections`
    MailboxExists = LoadInclude = object
# LoadInclude: load_include(global_location, name), the parsed script or None if there is none.


def _only_inbox(name: str) -> bool:
    return name.lower() == "inbox"


def _never_seen(key: bytes) -> bool:
    return False


def _no_include(is_global: bool, name: str) -> nodes.Script | None:
    return None


class Context:
    """What a run asks of its caller; every part has a harmless default.

    - `mailbox_exists(name)`: the `mailboxexists` test (RFC 5490); default: only INBOX.
    - `duplicate_seen(key)`: whether a duplicate-tracking key is remembered (RFC 7352).
    - `load_include(is_global, name)`: an included script, parsed (RFC 6609); None if absent.
    - `environment`: the items of the "environment" test (RFC 5183).
    - `now`: seconds since the epoch, for currentdate; `spam`, `virus`: the configured
      spamtest and virustest (RFC 5235, `spamtest.StatusTest`), or None.
    - `duplicate_periods`: the default and longest duplicate-tracking period, in seconds.
    """

    def __init__(
        self,
        *,
        mailbox_exists: MailboxExists | None = None,
        duplicate_seen: Callable[[bytes], bool] | None = None,
        load_include: LoadInclude | None = None,
        environment: dict[str, str] | None = None,
        now: float | None = None,
        spam: object = None,
        virus: object = None,
        limits: Limits = DEFAULT_LIMITS,
        duplicate_periods: tuple[int, int] = (12 * 3600, 2 * 86400),
    ) -> None:
        import time

        self.mailbox_exists = mailbox_exists or _only_inbox
        self.duplicate_seen = duplicate_seen or _never_seen
        self.load_include = load_include or _no_include
        self.environment = environment or {}
        self.now = time.time() if now is None else now
        self.spam = spam
        self.virus = virus
        self.limits = limits
        # (default, longest) duplicate-tracking period in seconds (Pigeonhole's
        # sieve_duplicate_default_period and sieve_duplicate_max_period).
        self.duplicate_periods = duplicate_periods


class Result:
    """What a run decided: the actions (never empty) and what to remember once delivered."""

    __slots__ = ("actions", "tracks")

    def __init__(self, actions: list[Action], tracks: list[Track]) -> None:
        self.actions = actions
        self.tracks = tracks


def evaluate(
    script: nodes.Script,
    msg: SieveMessage,
    env: SieveEnvelope,
    *,
    mailbox_exists: MailboxExists | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Action]:
    """Run one script; return the actions to perform (never empty).

    Raises SieveRuntimeError on a runtime error, and then no action must be taken except
    delivery to INBOX (RFC 5228 section 2.10.6).
    """
    return evaluate_chain([script], msg, env, mailbox_exists=mailbox_exists, limits=limits)


def evaluate_chain(
    scripts: Sequence[nodes.Script],
    msg: SieveMessage,
    env: SieveEnvelope,
    *,
    mailbox_exists: MailboxExists | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Action]:
    """`run_chain` with only a mailbox check; the actions alone."""
    context = Context(mailbox_exists=mailbox_exists, limits=limits)
    return run_chain(scripts, msg, env, context).actions


def run_chain(
    scripts: Sequence[nodes.Script],
    msg: SieveMessage,
    env: SieveEnvelope,
    context: Context,
) -> Result:
    """Run scripts in sequence, as Pigeonhole runs sieve_before, the user's script, then
    sieve_after; return the actions of the whole sequence (never empty).

    Pigeonhole's semantics, which we follow ("the specified scripts form a sequence together
    with the user script in which the next script is only executed when an (implicit) keep
    action is executed"; `sieve_multiscript_run` in its sieve.c):

    - Each script runs in turn while the previous one ended with its keep in effect: an
      explicit `keep`, or an implicit keep not cancelled by fileinto/redirect (without :copy),
      discard or reject. A script that cancels it ends the sequence.
    - `stop` ends only the script it is in (and the scripts it included).
    - The implicit keep of a script that is followed by another is not performed: it only lets
      the next script run. The implicit keep of the last script run is performed.
    - Actions accumulate over the whole sequence, with duplicates merged across scripts, and
      the limits count the whole sequence. The internal imap4flags variable carries over from
      script to script; variables and named flag variables are per script.
    - A runtime error in any script raises SieveRuntimeError for the whole sequence: the
      caller keeps the message in INBOX and performs none of the actions.
    """
    run = Run(msg, env, context)
    try:
        return run.chain(scripts)
    except SieveRuntimeError:
        raise
    except SieveError as exc:  # an included script that does not compile
        raise SieveRuntimeError(exc.message, exc.line) from exc
    except Exception as exc:
        # A bug, a resource problem or a failing callback must not lose the message; but a
        # signal that stops the delivery stops it (SECURITY.md 5.4), and a global script that
        # is not trusted is a temporary failure, as sieve_before (SECURITY.md 5.1).
        if type(exc).__name__ in ("Interrupted", "MapError"):
            raise
        raise SieveRuntimeError(f"internal error: {exc!r}", run.line) from exc


class _Stop(Exception):
    """`stop` (RFC 5228 3.3): ends the script, and the scripts that included it."""


class _Return(Exception):
    """`return` (RFC 6609 3.3): ends the current (included) script."""


class _Break(Exception):
    """`break` (RFC 5703 3.2): leaves the named (or innermost) foreverypart loop."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Run:
    """The state of one evaluation."""

    def __init__(self, msg: SieveMessage, env: SieveEnvelope, context: Context) -> None:
        self.msg = msg
        self.env = env
        self.context = context
        self.limits = context.limits
        self.line = 0  # of the command or test being run, for errors
        self.actions: list[Action] = []
        self.stores: dict[str, int] = {}  # mailbox key -> index in actions
        self.redirects: set[str] = set()
        self.discarded = False
        self.rejected = False
        self.vacation = False
        self.tracks: list[Track] = []
        self.duplicates: dict[bytes, bool] = {}
        self.internal_flags = FlagSet()
        # Per script (the included ones share their includer's actions, not its variables):
        self.implicit_keep = True
        self.explicit_keep = False
        self.script: nodes.Script = nodes.Script((), frozenset())
        self.variables: dict[str, str] = {}
        self.match_values: list[str] = []
        self.global_names: set[str] = set()
        self.globals: dict[str, str] = {}
        self.include_stack: list[tuple[bool, str]] = []
        self.included: set[tuple[bool, str]] = set()
        self.include_count = 0
        self.parts: list[object] = []  # the MIME part each foreverypart loop is at

    # -- sequence

    def chain(self, scripts: Sequence[nodes.Script]) -> Result:
        implicit_keep = True
        for script in scripts:
            self.implicit_keep = True
            self.explicit_keep = False
            self.globals = {}
            self.included = set()
            try:
                self.run_script(script)
            except _Stop:
                pass
            implicit_keep = self.implicit_keep
            if not (self.implicit_keep or self.explicit_keep):
                break
        if implicit_keep:
            # RFC 5228 section 2.10.2; RFC 5232 section 3: it takes the internal variable.
            self.line = 0
            self.store(None, self.internal_flags.as_tuple(), create=False)
        delivering = [a for a in self.actions if not isinstance(a, Vacation | Notify)]
        if not delivering:
            self.actions.insert(0, Discard() if self.discarded else Keep())
        return Result(list(self.actions), self.tracks)

    def run_script(self, script: nodes.Script) -> None:
        saved = (self.script, self.variables, self.match_values)
        saved_globals = self.global_names
        self.script = script
        self.variables = {}
        self.match_values = []
        self.global_names = set()
        try:
            self.block(script.commands)
        except _Return:
            pass
        finally:
            self.script, self.variables, self.match_values = saved
            self.global_names = saved_globals

    # -- strings and variables

    def expand(self, value: Value) -> str:
        """A string argument's value now (RFC 5229 section 3)."""
        if isinstance(value, str):
            return value
        out: list[str] = []
        for piece in value.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif piece[0] == "match":
                index = piece[1]
                assert isinstance(index, int)
                out.append(self.match_values[index] if index < len(self.match_values) else "")
            else:
                out.append(self.get_variable(str(piece[1])))
        return "".join(out)

    def expand_all(self, values: Sequence[Value]) -> list[str]:
        return [self.expand(v) for v in values]

    def get_variable(self, name: str) -> str:
        if name.startswith("global."):
            return self.globals.get(name[7:], "")
        if name in self.global_names:
            return self.globals.get(name, "")
        return self.variables.get(name, "")

    def set_variable(self, name: str, value: str) -> None:
        limit = self.limits.max_variable_size
        if len(value) > limit // 4 and len(value.encode("utf-8", "surrogateescape")) > limit:
            # RFC 5229 section 6: a value may be cut; never in the middle of a character.
            value = value.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")
        if name.startswith("global."):
            self.globals[name[7:]] = value
        elif name in self.global_names:
            self.globals[name] = value
        else:
            self.variables[name] = value

    def matcher(self, spec: nodes.MatchSpec) -> Matcher:
        if spec.matcher is not None:
            return spec.matcher
        from .errors import RegexError

        try:
            return Matcher(
                spec.match_type, spec.comparator, self.expand_all(spec.keys), spec.relation
            )
        except RegexError as exc:
            raise SieveRuntimeError(f"invalid regular expression: {exc}", self.line) from None

    def match(self, spec: nodes.MatchSpec | None, values: Sequence[str]) -> bool:
        """Match values against a test's keys; keep the match values if it asks for them."""
        assert spec is not None
        matcher = self.matcher(spec)
        if not spec.capture:
            return matcher.match_values(values)
        captures: list[str] = []
        if matcher.match_values(values, captures):
            self.match_values = captures
            return True
        return False

    # -- results

    def add(self, action: Action) -> None:
        if len(self.actions) >= self.limits.max_actions:
            # RFC 5228 section 2.10.4: hitting a policy limit on actions is an error.
            raise SieveRuntimeError(f"more than {self.limits.max_actions} actions", self.line)
        self.actions.append(action)

    def _edited(self) -> bytes | None:
        return self.msg.header_block() if self.msg.edited else None

    def delivers(self) -> None:
        """A store or a redirect: reject cannot come with one (RFC 5429 section 2.1)."""
        if self.rejected:
            raise SieveRuntimeError(
                "reject/ereject action conflicts with an action that delivers the message",
                self.line,
            )

    def store(self, mailbox: str | None, flags: tuple[str, ...], *, create: bool) -> None:
        """keep (mailbox None) or fileinto; "INBOX" in any case is the keep mailbox."""
        frozen = frozenset(flags)
        header = self._edited()
        if mailbox is None or mailbox.lower() == "inbox":
            key = "INBOX"
            action: Keep | FileInto = Keep(frozen, header)
        else:
            key = mailbox
            action = FileInto(mailbox, frozen, create, header)
        index = self.stores.get(key)
        if index is None:
            self.stores[key] = len(self.actions)
            self.add(action)
            return
        # RFC 5228 section 2.10.3: deliver once per mailbox. RFC 5232 section 3: "the last
        # flag list value MUST win". A :create asked for by either is kept.
        old = self.actions[index]
        if isinstance(old, FileInto) and isinstance(action, FileInto):
            action = FileInto(old.mailbox, frozen, old.create or create, header)
        self.actions[index] = action

    def redirect(self, address: str) -> None:
        local, _, domain = address.rpartition("@")
        key = f"{local}@{domain.lower()}"
        if key in self.redirects:
            return  # the same message is not sent twice to one address
        if len(self.redirects) >= self.limits.max_redirects:
            # RFC 5228 sections 4.2 and 10: the number of redirects MUST be limitable.
            raise SieveRuntimeError(f"more than {self.limits.max_redirects} redirects", self.line)
        self.redirects.add(key)
        self.add(Redirect(address, self._edited()))

    def flags_of(self, values: tuple[Value, ...] | None) -> tuple[str, ...]:
        if values is None:
            return self.internal_flags.as_tuple()
        return valid_flags(self.expand_all(values))

    # -- commands

    def block(self, commands: tuple[nodes.Command, ...]) -> None:
        for cmd in commands:
            self.line = cmd.line
            if isinstance(cmd, nodes.If):
                for test, body in cmd.branches:
                    if test is None or self.test(test):
                        self.block(body)
                        break
                continue
            handler = _COMMANDS.get(cmd.name)
            if handler is None:
                from .extcommands import EXTENSION_COMMANDS

                handler = EXTENSION_COMMANDS[cmd.name]
            handler(self, cmd)

    def test(self, test: nodes.Node) -> bool:
        self.line = test.line
        handler = _tests().get(test.name)
        if handler is None:
            from .exttests import EXTENSION_TESTS

            handler = EXTENSION_TESTS[test.name]
        return handler(self, test)


_TESTS: dict[str, Callable[[Run, nodes.Node], bool]] = {}


def _tests() -> dict[str, Callable[[Run, nodes.Node], bool]]:
    """`evaltests.TESTS`, imported once (it imports this module): an import statement in
    `Run.test` would cost every test of every rule a trip through the import system."""
    if not _TESTS:
        from .evaltests import TESTS

        _TESTS.update(TESTS)
    return _TESTS


def _stop(run: Run, cmd: nodes.Node) -> None:
    raise _Stop()  # RFC 5228 section 3.3


def _keep(run: Run, cmd: nodes.Node) -> None:
    run.delivers()
    run.store(None, run.flags_of(cmd.tags["flags"]), create=False)  # type: ignore[arg-type]
    run.implicit_keep = False
    run.explicit_keep = True


def _fileinto(run: Run, cmd: nodes.Node) -> None:
    mailbox = run.expand(cmd.args[0])  # type: ignore[arg-type]
    if isinstance(cmd.args[0], Template):
        try:
            check_mailbox_name(mailbox, cmd.line)
        except SieveError as exc:
            raise SieveRuntimeError(exc.message, cmd.line) from None
    run.delivers()
    flags = run.flags_of(cmd.tags["flags"])  # type: ignore[arg-type]
    run.store(mailbox, flags, create=bool(cmd.tags["create"]))
    if not cmd.tags["copy"]:  # RFC 3894 section 3: :copy keeps the implicit keep
        run.implicit_keep = False


def _redirect(run: Run, cmd: nodes.Node) -> None:
    value = cmd.args[0]
    address = run.expand(value)  # type: ignore[arg-type]
    if isinstance(value, Template):
        from .address import redirect_address

        checked = redirect_address(address)
        if checked is None:
            raise SieveRuntimeError(f"invalid redirect address {address!r}", cmd.line)
        address = checked
    run.delivers()
    run.redirect(address)
    if not cmd.tags["copy"]:
        run.implicit_keep = False


def _discard(run: Run, cmd: nodes.Node) -> None:
    # RFC 5228 section 4.4: discard only cancels the implicit keep.
    run.implicit_keep = False
    run.discarded = True


def _flag_command(run: Run, cmd: nodes.Node) -> None:
    # RFC 5232 section 3: a named flag variable is a variable holding the flags, separated by
    # spaces (RFC 5229), which "${name}" shows when "variables" is required.
    variable = cmd.tags["variable"]
    if variable is None:
        target = run.internal_flags
    else:
        target = FlagSet()
        target.add([run.get_variable(str(variable))])
    strings = run.expand_all(cmd.args[0])  # type: ignore[arg-type]
    if cmd.name == "setflag":
        target.set(strings)
    elif cmd.name == "addflag":
        target.add(strings)
    else:
        target.remove(split_flags(strings))
    if variable is not None:
        run.set_variable(str(variable), " ".join(target.as_tuple()))


def _set(run: Run, cmd: nodes.Node) -> None:
    name = str(cmd.args[0])
    value = apply_modifiers(run.expand(cmd.args[1]), cmd.tags["modifiers"])  # type: ignore[arg-type]
    run.set_variable(name, value)


_COMMANDS: dict[str, Callable[[Run, nodes.Node], None]] = {
    "stop": _stop,
    "keep": _keep,
    "fileinto": _fileinto,
    "redirect": _redirect,
    "discard": _discard,
    "setflag": _flag_command,
    "addflag": _flag_command,
    "removeflag": _flag_command,
    "set": _set,
}

__all__ = [
    "Action",
    "Context",
    "LoadInclude",
    "MailboxExists",
    "Reject",
    "Result",
    "Run",
    "evaluate",
    "evaluate_chain",
    "run_chain",
]
