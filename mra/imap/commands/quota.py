"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA, from the Maildir++ quota `mda`
enforces (mailstore/quota.py).

A user has one quota root, `"User quota"` (the name Dovecot's `quota = maildir:User quota`
gives it, in Debian's 90-quota.conf), over every folder. Its limit is the user's
`userdb_quota_rule` from the passdb, else the definition in an existing `maildirsize`
(`MaildirQuota.effective_limit`); it is read once at login (`prepare`), with the usage read
at each command, in the thread pool (it may rebuild `maildirsize` by summing every folder).

- The capabilities name the resources the user's limit has: `QUOTA=RES-STORAGE` for a byte
  limit, `QUOTA=RES-MESSAGE` for a message limit (RFC 9208 3.1); a user without a limit gets
  no QUOTA capability at all.
- STORAGE counts units of 1,024 octets, rounded up, as Dovecot's quota_get_resource().
- SETQUOTA is refused (`NO [NOPERM]`): the quota is the administrator's, as Dovecot answers
  every user who is not its admin. No QUOTASET capability is offered.
- A user without a limit: GETQUOTAROOT answers `* QUOTAROOT INBOX` with no root (RFC 9208
  4.1.2: the QUOTAROOT response is always sent); Dovecot sends nothing and `OK No quota`.
  GETQUOTA of a root that does not exist is `NO [NONEXISTENT]`, as Dovecot's NO.
- APPEND, COPY and MOVE over the quota end in `NO [OVERQUOTA]` (RFC 9208 4.3): the store's
  NoQuota, mapped once in response.py.
"""

from __future__ import annotations

from mra.imap import response as r
from mra.imap.arguments import ArgumentError, as_astring, as_list, as_mailbox
from mra.imap.commands.enable import utf8
from mra.imap.commands.spec import Request
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.quota import QuotaLimit
    from mra.imap.session import ImapSession

ROOT = "User quota"


def read_limit(s: ImapSession) -> QuotaLimit | None:
    """The user's limit, or None without one (blocking: from the thread pool, at login)."""
    quota = s.mailstore().quota
    if quota is None:
        return None
    limit = quota.effective_limit()
    return None if limit.unlimited else limit


def capabilities(limit: QuotaLimit | None) -> list[str]:
    if limit is None:
        return []
    caps = ["QUOTA"]
    if limit.bytes is not None:
        caps.append("QUOTA=RES-STORAGE")
    if limit.messages is not None:
        caps.append("QUOTA=RES-MESSAGE")
    return caps


def _kib(n: int) -> int:
    return (n + 1023) // 1024


def _quota_line(s: ImapSession, limit: QuotaLimit) -> bytes:
    quota = s.mailstore().quota
    assert quota is not None
    used_bytes, used_messages = quota.usage()
    resources = []
    if limit.bytes is not None:
        resources.append(("STORAGE", _kib(used_bytes), _kib(limit.bytes)))
    if limit.messages is not None:
        resources.append(("MESSAGE", used_messages, limit.messages))
    return r.quota_response(ROOT, resources)


def getquotaroot(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 1:
        raise ArgumentError("GETQUOTAROOT needs a mailbox name")
    # Every name has the user's root, existing or not (as Dovecot answers).
    name = as_mailbox(req.args[0], utf8(s))
    limit = s.quota_limit
    roots = [] if limit is None else [ROOT]
    untagged = r.quotaroot_response(name, roots, utf8=utf8(s))
    if limit is not None:
        untagged += _quota_line(s, limit)
    return s.ok(req, untagged=untagged)


def getquota(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 1:
        raise ArgumentError("GETQUOTA needs a quota root")
    root = as_astring(req.args[0]).decode("utf-8", "replace")
    limit = s.quota_limit
    if limit is None or root != ROOT:
        raise r.Refusal(r.NO_SUCH_QUOTA_ROOT)
    return s.ok(req, untagged=_quota_line(s, limit))


def setquota(s: ImapSession, req: Request) -> list[Output]:
    if len(req.args) != 2:
        raise ArgumentError("SETQUOTA needs a quota root and a list of limits")
    as_astring(req.args[0])
    as_list(req.args[1])
    raise r.Refusal(r.QUOTA_IS_ADMINS)
