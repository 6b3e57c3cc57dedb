"""mra/preload.py imports every module the server can need: checked against every import
statement of our packages, so that a new lazy import cannot be forgotten."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIPPED_FILES = ("demo.py", "launcher.py", "__main__.py")
# Imported only where the server never goes: typing helpers and the test/bench tooling.
# cryptography: only mra/selfsigned.py, the demo's certificate, made before a server starts.
NOT_FOR_THE_SERVER = ("typing_extensions", "pytest", "_typeshed", "cryptography")


def imported_names() -> set[str]:
    names: set[str] = set()
    for package in ("mailstore", "mra", "mda"):
        for path in (REPO / package).rglob("*.py"):
            if path.name in SKIPPED_FILES:
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
                    # `from twisted.internet import inotify` may name a module
                    names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if not n.startswith(NOT_FOR_THE_SERVER) and n != "__future__"}


def test_every_import_of_our_packages_is_preloaded() -> None:
    script = (
        "import sys, json\n"
        "from mra.preload import preload\n"
        "preload()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    left_out = []
    from mra.preload import EXPECTED_LATE

    for name in sorted(imported_names() - EXPECTED_LATE):
        if name in loaded:
            continue
        parent = name.rpartition(".")[0]
        if parent in loaded and not _is_module(name):
            continue  # `from package import attribute`
        left_out.append(name)
    assert left_out == [], f"imported somewhere but not preloaded: {left_out}"


def _is_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# A worker's first IMAP session, in a process that has run `for_workers` (as the supervisor
# does before it forks): which modules of the server's own does it still import?
FIRST_SESSION = r"""
import sys, tempfile
from pathlib import Path
from mra import preload
preload.for_workers()
# The reactor is each worker's own (mra/net/reactor.py): one made before the fork is shared.
assert "twisted.internet.reactor" not in sys.modules
before = set(sys.modules)
from tests.unit.imap.test_idle_memory import idling
from mailstore.config import load_config
from mailstore.store import MailStore
from mra.auth.glue import AuthService
from mra.context import Services
tmp = Path(tempfile.mkdtemp())
(tmp / "passwd").write_text("alice@example.test:{PLAIN}pw::::::\n")
(tmp / "mra.toml").write_text(
    f'[auth]\npasswd_file = "{tmp}/passwd"\n[mail]\nlocation = "{tmp}/mail/%d/%n"\n'
)
config = load_config(str(tmp / "mra.toml"))
MailStore(str(tmp / "mail/example.test/alice")).mailbox("INBOX").append(b"Subject: x\r\n\r\nx\r\n")
idling(Services(config, AuthService(config)))
late = sorted(n for n in set(sys.modules) - before if n.startswith(("mra", "mailstore", "twisted")))
print(" ".join(late))
"""


def test_attack_every_worker_imports_the_server_for_itself() -> None:
    """A server running as root (no `[server] user`) preloaded nothing: each worker imported
    the IMAP server (136 modules, 7 MB of objects) at its first connection, one copy per
    worker instead of one shared since the fork."""
    out = subprocess.run(
        [sys.executable, "-c", FIRST_SESSION],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
    ).stdout.split()
    assert out == [], f"imported by the worker's first session: {out}"
