"""The ManageSieve command reader (mra/managesieve/reader.py) alone, with small limits, the way
the session uses it: AUTHENTICATE switches it to SASL mode until the response, each command's
reserved literal octets are given back once it is done.

Input: byte 0 picks the limits (a line of 40 to 250 octets, strings of 16 to 112, scripts of 64
to 256) and bit 7 whether the client is logged in (scripts may then be larger than strings);
byte 1 how the rest is cut into reads (n octets at a time, 0 as 1); the rest is what the client
sends.

Properties:
- nothing raises;
- the same events whether the bytes come in one piece or cut into reads;
- a command's name is an upper-case atom; no string is longer than its bound (a literal than
  `max_script_size` or `max_string_size`, a quoted string than the line), a quoted one holds no
  CR, LF or NUL;
- nothing after Fatal; once the connection is gone, every octet reserved in the pool is back.
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra"]):
    from fuzz._harness import Finding, main
    from mra.imap.limits import LiteralPool
    from mra.managesieve.reader import (
        COMMAND,
        SASL,
        Command,
        CommandReader,
        Event,
        Fatal,
        ReaderLimits,
        SaslResponse,
        String,
    )

POOL = 300


def events_of(chunks: list[bytes], limits: ReaderLimits, authenticated: bool) -> list[Event]:
    pool = LiteralPool(POOL)
    reader = CommandReader(limits, pool)
    reader.authenticated = authenticated
    events: list[Event] = []
    for chunk in chunks:
        reader.feed(chunk)
        while (event := reader.next_event()) is not None:
            if events and isinstance(events[-1], Fatal):
                raise Finding(f"an event after Fatal: {event!r}")
            events.append(event)
            check(event, limits)
            if isinstance(event, Command):
                pool.release(event.held)  # the command is done
                if event.name == "AUTHENTICATE":
                    reader.mode = SASL
            elif isinstance(event, SaslResponse):
                reader.mode = COMMAND
    reader.close()
    if pool.held:
        raise Finding(f"{pool.held} octets still reserved after close()")
    return events


def check(event: Event, limits: ReaderLimits) -> None:
    strings: list[String] = []
    if isinstance(event, Command):
        if not event.name or event.name != event.name.upper():
            raise Finding(f"a command name that is not one: {event!r}")
        strings = [a for a in event.args if isinstance(a, String)]
    elif isinstance(event, SaslResponse) and event.value is not None:
        strings = [event.value]
    for s in strings:
        if s.literal:
            bound = max(limits.max_script_size, limits.max_string_size)
        else:  # part of the command's text
            bound = limits.max_line_length
        if len(s.data) > bound:
            raise Finding(f"a string of {len(s.data)} octets (bound {bound}): {event!r}"[:500])
        if not s.literal and any(c in s.data for c in b"\r\n\0"):
            raise Finding(f"a quoted string with CR, LF or NUL: {event!r}"[:500])


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    mode, step, body = data[0], max(1, data[1]), data[2:]
    limits = ReaderLimits(
        max_line_length=40 + (mode & 7) * 30,
        max_string_size=16 + ((mode >> 3) & 3) * 32,
        max_script_size=64 + ((mode >> 5) & 3) * 64,
    )
    authenticated = bool(mode & 0x80)
    whole = events_of([body], limits, authenticated)
    cut = events_of([body[i : i + step] for i in range(0, len(body), step)], limits, authenticated)
    if whole != cut:
        for i, (a, b) in enumerate(zip(whole, cut, strict=False)):
            if a != b:
                raise Finding(f"event {i} read in one piece: {a!r}; cut every {step}: {b!r}")
        raise Finding(f"{len(whole)} events in one piece, {len(cut)} cut every {step}")


if __name__ == "__main__":
    main(test_one_input)
