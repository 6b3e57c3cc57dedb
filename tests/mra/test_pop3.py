"""POP3 against a real `mra serve`, with Python's poplib, and the session state machine alone."""

from __future__ import annotations

import poplib
import socket
import time
from pathlib import Path

import pytest

from mailstore.config import load_config
from mailstore.userdb import PasswdFile
from mra.context import Connection, Services
from mra.pop3.session import Pop3Session
from mra.session import Close, Send, run_blocking
from tests.mra.conftest import PASSWORD, MraServer


def login(server: MraServer, user: str = "alice@example.test", wait: bool = False) -> poplib.POP3:
    """Log in; `wait`: the previous session was just dropped, give the server a moment to see
    the closed connection and release its lock."""
    deadline = time.monotonic() + 5
    while True:
        p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
        p.user(user)
        try:
            p.pass_(PASSWORD)
            return p
        except poplib.error_proto as exc:
            p.close()
            if not wait or b"IN-USE" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_stat_list_uidl_retr_top(server: MraServer) -> None:
    box = server.store().mailbox("INBOX")
    box.sync()
    files = [box.read_message(u) for u in box.uids()]
    p = login(server)
    count, total = p.stat()
    sizes = [len(crlf(f)) for f in files]
    assert (count, total) == (2, sum(sizes))
    assert [int(line.split()[1]) for line in p.list()[1]] == sizes
    uidls = [line.split()[1].decode() for line in p.uidl()[1]]
    assert uidls == [f"{u:08x}{box.uidvalidity:08x}" for u in box.uids()]
    _resp, lines, _octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf(files[0])  # poplib un-stuffs the "." line
    assert lines[4] == b"."
    assert p.top(2, 0)[1] == [b"From: carol@example.test", b"Subject: two", b""]
    p.quit()


def test_uidl_is_stable_across_sessions_and_flag_changes(server: MraServer) -> None:
    p = login(server)
    first = p.uidl()[1]
    p.quit()
    box = server.store().mailbox("INBOX")
    box.sync()
    box.store_flags(box.uids(), "add", ["\\Flagged"])
    p = login(server)
    assert p.uidl()[1] == first
    p.quit()


def test_deletions_happen_at_quit_only(server: MraServer) -> None:
    p = login(server)
    p.dele(1)
    assert p.stat()[0] == 1
    with pytest.raises(poplib.error_proto):
        p.retr(1)  # deleted in this session
    p.close()  # dropped without QUIT: nothing is deleted
    box = server.store().mailbox("INBOX")
    box.sync()
    assert len(box) == 2
    p = login(server, wait=True)
    p.dele(1)
    p.rset()
    p.dele(2)
    p.quit()
    box.sync()
    assert len(box) == 1 and b"body one" in box.read_message(box.uids()[0])


def test_retrieved_messages_are_marked_seen(server: MraServer) -> None:
    p = login(server)
    p.retr(2)
    p.quit()
    box = server.store().mailbox("INBOX")
    box.sync()
    flags = [box.get(u).flags for u in box.uids()]
    assert flags == [frozenset(), frozenset({"\\Seen"})]


def test_second_session_gets_in_use(server: MraServer) -> None:
    p = login(server)
    q = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    q.user("alice@example.test")
    with pytest.raises(poplib.error_proto, match=r"IN-USE"):
        q.pass_(PASSWORD)
    p.quit()
    q.user("alice@example.test")
    assert q.pass_(PASSWORD).startswith(b"+OK")  # released at QUIT
    q.quit()


def test_a_killed_session_leaves_no_stale_lock(server: MraServer) -> None:
    p = login(server)
    p.close()
    q = login(server, wait=True)  # the lock went with the connection
    q.quit()


def test_capa_and_auth_plain(server: MraServer) -> None:
    import base64

    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    caps = p.capa()
    for cap in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "USER", "STLS"):
        assert cap in caps
    assert "PLAIN" in caps["SASL"]
    token = base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()).decode()
    assert p._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")
    assert p.stat()[0] == 2
    p.quit()


def test_bad_input_gets_err_and_the_session_continues(server: MraServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for line in (b"FOO\r\n", b"RETR 1\r\n", b"PASS x\r\n", b"\xff\xfe\r\n", b"X" * 5000 + b"\r\n"):
        s.sendall(line)
        assert f.readline().startswith(b"-ERR"), line
    s.sendall(b"USER alice@example.test\r\nPASS " + PASSWORD.encode() + b"\r\n")
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    for line in (
        b"RETR 0\r\n",
        b"RETR 99\r\n",
        b"RETR x\r\n",
        b"TOP 1\r\n",
        b"DELE -1\r\n",
        b"LIST 3\r\n",
    ):
        s.sendall(line)
        assert f.readline().startswith(b"-ERR"), line
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


def test_pipelined_commands_answer_in_order(server: MraServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(
        b"USER alice@example.test\r\nPASS "
        + PASSWORD.encode()
        + b"\r\nSTAT\r\nLIST 1\r\nNOOP\r\nQUIT\r\n"
    )
    answers = [f.readline() for _ in range(6)]
    assert all(a.startswith(b"+OK") for a in answers), answers
    assert answers[2].split()[1] == b"2"


def test_too_many_bad_commands_close_the_session(server: MraServer) -> None:
    s = socket.create_connection(("127.0.0.1", server.ports["pop3"]), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"BOGUS\r\n" * 12)
    lines = [f.readline() for _ in range(11)]
    assert lines[9].startswith(b"-ERR Too many") and lines[10] == b""


# -- the state machine alone (no sockets) ---------------------------------------------------


class _Auth:
    """The user database, without password hashing: what the session asks of auth."""

    def __init__(self, path: Path) -> None:
        self.db = PasswdFile.load(str(path))

    def authenticate(self, login: str, password: str, conn: Connection) -> object:
        user = self.db.lookup(login)
        return user if user is not None and password == "pw" else None

    def failure_delay(self, conn: Connection, login: str) -> float:
        return 0.0

    def succeeded(self, conn: Connection, login: str) -> None:
        return None

    def mechanisms(self, plaintext: bool) -> list[str]:
        return ["PLAIN"] if plaintext else []


def transcript(session: Pop3Session, *lines: bytes) -> bytes:
    out = run_blocking(session.greeting())
    for line in lines:
        out += run_blocking(session.data_received(line))
    return b"".join(o.data for o in out if isinstance(o, Send))


def make_session(tmp_path: Path, peer: str = "127.0.0.1", real_auth: bool = False) -> Pop3Session:
    (tmp_path / "passwd").write_text(f"u@example.test:{{PLAIN}}pw::::{tmp_path}::\n")
    if real_auth:
        from mra.auth.glue import AuthService

        (tmp_path / "mra.toml").write_text(f'[auth]\npasswd_file = "{tmp_path}/passwd"\n')
        config = load_config(str(tmp_path / "mra.toml"))
        services = Services(config, AuthService(config))
    else:
        config = load_config(None)
        services = Services(config, _Auth(tmp_path / "passwd"))
    services.open_store = lambda user: __import__("mailstore.store").store.MailStore(  # type: ignore[method-assign]
        str(tmp_path / "mail")
    )
    return Pop3Session(Connection("pop3", peer), services)


def test_transcript_login_and_empty_mailbox(tmp_path: Path) -> None:
    wire = transcript(
        make_session(tmp_path),
        b"USER u@example.test\r\n",
        b"PASS pw\r\n",
        b"STAT\r\n",
        b"LIST\r\n",
        b"QUIT\r\n",
    )
    assert wire.split(b"\r\n")[1:] == [
        b"+OK",
        b"+OK Logged in.",
        b"+OK 0 0",
        b"+OK scan listing follows",
        b".",
        b"+OK Logging out.",
        b"",
    ]


def test_transcript_plaintext_refused_off_loopback(tmp_path: Path) -> None:
    session = make_session(tmp_path, peer="192.0.2.7")
    wire = transcript(session, b"CAPA\r\n", b"USER u@example.test\r\n")
    assert b"USER\r\n" not in wire
    assert wire.rstrip().endswith(b"use STLS")


def test_transcript_commands_split_across_packets(tmp_path: Path) -> None:
    session = make_session(tmp_path)
    data = b"USER u@example.test\r\nPASS pw\r\nSTAT\r\nQUIT\r\n"
    out = run_blocking(session.greeting())
    for i in range(len(data)):
        out += run_blocking(session.data_received(data[i : i + 1]))
    sent = b"".join(o.data for o in out if isinstance(o, Send))
    assert sent.count(b"+OK") == 5 and isinstance(out[-1], Close)


def test_transcript_every_command(tmp_path: Path) -> None:
    import base64

    session = make_session(tmp_path, real_auth=True)
    from mailstore.store import MailStore

    box = MailStore(str(tmp_path / "mail")).mailbox("INBOX")
    box.append(b"Subject: a\n\n.dot\nbody\n")
    box.append(b"Subject: b\r\n\r\nsecond\r\n")
    box.sync()
    uv = box.uidvalidity
    token = base64.b64encode(b"\0u@example.test\0pw").decode()
    wire = transcript(
        session,
        b"CAPA\r\n",
        b"STLS\r\n",
        b"AUTH PLAIN " + token.encode() + b"\r\n",
        b"STAT\r\n",
        b"LIST\r\n",
        b"LIST 2\r\n",
        b"UIDL\r\n",
        b"UIDL 1\r\n",
        b"TOP 1 0\r\n",
        b"RETR 1\r\n",
        b"DELE 1\r\n",
        b"RETR 1\r\n",
        b"LIST\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"DELE 2\r\n",
        b"QUIT\r\n",
    ).decode()
    expected = [
        "+OK {host} POP3 ready",
        "+OK Capability list follows",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "USER",
        "SASL SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN",
        "IMPLEMENTATION mra",
        ".",
        "-ERR TLS is not available",
        "+OK Logged in.",
        "+OK 2 48",
        "+OK scan listing follows",
        "1 26",
        "2 22",
        ".",
        "+OK 2 22",
        "+OK unique-id listing follows",
        f"1 {1:08x}{uv:08x}",
        f"2 {2:08x}{uv:08x}",
        ".",
        f"+OK 1 {1:08x}{uv:08x}",
        "+OK Top of message follows",
        "Subject: a",
        "",
        ".",
        "+OK 26 octets",
        "Subject: a",
        "",
        "..dot",
        "body",
        ".",
        "+OK Marked to be deleted.",
        "-ERR No such message",
        "+OK scan listing follows",
        "2 22",
        ".",
        "+OK",
        "+OK",
        "+OK Marked to be deleted.",
        "+OK Logging out.",
        "",
    ]
    lines = wire.split("\r\n")
    lines[0] = lines[0].replace(session.services.hostname, "{host}")
    assert lines == expected
    box.sync()
    # RSET undid the DELE and also the \\Seen the RETR would have set (nothing is committed).
    assert box.uids() == [1] and box.get(1).flags == frozenset()


def test_transcript_wrong_state_and_bad_arguments(tmp_path: Path) -> None:
    wire = transcript(
        make_session(tmp_path, real_auth=True),
        b"STAT\r\n",
        b"PASS x\r\n",
        b"AUTH BOGUS\r\n",
        b"USER u@example.test\r\n",
        b"PASS nope\r\n",
        b"USER u@example.test\r\n",
        b"PASS pw\r\n",
        b"USER x\r\n",
        b"TOP x y\r\n",
        b"AUTH\r\n",
    ).decode()
    assert wire.split("\r\n")[1:-1] == [
        "-ERR STAT needs a login first",
        "-ERR USER first",
        "-ERR [AUTH] Unsupported authentication mechanism",
        "+OK",
        "-ERR [AUTH] Authentication failed",
        "+OK",
        "+OK Logged in.",
        "-ERR USER is not valid in this state",
        "-ERR TOP needs a message number and a line count",
        "-ERR AUTH is not valid in this state",
    ]
