"""LMTP (RFC 2033) for `mra serve`: mail from the MTA into the store, through mda's library."""
