"""Slowing down password guessing and capping connections, without I/O: the clock is passed in.

* `AuthThrottle`: after a failed login, a delay before the answer (2 s, as Dovecot's
  auth_failure_delay, doubling with each further failure from the address, up to a cap); and
  after too many failures within a window from one address, or for one login name, further
  attempts are refused for a while, before any password is checked.
* `ConnectionLimits`: how many connections one address, and one user once logged in, may have
  open at once; `acquire` gives a `Lease` to release when the connection closes.

Addresses are counted by `address_key`: an IPv6 address by its /64, as one customer usually
has the whole /64. An address the access map exempts (`Connect:1.2.3.4 OK`) passes `exempt=True`
and is never refused; its failures count against nothing, though it still gets the base delay.

Memory is bounded: records expire once nothing has happened to them for the window (or the
block), and each table keeps at most `max_tracked` keys, dropping the least recently active
first. A flood from more addresses than that can push old records out, blocks included: size
it above the number of addresses a busy hour brings. Not thread-safe: use one instance from
one thread (the reactor's).

A request that comes with no client address (a saslauthd request carries none; a Dovecot auth
request without `rip=`) passes `address=None`: only its login name is counted, and its delay
follows the login's recent failures instead of an address's. Counting such requests under one
shared key would let ten failures anywhere lock every user of that MTA out.

A per-user block also locks the real user out while it lasts, whoever caused it: that is why
its threshold is higher than the per-address one, and why a success does not lift it.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

__all__ = [
    "AuthThrottle",
    "ConnectionCounter",
    "ConnectionLimits",
    "Lease",
    "ThrottlePolicy",
    "Verdict",
    "address_key",
]

Clock = Callable[[], float]


@functools.lru_cache(maxsize=4096)
def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """The key an address is counted under: an IPv4 address as it is, an IPv4-mapped IPv6
    address as its IPv4, any other IPv6 address as its /`ipv6_prefix` network. A string that is
    not an address (a UNIX socket path) is its own key. Cached: an MTA's auth socket asks about
    the same few addresses thousands of times a second."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone (%eth0)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers of an `AuthThrottle`; times in seconds."""

    failure_delay: float = 2.0  # before answering a failure (Dovecot's auth_failure_delay)
    max_failure_delay: float = 15.0  # the delay doubles per recent failure up to this
    address_failures: int = 10  # failures from one address within `window` that block it
    user_failures: int = 20  # failures for one login name within `window` that block it
    window: float = 600.0
    block_time: float = 900.0  # how long a block lasts
    max_tracked: int = 10_000  # addresses, and login names, kept track of (each)
    ipv6_prefix: int = 64  # IPv6 addresses are counted by their network of this size

    def __post_init__(self) -> None:
        if self.address_failures < 1 or self.user_failures < 1 or self.max_tracked < 1:
            raise ValueError("failure thresholds and max_tracked must be at least 1")
        if min(self.failure_delay, self.max_failure_delay, self.window, self.block_time) < 0:
            raise ValueError("delays and times cannot be negative")


class Verdict(NamedTuple):
    """May this attempt go ahead? If not, `retry_after` seconds and what is blocked."""

    allowed: bool
    retry_after: float = 0.0
    blocked: str | None = None  # "address" or "user"


_ALLOWED: Final = Verdict(True)


class _Record:
    __slots__ = ("blocked_until", "failures", "last", "streak")

    def __init__(self, now: float) -> None:
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0
        self.streak = 0  # failures since the last success or quiet window (for the delay)
        self.last = now


class _Table:
    """Records by key, least recently active first, expiring and capped."""

    def __init__(self, threshold: int, policy: ThrottlePolicy) -> None:
        self.threshold = threshold
        self.policy = policy
        self.records: OrderedDict[str, _Record] = OrderedDict()

    def expire(self, now: float) -> None:
        horizon = max(self.policy.window, self.policy.block_time)
        while self.records:
            key, record = next(iter(self.records.items()))
            if record.last + horizon > now or record.blocked_until > now:
                break
            del self.records[key]

    def get(self, key: str) -> _Record | None:
        return self.records.get(key)

    def touch(self, key: str, now: float) -> _Record:
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = _Record(now)
            while len(self.records) > self.policy.max_tracked:
                self.records.popitem(last=False)
        else:
            self.records.move_to_end(key)
            record.last = now
        return record

    def fail(self, key: str, now: float) -> _Record:
        record = self.touch(key, now)
        failures = record.failures
        while failures and failures[0] <= now - self.policy.window:
            failures.popleft()
        if not failures:
            record.streak = 0  # a quiet window starts the delay over
        failures.append(now)
        record.streak += 1
        if len(failures) >= self.threshold:
            record.blocked_until = now + self.policy.block_time
            failures.clear()
        return record


class AuthThrottle:
    """Failure delays and failure blocks, by address and by login name.

    For each attempt: `check()` first (refuse at once if not allowed), then after the password
    check `failed()` (wait the seconds it returns before answering) or `succeeded()`.
    """

    def __init__(self, policy: ThrottlePolicy | None = None, *, clock: Clock = time.monotonic):
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._addresses = _Table(self.policy.address_failures, self.policy)
        self._users = _Table(self.policy.user_failures, self.policy)

    def _keys(self, address: str | None, login: str | None) -> tuple[str | None, str | None]:
        user = login.casefold() if login else None  # lookups ignore case too
        if address is None:
            return None, user
        return address_key(address, self.policy.ipv6_prefix), user

    def _now(self) -> float:
        now = self._clock()
        self._addresses.expire(now)
        self._users.expire(now)
        return now

    def check(
        self, address: str | None, login: str | None = None, *, exempt: bool = False
    ) -> Verdict:
        """May an attempt from `address` (None: unknown) for `login` (if known yet) go ahead?"""
        if exempt:
            return _ALLOWED
        now = self._now()
        address_k, user_k = self._keys(address, login)
        record = self._addresses.get(address_k) if address_k is not None else None
        if record is not None and record.blocked_until > now:
            return Verdict(False, record.blocked_until - now, "address")
        record = self._users.get(user_k) if user_k is not None else None
        if record is not None and record.blocked_until > now:
            return Verdict(False, record.blocked_until - now, "user")
        return _ALLOWED

    def failed(
        self, address: str | None, login: str | None = None, *, exempt: bool = False
    ) -> float:
        """Count a failed attempt; returns the seconds to wait before answering it."""
        policy = self.policy
        if exempt:
            return policy.failure_delay
        now = self._now()
        address_k, user_k = self._keys(address, login)
        record = self._addresses.fail(address_k, now) if address_k is not None else None
        if user_k is not None:
            user_record = self._users.fail(user_k, now)
            record = record if record is not None else user_record
        if record is None:  # neither an address nor a name: nothing to count it against
            return policy.failure_delay
        delay = policy.failure_delay * 2.0 ** min(record.streak - 1, 30)
        return min(delay, max(policy.max_failure_delay, policy.failure_delay))

    def succeeded(
        self, address: str | None, login: str | None = None, *, exempt: bool = False
    ) -> None:
        """A login worked: the address's delay starts over.

        Its failure count in the window stays, as does a user's: otherwise a guesser with one
        account of its own could wipe its record between guesses at others.
        """
        if exempt:
            return
        now = self._now()
        address_k, _ = self._keys(address, login)
        record = self._addresses.get(address_k) if address_k is not None else None
        if record is not None:
            record.streak = 0
            record.last = now

    def tracked(self) -> tuple[int, int]:
        """(addresses, login names) currently tracked: for tests and statistics."""
        return len(self._addresses.records), len(self._users.records)


# --- connection limits ----------------------------------------------------------------------


class Lease:
    """One counted connection; `release()` it (more than once is harmless) when it closes."""

    __slots__ = ("_counter", "_key")

    def __init__(self, counter: ConnectionCounter | None, key: str) -> None:
        self._counter = counter
        self._key = key

    def release(self) -> None:
        counter, self._counter = self._counter, None
        if counter is not None:
            counter._release(self._key)

    @property
    def released(self) -> bool:
        return self._counter is None


class ConnectionCounter:
    """Open connections by key, with a limit per key (None = count, never refuse).

    Only keys with open connections are kept, so the table is as large as the number of
    connections; past `max_tracked` keys a new one is refused (exempt ones get an uncounted
    lease) rather than letting the table grow without bound.
    """

    def __init__(self, limit: int | None, *, max_tracked: int = 100_000) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a connection limit must be at least 1 (None for no limit)")
        self.limit = limit
        self.max_tracked = max_tracked
        self._counts: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._counts.get(key, 0)

    def acquire(self, key: str, *, exempt: bool = False) -> Lease | None:
        """A lease on one more connection for `key`, or None if that would be too many."""
        # Interned: the lease keeps its key, one string for all the leases of one account or
        # address instead of one each (issue #16: 10,000 idling sessions of a few accounts).
        key = sys.intern(key)
        current = self._counts.get(key, 0)
        if current == 0 and len(self._counts) >= self.max_tracked:
            return Lease(None, key) if exempt else None
        if not exempt and self.limit is not None and current >= self.limit:
            return None
        self._counts[key] = current + 1
        return Lease(self, key)

    def _release(self, key: str) -> None:
        current = self._counts.get(key, 0)
        if current <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = current - 1

    def __len__(self) -> int:
        return len(self._counts)


class _Leases(Lease):
    """The leases one session holds (its account's, its account-and-address's), released
    together."""

    __slots__ = ("_leases",)

    def __init__(self, *leases: Lease) -> None:
        super().__init__(None, "")
        self._leases = leases

    def release(self) -> None:
        for lease in self._leases:
            lease.release()

    @property
    def released(self) -> bool:
        return all(lease.released for lease in self._leases)


class ConnectionLimits:
    """Connections per address (at connect), per user and per user and address (after login).

    Per address, so that one host cannot take every slot; per user, so that one account cannot;
    per user and address (Dovecot's `mail_max_userip_connections`, 10 there), so that one
    runaway client of an account cannot take that account's slots from its other devices,
    while an office behind one NAT address, where every person has an account of their own,
    needs only the per-address limit to be large (README: Access rules and limits).
    """

    def __init__(
        self,
        per_address: int | None = 1000,
        per_user: int | None = 50,
        per_user_address: int | None = None,
        *,
        ipv6_prefix: int = 64,
        max_tracked: int = 100_000,
    ) -> None:
        self.ipv6_prefix = ipv6_prefix
        self.addresses = ConnectionCounter(per_address, max_tracked=max_tracked)
        self.users = ConnectionCounter(per_user, max_tracked=max_tracked)
        self.user_addresses = ConnectionCounter(per_user_address, max_tracked=max_tracked)

    def connect(self, address: str, *, exempt: bool = False) -> Lease | None:
        """A lease for a new connection from `address`, or None: refuse it."""
        return self.addresses.acquire(address_key(address, self.ipv6_prefix), exempt=exempt)

    def login(self, user: str, *, address: str | None = None, exempt: bool = False) -> Lease | None:
        """A lease for a session of `user` (the account name) from `address` (None: not
        counted per address), or None: refuse the login."""
        name = user.casefold()
        lease = self.users.acquire(name, exempt=exempt)
        if lease is None or address is None:
            return lease
        # NUL cannot occur in an account name or an address: the pair is one key.
        key = f"{name}\0{address_key(address, self.ipv6_prefix)}"
        pair = self.user_addresses.acquire(key, exempt=exempt)
        if pair is None:
            lease.release()
            return None
        return _Leases(lease, pair)
