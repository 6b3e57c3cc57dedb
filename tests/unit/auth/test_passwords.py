"""Password schemes, against hashes made by Dovecot itself.

Every vector below was made once with Dovecot 2.3.19's `doveadm pw -s SCHEME -p PASSWORD` (and
checked with `doveadm pw -t`), so these tests need no Dovecot. The ARGON2 ones need passlib's
argon2 backend (argon2-cffi) and are skipped without it; bcrypt ones need the bcrypt package or
a C library whose crypt(3) does bcrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mra.auth import cryptverify, passwords
from mra.auth.passwords import (
    DEFAULT_SCHEME,
    DUMMY_HASH,
    UnsupportedScheme,
    cram_md5_context_of,
    has_backend,
    hash_password,
    plaintext_of,
    scheme_of,
    scram_credentials_of,
    split_scheme,
    verify,
)
from mra.auth.saslkeys import cram_md5_context, cram_md5_digest, derive_scram

# `doveadm pw -s SCHEME -p secret`
SECRET = {
    "PLAIN": "{PLAIN}secret",
    "CLEAR": "{CLEAR}secret",
    "CLEARTEXT": "{CLEARTEXT}secret",
    "PLAIN-TRUNC": "{PLAIN-TRUNC}6-secret",  # doveadm writes no length prefix; Dovecot needs one
    "CRYPT": "{CRYPT}$2y$05$Ld7wlBA062xaX4yByGloDORUTHB.7EzmY0e0ewb53EXEPftbvlOa.",
    "DES-CRYPT": "{DES-CRYPT}Sr4.uAtVOWmko",
    "MD5": "{MD5}$1$THG6eQhP$prf2VKpmz8WY336thWjJx1",
    "MD5-CRYPT": "{MD5-CRYPT}$1$1I6QaVJd$vHzNlBYloCQ2JBK4nwlG7/",
    "SHA256-CRYPT": "{SHA256-CRYPT}$5$dgfvF.KC41nrygZ3$FhDlC/mTRgTIc4wHfPaQIa4j6TpwiEiPUxbikJh9GvB",
    "SHA512-CRYPT": "{SHA512-CRYPT}$6$MGNe3KlmIkgZKeHk$WIGDyz91LwAmsMC6.U/c7TgPKHICJwKvtGdAWSUnym"
    "Ku2HQj38kKBUjTAA/GEzAAyLS1AHpK.qof9qk7xxCjY1",
    "BLF-CRYPT": "{BLF-CRYPT}$2y$05$RDuEyGzxuMYkx.p638EBBeW4TSftcVICm1vBoSCva84pBS.5KXK4e",
    "ARGON2I": "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$v9fmmYBiaLXzJQK2EahMMw$uflhgNSRxRJEdGEDlN"
    "iyfSmM8+m9Dg441A9j4DnQvac",
    "ARGON2ID": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$dlhOj9qcVYoFYRfhtdhOhA$EY0YPg5/Vw2LiIXy"
    "TeEsyDjGTP3l0RSBH0D2iHS4cBE",
    "PBKDF2": "{PBKDF2}$1$2h14FSaxba/Y6p7e$5000$0d8d4056d831aa441cb08aa3f40178eb5608acee",
    "SSHA": "{SSHA}gSnc8wscJe4QKbu1ofsHw2NP2/Mm4EIe",
    "SSHA256": "{SSHA256}CedFtcCq3j80rCq4pU1AiGybicNYx4LqUIkvc6Yp09vi3zvF",
    "SSHA512": "{SSHA512}Nuj4LOdvqRkg8FaYWo8GjLPaP39E5AOXnItJrB9t013IMXvDp3Vba/S54rXIPSXaMtd+HK/"
    "jcnOP8BB97yxJTXWhVkI=",
    "SHA": "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
    "SHA1": "{SHA1}5en6G6MezRroT3XKqkdPOmY/BfQ=",
    "SHA256": "{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
    "SHA512": "{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDu"
    "fKRpayrW/isg==",
    "SMD5": "{SMD5}7fexHIW75vozd3UfUtD3DUOgwJE=",
    "LDAP-MD5": "{LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
    "PLAIN-MD5": "{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
    "PLAIN-MD4": "{PLAIN-MD4}67d3dafef63ff00603aeef3769cfbf0d",
    "CRAM-MD5": "{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
    "HMAC-MD5": "{HMAC-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
    "SCRAM-SHA-1": "{SCRAM-SHA-1}4096,+HNL8wBlZpQdXW3pMxdwxg==,sJ7CaknX/6i35RjCiiQ4/Fm1W0Y=,"
    "AXkWqDKPHAylP6MfimlL7C0ihRM=",
    "SCRAM-SHA-256": "{SCRAM-SHA-256}4096,r/vWzNpETWy9tNKQCgQ76w==,r2MtXLNPKmQ6x6RvjVdMsTcesk0/y"
    "UwCZ7hs1OJVtQc=,9tr4pLzTq/l638Q4vLAOpedeqo+TfmMTiPhZmexJqZ8=",
}

# More shapes Dovecot accepts for the same password (each checked with `doveadm pw -t`).
SECRET_VARIANTS = [
    "{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
    "{SSHA.HEX}0c56cddb12f9b01e897a78ab2d99eacc50a6eca85910ac75",
    "{SSHA.b64}gSnc8wscJe4QKbu1ofsHw2NP2/Mm4EIe",
    "{PLAIN.B64}c2VjcmV0",
    "{CRAM-MD5.B64}zTun3qrW5cojRIukLjeXR6ng9/H7wAyKgbuqw5VzG1Y=",
    "{SHA}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4",  # hex, guessed from the length
    "{sha}5en6G6MezRroT3XKqkdPOmY/BfQ=",  # scheme names ignore case
    "{MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",  # {MD5} that is not MD5-crypt: plain MD5, hex
    "{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",  # ... or base64
    "{LDAP-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69",
    "{CRYPT}Sr4.uAtVOWmko",  # CRYPT picks the algorithm from the hash
    "{CRYPT}$6$MGNe3KlmIkgZKeHk$WIGDyz91LwAmsMC6.U/c7TgPKHICJwKvtGdAWSUnymKu2HQj38kKBUjTAA/GEzAAy"
    "LS1AHpK.qof9qk7xxCjY1",
    "{CRYPT}$2b$10$hdvcAx3qg8VPvd98zRy9d.wWE7.anMSezX4Cn14zyr4mM8gyZFe..",
    "{SHA512-CRYPT}$6$rounds=10000$5m7Vb44qiBXqbn/V$inHdzrOYJub5iyfdtvICjpfUcUjzdWOKVio8v6ShV5ZT"
    "O1aPpFps6TPHC/92/Bgv8AGoptfA7aFzwX2sxh0hn/",
    "{BLF-CRYPT}$2y$04$GVffD/a/U/lSz5IWR1bVW.sfrIxaMphy./.HEBx55kqRn3/MP3ibG",
    "{PBKDF2}$1$TZ8uC/RqS2arr5Ej$1000$4516447dbd7581fcf1c2fc376baa5b61cfc03632",
    "$1$THG6eQhP$prf2VKpmz8WY336thWjJx1",  # no prefix: MD5-CRYPT
    "Sr4.uAtVOWmko",  # no prefix: the passwd-file default, CRYPT
]

# `doveadm pw -s SCHEME -p pässwörd`: non-ASCII passwords are hashed as UTF-8.
UNICODE_PASSWORD = "pässwörd"
UNICODE = [
    "{SHA512-CRYPT}$6$6xZvzh6QwMJ8NXmL$cbgMga4Tt.pW9P9qqSnpD0tthpnM7lIKqyTRBwBqDonbFzkFZ/TcjIDUJ9"
    "NqmHtb7/GeLI.G6GAJkUhDIjwBv/",
    "{SCRAM-SHA-256}4096,BbF0F4WlMNue970iXYlBtQ==,dIK05bqjsWV2sGx/l5FLqUXBPukjLNzsd/b/DAlMuF8=,"
    "mjL0vyzWHs0PV4WSfoSaU1ymjBdqQcSVymrWQMmgeuI=",
    "{SCRAM-SHA-1}4096,I2iIfJaG44PpOSvjLYzyrw==,ag8fDUgxDPXoqST6D89S37HzKzE=,lHKfSvbZpN4pYQWIFrhr"
    "KfAh3eU=",
    "{CRAM-MD5}4a60bd37924fc5d45b4c92ce695bac86cb234bc3028aab2a71a225cb0dedfbb9",
    "{PBKDF2}$1$7AQwXsS4MiaS/mcH$5000$91c75170498af3d9653459fb7687ee0c011442ac",
    "{SSHA256}AqIK2AeELDtwGzf1sAIyALMt32prThSf2oV/zjH/jr76tqDS",
    "{PLAIN-MD5}12841e4ba5e37d2fbfc78458c6714ade",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$VdbxOVDVXGaSR4Dpea1qTg$S9FOFr+i7AdxjAFyi+Bpt72l/PaQ"
    "70xQOu32FkkiYSg",
    "{BLF-CRYPT}$2y$05$vlyji1S7Bc10lZ6CCOXQ/uTI4Rh/U10kCX5gkbiyYVgHbcNsGWLVi",
]

# Longer than the 64-byte HMAC block (CRAM-MD5 hashes the key first) and than bcrypt's 72.
LONG_PASSWORD = "a-very-long-password-that-is-longer-than-the-sixty-four-byte-hmac-block-size!!"
LONG = [
    "{CRAM-MD5}98b5b620bf041cb157274c7856014f494e591798d2b9beee056dad0e7ce7961a",
    "{SHA512-CRYPT}$6$Ep.JdMgOQOm5AcoY$hzrxA0hZjLzVyAZWyhUDAGz2aK/uiwH387g/Sf2G0g/TQF/eB5jwmtqgWyV"
    "CfzkcUBRy4HDep4C1os8wJNUj0/",
    "{SCRAM-SHA-256}4096,QTM3NNsKutZfZxGq9Z1f0A==,Zw1VSDcsl93bgjehOrLdFRbrM5xBfkjlmbWAtRSulHQ=,p0gs"
    "KAhusABrrRcWcABdocpLYLm8Vrt6xzbG0PkXk3k=",
    "{PBKDF2}$1$JJ1KdHi3o/HFD22o$5000$9b1ae37b32e47fcfe32f7d24aa533f13a98d3dd0",
    "{BLF-CRYPT}$2y$05$iIzE91/Xel/TGqZC5hwK8OkGR7fExH/gI5p6hwrpQ3KYFzfJah8Ca",
]

# `doveadm pw -s DIGEST-MD5 -u alice@example.test -p secret`: MD5("alice:example.test:secret").
DIGEST_MD5 = "{DIGEST-MD5}4842575394a190ef4c973253ba19099c"

# `doveadm pw -s CRAM-MD5 -p tanstaaftanstaaf`: RFC 2195's example password.
CRAM_MD5_TANSTAAF = "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b"

# A yescrypt hash (Debian's /etc/shadow default) of "secret", from the C library's crypt(3).
YESCRYPT = "{CRYPT}$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0"

ARGON2 = pytest.mark.skipif(not has_backend("ARGON2ID"), reason="needs argon2-cffi")
BCRYPT = pytest.mark.skipif(not has_backend("BLF-CRYPT"), reason="needs bcrypt or libc bcrypt")


def _needs(stored: str) -> list[pytest.MarkDecorator]:
    if "$argon2" in stored:
        return [ARGON2]
    if "$2y$" in stored or "$2b$" in stored:
        return [BCRYPT]
    return []


def _cases(hashes: list[str]) -> list[object]:
    return [pytest.param(h, marks=_needs(h), id=h[:24]) for h in hashes]


@pytest.mark.parametrize("stored", _cases(list(SECRET.values())))
def test_every_dovecot_scheme_verifies(stored: str) -> None:
    assert verify(stored, "secret")
    assert not verify(stored, "Secret")
    assert not verify(stored, "secre")
    assert not verify(stored, "")


def test_the_vectors_cover_every_scheme() -> None:
    assert set(SECRET) == set(passwords.SCHEMES) - {"DIGEST-MD5"}


@pytest.mark.parametrize("stored", _cases(SECRET_VARIANTS))
def test_encodings_and_prefixes_dovecot_accepts(stored: str) -> None:
    assert verify(stored, "secret")
    assert not verify(stored, "wrong")


@pytest.mark.parametrize("stored", _cases(UNICODE))
def test_non_ascii_passwords_are_utf8(stored: str) -> None:
    assert verify(stored, UNICODE_PASSWORD)
    assert verify(stored, UNICODE_PASSWORD.encode("utf-8"))
    assert not verify(stored, UNICODE_PASSWORD.encode("latin-1"))
    assert not verify(stored, "passwörd")


@pytest.mark.parametrize("stored", _cases(LONG))
def test_long_passwords(stored: str) -> None:
    assert verify(stored, LONG_PASSWORD)
    assert not verify(stored, "A" + LONG_PASSWORD[1:])
    assert not verify(stored, LONG_PASSWORD[:60])


@BCRYPT
def test_bcrypt_uses_the_first_72_bytes_as_dovecot_does() -> None:
    stored = LONG[-1]
    assert verify(stored, LONG_PASSWORD[:72] + "anything else")
    assert not verify(stored, LONG_PASSWORD[:71])


def test_digest_md5_needs_the_user_name(caplog: pytest.LogCaptureFixture) -> None:
    assert verify(DIGEST_MD5, "secret", user="alice@example.test")
    assert not verify(DIGEST_MD5, "secret", user="bob@example.test")
    assert not verify(DIGEST_MD5, "wrong", user="alice@example.test")
    with caplog.at_level(logging.WARNING):
        assert not verify(DIGEST_MD5, "secret")
    assert "DIGEST-MD5" in caplog.text


def test_plain_trunc() -> None:
    # Dovecot's plain_trunc_verify: a stored password cut to its length prefix accepts any
    # password beginning with it; one not cut must match exactly.
    assert verify("{PLAIN-TRUNC}4-secr", "secret")
    assert verify("{PLAIN-TRUNC}4-secr", "secr")
    assert not verify("{PLAIN-TRUNC}4-secr", "sec")
    assert not verify("{PLAIN-TRUNC}4-secr", "sexret")
    assert verify("{PLAIN-TRUNC}8-secret", "secret")
    assert not verify("{PLAIN-TRUNC}8-secret", "secret!!")


def test_yescrypt_through_the_c_library() -> None:
    if cryptverify.libc_crypt is None or cryptverify.libc(b"x", YESCRYPT[7:]) is None:
        pytest.skip("no crypt(3) with yescrypt here")
    assert verify(YESCRYPT, "secret")
    assert not verify(YESCRYPT, "Secret")


def test_argon2_without_its_backend_fails_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # argon2-cffi is a dependency; an installation without it must still fail clearly.
    monkeypatch.setattr(cryptverify, "HAVE_ARGON2", False)
    with caplog.at_level(logging.WARNING):
        assert not verify(SECRET["ARGON2ID"], "secret")
    assert "argon2-cffi" in caplog.text
    with pytest.raises(UnsupportedScheme):
        hash_password("secret", "ARGON2ID")


# --- what must fail, quietly or with a warning ----------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        "{NOSUCH}secret",
        "{SHA.xyz}5en6G6MezRroT3XKqkdPOmY/BfQ=",  # unknown encoding: unknown scheme (Dovecot)
        "{OTP}md5 99 seed 0123456789abcdef",  # known to Dovecot, not supported here
    ],
)
def test_unknown_scheme_is_false_with_a_warning(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mra.auth.passwords"):
        assert not verify(stored, "secret")
    assert "unknown password scheme" in caplog.text
    assert "secret" not in caplog.text


def test_a_password_in_braces_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert not verify("{hunter2 is my password}", "hunter2")
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize(
    "stored",
    [
        "{SHA}not base64!",
        "{SHA}c2VjcmV0",  # valid base64 of the wrong length
        "{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",  # no room for a salt
        "{SHA256.HEX}zz",
        "{PBKDF2}$1$salt$many$0d8d4056d831aa441cb08aa3f40178eb5608acee",
        "{PBKDF2}2h14FSaxba/Y6p7e$5000$0d8d4056d831aa441cb08aa3f40178eb5608acee",
        "{SCRAM-SHA-256}4096,c2FsdA==,short,short",
        "{SCRAM-SHA-256}1000,r/vWzNpETWy9tNKQCgQ76w==,r2MtXLNPKmQ6x6RvjVdMsTcesk0/yUwCZ7hs1OJVtQc=,"
        "9tr4pLzTq/l638Q4vLAOpedeqo+TfmMTiPhZmexJqZ8=",  # Dovecot refuses fewer than 4096
        "{BLF-CRYPT}$2y$05$short",
        "{ARGON2ID}not-argon2",
        "{CRAM-MD5}0123",
        "{PLAIN-TRUNC}secret",  # no length prefix
        "{CRYPT}$unknown$format",
    ],
)
def test_malformed_hashes_are_false_with_a_warning(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mra.auth.passwords"):
        assert not verify(stored, "secret")
    assert "cannot verify" in caplog.text
    assert stored.partition("}")[2] not in caplog.text  # never the hash


def test_no_password_means_nobody_logs_in(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert not verify("", "")
        assert not verify("", "anything")
    assert caplog.text == ""


def test_an_empty_crypt_hash_never_matches() -> None:
    # crypt("x", "") would "match" an empty hash; Dovecot guards against it, and so do we.
    assert not verify("{CRYPT}", "")
    assert not verify("{CRYPT}", "x")


def test_a_nul_in_the_password_never_matches() -> None:
    # Dovecot would stop at the NUL and compare "secret"; better to refuse.
    assert not verify("{PLAIN}secret", "secret\0tail")
    assert not verify(SECRET["SHA512-CRYPT"], b"secret\0")


def test_a_password_that_is_not_unicode_never_matches() -> None:
    assert not verify("{PLAIN}secret", "secret\udcff")


# --- parsing helpers ------------------------------------------------------------------------


def test_split_scheme() -> None:
    assert split_scheme("{SHA}abc") == ("SHA", "abc")
    assert split_scheme("{sha.HEX}abc") == ("sha.HEX", "abc")
    assert split_scheme("abc") == ("CRYPT", "abc")
    assert split_scheme("abc", "PLAIN") == ("PLAIN", "abc")
    assert split_scheme("{abc") == ("CRYPT", "{abc")
    # Dovecot's password_get_scheme: a bare MD5-crypt hash, anything after it ignored.
    assert split_scheme("$1$salt$hash$junk") == ("MD5-CRYPT", "$1$salt$hash")


def test_scheme_of() -> None:
    assert scheme_of("{ssha256.b64}xyz") == "SSHA256"
    assert scheme_of("$1$a$b") == "MD5-CRYPT"
    assert scheme_of("{NOPE}x") is None
    assert scheme_of("{SHA.nope}x") is None


def test_plaintext_of() -> None:
    assert plaintext_of("{PLAIN}secret") == b"secret"
    assert plaintext_of("{cleartext}secret") == b"secret"
    assert plaintext_of("{PLAIN.b64}c2VjcmV0") == b"secret"
    assert plaintext_of("{PLAIN.b64}!!") is None
    assert plaintext_of(SECRET["SHA"]) is None
    assert plaintext_of("{PLAIN-TRUNC}6-secret") is None


def test_cram_md5_context_matches_dovecot() -> None:
    assert cram_md5_context(b"secret").hex() == SECRET["CRAM-MD5"].partition("}")[2]
    assert cram_md5_context(b"tanstaaftanstaaf").hex() == CRAM_MD5_TANSTAAF
    assert cram_md5_context_of("{PLAIN}tanstaaftanstaaf") == bytes.fromhex(CRAM_MD5_TANSTAAF)
    assert cram_md5_context_of("{HMAC-MD5}" + CRAM_MD5_TANSTAAF) == bytes.fromhex(CRAM_MD5_TANSTAAF)
    assert cram_md5_context_of(SECRET["SHA512-CRYPT"]) is None
    assert cram_md5_context_of("{CRAM-MD5}00") is None


def test_cram_md5_digest_from_the_context_rfc2195() -> None:
    # RFC 2195 section 2's example.
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    digest = cram_md5_digest(bytes.fromhex(CRAM_MD5_TANSTAAF), challenge)
    assert digest.hex() == "b913a602c7eda7a495b4e6e7334d3890"
    with pytest.raises(ValueError):
        cram_md5_digest(b"short", challenge)


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_cram_md5_digest_is_hmac_md5(key: bytes, message: bytes) -> None:
    expected = hmac.digest(key, message, "md5")
    assert cram_md5_digest(cram_md5_context(key), message) == expected


def test_scram_secrets_rfc7677() -> None:
    # RFC 7677 section 3: user "user", password "pencil", this salt, 4096 iterations.
    salt = bytes.fromhex("5b6d99689d12358eeca04b14123afa81")  # W22ZaJ0SNY7soEsUEjb6gQ==
    derived = derive_scram(b"pencil", salt, 4096, "sha256")
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    assert (
        derived.stored_key == hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    )
    assert derived.server_key == hmac.digest(salted, b"Server Key", "sha256")


def test_scram_credentials_of() -> None:
    credentials = scram_credentials_of(SECRET["SCRAM-SHA-256"])
    assert credentials is not None
    assert credentials.iterations == 4096
    assert derive_scram(b"secret", credentials.salt, 4096, "sha256") == credentials
    assert scram_credentials_of(SECRET["SCRAM-SHA-1"]) is None  # another mechanism's secret
    sha1 = scram_credentials_of(SECRET["SCRAM-SHA-1"], "SCRAM-SHA-1")
    assert sha1 is not None
    assert len(sha1.stored_key) == 20
    assert scram_credentials_of("{PLAIN}secret") is None


def test_scram_credentials_of_a_malformed_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert scram_credentials_of("{SCRAM-SHA-256}4096,x") is None
    assert "SCRAM-SHA-256" in caplog.text


# --- making hashes --------------------------------------------------------------------------

MAKEABLE = [
    "PLAIN",
    "CLEAR",
    "CLEARTEXT",
    "PLAIN.b64",
    "SHA",
    "SHA1",
    "SHA256",
    "SHA256.HEX",
    "SHA512",
    "SSHA",
    "SSHA256",
    "SSHA512",
    "SSHA512.hex",
    "SMD5",
    "PLAIN-MD5",
    "LDAP-MD5",
    "PLAIN-MD4",
    "CRAM-MD5",
    "HMAC-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "PBKDF2",
    "MD5",
    "MD5-CRYPT",
    "DES-CRYPT",
    "SHA256-CRYPT",
    "SHA512-CRYPT",
    pytest.param("BLF-CRYPT", marks=BCRYPT),
    pytest.param("CRYPT", marks=BCRYPT),
    pytest.param("ARGON2I", marks=ARGON2),
    pytest.param("ARGON2ID", marks=ARGON2),
]


@pytest.mark.parametrize("scheme", MAKEABLE)
def test_hash_password_round_trip(scheme: str) -> None:
    password = "DES-CRYPT" if scheme == "DES-CRYPT" else UNICODE_PASSWORD  # DES: 8 bytes
    stored = hash_password(password, scheme)
    assert stored.startswith("{" + scheme.upper() + "}")
    assert verify(stored, password)
    assert not verify(stored, password + "x" if scheme != "DES-CRYPT" else "des-crypt")
    assert stored != hash_password(password, scheme) or scheme.partition(".")[0] in {
        "PLAIN",
        "CLEAR",
        "CLEARTEXT",
        "SHA",
        "SHA1",
        "SHA256",
        "SHA512",
        "PLAIN-MD5",
        "LDAP-MD5",
        "PLAIN-MD4",
        "CRAM-MD5",
        "HMAC-MD5",
    }  # salted schemes never repeat


def test_hash_password_is_what_dovecot_makes() -> None:
    # Unsalted schemes give exactly doveadm's output.
    for scheme in ("SHA", "SHA256", "SHA512", "PLAIN-MD5", "LDAP-MD5", "PLAIN-MD4", "CRAM-MD5"):
        assert hash_password("secret", scheme) == SECRET[scheme]
    assert hash_password("secret", "DIGEST-MD5", user="alice@example.test") == DIGEST_MD5
    assert hash_password("secret", "sha256.hex") == SECRET_VARIANTS[0]


def test_hash_password_rounds() -> None:
    assert "$rounds=10000$" in hash_password("x", "SHA512-CRYPT", rounds=10000)
    assert "$5000$" in hash_password("x", "PBKDF2")
    assert hash_password("x", "SCRAM-SHA-256", rounds=8192).startswith("{SCRAM-SHA-256}8192,")
    # Fewer SCRAM iterations than Dovecot accepts are raised to the minimum.
    assert hash_password("x", "SCRAM-SHA-256", rounds=10).startswith("{SCRAM-SHA-256}4096,")


@BCRYPT
def test_hash_password_bcrypt_cost() -> None:
    stored = hash_password("x", "BLF-CRYPT", rounds=5)
    assert stored.startswith(("{BLF-CRYPT}$2y$05$", "{BLF-CRYPT}$2b$05$"))
    assert hash_password("x", "BLF-CRYPT").split("$")[2] == "10"


@ARGON2
def test_hash_password_argon2_parameters_are_dovecots() -> None:
    # libsodium, which Dovecot verifies argon2 with, accepts only parallelism 1.
    assert "$v=19$m=65536,t=3,p=1$" in hash_password("x", "ARGON2ID")


def test_default_scheme_and_dummy_hash() -> None:
    assert DEFAULT_SCHEME in ("ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT")
    assert has_backend(DEFAULT_SCHEME)
    assert hash_password("secret").startswith("{" + DEFAULT_SCHEME + "}")
    assert scheme_of(DUMMY_HASH) == DEFAULT_SCHEME
    for password in ("", "secret", "password", os.urandom(8).hex()):
        assert not verify(DUMMY_HASH, password)


def test_dummy_hashes_are_real_hashes(caplog: pytest.LogCaptureFixture) -> None:
    # A malformed dummy would fail at once, and the time taken would tell.
    for scheme, stored in passwords._DUMMY_HASHES.items():
        if not has_backend(scheme):
            continue
        with caplog.at_level(logging.WARNING):
            assert not verify(stored, "secret")
        assert caplog.text == ""


@pytest.mark.parametrize("scheme", ["NOSUCH", "PLAIN-TRUNC", "OTP", "SHA.nope", "DIGEST-MD5"])
def test_hash_password_refuses(scheme: str) -> None:
    with pytest.raises(UnsupportedScheme):
        hash_password("secret", scheme)


def test_hash_password_refuses_nul() -> None:
    with pytest.raises(ValueError):
        hash_password("a\0b", "SHA")


def test_hash_password_plain_needs_an_encoding_for_bytes_that_are_not_utf8() -> None:
    with pytest.raises(UnsupportedScheme):
        hash_password(b"\xff", "PLAIN")
    assert verify(hash_password(b"\xff", "PLAIN.b64"), b"\xff")
