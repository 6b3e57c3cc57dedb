"""What an IMAP session idling in its INBOX holds (issue #16: 10,000 of them in 150 MB, server
included). Measured with tracemalloc on sessions driven in-process, after the one-off costs of
the first ones (imports, caches, the folder's shared state)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

from mailstore.config import load_config
from mailstore.store import MailStore
from mra.auth.glue import AuthService
from mra.context import Connection, Services
from mra.imap.session import ImapSession
from mra.session import Send, run_blocking

SESSIONS = 200
# Python objects per idling session: the session, its reader, selected view, store and leases
# (the connection's Twisted transport, socket and adapter are not in it). Measured: 3.0 KiB;
# 5.5 KiB before the view had slots and the empty sets, the event deque, the watch paths and
# the lease keys were shared.
PER_SESSION_MAX = 4 * 1024


def idling(services: Services) -> ImapSession:
    session = ImapSession(Connection("imap", "127.0.0.1"), services)
    run_blocking(session.greeting())
    for line in (b"a LOGIN alice@example.test pw\r\n", b"b SELECT INBOX\r\n", b"c IDLE\r\n"):
        done = run_blocking(session.data_received(line))
    text = b"".join(o.data for o in done if isinstance(o, Send))
    assert text.endswith(b"+ idling\r\n"), text
    return session


def test_attack_thousands_of_idle_sessions_exhaust_memory(tmp_path: Path) -> None:
    """An idling session held 5.5 KiB of objects of its own, much of it empty: a view's
    attributes in a 1.6 KiB __dict__, five empty sets (216 octets each), an empty deque
    (760), three empty dicts, two path strings per session for the same folder."""
    (tmp_path / "passwd").write_text("alice@example.test:{PLAIN}pw::::::\n")
    (tmp_path / "mra.toml").write_text(
        f'[auth]\npasswd_file = "{tmp_path}/passwd"\n'
        f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n'
        "[limits]\nmax_sessions_per_user = 1000\nmax_sessions_per_user_address = 1000\n"
    )
    config = load_config(str(tmp_path / "mra.toml"))
    inbox = MailStore(str(tmp_path / "mail/example.test/alice")).mailbox("INBOX")
    for n in range(3):
        inbox.append(b"Subject: %d\r\n\r\nx\r\n" % n, flags=["\\Seen", "$Label1"] if n else [])
    services = Services(config, AuthService(config))
    first = [idling(services) for _ in range(20)]  # one-off costs
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sessions = [idling(services) for _ in range(SESSIONS)]
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(first) + len(sessions) == 20 + SESSIONS
    per = held / SESSIONS
    assert per < PER_SESSION_MAX, f"{per:.0f} octets per idling session"
