"""Sieve (RFC 5228) for the mda: a small lexer, parser and interpreter of our own.

Decision: we do not build on `sievelib` (PyPI); we wrote our own. Reasons, from reading
sievelib 1.6.0 (the current release, still maintained) and trying it:

- It only parses; it has no interpreter, no message or address model, no implicit keep. The
  evaluator, which is most of the work and all of the risk, would be ours anyway.
- Its parse tree keeps strings raw: quoted strings keep their quotes and backslash escapes,
  `text:` strings keep the "text:" prefix, the final "." and the dot-stuffing; tag values
  (e.g. the comparator) sit, quoted, in a side table. We would have to re-lex every string.
- It does not cover what we need: no `:user`/`:detail` (subaddress), no `mailboxexists`, no
  "encoded-character"; `require` accepts any capability, so an unknown extension is not an
  error; no nesting limit. Patching that in means subclassing its command table anyway.
- Import cost, measured here with compiled bytecode: `import sievelib.parser` takes about
  40 ms (typing, typing_extensions, inspect, a 1200-line table of command classes), paid by
  every delivery that has a script. This package takes about 10 ms once `dataclasses` is
  loaded (the store imports it anyway; about 25 ms counting it): no `re`, no `email`, no
  `typing`; plain classes everywhere except the four action dataclasses (a dataclass costs
  about 1 ms to create).
- Its errors are a string attribute on the parser ("line N: ..."); we want an exception with
  the line as a field.

What is implemented: RFC 5228 in full (require, if/elsif/else, stop, keep, discard, redirect,
fileinto, envelope, header, address, exists, size, allof, anyof, not, true, false; :is,
:contains, :matches; :localpart/:domain/:all; "encoded-character") and every extension
Pigeonhole enables by default (`EXTENSIONS`, listed in parser.py with their RFCs): subaddress,
imap4flags, copy, mailbox, body, variables, vacation and vacation-seconds, reject and ereject,
date and index, relational, regex, include, duplicate, enotify (mailto), environment, mime,
foreverypart and extracttext, ihave, comparator-i;ascii-numeric; editheader, spamtest,
spamtestplus and virustest when the configuration enables them (`ALL_EXTENSIONS`,
`apply_extension_setting`).

The modules, in the order a script meets them: `lexer` (RFC 5228 8.1), `grammar` (8.2),
`checker` and `commands` (what each command and test means, checked once; `extensions` the
capabilities), `nodes` (the checked tree), `compiled` (the tree cached on disk),
`interpreter` with `evaltests`, `exttests` and `extcommands` (running it), `matching` and
`regex` (comparators and match types), `strings` (variables), `message`, `mime`, `params`
(the message as the tests see it), `timeparts`, `notify`, `spamtest`, `encode`; `actions` is
what comes out. `delivery`, `preload`, `send` and `tracking` are the delivery agent's side:
running the user's scripts for a delivery (from their cached compiled form when it is
current), sending vacation replies, notifications and rejections, and remembering what was
replied to.

Deliberate choices:

- imap4flags' optional variable name is a named set of flags that only setflag/addflag/
  removeflag and hasflag see, also without "variables" (RFC 5232 section 1 says it MUST be an
  error; we accept it, as before).
- `fileinto "INBOX"` (any case) is returned as `Keep`: it is the same mailbox (RFC 5228 4.3).
- Duplicates are merged (RFC 5228 section 2.10.3): one delivery per mailbox, the last flags
  win (RFC 5232 section 3); one redirect per address; one notification per method.
- The address test only looks at address headers (`message.ADDRESS_HEADERS`); on others it
  never matches (RFC 5228 section 5.1: "MUST restrict the address test to headers that
  contain addresses").
- Limits (`Limits`, defaults as Pigeonhole): script 1 MiB, nesting 32 blocks and 32 tests,
  32 actions, 4 redirects, includes 10 deep and 255 in all, variables of 4096 octets.
  Exceeding the script size or nesting is a SieveError; the others are SieveRuntimeErrors.
  Time is bounded by the caller (`cpulimit`), as Pigeonhole's sieve_max_cpu_time.
- Lexer leniencies (as Pigeonhole): LF alone ends a line; a hash comment may end the script.
  Line ends inside multi-line strings come out as LF.
- `mailboxexists` asks the caller's `mailbox_exists(name)` callback; without one only INBOX
  exists.

Use (import this package lazily, only when the user has a script):

    try:
        scripts = [parse(text, extensions=enabled) for text in texts]  # before, user, after
        msg = SieveMessage.from_bytes(raw)   # the header is parsed; the body when a test asks
        result = run_chain(scripts, msg, SieveEnvelope(sender, recipient), Context(...))
        actions = result.actions             # and result.tracks, to remember once delivered
    except SieveError as err:                # also SieveRuntimeError; err.line
        actions = [Keep()]                   # RFC 5228 section 2.10.6

Evaluation has no side effects; the caller performs the actions, in order (see `actions`;
`delivery` is the delivery agent's caller). `run_chain` documents the semantics of several
scripts (Pigeonhole's sieve_before/sieve_after); `evaluate(script, msg, env)` runs one.

Checking a script without running it (`mda sieve check`, ManageSieve's PUTSCRIPT and
CHECKSCRIPT): `check(text, extensions=...)` returns its errors, each with `.line` and
`.message`, and `format_error(name, err)` writes one as sievec does ("NAME:LINE: error:
MESSAGE"). `EXTENSIONS` is what a script may require by default, `ALL_EXTENSIONS` what the
engine implements, `delivery.extensions_for(config)` what the configuration enables.
"""

from __future__ import annotations

# The names below are imported on first use (PEP 562), not with the package: the delivery
# agent imports `mda.sieve.delivery`, which must not pay for the parser when the scripts are
# cached compiled (`compiled.py`), nor for what a script does not use.
_WHERE = {
    "Action": "actions",
    "Discard": "actions",
    "FileInto": "actions",
    "Keep": "actions",
    "Notify": "actions",
    "Redirect": "actions",
    "Reject": "actions",
    "Track": "actions",
    "Vacation": "actions",
    "DEFAULT_LIMITS": "errors",
    "Limits": "errors",
    "SieveError": "errors",
    "SieveRuntimeError": "errors",
    "Context": "interpreter",
    "MailboxExists": "interpreter",
    "Result": "interpreter",
    "evaluate": "interpreter",
    "evaluate_chain": "interpreter",
    "run_chain": "interpreter",
    "SieveEnvelope": "message",
    "SieveMessage": "message",
    "Script": "nodes",
    "ALL_EXTENSIONS": "extensions",
    "EXTENSIONS": "extensions",
    "apply_extension_setting": "extensions",
    "check": "parser",
    "format_error": "parser",
    "parse": "parser",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .actions import (
        Action,
        Discard,
        FileInto,
        Keep,
        Notify,
        Redirect,
        Reject,
        Track,
        Vacation,
    )
    from .errors import DEFAULT_LIMITS, Limits, SieveError, SieveRuntimeError
    from .extensions import ALL_EXTENSIONS, EXTENSIONS, apply_extension_setting
    from .interpreter import Context, MailboxExists, Result, evaluate, evaluate_chain, run_chain
    from .message import SieveEnvelope, SieveMessage
    from .nodes import Script
    from .parser import check, format_error, parse


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(f"{__name__}.{module}", fromlist=[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ALL_EXTENSIONS",
    "DEFAULT_LIMITS",
    "EXTENSIONS",
    "Action",
    "Context",
    "Discard",
    "FileInto",
    "Keep",
    "Limits",
    "MailboxExists",
    "Notify",
    "Redirect",
    "Reject",
    "Result",
    "Script",
    "SieveEnvelope",
    "SieveError",
    "SieveMessage",
    "SieveRuntimeError",
    "Track",
    "Vacation",
    "apply_extension_setting",
    "check",
    "evaluate",
    "evaluate_chain",
    "format_error",
    "parse",
    "run_chain",
]
