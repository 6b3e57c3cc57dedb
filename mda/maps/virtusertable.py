"""sendmail's virtusertable: virtual addresses mapped to a local name, an address or an error.

Format: makemap input (`mda.maps.makemap`), `key value` a line. Keys are `user@domain`,
`@domain`, and the +detail forms `user+detail@domain`, `user+*@domain`, `user++@domain`,
`+*@domain`, `++@domain`. Values are one local name, one `user@domain` address, or
`error:[D.S.N:]CODE TEXT` (also `error:nouser TEXT`, see `mda.maps.errors.parse_error_spec`).
Keys are stored, and addresses looked up, in the canonical spelling of `mda.address` (local
part unquoted where it can be, domain lower-cased, without a trailing dot, in IDNA A-labels).

Lookup order, taken from the rules FEATURE(virtusertable) generates in sendmail 8.17
(cf/m4/proto.m4, ruleset Parse1, "handle virtual users"), for `user+detail@domain`:

    1. user+detail@domain   the address exactly as given        %1 = user+detail
    2. user++@domain        only if the detail is not empty     %1 user, %2 detail, %3 +detail
    3. user+*@domain        any detail, the empty one included  (same arguments)
    4. user@domain          the user, detail ignored
    5. ++@domain            any user, only a non-empty detail
    6. +*@domain            any user with a `+`
    7. @domain              anything in the domain

and for an address without `+`: `user@domain` (%1 = user), then `@domain` (%1 = user).

Why the `++` and `+*` rules read so: the m4 rule for `++` is `$+ + $+`, which needs at least one
token after the `+`, so `++` keys match only a non-empty detail; the rule for `+*` is `$+ + $*`,
which also matches nothing after the `+`. So `bob+@example.com` (a `+`, empty detail) skips 2
and 5 but matches 3, 4, 6 and 7, where %2 is empty and %3 is "+". An address with no `+` tries
no detail key at all. A local part that starts with `+` has no user, and is looked up as a
plain user. On the exact match (1) only %1 is given, the whole local part, so %2 and %3 expand to
nothing.

In the value, `%1`..`%9` become those arguments (empty when not given), `%0` the key that
matched, `%%` a `%` (sendmail's map_rewrite()).

`VirtUserTable.resolve` follows a result that is itself a virtual address, as sendmail does by
running the result through ruleset 0 again, and turns a loop into `554 5.4.6`.
"""

from __future__ import annotations

from mda.address import normalize, normalize_key, split
from mda.maps.cdb import LoadedMap, open_indexed, rebuild_index
from mda.maps.errors import Refusal, parse_error_spec
from mda.maps.makemap import parse_makemap

SCHEMA = "virtusertable/2"  # 2: keys stored in the canonical spelling
DEFAULT_PATH = "/etc/mail/virtusertable"
MAX_HOPS = 10


def rewrite(template: str, args: tuple[str, ...], key: str) -> str:
    """sendmail's map_rewrite(): `%n` -> nth argument ("" if none), `%0` -> key, `%%` -> `%`."""
    out: list[str] = []
    i = 0
    while i < len(template):
        c = template[i]
        if c == "%" and i + 1 < len(template):
            n = template[i + 1]
            if n == "0":
                out.append(key)
            elif "1" <= n <= "9":  # ASCII only, as map_rewrite(): "²".isdigit() is true
                k = int(n)
                out.append(args[k - 1] if k <= len(args) else "")
            elif n == "%":
                out.append("%")
            else:
                out.append(c + n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_virtusertable(text: str, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """makemap input with every key in the canonical spelling lookups use."""
    return parse_makemap(text, path, normalize_key)


def _split_address(address: str) -> tuple[str, str] | None:
    """(local part, domain) of the canonical spelling (`mda.address.normalize`), or None
    when the address has no local part or no domain."""
    value, domain = split(address)
    if not value or not domain:
        return None
    return normalize(address).rpartition("@")[0], domain


def candidates(address: str) -> list[tuple[str, tuple[str, ...], str]]:
    """The keys tried for `address`, in order: (key, %-arguments, what the key means)."""
    parts = _split_address(address)
    if parts is None:
        return []
    local, d = parts
    lower = local.lower()
    out: list[tuple[str, tuple[str, ...], str]] = [(f"{lower}@{d}", (local,), "the exact address")]
    user, plus, detail = local.partition("+")
    if plus and user:
        args = (user, detail, f"+{detail}")
        u = user.lower()
        if detail:
            out.append((f"{u}++@{d}", args, "this user with a non-empty +detail"))
        out.append((f"{u}+*@{d}", args, "this user with any +detail"))
        out.append((f"{u}@{d}", args, "this user, +detail ignored"))
        if detail:
            out.append((f"++@{d}", args, "any user with a non-empty +detail"))
        out.append((f"+*@{d}", args, "any user with a +detail"))
        out.append((f"@{d}", args, "anything in the domain"))
    else:
        out.append((f"@{d}", (local,), "anything in the domain"))
    return out


class VirtUserMatch:
    """The entry an address matched and what it maps to.

    address: the address looked up; key: the key that matched; reason: what that key means;
    value: the raw right-hand side; args: its %1.. arguments; result: the value rewritten;
    refusal: set when the value is `error:...` (or for a loop found by `resolve`).
    """

    __slots__ = ("address", "args", "key", "reason", "refusal", "result", "value")

    def __init__(
        self,
        address: str,
        key: str,
        reason: str,
        value: str,
        args: tuple[str, ...],
        result: str,
        refusal: Refusal | None,
    ) -> None:
        self.address = address
        self.key = key
        self.reason = reason
        self.value = value
        self.args = args
        self.result = result
        self.refusal = refusal

    @property
    def is_local(self) -> bool:
        """The result is a local name (no domain): it goes on to aliasing and local delivery."""
        return self.refusal is None and "@" not in self.result

    def describe(self) -> str:
        if self.refusal is not None:
            outcome = f"refused: {self.refusal.reply}"
        elif self.is_local:
            outcome = f"local name {self.result}"
        else:
            outcome = f"address {self.result}"
        if not self.key:
            return f"{self.address}: {outcome}"
        return f"{self.address}: matched {self.key} ({self.reason}) -> {outcome}"

    def __repr__(self) -> str:
        return f"VirtUserMatch({self.address!r}, key={self.key!r}, result={self.result!r})"


class VirtUserTable:
    """A virtusertable, opened through its compiled index (`<path>.cdb`)."""

    def __init__(
        self,
        path: str = DEFAULT_PATH,
        *,
        write_index: bool = True,
        index_path: str | None = None,
        trusted: frozenset[int] | None = None,
    ) -> None:
        self.path = path
        self.map: LoadedMap = open_indexed(
            path,
            parse_virtusertable,
            SCHEMA,
            index_path=index_path,
            write_index=write_index,
            trusted=trusted,
        )

    @property
    def warnings(self) -> list[str]:
        return self.map.warnings

    def lookup(self, address: str) -> VirtUserMatch | None:
        """The first matching entry in sendmail's order, or None."""
        for key, args, reason in candidates(address):
            value = self.map.get(key)
            if value is not None:
                return self._match(address, key, reason, value, args)
        return None

    @staticmethod
    def _match(
        address: str, key: str, reason: str, value: str, args: tuple[str, ...]
    ) -> VirtUserMatch:
        if value[:6].lower() == "error:":
            refusal = parse_error_spec(rewrite(value[6:], args, key))
            return VirtUserMatch(address, key, reason, value, args, "", refusal)
        return VirtUserMatch(address, key, reason, value, args, rewrite(value, args, key), None)

    def resolve(self, address: str, *, max_hops: int = MAX_HOPS) -> list[VirtUserMatch]:
        """Follow results that are themselves virtual addresses; the last hop is the outcome.

        An empty list: no entry. A loop, or more than `max_hops` hops, ends with a match
        carrying a `554 5.4.6` refusal.
        """
        hops: list[VirtUserMatch] = []
        seen = [normalize(address).lower()]
        current = address
        while True:
            match = self.lookup(current)
            if match is None:
                return hops
            hops.append(match)
            if match.refusal is not None or match.is_local:
                return hops
            nxt = normalize(match.result).lower()
            if nxt in seen or len(hops) >= max_hops:
                path = " -> ".join([*seen, nxt])
                refusal = Refusal("554", "5.4.6", f"virtusertable loop: {path}")
                hops.append(VirtUserMatch(match.result, "", "loop", "", (), "", refusal))
                return hops
            seen.append(nxt)
            current = match.result

    def explain(self, address: str) -> list[str]:
        """Every key tried for `address` and the outcome, for `mda check`."""
        tried = candidates(address)
        if not tried:
            return [f"{address}: not a user@domain address, virtusertable not used"]
        lines = [f"{address}: lookup in {self.path}"]
        for key, args, reason in tried:
            value = self.map.get(key)
            if value is None:
                lines.append(f"  {key}: no entry")
                continue
            lines.append(f"  {key}: {value} ({reason})")
            lines.append(self._match(address, key, reason, value, args).describe())
            return lines
        lines.append(f"{address}: no virtusertable entry")
        return lines


def makemap(
    path: str = DEFAULT_PATH,
    *,
    index_path: str | None = None,
    trusted: frozenset[int] | None = None,
) -> LoadedMap:
    """Rebuild the index of a virtusertable now (`makemap`); MapError if impossible."""
    return rebuild_index(path, parse_virtusertable, SCHEMA, index_path=index_path, trusted=trusted)
