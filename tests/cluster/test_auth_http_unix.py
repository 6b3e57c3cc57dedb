"""`[cluster] auth_http` on a unix socket, as nginx's `auth_http unix:PATH:/auth` asks it."""

from __future__ import annotations

import http.client
import os
import socket
import stat

from tests.cluster.harness import PASSWORD, USERS, Cluster
from tests.cluster.test_nginx import nginx_headers


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def test_auth_http_on_a_unix_socket_answers_whoever_its_permissions_let_in() -> None:
    """nginx's `auth_http unix:PATH:/auth`: no address to check, the socket's mode decides
    (0600, the server's user, as every unix listener)."""
    c = Cluster(nodes=1, with_nginx=False, auth_http="")
    c.auth_http = f"unix:{c.base}/run/auth-http"
    try:
        c.start()
        path = f"{c.base}/run/auth-http"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        conn = UnixHTTPConnection(path)
        conn.request("GET", "/auth", headers=nginx_headers(USERS[0], PASSWORD))
        answer = conn.getresponse()
        assert answer.getheader("Auth-Status") == "OK"
        assert answer.getheader("Auth-Port") == str(c.nodes[0].ports["imap"])
    finally:
        c.stop()
