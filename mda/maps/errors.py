"""The two outcomes of a map that are not an answer: a map we could not read, and a refusal.

`MapError` means "try again later": a map or `:include:` file could not be read, so we do not
know the answer. Bouncing the message would be wrong (sendmail queues the recipient with "alias
database unavailable" for the same reason, alias.c), so the caller exits EX_TEMPFAIL (75) and the
MTA keeps the message.

`Refusal` is an answer: the map says no, with an SMTP reply code, an RFC 3463 enhanced status code
(DSN) and a text, e.g. from an aliases `error:` target, a virtusertable `error:` right-hand side or
an access map `REJECT`/`ERROR:`. A 5xx refusal is permanent, a 4xx one temporary.
"""

from __future__ import annotations

EX_TEMPFAIL = 75  # sysexits.h: the MTA queues the message and retries


class MapError(Exception):
    """A map or an included file could not be read: a temporary failure (sysexit 75)."""

    exit_status = EX_TEMPFAIL

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


# The sysexits(3) names sendmail accepts as the "host" of its error mailer, as in aliases
# `error:nouser text` or cf/README's `error:nouser 550 No such user here`; the number is the
# sysexits value, which sendmail also accepts (`error:67 text`). Reply code and DSN are what a
# client sees for each; oserr, ioerr and tempfail are the ones sendmail queues instead of bouncing.
_SYSEXITS: dict[str, tuple[int, str, str, str]] = {
    "usage": (64, "550", "5.5.4", "Bad usage"),
    "dataerr": (65, "550", "5.6.0", "Data format error"),
    "noinput": (66, "550", "5.3.0", "Cannot open input"),
    "nouser": (67, "550", "5.1.1", "User unknown"),
    "nohost": (68, "550", "5.1.2", "Host unknown"),
    "unavailable": (69, "550", "5.0.0", "Service unavailable"),
    "software": (70, "554", "5.3.0", "Internal software error"),
    "oserr": (71, "451", "4.0.0", "Operating system error"),
    "osfile": (72, "554", "5.3.0", "System file missing"),
    "cantcreat": (73, "550", "5.0.0", "Can't create output"),
    "ioerr": (74, "451", "4.0.0", "I/O error"),
    "tempfail": (75, "451", "4.0.0", "Deferred"),
    "protocol": (76, "554", "5.5.0", "Remote protocol error"),
    "noperm": (77, "550", "5.7.1", "Insufficient permission"),
    "config": (78, "554", "5.3.5", "Local configuration error"),
}
_SYSEXIT_NUMBERS = {str(v[0]): k for k, v in _SYSEXITS.items()}


class Refusal:
    """A refusal with an SMTP reply code ("550"), a DSN ("5.1.1") and a human-readable text."""

    __slots__ = ("code", "dsn", "text")

    def __init__(self, code: str, dsn: str, text: str) -> None:
        self.code = code
        self.dsn = dsn
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.code.startswith("5")

    @property
    def temporary(self) -> bool:
        return self.code.startswith("4")

    @property
    def reply(self) -> str:
        """The SMTP reply line, e.g. `550 5.1.1 User unknown`."""
        return f"{self.code} {self.dsn} {self.text}"

    def __str__(self) -> str:
        return self.reply

    def __repr__(self) -> str:
        return f"Refusal({self.code!r}, {self.dsn!r}, {self.text!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Refusal):
            return NotImplemented
        return (self.code, self.dsn, self.text) == (other.code, other.dsn, other.text)

    def __hash__(self) -> int:
        return hash((self.code, self.dsn, self.text))


def is_reply_code(s: str) -> bool:
    """A 4xx or 5xx SMTP reply code: the only classes a refusal can have."""
    return len(s) == 3 and s.isascii() and s.isdigit() and s[0] in "45"


def is_dsn(s: str) -> bool:
    """An RFC 3463 status code `class.subject.detail` with class 2, 4 or 5."""
    parts = s.split(".")
    # ASCII digits only: str.isdigit() is also true for "²" and "١".
    if not s.isascii() or len(parts) != 3 or not all(p.isdigit() for p in parts):
        return False
    return len(parts[0]) == 1 and parts[0] in "245" and len(parts[1]) <= 3 and len(parts[2]) <= 3


def dequote(s: str) -> str:
    """Remove one pair of surrounding double quotes and their backslash escapes.

    cf/README asks for `ERROR:"550 text"` so that sendmail does not reformat the text as an
    address; the quotes are syntax, not part of the message.
    """
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        out: list[str] = []
        i, inner = 0, s[1:-1]
        while i < len(inner):
            if inner[i] == "\\" and i + 1 < len(inner):
                i += 1
            out.append(inner[i])
            i += 1
        return "".join(out)
    return s


def make_refusal(
    code: str | None, dsn: str | None, text: str, default_code: str = "550"
) -> Refusal:
    """Fill in whichever of code and DSN is missing from the other, as sendmail's usrerr does.

    A DSN without a reply code takes the class's usual code (5.x.x -> 550, 4.x.x -> 450); a code
    without a DSN gets the generic `X.0.0` of its class.
    """
    if code is None or not is_reply_code(code):
        if dsn is not None and dsn[0] == "4":
            code = "450"
        elif dsn is not None and dsn[0] == "5":
            code = "550"
        else:
            code = default_code
    if dsn is None or not is_dsn(dsn) or dsn[0] != code[0]:
        dsn = f"{code[0]}.0.0"
    return Refusal(code, dsn, text)


def split_reply(text: str) -> tuple[str | None, str | None, str]:
    """Split `550 5.1.1 No such user` into ("550", "5.1.1", "No such user").

    Either part may be missing; what is not a code or DSN stays in the text.
    """
    text = dequote(text.strip())
    code: str | None = None
    dsn: str | None = None
    head, _, rest = text.partition(" ")
    if is_reply_code(head) or (len(head) == 4 and is_reply_code(head[:3]) and head[3] == "-"):
        code, text = head[:3], rest.lstrip()
        head, _, rest = text.partition(" ")
    if is_dsn(head):
        dsn, text = head, rest.lstrip()
    return code, dsn, text


def parse_error_spec(spec: str) -> Refusal:
    """Parse the text after sendmail's `error:` into a Refusal.

    The forms sendmail accepts (cf/m4/proto.m4, rulesets MailerToTriple and the virtusertable
    rules; cf/README's examples `error:nouser 550 No such user here` and
    `error:5.7.0:550 Address invalid`):

    - `D.S.N:CODE TEXT`   DSN, then the reply text (which may start with a reply code)
    - `KEYWORD TEXT`      a sysexits name or number (nouser, 67, ...) then the text
    - `KEYWORD:TEXT`      the same, as mailertable writes it
    - `CODE TEXT`         a bare reply code then the text
    - `TEXT`              just a text: 550 5.0.0

    A keyword with no text gets its sysexits meaning as the text ("User unknown").
    """
    spec = spec.strip()
    status: tuple[int, str, str, str] | None = None
    dsn: str | None = None
    head, sep, rest = spec.partition(":")
    if sep and is_dsn(head.strip()):
        dsn, spec = head.strip(), rest
    else:
        word, _, after = spec.partition(" ")
        word_colon, colon, after_colon = spec.partition(":")
        if colon and " " not in word_colon and _status_of(word_colon) is not None:
            status, spec = _status_of(word_colon), after_colon
        elif _status_of(word) is not None:
            status, spec = _status_of(word), after
    code, text_dsn, text = split_reply(spec)
    dsn = dsn or text_dsn
    if status is not None:
        _, s_code, s_dsn, s_text = status
        return make_refusal(code or s_code, dsn or s_dsn, text or s_text)
    return make_refusal(code, dsn, text or "Address rejected")


def _status_of(word: str) -> tuple[int, str, str, str] | None:
    word = word.strip().lower()
    if word in _SYSEXIT_NUMBERS:
        word = _SYSEXIT_NUMBERS[word]
    return _SYSEXITS.get(word)
