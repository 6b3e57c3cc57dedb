"""IMAP4rev1 (RFC 3501) and its extensions, sans-I/O: bytes in, events out; responses as bytes.

- `parser`: `CommandReader` turns received bytes into `Command`, `NeedContinuation`,
  `BadCommand`... events holding the values of `values` (`Atom`, `String`, `ParenList`,
  `FetchAtt`); `arguments`' `as_*` helpers interpret those values where a command puts them.
- `session`: the connection's state and the dispatcher; `commands/`: the command table and one
  handler module per command family.
- `response`: the only writer of bytes: quoting, response codes, response lines, every fixed
  status text, and the one mapping of store errors to `NO [CODE]`.
- `selected`: one session's view of its selected mailbox (sequence numbers, untagged updates).
- `fetch`, `search` + `searching`, `mime`, `patterns`, `sequence`: what FETCH, SEARCH and LIST
  compute, and sequence sets; SEARCH's keys are `searchkeys`', its comparator `casemap` and its
  charsets `charsets`; `binary` (RFC 3516 transfer decoding) and `imapurl` (RFC 5092 URLs, for
  CATENATE).
- `sorting`, `threads` and `preview`: what SORT, THREAD and FETCH PREVIEW compute, over the
  fields of `sortfields`, which a `sortsource` gives (the folder index, or the files read).
- `searchindex`, `indexsource`: what the folder index (mailstore/folderindex.py) keeps for SEARCH's
  header keys and for SORT, THREAD and PREVIEW (the FieldSource the view hands out).

Nothing in this package does I/O or imports Twisted; `mra.net` adapts it to connections.
"""
