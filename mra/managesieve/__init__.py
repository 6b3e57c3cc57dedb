"""ManageSieve (RFC 5804): users upload, check, list, activate and delete their Sieve scripts.

Sans-I/O, like mra/imap and mra/pop3 (see mra/session.py): `session.ManageSieveSession` takes
bytes and gives outputs; `reader` turns bytes into commands, `response` writes every answer,
`scripts` holds the script commands, `storage` the scripts on disk in Pigeonhole's layout
(`~/sieve/NAME.sieve`, the active one linked from `~/.dovecot.sieve`, where `mda` reads it),
and `checker` asks the Sieve engine of `mda` whether a script compiles.
"""
