"""Messages a script makes us send: vacation replies (RFC 5230, RFC 3834), notifications
(RFC 5435, RFC 5436) and rejection notices (RFC 5429 with an RFC 8098 MDN), all handed to the
MTA through `[mda] sendmail` with a null envelope sender (`-f <>`: nothing ever bounces back
to an auto-reply, RFC 3834 section 3.3).

Who gets a vacation reply is decided here, before anything is sent (RFC 5230 section 4.5 and
what Pigeonhole checks): never the null sender, a system address (MAILER-DAEMON, LISTSERV,
majordomo, owner-*, *-request), one of the user's own addresses, a message that is
auto-submitted, from a list (List-Id and the other RFC 2369/2919 fields) or marked
Precedence bulk, list or junk, nor a message none of whose To, Cc, Bcc, Resent-To, Resent-Cc
or Resent-Bcc holds one of the user's addresses (the recipient, and :addresses). The last
check is at most one reply per sender, handle and period, in the tracking file.

`send_rejection`, `send_vacation` and `send_notification` carry out those actions for
`delivery.perform`: here rather than there, because most deliveries take none of them and
need not load them.
"""

from __future__ import annotations

import os
import time

from .actions import Notify, Reject, Vacation
from .encode import encode_header_value
from .message import SieveMessage, address_part

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

    from .delivery import Outcome

_LIST_FIELDS = (
    "list-id",
    "list-owner",
    "list-subscribe",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-archive",
)
_RECIPIENT_FIELDS = ("to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc")
_SYSTEM_LOCALPARTS = frozenset({"mailer-daemon", "listserv", "majordomo"})


def _lower_address(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local.lower()}@{domain.lower()}" if at else address.lower()


def _without_detail(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}" if at else address


def is_system_address(address: str) -> bool:
    """RFC 5230 section 4.6 / RFC 3834 section 2: addresses that never get a reply."""
    local = (address_part(address, "localpart") or address).lower()
    return local in _SYSTEM_LOCALPARTS or local.startswith("owner-") or local.endswith("-request")


def is_automatic(msg: SieveMessage) -> str:
    """Why a message must get no automatic answer ("" if it may): auto-submitted (RFC 3834
    section 2), from a list (RFC 2369, 2919) or marked bulk, list or junk."""
    for value in msg.header("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            return "the message is auto-submitted"
    for name in _LIST_FIELDS:
        if msg.has_header(name):
            return f"the message comes from a mailing list ({name})"
    for value in msg.header("precedence"):
        if value.strip().lower() in ("bulk", "list", "junk"):
            return f"the message has Precedence: {value.strip().lower()}"
    for value in msg.header("x-auto-response-suppress"):
        words = {w.strip().lower() for w in value.split(",")}
        if words & {"all", "oof", "autoreply"}:
            return "the message asks for no automatic reply (X-Auto-Response-Suppress)"
    return ""


def vacation_refusal(action: Vacation, msg: SieveMessage, sender: str, recipient: str) -> str:
    """Why no reply is sent for this message ("" if one may be)."""
    if not sender or sender == "<>":
        return "the envelope sender is empty"
    if is_system_address(sender):
        return f"the sender <{sender}> is a system address"
    ours = {_lower_address(a) for a in (recipient, _without_detail(recipient), *action.addresses)}
    if action.sender:
        ours.add(_lower_address(action.sender))
    ours.discard("")
    if _lower_address(sender) in ours:
        return "the sender is the user"
    automatic = is_automatic(msg)
    if automatic:
        return automatic
    listed = {
        _lower_address(form)
        for name in _RECIPIENT_FIELDS
        for a in msg.addresses(name)
        for form in (a, _without_detail(a))
    }
    if not listed & ours:
        return "none of the user's addresses is in To, Cc or Bcc"
    return ""


def _date() -> str:
    """RFC 5322 section 3.3, in the local zone."""
    now = time.time()
    t = time.localtime(now)
    offset = (t.tm_gmtoff or 0) // 60
    sign = "-" if offset < 0 else "+"
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (
        f"{days[t.tm_wday]}, {t.tm_mday} {months[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {sign}{abs(offset) // 60:02d}"
        f"{abs(offset) % 60:02d}"
    )


def _message_id(domain: str) -> str:
    return f"<{int(time.time())}.{os.getpid()}.{os.urandom(6).hex()}@{domain or 'localhost'}>"


def _field(name: str, value: str) -> bytes:
    return f"{name}: {encode_header_value(name, value)}\r\n".encode("ascii", "replace")


def _text_body(text: str) -> tuple[bytes, bytes]:
    """(MIME fields, body) for UTF-8 text; 8bit unless a line is too long for it."""
    body = text.replace("\r\n", "\n").replace("\n", "\r\n")
    if not body.endswith("\r\n"):
        body += "\r\n"
    data = body.encode("utf-8", "replace")
    fields = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    if data.isascii() and all(len(line) <= 998 for line in data.split(b"\r\n")):
        return fields + b"Content-Transfer-Encoding: 7bit\r\n", data
    import binascii

    encoded = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), istext=True).replace(b"\n", b"\r\n")
    return fields + b"Content-Transfer-Encoding: quoted-printable\r\n", encoded


def vacation_reply(action: Vacation, msg: SieveMessage, sender: str, recipient: str) -> bytes:
    """The reply (RFC 5230 section 5): to the envelope sender, from :from or the recipient,
    Subject from :subject or "Auto: " and the original's, In-Reply-To and References so that
    it threads, Auto-Submitted: auto-replied (RFC 3834 section 5)."""
    subjects = msg.header("subject")
    subject = (
        action.subject
        if action.subject is not None
        else "Auto: " + (subjects[0] if subjects else "")
    )
    head = bytearray()
    head += _field("From", action.sender or recipient)
    head += _field("To", sender)
    head += _field("Subject", subject)
    head += f"Date: {_date()}\r\n".encode()
    domain = address_part(recipient, "domain") or ""
    head += f"Message-ID: {_message_id(domain)}\r\n".encode()
    ids = [v.strip() for v in msg.header("message-id") if v.strip()]
    if ids:
        head += _field("In-Reply-To", ids[0])
        references = " ".join(v.strip() for v in msg.header("references") if v.strip())
        head += _field("References", f"{references} {ids[0]}".strip())
    head += b"Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\n"
    if action.mime:
        # RFC 5230 section 4.8: the reason is a MIME entity, headers and body.
        entity = action.reason.replace("\r\n", "\n").replace("\n", "\r\n").lstrip("\r\n")
        return bytes(head) + b"MIME-Version: 1.0\r\n" + entity.encode("utf-8", "replace")
    fields, body = _text_body(action.reason)
    return bytes(head + fields + b"\r\n" + body)


def notification(action: Notify, msg: SieveMessage, recipient: str) -> tuple[list[str], bytes]:
    """(recipients, message) of a mailto notification (RFC 5436 section 2.7)."""
    from .notify import Mailto, parse_mailto

    mailto = parse_mailto(action.method)
    assert isinstance(mailto, Mailto)
    froms = msg.header("from")
    subjects = msg.header("subject")
    default = f"{froms[0] if froms else ''} [{subjects[0] if subjects else ''}]"
    text = action.message if action.message is not None else default
    head = bytearray()
    head += _field("From", action.sender or recipient)
    head += _field("To", ", ".join(mailto.recipients))
    subject = next((v for n, v in mailto.headers if n.lower() == "subject"), text)
    head += _field("Subject", subject)
    for name, value in mailto.headers:
        if name.lower() != "subject":
            head += _field(name, value)
    head += f"Date: {_date()}\r\n".encode()
    head += f"Message-ID: {_message_id(address_part(recipient, 'domain') or '')}\r\n".encode()
    head += _field("Auto-Submitted", f'auto-notified; owner-email="{recipient}"')
    importance = {"1": "high", "3": "low"}.get(action.importance)
    if importance:
        head += _field("Importance", importance)
    fields, body = _text_body(mailto.body or text)
    return mailto.recipients, bytes(head + fields + b"\r\n" + body)


def rejection(
    reason: str, msg: SieveMessage, original: bytes, sender: str, recipient: str
) -> bytes:
    """The rejection notice of "reject" (RFC 5429 section 2.1.1): an MDN (RFC 8098) whose
    disposition is "deleted", with the reason and the original message."""
    boundary = "=_" + os.urandom(9).hex()
    subjects = msg.header("subject")
    ids = [v.strip() for v in msg.header("message-id") if v.strip()]
    hostname = os.uname().nodename
    head = bytearray()
    head += _field(
        "From",
        f"Mail Delivery Subsystem <MAILER-DAEMON@{address_part(recipient, 'domain') or hostname}>",
    )
    head += _field("To", sender)
    head += _field("Subject", "Rejected: " + (subjects[0] if subjects else ""))
    head += f"Date: {_date()}\r\n".encode()
    head += f"Message-ID: {_message_id(address_part(recipient, 'domain') or '')}\r\n".encode()
    head += b"Auto-Submitted: auto-replied (rejected)\r\nPrecedence: bulk\r\nMIME-Version: 1.0\r\n"
    head += b"Content-Type: multipart/report; report-type=disposition-notification;\r\n"
    head += f'\tboundary="{boundary}"\r\n'.encode()
    text = f"Your message to <{recipient}> was automatically rejected:\r\n{reason}\r\n"
    report = (
        f"Reporting-UA: {hostname}; mra mda (Sieve)\r\nFinal-Recipient: rfc822; {recipient}\r\n"
        + (f"Original-Message-ID: {ids[0]}\r\n" if ids else "")
        + "Disposition: automatic-action/MDN-sent-automatically; deleted\r\n"
    )
    parts = [
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n".encode()
        + text.encode("utf-8", "replace"),
        f"--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n".encode()
        + report.encode("utf-8", "replace"),
        f"--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n".encode() + original,
    ]
    return bytes(head) + b"\r\n" + b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()


def sendmail(config: Config, recipients: list[str], message: bytes) -> None:
    """Hand `message` to the MTA with a null envelope sender; TempFailure if it fails."""
    from mda.errors import TempFailure
    from mda.external import clean_env, pipe_to
    from mda.message import Payload

    cmd = [config.mda.sendmail, "-i", "-f", "<>", "--", *recipients]
    mda = config.mda
    try:
        result = pipe_to(
            cmd, Payload(b"", message), clean_env(), mda.program_timeout, mda.max_program_output
        )
    except OSError as exc:
        raise TempFailure(f"cannot run {cmd[0]}: {exc.strerror}", dsn="4.3.0") from exc
    if result.returncode != 0:
        raise TempFailure(f"{cmd[0]} failed ({result.returncode}): {result.last_line()}")


# -- what `delivery.perform` calls for these actions ----------------------------------------


def send_rejection(action: Reject, outcome: Outcome, sender: str, config: Config) -> None:
    """RFC 5429: ereject refuses the delivery (the MTA bounces it with the reason, 5.7.1);
    reject sends a rejection notice to the sender, unless the sender is null."""
    say = outcome.note
    from mda.address import visible

    reason = visible(" ".join(action.reason.split()))[:400] or "rejected"
    if action.extended:
        from mda.errors import Refused

        raise Refused(reason, dsn="5.7.1")
    if not sender:
        say(f"rejected by sieve ({reason}); null sender, no notice sent")
        return
    notice = rejection(
        action.reason, outcome.msg, bytes(outcome.message.raw), sender, outcome.recipient
    )
    sendmail(config, [sender], notice)
    say(f"rejected by sieve ({reason}); notice sent to <{sender}>")


def send_vacation(action: Vacation, outcome: Outcome, sender: str, config: Config) -> None:
    import hashlib

    say = outcome.note

    refusal = vacation_refusal(action, outcome.msg, sender, outcome.recipient)
    if refusal:
        say(f"sieve: no vacation reply: {refusal}")
        return
    sieve = config.sieve
    seconds = action.seconds if action.seconds is not None else sieve.vacation_default_period
    seconds = max(seconds, sieve.vacation_min_period)
    if sieve.vacation_max_period:
        seconds = min(seconds, sieve.vacation_max_period)
    key = hashlib.sha256(
        f"vacation\0{action.handle}\0{sender.lower()}".encode("utf-8", "surrogateescape")
    ).digest()
    from .delivery import _LazyTracker

    tracker = outcome.tracker
    assert isinstance(tracker, _LazyTracker)
    if not tracker.get().claim(key, seconds):
        say(f"sieve: no vacation reply: <{sender}> got one within the last {seconds} s")
        return
    sendmail(config, [sender], vacation_reply(action, outcome.msg, sender, outcome.recipient))
    say(f"sieve: vacation reply sent to <{sender}>")


def send_notification(action: Notify, outcome: Outcome, config: Config) -> None:
    say = outcome.note

    for value in outcome.msg.header("auto-submitted"):
        if value.split(";")[0].strip().lower() != "no":
            # RFC 5436 section 2.7: never notify about an auto-submitted message.
            say("sieve: no notification: the message is auto-submitted")
            return
    recipients, message = notification(action, outcome.msg, outcome.recipient)
    sendmail(config, recipients, message)
    say(f"sieve: notification sent to {', '.join(recipients)}")
