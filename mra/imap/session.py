"""IMAP4rev1 session (placeholder until the full server lands): greeting, CAPABILITY, LOGOUT."""

from __future__ import annotations

from mra.session import Close, Output, Send, Session

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.context import Connection, Services


class ImapSession(Session):
    timeout = 60.0

    def __init__(self, conn: Connection, services: Services) -> None:
        self.conn = conn
        self.services = services
        self._buffer = b""

    def greeting(self) -> list[Output]:
        return [Send(b"* OK [CAPABILITY IMAP4rev1] mra ready\r\n")]

    def refuse(self, text: str) -> list[Output]:
        return [Send(f"* BYE {text}\r\n".encode()), Close()]

    def shutdown(self) -> list[Output]:
        return [Send(b"* BYE Server shutting down\r\n"), Close()]

    def data_received(self, data: bytes) -> list[Output]:
        self._buffer += data
        out: list[Output] = []
        while b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            tag, _, rest = line.strip().partition(b" ")
            verb = rest.split(b" ", 1)[0].upper()
            if verb == b"LOGOUT":
                return [*out, Send(b"* BYE Logging out\r\n" + tag + b" OK LOGOUT completed\r\n"),
                        Close()]
            if verb == b"CAPABILITY":
                out.append(Send(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK CAPABILITY\r\n"))
            else:
                out.append(Send(tag + b" BAD not implemented yet\r\n"))
        return out
