"""IMAP: the command reader (mra/imap/parser.py) alone, under small limits so that every limit
is reached.

Input: byte 0 holds switches (bit 0: authenticated; bit 1: APPEND carries messages), byte 1
the session's decisions (accept or refuse each literal, stay in a SASL exchange or not, bit
by bit, cycling), byte 2 where to cut the input into reads; the rest is the client's bytes.

Properties:
- nothing raises;
- the events do not depend on how the bytes were cut into reads (given room in the pool);
- the reader never holds more than one command's worth and one read;
- every literal octet reserved in the pool is given back (by the commands the session
  finishes, or when the reader is closed);
- every command, written out again (fuzz/imap_reader.py `write`), reads back the same;
- the reader resynchronises: unless a literal was announced, `CRLF * CRLF ZZ9 NOOP CRLF`
  after the input gives the command `ZZ9 NOOP`.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main
    from mra.imap.commands import MESSAGE_COMMANDS, SUSPENDING
    from mra.imap.events import (
        BadCommand,
        Command,
        ContinuationLine,
        Event,
        Fatal,
        NeedContinuation,
    )
    from mra.imap.limits import Limits, LiteralPool
    from mra.imap.parser import CommandReader
    from mra.imap.values import Atom, FetchAtt, ParenList, String, Value

LIMITS = Limits(
    max_line_length=300,
    max_literal_size_preauth=40,
    max_literal_size=200,
    max_append_size=300,
    max_other_literal_size=100,
    max_depth=6,
    max_tokens=60,
)
POOL = 500
PROBE = b"\r\n*\r\nZZ9 NOOP\r\n"


class Run:
    """A reader and a session that decides as the input's decision bits say."""

    def __init__(self, switches: int, decisions: int, pool: int = POOL) -> None:
        self.pool = LiteralPool(pool)
        self.reader = CommandReader(
            LIMITS,
            suspend_after=SUSPENDING,
            message_commands=MESSAGE_COMMANDS if switches & 2 else frozenset(),
            pool=self.pool,
        )
        self.reader.authenticated = bool(switches & 1)
        self.decisions = decisions
        self.turn = 0
        self.in_sasl = False
        self.events: list[Event] = []
        self.follow = True  # decide by the bits; False: the probe's plain session

    def bit(self) -> bool:
        self.turn += 1
        return bool(self.decisions >> (self.turn % 8) & 1)

    def feed(self, data: bytes) -> None:
        bound = LIMITS.max_line_length + LIMITS.command_literals + len(data) + 2
        self.handle(self.reader.feed(data))
        if self.reader.buffered > bound:
            raise Finding(f"the reader holds {self.reader.buffered} octets (bound {bound})")

    def handle(self, events: list[Event]) -> None:
        reader = self.reader
        for event in events:
            self.events.append(event)
            if isinstance(event, Fatal):
                return
            if isinstance(event, NeedContinuation):
                accept = not self.follow or self.bit()
                self.handle(reader.accept_literal() if accept else reader.reject_literal())
            elif isinstance(event, Command):
                self.pool.release(event.literal_size)  # the session finished the command
                if event.name not in SUSPENDING:
                    continue
                if event.name == "IDLE" and (not self.follow or self.bit()):
                    self.handle(reader.expect_done())
                elif event.name == "AUTHENTICATE" and self.follow and self.bit():
                    self.in_sasl = True
                    self.handle(reader.expect_line())
                else:
                    self.handle(reader.resume())
            elif isinstance(event, ContinuationLine):
                if self.in_sasl and self.follow and not event.cancelled and self.bit():
                    self.handle(reader.expect_line())
                else:
                    self.in_sasl = False
                    self.handle(reader.resume())


def write(value: Value) -> bytes:
    """A value as a client writes it: quoted strings quoted, literals non-synchronizing."""
    if isinstance(value, Atom):
        return value.value.encode("ascii")
    if isinstance(value, String) and not value.is_literal:
        return b'"' + value.value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    if isinstance(value, String):
        return b"%s{%d+}\r\n%s" % (b"~" if value.binary else b"", len(value.value), value.value)
    if isinstance(value, ParenList):
        return b"(" + b" ".join(write(v) for v in value.items) + b")"
    assert isinstance(value, FetchAtt)
    s = value.section
    spec = [".".join(map(str, s.part))] if s.part else []
    if s.text is not None:
        spec.append(s.text)
    text = ".".join(spec)
    if s.fields:
        quoted = ('"' + f.replace("\\", "\\\\").replace('"', '\\"') + '"' for f in s.fields)
        text += " (" + " ".join(quoted) + ")"
    out = f"{value.name}[{text}]"
    if value.partial is not None:
        out += f"<{value.partial[0]}.{value.partial[1]}>"
    return out.encode("ascii")


def check_round_trip(cmd: Command, switches: int) -> None:
    data = cmd.tag.encode() + b" " + cmd.name.encode()
    for arg in cmd.args:
        data += b" " + write(arg)
    reader = CommandReader(
        suspend_after=SUSPENDING,
        message_commands=MESSAGE_COMMANDS if switches & 2 else frozenset(),
    )
    reader.authenticated = bool(switches & 1)
    events = [e for e in reader.feed(data + b"\r\n") if not isinstance(e, NeedContinuation)]
    if len(events) != 1 or not isinstance(events[0], Command):
        raise Finding(f"{cmd!r} written as {data!r} reads back as {events!r}")
    again = events[0]
    if (again.tag, again.name, again.args) != (cmd.tag, cmd.name, cmd.args):
        raise Finding(f"{cmd!r} written as {data!r} reads back as {again!r}")


def events_of(switches: int, decisions: int, chunks: list[bytes], pool: int = POOL) -> Run:
    run = Run(switches, decisions, pool)
    for chunk in chunks:
        run.feed(chunk)
    return run


def test_one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    switches, decisions, step = data[0], data[1], data[2]
    body = data[3:]
    whole = events_of(switches, decisions, [body])
    if step:
        # Without the process's literal pool: the commands of one read are all parsed, their
        # literals held, before the session runs any, so how the bytes are cut decides how
        # many are held at once, and a small pool may then say "busy" to one cut only.
        cut = [body[i : i + step] for i in range(0, len(body), step)]
        split = events_of(switches, decisions, cut, pool=2**62)
        at_once = events_of(switches, decisions, [body], pool=2**62)
        if split.events != at_once.events:
            raise Finding(f"cut every {step}: {split.events!r}\nin one piece: {at_once.events!r}")
    for event in whole.events:
        if isinstance(event, Command):
            check_round_trip(event, switches)
    # Resynchronisation: the same session, then the probe with every decision "yes".
    fatal = any(isinstance(e, Fatal) for e in whole.events)
    if b"{" not in body and not fatal:
        whole.follow = False
        whole.in_sasl = False
        n = len(whole.events)
        whole.feed(PROBE)
        tail = whole.events[n:]
        last = tail[-1] if tail else None
        if not (isinstance(last, Command) and (last.tag, last.name) == ("ZZ9", "NOOP")):
            raise Finding(f"not resynchronised: after the input, the probe gave {tail!r}")
        if not all(isinstance(e, (BadCommand, Command, ContinuationLine)) for e in tail):
            raise Finding(f"unexpected events for the probe: {tail!r}")
    whole.reader.close()
    if whole.pool.held:
        raise Finding(f"{whole.pool.held} literal octets still reserved after close()")


if __name__ == "__main__":
    main(test_one_input)
