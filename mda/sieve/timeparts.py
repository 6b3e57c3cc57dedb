"""Dates for the "date" and "currentdate" tests (RFC 5260 sections 4 and 5): reading an RFC
5322 date-time from a header, moving it to a time zone, and the date parts a script compares.

Dates are plain (seconds since the epoch, zone offset in minutes): `time.gmtime` and a few
lines of arithmetic do the calendar, so nothing is imported beyond `time`.
"""

from __future__ import annotations

import time

from .errors import SieveError

DATE_PARTS = frozenset(
    {
        "year",
        "month",
        "day",
        "date",
        "julian",
        "hour",
        "minute",
        "second",
        "time",
        "iso8601",
        "std11",
        "zone",
        "weekday",
    }
)

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 5322 section 4.3: obsolete zones; military letters mean -0000 ("unknown").
_ZONES = {
    "ut": 0,
    "gmt": 0,
    "z": 0,
    "est": -300,
    "edt": -240,
    "cst": -360,
    "cdt": -300,
    "mst": -420,
    "mdt": -360,
    "pst": -480,
    "pdt": -420,
}
_MJD_EPOCH_DAYS = 40587  # the Modified Julian Day of 1970-01-01


def check_zone(zone: str, line: int) -> None:
    """RFC 5260 section 4.1: a zone is "+hhmm" or "-hhmm"."""
    if parse_zone(zone) is None:
        raise SieveError(f"invalid time zone {zone!r} (expected +hhmm or -hhmm)", line)


def parse_zone(zone: str) -> int | None:
    """A "+hhmm"/"-hhmm" offset in minutes, or None."""
    if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit() or not zone.isascii():
        return None
    hours, minutes = int(zone[1:3]), int(zone[3:5])
    if hours > 23 or minutes > 59:
        return None
    offset = hours * 60 + minutes
    return -offset if zone[0] == "-" else offset


def local_offset(timestamp: float) -> int:
    """The local zone's offset in minutes at that moment (RFC 5260: the default zone)."""
    return (time.localtime(timestamp).tm_gmtoff or 0) // 60


def parse_date(value: str) -> tuple[int, int] | None:
    """An RFC 5322 date-time (obsolete forms too): (seconds since the epoch, the zone's offset
    in minutes), or None if it is not a date."""
    text = value.replace(",", " ").split("(")[0]
    words = text.split()
    if words and words[0][:3].lower() in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        words = words[1:]
    if len(words) < 4:
        return None
    day_text, month_text, year_text, clock = words[:4]
    zone_text = words[4] if len(words) > 4 else "-0000"
    month = _MONTHS.get(month_text[:3].lower())
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses.
    if not (day_text + year_text + clock).isascii():
        return None
    if not (day_text.isdigit() and year_text.isdigit() and month and len(day_text) <= 2):
        return None
    day = int(day_text)
    year = int(year_text[:6])
    if len(year_text) <= 2:
        year += 2000 if year < 50 else 1900  # RFC 5322 section 4.3
    elif len(year_text) == 3:
        year += 1900
    pieces = clock.split(":")
    if not 2 <= len(pieces) <= 3 or not all(p.isdigit() and len(p) <= 2 for p in pieces):
        return None
    hour, minute = int(pieces[0]), int(pieces[1])
    second = int(pieces[2]) if len(pieces) == 3 else 0
    if not (1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    offset = parse_zone(zone_text)
    if offset is None:
        offset = _ZONES.get(zone_text.lower(), 0)
    if day > _month_days(year, month):
        return None
    return _timegm(year, month, day, hour, minute, second) - offset * 60, offset


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _timegm(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
    """Seconds since the epoch of a UTC date (the proleptic Gregorian calendar; Howard
    Hinnant's days_from_civil), without importing `calendar`."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def date_part(stamp: int, offset: int, part: str) -> str:
    """One date part (RFC 5260 section 4.2) of the moment `stamp`, seen in zone `offset`."""
    t = time.gmtime(stamp + offset * 60)
    sign = "-" if offset < 0 else "+"
    zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    if part == "year":
        return f"{t.tm_year:04d}"
    if part == "month":
        return f"{t.tm_mon:02d}"
    if part == "day":
        return f"{t.tm_mday:02d}"
    if part == "date":
        return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    if part == "julian":
        return str((stamp + offset * 60) // 86400 + _MJD_EPOCH_DAYS)
    if part == "hour":
        return f"{t.tm_hour:02d}"
    if part == "minute":
        return f"{t.tm_min:02d}"
    if part == "second":
        return f"{t.tm_sec:02d}"
    if part == "time":
        return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if part == "iso8601":
        iso_zone = "Z" if offset == 0 else f"{zone[:3]}:{zone[3:]}"  # as Pigeonhole
        return (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}{iso_zone}"
        )
    if part == "std11":
        return (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTH_NAMES[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {zone}"
        )
    if part == "zone":
        return zone
    if part == "weekday":
        return str((t.tm_wday + 1) % 7)  # RFC 5260: 0 is Sunday
    return ""
