"""Folder names: modified UTF-7 (RFC 3501 5.1.3) and the Maildir++ directory names
(mailstore/names.py).

Input: any octets. Read as UTF-8 (undecodable octets become lone surrogates, which no name
may hold), they are a folder name a client asks for; read as Latin-1, they are what a client
or a directory entry may spell in modified UTF-7.

Properties:
- `decode_mutf7(encode_mutf7(x)) == x` for every name without a lone surrogate; the encoding
  is printable US-ASCII; a name with one is refused (InvalidName), never mangled;
- the decoding is strict, so the mapping is one-to-one: whatever decodes encodes back to
  exactly the same spelling;
- `validate_name` accepts or refuses (InvalidName); what it accepts has a directory name,
  which maps back to the same folder (`name_from_dirname(folder_dirname(n)) == n`), stays
  one level below the mail root and within NAME_MAX; a name valid to create is valid to open;
- a directory entry is a folder only if it is that folder's own directory name.
"""

from __future__ import annotations

import os

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, main
    from mailstore.errors import InvalidName
    from mailstore.names import (
        INBOX,
        MAX_NAME_OCTETS,
        decode_mutf7,
        encode_mutf7,
        folder_dirname,
        is_inside,
        name_from_dirname,
        validate_name,
    )


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def check_name(name: str) -> None:
    try:
        encoded = encode_mutf7(name)
    except InvalidName:
        if not _has_surrogate(name):
            raise
        return
    if _has_surrogate(name):
        raise Finding(f"{name!r} with a lone surrogate encoded as {encoded!r}")
    if not all(" " <= c <= "~" for c in encoded):
        raise Finding(f"{name!r} encoded as {encoded!r}: not printable US-ASCII")
    if decode_mutf7(encoded) != name:
        raise Finding(f"{name!r} -> {encoded!r} -> {decode_mutf7(encoded)!r}")
    try:
        canonical = validate_name(name, create=False)
    except InvalidName:
        try:
            validate_name(name, create=True)
        except InvalidName:
            return
        raise Finding(f"{name!r} may be created but not opened") from None
    dirname = folder_dirname(canonical)
    if canonical == INBOX:
        if dirname != "":
            raise Finding(f"INBOX lives in {dirname!r}")
        return
    if len(dirname.encode()) > MAX_NAME_OCTETS or "/" in dirname or "\0" in dirname:
        raise Finding(f"{canonical!r} gives the directory name {dirname!r}")
    path = os.path.join("/m", dirname)
    if not is_inside("/m", path) or os.path.dirname(os.path.normpath(path)) != "/m":
        raise Finding(f"{canonical!r} lives outside the mail root: {path!r}")
    back = name_from_dirname(dirname)
    if back != canonical:
        raise Finding(f"{canonical!r} -> {dirname!r} -> {back!r}")


def check_spelling(spelling: str) -> None:
    try:
        decoded = decode_mutf7(spelling)
    except InvalidName:
        decoded = None
    if decoded is not None and encode_mutf7(decoded) != spelling:
        raise Finding(f"{spelling!r} -> {decoded!r} -> {encode_mutf7(decoded)!r}")
    name = name_from_dirname(spelling)
    if name is not None and folder_dirname(name) != spelling:
        raise Finding(f"the entry {spelling!r} is taken as {name!r}, whose directory differs")


def test_one_input(data: bytes) -> None:
    check_name(data.decode("utf-8", "surrogateescape"))
    check_spelling(data.decode("latin-1"))
    check_spelling("." + data.decode("latin-1"))


if __name__ == "__main__":
    main(test_one_input)
