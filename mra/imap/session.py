"""IMAP4rev1 (RFC 3501) as a sans-I/O session, with IDLE, UIDPLUS, MOVE, UNSELECT, NAMESPACE,
ID, LITERAL+ and SASL-IR.

States are RFC 3501's: not authenticated, authenticated, selected, logout; the table at the end
of this file says which command runs in which state. The reader (parser.py) turns bytes into
commands; handlers answer through response.py, the only writer of protocol bytes, and map every
store error in one place (`response.store_error`). After each command the selected view is
synced and its updates sent, EXPUNGE held back during FETCH, STORE and SEARCH (RFC 3501 7.4.1).
Slow work (password checks, opening a big mailbox) runs as a `Call` in the thread pool.
"""

from __future__ import annotations

import base64
import binascii
import time

from mailstore.errors import MailError, NotFound
from mailstore.names import INBOX, SEPARATOR
from mra import log
from mra.imap import fetch as fetching
from mra.imap import response as r
from mra.imap.parser import (
    ArgumentError,
    Atom,
    BadCommand,
    Command,
    CommandReader,
    ContinuationLine,
    Event,
    Fatal,
    IdleDone,
    Limits,
    NeedContinuation,
    ParenList,
    String,
    Value,
    as_astring,
    as_date_time,
    as_flag_list,
    as_list_mailbox,
    as_mailbox,
    as_sequence_set,
)
from mra.imap.selected import SelectedView
from mra.imap.sequence import SequenceError
from mra.session import Call, Close, Delay, Output, Send, Session, StartTLS, Stream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mailstore.store import MailStore
    from mailstore.userdb import User
    from mra.context import Connection, Services

PREAUTH_TIMEOUT = 60.0
AUTH_TIMEOUT = 30 * 60.0  # RFC 3501 5.4: at least 30 minutes
IDLE_POLL = 1.0
IDLE_KEEPALIVE = 120.0
MAX_BAD = 10
SYSTEM_FLAGS = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
BASE_CAPS = [
    "IMAP4rev1",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
]
NO_EXPUNGE_DURING = {"FETCH", "STORE", "SEARCH"}
FETCH_BATCH = 64 * 1024


class ImapSession(Session):
    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self.timeout = PREAUTH_TIMEOUT
        self.state = "NOTAUTH"
        limits = Limits(max_literal_size=services.config.mail.max_message_size)
        self.reader = CommandReader(limits)
        self.user: User | None = None
        self.store: MailStore | None = None
        self.view: SelectedView | None = None
        self._bad = 0
        self._pending: list[Event] = []
        self._sasl: object | None = None
        self._sasl_tag = ""
        self._sasl_mech = ""
        self._idle_tag: str | None = None
        self._idle_since = 0.0
        self._lease: object = None
        self.poll_interval: float | None = None
        self.watch_paths: list[str] = []
        self._more: list[Event] = []
        self._resumed = False

    # -- events ---------------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        caps = list(BASE_CAPS)
        if self.state == "NOTAUTH":
            if self.conn.tls_available and not self.conn.tls:
                caps.append("STARTTLS")
            plaintext = self.services.plaintext_allowed(self.conn)
            if not plaintext:
                caps.append("LOGINDISABLED")
            mechanisms = getattr(self.services.auth, "mechanisms", None)
            if mechanisms is not None:
                caps += [f"AUTH={m}" for m in mechanisms(plaintext)]
        return caps

    def greeting(self) -> list[Output]:
        code = r.Code.capability(self.capabilities())
        return [Send(r.untagged_status("OK", "mra ready.", code))]

    def refuse(self, text: str) -> list[Output]:
        return [Send(r.untagged_status("BYE", text)), Close()]

    def shutdown(self) -> list[Output]:
        self._release()
        return [Send(r.untagged_status("BYE", "Server shutting down.")), Close()]

    def idle_timeout(self) -> list[Output]:
        self._release()
        return [Send(r.untagged_status("BYE", "Disconnected for inactivity.")), Close()]

    def connection_lost(self) -> None:
        self._release()

    def _release(self) -> None:
        release = getattr(self._lease, "release", None)
        if release is not None:
            release()
        self._lease = None

    def tls_started(self) -> list[Output]:
        self.conn.tls = True
        return self._events(self.reader.resume())

    def data_received(self, data: bytes) -> list[Output]:
        # Events held back behind a blocking command, then those a reader mode switch made
        # (after LOGIN, SELECT...), then what just arrived.
        events = self._pending + self._more + (self.reader.feed(data) if data else [])
        self._pending, self._more, self._resumed = [], [], False
        return self._events(events)

    def mailbox_changed(self) -> list[Output]:
        """Called by the adapter every IDLE_POLL seconds while idling: push what changed."""
        if self._idle_tag is None or self.view is None:
            return []
        try:
            lines = self.view.updates(expunges=True)
        except MailError as exc:
            log.error("idle-sync-failed", error=exc.message)
            return []
        now = time.monotonic()
        if not lines and now - self._idle_since > IDLE_KEEPALIVE:
            lines = [r.untagged_status("OK", "Still here")]
            self._idle_since = now
        return [Send(b"".join(lines))] if lines else []

    # -- the event loop -------------------------------------------------------------------

    def _events(self, events: list[Event]) -> list[Output]:
        out: list[Output] = []
        while events:
            event = events.pop(0)
            result = self._event(event)
            out += result
            if result and isinstance(result[-1], (Call, Delay, Stream, Close, StartTLS)):
                self._pending = events
                return out
            if isinstance(event, NeedContinuation) or self._resumed:
                self._resumed = False
                events = self._more + events
                self._more = []
        return out

    def _feed_reader(self, events: list[Event]) -> None:
        """Events the reader produced outside feed() (accept_literal, resume): handle next."""
        self._more = list(self._more) + events
        self._resumed = True

    def _event(self, event: Event) -> list[Output]:
        if isinstance(event, Command):
            return self._command(event)
        if isinstance(event, NeedContinuation):
            return self._continuation(event)
        if isinstance(event, ContinuationLine):
            return self._sasl_line(event)
        if isinstance(event, IdleDone):
            return self._idle_done(None)
        if isinstance(event, Fatal):
            return [Send(r.untagged_status("BYE", event.message)), Close()]
        if isinstance(event, BadCommand):
            if self._idle_tag is not None:
                return self._idle_done(event.message)
            return self._bad_input(r.bad_command(event))
        return []

    def _bad_input(self, line: bytes) -> list[Output]:
        self._bad += 1
        if self._bad >= MAX_BAD:
            log.warn("imap-too-many-errors", ip=self.conn.peer_ip, conn=self.conn.id)
            return [Send(line + r.untagged_status("BYE", "Too many invalid commands.")), Close()]
        return [Send(line)]

    def _command(self, cmd: Command) -> list[Output]:
        name = cmd.name
        args = list(cmd.args)
        if name == "UID":
            first = args.pop(0) if args else None
            if not isinstance(first, Atom):
                return self._bad_input(r.bad(cmd.tag, "UID needs a command"))
            name = "UID " + first.value.upper()
        handler = COMMANDS.get(name)
        if handler is None:
            self._resume_if_suspended()
            return self._bad_input(r.bad(cmd.tag, f"Unknown command {name[:20]}"))
        states, func = handler
        if self.state not in states:
            self._resume_if_suspended()
            where = {
                "NOTAUTH": "before login",
                "AUTH": "without a selected mailbox",
                "SELECTED": "in this state",
            }[self.state]
            return self._bad_input(r.bad(cmd.tag, f"{name} is not valid {where}"))
        self._bad = 0
        if name in THREADED:
            # Work that grows with the mailbox (a SEARCH of 100,000 bodies, a STORE 1:*)
            # goes to the thread pool; the session is held until it is done, so nothing else
            # touches its state meanwhile.
            return [Call(lambda: self._run(name, func, cmd.tag, args), _outputs)]
        return self._run(name, func, cmd.tag, args)

    def _run(
        self, name: str, func: Callable[..., list[Output]], tag: str, args: list[Value]
    ) -> list[Output]:
        try:
            return func(self, tag, args)
        except (ArgumentError, SequenceError) as exc:
            self._resume_if_suspended()
            return self._bad_input(r.bad(tag, f"{name}: {exc}"))
        except MailError as exc:
            self._resume_if_suspended()
            return [Send(self._updates(name) + r.store_error(tag, exc))]
        except Exception as exc:
            self._resume_if_suspended()
            log.error("imap-command-failed", command=name, error=repr(exc))
            return [Send(r.tagged(tag, "NO", "Internal error", r.Code.SERVERBUG))]

    def _resume_if_suspended(self) -> None:
        if self.reader.suspended:
            self._feed_reader(self.reader.resume())

    def _updates(self, command: str) -> bytes:
        if self.view is None:
            return b""
        try:
            return b"".join(self.view.updates(expunges=command not in NO_EXPUNGE_DURING))
        except MailError as exc:
            log.error("imap-sync-failed", error=exc.message)
            return b""

    def _ok(
        self,
        tag: str,
        command: str,
        text: str = "",
        code: r.Code | None = None,
        untagged: bytes = b"",
    ) -> list[Output]:
        return [
            Send(
                untagged
                + self._updates(command)
                + r.tagged(tag, "OK", text or f"{command} completed", code)
            )
        ]

    # -- any state ------------------------------------------------------------------------

    def cmd_capability(self, tag: str, args: list[Value]) -> list[Output]:
        return self._ok(tag, "CAPABILITY", untagged=r.capability_response(self.capabilities()))

    def cmd_noop(self, tag: str, args: list[Value]) -> list[Output]:
        return self._ok(tag, "NOOP")

    def cmd_logout(self, tag: str, args: list[Value]) -> list[Output]:
        self.state = "LOGOUT"
        self._release()
        return [
            Send(r.untagged_status("BYE", "Logging out") + r.tagged(tag, "OK", "Logout completed")),
            Close(),
        ]

    def cmd_id(self, tag: str, args: list[Value]) -> list[Output]:
        return self._ok(tag, "ID", untagged=b'* ID ("name" "mra")\r\n')

    # -- not authenticated ----------------------------------------------------------------

    def cmd_starttls(self, tag: str, args: list[Value]) -> list[Output]:
        if self.conn.tls or not self.conn.tls_available:
            self._resume_if_suspended()
            return [
                Send(
                    r.tagged(
                        tag,
                        "BAD",
                        "TLS is already active" if self.conn.tls else "TLS is not available",
                    )
                )
            ]
        # Whatever the client pipelined after STARTTLS was sent in the clear: drop it.
        self.reader.take_buffered()
        self._pending = []
        return [Send(r.tagged(tag, "OK", "Begin TLS negotiation now")), StartTLS()]

    def cmd_login(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 2:
            raise ArgumentError("LOGIN needs a user name and a password")
        if not self.services.plaintext_allowed(self.conn):
            self._resume_if_suspended()
            return [
                Send(
                    r.tagged(
                        tag,
                        "NO",
                        "Plaintext authentication is disabled: use STARTTLS",
                        r.Code.PRIVACYREQUIRED,
                    )
                )
            ]
        login = as_astring(args[0]).decode("utf-8", "replace")
        password = as_astring(args[1]).decode("utf-8", "surrogateescape")
        auth = self.services.auth
        return [
            Call(
                lambda: auth.authenticate(login, password, self.conn),  # type: ignore[attr-defined]
                lambda result: self._logged_in(tag, login, result, "LOGIN"),
            )
        ]

    def cmd_authenticate(self, tag: str, args: list[Value]) -> list[Output]:
        if not args or not isinstance(args[0], Atom):
            raise ArgumentError("AUTHENTICATE needs a mechanism")
        mech = args[0].value.upper()
        start = getattr(self.services.auth, "start_sasl", None)
        exchange = None if start is None else start(mech, self.conn)
        if exchange is None:
            self._resume_if_suspended()
            return [
                Send(r.tagged(tag, "NO", "Unsupported authentication mechanism", r.Code.CANNOT))
            ]
        self._sasl, self._sasl_tag, self._sasl_mech = exchange, tag, mech
        if len(args) > 1:  # SASL-IR (RFC 4959)
            initial = as_astring(args[1])
            return self._sasl_data(b"" if initial == b"=" else initial)
        from mra.auth.glue import sasl_outputs

        return sasl_outputs(self, None)

    def _sasl_line(self, event: ContinuationLine) -> list[Output]:
        if event.cancelled:
            tag, self._sasl = self._sasl_tag, None
            self._feed_reader(self.reader.resume())
            return [Send(r.tagged(tag, "BAD", "Authentication cancelled"))]
        return self._sasl_data(event.data)

    def _sasl_data(self, line: bytes) -> list[Output]:
        from mra.auth.glue import sasl_outputs

        try:
            data = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            tag, self._sasl = self._sasl_tag, None
            self._feed_reader(self.reader.resume())
            return [Send(r.tagged(tag, "BAD", "Invalid base64 data"))]
        return sasl_outputs(self, data)

    def sasl_challenge(self, challenge: bytes) -> list[Output]:
        self._feed_reader(self.reader.expect_line())
        return [Send(r.continuation_data(challenge))]

    def sasl_done(self, login: str, user: User | None) -> list[Output]:
        self._sasl = None
        return self._logged_in(self._sasl_tag, login, user, self._sasl_mech)

    def _logged_in(self, tag: str, login: str, result: object, mech: str) -> list[Output]:
        auth = self.services.auth
        if isinstance(result, BaseException):
            log.error("imap-auth-error", login=login, error=repr(result))
            self._feed_reader(self.reader.resume())
            return [
                Send(
                    r.tagged(
                        tag,
                        "NO",
                        "Authentication is unavailable, try again later",
                        r.Code.UNAVAILABLE,
                    )
                )
            ]
        if result is None:
            log.info("login-failed", proto="imap", login=login, ip=self.conn.peer_ip, mech=mech)
            delay = auth.failure_delay(self.conn, login)  # type: ignore[attr-defined]
            failed = r.tagged(tag, "NO", "Authentication failed", r.Code.AUTHENTICATIONFAILED)

            def answer() -> list[Output]:
                self._feed_reader(self.reader.resume())
                return [Send(failed)]

            return [Delay(delay, answer)]
        user: User = result  # type: ignore[assignment]
        lease = self.services.limits.login(user.name, exempt=self.conn.exempt)
        if lease is None:
            self._feed_reader(self.reader.resume())
            return [Send(r.tagged(tag, "NO", "Too many sessions for this user", r.Code.LIMIT))]
        auth.succeeded(self.conn, login)  # type: ignore[attr-defined]
        self._lease = lease
        self.user = user
        self.store = self.services.open_store(user)
        self.state = "AUTH"
        self.authenticated = True
        self.timeout = AUTH_TIMEOUT
        self.reader.authenticated = True
        self._feed_reader(self.reader.resume())
        log.info("login", proto="imap", user=user.name, ip=self.conn.peer_ip, mech=mech)
        code = r.Code.capability(self.capabilities())
        return [Send(r.tagged(tag, "OK", "Logged in", code))]

    # -- authenticated --------------------------------------------------------------------

    def _store(self) -> MailStore:
        assert self.store is not None
        return self.store

    def cmd_namespace(self, tag: str, args: list[Value]) -> list[Output]:
        return self._ok(tag, "NAMESPACE", untagged=b'* NAMESPACE (("" ".")) NIL NIL\r\n')

    def cmd_select(self, tag: str, args: list[Value], readonly: bool = False) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("SELECT needs a mailbox name")
        name = as_mailbox(args[0])
        store = self._store()
        previous = self.view
        self.view = None
        self.state = "AUTH"
        closed = (
            r.untagged_status("OK", "Previous mailbox closed.", r.Code.CLOSED) if previous else b""
        )

        def open_view() -> SelectedView:
            return SelectedView(store.mailbox(name), readonly)

        def opened(result: object) -> list[Output]:
            if isinstance(result, MailError):
                return [Send(closed + r.store_error(tag, result))]
            if isinstance(result, BaseException):
                log.error("select-failed", mailbox=name, error=repr(result))
                return [
                    Send(closed + r.tagged(tag, "NO", "Cannot open the mailbox", r.Code.SERVERBUG))
                ]
            assert isinstance(result, SelectedView)
            self.view = result
            self.state = "SELECTED"
            return [
                Send(
                    closed
                    + self._select_response(result)
                    + r.tagged(
                        tag,
                        "OK",
                        "Select completed",
                        r.Code.READ_ONLY if readonly else r.Code.READ_WRITE,
                    )
                )
            ]

        return [Call(open_view, opened)]

    def cmd_examine(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_select(tag, args, readonly=True)

    def _select_response(self, view: SelectedView) -> bytes:
        box = view.box
        keywords = box.known_keywords()
        flags = SYSTEM_FLAGS + keywords
        permanent = [] if view.readonly else [*flags, "\\*"] if len(keywords) < 26 else flags
        out = [
            r.flags_response(flags),
            r.untagged_status("OK", "Flags permitted.", r.Code.permanentflags(permanent)),
            r.exists(len(view)),
            r.recent(len(view.recent)),
        ]
        unseen = view.first_unseen()
        if unseen is not None:
            out.append(r.untagged_status("OK", "First unseen.", r.Code.unseen(unseen)))
        out.append(r.untagged_status("OK", "UIDs valid", r.Code.uidvalidity(box.uidvalidity)))
        out.append(r.untagged_status("OK", "Predicted next UID", r.Code.uidnext(box.next_uid)))
        return b"".join(out)

    def cmd_create(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("CREATE needs a mailbox name")
        name = as_mailbox(args[0]).rstrip(SEPARATOR)  # RFC 3501 6.3.3: a trailing separator
        self._store().create_folder(name)
        return self._ok(tag, "CREATE")

    def cmd_delete(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("DELETE needs a mailbox name")
        name = as_mailbox(args[0])
        if self.view is not None and self.view.name == name:
            self.view = None
            self.state = "AUTH"
        self._store().delete_folder(name)
        return self._ok(tag, "DELETE")

    def cmd_rename(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 2:
            raise ArgumentError("RENAME needs two mailbox names")
        self._store().rename_folder(as_mailbox(args[0]), as_mailbox(args[1]))
        return self._ok(tag, "RENAME")

    def cmd_subscribe(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("SUBSCRIBE needs a mailbox name")
        self._store().subscribe(as_mailbox(args[0]))
        return self._ok(tag, "SUBSCRIBE")

    def cmd_unsubscribe(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("UNSUBSCRIBE needs a mailbox name")
        self._store().unsubscribe(as_mailbox(args[0]))
        return self._ok(tag, "UNSUBSCRIBE")

    def cmd_list(self, tag: str, args: list[Value], lsub: bool = False) -> list[Output]:
        if len(args) != 2:
            raise ArgumentError("LIST needs a reference and a pattern")
        verb = "LSUB" if lsub else "LIST"
        reference = as_list_mailbox(args[0])
        pattern = as_list_mailbox(args[1])
        if not pattern:
            if lsub:
                return self._ok(tag, verb)
            return self._ok(
                tag, verb, untagged=r.list_response(["\\Noselect"], SEPARATOR, "", verb)
            )
        full = reference + pattern
        store = self._store()
        existing = store.list_folders()
        names = store.subscriptions() if lsub else existing
        known = set(existing)
        # Parents a folder implies (Maildir++ needs no directory for `A` to hold `A.B`).
        parents: set[str] = set()
        for n in existing:
            parts = n.split(SEPARATOR)
            parents.update(SEPARATOR.join(parts[:i]) for i in range(1, len(parts)))
        candidates = sorted(
            set(names) | (parents if not lsub else set()), key=lambda n: (n != INBOX, n)
        )
        out = []
        for n in candidates:
            if not list_match(full, n):
                continue
            children = any(o.startswith(n + SEPARATOR) for o in known)
            attrs = ["\\HasChildren" if children else "\\HasNoChildren"]
            if n not in known:
                attrs.insert(0, "\\Noselect" if lsub else "\\NonExistent")
                if not lsub:
                    attrs = ["\\Noselect", "\\HasChildren"]
            out.append(r.list_response(attrs, SEPARATOR, n, verb))
        return self._ok(tag, verb, untagged=b"".join(out))

    def cmd_lsub(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_list(tag, args, lsub=True)

    def cmd_status(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 2 or not isinstance(args[1], ParenList):
            raise ArgumentError("STATUS needs a mailbox name and a list of items")
        name = as_mailbox(args[0])
        items = []
        for v in args[1].items:
            if not isinstance(v, Atom) or v.value.upper() not in STATUS_ITEMS:
                raise ArgumentError("unknown STATUS item")
            items.append(v.value.upper())
        if self.view is not None and self.view.name == name:
            view = self.view
            box = view.box
            uids: list[int] = view.uids
            recent = len(view.recent)
        else:
            box = self._store().mailbox(name)
            box.sync()
            uids = box.uids()
            recent = sum(1 for u in uids if box.get(u).recent)
        values = {}
        for item in items:
            if item == "MESSAGES":
                values[item] = len(uids)
            elif item == "RECENT":
                values[item] = recent
            elif item == "UIDNEXT":
                values[item] = box.next_uid
            elif item == "UIDVALIDITY":
                values[item] = box.uidvalidity
            elif item == "UNSEEN":
                values[item] = sum(1 for u in uids if u in box and "S" not in box.get(u).letters)
        return self._ok(tag, "STATUS", untagged=r.status_response(name, values))

    # -- APPEND ---------------------------------------------------------------------------

    def _continuation(self, event: NeedContinuation) -> list[Output]:
        limit = self.services.config.mail.max_message_size
        if event.name == "APPEND" and event.size > limit:
            self._feed_reader(self.reader.reject_literal())
            return [
                Send(
                    r.tagged(
                        event.tag, "NO", f"Message too big (over {limit} octets)", r.Code.TOOBIG
                    )
                )
            ]
        self._feed_reader(self.reader.accept_literal())
        return [Send(r.continuation())]

    def cmd_append(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) < 2:
            raise ArgumentError("APPEND needs a mailbox name and a message")
        name = as_mailbox(args[0])
        message = args[-1]
        if not isinstance(message, String):
            raise ArgumentError("APPEND needs the message as a literal")
        flags: list[str] = []
        date: float | None = None
        for extra in args[1:-1]:
            if isinstance(extra, ParenList):
                flags = [f for f in as_flag_list(extra) if f != "\\Recent"]
            elif isinstance(extra, String):
                date = as_date_time(extra).timestamp()
            else:
                raise ArgumentError("APPEND takes flags, a date and the message")
        store = self._store()
        try:
            box = store.mailbox(name)
        except NotFound:
            return [Send(r.tagged(tag, "NO", "Mailbox does not exist", r.Code.TRYCREATE))]
        uid = box.append(message.value, flags=flags, internaldate=date)
        return self._ok(tag, "APPEND", code=r.Code.appenduid(box.uidvalidity, uid))

    # -- IDLE -----------------------------------------------------------------------------

    def cmd_idle(self, tag: str, args: list[Value]) -> list[Output]:
        self._idle_tag = tag
        self._idle_since = time.monotonic()
        self.poll_interval = IDLE_POLL
        if self.view is not None:
            self.watch_paths = [f"{self.view.box.path}/new", f"{self.view.box.path}/cur"]
        self._feed_reader(self.reader.expect_done())
        return [Send(self._updates("IDLE") + r.continuation("idling"))]

    def _idle_done(self, problem: str | None) -> list[Output]:
        tag, self._idle_tag = self._idle_tag, None
        self.poll_interval = None
        self.watch_paths = []
        assert tag is not None
        if problem is not None:
            return [Send(r.tagged(tag, "BAD", f"IDLE ended: {problem}"))]
        return self._ok(tag, "IDLE", "IDLE terminated")

    # -- selected -------------------------------------------------------------------------

    def _view(self) -> SelectedView:
        assert self.view is not None
        return self.view

    def cmd_check(self, tag: str, args: list[Value]) -> list[Output]:
        return self._ok(tag, "CHECK")

    def cmd_close(self, tag: str, args: list[Value], expunge: bool = True) -> list[Output]:
        view = self._view()
        if expunge and not view.readonly:
            deleted = [u for u in view.uids if "T" in getattr(view.message(u), "letters", "")]
            view.box.expunge(deleted)
        self.view = None
        self.state = "AUTH"
        return [Send(r.tagged(tag, "OK", "Close completed"))]

    def cmd_unselect(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_close(tag, args, expunge=False)

    def cmd_expunge(
        self, tag: str, args: list[Value], uid_set: Value | None = None
    ) -> list[Output]:
        view = self._view()
        if view.readonly:
            return [Send(r.tagged(tag, "NO", "Mailbox is read-only", r.Code.READ_ONLY))]
        candidates = view.uids
        if uid_set is not None:
            wanted = as_sequence_set(uid_set).resolve_uids(view.uids)
            candidates = [view.uids[i - 1] for rng in wanted for i in rng]
        deleted = [u for u in candidates if "T" in getattr(view.message(u), "letters", "")]
        removed = view.box.expunge(deleted)
        lines = b"".join(view.forget(removed))
        return self._ok(tag, "EXPUNGE", untagged=lines)

    def cmd_uid_expunge(self, tag: str, args: list[Value]) -> list[Output]:
        if len(args) != 1:
            raise ArgumentError("UID EXPUNGE needs a UID set")
        return self.cmd_expunge(tag, args, uid_set=args[0])

    def _resolve(self, value: Value, uid: bool) -> list[tuple[int, int]]:
        """(seq, uid) pairs for a sequence set of sequence numbers or UIDs."""
        view = self._view()
        sset = as_sequence_set(value)
        ranges = sset.resolve_uids(view.uids) if uid else _resolve_seqs(sset, len(view.uids))
        return [(i, view.uids[i - 1]) for rng in ranges for i in rng]

    def cmd_fetch(self, tag: str, args: list[Value], uid: bool = False) -> list[Output]:
        if len(args) != 2:
            raise ArgumentError("FETCH needs a sequence set and items")
        view = self._view()
        pairs = self._resolve(args[0], uid)
        items = fetching.parse_items(args[1])
        command = "UID FETCH" if uid else "FETCH"
        seen_now: set[int] = set()
        if fetching.sets_seen(items) and not view.readonly:
            unseen = [
                u for _, u in pairs if (m := view.message(u)) is not None and "S" not in m.letters
            ]
            if unseen:
                seen_now = set(view.box.store_flags(unseen, "add", ["\\Seen"]))

        def lines() -> Iterator[bytes]:
            # Responses are gathered into writes of about 64 KiB: a write per message would
            # cost a system call and a reactor pass each for `FETCH 1:* FLAGS`.
            missing = False
            batch: list[bytes] = []
            size = 0
            for seq, u in pairs:
                try:
                    data = fetching.render(view, u, seq, items, uid, u in seen_now)
                except (LookupError, NotFound):
                    missing = True
                    continue
                batch.append(data)
                size += len(data)
                if size >= FETCH_BATCH:
                    yield b"".join(batch)
                    batch, size = [], 0
            if batch:
                yield b"".join(batch)
            tail = self._updates(command)
            if missing:
                yield tail + r.tagged(
                    tag, "NO", "Some messages were expunged", r.Code.EXPUNGEISSUED
                )
            else:
                yield tail + r.tagged(tag, "OK", f"{command} completed")

        return [Stream(lines(), lambda: [])]

    def cmd_store(self, tag: str, args: list[Value], uid: bool = False) -> list[Output]:
        if len(args) != 3 or not isinstance(args[1], Atom):
            raise ArgumentError("STORE needs a sequence set, an item and flags")
        view = self._view()
        if view.readonly:
            return [Send(r.tagged(tag, "NO", "Mailbox is read-only", r.Code.READ_ONLY))]
        item = args[1].value.upper()
        silent = item.endswith(".SILENT")
        base = item.removesuffix(".SILENT")
        modes = {"FLAGS": "set", "+FLAGS": "add", "-FLAGS": "remove"}
        if base not in modes:
            raise ArgumentError("STORE item must be FLAGS, +FLAGS or -FLAGS")
        flags_value = args[2]
        flags = as_flag_list(
            flags_value if isinstance(flags_value, ParenList) else ParenList((flags_value,))
        )
        flags = [f for f in flags if f != "\\Recent"]
        pairs = self._resolve(args[0], uid)
        live = [(s, u) for s, u in pairs if view.message(u) is not None]
        view.box.store_flags([u for _, u in live], modes[base], flags)
        out = []
        if not silent or uid:
            for seq, u in live:
                items = [(b"FLAGS", view.flag_list(u))]
                if uid:
                    items.insert(0, (b"UID", r.number(u)))
                if not silent or uid:
                    out.append(r.fetch_response(seq, items))
        command = "UID STORE" if uid else "STORE"
        if len(live) != len(pairs):
            return [
                Send(
                    b"".join(out)
                    + self._updates(command)
                    + r.tagged(tag, "NO", "Some messages were expunged", r.Code.EXPUNGEISSUED)
                )
            ]
        return self._ok(tag, command, untagged=b"".join(out))

    def cmd_copy(
        self, tag: str, args: list[Value], uid: bool = False, move: bool = False
    ) -> list[Output]:
        if len(args) != 2:
            raise ArgumentError("COPY needs a sequence set and a mailbox name")
        view = self._view()
        pairs = self._resolve(args[0], uid)
        dest_name = as_mailbox(args[1])
        try:
            dest = self._store().mailbox(dest_name)
        except NotFound:
            return [Send(r.tagged(tag, "NO", "Mailbox does not exist", r.Code.TRYCREATE))]
        if move and view.readonly:
            return [Send(r.tagged(tag, "NO", "Mailbox is read-only", r.Code.READ_ONLY))]
        copied = view.box.copy_to([u for _, u in pairs], dest)
        code = None
        if copied:
            code = r.Code.copyuid(dest.uidvalidity, [s for s, _ in copied], [d for _, d in copied])
        name = ("UID " if uid else "") + ("MOVE" if move else "COPY")
        if not move:
            return self._ok(tag, name, code=code)
        removed = view.box.expunge([s for s, _ in copied])
        untagged = b""
        if code is not None:
            untagged = r.untagged_status("OK", "Moved", code)
        untagged += b"".join(view.forget(removed))
        return self._ok(tag, name, untagged=untagged)

    def cmd_move(self, tag: str, args: list[Value], uid: bool = False) -> list[Output]:
        return self.cmd_copy(tag, args, uid=uid, move=True)

    def cmd_search(self, tag: str, args: list[Value], uid: bool = False) -> list[Output]:
        from mra.imap.searching import SearchFailed, compile_search, run_search

        view = self._view()
        try:
            program = compile_search(view, args)
        except SearchFailed as exc:
            return [Send(r.tagged(tag, "NO", str(exc), r.Code("BADCHARSET", b"(UTF-8 US-ASCII)")))]
        command = "UID SEARCH" if uid else "SEARCH"

        def run() -> list[Output]:
            numbers = run_search(view, program, uid)
            return self._ok(tag, command, untagged=r.search_response(numbers))

        if program.needs_message or len(view) > INLINE_SEARCH_MAX:
            # Reading messages (or a very big folder): in the thread pool.
            return [Call(lambda: self._run(command, lambda _s, _t, _a: run(), tag, []), _outputs)]
        return run()  # flags, sizes, dates, sets: a few milliseconds, no thread hop

    # UID variants
    def cmd_uid_fetch(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_fetch(tag, args, uid=True)

    def cmd_uid_store(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_store(tag, args, uid=True)

    def cmd_uid_copy(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_copy(tag, args, uid=True)

    def cmd_uid_move(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_copy(tag, args, uid=True, move=True)

    def cmd_uid_search(self, tag: str, args: list[Value]) -> list[Output]:
        return self.cmd_search(tag, args, uid=True)


STATUS_ITEMS = {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
INLINE_SEARCH_MAX = 20_000  # messages a SEARCH without message keys runs on the reactor
THREADED = {
    "STORE",
    "UID STORE",
    "COPY",
    "UID COPY",
    "MOVE",
    "UID MOVE",
    "EXPUNGE",
    "UID EXPUNGE",
    "STATUS",
    "APPEND",
    "CLOSE",
}


def _outputs(result: object) -> list[Output]:
    if isinstance(result, list):
        return result
    log.error("imap-command-failed", error=repr(result))
    return [Close()]


def _resolve_seqs(sset: object, count: int) -> list[range]:
    return sset.resolve_seqs(count)  # type: ignore[attr-defined,no-any-return]


def list_match(pattern: str, name: str) -> bool:
    """LIST wildcards (RFC 3501 6.3.8): `*` matches anything, `%` anything but the separator.
    INBOX matches case-insensitively."""
    if name == INBOX and pattern.upper().startswith("INBOX"):
        pattern = "INBOX" + pattern[5:]
    return _match(pattern, 0, name, 0)


def _match(p: str, i: int, n: str, j: int) -> bool:
    while i < len(p):
        c = p[i]
        if c in "*%":
            for k in range(j, len(n) + 1):
                if c == "%" and SEPARATOR in n[j:k]:
                    break
                if _match(p, i + 1, n, k):
                    return True
            return False
        if j >= len(n) or n[j] != c:
            return False
        i += 1
        j += 1
    return j == len(n)


_ANY = ("NOTAUTH", "AUTH", "SELECTED")
_AUTHED = ("AUTH", "SELECTED")
_SELECTED = ("SELECTED",)
S = ImapSession
COMMANDS: dict[str, tuple[tuple[str, ...], Callable[..., list[Output]]]] = {
    "CAPABILITY": (_ANY, S.cmd_capability),
    "NOOP": (_ANY, S.cmd_noop),
    "LOGOUT": (_ANY, S.cmd_logout),
    "ID": (_ANY, S.cmd_id),
    "STARTTLS": (("NOTAUTH",), S.cmd_starttls),
    "LOGIN": (("NOTAUTH",), S.cmd_login),
    "AUTHENTICATE": (("NOTAUTH",), S.cmd_authenticate),
    "NAMESPACE": (_AUTHED, S.cmd_namespace),
    "SELECT": (_AUTHED, S.cmd_select),
    "EXAMINE": (_AUTHED, S.cmd_examine),
    "CREATE": (_AUTHED, S.cmd_create),
    "DELETE": (_AUTHED, S.cmd_delete),
    "RENAME": (_AUTHED, S.cmd_rename),
    "SUBSCRIBE": (_AUTHED, S.cmd_subscribe),
    "UNSUBSCRIBE": (_AUTHED, S.cmd_unsubscribe),
    "LIST": (_AUTHED, S.cmd_list),
    "LSUB": (_AUTHED, S.cmd_lsub),
    "STATUS": (_AUTHED, S.cmd_status),
    "APPEND": (_AUTHED, S.cmd_append),
    "IDLE": (_AUTHED, S.cmd_idle),
    "CHECK": (_SELECTED, S.cmd_check),
    "CLOSE": (_SELECTED, S.cmd_close),
    "UNSELECT": (_SELECTED, S.cmd_unselect),
    "EXPUNGE": (_SELECTED, S.cmd_expunge),
    "SEARCH": (_SELECTED, S.cmd_search),
    "FETCH": (_SELECTED, S.cmd_fetch),
    "STORE": (_SELECTED, S.cmd_store),
    "COPY": (_SELECTED, S.cmd_copy),
    "MOVE": (_SELECTED, S.cmd_move),
    "UID FETCH": (_SELECTED, S.cmd_uid_fetch),
    "UID STORE": (_SELECTED, S.cmd_uid_store),
    "UID COPY": (_SELECTED, S.cmd_uid_copy),
    "UID MOVE": (_SELECTED, S.cmd_uid_move),
    "UID SEARCH": (_SELECTED, S.cmd_uid_search),
    "UID EXPUNGE": (_SELECTED, S.cmd_uid_expunge),
}
