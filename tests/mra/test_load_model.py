"""Many sessions on one mailbox at once, two worker processes, every answer checked against a
model of what each session has been told (issue #16). Not timed: a fixed number of random
commands per session, all at once.

Each session keeps its own model: the number of messages it was told of (EXISTS less its
EXPUNGEs), the UID of each sequence number it learned, and the keywords announced to it by
`* FLAGS`. Every untagged response must agree with that model:

* `* n EXISTS` never shrinks the count (only EXPUNGE does), `* n EXPUNGE` names a message the
  session knows of and never comes during FETCH, STORE or SEARCH (RFC 3501 7.4.1);
* `* n FETCH` names a message the session knows of, its UID is the one learned for that number,
  and its FLAGS show no keyword before a `* FLAGS` announced it (RFC 3501 7.2.6);
* no message is `\\Recent` in two sessions (RFC 3501 2.3.2);
* every command is answered OK, except a COPY or MOVE of a message another session expunged
  meanwhile (`NO [EXPUNGEISSUED]`, as Dovecot answers: RFC 2180 4.4.1); an APPEND never fails.
"""

from __future__ import annotations

import random
import re
import socket
import threading

from tests.mra.conftest import PASSWORD, MraServer

SESSIONS = 8
COMMANDS = 250
KEYWORDS = ["$Label1", "$Label2", "Work", "todo", "$Junk", "$NotJunk"]

_LITERAL = re.compile(rb"\{(\d+)\}$")
_FETCH = re.compile(rb"^\* (\d+) FETCH \((.*)\)$", re.S)
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


class Violation(AssertionError):
    pass


class Recents:
    """Which session saw each UID as \\Recent: at most one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: dict[int, int] = {}

    def saw(self, uid: int, session: int) -> None:
        with self.lock:
            other = self.owner.setdefault(uid, session)
        if other != session:
            raise Violation(f"UID {uid} is \\Recent in sessions {other} and {session}")


class Session:
    def __init__(self, port: int, number: int, recents: Recents) -> None:
        self.number = number
        self.recents = recents
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.tag = 0
        self.exists = 0
        self.uids: list[int | None] = []
        self.announced: set[str] = set()
        self.log: list[bytes] = []
        self._line()  # greeting

    # -- the wire ---------------------------------------------------------------------------

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Violation(f"session {self.number}: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _response(self) -> bytes:
        line = self._line()
        while m := _LITERAL.search(line):
            n = int(m.group(1))
            while len(self.buf) < n:
                self.buf += self.sock.recv(65536)
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            line += self._line()
        return line

    def command(self, text: str, literal: bytes | None = None) -> bytes:
        """Send, check every untagged answer against the model, return the tagged line."""
        self.tag += 1
        tag = b"t%d" % self.tag
        head = tag + b" " + text.encode()
        kind = text.split()[0].upper()
        if kind == "UID":
            kind = "UID " + text.split()[1].upper()
        if literal is None:
            self.sock.sendall(head + b"\r\n")
        else:
            self.sock.sendall(head + b" {%d}\r\n" % len(literal))
            while not (resp := self._response()).startswith(b"+"):
                self._untagged(resp, kind)
            self.sock.sendall(literal + b"\r\n")
        while True:
            resp = self._response()
            self.log.append(resp[:300])
            if resp.startswith(tag + b" "):
                return resp[len(tag) + 1 :]
            self._untagged(resp, kind)

    # -- the model --------------------------------------------------------------------------

    def fail(self, why: str) -> Violation:
        tail = b"\n".join(self.log[-60:]).decode("latin-1")
        return Violation(f"session {self.number}: {why}\nlast lines:\n{tail}")

    def _untagged(self, resp: bytes, kind: str) -> None:
        if resp.startswith(b"* FLAGS ("):
            self.announced = {f.decode() for f in resp[9:-1].split() if not f.startswith(b"\\")}
        elif m := re.match(rb"\* (\d+) EXISTS$", resp):
            n = int(m.group(1))
            if n < self.exists:
                raise self.fail(f"EXISTS {n} below {self.exists} without EXPUNGE")
            self.uids += [None] * (n - self.exists)
            self.exists = n
        elif m := re.match(rb"\* (\d+) EXPUNGE$", resp):
            if kind in ("FETCH", "STORE", "SEARCH"):
                raise self.fail(f"EXPUNGE during {kind}")
            n = int(m.group(1))
            if not 1 <= n <= self.exists:
                raise self.fail(f"EXPUNGE {n} of {self.exists}")
            del self.uids[n - 1]
            self.exists -= 1
        elif m := _FETCH.match(resp):
            n = int(m.group(1))
            if not 1 <= n <= self.exists:
                raise self.fail(f"FETCH {n} of {self.exists}")
            if u := _UID.search(m.group(2)):
                uid = int(u.group(1))
                known = self.uids[n - 1]
                if known is not None and known != uid:
                    raise self.fail(f"message {n} was UID {known}, now UID {uid}")
                self.uids[n - 1] = uid
            if f := _FLAGS.search(m.group(2)):
                flags = f.group(1).split()
                for flag in flags:
                    name = flag.decode()
                    if not name.startswith("\\") and name not in self.announced:
                        raise self.fail(f"keyword {name} shown before FLAGS announced it")
                uid = self.uids[n - 1]
                if b"\\Recent" in flags and uid is not None:
                    self.recents.saw(uid, self.number)
        elif (m := re.match(rb"\* SEARCH((?: \d+)*)$", resp)) and any(
            int(x) > self.exists for x in m.group(1).split()
        ):
            raise self.fail("SEARCH answered a number past the last message")

    # -- the load ---------------------------------------------------------------------------

    def run(self, seed: int) -> None:
        rng = random.Random(seed)
        self.expect_ok(self.command(f'LOGIN alice@example.test "{PASSWORD}"'), "LOGIN")
        self.expect_ok(self.command("SELECT INBOX"), "SELECT")
        self.expect_ok(self.command("UID FETCH 1:* (UID FLAGS)"), "UID FETCH")
        for _ in range(COMMANDS):
            n = max(self.exists, 1)
            a = rng.randint(1, n)
            b = min(n, a + rng.randint(0, 9))
            kw = rng.choice(KEYWORDS)
            choice = rng.randrange(12)
            if choice == 0:
                flags = f"(\\Seen {kw})" if rng.random() < 0.5 else "()"
                body = b"Subject: s%d\r\n\r\nload\r\n" % self.number
                self.expect_ok(self.command(f"APPEND INBOX {flags}", body), "APPEND")
            elif self.exists == 0:
                self.expect_ok(self.command("NOOP"), "NOOP")
            elif choice == 1:
                self.expect_ok(self.command(f"FETCH {a}:{b} (UID FLAGS)"), "FETCH")
            elif choice == 2:
                self.expect_ok(self.command(f"FETCH {a} (BODY.PEEK[HEADER] FLAGS)"), "FETCH")
            elif choice == 3:
                self.expect_ok(self.command(f"STORE {a}:{b} +FLAGS ({kw})"), "STORE")
            elif choice == 4:
                self.expect_ok(self.command(f"STORE {a} -FLAGS (\\Seen {kw})"), "STORE")
            elif choice == 5:
                self.expect_ok(self.command("UID FETCH 1:* (FLAGS)"), "UID FETCH")
            elif choice == 6:
                self.expect_ok_or_expunged(self.command(f"COPY {a}:{b} Other"), "COPY")
            elif choice == 7:
                self.expect_ok_or_expunged(self.command(f"MOVE {a} Other"), "MOVE")
            elif choice == 8:
                self.expect_ok(self.command(f"STORE {a} +FLAGS.SILENT (\\Deleted)"), "STORE")
                self.expect_ok(self.command("EXPUNGE"), "EXPUNGE")
            elif choice == 9:
                self.expect_ok(self.command(f"SEARCH KEYWORD {kw}"), "SEARCH")
            elif choice == 10:
                self.expect_ok(self.command("SEARCH UNSEEN"), "SEARCH")
            else:
                self.expect_ok(self.command("NOOP"), "NOOP")
        self.command("LOGOUT")
        self.sock.close()

    def expect_ok(self, status: bytes, what: str) -> None:
        if not status.startswith(b"OK"):
            raise self.fail(f"{what} answered {status[:200]!r}")

    def expect_ok_or_expunged(self, status: bytes, what: str) -> None:
        if not (status.startswith(b"OK") or status.startswith(b"NO [EXPUNGEISSUED]")):
            raise self.fail(f"{what} answered {status[:200]!r}")


def test_concurrent_sessions_agree_with_their_models(server_factory: type[MraServer]) -> None:
    s = server_factory("[server]\nworkers = 2\n", listeners=("imap",))
    store = s.store()
    store.create_folder("Other")
    inbox = store.mailbox("INBOX")
    for i in range(40):
        inbox.append(b"Subject: m%d\r\n\r\nbody\r\n" % i, flags=["\\Seen"] if i % 2 else [])
    s.start()
    recents = Recents()
    errors: list[BaseException] = []
    sessions = [Session(s.ports["imap"], i, recents) for i in range(SESSIONS)]

    def run(session: Session) -> None:
        try:
            session.run(seed=1600 + session.number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(x,)) for x in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a session hung"
    assert not errors, "\n\n".join(str(e) for e in errors[:3])
    problems = [ln for ln in s.log().splitlines() if re.search(r"Z error |Traceback", ln)]
    assert not problems, problems[:5]
