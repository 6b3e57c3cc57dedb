"""Which modules a delivery's scripts may need, imported while `mda` is still root.

Started as root, `mda` drops to the mailbox owner before it reads the user's script, and that
user may not be able to read the installation (a virtualenv, or Python itself, below /root):
everything the run will import must be imported first (`mda.deliver._preload`). Importing
everything costs a delivery 20-30 ms (`re`, `hashlib`, `subprocess`), most of it for nothing,
so the parent looks at which extension names and actions appear in the scripts' text, and
imports only what those need; a script that includes another may need anything.

The parser (`PARSER`) is imported only for a script without a current compiled cache
(`mda.sieve.compiled`): root looks at the cache's owner, mode and first line (its key), not
at its data. The standard library of a system Python, which everyone can read, is left for
the run to import when it needs it, and so are our modules wanted only on a rare path
(`RARE`) when everyone can read our source (at worst the run compiles it again). Our
other modules are imported first even then: that costs the delivery nothing (the run needs
them), and their compiled files may be unreadable to the owner (written by root under mda's
umask), so that the run would compile them again each time.

When the mailbox owner cannot read the standard library (a Python built under /root), `re`
is still not imported for a script that merely mentions `:regex`: its modules (`DEFERRED`)
are opened, not imported (`deferred.read`), and the run imports them from those descriptors
if it compiles an expression, which most runs do not (`regex.py` looks for the literals
first). `RARE` modules are held open the same way when our own source is unreadable.

Looking is all root does with the user's file: it is opened non-blocking, only a regular file
is read, at most `[sieve] max_script_size` octets, and only substrings are searched for
(nothing read is shown anywhere). A name in a comment only imports a module for nothing.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config

# What parses a script (and writes its cache): only for a script whose cache is missing or
# stale.
PARSER = (
    "mda.sieve.parser",
    "mda.sieve.cachewrite",
    "mda.sieve.stringparse",
    "mda.sieve.lexer",
    "mda.sieve.grammar",
    "mda.sieve.checker",
    "mda.sieve.commands",
)
CORE = (
    "mda.sieve",
    "mda.sieve.delivery",
    "mda.sieve.compiled",
    "mda.sieve.evaltests",
    "mda.sieve.cpulimit",
    "binascii",  # any message may have base64 encoded-words in its header
)
# (words in a script, modules they need)
NEEDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        (
            "vacation",
            "reject",
            "include",
            "return",
            "global",
            "notify",
            "foreverypart",
            "break",
            "extracttext",
            "addheader",
            "deleteheader",
            "error",
        ),
        ("mda.sieve.extcommands",),
    ),
    (("regex",), ("mda.sieve.regex", "re")),
    (("spamtest", "virustest"), ("mda.sieve.regex", "mda.sieve.spamtest", "re")),
    (
        ("vacation", "duplicate"),
        (
            "hashlib",
            "mda.sieve.tracking",
            "mailstore.lock",
            "mailstore.uidlist",
            "mailstore.filenames",
        ),
    ),
    (
        ("vacation", "notify", "reject", "redirect"),
        (
            "mda.sieve.address",
            "mda.external",
            "subprocess",
            "select",
            "mda.sieve.send",
            "mda.sieve.encode",
        ),
    ),
    (("notify",), ("mda.sieve.notify",)),
    (
        (
            "hasflag",
            "mailboxexists",
            "string",
            "body",
            "date",
            "duplicate",
            "environment",
            "valid_notify_method",
            "notify_method_capability",
            "spamtest",
            "virustest",
            "mime",
        ),
        ("mda.sieve.exttests",),
    ),
    (("date",), ("mda.sieve.timeparts",)),
    (
        ("body", "mime", "foreverypart", "extracttext"),
        ("mda.sieve.mime", "mda.sieve.params"),
    ),
    (("editheader", "addheader"), ("mda.sieve.encode",)),
    (("include",), ("mda.maps.safefile",)),
)
# Ours, but wanted only on a rare path: `regex` compiles a key only for a value that holds its
# required literals. Imported first only when the mailbox owner could not read its source.
RARE = ("mda.sieve.regex",)
EVERYTHING = tuple(dict.fromkeys(m for _, modules in NEEDS for m in modules))
# Standard modules held open rather than imported (see above), with everything they import
# that the delivery path has not (Python 3.11; `read` skips what is loaded already and what
# is built in): tests/mda/test_sieve_deferred.py checks that it is complete.
DEFERRED = {
    "re": (
        "re",
        "re._constants",
        "re._parser",
        "re._casefix",
        "re._compiler",
        "enum",
        "types",
        "operator",
        "keyword",
        "reprlib",
        "collections",
        "functools",
        "copyreg",
        "_sre",
        "_functools",
        "_locale",
        "_collections",
        "_operator",
        "itertools",
    ),
}


def _peek(path: str, limit: int) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return ""
    finally:
        os.close(fd)


def _everyone_can_read(path: str) -> bool:
    """Whether any user can read `path`: the file readable by others, every directory on the
    way to it searchable by others."""
    path = os.path.realpath(path)
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        while True:
            parent = os.path.dirname(path)
            if parent == path:
                return True
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            path = parent
    except OSError:
        return False


def _standard_library_is_readable() -> bool:
    """Whether the mailbox owner will be able to import the standard library itself, as with
    Debian's /usr/lib/python3: then only mda's own modules need importing first, and `re`
    (5 ms and more) is imported only by a run that compiles a regular expression."""
    return _everyone_can_read(os.__file__)


def modules_for(paths: list[str], config: Config, uid: int) -> list[str]:
    """The modules to import before dropping privileges to `uid` for a run of these scripts:
    the parser only for a script without a current cache (`compiled.is_current`). Those in
    `DEFERRED` and `RARE` are held open instead (`deferred.read`), when they must be."""
    text = "\n".join(_peek(path, config.sieve.max_script_size) for path in paths)
    if config.sieve.spamtest_status_header or config.sieve.virustest_status_header:
        text += "\nspamtest"  # the configured header's expression is compiled for every run
    if "include" in text:
        wanted = [*CORE, *PARSER, *EVERYTHING]
    else:
        wanted = list(CORE)
        if not all(_is_current(path, config, uid) for path in paths):
            wanted.extend(PARSER)
        for words, modules in NEEDS:
            if any(word in text for word in words):
                wanted.extend(modules)
    if _standard_library_is_readable():
        wanted = [m for m in wanted if m.startswith(("mda", "mailstore"))]
    else:
        from . import deferred

        wanted = [n for m in wanted for n in (deferred.read(DEFERRED[m]) if m in DEFERRED else [m])]
    if not _everyone_can_read(__file__):
        from . import deferred

        wanted = [n for m in wanted for n in (deferred.read([m]) if m in RARE else [m])]
    else:
        wanted = [m for m in wanted if m not in RARE]
    return list(dict.fromkeys(wanted))


def _is_current(path: str, config: Config, uid: int) -> bool:
    from .compiled import is_current
    from .delivery import extensions_for, limits_of

    return is_current(path, uid, limits_of(config), extensions_for(config))
