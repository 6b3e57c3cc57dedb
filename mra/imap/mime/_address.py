"""Address lists of ENVELOPE (RFC 3501 section 7.4.2), parsed the way Dovecot 2.3's
``lib-mail/message-address.c`` parses them, with its ``MISSING_MAILBOX`` /
``MISSING_DOMAIN`` / ``SYNTAX_ERROR`` / ``INVALID_ROUTE`` fill-ins.

Groups give a start marker (only ``mailbox``, the group name) and an end marker (all None).
Nothing raises: whatever cannot be parsed becomes fill-ins, and an internal defect gives an
empty list rather than a failed FETCH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mra.imap.mime._tokens import Tokenizer, Work

__all__ = ["Address", "envelope_addresses"]

# The two common forms, "local@domain" and "Name" <local@domain> (a plain quoted string, or
# words with one space between them), before a comma (or ";" in a group) or the end, with
# dot-atoms and blanks after: what the general parser makes of them is known, so they are
# taken in one step (tests/unit/imap_mime/test_mime.py checks both ways agree).  Possessive
# quantifiers: a near miss is given up without backtracking.
_A = rb"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\x80-\xff]++"  # ATEXT
_ADDR_SPEC = rb"(%s(?:\.%s)*+)@(%s(?:\.%s)*+)" % (_A, _A, _A, _A)
_NAME = rb'(?:"([^"\\\r\n]*+)"|(%s(?: %s)*+))[ \t]*+' % (_A, _A)
_SIMPLE = _ADDR_SPEC + rb"[ \t\r\n]*+"
_NAMED = _NAME + rb"<" + _ADDR_SPEC + rb">[ \t\r\n]*+"
_SIMPLE_IN_LIST = re.compile(_SIMPLE + rb"(?=,|\Z)")
_SIMPLE_IN_GROUP = re.compile(_SIMPLE + rb"(?=[,;]|\Z)")
_NAMED_IN_LIST = re.compile(_NAMED + rb"(?=,|\Z)")
_NAMED_IN_GROUP = re.compile(_NAMED + rb"(?=[,;]|\Z)")


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address: (name adl mailbox host); None is NIL.  A group start has only
    ``mailbox`` (the group name), a group end has nothing."""

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None

    @property
    def is_group_start(self) -> bool:
        return self.domain is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.domain is None and self.mailbox is None

    @property
    def addr_spec(self) -> str:
        """``mailbox@domain`` (decoded as UTF-8), or "" for group markers."""
        if self.domain is None or self.mailbox is None:
            return ""
        text = self.mailbox + b"@" + self.domain
        return text.decode("utf-8", "replace")


class _AddressParser:
    def __init__(self, data: bytes, work: Work) -> None:
        self.t = Tokenizer(data, work, keep_comment=True)
        self.out: list[Address] = []
        self.s = bytearray()
        self._clear()

    def _clear(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None
        self.invalid = False

    def add(self) -> None:
        self.out.append(Address(self.name, self.route, self.mailbox, self.domain))
        self._clear()

    def add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = b"MISSING_MAILBOX"
        if not self.domain:
            self.domain = b"MISSING_DOMAIN"
        self.add()

    def local_part(self) -> int:
        t = self.t
        self.s.clear()
        ret = t.quoted_string(self.s) if t.d[t.i] == 0x22 else t.loose_dot_atom(self.s)
        if ret < 0:
            return -1
        self.mailbox = bytes(self.s)
        return ret

    def domain_(self) -> int:
        self.s.clear()
        ret = self.t.domain(self.s)
        if ret < 0:
            return -1
        self.domain = bytes(self.s)
        return ret

    def domain_list(self) -> int:
        t = self.t
        self.s.clear()
        while True:
            if t.i >= t.n:
                return 0
            if t.d[t.i] != 0x40:
                break
            if self.s:
                self.s += b","
            self.s += b"@"
            ret = t.domain(self.s)
            if ret <= 0:
                return ret
            while t.skip_lwsp() > 0 and t.d[t.i] == 0x2C and t.spend():
                t.i += 1
        self.route = bytes(self.s)
        return 1

    def angle_addr(self) -> int:
        t = self.t
        t.i += 1  # "<"
        if t.skip_lwsp() <= 0:
            return -1
        if t.d[t.i] == 0x40:
            if self.domain_list() > 0 and t.at(0x3A):
                t.i += 1
            else:
                self.route = b"INVALID_ROUTE"
                if t.i >= t.n:
                    return -1
            if t.skip_lwsp() <= 0:
                return -1
        if t.d[t.i] != 0x3E:
            if self.local_part() <= 0:
                return -1
            if t.d[t.i] == 0x40 and self.domain_() <= 0:
                return -1
        if not t.at(0x3E):
            return -1
        t.i += 1
        return t.skip_lwsp()

    def name_addr(self) -> int:
        t = self.t
        self.s.clear()
        if t.phrase(self.s) <= 0 or not t.at(0x3C):
            return -1
        self.name = bytes(self.s) or None
        if self.angle_addr() < 0:
            self.domain = b"SYNTAX_ERROR"
        return 1 if t.i < t.n else 0

    def addr_spec(self) -> int:
        t = self.t
        assert t.comment is not None
        t.comment.clear()
        quoted = t.d[t.i] == 0x22
        ret = self.local_part()
        if ret <= 0:
            self.invalid = True
        ret2 = -2
        if ret != 0 and t.at(0x40):
            ret2 = self.domain_()
            if ret2 <= 0:
                ret = ret2
        if t.comment:
            self.name = bytes(t.comment)
        elif ret2 == -2:
            # "user" alone is a mailbox; "user more words" is a display name
            self.s += b" "
            before = len(self.s)
            t.phrase(self.s)
            if len(self.s) != before:
                self.mailbox = None
                self.name = bytes(self.s)
            elif not quoted:
                self.domain = b""
            self.invalid = True
            ret = -1
        return ret

    def mailbox_(self) -> int:
        t = self.t
        start = t.i
        ret = self.name_addr()
        if ret < 0:
            t.i = start
            self._clear()
            ret = self.addr_spec()
            # "Some Name" alone is a display name, not a mailbox
            lone_word = self.mailbox is not None and self.domain is None
            if self.invalid and self.name is None and lone_word:
                self.name, self.mailbox = self.mailbox, None
        self.add_fixed()
        return ret

    def group(self) -> int:
        t = self.t
        self.s.clear()
        if t.phrase(self.s) <= 0 or not t.at(0x3A):
            return -1
        t.i += 1
        ret = t.skip_lwsp()
        self.mailbox = bytes(self.s)
        self.add()
        if ret > 0 and t.d[t.i] != 0x3B:
            while t.spend():
                if not self.common(_SIMPLE_IN_GROUP, _NAMED_IN_GROUP):
                    self.mailbox_()
                if not t.at(0x2C):
                    break
                t.i += 1
                if t.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if not t.at(0x3B):
                ret = -1
            else:
                t.i += 1
                ret = t.skip_lwsp()
        self._clear()
        self.add()
        return 0 if ret == 0 else 1

    def common(self, simple: re.Pattern[bytes], named: re.Pattern[bytes]) -> bool:
        """Take one address of a common form in one step, if the next one is."""
        t = self.t
        m = simple.match(t.d, t.i)
        if m is not None:
            self.out.append(Address(None, None, m[1], m[2]))
        else:
            m = named.match(t.d, t.i)
            if m is None:
                return False
            self.out.append(Address(m[1] or m[2] or None, None, m[3], m[4]))
        t.i = m.end()
        return True

    def address(self) -> int:
        t = self.t
        start = t.i
        ret = self.group()
        if ret < 0:
            t.i = start
            self._clear()
            ret = self.mailbox_()
        return ret

    def parse(self) -> list[Address]:
        t = self.t
        if t.skip_lwsp() <= 0:
            return []
        while t.spend():
            if self.common(_SIMPLE_IN_LIST, _NAMED_IN_LIST):
                if t.i >= t.n:
                    break
            elif self.address() == 0 or not t.at(0x2C):
                break
            t.i += 1
            ret = t.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed()
                break
        return self.out


def envelope_addresses(value: bytes, work: Work | None = None) -> list[Address]:
    """Parse an address-list header value the way Dovecot does for ENVELOPE; each address
    (and each step of reading an unusual one) takes a step of ``work`` (by default, none
    is counted), the list ends where the steps run out."""
    try:
        return _AddressParser(value, Work(1 << 62) if work is None else work).parse()
    except IndexError:  # a defect in the port; never let a header break FETCH
        return []
