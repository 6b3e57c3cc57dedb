"""`python -m bench` (`make bench`): every benchmark in turn, each with its defaults, then
the charts and the page of bench/results/ (`python -m bench.charts`).

Run one alone for its options: `python -m bench.store --help`, `python -m bench.mda --help`.
Each records its figures in bench/results/NAME.json when it completes without errors.
"""

from __future__ import annotations

import sys

from bench import (
    auth,
    charts,
    cluster,
    condstore,
    idle,
    imap,
    lmtp,
    load,
    mda,
    pop3,
    sort,
    store,
)


def main() -> int:
    del sys.argv[1:]  # the benchmarks parse sys.argv: give them their defaults
    print("== bench.store ==", flush=True)
    store.main()
    print("\n== bench.mda ==", flush=True)
    status = mda.main([])
    print("\n== bench.lmtp ==", flush=True)
    status = lmtp.main([]) or status
    print("\n== bench.pop3 ==", flush=True)
    status = pop3.main([]) or status
    print("\n== bench.imap ==", flush=True)
    status = imap.main([]) or status
    print("\n== bench.condstore ==", flush=True)
    condstore.main()
    print("\n== bench.sort ==", flush=True)
    status = sort.main([]) or status
    print("\n== bench.load ==", flush=True)
    status = load.main([]) or status
    print("\n== bench.auth ==", flush=True)
    status = auth.main([]) or status
    print("\n== bench.idle ==", flush=True)
    status = idle.main([]) or status
    print("\n== bench.cluster ==", flush=True)
    status = cluster.main([]) or status
    print("\n== bench.charts ==", flush=True)
    return charts.main([]) or status


if __name__ == "__main__":
    sys.exit(main())
