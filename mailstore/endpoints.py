"""Where a listener listens: a TCP address or a unix socket, as `[listen]` entries write them.

    imap = "127.0.0.1:143"                  # HOST:PORT, "[::1]:143", ":143" (every address)
    lmtp = "unix:/run/mra/lmtp"             # a unix socket, mode 0600, owned by [server] user
    lmtp = { address = "unix:/var/spool/postfix/private/mra-lmtp",
             owner = "postfix", group = "postfix", mode = 0o600 }

A unix socket is the way a local program (Postfix's lmtp client, its SASL client, Cyrus SASL)
reaches the server: who may connect is decided by the file's owner, group and mode, so those are
part of the listener. The mode is never wider than the administrator wrote, and by default only
the owner may connect (0600): a socket that delivers mail or checks passwords must not be open
to every local user unless somebody chose that. `mode` takes a TOML octal number (`0o660`) or a
string of octal digits (`"0660"`); a decimal 660 is refused, since it is not what anyone means.

How the socket is made, replaced and removed is the server's business (mra/net/listeners.py);
this module only parses and checks what the configuration says, and never imports anything the
delivery agent could not afford (it is not on its path, but `mailstore.config` is its reader).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, NamedTuple

__all__ = [
    "MAX_SOCKET_PATH",
    "Endpoint",
    "Listener",
    "UnixEndpoint",
    "parse_endpoint",
    "parse_listener",
]

# sun_path holds 108 octets with its NUL; the server binds a temporary name (the path and a
# suffix of at most 8) and renames it into place, so that the socket never exists at its
# final path with other permissions than configured.
MAX_SOCKET_PATH = 99
DEFAULT_SOCKET_MODE = 0o600
UNIX_PREFIX = "unix:"


class Endpoint(NamedTuple):
    """A listening TCP address; host "" means every interface."""

    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class UnixEndpoint(NamedTuple):
    """A listening unix socket. `owner` and `group` "" mean the server's user ([server] user,
    or whoever starts the server) and that user's group."""

    path: str
    mode: int = DEFAULT_SOCKET_MODE
    owner: str = ""
    group: str = ""

    def __str__(self) -> str:
        return f"{UNIX_PREFIX}{self.path}"


Listener = Endpoint | UnixEndpoint

_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_OCTAL = re.compile(r"0?[0-7]{1,4}|0o[0-7]{1,4}")


def parse_endpoint(value: str) -> Endpoint:
    """Parse "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every interface).

    Raises ValueError with a message fit for a configuration problem.
    """
    text = value.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError("missing ']' after the IPv6 address")
        host = text[1:close]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
        rest = text[close + 1 :]
        if not rest.startswith(":"):
            raise ValueError("expected ':PORT' after ']'")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(
                "expected HOST:PORT or unix:PATH, like '127.0.0.1:143', ':143' "
                "or 'unix:/run/mra/lmtp'"
            )
        if ":" in host:
            # Without brackets "::1:143" could be the address ::1:143 with no port at all.
            raise ValueError("write an IPv6 address in brackets, like '[::1]:143'")
        if host and not _HOSTNAME.fullmatch(host):
            raise ValueError(f"bad host {host!r} (use ':PORT' for every interface)")
    if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
        raise ValueError(f"bad port {port_text!r} (must be a number from 0 to 65535)")
    return Endpoint(host, int(port_text))


def parse_unix_path(text: str) -> str:
    """The PATH of "unix:PATH": absolute, short enough for sun_path, nothing odd in it."""
    path = text[len(UNIX_PREFIX) :]
    if not path.startswith("/"):
        raise ValueError(f"the socket path {path!r} must be absolute")
    if len(path.encode("utf-8", "surrogateescape")) > MAX_SOCKET_PATH:
        raise ValueError(f"the socket path is longer than {MAX_SOCKET_PATH} octets")
    if path.endswith("/") or any(ord(c) < 32 or c == "\x7f" for c in path):
        raise ValueError(f"{path!r} is not a file name for a socket")
    return path


def _mode(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("mode must be an octal number like 0o660 or '0660'")
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and _OCTAL.fullmatch(value.strip()):
        mode = int(value.strip().removeprefix("0o"), 8)
    else:
        raise ValueError("mode must be an octal number like 0o660 or '0660'")
    if not 0 <= mode <= 0o777:
        raise ValueError(f"mode {value!r} is not a permission mode: write 0o660 or '0660'")
    return mode


def _name(key: str, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if not isinstance(value, str) or not value.strip() or any(c in value for c in ":\0\n "):
        raise ValueError(f"{key} must be a user or group name or number")
    return value.strip()


def parse_listener(value: object) -> Listener | None:
    """A `[listen]` value: "HOST:PORT", "unix:PATH", "" (off), or a table with `address` and,
    for a unix socket, `mode`, `owner` and `group`. ValueError says what is wrong."""
    if isinstance(value, str):
        if not value.strip():
            return None
        if value.strip().startswith(UNIX_PREFIX):
            return UnixEndpoint(parse_unix_path(value.strip()))
        return parse_endpoint(value)
    if not isinstance(value, dict):
        raise TypeError(value)
    table: dict[str, Any] = value
    unknown = sorted(set(table) - {"address", "mode", "owner", "group"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (a listener has address, mode, owner, group)")
    address = table.get("address")
    if not isinstance(address, str) or not address.strip():
        raise ValueError("needs address = 'unix:PATH' or 'HOST:PORT'")
    address = address.strip()
    if not address.startswith(UNIX_PREFIX):
        if len(table) > 1:
            raise ValueError("mode, owner and group are for unix sockets only")
        return parse_endpoint(address)
    return UnixEndpoint(
        parse_unix_path(address),
        _mode(table["mode"]) if "mode" in table else DEFAULT_SOCKET_MODE,
        _name("owner", table["owner"]) if "owner" in table else "",
        _name("group", table["group"]) if "group" in table else "",
    )
