"""mra.lmtp is sans-I/O: the session and what it uses never pull in Twisted."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import mra.lmtp

FORBIDDEN = ("twisted", "zope", "OpenSSL")


def test_mra_lmtp_does_not_import_twisted() -> None:
    names = [m.name for m in pkgutil.walk_packages(mra.lmtp.__path__, "mra.lmtp.")]
    assert {"mra.lmtp.session", "mra.lmtp.reader", "mra.lmtp.transaction"} <= set(names)
    code = (
        "import sys, json\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded: list[str] = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []
