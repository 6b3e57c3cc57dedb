"""ManageSieve (mra/managesieve): client bytes into a real ManageSieveSession, its command
reader, the SASL exchanges, the script storage in a real home directory and the Sieve checks
of PUTSCRIPT and CHECKSCRIPT.

Input: byte 0 picks where the session starts (even: not logged in, odd: logged in, with a
script "s" already stored and active when bit 1 is set too), byte 1 how the rest is cut into
reads (0: in one piece, n: n octets at a time); the rest is what the client sends. The home
directory is emptied for each input.

Properties:
- nothing raises, and the server logs no error;
- everything the server writes is ManageSieve (RFC 5804 section 4): lines of quoted strings,
  literals `{n}` CRLF octets, atoms and response codes in parentheses, CRLF-terminated, each
  either a response (`OK`, `NO`, `BYE`) or data (a capability, a script's name, a script, a
  SASL challenge: starting with a string);
- the session resynchronises: unless the client sent a literal or the session ended, CRLF
  and a NOOP get `OK`;
- when the connection drops, every literal octet the session reserved in the process's pool
  is given back, and so is its per-user session slot.
"""

from __future__ import annotations

import base64
import re

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import PASSWORD, USER, Driver, Finding, Server, import_all, main, quiet_logs
    from mra.auth.glue import AuthService
    from mra.context import Connection, Services
    from mra.managesieve.session import ManageSieveSession

    import_all("mra.managesieve", "mra.auth", "mda.sieve")

PLAIN = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
LOGIN = b'AUTHENTICATE "PLAIN" "' + PLAIN + b'"\r\n'
SCRIPT = b'require "fileinto";\r\nif header :contains "subject" "x" { fileinto "X"; }\r\n'
WITH_SCRIPT = b'PUTSCRIPT "s" {%d+}\r\n%s\r\nSETACTIVE "s"\r\n' % (len(SCRIPT), SCRIPT)
PROBE = b"\r\nNOOP\r\n"
_TOKEN = re.compile(
    rb'"(?:[^"\\\r\n\0]|\\["\\])*"|\{(\d{1,9})\}\r\n|[A-Za-z][A-Za-z0-9/-]*| |\(|\)'
)

quiet_logs()
_server = Server("managesieve", home=True)
_services = Services(_server.config, AuthService(_server.config))


def lines_of(data: bytes) -> list[list[bytes]]:
    """The server's lines, each a list of tokens (a literal's token is its content)."""
    lines: list[list[bytes]] = []
    line: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data.startswith(b"\r\n", pos):
            if not line:
                raise Finding(f"an empty line at {pos}: {data[max(0, pos - 100) : pos + 100]!r}")
            lines.append(line)
            line = []
            pos += 2
            continue
        m = _TOKEN.match(data, pos)
        if m is None:
            raise Finding(f"not ManageSieve at {pos}: {data[max(0, pos - 100) : pos + 100]!r}")
        pos = m.end()
        if m.group(1) is not None:
            size = int(m.group(1))
            if pos + size > len(data):
                raise Finding(f"a literal longer than the output: {data[-200:]!r}")
            line.append(b"{}" + data[pos : pos + size])
            pos += size
        elif m.group() != b" ":
            line.append(m.group())
    if line:
        raise Finding(f"output not ending in CRLF: {data[-200:]!r}")
    for tokens in lines:
        first = tokens[0]
        if first in (b"OK", b"NO", b"BYE"):
            rest = tokens[1:]
            if rest and rest[0] == b"(":
                if b")" not in rest or not re.fullmatch(rb"[A-Z/-]+", rest[1]):
                    raise Finding(f"a response code that is not one: {tokens!r}")
                rest = rest[rest.index(b")") + 1 :]
            if len(rest) > 1 or (rest and not rest[0].startswith((b'"', b"{}"))):
                raise Finding(f"a response with more than its text: {tokens!r}")
        elif not first.startswith((b'"', b"{}")):
            raise Finding(f"a line that is neither a response nor data: {tokens!r}")
    return lines


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    step = data[1]
    body = data[2:]
    _server.reset()
    session = ManageSieveSession(Connection("sieve", "127.0.0.1", exempt=True), _services)
    driver = Driver(session)
    try:
        driver.start()
        if data[0] & 1:
            driver.feed(LOGIN + (WITH_SCRIPT if data[0] & 2 else b""))
        lines_of(driver.take())
        if step == 0:
            driver.feed(body)
        else:
            for i in range(0, len(body), step):
                driver.feed(body[i : i + step])
        lines_of(driver.take())
        open_before = not driver.closed
        driver.feed(PROBE)
        lines = lines_of(driver.take())
        sent_literal = b"{" in body  # an announcement the probe's CRLF may complete
        answered = [b"OK", b'"NOOP completed."'] in lines
        if open_before and not driver.closed and not sent_literal and not answered:
            raise Finding(f"no answer to NOOP after the input: {lines[-5:]!r}")
    finally:
        session.connection_lost()
    if _services.literal_pool.held:
        held = _services.literal_pool.held
        _services.literal_pool.held = 0
        raise Finding(f"{held} octets of literals still held after the connection closed")
    if len(_services.limits.users):
        _services.limits.users._counts.clear()
        raise Finding("a session slot was not given back")


if __name__ == "__main__":
    main(test_one_input)
