"""mra.auth is sans-I/O: it must not pull in Twisted (or anything of the reactor's)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import mra.auth

FORBIDDEN = ("twisted", "zope", "OpenSSL")


def test_mra_auth_does_not_import_twisted() -> None:
    names = [m.name for m in pkgutil.walk_packages(mra.auth.__path__, "mra.auth.")]
    assert {"mra.auth.passwords", "mra.auth.sasl", "mra.auth.throttle"} <= set(names)
    code = (
        "import sys, json\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
    )
    loaded: list[str] = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []


def test_importing_mra_auth_warns_about_nothing() -> None:
    # The `crypt` fallback is deprecated in Python 3.11+; its import must stay quiet.
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import mra.auth.authenticator"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
