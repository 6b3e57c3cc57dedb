"""Maildir file names: the sizes they carry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailstore.filenames import _sizes_of_fields, sizes_of

PIECES = st.sampled_from([",S=", ",W=", ",", "S=", "=", "1", "0", "42", "x", ".", "M9P1"])


def test_usual_names() -> None:
    assert sizes_of("1764390000.M123P4Q1R0a1b.host,S=4823,W=4901") == (4823, 4901)
    assert sizes_of("1764390000.M123P4.host,S=4823") == (4823, None)
    assert sizes_of("1764390000.M123P4.host,W=12") == (None, 12)
    assert sizes_of("1764390000.M123P4.host") == (None, None)
    assert sizes_of("x,S=12,X=5,W=34") == (12, 34)
    assert sizes_of("x,S=1" + "9" * 19 + ",W=3") == (None, 3)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_the_quick_path_agrees_with_reading_every_field(base: str) -> None:
    assert sizes_of(base) == _sizes_of_fields(base)


def test_fuzz_sizes_of_unicode_digits() -> None:
    """Found by fuzz/maildir_names.py: `str.isdigit()` is true for `²` and `١`, which int()
    refuses or reads as a number: a size is ASCII digits or not a size."""
    assert sizes_of("x,S=\u00b2,W=1") == (None, 1)
    assert sizes_of("x,S=1,W=\u00b2") == (1, None)
    assert sizes_of("x,S=\u0661\u0662,W=3") == (None, 3)
    assert _sizes_of_fields("x,S=\u00b2,W=\u0661") == (None, None)
