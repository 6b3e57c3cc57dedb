"""The line that ends every session, as Dovecot's `logout_format` (README: Logging).

    info session-end proto=imap user=alice@example.test ip=192.0.2.7 conn=1f2e3d4c
        duration=912.402 in=4211 out=188342 reason=closed fetched=12 deleted=3 expunged=3
        trashed=2

`in` and `out` are the octets read from and written to the connection (inside TLS, after
COMPRESS), `duration` seconds from the connection to its end. `reason` is who ended it and
why: `closed` (the server closed it: LOGOUT, QUIT, too many errors), `client` (the client went
away), `idle`, `login-timeout`, `kicked` (`mra kick`), `shutdown`, or the event that cut it
(`output-stalled`, `output-limit`, `tls-handshake-timeout`, `close-timeout`...). The counts
after it are the session's `Activity` (mra/activity.py), for the protocols that keep one.
"""

from __future__ import annotations

import time

from mra import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.net.adapter import SessionProtocol


def ended(p: SessionProtocol) -> None:
    session = p.session
    conn = getattr(session, "conn", None)
    user = getattr(session, "user", None)
    fields: dict[str, object] = {
        "proto": p.protocol,
        "user": getattr(user, "name", None),
        "ip": getattr(conn, "peer_ip", None),
        "conn": getattr(conn, "id", None),
        "duration": f"{time.monotonic() - p.started:.3f}",
        "in": p.bytes_in,
        "out": p.bytes_out,
        "reason": p.end_reason or "client",
    }
    activity = getattr(session, "activity", None)
    if activity is not None:
        fields.update(activity.fields())
    log.info("session-end", **fields)
