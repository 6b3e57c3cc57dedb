"""The Content-* fields of a part as BODYSTRUCTURE reports them (Dovecot 2.3's
``lib-mail/message-part-data.c``): type and subtype, parameters (RFC 2231 continuations
merged), transfer encoding, id, description, disposition, MD5, language and location.

Only MIME parts have them (see :mod:`._parse`); the first field of each kind counts, later
ones are ignored; a broken value gives what Dovecot keeps of it (often nothing).  Computed
lazily, once per part, by :attr:`Part.data <._parse.Part.data>`.
"""

from __future__ import annotations

from mra.imap.mime._tokens import Tokenizer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.mime._parse import Part

__all__ = ["PartData", "part_data"]


class PartData:
    """The Content-* values of a part (None: the field is absent, or too broken to keep)."""

    __slots__ = (
        "content_id",
        "content_subtype",
        "content_type",
        "description",
        "disposition",
        "disposition_params",
        "encoding",
        "language",
        "location",
        "md5",
        "params",
    )

    def __init__(self) -> None:
        self.content_type: bytes | None = None
        self.content_subtype: bytes | None = None
        self.params: list[tuple[bytes, bytes]] | None = None
        self.encoding: bytes | None = None
        self.content_id: bytes | None = None
        self.description: bytes | None = None
        self.disposition: bytes | None = None
        self.disposition_params: list[tuple[bytes, bytes]] | None = None
        self.md5: bytes | None = None
        self.language: list[bytes] | None = None
        self.location: bytes | None = None


def part_data(part: Part) -> PartData:
    data = PartData()
    if not part.is_mime:
        return data
    for f in part.fields:
        if f.value_start < 0 or not f.lname.startswith(b"content-"):
            continue
        name = f.lname[8:]
        value = f.value
        if name == b"type" and data.content_type is None:
            tok = Tokenizer(value, part.work)
            tok.skip_lwsp()
            out = bytearray()
            ret = tok.content_type(out)
            slash = out.find(b"/")
            if slash >= 0:
                data.content_type = bytes(out[:slash])
                data.content_subtype = bytes(out[slash + 1 :])
            else:
                data.content_type = bytes(out)
            if ret >= 0:
                params = tok.rfc2231_params(part.limits.max_params)
                data.params = params or None
        elif name == b"transfer-encoding" and data.encoding is None:
            tok = Tokenizer(value, part.work)
            tok.skip_lwsp()
            out = bytearray()
            if tok.mime_token(out) >= 0 and tok.skip_lwsp() == 0 and out:
                data.encoding = bytes(out)
        elif name == b"id" and data.content_id is None:
            data.content_id = value
        elif name == b"md5" and data.md5 is None:
            data.md5 = value
        elif name == b"description" and data.description is None:
            data.description = value
        elif name == b"location" and data.location is None:
            data.location = value
        elif name == b"language" and data.language is None:
            tok = Tokenizer(value, part.work)
            tok.skip_lwsp()
            langs: list[bytes] = []
            while tok.spend():
                out = bytearray()
                if tok.atom(out) < 0:
                    break
                langs.append(bytes(out))
                if not tok.at(0x2C):
                    break
                tok.i += 1
                tok.skip_lwsp()
            data.language = langs or None
        elif name == b"disposition" and data.disposition_params is None:
            tok = Tokenizer(value, part.work)
            tok.skip_lwsp()
            out = bytearray()
            if tok.mime_token(out) < 0:
                continue
            data.disposition = bytes(out)
            data.disposition_params = tok.rfc2231_params(part.limits.max_params) or None
    return data
