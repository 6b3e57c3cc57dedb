"""The sans-I/O IMAP modules import neither Twisted nor any I/O framework."""

from __future__ import annotations

from tests.unit.test_imports import FORBIDDEN_EVERYWHERE, modules_after_import

SANS_IO = ["mra.imap.parser", "mra.imap.response", "mra.imap.sequence"]


def test_reader_and_writer_never_import_twisted() -> None:
    loaded = modules_after_import(SANS_IO)
    bad = [m for m in loaded if m.split(".")[0] in (*FORBIDDEN_EVERYWHERE, "asyncio", "socket")]
    assert bad == []
