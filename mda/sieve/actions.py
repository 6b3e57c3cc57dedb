"""What a Sieve evaluation asks the delivery code to do.

`evaluate` returns a list of these, in the order the script performed them, with duplicates
merged (RFC 5228 section 2.10.3). The list is never empty: it holds at least one delivering
action (Keep, FileInto, Redirect), a Reject, or it is exactly `[Discard()]`; Vacation and
Notify come with one of those (they never cancel the implicit keep).

Flags are IMAP flags: the system flags spelled `\\Seen`, `\\Answered`, `\\Flagged`,
`\\Deleted`, `\\Draft`, and keywords (RFC 5232). Invalid flags were already dropped.

`header` (editheader, RFC 5293): None when the script changed no header; otherwise the whole
header block to store or send instead of the message's own, as it was when the action ran
(CRLF line ends, ending with the empty line). The body is always the message's.
"""

from __future__ import annotations

TYPE_CHECKING = False


class _Value:
    """An immutable record compared by value: the plain-class stand-in for a frozen
    dataclass, which costs the delivery agent the import of `dataclasses` (with `inspect`,
    `ast`, `enum` and `re`: some 30 ms) and a millisecond per class."""

    # The order of __slots__ is the order of the positional arguments, as a dataclass's.
    __slots__: tuple[str, ...] = ()
    _defaults: tuple[object, ...] = ()

    def __init__(self, *args: object, **kwargs: object) -> None:
        names = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} arguments")
        values = dict(zip(names, self._defaults, strict=True))
        values.update(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in values:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            values[key] = value
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Value)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Keep(_Value):
    """Deliver to the user's main mailbox, INBOX (RFC 5228 section 4.3).

    Also what `fileinto "INBOX"` becomes, and the implicit keep (section 2.10.2).
    """

    __slots__ = ("flags", "header")
    _defaults: tuple[object, ...] = (frozenset(), None)
    flags: frozenset[str]
    header: bytes | None

    if TYPE_CHECKING:

        def __init__(self, flags: frozenset[str] = ..., header: bytes | None = ...) -> None: ...


class FileInto(_Value):
    """Deliver to `mailbox` (RFC 5228 section 4.1), a UTF-8 name as the script wrote it.

    `create` (RFC 5490 section 3.2): create the mailbox first if it does not exist; failing to
    create it is an error. Without `create`, a missing mailbox is the caller's choice (RFC 5228
    allows an error, creating it, or delivering elsewhere); delivering to INBOX is the safe one.
    """

    __slots__ = ("mailbox", "flags", "create", "header")  # noqa: RUF023 (argument order)
    _defaults: tuple[object, ...] = ("", frozenset(), False, None)
    mailbox: str
    flags: frozenset[str]
    create: bool
    header: bytes | None

    if TYPE_CHECKING:

        def __init__(
            self,
            mailbox: str,
            flags: frozenset[str] = ...,
            create: bool = ...,
            header: bytes | None = ...,
        ) -> None: ...


class Redirect(_Value):
    """Resend the message, unchanged, to `address` (a bare addr-spec; RFC 5228 section 4.2).

    The caller must implement loop control (e.g. its own Delivered-To header) and must keep an
    empty envelope sender empty on the outgoing message.
    """

    __slots__ = ("address", "header")
    _defaults: tuple[object, ...] = ("", None)
    address: str
    header: bytes | None

    if TYPE_CHECKING:

        def __init__(self, address: str, header: bytes | None = ...) -> None: ...


class Discard(_Value):
    """The message was deliberately thrown away (RFC 5228 section 4.4). Alone in the list."""

    __slots__ = ()


class Reject(_Value):
    """Refuse the message with `reason` (RFC 5429): `extended` (ereject) asks for a refusal
    at the protocol level where there is one; otherwise a rejection notice (an MDN) goes to
    the envelope sender. The message is not stored."""

    __slots__ = ("reason", "extended")  # noqa: RUF023 (argument order)
    _defaults: tuple[object, ...] = ("", False)
    reason: str
    extended: bool

    if TYPE_CHECKING:

        def __init__(self, reason: str, extended: bool = ...) -> None: ...


class Vacation(_Value):
    """Send an auto-reply (RFC 5230, RFC 6131), if the delivery code's checks allow it: not to
    a list, an auto-submitted message, a system address, nor unless one of the user's
    addresses is in the message's recipients; at most once per sender, `handle` and `seconds`.

    `sender`: the From of the reply ("" = the recipient); `mime`: `reason` is a MIME entity
    (headers and body) rather than UTF-8 text. `seconds` is None for the default period."""

    __slots__ = ("reason", "subject", "sender", "addresses", "mime", "handle", "seconds")  # noqa: RUF023 (argument order)
    _defaults: tuple[object, ...] = ("", None, "", (), False, "", None)
    reason: str
    subject: str | None
    sender: str
    addresses: tuple[str, ...]
    mime: bool
    handle: str
    seconds: int | None

    if TYPE_CHECKING:

        def __init__(
            self,
            reason: str,
            subject: str | None = ...,
            sender: str = ...,
            addresses: tuple[str, ...] = ...,
            mime: bool = ...,
            handle: str = ...,
            seconds: int | None = ...,
        ) -> None: ...


class Notify(_Value):
    """Send a notification (RFC 5435) by `method`, a "mailto:" URI (RFC 5436), with the
    `message` text (None: the default, from the message's From and Subject)."""

    __slots__ = ("method", "sender", "importance", "options", "message")  # noqa: RUF023 (argument order)
    _defaults: tuple[object, ...] = ("", "", "2", (), None)
    method: str
    sender: str
    importance: str
    options: tuple[str, ...]
    message: str | None

    if TYPE_CHECKING:

        def __init__(
            self,
            method: str,
            sender: str = ...,
            importance: str = ...,
            options: tuple[str, ...] = ...,
            message: str | None = ...,
        ) -> None: ...


Action = Keep | FileInto | Redirect | Discard | Reject | Vacation | Notify


class Track(_Value):
    """A duplicate-tracking entry (RFC 7352) to remember once the delivery succeeded: `key`
    identifies the message (and handle) for this user, for `seconds` from now; `last`: the
    period starts again even if the key was already known."""

    __slots__ = ("key", "seconds", "last")  # noqa: RUF023 (argument order)
    _defaults: tuple[object, ...] = (b"", 0, False)
    key: bytes
    seconds: int
    last: bool

    if TYPE_CHECKING:

        def __init__(self, key: bytes, seconds: int, last: bool = ...) -> None: ...
