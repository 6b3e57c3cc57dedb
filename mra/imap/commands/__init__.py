"""The IMAP command table: every command the server knows, and what it does, in one place.

As Dovecot's `imap-commands.c`, one row per command says where it may run and how the
dispatcher (mra/imap/session.py) must treat it; the handlers live one module per family:

    auth.py        CAPABILITY NOOP LOGOUT ID STARTTLS LOGIN AUTHENTICATE UNAUTHENTICATE
    enable.py      ENABLE, and what IMAP4rev2 and UTF8=ACCEPT change for the others
    mailboxes.py   NAMESPACE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE
    listing.py     LIST LSUB XLIST
    status.py      STATUS
    quota.py       GETQUOTAROOT GETQUOTA SETQUOTA
    select.py      SELECT EXAMINE CHECK CLOSE UNSELECT EXPUNGE
    condstore.py   CONDSTORE, QRESYNC (RFC 7162): what they add to SELECT, FETCH, STORE...
    fetch.py       FETCH
    store.py       STORE COPY MOVE
    search.py      SEARCH
    sort.py        SORT THREAD (and FETCH PREVIEW's text: mra/imap/preview.py)
    append.py      APPEND: MULTIAPPEND, CATENATE (catenate.py), literal8 (and the go-ahead
                   for literals)
    idle.py        IDLE
    compress.py    COMPRESS (the DEFLATE layer itself is the adapter's: mra/net/deflate.py)

The columns are `spec.Spec`'s: `uses_seqs` (EXPUNGE held back while it runs), `thread` (runs
in the thread pool), `suspends` (the reader waits after its line), `uid` (has a UID form),
`messages` (its literals may be as large as a message). `capabilities()` is built from what
is here: a capability is offered only with the code that implements it.
"""

from __future__ import annotations

from mra.imap.commands import (
    append,
    auth,
    compress,
    enable,
    fetch,
    idle,
    listing,
    mailboxes,
    quota,
    search,
    select,
    sort,
    status,
    store,
)
from mra.imap.commands.spec import (
    ANY,
    AUTH,
    AUTHENTICATED,
    NOTAUTH,
    ONLY_NOTAUTH,
    ONLY_SELECTED,
    Spec,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.session import ImapSession

_TABLE = [
    # any state (RFC 3501 6.1)
    Spec("CAPABILITY", auth.capability, ANY),
    Spec("NOOP", auth.noop, ANY),
    Spec("LOGOUT", auth.logout, ANY),
    Spec("ID", auth.id_, ANY),
    # not authenticated (6.2)
    Spec("STARTTLS", auth.starttls, ONLY_NOTAUTH, suspends=True),
    Spec("LOGIN", auth.login, ONLY_NOTAUTH, suspends=True),
    Spec("AUTHENTICATE", auth.authenticate, ONLY_NOTAUTH, suspends=True),
    Spec("UNAUTHENTICATE", auth.unauthenticate, AUTHENTICATED, suspends=True),
    # authenticated (6.3)
    Spec("NAMESPACE", mailboxes.namespace, AUTHENTICATED),
    Spec("SELECT", select.select, AUTHENTICATED),
    Spec("EXAMINE", select.select, AUTHENTICATED),
    Spec("CREATE", mailboxes.create, AUTHENTICATED, thread=True),
    Spec("DELETE", mailboxes.delete, AUTHENTICATED, thread=True),
    Spec("RENAME", mailboxes.rename, AUTHENTICATED, thread=True),
    Spec("SUBSCRIBE", mailboxes.subscribe, AUTHENTICATED, thread=True),
    Spec("UNSUBSCRIBE", mailboxes.unsubscribe, AUTHENTICATED, thread=True),
    Spec("LIST", listing.list_, AUTHENTICATED, thread=True),
    Spec("LSUB", listing.list_, AUTHENTICATED, thread=True),
    Spec("STATUS", status.status, AUTHENTICATED, thread=True),
    Spec("APPEND", append.append, AUTHENTICATED, thread=True, messages=True),
    Spec("IDLE", idle.idle, AUTHENTICATED, suspends=True),
    Spec("ENABLE", enable.enable, frozenset({AUTH})),
    # COMPRESS=DEFLATE (RFC 4978): the bytes after its line are compressed
    Spec("COMPRESS", compress.compress, AUTHENTICATED, suspends=True),
    # mailboxes and folders: Gmail's XLIST, QUOTA (RFC 9208)
    Spec("XLIST", listing.list_, AUTHENTICATED, thread=True),
    Spec("GETQUOTAROOT", quota.getquotaroot, AUTHENTICATED, thread=True),
    Spec("GETQUOTA", quota.getquota, AUTHENTICATED, thread=True),
    Spec("SETQUOTA", quota.setquota, AUTHENTICATED),
    # selected (6.4)
    Spec("CHECK", select.check, ONLY_SELECTED),
    Spec("CLOSE", select.close, ONLY_SELECTED, thread=True),
    Spec("UNSELECT", select.close, ONLY_SELECTED),
    Spec("EXPUNGE", select.expunge, ONLY_SELECTED, thread=True, uid=True),
    Spec("SEARCH", search.search, ONLY_SELECTED, uses_seqs=True, uid=True),
    Spec("FETCH", fetch.fetch, ONLY_SELECTED, uses_seqs=True, uid=True),
    Spec("STORE", store.store, ONLY_SELECTED, uses_seqs=True, thread=True, uid=True),
    # COPY and MOVE read sequence numbers but may be answered with EXPUNGE (RFC 3501 7.4.1
    # names only FETCH, STORE and SEARCH): a COPY that found a message expunged elsewhere
    # fails, and its EXPUNGE tells the client why, as Dovecot does.
    Spec("COPY", store.copy, ONLY_SELECTED, thread=True, uid=True),
    Spec("MOVE", store.copy, ONLY_SELECTED, thread=True, uid=True),
    # SORT (RFC 5256, 5957, 5267) and THREAD (RFC 5256): they read every matching message
    Spec("SORT", sort.sort, ONLY_SELECTED, uses_seqs=True, thread=True, uid=True),
    Spec("THREAD", sort.thread, ONLY_SELECTED, uses_seqs=True, thread=True, uid=True),
]

COMMANDS: dict[str, Spec] = {spec.name: spec for spec in _TABLE}
SUSPENDING = frozenset(spec.name for spec in _TABLE if spec.suspends)
MESSAGE_COMMANDS = frozenset(spec.name for spec in _TABLE if spec.messages)

_BASE_CAPABILITIES = [
    "IMAP4rev1",
    "IMAP4rev2",  # RFC 9051, after ENABLE IMAP4rev2 (enable.py; Appendix A: both advertised)
    "SASL-IR",
    "ID",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "ENABLE",
    # mailboxes and folders
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "XLIST",
    "STATUS=SIZE",
    # searching (commands/search.py, mra/imap/search.py, searchkeys.py, casemap.py)
    "ESEARCH",
    "SEARCHRES",
    "WITHIN",
    "SAVEDATE",
    "I18NLEVEL=1",
    # appending and fetching: append.py, catenate.py, fetch.py
    "MULTIAPPEND",
    "CATENATE",
    "URL-PARTIAL",
    "BINARY",
    # sorting, threading and previews: sort.py, mra/imap/sorting.py, threads.py, preview.py
    *sort.capabilities(),
    "PREVIEW",  # RFC 8970: FETCH PREVIEW, PREVIEW (LAZY)
    # IMAP4rev2 and UTF-8: enable.py (what the session's mode changes is each command's)
    "UTF8=ACCEPT",
    # modseqs (RFC 7162): condstore.py and the commands it names; the folder index
    "CONDSTORE",
    "QRESYNC",
]


def capabilities(s: ImapSession) -> list[str]:
    """What the session offers now (RFC 3501 7.2.1): the login ones before login."""
    caps = list(_BASE_CAPABILITIES)
    # RFC 7888: LITERAL+, or LITERAL- when the reader holds `{n+}` to 4096 octets; never both.
    caps.insert(2, "LITERAL+" if s.reader.limits.max_nonsync_literal is None else "LITERAL-")
    caps.append(f"APPENDLIMIT={status.append_limit(s)}")  # RFC 7889: the server-wide limit
    if s.state == NOTAUTH:
        if s.conn.tls_available and not s.conn.tls:
            caps.append("STARTTLS")
        plaintext = s.services.plaintext_allowed(s.conn)
        if not plaintext:
            caps.append("LOGINDISABLED")
        mechanisms = getattr(s.services.auth, "mechanisms", None)
        if mechanisms is not None:
            caps += [f"AUTH={m}" for m in mechanisms(plaintext)]
    else:
        caps.append("UNAUTHENTICATE")
        caps += compress.capabilities(s)
        caps += quota.capabilities(s.quota_limit)  # the user's limits (RFC 9208 3.1)
    return caps
