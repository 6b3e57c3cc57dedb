"""IMAP: client bytes into a real ImapSession over a real store, the command dispatch and every
handler behind it.

Input: byte 0 picks where the session starts (0 not logged in, 1 logged in, 2 INBOX
selected, 3 INBOX examined), byte 1 how the rest is cut into reads (0 in one piece, n: n
octets at a time), the rest is what the client sends. The store is laid out afresh for
each input (mail in /dev/shm), as the transcript tests do.

Properties:
- nothing raises, and the server logs no error (a handler that raised, a stream that failed);
- everything the server writes is IMAP (fuzz/_grammar.py), ENVELOPE and BODYSTRUCTURE
  included;
- the session resynchronises: unless the client sent a literal, closed the session, or
  made too many mistakes, `CRLF * CRLF` (ending a line, an IDLE, a SASL exchange) and a
  NOOP get `OK`;
- when the connection drops, every literal octet the session reserved in the process's
  pool is given back, and so is its per-user session slot.
"""

from __future__ import annotations

import re

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz import _grammar
    from fuzz._harness import PASSWORD, USER, Driver, Finding, Server, main, quiet_logs
    from mra.auth.glue import AuthService
    from mra.context import Connection, Services
    from mra.imap.session import ImapSession

SETUP = (
    b"",
    f"L0 LOGIN {USER} {PASSWORD}\r\n".encode(),
    f"L0 LOGIN {USER} {PASSWORD}\r\nS0 SELECT INBOX\r\n".encode(),
    f"L0 LOGIN {USER} {PASSWORD}\r\nS0 EXAMINE INBOX\r\n".encode(),
)
PROBE = b"\r\n*\r\nZZ9 NOOP\r\n"
_PROBE_OK = re.compile(rb"(?:^|\r\n)ZZ9 OK ")

_events = quiet_logs()
_server = Server("imap", "[limits]\nmax_literal_memory = 1048576\n")
_services = Services(_server.config, AuthService(_server.config))


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    setup = SETUP[data[0] % len(SETUP)]
    step = data[1]
    body = data[2:]
    _server.reset()
    # exempt: the address throttles would soon block every login of a million inputs.
    session = ImapSession(Connection("imap", "127.0.0.1", exempt=True), _services)
    driver = Driver(session)
    try:
        driver.start()
        driver.feed(setup)
        if step == 0:
            driver.feed(body)
        else:
            for i in range(0, len(body), step):
                driver.feed(body[i : i + step])
        sent = driver.take()
        probe = not driver.closed and b"{" not in body
        driver.feed(PROBE)
        answer = driver.take()
    finally:
        session.connection_lost()
    _grammar.read_responses(sent)
    _grammar.read_responses(answer)
    if probe and not driver.closed and _PROBE_OK.search(answer) is None:
        raise Finding(f"no OK to the NOOP after the input: {answer[-300:]!r}")
    if _services.literal_pool.held:
        held = _services.literal_pool.held
        _services.literal_pool.held = 0
        raise Finding(f"{held} literal octets still reserved after the connection closed")
    if len(_services.limits.users):
        _services.limits.users._counts.clear()
        raise Finding("a session slot was not given back")


# What the first FETCH and SEARCH load and build, before the fuzzer's clock starts.
test_one_input(
    b"\2\0a FETCH 1:* (ENVELOPE BODYSTRUCTURE BINARY[1] BODY[TEXT])\r\n"
    b"b SEARCH CHARSET UTF-8 OR BODY caf\xc3\xa9 TEXT ko\r\n"
)

if __name__ == "__main__":
    main(test_one_input)
