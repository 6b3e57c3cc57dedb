"""Maildir file names (mailstore/filenames.py) and what a folder makes of the names it finds
in cur/ and new/ (mailstore/mailbox.py): files another program, a user with shell access or
a broken tool may have named anything.

Input: lines; each is one file, its first octet choosing new/ or cur/ and the rest its name
(`/` and NUL, which no name can hold, become `_`). Each file holds its own name.

Properties:
- `sizes_of` never raises and gives sizes >= 0 or None; `unique_base` and `join_name` make
  names `sizes_of` and the folder read back (sizes, letters in order, once each);
- the folder lists exactly the files it can serve (not hidden, printable US-ASCII without
  spaces: the uidlist's syntax), one per base name, each with a UID, and a second sync
  finds nothing new;
- each message reads back as the octets of the file it names, its sizes are numbers, its
  flags IMAP flags;
- storing `\\Seen` and a keyword on every message renames them all, loses none, and the next
  sync shows exactly those flags added. (Not where two files share a base name: the folder
  serves one of them, the one whose name sorts first, and logs the other; a flag change
  renames the one served, which may then sort after the other. Dovecot gives the second
  file a new base name instead; see the report of issue #16.)
"""

from __future__ import annotations

import os

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, main, quiet_logs
    from mailstore.filenames import CHAR_TO_FLAG, base_of, join_name, sizes_of, unique_base
    from mailstore.store import MailStore

quiet_logs()


def check_name(name: str) -> None:
    for value in sizes_of(base_of(name)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise Finding(f"sizes_of({base_of(name)!r}) gave {value!r}")
    letters = name.partition(":")[2]
    joined = join_name(base_of(name), letters)
    if joined.partition(":2,")[2] != "".join(sorted(set(letters))):
        raise Finding(f"join_name({base_of(name)!r}, {letters!r}) gave {joined!r}")


def servable(name: str) -> bool:
    return not name.startswith(".") and name.isascii() and name.isprintable() and " " not in name


def test_one_input(data: bytes) -> None:
    size = int.from_bytes(data[:4], "big") if len(data) >= 4 else len(data)
    base = unique_base(size, size * 2)
    if sizes_of(base) != (size, size * 2):
        raise Finding(f"unique_base({size}, {2 * size}) = {base!r}, sizes_of says {sizes_of(base)}")
    root = fresh_dir("maildir")
    box = MailStore(root).mailbox("INBOX")
    bases: dict[str, int] = {}  # of the files the folder can serve: how many have each
    for line in data.split(b"\n")[:16]:
        if not line:
            continue
        sub = "cur" if line[0] & 1 else "new"
        raw = line[1:].replace(b"/", b"_").replace(b"\0", b"_")[:250]
        if raw in (b"", b".", b".."):
            continue
        name = os.fsdecode(raw)
        check_name(name)
        path = os.path.join(root, sub, raw.decode("utf-8", "surrogateescape"))
        if os.path.lexists(path):
            continue
        with open(path, "wb") as f:
            f.write(raw)
        if servable(name):
            bases[base_of(name)] = bases.get(base_of(name), 0) + 1
    box.sync()
    messages = {m.base: m for m in box.messages()}
    if set(messages) != set(bases):
        raise Finding(f"the folder lists {sorted(messages)}, the files are {sorted(bases)}")
    if box.sync():
        raise Finding("a second sync found changes")
    for msg in messages.values():
        if box.read_message(msg.uid) != msg.name.encode():
            raise Finding(f"{msg!r} reads as {box.read_message(msg.uid)!r}")
        if not msg.flags <= set(CHAR_TO_FLAG.values()):
            raise Finding(f"{msg!r} has flags {msg.flags}")
        for n in (box.message_size(msg), box.message_vsize(msg)):
            if not isinstance(n, int) or n < 0:
                raise Finding(f"{msg!r} has size {n!r}")
        box.internaldate(msg)
        box.all_flags(msg)
    before = {m.uid: set(box.all_flags(m)) for m in box.messages()}
    box.store_flags(list(before), "add", ["\\Seen", "$Fuzz"])
    box.sync()
    after = {m.uid: set(box.all_flags(m)) for m in box.messages()}
    if set(after) != set(before):
        raise Finding(f"storing flags changed the UIDs: {sorted(before)} -> {sorted(after)}")
    for uid, flags in after.items():
        if bases[box.get(uid).base] > 1:
            continue  # two files, one message: which one is served may change (see above)
        if flags != before[uid] | {"\\Seen", "$Fuzz"}:
            raise Finding(f"UID {uid}: {sorted(before[uid])} + \\Seen $Fuzz = {sorted(flags)}")
        if box.read_message(uid).partition(b":")[0] != box.get(uid).base.encode():
            raise Finding(f"UID {uid} reads differently after the rename")


if __name__ == "__main__":
    main(test_one_input)
