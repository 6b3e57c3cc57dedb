"""Regenerate ``golden.py``: what Dovecot 2.3 answers for every message of ``corpus.py``.

Run as ``.venv/bin/python -m tests.unit.imap_mime.capture_dovecot`` (root or a user Dovecot
can run as; see ``tests/interop/dovecot.py``).  Each corpus message is dropped into a fresh
Maildir as a file (the way our store keeps it, LF or CRLF), then fetched with ENVELOPE, BODY,
BODYSTRUCTURE, RFC822.SIZE, every section of ``corpus.SECTIONS`` and every partial of
``corpus.PARTIALS``.  The items are kept as the exact text Dovecot sent.
"""

from __future__ import annotations

import os
import pprint
import re
import subprocess
import sys
from pathlib import Path

from tests.interop.dovecot import (
    DovecotImap,
    deliver_foreign,
    make_maildir,
    parse_imap,
    remove_tree,
    traversable_tempdir,
)
from tests.unit.imap_mime.corpus import (
    CORPUS,
    EDGE_CASES,
    EDGE_SECTIONS,
    PARTIALS,
    SEARCH_STATE,
    SEARCHES,
    SECTIONS,
)

GOLDEN = Path(__file__).with_name("golden.py")


def raw_value(data: bytes, pos: int) -> tuple[bytes, int]:
    """The exact text of the IMAP value starting at ``data[pos]`` and the index after it."""
    start = pos
    depth = 0
    while True:
        c = data[pos : pos + 1]
        if c == b"(":
            depth += 1
            pos += 1
        elif c == b")":
            depth -= 1
            pos += 1
        elif c == b'"':
            pos += 1
            while data[pos : pos + 1] != b'"':
                pos += 2 if data[pos : pos + 1] == b"\\" else 1
            pos += 1
        elif c == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", data[pos:])
            assert m is not None, data[pos : pos + 20]
            pos += m.end() + int(m.group(1))
        elif c == b" ":
            pos += 1
            continue
        else:
            m = re.match(rb"[^ ()\r\n]+", data[pos:])
            assert m is not None
            pos += m.end()
        if depth == 0:
            return data[start:pos], pos


def fetch_raw(imap: DovecotImap, uid: int, item: str) -> bytes:
    lines = imap.ok(f"UID FETCH {uid} ({item})")
    resp = b"".join(ln for ln in lines if ln.startswith(b"* "))
    key = item.upper().encode() + b" "
    idx = resp.find(key)
    assert idx >= 0, (item, resp)
    value, _ = raw_value(resp, idx + len(key))
    return value


def fetch_section(imap: DovecotImap, uid: int, spec: str, partial: str = "") -> bytes | None:
    lines = imap.command(f"UID FETCH {uid} (BODY.PEEK[{spec}]{partial})")
    status = DovecotImap.tagged_status(lines)
    if status != "OK":
        return b"<" + status.encode() + b">"
    resp = b"".join(ln for ln in lines if ln.startswith(b"* "))
    data = parse_imap(resp)[3]
    assert isinstance(data, list)
    for key, value in zip(data[::2], data[1::2], strict=True):
        if isinstance(key, bytes) and key.upper().startswith(b"BODY["):
            assert value is None or isinstance(value, bytes)
            return value
    raise AssertionError(resp)


def capture() -> dict[str, dict[str, object]]:
    base = traversable_tempdir("mime-golden-")
    try:
        maildir = make_maildir(base / "Maildir")
        names = list(CORPUS)
        for n, name in enumerate(names):
            deliver_foreign(
                maildir, f"{1700000000 + n}.M1P1.golden,S={len(CORPUS[name])}", CORPUS[name]
            )
        out: dict[str, dict[str, object]] = {}
        with DovecotImap(maildir) as imap:
            imap.select("INBOX")
            uids = _uids_by_name(imap)
            for name in names:
                uid = uids[name]
                entry: dict[str, object] = {}
                for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE", "RFC822.SIZE"):
                    entry[item] = fetch_raw(imap, uid, item)
                sections: dict[str, bytes | None] = {}
                for spec in SECTIONS:
                    sections[spec] = fetch_section(imap, uid, spec)
                entry["sections"] = sections
                partials: dict[str, bytes | None] = {}
                for spec, origin, count in PARTIALS:
                    partials[f"{spec}<{origin}.{count}>"] = fetch_section(
                        imap, uid, spec, f"<{origin}.{count}>"
                    )
                entry["partials"] = partials
                out[name] = entry
        return out
    finally:
        remove_tree(base)


def dovecot_package_version() -> str:
    """The installed package version (``doveconf --version`` does not exist in 2.3)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "dovecot-imapd"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "2.3"
    return out.stdout.strip()


def served(raw: bytes) -> bytes:
    """A stored message as Dovecot serves BODY[]: CRLF, NULs sent as 0x80."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\x00", b"\x80")


def _uids_by_name(imap: DovecotImap, messages: dict[str, bytes] = CORPUS) -> dict[str, int]:
    bodies = {uid: v["BODY[]"] for uid, v in imap.fetch("1:*", "(UID BODY.PEEK[])").items()}
    out: dict[str, int] = {}
    for name, raw in messages.items():
        uids = [uid for uid, body in bodies.items() if body == served(raw)]
        assert len(uids) == 1, (name, uids)
        out[name] = uids[0]
    return out


def capture_messages(messages: list[bytes], sections: list[str]) -> list[dict[str, bytes | None]]:
    """ENVELOPE, BODY, BODYSTRUCTURE and ``sections`` of each message, as Dovecot sends them
    (a section Dovecot refuses is recorded as ``b"<BAD>"``)."""
    base = traversable_tempdir("mime-edge-")
    try:
        maildir = make_maildir(base / "Maildir")
        named = {f"m{n}": raw for n, raw in enumerate(messages)}
        for n, raw in enumerate(messages):
            deliver_foreign(maildir, f"{1700000000 + n}.M{n}P1.edge", raw)
        out: list[dict[str, bytes | None]] = []
        with DovecotImap(maildir) as imap:
            imap.select("INBOX")
            uids = _uids_by_name(imap, named)
            for n in range(len(messages)):
                uid = uids[f"m{n}"]
                entry: dict[str, bytes | None] = {}
                for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
                    entry[item] = fetch_raw(imap, uid, item)
                for spec in sections:
                    entry[spec] = fetch_section(imap, uid, spec)
                out.append(entry)
        return out
    finally:
        remove_tree(base)


def capture_search() -> dict[str, object]:
    """Deliver the corpus with ``SEARCH_STATE``'s flags and dates, then run ``SEARCHES``.

    Returns the state Dovecot reports (uid, seqno, flags, INTERNALDATE, RFC822.SIZE per
    message) and, per search program, the names of the matching messages in UID order.
    """
    base = traversable_tempdir("mime-search-")
    try:
        maildir = make_maildir(base / "Maildir")
        for n, name in enumerate(CORPUS):
            path = deliver_foreign(maildir, f"{1700000000 + n}.M1P1.search", CORPUS[name])
            stamp = SEARCH_STATE[name][1]
            os.utime(path, (stamp, stamp))
        state: dict[str, dict[str, object]] = {}
        results: dict[str, list[str] | str] = {}
        with DovecotImap(maildir) as imap:
            imap.select("INBOX")
            uids = _uids_by_name(imap)
            for name, uid in uids.items():
                flags = SEARCH_STATE[name][0]
                if flags:
                    imap.store(uid, "+FLAGS.SILENT", "(" + " ".join(flags) + ")")
            by_uid = {uid: name for name, uid in uids.items()}
            fetched = imap.fetch("1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
            for seqno, uid in enumerate(sorted(fetched), start=1):
                items = fetched[uid]
                flag_list = items["FLAGS"]
                assert isinstance(flag_list, list)
                state[by_uid[uid]] = {
                    "uid": uid,
                    "seqno": seqno,
                    "flags": sorted(f.decode() for f in flag_list if isinstance(f, bytes)),
                    "internaldate": items["INTERNALDATE"],
                    "size": items["RFC822.SIZE"],
                }
            for program in SEARCHES:
                lines = imap.command("UID SEARCH " + program)
                status = DovecotImap.tagged_status(lines)
                if status != "OK":
                    results[program] = lines[-1].decode().split(" ", 1)[1].strip()
                    continue
                found: list[int] = []
                for line in lines:
                    if line.upper().startswith(b"* SEARCH"):
                        found = [int(x) for x in line.split()[2:]]
                results[program] = [by_uid[uid] for uid in sorted(found)]
        return {"state": state, "results": results}
    finally:
        remove_tree(base)


def main() -> None:
    version = dovecot_package_version()
    data = pprint.pformat(capture(), width=100)
    search = pprint.pformat(capture_search(), width=100)
    edge = pprint.pformat(capture_messages(EDGE_CASES, EDGE_SECTIONS), width=100)
    text = (
        f'"""Answers of Dovecot {version} for the messages of ``corpus.py``.\n\n'
        "Generated by ``python -m tests.unit.imap_mime.capture_dovecot``; do not edit by hand.\n"
        '"""\n\n'
        "# ruff: noqa: E501\n"
        f"GOLDEN: dict[str, dict[str, object]] = {data}\n\n"
        f"SEARCH_GOLDEN: dict[str, object] = {search}\n\n"
        "# corpus.EDGE_CASES, in order\n"
        f"EDGE_GOLDEN: list[dict[str, bytes | None]] = {edge}\n"
    )
    GOLDEN.write_text(text)
    ruff = Path(sys.executable).with_name("ruff")
    if ruff.exists():  # keep the file as `ruff format` wants it
        subprocess.run([str(ruff), "format", "--quiet", str(GOLDEN)], check=False)
    print(f"wrote {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
