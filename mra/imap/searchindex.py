"""SEARCH on headers and addresses from the folder index (issue #11).

FROM, TO, CC, BCC, SUBJECT and SENT* (the Date field) are the header keys clients send most
(Thunderbird's quick filter, Roundcube's search box, mutt's ~f). Answering them used to read
the header of every message file; now the fields those keys compare are kept per message in
the folder index (mailstore/folderindex.py, its `hdr` column): the first such SEARCH of a folder
reads the files and fills the index, every later one, in any session or worker and after a
restart, reads the index only. BODY and TEXT read the files as before; so does a program with
a HEADER key on another field (its field is not in the index).

What is kept is not a digest of the fields but the fields themselves, as written (CRLF line
ends), in the header's order: `indexed_block` keeps every field whose name the MIME parser
would give (mra/imap/mime/_parse.py: the name before the colon, blanks before it removed; the
whole first line when there is no colon or the name is over 1000 octets), so parsing the kept
block gives each of these fields exactly the values parsing the whole header gives, and the
search keys (mra/imap/searchkeys.py) compare the same values as before. That holds while the
parser's own bounds are not reached (fields, value octets, tokens of a header): only headers
of at most HDR_MAX (64 KiB), far below every bound, are kept; a bigger one is read from its
file each time. The kept block can only be smaller than the header, so SEARCH's quick
rejection (`plain_header`: an ASCII block without encoded words holds every value's octets)
stays sound on it.
"""

from __future__ import annotations

import re

from mailstore.folderindex import HDR_MAX
from mra.imap import search
from mra.imap.mime import crlf
from mra.imap.mime._parse import HEADER_NAME_MAX
from mra.imap.searchkeys import Date, Header

__all__ = ["INDEXED", "indexed_block", "wanted_fields"]

# Lower case, as the parser's `lname`: the fields FROM, TO, CC, BCC, SUBJECT and SENT* read,
# and those SORT and THREAD read besides (RFC 5256: Message-ID, In-Reply-To, References), so
# that an index-backed FieldSource (the contract of mra/imap/sortfields.py) computes its fields
# from the kept block (`IndexedHeaders` in searching.py) as the parsing one does from the file.
INDEXED = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"bcc",
        b"subject",
        b"date",
        b"message-id",
        b"in-reply-to",
        b"references",
    }
)

_FIELD_END = re.compile(rb"\r\n(?![ \t])")  # the parser's: a line end not before a continuation


def wanted_fields(program: search.SearchProgram) -> bool:
    """Whether every header key of `program` compares a field the index keeps, and some key
    does (else the index has nothing to offer)."""
    wanted = False
    for key in program.key.walk():
        if isinstance(key, Header):
            if key.name.lower().encode("latin-1", "replace") not in INDEXED:
                return False
            wanted = True
        elif isinstance(key, Date) and key.source == "sent":
            wanted = True
    return wanted


def indexed_block(header: bytes) -> bytes | None:
    """The INDEXED fields of a header block (as read from the file, up to and with its empty
    line), CRLF line ends, and an empty line; None when the block is not to be kept: over
    HDR_MAX or without its empty line (cut short: the rest of the header was not read)."""
    if len(header) > HDR_MAX:
        return None
    buf = crlf(header)
    if not buf.endswith(b"\r\n\r\n") and buf != b"\r\n":
        return None
    stop = len(buf) - 2  # the empty line
    kept: list[bytes] = []
    pos = 0
    while pos < stop:
        m = _FIELD_END.search(buf, pos, stop)
        end = m.end() if m is not None else stop
        first = buf.find(b"\r\n", pos, end)
        if first < 0:
            first = end
        colon = buf.find(b":", pos, first)
        name = buf[pos:colon].rstrip(b" \t") if colon >= 0 else b""
        lname = (name if colon >= 0 and len(name) <= HEADER_NAME_MAX else buf[pos:first]).lower()
        if lname in INDEXED:
            field = buf[pos:end]
            kept.append(field if field.endswith(b"\r\n") else field + b"\r\n")
        pos = end
    kept.append(b"\r\n")
    return b"".join(kept)
