"""ManageSieve's answers (mra/managesieve/response.py): strings, response codes, one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mra.managesieve import response as r
from mra.managesieve import scripts, session


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("plain", b'"plain"'),
        ('clever"script', b'"clever\\"script"'),
        ("back\\slash", b'"back\\\\slash"'),
        ("Ferien ☀", '"Ferien ☀"'.encode()),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("x" * 1024, b'"' + b"x" * 1024 + b'"'),
        ("x" * 1025, b"{1025}\r\n" + b"x" * 1025),  # RFC 5804 4: quoted holds 1024 octets
        (b"nul\0", b"{4}\r\nnul\0"),
    ],
)
def test_strings_are_quoted_when_they_can_be_else_literals(value: str | bytes, wire: bytes) -> None:
    assert r.string(value) == wire


def test_status_lines() -> None:
    assert r.ok() == b"OK\r\n"
    assert r.ok("Done", "TAG", "STARTTLS-SYNC-42") == b'OK (TAG "STARTTLS-SYNC-42") "Done"\r\n'
    assert r.no(r.NO_SUCH_SCRIPT, r.NONEXISTENT) == (
        b'NO (NONEXISTENT) "There is no script by that name."\r\n'
    )
    # Several errors: one per line, so a literal (RFC 5804 2.6 "a multiline literal string").
    assert r.no("line 1: error: a.\r\nline 2: error: b.") == (
        b"NO {36}\r\nline 1: error: a.\r\nline 2: error: b.\r\n"
    )
    assert r.bye(r.IDLE_TIMEOUT) == b'BYE "Disconnected for inactivity."\r\n'
    assert r.script_line("main", True) == b'"main" ACTIVE\r\n'
    assert r.capabilities([("STARTTLS", None), ("VERSION", "1.0")]) == (
        b'"STARTTLS"\r\n"VERSION" "1.0"\r\n'
    )


def test_no_text_holds_a_parenthesis() -> None:
    """The `managesieve` Python module finds the response code with `\\((.*)\\)`, a greedy
    match up to the last ")" of the line: a parenthesis in a text would end up in the code."""
    texts = [v for k, v in vars(r).items() if k.isupper() and isinstance(v, str)]
    texts += [r.too_large(1), r.too_many_scripts(1), r.storage_full(1), r.not_in_state("X")]
    for text in texts:
        assert "(" not in text and ")" not in text, text


@pytest.mark.parametrize("module", [session, scripts])
def test_the_session_holds_no_status_text(module: object) -> None:
    """Every text the session sends comes from response.py: the session's own string constants
    are command names, capability names, states and log events."""
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str | bytes)
        and id(node) not in docstrings
    ]
    for value in strings:
        text = value.decode() if isinstance(value, bytes) else value
        assert text.split(" ")[0] not in ("OK", "NO", "BYE"), text
        assert len(text.split()) <= 1 or text == " ", text
