"""The configuration for the delivery agent, from a cache instead of the TOML file.

`mda` runs once per message, and `mailstore.config.load_config` (tomllib, dataclasses, enum,
re, validation) costs it more than the rest of a delivery. So `load_cached(path)` keeps the
validated configuration next to the file, in `<path>.cache`, in `marshal` format (built into the
interpreter, nothing to import), and answers from it when it can:

* the cache is a regular file (not a symlink), owned by root or by the configuration file's
  owner, and not writable by group or others: marshal data is trusted, so anyone who could write
  the cache could make `mda` deliver anywhere;
* it records the (device, inode, size, mtime, mode, owner, group) of the configuration file,
  and they still match: a `chmod` or `chown` leaves the mtime alone, and must not leave a cache
  of a file that has become writable by others in use;
* the configuration file is writable by neither its group nor others: the cache must never
  vouch for a file that anyone could have rewritten since (and no cache is written for one).
  The delivery agent checks the file and its directories fully before it even gets here
  (`mda.maps.safefile`, SECURITY.md heading 5); this is the cache's own line of defence;
* it records the directory the configuration is in (relative paths in it are resolved against
  that directory, so a moved configuration is read again);
* it holds the very bytes the configuration file holds now, which the cache was built from: a
  file rewritten within one mtime tick with the same size does not slip through. Reading a small
  file costs microseconds, and reading it needs the same permission as `load_config`.

Otherwise the configuration is loaded as usual (raising ConfigError as usual), and the cache is
written again if this process may (root or the configuration's owner: a cache written by anyone
else would not be trusted) and can (an unprivileged `mda` usually cannot write /etc/mra: then it
silently goes without). `write_cache` rebuilds it explicitly, for the administrator.

What comes from the cache is a read-only tree with the attribute names of `Config` (its
sections and their fields, and `path`), typed as `Config` for the type checker. Listener
endpoints are plain tuples, (host, port) or (path, mode, owner, group), rather than `Endpoint`s
and `UnixEndpoint`s, whose `str()` differs.
"""

from __future__ import annotations

import marshal
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

__all__ = ["cache_path", "load_cached", "write_cache"]

# Changed whenever the layout of the cached record changes: an old cache is then just stale.
# 2: the stamp has mode, owner and group; 3: [managesieve]; 4: [sieve]; 5: auth listeners;
# 6: [lmtp] and [listen] lmtp beside them; 7: [index]; 8: [limits] max_sessions_per_user_address;
# 9: [log], [listen] admin and metrics; 10: [cluster], [mail] shared;
# 11: [server] require_readable_installation; 12: [admin]; 13: [lmtp] parallel_copies;
# 14: [limits] message_cache; 15: [index] sort_keys
_FORMAT = "mailstore.configcache/15"

# Config's sections, their fields in order and their defaults: the one description of the cached
# tree. tests/unit/test_configcache.py checks it against mailstore.config, which is not imported
# here (that is the point).
_DEFAULTS: dict[str, dict[str, object]] = {
    "listen": {
        "imap": None,
        "imaps": None,
        "pop3": None,
        "pop3s": None,
        "sieve": None,
        "lmtp": None,
        "auth": None,
        "saslauthd": None,
        "admin": None,
        "metrics": None,
    },
    "tls": {"cert": "", "key": ""},
    "auth": {"passwd_file": "", "allow_plaintext": False, "max_concurrent_hashes": 4},
    "mail": {
        "location": "~/Maildir",
        "max_message_size": 50 * 1024 * 1024,
        "max_append_size": 100 * 1024 * 1024,
        "first_valid_uid": 1000,
        "shared": False,
        "shared_check_interval": 30,
    },
    # specialuse.DEFAULT_MAILBOXES as plain tuples (name, special uses, auto): marshal takes
    # no NamedTuple, and importing `typing` would cost the delivery agent its start-up time.
    "mailboxes": {
        "folders": (
            ("Drafts", ("\\Drafts",), "subscribe"),
            ("Sent", ("\\Sent",), "subscribe"),
            ("Sent Messages", ("\\Sent",), "no"),
            ("Trash", ("\\Trash",), "subscribe"),
            ("Junk", ("\\Junk",), "subscribe"),
            ("Archive", ("\\Archive",), "subscribe"),
        )
    },
    "maps": {
        "aliases": "/etc/aliases",
        "virtusertable": "/etc/mail/virtusertable",
        "access": "/etc/mail/access",
        "local_domains": "/etc/mail/local-host-names",
    },
    "mda": {
        "sendmail": "/usr/sbin/sendmail",
        "quota_bounce": False,
        "duplicate_window": 0,
        "program_timeout": 60,
        "max_program_output": 4096,
        "mail_uid": "",
        "program_shell": False,
        "sieve_before": "",
        "sieve_after": "",
    },
    "sieve": {
        "extensions": (),
        "global_dir": "",
        "max_script_size": 1024 * 1024,
        "max_actions": 32,
        "max_redirects": 4,
        "max_include_depth": 10,
        "max_includes": 255,
        "max_variable_size": 4096,
        "max_header_size": 2048,
        "max_cpu_time": 10,
        "vacation_min_period": 86400,
        "vacation_max_period": 0,
        "vacation_default_period": 7 * 86400,
        "duplicate_default_period": 12 * 3600,
        "duplicate_max_period": 2 * 86400,
        "spamtest_status_header": "",
        "spamtest_status_type": "score",
        "spamtest_max_value": 0.0,
        "spamtest_max_header": "",
        "spamtest_text_values": (),
        "virustest_status_header": "",
        "virustest_status_type": "score",
        "virustest_max_value": 0.0,
        "virustest_max_header": "",
        "virustest_text_values": (),
    },
    "server": {
        "workers": 1,
        "user": "",
        "reactor_stall_ms": 100,
        "require_readable_installation": True,
    },
    "log": {
        "target": "stderr",
        "path": "",
        "format": "text",
        "level": "info",
        "syslog_facility": "mail",
        "rate_limit": 10,
        "rate_limit_interval": 60,
    },
    "limits": {
        "max_connections": 2000,
        "max_connections_per_address": 1000,
        "max_sessions_per_user": 50,
        "max_sessions_per_user_address": 20,
        "login_timeout": 180,
        "tls_handshake_timeout": 30,
        "output_timeout": 300,
        "max_unsent_output": 4 * 1024 * 1024,
        "close_timeout": 30,
        "max_literal_memory": 256 * 1024 * 1024,
        "max_mime_depth": 100,
        "max_mime_parts": 10_000,
        "max_header_size": 10 * 1024 * 1024,
        "max_headers_size": 50 * 1024 * 1024,
        "max_mime_params": 128,
        "max_header_fields": 100_000,
        "max_header_tokens": 250_000,
        "message_cache": 32 * 1024 * 1024,
        "auth_max_line": 16384,
        "auth_max_requests": 64,
        "auth_idle_timeout": 3600,
        "saslauthd_max_field": 1024,
    },
    "imap": {"literal_plus": True, "compress_level": 1},
    "managesieve": {
        "max_script_size": 1024 * 1024,
        "max_scripts": 100,
        "max_storage": 10 * 1024 * 1024,
    },
    "lmtp": {"max_recipients": 100, "max_line_length": 4096, "parallel_copies": 4},
    "index": {
        "location": "",
        "keep_folders": 64,
        "keep_messages": 400_000,
        "expunge_log": 100_000,
        "sort_keys": 4,
    },
    "cluster": {
        "auth_http": None,
        "socketmap": None,
        "proxies": ("127.0.0.1", "::1"),
        "nodes": (),
        "imap_port": 143,
        "pop3_port": 110,
        "lmtp_port": 24,
        "health_interval": 1.0,
        "health_timeout": 1.0,
        "max_request": 8192,
        "max_login_attempts": 10,
    },
    "admin": {
        "max_request": 8192,
        "max_argument": 512,
        "max_answer": 64 * 1024 * 1024,
        "timeout": 30,
        "worker_timeout": 5,
        "metrics_max_request": 16384,
        "metrics_max_series": 2000,
        "control_dir": "",
    },
}


class _Frozen:
    """A read-only record with the fields its `__slots__` name (in `Config`'s order), built from
    a dict of them."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, values: dict[str, object]) -> None:
        if len(values) != len(self.__slots__):
            raise ValueError(f"{type(self).__name__} needs exactly {self.__slots__}")
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def _values(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: the configuration is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: the configuration is read-only")

    def __reduce__(self) -> tuple[type[_Frozen], tuple[dict[str, object]]]:
        return self.__class__, (self._values(),)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, _Frozen):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(self._values().values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values().items())
        return f"{type(self).__name__}({fields})"


class CachedListenConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["listen"])

    def enabled(self) -> dict[str, tuple[object, ...]]:
        """The listeners that are on, by protocol name (as `ListenConfig.enabled`)."""
        endpoints: dict[str, tuple[object, ...]] = {}
        for name in self.__slots__:
            if (endpoint := getattr(self, name)) is not None:
                endpoints[name] = endpoint
        return endpoints


class CachedTlsConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["tls"])


class CachedAuthConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["auth"])


class CachedMailConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["mail"])


class CachedMailboxesConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["mailboxes"])


class CachedMapsConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["maps"])


class CachedMdaConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["mda"])


class CachedSieveConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["sieve"])


class CachedServerConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["server"])


class CachedLogConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["log"])


class CachedLimitsConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["limits"])


class CachedImapConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["imap"])


class CachedManageSieveConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["managesieve"])


class CachedLmtpConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["lmtp"])


class CachedIndexConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["index"])


class CachedClusterConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["cluster"])


class CachedAdminConfig(_Frozen):
    __slots__ = tuple(_DEFAULTS["admin"])


class CachedConfig(_Frozen):
    """The cached configuration: the attributes of `mailstore.config.Config`, read-only."""

    __slots__ = (*_DEFAULTS, "path")


_SECTION_CLASSES: dict[str, type[_Frozen]] = {
    "listen": CachedListenConfig,
    "tls": CachedTlsConfig,
    "auth": CachedAuthConfig,
    "mail": CachedMailConfig,
    "mailboxes": CachedMailboxesConfig,
    "maps": CachedMapsConfig,
    "mda": CachedMdaConfig,
    "sieve": CachedSieveConfig,
    "server": CachedServerConfig,
    "log": CachedLogConfig,
    "limits": CachedLimitsConfig,
    "imap": CachedImapConfig,
    "managesieve": CachedManageSieveConfig,
    "lmtp": CachedLmtpConfig,
    "index": CachedIndexConfig,
    "cluster": CachedClusterConfig,
    "admin": CachedAdminConfig,
}


def cache_path(path: str) -> str:
    """Where the cache of the configuration file `path` lives."""
    return path + ".cache"


def load_cached(path: str | None) -> Config:
    """The configuration in `path`, from its cache when that is trustworthy and current.

    None gives the built-in defaults (as `load_config(None)`, without importing it). Otherwise
    the file is loaded with `load_config` when the cache cannot be used, raising ConfigError as
    usual, and the cache is rewritten if possible; failing to write it is not an error.
    """
    if path is None:
        return _as_config(_build(_DEFAULTS, None))
    cached = _read_cache(path)
    if cached is not None:
        return _as_config(cached)
    return _load(path, must_write=False)


def write_cache(path: str) -> Config:
    """Load the configuration file and write its cache, whether or not it was current.

    For the administrator (`mda newaliases`): raises ConfigError for a bad configuration, with
    no cache written, and OSError if the cache cannot be written. Note that a cache not owned by
    root or by the owner of the configuration file is never used.
    """
    return _load(path, must_write=True)


def _as_config(config: CachedConfig) -> Config:
    """The cached tree, typed as the `Config` it stands in for: it has the same attributes."""
    if TYPE_CHECKING:
        from typing import cast

        return cast("Config", config)
    return config


def _base_dir(path: str) -> str:
    # As mailstore.config resolves relative paths.
    return os.path.dirname(os.path.abspath(path))


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid, st.st_gid)


def _writable_by_others(st: os.stat_result) -> bool:
    return bool(st.st_mode & 0o022)


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_cache(path: str) -> CachedConfig | None:
    """The cached configuration, or None if there is none fit to be used."""
    try:
        st = os.stat(path)
        if _writable_by_others(st):
            return None
        # O_NOFOLLOW: no symlink; O_NONBLOCK: a planted FIFO must not hang the delivery.
        fd = os.open(cache_path(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        cst = os.fstat(fd)
        if not stat.S_ISREG(cst.st_mode) or cst.st_uid not in (0, st.st_uid) or cst.st_mode & 0o022:
            return None
        data = _read_fd(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        form, stamp, base_dir, raw, sections = marshal.loads(data)
        if form != _FORMAT or stamp != _stamp(st) or base_dir != _base_dir(path):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _read_fd(fd) != raw:
                return None
        finally:
            os.close(fd)
        return _build(sections, path)
    except (OSError, ValueError, EOFError, TypeError, KeyError, AttributeError):
        # Unreadable, truncated, or from another version of this module.
        return None


def _build(sections: dict[str, dict[str, object]], path: str | None) -> CachedConfig:
    """The read-only tree; KeyError or ValueError unless `sections` has exactly Config's."""
    if len(sections) != len(_SECTION_CLASSES):
        raise ValueError("the cached configuration has other sections")
    values: dict[str, object] = {
        name: cls(sections[name]) for name, cls in _SECTION_CLASSES.items()
    }
    values["path"] = path
    return CachedConfig(values)


def _load(path: str, *, must_write: bool) -> Config:
    """Load the file with mailstore.config and write the cache of exactly the bytes read."""
    from mailstore import config as _config

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            raw = _read_fd(fd)
        finally:
            os.close(fd)
    except OSError:
        return _config.load_config(path)  # which says what is wrong, as usual
    config = _config.parse_config(raw, path)
    if _writable_by_others(st):
        if must_write:
            raise PermissionError(f"{path} is writable by its group or others: no cache written")
        return config
    if must_write or os.geteuid() in (0, st.st_uid):
        try:
            _write(path, st, raw, config)
        except OSError:
            if must_write:
                raise
    return config


def _sections_of(config: Config) -> dict[str, dict[str, object]]:
    sections: dict[str, dict[str, object]] = {}
    for name, defaults in _DEFAULTS.items():
        section = getattr(config, name)
        values: dict[str, object] = {}
        for key in defaults:
            value = getattr(section, key)
            # An Endpoint or a MailboxSetting is a NamedTuple, which marshal does not take.
            values[key] = _plain(value)
        sections[name] = values
    return sections


def _plain(value: object) -> object:
    """Tuples (NamedTuples too), nested, as plain tuples."""
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    return value


def _write(path: str, st: os.stat_result, raw: bytes, config: Config) -> None:
    """Write the cache next to the file: temporary file, fsync, rename over the old one."""
    data = marshal.dumps((_FORMAT, _stamp(st), _base_dir(path), raw, _sections_of(config)))
    cache = cache_path(path)
    temp = f"{cache}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    # The cache holds what the file holds: no more readable than it is.
    mode = 0o600 | (st.st_mode & 0o044)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            try:
                if mode & 0o040 and os.fstat(fd).st_gid != st.st_gid:
                    os.fchown(fd, -1, st.st_gid)
            except OSError:
                mode &= ~0o040  # not readable by a group the configuration is not readable by
            os.fchmod(fd, mode)  # exactly this, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, cache)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
