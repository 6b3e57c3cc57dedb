"""Failure delays, failure blocks and connection limits, on a clock the tests turn."""

from __future__ import annotations

import pytest

from mra.auth.throttle import (
    AuthThrottle,
    ConnectionCounter,
    ConnectionLimits,
    ThrottlePolicy,
    Verdict,
    address_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(**policy: float) -> tuple[AuthThrottle, Clock]:
    clock = Clock()
    return AuthThrottle(ThrottlePolicy(**policy), clock=clock), clock  # type: ignore[arg-type]


def test_address_key() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:2:3:4:5:6", 128) == "2001:db8:1:2:3:4:5:6/128"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("/run/mra.sock") == "/run/mra.sock"


def test_failure_delay_doubles_up_to_the_cap() -> None:
    auth, _ = throttle()
    delays = [auth.failed("192.0.2.1", "alice") for _ in range(6)]
    assert delays == [2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_failure_delay_is_per_address() -> None:
    auth, _ = throttle()
    auth.failed("192.0.2.1")
    auth.failed("192.0.2.1")
    assert auth.failed("192.0.2.2") == 2.0


def test_failure_delay_starts_over_after_success_or_a_quiet_window() -> None:
    auth, clock = throttle()
    auth.failed("192.0.2.1")
    auth.failed("192.0.2.1")
    auth.succeeded("192.0.2.1", "alice")
    assert auth.failed("192.0.2.1") == 2.0
    assert auth.failed("192.0.2.1") == 4.0
    clock.now += 601
    assert auth.failed("192.0.2.1") == 2.0


def test_failure_delay_configurable() -> None:
    auth, _ = throttle(failure_delay=0.5, max_failure_delay=1.0)
    assert [auth.failed("192.0.2.1") for _ in range(3)] == [0.5, 1.0, 1.0]
    auth, _ = throttle(failure_delay=3.0, max_failure_delay=1.0)
    assert auth.failed("192.0.2.1") == 3.0  # never less than the base


def test_address_blocked_after_too_many_failures() -> None:
    auth, clock = throttle(address_failures=3, window=60, block_time=300)
    for _ in range(2):
        auth.failed("192.0.2.1", "alice")
        assert auth.check("192.0.2.1", "alice").allowed
    auth.failed("192.0.2.1", "bob")
    verdict = auth.check("192.0.2.1")
    assert verdict == Verdict(False, 300.0, "address")
    assert not auth.check("192.0.2.1", "carol").allowed  # whoever it tries next
    assert auth.check("192.0.2.2", "alice").allowed  # elsewhere is fine
    clock.now += 299
    assert auth.check("192.0.2.1").retry_after == pytest.approx(1.0)
    clock.now += 1
    assert auth.check("192.0.2.1").allowed


def test_failures_outside_the_window_do_not_add_up() -> None:
    auth, clock = throttle(address_failures=3, window=60)
    auth.failed("192.0.2.1")
    auth.failed("192.0.2.1")
    clock.now += 61
    auth.failed("192.0.2.1")
    assert auth.check("192.0.2.1").allowed
    clock.now += 1
    auth.failed("192.0.2.1")
    assert auth.check("192.0.2.1").allowed  # two in the window
    auth.failed("192.0.2.1")
    assert not auth.check("192.0.2.1").allowed  # three


def test_a_success_does_not_wipe_the_failure_count() -> None:
    # Else a guesser with an account of its own could reset its record between guesses.
    auth, _ = throttle(address_failures=3)
    auth.failed("192.0.2.1", "victim")
    auth.failed("192.0.2.1", "victim")
    auth.succeeded("192.0.2.1", "own")
    auth.failed("192.0.2.1", "victim")
    assert not auth.check("192.0.2.1").allowed


def test_ipv6_addresses_count_by_their_64() -> None:
    auth, _ = throttle(address_failures=2)
    auth.failed("2001:db8::1")
    auth.failed("2001:db8::ffff:2")
    assert not auth.check("2001:db8::3").allowed
    assert auth.check("2001:db8:0:1::1").allowed


def test_user_blocked_after_too_many_failures_from_anywhere() -> None:
    auth, clock = throttle(user_failures=4, address_failures=100, block_time=100)
    for i in range(4):
        auth.failed(f"192.0.2.{i}", "Alice")
    verdict = auth.check("198.51.100.1", "alice")  # names ignore case, as lookups do
    assert verdict == Verdict(False, 100.0, "user")
    assert auth.check("198.51.100.1", "bob").allowed
    assert auth.check("198.51.100.1").allowed  # no name yet: only the address counts
    clock.now += 100
    assert auth.check("198.51.100.1", "alice").allowed


def test_exempt_addresses_are_never_blocked_and_count_against_nothing() -> None:
    auth, _ = throttle(address_failures=2, user_failures=2)
    for _ in range(5):
        assert auth.failed("192.0.2.1", "alice", exempt=True) == 2.0
    assert auth.check("192.0.2.1", "alice", exempt=True).allowed
    assert auth.check("192.0.2.1", "alice").allowed
    assert auth.tracked() == (0, 0)
    auth.failed("192.0.2.9", "alice")
    auth.failed("192.0.2.9", "alice")
    assert not auth.check("192.0.2.1", "alice").allowed
    assert auth.check("192.0.2.1", "alice", exempt=True).allowed
    auth.succeeded("192.0.2.1", "alice", exempt=True)


def test_records_expire() -> None:
    auth, clock = throttle(window=60, block_time=120, address_failures=100)
    auth.failed("192.0.2.1", "alice")
    assert auth.tracked() == (1, 1)
    clock.now += 119
    auth.check("192.0.2.2")
    assert auth.tracked() == (1, 1)
    clock.now += 2
    auth.check("192.0.2.2")
    assert auth.tracked() == (0, 0)


def test_blocks_outlive_the_window() -> None:
    auth, clock = throttle(window=10, block_time=1000, address_failures=1)
    auth.failed("192.0.2.1")
    clock.now += 500
    auth.check("192.0.2.2")
    assert not auth.check("192.0.2.1").allowed


def test_tracked_keys_are_capped() -> None:
    auth, _ = throttle(max_tracked=100, address_failures=5)
    for i in range(1000):
        auth.failed(f"10.0.{i // 256}.{i % 256}", f"user{i}")
    assert auth.tracked() == (100, 100)
    # The most recent are the ones kept.
    for _ in range(4):
        auth.failed("10.0.3.231")
    assert not auth.check("10.0.3.231").allowed


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(address_failures=0)
    with pytest.raises(ValueError):
        ThrottlePolicy(failure_delay=-1)


# --- connections ----------------------------------------------------------------------------


def test_connection_counter() -> None:
    counter = ConnectionCounter(2)
    first, second = counter.acquire("a"), counter.acquire("a")
    assert first is not None and second is not None
    assert counter.acquire("a") is None
    assert counter.count("a") == 2
    assert counter.acquire("b") is not None
    first.release()
    first.release()  # twice is harmless
    assert first.released
    assert counter.count("a") == 1
    third = counter.acquire("a")
    assert third is not None
    third.release()
    second.release()
    assert counter.count("a") == 0
    assert len(counter) == 1  # only "b" is left: empty keys go


def test_connection_counter_exempt_and_unlimited() -> None:
    counter = ConnectionCounter(1)
    leases = [counter.acquire("a", exempt=True) for _ in range(3)]
    assert all(lease is not None for lease in leases)
    assert counter.count("a") == 3
    assert counter.acquire("a") is None
    unlimited = ConnectionCounter(None)
    assert all(unlimited.acquire("a") is not None for _ in range(1000))
    with pytest.raises(ValueError):
        ConnectionCounter(0)


def test_connection_counter_caps_its_keys() -> None:
    counter = ConnectionCounter(5, max_tracked=2)
    assert counter.acquire("a") is not None
    assert counter.acquire("b") is not None
    assert counter.acquire("c") is None
    assert counter.acquire("a") is not None  # a known key still counts up
    lease = counter.acquire("c", exempt=True)
    assert lease is not None
    lease.release()
    assert len(counter) == 2


def test_connection_limits() -> None:
    limits = ConnectionLimits(per_address=2, per_user=1)
    a = limits.connect("2001:db8::1")
    b = limits.connect("2001:db8::2")
    assert a is not None and b is not None
    assert limits.connect("2001:db8::3") is None  # the same /64
    assert limits.connect("2001:db8::3", exempt=True) is not None
    assert limits.connect("192.0.2.1") is not None
    session = limits.login("Alice@Example.Test")
    assert session is not None
    assert limits.login("alice@example.test") is None
    session.release()
    assert limits.login("alice@example.test") is not None


def test_attempts_without_an_address_count_by_login_only() -> None:
    """saslauthd requests (and Dovecot auth requests without rip=) carry no client address:
    their failures must not add up under one shared key, which would lock everyone out."""
    auth, _ = throttle(address_failures=2, user_failures=3)
    assert auth.failed(None, "alice") == 2.0
    assert auth.failed(None, "alice") == 4.0  # the login's streak sets the delay
    assert auth.failed(None, "bob") == 2.0
    assert auth.check(None, "bob").allowed
    assert auth.check(None, None).allowed  # no shared address record was made
    assert auth.tracked() == (0, 2)
    auth.failed(None, "alice")
    assert auth.check(None, "alice") == Verdict(False, 900.0, "user")
    assert auth.check("192.0.2.1", "alice").allowed is False
    assert auth.failed(None, None) == 2.0
    auth.succeeded(None, "bob")
