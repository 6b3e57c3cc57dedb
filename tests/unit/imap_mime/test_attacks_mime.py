"""Crafted messages against the MIME parser (issue #17; SECURITY.md, heading 1).

No test here measures time.  The work is counted instead: :func:`python_steps` counts the
Python lines executed inside ``mra.imap.mime`` while a function runs.  Octets skipped by
``bytes.find`` or a regular expression cost no step, a Python loop over them costs one per
turn; so "the steps for ``n`` and ``4 n`` are the same" says that the part of the input
that grows is handled in C, and "at most ``k`` more" that it costs a bounded number of
Python steps.  Recursion is checked by leaving the parser only a few frames of stack.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest

import mra.imap
from mra.imap import mime
from tests.unit.imap_mime import attacks

_MIME_FILES = os.path.join(os.path.dirname(mra.imap.__file__), "mime")  # the package or mime.py


def python_steps(fn: Callable[[], object]) -> int:
    """Lines of ``mra.imap.mime`` executed while ``fn`` runs."""
    steps = 0

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal steps
        if event == "line":
            steps += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        return local if frame.f_code.co_filename.startswith(_MIME_FILES) else None

    previous = sys.gettrace()
    sys.settrace(calls)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return steps


def everything(
    raw: bytes, sections: tuple[str, ...] = (), limits: mime.Limits = mime.DEFAULT_LIMITS
) -> Callable[[], object]:
    """What a client can ask of one message: FETCH ENVELOPE, BODY, BODYSTRUCTURE, sections;
    SEARCH on headers, bodies and text."""

    def run() -> object:
        part = mime.parse(raw, limits)
        out: list[object] = [
            mime.envelope(part),
            mime.bodystructure(part, True),
            mime.bodystructure(part, False),
            mime.header_values(part, "subject"),
            list(mime.all_header_texts(part)),
            list(mime.body_texts(part)),
        ]
        for spec in ("HEADER", "TEXT", "HEADER.FIELDS (SUBJECT TO)", "1", *sections):
            out.append(mime.section(part, spec))
        return out

    return run


def same_work(build: Callable[[int], bytes], n: int, slack: int = 0) -> tuple[int, int]:
    """Python steps of :func:`everything` for ``build(n)`` and ``build(4 n)``."""
    small = python_steps(everything(build(n)))
    large = python_steps(everything(build(4 * n)))
    assert large <= small + slack, (small, large)
    return small, large


@contextmanager
def little_stack(frames: int = 60) -> Iterator[None]:
    """Allow only ``frames`` more Python frames than the caller has: a parser that recurses
    once per nesting level fails, one that keeps its own stack does not."""
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


# ---------------------------------------------------------------------------------------------
# Long headers: a field, a folded field, many fields


def test_attack_one_huge_field_costs_no_step_per_octet() -> None:
    same_work(attacks.one_field, 50_000)


def test_attack_huge_content_fields_cost_no_step_per_octet() -> None:
    def build(size: int) -> bytes:
        big = b"x" * size
        return (
            b"MIME-Version: 1.0\nContent-Type: text/plain; name=" + big + b"\n"
            b"Content-Description: " + big + b"\nContent-ID: <" + big + b">\n"
            b"Content-Disposition: attachment; filename=" + big + b"\n"
            b"Content-Location: " + big + b"\nContent-MD5: " + big + b"\n\nbody\n"
        )

    same_work(build, 20_000)


def test_attack_folded_lines_cost_no_step_each() -> None:
    same_work(attacks.folded, 5_000)


def test_attack_fields_beyond_the_limit_are_one_unnamed_field() -> None:
    limits = mime.Limits(max_header_fields=100)

    def fields(count: int) -> Callable[[], object]:
        raw = attacks.tiny_fields(count) + b""
        return lambda: mime.envelope(mime.parse(raw, limits))

    assert python_steps(fields(1000)) == python_steps(fields(4000))
    raw = b"Subject: s\n" + b"x:\n" * 200 + b"To: a@b.example\n\nbody\n"
    part = mime.parse(raw, limits)
    assert len(part.fields) == 101
    rest = part.fields[-1]
    assert rest.name == b"" and rest.value_start == -1 and rest.end == part.header_end - 2
    assert mime.envelope(part).startswith(b'(NIL "s" NIL NIL NIL NIL')  # To is not seen
    # the octets of the header are all there, for HEADER and HEADER.FIELDS.NOT
    assert mime.section(part, "HEADER") == part.buf[: part.header_end]
    assert mime.section(part, "HEADER.FIELDS.NOT (SUBJECT)") == part.buf[12 : part.header_end]
    assert mime.Limits().max_header_fields == 100_000


def test_attack_header_values_are_cut_at_the_header_limits() -> None:
    limits = mime.Limits(max_header_block=1000, max_all_headers=1500)

    def envelope(count: int) -> Callable[[], object]:
        raw = attacks.addresses(count)
        return lambda: mime.envelope(mime.parse(raw, limits))

    assert python_steps(envelope(1000)) == python_steps(envelope(4000))
    part = mime.parse(attacks.addresses(1000), limits)
    # From's value takes the first 12 octets; To's is counted from the colon, the blank
    # after it included
    assert part.field_values("from") == [b"a@b.example"]
    to = part.field_values("to")[0]
    assert len(to) == 1000 - 12 - 1
    assert mime.envelope(part).count(b'"example.org"') == to.count(b"@") == 47
    # a field after the limit has an empty value; so do fields of the next headers once the
    # limit of the whole message is spent
    raw = b"Subject: " + b"s" * 999 + b"\nX-Later: v\n\nbody\n"
    assert mime.parse(raw, limits).field_values("x-later") == [b""]
    raw = b"Content-Type: message/rfc822\nX-A: " + b"a" * 1200 + b"\n\nX-B: " + b"b" * 600
    inner = mime.parse(raw + b"\n\nbody\n", limits).children[0]
    # the outer header keeps 1000 octets (16 of Content-Type, 984 of X-A), which leaves 500
    # to the message, of which X-B's value is all but the blank after the colon
    assert inner.field_values("x-b") == [b"b" * 499]
    # SEARCH sees the same cut values
    assert mime.header_values(inner, "x-b") == ["b" * 499]
    default = mime.Limits()
    assert (default.max_header_block, default.max_all_headers) == (10 << 20, 50 << 20)


# ---------------------------------------------------------------------------------------------
# Addresses, comments, encoded words


@pytest.mark.parametrize(
    "form",
    [
        b"%(local)s@%(domain)s",
        b'"%(name)s" <%(local)s@%(domain)s>',
        b"%(name)s <@%(domain)s:%(local)s@%(domain)s>",
        b"%(local)s@%(domain)s (%(name)s)",
        b'"%(local)s"@[%(domain)s]',
        b"%(name)s: %(local)s@%(domain)s, %(local)s@%(domain)s;",
        b"%(local)s.%(local)s @ %(domain)s . %(domain)s",
        b"%(name)s",
    ],
)
def test_attack_long_addresses_cost_no_step_per_octet(form: bytes) -> None:
    def build(size: int) -> bytes:
        words = {b"name": b"n" * size, b"local": b"l" * size, b"domain": b"d" * size}
        return b"To: " + b", ".join([form % words] * 50) + b"\n\nbody\n"

    same_work(build, 500)


def test_attack_nested_comments_cost_no_step_per_parenthesis() -> None:
    same_work(attacks.nested_comments, 10_000)
    alternating = b"To: a@b.example (" + b"()" * 10_000 + b")\n\nbody\n"
    assert python_steps(lambda: mime.envelope(alternating)) < 10_000 * 40


def test_attack_encoded_words_are_decoded_only_within_the_header_limit() -> None:
    limits = mime.Limits(max_header_block=2000)

    def search(count: int) -> Callable[[], object]:
        raw = attacks.encoded_words(count)
        return lambda: mime.header_values(mime.parse(raw, limits), "subject")

    assert python_steps(search(1000)) == python_steps(search(4000))
    words = mime.header_values(mime.parse(attacks.encoded_words(1000), limits), "subject")
    assert words[0].startswith("café" * 90)


# ---------------------------------------------------------------------------------------------
# Boundaries


def test_attack_lines_that_almost_match_cost_no_step_each() -> None:
    same_work(attacks.near_boundaries, 2_000)


def test_attack_dash_lines_in_a_body_cost_no_step_each() -> None:
    same_work(attacks.dash_lines, 5_000)


def test_attack_dash_lines_in_a_header_cost_the_same_whatever_the_nesting() -> None:
    def growth(depth: int) -> int:
        """The steps that 6000 more ``--`` header lines cost under ``depth`` multiparts."""
        few = attacks.dash_header_lines(2000, depth)
        many = attacks.dash_header_lines(8000, depth)
        return python_steps(lambda: mime.parse(many)) - python_steps(lambda: mime.parse(few))

    assert growth(80) == growth(5)


def test_attack_a_boundary_ending_in_cr_costs_no_step_per_line() -> None:
    same_work(attacks.cr_boundary, 5_000)
    part = mime.parse(attacks.cr_boundary(10))
    assert len(part.children) == 1 and part.children[0].body.count(b"--x\r\n") == 10


def test_attack_long_boundary_is_cut_at_80_octets() -> None:
    part = mime.parse(attacks.long_boundary(200, lines=5))
    # every line starting with the first 80 octets of the boundary is a boundary line
    assert len(part.children) == 6
    assert python_steps(lambda: mime.parse(attacks.long_boundary(200_000))) == python_steps(
        lambda: mime.parse(attacks.long_boundary(800_000))
    )


# ---------------------------------------------------------------------------------------------
# Nesting and parts


@pytest.mark.parametrize("build", [attacks.nested_multiparts, attacks.nested_messages])
def test_attack_deep_nesting_uses_no_stack(build: Callable[[int], bytes]) -> None:
    raw = build(1000)
    with little_stack():
        part = mime.parse(raw)
        everything(part.buf, (".".join(["1"] * 120),))()
        assert sum(1 for _ in part.walk()) >= 100


@pytest.mark.parametrize("build", [attacks.nested_multiparts, attacks.nested_messages])
def test_attack_nesting_limit_is_honoured_and_can_be_raised(build: Callable[[int], bytes]) -> None:
    def depth(part: mime.Part) -> int:
        levels = 0
        while part.children:
            part = part.children[-1] if part.multipart else part.children[0]
            levels += 1
        return levels

    raw = build(1000)
    assert depth(mime.parse(raw)) <= mime.Limits().max_nested_parts == 100
    assert depth(mime.parse(raw, mime.Limits(max_nested_parts=10))) <= 10
    raised = mime.Limits(max_nested_parts=5000)
    with little_stack():
        part = mime.parse(raw, raised)
        mime.bodystructure(part)
        assert depth(part) >= 1000


def test_attack_parts_beyond_the_limit_are_the_body_of_the_last() -> None:
    limits = mime.Limits(max_total_parts=50)
    part = mime.parse(attacks.siblings(1000), limits)
    assert len(part.children) == 49
    assert part.children[-1].body.endswith(b"999\r\n--x--\r\n")
    few, many = attacks.siblings(100), attacks.siblings(400)
    assert python_steps(lambda: mime.parse(few, limits)) == python_steps(
        lambda: mime.parse(many, limits)
    )


def test_attack_nested_messages_count_each_line_once() -> None:
    class Counted(bytes):
        """A message that counts the octets its ``count`` reads."""

        read = 0

        def count(self, sub: Any, start: Any = None, end: Any = None) -> int:
            stop = len(self) if end is None else end
            Counted.read += max(0, stop - (start or 0))
            return super().count(sub, start, end)

    raw = attacks.nested_messages_big_body(98, 200_000).replace(b"\n", b"\r\n")
    part = mime.parse(Counted(raw))
    assert isinstance(part.buf, Counted)
    Counted.read = 0
    mime.bodystructure(part)
    assert Counted.read <= 3 * len(raw)


# ---------------------------------------------------------------------------------------------
# Parameters


def test_attack_parameters_beyond_128_are_ignored() -> None:
    same_work(attacks.parameters, 1000)
    structure = mime.bodystructure(attacks.parameters(1000))
    assert b'"p127" "v"' in structure and b'"p128"' not in structure
    # a boundary after the 128th parameter is not seen (Dovecot's rfc2231_parse)
    params = b"".join(b"; p%d=v" % i for i in range(128))
    raw = b"Content-Type: multipart/mixed" + params + b"; boundary=x\n\n--x\n\nA\n--x--\n"
    assert mime.parse(raw).children == []
    assert mime.Limits().max_params == 128


def test_attack_rfc2231_index_of_many_digits() -> None:
    # An index is a C unsigned int in Dovecot: it wraps, and never becomes a huge integer
    # (quadratic to build, and too long to print: ValueError, a failed FETCH).
    structure = mime.bodystructure(attacks.rfc2231_index(20_000))
    sevens = 7 * ((pow(10, 20_000, 9 << 32) - 1) // 9) % (1 << 32)  # int("7" * 20000) % 2**32
    assert b'"name*%d*" "x"' % sevens in structure
    same_work(attacks.rfc2231_index, 20_000)


# ---------------------------------------------------------------------------------------------
# Values made of many small tokens: each costs a Python step, the message has a budget

MANY_TOKENS: dict[str, Callable[[int], bytes]] = {
    "4-octet addresses": lambda n: b"To: " + b"a@b," * n + b"\n\nbody\n",
    "commas": lambda n: b"To: " + b"," * n + b"\n\nbody\n",
    "comments": lambda n: b"To: a@b" + b" ()" * n + b"\n\nbody\n",
    "route domains": lambda n: b"To: <" + b"@a," * n + b"@b:c@d>\n\nbody\n",
    "route commas": lambda n: b"To: <@a" + b"," * n + b"@b:c@d>\n\nbody\n",
    "quoted pairs": lambda n: b'To: "' + b"\\a" * n + b'" <a@b>\n\nbody\n',
    "phrase words": lambda n: b"To: " + b"a " * n + b"<a@b>\n\nbody\n",
    "dot atoms": lambda n: b"To: a@" + b"b." * n + b"c\n\nbody\n",
    "groups": lambda n: b"To: " + b"g:;" * n + b"\n\nbody\n",
    "languages": lambda n: b"MIME-Version: 1.0\nContent-Language: " + b"a," * n + b"\n\nbody\n",
    "broken parameters": lambda n: b"Content-Type: text/plain" + b"; =" * n + b"\n\nbody\n",
    "encoded words": lambda n: b"Subject: " + b"=?a?q?b?= " * n + b"\n\nbody\n",
}


@pytest.mark.parametrize("name", list(MANY_TOKENS))
def test_attack_many_small_tokens_stop_at_the_budget(name: str) -> None:
    limits = mime.Limits(max_tokens=300)
    few = everything(MANY_TOKENS[name](1000), limits=limits)
    many = everything(MANY_TOKENS[name](4000), limits=limits)
    assert python_steps(few) == python_steps(many)
    assert mime.Limits().max_tokens == 250_000
