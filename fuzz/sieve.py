"""Sieve (mda/sieve), through its public entry points only (`parse`, `SieveMessage.from_bytes`,
`evaluate`): a user's script, and the message it runs on.

Input: the script (read as the delivery agent reads it: UTF-8, undecodable octets replaced),
then, after three NUL octets, the message (RFC 5228's "Message A" when there are none).

Properties:
- `parse` raises nothing but SieveError, whose line is within the script;
- `evaluate` returns actions, at least one, or raises SieveRuntimeError; never its "internal
  error" (the interpreter turns any exception into that, so that mail is kept: for the fuzzer
  it is a crash), and the same actions each time (evaluation has no side effects);
- `mailboxexists` is answered by a real store, as the delivery agent does;
- each script and message takes under a second (the fuzzer's timeout).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, main, quiet_logs
    from mailstore.store import MailStore
    from mda.sieve import (
        SieveEnvelope,
        SieveError,
        SieveMessage,
        SieveRuntimeError,
        evaluate,
        parse,
    )

quiet_logs()
_store = MailStore(fresh_dir("sieve"))
_store.create_folder("Lists")
_store.create_folder("Lists.python")
SEPARATOR = b"\0\0\0"
MESSAGE_A = (  # RFC 5228 section 1.2
    b"Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\nFrom: coyote@desert.example.org\r\n"
    b"To: roadrunner@acme.example.com\r\nSubject: I have a present for you\r\n\r\n"
    b"Look, I'm sorry about the whole anvil thing.\r\n"
)
ENVELOPE = SieveEnvelope("sender@example.net", "me+lists@example.com")


def test_one_input(data: bytes) -> None:
    script_octets, sep, raw = data.partition(SEPARATOR)
    if not sep:
        raw = MESSAGE_A
    text = script_octets.decode("utf-8", "replace")
    try:
        script = parse(text)
    except SieveError as err:
        if not 1 <= err.line <= text.count("\n") + 1:
            raise Finding(
                f"error at line {err.line} of a {text.count(chr(10)) + 1}-line script"
            ) from err
        return
    msg = SieveMessage.from_bytes(raw)
    try:
        actions = evaluate(script, msg, ENVELOPE, mailbox_exists=_store.exists)
    except SieveRuntimeError as err:
        if "internal error" in err.message:
            raise Finding(f"the interpreter failed: {err}") from err.__cause__
        return
    if not actions:
        raise Finding("no action at all (not even the implicit keep)")
    again = evaluate(script, SieveMessage.from_bytes(raw), ENVELOPE, mailbox_exists=_store.exists)
    if again != actions:
        raise Finding(f"evaluated twice: {actions!r} then {again!r}")


if __name__ == "__main__":
    main(test_one_input)
