"""What the MTA is told: every failure is a type, mapped to a sysexits code here and only here.

Both sendmail and Postfix retry a delivery only on 75 (EX_TEMPFAIL) and 71 (EX_OSERR), or when
the agent dies by a signal; every other non-zero code bounces the message, 1 included. So the
rule is: a permanent code only when we are sure the message can never be delivered (unknown
user, a refusal by policy, a loop); anything else, including every error we did not foresee, is
75. Postfix quotes our output in the bounce and takes a leading `5.x.x`/`4.x.x` as the DSN
status, so the one line we print starts with the DSN.
"""

from __future__ import annotations

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75
EX_CONFIG = 78


class DeliveryError(Exception):
    """A failure with its exit code and the DSN status the MTA will show."""

    exit_code = EX_TEMPFAIL
    dsn = "4.3.0"

    def __init__(self, text: str, address: str = "", dsn: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.address = address
        if dsn is not None:
            self.dsn = dsn

    def line(self) -> str:
        """The one line for stderr: `5.1.1 <bob@example.test>: user unknown`."""
        who = f"<{self.address}>: " if self.address else ""
        return f"{self.dsn} {who}{self.text}"


class UsageError(DeliveryError):
    exit_code = EX_USAGE
    dsn = "5.3.5"


class BadAddress(DeliveryError):
    """An envelope value that is not an address we can act on (a control character in it).

    EX_USAGE, as sendmail's dsntoexitstat() maps 5.1.3 (bad destination address syntax) and
    5.1.7 (bad sender address syntax): the MTA handed us an argument that is not usable.
    """

    exit_code = EX_USAGE
    dsn = "5.1.3"


class BadMessage(DeliveryError):
    exit_code = EX_DATAERR
    dsn = "5.6.0"


class UnknownUser(DeliveryError):
    exit_code = EX_NOUSER
    dsn = "5.1.1"


class NoMailbox(DeliveryError):
    """The user exists but can never have a mailbox (a system account whose home is
    `/nonexistent`): RFC 3463's X.2.1, mailbox disabled, as a permanent failure. EX_NOUSER,
    so that sendmail and Postfix bounce rather than retry for days."""

    exit_code = EX_NOUSER
    dsn = "5.2.1"


class Refused(DeliveryError):
    """Permanent refusal: access REJECT, `error:` 5xx, a loop, a message too big."""

    exit_code = EX_UNAVAILABLE
    dsn = "5.7.1"


class Loop(Refused):
    """A routing loop, or an expansion that ends nowhere: 5.4.6 "aliasing/forwarding loop
    broken" (sendmail's recipient.c). EX_CONFIG, because sendmail's dsntoexitstat() maps
    5.4.6 (routing loop detected) to it: a permanent failure that both sendmail and Postfix
    bounce, and whose cause is the local configuration (the aliases and the lists they
    include), which is what the administrator reading the bounce has to fix."""

    exit_code = EX_CONFIG
    dsn = "5.4.6"


class TempFailure(DeliveryError):
    exit_code = EX_TEMPFAIL
    dsn = "4.3.0"


def refusal_error(refusal: object, address: str) -> DeliveryError:
    """A map's `Refusal` (code, dsn, text) as the error of the right kind."""
    code = str(getattr(refusal, "code", "550"))
    dsn = str(getattr(refusal, "dsn", "5.0.0"))
    text = str(getattr(refusal, "text", "refused"))
    if code.startswith("4"):
        return TempFailure(text, address, dsn)
    if dsn == "5.4.6":
        return Loop(text, address, dsn)
    if dsn == "5.1.1":
        return UnknownUser(text, address, dsn)
    return Refused(text, address, dsn)


def classify(exc: BaseException, quota_bounce: bool = False) -> DeliveryError:
    """Any exception as a DeliveryError: store and map errors by kind, the rest transient."""
    if isinstance(exc, DeliveryError):
        return exc
    from mailstore.errors import ErrorKind, MailError

    if isinstance(exc, MailError):
        if exc.kind == ErrorKind.NO_QUOTA:
            if quota_bounce:
                return Refused(exc.message, dsn="5.2.2")
            return TempFailure(exc.message, dsn="4.2.2")
        return TempFailure(exc.message, dsn="4.3.0")
    if isinstance(exc, OSError):
        return TempFailure(f"system error: {exc.strerror or exc}", dsn="4.3.0")
    name = type(exc).__name__
    if name == "Interrupted":
        return TempFailure(str(exc), dsn="4.3.0")
    if name == "MapError":
        return TempFailure(str(exc), dsn="4.3.5")
    if name == "ConfigError":
        return TempFailure(f"configuration error: {str(exc).splitlines()[0]}", dsn="4.3.5")
    if isinstance(exc, ImportError):
        # An installation the delivering user cannot read, typically: say which module.
        return TempFailure(f"internal error ({name}: {exc.name})", dsn="4.3.0")
    return TempFailure(f"internal error ({name})", dsn="4.3.0")


def worst(codes: list[int]) -> int:
    """One exit code for several recipients: a retry beats a bounce beats success.

    The MTA applies our one status to every recipient of the invocation, so a transient failure
    for one must make it retry (the others are protected by duplicate suppression or get a
    second copy), and a permanent one must bounce rather than be lost.
    """
    if not codes:
        return EX_OK
    if EX_TEMPFAIL in codes:
        return EX_TEMPFAIL
    failures = [c for c in codes if c != EX_OK]
    return failures[0] if failures else EX_OK


def worst_error(errors: list[DeliveryError | None]) -> DeliveryError | None:
    """One outcome of several copies, as `worst` chooses among exit codes: None when every
    copy was made, else a temporary failure before a permanent one, else the first."""
    failures = [e for e in errors if e is not None]
    for err in failures:
        if err.exit_code == EX_TEMPFAIL:
            return err
    return failures[0] if failures else None


# The reply code LMTP (RFC 2033 4.2: one per recipient after DATA) gives a failure, by its DSN
# (RFC 3463 class.subject.detail); other DSNs get 451 (class 4) or 550 (class 5). Mapped here
# once, as `exit_code` is for mda.
_REPLY_CODES = {
    "4.2.2": 452,  # mailbox over quota: RFC 5321's "insufficient system storage"
    "4.3.1": 452,  # the server's memory or disk
    "4.5.3": 452,  # too many recipients (RFC 5321 4.5.3.1.10)
    "5.2.2": 552,  # over quota for good ([mda] quota_bounce)
    "5.3.4": 552,  # message too big
    "5.1.3": 553,  # a recipient that is no usable address
    "5.1.7": 553,  # a sender that is no usable address
    "5.6.7": 553,  # a UTF-8 address without SMTPUTF8 (RFC 6531 3.5)
    "5.4.6": 554,  # a loop
    "5.6.0": 554,  # a message we cannot take (empty, NUL, bare LF)
}


def smtp_reply(err: DeliveryError) -> int:
    """The SMTP reply code for a failure (the text is `err.line()`)."""
    code = _REPLY_CODES.get(err.dsn)
    if code is not None:
        return code
    return 451 if err.exit_code == EX_TEMPFAIL or err.dsn.startswith("4") else 550
