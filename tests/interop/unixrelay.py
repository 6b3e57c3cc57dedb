"""A unix-socket front for a loopback TCP listener, for clients that speak only unix sockets.

libsasl2's saslauthd client (testsaslauthd, sendmail's SMTP AUTH) connects to a unix socket
path and nothing else. Until `[listen] saslauthd = "unix:PATH"` is available in `mra serve`,
the interop tests put this relay in front of the TCP listener: each connection to PATH is
copied byte for byte, both ways, to 127.0.0.1:PORT. Nothing is read or changed on the way,
so what is tested is still our server's answer. Threads; stopped (socket removed) by close().
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path


class UnixRelay:
    def __init__(self, path: Path, port: int, mode: int = 0o666) -> None:
        self.path = path
        self.port = port
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        os.chmod(path, mode)
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(("127.0.0.1", self.port), timeout=60) as server:
            client.settimeout(60)

            def pump(src: socket.socket, dst: socket.socket) -> None:
                with contextlib.suppress(OSError):
                    while data := src.recv(65536):
                        dst.sendall(data)
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)

            back = threading.Thread(target=pump, args=(server, client), daemon=True)
            back.start()
            pump(client, server)
            back.join(60)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(5)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
