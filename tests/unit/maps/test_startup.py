"""`mda` runs once per message: the maps must not pull expensive modules into its start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# Each of these costs about as much as a whole bare interpreter start, or drags one in.
EXPENSIVE = {
    "typing",
    "dataclasses",
    "inspect",
    "re",
    "enum",
    "functools",
    "collections",
    "logging",
    "email",
    "sqlite3",
    "dbm",
    "hashlib",
    "struct",
    "tempfile",
    "shutil",
    "pathlib",
}

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import mda
before = set(sys.modules)
from mda.maps.aliases import Aliases
from mda.maps.virtusertable import VirtUserTable
from mda.maps.access import AccessMap
a = Aliases(sys.argv[2] + "/aliases")
a.expand("staff")
VirtUserTable(sys.argv[2] + "/virtusertable").lookup("info@v.example")
AccessMap(sys.argv[2] + "/access").check_sender("bob@x.example")
print(json.dumps([a.map.origin, sorted(set(sys.modules) - before)]))
"""


def test_lookups_import_only_cheap_modules(tmp_path: Path) -> None:
    (tmp_path / "aliases").write_text("staff: bob, :include:" + str(tmp_path / "inc") + "\n")
    (tmp_path / "inc").write_text("carol\n")
    (tmp_path / "virtusertable").write_text("info@v.example bob\n")
    (tmp_path / "access").write_text("From:x.example REJECT\n")
    cmd = [sys.executable, "-I", "-S", "-c", SCRIPT, str(ROOT), str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)  # builds the indexes
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    origin, imported = json.loads(out)
    assert origin == "index"
    assert not EXPENSIVE & set(imported), sorted(EXPENSIVE & set(imported))
