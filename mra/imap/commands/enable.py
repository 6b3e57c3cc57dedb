"""ENABLE (RFC 5161): the client turns on extensions that change what the server may send.

Only the extensions in `ENABLEABLE` can be enabled; the answer `* ENABLED ...` names those
this command turned on (RFC 5161 3.1: not the unknown ones, not those already on). ENABLE is
valid in the authenticated state only, before a mailbox is selected (RFC 5161 3.1).
"""

from __future__ import annotations

from mra.imap.arguments import ArgumentError, as_atom
from mra.imap.commands.spec import Request
from mra.session import Output

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

ENABLEABLE: frozenset[str] = frozenset()
"""The capabilities a client may ENABLE; filled as the extensions that need it are built."""


def enable(s: ImapSession, req: Request) -> list[Output]:
    if not req.args:
        raise ArgumentError("ENABLE needs at least one capability")
    turned_on = []
    for value in req.args:
        name = as_atom(value).upper()
        if name in ENABLEABLE and name not in s.enabled:
            s.enabled.add(name)
            turned_on.append(name)
    untagged = b"* ENABLED" + b"".join(b" " + n.encode("ascii") for n in turned_on) + b"\r\n"
    return s.ok(req, untagged=untagged)
