"""mda/interrupt.py: a signal's exception that Python could not propagate is not printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from mda import interrupt
interrupt.install()

import os

class Signalled:
    def __del__(self):  # the signal lands here; its handler's exception cannot propagate
        os.kill(os.getpid(), 10)
        for _ in range(1000):
            pass

class Failing:
    def __del__(self):
        raise ValueError("something else")

Signalled()  # swallowed, as in a weakref callback of the import system
Failing()  # printed, as Python prints it
try:
    interrupt.check()
except interrupt.Interrupted as exc:
    print(f"4.3.0 {exc}", file=sys.stderr)
    sys.exit(75)
"""


def test_attack_signal_in_a_finalizer_leaves_one_line_on_stderr() -> None:
    """A signal that lands in a `__del__` or a weakref callback: Python prints "Exception
    ignored in ..." for it, which the MTA would put into the bounce or the log besides mda's
    one line (seen as a flaky test_attack_signal_while_reading_the_message_is_a_retry)."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 75
    assert "interrupted by signal 10" not in done.stderr.replace("4.3.0 interrupted", "")
    assert done.stderr.endswith("4.3.0 interrupted by signal 10\n")
    assert "something else" in done.stderr  # other unraisable exceptions are still shown
