"""The text format makemap(8) compiles: one `key<white space>value` entry a line.

Shared by the virtusertable and the access map, which sendmail builds with makemap:

- a line that is empty or starts with `#` is skipped;
- the key runs to the first white space, the value is the rest of the line with the white
  space around it removed; a line starting with white space, or with a key and no value, is
  reported and skipped (makemap: "syntax error", "no RHS for LHS");
- keys are folded to lower case (makemap folds unless given -f, and sendmail folds the lookup
  key the same way), values keep their case;
- a key given twice: the FIRST entry wins. makemap stores without overwriting unless run with
  -r, reports "duplicate key" and keeps going. (newaliases, unlike makemap, keeps the last.)
- our addition: a map may pass `normalize`, applied to every key after folding, so that an
  entry is stored in the canonical spelling lookups use (`mda.address.normalize_key`): the
  access map's `To:"bob"@Example.TEST.` and `To:bob@example.test` are one key.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def parse_makemap(
    text: str, path: str, normalize: Callable[[str], str] | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse makemap input: ([(lower-cased key, value)] in file order, warnings)."""
    entries: dict[str, str] = {}
    warnings: list[str] = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if line[0].isspace():
            if line.strip():
                warnings.append(f"{path}: line {lineno}: syntax error: leading white space")
            continue
        parts = line.split(None, 1)
        key = parts[0].lower()
        if normalize is not None:
            key = normalize(key)
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value:
            warnings.append(f"{path}: line {lineno}: no RHS for LHS {parts[0]}")
            continue
        if key in entries:
            warnings.append(f"{path}: line {lineno}: key {key}: duplicate key (first kept)")
            continue
        entries[key] = value
    return list(entries.items()), warnings
