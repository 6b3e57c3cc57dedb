"""IMAP4rev1 (RFC 3501), sans-I/O: bytes in, events out; responses built as bytes.

- `mra.imap.parser`: `CommandReader` turns received bytes into `Command`, `NeedContinuation`,
  `BadCommand`... events holding typed values (`Atom`, `String`, `ParenList`, `FetchAtt`), and
  the `as_*` helpers interpret those values.
- `mra.imap.response`: the only writer of bytes: quoting, response codes, response lines, and
  the one mapping of store errors to `NO [CODE]`.
- `mra.imap.sequence`: sequence sets: parse, resolve against a mailbox, format.

Nothing in this package does I/O or imports Twisted; `mra.net` adapts it to connections.
"""
