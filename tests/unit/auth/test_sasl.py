"""SASL exchanges, with the RFCs' own examples where they have one."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

from mra.auth import passwords
from mra.auth.sasl import (
    Challenge,
    Failure,
    FailureKind,
    NeedsLookup,
    NeedsVerification,
    Outcome,
    PlaintextNotAllowed,
    SaslServer,
    Success,
    UnknownMechanism,
    mechanisms,
)


@dataclass(frozen=True)
class Account:
    name: str
    password: str


def _scram_stored(password: bytes, salt_b64: str, iterations: int = 4096) -> str:
    """A {SCRAM-SHA-256} secret computed here, independently of mra.auth."""
    salt = base64.b64decode(salt_b64)
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    keys = ",".join(base64.b64encode(key).decode() for key in (stored_key, server_key))
    return f"{{SCRAM-SHA-256}}{iterations},{salt_b64},{keys}"


USERS = {
    "tim": Account("tim", "{PLAIN}tanstaaftanstaaf"),
    "kurt": Account("Kurt", "{PLAIN}xipj3plmq"),
    "user": Account("user", _scram_stored(b"pencil", "W22ZaJ0SNY7soEsUEjb6gQ==")),
    "cram": Account(
        "cram", "{CRAM-MD5}d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b"
    ),
    "crypt": Account("crypt", passwords.hash_password("secret", "SHA512-CRYPT")),
    "nopass": Account("nopass", ""),
    "a,b=c": Account("a,b=c", "{PLAIN}pencil"),
}


def lookup(login: str) -> Account | None:
    return USERS.get(login.lower())


class RecordingVerify:
    """passwords.verify, remembering what it was asked to check."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, str | None]] = []

    def __call__(self, stored: str, password: bytes, /, *, user: str | None = None) -> bool:
        self.calls.append((stored, password, user))
        return passwords.verify(stored, password, user=user)


def server(
    mechanism: str,
    *,
    secure: bool = True,
    verify: Callable[..., bool] = passwords.verify,
    **options: object,
) -> SaslServer[Account]:
    return SaslServer(mechanism, lookup, verify, secure=secure, **options)  # type: ignore[arg-type]


def drive(
    sasl: SaslServer[Account], initial: bytes | None, responses: Sequence[bytes] = ()
) -> tuple[Outcome[Account], list[bytes]]:
    """Run the exchange, doing lookups and verifications inline; the final outcome and every
    challenge sent."""
    pending = list(responses)
    challenges: list[bytes] = []
    outcome = sasl.step(initial)
    while True:
        if isinstance(outcome, NeedsLookup | NeedsVerification):
            outcome = sasl.complete(outcome.run())
        elif isinstance(outcome, Challenge):
            challenges.append(outcome.data)
            if not pending:
                return outcome, challenges
            outcome = sasl.step(pending.pop(0))
        else:
            assert sasl.done
            return outcome, challenges


# --- advertising ----------------------------------------------------------------------------


def test_mechanisms() -> None:
    everything = ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
    assert mechanisms(True, False) == everything
    assert mechanisms(False, True) == everything
    assert mechanisms(False, False) == ["SCRAM-SHA-256", "CRAM-MD5"]
    assert mechanisms(True, False, usable={"PLAIN", "LOGIN"}) == ["PLAIN", "LOGIN"]
    assert mechanisms(False, False, usable={"PLAIN", "LOGIN"}) == []


def test_unknown_mechanism() -> None:
    for name in ("DIGEST-MD5", "SCRAM-SHA-256-PLUS", "GSSAPI", ""):
        with pytest.raises(UnknownMechanism):
            server(name)


def test_plaintext_mechanisms_need_a_secure_connection() -> None:
    for name in ("PLAIN", "login"):
        with pytest.raises(PlaintextNotAllowed):
            server(name, secure=False)
        server(name, secure=False, allow_plaintext=True)
    server("CRAM-MD5", secure=False)
    server("SCRAM-SHA-256", secure=False)


def test_mechanism_names_ignore_case() -> None:
    assert server("scram-sha-256").mechanism == "SCRAM-SHA-256"


# --- PLAIN (RFC 4616) -----------------------------------------------------------------------


def test_plain_rfc4616_first_example() -> None:
    # Section 4: no initial response, an empty challenge, then "<NUL>tim<NUL>tanstaaftanstaaf".
    outcome, challenges = drive(server("PLAIN"), None, [b"\0tim\0tanstaaftanstaaf"])
    assert challenges == [b""]
    assert outcome == Success(USERS["tim"], "tim")


def test_plain_rfc4616_second_example_refuses_another_authzid() -> None:
    # Section 4: Kurt's password is right, but he may not act as Ursel.
    outcome, _ = drive(server("PLAIN"), b"Ursel\0Kurt\0xipj3plmq")
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.AUTHORIZATION
    assert outcome.authcid == "Kurt"


def test_plain_authzid_may_name_the_same_user() -> None:
    assert isinstance(drive(server("PLAIN"), b"Kurt\0Kurt\0xipj3plmq")[0], Success)
    assert isinstance(drive(server("PLAIN"), b"kurt\0KURT\0xipj3plmq")[0], Success)


def test_plain_initial_response() -> None:
    outcome, challenges = drive(server("PLAIN"), b"\0tim\0tanstaaftanstaaf")
    assert challenges == []
    assert isinstance(outcome, Success)
    assert outcome.account.name == "tim"


def test_plain_wrong_password() -> None:
    outcome, _ = drive(server("PLAIN"), b"\0tim\0wrong")
    assert outcome == Failure("wrong password", FailureKind.AUTHENTICATION, "tim")


def test_plain_authzid_refusal_comes_after_the_password() -> None:
    # Otherwise AUTHORIZATIONFAILED would be told to somebody without the password.
    outcome, _ = drive(server("PLAIN"), b"Ursel\0Kurt\0wrong")
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.AUTHENTICATION


def test_plain_unknown_user_is_checked_against_the_dummy_hash() -> None:
    verify = RecordingVerify()
    sasl = server("PLAIN", verify=verify)
    outcome = sasl.step(b"\0nobody\0secret")
    assert isinstance(outcome, NeedsLookup)
    assert outcome.login == "nobody"
    outcome = sasl.complete(outcome.run())
    assert isinstance(outcome, NeedsVerification)
    assert outcome.account is None
    outcome = sasl.complete(outcome.run())
    assert outcome == Failure("unknown user", FailureKind.AUTHENTICATION, "nobody")
    assert verify.calls == [(passwords.DUMMY_HASH, b"secret", "nobody")]


def test_plain_user_without_a_password() -> None:
    verify = RecordingVerify()
    outcome, _ = drive(server("PLAIN", verify=verify), b"\0nopass\0")
    assert isinstance(outcome, Failure)  # empty password: malformed
    outcome, _ = drive(server("PLAIN", verify=verify), b"\0nopass\0anything")
    assert outcome == Failure("the user has no password", FailureKind.AUTHENTICATION, "nopass")
    assert verify.calls == [(passwords.DUMMY_HASH, b"anything", "nopass")]


def test_plain_even_a_dummy_match_fails() -> None:
    outcome, _ = drive(server("PLAIN", dummy_hash="{PLAIN}guess"), b"\0nobody\0guess")
    assert isinstance(outcome, Failure)


@pytest.mark.parametrize(
    "message",
    [
        b"",  # "=" in IMAP: an empty initial response
        b"tim\0tanstaaftanstaaf",
        b"\0tim\0tanstaaftanstaaf\0",
        b"\0\0tanstaaftanstaaf",
        b"\0tim\0",
        b"\0t\xffm\0tanstaaftanstaaf",
        b"\0tim\0tanstaaf\xff",
    ],
)
def test_plain_malformed(message: bytes) -> None:
    outcome, _ = drive(server("PLAIN"), message)
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


# --- LOGIN (draft-murchison-sasl-login) -----------------------------------------------------


def test_login() -> None:
    outcome, challenges = drive(server("LOGIN"), None, [b"tim", b"tanstaaftanstaaf"])
    assert challenges == [b"Username:", b"Password:"]
    assert outcome == Success(USERS["tim"], "tim")


def test_login_initial_response_is_the_user_name() -> None:
    outcome, challenges = drive(server("LOGIN"), b"tim", [b"tanstaaftanstaaf"])
    assert challenges == [b"Password:"]
    assert isinstance(outcome, Success)


def test_login_failures() -> None:
    outcome, _ = drive(server("LOGIN"), None, [b"tim", b"wrong"])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.AUTHENTICATION
    outcome, _ = drive(server("LOGIN"), None, [b"", b"x"])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED
    outcome, _ = drive(server("LOGIN"), None, [b"tim", b"a\0b"])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


# --- CRAM-MD5 (RFC 2195) --------------------------------------------------------------------

RFC2195_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
RFC2195_RESPONSE = b"tim b913a602c7eda7a495b4e6e7334d3890"


def cram_server() -> SaslServer[Account]:
    return server(
        "CRAM-MD5",
        secure=False,
        hostname="postoffice.reston.mci.net",
        nonce=lambda: "1896.697170952",
    )


def test_cram_md5_rfc2195_example_with_a_clear_text_password() -> None:
    outcome, challenges = drive(cram_server(), None, [RFC2195_RESPONSE])
    assert challenges == [RFC2195_CHALLENGE]
    assert outcome == Success(USERS["tim"], "tim")


def test_cram_md5_rfc2195_example_with_a_stored_context() -> None:
    response = b"cram" + RFC2195_RESPONSE[3:]
    outcome, _ = drive(cram_server(), None, [response])
    assert outcome == Success(USERS["cram"], "cram")
    # Upper-case hex is accepted too.
    outcome, _ = drive(cram_server(), None, [response.upper().replace(b"CRAM", b"cram")])
    assert isinstance(outcome, Success)


def test_cram_md5_wrong_digest() -> None:
    outcome, _ = drive(cram_server(), None, [b"tim " + b"0" * 32])
    assert outcome == Failure("wrong password", FailureKind.AUTHENTICATION, "tim")


def test_cram_md5_needs_a_usable_stored_password() -> None:
    outcome, _ = drive(cram_server(), None, [b"crypt " + b"0" * 32])
    assert isinstance(outcome, Failure)
    assert "CRAM-MD5" in outcome.reason
    outcome, _ = drive(cram_server(), None, [b"nobody " + b"0" * 32])
    assert outcome == Failure("unknown user", FailureKind.AUTHENTICATION, "nobody")


def test_cram_md5_challenge_is_fresh() -> None:
    first = drive(server("CRAM-MD5"), None)[1][0]
    second = drive(server("CRAM-MD5"), None)[1][0]
    assert first != second
    assert first.startswith(b"<") and first.endswith(b"@localhost>")


@pytest.mark.parametrize(
    "response", [b"tim", b"tim b913a602", b" " + b"0" * 32, b"tim " + b"g" * 32]
)
def test_cram_md5_malformed(response: bytes) -> None:
    outcome, _ = drive(cram_server(), None, [response])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


def test_cram_md5_takes_no_initial_response() -> None:
    outcome, _ = drive(cram_server(), b"tim")
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


# --- SCRAM-SHA-256 (RFC 5802, RFC 7677) -----------------------------------------------------

RFC7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def scram_server(*, success_data: bool = False) -> SaslServer[Account]:
    return server(
        "SCRAM-SHA-256",
        secure=False,
        nonce=lambda: RFC7677_SERVER_NONCE,
        success_data=success_data,
    )


def test_scram_sha256_rfc7677_example() -> None:
    # Section 3, byte for byte, from the stored secret of "pencil" with the example's salt.
    outcome, challenges = drive(scram_server(), RFC7677_CLIENT_FIRST, [RFC7677_CLIENT_FINAL, b""])
    assert challenges == [RFC7677_SERVER_FIRST, RFC7677_SERVER_FINAL]
    assert outcome == Success(USERS["user"], "user")


def test_scram_sha256_rfc7677_example_with_success_data() -> None:
    outcome, challenges = drive(
        scram_server(success_data=True), RFC7677_CLIENT_FIRST, [RFC7677_CLIENT_FINAL]
    )
    assert challenges == [RFC7677_SERVER_FIRST]
    assert outcome == Success(USERS["user"], "user", RFC7677_SERVER_FINAL)


def test_scram_sha256_without_initial_response() -> None:
    outcome, challenges = drive(
        scram_server(), None, [RFC7677_CLIENT_FIRST, RFC7677_CLIENT_FINAL, b""]
    )
    assert challenges == [b"", RFC7677_SERVER_FIRST, RFC7677_SERVER_FINAL]
    assert isinstance(outcome, Success)


def test_scram_sha256_wrong_proof() -> None:
    final = RFC7677_CLIENT_FINAL[:-10] + b"AAAAAAAAA="
    outcome, _ = drive(scram_server(), RFC7677_CLIENT_FIRST, [final])
    assert outcome == Failure("wrong password", FailureKind.AUTHENTICATION, "user")


class ScramClient:
    """A SCRAM-SHA-256 client (RFC 5802 section 3), written here from the RFC."""

    def __init__(self, user: bytes, password: bytes, gs2_header: bytes = b"n,,") -> None:
        self.password = password
        self.gs2_header = gs2_header
        self.bare = b"n=" + user + b",r=clientnonce"

    def first(self) -> bytes:
        return self.gs2_header + self.bare

    def final(self, server_first: bytes) -> bytes:
        fields = dict(item.split(b"=", 1) for item in server_first.split(b","))
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password, base64.b64decode(fields[b"s"]), int(fields[b"i"])
        )
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = b"c=" + base64.b64encode(self.gs2_header) + b",r=" + fields[b"r"]
        auth_message = self.bare + b"," + server_first + b"," + without_proof
        signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self.expected_final = b"v=" + base64.b64encode(
            hmac.digest(hmac.digest(salted, b"Server Key", "sha256"), auth_message, "sha256")
        )
        return without_proof + b",p=" + base64.b64encode(proof)


def scram_login(
    user: bytes, password: bytes, gs2_header: bytes = b"n,,"
) -> tuple[Outcome[Account], list[bytes], ScramClient]:
    client = ScramClient(user, password, gs2_header)
    sasl = server("SCRAM-SHA-256", secure=False)
    outcome = sasl.step(client.first())
    challenges: list[bytes] = []
    while not isinstance(outcome, Success | Failure):
        if isinstance(outcome, NeedsLookup | NeedsVerification):
            outcome = sasl.complete(outcome.run())
            continue
        challenges.append(outcome.data)
        response = client.final(outcome.data) if len(challenges) == 1 else b""
        outcome = sasl.step(response)
    return outcome, challenges, client


def test_scram_sha256_from_a_clear_text_password() -> None:
    outcome, challenges, client = scram_login(b"tim", b"tanstaaftanstaaf")
    assert outcome == Success(USERS["tim"], "tim")
    assert challenges[1] == client.expected_final
    assert b",i=4096" in challenges[0]


def test_scram_sha256_from_a_clear_text_password_wrong() -> None:
    outcome, _, _ = scram_login(b"tim", b"wrong")
    assert outcome == Failure("wrong password", FailureKind.AUTHENTICATION, "tim")


def test_scram_sha256_escaped_user_name() -> None:
    # RFC 5802 section 5.1: ',' and '=' in the name travel as "=2C" and "=3D".
    outcome, _, _ = scram_login(b"a=2Cb=3Dc", b"pencil")
    assert isinstance(outcome, Success)
    assert outcome.authcid == "a,b=c"


def test_scram_sha256_y_flag_is_accepted() -> None:
    # "y": the client could bind a channel but believes we cannot, which is true.
    outcome, _, _ = scram_login(b"user", b"pencil", b"y,,")
    assert isinstance(outcome, Success)


def test_scram_sha256_authzid() -> None:
    outcome, _, _ = scram_login(b"user", b"pencil", b"n,a=user,")
    assert isinstance(outcome, Success)
    outcome, _, _ = scram_login(b"user", b"pencil", b"n,a=admin,")
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.AUTHORIZATION


def test_scram_sha256_unknown_user_looks_like_a_real_one() -> None:
    # The same made-up salt each time, a full exchange, and a plain failure at the end.
    first = scram_login(b"nobody", b"pencil")
    second = scram_login(b"nobody", b"pencil")
    assert first[0] == Failure("unknown user", FailureKind.AUTHENTICATION, "nobody")
    salt = [dict(x.split(b"=", 1) for x in c[1][0].split(b","))[b"s"] for c in (first, second)]
    assert salt[0] == salt[1]
    assert len(base64.b64decode(salt[0])) == 16


def test_scram_sha256_clear_text_users_keep_their_salt_too() -> None:
    salts = {scram_login(b"tim", b"x")[1][0].split(b",")[1] for _ in range(2)}
    assert len(salts) == 1


def test_scram_sha256_users_without_a_usable_secret() -> None:
    outcome, _, _ = scram_login(b"crypt", b"secret")
    assert isinstance(outcome, Failure)
    assert "SCRAM-SHA-256" in outcome.reason
    outcome, _, _ = scram_login(b"nopass", b"")
    assert isinstance(outcome, Failure)


@pytest.mark.parametrize(
    "first",
    [
        b"p=tls-unique,,n=user,r=abc",  # channel binding required: not offered
        b"x,,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",  # RFC 5802 section 5.1: a server MUST fail on "m"
        b"n,,r=abc,n=user",
        b"n,,n=user",
        b"n,,n=us=er,r=abc",  # '=' not as =2C or =3D
        b"n,,n=,r=abc",
        b"n,,n=user,r=",
        b"n,,n=user,r=a\x01b",
        b"n,,n=\xff,r=abc",
        b"n,b=user,n=user,r=abc",
        b"n,n=user,r=abc",
        b"",
    ],
)
def test_scram_sha256_malformed_client_first(first: bytes) -> None:
    outcome, _ = drive(scram_server(), first)
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


@pytest.mark.parametrize(
    "final",
    [
        RFC7677_CLIENT_FINAL.replace(b"c=biws", b"c=eSws"),  # "y,," where "n,," was sent
        RFC7677_CLIENT_FINAL.replace(b"k0,", b"k1,"),  # another nonce
        RFC7677_CLIENT_FINAL.replace(b"p=", b"q="),
        RFC7677_CLIENT_FINAL[:-4],  # a short proof
        b"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"garbage",
    ],
)
def test_scram_sha256_malformed_client_final(final: bytes) -> None:
    outcome, _ = drive(scram_server(), RFC7677_CLIENT_FIRST, [final])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


def test_scram_sha256_final_response_must_be_empty() -> None:
    outcome, _ = drive(scram_server(), RFC7677_CLIENT_FIRST, [RFC7677_CLIENT_FINAL, b"x"])
    assert isinstance(outcome, Failure)
    assert outcome.kind == FailureKind.MALFORMED


def test_scram_iterations_are_at_least_4096() -> None:
    outcome, _ = drive(server("SCRAM-SHA-256", scram_iterations=10), b"n,,n=tim,r=abc")
    assert isinstance(outcome, Challenge)
    assert outcome.data.endswith(b",i=4096")


# --- driving it wrong -----------------------------------------------------------------------


def test_step_after_the_end() -> None:
    sasl = server("PLAIN")
    drive(sasl, b"\0tim\0tanstaaftanstaaf")
    with pytest.raises(RuntimeError):
        sasl.step(b"")


def test_step_while_an_action_is_pending() -> None:
    sasl = server("PLAIN")
    outcome = sasl.step(b"\0tim\0x")
    assert isinstance(outcome, NeedsLookup)
    with pytest.raises(RuntimeError):
        sasl.step(b"")


def test_complete_with_nothing_pending() -> None:
    with pytest.raises(RuntimeError):
        server("PLAIN").complete(None)


def test_complete_a_verification_with_a_bool() -> None:
    sasl = server("PLAIN")
    lookup_action = sasl.step(b"\0tim\0x")
    assert isinstance(lookup_action, NeedsLookup)
    verification = sasl.complete(lookup_action.run())
    assert isinstance(verification, NeedsVerification)
    with pytest.raises(TypeError):
        sasl.complete("yes")
    assert sasl.complete(False) == Failure("wrong password", FailureKind.AUTHENTICATION, "tim")


def test_response_to_a_challenge_is_bytes() -> None:
    sasl = server("LOGIN")
    assert sasl.step(None) == Challenge(b"Username:")
    with pytest.raises(ValueError):
        sasl.step(None)


def test_actions_never_show_the_password() -> None:
    sasl = server("PLAIN")
    lookup_action = sasl.step(b"\0tim\0hunter2")
    assert isinstance(lookup_action, NeedsLookup)
    verification = sasl.complete(lookup_action.run())
    assert "hunter2" not in repr(verification)
    assert "tanstaaf" not in repr(verification)
    assert "tim" in repr(verification)
