"""ENABLE (RFC 5161, RFC 9051 6.3.1): the client turns on extensions that change what the server
may send; and what the session's enabled extensions mean to the other commands.

Only the extensions in `ENABLEABLE` can be enabled; the answer `* ENABLED ...` names those
this command turned on (RFC 5161 3.1: not the unknown ones, not those already on), spelled as
the capability is (`IMAP4rev2`, whatever case the client used). ENABLE is valid in the
authenticated state only, before a mailbox is selected (RFC 5161 3.1), so a selected mailbox
never changes its ways under the client; UNAUTHENTICATE forgets them all (RFC 8437).

    IMAP4rev2     RFC 9051: the differences from IMAP4rev1 (Appendix E) are the other
                  commands', each asking `rev2(session)`: no \\Recent and no RECENT, SEARCH
                  answered with ESEARCH, SELECT's LIST, UID in unsolicited FETCH, number64
                  partials; and mailbox names in UTF-8, as with UTF8=ACCEPT.
    UTF8=ACCEPT   RFC 6855: mailbox names in UTF-8 both ways (`utf8(session)`, which the
                  name helpers are given), APPEND's UTF8 (~{n}) data, no SEARCH CHARSET.
    CONDSTORE     RFC 7162 3.1: MODSEQ in every FETCH sent unasked (commands/condstore.py);
                  also turned on by the first command that uses modseqs.
    QRESYNC       RFC 7162 3.2: CONDSTORE too (not named in ENABLED, as Dovecot), VANISHED
                  instead of EXPUNGE, SELECT (QRESYNC ...), UID FETCH ... (VANISHED).
"""

from __future__ import annotations

from mra.imap.arguments import ArgumentError, as_atom
from mra.imap.commands.spec import Request
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

IMAP4REV2 = "IMAP4rev2"
UTF8_ACCEPT = "UTF8=ACCEPT"
CONDSTORE = "CONDSTORE"
QRESYNC = "QRESYNC"

ENABLEABLE: frozenset[str] = frozenset({IMAP4REV2, UTF8_ACCEPT, CONDSTORE, QRESYNC})
"""The capabilities a client may ENABLE, spelled as CAPABILITY spells them."""
_BY_UPPER = {name.upper(): name for name in ENABLEABLE}


def enable(s: ImapSession, req: Request) -> list[Output]:
    if not req.args:
        raise ArgumentError("ENABLE needs at least one capability")
    turned_on = []
    for value in req.args:
        name = _BY_UPPER.get(as_atom(value).upper())
        if name is not None and name not in s.enabled:
            s.enabled |= {name}
            turned_on.append(name)
    if IMAP4REV2 in turned_on:
        s.reader.number64 = True  # partials are number64 from the next command on
    untagged = b"* ENABLED" + b"".join(b" " + n.encode("ascii") for n in turned_on) + b"\r\n"
    return s.ok(req, untagged=untagged)


def rev2(s: ImapSession) -> bool:
    """The session speaks IMAP4rev2 (RFC 9051), not IMAP4rev1."""
    return IMAP4REV2 in s.enabled


def utf8(s: ImapSession) -> bool:
    """Mailbox names go both ways in UTF-8, not modified UTF-7: UTF8=ACCEPT (RFC 6855 3) or
    IMAP4rev2 (RFC 9051 5.1, Appendix A: such a server "MUST NOT generate UTF-8-quoted
    strings unless the client has issued ENABLE IMAP4rev2")."""
    return bool(s.enabled) and (IMAP4REV2 in s.enabled or UTF8_ACCEPT in s.enabled)


def condstore(s: ImapSession) -> bool:
    """CONDSTORE is on (RFC 7162 3.1): enabled, implied by QRESYNC (3.2.3), or turned on by
    a command that used modseqs (commands/condstore.py)."""
    return bool(s.enabled) and (CONDSTORE in s.enabled or QRESYNC in s.enabled)


def qresync(s: ImapSession) -> bool:
    """QRESYNC is on (RFC 7162 3.2)."""
    return QRESYNC in s.enabled


def utf8_accept(s: ImapSession) -> bool:
    """UTF8=ACCEPT itself, which also bans SEARCH's CHARSET (RFC 6855 3); IMAP4rev2 alone
    keeps it (RFC 9051 6.4.4: "Servers MUST support US-ASCII and UTF-8 charsets")."""
    return UTF8_ACCEPT in s.enabled
