"""POP3's texts and response codes (mra/pop3/response.py): one place, one mapping."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mailstore.errors import (
    ErrorKind,
    MailError,
    MessageUnreadable,
    NotFound,
    PermissionDenied,
    TemporaryFailure,
)
from mra.pop3 import response as r
from mra.pop3 import session

KINDS = [v for k, v in vars(ErrorKind).items() if k.isupper()]


def test_every_store_error_kind_has_its_code() -> None:
    assert set(KINDS) == set(r._CODE_OF_KIND)
    # Dovecot's client_send_storage_error(): TEMP and NOQUOTA are SYS/TEMP, the rest SYS/PERM.
    assert r.code_of(ErrorKind.TEMPORARY) == r.code_of(ErrorKind.NO_QUOTA) == "SYS/TEMP"
    assert r.code_of(ErrorKind.IN_USE) == "IN-USE"  # RFC 2449 8.1.1
    assert r.code_of(ErrorKind.NOT_FOUND) is None  # expunged meanwhile: nothing is wrong
    for kind in KINDS:
        if kind not in (ErrorKind.TEMPORARY, ErrorKind.NO_QUOTA, ErrorKind.IN_USE, "not-found"):
            assert r.code_of(kind) == "SYS/PERM", kind
    assert r.code_of("a kind from the future") == "SYS/TEMP"


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            TemporaryFailure("lock timeout in /var/vmail/x"),
            b"-ERR [SYS/TEMP] Message 3 cannot be read\r\n",
        ),
        (
            MessageUnreadable(3, "Permission denied"),
            b"-ERR [SYS/PERM] Message 3 cannot be read\r\n",
        ),
        (PermissionDenied("no"), b"-ERR [SYS/PERM] Message 3 cannot be read\r\n"),
        (NotFound("gone"), b"-ERR Message 3 is no longer available\r\n"),
    ],
)
def test_a_message_that_cannot_be_served_gets_its_own_err(error: MailError, line: bytes) -> None:
    assert r.message_failed(3, error) == line  # never the store's text (it may name paths)


def test_quit_names_the_messages_not_removed() -> None:
    assert r.not_removed([2], None) == b"-ERR [SYS/TEMP] Message 2 not removed\r\n"
    assert r.not_removed([1, 4], PermissionDenied("x")) == (
        b"-ERR [SYS/PERM] Messages 1 4 not removed\r\n"
    )
    many = r.not_removed(list(range(1, 1001)), None)
    assert many.endswith(b" 30 and 970 more not removed\r\n") and len(many) < 512


def test_texts_from_elsewhere_cannot_add_a_line() -> None:
    assert r.refused("bad\r\n+OK evil") == b"-ERR [SYS/PERM] bad??+OK evil\r\n"
    assert r.greeting("h\u00e9st\n") == b"+OK h?st? POP3 ready\r\n"


def test_multiline_and_bare_ok() -> None:
    assert r.multiline("", ["PLAIN"]) == b"+OK\r\nPLAIN\r\n.\r\n"
    assert r.multiline("scan listing follows", []) == b"+OK scan listing follows\r\n.\r\n"
    assert r.ok() == b"+OK\r\n"


def test_the_session_holds_no_status_text() -> None:
    """Every `+OK`/`-ERR` line and every text the session sends comes from response.py: the
    session's string constants are only commands, capabilities, states and log events."""
    tree = ast.parse(Path(session.__file__).read_text())
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
        assert "+OK" not in text and "-ERR" not in text, text
    # Texts are sentences; what is left in the session are identifiers.
    for value in strings:
        if isinstance(value, str) and len(value.split()) > 1:
            assert value.startswith(("SASL ", "EXPIRE ", "IMPLEMENTATION ")), value
