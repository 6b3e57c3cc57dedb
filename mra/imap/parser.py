"""The IMAP command reader: bytes in, events out (RFC 3501 section 9, RFC 7888 LITERAL+/-).

No I/O here. The connection feeds whatever bytes arrived, `reader.feed(data)`, and gets back a
list of events to act on in order; the session writes every answer with `mra.imap.response`.

Events: see events.py. Limits and the literal pool: see limits.py. Values: see values.py;
the `as_*` helpers that interpret them: see arguments.py.


Strictness
----------
As RFC 3501 says, except where clients are known to differ and the difference is harmless:

* 8-bit octets are refused in atoms, NUL everywhere but in literals. Quoted strings may hold
  8-bit octets, as Dovecot accepts them and clients send UTF-8 there (RFC 3501 `CHAR` is
  7-bit, RFC 9051 and RFC 6855 allow UTF-8): the command decides what it accepts (a mailbox
  name must then be valid UTF-8, a SEARCH string valid in its charset). Literal octets are
  not inspected (NUL included).
* Quoted strings allow only the escapes `\\"` and `\\\\`.
* Lines may end in a bare LF; runs of spaces between arguments and before the line end are
  accepted (Dovecot does the same); an empty line is ignored.
* A literal announcement must end its line. A literal8 `~{n}` (RFC 3516) is read as a literal
  marked `binary`, in the commands that carry messages only (APPEND, and CATENATE's TEXT
  parts inside it); elsewhere it is BAD, as Dovecot answers "literal8 not allowed here".

Limits: see limits.py, which explains each one and the DoS reasoning. Every read is
O(octets received): a line is searched for LF only in new data.

Resynchronising
---------------
After a BadCommand the rest of the command is skipped: up to the end of the current line and,
if that line announced a non-synchronizing literal `{n+}`, its n octets (counted, not kept) and
the line after them, and so on. A line that ends with a synchronizing `{n}` ends the command:
the client waits for a `+` it will never get and reads our BAD instead.
Under LITERAL- a `{n+}` over 4096 octets is not skipped: `Fatal`, nothing more is read.

Modes and suspension
--------------------
Some commands change how the following bytes must be read: after IDLE only `DONE` may come,
after AUTHENTICATE a SASL line, after LOGIN the literal limit changes, after STARTTLS and
COMPRESS the bytes are no longer plain text. So after a command named in `suspend_after` (the
session passes the commands its table marks `suspends`),
and after each `ContinuationLine`, the reader is *suspended*: it parses nothing more until the
session calls exactly one of `resume()`, `expect_done()` (the next line must be DONE; then back
to commands) or `expect_line()` (the next line is a ContinuationLine; then suspended again). A
session that decides asynchronously should stop reading the socket while `reader.suspended`;
bytes fed meanwhile are kept, up to one command's worth (`max_line_length +
Limits.command_literals`), beyond which the reader gives `Fatal` and stops. `take_buffered()` hands
over the bytes that arrived before STARTTLS (to drop: RFC 3501 6.2.1 and the usual plaintext
injection) or COMPRESS (to inflate and feed again).

Calling a mode method in the wrong state is a bug in the session: RuntimeError.

"""

from __future__ import annotations

import re
import sys
from collections.abc import Generator
from typing import TypeAlias

from mra.imap.arguments import ArgumentError, as_astring
from mra.imap.events import (
    BadCommand,
    Command,
    ContinuationLine,
    Event,
    Fatal,
    IdleDone,
    LimitExceeded,
    LineTooLong,
    LiteralTooLarge,
    MessageTooLarge,
    NeedContinuation,
    ServerBusy,
)
from mra.imap.limits import Limits, LiteralPool
from mra.imap.values import Atom, FetchAtt, Nil, ParenList, Section, String, Value

__all__ = ["CommandReader"]

# --- grammar --------------------------------------------------------------------------------

SP = 0x20
LPAREN = 0x28
RPAREN = 0x29
DQUOTE = 0x22
LBRACE = 0x7B
TILDE = 0x7E

# tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR = ATOM-CHAR / "]"; ATOM-CHAR is any CHAR
# but atom-specials: ( ) { SP CTL % * " \ ]
_TAG_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
_NAME_RE = re.compile(rb"[A-Za-z][A-Za-z0-9_.-]*")
# The generic token: what is left once lists, quoted strings and literals are taken out. Wider
# than ATOM-CHAR on purpose (flags `\Seen`, patterns `%`, sets `*`, `]`): the as_* helpers check.
_ATOM_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){"]+')
_QUOTED_RE = re.compile(rb'"((?:[^"\\\x00\r\n]++|\\["\\])*+)"')
_UNESCAPE_RE = re.compile(rb'\\(["\\])')
_LITERAL_RE = re.compile(rb"\{([0-9]{1,20})(\+?)\}")
_ANNOUNCE_RE = re.compile(rb"\{([0-9]{1,20})(\+?)\}\r?$")
_SECTION_PART_RE = re.compile(rb"[1-9][0-9]{0,9}(?:\.[1-9][0-9]{0,9})*")
_SECTION_TEXT_RE = re.compile(rb"HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME", re.I)
_PARTIAL_RE = re.compile(rb"<([0-9]{1,19})\.([0-9]{1,19})>")  # number64 (RFC 9051)
_FETCH_SECTION_NAMES = frozenset({b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"})
_FIELD_NAME_RE = re.compile(rb"[!-9;-~]+")  # RFC 5322 ftext: printable US-ASCII except ":"
_MAX_NUMBER = 2**32 - 1
_MAX_NUMBER64 = 2**63 - 1
_TAIL = 32  # octets of a skipped line kept to spot a literal announcement at its end

_COMMAND = "command"
_SUSPENDED = "suspended"
_DONE = "done"
_LINE = "line"
_DEAD = "dead"


class _Bad(Exception):
    """Raised inside the parser; becomes the event and a resync."""

    def __init__(self, event: BadCommand, *, line_pending: bool = False, literals: bool = True):
        super().__init__(event.message)
        self.event = event
        self.line_pending = line_pending  # the rest of the current line is still in the buffer
        self.literals = literals  # skipping honours {n+} announcements (command mode only)


class _Abandon(Exception):
    """The session refused a synchronizing literal: forget the command."""


class _Fatal(Exception):
    """Raised inside the parser with a `Fatal` event: it is given, nothing more is read."""


_Reading: TypeAlias = Generator[None, None, None]


def _ends_message(value: Value) -> bool:
    """A top-level value that closes one message of a message command: a literal (RFC 3502)
    or a list (RFC 4469's CATENATE list; a flag list, which holds no literal, resets nothing
    that counted)."""
    return isinstance(value, ParenList) or (isinstance(value, String) and value.is_literal)


class CommandReader:
    """Incremental IMAP command reader; see the module docstring for the protocol."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        suspend_after: frozenset[str] = frozenset(),
        message_commands: frozenset[str] = frozenset({"APPEND"}),
        pool: LiteralPool | None = None,
    ) -> None:
        self.limits = limits if limits is not None else Limits()
        self.authenticated = False
        """Set by the session after LOGIN/AUTHENTICATE: the next command gets the larger
        literal budget."""
        self.number64 = False
        """Set by the session after ENABLE IMAP4rev2: a FETCH partial `<origin.count>` holds
        RFC 9051's number64 (up to 2^63-1); IMAP4rev1's are 32-bit (RFC 3501 9)."""
        self._suspend_after = suspend_after
        self._message_commands = message_commands
        self._pool = pool if pool is not None else LiteralPool(2**62)
        self._reserved = 0  # octets of the command being read, reserved in the pool
        self._buf = bytearray()
        self._events: list[Event] = []
        self._mode = _COMMAND
        self._awaiting_literal = False
        self._literal_accepted = False
        self._consumed = 0  # octets taken from the buffer since the start: raw_size
        # The command being read.
        self._tag: str | None = None
        self._name = ""
        self._line = b""
        self._lpos = 0
        self._line_budget = 0
        self._literal_budget = 0
        self._message_budget = 0  # what the current message of a message command may add
        self._messages = False  # the command carries messages (and is authenticated)
        self._tokens = 0
        self._gen = self._main()
        next(self._gen)

    # --- the session's side ---------------------------------------------------------------

    @property
    def suspended(self) -> bool:
        """True while the reader waits for the session (a literal decision or a mode)."""
        return self._awaiting_literal or self._mode in (_SUSPENDED, _DEAD)

    @property
    def resumable(self) -> bool:
        """Suspended after a command (not waiting for a literal decision, not dead):
        `resume()` may be called."""
        return self._mode == _SUSPENDED and not self._awaiting_literal

    @property
    def buffered(self) -> int:
        """Octets received and not yet consumed."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Take received bytes; return the events they complete, in order."""
        if self._mode == _DEAD:
            return []
        self._buf += data
        if self.suspended:
            if len(self._buf) > self.limits.max_line_length + self.limits.command_literals:
                self._die()
                return [Fatal("too much data sent without waiting for the server")]
            return []
        return self._run()

    def accept_literal(self) -> list[Event]:
        """Go on reading the announced literal (write `+ ...` first, then handle the events)."""
        if not self._awaiting_literal:
            raise RuntimeError("no literal is waiting for a decision")
        self._awaiting_literal = False
        self._literal_accepted = True
        return self._run()

    def reject_literal(self) -> list[Event]:
        """Drop the command whose literal was announced (write the tagged NO/BAD yourself)."""
        if not self._awaiting_literal:
            raise RuntimeError("no literal is waiting for a decision")
        self._awaiting_literal = False
        self._literal_accepted = False
        return self._run()

    def resume(self) -> list[Event]:
        """Go back to reading commands after a suspension."""
        return self._switch(_COMMAND)

    def expect_done(self) -> list[Event]:
        """IDLE: the next line must be DONE (IdleDone) or it is a BadCommand; then commands."""
        return self._switch(_DONE)

    def expect_line(self) -> list[Event]:
        """AUTHENTICATE: report the next line as a ContinuationLine, then suspend again."""
        return self._switch(_LINE)

    def take_buffered(self) -> bytes:
        """While suspended: remove and return the bytes received but not read (STARTTLS drops
        them, COMPRESS has them inflated)."""
        if self._mode != _SUSPENDED or self._awaiting_literal:
            raise RuntimeError("take_buffered() is only possible while suspended")
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def close(self) -> None:
        """The connection is gone: give back what the command being read had reserved, and
        free what it holds now rather than when the garbage collector finds the cycle
        between the reader and its generator (an idle server may not look for hours)."""
        self._give_back()
        self._gen.close()
        self._buf.clear()
        self._events.clear()
        self._mode = _DEAD

    def _die(self) -> None:
        self._mode = _DEAD
        self._awaiting_literal = False
        self._buf.clear()

    def _give_back(self) -> None:
        self._pool.release(self._reserved)
        self._reserved = 0

    def _switch(self, mode: str) -> list[Event]:
        if self._mode != _SUSPENDED or self._awaiting_literal:
            raise RuntimeError(f"the reader is not suspended (mode {self._mode})")
        self._mode = mode
        return self._run()

    def _run(self) -> list[Event]:
        next(self._gen)
        events = self._events
        self._events = []
        return events

    # --- the loop ---------------------------------------------------------------------------

    def _main(self) -> _Reading:
        while True:
            mode = self._mode
            if mode in (_SUSPENDED, _DEAD):
                yield
                continue
            try:
                if mode == _COMMAND:
                    yield from self._command()
                elif mode == _DONE:
                    yield from self._done_line()
                else:
                    yield from self._continuation_line()
            except _Bad as exc:
                self._give_back()
                self._events.append(exc.event)
                yield from self._resync(exc)
            except _Abandon:
                self._give_back()
            except _Fatal as exc:
                self._give_back()
                self._events.append(exc.args[0])
                self._die()
                continue
            # The one-line modes end after their line, resync included.
            if mode == _DONE:
                self._mode = _COMMAND
            elif mode == _LINE:
                self._mode = _SUSPENDED

    def _done_line(self) -> _Reading:
        self._tag = None
        line = yield from self._read_line(self.limits.max_line_length, literals=False)
        if line.upper() == b"DONE":
            self._events.append(IdleDone())
        else:
            self._events.append(BadCommand(None, "expected DONE"))

    def _continuation_line(self) -> _Reading:
        self._tag = None
        line = yield from self._read_line(self.limits.max_line_length, literals=False)
        self._events.append(ContinuationLine(line))

    def _command(self) -> _Reading:
        limits = self.limits
        self._tag = None
        self._name = ""
        self._line_budget = limits.max_line_length
        self._tokens = 0
        start = self._consumed
        line = yield from self._next_line(first=True)
        if not line:
            return  # an empty line: ignored
        m = _TAG_RE.match(line)
        if m is None or (m.end() < len(line) and line[m.end()] != SP):
            raise self._bad("missing or invalid tag")
        self._tag = m.group().decode("ascii")
        pos = m.end()
        while pos < len(line) and line[pos] == SP:
            pos += 1
        m = _NAME_RE.match(line, pos)
        if m is None:
            raise self._bad("missing or invalid command name")
        if m.end() < len(line) and line[m.end()] != SP:
            raise self._bad("invalid command name")
        name = sys.intern(m.group().decode("ascii").upper())  # kept while idling (#16)
        self._name = name
        # Read now, not before the line arrived: the session may have changed it meanwhile.
        limits = self.limits
        self._messages = self.authenticated and name in self._message_commands
        if not self.authenticated:
            self._literal_budget = limits.max_literal_size_preauth
        elif self._messages:
            self._literal_budget = limits.command_literals
        else:
            self._literal_budget = limits.max_other_literal_size
        self._message_budget = limits.max_literal_size if self._messages else self._literal_budget
        self._lpos = m.end()
        args = yield from self._items(0, in_list=False)
        held, self._reserved = self._reserved, 0  # now the session's to give back
        self._events.append(Command(self._tag, name, args, self._consumed - start, held))
        if name in self._suspend_after:
            self._mode = _SUSPENDED

    # --- tokens -----------------------------------------------------------------------------

    def _items(self, depth: int, *, in_list: bool) -> Generator[None, None, list[Value]]:
        """Values up to the end of the command (or the `)` closing this list)."""
        items: list[Value] = []
        while True:
            line = self._line
            pos = self._lpos
            end = len(line)
            while pos < end and line[pos] == SP:
                pos += 1
            self._lpos = pos
            if pos == end:
                if in_list:
                    raise self._bad("missing ')'")
                return items
            c = line[pos]
            if c == RPAREN:
                if not in_list:
                    raise self._bad("unexpected ')'")
                self._lpos = pos + 1
                return items
            self._count_token()
            value: Value
            if c == LPAREN:
                if depth >= self.limits.max_depth:
                    raise self._limit("lists nested too deeply", "max_depth")
                self._lpos = pos + 1
                value = ParenList(tuple((yield from self._items(depth + 1, in_list=True))))
            elif c == DQUOTE:
                value = String(self._quoted(), False)
            elif c == LBRACE:
                value = yield from self._literal(depth)
            elif c == TILDE and line[pos + 1 : pos + 2] == b"{":
                value = yield from self._literal(depth, binary=True)
            else:
                atom = self._atom()
                if isinstance(atom, str):
                    value = yield from self._fetch_att(atom, depth)
                else:
                    value = atom
            items.append(value)
            if depth == 0 and self._messages and _ends_message(value):
                self._message_budget = self.limits.max_literal_size
            # Values are separated by a space; a list may close right after one.
            line = self._line
            pos = self._lpos
            if pos < len(line) and line[pos] != SP and line[pos] != RPAREN:
                raise self._bad(self._unexpected(line[pos], "expected a space"))

    def _count_token(self) -> None:
        self._tokens += 1
        if self._tokens > self.limits.max_tokens:
            raise self._limit("too many arguments", "max_tokens")

    def _unexpected(self, c: int, what: str) -> str:
        if c >= 0x80:
            return "8-bit characters are only allowed in literals"
        if c < 0x20 or c == 0x7F:
            return f"control character 0x{c:02x} in command"
        return f"{what}, not {chr(c)!r}"

    def _quoted(self) -> bytes:
        line = self._line
        pos = self._lpos
        m = _QUOTED_RE.match(line, pos)
        if m is None:
            raise self._bad(self._quoted_error(line, pos + 1))
        self._lpos = m.end()
        body = m.group(1)
        return _UNESCAPE_RE.sub(rb"\1", body) if b"\\" in body else body

    def _quoted_error(self, line: bytes, i: int) -> str:
        while i < len(line):
            c = line[i]
            if c == DQUOTE:
                break
            if c == 0x5C:
                if i + 1 >= len(line) or line[i + 1] not in b'"\\':
                    return 'invalid escape in quoted string: only \\" and \\\\ are allowed'
                i += 2
                continue
            if c in (0, 0x0D, 0x0A):
                return f"control character 0x{c:02x} in a quoted string"
            i += 1
        return "unterminated quoted string"

    def _literal(self, depth: int, *, binary: bool = False) -> Generator[None, None, String]:
        line = self._line
        m = _LITERAL_RE.match(line, self._lpos + binary)
        if m is None:
            raise self._bad("invalid literal")
        if m.end() != len(line):
            raise self._bad("a literal announcement must end the line")
        if binary and not self._messages:
            raise self._bad("literal8 is only allowed in APPEND")
        self._lpos = m.end()
        size = int(m.group(1))
        nonsync_max = self.limits.max_nonsync_literal
        if m.group(2) and nonsync_max is not None and size > nonsync_max:  # LITERAL-: limits.py
            raise _Fatal(Fatal("Non-synchronizing literal size too large", "TOOBIG"))
        self._check_budgets(size)
        if not self._pool.reserve(size):
            raise _Bad(ServerBusy(self._tag, "Server busy, try again later", "UNAVAILABLE"))
        self._reserved += size
        if not m.group(2):
            assert self._tag is not None
            self._events.append(NeedContinuation(self._tag, size, self._name, depth))
            self._awaiting_literal = True
            yield
            if not self._literal_accepted:
                raise _Abandon
        data = yield from self._read_exact(size)
        self._literal_budget -= size
        self._message_budget -= size
        yield from self._next_line()
        return String(data, True, binary)

    def _check_budgets(self, size: int) -> None:
        """Refuse a literal over the budget it falls in (limits.py)."""
        tag = self._tag
        if self._messages:
            if size > self._message_budget:
                what = f"Message too big (over {self.limits.max_literal_size} octets)"
                raise _Bad(MessageTooLarge(tag, what, "TOOBIG", "max_literal_size", size))
            if size > self._literal_budget:
                total = self.limits.command_literals
                what = f"{self._name} too big (over {total} octets in all)"
                raise _Bad(MessageTooLarge(tag, what, "TOOBIG", "max_append_size", size))
            return
        if size > self._literal_budget:
            limit = (
                "max_literal_size_preauth" if not self.authenticated else "max_other_literal_size"
            )
            what = f"literal of {size} octets is too large"
            raise _Bad(LiteralTooLarge(tag, what, "TOOBIG", limit, size))

    def _atom(self) -> Atom | str:
        """An atom; or, for `BODY[` and the like, the upper-cased name to parse a section for.

        A plain function, not a generator: atoms are most tokens, and only sections can hold a
        literal.
        """
        line = self._line
        pos = self._lpos
        m = _ATOM_RE.match(line, pos)
        if m is None:
            raise self._bad(self._unexpected(line[pos], "unexpected character"))
        text = m.group()
        bracket = text.find(b"[")
        if bracket > 0:
            name = text[:bracket].upper()
            if name in _FETCH_SECTION_NAMES:
                self._lpos = pos + bracket + 1
                return name.decode("ascii")
        self._lpos = m.end()
        value = text.decode("ascii")
        return Nil(value) if value.upper() == "NIL" else Atom(value)

    def _fetch_att(self, name: str, depth: int) -> Generator[None, None, FetchAtt]:
        """After `BODY[`: section-spec `]` [`<` origin `.` count `>`] (RFC 3501, RFC 3516)."""
        line = self._line
        pos = self._lpos
        part: tuple[int, ...] = ()
        text: str | None = None
        fields: tuple[str, ...] = ()
        m = _SECTION_PART_RE.match(line, pos)
        more = True  # a section-msgtext may follow: at the start, or after "<part>."
        if m is not None:
            numbers = [int(n) for n in m.group().split(b".")]
            if any(n > _MAX_NUMBER for n in numbers):
                raise self._bad("section part number too large")
            part = tuple(numbers)
            pos = m.end()
            more = line[pos : pos + 1] == b"."
            if more:
                pos += 1
        m = _SECTION_TEXT_RE.match(line, pos) if more else None
        if m is None and part and more:
            raise self._bad("invalid section")
        if m is not None:
            text = m.group().decode("ascii").upper()
            pos = m.end()
            if name.startswith("BINARY"):
                raise self._bad(f"{name}[] takes only a part number")
            if text == "MIME" and not part:
                raise self._bad("MIME needs a part number")
            if text.startswith("HEADER.FIELDS"):
                if line[pos : pos + 2] != b" (":
                    raise self._bad(f"{text} needs a list of header names")
                self._lpos = pos + 2
                self._count_token()
                if depth >= self.limits.max_depth:
                    raise self._limit("lists nested too deeply", "max_depth")
                names = yield from self._items(depth + 1, in_list=True)
                if not names:
                    raise self._bad(f"{text} needs at least one header name")
                fields = tuple(self._field_name(v) for v in names)
                line = self._line
                pos = self._lpos
        if line[pos : pos + 1] != b"]":
            raise self._bad("invalid section")
        pos += 1
        partial: tuple[int, int] | None = None
        if line[pos : pos + 1] == b"<":
            m = _PARTIAL_RE.match(line, pos)
            if m is not None and not self.number64 and max(map(len, m.groups())) > 10:
                m = None  # IMAP4rev1's number: at most 10 digits, as before number64
            if m is None or name == "BINARY.SIZE":
                raise self._bad("invalid partial range: expected <origin.count>")
            origin, count = int(m.group(1)), int(m.group(2))
            if self.number64:
                if origin > _MAX_NUMBER64 or not 0 < count <= _MAX_NUMBER64:
                    raise self._bad("invalid partial range: the count must be 1 to 2^63-1")
            elif origin > _MAX_NUMBER or not 0 < count <= _MAX_NUMBER:
                raise self._bad("invalid partial range: the count must be 1 to 2^32-1")
            partial = (origin, count)
            pos = m.end()
        self._lpos = pos
        return FetchAtt(name, Section(part, text, fields), partial)

    def _field_name(self, value: Value) -> str:
        try:
            raw = as_astring(value)
        except ArgumentError:
            raise self._bad("header field names must be strings") from None
        if not _FIELD_NAME_RE.fullmatch(raw):
            raise self._bad("invalid header field name")
        return raw.decode("ascii")

    # --- errors -----------------------------------------------------------------------------

    def _bad(self, message: str) -> _Bad:
        return _Bad(BadCommand(self._tag, message))

    def _limit(self, message: str, limit: str) -> _Bad:
        return _Bad(LimitExceeded(self._tag, message, "LIMIT", limit))

    def _resync(self, exc: _Bad) -> _Reading:
        """Skip what is left of the failed command (module docstring: resynchronising)."""
        if exc.line_pending:
            tail = yield from self._skip_line()
        elif exc.literals:
            tail = self._line
        else:
            return
        if not exc.literals:
            return
        while True:
            m = _ANNOUNCE_RE.search(tail)
            if m is None or not m.group(2):
                return  # no literal, or a synchronizing one the client will not send
            yield from self._skip(int(m.group(1)))
            tail = yield from self._skip_line()

    # --- the buffer -------------------------------------------------------------------------

    def _next_line(self, *, first: bool = False) -> Generator[None, None, bytes]:
        """Read the command's next line into self._line, charging the line budget."""
        line = yield from self._read_line(self._line_budget, first=first)
        self._line_budget -= len(line)
        self._line = line
        self._lpos = 0
        return line

    def _read_line(
        self, limit: int, *, first: bool = False, literals: bool = True
    ) -> Generator[None, None, bytes]:
        """The next line without its line end; `_Bad(LineTooLong)` past `limit` octets."""
        buf = self._buf
        scanned = 0
        while True:
            idx = buf.find(b"\n", scanned)
            if idx >= 0:
                break
            if len(buf) > limit + 1:  # + 1: a CR may yet turn out to be the line end
                raise self._too_long(first, literals)
            scanned = len(buf)
            yield
        length = idx - 1 if idx > 0 and buf[idx - 1] == 0x0D else idx
        if length > limit:
            raise self._too_long(first, literals)
        line = bytes(buf[:length])
        del buf[: idx + 1]
        self._consumed += idx + 1
        return line

    def _too_long(self, first: bool, literals: bool) -> _Bad:
        tag = self._tag
        if first and tag is None:
            m = _TAG_RE.match(self._buf, 0, 256)
            if m is not None and self._buf[m.end() : m.end() + 1] == b" ":
                tag = m.group().decode("ascii")
        event = LineTooLong(tag, "command line too long", "LIMIT", "max_line_length")
        return _Bad(event, line_pending=True, literals=literals)

    def _read_exact(self, n: int) -> Generator[None, None, bytes]:
        """n octets, gathered as they arrive (never allocated up front)."""
        buf = self._buf
        if len(buf) >= n:
            data = bytes(buf[:n])
            del buf[:n]
            self._consumed += n
            return data
        # One growing buffer, not a list of the received pieces: a big literal then lives in
        # one mapping that goes back to the system when freed, where 700 pieces of 64 KiB
        # would leave the heap fragmented and the process as big as before.
        gathered = bytearray()
        remaining = n
        while remaining:
            if not buf:
                yield
                continue
            k = min(remaining, len(buf))
            gathered += buf[:k]
            del buf[:k]
            self._consumed += k
            remaining -= k
        return bytes(gathered)

    def _skip(self, n: int) -> _Reading:
        buf = self._buf
        while n:
            if not buf:
                yield
                continue
            k = min(n, len(buf))
            del buf[:k]
            self._consumed += k
            n -= k

    def _skip_line(self) -> Generator[None, None, bytes]:
        """Discard through the next LF; return the line's last octets (without CRLF)."""
        buf = self._buf
        tail = b""
        while True:
            idx = buf.find(b"\n")
            if idx >= 0:
                tail = (tail + bytes(buf[max(0, idx - _TAIL) : idx]))[-_TAIL:]
                del buf[: idx + 1]
                self._consumed += idx + 1
                return tail[:-1] if tail.endswith(b"\r") else tail
            tail = (tail + bytes(buf[-_TAIL:]))[-_TAIL:]
            self._consumed += len(buf)
            buf.clear()
            yield
