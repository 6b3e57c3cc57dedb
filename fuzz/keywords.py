"""`dovecot-keywords` (mailstore/keywords.py): which keyword each letter a..z stands for, in a
file another program may have written anything into.

Input: byte 0 says where the rest is cut: before the cut, the file's octets; after it,
keywords a client stores (separated by blanks).

Properties:
- reading never raises, and keeps only valid keywords at indexes 0-25;
- storing keywords either refuses them (an invalid keyword: InvalidName; a 27th: LimitExceeded)
  or gives letters that name exactly those keywords (case-insensitively);
- a letter never changes its meaning: what the file said before is still there, at the same
  letter, and the file read afresh says what the object says.
"""

from __future__ import annotations

import os

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, main, quiet_logs
    from mailstore.errors import InvalidName, LimitExceeded
    from mailstore.keywords import Keywords, valid_keyword

quiet_logs()
_dir = fresh_dir("keywords")
_tmp = fresh_dir("keywords-tmp")
PATH = os.path.join(_dir, "dovecot-keywords")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    cut = 1 + data[0] * (len(data) - 1) // 256
    with open(PATH, "wb") as f:
        f.write(data[1:cut])
    kw = Keywords(PATH)
    kw.refresh()
    before = list(kw.names)
    if len(before) != 26 or not all(n is None or valid_keyword(n) for n in before):
        raise Finding(f"read {before}")
    words = set(data[cut:].decode("utf-8", "replace").split())
    try:
        letters = kw.letters_for(words, _tmp)
    except InvalidName:
        if all(valid_keyword(w) for w in words):
            raise
        return
    except LimitExceeded:
        return
    named = {n.lower() for n in kw.letters_to_names(letters)}
    if named != {w.lower() for w in words}:
        raise Finding(f"{sorted(words)} stored as {letters!r}, which names {sorted(named)}")
    for i, name in enumerate(before):
        if name is not None and kw.names[i] != name:
            raise Finding(f"letter {chr(97 + i)} was {name!r}, is now {kw.names[i]!r}")
    fresh = Keywords(PATH)
    fresh.refresh()
    if fresh.names != kw.names:
        raise Finding(f"the file says {fresh.names}, the object {kw.names}")


if __name__ == "__main__":
    main(test_one_input)
