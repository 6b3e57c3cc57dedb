"""The ManageSieve session is sans-I/O: none of its modules imports Twisted."""

from __future__ import annotations

import mra.managesieve
from tests.unit.test_imports import all_modules, modules_after_import


def test_managesieve_never_imports_twisted() -> None:
    loaded = modules_after_import(all_modules(mra.managesieve))
    assert "mra.managesieve.session" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("twisted", "zope", "OpenSSL")] == []
