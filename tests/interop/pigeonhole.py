"""Pigeonhole's `sieve-test` (Debian's dovecot-sieve) as a reference for our Sieve engine.

`sieve-test SCRIPT MESSAGE` compiles a script, runs it on a message and prints the actions it
would take, without delivering anything. `run_pigeonhole` runs it in a home laid out as
Pigeonhole's default (`~/sieve/NAME.sieve` for personal includes, a global directory, a
Maildir whose folders `mailboxexists` sees) and `pigeonhole_actions` reads its report into
the same normalized form `our_actions` gives our engine's actions:

    ("store", FOLDER, "flag flag", "create"|"")   keep and fileinto (INBOX for keep)
    ("redirect", ADDRESS)
    ("reject", REASON)
    ("vacation", SECONDS, HANDLE)
    ("notify", "recipient,recipient", IMPORTANCE)
    ("error",)                                  a run-time error: the implicit keep only

Discard leaves nothing (a message kept nowhere); the order does not matter, so the lists are
sorted. Both sides run with TZ=UTC so that dates agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mda.sieve import (
    Action,
    Context,
    FileInto,
    Keep,
    Notify,
    Redirect,
    Reject,
    SieveEnvelope,
    SieveError,
    SieveMessage,
    SieveRuntimeError,
    Vacation,
    parse,
    run_chain,
)
from mda.sieve.parser import EXTENSIONS

SIEVE_TEST = shutil.which("sieve-test", path="/usr/bin:/bin") or "/usr/bin/sieve-test"
# 0.5.19 does not know ereject; these are enabled here as `[sieve] extensions` can enable them.
PIGEONHOLE_EXTENSIONS = "+vacation-seconds +editheader +spamtest +spamtestplus +virustest"
# The same scanner headers configured on both sides.
PIGEONHOLE_SCANNERS = """\
  sieve_spamtest_status_type = score
  sieve_spamtest_status_header = X-Spam-Score
  sieve_spamtest_max_value = 10
  sieve_virustest_status_type = text
  sieve_virustest_status_header = X-Virus-Scan: ^([a-z]+)
  sieve_virustest_text_value1 = clean
  sieve_virustest_text_value5 = infected
"""
ALL_ENABLED = EXTENSIONS | {"editheader", "spamtest", "spamtestplus", "virustest"}


def scanners() -> tuple[object, object]:
    from mda.sieve.spamtest import StatusTest

    spam = StatusTest(virus=False, status_header="X-Spam-Score", max_value=10.0)
    virus = StatusTest(
        virus=True,
        status_header="X-Virus-Scan: ^([a-z]+)",
        status_type="text",
        text_values=("", "clean", "", "", "", "infected"),
    )
    return spam, virus


Normalized = tuple[str, ...]


def sieve_test_available() -> bool:
    return os.access(SIEVE_TEST, os.X_OK)


class Home:
    """A home for both engines: personal scripts, global scripts, a Maildir with folders."""

    def __init__(self, root: Path, corpus: Path, folders: tuple[str, ...]) -> None:
        self.root = root
        self.sieve = root / "sieve"
        self.global_dir = root / "global"
        self.maildir = root / "Maildir"
        self.folders = folders
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
            for folder in folders:
                (self.maildir / f".{folder}" / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(corpus / "personal", self.sieve)
        shutil.copytree(corpus / "global", self.global_dir)
        self.config = root / "dovecot.conf"
        self.config.write_text(
            "mail_uid = nobody\nmail_gid = nogroup\n"
            f"mail_location = maildir:{self.maildir}\n"
            "plugin {\n"
            f"  sieve_extensions = {PIGEONHOLE_EXTENSIONS}\n"
            f"  sieve = file:{self.sieve};active={root}/.dovecot.sieve\n"
            f"  sieve_global = {self.global_dir}\n" + PIGEONHOLE_SCANNERS + "}\n"
        )
        for path in [root, *root.rglob("*")]:
            os.chown(path, 65534, 65534) if os.geteuid() == 0 else None
            path.chmod(0o755 if path.is_dir() else 0o644)

    def mailbox_exists(self, name: str) -> bool:
        return name.upper() == "INBOX" or name in self.folders

    def load_include(self, is_global: bool, name: str) -> object:
        path = (self.global_dir if is_global else self.sieve) / f"{name}.sieve"
        if not path.is_file():
            return None
        return parse(path.read_text(), extensions=ALL_ENABLED, name=name)


def run_pigeonhole(home: Home, script: Path, message: Path, sender: str, recipient: str) -> str:
    """sieve-test's report (stdout and stderr together)."""
    # sieve-test writes the compiled script next to it: give it a copy of its own.
    copy = home.root / "run" / script.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(script, copy)
    if os.geteuid() == 0:
        os.chown(copy.parent, 65534, 65534)
    copy.parent.chmod(0o777)
    msg_copy = home.root / "run" / message.name
    shutil.copy(message, msg_copy)
    msg_copy.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home.root), "TZ": "UTC", "LANG": "C"}
    result = subprocess.run(
        [
            SIEVE_TEST,
            "-c",
            str(home.config),
            "-f",
            sender,
            "-r",
            recipient,
            "-a",
            recipient,
            str(copy),
            str(msg_copy),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return result.stdout + result.stderr


def pigeonhole_actions(report: str) -> list[Normalized] | str:
    """The normalized actions of a sieve-test report, or the report itself when the script
    did not compile (the caller compares that with our parse error)."""
    if "failed to compile sieve script" in report:
        return "compile error"
    if "final result: failed" in report:
        return [("error",)]
    out: list[Normalized] = []
    current: dict[str, str] | None = None
    kind = ""

    def flush() -> None:
        nonlocal current
        if current is None:
            return
        if kind == "store":
            out.append(
                ("store", current["folder"], current.get("flags", ""), current.get("create", ""))
            )
        elif kind == "vacation":
            out.append(("vacation", current.get("seconds", ""), current.get("handle", "")))
        elif kind == "notify":
            out.append(
                (
                    "notify",
                    ",".join(sorted(current.get("to", "").split(","))).strip(","),
                    current.get("importance", ""),
                )
            )
        current = None

    for line in report.splitlines():
        stripped = line.strip()
        if line.startswith(" * "):
            flush()
            text = line[3:]
            if text.startswith("store message in folder: "):
                kind, current = "store", {"folder": text[len("store message in folder: ") :]}
            elif text.startswith("redirect message to: "):
                out.append(("redirect", text[len("redirect message to: ") :].strip("<>")))
            elif text.startswith("reject message with reason: "):
                out.append(("reject", text[len("reject message with reason: ") :]))
            elif text.startswith("send vacation message"):
                kind, current = "vacation", {}
            elif text.startswith("send notification"):
                kind, current = "notify", {}
        elif current is not None and stripped.startswith("+ add IMAP flags: "):
            flags = stripped[len("+ add IMAP flags: ") :].lower().split()
            current["flags"] = " ".join(sorted(set(flags)))
        elif current is not None and stripped.startswith("+ create mailbox"):
            current["create"] = "create"
        elif current is not None and stripped.startswith("=> "):
            name, _, value = stripped[3:].partition(":")
            current[name.strip()] = value.strip()
        elif (
            current is not None
            and kind == "notify"
            and stripped.startswith(("+ To: ", "+ Cc: ", "+ Bcc: "))
        ):
            previous = current.get("to", "")
            address = stripped.partition(": ")[2].strip()
            current["to"] = f"{previous},{address}".strip(",")
    flush()
    return sorted(out)


def our_actions(
    home: Home, script: Path, message: Path, sender: str, recipient: str
) -> list[Normalized] | str:
    """Our engine on the same script and message, normalized as `pigeonhole_actions`."""
    try:
        parsed = parse(script.read_text(), extensions=ALL_ENABLED)
    except SieveError:
        return "compile error"
    msg = SieveMessage.from_bytes(message.read_bytes())
    spam, virus = scanners()
    context = Context(
        mailbox_exists=home.mailbox_exists,
        load_include=home.load_include,  # type: ignore[arg-type]
        spam=spam,
        virus=virus,
    )
    try:
        result = run_chain([parsed], msg, SieveEnvelope(sender, recipient), context)
    except SieveRuntimeError:
        return [("error",)]
    return sorted(_normalize(a) for a in result.actions if _normalize(a))


def _printable(text: str) -> str:
    """As sieve-test prints a text: control characters as "?"."""
    return "".join("?" if ord(c) < 0x20 else c for c in text)


def _normalize(action: Action) -> Normalized:
    if isinstance(action, Keep | FileInto):
        folder = "INBOX" if isinstance(action, Keep) else action.mailbox
        flags = " ".join(sorted({f.lower() for f in action.flags}))
        create = "create" if isinstance(action, FileInto) and action.create else ""
        return ("store", folder, flags, create)
    if isinstance(action, Redirect):
        return ("redirect", action.address)
    if isinstance(action, Reject):
        return ("reject", _printable(action.reason.replace("\n", "\r\n")))
    if isinstance(action, Vacation):
        # Pigeonhole's defaults: 7 days without :days, never less than a day.
        seconds = 7 * 86400 if action.seconds is None else max(action.seconds, 86400)
        return ("vacation", str(seconds), action.handle.split("\n")[0])
    if isinstance(action, Notify):
        from mda.sieve.notify import Mailto, parse_mailto

        mailto = parse_mailto(action.method)
        to = ",".join(sorted(mailto.recipients)) if isinstance(mailto, Mailto) else ""
        return ("notify", to, action.importance)
    return ()
