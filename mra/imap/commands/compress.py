"""COMPRESS (RFC 4978): `COMPRESS DEFLATE` in the authenticated and selected states.

After the tagged OK every octet both ways is raw DEFLATE (RFC 1951); the adapter does it
(`StartCompression`, mra/net/deflate.py), inside TLS when TLS is on (section 3: compress, then
encrypt). The row is `suspends` in the table: the reader stops after the command's line, so
whatever the client sent after it (a client that pipelines the first compressed commands, which
section 3 forbids but a client may do) is still in the reader's buffer, compressed; it is taken
out (`take_buffered`) and handed to the adapter to be inflated first.

Answers, as Dovecot's imap_zlib (src/plugins/imap-zlib/imap-zlib-plugin.c) gives them:
a second COMPRESS is `NO [COMPRESSIONACTIVE]` (section 3 allows BAD, and asks for this code
when it answers NO); a mechanism other than DEFLATE is BAD, as section 3 says (Dovecot answers
`NO Unknown compression mechanism`). With `[imap] compress_level = 0` nothing is offered and the
command is unknown.
"""

from __future__ import annotations

from mra.imap import response as r
from mra.imap.arguments import ArgumentError
from mra.imap.values import Atom
from mra.session import Send, StartCompression

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.commands.spec import Request
    from mra.imap.session import ImapSession
    from mra.session import Output

MECHANISMS = ("DEFLATE",)


def capabilities(s: ImapSession) -> list[str]:
    """`COMPRESS=DEFLATE` once logged in (as Dovecot, whose login process has no COMPRESS)."""
    if not s.services.config.imap.compress_level:
        return []
    return [f"COMPRESS={m}" for m in MECHANISMS]


def compress(s: ImapSession, req: Request) -> list[Output]:
    level = s.services.config.imap.compress_level
    if not level:
        raise r.Refusal(r.UNKNOWN_COMMAND, name="COMPRESS")
    if len(req.args) != 1 or not isinstance(req.args[0], Atom):
        raise ArgumentError("COMPRESS needs one mechanism: DEFLATE")
    if s.compression is not None:
        raise r.Refusal(r.COMPRESSION_ACTIVE, mechanism=s.compression)
    mechanism = req.args[0].value.upper()
    if mechanism not in MECHANISMS:
        raise ArgumentError(f"unknown compression mechanism {mechanism[:20]}")
    # Sent after the command, so compressed: inflated before anything else (module docstring).
    pending = s.reader.take_buffered()
    s.compression = mechanism
    done = r.say(req.tag, r.COMPRESSING, mechanism=mechanism)
    return [Send(s.updates(req) + done), StartCompression(pending, level)]
