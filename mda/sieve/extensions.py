"""The extensions (capabilities) the engine implements and which of them a script may
`require` by default: apart from the parser, so that a delivery whose scripts are cached
compiled (`compiled`) works out its extension set without importing the parser."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# Every capability the engine implements (RFC 5228 section 6: case-sensitive). The two
# built-in comparators may be required but need not be (section 6.1).
ALL_EXTENSIONS = frozenset(
    {
        "fileinto",  # RFC 5228 section 4.1
        "envelope",  # RFC 5228 section 5.4
        "encoded-character",  # RFC 5228 section 2.4.2.4
        "comparator-i;octet",
        "comparator-i;ascii-casemap",
        "comparator-i;ascii-numeric",  # RFC 4790 section 9.1
        "subaddress",  # RFC 5233
        "imap4flags",  # RFC 5232
        "copy",  # RFC 3894
        "mailbox",  # RFC 5490 section 3
        "body",  # RFC 5173
        "variables",  # RFC 5229
        "vacation",  # RFC 5230
        "vacation-seconds",  # RFC 6131
        "reject",  # RFC 5429
        "ereject",  # RFC 5429
        "date",  # RFC 5260
        "index",  # RFC 5260 section 6
        "relational",  # RFC 5231
        "regex",  # draft-ietf-sieve-regex-01
        "include",  # RFC 6609
        "duplicate",  # RFC 7352
        "enotify",  # RFC 5435, with the mailto method (RFC 5436)
        "environment",  # RFC 5183
        "mime",  # RFC 5703 section 4
        "foreverypart",  # RFC 5703 section 3
        "extracttext",  # RFC 5703 section 7
        "ihave",  # RFC 5463
        "editheader",  # RFC 5293
        "spamtest",  # RFC 5235
        "spamtestplus",
        "virustest",
    }
)

# What a script may require when the configuration says nothing: as Pigeonhole, every
# extension but editheader (which lets a user's script rewrite headers other filters trust)
# and the spam and virus tests (which mean nothing until the scanner's header is configured).
CONFIGURED_ONLY = frozenset({"editheader", "spamtest", "spamtestplus", "virustest"})
EXTENSIONS = ALL_EXTENSIONS - CONFIGURED_ONLY


def apply_extension_setting(
    words: Iterable[str], base: frozenset[str] = EXTENSIONS
) -> frozenset[str]:
    """Pigeonhole's `sieve_extensions`: "+name" adds to the default set, "-name" removes
    from it, a bare name list replaces it. Raises ValueError for a name we do not know."""
    words = list(words)
    unknown = [w for w in words if w.lstrip("+-") not in ALL_EXTENSIONS]
    if unknown:
        raise ValueError(f"unknown Sieve extension {unknown[0].lstrip('+-')!r}")
    bare = [w for w in words if not w.startswith(("+", "-"))]
    enabled = set(bare) if bare else set(base)
    for word in words:
        if word.startswith("+"):
            enabled.add(word[1:])
        elif word.startswith("-"):
            enabled.discard(word[1:])
    return frozenset(enabled)
