"""IMAP SEARCH programs (mra/imap/search.py, searchkeys.py): the arguments of a SEARCH, read by
the real command reader, parsed and run over three messages.

Input: the text after `tag SEARCH ` (literals allowed, as `{n+}`); a CRLF is added.

Properties:
- parsing raises nothing but SearchError (BAD) and BadCharsetError (NO [BADCHARSET]);
- running a program raises nothing, and takes under a second (the fuzzer's timeout);
- `NOT (program)` matches exactly the messages the program does not, and `OR (p) (p)` the
  ones it does;
- a program that says it looks only at flags (`flags_only`) answers the same for two
  messages with the same flags and keywords, however else they differ; one that says it
  needs no message text (`needs_message`) never reads one.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main
    from mra.imap.arguments import ArgumentError
    from mra.imap.events import Command, NeedContinuation
    from mra.imap.parser import CommandReader
    from mra.imap.search import (
        BadCharsetError,
        MessageContext,
        SearchError,
        SearchProgram,
        Token,
        parse_search,
    )
    from mra.imap.searching import to_tokens

NOW = 1_715_556_600.0  # 2024-05-12 23:30 UTC
UTC = datetime.UTC
MESSAGES = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?Q2Fmw6k=?="
    b"\r\nDate: Mon, 6 May 2024 10:15:00 +0200\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"\r\nCaf\xc3\xa9 au lait, \xc3\x9feed\r\n",
    b'From: carol@example.net\nCc: "Dave" <dave@example.net>\nSubject: report\nMIME-Version:'
    b" 1.0\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Transfer-Encoding: "
    b"base64\n\naGVsbG8gd29ybGQ=\n--x--\n",
    b"Subject: nothing much\r\n\r\n",
)


def _loader(raw: bytes) -> Callable[[], bytes]:
    return lambda: raw


def contexts(flags: set[str], keywords: set[str], shift: int) -> list[MessageContext]:
    out = []
    for i in range(len(MESSAGES)):
        msg = MESSAGES[(i + shift) % len(MESSAGES)]
        out.append(
            MessageContext(
                uid=10 * (i + 1) + shift,
                seqno=i + 1,
                flags=flags if i != 1 else {"\\Seen"},
                keywords=keywords if i != 2 else {"$Junk"},
                internaldate=NOW - 86400 * (i + shift * 7),
                size=len(msg) + shift,
                loader=_loader(msg),
                savedate=NOW - 3600 * (i + shift) if i != 2 else None,
            )
        )
    return out


def program_tokens(data: bytes) -> list[Token] | None:
    reader = CommandReader()
    reader.authenticated = True
    events = reader.feed(b"S SEARCH " + data + b"\r\n")
    while events and isinstance(events[-1], NeedContinuation):
        events = events[:-1] + reader.accept_literal()
    commands = [e for e in events if isinstance(e, Command)]
    if not commands:
        return None
    try:
        return to_tokens(commands[0].args)  # type: ignore[return-value]
    except ArgumentError:
        return None


def parse(tokens: list[Token]) -> SearchProgram | None:
    try:
        return parse_search(tokens, now=NOW)
    except BadCharsetError:
        return None
    except SearchError:
        return None


def answers(program: SearchProgram, ctxs: list[MessageContext]) -> list[bool]:
    return [program.matches(c, UTC) for c in ctxs]


def test_one_input(data: bytes) -> None:
    tokens = program_tokens(data)
    if tokens is None:
        return
    program = parse(tokens)
    if program is None:
        return
    first = contexts({"\\Flagged", "\\Recent"}, {"$Label1"}, 0)
    got = answers(program, first)
    if not program.needs_message and any(c.loads for c in first):
        raise Finding(f"{tokens!r}: needs_message is False, yet a message was read")
    if program.flags_only:
        other = answers(program, contexts({"\\Flagged", "\\Recent"}, {"$Label1"}, 1))
        if other != got:
            raise Finding(f"{tokens!r} is flags_only, yet answers {got} and {other}")
    head: list[Token] = []
    rest = tokens
    if rest and isinstance(rest[0], bytes) and rest[0].upper() == b"CHARSET":
        head, rest = rest[:2], rest[2:]
    negated = parse([*head, b"NOT", list(rest)])
    if negated is None:
        raise Finding(f"NOT ({tokens!r}) does not parse")
    if answers(negated, contexts({"\\Flagged", "\\Recent"}, {"$Label1"}, 0)) != [
        not x for x in got
    ]:
        raise Finding(f"NOT ({tokens!r}) is not the complement of {got}")
    both = parse([*head, b"OR", list(rest), list(rest)])
    if both is None or answers(both, contexts({"\\Flagged", "\\Recent"}, {"$Label1"}, 0)) != got:
        raise Finding(f"OR ({tokens!r}) ({tokens!r}) does not answer {got}")


# The first text search builds the comparator's tables (a second, instrumented): before the
# fuzzer's clock starts, not in its first input's second.
test_one_input(b"OR BODY ko (TEXT caf\xc3\xa9 SUBJECT {4+}\r\nCaf\xc3)")

if __name__ == "__main__":
    main(test_one_input)
