"""No LMTP reply before the copy is on disk: the order of the server's system calls, seen.

A crash test (SIGKILL, `make torture`) cannot tell a copy that was fsynced from one that was
only written: the page cache survives a killed process. What durability rests on is the order
of the calls, so this test watches them on a real server (`strace -f -y` on every thread of
`mra serve`) while it takes one message for three mailboxes, whose copies are made together
(`[lmtp] parallel_copies`), and checks for each copy, by the paths strace names:

1. the file in tmp/ is fsynced (its data) before it is linked into new/;
2. new/ is fsynced (the link) after that link;
3. the replies (`250 2.0.0`) are sent only after every one of those fsyncs returned.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mra.conftest import MraServer
from tests.mra.lmtp_client import LmtpClient, lmtp_config, start_lmtp_server

MSG = b"From: s@remote.test\r\nSubject: durable\r\n\r\nKept.\r\n"
USERS = [f"d{i}@example.test" for i in range(3)]
# `1234 fsync(7</path>) = 0`, `1234 <... fsync resumed>) = 0`, `1234 fsync(7</p> <unfinished`
LINE = re.compile(r"^(\d+) +(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")


@dataclass
class Call:
    name: str
    args: str  # as strace shows them, with the paths of descriptors (-y)
    start: int  # the trace line where it began
    end: int  # the line where it returned


def calls(trace: str) -> list[Call]:
    """The completed calls of the trace, with where each began and returned."""
    pending: dict[str, tuple[str, str, int]] = {}
    done: list[Call] = []
    for n, line in enumerate(trace.splitlines()):
        m = LINE.match(line)
        if m is None:
            continue
        pid, resumed, name, rest = m.groups()
        if resumed:
            if pid in pending:
                name, args, start = pending.pop(pid)
                done.append(Call(name, args + rest, start, n))
        elif rest.endswith("<unfinished ...>"):
            pending[pid] = (name, rest, n)
        else:
            done.append(Call(name, rest, n, n))
    return done


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_attack_no_reply_before_the_copies_are_on_disk(server_factory: type[MraServer]) -> None:
    server = server_factory(listeners=("imap",))
    server.config.write_text(server.config.read_text() + lmtp_config(server.base / "lmtp"))
    server.passwd.write_text(
        server.passwd.read_text() + "".join(f"{u}:{{PLAIN}}x::::::\n" for u in USERS)
    )
    path = start_lmtp_server(server)
    assert server.proc is not None
    out = server.base / "strace.txt"
    client = LmtpClient(path)
    client.lhlo()
    tracer = subprocess.Popen(
        ["strace", "-f", "-y", "-s", "300", "-o", str(out), "-p", str(server.proc.pid),
         "-e", "trace=fsync,fdatasync,linkat,renameat,renameat2,sendto,sendmsg,write"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert tracer.stderr is not None
        deadline = time.monotonic() + 30
        while b"attached" not in tracer.stderr.readline():  # strace: Process N attached
            assert time.monotonic() < deadline and tracer.poll() is None, "strace did not attach"
        replies = client.deliver("s@remote.test", USERS, MSG)
        client.command("NOOP")  # the replies' write is traced before this one's answer
    finally:
        client.close()
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    assert [r.status for r in replies] == ["250 2.0.0"] * 3
    traced = calls(out.read_text(errors="replace"))
    sends = [
        c for c in traced if c.name in ("sendto", "sendmsg", "write") and "250 2.0.0" in c.args
    ]
    assert sends, "the replies' write was not traced"
    reply = sends[0].start
    for user in USERS:
        local, _, domain = user.partition("@")
        root = server.mail / domain / local
        [stored] = os.listdir(root / "new")
        links = [
            c for c in traced
            if c.name in ("linkat", "renameat", "renameat2") and f'"{stored}"' in c.args
        ]  # fmt: skip
        assert len(links) == 1, (user, links)
        link = links[0]
        tmp_name = re.findall(r'"([^"]+)"', link.args)[0]
        file_syncs = [
            c.end for c in traced
            if c.name in ("fsync", "fdatasync") and f"{root}/tmp/{tmp_name}>" in c.args
        ]  # fmt: skip
        dir_syncs = [
            c.end for c in traced
            if c.name in ("fsync", "fdatasync") and f"{root}/new>" in c.args and c.start > link.end
        ]  # fmt: skip
        assert file_syncs and min(file_syncs) < link.start, f"{user}: data not fsynced first"
        assert dir_syncs, f"{user}: new/ not fsynced after the link"
        assert min(dir_syncs) < reply, f"{user}: replied before new/ was fsynced"
        assert min(file_syncs) < reply
    assert Path(out).stat().st_size > 0
