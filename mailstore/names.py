"""Folder names: modified UTF-7 and the Maildir++ directory layout.

IMAP clients see folder names as Unicode strings with `.` as the hierarchy separator. On disk the
store uses Dovecot's Maildir++ layout (its default for `mail_location = maildir:`): INBOX is the
Maildir root itself and folder `A.B` lives in the directory `.A.B/` under the root, the name
written in modified UTF-7 (RFC 3501 section 5.1.3) the way Dovecot 2.3 writes it, so a tree made
by one program can be served by the other.

Nothing here touches the file system; the callers do, and `is_inside` is their last guard.
"""

from __future__ import annotations

import os

from mailstore.errors import InvalidName

__all__ = [
    "INBOX",
    "MAX_COMPONENT_OCTETS",
    "MAX_NAME_OCTETS",
    "SEPARATOR",
    "decode_mutf7",
    "encode_mutf7",
    "folder_dirname",
    "is_inside",
    "name_from_dirname",
    "validate_name",
]

SEPARATOR = "."
"""Hierarchy separator of the IMAP-visible names, and of the Maildir++ directory names."""

INBOX = "INBOX"

MAX_NAME_OCTETS = 255
"""Longest on-disk directory name (`.` + encoded name): NAME_MAX of Linux file systems."""

MAX_COMPONENT_OCTETS = 200
"""Longest encoded hierarchy level: the store's own limit, so one level cannot use up NAME_MAX."""

# RFC 3501 5.1.3: "modified BASE64, with a further modification from [UTF-7] that ',' is used
# instead of '/'".
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}

# Characters IMAP wildcards use in LIST (RFC 3501 6.3.8); a folder named with them could never be
# listed on its own, so they are refused when a name is created.
_WILDCARDS = frozenset("%*")


def _plain(s: str) -> bool:
    """Printable US-ASCII without `&`: the same in modified UTF-7 as decoded."""
    return s.isascii() and s.isprintable() and "&" not in s


def _is_printable_ascii(ch: str) -> bool:
    # RFC 3501 5.1.3: octets 0x20-0x7e represent themselves (except '&').
    return "\x20" <= ch <= "\x7e"


def _encode_run(run: str) -> str:
    try:
        utf16 = run.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        # A lone surrogate has no UTF-16 form; a str from a decoded client name never holds one,
        # but a str built by other code can.
        raise InvalidName("mailbox name contains an unpaired surrogate") from exc
    # RFC 3501 5.1.3 (via RFC 2152): modified BASE64 is written without '=' padding.
    # binascii rather than base64: `base64` imports `re`, which the delivery agent cannot afford;
    # and only here, since most names are plain ASCII.
    import binascii

    b64 = binascii.b2a_base64(utf16, newline=False).rstrip(b"=").replace(b"/", b",")
    return "&" + b64.decode("ascii") + "-"


def encode_mutf7(name: str) -> str:
    """Encode a Unicode name to modified UTF-7 (RFC 3501 section 5.1.3).

    Printable US-ASCII stands for itself, `&` becomes `&-`, and each run of other characters is
    written as `&` + modified BASE64 of its UTF-16BE form + `-`.
    """
    if _plain(name):  # most names: themselves, no character-by-character walk
        return name
    out: list[str] = []
    run: list[str] = []
    for ch in name:
        if _is_printable_ascii(ch):
            if run:
                out.append(_encode_run("".join(run)))
                run.clear()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    if run:
        # RFC 3501 5.1.3: names "MUST end in US-ASCII", so the last run is closed with '-'.
        out.append(_encode_run("".join(run)))
    return "".join(out)


def _decode_run(run: str) -> str:
    """Decode the modified BASE64 between `&` and `-` (non-empty), strictly."""
    acc = 0
    nbits = 0
    octets = bytearray()
    for ch in run:
        value = _B64_VALUE.get(ch)
        if value is None:
            raise InvalidName(f"invalid modified UTF-7: {ch!r} is not a modified BASE64 character")
        acc = (acc << 6) | value
        nbits += 6
        if nbits >= 8:
            nbits -= 8
            octets.append((acc >> nbits) & 0xFF)
            acc &= (1 << nbits) - 1
    if nbits >= 6:
        # A whole BASE64 character that contributed no octet: never produced by an encoder.
        raise InvalidName("invalid modified UTF-7: truncated BASE64 run")
    if acc != 0:
        # RFC 2152 rule 2: bits left over after the last 16-bit unit must be zero, otherwise
        # the sequence is ill-formed (and two spellings of one name would exist).
        raise InvalidName("invalid modified UTF-7: non-zero bits after the last character")
    if len(octets) % 2 != 0:
        raise InvalidName("invalid modified UTF-7: odd number of UTF-16 octets")
    try:
        # Python's UTF-16 decoder refuses unpaired surrogates, in either order.
        text = bytes(octets).decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise InvalidName("invalid modified UTF-7: unpaired UTF-16 surrogate") from exc
    for ch in text:
        # RFC 3501 5.1.3: "Modified BASE64 MUST NOT be used to represent any printing US-ASCII
        # character which can represent itself." Dovecot refuses such names too, per character.
        if _is_printable_ascii(ch):
            raise InvalidName("invalid modified UTF-7: printable US-ASCII encoded in BASE64")
    return text


def decode_mutf7(s: str) -> str:
    """Decode modified UTF-7 (RFC 3501 section 5.1.3), refusing anything an encoder never writes.

    Strictness makes the mapping one-to-one, so one folder cannot hide behind two spellings.
    Raises `InvalidName` on: characters outside printable US-ASCII, a bad BASE64 character, a
    run not closed by `-`, leftover bits that are not zero, an odd number of UTF-16 octets, an
    unpaired surrogate, printable ASCII inside a BASE64 run, and two adjacent runs.
    """
    if _plain(s):
        return s
    out: list[str] = []
    i = 0
    n = len(s)
    prev_was_run = False
    while i < n:
        ch = s[i]
        if not _is_printable_ascii(ch):
            # RFC 3501 5.1.3: the encoded form holds only printable US-ASCII.
            raise InvalidName("invalid modified UTF-7: character outside printable US-ASCII")
        if ch != "&":
            out.append(ch)
            i += 1
            prev_was_run = False
            continue
        end = s.find("-", i + 1)
        if end < 0:
            raise InvalidName("invalid modified UTF-7: '&' without closing '-'")
        if end == i + 1:
            out.append("&")  # "&-" is the escaped '&' itself
            prev_was_run = False
        else:
            if prev_was_run:
                # RFC 3501 5.1.3: null shifts ("-&" inside BASE64) are not permitted; the
                # encoder writes one run for consecutive characters.
                raise InvalidName("invalid modified UTF-7: two adjacent BASE64 runs")
            out.append(_decode_run(s[i + 1 : end]))
            prev_was_run = True
        i = end + 1
    return "".join(out)


def _refuse(name: str, reason: str) -> InvalidName:
    # The message is shown to the client (errors.py): it names the problem, never a path.
    return InvalidName(f"invalid mailbox name: {reason}")


def validate_name(name: str, *, create: bool = True) -> str:
    """Check an IMAP-visible folder name and return its canonical form.

    The whole name `INBOX` is case-insensitive (RFC 3501 section 5.1) and comes back as `INBOX`;
    every other name, including `inbox.x`, keeps its case. With `create=False` the IMAP wildcards
    `%` and `*` are let through, so folders other programs created with them stay reachable;
    they are refused when a name is created (RFC 3501 6.3.8 gives them a meaning in LIST).

    Raises `InvalidName` for an empty name or component, `/`, control characters (U+0000-U+001F,
    U+007F), a leading `~`, unpaired surrogates, and names too long once encoded.
    """
    if not name:
        raise _refuse(name, "empty name")
    # ASCII-only comparison: str.upper() would also map e.g. U+0131 (dotless i) to 'I'.
    if name.isascii() and name.upper() == INBOX:
        return INBOX
    for ch in name:
        if ch < "\x20" or ch == "\x7f":
            # Dovecot refuses control characters in new names; they also break log lines and
            # terminal output.
            raise _refuse(name, "control characters are not allowed")
        if ch == "/":
            # '/' would be a path separator inside the Maildir root (Maildir++ layout has no
            # escape for it).
            raise _refuse(name, "'/' is not allowed")
        if "\ud800" <= ch <= "\udfff":
            # Python strs hold code points, so any surrogate here is unpaired; it has no
            # UTF-16 (hence no modified UTF-7) form.
            raise _refuse(name, "unpaired surrogate")
        if create and ch in _WILDCARDS:
            raise _refuse(name, "the IMAP wildcards '%' and '*' are not allowed")
    if name.startswith("~"):
        # Dovecot's mailbox_list_is_valid_fs_name() refuses "Begins with '~'": with full
        # filesystem access such a name means a home directory, so it is never a plain folder.
        raise _refuse(name, "a name may not start with '~'")
    components = name.split(SEPARATOR)
    for component in components:
        if component == "":
            raise _refuse(
                name, f"empty hierarchy level (leading, trailing or double {SEPARATOR!r})"
            )
        if component in (".", ".."):  # impossible with '.' as separator; kept as a guard
            raise _refuse(name, "'.' and '..' are not allowed")
        if len(encode_mutf7(component)) > MAX_COMPONENT_OCTETS:
            raise _refuse(name, "a hierarchy level is too long")
    if len(SEPARATOR) + len(encode_mutf7(name)) > MAX_NAME_OCTETS:
        raise _refuse(name, "name too long")
    return name


def folder_dirname(name: str) -> str:
    """On-disk directory name of a folder, relative to the Maildir root.

    `INBOX` is the root itself and gives `""`; `A.B` gives `.A.B`, each level in modified UTF-7
    (e.g. `Entwürfe` -> `.Entw&APw-rfe`). The name is validated first (as for `create=False`).
    """
    canonical = validate_name(name, create=False)
    if canonical == INBOX:
        return ""
    # '.' is printable ASCII, so encoding the whole name equals encoding each level and joining.
    return SEPARATOR + encode_mutf7(canonical)


def name_from_dirname(dirname: str) -> str | None:
    """IMAP-visible folder name for a directory entry of the Maildir root, or None.

    None for entries that are not folders: not starting with `.`, `.` and `..`, names that are
    not valid modified UTF-7, empty levels, names `validate_name` refuses, and `.INBOX` in any
    case (it would shadow INBOX, which is the root; `folder_dirname` never makes it). The caller
    still has to check that the entry is a directory.
    """
    if not dirname.startswith(SEPARATOR) or dirname in (".", ".."):
        return None
    try:
        name = validate_name(decode_mutf7(dirname[len(SEPARATOR) :]), create=False)
    except InvalidName:
        return None
    if name == INBOX:
        return None
    # decode_mutf7 is strict, so this holds; checking keeps the mapping one-to-one regardless.
    if folder_dirname(name) != dirname:
        return None
    return name


def is_inside(root: str, path: str) -> bool:
    """True if `path` is `root` or below it, compared lexically.

    A last guard against a name escaping the user's mail root through `..` or an absolute path.
    Both paths are made absolute and normalised (`..` collapsed) without resolving symlinks: no
    I/O, it works for paths not created yet, and a mail root reached through a symlink still
    compares equal to itself. It is therefore no defence against a symlink planted in the tree.
    """
    root_n = os.path.normpath(os.path.abspath(root))
    path_n = os.path.normpath(os.path.abspath(path))
    try:
        return os.path.commonpath([root_n, path_n]) == root_n
    except ValueError:  # e.g. different drives on Windows
        return False
