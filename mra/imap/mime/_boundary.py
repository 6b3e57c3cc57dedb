"""Multipart boundary lines: which line of a message closes which part, found in linear time.

A boundary line is ``--`` followed by the boundary of any enclosing multipart as a *prefix*
(RFC 2046 section 5.1.1 asks for the whole line, Dovecot 2.3 and real mail take a prefix).
:meth:`Boundaries.match_at` decides one line exactly as Dovecot's ``boundary_line_find()``
and ``boundary_find()`` (``lib-mail/message-parser.c``) do:

- the boundaries are tried innermost first; the longest one that fits in the line (its
  content, without the line end) and starts it wins, the innermost on a tie; the search
  stops early at a boundary that is the whole line, or the whole line but a closing
  ``--`` (so ``--foo--`` closes ``foo`` even if an outer boundary is ``foo--``);
- ``--boundary--`` closes the multipart (it drops the boundaries opened inside it);
- a boundary is cut to its first 80 octets (``BOUNDARY_STRING_MAX_LEN``), so a longer one
  matches every line that starts with those 80 octets.

Finding the *next* boundary line must not cost a Python step per line: a body of short
``--`` lines that almost match (millions of them in 40 MB) would, with 100 nested
boundaries, cost 100 Python steps per line.  :meth:`Boundaries.next_candidate` asks
``bytes.find`` (C) for ``\\n--boundary`` of each distinct boundary on the stack and takes the
earliest; only that line is then decided by :meth:`~Boundaries.match_at`.  Each distinct
boundary remembers where its next occurrence is (or how far it has none), and the parser only
moves forward, so every octet is searched at most once per boundary alive over it: the
work is O(n x distinct boundaries) in C, and O(1) Python steps per boundary line (each of
which opens or closes a part, so there are at most about twice the part limit of them).

Two kinds of boundaries are handled apart because they could make ``find`` report lines that
are not boundary lines (each costing a Python step): one holding a LF can never match a
line, and is not searched for; one ending in CR matches only if the line goes on after that
CR, which a regular expression checks in C.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.mime._parse import Part

__all__ = ["BOUNDARY_MAX", "Boundaries", "Match"]

BOUNDARY_MAX = 80  # Dovecot's BOUNDARY_STRING_MAX_LEN (lib-mail/message-parser-private.h)


class Match:
    """A boundary line: ``index`` in the stack, where the delimiter starts (its CRLF, or the
    ``--`` at a body start), where the next line starts (-1: the line runs to the end of
    the message) and whether it is ``--boundary--``."""

    __slots__ = ("after", "close", "delim_start", "index")

    def __init__(self, index: int, delim_start: int, after: int, close: bool) -> None:
        self.index = index
        self.delim_start = delim_start
        self.after = after
        self.close = close


class _Search:
    """Where ``\\n--boundary`` occurs next, for one distinct boundary.  After a search from
    ``lo``: ``hit`` is the first occurrence at or after ``lo``, or -1 and there is none
    starting in ``[lo, clear)``."""

    __slots__ = ("clear", "hit", "lo", "needle", "pattern")

    def __init__(self, boundary: bytes) -> None:
        self.needle = b"\n--" + boundary
        # a CR at the end can be the line end: the line must go on after it
        self.pattern = (
            re.compile(re.escape(self.needle) + rb"(?!\n)") if boundary.endswith(b"\r") else None
        )
        self.lo = 0
        self.hit = -1
        self.clear = 0

    def first(self, buf: bytes, lo: int, hi: int) -> int:
        """The first occurrence starting in ``[lo, hi)``, or -1."""
        start = lo
        if self.lo <= lo:  # what an earlier search found still holds from lo on
            if self.hit >= lo:
                return self.hit if self.hit < hi else -1
            if self.hit < 0 and self.clear > lo:
                start = self.clear
        if start >= hi:
            return -1
        end = hi + len(self.needle) - 1
        if self.pattern is None:
            found = buf.find(self.needle, start, end)
        else:
            m = self.pattern.search(buf, start, end + 1)  # +1: the look-ahead octet
            found = -1 if m is None or m.start() >= hi else m.start()
        self.lo = lo
        self.hit = found
        if found < 0:
            self.clear = hi
        return found


class _Entry:
    __slots__ = ("boundary", "part", "search")

    def __init__(self, boundary: bytes, part: Part, search: _Search | None) -> None:
        self.boundary = boundary
        self.part = part
        self.search = search  # None: the boundary holds a LF and never matches


class Boundaries:
    """The boundaries of the multiparts enclosing the parser's position, innermost last."""

    __slots__ = ("_buf", "_searches", "_stack")

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._stack: list[_Entry] = []
        self._searches: dict[bytes, _Search] = {}

    def __len__(self) -> int:
        return len(self._stack)

    def __bool__(self) -> bool:
        return bool(self._stack)

    def part(self, index: int) -> Part:
        return self._stack[index].part

    def push(self, boundary: bytes, part: Part) -> None:
        boundary = boundary[:BOUNDARY_MAX]
        search: _Search | None = None
        if b"\n" not in boundary:
            search = self._searches.get(boundary)
            if search is None:
                search = self._searches[boundary] = _Search(boundary)
        self._stack.append(_Entry(boundary, part, search))

    def pop(self) -> None:
        self._stack.pop()

    def truncate(self, size: int) -> None:
        """Keep the ``size`` outermost boundaries."""
        del self._stack[size:]

    def clear(self) -> None:
        self._stack.clear()

    def match_at(self, pos: int) -> Match | None:
        """The boundary line starting at ``pos`` (a line start), if it is one; the match's
        ``delim_start`` is ``pos``."""
        buf = self._buf
        if not self._stack or not buf.startswith(b"--", pos):
            return None
        lf = buf.find(b"\n", pos + 2)
        trailing_dashes = False
        if lf < 0:
            size = len(buf) - pos - 2
        else:
            end = lf - 1 if lf > pos + 2 and buf[lf - 1] == 0x0D else lf
            size = end - pos - 2
            trailing_dashes = size > 2 and buf[end - 2 : end] == b"--"
        best = -1
        best_len = -1
        for index in range(len(self._stack) - 1, -1, -1):
            b = self._stack[index].boundary
            blen = len(b)
            if best_len < blen <= size and buf.startswith(b, pos + 2):
                best, best_len = index, blen
                if blen == size or (trailing_dashes and blen == size - 2):
                    break  # exactly this boundary: there cannot be a better one
        if best < 0:
            return None
        close = buf.startswith(b"--", pos + 2 + best_len)
        return Match(best, pos, -1 if lf < 0 else lf + 1, close)

    def next_candidate(self, lo: int, hi: int) -> int:
        """The first ``q`` in ``[lo, hi)`` where ``\\n--`` and a boundary of the stack start
        (the line after ``q`` may be a boundary line; :meth:`match_at` decides), or -1."""
        best = hi
        seen: set[int] = set()
        for entry in reversed(self._stack):
            search = entry.search
            if search is None or id(search) in seen:
                continue
            seen.add(id(search))
            found = search.first(self._buf, lo, best)
            if found >= 0:
                best = found
        return best if best < hi else -1

    def next_line(self, lo: int, hi: int) -> Match | None:
        """The first boundary line whose preceding LF is in ``[lo, hi)``; its ``delim_start``
        is that line's CRLF (the line end before a boundary belongs to the boundary)."""
        buf = self._buf
        start = lo
        while True:
            hit = self.next_candidate(lo, hi)
            if hit < 0:
                return None
            m = self.match_at(hit + 1)
            if m is not None:
                m.delim_start = hit - 1 if hit > start and buf[hit - 1] == 0x0D else hit
                return m
            lo = hit + 1
