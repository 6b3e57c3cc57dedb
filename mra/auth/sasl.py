"""SASL server exchanges (RFC 4422) for IMAP AUTHENTICATE and POP3 AUTH, without I/O.

Mechanisms: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195) and
SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding.

Division of work
----------------
This module takes and returns raw bytes. The protocol layer does the framing:

* base64 of every challenge and response (RFC 4422 section 4; IMAP: RFC 3501 section 6.2.2,
  POP3: RFC 5034 section 4), answering a response that is not valid base64 with a failure;
* the client's `*` that cancels the exchange (RFC 4422 section 3.5): drop the `SaslServer`;
* the initial response (IMAP SASL-IR, RFC 4959; POP3 AUTH, RFC 5034 section 4), where `=`
  stands for an empty one: pass `b""` for `=` and `None` when the client sent none;
* additional data with success (RFC 4422 section 3.6): neither IMAP4rev1 nor POP3 can carry
  it in the final OK, so by default SCRAM's server-final-message is sent as one more
  challenge, to which the client answers with an empty response. With `success_data=True`
  it comes in `Success.data` instead, for a protocol that can carry it.

Driving an exchange
-------------------
    server = SaslServer("PLAIN", lookup, passwords.verify, secure=True)
    outcome = server.step(initial_response)           # None if the client sent none
    while True:
        if isinstance(outcome, (NeedsLookup, NeedsVerification)):
            outcome = server.complete(outcome.run())  # run() may go to a thread pool
        elif isinstance(outcome, Challenge):
            send the challenge; outcome = server.step(client's decoded response)
        else:
            break                                     # Success or Failure

`NeedsLookup.run()` calls `lookup(login)` and `NeedsVerification.run()` calls `verify(stored,
password, user=...)`: the caller decides where (password hashing can take 100 ms on purpose,
so it belongs in a thread pool; a passwd-file lookup is a dict access). If `run()` raises (the
user database is unavailable), the exchange is over: report a temporary failure.

An unknown user costs the same as a known one: PLAIN and LOGIN verify against a dummy hash,
SCRAM answers with a made-up salt that stays the same for the same name (RFC 5802 section 7
lets a server hide "unknown-user" for this reason), and every failure looks alike to the
client; `Failure.reason` is for the log only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar, cast

from mra.auth import passwords, saslkeys

__all__ = [
    "MECHANISMS",
    "PLAINTEXT_MECHANISMS",
    "Account",
    "Challenge",
    "Failure",
    "FailureKind",
    "NeedsLookup",
    "NeedsVerification",
    "Outcome",
    "PlaintextNotAllowed",
    "SaslServer",
    "UnknownMechanism",
    "VerifyFunction",
    "mechanisms",
]


class Account(Protocol):
    """What the mechanisms need of a user; `mailstore.userdb.User` is one."""

    @property
    def name(self) -> str: ...

    @property
    def password(self) -> str: ...  # the stored "{SCHEME}hash"; "" = nobody logs in


class VerifyFunction(Protocol):
    """`mra.auth.passwords.verify`, or anything called like it."""

    def __call__(self, stored: str, password: bytes, /, *, user: str | None = None) -> bool: ...


A = TypeVar("A", bound=Account)

# Strongest first: clients that take the first one they know get the best.
MECHANISMS: Final = ("SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN")
# The ones that send the password itself: only over TLS (or loopback) unless allowed.
PLAINTEXT_MECHANISMS: Final = frozenset({"PLAIN", "LOGIN"})


def mechanisms(
    secure: bool, allow_plaintext: bool, *, usable: Collection[str] | None = None
) -> list[str]:
    """The mechanisms to advertise (IMAP CAPABILITY `AUTH=`, POP3 CAPA `SASL`), best first.

    PLAIN and LOGIN only when the connection is `secure` (TLS, or loopback) or
    `allow_plaintext` is set (RFC 3501 section 6.2.2 and RFC 4616 section 6 ask for a
    protected channel). `usable` keeps only the mechanisms named in it: the challenge-response
    ones work only for users whose stored password allows them (see `Authenticator`), and a
    client offered CRAM-MD5 will pick it over PLAIN.
    """
    return [
        name
        for name in MECHANISMS
        if (secure or allow_plaintext or name not in PLAINTEXT_MECHANISMS)
        and (usable is None or name in usable)
    ]


class UnknownMechanism(ValueError):
    """Not a mechanism this server offers (IMAP: NO or BAD; POP3: -ERR)."""


class PlaintextNotAllowed(ValueError):
    """PLAIN or LOGIN on an unprotected connection (IMAP: NO [PRIVACYREQUIRED], RFC 5530)."""


class FailureKind:
    AUTHENTICATION = "authentication"  # wrong password, unknown user: IMAP [AUTHENTICATIONFAILED]
    AUTHORIZATION = "authorization"  # right password, refused authzid: [AUTHORIZATIONFAILED]
    MALFORMED = "malformed"  # the client broke the mechanism's syntax


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send `data` to the client (base64, after "+ "), then `step()` its response."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Success(Generic[A]):
    """Authenticated as `account`."""

    account: A
    authcid: str  # the name the client authenticated with, as it wrote it
    data: bytes | None = None  # additional data with success, only with success_data=True


@dataclass(frozen=True, slots=True)
class Failure:
    """Not authenticated. `reason` is for the log: never show it to the client."""

    reason: str
    kind: str = FailureKind.AUTHENTICATION
    authcid: str | None = None  # the name tried, for the log and the throttles, if any


class NeedsLookup(Generic[A]):
    """Look the user up (`run()`), then hand the result to `SaslServer.complete()`."""

    __slots__ = ("_lookup", "login")

    def __init__(self, login: str, lookup: Callable[[str], A | None]) -> None:
        self.login = login
        self._lookup = lookup

    def run(self) -> A | None:
        return self._lookup(self.login)

    def __repr__(self) -> str:
        return f"NeedsLookup(login={self.login!r})"


class NeedsVerification(Generic[A]):
    """Check the password (`run()`, slow by design), then hand the bool to `complete()`.

    `account` is None when the user does not exist: the check then runs against a dummy hash
    so that it takes as long, and the exchange fails whatever it says.
    """

    __slots__ = ("_password", "_stored", "_verify", "account", "login")

    def __init__(
        self,
        login: str,
        account: A | None,
        stored: str | Callable[[], str],
        password: bytes,
        verify: VerifyFunction,
    ) -> None:
        self.login = login
        self.account = account
        self._stored = stored
        self._password = password
        self._verify = verify

    def run(self) -> bool:
        user = self.account.name if self.account is not None else self.login
        stored = self._stored if isinstance(self._stored, str) else self._stored()
        return self._verify(stored, self._password, user=user)

    def __repr__(self) -> str:  # never the password or the hash
        return f"NeedsVerification(login={self.login!r})"


Outcome = Challenge | Success[A] | Failure | NeedsLookup[A] | NeedsVerification[A]
_Step = Challenge | NeedsLookup[A] | NeedsVerification[A]
_Mechanism = Generator[_Step[A], object, "Success[A] | Failure"]


def _malformed(reason: str, authcid: str | None = None) -> Failure:
    return Failure(reason, FailureKind.MALFORMED, authcid)


def _default_nonce() -> str:
    return secrets.token_urlsafe(24)


# --- SCRAM syntax (RFC 5802 section 7) ------------------------------------------------------

_SCRAM_HASHES: Final = {"SCRAM-SHA-256": "sha256"}
_PRINTABLE_NONCE = re.compile(rb"[\x21-\x2b\x2d-\x7e]+")  # printable ASCII except ','
_SASLNAME_ESCAPE = re.compile(rb"=(?!2C|3D)")  # '=' only as "=2C" or "=3D"


def _saslname(value: bytes) -> str | None:
    """A SCRAM saslname (RFC 5802 section 7) unescaped, or None if it is malformed."""
    if not value or _SASLNAME_ESCAPE.search(value):
        return None
    try:
        return value.replace(b"=2C", b",").replace(b"=3D", b"=").decode("utf-8")
    except UnicodeDecodeError:
        return None


def _b64(value: bytes) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return None


def _utf8(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


class SaslServer(Generic[A]):
    """One SASL exchange on the server side; see the module documentation for the driving.

    `lookup(login)` finds the account for a login name (None if there is none); `verify` checks
    a password against a stored hash (`mra.auth.passwords.verify`). `secure` says the
    connection is protected (TLS, or loopback); without it or `allow_plaintext`, PLAIN and
    LOGIN raise PlaintextNotAllowed. Mechanism names ignore case; an unknown one raises
    UnknownMechanism.

    Options: `hostname` goes into the CRAM-MD5 challenge (RFC 2195 section 2); `nonce` makes
    the random part of the CRAM-MD5 challenge and the SCRAM server nonce (printable ASCII
    without ','; tests pass a fixed one); `scram_iterations` is the iteration count for
    passwords stored in the clear (RFC 7677 section 4: at least 4096); `dummy_hash` is what an
    unknown user's password is checked against (or a function giving it, called where the
    check runs: see mra/auth/hashcost.py); `success_data` see the module documentation.
    """

    def __init__(
        self,
        mechanism: str,
        lookup: Callable[[str], A | None],
        verify: VerifyFunction,
        *,
        secure: bool,
        allow_plaintext: bool = False,
        hostname: str = "localhost",
        nonce: Callable[[], str] = _default_nonce,
        scram_iterations: int = saslkeys.SCRAM_DEFAULT_ITERATIONS,
        dummy_hash: str | Callable[[], str] = passwords.DUMMY_HASH,
        success_data: bool = False,
    ) -> None:
        name = mechanism.upper()
        if name not in MECHANISMS:
            raise UnknownMechanism(f"unsupported SASL mechanism {mechanism[:40]!r}")
        if name in PLAINTEXT_MECHANISMS and not (secure or allow_plaintext):
            raise PlaintextNotAllowed(f"{name} needs a TLS connection")
        self.mechanism = name
        self._lookup = lookup
        self._verify = verify
        self._hostname = hostname
        self._nonce = nonce
        self._scram_iterations = max(scram_iterations, saslkeys.SCRAM_MIN_ITERATIONS)
        self._dummy_hash = dummy_hash
        self._success_data = success_data
        self._run: _Mechanism[A] | None = None
        self._pending: NeedsLookup[A] | NeedsVerification[A] | None = None
        self._started = False
        self._done = False

    @property
    def done(self) -> bool:
        """True once the exchange has ended in Success or Failure."""
        return self._done

    def step(self, data: bytes | None) -> Outcome[A]:
        """Feed the initial response (first call; None = none was sent) or a response to the
        last Challenge; returns what to do next."""
        if self._done:
            raise RuntimeError("the SASL exchange is over")
        if self._pending is not None:
            raise RuntimeError(f"complete() the pending {self._pending!r} first")
        if not self._started:
            self._started = True
            self._run = self._mechanism(data)
            return self._advance(None)
        if data is None:
            raise ValueError("a response to a challenge is bytes (b'' when empty)")
        return self._advance(data)

    def complete(self, result: object) -> Outcome[A]:
        """Hand back the result of the pending NeedsLookup (the account or None) or
        NeedsVerification (a bool)."""
        pending = self._pending
        if pending is None:
            raise RuntimeError("nothing is pending")
        if isinstance(pending, NeedsVerification) and not isinstance(result, bool):
            raise TypeError("a verification result is a bool")
        self._pending = None
        return self._advance(result)

    def _advance(self, value: object) -> Outcome[A]:
        assert self._run is not None
        try:
            outcome = self._run.send(value)
        except StopIteration as stop:
            self._done = True
            self._run = None
            result: Success[A] | Failure = stop.value
            return result
        if isinstance(outcome, NeedsLookup | NeedsVerification):
            self._pending = outcome
        return outcome

    def _mechanism(self, initial: bytes | None) -> _Mechanism[A]:
        if self.mechanism == "PLAIN":
            return self._plain(initial)
        if self.mechanism == "LOGIN":
            return self._login(initial)
        if self.mechanism == "CRAM-MD5":
            return self._cram_md5(initial)
        return self._scram(initial, _SCRAM_HASHES[self.mechanism])

    # --- steps shared by the mechanisms -----------------------------------------------------

    def _find(self, login: str) -> Generator[_Step[A], object, A | None]:
        # The result is whatever the caller's lookup returned; it cannot be checked at run time.
        return cast("A | None", (yield NeedsLookup(login, self._lookup)))

    def _check_password(self, login: str, password: bytes) -> _Mechanism[A]:
        """Look up, then verify (against the dummy hash if there is nothing to verify)."""
        account = yield from self._find(login)
        stored = account.password if account is not None else ""
        ok = yield NeedsVerification(
            login, account, stored or self._dummy_hash, password, self._verify
        )
        if account is None:
            return Failure("unknown user", authcid=login)
        if not stored:
            return Failure("the user has no password", authcid=login)
        if ok is not True:
            return Failure("wrong password", authcid=login)
        return Success(account, login)

    # --- PLAIN (RFC 4616) -------------------------------------------------------------------

    def _plain(self, initial: bytes | None) -> _Mechanism[A]:
        # Section 2: the client speaks first; without an initial response the server sends an
        # empty challenge (RFC 4422 section 5).
        message = initial if initial is not None else cast(bytes, (yield Challenge(b"")))
        # message = [authzid] UTF8NUL authcid UTF8NUL passwd, each in UTF-8.
        fields = message.split(b"\0")
        if len(fields) != 3:
            return _malformed("PLAIN message is not authzid NUL authcid NUL password")
        authzid, authcid = _utf8(fields[0]), _utf8(fields[1])
        password = fields[2]
        if authzid is None or authcid is None or _utf8(password) is None:
            return _malformed("PLAIN message is not UTF-8")
        if not authcid or not password:
            return _malformed("PLAIN message with an empty user name or password")
        result = yield from self._check_password(authcid, password)
        # Section 2: the authzid may be empty (act as the authcid) or name the same user; we
        # let nobody act for somebody else. Checked after the password, so that an
        # authorization failure (RFC 5530 AUTHORIZATIONFAILED) means the password was right.
        if (
            isinstance(result, Success)
            and authzid
            and not _same_user(authzid, authcid, result.account)
        ):
            return Failure(
                "may not act as another user", FailureKind.AUTHORIZATION, authcid=authcid
            )
        return result

    # --- LOGIN (draft-murchison-sasl-login-00) ----------------------------------------------

    def _login(self, initial: bytes | None) -> _Mechanism[A]:
        # Section 2.1: the server asks "Username:" then "Password:" (clients ignore the text);
        # an initial response, when sent, is the user name.
        if initial is None:
            initial = cast(bytes, (yield Challenge(b"Username:")))
        password = cast(bytes, (yield Challenge(b"Password:")))
        login = _utf8(initial)
        if login is None or _utf8(password) is None:
            return _malformed("LOGIN user name or password is not UTF-8")
        if not login or not password or b"\0" in initial or b"\0" in password:
            return _malformed("LOGIN with an empty user name or password", login or None)
        return (yield from self._check_password(login, password))

    # --- CRAM-MD5 (RFC 2195) ----------------------------------------------------------------

    def _cram_md5(self, initial: bytes | None) -> _Mechanism[A]:
        if initial is not None:
            # The server speaks first (RFC 4422 section 5: no initial response then).
            return _malformed("CRAM-MD5 takes no initial response")
        # Section 2: a msg-id style string, unique to this exchange, with the host name.
        challenge = f"<{self._nonce()}@{self._hostname}>".encode()
        response = cast(bytes, (yield Challenge(challenge)))
        # The response is the user name, a space, and 32 lowercase hex digits of
        # HMAC-MD5(password, challenge); the name may contain spaces, so split at the last.
        name, space, digest_hex = response.rpartition(b" ")
        login = _utf8(name)
        if (
            not space
            or login is None
            or not login
            or not re.fullmatch(rb"[0-9a-fA-F]{32}", digest_hex)
        ):
            return _malformed("CRAM-MD5 response is not 'user digest'")
        account = yield from self._find(login)
        if account is None:
            return Failure("unknown user", authcid=login)
        context = passwords.cram_md5_context_of(account.password)
        if context is None:
            return Failure("no CRAM-MD5 secret for the user (stored hash)", authcid=login)
        expected = saslkeys.cram_md5_digest(context, challenge)
        if not hmac.compare_digest(expected, bytes.fromhex(digest_hex.decode("ascii"))):
            return Failure("wrong password", authcid=login)
        return Success(account, login)

    # --- SCRAM-SHA-256 (RFC 5802, RFC 7677) -------------------------------------------------

    def _scram(self, initial: bytes | None, hash_name: str) -> _Mechanism[A]:
        # Section 5: the client speaks first.
        first = initial if initial is not None else cast(bytes, (yield Challenge(b"")))
        # client-first-message = gs2-header client-first-message-bare (section 7), with
        # gs2-header = gs2-cbind-flag "," [ authzid ] ","
        parts = first.split(b",", 2)
        if len(parts) != 3:
            return _malformed("SCRAM client-first-message without a GS2 header")
        cbind_flag, authzid_field, bare = parts
        gs2_header = first[: len(first) - len(bare)]
        if cbind_flag.startswith(b"p="):
            # Section 6: the client requires channel binding; we advertise no -PLUS mechanism.
            return _malformed("SCRAM channel binding is not supported")
        if cbind_flag not in (b"n", b"y"):
            # "y": the client could bind but thinks we cannot, which is right (section 6).
            return _malformed("bad SCRAM gs2-cbind-flag")
        authzid: str | None = None
        if authzid_field:
            if not authzid_field.startswith(b"a="):
                return _malformed("bad SCRAM authzid")
            authzid = _saslname(authzid_field[2:])
            if authzid is None:
                return _malformed("bad SCRAM authzid")
        attributes = bare.split(b",")
        if attributes[0].startswith(b"m="):
            # Section 5.1: "m" is reserved; a server MUST fail when it is present.
            return _malformed("SCRAM mandatory extension not supported")
        if len(attributes) < 2 or not attributes[0].startswith(b"n="):
            return _malformed("SCRAM client-first-message without n=")
        if not attributes[1].startswith(b"r="):
            return _malformed("SCRAM client-first-message without r=")
        login = _saslname(attributes[0][2:])
        client_nonce = attributes[1][2:]
        if login is None or not _PRINTABLE_NONCE.fullmatch(client_nonce):
            return _malformed("bad SCRAM user name or nonce")

        account = yield from self._find(login)
        credentials, why_not = self._scram_credentials(account, login, hash_name)
        nonce = client_nonce + self._nonce().encode("ascii")
        server_first = b"r=%s,s=%s,i=%d" % (
            nonce,
            base64.b64encode(credentials.salt),
            credentials.iterations,
        )
        final = cast(bytes, (yield Challenge(server_first)))

        # client-final-message = client-final-message-without-proof "," proof
        without_proof, comma, proof_field = final.rpartition(b",")
        final_attributes = without_proof.split(b",")
        if (
            not comma
            or not proof_field.startswith(b"p=")
            or len(final_attributes) < 2
            or not final_attributes[0].startswith(b"c=")
            or not final_attributes[1].startswith(b"r=")
        ):
            return _malformed("bad SCRAM client-final-message", login)
        # Without channel binding, c= carries the GS2 header again (section 7, cbind-input).
        if _b64(final_attributes[0][2:]) != gs2_header:
            return _malformed("SCRAM channel binding data does not match", login)
        if not hmac.compare_digest(final_attributes[1][2:], nonce):
            return _malformed("SCRAM nonce does not match", login)
        proof = _b64(proof_field[2:])
        size = hashlib.new(hash_name).digest_size
        if proof is None or len(proof) != size:
            return _malformed("bad SCRAM proof", login)

        # Section 3: AuthMessage, ClientSignature, and ClientKey := ClientProof XOR
        # ClientSignature, which is right when H(ClientKey) = StoredKey.
        auth_message = bare + b"," + server_first + b"," + without_proof
        client_signature = hmac.digest(credentials.stored_key, auth_message, hash_name)
        client_key = bytes(p ^ s for p, s in zip(proof, client_signature, strict=True))
        matches = hmac.compare_digest(
            hashlib.new(hash_name, client_key).digest(), credentials.stored_key
        )
        if account is None or why_not is not None:
            return Failure(why_not or "unknown user", authcid=login)
        if not matches:
            return Failure("wrong password", authcid=login)
        if authzid is not None and not _same_user(authzid, login, account):
            return Failure("may not act as another user", FailureKind.AUTHORIZATION, authcid=login)
        server_signature = hmac.digest(credentials.server_key, auth_message, hash_name)
        server_final = b"v=" + base64.b64encode(server_signature)
        if self._success_data:
            return Success(account, login, server_final)
        # RFC 4422 section 3.6: without room for data in the final answer, it goes in a last
        # challenge, and the client answers with an empty response.
        empty = cast(bytes, (yield Challenge(server_final)))
        if empty:
            return _malformed("non-empty response to the SCRAM server-final-message", login)
        return Success(account, login)

    def _scram_credentials(
        self, account: A | None, login: str, hash_name: str
    ) -> tuple[saslkeys.ScramCredentials, str | None]:
        """The credentials to run SCRAM with, and why they are made up (None if real)."""
        if account is not None and account.password:
            stored = passwords.scram_credentials_of(account.password, self.mechanism)
            if stored is not None:
                return stored, None
            plain = passwords.plaintext_of(account.password)
            if plain is not None:
                # The same salt as a made-up one would get: a fresh salt every time would tell
                # these users from unknown ones.
                salt = _stable_salt(login)
                return saslkeys.derive_scram(plain, salt, self._scram_iterations, hash_name), None
            why = f"no {self.mechanism} secret for the user (stored hash)"
        elif account is not None:
            why = "the user has no password"
        else:
            why = "unknown user"
        # Made up, with a salt that is the same for the same name each time, so that asking
        # twice does not tell a real user (whose salt stays) from a made-up one. The keys are
        # random: no proof matches them.
        size = hashlib.new(hash_name).digest_size
        fake = saslkeys.ScramCredentials(
            self._scram_iterations,
            _stable_salt(login),
            secrets.token_bytes(size),
            secrets.token_bytes(size),
        )
        return fake, why


# Per process: salts made from it change when the server restarts, which stored
# {SCRAM-SHA-256} salts do not. Only a client watching across restarts could tell.
_SALT_KEY: Final = secrets.token_bytes(32)


def _stable_salt(login: str) -> bytes:
    return hmac.digest(_SALT_KEY, login.casefold().encode("utf-8"), "sha256")[:16]


def _same_user(authzid: str, authcid: str, account: Account) -> bool:
    """May `authcid`, authenticated as `account`, act as `authzid`? Only as itself: the name it
    logged in with or the account's own name, ignoring case as lookups do."""
    wanted = authzid.casefold()
    return wanted in (authcid.casefold(), account.name.casefold())
