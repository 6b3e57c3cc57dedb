"""A small LMTP client for the tests, and a running `mra serve` with an LMTP listener.

smtplib.LMTP reads one reply after DATA, where LMTP gives one per recipient (RFC 2033 4.2),
so the tests speak the protocol themselves: it is a few lines.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tests.mra.conftest import MraServer

ROOT = os.geteuid() == 0
NOBODY = 65534


def lmtp_config(socket_path: Path, extra: str = "") -> str:
    """Configuration for MraServer: LMTP on a unix socket, the server as nobody (as root)."""
    server = '[server]\nuser = "nobody"\nrequire_readable_installation = false\n' if ROOT else ""
    return server + f'[listen.lmtp]\naddress = "unix:{socket_path}"\n' + extra


def start_lmtp_server(server: MraServer) -> Path:
    """Start a server made with `lmtp_config(server.base / "lmtp")`; its socket."""
    if ROOT:
        os.chown(server.mail, NOBODY, NOBODY)
    server.start()
    return server.base / "lmtp"


class Reply:
    __slots__ = ("code", "lines")

    def __init__(self, code: int, lines: list[str]) -> None:
        self.code = code
        self.lines = lines

    @property
    def text(self) -> str:
        return self.lines[-1]

    @property
    def status(self) -> str:
        """`250 2.1.5`: the code and the enhanced status code."""
        return f"{self.code} {self.text.split(' ', 1)[0]}" if self.code != 354 else "354"

    def __repr__(self) -> str:
        return f"Reply({self.code}, {self.lines!r})"


class LmtpClient:
    def __init__(self, address: Path | tuple[str, int], timeout: float = 30.0) -> None:
        if isinstance(address, Path):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(address))
        else:
            self.sock = socket.create_connection(address, timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> LmtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self) -> Reply:
        lines = []
        while True:
            raw = self.file.readline()
            if not raw:
                raise ConnectionError(f"connection closed after {lines!r}")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line[4:])
            if line[3:4] != "-":
                return Reply(int(line[:3]), lines)

    def replies(self, n: int) -> list[Reply]:
        return [self.reply() for _ in range(n)]

    def command(self, line: str) -> Reply:
        self.send(line + "\r\n")
        return self.reply()

    def lhlo(self) -> Reply:
        return self.command("LHLO client.test")

    def envelope(self, sender: str, recipients: list[str]) -> list[Reply]:
        """MAIL, RCPTs and DATA pipelined; their replies."""
        self.send(
            f"MAIL FROM:<{sender}>\r\n"
            + "".join(f"RCPT TO:<{r}>\r\n" for r in recipients)
            + "DATA\r\n"
        )
        return self.replies(len(recipients) + 2)

    def deliver(self, sender: str, recipients: list[str], message: bytes) -> list[Reply]:
        """A whole transaction; the replies after DATA, one per accepted recipient."""
        replies = self.envelope(sender, recipients)
        assert replies[-1].code == 354, replies
        accepted = sum(1 for r in replies[1:-1] if r.code == 250)
        self.send(dot_stuff(message) + b".\r\n")
        return self.replies(accepted)


def dot_stuff(message: bytes) -> bytes:
    lines = message.split(b"\r\n")
    out = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    return out if out.endswith(b"\r\n") else out + b"\r\n"
