"""The admin socket's protocol: one request line, one answer line, both JSON.

    -> {"command": "kick", "user": "alice@example.test"}
    <- {"ok": true, "result": {"kicked": 2}}
    <- {"ok": false, "error": "no such command: 'frobnicate'"}

The socket is root's (`[listen] admin`, mode 0600 by default), so a request comes from
someone who could stop the server anyway; it is still read as untrusted input (SECURITY.md,
"The admin socket"): a line is at most `[admin] max_request` octets (longer: refused and
closed, never held), it must be a JSON object with a known command and only that command's
arguments, each of its type and at most `[admin] max_argument` characters without control
characters. Anything else is an error answer, never an exception in the server. One request
per connection; `mra` waits `[admin] timeout` seconds for the answer, and the worker that took
the request waits at most `[admin] worker_timeout` for each of the others.

`local: true` asks one worker about itself only: the workers of a server ask each other that
way over their control sockets (mra/net/control.py), and never pass it on. An answer gathered
from several workers may name the workers that did not answer:

    <- {"ok": true, "result": [...], "unanswered": [{"worker": 1, "error": "..."}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# command -> {argument: (type, required)}
COMMANDS: dict[str, dict[str, tuple[type, bool]]] = {
    "who": {"user": (str, False)},
    "kick": {"user": (str, True), "ip": (str, False)},
    "reload": {},
    "stats": {},
}


class AdminError(Exception):
    """A request that cannot be carried out; the message is the answer."""


@dataclass
class Request:
    command: str
    args: dict[str, Any] = field(default_factory=dict)
    local: bool = False


def parse_request(line: bytes, max_request: int, max_argument: int) -> Request:
    """The request on one line (without its newline); AdminError says what is wrong."""
    if len(line) > max_request:
        raise AdminError(f"request longer than {max_request} octets")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AdminError("the request is not a JSON object on one line") from None
    if not isinstance(data, dict):
        raise AdminError("the request is not a JSON object on one line")
    command = data.pop("command", None)
    if not isinstance(command, str) or command not in COMMANDS:
        shown = command[:40] if isinstance(command, str) else command
        raise AdminError(f"no such command: {shown!r}")
    local = data.pop("local", False)
    if not isinstance(local, bool):
        raise AdminError("local must be true or false")
    spec = COMMANDS[command]
    args: dict[str, Any] = {}
    for key, value in data.items():
        if key not in spec:
            raise AdminError(f"{command} takes no argument {str(key)[:40]!r}")
        kind, _ = spec[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise AdminError(f"{command}: {key} must be a {kind.__name__}")
        if isinstance(value, str):
            if len(value) > max_argument:
                raise AdminError(f"{command}: {key} is longer than {max_argument} characters")
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise AdminError(f"{command}: {key} holds a control character")
        args[key] = value
    for key, (_, required) in spec.items():
        if required and key not in args:
            raise AdminError(f"{command} needs {key}")
    return Request(command, args, local)


def encode_request(command: str, local: bool = False, **args: object) -> bytes:
    body: dict[str, object] = {"command": command, **args}
    if local:
        body["local"] = True
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def encode_answer(
    result: object = None,
    error: str | None = None,
    unanswered: list[dict[str, object]] | None = None,
) -> bytes:
    body: dict[str, object] = (
        {"ok": False, "error": error} if error is not None else {"ok": True, "result": result}
    )
    if unanswered:
        body["unanswered"] = unanswered
    return json.dumps(body, separators=(",", ":"), default=str).encode() + b"\n"


def decode_answer(line: bytes) -> object:
    """The result of an answer line; AdminError with the server's message for an error."""
    return decode_full_answer(line)[0]


def decode_full_answer(line: bytes) -> tuple[object, list[dict[str, object]]]:
    """The result of an answer line and the workers that did not answer; AdminError with the
    server's message for an error."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AdminError("the server's answer is not JSON") from None
    if not isinstance(data, dict) or "ok" not in data:
        raise AdminError("the server's answer is not an answer")
    if not data["ok"]:
        raise AdminError(str(data.get("error", "failed")))
    unanswered = data.get("unanswered") or []
    if not isinstance(unanswered, list) or not all(isinstance(u, dict) for u in unanswered):
        raise AdminError("the server's answer is not an answer")
    return data.get("result"), unanswered
