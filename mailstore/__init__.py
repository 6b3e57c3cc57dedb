"""mailstore: the Maildir++ store shared by `mra` and `mda`, in Dovecot 2.3's on-disk format."""

# The version of the whole distribution (mra-mda): pyproject.toml reads it from here, and
# `mra --version` and `mda --version` print it without importing package metadata.
__version__ = "0.1.0"
