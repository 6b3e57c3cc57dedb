"""`python -m mda`: the same as the `mda` command."""

import sys

from mda.cli import main

sys.exit(main())
