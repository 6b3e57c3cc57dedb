"""`python -m mda`: the same as the `mda` command."""

import sys

from mda.cli import main

if __name__ == "__main__":
    sys.exit(main())
