"""Shared helpers for the Sieve tests."""

from __future__ import annotations

import pytest

from mda.sieve import (
    Action,
    MailboxExists,
    SieveEnvelope,
    SieveError,
    SieveMessage,
    evaluate,
    parse,
)

# RFC 5228 section 1.2, "Message A" and "Message B".
MESSAGE_A = (
    b"Date: Tue, 1 Apr 1997 09:06:31 -0800 (PST)\r\n"
    b"From: coyote@desert.example.org\r\n"
    b"To: roadrunner@acme.example.com\r\n"
    b"Subject: I have a present for you\r\n"
    b"\r\n"
    b"Look, I'm sorry about the whole anvil thing, and I really\r\n"
    b"didn't mean to try and drop it on you from the top of the\r\n"
    b"cliff.  I want to try to make it up to you.  I've got some\r\n"
    b"great birdseed over here at my place--top of the line\r\n"
    b"stuff--and if you come by, I'll have it all wrapped up\r\n"
    b"for you.  I'm really sorry for all the problems I've caused\r\n"
    b"for you over the years, but I know we can work this out.\r\n"
    b"--\r\n"
    b'Wile E. Coyote   "Super Genius"   coyote@desert.example.org\r\n'
)
MESSAGE_B = (
    b"From: youcouldberich!@reply-by-postal-mail.invalid\r\n"
    b"Sender: b1ff@de.res.example.com\r\n"
    b"To: rube@landru.example.com\r\n"
    b"Date:  Mon, 31 Mar 1997 18:26:10 -0800\r\n"
    b"Subject: $$$ YOU, TOO, CAN BE A MILLIONAIRE! $$$\r\n"
    b"\r\n"
    b"YOU MAY HAVE ALREADY WON TEN MILLION DOLLARS, BUT I DOUBT\r\n"
    b"IT!  SO JUST POST THIS TO SIX HUNDRED NEWSGROUPS!  IT WILL\r\n"
    b"GUARANTEE THAT YOU GET AT LEAST FIVE RESPONSES WITH MONEY!\r\n"
    b"MONEY! MONEY! COLD HARD CASH!  YOU WILL RECEIVE OVER\r\n"
    b"$20,000 IN LESS THAN TWO MONTHS!  AND IT'S LEGAL!!!!!!!!!\r\n"
    b"!!!!!!!!!!!!!!!!!!111111111!!!!!!!11111111111!!1  JUST\r\n"
    b"SEND $5 IN SMALL, UNMARKED BILLS TO THE ADDRESSES BELOW!\r\n"
)

ENVELOPE = SieveEnvelope("sender@example.net", "me@example.com")


def message(
    headers: str = "From: a@example.org\nTo: me@example.com\n", body: str = "hi\n"
) -> bytes:
    """A raw message with LF line endings."""
    return (headers + "\n" + body).encode("utf-8")


def run(
    script: str,
    raw: bytes | SieveMessage = MESSAGE_A,
    env: SieveEnvelope = ENVELOPE,
    mailbox_exists: MailboxExists | None = None,
) -> list[Action]:
    msg = raw if isinstance(raw, SieveMessage) else SieveMessage.from_bytes(raw)
    return evaluate(parse(script), msg, env, mailbox_exists=mailbox_exists)


def parse_error(script: str) -> SieveError:
    with pytest.raises(SieveError) as info:
        parse(script)
    assert type(info.value) is SieveError
    return info.value
