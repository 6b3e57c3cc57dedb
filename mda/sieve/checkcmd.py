"""`mda sieve check FILE...`: compile scripts as Pigeonhole's `sievec` does, without
delivering anything, and report each error as `FILE:LINE: error: MESSAGE`.

The extensions and limits are those of the configuration (`[sieve]`), so a script that
passes here is one the delivery agent will run. Exit status 0 when every script compiles,
1 when one does not (as sievec), 64 for bad usage.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mailstore.config import Config


def check_files(paths: list[str], config: Config) -> int:
    from .delivery import extensions_for, limits_of
    from .parser import check, format_error

    if not paths:
        _out("usage: mda [--config PATH] sieve check FILE...")
        return 64
    limits = limits_of(config)
    extensions = extensions_for(config)
    status = 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read(limits.max_script_size + 1)
        except OSError as exc:
            _out(f"{path}: error: cannot read the script: {exc.strerror}")
            status = 1
            continue
        if len(data) > limits.max_script_size:
            _out(f"{path}:1: error: script larger than {limits.max_script_size} octets")
            status = 1
            continue
        errors = check(data, limits=limits, extensions=extensions)
        for error in errors:
            _out(format_error(path, error))
        if errors:
            status = 1
    return status


def _out(line: str) -> None:
    from mda.address import visible

    os.write(2, (visible(line) + "\n").encode("utf-8", "replace"))
    sys.stderr.flush()
