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
