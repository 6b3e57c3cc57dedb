"""The connection timers of mra/net/adapter.py: one delivery wakes every IDLE session of a
mailbox, each re-arming its poll timer sooner; that must not cost a search of every timer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import reactor as _reactor

from mra.net.adapter import SessionProtocol
from mra.session import Send

twisted_reactor: Any = _reactor


def _holder() -> Any:
    return SimpleNamespace(_timers={})


def test_attack_delivery_to_many_idlers_does_not_search_the_timer_heap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twisted's DelayedCall.reset() to an earlier time looks the call up in the reactor's
    whole heap (`_moveCallLaterSooner`: list.index, O(n)): 10,000 IDLE sessions woken by one
    delivery were 10,000 searches of 10,000 timers (58 s measured by bench/idle.py)."""

    def searched(call: object) -> None:
        raise AssertionError("a timer was moved sooner by searching the heap")

    monkeypatch.setattr(twisted_reactor, "_moveCallLaterSooner", searched, raising=False)
    holders = [_holder() for _ in range(50)]
    fired: list[int] = []
    try:
        for h in holders:
            SessionProtocol._arm(h, "poll", 30.0, lambda: fired.append(-1))
        for h in holders:
            SessionProtocol._arm(h, "poll", 0.05, lambda: fired.append(1))
        for h in holders:
            timer = h._timers["poll"]
            assert timer.active()
            assert timer.getTime() <= twisted_reactor.seconds() + 0.05
    finally:
        for h in holders:
            for timer in h._timers.values():
                if timer.active():
                    timer.cancel()
    assert fired == []


def test_rearming_later_keeps_one_live_timer() -> None:
    """Pushing a timer later (every command pushes the idle timeout) keeps one DelayedCall,
    moved; arming sooner replaces it; either way exactly one is live and it has the newest
    deadline and function."""
    h = _holder()
    calls: list[str] = []
    try:
        SessionProtocol._arm(h, "idle", 10.0, lambda: calls.append("first"))
        first = h._timers["idle"]
        SessionProtocol._arm(h, "idle", 20.0, lambda: calls.append("later"))
        assert h._timers["idle"] is first and first.active()
        assert first.getTime() >= twisted_reactor.seconds() + 19.0
        SessionProtocol._arm(h, "idle", 1.0, lambda: calls.append("sooner"))
        sooner = h._timers["idle"]
        assert sooner is not first and not first.active() and sooner.active()
        assert sooner.getTime() <= twisted_reactor.seconds() + 1.0
        sooner.func()
        assert calls == ["sooner"]
    finally:
        for timer in h._timers.values():
            if timer.active():
                timer.cancel()


class _LoginSession:
    """The least of a session the adapter drives: the first line logs in."""

    def __init__(self) -> None:
        self.timeout = 60.0
        self.authenticated = False

    def greeting(self) -> list[Any]:
        return [Send(b"* OK\r\n")]

    def data_received(self, data: bytes) -> list[Any]:
        if data:
            self.authenticated = True
            self.timeout = 1800.0
        return [Send(b"+ OK\r\n")] if data else []

    def connection_lost(self) -> None:
        pass


def test_attack_logins_leave_cancelled_timers_in_the_reactor_heap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every connection armed a login timer and cancelled it at login. Twisted keeps a
    cancelled timer in its heap until cancelled ones are half of it, which with thousands of
    logged-in idle connections (each with live timers) is never: 10,000 dead timers of about
    300 octets each. The idle and login deadlines now share one timer, moved later only."""
    from twisted.internet import task
    from twisted.internet.testing import StringTransport

    from mra.net import adapter

    clock = task.Clock()
    monkeypatch.setattr(adapter, "reactor", clock)
    made: list[Any] = []
    call_later = clock.callLater

    def recording(*args: Any, **kwargs: Any) -> Any:
        call = call_later(*args, **kwargs)
        made.append(call)
        return call

    monkeypatch.setattr(clock, "callLater", recording)
    proto = adapter.SessionProtocol(lambda _proto: _LoginSession())  # type: ignore[arg-type,return-value]
    transport = StringTransport()
    proto.makeConnection(transport)
    clock.advance(1)
    proto.dataReceived(b"a LOGIN\r\n")
    clock.advance(1)
    proto.dataReceived(b"b NOOP\r\n")
    assert transport.value() == b"* OK\r\n+ OK\r\n+ OK\r\n"
    assert [c for c in made if c.cancelled] == []
    assert len([c for c in made if c.active()]) == 1
    proto.connectionLost()
