"""Everything the server can need, imported before it gives up root; and whether the user it
becomes could read its installation at all.

Why: `mra serve` binds its ports and reads its keys as root, then becomes `[server] user`. From
then on every `import` reads files as that user. When the interpreter lives where that user
cannot read (a pyenv under /root is the common case), a module first needed by a client fails
there: a `CREATE` of a folder named in Chinese needs the utf-16 codec, a `SEARCH CHARSET
KOI8-R` needs its codec, a password in a scheme not seen yet needs its passlib handler, and
each answered `NO [SERVERBUG]` with nothing said at start-up.

So, before the drop (`preload`):

* every module of our packages (mailstore, mra, mda), every codec of the `encodings`
  package (the CJK ones are C modules of their own), the whole `email` package, passlib's
  handlers and the hash backends it loads on first use, and `LAZY_IMPORTS`, the modules our
  code imports inside functions. tests/unit/test_preload.py reads every import statement of
  our packages and fails when one names a module this leaves out;
* `check_installation(user)` then looks, in a child that has become that user, whether it
  could read the files the server was loaded from. Our own installation (the directories our
  packages and their dependencies came from) must be readable: a server that cannot read its
  own code is one update away from failing at random, so `mra serve` refuses to start and
  names the path. The interpreter's standard library may stay unreadable (the pyenv case):
  everything has been imported, `mra serve` says so once (`stdlib-unreadable`), and
* `LateImports` logs every module imported after the drop (`late-import module=NAME`): there
  should be none, and if one fails, the log says which file could not be read.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

PACKAGES = ("mailstore", "mra", "mda", "email", "encodings")
# Modules of our packages a server never runs: the command lines and the demo.
SKIP_SUFFIXES = ("__main__", ".demo", ".launcher", ".manpages")

# Imported inside functions somewhere in our packages (or by libraries, on first use): the
# test named above keeps this list complete.
LAZY_IMPORTS = (
    # imported inside functions of our packages
    "resource",
    "shlex",
    "sysconfig",
    "twisted.internet.inotify",
    # imported by the standard library on first use: time.strptime, the idna codec, zlib for
    # COMPRESS, crypt for {CRYPT} hashes, and hashlib's fallbacks where OpenSSL lacks one
    "_strptime",
    "crypt",
    "json",
    "stringprep",
    "unicodedata",
    "zlib",
    "_md5",
    "_sha1",
    "_sha256",
    "_sha512",
    "_sha3",
    "_blake2",
    # Twisted: the reactor's modules (not the reactor: it is installed in each worker, after
    # the fork), the thread pool and the web server of the metrics endpoint (TLS is the
    # standard library's ssl: mra/net/tls.py)
    "twisted.internet.default",
    "twisted.internet.epollreactor",
    "twisted.internet.pollreactor",
    "twisted.internet.selectreactor",
    "twisted.internet.posixbase",
    "twisted.internet.threads",
    "twisted.python.threadpool",
    "twisted.web.resource",
    "twisted.web.server",
    # passlib's hash handlers are loaded by name, on the first hash of their scheme, and
    # their backends with them
    "passlib.handlers",
    "passlib.crypto.digest",
    "argon2",
    "argon2.low_level",
    "bcrypt",
)


def preload(extra: Iterable[str] = ()) -> list[str]:
    """Import everything the server can need (see the module notes); the modules that could
    not be imported (a platform's codec, an optional library), for the debug log."""
    missing: list[str] = []
    for name in (*LAZY_IMPORTS, *extra):
        _try(name, missing)
    for package_name in PACKAGES:
        _walk(package_name, missing)
    handlers = sys.modules.get("passlib.handlers")
    if handlers is not None:
        for info in pkgutil.iter_modules(handlers.__path__, "passlib.handlers."):
            _try(info.name, missing)
    _load_hash_backends()
    return missing


def for_workers() -> list[str]:
    """What the supervisor imports before it forks its workers when it does not `preload`
    everything (it stays root: nothing becomes unreadable): the modules of our server
    (mailstore, mra) and `LAZY_IMPORTS`. Imported once, before the fork, they are shared by
    the workers; imported by each worker at its first connection, each had its own copy
    (issue #16: 136 modules, the whole IMAP server among them, 7 MB of objects per worker;
    with 1,000 idle connections and two workers the server took 77.8 MB, with this 71.0).
    The codecs, the email package, mda and passlib's other handlers are left to the worker
    that needs them: imported here, every server would carry them."""
    missing: list[str] = []
    for name in LAZY_IMPORTS:
        _try(name, missing)
    for package_name in ("mailstore", "mra"):
        _walk(package_name, missing)
    return missing


def _walk(package_name: str, missing: list[str]) -> None:
    package = _try(package_name, missing)
    if package is None:
        return
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        if not info.name.endswith(SKIP_SUFFIXES):
            _try(info.name, missing)


def _try(name: str, missing: list[str]) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, and codecs that exist only on Windows (mbcs, oem...)
        missing.append(name)
        return None


def _load_hash_backends() -> None:
    """passlib picks a handler's backend (the bcrypt or argon2 C module, or its own code) on
    the first hash of that scheme: pick them all now."""
    try:
        from passlib import hash as handlers  # type: ignore[import-untyped]
    except ImportError:
        return
    for name in ("bcrypt", "argon2", "md5_crypt", "sha256_crypt", "sha512_crypt", "des_crypt"):
        try:
            getattr(handlers, name).get_backend()
        except Exception:
            pass


# -- can the server's user read its installation? -------------------------------------------


def stdlib_paths() -> set[str]:
    """The interpreter's own library directories (a readable copy is not ours to demand)."""
    import sysconfig

    paths = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    base = os.path.dirname(os.__file__)
    paths |= {base, os.path.join(base, "lib-dynload")}
    return {os.path.realpath(p) for p in paths if p}


def installation_files() -> dict[str, str]:
    """For each directory modules were loaded from (a `sys.path` entry), one module file
    loaded from it: what the server's user must be able to read."""
    entries = sorted(
        {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}, key=len, reverse=True
    )
    found: dict[str, str] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        real = os.path.realpath(path)
        for entry in entries:
            if real.startswith(entry + os.sep):
                found.setdefault(entry, real)
                break
    return found


def check_installation(uid: int, gid: int) -> tuple[list[str], list[str]]:
    """(problems with our own installation, problems with the standard library), each a
    sentence naming the path that the user `uid`/`gid` cannot read; ([], []) when it can read
    everything. Tested in a child that has become that user."""
    files = installation_files()
    stdlib = stdlib_paths()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, try, report, exit without cleaning up
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            lines = []
            for entry, sample in sorted(files.items()):
                why = _unreadable(entry, sample)
                if why is not None:
                    kind = "stdlib" if entry in stdlib else "own"
                    lines.append(f"{kind}\t{why}")
            os.write(write_end, "\n".join(lines).encode("utf-8", "replace"))
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    own: list[str] = []
    lib: list[str] = []
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        kind, _, why = line.partition("\t")
        (lib if kind == "stdlib" else own).append(why)
    return own, lib


def _unreadable(entry: str, sample: str) -> str | None:
    """Why this user cannot list `entry` or read `sample` below it (the first directory on
    the way that stops it), or None."""
    for path in (*_ancestors(sample), sample):
        try:
            if path == sample:
                os.close(os.open(path, os.O_RDONLY))
            elif not os.access(path, os.X_OK):
                return f"{path}: permission denied (cannot enter it, so not {sample})"
        except OSError as exc:
            return f"{path}: {exc.strerror}"
    try:
        os.listdir(entry)
    except OSError as exc:
        return f"{entry}: {exc.strerror}"
    return None


def _ancestors(path: str) -> Sequence[str]:
    parts = path.split(os.sep)
    return [os.sep.join(parts[:i]) or os.sep for i in range(1, len(parts))]


# -- imports after the drop ------------------------------------------------------------------

# `twisted.internet.reactor` installs the reactor when imported: that happens in each worker,
# after the fork (mra/net/reactor.py), from modules preloaded above.
EXPECTED_LATE = frozenset({"twisted.internet.reactor"})


class LateImports:
    """A `sys.meta_path` finder that finds nothing: it logs each module first imported after
    the privilege drop (`late-import`), then lets the real finders look."""

    def __init__(self, level: str = "info") -> None:
        self.level = level
        self.seen: set[str] = set()

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: object = None
    ) -> ModuleSpec | None:
        if name not in self.seen and name not in EXPECTED_LATE:
            self.seen.add(name)
            from mra import log

            log.event(self.level, "late-import", module=name)
        return None

    def install(self) -> None:
        if not any(isinstance(f, LateImports) for f in sys.meta_path):
            sys.meta_path.insert(0, self)
