"""Through a real nginx mail proxy (Debian's nginx + libnginx-mod-mail) to `mra serve` nodes:
logins, mail, sessions of one user on one node, a node killed, the auth endpoint's guards.

nginx runs the login dialogue and asks the director's `auth_http`; the director checks the
password and answers with the user's node (mra/cluster). The nodes' logs say which node
served each login.
"""

from __future__ import annotations

import http.client
import imaplib
import poplib
import socket
import ssl
import time
from collections.abc import Iterator

import pytest

from tests.cluster.harness import PASSWORD, USERS, Cluster, nginx_available

pytestmark = pytest.mark.skipif(not nginx_available(), reason="nginx with the mail module")

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(nodes=3)
    c.start()
    yield c
    c.stop()


def imap_login(c: Cluster, user: str, password: str = PASSWORD) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", c.nginx_ports["imap"], timeout=TIMEOUT)
    m.login(user, password)
    return m


def auth_request(
    port: int, headers: dict[str, str], source: str = "127.0.0.1"
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    conn.request("GET", "/auth", headers=headers)
    return conn.getresponse()


def nginx_headers(user: str, password: str, attempt: int = 1) -> dict[str, str]:
    """What nginx sends (ngx_mail_auth_http_module): the name and password %-escaped."""
    escape = {"%": "%25", " ": "%20", "@": "@"}
    return {
        "Auth-Method": "plain",
        "Auth-User": "".join(escape.get(ch, ch) for ch in user),
        "Auth-Pass": "".join(escape.get(ch, ch) for ch in password),
        "Auth-Protocol": "imap",
        "Auth-Login-Attempt": str(attempt),
        "Client-IP": "192.0.2.7",
    }


def test_login_select_fetch_append_through_nginx(cluster: Cluster) -> None:
    user = USERS[0]
    m = imap_login(cluster, user)
    try:
        assert m.select("INBOX")[0] == "OK"
        status, data = m.append("INBOX", r"(\Flagged)", None, b"Subject: via nginx\r\n\r\nhi\r\n")
        assert status == "OK", data
        status, data = m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert status == "OK"
        assert b"via nginx" in b"".join(part[1] for part in data if isinstance(part, tuple))
        assert b"\\Flagged" in b"".join(part[0] for part in data if isinstance(part, tuple))
    finally:
        m.logout()
    # The message is in the shared store, where the user's node put it.
    box = cluster.store(user).mailbox("INBOX")
    box.sync()
    assert any(b"via nginx" in box.read_message(uid) for uid in box.uids())


def test_starttls_and_imaps_and_pop3s_through_nginx(cluster: Cluster) -> None:
    user = USERS[1]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4("127.0.0.1", cluster.nginx_ports["imap"], timeout=TIMEOUT)
    m.starttls(context)
    m.login(user, PASSWORD)
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    s = imaplib.IMAP4_SSL("127.0.0.1", cluster.nginx_ports["imaps"], ssl_context=context)
    s.login(user, PASSWORD)
    assert s.select("INBOX")[0] == "OK"
    s.logout()
    cluster.store(user).mailbox("INBOX").append(b"Subject: pop\r\n\r\nfor pop3\r\n")
    p = poplib.POP3_SSL("127.0.0.1", cluster.nginx_ports["pop3s"], context=context)
    p.user(user)
    p.pass_(PASSWORD)
    count, _ = p.stat()
    assert count >= 1
    assert b"for pop3" in b"\n".join(p.retr(count)[1])
    p.quit()


def test_every_session_of_a_user_lands_on_one_node(cluster: Cluster) -> None:
    users = USERS[2:10]
    before = {u: cluster.logins(u) for u in users}
    for user in users:
        sessions = [imap_login(cluster, user) for _ in range(3)]
        p = poplib.POP3("127.0.0.1", cluster.nginx_ports["pop3"], timeout=TIMEOUT)
        p.user(user)
        p.pass_(PASSWORD)
        p.quit()
        for m in sessions:
            m.logout()
    homes = set()
    for user in users:
        after = cluster.logins(user)
        new = [a - b for a, b in zip(after, before[user], strict=True)]
        assert sum(new) == 4, (user, new)
        assert sorted(new) == [0, 0, 4], (user, new)  # all four on one node
        homes.add(new.index(4))
    assert len(homes) > 1  # eight users do not all hash to one of three nodes


def test_idle_through_nginx_is_woken_by_a_delivery(cluster: Cluster) -> None:
    user = USERS[10]
    m = imap_login(cluster, user)
    try:
        m.select("INBOX")
        sock = m.socket()
        sock.sendall(b"i1 IDLE\r\n")
        assert m.readline().startswith(b"+")
        cluster.store(user).mailbox("INBOX").append(b"Subject: wake\r\n\r\nup\r\n")
        line = m.readline()
        assert line.startswith(b"* ") and b"EXISTS" in line, line
        sock.sendall(b"DONE\r\n")
        while not m.readline().startswith(b"i1 "):
            pass
    finally:
        m.logout()


def test_attack_wrong_password_through_nginx_waits_as_long_as_direct(cluster: Cluster) -> None:
    """A guess through nginx is refused after the failure delay, as a guess made to a node
    directly: nginx holds the answer for Auth-Wait seconds (the throttle's delay)."""
    user = USERS[11]
    start = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(cluster, user, "wrong-password")
    through_nginx = time.monotonic() - start
    direct = imaplib.IMAP4("127.0.0.1", cluster.nodes[0].ports["imap"], timeout=TIMEOUT)
    start = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error):
        direct.login(user, "wrong-password")
    directly = time.monotonic() - start
    direct.logout()
    assert directly >= 1.9  # the throttle's first delay, 2 s
    assert through_nginx >= 1.9
    assert "login-failed proto=auth_http" in cluster.director.log()  # type: ignore[union-attr]


def test_attack_auth_http_refuses_a_non_proxy_address(cluster: Cluster) -> None:
    """The endpoint says where a user's mail is and checks passwords: only the configured
    proxies (127.0.0.1 here) may ask; 127.0.0.2 is another host as far as it knows."""
    headers = nginx_headers(USERS[0], PASSWORD)
    refused = auth_request(cluster.auth_http_port, headers, source="127.0.0.2")
    assert refused.status == 403
    assert refused.getheader("Auth-Status") is None
    assert "auth-http-refused ip=127.0.0.2" in cluster.director.log()  # type: ignore[union-attr]
    allowed = auth_request(cluster.auth_http_port, headers)
    assert allowed.getheader("Auth-Status") == "OK"
    assert allowed.getheader("Auth-Server") == "127.0.0.1"
    ports = {str(n.ports["imap"]) for n in cluster.nodes}
    assert allowed.getheader("Auth-Port") in ports


def test_auth_http_unescapes_what_nginx_escaped(cluster: Cluster) -> None:
    """nginx sends the name and password %-escaped: a password with a space and a % must
    arrive as typed, and an escaped wrong one must stay wrong."""
    user = USERS[0]
    ok = auth_request(cluster.auth_http_port, nginx_headers(user, PASSWORD))
    assert ok.getheader("Auth-Status") == "OK"
    headers = nginx_headers(user, PASSWORD)
    headers["Auth-Pass"] = PASSWORD.replace("-", "%2D")  # escaped needlessly: still right
    assert auth_request(cluster.auth_http_port, headers).getheader("Auth-Status") == "OK"
    wrong = auth_request(cluster.auth_http_port, nginx_headers(user, "x %y"))
    assert wrong.getheader("Auth-Status") == "Invalid login or password"
    assert wrong.getheader("Auth-Wait") == "2"


def test_attack_auth_http_past_max_attempts_closes_instead_of_retrying(
    cluster: Cluster,
) -> None:
    """Past `max_login_attempts` nginx must close the client's connection (it keeps each
    attempt's memory until then): the answer has no Auth-Wait, and is itself held back."""
    start = time.monotonic()
    last = auth_request(cluster.auth_http_port, nginx_headers(USERS[1], "bad", attempt=10))
    assert last.getheader("Auth-Status") == "Invalid login or password"
    assert last.getheader("Auth-Wait") is None
    assert time.monotonic() - start >= 1.9


def test_attack_socketmap_refuses_a_non_proxy_address(cluster: Cluster) -> None:
    sock = socket.create_connection(
        ("127.0.0.1", cluster.socketmap_port), timeout=TIMEOUT, source_address=("127.0.0.2", 0)
    )
    sock.sendall(b"31:transport user0@example.test,")
    assert sock.recv(100) == b""
    sock.close()
    assert "socketmap-refused ip=127.0.0.2" in cluster.director.log()  # type: ignore[union-attr]


def flags_of(m: imaplib.IMAP4, uids: str = "1:*") -> dict[bytes, set[bytes]]:
    """UID -> flags, without \\Recent (which only one session ever sees)."""
    found: dict[bytes, set[bytes]] = {}
    for line in m.uid("FETCH", uids, "(FLAGS)")[1]:
        assert isinstance(line, bytes)
        words = line.replace(b"(", b" ").replace(b")", b" ").split()
        uid = words[words.index(b"UID") + 1]
        found[uid] = set(words[words.index(b"FLAGS") + 1 :]) - {b"\\Recent"}
    return found


def test_a_killed_node_s_users_log_in_again_within_2_seconds() -> None:
    c = Cluster(nodes=3)
    c.start()
    try:
        user = USERS[3]
        box = c.store(user).mailbox("INBOX")
        for i in range(3):
            box.append(f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
        m = imap_login(c, user)
        m.select("INBOX")
        m.uid("STORE", "2", "+FLAGS", r"(\Flagged \Seen)")
        before = flags_of(m)
        m.logout()
        counts = c.logins(user)
        home = max(range(3), key=lambda i: counts[i])
        c.nodes[home].kill()
        killed = time.monotonic()
        box.append(b"Subject: while down\r\n\r\ndelivered meanwhile\r\n")
        while True:
            try:
                m = imap_login(c, user)
                break
            except (imaplib.IMAP4.error, OSError, EOFError):
                assert time.monotonic() - killed < 2.0, "no login within 2 s of the kill"
                time.sleep(0.05)
        assert time.monotonic() - killed < 2.0
        m.select("INBOX")
        assert flags_of(m, "1:3") == before
        _, data = m.uid("FETCH", "4", "BODY.PEEK[TEXT]")
        assert b"delivered meanwhile" in data[0][1]  # type: ignore[index]
        m.logout()
        moved = [a - b for a, b in zip(c.logins(user), counts, strict=True)]
        assert moved[home] == 0 and sum(moved) == 1  # another node served it
        # Back up: the user returns to its first node at its next login.
        c.nodes[home].start()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            counts = c.logins(user)
            imap_login(c, user).logout()
            if c.logins(user)[home] > counts[home]:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("the user did not return to its node")
    finally:
        c.stop()
