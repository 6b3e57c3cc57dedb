"""What password checks cost: cost classes, the typical hash, the bound on concurrent checks."""

from __future__ import annotations

import threading
import time

import pytest

from mra.auth import passwords
from mra.auth.hashcost import BoundedVerify, StandIn, cost_class, typical_hash


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("", ""),
        ("{SHA512-CRYPT}$6$saltsalt$" + "h" * 86, "SHA512-CRYPT$6"),
        ("{SHA512-CRYPT}$6$rounds=10000$saltsalt$" + "h" * 86, "SHA512-CRYPT$6$rounds=10000"),
        ("{BLF-CRYPT}$2y$10$" + "s" * 53, "BLF-CRYPT$2y$10"),
        ("{BLF-CRYPT}$2y$12$" + "s" * 53, "BLF-CRYPT$2y$12"),
        (
            "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
            "ARGON2ID$argon2id$v=19$m=65536,t=3,p=1",
        ),
        ("{PBKDF2}$1$saltsalt$5000$abcdef", "PBKDF2$1$5000"),
        ("{CRYPT}$y$j9T$salt$hash", "CRYPT$y$j9T"),
        ("$1$salt$hash", "MD5-CRYPT$1"),  # a bare $1$ is MD5-CRYPT, as in Dovecot
        ("{SCRAM-SHA-256}4096,c2FsdA==,a2V5,a2V5", "SCRAM-SHA-256$4096"),
        ("{SSHA512}c2FsdGVkaGFzaA==", "SSHA512"),
        ("{PLAIN}secret", "PLAIN"),
    ],
)
def test_cost_class(stored: str, expected: str) -> None:
    assert cost_class(stored) == expected


def test_cost_class_ignores_salt_and_digest() -> None:
    a = passwords.hash_password("one", "SHA512-CRYPT")
    b = passwords.hash_password("two", "SHA512-CRYPT")
    assert a != b and cost_class(a) == cost_class(b)
    assert cost_class(passwords.hash_password("x", "SHA512-CRYPT", rounds=6000)) != cost_class(a)
    assert cost_class(passwords.hash_password("x", "BLF-CRYPT", rounds=4)) != cost_class(
        passwords.hash_password("x", "BLF-CRYPT", rounds=5)
    )


def test_typical_hash_is_of_the_most_common_class() -> None:
    sha = [passwords.hash_password(f"p{i}", "SHA512-CRYPT") for i in range(3)]
    others = [passwords.hash_password("q", "BLF-CRYPT", rounds=4), "{PLAIN}x", "", "{PLAIN}y"]
    assert typical_hash([others[0], sha[0], others[1], sha[1], others[2], sha[2], others[3]]) in sha
    assert typical_hash(["", ""]) is None
    assert typical_hash([]) is None


def test_stand_in_is_recomputed_when_the_stamp_changes() -> None:
    stored = ["{PLAIN}a"]
    stamp = [1]
    scans = []

    def passwords_now() -> list[str]:
        scans.append(1)
        return list(stored)

    stand_in = StandIn(passwords_now, lambda: stamp[0])
    assert stand_in() == "{PLAIN}a"
    assert stand_in() == "{PLAIN}a"
    assert len(scans) == 1
    stored[:] = ["{SSHA}eA==", "{SSHA}eQ=="]
    assert stand_in() == "{PLAIN}a"  # same stamp: no scan
    stamp[0] = 2
    assert stand_in() == "{SSHA}eA=="
    assert len(scans) == 2
    assert StandIn(list, lambda: 0, fallback="{PLAIN}z")() == "{PLAIN}z"


def test_bounded_verify_runs_at_most_limit_checks_at_once() -> None:
    inside = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow_verify(stored: str, password: bytes, /, *, user: str | None = None) -> bool:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        release.wait(10)
        with lock:
            inside -= 1
        return stored == password.decode()

    bounded = BoundedVerify(slow_verify, 3)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(bounded("a", b"a"))) for _ in range(10)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while inside < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # room for a fourth to get in, were the bound broken
    assert inside == 3
    release.set()
    for t in threads:
        t.join(10)
    assert results == [True] * 10
    assert most == 3


def test_bounded_verify_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BoundedVerify(passwords.verify, 0)
