"""Write the seed corpora from the test data: `python -m fuzz.seeds [TARGET ...]` (the result
is committed; with targets, only theirs are written).

The unit tests are run (pytest, in this process) with the functions each target feeds wrapped
to record what the tests give them: the bytes clients send to ImapSession and Pop3Session,
SEARCH programs, the messages the MIME and Sieve tests parse, Sieve scripts, map files,
uidlist and keywords files, folder and file names, SASL responses, the bytes MTAs send to the
auth sockets and clients to ManageSieveSession. Each is written, in the target's input format,
to `fuzz/corpus/<target>/seed-<sha1>`; files named otherwise (the `regress-*` inputs that once
failed, the `hand-*` ones written by hand) are left alone. Seeds already there are replaced.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
MAX_SIZE = 16384
MAX_SIZE_OF = {"uidlist": 2048, "maps_cdb": 8192}
MAX_SEEDS = 400
SEP = b"\0\0\0"  # fuzz/sieve.py: script, separator, message

TESTS = [
    "tests/unit/imap",
    "tests/unit/imap_mime/test_mime.py",
    "tests/unit/imap_mime/test_search.py",
    "tests/unit/imap_mime/test_dovecot_golden.py",
    "tests/unit/auth/test_sasl.py",
    "tests/unit/sieve",
    "tests/unit/maps",
    "tests/unit/test_names.py",
    "tests/unit/test_filenames.py",
    "tests/unit/test_uidlist.py",
    "tests/unit/test_mailbox.py",
    "tests/unit/authserver",
    "tests/unit/managesieve",
]
POP3_TESTS = ["tests/mra/test_pop3.py", "-k", "transcript"]  # the in-process sessions


class Recorder:
    """Wraps the functions the targets feed while the tests run; keeps what they got."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = defaultdict(list)
        self.sessions: dict[int, tuple[str, bytearray]] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, record: Callable[..., None]) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                record(*args, **kwargs)
            except Exception:
                pass
            return original(*args, **kwargs)

        setattr(owner, name, wrapper)
        self._undo.append(lambda: setattr(owner, name, original))

    def keep(self, kind: str) -> Callable[..., None]:
        return lambda value, *args, **kwargs: self.seen[kind].append(value)

    @contextmanager
    def recording(self) -> Iterator[None]:
        from mailstore import filenames, keywords, names, uidlist
        from mda import sieve
        from mda.maps import access, aliases, virtusertable
        from mra.auth import sasl
        from mra.authserver.dovecot import DovecotAuthSession
        from mra.authserver.saslauthd import SaslauthdSession
        from mra.imap import mime, search
        from mra.imap.mime import _parse
        from mra.imap.session import ImapSession
        from mra.managesieve.session import ManageSieveSession
        from mra.pop3.session import Pop3Session

        def session_data(kind: str) -> Callable[..., None]:
            def record(session: object, data: bytes) -> None:
                entry = self.sessions.setdefault(id(session), (kind, bytearray()))
                entry[1].extend(data)

            return record

        self.wrap(ImapSession, "data_received", session_data("imap"))
        self.wrap(Pop3Session, "data_received", session_data("pop3"))
        self.wrap(DovecotAuthSession, "data_received", session_data("auth_dovecot"))
        self.wrap(SaslauthdSession, "data_received", session_data("saslauthd"))
        self.wrap(ManageSieveSession, "data_received", session_data("managesieve"))
        self.wrap(search, "parse_search", self.keep("search"))
        self.wrap(_parse, "parse", lambda raw, *a, **k: self.seen["mime"].append(raw))
        self.wrap(mime, "parse", lambda raw, *a, **k: self.seen["mime"].append(raw))
        self.wrap(sieve.parser, "parse", self.keep("sieve"))
        self.wrap(sieve, "parse", self.keep("sieve"))
        self.wrap(
            sieve.SieveMessage,
            "from_bytes",
            lambda raw: self.seen["sieve-message"].append(bytes(raw)),
        )
        self.wrap(aliases, "parse_aliases", self.keep("aliases"))
        self.wrap(virtusertable, "parse_virtusertable", self.keep("virtusertable"))
        self.wrap(access, "parse_access", self.keep("access"))
        self.wrap(names, "decode_mutf7", self.keep("mutf7"))
        self.wrap(names, "validate_name", self.keep("names"))
        self.wrap(filenames, "sizes_of", self.keep("filenames"))
        self.wrap(
            uidlist,
            "_read_fd",
            lambda fd, offset: self.seen["uidlist"].append(os.pread(fd, 1 << 20, offset)),
        )

        def keywords_file(kw: keywords.Keywords) -> None:
            with open(kw.path, "rb") as f:
                self.seen["keywords"].append(f.read(1 << 16))

        self.wrap(keywords.Keywords, "_parse", keywords_file)

        def sasl_step(server: object, data: bytes | None) -> None:
            self.seen["sasl"].append((id(server), server.mechanism, data))  # type: ignore[attr-defined]

        self.wrap(sasl.SaslServer, "step", sasl_step)
        try:
            yield
        finally:
            for undo in reversed(self._undo):
                undo()


def write_token(token: object) -> bytes:
    """A SEARCH token as a client writes it."""
    if isinstance(token, list):
        return b"(" + b" ".join(write_token(t) for t in token) + b")"
    assert isinstance(token, bytes)
    if token and all(0x21 <= c < 0x7F and c not in b'(){"\\%*]' for c in token):
        return token
    return b"{%d+}\r\n%s" % (len(token), token)


def sasl_inputs(steps: list[tuple[int, str, bytes | None]]) -> Iterator[bytes]:
    from mra.auth.sasl import MECHANISMS

    by_server: dict[int, list[tuple[str, bytes | None]]] = defaultdict(list)
    for server, mechanism, data in steps:
        by_server[server].append((mechanism, data))
    for exchange in by_server.values():
        mechanism = exchange[0][0]
        if mechanism not in MECHANISMS:
            continue
        initial = exchange[0][1]
        mode = MECHANISMS.index(mechanism) | 16 | (4 if initial is not None else 0)
        out = bytearray([mode])
        for _, data in exchange[0 if initial is not None else 1 :]:
            chunk = (data or b"")[:255]
            out += bytes([len(chunk)]) + chunk
        yield bytes(out)
    honest = [
        (0, [b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", b"PROOF", b""]),
        (0 | 4, [b"n,a=user,n=user,r=abc", b"PROOF", b""]),
        (0 | 4 | 8, [b"y,,n=a=2Cb=3Dc,r=x", b"PROOF"]),
        (1, [b"cram DIGEST"]),
        (1, [b"tim DIGEST"]),
        (2 | 4, [b"\0tim\0tanstaaftanstaaf"]),
        (2 | 4, [b"tim\0tim\0tanstaaftanstaaf"]),
        (3, [b"tim", b"tanstaaftanstaaf"]),
        (3 | 4, [b"nopass", b"x"]),
    ]
    for mode, chunks in honest:
        yield bytes([mode | 16]) + b"".join(bytes([len(c)]) + c for c in chunks)


def inputs(rec: Recorder) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for kind, received in rec.sessions.values():
        data = bytes(received)
        if kind == "imap":
            out["imap_session"].append(b"\0\0" + data)
            out["imap_reader"].append(b"\x03\xff\x05" + data)
            for line in data.split(b"\r\n"):
                _, found, program = line.partition(b" SEARCH ")
                if found:
                    out["imap_search"].append(program)
        elif kind == "auth_dovecot":
            out[kind].append(b"\0\0" + data)
        elif kind == "saslauthd":
            out[kind].append(b"\0" + data)
        elif kind == "managesieve":
            out[kind].append(b"\0\0" + data)
            out[kind].append(b"\0\x07" + data)
        else:
            data = data.replace(b"u@example.test", b"alice@example.test")
            out["pop3"].append(b"\0\0" + data)
            out["pop3"].append(b"\0\x03" + data)
    for tokens in rec.seen["search"]:
        try:
            out["imap_search"].append(b" ".join(write_token(t) for t in tokens))
        except AssertionError:
            pass
    for raw in rec.seen["mime"]:
        if isinstance(raw, (bytes, bytearray)):
            out["mime"].append(b"\0" + bytes(raw))
            out["mime"].append(b"\1" + bytes(raw))
    messages = [m for m in rec.seen["sieve-message"] if len(m) < 2000][:20]
    for i, script in enumerate(rec.seen["sieve"]):
        if isinstance(script, str):
            raw = script.encode("utf-8", "surrogatepass")
            out["sieve"].append(raw + (SEP + messages[i % len(messages)] if messages else b""))
    for kind in ("aliases", "virtusertable", "access"):
        for text in rec.seen[kind]:
            out[f"maps_{kind}"].append(text.encode("utf-8", "surrogatepass"))
    for name in rec.seen["mutf7"] + rec.seen["names"]:
        if isinstance(name, str):
            out["mutf7"].append(name.encode("utf-8", "surrogatepass"))
    names = [n for n in rec.seen["filenames"] if isinstance(n, str)]
    for i in range(0, len(names), 4):
        group = names[i : i + 4]
        out["maildir_names"].append(
            b"\n".join(bytes([j & 1]) + n.encode() + b":2,S" for j, n in enumerate(group))
        )
    for content in rec.seen["uidlist"]:
        out["uidlist"].append(content + b"\x80")
    for content in rec.seen["keywords"]:
        out["keywords"].append(b"\xc0" + content + b"\n$Junk NonJunk $label1")
    out["sasl"].extend(sasl_inputs(rec.seen["sasl"]))
    out["maps_cdb"].extend(cdb_seeds(out))
    return out


def cdb_seeds(out: dict[str, list[bytes]]) -> Iterator[bytes]:
    """Real indexes: the map files the tests used, compiled."""
    import tempfile

    from mda.maps.aliases import parse_aliases
    from mda.maps.cdb import write_cdb

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.cdb")
        for text in out["maps_aliases"][:30]:
            entries, _ = parse_aliases(text.decode("utf-8", "surrogateescape"), "x")
            write_cdb(
                path, [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in entries]
            )
            with open(path, "rb") as f:
                yield f.read()


def write(corpora: dict[str, list[bytes]], targets: list[str]) -> None:
    for target in targets:
        directory = os.path.join(CORPUS, target)
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith("seed-"):
                os.unlink(os.path.join(directory, name))
        unique = {
            hashlib.sha1(d).hexdigest(): d
            for d in corpora.get(target, [])
            if 0 < len(d) <= MAX_SIZE_OF.get(target, MAX_SIZE)
        }
        for digest, data in sorted(unique.items())[:MAX_SEEDS]:
            with open(os.path.join(directory, f"seed-{digest[:16]}"), "wb") as f:
                f.write(data)
        print(f"{target:20} {min(len(unique), MAX_SEEDS):4} seeds")


def main() -> int:
    import pytest

    from fuzz.__main__ import TARGETS

    targets = sys.argv[1:] or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        print(f"unknown target(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    root = os.path.dirname(HERE)
    os.chdir(root)
    sys.path.insert(0, root)
    rec = Recorder()
    options = ["-q", "--no-header", "-p", "no:cacheprovider", "-m", "not slow"]
    with rec.recording():
        pytest.main([*options, *TESTS])
        pytest.main([*options, *POP3_TESTS])
    corpora = inputs(rec)
    from tests.unit.imap_mime import corpus

    for value in vars(corpus).values():
        if isinstance(value, bytes):
            corpora["mime"].append(b"\0" + value)
    write(corpora, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
