"""The Dovecot auth protocol (mra/authserver/dovecot.py): what an MTA's connection to `[listen]
auth` sends, into a real DovecotAuthSession over a real passwd-file, throttle and SASL code.

Input: byte 0: bit 0 set sends the handshake (`VERSION 1 2`, `CPID 42`) before the rest, so
that the fuzzer starts with requests; byte 1 how the rest is cut into reads (0: a line at a
time, n: n octets at a time); the rest is what the client sends. Each input gets a fresh
throttle (the services are made afresh), so that one input's failures do not block the next.
The lookups and hashes (`Spawn`) and the failure delay (`Timer`) run as the reactor would run
them once the session has taken a read (fuzz/_harness.py's Driver), without waiting.

Properties:
- nothing raises, and the server logs no error;
- what the server writes is LF-terminated lines of TAB-separated fields, without CR or NUL
  (values are tab-escaped), each one of the handshake's lines or CONT, OK or FAIL with the id
  of a request the client made (an `AUTH` or a `CONT` with that number in the input);
- OK names the one user there is, and only for a request that sent its password;
- once the client is done, a last AUTH with the right password (PLAIN) gets OK or FAIL for
  its id, unless the connection ended; after a good handshake and nothing else it is OK.
"""

from __future__ import annotations

import base64
import re

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import PASSWORD, USER, Driver, Finding, Server, import_all, main, quiet_logs
    from mra.auth.glue import AuthService
    from mra.authserver.dovecot import DovecotAuthSession
    from mra.context import Connection, Services

    import_all("mra.authserver", "mra.auth")

HANDSHAKE = b"VERSION\t1\t2\nCPID\t42\n"
GOOD = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
PROBE_ID = b"4000000000"
PROBE = b"\nAUTH\t" + PROBE_ID + b"\tPLAIN\tservice=smtp\tresp=" + GOOD + b"\n"
_GREETING = {"VERSION", "MECH", "SPID", "CUID", "COOKIE", "DONE"}
_ANSWERS = {"CONT", "OK", "FAIL"}

quiet_logs()
_server = Server("auth_dovecot")


def check_output(data: bytes, ids: set[bytes], sent: bytes) -> list[list[bytes]]:
    """The lines written, each split into fields."""
    if data and not data.endswith(b"\n"):
        raise Finding(f"output not ending in LF: {data[-100:]!r}")
    lines = [line.split(b"\t") for line in data.split(b"\n")[:-1]]
    for fields in lines:
        if b"\r" in b"\t".join(fields) or b"\0" in b"\t".join(fields):
            raise Finding(f"a CR or NUL in a line: {fields!r}")
        verb = fields[0].decode("ascii", "replace")
        if verb in _GREETING:
            continue
        if verb not in _ANSWERS or len(fields) < 2:
            raise Finding(f"not a line of the protocol: {fields!r}")
        if fields[1] not in ids:
            raise Finding(f"an answer for an id no AUTH gave: {fields!r}")
        if verb == "OK":
            if USER.encode() + b"\t" not in b"\t".join(fields) + b"\t":
                raise Finding(f"OK for someone else: {fields!r}")
            if PASSWORD.encode() not in sent:
                raise Finding(f"OK without the password: {fields!r}")
    return lines


def _decoded(text: bytes) -> bytes:
    """`text` as base64, from each of its first four offsets (a value starts anywhere)."""
    out = b""
    for start in range(min(4, len(text))):
        part = text[start:]
        if len(part) % 4 == 1:
            part = part[:-1]
        out += base64.b64decode(part + b"=" * (-len(part) % 4)) + b"\0"
    return out


def _answered(lines: list[list[bytes]], request_id: bytes) -> bytes | None:
    for fields in lines:
        if fields[0] in (b"OK", b"FAIL") and fields[1] == request_id:
            return fields[0]
    return None


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    step = data[1]
    body = (HANDSHAKE if data[0] & 1 else b"") + data[2:]
    # Ids as the session reads them: the decimal number after AUTH or CONT (a CONT for an id
    # not in progress is answered FAIL, as Dovecot does), leading zeros dropped.
    ids = {
        str(int(m)).encode() for m in re.findall(rb"(?:AUTH|CONT)\t(\d{1,10})(?=[\t\r\n]|$)", body)
    }
    ids.add(PROBE_ID)
    _server.reset()
    services = Services(_server.config, AuthService(_server.config))
    session = DovecotAuthSession(Connection("auth", "unix", exempt=True), services)
    driver = Driver(session)
    # What the session can have decoded as a password: the input, its base64 decoded.
    decoded = body + b"".join(_decoded(m) for m in re.findall(rb"[A-Za-z0-9+/]{2,}", body))
    try:
        driver.start()
        check_output(driver.take(), ids, b"")
        if step == 0:
            for line in re.findall(rb"[^\n]*\n|[^\n]+$", body):
                driver.feed(line)
        else:
            for i in range(0, len(body), step):
                driver.feed(body[i : i + step])
        check_output(driver.take(), ids, decoded)
        open_before = not driver.closed
        driver.feed(PROBE)
        lines = check_output(driver.take(), ids, decoded + GOOD + PASSWORD.encode())
        if open_before and not driver.closed:
            got = _answered(lines, PROBE_ID)
            if got is None:
                raise Finding(f"no answer to the last AUTH: {lines!r}")
            if body == HANDSHAKE and got != b"OK":
                raise Finding(f"the right password failed: {lines!r}")
    finally:
        session.connection_lost()


if __name__ == "__main__":
    main(test_one_input)
