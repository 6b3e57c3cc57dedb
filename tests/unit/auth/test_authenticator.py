"""Logins against a real passwd-file, through the Authenticator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailstore.config import AuthConfig, Config, MailConfig
from mailstore.errors import TemporaryFailure
from mailstore.userdb import PasswdFile, SystemUsers
from mra.auth import passwords, saslkeys
from mra.auth.authenticator import Authenticator
from mra.auth.hashcost import BoundedVerify
from mra.auth.sasl import (
    Challenge,
    NeedsLookup,
    NeedsVerification,
    PlaintextNotAllowed,
    Success,
)

SHA512 = passwords.hash_password("alice-pw", "SHA512-CRYPT")
SCRAM = passwords.hash_password("carol-pw", "SCRAM-SHA-256")

CRYPT_ONLY = f"""\
alice@example.test:{SHA512}:5000:5000::/home/vmail/alice::
nopass@example.test::5001:5001::/home/vmail/nopass::
"""
MIXED = (
    CRYPT_ONLY
    + f"""\
bob@example.test:{{PLAIN}}bob-pw:5002:5002::/home/vmail/bob::
carol@example.test:{SCRAM}:5003:5003::/home/vmail/carol::
wendy:{{CRAM-MD5}}{saslkeys.cram_md5_context(b"wendy-pw").hex()}:5004:5004::/home/wendy::
"""
)


class RecordingVerify:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, str | None]] = []

    def __call__(self, stored: str, password: bytes, /, *, user: str | None = None) -> bool:
        self.calls.append((stored, password, user))
        return passwords.verify(stored, password, user=user)


def passwd_file(tmp_path: Path, text: str = MIXED) -> str:
    path = tmp_path / "passwd"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> PasswdFile:
    return PasswdFile.load(passwd_file(tmp_path))


def test_authenticate(db: PasswdFile) -> None:
    auth = Authenticator(db)
    alice = auth.authenticate("alice@example.test", "alice-pw")
    assert alice is not None
    assert alice.name == "alice@example.test"
    assert auth.authenticate("ALICE@Example.Test", "alice-pw") == alice
    assert auth.authenticate("alice@example.test", b"alice-pw") == alice
    assert auth.authenticate("bob@example.test", "bob-pw") is not None
    assert auth.authenticate("carol@example.test", "carol-pw") is not None


def test_wrong_password(db: PasswdFile) -> None:
    auth = Authenticator(db)
    assert auth.authenticate("alice@example.test", "wrong") is None
    assert auth.authenticate("alice@example.test", "") is None
    assert auth.authenticate("", "alice-pw") is None


def test_unknown_user_is_checked_against_a_typical_users_hash(tmp_path: Path) -> None:
    """Migrated SHA512-CRYPT users cost what unknown users cost: the stand-in is the hash of a
    user of the most common scheme and cost in the database, not a fixed ARGON2ID."""
    extra = passwords.hash_password("dora-pw", "SHA512-CRYPT")
    text = MIXED + f"dora@example.test:{extra}:5005:5005::/home/vmail/dora::\n"
    db = PasswdFile.load(passwd_file(tmp_path, text))
    verify = RecordingVerify()
    auth = Authenticator(db, verify=verify)
    assert auth.authenticate("nobody@example.test", "guess") is None
    assert verify.calls == [(SHA512, b"guess", "nobody@example.test")]


def test_unknown_user_never_logs_in_with_the_stand_ins_password(db: PasswdFile) -> None:
    auth = Authenticator(db)
    assert auth.dummy_hash == SHA512  # alice's: the stand-in agrees with "alice-pw"
    assert auth.authenticate("nobody@example.test", "alice-pw") is None
    sasl = auth.sasl_server("PLAIN", secure=True)
    outcome = sasl.step(b"\0nobody@example.test\0alice-pw")
    while isinstance(outcome, NeedsLookup | NeedsVerification):
        outcome = sasl.complete(outcome.run())
    assert not isinstance(outcome, Success)


def test_stand_in_follows_the_database(tmp_path: Path) -> None:
    path = passwd_file(tmp_path, CRYPT_ONLY)
    auth = Authenticator(PasswdFile.load(path))
    assert auth.dummy_hash == SHA512
    pbkdf2 = [passwords.hash_password(f"pw{i}", "PBKDF2") for i in range(2)]
    with open(path, "a", encoding="utf-8") as f:
        for i, stored in enumerate(pbkdf2):
            f.write(f"u{i}@example.test:{stored}:5010:5010::/home/vmail/u{i}::\n")
    assert auth.dummy_hash == pbkdf2[0]


def test_database_without_hashes_falls_back_to_the_default_stand_in(tmp_path: Path) -> None:
    db = PasswdFile.load(passwd_file(tmp_path, "nopass@example.test::5001:5001::/home/n::\n"))
    assert Authenticator(db).dummy_hash == passwords.DUMMY_HASH
    assert Authenticator(SystemUsers()).dummy_hash == passwords.DUMMY_HASH


def test_from_config_bounds_concurrent_checks(tmp_path: Path) -> None:
    config = Config(auth=AuthConfig(passwd_file=passwd_file(tmp_path), max_concurrent_hashes=3))
    auth = Authenticator.from_config(config)
    assert isinstance(auth._verify, BoundedVerify) and auth._verify.limit == 3
    assert auth.authenticate("bob@example.test", "bob-pw") is not None


def test_user_without_a_password_never_logs_in(db: PasswdFile) -> None:
    verify = RecordingVerify()
    auth = Authenticator(db, verify=verify, dummy_hash="{PLAIN}guess")
    assert auth.authenticate("nopass@example.test", "guess") is None  # even if the dummy agrees
    assert verify.calls == [("{PLAIN}guess", b"guess", "nopass@example.test")]


def test_lookup_then_verify_in_two_steps(db: PasswdFile) -> None:
    auth = Authenticator(db)
    user = auth.lookup_for_sasl("alice@example.test")
    assert user is not None
    assert auth.verify_user(user, "alice-pw")
    assert not auth.verify_user(user, "wrong")
    assert not auth.verify_user(None, "alice-pw", "nobody")
    assert auth.lookup_for_sasl("bad\0name") is None


def test_local_domains_find_bare_users(db: PasswdFile) -> None:
    auth = Authenticator(db, local_domains=["example.test"])
    assert auth.lookup_for_sasl("wendy@example.test") is not None
    assert Authenticator(db).lookup_for_sasl("wendy@example.test") is None
    domains: list[str] = []
    live = Authenticator(db, local_domains=lambda: domains)
    assert live.lookup_for_sasl("wendy@example.test") is None
    domains.append("example.test")
    assert live.lookup_for_sasl("wendy@example.test") is not None


def test_unreadable_database_is_a_temporary_failure(tmp_path: Path) -> None:
    path = passwd_file(tmp_path)
    auth = Authenticator(PasswdFile.load(path))
    os.unlink(path)
    with pytest.raises(TemporaryFailure):
        auth.authenticate("alice@example.test", "alice-pw")
    assert auth.mechanisms(True) == ["PLAIN", "LOGIN"]


def test_from_config(tmp_path: Path) -> None:
    config = Config(
        auth=AuthConfig(passwd_file=passwd_file(tmp_path), allow_plaintext=True),
        mail=MailConfig(location="/var/vmail/%d/%n"),
    )
    auth = Authenticator.from_config(config)
    assert auth.allow_plaintext
    user = auth.authenticate("bob@example.test", "bob-pw")
    assert user is not None
    assert user.mail_root == "/var/vmail/example.test/bob"
    assert "PLAIN" in auth.mechanisms(secure=False)


def test_from_config_system_users() -> None:
    auth = Authenticator.from_config(Config())
    assert isinstance(auth.userdb, SystemUsers)
    assert not auth.allow_plaintext


def test_mechanisms_follow_the_stored_passwords(tmp_path: Path) -> None:
    crypt_only = Authenticator(PasswdFile.load(passwd_file(tmp_path, CRYPT_ONLY)))
    assert crypt_only.mechanisms(secure=True) == ["PLAIN", "LOGIN"]
    assert crypt_only.mechanisms(secure=False) == []
    (tmp_path / "mixed").mkdir()
    mixed = Authenticator(PasswdFile.load(passwd_file(tmp_path / "mixed")))
    assert mixed.mechanisms(secure=True) == ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
    assert mixed.mechanisms(secure=False) == ["SCRAM-SHA-256", "CRAM-MD5"]


def test_mechanisms_are_rescanned_after_a_while(tmp_path: Path) -> None:
    path = passwd_file(tmp_path, CRYPT_ONLY)
    now = [0.0]
    auth = Authenticator(PasswdFile.load(path), clock=lambda: now[0])
    assert auth.mechanisms(True) == ["PLAIN", "LOGIN"]
    with open(path, "a", encoding="utf-8") as f:
        f.write("bob@example.test:{PLAIN}bob-pw:5002:5002::/home/vmail/bob::\n")
    assert auth.mechanisms(True) == ["PLAIN", "LOGIN"]
    now[0] += 61
    assert auth.mechanisms(True) == ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]


def test_system_users_get_no_challenge_response() -> None:
    auth = Authenticator(SystemUsers())
    assert auth.mechanisms(secure=True) == ["PLAIN", "LOGIN"]


def test_sasl_plain(db: PasswdFile) -> None:
    auth = Authenticator(db)
    with pytest.raises(PlaintextNotAllowed):
        auth.sasl_server("PLAIN", secure=False)
    sasl = auth.sasl_server("PLAIN", secure=True)
    outcome = sasl.step(b"\0alice@example.test\0alice-pw")
    while isinstance(outcome, NeedsLookup | NeedsVerification):
        outcome = sasl.complete(outcome.run())
    assert isinstance(outcome, Success)
    assert outcome.account == db.lookup("alice@example.test")


def test_sasl_cram_md5_for_a_bare_user_in_a_local_domain(db: PasswdFile) -> None:
    auth = Authenticator(db, local_domains={"example.test"}, hostname="mail.example.test")
    sasl = auth.sasl_server("CRAM-MD5", secure=False)
    challenge = sasl.step(None)
    assert isinstance(challenge, Challenge)
    assert challenge.data.endswith(b"@mail.example.test>")
    context = saslkeys.cram_md5_context(b"wendy-pw")
    digest = saslkeys.cram_md5_digest(context, challenge.data).hex()
    outcome = sasl.step(b"wendy@example.test " + digest.encode())
    while isinstance(outcome, NeedsLookup | NeedsVerification):
        outcome = sasl.complete(outcome.run())
    assert isinstance(outcome, Success)
    assert outcome.account.name == "wendy"
    assert outcome.authcid == "wendy@example.test"
