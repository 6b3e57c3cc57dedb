"""Operating a running server: session-end lines, the admin socket and `mra who|kick|reload|
stats`, the metrics endpoint scraped and parsed, `[log]` in `mra serve`."""

from __future__ import annotations

import imaplib
import json
import os
import poplib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer

MRA = str(Path(sys.executable).parent / "mra")
USER = "alice@example.test"


def start(server_factory: type[MraServer], extra: str = "", **listen: str) -> MraServer:
    s = server_factory(extra=extra, listeners=("imap", "pop3"))
    lines = "".join(f'{k} = "{v}"\n' for k, v in listen.items())
    s.config.write_text(s.config.read_text().replace("[listen]\n", "[listen]\n" + lines, 1))
    box = s.store().mailbox("INBOX")
    box.append(b"From: bob@example.test\r\nSubject: one\r\n\r\nbody one\r\n")
    box.append(b"From: bob@example.test\r\nSubject: two\r\n\r\nbody two\r\n")
    s.start()
    return s


def wait_for(s: MraServer, pattern: str) -> re.Match[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(pattern, s.log())
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in the log:\n{s.log()}")


def admin_send(sock: str, data: bytes) -> dict[str, object]:
    """One raw request on the admin socket, its JSON answer (the connection closes after it)."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(20)
        c.connect(sock)
        c.sendall(data)
        answer = b""
        while chunk := c.recv(4096):
            answer += chunk
    result: dict[str, object] = json.loads(answer)
    return result


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))


def mra(s: MraServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MRA, *args, "--config", str(s.config)], capture_output=True, text=True, timeout=60
    )


def test_session_end_lines(server_factory: type[MraServer]) -> None:
    s = start(server_factory)
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    imap.fetch("1:2", "(BODY[])")
    imap.store("1", "+FLAGS", "(\\Deleted)")
    imap.copy("2", "Trash")
    imap.expunge()
    imap.logout()
    line = wait_for(s, r"info session-end proto=imap .*").group(0)
    f = fields(line)
    assert f["user"] == USER and f["ip"] == "127.0.0.1" and f["reason"] == "closed"
    assert (f["fetched"], f["deleted"], f["expunged"], f["trashed"]) == ("2", "1", "1", "1")
    assert int(f["in"]) > 50 and int(f["out"]) > int(f["in"])
    assert float(f["duration"]) >= 0

    pop = poplib.POP3("127.0.0.1", s.ports["pop3"])
    pop.user(USER)
    pop.pass_(PASSWORD)
    pop.retr(1)
    pop.dele(1)
    pop.quit()
    f = fields(wait_for(s, r"info session-end proto=pop3 .*").group(0))
    assert (f["user"], f["fetched"], f["deleted"], f["expunged"]) == (USER, "1", "1", "1")

    with socket.create_connection(("127.0.0.1", s.ports["imap"])) as c:
        c.recv(1000)  # the greeting; then the client goes away
    f = fields(wait_for(s, r"info session-end proto=imap (?!user).*reason=client.*").group(0))
    assert "user" not in f


def test_admin_who_kick_reload_stats(server_factory: type[MraServer], tmp_path: Path) -> None:
    sock = f"{tmp_path}/run/admin"
    s = start(server_factory, admin=f"unix:{sock}")
    st = os.stat(sock)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)  # root's only, by default
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    other = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    other.login("bob@example.test", PASSWORD)

    who = mra(s, "who")
    assert who.returncode == 0, who.stderr
    rows = [fields(line) for line in who.stdout.splitlines()]
    assert sorted(r["user"] for r in rows) == ["alice@example.test", "bob@example.test"]
    assert all(r["proto"] == "imap" and r["ip"] == "127.0.0.1" for r in rows)
    one = json.loads(mra(s, "who", USER, "--json").stdout)
    assert [r["user"] for r in one] == [USER] and one[0]["in"] > 0

    kick = mra(s, "kick", USER)
    assert kick.returncode == 0 and "kicked=1" in kick.stdout
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        imap.noop()
        imap.noop()
    f = fields(wait_for(s, r"info session-end proto=imap user=alice\S* .*").group(0))
    assert f["reason"] == "kicked"
    assert other.noop()[0] == "OK"  # the others stay
    assert mra(s, "kick", "nobody@example.test").returncode == 1

    assert mra(s, "reload").returncode == 0
    wait_for(s, r"info reload ")
    stats = mra(s, "stats")
    assert stats.returncode == 0
    assert re.search(r'^mra_logins_total\{protocol="imap",result="ok"\} 2$', stats.stdout, re.M)
    other.logout()


def test_attack_admin_socket_garbage_and_long_lines(
    server_factory: type[MraServer], tmp_path: Path
) -> None:
    """Whatever comes down the admin socket gets an error answer, never a hang or a crash;
    an over-long line is refused without being held."""
    sock = f"{tmp_path}/admin"
    s = start(server_factory, admin=f"unix:{sock}")

    assert admin_send(sock, b"not json\n") == {
        "ok": False,
        "error": "the request is not a JSON object on one line",
    }
    assert "no such command" in str(admin_send(sock, b'{"command": "shutdown"}\n')["error"])
    assert "takes no argument" in str(
        admin_send(sock, b'{"command": "who", "path": "/etc"}\n')["error"]
    )
    assert "control character" in str(
        admin_send(sock, b'{"command": "kick", "user": "a\\nb"}\n')["error"]
    )
    for _ in range(5):  # the answer arrives however the client's writing and closing interleave
        assert "longer than" in str(admin_send(sock, b"x" * 1_000_000 + b"\n")["error"])
    assert admin_send(sock, b'{"command": "who"}\n') == {"ok": True, "result": []}
    assert s.proc is not None and s.proc.poll() is None


def test_admin_cli_without_a_server(server_factory: type[MraServer], tmp_path: Path) -> None:
    s = server_factory()
    s.config.write_text(
        s.config.read_text().replace("[listen]\n", f'[listen]\nadmin = "unix:{tmp_path}/a"\n')
    )
    out = mra(s, "who")
    assert out.returncode == 69 and "is `mra serve` running?" in out.stderr
    s2 = server_factory()
    out = mra(s2, "who")
    assert out.returncode == 78 and "[listen] admin is not set" in out.stderr


def parse_prometheus(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of the text format 0.0.4, checking each line's syntax on the way."""
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        assert m.group(1) in types or base in types, f"{m.group(1)} has no # TYPE"
    return samples


def test_metrics_endpoint_scraped_and_parsed(server_factory: type[MraServer]) -> None:
    s = start(server_factory, metrics="127.0.0.1:0")
    imap = imaplib.IMAP4("127.0.0.1", s.ports["imap"])
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    imap.fetch("1", "(FLAGS)")
    with pytest.raises(imaplib.IMAP4.error):
        imaplib.IMAP4("127.0.0.1", s.ports["imap"]).login(USER, "wrong")
    url = f"http://127.0.0.1:{s.ports['metrics']}"
    with urllib.request.urlopen(url + "/metrics", timeout=20) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = parse_prometheus(answer.read().decode())

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("mra_logins_total", protocol="imap", result="ok") == 1
    assert value("mra_logins_total", protocol="imap", result="failed") == 1
    assert value("mra_connections_total", listener="imap", result="opened") == 2
    assert value("mra_connections_open", listener="imap") >= 1
    assert value("mra_commands_total", protocol="imap", command="SELECT") == 1
    assert value("mra_command_duration_seconds_count", protocol="imap", command="FETCH") == 1
    assert (
        value("mra_command_duration_seconds_bucket", protocol="imap", command="FETCH", le="+Inf")
        == 1
    )
    assert value("mra_idle_sessions") == 0
    assert ("mra_threadpool_queue_depth", frozenset({("pool", "auth")})) in samples
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + "/etc/passwd", timeout=20)
    assert info.value.code == 404
    imap.logout()


def test_log_settings_in_mra_serve(server_factory: type[MraServer], tmp_path: Path) -> None:
    """`[log] target = "file"`: every line of the server goes to the file, none to stderr."""
    path = tmp_path / "mra-file.log"
    s = server_factory(extra=f'[log]\ntarget = "file"\npath = "{path}"\n', listeners=("imap",))
    stderr_path = s.log_path
    s.log = lambda: path.read_text() if path.exists() else ""  # type: ignore[method-assign]
    s.start()
    with socket.create_connection(("127.0.0.1", s.ports["imap"])) as c:
        c.recv(1000)
    wait_for(s, r"info session-end proto=imap ")
    assert " info listening listener=imap " in s.log()
    assert stderr_path.read_text() == ""
