"""A stand-in session for the reader tests: says yes to every literal and every suspension."""

from __future__ import annotations

from collections.abc import Iterable

from mra.imap.commands import SUSPENDING
from mra.imap.events import Command, Event, NeedContinuation
from mra.imap.limits import Limits
from mra.imap.parser import CommandReader


def drive(reader: CommandReader, chunks: Iterable[bytes], *, resume: bool = True) -> list[Event]:
    """Feed the chunks; accept every literal, and resume after suspending commands."""
    out: list[Event] = []

    def handle(events: list[Event]) -> None:
        for event in events:
            out.append(event)
            if isinstance(event, NeedContinuation):
                handle(reader.accept_literal())
            elif resume and isinstance(event, Command) and event.name in SUSPENDING:
                handle(reader.resume())

    for chunk in chunks:
        handle(reader.feed(chunk))
    return out


def parse(data: bytes, limits: Limits | None = None, *, authenticated: bool = False) -> list[Event]:
    """All the events of `data` fed in one piece."""
    reader = CommandReader(limits, suspend_after=SUSPENDING)
    reader.authenticated = authenticated
    return drive(reader, [data])


def command(data: bytes) -> Command:
    """The one Command that `data` holds (literals accepted on the way)."""
    events = [e for e in parse(data) if not isinstance(e, NeedContinuation)]
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, Command), event
    return event
