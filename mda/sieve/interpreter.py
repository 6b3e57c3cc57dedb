"""Running parsed scripts against a message: tests, actions, implicit keep, script chains."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import nodes
from .actions import Action, Discard, FileInto, Keep, Redirect
from .errors import DEFAULT_LIMITS, Limits, SieveRuntimeError
from .flags import FlagSet
from .message import (
    ADDRESS_HEADERS,
    SieveEnvelope,
    SieveMessage,
    address_part,
    envelope_address,
    is_header_name,
)

MailboxExists = Callable[[str], bool]


def _only_inbox(name: str) -> bool:
    return name.lower() == "inbox"


def evaluate(
    script: nodes.Script,
    msg: SieveMessage,
    env: SieveEnvelope,
    *,
    mailbox_exists: MailboxExists | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Action]:
    """Run one script; return the actions to perform (never empty).

    `mailbox_exists(name)` answers the `mailboxexists` test (RFC 5490 section 3.1); without
    it only INBOX exists. Raises SieveRuntimeError on a runtime error, and then no action
    must be taken except delivery to INBOX (RFC 5228 section 2.10.6).
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
    """Run scripts in sequence, as Pigeonhole runs sieve_before, the user's script, then
    sieve_after; return the actions of the whole sequence (never empty).

    Pigeonhole's semantics, which we follow ("the specified scripts form a sequence together
    with the user script in which the next script is only executed when an (implicit) keep
    action is executed"; `sieve_multiscript_run` in its sieve.c):

    - Each script runs in turn while the previous one ended with its keep in effect: an
      explicit `keep`, or an implicit keep not cancelled by fileinto/redirect (without :copy)
      or discard. A script that cancels it ends the sequence.
    - `stop` ends only the script it is in; whether the next one runs is decided as above.
    - The implicit keep of a script that is followed by another is not performed: it only lets
      the next script run. The implicit keep of the last script run is performed.
    - Actions accumulate over the whole sequence, with duplicates merged across scripts, and
      the limits count the whole sequence. The internal imap4flags variable carries over from
      script to script (as in Pigeonhole, where it lives in the shared result); named flag
      variables are per script.
    - A runtime error in any script raises SieveRuntimeError for the whole sequence: the
      caller keeps the message in INBOX and performs none of the actions.
    """
    run = _Run(msg, env, mailbox_exists or _only_inbox, limits)
    try:
        return run.chain(scripts)
    except SieveRuntimeError:
        raise
    except Exception as exc:  # a bug or a resource problem must not lose the message
        raise SieveRuntimeError(f"internal error: {exc!r}", run.line) from exc


class _Run:
    def __init__(
        self,
        msg: SieveMessage,
        env: SieveEnvelope,
        mailbox_exists: MailboxExists,
        limits: Limits,
    ) -> None:
        self.msg = msg
        self.env = env
        self.mailbox_exists = mailbox_exists
        self.limits = limits
        self.line = 0  # of the command or test being run, for errors
        self.actions: list[Action] = []
        self.stores: dict[str, int] = {}  # mailbox key -> index in actions
        self.redirects: set[str] = set()
        self.discarded = False
        self.internal_flags = FlagSet()
        # Per script:
        self.implicit_keep = True
        self.explicit_keep = False
        self.variables: dict[str, FlagSet] = {}

    # -- sequence

    def chain(self, scripts: Sequence[nodes.Script]) -> list[Action]:
        implicit_keep = True
        for script in scripts:
            self.implicit_keep = True
            self.explicit_keep = False
            self.variables = {}
            self.block(script.commands)
            implicit_keep = self.implicit_keep
            if not (self.implicit_keep or self.explicit_keep):
                break
        if implicit_keep:
            # RFC 5228 section 2.10.2; RFC 5232 section 3: it takes the internal variable.
            self.line = 0
            self.store(None, self.internal_flags.as_tuple(), create=False)
        if self.actions:  # Discard is never among them
            return list(self.actions)
        return [Discard()] if self.discarded else [Keep()]

    # -- results

    def add(self, action: Action) -> None:
        if len(self.actions) >= self.limits.max_actions:
            # RFC 5228 section 2.10.4: hitting a policy limit on actions is an error.
            raise SieveRuntimeError(f"more than {self.limits.max_actions} actions", self.line)
        self.actions.append(action)

    def store(self, mailbox: str | None, flags: tuple[str, ...], *, create: bool) -> None:
        """keep (mailbox None) or fileinto; "INBOX" in any case is the keep mailbox."""
        frozen = frozenset(flags)
        if mailbox is None or mailbox.lower() == "inbox":
            key = "INBOX"
            action: Keep | FileInto = Keep(frozen)
        else:
            key = mailbox
            action = FileInto(mailbox, frozen, create)
        index = self.stores.get(key)
        if index is None:
            self.stores[key] = len(self.actions)
            self.add(action)
            return
        # RFC 5228 section 2.10.3: deliver once per mailbox. RFC 5232 section 3: "the last
        # flag list value MUST win". A :create asked for by either is kept.
        old = self.actions[index]
        if isinstance(old, FileInto) and isinstance(action, FileInto):
            action = FileInto(old.mailbox, frozen, old.create or create)
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
        self.add(Redirect(address))

    # -- commands

    def block(self, commands: tuple[nodes.Command, ...]) -> bool:
        """Run commands; True if a `stop` was executed."""
        for cmd in commands:
            self.line = cmd.line
            if isinstance(cmd, nodes.If):
                for test, body in cmd.branches:
                    if test is None or self.test(test):
                        if self.block(body):
                            return True
                        break
            elif isinstance(cmd, nodes.Stop):
                return True  # RFC 5228 section 3.3
            elif isinstance(cmd, nodes.KeepCommand):
                flags = self.internal_flags.as_tuple() if cmd.flags is None else cmd.flags
                self.store(None, flags, create=False)
                self.implicit_keep = False
                self.explicit_keep = True
            elif isinstance(cmd, nodes.FileIntoCommand):
                flags = self.internal_flags.as_tuple() if cmd.flags is None else cmd.flags
                self.store(cmd.mailbox, flags, create=cmd.create)
                if not cmd.copy:  # RFC 3894 section 3: :copy keeps the implicit keep
                    self.implicit_keep = False
            elif isinstance(cmd, nodes.RedirectCommand):
                self.redirect(cmd.address)
                if not cmd.copy:
                    self.implicit_keep = False
            elif isinstance(cmd, nodes.DiscardCommand):
                # RFC 5228 section 4.4: discard only cancels the implicit keep.
                self.implicit_keep = False
                self.discarded = True
            else:
                self.flag_command(cmd)
        return False

    def flag_command(self, cmd: nodes.FlagCommand) -> None:
        if cmd.variable is None:
            target = self.internal_flags
        else:
            target = self.variables.setdefault(cmd.variable, FlagSet())
        if cmd.operation == "setflag":
            target.set(cmd.flags)
        elif cmd.operation == "addflag":
            target.add(cmd.flags)
        else:
            target.remove(cmd.flags)

    # -- tests

    def test(self, test: nodes.Test) -> bool:
        self.line = test.line
        if isinstance(test, nodes.Const):
            return test.value
        if isinstance(test, nodes.Not):
            return not self.test(test.test)
        if isinstance(test, nodes.AllOf):
            return all(self.test(t) for t in test.tests)
        if isinstance(test, nodes.AnyOf):
            return any(self.test(t) for t in test.tests)
        if isinstance(test, nodes.Header):
            # RFC 5228 section 2.4.2.2: invalid header names never match, without error.
            return any(
                test.matcher.match_any(self.msg.header(name))
                for name in test.names
                if is_header_name(name)
            )
        if isinstance(test, nodes.Address):
            return any(
                self.address_matches(address, test.part, test)
                for name in test.names
                if name in ADDRESS_HEADERS
                for address in self.msg.addresses(name)
            )
        if isinstance(test, nodes.Envelope):
            return any(self.envelope_matches(part, test) for part in test.parts)
        if isinstance(test, nodes.Exists):
            return all(is_header_name(n) and self.msg.has_header(n) for n in test.names)
        if isinstance(test, nodes.Size):
            # RFC 5228 section 5.9: strictly greater / strictly less.
            size = self.msg.size
            return size > test.limit if test.over else size < test.limit
        if isinstance(test, nodes.HasFlag):
            if test.variables is None:
                flags = self.internal_flags.as_tuple()
            else:
                flags = tuple(
                    flag
                    for name in test.variables
                    for flag in self.variables.get(name, FlagSet()).as_tuple()
                )
            return test.matcher.match_any(flags)
        return all(self.mailbox_exists(name) for name in test.names)  # MailboxExists

    @staticmethod
    def address_matches(address: str, part: str, test: nodes.Address | nodes.Envelope) -> bool:
        value = address_part(address, part)
        return value is not None and test.matcher.match(value)

    def envelope_matches(self, part: str, test: nodes.Envelope) -> bool:
        if part == "from":
            address = envelope_address(self.env.sender)
            if not address:
                # RFC 5228 section 5.4: the null reverse-path is matched as the empty
                # string, regardless of the address part.
                return test.matcher.match("")
        else:
            address = envelope_address(self.env.recipient)
        return self.address_matches(address, test.part, test)
