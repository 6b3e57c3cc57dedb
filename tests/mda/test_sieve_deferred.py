"""Standard modules read ahead by root and imported only if the run needs them
(`mda.sieve.deferred`, `preload.DEFERRED`) when the mailbox owner cannot read the standard
library."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mda.sieve import preload

from .conftest import ROOT, MdaEnv
from .test_sieve import ALICE, deliver, message, script

# What mda has imported when root reads `re` ahead: the delivery path and the Sieve run.
LOADED_FIRST = [
    "mda.cli",
    "mda.deliver",
    "mda.delivery",
    "mailstore.store",
    "mailstore.keywords",
    "mda.sieve.delivery",
    "mda.sieve.compiled",
    "mda.sieve.evaltests",
    "mda.sieve.cpulimit",
    "mda.sieve.preload",
]


def run_python(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; its last line of output, a dict's repr (not JSON:
    `json` imports `re`)."""
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    result: dict[str, object] = ast.literal_eval(out.stdout.splitlines()[-1])
    return result


def test_re_read_ahead_is_complete_and_imports_nothing() -> None:
    """After `read`, no file may be opened any more (the finder that reads them is taken
    off `sys.meta_path`, as a privilege drop to a user who cannot read the standard library
    would): `re` must still import and work, from what was read."""
    result = run_python(
        "import sys\n"
        f"for name in {LOADED_FIRST!r}:\n"
        "    __import__(name)\n"
        "from mda.sieve import deferred, preload\n"
        "before = set(sys.modules)\n"
        "now = deferred.read(preload.DEFERRED['re'])\n"
        "for name in now:\n"
        "    __import__(name)\n"
        "imported = sorted(set(sys.modules) - before)\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if getattr(f, '__name__', '') != 'PathFinder']\n"
        "sys.path_importer_cache.clear()\n"
        "import re\n"
        "match = re.compile('^h(.)llo$', re.I).match('HELLO')\n"
        "print(repr({'imported': imported, 'now': now, 'group': match.group(1),\n"
        "            'file': re.__file__, 'left': sorted(deferred._FINDER.modules)}))\n"
    )
    assert "re" not in result["imported"] and "enum" not in result["imported"]
    assert result["now"] == []  # what is not read ahead is built in, and needs no file
    assert result["group"] == "E"
    import re

    assert result["file"] == re.__file__
    assert "re._compiler" not in result["left"]  # type: ignore[operator]


def test_what_cannot_be_read_ahead_is_imported_now() -> None:
    result = run_python(
        "import sys\n"
        "from mda.sieve import deferred\n"
        "now = deferred.read(['xml', 'xml.dom', 'email.errors', '_sre', 'no_such_module'])\n"
        "print(repr({'now': now, 'held': sorted(deferred._FINDER.modules),\n"
        "            'first': sys.meta_path[0] is deferred._FINDER}))\n"
    )
    # xml.dom is found in what was read of xml; email.errors's package is neither imported
    # nor read, and the last one does not exist: the caller imports those (and its own
    # import reports the missing one); _sre is built in, its import reads no file.
    assert result["held"] == ["xml", "xml.dom"]
    assert result["now"] == ["email.errors", "no_such_module"]
    assert result["first"] is True


def test_re_is_read_ahead_not_imported_when_the_owner_cannot_read_the_stdlib(
    env: MdaEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailstore.configcache import load_cached

    config = load_cached(str(env.config))
    path = script(env, 'require "regex";\nif header :regex "subject" "^x+$" { keep; }\n')
    monkeypatch.setattr(preload, "_everyone_can_read", lambda path: True)
    assert "re" not in preload.modules_for([str(path)], config, os.geteuid())
    monkeypatch.setattr(preload, "_everyone_can_read", lambda path: False)
    from mda.sieve import deferred

    monkeypatch.setattr(deferred, "read", lambda names: ["read:" + n for n in names])
    wanted = preload.modules_for([str(path)], config, os.geteuid())
    assert "mda.sieve.delivery" in wanted and "re" not in wanted
    assert {f"read:{n}" for n in preload.DEFERRED["re"]} <= set(wanted)
    assert "read:mda.sieve.regex" in wanted  # RARE, as our source is "unreadable" too


def stdlib_unreadable_to_nobody() -> bool:
    return ROOT and not preload._everyone_can_read(os.__file__)


@pytest.mark.skipif(
    not stdlib_unreadable_to_nobody(), reason="needs a Python nobody cannot read, and root"
)
def test_regex_scripts_run_after_the_drop_with_re_read_ahead(env: MdaEnv) -> None:
    """The test venv's Python is under /root: the delivery that drops to nobody can import
    neither `re` nor `enum` from their files, only from what root read ahead."""
    env.make_folder(ALICE, "Tickets")
    script(
        env,
        'require ["regex", "fileinto", "variables"];\n'
        'if header :regex "subject" "^ticket #([0-9]+):" { fileinto "Tickets"; }\n'
        'elsif header :regex "subject" "^zz(.)" { discard; }\n',
    )
    r = deliver(env, message(subject="ticket #42: printer"))
    assert (r.returncode, r.stderr) == (0, b"")
    r = deliver(env, message(msgid="<m2@x>", subject="hello"))  # no literal: nothing compiled
    assert (r.returncode, r.stderr) == (0, b"")
    assert len(env.messages(ALICE, "Tickets")) == 1 and len(env.messages(ALICE)) == 1


def test_a_module_without_current_bytecode_is_read_from_its_source(tmp_path: Path) -> None:
    (tmp_path / "aheadmod.py").write_text("VALUE = 6 * 7\n")
    result = run_python(
        "import sys, os\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "sys.dont_write_bytecode = True\n"
        "from mda.sieve import deferred\n"
        "now = deferred.read(['aheadmod'])\n"
        f"os.rename({str(tmp_path / 'aheadmod.py')!r}, {str(tmp_path / 'gone.py')!r})\n"
        "import aheadmod\n"
        "print(repr({'now': now, 'value': aheadmod.VALUE, 'file': aheadmod.__file__}))\n"
    )
    assert result == {"now": [], "value": 42, "file": str(tmp_path / "aheadmod.py")}
