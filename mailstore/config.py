"""The one TOML configuration file read by both `mra` and `mda`.

    [listen]                # absent or "" = that listener is off
    imap  = "127.0.0.1:143"
    imaps = "127.0.0.1:993"
    pop3  = "127.0.0.1:110"
    pop3s = "127.0.0.1:995"
    lmtp  = "unix:/run/mra/lmtp"  # or a table: { address = "unix:PATH", mode = 0o660,
                                  #   owner = "postfix", group = "postfix" } (endpoints.py)
    sieve = "127.0.0.1:4190"  # ManageSieve (RFC 5804), STARTTLS when [tls] is set
    auth  = "unix:/run/mra/auth-client"  # the Dovecot auth protocol (Postfix/Exim SMTP AUTH)
    saslauthd = "unix:/run/saslauthd/mux" # the saslauthd protocol (Cyrus SASL, sendmail)
    [tls]
    cert = "/etc/mra/cert.pem"
    key  = "/etc/mra/key.pem"     # "" = the key is in the cert file
    [auth]
    passwd_file = "/etc/mra/passwd"   # "" = system users (/etc/passwd, ~/Maildir)
    allow_plaintext = false       # cleartext logins on non-TLS, non-loopback connections
    max_concurrent_hashes = 4     # password checks running at once (each may take 64 MiB)
    [mail]
    location = "/var/vmail/%d/%n"  # %u user as in the passwd-file, %n local part, %d domain,
                                   # %h or a leading ~ home, %% a percent sign
    max_message_size = 52428800    # bytes
    max_append_size = 104857600    # bytes: all messages of one IMAP APPEND together
    first_valid_uid = 1000         # lower uids (system accounts) get neither logins nor mail
    [mailboxes]                    # absent: Drafts, Sent, Trash, Junk, Archive (specialuse.py)
    Sent = { special_use = '\\Sent', auto = "subscribe" }   # auto: "no", "create", "subscribe"
    [maps]
    aliases = "/etc/aliases"
    virtusertable = "/etc/mail/virtusertable"
    access = "/etc/mail/access"
    local_domains = "/etc/mail/local-host-names"
    [mda]
    sendmail = "/usr/sbin/sendmail"
    quota_bounce = false          # over quota: bounce at once instead of deferring
    duplicate_window = 0          # seconds to suppress duplicate Message-IDs; 0 = off
    program_timeout = 60          # seconds a |program delivery may run
    max_program_output = 4096     # bytes of a program's output kept for the error line
    mail_uid = ""                 # virtual mail user to run as ("" = do not change)
    [sieve]                       # Pigeonhole's sieve_* settings (README: Sieve)
    extensions = []               # "+editheader", "-vacation": changes to the default set
    global_dir = ""               # where `include :global "name"` finds name.sieve
    max_cpu_time = 10             # seconds of CPU one delivery's scripts may take
    max_redirects = 4             # ... and the other limits of SieveConfig below
    [server]
    workers = 1                   # worker processes sharing the listening sockets
    user = ""                     # unprivileged user to drop to after binding
    reactor_stall_ms = 100        # log `reactor-stall` when the event loop is this late; 0 = off
    require_readable_installation = true  # refuse to start when `user` cannot read mra
    [limits]
    max_connections = 2000        # open connections per worker process
    max_connections_per_address = 1000  # per client address (an IPv6 address: its /64)
    max_sessions_per_user = 50    # logged-in sessions per account
    max_sessions_per_user_address = 20  # ... per account from one address (Dovecot's
                                  # mail_max_userip_connections)
    login_timeout = 180           # seconds from connecting to logging in
    tls_handshake_timeout = 30    # seconds for a TLS handshake (implicit or STARTTLS)
    output_timeout = 300          # seconds a client may leave our answers unread
    max_unsent_output = 4194304   # bytes queued for a client that has stopped reading
    close_timeout = 30            # seconds a closing connection may take to flush
    max_literal_memory = 268435456  # IMAP literal octets all sessions of a process may hold
                                    # (and LMTP message octets on their way in)
    max_mime_depth = 100          # MIME nesting parsed; deeper parts are leaves (Dovecot's)
    max_mime_parts = 10000        # MIME parts of a message; the last runs to the end
    max_header_size = 10485760    # header value octets kept of one header
    max_headers_size = 52428800   # ... of all the headers of a message
    max_mime_params = 128         # parameters of one Content-Type/-Disposition
    max_header_fields = 100000    # header fields of a message, all parts
    max_header_tokens = 250000    # tokens read from the header values of one message
    message_cache = 33554432      # bytes of what SEARCH TEXT and FETCH made of messages, kept
                                  # per process for the next commands (0 = none)
    auth_max_line = 16384         # bytes of one auth-protocol line (Dovecot's own bound)
    auth_max_requests = 64        # auth requests in progress on one connection
    auth_idle_timeout = 3600      # seconds an auth or saslauthd connection may stay silent
    saslauthd_max_field = 1024    # bytes of one saslauthd field (login, password, ...)
    [imap]
    literal_plus = true           # false: LITERAL- (non-synchronizing literals up to 4096 octets)
    compress_level = 1            # COMPRESS=DEFLATE's zlib level, 1-9; 0 = COMPRESS not offered
    [managesieve]                 # each account's Sieve scripts (~/sieve, ~/.dovecot.sieve)
    max_script_size = 1048576     # bytes of one script
    max_scripts = 100             # scripts per account; 0 = no limit
    max_storage = 10485760        # bytes of all of an account's scripts; 0 = no limit
    [lmtp]
    max_recipients = 100          # RCPT TO per transaction (452 4.5.3 past it)
    max_line_length = 4096        # octets of a command line (500 5.5.2 past it)
    parallel_copies = 4           # copies of one message to several mailboxes made at once
    [index]                       # the folder index of the IMAP server (mailstore/folderindex.py)
    location = ""                 # "" = mra.index beside each folder; else a template as
                                  # [mail] location, e.g. "/var/lib/mra/index/%d/%n"
    keep_folders = 64             # folders no session has open that a worker keeps in memory
    keep_messages = 400000        # ... at most this many messages of them in all
    expunge_log = 100000          # expunged UIDs remembered per folder for QRESYNC
    sort_keys = 4                 # SORT keys whose order each folder keeps (~80 B a message each)
    [admin]                       # the admin socket and metrics endpoint (mra/admin/)
    max_request = 8192            # octets of one admin request line
    max_argument = 512            # characters of one argument of a request
    max_answer = 67108864         # octets of an answer `mra who|stats` (or a worker) reads
    timeout = 30                  # seconds `mra who|kick|reload|stats` waits for the answer
    worker_timeout = 5            # seconds a worker waits for each other worker's answer
    metrics_max_request = 16384   # octets of a metrics request's headers (no body is taken)
    metrics_max_series = 2000     # series of one metric family per worker
    control_dir = ""              # where the workers' control sockets go ("" = $TMPDIR or /tmp)

Every setting has a safe default, and `load_config(None)` gives all of them. Note that every
listener is off by default: a configuration without a `[listen]` section serves nothing, so a
server never opens a port nobody asked for.

Relative paths in `[tls]`, `[auth]`, `[maps]` and `[mda] sendmail` are resolved against the
directory of the configuration file, so a demo configuration and its files can be moved together.
`[mail] location` is not a file path but a per-user template: a relative result is taken relative
to the user's home (see `mailstore.userdb.expand_location`). A listener address of port 0 asks the
system for any free port, which is what tests want.

Validation (configcheck.py) reports every problem at once, each with the line it is on, so an
administrator fixes a file in one pass rather than one error per restart.

This module is too costly to import for the delivery agent, which runs once per message: `mda`
reads the configuration through `mailstore.configcache` (a validated copy kept in `<file>.cache`),
and the location helpers live in `mailstore.location` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mailstore.endpoints import Endpoint, Listener, UnixEndpoint, parse_endpoint
from mailstore.location import LOCATION_VARIABLES, check_location, strip_location_prefix
from mailstore.specialuse import DEFAULT_MAILBOXES, MailboxSetting

__all__ = [
    "LOCATION_VARIABLES",
    "AuthConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "Endpoint",
    "ImapConfig",
    "IndexConfig",
    "LimitsConfig",
    "ListenConfig",
    "Listener",
    "LmtpConfig",
    "LogConfig",
    "MailConfig",
    "MailboxSetting",
    "MailboxesConfig",
    "ManageSieveConfig",
    "MapsConfig",
    "MdaConfig",
    "ServerConfig",
    "SieveConfig",
    "TlsConfig",
    "UnixEndpoint",
    "check_config",
    "check_location",
    "load_config",
    "parse_config",
    "parse_endpoint",
    "strip_location_prefix",
]

MIB: Final = 1024 * 1024


class _Kind(enum.Enum):
    PATH = "a string (a path)"
    BOOL = "true or false"
    INT = "an integer"
    ENDPOINT = "a string like '127.0.0.1:143' or 'unix:/run/mra/lmtp', or a table"
    USER = "a user name or number"
    LOCATION = "a string like '~/Maildir'"
    TEXT = "a string"
    WORDS = "an array of strings"
    NUMBER = "a number"
    INDEX = "\"\" or a string like '/var/lib/mra/index/%d/%n'"


def _setting(kind: _Kind, minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "min": minimum, "max": maximum}


@dataclass(frozen=True)
class ListenConfig:
    """Where each protocol listens: a TCP `Endpoint` or a `UnixEndpoint` (mailstore/endpoints.py);
    None = that listener is off."""

    imap: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    imaps: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    pop3: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    pop3s: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    sieve: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    lmtp: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    # Password checks for an MTA's SMTP AUTH (mra/authserver): the Dovecot auth protocol
    # (Postfix `smtpd_sasl_type = dovecot`, Exim) and the saslauthd one (Cyrus SASL).
    auth: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    saslauthd: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    # The administrator's socket (`mra who`, `kick`, `reload`, `stats`: mra/admin/): a unix
    # socket, owned by root and mode 0600 unless its table says otherwise.
    admin: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    # Prometheus metrics over HTTP (GET /metrics): "127.0.0.1:9154".
    metrics: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))

    def enabled(self) -> dict[str, Listener]:
        """The listeners that are on, by protocol name."""
        return {
            f.name: value
            for f in dataclasses.fields(self)
            if (value := getattr(self, f.name)) is not None
        }


@dataclass(frozen=True)
class TlsConfig:
    """The certificate for imaps/pop3s and STARTTLS; "" = no TLS."""

    cert: str = field(default="", metadata=_setting(_Kind.PATH))
    key: str = field(default="", metadata=_setting(_Kind.PATH))


@dataclass(frozen=True)
class AuthConfig:
    passwd_file: str = field(default="", metadata=_setting(_Kind.PATH))
    allow_plaintext: bool = field(default=False, metadata=_setting(_Kind.BOOL))
    # Password checks running at once, in every protocol: an ARGON2ID check takes 64 MiB, so
    # this bounds the memory a flood of logins can take (more than the cores gains nothing).
    max_concurrent_hashes: int = field(default=4, metadata=_setting(_Kind.INT, 1))


@dataclass(frozen=True)
class MailConfig:
    location: str = field(default="~/Maildir", metadata=_setting(_Kind.LOCATION))
    max_message_size: int = field(default=50 * MIB, metadata=_setting(_Kind.INT, 1))
    # One APPEND's messages together (MULTIAPPEND, CATENATE): what one command may make the
    # IMAP reader hold; never less than max_message_size (SECURITY.md 2).
    max_append_size: int = field(default=100 * MIB, metadata=_setting(_Kind.INT, 1))
    # Accounts below this uid (system accounts: root, daemon, ...) neither log in nor get mail
    # (Dovecot's first_valid_uid; Debian's adduser gives people uids from 1000).
    first_valid_uid: int = field(default=1000, metadata=_setting(_Kind.INT, 0))
    # Other hosts write these Maildirs too (NFS, a cluster: mailstore/shared.py): inotify
    # cannot see their changes, so each open folder is also stat()ed at least every
    # `shared_check_interval` seconds (Dovecot's mailbox_idle_check_interval), no listing is
    # trusted without that check, and stale dotlocks are judged by what this host saw.
    shared: bool = field(default=False, metadata=_setting(_Kind.BOOL))
    shared_check_interval: int = field(default=30, metadata=_setting(_Kind.INT, 1))


@dataclass(frozen=True)
class MailboxesConfig:
    """`[mailboxes]`: each folder's special use and whether every user gets it, as Dovecot's
    `mailbox NAME { special_use = ...  auto = ... }` (mailstore/specialuse.py). The section's
    keys are folder names, so it is read by `_build_mailboxes`, not field by field. A file
    without the section gets `DEFAULT_MAILBOXES`; an empty `[mailboxes]` means none."""

    folders: tuple[MailboxSetting, ...] = DEFAULT_MAILBOXES


@dataclass(frozen=True)
class MapsConfig:
    """Sendmail-style maps; a missing map file is an empty map (the reader's business)."""

    aliases: str = field(default="/etc/aliases", metadata=_setting(_Kind.PATH))
    virtusertable: str = field(default="/etc/mail/virtusertable", metadata=_setting(_Kind.PATH))
    access: str = field(default="/etc/mail/access", metadata=_setting(_Kind.PATH))
    local_domains: str = field(default="/etc/mail/local-host-names", metadata=_setting(_Kind.PATH))


@dataclass(frozen=True)
class MdaConfig:
    sendmail: str = field(default="/usr/sbin/sendmail", metadata=_setting(_Kind.PATH))
    quota_bounce: bool = field(default=False, metadata=_setting(_Kind.BOOL))
    duplicate_window: int = field(default=0, metadata=_setting(_Kind.INT, 0))
    program_timeout: int = field(default=60, metadata=_setting(_Kind.INT, 1))
    # What a |program (or the MTA's sendmail) prints is drained; only this much is kept.
    max_program_output: int = field(default=4096, metadata=_setting(_Kind.INT, 0))
    # Kept as written: resolving names needs the target host's user database.
    mail_uid: str = field(default="", metadata=_setting(_Kind.USER))
    program_shell: bool = field(default=False, metadata=_setting(_Kind.BOOL))
    # Global Sieve scripts run before and after each user's ~/.dovecot.sieve ("" = none).
    sieve_before: str = field(default="", metadata=_setting(_Kind.PATH))
    sieve_after: str = field(default="", metadata=_setting(_Kind.PATH))


@dataclass(frozen=True)
class SieveConfig:
    """`[sieve]`: Pigeonhole's `sieve_*` settings, with its defaults (README: Sieve)."""

    # Pigeonhole's sieve_extensions: "+name" enables, "-name" disables, bare names replace
    # the default set (every extension but editheader, spamtest, spamtestplus, virustest).
    extensions: tuple[str, ...] = field(default=(), metadata=_setting(_Kind.WORDS))
    # sieve_global: the directory of the scripts `include :global "name"` names.
    global_dir: str = field(default="", metadata=_setting(_Kind.PATH))
    max_script_size: int = field(default=MIB, metadata=_setting(_Kind.INT, 1))
    max_actions: int = field(default=32, metadata=_setting(_Kind.INT, 1))
    max_redirects: int = field(default=4, metadata=_setting(_Kind.INT, 0))
    max_include_depth: int = field(default=10, metadata=_setting(_Kind.INT, 1))
    max_includes: int = field(default=255, metadata=_setting(_Kind.INT, 1))
    max_variable_size: int = field(default=4096, metadata=_setting(_Kind.INT, 1))
    max_header_size: int = field(default=2048, metadata=_setting(_Kind.INT, 1))
    # CPU seconds the scripts of one delivery may take before the message is kept in INBOX
    # (sieve_max_cpu_time; 0 = no limit): what bounds a backtracking :regex (SECURITY.md 1).
    max_cpu_time: int = field(default=10, metadata=_setting(_Kind.INT, 0))
    # Vacation (RFC 5230): the :days/:seconds a script may ask for, in seconds (0 = no upper
    # bound), and what it gets without either.
    vacation_min_period: int = field(default=86400, metadata=_setting(_Kind.INT, 0))
    vacation_max_period: int = field(default=0, metadata=_setting(_Kind.INT, 0))
    vacation_default_period: int = field(default=7 * 86400, metadata=_setting(_Kind.INT, 0))
    # duplicate (RFC 7352): how long a message is remembered without :seconds, and at most.
    duplicate_default_period: int = field(default=12 * 3600, metadata=_setting(_Kind.INT, 1))
    duplicate_max_period: int = field(default=2 * 86400, metadata=_setting(_Kind.INT, 1))
    # spamtest/spamtestplus and virustest (RFC 5235), as Pigeonhole's settings: the header a
    # scanner writes ("X-Spam-Score" or "X-Spam-Status: score=(-?[0-9.]+)"), how to read it
    # ("score", "strlen" or "text"), the maximum score (or a header holding it), and for
    # "text" the values meaning 0, 1, ... 10 (virustest: 0-5). "" = not configured.
    spamtest_status_header: str = field(default="", metadata=_setting(_Kind.TEXT))
    spamtest_status_type: str = field(default="score", metadata=_setting(_Kind.TEXT))
    spamtest_max_value: float = field(default=0.0, metadata=_setting(_Kind.NUMBER, 0))
    spamtest_max_header: str = field(default="", metadata=_setting(_Kind.TEXT))
    spamtest_text_values: tuple[str, ...] = field(default=(), metadata=_setting(_Kind.WORDS))
    virustest_status_header: str = field(default="", metadata=_setting(_Kind.TEXT))
    virustest_status_type: str = field(default="score", metadata=_setting(_Kind.TEXT))
    virustest_max_value: float = field(default=0.0, metadata=_setting(_Kind.NUMBER, 0))
    virustest_max_header: str = field(default="", metadata=_setting(_Kind.TEXT))
    virustest_text_values: tuple[str, ...] = field(default=(), metadata=_setting(_Kind.WORDS))


@dataclass(frozen=True)
class ServerConfig:
    workers: int = field(default=1, metadata=_setting(_Kind.INT, 1))
    user: str = field(default="", metadata=_setting(_Kind.USER))
    # The event loop running this late logs `reactor-stall` (milliseconds; 0 = not watched).
    reactor_stall_ms: int = field(default=100, metadata=_setting(_Kind.INT, 0))
    # Refuse to start when `user` cannot read the server's installation (exit 77). false: say
    # so and go on; everything is imported before the drop, and a module imported later fails
    # (logged as late-import). For a checkout that user cannot enter (a clone under /root).
    require_readable_installation: bool = field(default=True, metadata=_setting(_Kind.BOOL))


@dataclass(frozen=True)
class LogConfig:
    """`[log]`: where the events of mra, mda and the store go, and how (mailstore/log.py)."""

    target: str = field(default="stderr", metadata=_setting(_Kind.TEXT))
    path: str = field(default="", metadata=_setting(_Kind.PATH))
    format: str = field(default="text", metadata=_setting(_Kind.TEXT))
    level: str = field(default="info", metadata=_setting(_Kind.TEXT))
    syslog_facility: str = field(default="mail", metadata=_setting(_Kind.TEXT))
    # Lines of one warning or error event per interval; past it they are counted, not
    # written (0 = no limit): a client repeating one error cannot fill the disk.
    rate_limit: int = field(default=10, metadata=_setting(_Kind.INT, 0))
    rate_limit_interval: int = field(default=60, metadata=_setting(_Kind.INT, 1))


@dataclass(frozen=True)
class LimitsConfig:
    """What one client, one address, one account can hold of a server process (SECURITY.md)."""

    # Defaults an office of 150 behind one NAT address lives with: each person's Thunderbird
    # keeps up to 5 connections and a phone 1 or 2, about 1,000 from that address; an account
    # on a laptop, a desktop and a phone, or shared by a few people, stays under 50, and one
    # client of it under 20 (Dovecot's mail_max_userip_connections is 10). The access map's
    # `Connect:... OK` lifts the last three for an address (a load test, a webmail host).
    max_connections: int = field(default=2000, metadata=_setting(_Kind.INT, 1))
    max_connections_per_address: int = field(default=1000, metadata=_setting(_Kind.INT, 1))
    max_sessions_per_user: int = field(default=50, metadata=_setting(_Kind.INT, 1))
    max_sessions_per_user_address: int = field(default=20, metadata=_setting(_Kind.INT, 1))
    # Seconds from connecting to a successful login, however active the client is
    # (Dovecot's login processes allow 3 minutes).
    login_timeout: int = field(default=180, metadata=_setting(_Kind.INT, 1))
    tls_handshake_timeout: int = field(default=30, metadata=_setting(_Kind.INT, 1))
    # A client that leaves our answers unread: dropped when they have not all gone out for
    # this many seconds (Dovecot: 5 minutes), or when this many bytes more were queued for
    # it after it stopped reading.
    output_timeout: int = field(default=300, metadata=_setting(_Kind.INT, 1))
    max_unsent_output: int = field(default=4 * MIB, metadata=_setting(_Kind.INT, 1))
    close_timeout: int = field(default=30, metadata=_setting(_Kind.INT, 1))
    # IMAP literal octets (APPENDed messages on their way in), and ManageSieve scripts, every
    # session of one process may hold at once; past it a literal is refused with NO
    # [UNAVAILABLE], a script with NO (TRYLATER) (SECURITY.md 2).
    max_literal_memory: int = field(default=256 * MIB, metadata=_setting(_Kind.INT, 1))
    # What one message's MIME structure may make the IMAP server parse (SECURITY.md 1): the
    # first five are Dovecot 2.3's message-parser bounds, the last two ours.
    max_mime_depth: int = field(default=100, metadata=_setting(_Kind.INT, 1))
    max_mime_parts: int = field(default=10_000, metadata=_setting(_Kind.INT, 1))
    max_header_size: int = field(default=10 * MIB, metadata=_setting(_Kind.INT, 1))
    max_headers_size: int = field(default=50 * MIB, metadata=_setting(_Kind.INT, 1))
    max_mime_params: int = field(default=128, metadata=_setting(_Kind.INT, 1))
    max_header_fields: int = field(default=100_000, metadata=_setting(_Kind.INT, 1))
    max_header_tokens: int = field(default=250_000, metadata=_setting(_Kind.INT, 1))
    # What SEARCH TEXT and FETCH made of messages (folded texts, ENVELOPE, BODYSTRUCTURE),
    # kept for the next commands by each worker process (mra/imap/messagecache.py,
    # SECURITY.md 2); 0 keeps none.
    message_cache: int = field(default=32 * MIB, metadata=_setting(_Kind.INT, 0))

    # The MTA's password checks (mra/authserver, SECURITY.md 2 and 3): one line of the Dovecot
    # auth protocol (Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH), the requests one connection may
    # have in progress at once, how long a connection may stay silent (an MTA keeps its
    # connection between messages: Postfix's smtpd for its whole life), and one
    # length-prefixed field of a saslauthd request.
    auth_max_line: int = field(default=16384, metadata=_setting(_Kind.INT, 256))
    auth_max_requests: int = field(default=64, metadata=_setting(_Kind.INT, 1))
    auth_idle_timeout: int = field(default=3600, metadata=_setting(_Kind.INT, 1))
    saslauthd_max_field: int = field(default=1024, metadata=_setting(_Kind.INT, 16))


@dataclass(frozen=True)
class ImapConfig:
    """IMAP's own choices (the limits every protocol shares are in [limits])."""

    # true: LITERAL+, non-synchronizing literals of any size (RFC 7888 section 3); false:
    # LITERAL-, at most 4096 octets, a larger one closes the connection unread (section 5).
    literal_plus: bool = field(default=True, metadata=_setting(_Kind.BOOL))
    # COMPRESS=DEFLATE (RFC 4978): zlib's level for what the server sends, 1 (fastest, the
    # default: a sixth of level 6's CPU for a few percent more octets) to 9; 0 = not offered.
    compress_level: int = field(default=1, metadata=_setting(_Kind.INT, 0, 9))


@dataclass(frozen=True)
class ManageSieveConfig:
    """What each account may store over ManageSieve (Pigeonhole's sieve_max_script_size,
    sieve_quota_max_scripts and sieve_quota_max_storage; 0 = no limit for the last two)."""

    max_script_size: int = field(default=MIB, metadata=_setting(_Kind.INT, 1))
    max_scripts: int = field(default=100, metadata=_setting(_Kind.INT, 0))
    max_storage: int = field(default=10 * MIB, metadata=_setting(_Kind.INT, 0))


@dataclass(frozen=True)
class ClusterConfig:
    """`[cluster]`: nginx's mail proxy in front of several `mra serve` nodes (mra/cluster)."""

    # nginx's `auth_http` endpoint and Postfix's `socketmap` table ("" = off).
    auth_http: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    socketmap: Listener | None = field(default=None, metadata=_setting(_Kind.ENDPOINT))
    # The addresses of the proxies (and MTAs) that may ask, and whose connections to the nodes
    # carry many users (exempt from the per-address connection limit).
    proxies: tuple[str, ...] = field(default=("127.0.0.1", "::1"), metadata=_setting(_Kind.WORDS))
    # The mail nodes: "ADDRESS" (an IP address: nginx connects to it as given), optionally
    # followed by " imap=PORT pop3=PORT lmtp=PORT" where a node differs from the ports below.
    nodes: tuple[str, ...] = field(default=(), metadata=_setting(_Kind.WORDS))
    imap_port: int = field(default=143, metadata=_setting(_Kind.INT, 1, 65535))
    pop3_port: int = field(default=110, metadata=_setting(_Kind.INT, 1, 65535))
    lmtp_port: int = field(default=24, metadata=_setting(_Kind.INT, 1, 65535))
    # Seconds between health checks of each node, and how long one may take.
    health_interval: float = field(default=1.0, metadata=_setting(_Kind.NUMBER, 0))
    health_timeout: float = field(default=1.0, metadata=_setting(_Kind.NUMBER, 0))
    # What one auth_http request may carry (its headers together), and the longest socketmap
    # request (Postfix's own bound is 100000).
    max_request: int = field(default=8192, metadata=_setting(_Kind.INT, 256))
    # Failed logins nginx may retry on one connection (it keeps each attempt's memory until the
    # connection ends); the next failure closes the connection (nginx: "10-20 attempts").
    max_login_attempts: int = field(default=10, metadata=_setting(_Kind.INT, 1))


@dataclass(frozen=True)
class LmtpConfig:
    """LMTP (RFC 2033) in `mra serve` ([listen] lmtp): what one client transaction may hold."""

    # RCPT TO per transaction; past it 452 4.5.3 and the client sends the rest in another
    # (RFC 5321 4.5.3.1.8: a server must take at least 100).
    max_recipients: int = field(default=100, metadata=_setting(_Kind.INT, 100))
    # Octets of one command line with its CRLF: RFC 5321's 512, plus what SIZE, BODY, SMTPUTF8
    # and a 256-octet UTF-8 address add, with room. Longer lines are refused unread (500).
    max_line_length: int = field(default=4096, metadata=_setting(_Kind.INT, 512))
    # Copies of one message (its recipients' mailboxes) made at once, each in a thread of its
    # own: their fsyncs overlap and the file system commits them together. 1 = one after the
    # other.
    parallel_copies: int = field(default=4, metadata=_setting(_Kind.INT, 1))


@dataclass(frozen=True)
class IndexConfig:
    """The folder index (mailstore/folderindex.py): modseqs for CONDSTORE and QRESYNC, and
    the folder states a worker keeps (mailstore/folderstate.py)."""

    # "" = beside each folder (`mra.index`); else a location template, as Dovecot's INDEX=: a
    # local directory for Maildirs on shared storage, where SQLite must not be.
    location: str = field(default="", metadata=_setting(_Kind.INDEX))
    # Folders no session has open that stay in a worker's memory, and their messages in all:
    # the next SELECT of such a folder is a sync, not a rebuild (each costs about 400 octets
    # a message, and 4 descriptors a folder).
    keep_folders: int = field(default=64, metadata=_setting(_Kind.INT, 0))
    keep_messages: int = field(default=400_000, metadata=_setting(_Kind.INT, 0))
    # Expunged UIDs kept per folder for QRESYNC's VANISHED (EARLIER); a client older than the
    # oldest is told every UID of its range that is not in the folder instead.
    expunge_log: int = field(default=100_000, metadata=_setting(_Kind.INT, 1))
    # SORT keys (DATE, SUBJECT, ...) whose order a folder keeps ready, the ones used last
    # (mra/imap/sortindex.py): about 80 octets a message each, 60 more with ranks. 0: none kept,
    # every SORT sorts.
    sort_keys: int = field(default=4, metadata=_setting(_Kind.INT, 0, 16))


@dataclass(frozen=True)
class AdminConfig:
    """`[admin]`: the bounds of the admin socket and the metrics endpoint (mra/admin/), and
    where the workers of a `workers > 1` server put their private control sockets
    (mra/net/control.py; SECURITY.md, "The admin socket")."""

    # One request line on the admin socket (or a control socket), and one string argument of
    # it: longer is refused with an error answer, never held.
    max_request: int = field(default=8192, metadata=_setting(_Kind.INT, 256))
    max_argument: int = field(default=512, metadata=_setting(_Kind.INT, 64))
    # One answer line `mra` reads, and one a worker reads from another: a `who` of a very busy
    # server (about 200 octets a session); past it the answer is refused as not an answer.
    max_answer: int = field(default=64 * MIB, metadata=_setting(_Kind.INT, 65536))
    # Seconds `mra who|kick|reload|stats` waits for its answer, and seconds the worker that
    # took a request waits for each other worker's (one that does not answer in time, or has
    # died, is reported as unanswered, never waited for longer).
    timeout: int = field(default=30, metadata=_setting(_Kind.INT, 1))
    worker_timeout: int = field(default=5, metadata=_setting(_Kind.INT, 1))
    # Octets of one metrics request's line and headers; a request with a body is refused (413).
    metrics_max_request: int = field(default=16384, metadata=_setting(_Kind.INT, 1024))
    # Series one metric family may hold in one worker (a bug naming series after input must
    # not eat the memory): past it new label values are not counted.
    metrics_max_series: int = field(default=2000, metadata=_setting(_Kind.INT, 100))
    # The directory a fresh private directory (mode 0700, the server user's) is made in for
    # the workers' control sockets when `[server] workers` is above 1 and `[listen] admin` or
    # `metrics` is set; "" = $TMPDIR or /tmp. Removed when the server stops.
    control_dir: str = field(default="", metadata=_setting(_Kind.PATH))


@dataclass(frozen=True)
class Config:
    listen: ListenConfig = field(default_factory=ListenConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    mailboxes: MailboxesConfig = field(default_factory=MailboxesConfig)
    maps: MapsConfig = field(default_factory=MapsConfig)
    mda: MdaConfig = field(default_factory=MdaConfig)
    sieve: SieveConfig = field(default_factory=SieveConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    log: LogConfig = field(default_factory=LogConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    managesieve: ManageSieveConfig = field(default_factory=ManageSieveConfig)
    lmtp: LmtpConfig = field(default_factory=LmtpConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    path: str | None = None  # the file it came from; None = built-in defaults


_SECTIONS: Final[Mapping[str, type[Any]]] = {
    "listen": ListenConfig,
    "tls": TlsConfig,
    "auth": AuthConfig,
    "mail": MailConfig,
    "mailboxes": MailboxesConfig,
    "maps": MapsConfig,
    "mda": MdaConfig,
    "sieve": SieveConfig,
    "server": ServerConfig,
    "log": LogConfig,
    "limits": LimitsConfig,
    "imap": ImapConfig,
    "managesieve": ManageSieveConfig,
    "lmtp": LmtpConfig,
    "index": IndexConfig,
    "cluster": ClusterConfig,
    "admin": AdminConfig,
}
_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    name: tuple(f.name for f in dataclasses.fields(cls))
    for name, cls in _SECTIONS.items()
    if cls is not MailboxesConfig  # its keys are folder names
}


@dataclass(frozen=True)
class ConfigProblem:
    line: int | None  # 1-based; None when the problem is with the file as a whole
    message: str


class ConfigError(Exception):
    """Everything wrong with one configuration file."""

    def __init__(self, problems: list[ConfigProblem], path: str | None = None) -> None:
        super().__init__(problems)
        self.problems = problems
        self.path = path if path is not None else "<config>"

    def __str__(self) -> str:
        return "\n".join(
            f"{self.path}:{p.line}: {p.message}"
            if p.line is not None
            else f"{self.path}: {p.message}"
            for p in self.problems
        )


def load_config(path: str | None) -> Config:
    """Read and validate the configuration; None gives the built-in defaults.

    Raises ConfigError listing every problem, including a file that cannot be read.
    """
    if path is None:
        return Config()
    config, problems = configcheck.load(path)
    if problems or config is None:
        raise ConfigError(problems, path)
    return config


def parse_config(data: bytes, path: str) -> Config:
    """`load_config` for the contents of `path` already read: what the file held, exactly.

    `mailstore.configcache` uses it so that the cache it writes matches the bytes it read even
    if the file is being replaced at the same moment. Relative paths are resolved against the
    directory of `path`, which is not read. Raises ConfigError listing every problem.
    """
    config, problems = configcheck.parse(data, path)
    if problems or config is None:
        raise ConfigError(problems, path)
    return config


def check_config(path: str) -> list[ConfigProblem]:
    """Every problem in the configuration file, in line order; [] if it is fine."""
    return configcheck.load(path)[1]


# Last: configcheck reads the classes above.
from mailstore import configcheck  # noqa: E402
