"""Dovecot's password schemes: verify a password against a stored `{SCHEME}hash`, make new ones.

The stored string is what a Dovecot passwd-file holds in its password field (see
`mailstore.userdb.User.password`). As in Dovecot (src/lib-auth/password-scheme.c):

* The scheme is the text between `{` and `}`, matched without regard to case. A string with no
  `{SCHEME}` prefix uses `default_scheme` (Dovecot's passwd-file default is CRYPT), except that
  a bare `$1$salt$hash` is MD5-CRYPT.
* `.b64`/`.base64`/`.hex` after the name (`{SHA256.HEX}`, `{PLAIN.b64}`) says how the hash is
  encoded. Without one, the fixed-length digests (SHA*, PLAIN-MD5, LDAP-MD5, CRAM-MD5, ...) are
  read as hex when the text is exactly twice the digest length, and as base64 otherwise.
* An empty stored string means "no password": nobody logs in with it.

Schemes verified, and what they need beyond the standard library:

    PLAIN CLEAR CLEARTEXT PLAIN-TRUNC              -
    SHA SHA1 SHA256 SHA512 SSHA SSHA256 SSHA512    -
    MD5 (MD5-CRYPT or PLAIN-MD5) SMD5 PLAIN-MD5 LDAP-MD5 PLAIN-MD4   passlib (MD4, MD5-crypt)
    CRAM-MD5 HMAC-MD5 (the stored HMAC-MD5 context)                   -
    DIGEST-MD5 (MD5 of user:realm:password; needs `user=`)            -
    PBKDF2 (Dovecot's `$1$salt$rounds$hex`, PBKDF2-HMAC-SHA1)         -
    SCRAM-SHA-1 SCRAM-SHA-256 (`iterations,salt,StoredKey,ServerKey`) -
    DES-CRYPT MD5-CRYPT SHA256-CRYPT SHA512-CRYPT                     passlib
    BLF-CRYPT, and CRYPT with a `$2?$` hash                           passlib + bcrypt, or libc
    CRYPT with any other crypt(3) hash (DES, $1$, $5$, $6$, $sha1$, _, and through the C
      library when Python's `crypt` module is there: yescrypt `$y$`, scrypt `$7$`, ...)
    ARGON2I ARGON2ID                                                  passlib + argon2-cffi

"libc" is the C library's crypt(3) through Python's `crypt` module (Python 3.12 and older; the
libxcrypt of current Linux distributions does bcrypt and yescrypt), used only when passlib has
no backend for a hash. OTP is not supported (its stored state changes on every login).

`verify` never raises for a bad stored string or a missing backend: it logs a warning (naming
the scheme, never the password or the hash) and returns False. Comparisons of secrets use
`hmac.compare_digest`. Verification may be slow by design (argon2, bcrypt): protocol code should
run it in a thread pool, which is safe, as nothing here keeps state between calls.

The crypt(3)-style verifiers are in cryptverify.py, the CRAM-MD5 context and SCRAM keys in
saslkeys.py; this module reads the stored forms and maps the schemes onto them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from typing import Final, NamedTuple

from passlib import hash as _passlib_hash  # type: ignore[import-untyped]
from passlib.crypto.digest import lookup_hash as _passlib_lookup_hash  # type: ignore[import-untyped]

from mra.auth import cryptverify
from mra.auth.cryptverify import (
    BCRYPT_MAX,
    Malformed,
    Unavailable,
    argon2_verify,
    bcrypt_verify,
    crypt_verify,
    libc,
    libc_crypt,
    passlib_verify,
)
from mra.auth.saslkeys import (
    SCRAM_DEFAULT_ITERATIONS,
    SCRAM_HASHES,
    SCRAM_MIN_ITERATIONS,
    ScramCredentials,
    cram_md5_context,
    derive_scram,
)

__all__ = [
    "DEFAULT_SCHEME",
    "DUMMY_HASH",
    "SCHEMES",
    "UnsupportedScheme",
    "cram_md5_context_of",
    "has_backend",
    "hash_password",
    "plaintext_of",
    "scheme_of",
    "scram_credentials_of",
    "split_scheme",
    "verify",
]

_log = logging.getLogger("mra.auth.passwords")


class UnsupportedScheme(ValueError):
    """`hash_password` cannot make this scheme (unknown, or its backend is not installed)."""


def has_backend(scheme: str) -> bool:
    """True if `hash_password` can make, and `verify` can check, hashes of this scheme here."""
    name = scheme.partition(".")[0].upper()
    if name in ("ARGON2I", "ARGON2ID"):
        return cryptverify.HAVE_ARGON2
    if name in ("BLF-CRYPT", "CRYPT"):
        return cryptverify.HAVE_BCRYPT
    return name in SCHEMES


# --- encodings (password_decode in Dovecot's password-scheme.c) -----------------------------

_NONE, _BASE64, _HEX = "none", "base64", "hex"
_HEX_TEXT = re.compile(r"(?:[0-9A-Fa-f]{2})*")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _b64decode(text: str) -> bytes:
    if not _BASE64_TEXT.fullmatch(text):
        raise Malformed("not valid base64")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise Malformed("not valid base64") from None


def _hexdecode(text: str) -> bytes:
    if not _HEX_TEXT.fullmatch(text):
        raise Malformed("not valid hex")
    return bytes.fromhex(text)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- digests --------------------------------------------------------------------------------


def _digest(name: str) -> Callable[[bytes], bytes]:
    if name == "md4":
        # OpenSSL 3 no longer offers MD4; passlib carries a pure-Python one.
        const = _passlib_lookup_hash("md4").const

        def md4(data: bytes) -> bytes:
            result: bytes = const(data).digest()
            return result

        return md4
    return lambda data: hashlib.new(name, data).digest()


def _parse_scram(raw: bytes, hash_name: str) -> ScramCredentials:
    """Dovecot's `iterations,salt,stored_key,server_key`, all but the count in base64."""
    try:
        fields = raw.decode("ascii").split(",")
    except UnicodeDecodeError:
        raise Malformed("not ASCII") from None
    if len(fields) != 4 or not fields[0].isdigit():
        raise Malformed("expected iterations,salt,stored_key,server_key")
    iterations = int(fields[0])
    if not SCRAM_MIN_ITERATIONS <= iterations <= 2**31 - 1:
        raise Malformed("iteration count out of range")
    size = hashlib.new(hash_name).digest_size
    salt, stored_key, server_key = (_b64decode(f) for f in fields[1:])
    if len(stored_key) != size or len(server_key) != size:
        raise Malformed("wrong key length")
    return ScramCredentials(iterations, salt, stored_key, server_key)


def _scram_text(credentials: ScramCredentials) -> str:
    return ",".join(
        (
            str(credentials.iterations),
            _b64encode(credentials.salt),
            _b64encode(credentials.stored_key),
            _b64encode(credentials.server_key),
        )
    )


# --- the schemes ----------------------------------------------------------------------------

_Verifier = Callable[[bytes, bytes, str | None], bool]  # (password, raw stored, user)


class _Scheme(NamedTuple):
    encoding: str  # the default: _NONE, _BASE64 or _HEX
    raw_length: int  # the decoded length for fixed-size digests; 0 = any
    verify: _Verifier


def _text(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise Malformed("not ASCII") from None


def _plain(password: bytes, raw: bytes, user: str | None) -> bool:
    return hmac.compare_digest(password, raw)


def _plain_trunc(password: bytes, raw: bytes, user: str | None) -> bool:
    # Dovecot's plain_trunc_verify: "<length>-<password>", the stored password cut to <length>
    # bytes; a longer given password matches when its first <length> bytes do.
    match = re.match(rb"([0-9]+)-", raw)
    if match is None:
        raise Malformed("missing the length prefix")
    length, stored = int(match.group(1)), raw[match.end() :]
    if len(stored) == length and len(password) >= length:
        return hmac.compare_digest(stored, password[:length])
    return hmac.compare_digest(stored, password)


def _generated(make: Callable[[bytes, str | None], bytes]) -> _Verifier:
    """Dovecot's generic check: make the hash again and compare."""
    return lambda password, raw, user: hmac.compare_digest(make(password, user), raw)


def _salted(name: str) -> _Verifier:
    """SSHA, SSHA256, SSHA512, SMD5: digest(password + salt) + salt."""
    size = hashlib.new(name).digest_size

    def check(password: bytes, raw: bytes, user: str | None) -> bool:
        if len(raw) <= size:
            raise Malformed("too short to hold a salt")
        digest = hashlib.new(name, password + raw[size:]).digest()
        return hmac.compare_digest(digest, raw[:size])

    return check


def _digest_md5(password: bytes, user: str | None) -> bytes:
    # MD5("user:realm:password") of RFC 2831 section 2.1.2.1, the realm being what follows the
    # last '@' of the user name (Dovecot's digest_md5_generate).
    if user is None:
        raise Malformed("DIGEST-MD5 needs the user name")
    name, _, realm = user.rpartition("@") if "@" in user else (user, "", "")
    return hashlib.md5(f"{name}:{realm}:".encode() + password).digest()


def _md5(password: bytes, raw: bytes, user: str | None) -> bool:
    # Dovecot's md5_verify: MD5-CRYPT when it looks like one, else a plain MD5 digest.
    text = _text(raw)
    if text.startswith("$1$"):
        return passlib_verify(_passlib_hash.md5_crypt, password, text)
    digest = _decode(text, "PLAIN-MD5")
    return hmac.compare_digest(hashlib.md5(password).digest(), digest)


def _pbkdf2(password: bytes, raw: bytes, user: str | None) -> bool:
    # Dovecot's pbkdf2_verify: "$1$<salt>$<rounds>$<hex>", PBKDF2-HMAC-SHA1 (RFC 8018 section
    # 5.2) over the salt text as it stands, 20 bytes of output.
    fields = _text(raw).split("$")
    if len(fields) != 5 or fields[:2] != ["", "1"] or not fields[3].isdigit():
        raise Malformed("expected $1$salt$rounds$hash")
    expected = _hexdecode(fields[4])
    rounds = int(fields[3])
    if len(expected) != 20 or rounds < 1:
        raise Malformed("expected 20 bytes of hash and at least one round")
    key = hashlib.pbkdf2_hmac("sha1", password, fields[2].encode(), rounds)
    return hmac.compare_digest(key, expected)


def _scram(hash_name: str) -> _Verifier:
    def check(password: bytes, raw: bytes, user: str | None) -> bool:
        credentials = _parse_scram(raw, hash_name)
        derived = derive_scram(password, credentials.salt, credentials.iterations, hash_name)
        return hmac.compare_digest(derived.stored_key, credentials.stored_key)

    return check


def _of_text(check: Callable[[bytes, str], bool]) -> _Verifier:
    return lambda password, raw, user: check(password, _text(raw))


def _sha(name: str) -> Callable[[bytes, str | None], bytes]:
    make = _digest(name)
    return lambda password, user: make(password)


SCHEMES: Final[dict[str, _Scheme]] = {
    "PLAIN": _Scheme(_NONE, 0, _plain),
    "CLEAR": _Scheme(_NONE, 0, _plain),
    "CLEARTEXT": _Scheme(_NONE, 0, _plain),
    "PLAIN-TRUNC": _Scheme(_NONE, 0, _plain_trunc),
    "SHA": _Scheme(_BASE64, 20, _generated(_sha("sha1"))),
    "SHA1": _Scheme(_BASE64, 20, _generated(_sha("sha1"))),
    "SHA256": _Scheme(_BASE64, 32, _generated(_sha("sha256"))),
    "SHA512": _Scheme(_BASE64, 64, _generated(_sha("sha512"))),
    "SSHA": _Scheme(_BASE64, 0, _salted("sha1")),
    "SSHA256": _Scheme(_BASE64, 0, _salted("sha256")),
    "SSHA512": _Scheme(_BASE64, 0, _salted("sha512")),
    "SMD5": _Scheme(_BASE64, 0, _salted("md5")),
    "MD5": _Scheme(_NONE, 0, _md5),
    "PLAIN-MD5": _Scheme(_HEX, 16, _generated(_sha("md5"))),
    "LDAP-MD5": _Scheme(_BASE64, 16, _generated(_sha("md5"))),
    "PLAIN-MD4": _Scheme(_HEX, 16, _generated(_sha("md4"))),
    "CRAM-MD5": _Scheme(_HEX, 32, _generated(lambda p, u: cram_md5_context(p))),
    "HMAC-MD5": _Scheme(_HEX, 32, _generated(lambda p, u: cram_md5_context(p))),
    "DIGEST-MD5": _Scheme(_HEX, 16, _generated(_digest_md5)),
    "PBKDF2": _Scheme(_NONE, 0, _pbkdf2),
    "SCRAM-SHA-1": _Scheme(_NONE, 0, _scram("sha1")),
    "SCRAM-SHA-256": _Scheme(_NONE, 0, _scram("sha256")),
    "CRYPT": _Scheme(_NONE, 0, _of_text(crypt_verify)),
    "DES-CRYPT": _Scheme(_NONE, 0, _of_text(crypt_verify)),
    "MD5-CRYPT": _Scheme(_NONE, 0, _of_text(crypt_verify)),
    "SHA256-CRYPT": _Scheme(_NONE, 0, _of_text(crypt_verify)),
    "SHA512-CRYPT": _Scheme(_NONE, 0, _of_text(crypt_verify)),
    "BLF-CRYPT": _Scheme(_NONE, 0, _of_text(bcrypt_verify)),
    "ARGON2I": _Scheme(_NONE, 0, _of_text(argon2_verify)),
    "ARGON2ID": _Scheme(_NONE, 0, _of_text(argon2_verify)),
}
"""Every scheme `verify` knows, by upper-case name (without an encoding suffix)."""

_ENCODINGS: Final = {"B64": _BASE64, "BASE64": _BASE64, "HEX": _HEX}
_SCHEME_NAME = re.compile(r"[A-Z0-9-]{1,32}(?:\.[A-Za-z0-9]{1,8})?")


def split_scheme(stored: str, default_scheme: str = "CRYPT") -> tuple[str, str]:
    """(scheme as written, hash) of a stored password (Dovecot's password_get_scheme)."""
    if stored.startswith("$1$"):
        # "$1$<salt>$<hash>[$<ignored>]" without a prefix is MD5-CRYPT.
        parts = stored.split("$")
        if len(parts) >= 4:
            return "MD5-CRYPT", "$".join(parts[:4])
    if stored.startswith("{"):
        close = stored.find("}")
        if close > 0:
            return stored[1:close], stored[close + 1 :]
    return default_scheme, stored


def _lookup(scheme: str) -> tuple[str, _Scheme, str | None] | None:
    """(name, scheme, explicit encoding or None) for "NAME" or "NAME.ENCODING"."""
    name, dot, suffix = scheme.partition(".")
    found = SCHEMES.get(name.upper())
    if found is None:
        return None
    if not dot:
        return name.upper(), found, None
    encoding = _ENCODINGS.get(suffix.upper())
    if encoding is None:
        return None  # Dovecot: "unknown encoding. treat as invalid scheme."
    return name.upper(), found, encoding


def scheme_of(stored: str, default_scheme: str = "CRYPT") -> str | None:
    """The upper-case scheme name of a stored password (no suffix), None if not one we know."""
    found = _lookup(split_scheme(stored, default_scheme)[0])
    return None if found is None else found[0]


def _decode(text: str, scheme: str) -> bytes:
    found = _lookup(scheme)
    if found is None:
        raise Malformed("unknown scheme")
    _, info, encoding = found
    if encoding is None:
        encoding = info.encoding
        if encoding != _NONE and info.raw_length:
            # Not said: guess hex from the length, falling back to base64 (password_decode).
            encoding = _HEX if len(text) == 2 * info.raw_length else _BASE64
            if encoding == _HEX and not _HEX_TEXT.fullmatch(text):
                encoding = _BASE64
    if encoding == _HEX:
        raw = _hexdecode(text)
    elif encoding == _BASE64:
        raw = _b64decode(text)
    else:
        raw = text.encode("utf-8")
    if info.raw_length and len(raw) != info.raw_length:
        raise Malformed(f"decodes to {len(raw)} bytes instead of {info.raw_length}")
    return raw


def _shown(scheme: str) -> str:
    """The scheme for a log line: a name, or nothing if it could be a misplaced password."""
    return scheme if _SCHEME_NAME.fullmatch(scheme) else "(unrecognised, not shown)"


def _password_bytes(password: str | bytes) -> bytes | None:
    if isinstance(password, str):
        try:
            password = password.encode("utf-8")
        except UnicodeEncodeError:
            return None
    # Dovecot sees C strings: a NUL would end the password there. Refuse it instead of
    # letting "secret\0anything" match "secret".
    if b"\0" in password:
        return None
    return password


def verify(
    stored: str,
    password: str | bytes,
    *,
    user: str | None = None,
    default_scheme: str = "CRYPT",
) -> bool:
    """True if `password` matches the stored `{SCHEME}hash`.

    `user` is needed only by DIGEST-MD5 (its hash covers the user name). False, with a warning
    logged, for an unknown scheme, a malformed hash or a scheme whose backend is missing.
    `str` passwords are taken as UTF-8.
    """
    if not stored:
        return False  # no password: nobody logs in
    secret = _password_bytes(password)
    scheme, text = split_scheme(stored, default_scheme)
    found = _lookup(scheme)
    if found is None:
        _log.warning("cannot verify a password: unknown password scheme %s", _shown(scheme))
        return False
    name, info, _ = found
    try:
        raw = _decode(text, scheme)
        if secret is None:
            return False
        return info.verify(secret, raw, user)
    except Malformed as e:
        _log.warning("cannot verify a password: malformed {%s} hash: %s", name, e)
    except Unavailable as e:
        _log.warning("cannot verify a password: {%s}: %s", name, e)
    return False


def plaintext_of(stored: str, default_scheme: str = "CRYPT") -> bytes | None:
    """The password itself when it is stored in the clear ({PLAIN}, {CLEAR}, {CLEARTEXT},
    with any encoding suffix), for the challenge-response mechanisms; else None."""
    scheme, text = split_scheme(stored, default_scheme)
    found = _lookup(scheme)
    if found is None or found[0] not in ("PLAIN", "CLEAR", "CLEARTEXT"):
        return None
    try:
        return _decode(text, scheme)
    except Malformed:
        return None


def cram_md5_context_of(stored: str, default_scheme: str = "CRYPT") -> bytes | None:
    """The CRAM-MD5 context of a {CRAM-MD5}/{HMAC-MD5} or clear-text stored password."""
    scheme, text = split_scheme(stored, default_scheme)
    found = _lookup(scheme)
    if found is not None and found[0] in ("CRAM-MD5", "HMAC-MD5"):
        try:
            return _decode(text, scheme)
        except Malformed:
            return None
    plain = plaintext_of(stored, default_scheme)
    return None if plain is None else cram_md5_context(plain)


def scram_credentials_of(
    stored: str, mechanism: str = "SCRAM-SHA-256", default_scheme: str = "CRYPT"
) -> ScramCredentials | None:
    """The SCRAM secrets of a stored `{SCRAM-SHA-256}` (or `{SCRAM-SHA-1}`) password, for the
    mechanism of the same name; None for any other scheme, even a clear-text one (the SASL
    server derives those itself, with a fresh salt)."""
    hash_name = SCRAM_HASHES[mechanism]
    scheme, text = split_scheme(stored, default_scheme)
    found = _lookup(scheme)
    if found is None or found[0] != mechanism:
        return None
    try:
        return _parse_scram(_decode(text, scheme), hash_name)
    except Malformed as e:
        _log.warning("cannot use a stored {%s} secret: %s", mechanism, e)
        return None


# --- making hashes --------------------------------------------------------------------------

ARGON2_MEMORY_KIB: Final = 65536  # what `doveadm pw -s ARGON2ID` makes (libsodium): 64 MiB,
ARGON2_TIME: Final = 3  # 3 passes; libsodium verifies only parallelism 1
BCRYPT_COST: Final = 10  # OWASP's minimum; `doveadm pw` makes 5
SHA_CRYPT_ROUNDS: Final = 5000  # what crypt(3) and `doveadm pw` use by default
PBKDF2_ROUNDS: Final = 5000  # Dovecot's PBKDF2_ROUNDS_DEFAULT
_SALT_CHARS: Final = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

DEFAULT_SCHEME: Final[str] = (
    "ARGON2ID"
    if cryptverify.HAVE_ARGON2
    else "BLF-CRYPT"
    if cryptverify.HAVE_BCRYPT
    else "SHA512-CRYPT"
)
"""What `hash_password` makes by default: the strongest scheme this installation can do."""

# Hashes of a random password nobody knows, made as `hash_password` makes its defaults, to
# verify against when the user does not exist so that the time taken does not tell.
_DUMMY_HASHES: Final = {
    "ARGON2ID": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$qxSvhQtP2/nLHp4e0KghNg$"
    "KDOk8rIOJmN52TeTZ1UVSYvgxuU6OjkjlOZxvZqUv5s",
    "BLF-CRYPT": "{BLF-CRYPT}$2y$10$zZPxX6B.JPo/M9GqPPm7VOaz9oSls5IlB/jhfQdBWlNvBRKuHB4Oy",
    "SHA512-CRYPT": "{SHA512-CRYPT}$6$w9r7iVjcolmHnvYH$uzHnJr0dJgNL9PoXQj8tjz24Vf8MOQAp/UnMFPD"
    "sksndmO.rC1u77pi5QNFwXI1Mq2V4cUM2/HSjxWyBl8Wep0",
}
DUMMY_HASH: Final[str] = _DUMMY_HASHES[DEFAULT_SCHEME]
"""Verify against this for an unknown user (and return False whatever it says)."""


def _salt_text(length: int) -> str:
    return "".join(secrets.choice(_SALT_CHARS) for _ in range(length))


def _make_bcrypt(password: bytes, cost: int) -> str:
    password = password[:BCRYPT_MAX]
    if cryptverify.HAVE_PASSLIB_BCRYPT:
        result: str = _passlib_hash.bcrypt.using(ident="2y", rounds=cost).hash(password)
        return result
    if libc_crypt is not None and cryptverify.HAVE_BCRYPT:
        setting = libc_crypt.mksalt(libc_crypt.METHOD_BLOWFISH, rounds=1 << cost)
        made = libc(password, setting)
        if made is not None:
            return made
    raise UnsupportedScheme("BLF-CRYPT needs the bcrypt package")


_DIGESTS: Final = {
    "SHA": "sha1",
    "SHA1": "sha1",
    "SHA256": "sha256",
    "SHA512": "sha512",
    "PLAIN-MD5": "md5",
    "LDAP-MD5": "md5",
    "PLAIN-MD4": "md4",
}
_SALTED_DIGESTS: Final = {"SSHA": "sha1", "SSHA256": "sha256", "SSHA512": "sha512", "SMD5": "md5"}


def _make(name: str, password: bytes, rounds: int | None, user: str | None) -> bytes | str:
    """The raw hash (bytes, to be encoded) or the finished text (str) of one scheme."""
    if name in ("PLAIN", "CLEAR", "CLEARTEXT"):
        return password
    if name in _DIGESTS:
        return _digest(_DIGESTS[name])(password)
    if name in _SALTED_DIGESTS:
        salt = secrets.token_bytes(4)  # as Dovecot's ssha_generate and friends
        return hashlib.new(_SALTED_DIGESTS[name], password + salt).digest() + salt
    if name in ("CRAM-MD5", "HMAC-MD5"):
        return cram_md5_context(password)
    if name == "DIGEST-MD5":
        if user is None:
            raise UnsupportedScheme("DIGEST-MD5 needs the user name")
        return _digest_md5(password, user)
    if name in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        iterations = max(rounds or SCRAM_DEFAULT_ITERATIONS, SCRAM_MIN_ITERATIONS)
        salt = secrets.token_bytes(16)
        return _scram_text(derive_scram(password, salt, iterations, SCRAM_HASHES[name]))
    if name == "PBKDF2":
        salt_text, count = _salt_text(16), rounds or PBKDF2_ROUNDS
        key = hashlib.pbkdf2_hmac("sha1", password, salt_text.encode(), count)
        return f"$1${salt_text}${count}${key.hex()}"
    if name in ("MD5", "MD5-CRYPT"):
        result: str = _passlib_hash.md5_crypt.hash(password)
        return result
    if name == "DES-CRYPT":
        result = _passlib_hash.des_crypt.hash(password)
        return result
    if name in ("SHA256-CRYPT", "SHA512-CRYPT"):
        handler = (
            _passlib_hash.sha256_crypt if name == "SHA256-CRYPT" else _passlib_hash.sha512_crypt
        )
        result = handler.using(rounds=rounds or SHA_CRYPT_ROUNDS).hash(password)
        return result
    if name in ("BLF-CRYPT", "CRYPT"):
        return _make_bcrypt(password, rounds or BCRYPT_COST)
    if name in ("ARGON2I", "ARGON2ID"):
        if not cryptverify.HAVE_ARGON2:
            raise UnsupportedScheme(f"{name} needs the argon2-cffi package")
        argon2 = _passlib_hash.argon2.using(
            type=name.removeprefix("ARGON2"),
            memory_cost=ARGON2_MEMORY_KIB,
            rounds=rounds or ARGON2_TIME,
            parallelism=1,
            salt_size=16,
            digest_size=32,
        )
        result = argon2.hash(password)
        return result
    raise UnsupportedScheme(f"cannot make {name} hashes")


def hash_password(
    password: str | bytes,
    scheme: str | None = None,
    *,
    rounds: int | None = None,
    user: str | None = None,
) -> str:
    """A new `{SCHEME}hash` for the passwd-file, as `doveadm pw -s SCHEME [-r ROUNDS]` makes it.

    `scheme` defaults to DEFAULT_SCHEME and may carry an encoding suffix (`SHA256.HEX`).
    `rounds` is the cost where the scheme has one: bcrypt's log2 cost, the SHA-crypt rounds,
    the PBKDF2 and SCRAM iterations, the argon2 passes. `user` is for DIGEST-MD5. Raises
    UnsupportedScheme if this scheme cannot be made here (unknown, PLAIN-TRUNC, OTP, or a
    backend missing), and ValueError for a password containing NUL.
    """
    scheme = scheme or DEFAULT_SCHEME
    secret = _password_bytes(password)
    if secret is None:
        raise ValueError("a password cannot contain NUL (or be invalid UTF-8)")
    found = _lookup(scheme)
    if found is None or found[0] == "PLAIN-TRUNC":
        raise UnsupportedScheme(f"cannot make {_shown(scheme)} hashes")
    name, info, encoding = found
    made = _make(name, secret, rounds, user)
    raw = made.encode() if isinstance(made, str) else made
    encoding = encoding or info.encoding
    if encoding == _BASE64:
        text = _b64encode(raw)
    elif encoding == _HEX:
        text = raw.hex()
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            message = f"{name} cannot store this password; use {name}.b64"
            raise UnsupportedScheme(message) from None
    return f"{{{scheme.upper()}}}{text}"
