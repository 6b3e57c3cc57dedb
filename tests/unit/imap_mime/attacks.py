"""Crafted messages that attack the MIME parser (issue #17), one builder per attack.

Each builder takes a size (octets, lines, levels or parts, as its name says) so that a test
can compare the work done for ``n`` and ``4 n`` (``test_attacks_mime.py``) and
``measure_attacks.py`` can time the 40 MB versions.  Line ends are LF, as most stored
messages have them; the parser converts them.
"""

from __future__ import annotations


def one_field(size: int) -> bytes:
    """A header of ``size`` octets in a single Subject field."""
    return b"Subject: " + b"a" * size + b"\n\nbody\n"


def many_fields(size: int, fields: int = 100_000) -> bytes:
    """A header of about ``size`` octets in ``fields`` fields."""
    width = max(1, size // fields - 8)
    line = b"X-F: " + b"v" * width + b"\n"
    return line * fields + b"\nbody\n"


def tiny_fields(count: int) -> bytes:
    """``count`` fields of three octets: the most fields per octet."""
    return b"x:\n" * count + b"\nbody\n"


def folded(lines: int) -> bytes:
    """One Subject folded over ``lines`` continuation lines."""
    return b"Subject: start\n" + b" w\n" * lines + b"\nbody\n"


def addresses(count: int) -> bytes:
    """A To field of ``count`` addresses, about 20 octets each."""
    listed = b", ".join(b"u%06d@example.org" % (i % 1_000_000) for i in range(count))
    return b"From: a@b.example\nTo: " + listed + b"\n\nbody\n"


def short_addresses(count: int) -> bytes:
    """A To field of ``count`` addresses of four octets each, the most addresses per octet."""
    return b"To: " + b"a@b," * count + b"\n\nbody\n"


def named_addresses(count: int) -> bytes:
    """A To field of ``count`` addresses with display names, which take the long road."""
    listed = b", ".join(b'"Name %d" <u%d@example.org>' % (i, i) for i in range(count))
    return b"To: " + listed + b"\n\nbody\n"


def nested_comments(depth: int) -> bytes:
    """An address followed by a comment nested ``depth`` deep."""
    return b"To: a@b.example " + b"(" * depth + b"x" + b")" * depth + b"\n\nbody\n"


def encoded_words(count: int) -> bytes:
    """A Subject of ``count`` RFC 2047 encoded words."""
    return b"Subject: " + b" ".join([b"=?utf-8?q?caf=C3=A9?="] * count) + b"\n\nbody\n"


def nested_multiparts(depth: int) -> bytes:
    """Multiparts nested ``depth`` deep, each holding the next, closed at the end."""
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth)
    )
    tail = b"".join(b"\n--b%d--\n" % i for i in reversed(range(depth)))
    return b"MIME-Version: 1.0\n" + head + b"Content-Type: text/plain\n\nleaf\n" + tail


def nested_messages(depth: int) -> bytes:
    """message/rfc822 parts nested ``depth`` deep."""
    return b"Content-Type: message/rfc822\n\n" * depth + b"Subject: end\n\nleaf\n"


def nested_messages_big_body(depth: int, size: int) -> bytes:
    """message/rfc822 nested ``depth`` deep around a body of ``size`` octets of short lines."""
    return nested_messages(depth) + b"line\n" * (size // 5)


def siblings(count: int) -> bytes:
    """A multipart of ``count`` parts."""
    parts = b"".join(b"--x\nContent-Type: text/plain\n\n%d\n" % i for i in range(count))
    return b"Content-Type: multipart/mixed; boundary=x\n\n" + parts + b"--x--\n"


def dash_lines(lines: int, depth: int = 50) -> bytes:
    """``depth`` open multiparts, then a body of ``lines`` short lines starting with ``--``
    that match none of their boundaries."""
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth)
    )
    return head + b"\n" + b"--x\n" * lines


def dash_header_lines(lines: int, depth: int = 50) -> bytes:
    """``depth`` open multiparts, then a part whose header has ``lines`` lines starting with
    ``--`` that match none of the boundaries."""
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i) for i in range(depth)
    )
    return head + b"--x\n" * lines + b"\nbody\n"


def near_boundaries(lines: int, depth: int = 90) -> bytes:
    """``depth`` open multiparts with 73-octet boundaries sharing 70 octets, then ``lines``
    body lines that share those 70 octets too and match none."""
    bounds = [b"b" * 70 + b"%03d" % i for i in range(depth)]
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=" + b + b"\n\n--" + b + b"\n" for b in bounds
    )
    return head + b"\n" + (b"--" + b"b" * 72 + b"\n") * lines


def long_boundary(size: int, lines: int = 20) -> bytes:
    """A boundary of ``size`` octets and ``lines`` lines that repeat all of it but one."""
    b = b"q" * size
    return (
        b"Content-Type: multipart/mixed; boundary="
        + b
        + b"\n\n--"
        + b
        + b"\n\n"
        + (b"--" + b[:-1] + b"\n") * lines
    )


def parameters(count: int) -> bytes:
    """A Content-Type with ``count`` parameters."""
    params = b"".join(b"; p%d=v" % i for i in range(count))
    return b"Content-Type: text/plain" + params + b"\n\nbody\n"


def rfc2231_index(digits: int) -> bytes:
    """An RFC 2231 continuation whose index has ``digits`` digits."""
    return b"Content-Type: text/plain; name*" + b"7" * digits + b"*=x\n\nbody\n"


def cr_boundary(lines: int) -> bytes:
    """A boundary ending in CR (quoted), and ``lines`` lines that are that boundary: the CR
    is their line end, so none of them is a boundary line."""
    return (
        b'Content-Type: multipart/mixed; boundary="x\r"\r\n\r\n--x\rA\r\n\r\n' + b"--x\r\n" * lines
    )
