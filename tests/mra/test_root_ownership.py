"""A server left running as root (`[server] user` empty) serves Maildirs that belong to their
users: what it creates there must be theirs too, as if the owner of the directory had made it.
Otherwise the user's own delivery agent (`mda` as that user) cannot write the root-owned
dovecot-uidlist any more, and COPY's hard links of root-owned files are refused as planted
links to someone else's file. See mailstore/folderdir.py ("Who owns what we create")."""

from __future__ import annotations

import imaplib
import os
import poplib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mra.conftest import PASSWORD, MraServer

MDA = str(Path(sys.executable).parent / "mda")
NOBODY = 65534  # nobody:nogroup, an ordinary user that owns the Maildir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server runs as root")


def owners(root: Path) -> dict[str, tuple[int, int]]:
    """(uid, gid) of everything in the tree, by path relative to it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_uid, st.st_gid)
    return out


def test_attack_root_server_leaves_no_root_files_in_a_users_maildir(
    server_factory: type[MraServer],
) -> None:
    server = server_factory()
    lines = server.passwd.read_text().splitlines()
    # A quota: the server writes `maildirsize`, which mda then updates.
    lines = [
        ln + "userdb_quota_rule=*:storage=10M" if ln.startswith("alice@") else ln for ln in lines
    ]
    server.passwd.write_text("\n".join(lines) + "\n")
    root = server.mail / "example.test" / "alice"
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for path in (root, root / "cur", root / "new", root / "tmp"):
        os.chown(path, NOBODY, NOBODY)
    server.start()  # as root: no [server] user

    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    m.login("alice@example.test", PASSWORD)
    # A new message, the uidlist, the keywords file, maildirsize, the index, a new folder
    # (and the default ones), subscriptions; then POP3's lock file.
    typ, _ = m.append("INBOX", "($Label1)", None, b"Subject: appended\r\n\r\nby IMAP\r\n")
    assert typ == "OK"
    assert m.create("Work")[0] == "OK"
    assert m.subscribe("Work")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    assert m.store("1", "+FLAGS", "(\\Seen $Label2)")[0] == "OK"
    m.close()
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    p.user("alice@example.test")
    p.pass_(PASSWORD)
    p.quit()

    # The user's own delivery agent, as that user: it writes the uidlist the server made.
    config = server.base / "mda.toml"
    config.write_text(server.config.read_text() + '[mda]\nmail_uid = "nobody"\n')
    proc = subprocess.run(
        [MDA, "--config", str(config), "-d", "alice@example.test"],
        input=b"Subject: delivered\n\nby mda\n",
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

    # COPY hard-links both files into Work: neither may be refused as a foreign file.
    assert m.select("INBOX")[0] == "OK"
    assert m.copy("1:*", "Work")[0] == "OK"
    assert m.select("Work")[0] == "OK"
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    subjects = sorted(
        bytes(part[1]).strip() for part in data if isinstance(part, tuple) and len(part) == 2
    )
    assert subjects == [b"Subject: appended", b"Subject: delivered"]
    m.logout()

    found = owners(root)
    assert any(name.startswith(".Work") for name in found)
    assert {"dovecot-uidlist", "dovecot-keywords", "maildirsize", "mra.index"} <= set(found)
    assert {k: v for k, v in found.items() if v != (NOBODY, NOBODY)} == {}
    assert "foreign-file-refused" not in server.log()
