"""POP3: client bytes into a real Pop3Session over a real store (mra/pop3, with the SASL
exchanges of AUTH).

Input: byte 0 picks where the session starts (even: not logged in, odd: logged in), byte 1
how the rest is cut into reads (0: a line at a time, so that each answer is checked against
its command; n: n octets at a time); the rest is what the client sends. The store is laid
out afresh for each input: INBOX holds fuzz/_harness.py's two messages.

Properties:
- nothing raises, and the server logs no error;
- every response is CRLF-terminated `+OK`, `-ERR` or a SASL `+ base64` line, without a bare
  CR or LF; the multi-line ones (CAPA, LIST and UIDL without an argument, RETR, TOP, AUTH
  without one) end in `.` and are dot-stuffed; RETR gives the message exactly (its CRLF
  form) and TOP its header and at most the lines asked for;
- the session resynchronises: unless it closed, `CRLF * CRLF CAPA CRLF` (ending a line or a
  SASL exchange) gets the capability list;
- when the connection drops, the mailbox lock and the session slot are given back.
"""

from __future__ import annotations

import re

import atheris

with atheris.instrument_imports(include=["mra", "mailstore", "mda"]):
    from fuzz._harness import MESSAGES, PASSWORD, USER, Driver, Finding, Server, main, quiet_logs
    from mailstore.content import to_crlf
    from mra.auth.glue import AuthService
    from mra.context import Connection, Services, SessionLock
    from mra.pop3.session import Pop3Session

LOGIN = f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode()
PROBE = b"\r\n*\r\nCAPA\r\n"
_STATUS = re.compile(rb"(?:\+OK|-ERR)(?: [\x20-\x7e]*)?\r\n|\+ [A-Za-z0-9+/=]*\r\n")
_MULTI_ALWAYS = {"CAPA", "RETR", "TOP"}
_MULTI_WITHOUT_ARG = {"LIST", "UIDL", "AUTH"}
_CRLF = [to_crlf(m, False) for m in MESSAGES]

quiet_logs()
_server = Server("pop3")
_services = Services(_server.config, AuthService(_server.config))


def split_response(data: bytes, pos: int, multi: bool) -> tuple[bytes, list[bytes] | None, int]:
    """(status line, the unstuffed lines of a multi-line body or None, next position)."""
    m = _STATUS.match(data, pos)
    if m is None:
        raise Finding(f"not a POP3 response at {pos}: {data[pos : pos + 200]!r}")
    status = m.group()
    pos = m.end()
    if not (multi and status.startswith(b"+OK")):
        return status, None, pos
    lines: list[bytes] = []
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            raise Finding(f"a multi-line response without its '.': {data[-200:]!r}")
        line = data[pos:end]
        pos = end + 2
        if line == b".":
            return status, lines, pos
        if line.startswith(b"."):
            if not line.startswith(b".."):
                raise Finding(f"a line starting with '.' not stuffed: {line[:100]!r}")
            line = line[1:]
        if b"\r" in line or b"\n" in line:
            raise Finding(f"a bare CR or LF in a multi-line response: {line[:100]!r}")
        lines.append(line)


def check_answer(command: bytes, in_sasl: bool, answer: bytes) -> None:
    """One command's answer (the line fed in one piece, `in_sasl` before it was read)."""
    text = command.rstrip(b"\r\n").decode("utf-8", "replace")
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    # As the session reads them: AUTH lists the mechanisms when its first word is empty.
    first_word = arg.partition(" ")[0] if verb == "AUTH" else arg
    multi = not in_sasl and (
        verb in _MULTI_ALWAYS or (verb in _MULTI_WITHOUT_ARG and not first_word)
    )
    pos = 0
    first = True
    while pos < len(answer):
        _, lines, pos = split_response(answer, pos, multi and first)
        first = False
        if lines is None:
            continue
        if verb == "RETR":
            number = arg.strip()
            expected = _CRLF[int(number) - 1] if number in ("1", "2") else None
            if expected is not None and b"".join(x + b"\r\n" for x in lines) != expected:
                raise Finding(f"RETR {number} gave {lines!r}")
        if verb == "TOP":
            words = arg.split()
            if len(words) == 2 and words[0] in ("1", "2") and words[1].isdigit():
                message = _CRLF[int(words[0]) - 1]
                head = message[: message.index(b"\r\n\r\n") + 4]
                given = b"".join(x + b"\r\n" for x in lines)
                if not given.startswith(head) or not message.startswith(given):
                    raise Finding(f"TOP {arg} gave {lines!r}")
                if given.count(b"\r\n") - head.count(b"\r\n") > int(words[1]):
                    raise Finding(f"TOP {arg} gave more lines: {lines!r}")


def check_stream(data: bytes) -> None:
    """Without knowing which answer belongs to which command: lines, each CRLF-terminated."""
    if data and not data.endswith(b"\r\n"):
        raise Finding(f"output not ending in CRLF: {data[-100:]!r}")
    if re.search(rb"\r(?!\n)|(?<!\r)\n", data):
        raise Finding(f"a bare CR or LF in the output: {data[:300]!r}")


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    step = data[1]
    body = data[2:]
    _server.reset()
    session = Pop3Session(Connection("pop3", "127.0.0.1", exempt=True), _services)
    driver = Driver(session)
    try:
        driver.start()
        if data[0] & 1:
            driver.feed(LOGIN)
        check_stream(driver.take())
        if step == 0:
            for line in re.findall(rb"[^\n]*\n|[^\n]+$", body):
                in_sasl = session._sasl is not None
                driver.feed(line)
                answer = driver.take()
                check_stream(answer)
                if line.endswith(b"\n") and len(line) < 1000:
                    check_answer(line, in_sasl, answer)
        else:
            for i in range(0, len(body), step):
                driver.feed(body[i : i + step])
            check_stream(driver.take())
        open_before = not driver.closed
        driver.feed(PROBE)
        answer = driver.take()
        check_stream(answer)
        if open_before and not driver.closed and b"+OK Capability list follows\r\n" not in answer:
            raise Finding(f"no CAPA answer after the input: {answer[-300:]!r}")
    finally:
        session.connection_lost()
    lock = SessionLock(_server.user_root)
    if not lock.acquire():
        raise Finding("the mailbox is still locked after the connection closed")
    lock.release()
    if len(_services.limits.users):
        _services.limits.users._counts.clear()
        raise Finding("a session slot was not given back")


if __name__ == "__main__":
    main(test_one_input)
