"""Sieve (mda/sieve), through its public entry points (`parse`, `SieveMessage.from_bytes`,
`run_chain`) as the delivery agent calls them (mda/sieve/delivery.py): a user's script, and the
message it runs on, with every extension the engine has (`ALL_EXTENSIONS`: editheader,
spamtest and virustest too, configured as in the README's example), includes, duplicate
tracking and a real store for `mailboxexists`.

Input: the script (read as the delivery agent reads it: UTF-8, undecodable octets replaced),
then, after three NUL octets, the message (RFC 5228's "Message A" when there are none).
`include "self"` includes the script itself (a loop the limits must end), `include "other"`
a small script of its own; `duplicate` has seen every key whose SHA-256 starts with a 0 bit.

Properties:
- `parse` raises nothing but SieveError, whose line is within the script;
- the run returns actions, at least one, or raises SieveRuntimeError; never its "internal
  error" (the interpreter turns any exception into that, so that mail is kept: for the fuzzer
  it is a crash), and the same actions each time (evaluation has no side effects);
- parsing and running take under half a second of CPU time, bounded as the delivery agent
  bounds them (`cpu_limit`, [sieve] max_cpu_time): only a script with a `:regex` or a
  `:matches` key may run into that bound (SECURITY.md 1: a backtracking pattern is the
  documented reason for it); any other script that does is a finding.
"""

from __future__ import annotations

import hashlib

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, import_all, main, quiet_logs
    from mailstore.store import MailStore
    from mda.sieve import (
        ALL_EXTENSIONS,
        Context,
        Script,
        SieveEnvelope,
        SieveError,
        SieveMessage,
        SieveRuntimeError,
        parse,
        run_chain,
    )
    from mda.sieve.cpulimit import CpuLimitExceeded, cpu_limit
    from mda.sieve.spamtest import StatusTest

    import_all("mda.sieve")

quiet_logs()
_store = MailStore(fresh_dir("sieve"))
_store.create_folder("Lists")
_store.create_folder("Lists.python")
CPU_SECONDS = 0.5
OTHER = parse(
    'require "fileinto"; if header :contains "subject" "present" { fileinto "Lists"; }',
    extensions=ALL_EXTENSIONS,
)
SPAM = StatusTest(virus=False, status_header="X-Spam-Score", max_value=10.0)
VIRUS = StatusTest(
    virus=True,
    status_header="X-Virus-Status",
    status_type="text",
    text_values=("clean", "", "", "", "infected"),
)
NOW = 1_700_000_000.0
SEPARATOR = b"\0\0\0"
MESSAGE_A = (  # RFC 5228 section 1.2
    b"Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\nFrom: coyote@desert.example.org\r\n"
    b"To: roadrunner@acme.example.com\r\nSubject: I have a present for you\r\n\r\n"
    b"Look, I'm sorry about the whole anvil thing.\r\n"
)
ENVELOPE = SieveEnvelope("sender@example.net", "me+lists@example.com")


def _seen(key: bytes) -> bool:
    return hashlib.sha256(key).digest()[0] < 128


def context(script: Script) -> Context:
    def load_include(is_global: bool, name: str) -> Script | None:
        return {"self": script, "other": OTHER}.get(name)

    return Context(
        mailbox_exists=_store.exists,
        duplicate_seen=_seen,
        load_include=load_include,
        environment={"domain": "example.com", "host": "mx.example.com", "name": "mra mda"},
        now=NOW,
        spam=SPAM,
        virus=VIRUS,
    )


def test_one_input(data: bytes) -> None:
    script_octets, sep, raw = data.partition(SEPARATOR)
    if not sep:
        raw = MESSAGE_A
    text = script_octets.decode("utf-8", "replace")
    try:
        with cpu_limit(CPU_SECONDS):
            try:
                script = parse(text, extensions=ALL_EXTENSIONS)
            except SieveError as err:
                if isinstance(err, CpuLimitExceeded):
                    raise
                if not 1 <= err.line <= text.count("\n") + 1:
                    raise Finding(
                        f"error at line {err.line} of a {text.count(chr(10)) + 1}-line script"
                    ) from err
                return
            try:
                result = run_chain(
                    [script], SieveMessage.from_bytes(raw), ENVELOPE, context(script)
                )
            except SieveRuntimeError as err:
                if isinstance(err, CpuLimitExceeded):
                    raise
                if "internal error" in err.message:
                    raise Finding(f"the interpreter failed: {err}") from err.__cause__
                return
            if not result.actions:
                raise Finding("no action at all (not even the implicit keep)")
            again = run_chain([script], SieveMessage.from_bytes(raw), ENVELOPE, context(script))
    except CpuLimitExceeded as err:
        if ":regex" in text or ":matches" in text:
            return
        raise Finding(f"over {CPU_SECONDS} s of CPU without :regex or :matches") from err
    if again.actions != result.actions:
        raise Finding(f"evaluated twice: {result.actions!r} then {again.actions!r}")


if __name__ == "__main__":
    main(test_one_input)
