"""Mail location templates: the checks shared by the configuration and the user database.

`[mail] location` and a passwd-file's `userdb_mail=` are the same kind of template (see
`mailstore.userdb.expand_location`). This module is on the delivery agent's start-up path, so it
imports nothing: `mailstore.config` (tomllib, dataclasses, re) is far too costly for that.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["LOCATION_VARIABLES", "check_location", "strip_location_prefix"]

# The single letters a mail location template may use after '%' (and after '%L', lowercased).
LOCATION_VARIABLES: Final = frozenset("undh")

# Dovecot mail drivers we recognise so that a copied mail_location fails clearly.
_OTHER_DRIVERS: Final = frozenset(
    {"mbox", "mdbox", "sdbox", "dbox", "imapc", "pop3c", "obox", "cydir", "raw", "shared"}
)
_OPTION_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")


def strip_location_prefix(location: str) -> str:
    """Drop Dovecot's optional "maildir:" driver prefix from a mail location."""
    return location[len("maildir:") :] if location.startswith("maildir:") else location


def _has_option(location: str) -> bool:
    """Whether the location holds a Dovecot option like ":INDEX=" (":" [A-Z_]+ "=")."""
    colon = location.find(":")
    while colon >= 0:
        end = colon + 1
        while end < len(location) and location[end] in _OPTION_CHARS:
            end += 1
        if end > colon + 1 and location[end : end + 1] == "=":
            return True
        colon = location.find(":", colon + 1)
    return False


def check_location(location: str) -> str | None:
    """The problem with a mail location template (after its "maildir:" prefix), or None."""
    if not location:
        return "must not be empty"
    driver, colon, _ = location.partition(":")
    if colon and driver in _OTHER_DRIVERS:
        return f"only maildir is supported, not {driver!r}"
    if _has_option(location):
        return "Dovecot location options (like ':INDEX=') are not supported"
    i = 0
    while i < len(location):
        if location[i] != "%":
            i += 1
            continue
        var = location[i + 1 : i + 2]
        if var == "L":
            var = location[i + 2 : i + 3]
            i += 1
        elif var == "%":
            i += 2
            continue
        if var not in LOCATION_VARIABLES:
            shown = f"%{var}" if var else "a lone '%'"
            return f"unknown variable {shown} (known: %u %n %d %h, %L to lowercase, %% for '%')"
        i += 2
    return None
