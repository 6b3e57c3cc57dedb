"""Time and memory of the MIME work on the crafted messages of ``attacks.py`` (issue #17).

Run ``.venv/bin/python -m tests.unit.imap_mime.measure_attacks [--mb 40] [--src DIR]``.
Each attack runs in a child process, limited to ``--timeout`` seconds and 8 GiB of address
space: the operations are timed, then run again under ``tracemalloc``, whose peak (less what
was allocated before, the message itself) is the memory figure.  ``--src`` measures another
checkout, e.g. ``git archive <commit> mra mailstore | tar -x -C /tmp/old``, to compare
with the code before a change.  Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from tests.unit.imap_mime import attacks

MB = 1_000_000

# name -> message of about ``size`` octets (or the fixed shape the brief names)
ATTACKS: dict[str, Callable[[int], bytes]] = {
    "one field": attacks.one_field,
    "100000 fields": lambda size: attacks.many_fields(size, 100_000),
    "3-octet fields": lambda size: attacks.tiny_fields(size // 3),
    "folded 3-octet lines": lambda size: attacks.folded(size // 3),
    "addresses": lambda size: attacks.addresses(size // 21),
    "4-octet addresses": lambda size: attacks.short_addresses(size // 4),
    "named addresses": lambda size: attacks.named_addresses(size // 28),
    "nested comments": lambda size: attacks.nested_comments(size // 2),
    "encoded words": lambda size: attacks.encoded_words(size // 22),
    "multipart 1000 deep": lambda size: attacks.nested_multiparts(1000),
    "rfc822 1000 deep": lambda size: attacks.nested_messages(1000),
    "rfc822 98 deep, big body": lambda size: attacks.nested_messages_big_body(98, size),
    "100000 parts": lambda size: attacks.siblings(100_000),
    "dash lines, 98 deep": lambda size: attacks.dash_lines(size // 4, 98),
    "dash header lines, 98 deep": lambda size: attacks.dash_header_lines(size // 4, 98),
    "near boundaries, 90 deep": lambda size: attacks.near_boundaries(size // 75, 90),
    "long boundary": lambda size: attacks.long_boundary(size // 21),
    "parameters": lambda size: attacks.parameters(size // 8),
    "RFC 2231 index digits": attacks.rfc2231_index,
    "boundary ending in CR": lambda size: attacks.cr_boundary(size // 5),
}
OPERATIONS = ("parse", "ENVELOPE", "BODYSTRUCTURE", "sections", "SEARCH HEADER", "SEARCH TEXT")


def operations(part: Any) -> dict[str, Callable[[], object]]:
    from mra.imap import mime

    deep = "1." * 99 + "MIME"
    return {
        "ENVELOPE": lambda: mime.envelope(part),
        "BODYSTRUCTURE": lambda: mime.bodystructure(part),
        "sections": lambda: [
            mime.section(part, s) for s in ("HEADER.FIELDS (SUBJECT TO)", "TEXT", deep)
        ],
        "SEARCH HEADER": lambda: [mime.header_values(part, n) for n in ("subject", "to")],
        "SEARCH TEXT": lambda: (list(mime.all_header_texts(part)), list(mime.body_texts(part))),
    }


def measure_one(name: str, size: int) -> dict[str, object]:
    from mra.imap import mime  # here: --src decides which one

    raw = ATTACKS[name](size)
    result: dict[str, object] = {"octets": len(raw)}
    start = time.perf_counter()
    part = mime.parse(raw)
    result["parse"] = time.perf_counter() - start
    for op, run in operations(part).items():
        start = time.perf_counter()
        try:
            run()
        except Exception as exc:  # reported: the point of the table
            result[op] = type(exc).__name__
            continue
        result[op] = time.perf_counter() - start
    del part
    tracemalloc.start()  # the same again, for the memory it takes beyond the message
    before = tracemalloc.get_traced_memory()[0]
    for run in operations(mime.parse(raw)).values():
        try:
            run()
        except Exception:  # already reported above
            pass
    result["peak_mb"] = (tracemalloc.get_traced_memory()[1] - before) / 1e6
    tracemalloc.stop()
    return result


def child(name: str, size: int, src: str | None) -> None:
    if src:
        sys.path.insert(0, src)  # before the checkout ``python -m`` runs from
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
    try:
        result = measure_one(name, size)
    except MemoryError:
        result = {"error": "MemoryError"}
    except RecursionError:
        result = {"error": "RecursionError"}
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=40.0, help="message size in MB")
    parser.add_argument("--src", help="measure the mra package of this directory")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--only", action="append", help="attack names to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = int(args.mb * MB)
    if args.child:
        child(args.child, size, args.src)
        return
    print(f"{'attack':28} {'MB':>6} " + " ".join(f"{op:>13}" for op in OPERATIONS) + "  peak MB")
    for name in args.only or ATTACKS:
        cmd = [sys.executable, "-m", __spec__.name, "--mb", str(args.mb), "--child", name]
        if args.src:
            cmd += ["--src", os.path.abspath(args.src)]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.timeout, check=False
            )
            lines = out.stdout.strip().splitlines()
            result = json.loads(lines[-1]) if lines else {"error": out.stderr.strip()[-60:]}
        except subprocess.TimeoutExpired:
            result = {"error": f"over {args.timeout:.0f} s"}
        if "error" in result:
            print(f"{name:28} {'':>6} {result['error']}")
            continue
        cells = []
        for op in OPERATIONS:
            value = result.get(op)
            cells.append(f"{value:13.2f}" if isinstance(value, float) else f"{value!s:>13}")
        octets = float(str(result["octets"])) / MB
        print(f"{name:28} {octets:6.1f} " + " ".join(cells) + f"  {result['peak_mb']:7.0f}")


if __name__ == "__main__":
    main()
