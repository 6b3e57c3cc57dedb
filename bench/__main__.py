"""`python -m bench` (`make bench`): every benchmark in turn, each with its defaults.

Run one alone for its options: `python -m bench.store --help`, `python -m bench.mda --help`.
"""

from __future__ import annotations

import sys

from bench import auth, imap, mda, pop3, store


def main() -> int:
    del sys.argv[1:]  # the benchmarks parse sys.argv: give them their defaults
    print("== bench.store ==", flush=True)
    store.main()
    print("\n== bench.mda ==", flush=True)
    status = mda.main([])
    print("\n== bench.pop3 ==", flush=True)
    status = pop3.main([]) or status
    print("\n== bench.imap ==", flush=True)
    status = imap.main([]) or status
    print("\n== bench.auth ==", flush=True)
    return auth.main([]) or status


if __name__ == "__main__":
    sys.exit(main())
