"""Random damage to well-formed messages, for never-crash tests and Dovecot comparisons."""

from __future__ import annotations

import random

PUNCTUATION = b' \t"()<>@,;:\\.[]=?-'


def mutate(rng: random.Random, msg: bytes) -> bytes:
    """``msg`` with 1-4 random line edits (drop, duplicate, blank, cut, stray boundary,
    stray punctuation, truncation), then LF or CRLF line ends at random."""
    lines = msg.replace(b"\r\n", b"\n").split(b"\n")
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        i = rng.randrange(len(lines)) if lines else 0
        if op == 0 and lines:
            del lines[i]
        elif op == 1 and lines:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            lines.insert(i, b"")
        elif op == 3 and lines:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        elif op == 4:
            boundaries = [line for line in lines if line.startswith(b"--")]
            if boundaries:
                suffix = rng.choice([b"", b"--", b" x"])
                lines.insert(i, rng.choice(boundaries) + suffix)
        elif op == 5 and lines:
            lines[i] += rng.choice([b" ", b"\t", b";", b'"', b"(", b",", b"<", b"@", b".", b":"])
        elif op == 6:
            lines = lines[: rng.randrange(len(lines) + 1)]
        elif op == 7 and lines and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + bytes([rng.choice(PUNCTUATION)]) + lines[i][j:]
    out = b"\n".join(lines)
    return out.replace(b"\n", b"\r\n") if rng.random() < 0.5 else out
