"""aliases(5): sendmail's alias file, parsed, indexed and expanded.

File format (aliases(5); sendmail/alias.c readaliases() and contline()):

- `name: target, target, ...`; a line starting with a space or tab continues the previous one,
  and so does a line ending in a backslash (the backslash and newline are removed).
- A line starting with `#` is a comment; blank lines are ignored. A line starting with white
  space that continues nothing, a line without a colon, and a name without a value are reported
  and skipped, as newaliases does.
- Names are case-insensitive: sendmail folds map keys to lower case on store and on lookup
  (map.c, unless the map has -f), so they are stored lower-cased.
- A name defined twice: the LAST definition wins. newaliases prints "Warning: duplicate alias
  name" and then stores the new value over the old one (map.c *_map_store: an insert refusing
  to overwrite, then a replace), unless the map was declared with -A (append), which is not the
  default. `parse_aliases` reports the warning and keeps the last value.

Targets (aliases(5)): a local name (another alias or a user), `user@domain`, `:include:/path`,
`|program`, `/file`, and sendmail's `error:` form (`error:D.S.N:CODE TEXT`, `error:CODE TEXT`,
`error:nouser TEXT`). Targets are separated by commas; double quotes protect commas and spaces
(`"|/usr/bin/vacation bob"`).

Expansion follows sendmail (alias.c alias(), recipient.c recipient()):

- Recursive. The address asked for is at level 0 and each alias expansion adds a level (the
  members of an `:include:` file stay at the include's level, as in sendmail's include()); an
  address deeper than `max_depth` (MaxAliasRecursion, 10) becomes
  `554 5.4.6 aliasing/forwarding loop broken (N aliases deep; 10 max)`.
- A name met again inside its own expansion (`bob: bob, bob@elsewhere`, or a cycle
  a -> b -> a) is a self-reference: sendmail marks it QSELFREF and delivers it to the local
  user of that name instead of expanding it again. A name met again elsewhere (two lists
  sharing a member) is not expanded twice, and duplicate final targets are dropped
  ("duplicate suppressed"), so each mailbox gets one copy.
- `\\user` on a right-hand side is delivered to the local user without aliasing. The address
  being expanded is not alias syntax: it is taken in the canonical spelling of `mda.address`
  (a backslash or quotes in it are only RFC 5321 quoting, so `\\bob` and `"bob"` are `bob`
  and are aliased like it), and it can never be a program, a file, an include or an error.
- `user+detail` with no alias of its own tries `user+*`, then `user`, keeping the detail
  (cf/m4/proto.m4 ruleset 5, "deal with plussed users so aliases work nicely"). The detail stays
  with a delivery to that user; the targets of a matched alias are the alias's, not the user's.
- `|program` and `/file` targets are honoured only when they come from the aliases file itself
  and that file is owned by root and writable by nobody else. From an `:include:` file, or given
  as the address, they are refused (sendmail: "Address ... is unsafe for mailing to programs",
  "Cannot mail directly to programs"). This is stricter than sendmail, which runs unsafe
  includes as their owner; we have no such delivery mode.
- `:include:` files must be absolute (else `550 5.2.4 Cannot open`) and trusted as the
  aliases file is: owned by a trusted uid, not group- or world-writable, reached through no
  directory anyone else could change (`mda.maps.safefile`). One that is not, or that cannot be
  read, raises MapError: a temporary failure, so that the list is neither lost nor delivered
  following a file somebody else may have written.
- `owner-NAME` gives the errors-to address of list NAME (aliases(5)): see `Aliases.owner_of`.
"""

from __future__ import annotations

import os

from mda.address import normalize, normalize_domain, quote_local, split
from mda.maps.cdb import LoadedMap, open_indexed, rebuild_index
from mda.maps.errors import MapError, Refusal, dequote, parse_error_spec
from mda.maps.safefile import default_trusted, refusal, unsafe_reason

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Literal

    TargetKind = Literal["local", "remote", "program", "file", "error"]

SCHEMA = "aliases/1"  # bump when the parser changes what it stores: old indexes become stale
DEFAULT_PATH = "/etc/aliases"
MAX_DEPTH = 10  # sendmail's MaxAliasRecursion
ORIGIN_ADDRESS = "address"  # Target.origin of the address we were asked to expand


class Target:
    """One final destination of an expansion.

    kind:   "local" (a user's mailbox), "remote" (an address to forward to), "program",
            "file" or "error" (a refusal, see `refusal`).
    value:  the user name, the address, the command (without `|`), the path, or the error spec.
    detail: the `+detail` of a local delivery, without the `+` ("" for none).
    chain:  the alias keys (and `:include:` files) that led here, outermost first.
    origin: where the target's text came from: the aliases file path, `:include:/path`, or
            "address" for the address itself.
    """

    __slots__ = ("chain", "detail", "kind", "origin", "refusal", "value")

    def __init__(
        self,
        kind: TargetKind,
        value: str,
        *,
        detail: str = "",
        chain: tuple[str, ...] = (),
        origin: str = ORIGIN_ADDRESS,
        refusal: Refusal | None = None,
    ) -> None:
        self.kind: TargetKind = kind
        self.value = value
        self.detail = detail
        self.chain = chain
        self.origin = origin
        self.refusal = refusal

    @property
    def address(self) -> str:
        """The target as sendmail would print it."""
        if self.kind == "local":
            return f"{self.value}+{self.detail}" if self.detail else self.value
        if self.kind == "program":
            return f"|{self.value}"
        return self.value

    def describe(self) -> str:
        if self.kind == "error":
            assert self.refusal is not None
            what = f"refused: {self.refusal.reply}"
        elif self.kind == "local":
            what = f"deliverable: local user {self.value}"
            if self.detail:
                what += f", detail {self.detail}"
        elif self.kind == "remote":
            what = f"deliverable: remote address {self.value}"
        elif self.kind == "program":
            what = f'deliverable: program "{self.value}"'
        else:
            what = f"deliverable: file {self.value}"
        if self.chain:
            what += f" (via {' -> '.join(self.chain)})"
        return what

    def _dedupe_key(self) -> tuple[str, ...]:
        if self.kind == "error":
            assert self.refusal is not None
            return ("error", self.value, self.refusal.reply)
        return (self.kind, self.value, self.detail)

    def __repr__(self) -> str:
        extra = f", detail={self.detail!r}" if self.detail else ""
        if self.refusal is not None:
            extra += f", refusal={self.refusal!r}"
        return f"Target({self.kind!r}, {self.value!r}{extra}, chain={self.chain!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Target):
            return NotImplemented
        return (self.kind, self.value, self.detail, self.chain, self.origin, self.refusal) == (
            other.kind,
            other.value,
            other.detail,
            other.chain,
            other.origin,
            other.refusal,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.value, self.detail, self.chain, self.origin))


# --- parsing -------------------------------------------------------------------------------


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines the way sendmail's contline() does; (first line number, text)."""
    phys = text.split("\n")
    if phys and phys[-1] == "":
        phys.pop()
    out: list[tuple[int, str]] = []
    i = 0
    while i < len(phys):
        lineno = i + 1
        line = phys[i].rstrip("\r")
        i += 1
        while True:
            if line.endswith("\\"):
                line = line[:-1]  # backslash-newline: both go, the next line follows directly
                if i < len(phys):
                    line += phys[i].rstrip("\r")
                    i += 1
                    continue
            elif i < len(phys) and phys[i][:1] in (" ", "\t"):
                line += phys[i].rstrip("\r")  # the leading white space stays, as in sendmail
                i += 1
                continue
            break
        out.append((lineno, line))
    return out


def split_targets(rhs: str) -> list[str]:
    """Split a right-hand side at commas outside double quotes; backslash escapes a character."""
    out: list[str] = []
    buf: list[str] = []
    in_quotes = False
    i = 0
    while i < len(rhs):
        c = rhs[i]
        if c == "\\" and i + 1 < len(rhs):
            buf.append(rhs[i : i + 2])
            i += 2
            continue
        if c == '"':
            in_quotes = not in_quotes
        elif c == "," and not in_quotes:
            item = "".join(buf).strip()
            if item:
                out.append(item)
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    item = "".join(buf).strip()
    if item:
        out.append(item)
    return out


def _closing_quote(s: str, start: int) -> int:
    """Index of the quote closing the one at `start`, or -1."""
    i = start + 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            return i
        i += 1
    return -1


def _quotes_balanced(s: str) -> bool:
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            end = _closing_quote(s, i)
            if end < 0:
                return False
            i = end
        i += 1
    return True


def _strip_angle(s: str) -> str:
    """`Bob <bob@example.org>` -> `bob@example.org` (a route-addr in an RFC 5322 mailbox)."""
    if s.endswith(">") and not s.startswith('"'):
        lt = s.rfind("<")
        if lt >= 0:
            return s[lt + 1 : -1].strip()
    return s


def _valid_local(name: str) -> bool:
    return bool(name) and not any(c.isspace() or ord(c) < 32 or c in ",:;<>" for c in name)


def classify(text: str) -> tuple[str, str]:
    """What kind of target `text` is: (kind, value).

    Kinds: "program", "file", "include", "error", "noalias" (`\\user`), "remote", "local" and
    "invalid" (value is then the reason).
    """
    t = _strip_angle(text.strip())
    if not _quotes_balanced(t):
        return "invalid", "Unbalanced '\"'"
    if t.startswith('"') and _closing_quote(t, 0) == len(t) - 1:
        t = dequote(t)  # "|/usr/bin/prog arg" is the program, quotes are only syntax
    low = t.lower()
    if t.startswith("|"):
        return "program", t[1:].strip()
    if t.startswith("/"):
        return "file", t
    if low.startswith(":include:"):
        return "include", t[9:].strip()
    if low.startswith("error:"):
        return "error", t[6:]
    if t.startswith("\\"):
        name = t[1:]
        return ("noalias", name) if _valid_local(name) else ("invalid", "invalid local name")
    at = t.rfind("@")
    if at >= 0:
        local, domain = t[:at], t[at + 1 :]
        if not local or not domain or any(c.isspace() for c in domain):
            return "invalid", "invalid address"
        return "remote", t
    if not _valid_local(t):
        return "invalid", "invalid local name"
    return "local", t


def split_detail(local: str) -> tuple[str, str, bool]:
    """`user+detail` -> (user, detail, True); `+x` or `user` -> (whole, "", whether `+` seen).

    sendmail's detail separator is a hard-wired `+`, and a local part starting with `+` has no
    user to attach a detail to.
    """
    user, plus, detail = local.partition("+")
    if not plus or not user:
        return local, "", False
    return user, detail, True


def parse_aliases(text: str, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse an aliases file: ([(lower-cased name, raw right-hand side)], warnings)."""
    entries: dict[str, str] = {}
    warnings: list[str] = []
    for lineno, line in logical_lines(text):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path}: line {lineno}"
        if line[0] in " \t":
            warnings.append(f"{where}: non-continuation line starts with space")
            continue
        colon = line.find(":")
        if colon < 0:
            warnings.append(f"{where}: missing colon")
            continue
        name = dequote(line[:colon].strip())
        rhs = line[colon + 1 :].strip()
        if not _valid_local(name) or "@" in name:
            warnings.append(f"{where}: {line[:colon].strip()!r}: illegal alias name")
            continue
        if not rhs:
            warnings.append(f"{where}: {name}... missing value for alias")
            continue
        if not _quotes_balanced(rhs):
            warnings.append(f"{where}: {name}... unbalanced '\"'")
        key = name.lower()
        if key in entries:
            warnings.append(f"{where}: {key}... Warning: duplicate alias name {key}")
            del entries[key]  # re-insert below: the entry now sits where it was last defined
        entries[key] = rhs
    return list(entries.items()), warnings


def include_targets(text: str) -> list[str]:
    """The targets of an `:include:` file: aliases syntax without names, one or more a line."""
    out: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        out.extend(split_targets(line))
    return out


def _read_include(path: str, trusted: frozenset[int]) -> str:
    """The text of a trusted include file.

    MapError if the file is not trusted or cannot be read: a temporary failure, the list is
    not lost and not delivered following a file someone untrusted could have changed.
    """
    try:
        # O_NONBLOCK: a FIFO planted at the path must be refused, not block the delivery.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise MapError(path, f"cannot open :include: file: {e.strerror or e}") from e
    try:
        reason = unsafe_reason(path, os.fstat(fd), trusted)
        if reason is not None:
            raise MapError(path, f":include: file {refusal(reason)}")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as e:
        raise MapError(path, f"cannot read :include: file: {e.strerror or e}") from e
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


# --- expansion -----------------------------------------------------------------------------


class _Expander:
    """One expansion: the targets found so far and what has been expanded already."""

    def __init__(self, aliases: Aliases, trace: list[str] | None) -> None:
        self.aliases = aliases
        self.trace = trace
        self.targets: list[Target] = []
        self.seen: set[tuple[str, ...]] = set()
        self.expanded: set[str] = set()
        self.included: set[str] = set()

    def note(self, level: int, text: str) -> None:
        if self.trace is not None:
            self.trace.append("  " * level + text)

    def emit(self, target: Target, level: int) -> None:
        key = target._dedupe_key()
        if key in self.seen:
            self.note(level, f"{target.address}: duplicate suppressed")
            return
        self.seen.add(key)
        self.targets.append(target)
        self.note(level, f"{target.address}: {target.describe()}")

    def refuse(
        self, text: str, refusal: Refusal, chain: tuple[str, ...], origin: str, level: int
    ) -> None:
        self.emit(Target("error", text, chain=chain, origin=origin, refusal=refusal), level)

    def top(self, address: str) -> None:
        """Expand the address we were asked for: never alias syntax, always an address."""
        text = address.strip()
        kind, value = classify(text)
        if kind == "invalid":
            self.refuse(text, Refusal("553", "5.1.3", f"{text}... {value}"), (), ORIGIN_ADDRESS, 0)
            return
        direct = {
            "program": "Cannot mail directly to programs",
            "file": "Cannot mail directly to files",
            "include": "Cannot mail directly to :include:s",
            "error": "Cannot mail directly to error: targets",
        }
        if kind in direct:
            # recipient.c: only an alias or .forward may name a program, file or include.
            self.refuse(text, Refusal("550", "5.7.1", direct[kind]), (), ORIGIN_ADDRESS, 0)
            return
        local, domain = split(text)
        if domain is not None and domain not in self.aliases.local_domains:
            self.emit(Target("remote", normalize(text), origin=ORIGIN_ADDRESS), 0)
        elif not _valid_local(local):
            why = f"{quote_local(local)}... invalid local name"
            self.refuse(text, Refusal("553", "5.1.3", why), (), ORIGIN_ADDRESS, 0)
        else:
            self.local(local, (), {}, 0, ORIGIN_ADDRESS)

    def visit(
        self,
        text: str,
        chain: tuple[str, ...],
        ancestors: dict[str, str],
        level: int,
        origin: str,
        trusted: bool,
    ) -> None:
        """Expand one target text. `ancestors` maps each alias name and include being expanded
        on the way here to the +detail it was reached with (for self-references)."""
        aliases = self.aliases
        if level > aliases.max_depth:
            msg = f"aliasing/forwarding loop broken ({level} aliases deep; {aliases.max_depth} max)"
            self.refuse(text, Refusal("554", "5.4.6", msg), chain, origin, level)
            return
        kind, value = classify(text)
        if kind in ("program", "file"):
            if origin == aliases.path and trusted:
                tkind: TargetKind = "program" if kind == "program" else "file"
                self.emit(Target(tkind, value, chain=chain, origin=origin), level)
                return
            if origin.startswith(":include:"):
                why = "it comes from an :include: file"
            else:
                why = f"{origin} is not owned by root, or is writable by others"
            shown = f"|{value}" if kind == "program" else value
            msg = f"Address {shown} is unsafe for mailing to {kind}s: {why}"
            self.refuse(text, Refusal("550", "5.7.1", msg), chain, origin, level)
        elif kind == "include":
            self.include(value, text, chain, ancestors, level)
        elif kind == "error":
            self.refuse(text, parse_error_spec(value), chain, origin, level)
        elif kind == "invalid":
            self.refuse(text, Refusal("553", "5.1.3", f"{text}... {value}"), chain, origin, level)
        elif kind == "noalias":
            user, detail, _ = split_detail(value.lower())
            self.note(level, f"\\{value}: not aliased")
            self.emit(Target("local", user, detail=detail, chain=chain, origin=origin), level)
        elif kind == "remote":
            local, domain = split(value)
            if domain in aliases.local_domains:
                self.local(local, chain, ancestors, level, origin)
            else:
                self.emit(Target("remote", normalize(value), chain=chain, origin=origin), level)
        else:
            self.local(value, chain, ancestors, level, origin)

    def local(
        self, name: str, chain: tuple[str, ...], ancestors: dict[str, str], level: int, origin: str
    ) -> None:
        full = name.lower()  # the local mailer has no `u` flag: user names are case-folded
        user, detail, has_plus = split_detail(full)
        if full in ancestors:
            # QSELFREF: `bob: bob, bob@elsewhere` keeps a copy in bob's own mailbox, and the
            # detail that led into the alias (bob+x -> bob) stays with that copy.
            self.note(level, f"{full}: self-reference, delivered to the local user")
            carried = detail or ancestors[full]
            self.emit(Target("local", user, detail=carried, chain=chain, origin=origin), level)
            return
        if full in self.expanded:
            self.note(level, f"{full}: already expanded")
            return
        match = self.aliases.find(full, user, has_plus)
        here = Target("local", user, detail=detail, chain=chain, origin=origin)
        if match is None:
            self.emit(here, level)
            return
        key, rhs = match
        if key in ancestors:  # user+x falling back to `user` while expanding `user`
            self.note(level, f"{full}: self-reference through {key}, delivered to the local user")
            self.emit(here, level)
            return
        self.expanded.add(full)
        via = "" if key == full else f" (no alias {full}, using {key})"
        self.note(level, f"{full}: aliased to {rhs}{via}")
        inner = {**ancestors, full: detail, key: detail}
        trusted = self.aliases.programs_allowed
        for element in split_targets(rhs):
            self.visit(element, (*chain, key), inner, level + 1, self.aliases.path, trusted)

    def include(
        self,
        path: str,
        text: str,
        chain: tuple[str, ...],
        ancestors: dict[str, str],
        level: int,
    ) -> None:
        ikey = f":include:{path}"
        if not path.startswith("/"):
            msg = f"Cannot open {text}: not an absolute path"
            self.refuse(text, Refusal("550", "5.2.4", msg), chain, ikey, level)
            return
        if ikey in ancestors:
            self.note(level, f"{ikey}: includes itself, skipped")
            return
        if ikey in self.included:
            self.note(level, f"{ikey}: already included")
            return
        self.included.add(ikey)
        elements = include_targets(_read_include(path, self.aliases.trusted))
        self.note(level, f"{ikey}: {len(elements)} target(s)")
        # sendmail's include() hands its lines to sendtolist() at the include's own level.
        for element in elements:
            self.visit(element, (*chain, ikey), {**ancestors, ikey: ""}, level, ikey, False)


class Aliases:
    """An aliases file, opened through its compiled index (`<path>.cdb`)."""

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        *,
        max_depth: int = MAX_DEPTH,
        local_domains: Iterable[str] = (),
        write_index: bool = True,
        index_path: str | None = None,
        trusted: frozenset[int] | None = None,
    ) -> None:
        """Open the map; MapError if the aliases file cannot be read or is not trusted.

        local_domains: domains whose addresses are local names, as sendmail's class $=w: an
            alias target `bob@localhost` is then aliased again as `bob`.
        trusted: the uids that may own the aliases file, its `:include:` files and the
            directories leading to them (`mda.maps.safefile`; default: root and ourselves).
        """
        self.path = path
        self.max_depth = max_depth
        self.local_domains = frozenset(normalize_domain(d) for d in local_domains)
        self.trusted = default_trusted() if trusted is None else trusted
        self.map: LoadedMap = open_indexed(
            path,
            parse_aliases,
            SCHEMA,
            index_path=index_path,
            write_index=write_index,
            trusted=self.trusted,
        )
        st = self.map.stat
        # Programs and files run with our privileges: only root may have written them.
        self.programs_allowed = st.st_uid == 0 and not st.st_mode & 0o022

    @property
    def warnings(self) -> list[str]:
        """Parser warnings, when this process parsed the file (not when the index was current)."""
        return self.map.warnings

    def lookup(self, name: str) -> str | None:
        """The raw right-hand side for exactly `name` (case-insensitive), or None."""
        return self.map.get(name.strip().lower())

    def find(self, full: str, user: str, has_plus: bool) -> tuple[str, str] | None:
        """The alias for a lower-cased local part: exact, then `user+*`, then `user`."""
        keys = [full, f"{user}+*", user] if has_plus else [full]
        for key in keys:
            rhs = self.map.get(key)
            if rhs is not None:
                return key, rhs
        return None

    def expand(self, address: str) -> list[Target]:
        """Expand an address into its final targets, duplicates removed, in order."""
        ex = _Expander(self, None)
        ex.top(address)
        return ex.targets

    def explain(self, address: str) -> list[str]:
        """Lines telling how `address` expands, for `mda check ADDRESS` (like sendmail -bv)."""
        trace: list[str] = []
        ex = _Expander(self, trace)
        ex.top(address)
        lines = [f"{address}: expansion using {self.path}", *("  " + t for t in trace)]
        for target in ex.targets:
            lines.append(f"{target.address}... {target.describe()}")
        local = address.strip().lower()
        if "@" not in local:
            owner = self.owner_of(local)
            if owner is not None:
                lines.append(f"errors to: {owner}")
        return lines

    def owner_of(self, name: str) -> str | None:
        """The errors-to (envelope sender) address for list `name`, from `owner-name`.

        aliases(5): if `owner-name` expands to a single address, the envelope sender becomes that
        address; if to more than one, it becomes `owner-name` itself. Like alias.c, "more than
        one" is judged from the text: a value with any of `,:/|"` is not a single address. The
        owner of an `owner-` list is `owner-owner`, which stops the chain.
        """
        name = name.strip().lower()
        key = "owner-owner" if name.startswith("owner-") else f"owner-{name}"
        value = self.map.get(key)
        if value is None:
            return None
        value = value.strip()
        if any(c in value for c in ',:/|"'):
            return key
        return value


def newaliases(
    path: str = DEFAULT_PATH,
    *,
    index_path: str | None = None,
    trusted: frozenset[int] | None = None,
) -> LoadedMap:
    """Rebuild the index of an aliases file now (newaliases(1)); MapError if impossible.

    The result's `warnings` are what newaliases would print; `len(result.table)` the count.
    """
    return rebuild_index(path, parse_aliases, SCHEMA, index_path=index_path, trusted=trusted)
