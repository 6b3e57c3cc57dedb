"""Helpers for interop tests that drive real mail clients (curl, fetchmail, getmail, mpop).

* :func:`require` finds a client's binary: without it a test is skipped on a developer's
  machine but FAILS when the ``CI`` environment variable is set.
* :func:`run` runs a client with a timeout and fails with its output on a bad exit status.
* :func:`seed_messages` / :func:`seed_maildir` make the awkward messages every client must
  get back byte for byte, and drop them into a Maildir the way another delivery agent would
  (``tmp/`` then a rename into ``new/``, or straight into ``cur/`` with flags as a mail
  reader leaves them), never through our own store.
* :func:`on_the_wire` and :func:`with_lf` say what a client receives for a file: CRLF line
  ends, plus the CRLF a POP3 server must add before the terminating ``.`` when the file has
  no final newline; :func:`with_lf` is the same for clients that write LF line ends.
"""

from __future__ import annotations

import base64
import functools
import os
import pwd
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailstore.content import CHUNK

CLIENT_PACKAGES = "curl fetchmail getmail6 mpop"
INSTALL_HINT = (
    "apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y " + CLIENT_PACKAGES
)
TIMEOUT = 40.0  # seconds for one client run; the clients' own timeouts are shorter
MAIL_USER = "nobody"  # getmail refuses to deliver as root: it runs as this user then
MAIL_GROUP = "nogroup"


# --------------------------------------------------------------------------------------
# Finding and running clients
# --------------------------------------------------------------------------------------


def require(binary: str, package: str) -> str:
    """The path of `binary`; skip (or, under CI, fail) when it is not installed."""
    path = shutil.which(binary)
    if path is None:
        message = (
            f"{binary} is not installed: install the Debian package {package} ({INSTALL_HINT})"
        )
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def running_as_root() -> bool:
    return os.geteuid() == 0


def as_mail_user(argv: Sequence[str]) -> list[str]:
    """`argv` run as ``nobody`` when we are root (for clients that refuse root), else as is."""
    if not running_as_root():
        return list(argv)
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is needed to run a client as nobody"
    return [setpriv, f"--reuid={MAIL_USER}", f"--regid={MAIL_GROUP}", "--clear-groups", *argv]


def chown_to_mail_user(path: Path) -> None:
    """Give `path` and everything below it to ``nobody`` (no-op unless root)."""
    if not running_as_root():
        return
    pw = pwd.getpwnam(MAIL_USER)
    for p in [path, *path.rglob("*")]:
        os.lchown(p, pw.pw_uid, pw.pw_gid)


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """A small, predictable environment: a private HOME, the C locale, our PATH."""
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LC_ALL": "C",
        "TZ": "UTC",
    }
    env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    ok: Iterable[int] = (0,),
    timeout: float = TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a client; fail with its output if it times out or exits with a status not in `ok`."""
    try:
        result = subprocess.run(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{argv[0]} did not finish within {timeout:.0f} s: {list(argv)}\n"
            f"stdout:\n{_tail(exc.stdout)}\nstderr:\n{_tail(exc.stderr)}",
            pytrace=False,
        )
    allowed = set(ok)
    if result.returncode not in allowed:
        pytest.fail(
            f"{argv[0]} exited {result.returncode} (expected {sorted(allowed)}): {list(argv)}\n"
            f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}",
            pytrace=False,
        )
    return result


def _tail(data: bytes | str | None, limit: int = 6000) -> str:
    if data is None:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def traversable_tempdir(prefix: str) -> Path:
    """A fresh mode-0755 directory below /tmp (``tmp_path`` is 0700: nobody cannot enter)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    """A config file with `mode` (fetchmail and mpop insist on 0600 for a password)."""
    path.write_text(text)
    path.chmod(mode)
    return path


# --------------------------------------------------------------------------------------
# The messages
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """One message file: `name` is its Message-ID's local part, unique among the seeds."""

    name: str
    data: bytes
    subdir: str = "new"  # "new" or "cur"
    info: str = ""  # for cur/: ":2,FLAGS"
    size_in_name: bool = False  # Dovecot-style ",S=<size>" in the file name


def _headers(name: str, subject: str, extra: str = "", eol: str = "\n") -> str:
    # No Return-Path: getmail replaces it with its own.
    lines = [
        "From: Sender <sender@example.org>",
        "To: alice@example.test",
        f"Subject: {subject}",
        "Date: Tue, 14 Nov 2023 22:13:20 +0000",
        f"Message-ID: <{name}@seed.test>",
        *([extra] if extra else []),
    ]
    return "".join(line + eol for line in lines) + eol  # and the blank line


def _dot_lines() -> bytes:
    return (
        _headers("dot-line", "a line that is a single dot")
        + "The next line is a single dot; a naive server would end the message there.\n"
        + ".\n"
        + "This line follows the dot line.\n"
        + ".\n"
        + ".\n"
        + "Two dot lines in a row above, and the last line is a dot too.\n"
        + ".\n"
    ).encode()


def _double_dots() -> bytes:
    return (
        _headers("double-dot", "lines starting with dots")
        + "..a line starting with two dots\n"
        + "...three dots\n"
        + "..\n"
        + ". a dot and a space\n"
        + ".\tdot tab\n"
        + "a line. with .dots. inside\n"
        + "....\n"
    ).encode()


def _multipart(rng: random.Random) -> bytes:
    payload = base64.encodebytes(rng.randbytes(6000)).decode()  # 76-column lines
    return (
        _headers(
            "multipart",
            "a MIME multipart with an attachment",
            'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="=-=boundary-7Qx=-="',
        )
        + "This is a multi-part message in MIME format.\n"
        + "\n"
        + "--=-=boundary-7Qx=-=\n"
        + "Content-Type: text/plain; charset=us-ascii\n"
        + "Content-Transfer-Encoding: 7bit\n"
        + "\n"
        + "The attachment is 6000 random bytes.\n"
        + ".\n"
        + "\n"
        + "--=-=boundary-7Qx=-=\n"
        + 'Content-Type: application/octet-stream; name="random.bin"\n'
        + "Content-Transfer-Encoding: base64\n"
        + 'Content-Disposition: attachment; filename="random.bin"\n'
        + "\n"
        + payload
        + "\n"
        + "--=-=boundary-7Qx=-=--\n"
        + "epilogue\n"
    ).encode()


def _utf8_header() -> bytes:
    return (
        "From: Jürgen Müller <juergen@example.org>\n"
        "To: Zoë <alice@example.test>\n"
        "Subject: Grüße aus Köln — 8-bit header, 日本語\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
        "Message-ID: <utf8-header@seed.test>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Hällo, wörld: ½ € ✓\n"
        "..Ünïcödé after two dots\n"
    ).encode()


def _crlf(rng: random.Random) -> bytes:
    """CRLF line ends, ~3 chunks: one CRLF split across the first chunk boundary (CR last
    in the chunk, LF first in the next, then a dot line), and a dot line that starts exactly
    at the second boundary."""
    out = bytearray(_headers("crlf", "CRLF line ends", eol="\r\n").encode())
    _fill(out, rng, CHUNK - 1, b"\r\n")  # the next CRLF starts at offset CHUNK - 1
    out += b"\r\n.dot line right after a CRLF split across chunks\r\n"
    _fill(out, rng, 2 * CHUNK, b"\r\n")
    out += b".\r\n..\r\nthe end\r\n"
    return bytes(out)


def _no_final_newline() -> bytes:
    return (
        _headers("no-newline", "no newline at the end")
        + "The last line of this file has no line end.\n"
        + "last line"
    ).encode()


def _dot_without_newline() -> bytes:
    return (_headers("dot-no-newline", "a final dot and no newline") + "body\n.").encode()


def _big(rng: random.Random, size: int = 1024 * 1024) -> bytes:
    """~1 MiB with LF line ends and many dot lines; at each chunk boundary a line starts
    that begins with a dot (a lone dot, two dots, a dot and text, in turn), so stuffing
    must carry line starts across chunks."""
    out = bytearray(_headers("big", "about a megabyte").encode())
    boundary = CHUNK
    specials = (b".\n", b"..\n", b".starts with a dot\n", b"..two dots\n")
    k = 0
    while len(out) < size:
        if len(out) + 200 > boundary:
            _fill(out, rng, boundary, b"\n")
            out += specials[k % len(specials)]
            k += 1
            boundary += CHUNK
            continue
        out += _random_line(rng) + b"\n"
    out += b"the last line is a dot\n.\n"
    return bytes(out)


def _random_line(rng: random.Random) -> bytes:
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 9)))
        for _ in range(rng.randint(0, 14))
    ]
    line = " ".join(words)
    r = rng.random()
    if r < 0.05:
        line = "." + line
    elif r < 0.08:
        line = ".." + line
    elif r < 0.10:
        line = "."
    return line.encode()


def _fill(out: bytearray, rng: random.Random, end: int, eol: bytes) -> None:
    """Append lines so that `out` ends (with `eol`) exactly at offset `end`."""
    while (gap := end - len(out)) > 120:
        out += _random_line(rng).lstrip(b".")[: gap - 100] + eol
    assert gap >= len(eol), (gap, end)
    out += b"x" * (gap - len(eol)) + eol


def seed_messages() -> list[Seed]:
    """The messages every client must get back intact (the same bytes on every call)."""
    return list(_seeds())


@functools.cache
def _seeds() -> tuple[Seed, ...]:
    rng = random.Random(1939)
    return (
        Seed("dot-line", _dot_lines()),
        Seed("double-dot", _double_dots(), "cur", ":2,S"),
        Seed("multipart", _multipart(rng), size_in_name=True),
        Seed("utf8-header", _utf8_header(), "cur", ":2,"),
        Seed("crlf", _crlf(rng)),
        Seed("no-newline", _no_final_newline(), "cur", ":2,FS", size_in_name=True),
        Seed("dot-no-newline", _dot_without_newline()),
        Seed("big", _big(rng)),
    )


def seed_maildir(root: Path, seeds: Sequence[Seed]) -> dict[str, Path]:
    """Deliver `seeds` into the Maildir `root` as an MDA would; their paths by name."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    now = int(time.time()) - 3600
    host = "seed.example"
    for i, seed in enumerate(seeds):
        base = f"{now + i}.M{100000 + i}P{os.getpid()}Q{i}.{host}"
        if seed.size_in_name:
            base += f",S={len(seed.data)}"
        tmp = root / "tmp" / base
        tmp.write_bytes(seed.data)
        os.utime(tmp, (now + i, now + i))
        final = root / seed.subdir / (base + (seed.info if seed.subdir == "cur" else ""))
        os.rename(tmp, final)
        paths[seed.name] = final
    return paths


def maildir_files(root: Path) -> list[Path]:
    """The message files of a Maildir (``new/`` and ``cur/``), sorted."""
    return sorted(p for sub in ("new", "cur") for p in (root / sub).iterdir() if p.is_file())


# --------------------------------------------------------------------------------------
# What a client should receive
# --------------------------------------------------------------------------------------


def crlf(data: bytes) -> bytes:
    """Every line end as CRLF (what the server serves, and counts in LIST)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def on_the_wire(data: bytes) -> bytes:
    """The message a POP3 client receives for a file: CRLF line ends, and a final CRLF
    (RFC 1939 section 3: the terminating ``.`` must follow a CRLF) when the file has none."""
    wire = crlf(data)
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


def with_lf(data: bytes) -> bytes:
    """What a client that writes LF line ends stores for a file."""
    return on_the_wire(data).replace(b"\r\n", b"\n")


def message_name(data: bytes) -> str:
    """The seed a delivered message came from, by its Message-ID."""
    header = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    match = re.search(rb"^Message-ID: <([^@>]+)@seed\.test>", header, re.M | re.I)
    assert match, f"no seed Message-ID in the header: {header[:500]!r}"
    return match.group(1).decode()


def by_name(messages: Iterable[bytes]) -> dict[str, bytes]:
    """Delivered messages by seed name; each seed at most once."""
    out: dict[str, bytes] = {}
    for data in messages:
        name = message_name(data)
        assert name not in out, f"message {name!r} was delivered twice"
        out[name] = data
    return out


def assert_same_bytes(label: str, got: bytes, want: bytes) -> None:
    """Byte-for-byte equality, with a readable account of the first difference."""
    if got == want:
        return
    n = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if n is None:
        n = min(len(got), len(want))
    lo = max(0, n - 40)
    pytest.fail(
        f"{label}: received {len(got)} bytes, expected {len(want)}; first difference at "
        f"offset {n}:\n  received {got[lo : n + 40]!r}\n  expected {want[lo : n + 40]!r}",
        pytrace=False,
    )


def assert_all_delivered(
    label: str,
    delivered: Mapping[str, bytes],
    seeds: Sequence[Seed],
    *,
    lf: bool,
    trace: str = "",
) -> None:
    """Every seed delivered once, each byte for byte as it should arrive (`trace`: the
    client's output, shown when a message is missing)."""
    names = sorted(s.name for s in seeds)
    if sorted(delivered) != names:
        pytest.fail(
            f"{label}: delivered {sorted(delivered)}, expected {names}\n{_tail(trace, 4000)}",
            pytrace=False,
        )
    for seed in seeds:
        want = with_lf(seed.data) if lf else on_the_wire(seed.data)
        assert_same_bytes(f"{label}: message {seed.name!r}", delivered[seed.name], want)


# --------------------------------------------------------------------------------------
# The server's side
# --------------------------------------------------------------------------------------

_BAD_LOG_LINE = re.compile(r"error|traceback", re.I)


def assert_clean_log(log: str, after: str) -> None:
    """No error and no traceback in the server log (checked after each client run)."""
    bad = [line for line in log.splitlines() if _BAD_LOG_LINE.search(line)]
    assert not bad, f"server log after {after} has error lines:\n" + "\n".join(bad[:20])
