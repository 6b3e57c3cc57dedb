"""A ManageSieve session alone, no sockets: client bytes in, server lines out.

Blocking work (password checks, the disk, the Sieve parser) runs synchronously through
`run_blocking`; the account is alice@example.test with the password "pw" and a real home in
the test's directory, so the scripts land on disk as they would under `mra serve`.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from mailstore.config import load_config
from mra.auth.glue import AuthService
from mra.context import Connection, Services
from mra.managesieve.session import ManageSieveSession
from mra.session import Close, Send, StartTLS, run_blocking

PLAIN = base64.b64encode(b"\0alice@example.test\0pw").decode()


class Client:
    """`config`: more TOML for the server (a `[managesieve]` section, say)."""

    def __init__(
        self,
        tmp_path: Path,
        peer: str = "127.0.0.1",
        config: str = "",
        tls_available: bool = False,
        home: bool = True,
    ) -> None:
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        home_field = str(self.home) if home else ""
        (tmp_path / "passwd").write_text(f"alice@example.test:{{PLAIN}}pw::::{home_field}::\n")
        (tmp_path / "mra.toml").write_text(
            f'[auth]\npasswd_file = "{tmp_path}/passwd"\n'
            f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n' + config
        )
        loaded = load_config(str(tmp_path / "mra.toml"))
        self.services = Services(loaded, AuthService(loaded))
        self.conn = Connection("sieve", peer, tls_available=tls_available)
        self.session = ManageSieveSession(self.conn, self.services)
        self.closed = False
        self.tls_started = False
        self.greeting = self._lines(self.session.greeting())

    def _lines(self, outputs: list[object]) -> list[str]:
        done = run_blocking(outputs)  # type: ignore[arg-type]
        if any(isinstance(o, Close) for o in done):
            self.closed = True
        if any(isinstance(o, StartTLS) for o in done):
            self.tls_started = True
            done += run_blocking(self.session.tls_started())
        data = b"".join(o.data for o in done if isinstance(o, Send))
        return [line for line in data.decode("utf-8", "replace").split("\r\n") if line]

    def send(self, data: str | bytes) -> list[str]:
        """Feed the bytes; as the adapter does, feed b"" again after each blocking output
        until the session has nothing more to say (pipelined commands)."""
        raw = data.encode() if isinstance(data, str) else data
        lines = self._lines(self.session.data_received(raw))
        while not self.closed:
            more = self.session.data_received(b"")
            if not more:
                break
            lines += self._lines(more)
        return lines

    def expect(self, data: str | bytes, *patterns: str) -> list[str]:
        """Each line must match its pattern: text as is, `{any}` for anything."""
        lines = self.send(data)
        assert len(lines) == len(patterns), lines
        for line, pattern in zip(lines, patterns, strict=True):
            regex = re.escape(pattern).replace(r"\{any\}", ".*")
            assert re.fullmatch(regex, line), (line, pattern)
        return lines

    def login(self) -> None:
        self.expect(f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n', 'OK "Logged in."')

    def put_command(self, name: str, script: bytes | str) -> bytes:
        data = script.encode() if isinstance(script, str) else script
        quoted = name.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'PUTSCRIPT "%s" {%d+}\r\n%s\r\n' % (quoted, len(data), data)

    def put(self, name: str, script: bytes | str) -> list[str]:
        return self.send(self.put_command(name, script))

    def capability_names(self, lines: list[str]) -> list[str]:
        return [line.split('"')[1] for line in lines if line.startswith('"')]
