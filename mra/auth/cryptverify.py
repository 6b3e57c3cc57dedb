"""crypt(3) and its relatives: the verifiers of the hashes that carry their own settings.

DES-CRYPT, MD5-CRYPT, SHA256/512-CRYPT, BLF-CRYPT (bcrypt), CRYPT with any `$id$` the C
library knows, and ARGON2I/ARGON2ID, as Dovecot's crypt_verify does. Each takes the password
and the hash text (which holds the salt and cost) and raises `Malformed` or `Unavailable`
(a backend package is missing) rather than answer for a hash it cannot read. passwords.py
maps the scheme names to these and turns those exceptions into a logged False.

Backends: passlib (libpass), the `bcrypt` and `argon2-cffi` packages when installed, and the
C library's crypt(3) through Python's `crypt` module while it exists (3.12 and older), which
is also the faster one for SHA-crypt.
"""

from __future__ import annotations

import hmac
import re
import warnings
from types import ModuleType
from typing import Any, Final

from passlib import hash as _passlib_hash  # type: ignore[import-untyped]
from passlib.exc import MissingBackendError  # type: ignore[import-untyped]


class Malformed(Exception):
    """The stored hash cannot be read; the message names the problem, never the hash."""


class Unavailable(Exception):
    """The scheme needs a package that is not installed; the message says which."""


# --- backends -------------------------------------------------------------------------------


def _load_libc_crypt() -> ModuleType | None:
    """Python's `crypt` module (crypt(3) of the C library), or None where it is gone (3.13+).

    Imported once, at import time: `warnings.catch_warnings` is not thread-safe.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    return crypt


libc_crypt = _load_libc_crypt()


def libc(password: bytes, setting: str) -> str | None:
    """crypt(3) of the C library; None when it is missing or does not know the setting."""
    if libc_crypt is None:
        return None
    try:
        word = password.decode("utf-8")  # the module takes str and encodes it as UTF-8
    except UnicodeDecodeError:
        return None
    try:
        result: str | None = libc_crypt.crypt(word, setting)
    except (ValueError, OSError):
        return None
    # libxcrypt returns "*0"/"*1" (never a valid hash) for a setting it does not accept.
    if result is None or result.startswith("*"):
        return None
    return result


def _libc_bcrypt() -> bool:
    return libc(b"x", "$2b$04$" + "." * 22) is not None


HAVE_ARGON2: Final[bool] = bool(_passlib_hash.argon2.has_backend())
HAVE_PASSLIB_BCRYPT: Final[bool] = bool(_passlib_hash.bcrypt.has_backend())
HAVE_BCRYPT: Final[bool] = HAVE_PASSLIB_BCRYPT or _libc_bcrypt()


# --- crypt(3) -------------------------------------------------------------------------------

BCRYPT_MAX: Final = 72  # bcrypt uses the first 72 bytes; Dovecot's crypt_blowfish truncates
_DES_CRYPT = re.compile(r"[./0-9A-Za-z]{13}")
_BLF_PREFIX = re.compile(r"\$2[a-z]\$")


def passlib_verify(handler: Any, password: bytes, setting: str) -> bool:
    try:
        return bool(handler.verify(password, setting))
    except MissingBackendError:
        raise Unavailable("no backend") from None
    except (ValueError, TypeError):
        raise Malformed("not a valid hash of this kind") from None


def bcrypt_verify(password: bytes, setting: str) -> bool:
    # Dovecot's crypt_verify_blowfish: "$2" + a letter + "$" and at least the salt (30 chars).
    if len(setting) < 30 or not _BLF_PREFIX.match(setting):
        raise Malformed("not a bcrypt hash")
    password = password[:BCRYPT_MAX]
    if HAVE_PASSLIB_BCRYPT:
        return passlib_verify(_passlib_hash.bcrypt, password, setting)
    result = libc(password, setting)
    if result is None:
        if not HAVE_BCRYPT:
            raise Unavailable("BLF-CRYPT needs the bcrypt package")
        raise Malformed("not a valid bcrypt hash")
    return hmac.compare_digest(result.encode(), setting.encode())


def crypt_verify(password: bytes, setting: str) -> bool:
    """Dovecot's crypt_verify: crypt(3), by the hash's own `$id$` prefix."""
    if not setting:
        return False  # crypt("x", "") would "match" an empty hash
    if setting.startswith("$2") and len(setting) > 4 and setting[3] == "$":
        return bcrypt_verify(password, setting)
    handler: Any = None
    if setting.startswith("$1$"):
        handler = _passlib_hash.md5_crypt
    elif setting.startswith("$5$"):
        handler = _passlib_hash.sha256_crypt
    elif setting.startswith("$6$"):
        handler = _passlib_hash.sha512_crypt
    elif setting.startswith("$sha1$"):
        handler = _passlib_hash.sha1_crypt
    elif setting.startswith("_") and len(setting) == 20:
        handler = _passlib_hash.bsdi_crypt
    elif _DES_CRYPT.fullmatch(setting):
        handler = _passlib_hash.des_crypt
    if handler is not None and setting.startswith(("$1$", "$5$", "$6$")):
        # The C library first: libxcrypt's SHA-crypt is about twice as fast as passlib's
        # pure-Python one, and a login spends most of its CPU time here.
        result = libc(password, setting)
        if result is not None:
            return hmac.compare_digest(result.encode(), setting.encode())
    if handler is not None:
        try:
            return passlib_verify(handler, password, setting)
        except Malformed:
            pass  # the C library may still know it (e.g. SHA-crypt with rounds < 1000)
    result = libc(password, setting)
    if result is None:
        raise Malformed("a crypt(3) hash of a kind this system cannot check")
    return hmac.compare_digest(result.encode(), setting.encode())


def argon2_verify(password: bytes, setting: str) -> bool:
    if not setting.startswith(("$argon2i$", "$argon2id$")):
        raise Malformed("not an argon2 hash")
    if not HAVE_ARGON2:
        raise Unavailable("ARGON2 needs the argon2-cffi package")
    return passlib_verify(_passlib_hash.argon2, password, setting)
