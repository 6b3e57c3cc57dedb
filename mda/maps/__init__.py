"""sendmail-format maps for the delivery agent: aliases(5), virtusertable, access.

Each map is its own module and nothing is re-exported here on purpose: `mda` is started once per
message, so importing `mda.maps.aliases` must not drag in the access map or anything else. The
modules import only interpreter-cheap stdlib modules (os, errno); `typing` and
`dataclasses` are avoided at run time because, measured with `python -X importtime`, each costs
more than a whole bare interpreter start.

- `mda.maps.errors`: `MapError` (temporary failure) and `Refusal` (an SMTP code, DSN and text).
- `mda.maps.cdb`: the compiled index (djb's cdb format) kept next to each source file.
- `mda.maps.aliases`, `mda.maps.virtusertable`, `mda.maps.access`: the maps themselves.
"""
