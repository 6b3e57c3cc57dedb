"""Maildir file names (mailstore/filenames.py) and what a folder makes of the names it finds
in cur/ and new/ (mailstore/mailbox.py): files another program, a user with shell access or
a broken tool may have named anything.

Input: lines; each is one file, its first octet choosing new/ or cur/ and the rest its name
(`/` and NUL, which no name can hold, become `_`). Each file holds its own name.

Properties:
- `sizes_of` never raises and gives sizes >= 0 or None; `unique_base` and `join_name` make
  names `sizes_of` and the folder read back (sizes, letters in order, once each);
- the folder serves exactly the files it can (not hidden, printable US-ASCII without spaces:
  the uidlist's syntax), each as a message of its own, two files with one base name too
  (the second gets a base of its own, as Dovecot does), and a second sync finds nothing new
  (a base in both new/ and cur/ is served from cur/ only: Dovecot would rename the other,
  we leave it, see README, Fuzzing);
- each message reads back as the octets of the file it names, its sizes are numbers, its
  flags IMAP flags;
- storing `\\Seen` and a keyword on every message renames them all, loses none, and the next
  sync shows exactly those flags added, each message still reading the same.
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
    served: list[bytes] = []  # the files the folder can serve (each holds its own name)
    bases: dict[str, set[str]] = {"new": set(), "cur": set()}
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
            served.append(raw)
            bases[sub].add(base_of(name))
    box.sync()
    messages = box.messages()
    contents = sorted(box.read_message(m.uid) for m in messages)
    # One base in new/ and cur/: the one in cur/ is served, the other is not (see above).
    both = bases["new"] & bases["cur"]
    if contents != sorted(served) and not (both and set(contents) <= set(served)):
        raise Finding(f"the folder serves {contents}, the files are {sorted(served)}")
    if box.sync():
        raise Finding("a second sync found changes")
    for msg in messages:
        with open(os.path.join(root, msg.subdir, msg.name), "rb") as f:
            if box.read_message(msg.uid) != f.read():
                raise Finding(f"{msg!r} reads as another file")
        if not msg.flags <= set(CHAR_TO_FLAG.values()):
            raise Finding(f"{msg!r} has flags {msg.flags}")
        for n in (box.message_size(msg), box.message_vsize(msg)):
            if not isinstance(n, int) or n < 0:
                raise Finding(f"{msg!r} has size {n!r}")
        box.internaldate(msg)
        box.all_flags(msg)
    before = {m.uid: (set(box.all_flags(m)), box.read_message(m.uid)) for m in messages}
    box.store_flags(list(before), "add", ["\\Seen", "$Fuzz"])
    box.sync()
    after = {m.uid: (set(box.all_flags(m)), box.read_message(m.uid)) for m in box.messages()}
    if set(after) != set(before):
        raise Finding(f"storing flags changed the UIDs: {sorted(before)} -> {sorted(after)}")
    for uid, (flags, content) in after.items():
        if flags != before[uid][0] | {"\\Seen", "$Fuzz"}:
            raise Finding(f"UID {uid}: {sorted(before[uid][0])} + \\Seen $Fuzz = {sorted(flags)}")
        if content != before[uid][1]:
            raise Finding(f"UID {uid} reads differently after the rename")


if __name__ == "__main__":
    main(test_one_input)
