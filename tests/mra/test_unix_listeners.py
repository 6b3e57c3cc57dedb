"""`[listen]` entries on unix sockets: made with the configured permissions before privileges
are dropped, a dead socket replaced, anything else left alone, removed when the server stops."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.mra.conftest import MRA, MraServer

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="giving a socket to another user needs root")


def unix_pop3(path: Path, mode: str = "", owner: str = "", group: str = "") -> str:
    """A `[listen.pop3]` table: the server's POP3 on a unix socket (MraServer writes the
    `[listen]` section itself; TOML lets a sub-table follow it anywhere)."""
    text = f'[listen.pop3]\naddress = "unix:{path}"\n'
    if mode:
        text += f"mode = {mode}\n"
    if owner:
        text += f'owner = "{owner}"\n'
    if group:
        text += f'group = "{group}"\n'
    return text


def greeting(path: Path) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(path))
        line = s.recv(512)
        s.sendall(b"QUIT\r\n")
        return line


def failed_start(server: MraServer) -> str:
    """Run the server, expecting it to refuse to start; its output."""
    out = subprocess.run(
        [MRA, "serve", "--config", str(server.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 71, out
    return out.stderr


def test_unix_socket_serves_and_is_removed_when_the_server_stops(
    server_factory: type[MraServer],
) -> None:
    server = server_factory(listeners=("imap",))
    path = server.base / "run" / "pop3"  # run/ does not exist: the server makes it
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    server.start()
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600  # the default: only the owner may connect
    assert st.st_uid == os.geteuid()
    assert greeting(path).startswith(b"+OK ")
    assert "listening listener=pop3 address=unix:" in server.log()
    assert server.stop() == 0
    assert not os.path.lexists(path)


@needs_root
def test_socket_gets_the_configured_owner_group_and_mode(server_factory: type[MraServer]) -> None:
    server = server_factory(listeners=("imap",))
    path = server.base / "pop3.sock"
    server.config.write_text(
        server.config.read_text() + unix_pop3(path, mode="0o660", owner="nobody", group="mail")
    )
    server.start()
    st = os.lstat(path)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_uid == pwd.getpwnam("nobody").pw_uid
    import grp

    assert st.st_gid == grp.getgrnam("mail").gr_gid
    assert greeting(path).startswith(b"+OK ")


@needs_root
def test_server_user_owns_the_socket_and_the_directory_it_made_and_removes_both_sockets(
    server_factory: type[MraServer],
) -> None:
    server = server_factory(
        '[server]\nuser = "nobody"\nrequire_readable_installation = false\n', listeners=("imap",)
    )
    os.chown(server.mail, 65534, 65534)
    path = server.base / "run" / "pop3"
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    server.start()
    assert os.lstat(path).st_uid == 65534  # the server's user, by default
    assert os.stat(path.parent).st_uid == 65534
    assert greeting(path).startswith(b"+OK ")
    assert server.stop() == 0
    assert not os.path.lexists(path)  # nobody could remove it from its own directory


@needs_root
def test_socket_the_server_user_cannot_remove_is_said_and_replaced_next_time(
    server_factory: type[MraServer],
) -> None:
    server = server_factory(
        '[server]\nuser = "nobody"\nrequire_readable_installation = false\n', listeners=("imap",)
    )
    os.chown(server.mail, 65534, 65534)
    path = server.base / "pop3.sock"  # base/ is root's, mode 0755: nobody cannot unlink there
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    server.start()
    server.stop()
    assert "unix-socket-left" in server.log()
    server.start()  # the dead socket is replaced
    assert greeting(path).startswith(b"+OK ")


def test_attack_dead_socket_is_replaced(server_factory: type[MraServer]) -> None:
    """A server that crashed leaves its socket: the next one must start, not fail."""
    server = server_factory(listeners=("imap",))
    path = server.base / "pop3.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    server.start()
    assert greeting(path).startswith(b"+OK ")


def test_attack_live_socket_is_not_taken_over(server_factory: type[MraServer]) -> None:
    server = server_factory(listeners=("imap",))
    path = server.base / "pop3.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen(1)
    try:
        server.config.write_text(server.config.read_text() + unix_pop3(path))
        assert "another server is listening" in failed_start(server)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # still the first server's
    finally:
        live.close()


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_attack_what_is_not_a_socket_is_never_replaced(
    server_factory: type[MraServer], kind: str
) -> None:
    server = server_factory(listeners=("imap",))
    path = server.base / "pop3.sock"
    victim = server.base / "precious"
    victim.write_text("keep me\n")
    if kind == "file":
        path.write_text("keep me too\n")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(victim)
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    assert "is not a socket" in failed_start(server)
    assert victim.read_text() == "keep me\n"
    if kind == "file":
        assert path.read_text() == "keep me too\n"
    elif kind == "directory":
        assert path.is_dir()
    else:
        assert path.is_symlink()


def test_attack_socket_in_a_directory_anyone_can_write_is_refused(
    server_factory: type[MraServer],
) -> None:
    """Whoever can write the directory can put their own socket in our place."""
    server = server_factory(listeners=("imap",))
    shared = server.base / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    path = shared / "pop3.sock"
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    assert "writable by everyone" in failed_start(server)
    assert not os.path.lexists(path)
    shared.chmod(0o1777)  # a sticky directory keeps others from replacing our entry
    server.start()
    assert greeting(path).startswith(b"+OK ")


def test_workers_share_the_socket_and_none_removes_it_alone(
    server_factory: type[MraServer],
) -> None:
    server = server_factory("[server]\nworkers = 2\n", listeners=("imap",))
    path = server.base / "pop3.sock"
    server.config.write_text(server.config.read_text() + unix_pop3(path))
    server.start()
    for _ in range(6):
        assert greeting(path).startswith(b"+OK ")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert server.stop() == 0
    assert not os.path.lexists(path)
