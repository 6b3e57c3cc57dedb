"""sendmail's access map (/etc/mail/access): who may send to whom.

Format: makemap input (`mda.maps.makemap`). Keys carry a tag, `From:`, `To:` or `Connect:`
(others, such as `Spam:`, are kept and can be searched for); an untagged key is sendmail's
pre-8.10 form and applies to every tag. Values (cf/README, "The access database"):

    OK                  accept, overriding other rules (for local recipients: not relaying)
    RELAY               accept and allow relaying; an implicit OK
    REJECT              refuse with the default text, see below
    DISCARD             accept and throw away
    SKIP                stop searching this domain or network: no decision, the default applies
    ERROR:[D.S.N:]### text     refuse with this reply; the text may be quoted: ERROR:"### text"
    QUARANTINE:reason   accept and hold
    ### text            the deprecated form of ERROR:### text

Keys and the addresses looked up are both in the canonical spelling of `mda.address` (quoting
and escapes of the local part removed where not needed, the domain lower-cased without a
trailing dot and in IDNA A-labels): `To:bob@example.test REJECT` also refuses
`"bob"@example.test` and `\\bob@Example.TEST.`, and `From:bücher.example` the punycode
spelling of that domain.

Searching follows the generated rulesets (cf/m4/proto.m4: check_mail, Basic_check_rcpt with
blacklist_recipients, check_relay, and the helpers F, U, D, A, SearchList). For each search
step, every key is tried with the tag, then without it, before the next key:

- F (full address): `user+detail@domain`, then `user+*@domain`, then `user@domain`.
- U (user): `user+detail@`, `user+*@`, `user@` (a trailing `@` marks a user key).
- D (domain): `sub.example.com`, `example.com`, `com`; `[1.2.3.4]`, `[1.2.3]`, ...
- A (address): `192.168.1.2`, `192.168.1`, `192.168`, `192`; IPv6 by `:` groups.

and the steps are: sender (`From:`) F, U, D; recipient (`To:`) F, U (local domains only), D;
client (`Connect:`) D on the host name, then A on the IP address.

SKIP ends a D or A walk, and the search goes on with the next step (for Connect:, the IP
address is still looked up after the host name said SKIP). cf/README allows SKIP only for
host/domain names and networks; on an address key it is taken here as "no decision", which is
what the recipient rules do with it.

REJECT's text is sendmail's default: `550 5.7.1 Access denied` (confREJECT_MSG) for senders and
clients, `550 5.2.1 Mailbox disabled for this recipient` (confRCPTREJ_MSG) for recipients.
"""

from __future__ import annotations

from mda.address import normalize, normalize_domain, normalize_key
from mda.maps.cdb import LoadedMap, open_indexed, rebuild_index
from mda.maps.errors import Refusal, is_dsn, make_refusal, split_reply
from mda.maps.makemap import parse_makemap

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Literal

    Action = Literal["OK", "RELAY", "REJECT", "DISCARD", "SKIP", "ERROR", "QUARANTINE"]
    StepKind = Literal["F", "U", "D", "A", "E"]

SCHEMA = "access/2"  # 2: keys stored in the canonical spelling
DEFAULT_PATH = "/etc/mail/access"

REJECT_DEFAULT = Refusal("550", "5.7.1", "Access denied")
RCPT_REJECT_DEFAULT = Refusal("550", "5.2.1", "Mailbox disabled for this recipient")
_SIMPLE: dict[str, Action] = {"OK": "OK", "RELAY": "RELAY", "DISCARD": "DISCARD", "SKIP": "SKIP"}


class AccessDecision:
    """What the access map says: an action and, for REJECT and ERROR, the refusal.

    key is the key that matched (lower-cased, with its tag if it had one), value the raw value,
    tag the tag searched for. text holds the reason of a QUARANTINE.
    """

    __slots__ = ("action", "key", "refusal", "tag", "text", "value")

    def __init__(
        self,
        action: Action,
        *,
        refusal: Refusal | None = None,
        text: str = "",
        key: str = "",
        value: str = "",
        tag: str = "",
    ) -> None:
        self.action: Action = action
        self.refusal = refusal
        self.text = text
        self.key = key
        self.value = value
        self.tag = tag

    @property
    def permanent(self) -> bool:
        """A permanent refusal: REJECT, or an ERROR with a 5xx code."""
        return self.refusal is not None and self.refusal.permanent

    @property
    def temporary(self) -> bool:
        """A temporary refusal: an ERROR with a 4xx code."""
        return self.refusal is not None and self.refusal.temporary

    def describe(self) -> str:
        what = self.action if self.refusal is None else f"{self.action} {self.refusal.reply}"
        if self.action == "QUARANTINE":
            what += f" ({self.text})"
        return f"{what} (key {self.key}: {self.value})" if self.key else what

    def __repr__(self) -> str:
        return f"AccessDecision({self.action!r}, refusal={self.refusal!r}, key={self.key!r})"


def parse_value(value: str, tag: str = "") -> AccessDecision:
    """Interpret an access map value found under `tag` (which picks REJECT's default text)."""
    v = value.strip()
    word = v.upper()
    simple = _SIMPLE.get(word)  # sendmail matches ruleset literals case-insensitively
    if simple is not None:
        return AccessDecision(simple, value=v, tag=tag)
    if word == "REJECT":
        default = RCPT_REJECT_DEFAULT if tag.lower() == "to" else REJECT_DEFAULT
        return AccessDecision("REJECT", refusal=default, value=v, tag=tag)
    if word.startswith("QUARANTINE:"):
        return AccessDecision("QUARANTINE", text=v[11:].strip(), value=v, tag=tag)
    if word.startswith("ERROR:"):
        rest = v[6:].strip()
        dsn: str | None = None
        head, sep, tail = rest.partition(":")
        if sep and is_dsn(head.strip()):
            dsn, rest = head.strip(), tail
        code, text_dsn, text = split_reply(rest)
        refusal = make_refusal(code, dsn or text_dsn, text or "Access denied")
        return AccessDecision("ERROR", refusal=refusal, value=v, tag=tag)
    # `### text` (deprecated) and anything else: sendmail hands the value to its error mailer
    # ("generic error from access db").
    code, dsn, text = split_reply(v)
    return AccessDecision("ERROR", refusal=make_refusal(code, dsn, text or v), value=v, tag=tag)


def _address_keys(address: str) -> list[str]:
    """F and U keys: the address, then `user+*` and `user` forms when there is a +detail."""
    local, at, domain = address.rpartition("@")
    if not at:
        return [address]
    user, plus, _ = local.partition("+")
    if plus and user:
        return [address, f"{user}+*@{domain}", f"{user}@{domain}"]
    return [address]


def _domain_walk(domain: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `b.c`, `c`]; `[1.2.3.4]` -> [`[1.2.3.4]`, `[1.2.3]`, `[1.2]`, `[1]`]."""
    if domain.startswith("[") and domain.endswith("]"):
        return [f"[{net}]" for net in _net_walk(domain[1:-1])]
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


def _net_walk(addr: str) -> list[str]:
    """`1.2.3.4` -> [`1.2.3.4`, `1.2.3`, `1.2`, `1`]; IPv6 drops one `:` group at a time."""
    out = [addr]
    while True:
        sep = ":" if ":" in addr else "."
        cut = addr.rfind(sep)
        if cut <= 0:
            return out
        addr = addr[:cut]
        if addr.endswith(":"):  # `1:2::3` -> `1:2`, as the A ruleset strips `::$-`
            addr = addr[:-1]
        if not addr or addr.lower() == "ipv6":
            return out
        out.append(addr)


def _tagged_key(key: str) -> str:
    """An access key in canonical form: the tag (`from:`, `to:`, `connect:`...) kept, the
    address or domain after it normalised (`IPv6:` is part of an address, not a tag)."""
    tag, colon, rest = key.partition(":")
    if colon and tag.isalpha() and tag != "ipv6":
        return f"{tag}:{normalize_key(rest)}"
    return normalize_key(key)


def parse_access(text: str, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """makemap input with every key in canonical form."""
    return parse_makemap(text, path, _tagged_key)


class AccessMap:
    """An access map, opened through its compiled index (`<path>.cdb`)."""

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
            parse_access,
            SCHEMA,
            index_path=index_path,
            write_index=write_index,
            trusted=trusted,
        )

    @property
    def warnings(self) -> list[str]:
        return self.map.warnings

    def lookup(self, tag: str, key: str, *, untagged: bool = True) -> tuple[str, str] | None:
        """(matched key, value) for `Tag:key`, then (if `untagged`) for the bare key."""
        key = key.lower()
        keys = [f"{tag.lower()}:{key}", key] if untagged else [f"{tag.lower()}:{key}"]
        for k in keys:
            value = self.map.get(k)
            if value is not None:
                return k, value
        return None

    def search(
        self,
        tag: str,
        steps: Sequence[tuple[StepKind, str]],
        *,
        untagged: bool = True,
        trace: list[str] | None = None,
    ) -> AccessDecision | None:
        """Run sendmail's SearchList: each step's keys in order; the first entry found decides.

        None means no entry applies (or a SKIP): the default action.
        """
        for kind, item in steps:
            item = item.strip().lower().rstrip(".")
            if not item:
                continue
            if kind in ("F", "U"):
                keys = _address_keys(item)
            elif kind == "D":
                keys = _domain_walk(normalize_domain(item))
            elif kind == "A":
                keys = _net_walk(item)
            else:
                keys = [item]
            for key in keys:
                found = self.lookup(tag, key, untagged=untagged)
                if trace is not None:
                    trace.append(f"  {kind} {tag}:{key}: {found[1] if found else 'no entry'}")
                if found is None:
                    continue
                decision = parse_value(found[1], tag)
                decision.key = found[0]
                if decision.action != "SKIP":
                    return decision
                if kind in ("D", "A"):
                    break  # SKIP ends this walk; the next step still runs
                return None
        return None

    def check_sender(
        self, address: str, *, trace: list[str] | None = None
    ) -> AccessDecision | None:
        """`From:` checks for an envelope sender (check_mail): F, U, D. `<>` is never checked."""
        addr = normalize(address)
        if not addr:
            return None  # RFC 1123: the null sender must be accepted
        local, at, domain = addr.rpartition("@")
        steps: list[tuple[StepKind, str]] = [("U", f"{addr}@")]
        if at:
            steps = [("F", addr), ("U", f"{local}@"), ("D", domain)]
        return self.search("From", steps, trace=trace)

    def check_recipient(
        self, address: str, *, local: bool = True, trace: list[str] | None = None
    ) -> AccessDecision | None:
        """`To:` checks for a recipient (blacklist_recipients): F, U if the domain is ours, D."""
        addr = normalize(address)
        if not addr:
            return None
        user, at, domain = addr.rpartition("@")
        steps: list[tuple[StepKind, str]]
        if at:
            steps = [("F", addr)]
            if local:
                steps.append(("U", f"{user}@"))
            steps.append(("D", domain))
        else:
            steps = [("U", f"{addr}@")]
        return self.search("To", steps, trace=trace)

    def check_connect(
        self, hostname: str | None, ip: str | None, *, trace: list[str] | None = None
    ) -> AccessDecision | None:
        """`Connect:` checks for an SMTP client (check_relay): D on its name, A on its address."""
        steps: list[tuple[StepKind, str]] = []
        if hostname:
            steps.append(("D", hostname))
        if ip:
            steps.append(("A", ip))
        return self.search("Connect", steps, trace=trace)

    def explain(self, tag: str, address: str) -> list[str]:
        """The keys tried for a `From` or `To` check of `address` and the outcome."""
        trace: list[str] = []
        if tag.lower() == "from":
            decision = self.check_sender(address, trace=trace)
        else:
            decision = self.check_recipient(address, trace=trace)
        outcome = decision.describe() if decision else "no entry: default action"
        return [f"{tag}:{address}: lookup in {self.path}", *trace, f"{tag}:{address}: {outcome}"]


def makemap(
    path: str = DEFAULT_PATH,
    *,
    index_path: str | None = None,
    trusted: frozenset[int] | None = None,
) -> LoadedMap:
    """Rebuild the index of an access map now (`makemap`); MapError if impossible."""
    return rebuild_index(path, parse_access, SCHEMA, index_path=index_path, trusted=trusted)
