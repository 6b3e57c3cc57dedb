"""Envelope addresses: one check on what may be in them, and one canonical form for lookups.

Every envelope value mda is given (the sender, each recipient, the +detail, Postfix's
ORIGINAL_RECIPIENT, USER...) comes from whoever started the MTA's transaction: a remote SMTP
client or a local user. Two rules keep it from steering mda (SECURITY.md, heading 5):

1. `check()`: a value holding a control character (a newline above all) is refused before it
   reaches anything else. A newline in `-f` used to become a second header line under
   `Return-Path:` in the stored message; in a map key, an argv or environment entry of a
   program, or a log line it is as bad. `str.isprintable()` is the test: it refuses the C0 and
   C1 controls, DEL, the Unicode line and paragraph separators, format characters (soft
   hyphen, zero-width space: invisible in an address and used for look-alikes), surrogates
   (bytes that were not UTF-8) and unassigned code points; a plain space stays allowed (a
   quoted local part may hold one, and Postfix passes local parts unquoted).

2. `normalize()`: one spelling per address before every map lookup (access, virtusertable,
   aliases, the user database) and every comparison. Without it `"bob"@example.test` and
   `\\bob@example.test` (the same mailbox as `bob@example.test`, RFC 5321 4.1.2) walked past
   an access map's `To:bob@example.test REJECT`. The canonical form:

   - angle brackets and an RFC 5321 source route (`<@relay:bob@example.test>`) removed;
   - the local part's quoting and backslash escapes removed, then quotes put back only when
     the local part is not a dot-atom (`"john smith"@x` stays quoted, `"bob"@x` is `bob@x`).
     Local parts keep their case (RFC 5321 2.4); the maps fold case themselves;
   - the domain lower-cased, its trailing dots dropped, and an internationalised domain
     written as IDNA A-labels (`bücher.example` -> `xn--bcher-kva.example`, RFC 5890), so
     the UTF-8 and the punycode spelling of one domain are one key. The codec is Python's
     (IDNA 2003 with nameprep, which also folds full-width letters); it is imported only for
     a domain that is not ASCII.

   Postfix hands `${recipient}` over in its internal, unquoted form (pipe(8) without the `q`
   flag), so an unquoted local part may hold characters that would need quotes: they are
   taken as written. Inside an envelope address a backslash is only an escape: `\\bob` is
   `bob` and is aliased like it (sendmail lets `\\user` skip aliasing; that meaning is kept for
   the right-hand side of the aliases file, which only root writes, never for an address a
   sender chose).

Nothing here imports more than the interpreter already has loaded: `mda` starts per message.
"""

from __future__ import annotations

from mda.errors import BadAddress

# RFC 5322 3.2.3 atext; a dot-atom is atext runs joined by single dots. UTF-8 is atext too
# (RFC 6531 3.3).
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


def visible(text: str) -> str:
    """`text` with every non-printable character written as an escape: safe for one log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def check(value: str, what: str, dsn: str = "5.1.3") -> str:
    """`value` if it holds only printable characters; else BadAddress naming `what`."""
    if value.isprintable():
        return value
    bad = next(c for c in value if not c.isprintable())
    raise BadAddress(
        f"{what} <{visible(value)}> refused: it contains the control character {_escape(bad)}",
        dsn=dsn,
    )


def bare(address: str) -> str:
    """The address without surrounding white space and angle brackets."""
    a = address.strip()
    if a.startswith("<") and a.endswith(">"):
        a = a[1:-1].strip()
    return a


def split(address: str) -> tuple[str, str | None]:
    """(local part with quoting and escapes removed, canonical domain or None without `@`).

    The `@` that separates them is the last one outside double quotes and not escaped. As in
    RFC 5322's `word`, a quote opens a quoted string only where a word starts (at the start or
    after a dot); elsewhere it is an ordinary character, as in Postfix's unquoted form. An
    unbalanced quote makes the local part literal (no reading of it is better than another).
    """
    a = bare(address)
    if a.startswith("@") and ":" in a:
        a = a.split(":", 1)[1]  # RFC 5321 4.1.2: a source route is accepted and ignored
    value: list[str] = []
    at = cut = opened = -1
    quoted = escaped = False
    for i, c in enumerate(a):
        if escaped:
            value.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif quoted:
            if c == '"':
                quoted = False
            else:
                value.append(c)
        elif c == '"' and (i == 0 or a[i - 1] == "."):
            quoted, opened = True, i
        else:
            if c == "@":
                at, cut = i, len(value)
            value.append(c)
    if quoted and 0 <= at < opened and "@" not in a[opened:]:
        quoted = False  # the dangling quote is in the domain, which has no quoting
    if quoted:
        at = a.rfind("@")
        return (a if at < 0 else a[:at]), (None if at < 0 else normalize_domain(a[at + 1 :]))
    if at < 0:
        return "".join(value), None
    return "".join(value[:cut]), normalize_domain(a[at + 1 :])


def normalize(address: str) -> str:
    """The canonical spelling of an address (or of a bare local name): see the module notes."""
    if not bare(address):
        return ""  # the null sender `<>`
    local, domain = split(address)
    return quote_local(local) if domain is None else f"{quote_local(local)}@{domain}"


def normalize_domain(domain: str) -> str:
    """Lower case, no trailing dot, IDNA A-labels; an address literal `[...]` lower-cased."""
    d = _trim(domain)
    if not (d.isascii() or d.startswith("[")):
        try:
            d = d.encode("idna").decode("ascii")
        except UnicodeError:
            # Not a valid IDN (an empty or over-long label, a prohibited character): it cannot
            # equal any valid domain's A-label form, so the lower-cased text is a safe key.
            pass
    # IDNA also turns the ideographic full stop into a dot: one may end the name now.
    return _trim(d.lower())


def _trim(domain: str) -> str:
    """Without white space around it and trailing dots, however they alternate."""
    while True:
        trimmed = domain.strip().rstrip(".")
        if trimmed == domain:
            return domain
        domain = trimmed


def normalize_key(key: str) -> str:
    """A map key in canonical form: `user@domain`, `user@`, `@domain` or a bare domain.

    The same rules as `normalize`, for keys of the access map and the virtusertable, so that
    an entry and a lookup spelled differently still meet. Keys are lower-cased, as makemap
    stores them.
    """
    if "@" not in key:
        return normalize_domain(key).lower()
    local, domain = split(key)
    head = quote_local(local) if local else ""
    return f"{head}@{domain or ''}".lower()


def quote_local(local: str) -> str:
    """A local part as RFC 5321 writes it: bare when it is a dot-atom, else quoted."""
    if _is_dot_atom(local):
        return local
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_dot_atom(text: str) -> bool:
    if not text or text[0] == "." or text[-1] == "." or ".." in text:
        return False
    return all(
        c in _ATEXT or c == "." or (ord(c) > 0x7F and c.isprintable() and not c.isspace())
        for c in text
    )
