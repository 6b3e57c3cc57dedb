"""The command line's side of the admin socket (standard library only).

`ask(path, command, ...)` connects, sends one request, reads one answer line (at most
`max_answer` octets, within `timeout` seconds: `[admin] max_answer` and `timeout`) and returns
its result and the workers that did not answer; every failure is an AdminError with a sentence
for the administrator (no server there, permission denied, no answer in time, an answer too
long). `expected_uids` checks who answers:
the socket's server must run as root or as `[server] user`, so that a socket put in its place by
someone else is not believed (SO_PEERCRED).
"""

from __future__ import annotations

import os
import socket
import struct

from mra.admin.protocol import AdminError, decode_full_answer, encode_request


def ask(
    path: str,
    command: str,
    *,
    timeout: float,
    max_answer: int,
    local: bool = False,
    expected_uids: tuple[int, ...] = (),
    **args: object,
) -> tuple[object, list[dict[str, object]]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise AdminError(f"{path}: no such socket: is `mra serve` running?") from None
        except ConnectionRefusedError:
            raise AdminError(f"{path}: nobody listens: is `mra serve` running?") from None
        except PermissionError:
            raise AdminError(f"{path}: permission denied (the admin socket is root's)") from None
        except OSError as exc:
            raise AdminError(f"{path}: {exc.strerror}") from None
        if expected_uids:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid not in expected_uids:
                raise AdminError(
                    f"{path}: the process listening runs as uid {uid}, not as the mail "
                    "server's user: not talking to it"
                )
        sock.sendall(encode_request(command, local=local, **args))
        buffer = bytearray()
        while not buffer.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AdminError(f"{path}: no answer within {timeout:g} seconds") from None
            if not chunk:
                raise AdminError(f"{path}: the server closed the connection without an answer")
            buffer += chunk
            if len(buffer) > max_answer:
                raise AdminError(
                    f"{path}: the answer is longer than {max_answer} octets ([admin] max_answer)"
                )
        return decode_full_answer(bytes(buffer))
    finally:
        sock.close()


def server_uids(server_user: str) -> tuple[int, ...]:
    """The uids a genuine server runs as: root, and `[server] user`."""
    uids = [0, os.getuid()]
    if server_user:
        import pwd

        try:
            pw = (
                pwd.getpwuid(int(server_user))
                if server_user.isdigit()
                else pwd.getpwnam(server_user)
            )
            uids.append(pw.pw_uid)
        except (KeyError, ValueError):
            pass
    return tuple(uids)
