"""MIME structure of a stored message for IMAP FETCH and SEARCH, as pure functions.

:func:`parse` turns a stored message (LF or CRLF) into its root :class:`Part`; every other
public function takes either that ``Part`` or the raw bytes (then parsing them itself, which
is wasteful if you call several functions: parse once and pass the ``Part``).  The answers
are the octets Dovecot 2.3 sends; ``tests/unit/imap_mime`` compares them with Dovecot.

One module per job, each opening with its rules:

- :mod:`._parse`: the message parser (header fields, multipart boundaries, message/rfc822)
  and the :class:`Part` tree; :mod:`._tokens` and :mod:`._partdata` read header values.
- :mod:`._address`: address lists for ENVELOPE.
- :mod:`._structure`: ENVELOPE, BODY and BODYSTRUCTURE, and IMAP quoting.
- :mod:`._section`: BODY[section]<partial>.
- :mod:`._text`: RFC 2047, transfer encodings and charsets, for SEARCH.

SEARCH needs only parsing and text, so the other modules are imported on first use
(``mime.envelope`` imports :mod:`._structure`): importing :mod:`mra.imap.search` stays cheap.
"""

from __future__ import annotations

import importlib

from mra.imap.mime._parse import DEFAULT_LIMITS, Field, Limits, Part, crlf, parse
from mra.imap.mime._text import (
    all_header_texts,
    body_texts,
    decode_rfc2047,
    header_texts,
    header_values,
    part_text,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.mime._address import Address, envelope_addresses
    from mra.imap.mime._section import SectionSpec, parse_section_spec, partial, section
    from mra.imap.mime._structure import bodystructure, envelope, without_nuls

__all__ = [
    "DEFAULT_LIMITS",
    "Address",
    "Field",
    "Limits",
    "Part",
    "SectionSpec",
    "all_header_texts",
    "body_texts",
    "bodystructure",
    "crlf",
    "decode_rfc2047",
    "envelope",
    "envelope_addresses",
    "header_texts",
    "header_values",
    "parse",
    "parse_section_spec",
    "part_text",
    "partial",
    "section",
    "without_nuls",
]

# name -> the module that defines it, imported when the name is first used
_LAZY = {
    "Address": "_address",
    "envelope_addresses": "_address",
    "SectionSpec": "_section",
    "parse_section_spec": "_section",
    "partial": "_section",
    "section": "_section",
    "bodystructure": "_structure",
    "envelope": "_structure",
    "without_nuls": "_structure",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later uses are plain attribute reads
    return value
