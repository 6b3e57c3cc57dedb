"""RFC 822 / RFC 2045 / RFC 2231 tokens of one header value, read the way Dovecot 2.3's
``lib-mail/rfc822-parser.c`` and ``rfc2231-parser.c`` read them.

:class:`Tokenizer` is a cursor over one (unfolded or folded) value.  Its methods follow
Dovecot's return convention: 1 (more data follows), 0 (end of data), -1 (invalid), and each
skips the blanks and comments after a token.  Nothing here raises on bad input: a broken
value gives -1 and the caller decides what Dovecot would have made of it.  Used by the
message parser (Content-Type and its boundary), :mod:`._partdata` (the Content-* fields for
BODYSTRUCTURE) and :mod:`._address` (ENVELOPE addresses).

The cost rule (SECURITY.md, heading 1): octets are skipped by regular expressions, in C,
never one Python step per octet; a Python step is spent only per token, and every token
spends one step of the message's :class:`Work` (``Limits.max_tokens``), so a value made of
millions of tiny tokens ("a,a,a", "()()", "\\a\\a") stops costing once the budget is spent.
The character classes below are Dovecot's ``rfc822_atext_chars`` table, written as regular
expressions; tests/unit/imap_mime/test_mime.py checks they are the same.
"""

from __future__ import annotations

import re

__all__ = ["ATEXT", "Tokenizer", "Work"]

# rfc822_atext_chars: 1 = atext, 2 = alpha/digit/8-bit, 4 = atext but a MIME tspecial
_ATEXT = bytearray(256)
for _c in b"!#$%&'*+-^_`{|}~":
    _ATEXT[_c] = 1
for _c in b"/=?":
    _ATEXT[_c] = 4
for _c in range(256):
    if (chr(_c).isalnum() and _c < 128) or _c >= 128:
        _ATEXT[_c] = 2
ATEXT = bytes(_ATEXT)

# The same classes as regular expressions, for runs of octets.
_ATOM_RUN = re.compile(rb"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]*")  # ATEXT
_ATOM_OR_DOT_RUN = re.compile(rb"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff.]*")
_TOKEN_RUN = re.compile(rb"[A-Za-z0-9!#$%&'*+\-^_`{|}~\x80-\xff.]*")  # ATEXT & 3, or "."
_DOT_RUN = re.compile(rb"\.*")
_LWSP_RUN = re.compile(rb"[ \t\r\n]*")
_BROKEN_VALUE_RUN = re.compile(rb"[^; \t\r\n]*")
_DIGIT_RUN = re.compile(rb"[0-9]*")
_QUOTED_STOP = re.compile(rb'["\n\\]')
_COMMENT_STOP = re.compile(rb"[()\n\\]")
_LITERAL_STOP = re.compile(rb"[\\\]]")
_OPEN_RUN = re.compile(rb"\(*")
_CLOSE_RUN = re.compile(rb"\)*")
_UINT_MASK = 0xFFFFFFFF  # Dovecot's RFC 2231 index is a C unsigned int


def _c_uint(digits: bytes) -> int:
    """The decimal ``digits`` as Dovecot's unsigned int holds them: modulo 2**32, which only
    the last 32 digits decide (10**32 is a multiple of 2**32).  A megabyte of digits must
    not become a megabyte-long Python integer."""
    return int(digits[-32:] or b"0") & _UINT_MASK


class Work:
    """The steps left for reading the header values of one parsed message (its
    ``Limits.max_tokens``), shared by every value read from it."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


class Tokenizer:
    """A cursor over one header value.  Methods return 1 (more data follows), 0 (end of
    data) or -1 (invalid), like Dovecot's, and skip blanks and comments after a token.

    Runs of octets are skipped in C; what costs a Python step is a token: a comment, an
    escape or a fold in a quoted string, a word of a phrase, an atom of a dot-atom, and,
    for the callers, a parameter, a language or an address.  Each takes one step of
    ``work``; once it is spent the value reads as if it ended there (:meth:`spend`)."""

    __slots__ = ("comment", "d", "i", "n", "work")

    def __init__(self, data: bytes, work: Work, keep_comment: bool = False) -> None:
        self.d = data
        self.i = 0
        self.n = len(data)
        self.work = work
        self.comment: bytearray | None = bytearray() if keep_comment else None

    def at(self, c: int) -> bool:
        return self.i < self.n and self.d[self.i] == c

    def spend(self) -> bool:
        """Take a step; once none is left, move to the end of the value and say so."""
        self.work.left -= 1
        if self.work.left >= 0:
            return True
        self.i = self.n
        return False

    def skip_comment(self) -> int:
        """Skip a comment, nested ones included (kept in ``comment`` if asked, folding
        and quoting removed).  Runs of other octets and of parentheses cost one step."""
        d, n = self.d, self.n
        comment = self.comment
        if comment is not None:
            comment.clear()
        i = self.i + 1
        start = i
        level = 1
        while True:
            m = _COMMENT_STOP.search(d, i)
            if m is None or not self.spend():
                self.i = n
                return -1
            j = m.start()
            c = d[j]
            if c == 0x28:
                i = _OPEN_RUN.match(d, j).end()  # type: ignore[union-attr]
                level += i - j
            elif c == 0x29:
                run = _CLOSE_RUN.match(d, j).end() - j  # type: ignore[union-attr]
                if run >= level:
                    j += level - 1  # the parenthesis that closes the comment
                    if comment is not None:
                        comment += d[start:j]
                    self.i = j + 1
                    return 1 if self.i < n else 0
                level -= run
                i = j + run
            elif c == 0x0A:
                if j + 2 < n and comment is not None:  # folding: drop the (CR)LF
                    stop = j - 1 if j > start and d[j - 1] == 0x0D else j
                    comment += d[start:stop]
                    start = j + 1
                i = j + 1
            else:  # a backslash
                i = j + 1
                if i >= n:
                    self.i = i
                    return -1
                if comment is not None:
                    comment += d[start:j]
                if d[i] in b"\r\n\0":  # no quoted-pair: the backslash stays
                    start = j
                    continue
                start = i
                i += 1

    def skip_lwsp(self) -> int:
        d, n = self.d, self.n
        while True:
            self.i = _LWSP_RUN.match(d, self.i).end()  # type: ignore[union-attr]
            if self.i >= n or d[self.i] != 0x28:
                return 1 if self.i < n else 0
            if self.skip_comment() < 0:
                return -1

    def atom(self, out: bytearray) -> int:
        d, n, start = self.d, self.n, self.i
        if start >= n or not ATEXT[d[start]]:
            return -1
        self.i = _ATOM_RUN.match(d, start).end()  # type: ignore[union-attr]
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def dot_atom(self, out: bytearray) -> int:
        """A strict dot-atom (no empty atom between dots), blanks allowed around dots."""
        d, n = self.d, self.n
        if self.i >= n or not ATEXT[d[self.i]]:
            return -1
        while True:
            start = self.i
            if not self.spend():
                return 0
            self.i = _ATOM_RUN.match(d, start).end()  # type: ignore[union-attr]
            if self.i == start:
                return -1  # nothing after a dot
            out += d[start : self.i]
            if self.i >= n:
                return 0
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if d[self.i] != 0x2E:
                return 1
            self.i += 1
            out += b"."
            if self.skip_lwsp() <= 0:
                return -1  # a trailing dot

    def loose_dot_atom(self, out: bytearray) -> int:
        """A local-part with any dots (".a", "a.", "a..b"), as real mail has them."""
        d, n = self.d, self.n
        ret = -1
        while True:
            if not self.spend():
                return 0
            dots = _DOT_RUN.match(d, self.i).end()  # type: ignore[union-attr]
            if dots > self.i:
                out += d[self.i : dots]
                self.i = dots
                if dots >= n:
                    return 0
                ret = 1
            if self.i < n and d[self.i] == 0x40:
                break
            ret = self.atom(out)
            if not (ret > 0 and d[self.i] == 0x2E):
                break
        return ret

    def mime_token(self, out: bytearray) -> int:
        d, n, start = self.d, self.n, self.i
        self.i = _TOKEN_RUN.match(d, start).end()  # type: ignore[union-attr]
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def quoted_string(self, out: bytearray) -> int:
        d, n = self.d, self.n
        i = self.i + 1  # after the opening quote
        start = i
        while True:
            m = _QUOTED_STOP.search(d, i)
            if m is None or not self.spend():
                self.i = n
                return -1
            j = m.start()
            c = d[j]
            if c == 0x22:
                out += d[start:j]
                self.i = j + 1
                return self.skip_lwsp()
            if c == 0x0A:
                if j + 2 < n:  # folding: drop the (CR)LF
                    stop = j - 1 if j > start and d[j - 1] == 0x0D else j
                    out += d[start:stop]
                    start = j + 1
                i = j + 1
                continue
            i = j + 1  # a backslash
            if i >= n:
                self.i = i
                return -1
            out += d[start:j]
            if d[i] in b"\r\n\0":  # no quoted-pair: the backslash stays
                start = j
                continue
            start = i
            i += 1

    def atom_or_dot(self, out: bytearray) -> int:
        d, n, start = self.d, self.n, self.i
        self.i = _ATOM_OR_DOT_RUN.match(d, start).end()  # type: ignore[union-attr]
        out += d[start : self.i]
        return self.skip_lwsp() if self.i < n else 0

    def phrase(self, out: bytearray) -> int:
        if self.i >= self.n:
            return 0
        if self.d[self.i] == 0x2E:
            return -1
        while True:
            if not self.spend():
                return 0
            ret = self.quoted_string(out) if self.d[self.i] == 0x22 else self.atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.d[self.i]
            if not ATEXT[c] and c != 0x22 and c != 0x2E:
                break
            out += b" "
        return self.skip_lwsp()

    def domain_literal(self, out: bytearray) -> int:
        d, n, start = self.d, self.n, self.i
        i = start
        while True:
            m = _LITERAL_STOP.search(d, i)
            if m is None or not self.spend():
                self.i = n
                return -1
            i = m.end()
            if d[i - 1] == 0x5D:
                out += d[start:i]
                self.i = i
                return self.skip_lwsp()
            i += 1  # a backslash quotes the next octet
            if i >= n:
                self.i = n
                return -1

    def domain(self, out: bytearray) -> int:
        self.i += 1  # the "@"
        if self.skip_lwsp() <= 0:
            return -1
        if self.d[self.i] == 0x5B:
            return self.domain_literal(out)
        return self.dot_atom(out)

    def content_type(self, out: bytearray) -> int:
        """type/subtype into ``out``; as Dovecot 2.3.19, a broken value leaves only a
        lone type ("text") there, anything else broken leaves nothing."""
        if self.skip_lwsp() <= 0:
            return -1
        ret = self.mime_token(out)
        if ret <= 0:
            return -1
        if not out or not self.at(0x2F):
            out.clear()
            return -1
        self.i += 1
        if self.skip_lwsp() <= 0:
            out.clear()
            return -1
        out += b"/"
        before = len(out)
        ret = self.mime_token(out)
        if ret < 0 or len(out) == before or (ret > 0 and self.d[self.i] != 0x3B):
            out.clear()
            return -1
        return ret

    def content_param(self) -> tuple[int, bytes | None, bytes | None]:
        d, n = self.d, self.n
        if self.i >= n:
            return 0, None, None
        if d[self.i] != 0x3B:
            return -1, None, None
        self.i += 1
        if self.skip_lwsp() <= 0:
            return -1, None, None
        key = bytearray()
        if self.mime_token(key) <= 0:
            return -1, None, None
        if not self.at(0x3D):
            return -1, None, None
        self.i += 1
        value = bytearray()
        ret = self.skip_lwsp()
        if ret <= 0:
            pass  # broken / no value
        elif d[self.i] == 0x22:
            ret = self.quoted_string(value)
        elif d[self.i] == 0x3D:  # broken input: name==?utf-8?b?...?=
            end = _BROKEN_VALUE_RUN.match(d, self.i).end()  # type: ignore[union-attr]
            value += d[self.i : end]
            self.i = end
        else:
            ret = self.mime_token(value)
        return (-1 if ret < 0 else 1), bytes(key), bytes(value)

    def rfc2231_params(self, max_params: int) -> list[tuple[bytes, bytes]]:
        """Dovecot's rfc2231_parse: ``name*0*=..`` continuations are merged into one
        ``name*`` (still %-encoded) or ``name`` parameter; others are kept in order.
        Only the first ``max_params`` parameters are read, broken ones included (Dovecot's
        RFC2231_MAX_PARAMS: the merging below sorts and groups them)."""
        result: list[tuple[bytes, bytes]] = []
        pending: list[tuple[bytes, int, bool, bytes]] = []
        idx = 0  # Dovecot reuses this between parameters
        count = 0
        while self.spend():
            ret, key, value = self.content_param()
            if ret == 0:
                break
            count += 1
            if count > max_params:
                break
            if ret < 0 or key is None or value is None:
                if self.i >= self.n:
                    break
                self.i += 1
                continue
            star = key.find(b"*")
            plain = True
            if star >= 0:
                p = star
                if p + 1 < len(key):
                    p += 1
                    digits = _DIGIT_RUN.match(key, p).end()  # type: ignore[union-attr]
                    idx = _c_uint(key[p:digits])
                    p = digits
                extended = p < len(key) and key[p] == 0x2A
                if extended:
                    p += 1
                if p >= len(key):
                    pending.append((key[:star], idx, extended, value))
                    plain = False
            if plain:
                result.append((key, value))
        if not pending:
            return result
        pending.sort(key=lambda t: (t[0], t[1]))
        i = 0
        while i < len(pending):
            name = pending[i][0].lower()
            j = i
            ok = True
            have_ext = False
            want = 0
            while j < len(pending) and pending[j][0].lower() == name:
                if pending[j][1] != want:
                    ok = False
                have_ext = have_ext or pending[j][2]
                want += 1
                j += 1
            if not ok:
                for k in range(i, j):
                    key, index, ext, value = pending[k]
                    result.append((key + b"*%d" % index + (b"*" if ext else b""), value))
            else:
                out = bytearray()
                if not pending[i][2] and have_ext:
                    out += b"''"
                for k in range(i, j):
                    value = pending[k][3]
                    out += value.replace(b"%", b"%25") if not pending[k][2] and have_ext else value
                result.append((pending[i][0] + (b"*" if have_ext else b""), bytes(out)))
            i = j
        return result
