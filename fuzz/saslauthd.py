"""The saslauthd protocol (mra/authserver/saslauthd.py): what libsasl2 sends to `[listen]
saslauthd`, into a real SaslauthdSession over a real passwd-file and throttle.

Input: byte 0 how the rest is cut into reads (0: in one piece, n: n octets at a time); the
rest is what the client sends. Each input gets fresh services (throttle), as a new client.

Properties, against the fields as read here from the counted strings (2-byte length in
network order, then the octets):
- nothing raises, and the server logs no error;
- the server writes nothing, or one counted answer, "OK" or "NO" and a text, and closes;
  nothing before all four fields are in, unless a field is longer than the bound (then NO);
- OK only with the user's password; the user's full name and password get OK (each input is
  a first attempt: no throttle is in the way).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import PASSWORD, USER, Driver, Finding, Server, import_all, main, quiet_logs
    from mra.auth.glue import AuthService
    from mra.authserver.saslauthd import SaslauthdSession
    from mra.context import Connection, Services

    import_all("mra.authserver", "mra.auth")

quiet_logs()
_server = Server("saslauthd")
MAX_FIELD = _server.config.limits.saslauthd_max_field


def fields_of(data: bytes) -> tuple[list[bytes], bool]:
    """The complete fields at the start of `data` (at most four), and whether one announced
    is longer than the bound."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4 and pos + 2 <= len(data):
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length > MAX_FIELD:
            return fields, True
        if pos + 2 + length > len(data):
            break
        fields.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return fields, False


def test_one_input(data: bytes) -> None:
    if not data:
        return
    step = data[0]
    body = data[1:]
    _server.reset()
    services = Services(_server.config, AuthService(_server.config))
    session = SaslauthdSession(Connection("saslauthd", "unix", exempt=True), services)
    driver = Driver(session)
    try:
        driver.start()
        if step == 0:
            driver.feed(body)
        else:
            for i in range(0, len(body), step):
                driver.feed(body[i : i + step])
        out = driver.take()
    finally:
        session.connection_lost()
    fields, too_long = fields_of(body)
    if not out:
        if too_long or len(fields) == 4:
            raise Finding(f"no answer to {fields!r} (a field too long: {too_long})")
        if driver.closed:
            raise Finding("closed without an answer")
        return
    length = int.from_bytes(out[:2], "big")
    text = out[2:]
    if len(text) != length or not driver.closed:
        raise Finding(f"not one counted answer and a close: {out!r} (closed: {driver.closed})")
    if not (text == b"OK" or text.startswith(b"NO ")):
        raise Finding(f"an answer neither OK nor NO: {out!r}")
    if too_long:
        if text == b"OK":
            raise Finding(f"OK with a field too long: {body[:200]!r}")
        return
    if len(fields) != 4:
        raise Finding(f"an answer before the request was complete: {out!r} to {fields!r}")
    login, password = fields[0], fields[1]
    if text == b"OK" and password != PASSWORD.encode():
        raise Finding(f"OK without the password: {fields!r}")
    if text != b"OK" and login == USER.encode() and password == PASSWORD.encode():
        raise Finding(f"the right name and password refused: {fields!r} -> {out!r}")


if __name__ == "__main__":
    main(test_one_input)
