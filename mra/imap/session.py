"""IMAP4rev1 (RFC 3501) as a sans-I/O session: the connection's state and the dispatcher.

The reader (parser.py) turns bytes into events; this module owns the queue of those events and
runs each in order. A command is looked up in the table (commands/__init__.py), checked against
the session's state, and handed to its handler (one module per command family under
commands/); the table, not this file, says what a command does to sequence numbers, threads
and the reader. Everything the server says goes through response.py.

The event loop
--------------
Events wait in one queue. Each is handled in turn; a handler whose last output blocks (`Call`,
`Delay`, `Stream`, `StartTLS`, `Close`) stops the loop with the rest of the queue kept, and the
adapter feeds `b""` once the output is done, which carries on where it stopped. When the queue
is empty and the reader is suspended after a command from the table's `suspends` column (LOGIN,
AUTHENTICATE, IDLE, STARTTLS, COMPRESS), the command has finished by then, so the dispatcher
resumes the reader and goes on with the events it gives. Handlers only switch the reader's
mode (a literal's go-ahead, `expect_line` for SASL, `expect_done` for IDLE); none resumes it.

Untagged updates
----------------
After each command the selected view is synced and what changed is sent before the tagged
response (`updates`). EXPUNGE is held back during commands that use sequence numbers
(RFC 3501 7.4.1), as the table's `uses_seqs` says.
"""

from __future__ import annotations

import functools
import time
from collections import deque

from mailstore.errors import MailError
from mra import log, metrics
from mra.activity import Activity
from mra.imap import commands
from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.commands import append, auth, idle
from mra.imap.commands.spec import AUTH, AUTHENTICATED, NOTAUTH, SELECTED, Request
from mra.imap.events import (
    BadCommand,
    Command,
    ContinuationLine,
    Event,
    Fatal,
    IdleDone,
    NeedContinuation,
)
from mra.imap.limits import LITERAL_MINUS, Limits
from mra.imap.parser import CommandReader
from mra.imap.sequence import SequenceError
from mra.imap.values import Atom
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from mailstore.quota import QuotaLimit
    from mailstore.store import MailStore
    from mailstore.userdb import User
    from mra.context import Connection, Services
    from mra.imap.selected import SelectedView

PREAUTH_TIMEOUT = 60.0
AUTH_TIMEOUT = 30 * 60.0  # RFC 3501 5.4: at least 30 minutes
IDLE_KEEPALIVE = 120.0
MAX_BAD = 10
NOTHING_ENABLED: frozenset[str] = frozenset()
BLOCKING = (Call, Delay, Stream, Close, StartTLS)


@functools.lru_cache(maxsize=16)
def _limits(max_literal: int, max_append: int, max_nonsync: int | None) -> Limits:
    """One (immutable) Limits for the sessions of one configuration, not one each."""
    return Limits(
        max_literal_size=max_literal, max_append_size=max_append, max_nonsync_literal=max_nonsync
    )


class ImapSession(Session):
    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.timeout = PREAUTH_TIMEOUT
        self.state = NOTAUTH
        mail = services.config.mail
        limits = _limits(
            mail.max_message_size,
            mail.max_append_size,
            None if services.config.imap.literal_plus else LITERAL_MINUS,
        )
        self.literals = services.literal_pool
        self.reader = CommandReader(
            limits,
            suspend_after=commands.SUSPENDING,
            message_commands=commands.MESSAGE_COMMANDS,
            pool=self.literals,
        )
        self._holding = 0  # literal octets of the command running now (LiteralPool)
        self.user: User | None = None
        self.store: MailStore | None = None
        self.view: SelectedView | None = None
        # ENABLE (RFC 5161): replaced, never changed in place, so that the sessions that
        # enabled nothing share one empty set (issue #16: 10,000 idling sessions).
        self.enabled: frozenset[str] = NOTHING_ENABLED
        self.compression: str | None = None  # COMPRESS (RFC 4978): the mechanism, once on
        self.quota_limit: QuotaLimit | None = None  # read at login (commands/quota.py)
        # Made when events come, dropped when they are all handled (`_events`, `_drain`):
        # an empty deque is 760 octets, kept by every idling session (issue #16).
        self._queue: deque[Event] | None = None
        self._bad = 0
        self._lease: object = None
        # An AUTHENTICATE exchange under way (mra.auth.glue drives it through these).
        self._sasl: object | None = None
        self._sasl_tag = ""
        self._sasl_mech = ""
        # IDLE under way (commands/idle.py); the adapter polls while poll_interval is set.
        self.idle_tag: str | None = None
        self.idle_since = 0.0
        self.poll_interval: float | None = None
        self.watch_paths: tuple[str, ...] = ()
        self.activity = Activity()  # for the session-end line (mra/activity.py)

    # -- what handlers use ----------------------------------------------------------------

    def capabilities(self) -> list[str]:
        return commands.capabilities(self)

    def mailstore(self) -> MailStore:
        assert self.store is not None
        return self.store

    def selected(self) -> SelectedView:
        assert self.view is not None
        return self.view

    def updates(self, request: Request | None, claim: bool = False) -> bytes:
        """The untagged responses the selected view owes (none outside SELECTED). `claim`: a
        HIGHESTMODSEQ to tell (QRESYNC) is left in `view.claimed_highest` for the tagged OK."""
        if self.view is None:
            return b""
        expunges = request is None or not request.uses_seqs
        try:
            return b"".join(self.view.updates(expunges=expunges, claim=claim))
        except MailError as exc:
            log.error("imap-sync-failed", error=exc.message)
            return b""

    def ok(
        self,
        request: Request,
        untagged: bytes = b"",
        code: r.Code | None = None,
        text: str = "",
    ) -> list[Output]:
        """The usual end of a command: its untagged data, the updates, `tag OK` (with a new
        HIGHESTMODSEQ when it has no code of its own, as Dovecot's imap-sync.c)."""
        updates = self.updates(request, claim=code is None)
        view = self.view
        if view is not None and view.claimed_highest is not None:
            code, view.claimed_highest = r.Code.highestmodseq(view.claimed_highest), None
        done = r.completed(request.tag, request.name, code, text)
        return [Send(untagged + updates + done)]

    def feed_reader(self, events: list[Event]) -> None:
        """Events the reader gave on a mode switch (a literal accepted, a SASL line, DONE
        expected): handled after the current one."""
        self._events().extend(events)

    def _events(self) -> deque[Event]:
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        return queue

    def drop_input(self) -> None:
        """STARTTLS: whatever the client pipelined after it was sent in the clear."""
        self.reader.take_buffered()
        if self._queue is not None:
            self._queue.clear()

    def select(self, view: SelectedView) -> None:
        self.view = view
        self.state = SELECTED

    def unselect(self) -> None:
        self.view = None
        self.state = AUTH

    def logged_in(self, user: User, lease: object) -> None:
        self._lease = lease
        self.user = user
        self.store = self.services.open_store(user)
        self.state = AUTH
        self.authenticated = True  # the adapter's login deadline stops
        self.timeout = AUTH_TIMEOUT
        self.reader.authenticated = True

    def logged_out(self) -> None:
        """UNAUTHENTICATE: everything `logged_in` set up, undone."""
        self.release()
        self.view = None
        self.user = None
        self.store = None
        self.state = NOTAUTH
        self.authenticated = False
        self.timeout = PREAUTH_TIMEOUT
        self.enabled = NOTHING_ENABLED
        self.quota_limit = None
        self.reader.authenticated = False
        self.reader.number64 = False  # ENABLE IMAP4rev2's (commands/enable.py)

    def release(self) -> None:
        """Give back the per-user session slot (LOGOUT, close, shutdown)."""
        release = getattr(self._lease, "release", None)
        if release is not None:
            release()
        self._lease = None

    def sasl_challenge(self, challenge: bytes) -> list[Output]:
        return auth.sasl_challenge(self, challenge)

    def sasl_done(self, login: str, user: User | None) -> list[Output]:
        return auth.sasl_done(self, login, user)

    # -- events from the adapter ----------------------------------------------------------

    def greeting(self) -> list[Output]:
        return [Send(r.say(None, r.GREETING, r.Code.capability(self.capabilities())))]

    def refuse(self, text: str) -> list[Output]:
        return [Send(r.untagged_status("BYE", text)), Close()]

    def shutdown(self) -> list[Output]:
        self.release()
        return [Send(r.say(None, r.SHUTTING_DOWN)), Close()]

    def idle_timeout(self) -> list[Output]:
        self.release()
        return [Send(r.say(None, r.INACTIVE)), Close()]

    def connection_lost(self) -> None:
        self.release()
        # Everything this connection held of the process's literal budget.
        self._finished()
        queue, self._queue = self._queue, None
        if queue is not None:
            for event in queue:
                if isinstance(event, Command):
                    self.literals.release(event.literal_size)
            queue.clear()
        self.reader.close()

    def tls_started(self) -> list[Output]:
        self.conn.tls = True
        return self._drain()

    def data_received(self, data: bytes) -> list[Output]:
        if data:
            events = self.reader.feed(data)
            if events:
                self._events().extend(events)
        return self._drain()

    def mailbox_changed(self) -> list[Output]:
        """Called by the adapter while idling (inotify, or every `idle.IDLE_POLL` seconds)."""
        if self.idle_tag is None or self.view is None:
            return []
        try:
            lines = self.view.updates(expunges=True)
        except MailError as exc:
            log.error("idle-sync-failed", error=exc.message)
            return []
        now = time.monotonic()
        if not lines and now - self.idle_since > IDLE_KEEPALIVE:
            lines = [r.say(None, r.STILL_HERE)]
            self.idle_since = now
        return [Send(b"".join(lines))] if lines else []

    # -- the event loop -------------------------------------------------------------------

    def _drain(self) -> list[Output]:
        out: list[Output] = []
        queue = self._events()
        while True:
            self._finished()  # whatever ran before is done: its literals can go
            if not queue:
                if not self.reader.resumable:
                    self._queue = None  # made again by the next events (see __init__)
                    return out
                # A suspending command has finished: read on.
                queue.extend(self.reader.resume())
                continue
            event = queue.popleft()
            if isinstance(event, Command):
                self._holding = event.literal_size
            result = self._event(event)
            out += result
            if result and isinstance(result[-1], BLOCKING):
                return out

    def _finished(self) -> None:
        if self._holding:
            self.literals.release(self._holding)
            self._holding = 0

    def _event(self, event: Event) -> list[Output]:
        if isinstance(event, Command):
            return self._command(event)
        if isinstance(event, NeedContinuation):
            return append.literal_announced(self, event)
        if isinstance(event, ContinuationLine):
            return auth.sasl_line(self, event)
        if isinstance(event, IdleDone):
            return idle.done(self, None)
        if isinstance(event, Fatal):
            code = r.Code(event.code) if event.code else None
            return [Send(r.untagged_status("BYE", event.message, code)), Close()]
        if isinstance(event, BadCommand):
            if self.idle_tag is not None:
                return idle.done(self, event.message)
            if event.status != "BAD":  # the server's limit, not the client's mistake
                return [Send(r.bad_command(event))]
            return self._bad_input(r.bad_command(event))
        return []

    def _bad_input(self, line: bytes) -> list[Output]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            log.warn("imap-too-many-errors", ip=self.conn.peer_ip, conn=self.conn.id)
            return [Send(line + r.say(None, r.TOO_MANY_ERRORS)), Close()]
        return [Send(line)]

    def _command(self, cmd: Command) -> list[Output]:
        name, args, uid = cmd.name, list(cmd.args), False
        if name == "UID":
            first = args.pop(0) if args else None
            if not isinstance(first, Atom):
                return self._bad_input(r.say(cmd.tag, r.UID_NEEDS_COMMAND))
            name, uid = first.value.upper(), True
        spec = commands.COMMANDS.get(name)
        if spec is None:
            return self._bad_input(r.say(cmd.tag, r.UNKNOWN_COMMAND, name=name[:20]))
        if uid and not spec.uid:
            return self._bad_input(r.say(cmd.tag, r.NO_UID_FORM, name=name))
        request = Request(cmd.tag, f"UID {name}" if uid else name, args, uid, spec)
        if self.state not in spec.states:
            return self._bad_input(r.say(cmd.tag, self._misplaced(spec.states), name=name))
        self._bad = 0
        run = spec.handler
        started = time.monotonic()
        outputs: list[Output]
        if spec.thread:
            outputs = [Call(lambda: self.run_guarded(request, run), self.after_call)]
        else:
            outputs = self.run_guarded(request, run)
        return metrics.timed(outputs, "imap", request.name, started)

    def _misplaced(self, states: frozenset[str]) -> r.Say:
        if self.state == NOTAUTH:
            return r.NOT_BEFORE_LOGIN
        if not states & AUTHENTICATED:
            return r.ALREADY_AUTHENTICATED
        if self.state == AUTH and SELECTED in states:
            return r.NOT_WITHOUT_MAILBOX
        return r.NOT_IN_STATE

    def run_guarded(
        self, request: Request, work: Callable[[ImapSession, Request], list[Output]]
    ) -> list[Output]:
        """Run a command's work, turning its exceptions into its answer: BAD for arguments,
        the fixed NO of a Refusal, the store's errors mapped once (response.store_error)."""
        try:
            return work(self, request)
        except (ArgumentError, SequenceError) as exc:
            return self._bad_input(r.bad(request.tag, f"{request.name}: {exc}"))
        except r.Refusal as exc:
            return [Send(self.updates(request) + exc.line(request.tag))]
        except MailError as exc:
            return [Send(self.updates(request) + r.store_error(request.tag, exc))]
        except Exception as exc:
            log.error("imap-command-failed", command=request.name, error=repr(exc))
            return [Send(r.say(request.tag, r.SERVER_BUG))]

    @staticmethod
    def after_call(result: object) -> list[Output]:
        """The `then` of a Call whose function is `run_guarded`: its outputs."""
        if isinstance(result, list):
            return result
        log.error("imap-command-failed", error=repr(result))
        return [Close()]
