"""Modules read while `mda` is still root, and run only if the delivery imports them.

Root must load, before it drops to the mailbox owner, whatever the run may import: the
owner may not be able to read the installation (a Python built under /root, as pyenv's).
Importing is the costly part: `re` and what it pulls in (`enum`, `functools`...) cost a
delivery 3 to 5 ms, for a script with a `:regex` test that, most of the time, compiles
nothing (`regex.py` first looks for the expression's literals). So root only finds and opens
the code of such modules (`read`: their compiled `.pyc`, or the source when no current one
exists), and puts a finder first on `sys.meta_path` that serves exactly those names from
the descriptors it holds: the reading and the import, with their cost, happen in the run,
only if the run needs them (a descriptor opened before the drop stays readable after it).

Only pure-Python modules can be deferred: an extension module (a `.so`) must be opened by
the dynamic loader from its file, so `read` returns those (and frozen ones) for the caller
to import at once; built-in modules need no file at all and are left alone. The code comes
from the installation's own files, opened read-only by root before the drop (close-on-exec:
no program the run starts inherits them); nothing the mailbox owner can write is read or run
here, and a module is served once (`DeferredImports.exec_module` forgets it).
"""

from __future__ import annotations

import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
else:
    ModuleSpec = type(sys.__spec__)  # what importlib.machinery exports, without importing it

_MAGIC: bytes = getattr(sys.modules.get("_frozen_importlib_external"), "MAGIC_NUMBER", b"")


class _Code:
    """One module held open: its file, and a descriptor of its compiled code (after the
    `.pyc` header, at `offset`) or of its source (`is_source`)."""

    __slots__ = ("cached", "fd", "is_source", "offset", "origin", "package")

    def __init__(
        self, origin: str, cached: str | None, fd: int, offset: int, is_source: bool, package: bool
    ) -> None:
        self.origin = origin
        self.cached = cached
        self.fd = fd
        self.offset = offset
        self.is_source = is_source
        self.package = package

    def read(self) -> bytes:
        """The code or source, and the descriptor closed."""
        try:
            size = os.fstat(self.fd).st_size - self.offset
            chunks = []
            while size > 0:
                chunk = os.pread(self.fd, size, self.offset)
                if not chunk:
                    break
                chunks.append(chunk)
                size -= len(chunk)
                self.offset += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(self.fd)


class DeferredImports:
    """A finder and loader (PEP 451) for the modules whose code `read` took beforehand."""

    def __init__(self) -> None:
        self.modules: dict[str, _Code] = {}

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        code = self.modules.get(name)
        if code is None:
            return None
        spec = ModuleSpec(name, self, origin=code.origin, is_package=code.package)  # type: ignore[arg-type]
        if code.package:
            spec.submodule_search_locations = [os.path.dirname(code.origin)]
        spec.cached = code.cached
        spec.has_location = True
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        code = self.modules.pop(module.__name__)
        data = code.read()
        if code.is_source:
            compiled = compile(data, code.origin, "exec", dont_inherit=True)
        else:
            compiled = marshal.loads(data)
        exec(compiled, module.__dict__)


_FINDER = DeferredImports()


def _path_finder() -> object | None:
    for finder in sys.meta_path:
        if getattr(finder, "__name__", "") == "PathFinder":
            return finder
    return None


def _read_one(name: str, finder: object) -> _Code | None:
    """The pure-Python module `name`, opened, not imported; None if it is not one (or cannot
    be opened now, in which case the caller imports it the ordinary way)."""
    parent, _, _ = name.rpartition(".")
    path: list[str] | None = None
    if parent:
        if parent in _FINDER.modules and _FINDER.modules[parent].package:
            path = [os.path.dirname(_FINDER.modules[parent].origin)]
        elif parent in sys.modules:
            path = list(getattr(sys.modules[parent], "__path__", []))
        else:
            return None
    spec = finder.find_spec(name, path)  # type: ignore[attr-defined]
    if spec is None or not spec.has_location or not str(spec.origin).endswith(".py"):
        return None
    origin = str(spec.origin)
    package = spec.submodule_search_locations is not None
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        st = os.stat(origin)
        if _MAGIC and spec.cached:
            try:
                fd = os.open(spec.cached, flags)
            except OSError:
                pass
            else:
                try:
                    header = os.pread(fd, 16, 0)
                except OSError:
                    header = b""
                # PEP 552's header: magic, flags 0 (checked by timestamp), the source's mtime
                # and size; anything else (hash-based, stale) is read from the source instead.
                if (
                    header[:4] == _MAGIC
                    and header[4:8] == b"\0\0\0\0"
                    and int.from_bytes(header[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                    and int.from_bytes(header[12:16], "little") == st.st_size & 0xFFFFFFFF
                ):
                    return _Code(origin, spec.cached, fd, 16, False, package)
                os.close(fd)
        return _Code(origin, spec.cached, os.open(origin, flags), 0, True, package)
    except OSError:
        return None


def read(names: Iterable[str]) -> list[str]:
    """Open the pure-Python modules among `names` (a package before its submodules) that are
    not imported yet, to be read and run only if imported; the finder is installed first on
    `sys.meta_path`. Returns the names that must be imported now instead: extension and
    frozen modules, and any that could not be opened. Built-in modules are left out: their
    import reads no file."""
    finder = _path_finder()
    now = []
    for name in names:
        if name in sys.modules or name in _FINDER.modules or name in sys.builtin_module_names:
            continue
        code = _read_one(name, finder) if finder is not None else None
        if code is None:
            now.append(name)
        else:
            _FINDER.modules[name] = code
    if _FINDER.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return now
