"""The one error model of the store.

Every failure the store reports is a `MailError` with a `kind`; the protocols map kinds to their
responses in one place each (IMAP response codes, POP3 `[SYS/TEMP]`, sysexits for `mda`), the way
Dovecot maps `enum mail_error`. The message text is safe to show a client: it never carries a
traceback or a path outside the user's tree.
"""

from __future__ import annotations


class ErrorKind:
    """The kinds, as plain strings: `enum` costs the delivery agent milliseconds at start-up."""

    NOT_FOUND = "not-found"  # mailbox or message does not exist
    EXISTS = "exists"  # mailbox already exists
    INVALID_NAME = "invalid-name"  # name refused: separator, '..', control character, escape
    NO_QUOTA = "no-quota"  # over the Maildir++ quota
    TEMPORARY = "temporary"  # try again later: lock timeout, disk full, I/O error
    IN_USE = "in-use"  # another session holds it (POP3 lock)
    PERMISSION = "permission"  # refused by policy or file permissions
    LIMIT = "limit"  # a configured limit: too many keywords, message too large
    CORRUPT = "corrupt"  # a file we could not make sense of (logged, worked around)
    NOT_POSSIBLE = "not-possible"  # the operation cannot be done (e.g. delete INBOX)


class MailError(Exception):
    """A store failure with a kind the protocols can map."""

    kind: str = ErrorKind.TEMPORARY

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.kind


class NotFound(MailError):
    kind = ErrorKind.NOT_FOUND


class AlreadyExists(MailError):
    kind = ErrorKind.EXISTS


class InvalidName(MailError):
    kind = ErrorKind.INVALID_NAME


class NoQuota(MailError):
    kind = ErrorKind.NO_QUOTA


class TemporaryFailure(MailError):
    kind = ErrorKind.TEMPORARY


class InUse(MailError):
    kind = ErrorKind.IN_USE


class PermissionDenied(MailError):
    kind = ErrorKind.PERMISSION


class LimitExceeded(MailError):
    kind = ErrorKind.LIMIT


class Corrupt(MailError):
    kind = ErrorKind.CORRUPT


class NotPossible(MailError):
    kind = ErrorKind.NOT_POSSIBLE


class UnsafePath(PermissionDenied):
    """A directory below the user's mail root (a folder, or its `cur/`, `new/`, `tmp/`) is a
    symlink or not a directory: refused, never followed (see folderdir.py)."""


class MessageUnreadable(MailError):
    """One message's file cannot be served: a symlink, a hard link to another owner's file,
    not a regular file, or a read that failed (EACCES, EIO). Raised by `Mailbox.open_message`,
    `read_message`, `read_header` and `message_vsize`/`message_size` for that message only: the
    protocol answers for that message (IMAP `NO`, POP3 leaves it out or `-ERR`) and goes on
    with the rest of the mailbox. `kind` is PERMISSION for a refusal or a permission error,
    TEMPORARY for an I/O error."""

    kind = ErrorKind.PERMISSION

    def __init__(self, uid: int, reason: str, kind: str | None = None) -> None:
        super().__init__(f"message {uid} cannot be read: {reason}", kind)
        self.uid = uid
        self.reason = reason
