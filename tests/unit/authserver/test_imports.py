"""mra.authserver is sans-I/O: like the IMAP and POP3 sessions, it never imports Twisted."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import mra.authserver

FORBIDDEN = ("twisted", "zope", "OpenSSL")


def test_mra_authserver_does_not_import_twisted() -> None:
    names = [m.name for m in pkgutil.walk_packages(mra.authserver.__path__, "mra.authserver.")]
    assert {"mra.authserver.dovecot", "mra.authserver.saslauthd"} <= set(names)
    code = (
        "import sys, json\n"
        f"for n in {names!r}:\n"
        "    __import__(n)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded: list[str] = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
