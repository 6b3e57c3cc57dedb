"""The ManageSieve command reader: bytes in, events out (RFC 5804 section 4), without I/O.

The session feeds whatever arrived (`feed`) and asks for one event at a time (`next_event`),
switching the reader's `mode` between events: after AUTHENTICATE the next line is a SASL
response, not a command. The reader never parses ahead of the session, so a mode switch takes
effect exactly at the next line (the h11 model: `receive_data`, `next_event`).

Syntax
------
A command is an atom (its name) and arguments separated by spaces, ending with CRLF:

    atom      1*ATOM-CHAR (any CHAR but "(" ")" "{" SP CTL DQUOTE "\\")
    quoted    DQUOTE *QUOTED-CHAR DQUOTE, escapes only \\" and \\\\, no CR, LF or NUL
    literal   "{" number "+}" CRLF *OCTET, or "{" number "}" CRLF *OCTET

RFC 5804 only defines the `{n+}` form from the client; Pigeonhole reads `{n}` the same way
(there is no continuation request in ManageSieve: a client sends the octets at once), and so
do we. A literal announcement ends its line; after its octets the command goes on (more
arguments, or the CRLF that ends it). Numbers arrive as atoms and the command checks them.
Lines may end in a bare LF; runs of spaces are accepted; an empty command line is ignored.
Strings are handed over as bytes: the command decides what it accepts (a script name must be
UTF-8, a script is checked by the Sieve parser).

Limits (SECURITY.md, heading 2)
-------------------------------
* `max_line_length` octets of command text, all its lines together, literals excluded
  (Dovecot's managesieve_max_line_length, 64 KiB). Past it the rest of the command is
  skipped and the command refused.
* `max_string_size` octets for a literal that is not a script (a script name, a SASL
  response). A larger announcement is a protocol abuse: `Fatal`, as Pigeonhole's "Literal
  size too large" (the client would send the octets whatever we answer).
* `max_script_size` for the script of PUTSCRIPT and CHECKSCRIPT, once `authenticated` is set
  (before login a script is just another string). A larger script is skipped, counted and not
  kept, and the command answered `ScriptTooLarge` (NO (QUOTA/MAXSIZE), as Pigeonhole does).
* Every script literal kept is reserved in the process's `LiteralPool` when announced, before
  any of it arrives, and given back by the session when its command is done (`Command.held`)
  or by `close()`: all sessions together hold at most the pool's limit (`[limits]
  max_literal_memory`). A script that does not fit is skipped and answered `Busy`.

Every read is O(octets received): a line is searched for LF only in new data, a skipped
literal is counted and dropped as it arrives, a kept one gathered in chunks.

Resynchronising
---------------
After an error the rest of the command is skipped: up to the end of the current line and, if
that line announces a literal, its octets (counted, not kept) and the line after them, and so
on. An over-long line keeps only its last `_TAIL` octets, enough to see an announcement at its
end. Then the error is the event, and reading goes on with the next command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.limits import LiteralPool

__all__ = [
    "COMMAND",
    "SASL",
    "Atom",
    "Bad",
    "Busy",
    "Command",
    "CommandReader",
    "Event",
    "Fatal",
    "ReaderLimits",
    "SaslResponse",
    "ScriptTooLarge",
    "String",
]

KIB = 1024
COMMAND = "command"
SASL = "sasl"

_ATOM_RE = re.compile(rb"[!#-'*-\[\]-z|-~]+")
_QUOTED_RE = re.compile(rb'"((?:[^"\\\x00\r\n]++|\\["\\])*+)"')
_UNESCAPE_RE = re.compile(rb'\\(["\\])')
_ANNOUNCE_RE = re.compile(rb"\{([0-9]{1,20})(\+?)\}$")
_MAX_NUMBER = 2**32 - 1  # RFC 5804 section 4: a number is 32 bits
_TAIL = 32  # octets of a skipped line kept to spot a literal announcement at its end

# The argument that carries the script, by command (the name is argument 0).
_SCRIPT_ARGUMENT = {"PUTSCRIPT": 2, "CHECKSCRIPT": 1}


@dataclass(frozen=True, slots=True)
class ReaderLimits:
    """What one command may make the reader hold (see the module docstring)."""

    max_line_length: int = 64 * KIB
    max_string_size: int = 8 * KIB
    max_script_size: int = 1024 * KIB


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Atom:
    value: str  # ASCII


@dataclass(frozen=True, slots=True)
class String:
    data: bytes
    literal: bool = False


Arg = Atom | String


# --- events ---------------------------------------------------------------------------------


class Event:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Command(Event):
    """A whole command. `held`: pool octets its literals reserved, given back once it is done."""

    name: str  # upper case
    args: tuple[Arg, ...]
    held: int = 0


@dataclass(frozen=True, slots=True)
class SaslResponse(Event):
    """A client's line during AUTHENTICATE: one string, or None when it was anything else."""

    value: String | None


@dataclass(frozen=True, slots=True)
class Bad(Event):
    """A command that could not be read: answer NO with `message` (the client's fault)."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class ScriptTooLarge(Event):
    name: str
    limit: int


@dataclass(frozen=True, slots=True)
class Busy(Event):
    """Every session's scripts together fill the literal pool: answer NO (TRYLATER)."""

    name: str


@dataclass(frozen=True, slots=True)
class Fatal(Event):
    """Answer BYE and close: the reader stops."""

    message: str


class _Skip:
    """Why the rest of a command is skipped, and the event that answers it then."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event


class CommandReader:
    def __init__(self, limits: ReaderLimits, pool: LiteralPool | None = None) -> None:
        self.limits = limits
        self.pool = pool
        self.mode = COMMAND
        self.authenticated = False  # scripts may be up to max_script_size
        self._buf = b""
        self._pos = 0  # what is read of the buffer: it ends here
        self._scan = 0  # the buffer holds no LF before this offset
        self._fatal = False
        self._reset()

    def _reset(self) -> None:
        self._tokens: list[Arg] = []
        self._name = ""
        self._used = 0  # octets of command text so far (literals excluded)
        self._skip: _Skip | None = None
        self._overlong = False  # dropping an over-long line, keeping its tail
        self._tail = b""
        self._remaining = 0  # octets of the literal under way
        self._keep = False  # its octets are kept (else counted and dropped)
        self._chunks: list[bytes] = []
        self._held = 0  # pool octets this command reserved
        self._continuing = False  # the next line goes on after a literal's octets

    # -- the session's side ----------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Octets received. What is read of the buffer is dropped here, once per feed, not once
        per command: a megabyte of pipelined commands costs one copy, not one per NOOP."""
        if self._fatal or not data:
            return
        if self._pos:
            self._buf = self._buf[self._pos :] + data
            self._scan = max(0, self._scan - self._pos)
            self._pos = 0
        else:
            self._buf += data

    def take_buffered(self) -> bytes:
        """The octets received and not yet read (STARTTLS drops them: RFC 5804 2.2 and
        CVE-2011-0411, nothing sent in the clear may run as if encrypted)."""
        data = self._buf[self._pos :]
        self._empty()
        return data

    def close(self) -> None:
        """The connection is gone: give back what the command under way reserved."""
        self._release()
        self._empty()
        self._fatal = True

    def _empty(self) -> None:
        self._buf, self._pos, self._scan = b"", 0, 0

    def next_event(self) -> Event | None:
        """The next event, or None until more octets arrive."""
        if self._fatal:
            return None
        while True:
            if self._remaining:
                if not self._read_literal():
                    self._drained()
                    return None
                continue
            line = self._next_line()
            if line is None:
                self._drained()
                return None
            event = self._line(line)
            if event is not None:
                if isinstance(event, Fatal):
                    self._fatal = True
                    self._release()
                    self._empty()
                return event

    def _drained(self) -> None:
        if self._pos == len(self._buf):
            self._empty()

    # -- lines ------------------------------------------------------------------------------

    def _next_line(self) -> bytes | None:
        start = self._pos
        nl = self._buf.find(b"\n", max(self._scan, start))
        if nl < 0:
            budget = self.limits.max_line_length - self._used
            if len(self._buf) - start > budget:
                # Over-long: keep only the tail, to see a literal announced at its end.
                self._used = self.limits.max_line_length
                self._fail(Bad(self._name, "Line too long."))
                self._tail = (self._tail + self._buf[start:])[-_TAIL:]
                self._overlong = True
                self._empty()
            self._scan = len(self._buf)
            return None
        line = self._buf[start:nl]
        self._pos = self._scan = nl + 1
        if self._overlong:
            line = (self._tail + line)[-_TAIL:]
            self._overlong = False
            self._tail = b""
        else:
            self._used += nl + 1 - start
            if self._used > self.limits.max_line_length:
                self._fail(Bad(self._name, "Line too long."))
        if line.endswith(b"\r"):
            line = line[:-1]
        return line

    def _line(self, line: bytes) -> Event | None:
        """One line of a command: its event if it ends the command, else None."""
        if self._skip is not None:
            skipped = self._announced(line)
            if skipped is not None:
                self._start_literal(skipped, keep=False)
                return None
            return self._finish()
        if not self._tokens and not line.strip(b" ") and self.mode == COMMAND:
            self._used = 0
            return None  # an empty line between commands
        size = self._tokenize(line)
        if size is None:
            return self._finish()
        if self._skip is not None:  # an error, and a literal still to skip
            self._start_literal(size, keep=False)
            return None
        return self._announce(size)

    def _tokenize(self, line: bytes) -> int | None:
        """Append the line's values to the command; the size of a literal announced at its
        end, if any. A syntax error marks the command as skipped."""
        pos = 0
        end = len(line)
        # The line after a literal's octets goes on right after them: its first value, like
        # every other, needs a space before it.
        first_free = not self._continuing
        self._continuing = False
        while True:
            while pos < end and line[pos] == 0x20:
                pos += 1
            if pos >= end:
                return None
            if not (pos == 0 and first_free) and (pos == 0 or line[pos - 1] != 0x20):
                self._fail(Bad(self._name, "Missing space between arguments."))
                return self._announced(line)
            c = line[pos]
            if c == 0x22:  # DQUOTE
                m = _QUOTED_RE.match(line, pos)
                if m is None:
                    self._fail(Bad(self._name, "Invalid quoted string."))
                    return self._announced(line)
                self._add(String(_UNESCAPE_RE.sub(rb"\1", m.group(1))))
                pos = m.end()
            elif c == 0x7B:  # "{": a literal announcement, which must end the line
                m = _ANNOUNCE_RE.match(line, pos)
                if m is None:
                    self._fail(Bad(self._name, "Invalid literal."))
                    return self._announced(line)
                return int(m.group(1))
            else:
                m = _ATOM_RE.match(line, pos)
                if m is None:
                    self._fail(Bad(self._name, "Invalid characters in atom."))
                    return self._announced(line)
                self._add(Atom(m.group().decode("ascii")))
                pos = m.end()
            if self._skip is not None:
                return self._announced(line)

    def _announced(self, line: bytes) -> int | None:
        m = _ANNOUNCE_RE.search(line)
        return int(m.group(1)) if m is not None else None

    def _add(self, value: Arg) -> None:
        if self.mode == COMMAND and not self._tokens:
            if not isinstance(value, Atom):
                self._fail(Bad("", "Expected a command name."))
                return
            self._name = value.value.upper()
        self._tokens.append(value)

    # -- literals ---------------------------------------------------------------------------

    def _announce(self, size: int) -> Event | None:
        """A literal of `size` octets follows: decide whether it is kept, skipped or fatal."""
        if self.mode == COMMAND and not self._tokens:
            self._fail(Bad("", "Expected a command name."))
            self._start_literal(size, keep=False)
            return None
        index = len(self._tokens)
        script = (
            self.mode == COMMAND
            and self.authenticated
            and _SCRIPT_ARGUMENT.get(self._name) == index
        )
        if not script:
            if size > self.limits.max_string_size:
                return Fatal("Literal too large.")
            self._start_literal(size, keep=True)
            return None
        if size > min(self.limits.max_script_size, _MAX_NUMBER):
            self._fail(ScriptTooLarge(self._name, self.limits.max_script_size))
            self._start_literal(size, keep=False)
            return None
        if size and self.pool is not None:
            if not self.pool.reserve(size):
                self._fail(Busy(self._name))
                self._start_literal(size, keep=False)
                return None
            self._held += size
        self._start_literal(size, keep=True)
        return None

    def _start_literal(self, size: int, keep: bool) -> None:
        self._keep = keep
        self._chunks = []
        self._remaining = size
        if size == 0:
            self._end_literal()

    def _read_literal(self) -> bool:
        """Take what arrived of the literal; True once it is complete."""
        start = self._pos
        take = min(self._remaining, len(self._buf) - start)
        if not take:
            return False
        if self._keep:
            self._chunks.append(self._buf[start : start + take])
        self._pos = self._scan = start + take
        self._remaining -= take
        if self._remaining:
            return False
        self._end_literal()
        return True

    def _end_literal(self) -> None:
        if self._keep and self._skip is None:
            self._tokens.append(String(b"".join(self._chunks), literal=True))
        self._chunks = []
        self._keep = False
        # The line after the octets continues the command; it may start right away.
        self._continuing = True

    # -- the end of a command ---------------------------------------------------------------

    def _fail(self, event: Event) -> None:
        if self._skip is None:
            self._skip = _Skip(event)
            self._tokens = []
            self._release()

    def _release(self) -> None:
        if self._held and self.pool is not None:
            self.pool.release(self._held)
        self._held = 0

    def _finish(self) -> Event:
        skip, tokens, name, held = self._skip, self._tokens, self._name, self._held
        self._reset()
        if skip is not None:
            return skip.event
        if self.mode == SASL:
            if len(tokens) == 1 and isinstance(tokens[0], String):
                return SaslResponse(tokens[0])
            return SaslResponse(None)
        return Command(name, tuple(tokens[1:]), held)
