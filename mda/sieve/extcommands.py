"""The commands of the extensions: vacation, reject and ereject, include/return/global,
notify, foreverypart/break/extracttext, addheader/deleteheader, error."""

from __future__ import annotations

from . import nodes
from .actions import Notify, Reject, Vacation
from .address import redirect_address
from .errors import SieveError, SieveRuntimeError
from .interpreter import Run, _Break
from .message import is_header_name
from .strings import Template, Value, apply_modifiers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def _values(run: Run, value: object) -> list[str]:
    return run.expand_all(value)  # type: ignore[arg-type]


def _text(run: Run, value: object) -> str:
    return run.expand(value)  # type: ignore[arg-type]


def _optional(run: Run, value: object) -> str | None:
    return None if value is None else run.expand(value)  # type: ignore[arg-type]


def _vacation(run: Run, cmd: nodes.Node) -> None:
    """RFC 5230 section 4: one vacation per run; never with reject (section 4.7)."""
    if run.vacation:
        raise SieveRuntimeError("duplicate vacation action not allowed", cmd.line)
    if run.rejected:
        raise SieveRuntimeError("vacation action conflicts with reject", cmd.line)
    tags = cmd.tags
    sender = _optional(run, tags["from"]) or ""
    if sender and isinstance(tags["from"], Template) and redirect_address(sender) is None:
        raise SieveRuntimeError(f"invalid ':from' address {sender!r}", cmd.line)
    reason = _text(run, cmd.args[0])
    subject = _optional(run, tags["subject"])
    handle = _optional(run, tags["handle"])
    if handle is None:
        # RFC 5230 section 4.2: without :handle, the reason and the other arguments decide
        # whether two vacation actions are "the same"; joined as Pigeonhole joins them.
        handle = (
            reason
            + (subject if subject is not None else "<default-subject>")
            + (sender or "<default-from>")
            + ("<MIME>" if tags["mime"] else "<NO-MIME>")
        )
    seconds = tags["seconds"]
    action = Vacation(
        reason=reason,
        subject=subject,
        sender=sender,
        addresses=tuple(_values(run, tags["addresses"])),
        mime=bool(tags["mime"]),
        handle=handle,
        seconds=seconds if isinstance(seconds, int) else None,
    )
    run.vacation = True
    run.add(action)


def _reject(run: Run, cmd: nodes.Node) -> None:
    """RFC 5429 section 2: reject cancels the implicit keep and cannot come with an action
    that delivers the message, with vacation, or with another reject."""
    if run.rejected:
        raise SieveRuntimeError("duplicate reject/ereject action not allowed", cmd.line)
    if run.vacation:
        raise SieveRuntimeError("reject/ereject action conflicts with vacation", cmd.line)
    if run.stores or run.redirects:
        raise SieveRuntimeError(
            "reject/ereject action conflicts with an action that delivers the message", cmd.line
        )
    run.rejected = True
    run.implicit_keep = False
    run.add(Reject(_text(run, cmd.args[0]), extended=cmd.name == "ereject"))


def _include(run: Run, cmd: nodes.Node) -> None:
    """RFC 6609 section 3.2: run another script here, sharing the actions."""
    is_global = bool(cmd.tags["global"])
    name = str(cmd.args[0])
    key = (is_global, name)
    if cmd.tags["once"] and key in run.included:
        return
    if key in run.include_stack:
        raise SieveRuntimeError(f"include of {name!r} would recurse", cmd.line)
    if len(run.include_stack) >= run.limits.max_include_depth:
        raise SieveRuntimeError(
            f"includes nested deeper than {run.limits.max_include_depth}", cmd.line
        )
    if run.include_count >= run.limits.max_includes:
        raise SieveRuntimeError(f"more than {run.limits.max_includes} includes", cmd.line)
    try:
        script = run.context.load_include(is_global, name)
    except SieveError as exc:
        where = "global" if is_global else "personal"
        raise SieveRuntimeError(
            f"included {where} script {name!r}: line {exc.line}: {exc.message}", cmd.line
        ) from None
    if script is None:
        if cmd.tags["optional"]:
            return  # RFC 6609 3.2: a missing :optional script is no error
        where = "global" if is_global else "personal"
        raise SieveRuntimeError(f"included {where} script {name!r} does not exist", cmd.line)
    run.include_count += 1
    run.included.add(key)
    run.include_stack.append(key)
    try:
        run.run_script(script)
    finally:
        run.include_stack.pop()
    run.line = cmd.line


def _return(run: Run, cmd: nodes.Node) -> None:
    from .interpreter import _Return

    raise _Return()


def _global(run: Run, cmd: nodes.Node) -> None:
    # RFC 6609 section 3.4: these names refer to the variables every script shares.
    run.global_names.update(str(n) for n in cmd.args[0])  # type: ignore[attr-defined]


def _notify(run: Run, cmd: nodes.Node) -> None:
    from .notify import check_method

    method = _text(run, cmd.args[0])
    if isinstance(cmd.args[0], Template):
        problem = check_method(method)
        if problem is not None:
            raise SieveRuntimeError(f"invalid notify method {method!r}: {problem}", cmd.line)
    tags = cmd.tags
    importance = _text(run, tags["importance"])
    if importance not in ("1", "2", "3"):
        importance = "2"
    action = Notify(
        method=method,
        sender=_optional(run, tags["from"]) or "",
        importance=importance,
        options=tuple(_values(run, tags["options"])),
        message=_optional(run, tags["message"]),
    )
    if any(isinstance(a, Notify) and a.method == method for a in run.actions):
        return  # RFC 5435 section 3.9: duplicate notifications may be dropped
    run.add(action)


def _foreverypart(run: Run, cmd: nodes.Node) -> None:
    """RFC 5703 section 3: the block once per MIME part below the current one."""
    from .mime import Part

    current = run.parts[-1] if run.parts else run.msg.mime()
    assert isinstance(current, Part)
    assert cmd.block is not None
    name = str(cmd.tags["name"])
    for part in current.walk():
        run.parts.append(part)
        try:
            run.block(cmd.block)
        except _Break as signal:
            if signal.name and signal.name != name:
                raise
            return
        finally:
            run.parts.pop()
        run.line = cmd.line


def _break(run: Run, cmd: nodes.Node) -> None:
    raise _Break(str(cmd.tags["name"]))


def _extracttext(run: Run, cmd: nodes.Node) -> None:
    """RFC 5703 section 7: the text of the current part (empty if it is not text)."""
    from .mime import Part

    part = run.parts[-1]
    assert isinstance(part, Part)
    text = part.text() if part.media_type == "text" else ""
    first = cmd.tags["first"]
    if isinstance(first, int):
        text = text[:first]
    text = apply_modifiers(text, cmd.tags["modifiers"])  # type: ignore[arg-type]
    run.set_variable(str(cmd.args[0]), text)


# RFC 5293 section 9 and Pigeonhole: these fields cannot be deleted; none can be added under
# the name Pigeonhole reserves for its redirect marker.
_PROTECTED_DELETE = frozenset({"received", "auto-submitted"})


def _header_name(run: Run, value: Value, line: int) -> str:
    name = run.expand(value)
    if isinstance(value, Template) and not is_header_name(name):
        raise SieveRuntimeError(f"invalid header name {name!r}", line)
    return name


def _addheader(run: Run, cmd: nodes.Node) -> None:
    """RFC 5293 section 5: add a field, encoded (RFC 2047) and folded."""
    from .encode import encode_header_value

    name = _header_name(run, cmd.args[0], cmd.line)  # type: ignore[arg-type]
    value = _text(run, cmd.args[1])
    if "\0" in value or any(c in value for c in "\r\n"):
        raise SieveRuntimeError("addheader: the value holds a line break or NUL", cmd.line)
    if len(value.encode("utf-8", "surrogateescape")) > run.limits.max_header_size:
        raise SieveRuntimeError(
            f"addheader: value larger than {run.limits.max_header_size} octets", cmd.line
        )
    run.msg.add_header(name, encode_header_value(name, value), bool(cmd.tags["last"]))


def _deleteheader(run: Run, cmd: nodes.Node) -> None:
    """RFC 5293 section 6: delete fields, all or those whose value matches a pattern."""
    name = _header_name(run, cmd.args[0], cmd.line)  # type: ignore[arg-type]
    if name.lower() in _PROTECTED_DELETE:
        return
    spec = cmd.match

    def keep(value: str) -> bool:
        return spec is not None and not run.matcher(spec).match_values([value])

    index = cmd.tags["index"]
    run.msg.delete_header(
        name, index if isinstance(index, int) else 0, bool(cmd.tags["last"]), keep
    )


def _error(run: Run, cmd: nodes.Node) -> None:
    # RFC 5463 section 5: the script fails with this message; the implicit keep is done.
    raise SieveRuntimeError(f"script error: {_text(run, cmd.args[0])}", cmd.line)


EXTENSION_COMMANDS: dict[str, Callable[[Run, nodes.Node], None]] = {
    "vacation": _vacation,
    "reject": _reject,
    "ereject": _reject,
    "include": _include,
    "return": _return,
    "global": _global,
    "notify": _notify,
    "foreverypart": _foreverypart,
    "break": _break,
    "extracttext": _extracttext,
    "addheader": _addheader,
    "deleteheader": _deleteheader,
    "error": _error,
}
