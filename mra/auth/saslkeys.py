"""The secrets challenge-response SASL mechanisms keep in place of a password.

* CRAM-MD5 (RFC 2195): Dovecot stores not the password but the HMAC-MD5 context, the MD5
  chaining states after the HMAC key pads (RFC 2104 section 2); `cram_md5_digest` finishes the
  HMAC from it. `hashlib` does not expose MD5's chaining state, so the compression function
  of RFC 1321 section 3.4 is here, for the one 64-byte block each pad needs.
* SCRAM (RFC 5802 section 3): the iteration count, the salt, StoredKey and ServerKey.

Split from passwords.py, which reads and writes these in Dovecot's stored forms
(`{CRAM-MD5}hex`, `{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey`); sasl.py uses them in
the exchanges. Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from typing import Final, NamedTuple

__all__ = [
    "SCRAM_DEFAULT_ITERATIONS",
    "SCRAM_HASHES",
    "SCRAM_MIN_ITERATIONS",
    "ScramCredentials",
    "cram_md5_context",
    "cram_md5_digest",
    "derive_scram",
]

# --- CRAM-MD5 (RFC 2195) --------------------------------------------------------------------

_MD5_IV: Final = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)
# The per-round left rotations of RFC 1321 section 3.4, four for each of the four rounds.
_MD5_SHIFTS: Final = tuple(
    shift
    for row in ((7, 12, 17, 22), (5, 9, 14, 20), (4, 11, 16, 23), (6, 10, 15, 21))
    for shift in row * 4
)
_MD5_K: Final = tuple(int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF for i in range(64))
_MASK32: Final = 0xFFFFFFFF


def _md5_compress(state: tuple[int, ...], block: bytes) -> tuple[int, int, int, int]:
    """One MD5 block (RFC 1321 section 3.4): `hashlib` does not expose the chaining state,
    which is what Dovecot stores for CRAM-MD5."""
    a, b, c, d = state
    words = struct.unpack("<16I", block)
    for i in range(64):
        if i < 16:
            f, g = (b & c) | (~b & d), i
        elif i < 32:
            f, g = (d & b) | (~d & c), (5 * i + 1) % 16
        elif i < 48:
            f, g = b ^ c ^ d, (3 * i + 5) % 16
        else:
            f, g = c ^ (b | ~d), (7 * i) % 16
        f = (f + a + _MD5_K[i] + words[g]) & _MASK32
        shift = _MD5_SHIFTS[i]
        a, d, c = d, c, b
        b = (b + ((f << shift) | (f >> (32 - shift)))) & _MASK32
    return (
        (state[0] + a) & _MASK32,
        (state[1] + b) & _MASK32,
        (state[2] + c) & _MASK32,
        (state[3] + d) & _MASK32,
    )


def _md5_finish(state: tuple[int, ...], data: bytes, done: int) -> bytes:
    """MD5 of (`done` bytes already hashed into `state`) + `data`; `done` is a multiple of 64."""
    total = done + len(data)
    message = data + b"\x80" + b"\0" * ((55 - total) % 64) + struct.pack("<Q", (total * 8) % 2**64)
    for i in range(0, len(message), 64):
        state = _md5_compress(state, message[i : i + 64])
    return struct.pack("<4I", *state)


def cram_md5_context(password: bytes) -> bytes:
    """Dovecot's stored CRAM-MD5 secret: the MD5 states after the HMAC pads (RFC 2104 section
    2), outer then inner, each as four little-endian words (hmac_md5_get_cram_context)."""
    key = hashlib.md5(password).digest() if len(password) > 64 else password
    key = key.ljust(64, b"\0")
    inner = _md5_compress(_MD5_IV, bytes(k ^ 0x36 for k in key))
    outer = _md5_compress(_MD5_IV, bytes(k ^ 0x5C for k in key))
    return struct.pack("<4I", *outer) + struct.pack("<4I", *inner)


def cram_md5_digest(context: bytes, challenge: bytes) -> bytes:
    """HMAC-MD5(password, challenge) from the stored context (RFC 2195 section 2)."""
    if len(context) != 32:
        raise ValueError("a CRAM-MD5 context is 32 bytes")
    outer = struct.unpack("<4I", context[:16])
    inner = struct.unpack("<4I", context[16:])
    return _md5_finish(outer, _md5_finish(inner, challenge, 64), 64)


# --- SCRAM (RFC 5802 section 3) -------------------------------------------------------------

SCRAM_MIN_ITERATIONS: Final = 4096  # RFC 7677 section 4; Dovecot refuses fewer too
SCRAM_DEFAULT_ITERATIONS: Final = 4096
SCRAM_HASHES: Final = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}


class ScramCredentials(NamedTuple):
    """What a SCRAM server needs (RFC 5802 section 3): never the password itself."""

    iterations: int
    salt: bytes
    stored_key: bytes  # H(ClientKey)
    server_key: bytes  # HMAC(SaltedPassword, "Server Key")


def derive_scram(password: bytes, salt: bytes, iterations: int, hash_name: str) -> ScramCredentials:
    """SaltedPassword := Hi(password, salt, i), then the keys (RFC 5802 section 3).

    The password is used as given, without SASLprep, as Dovecot does: stored secrets made by
    `doveadm pw` then work, and an ASCII password is its own SASLprep anyway.
    """
    salted = hashlib.pbkdf2_hmac(hash_name, password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", hash_name)
    return ScramCredentials(
        iterations,
        salt,
        hashlib.new(hash_name, client_key).digest(),
        hmac.digest(salted, b"Server Key", hash_name),
    )
