"""SASL (mra/auth/sasl.py): the server side of PLAIN, LOGIN, CRAM-MD5 and SCRAM-SHA-256, fed
whatever a client may send once base64 is taken off.

Input: byte 0 picks the mechanism (bits 0-1), whether the client sends an initial response
(bit 2), whether success data goes in the final answer (bit 3) and whether the connection is
secure (bit 4); the rest is the client's responses, each a length octet and that many
octets. A response `PROOF` (SCRAM) or `DIGEST` (CRAM-MD5) is replaced by the right answer
computed by an honest client for the user and password named before it (`user` and
`pencil`, ...), so that the fuzzer reaches the paths after a correct proof too.

Properties:
- `step` and `complete` never raise while the exchange is driven by the book;
- a Success names the account that was looked up, and comes only from the right password:
  for PLAIN and LOGIN the verification said yes for that account's stored password; for
  CRAM-MD5 and SCRAM only when the honest client answered;
- nothing the server returns shows the password the client sent (the user names in
  outcomes and failures are logged);
- plaintext mechanisms need a secure connection (PlaintextNotAllowed otherwise).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main
    from mra.auth import passwords, saslkeys
    from mra.auth.sasl import (
        MECHANISMS,
        Challenge,
        Failure,
        NeedsLookup,
        NeedsVerification,
        PlaintextNotAllowed,
        SaslServer,
        Success,
    )


class Account:
    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password

    def __repr__(self) -> str:
        return f"Account({self.name!r})"


def _scram_stored(password: bytes, salt: bytes, iterations: int = 4096) -> str:
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    keys = ",".join(base64.b64encode(k).decode() for k in (stored_key, server_key))
    return f"{{SCRAM-SHA-256}}{iterations},{base64.b64encode(salt).decode()},{keys}"


PASSWORDS = {"tim": b"tanstaaftanstaaf", "user": b"pencil", "cram": b"secret", "a,b=c": b"x"}
USERS = {
    "tim": Account("tim", "{PLAIN}tanstaaftanstaaf"),
    "user": Account("user", _scram_stored(b"pencil", b"salt-of-user")),
    "cram": Account("cram", "{CRAM-MD5}" + saslkeys.cram_md5_context(b"secret").hex()),
    "a,b=c": Account("a,b=c", "{PLAIN}x"),
    "nopass": Account("nopass", ""),
}


def lookup(login: str) -> Account | None:
    return USERS.get(login)


class Verify:
    """passwords.verify, remembering what it said."""

    def __init__(self) -> None:
        self.said: list[tuple[str, bool]] = []

    def __call__(self, stored: str, password: bytes, /, *, user: str | None = None) -> bool:
        ok = passwords.verify(stored, password, user=user)
        self.said.append((stored, ok))
        return ok


def honest_scram(first: bytes, server_first: bytes) -> bytes:
    """The client-final-message a client knowing the password would send."""
    gs2, _, rest = first.partition(b",")
    authzid, _, bare = rest.partition(b",")
    login = bare.split(b",")[0][2:].replace(b"=2C", b",").replace(b"=3D", b"=").decode()
    attrs = dict(a.split(b"=", 1) for a in server_first.split(b",") if b"=" in a)
    salted = hashlib.pbkdf2_hmac(
        "sha256", PASSWORDS.get(login, b"?"), base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = b"c=" + base64.b64encode(gs2 + b"," + authzid + b",") + b",r=" + attrs[b"r"]
    auth_message = bare + b"," + server_first + b"," + without_proof
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return without_proof + b",p=" + base64.b64encode(proof)


def responses(data: bytes) -> list[bytes]:
    out = []
    pos = 0
    while pos < len(data):
        n = data[pos]
        out.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


def password_sent(mechanism: str, sent: list[bytes]) -> str | None:
    """What the client sent as its password (PLAIN, LOGIN), when it is long enough to look
    for and not also part of what it sent as its name (a user who typed the password into
    the name field has it shown as a name: that is the name, not the password, leaking)."""
    login = password = b""
    if mechanism == "PLAIN" and sent and sent[0].count(b"\0") == 2:
        authzid, login, password = sent[0].split(b"\0")
        login += b"\0" + authzid
    elif mechanism == "LOGIN" and len(sent) >= 2:
        login, password = sent[0], sent[1]
    text = password.decode("utf-8", "replace")
    if len(text) < 4 or text in login.decode("utf-8", "replace"):
        return None
    return text


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode = data[0]
    mechanism = MECHANISMS[(mode & 3) % len(MECHANISMS)]
    secure = bool(mode & 16)
    verify = Verify()
    try:
        server = SaslServer(
            mechanism,
            lookup,
            verify,
            secure=secure,
            nonce=lambda: "fuzz-nonce",
            dummy_hash="{PLAIN}not-a-password",
            success_data=bool(mode & 8),
        )
    except PlaintextNotAllowed:
        if secure:
            raise
        return
    if not secure and mechanism in ("PLAIN", "LOGIN"):
        raise Finding(f"{mechanism} allowed without a secure connection")
    queue = responses(data[1:])
    honest = False
    first = b""
    challenges: list[bytes] = []
    initial = queue.pop(0) if (mode & 4 and queue) else None
    if initial is not None:
        first = initial
    outcome = server.step(initial)
    sent: list[bytes] = [] if initial is None else [initial]
    while True:
        secret = password_sent(mechanism, sent)
        shown = [getattr(outcome, "login", None), getattr(outcome, "authcid", None)]
        if isinstance(outcome, NeedsVerification):  # what a log line of it shows, but the name
            shown.append(repr(outcome).replace(repr(outcome.login), ""))
        if secret is not None and any(secret in text for text in shown if text):
            raise Finding(f"an outcome shows a password: {outcome!r}")
        if isinstance(outcome, (NeedsLookup, NeedsVerification)):
            outcome = server.complete(outcome.run())
        elif isinstance(outcome, Challenge):
            challenges.append(outcome.data)
            if not queue:
                return
            answer = queue.pop(0)
            if not first and mechanism == "SCRAM-SHA-256":
                first = answer
            elif answer == b"PROOF" and mechanism == "SCRAM-SHA-256" and first:
                try:
                    answer = honest_scram(first, outcome.data)
                    honest = True
                except (ValueError, KeyError, IndexError, UnicodeDecodeError):
                    pass
            elif answer.endswith(b"DIGEST") and mechanism == "CRAM-MD5":
                login = answer[:-6].rstrip(b" ")
                key = PASSWORDS.get(login.decode("utf-8", "replace"), b"?")
                digest = hmac.digest(key, outcome.data, "md5").hex().encode()
                answer = login + b" " + digest
                honest = True
            sent.append(answer)
            outcome = server.step(answer)
        else:
            break
    if isinstance(outcome, Failure):
        return
    assert isinstance(outcome, Success)
    account = USERS.get(outcome.authcid)
    if account is None or outcome.account is not account:
        raise Finding(f"Success for {outcome.authcid!r} with the account {outcome.account!r}")
    if mechanism in ("PLAIN", "LOGIN"):
        if not verify.said or verify.said[-1] != (account.password, True):
            raise Finding(f"{mechanism} succeeded for {account!r}; the checks said {verify.said}")
    elif not honest:
        raise Finding(f"{mechanism} succeeded for {account!r} without the right answer")


if __name__ == "__main__":
    main(test_one_input)
