"""`dovecot-uidlist` (mailstore/uidlist.py): a file another program (Dovecot, a crash, a
disk error) may have left in any state.

Input: the file's octets; the last octet says where to cut them for the incremental read.

Properties:
- reading never raises: a damaged header makes the file absent, a damaged line is skipped;
- reading a file in two steps (a part, then the rest appended, as a reader that found the
  file grown does) gives the same state as reading it at once;
- what was read, written out (`rewrite`) and read again is the same: header, records, the
  next UID; and every UID is within 1..MAX_UID, in order;
- `append` gives new bases UIDs after every UID listed, and the file, read afresh, says so.
"""

from __future__ import annotations

import os

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import Finding, fresh_dir, main, quiet_logs
    from mailstore.uidlist import MAX_UID, UidList, UidsExhausted

quiet_logs()
_dir = fresh_dir("uidlist")
_tmp = fresh_dir("uidlist-tmp")
PATH = os.path.join(_dir, "dovecot-uidlist")


def state(ul: UidList) -> tuple[object, ...]:
    return (
        ul.exists,
        ul.version,
        ul.uidvalidity,
        ul.header_next_uid,
        ul.guid,
        tuple(ul.header_extra),
        dict(ul.records),
        ul.max_uid,
    )


def write(data: bytes) -> None:
    with open(PATH, "wb") as f:
        f.write(data)


def read() -> UidList:
    ul = UidList(PATH)
    ul.refresh()
    return ul


def test_one_input(data: bytes) -> None:
    if not data:
        return
    cut = data[-1] * len(data) // 256
    body = data[:-1]
    write(body)
    whole = read()
    # Incremental: the same object sees the file grow (same inode: appended, not replaced).
    write(body[:cut])
    grown = read()
    with open(PATH, "ab") as f:
        f.write(body[cut:])
    os.utime(PATH, ns=(1, 1))  # a different mtime, whatever the clock's granularity
    grown.refresh()
    if state(grown) != state(whole):
        raise Finding(
            f"read in two steps (cut at {cut}):\n{state(grown)}\nat once:\n{state(whole)}"
        )
    uids = [rec[0] for rec in whole.records.values()]
    if uids != sorted(set(uids)) or any(not 1 <= u <= MAX_UID for u in uids):
        raise Finding(f"UIDs out of order or range: {uids}")
    if not whole.exists:
        return
    whole.rewrite(_tmp)
    again = read()
    kept = (again.uidvalidity, again.guid, again.header_extra, again.records, again.next_uid)
    if kept != (whole.uidvalidity, whole.guid, whole.header_extra, whole.records, whole.next_uid):
        raise Finding(f"written and read back:\n{state(again)}\nwas:\n{state(whole)}")
    bases = ["fuzz-new-1", "fuzz-new-2"]
    old = {b: again.records[b][0] for b in bases if b in again.records}
    highest = again.max_uid
    try:
        new = again.append([(b, b + ":2,S") for b in bases])
    except UidsExhausted:
        return
    for base, uid in zip(bases, new, strict=True):
        if base in old and uid != old[base]:
            raise Finding(f"append gave {base} UID {uid}, it had {old[base]}")
        if base not in old and not highest < uid <= MAX_UID:
            raise Finding(f"append gave {base} UID {uid}, after {highest}")
    last = read()
    got = [last.records[b][0] if b in last.records else None for b in bases]
    if got != new:
        raise Finding(f"append gave {new}, the file says {got}")


if __name__ == "__main__":
    main(test_one_input)
