"""What the fuzz targets share: a scratch directory, the logs turned into findings, a session
driven the way mra/net/adapter.py drives it, and a mail store to drive it against.

A finding is an uncaught exception: libFuzzer then writes the input to `crash-<sha1>` and
stops. Besides the targets' own checks, every `error` event a session logs is one (the
server logs an error when a command handler raised, a stream failed or a Call's function
blew up: on a healthy store with one client, each of them is a bug that the session turned
into `NO [SERVERBUG]` or a closed connection).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.session import Output, Session, Spawn

__all__ = ["Driver", "Finding", "import_all", "main", "quiet_logs", "scratch"]


class Finding(AssertionError):
    """A property a target checks does not hold."""


def main(test_one_input: Callable[[bytes], None]) -> None:
    """Run libFuzzer on the target with the command line's options and corpus directories."""
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def import_all(*packages: str) -> None:
    """Import every module of the packages now. Call it inside `atheris.instrument_imports`:
    only what is imported there is instrumented, and these packages import their modules
    where they are needed (the mda's start-up budget), which would be too late."""
    import importlib
    import pkgutil

    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            importlib.import_module(info.name)


_scratch: str | None = None


def scratch() -> str:
    """A directory of this process's own, in memory where possible (fsync is then free and a
    target can write files a thousand times a second); removed at exit."""
    global _scratch
    if _scratch is None:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _scratch = tempfile.mkdtemp(prefix="mra-fuzz-", dir=base)
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def fresh_dir(name: str) -> str:
    """An empty directory `name` in the scratch directory (emptied if it was there)."""
    path = os.path.join(scratch(), name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def quiet_logs(*, errors_are_findings: bool = True) -> list[tuple[str, str, dict[str, object]]]:
    """Keep the logs of mra and mailstore (one path: mailstore/log.py) in a list instead of
    stderr (a fuzzer runs a million inputs), none held back by the rate limit. Each `error`
    event raises a Finding when `errors_are_findings`."""
    import mailstore.log

    events: list[tuple[str, str, dict[str, object]]] = []

    def write(level: str, event: str, fields: Mapping[str, object]) -> None:
        if len(events) > 1000:
            del events[:500]
        events.append((level, event, dict(fields)))
        if level == "error" and errors_are_findings:
            raise Finding(f"the server logged an error: {event} {dict(fields)}")

    mailstore.log._settings.rate_limit = 0
    mailstore.log._write = write
    return events


class Driver:
    """Carries out a session's outputs as mra/net/adapter.py does, synchronously: Send is kept
    in `out`, Call runs at once (its exception goes to `then`, as a Deferred's failure
    would), Delay does not wait, a Stream is joined, Close ends the session. After a blocking
    output the session is fed b"" so that it goes on with what it holds. Spawn and Timer hold
    nothing back: they are queued, and run (a Timer without waiting) in the order given once
    the session has taken the input fed, as the reactor would when the thread or the timer is
    done; after a Close they are dropped, as the adapter drops them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.out = bytearray()
        self.closed = False
        self.background: list[Callable[[], list[Output]]] = []

    def start(self) -> None:
        self._perform(self.session.greeting())

    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        outputs = self.session.data_received(data)
        while self._perform(outputs) and not self.closed:
            outputs = self.session.data_received(b"")
        self.settle()

    def settle(self) -> None:
        """Run the queued Spawn and Timer work, and what it leads to, until none is left."""
        while self.background and not self.closed:
            self._perform(self.background.pop(0)())
        self.background.clear()

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data

    def _perform(self, outputs: list[Output]) -> bool:
        """True once a blocking output has completed (the adapter then feeds b"")."""
        from mra.session import Call, Close, Delay, Send, Spawn, StartTLS, Stream, Timer

        for i, out in enumerate(outputs):
            if self.closed:
                return False
            blocking = isinstance(out, (Call, Delay, Stream))
            if blocking and i != len(outputs) - 1:
                raise Finding(f"a blocking output is not the last of its list: {outputs!r}")
            if isinstance(out, Send):
                self.out += out.data
            elif isinstance(out, Close):
                self.closed = True
                return False
            elif isinstance(out, StartTLS):
                self._perform(self.session.tls_started())
            elif isinstance(out, Call):
                try:
                    result: object = out.fn()
                except Exception as exc:
                    result = exc
                self._perform(out.then(result))
                return True
            elif isinstance(out, Delay):
                self._perform(out.then())
                return True
            elif isinstance(out, Stream):
                self.out += b"".join(out.chunks)
                self._perform(out.then())
                return True
            elif isinstance(out, Spawn):
                self.background.append(_spawned(out))
            elif isinstance(out, Timer):
                self.background.append(out.then)
        return False


def _spawned(out: Spawn) -> Callable[[], list[Output]]:
    def run() -> list[Output]:
        try:
            result: object = out.fn()
        except Exception as exc:  # as a Deferred's failure, its value goes to `then`
            result = exc
        return out.then(result)

    return run


# --- a mail server to talk to -----------------------------------------------------------------

USER = "alice@example.test"
PASSWORD = "pw"
MESSAGES = (
    b"From: Bob <bob@example.test>\nTo: alice@example.test\nSubject: Hello\n\nHi Alice!\n",
    b"From: carol@example.test\r\nSubject: Report\r\nContent-Type: multipart/mixed; "
    b'boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nNumbers.\r\n--b\r\n'
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--b--\r\n",
)


class Server:
    """A configuration, a passwd-file with one user, and a mail store with two messages in
    INBOX, laid out in the scratch directory; `reset()` puts the store back as it was. With
    `home`, the user has a home directory (ManageSieve keeps the scripts there), emptied by
    `reset()` too."""

    def __init__(self, name: str, config: str = "", home: bool = False) -> None:
        from mailstore.config import load_config

        self.root = fresh_dir(name)
        self.mail = os.path.join(self.root, "mail")
        self.home = os.path.join(self.root, "home") if home else ""
        with open(os.path.join(self.root, "passwd"), "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}::::{self.home}::\n")
        with open(os.path.join(self.root, "mra.toml"), "w") as f:
            f.write(
                f'[auth]\npasswd_file = "{self.root}/passwd"\n'
                f'[mail]\nlocation = "{self.mail}/%d/%n"\n' + config
            )
        self.config = load_config(os.path.join(self.root, "mra.toml"))
        self.template = os.path.join(self.root, "template")
        self.user_root = os.path.join(self.mail, "example.test", "alice")
        from mailstore.store import MailStore

        inbox = MailStore(self.template).mailbox("INBOX")
        inbox.append(MESSAGES[0])
        inbox.append(MESSAGES[1], flags=["\\Seen"])

    def reset(self) -> None:
        shutil.rmtree(self.mail, ignore_errors=True)
        shutil.copytree(self.template, self.user_root, symlinks=True)
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            os.mkdir(self.home)
