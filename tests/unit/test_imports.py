"""Import boundaries: what each package may pull in.

`mailstore` and `mda` never import Twisted or passlib (the delivery agent is a per-message
process); the store modules on the delivery path import only cheap standard modules, because
start-up is the whole cost of a delivery. These check module sets, not timings: deterministic.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import mailstore
import mda

FORBIDDEN_EVERYWHERE = ("twisted", "passlib", "zope", "OpenSSL", "cryptography")
# Each of these costs the delivery agent milliseconds at start-up (see mailstore/filenames.py).
COSTLY = ("typing", "dataclasses", "logging", "re", "enum", "email", "socket", "tomllib", "inspect")
DELIVERY_PATH = [
    "mailstore.store",
    "mailstore.mailbox",
    "mailstore.quota",
    "mailstore.names",
    "mailstore.userdb",
    "mailstore.configcache",
    "mda.cli",
    "mda.deliver",
    "mda.delivery",  # the library LMTP shares with mda: it must stay cheap for mda
]


def modules_after_import(names: list[str]) -> list[str]:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        f"for name in {names!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def all_modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    return [m.name for m in pkgutil.walk_packages(path, prefix)]


def test_mailstore_and_mda_never_import_twisted_or_passlib() -> None:
    names = all_modules(mailstore) + all_modules(mda)
    loaded = modules_after_import(names)
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN_EVERYWHERE]
    assert bad == []


def test_delivery_path_imports_only_cheap_modules() -> None:
    loaded = modules_after_import(DELIVERY_PATH)
    bad = [m for m in loaded if m.split(".")[0] in COSTLY]
    assert bad == [], f"the delivery path imports {bad}"
