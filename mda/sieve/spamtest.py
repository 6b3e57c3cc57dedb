"""The values of "spamtest", "spamtestplus" and "virustest" (RFC 5235), read from a header a
scanner wrote, the way Pigeonhole reads it (ext-spamvirustest-common.c): a status header, with
an optional regular expression whose first group is the status; the status is a score (a
decimal number against a maximum, fixed or from another header), a string whose length is the
score ("*****"), or one of a list of texts. The result is "0" when nothing could be read
(RFC 5235: the message was not tested), else 1-10 for spamtest, 0-100 for :percent, and 1-5
for virustest.
"""

from __future__ import annotations

from .message import SieveMessage


class StatusTest:
    """One configured test. `status_header` and `max_header` are Pigeonhole's "Name" or
    "Name: regexp" (the first group of the regexp is the value)."""

    def __init__(
        self,
        *,
        virus: bool,
        status_header: str,
        status_type: str = "score",
        max_value: float = 0.0,
        max_header: str = "",
        text_values: tuple[str, ...] = (),
    ) -> None:
        self.virus = virus
        self.status = _header_spec(status_header)
        self.status_type = status_type
        self.max_value = max_value
        self.max_header = _header_spec(max_header) if max_header else None
        self.text_values = text_values

    def value(self, msg: SieveMessage, percent: bool) -> str:
        ratio = self._ratio(msg)
        if ratio is None:
            return "0"
        ratio = min(max(ratio, 0.0), 1.0)
        if percent:
            return str(int(ratio * 100 + 0.001))
        return str(int(ratio * (4 if self.virus else 9) + 1.001))

    def _ratio(self, msg: SieveMessage) -> float | None:
        top = 5.0 if self.virus else 10.0
        if self.status_type != "text":
            if self.max_header is not None:
                found = _read(msg, self.max_header)
                top_value = _decimal(found) if found is not None else None
                if top_value is None:
                    return None
                top = top_value
            else:
                top = self.max_value
            if top == 0:
                return None
        status = _read(msg, self.status)
        if status is None:
            return None
        if self.status_type == "score":
            score = _decimal(status)
        elif self.status_type == "strlen":
            score = float(len(status))
        else:
            score = None
            for index, text in enumerate(self.text_values[: int(top) + 1]):
                if text and status == text:
                    score = float(index)
                    break
        if score is None:
            return None
        return score / top


def _header_spec(spec: str) -> tuple[str, object]:
    name, colon, pattern = spec.partition(":")
    if not colon:
        return name.strip(), None
    from .regex import compile_regex
    from .strings import to_octets

    return name.strip(), compile_regex(to_octets(pattern.strip()), ignore_case=True)


def _read(msg: SieveMessage, spec: tuple[str, object]) -> str | None:
    name, pattern = spec
    values = msg.header(name)
    if not values:
        return None
    value = values[0]
    if pattern is None:
        return value
    found = pattern.search(value.encode("utf-8", "surrogateescape"))  # type: ignore[attr-defined]
    if found is None or not found.groups() or found.group(1) is None:
        return None
    group: bytes = found.group(1)
    return group.decode("utf-8", "replace")


def _decimal(text: str) -> float | None:
    """Pigeonhole's decimal: an optional sign, digits, an optional fraction; what follows is
    ignored."""
    text = text.strip()
    end = 0
    if text[:1] in "+-" and text[:1]:
        end = 1
    digits = end
    while end < len(text) and text[end] in "0123456789.":
        end += 1
    if end == digits:
        return None
    try:
        return float(text[:end])
    except ValueError:
        return None
