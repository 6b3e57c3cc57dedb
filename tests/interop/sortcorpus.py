"""Messages that exercise every corner of SORT, THREAD and PREVIEW: base subjects, dates,
addresses, display names, message ids and bodies. Shared by the side-by-side tests
(tests/interop/test_imap_dovecot_sort.py) and the benchmark's generator (bench/sort.py)."""

from __future__ import annotations

from mailstore.store import MailStore

DAY = 24 * 3600
BASE = 1136116800.0  # 2006-01-01 12:00 UTC: the INTERNALDATE of message 1, then a day each


def _message(headers: list[tuple[str, str]], body: str = "text\r\n") -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n" + body).encode("utf-8")


# (headers, body); every message also gets an INTERNALDATE of its own (BASE + n days), except
# 7 and 8, which share one to the second (ties of ARRIVAL break by sequence number).
SUBJECTS = [
    "Hello",
    "Re: Hello",
    "RE: re: Hello",
    "Fwd: Hello",
    "Hello (fwd)",
    "[Fwd: Hello]",
    "[list] Re: Hello",
    "[list] [other] hello  world",
    "Re[2]: Hello",
    "Re [list]: Hello",
    "FW: hello",
    "fwd:fwd: hello",
    "[Fwd: Re: [list] Hello (fwd)]",
    "[only a blob]",
    "[blob]",
    "  spaces\t and\ttabs  ",
    "=?UTF-8?Q?R=C3=A9sum=C3=A9?=",
    "=?ISO-8859-1?Q?Re:_=E9t=E9?=",
    "=?UTF-8?B?w6lsw6h2ZQ==?= =?UTF-8?B?IGfDqW7DqXJhbA==?=",
    "Ärger",
    "ärger",
    "Zebra",
    "apple",
    "Apple",
    "",
    "Re:",
    "Re: Re: Fwd: [x] Re: [y] Zebra (fwd) (FWD)",
    "RE:Zebra",
    "straße",
    "Σίσυφος",
]

DATES = [
    "Mon, 7 Feb 1994 21:52:25 -0800 (PST)",
    "Mon, 7 Feb 1994 21:52:25 -0800",
    "7 Feb 94 21:52 PST",
    "Tue, 01 Jan 2002 00:00:00 +0100",
    "Tue, 1 Jan 2002 00:00 EDT",
    "1 Jan 2002 00:00:00 Z",
    "1 Jan 2002 00:00:00 A",
    "1 Jan 2002 00:00:00 m",
    "1 Jan 2002 00:00:00 XYZ",
    "1 Jan 2002 00:00:00",
    "31 Feb 2002 00:00:00 +0000",
    "1 Jan 2002 24:00:00 +0000",
    "1 Jan 2002 23:59:60 +0000",
    "1 January 2002 10.11.12 +0000",
    "Thursday, 1 Jan 2002 10:11:12 +0000",
    "1 Jan 69 10:11:12 +0000",
    "1 Jan 70 10:11:12 +0000",
    "1 Jan 1899 10:11:12 +0000",
    "garbage",
    "",
    "Fri, 13 Dec 2001 20:45:52 +0000",
    "1 Jan 2038 00:00:00 +0000",
    "2 Jan 2002 (a comment) 00:00:00 +0000",
    "  3 Jan 2002 00:00:00 +0000  ",
    "4 Jan 2002 00:00:00 +0000 (GMT",
    "Sun, 5 Jan 2002 0:0:0 +0000",
    "1 Jan 1970 00:00:00 +0000",
    "Sat, 6 Jan 2002 9:05 -0030",
    "7 JAN 2002 09:05 +1400",
    "8 Jan 2002 09:05 -1200",
]

ADDRESSES = [
    '"Bob Smith" <bob@example.test>',
    "bob@example.test",
    "Alice <alice@example.test>, bob@example.test",
    "=?UTF-8?Q?J=C3=B6rg?= <jorg@example.test>",
    "<zed@example.test>",
    "undisclosed-recipients:;",
    "team: carol@example.test, dave@example.test;",
    "Just A Name",
    "carol@example.test (Carol C)",
    '"" <empty@example.test>',
    "Émile <emile@example.test>",
    '"Quoted, Comma" <q@example.test>',
    "dave@EXAMPLE.test",
    "Dave@example.test",
    "@route:erin@example.test",
    "",
    '"weird\\"quote" <w@example.test>',
    "Ümlaut <umlaut@example.test>",
    "=?ISO-8859-1?Q?Andr=E9?= <andre@example.test>",
    "a@b, c@d",
    "x <y@z>",
    "<>",
    "Zoë <zoe@example.test>",
    "ßtraße <s@example.test>",
    "  spaced  <spaced@example.test>",
    "Mary-Ann <ma@example.test>",
    "z@example.test",
    "A@example.test",
    "(comment only)",
    "friends:;",
]

BODIES = [
    ("text/plain; charset=utf-8", "7bit", "Hello there,\r\n\r\nThis is the text.\r\n"),
    ("text/plain", "7bit", "> quoted first\r\n> more quoted\r\nthen the reply\r\n"),
    ("text/plain", "7bit", "> only quoted\r\n>and again\r\n"),
    (
        "text/html; charset=utf-8",
        "7bit",
        "<html><head><title>T</title><style>p{color:red}</style>"
        "<script>var x = '<b>';</script></head><body><p>Para&nbsp;one &amp; <b>bold</b></p>"
        "<!-- a comment -->\r\n<blockquote>quoted <i>html</i></blockquote>after &lt;tag&gt; &#233;"
        " &#x263A; &bogus; &toolongentityname; &#xD800;</body></html>\r\n",
    ),
    (
        "text/plain; charset=iso-8859-1",
        "quoted-printable",
        "Caf=E9 cr=E8me, na=EFve =\r\nsoft break\r\n",
    ),
    ("text/plain; charset=utf-8", "base64", "w6l0w6kgw6AgUGFyaXMsIGxvbmcgdGV4dCBoZXJlLg==\r\n"),
    ("text/plain", "7bit", " " * 50 + "lots   of\t\tspace\r\n\r\n\r\n   and lines  \r\n"),
    ("text/plain", "7bit", ("word " * 80) + "\r\n"),
    ("image/png", "base64", "iVBORw0KGgo=\r\n"),
    ("text/plain", "x-unknown", "encoded in a way nobody knows\r\n"),
    ("text/enriched", "7bit", "<bold>enriched</bold> text\r\n"),
    ("text/plain", "7bit", "\ufeffBOM at the start\r\n"),
    ("text/plain", "7bit", ""),
    ("text/plain", "7bit", "x" * 300 + "\r\n"),
    ("text/plain", "7bit", "a " * 150 + "\r\n"),
]

MULTIPART = [
    # alternative: text/plain wins over html
    'multipart/alternative; boundary="b1"',
    "--b1\r\nContent-Type: text/html\r\n\r\n<p>the html</p>\r\n--b1\r\n"
    "Content-Type: text/plain\r\n\r\nthe plain text\r\n--b1--\r\n",
    # alternative without a plain part: html
    'multipart/alternative; boundary="b2"',
    "--b2\r\nContent-Type: text/html\r\n\r\n<p>only <b>html</b></p>\r\n--b2\r\n"
    "Content-Type: image/gif\r\n\r\nGIF89a\r\n--b2--\r\n",
    # mixed: the first usable part, depth first
    'multipart/mixed; boundary="b3"',
    "--b3\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--b3\r\n"
    'Content-Type: multipart/alternative; boundary="b4"\r\n\r\n--b4\r\n'
    "Content-Type: text/plain\r\n\r\nnested plain\r\n--b4--\r\n--b3\r\n"
    "Content-Type: text/plain\r\n\r\nlater plain\r\n--b3--\r\n",
    # a message/rfc822 alone has no preview
    "message/rfc822",
    "Subject: inner\r\n\r\ninner text\r\n",
    # alternative of a nested multipart only: nothing
    'multipart/alternative; boundary="b5"',
    '--b5\r\nContent-Type: multipart/mixed; boundary="b6"\r\n\r\n--b6\r\n'
    "Content-Type: text/plain\r\n\r\ndeep\r\n--b6--\r\n--b5--\r\n",
]

# Threads: (Message-ID, References, In-Reply-To) per message, by index into the corpus.
IDS = [
    ("<1@t>", "", ""),
    ("<2@t>", "<1@t>", ""),
    ("<3@t>", "<1@t> <2@t>", ""),
    ("<4@t>", "", "<2@t>"),
    ("<5@t>", "<missing@t> <1@t>", ""),  # a reference to a message we do not have
    ("<6@t>", "<gone@t>", ""),  # a dummy parent
    ("<7@t>", "<gone@t>", ""),  # its sibling
    ("<3@t>", "<1@t>", ""),  # a duplicate Message-ID
    ("", "<1@t>", ""),  # no Message-ID
    ("<10@t>", "<11@t>", ""),  # a loop: 10 -> 11 -> 10
    ("<11@t>", "<10@t>", ""),
    ("<12@t>", "<12@t>", ""),  # references itself
    ("<13@t>", "<bad-id> <no-at> <1@t", "<2@t>"),  # no valid reference: In-Reply-To counts
    ('<"quoted local"@t>', "", ""),
    ("<15@t>", '<"quoted local"@t>', ""),
    ("<16 @ t>", "", ""),  # blanks inside an id
    ("<17@t>", "<16@t>", ""),
    ("<18@t> <ignored@t>", "", ""),
    ("<19@t>", "<x@t> (comment) <2@t>", "<1@t>"),
    ("<20@t>", "<21@t>", ""),  # the child comes first
    ("<21@t>", "", ""),
    ("<22@T>", "", ""),  # case matters
    ("<23@t>", "<22@t>", ""),
    ("<24@t>", "<3@t> <1@t>", ""),  # a conflicting parent: its own references win
    ("<25@t>", "", "<24@t> <3@t>"),
    ("<26@t>", "<dummy-a@t> <dummy-b@t>", ""),  # a chain of dummies
    ("<27@t>", "<dummy-a@t>", ""),
    ("<28@t>", "", ""),
    ("<29@t>", "<28@t>", ""),
    ("<30@t>", "<29@t> <28@t>", ""),  # a reversed chain, a loop between references
]


def corpus() -> list[tuple[bytes, float]]:
    """(message, INTERNALDATE) in delivery order."""
    out: list[tuple[bytes, float]] = []
    n = len(SUBJECTS)
    for i in range(n):
        headers: list[tuple[str, str]] = []
        if SUBJECTS[i] or i % 5:
            headers.append(("Subject", SUBJECTS[i]))
        if DATES[i] or i % 3:
            headers.append(("Date", DATES[i]))
        if ADDRESSES[i]:
            headers.append(("From", ADDRESSES[i]))
        headers.append(("To", ADDRESSES[(i * 7 + 3) % len(ADDRESSES)] or "someone@example.test"))
        if i % 4 == 0:
            headers.append(("Cc", ADDRESSES[(i * 11 + 5) % len(ADDRESSES)] or "cc@example.test"))
        msgid, refs, reply_to = IDS[i]
        if msgid:
            headers.append(("Message-ID", msgid))
        if refs:
            headers.append(("References", refs))
        if reply_to:
            headers.append(("In-Reply-To", reply_to))
        ctype, cte, body = BODIES[i % len(BODIES)]
        headers += [("MIME-Version", "1.0"), ("Content-Type", ctype)]
        headers.append(("Content-Transfer-Encoding", cte))
        arrival = BASE + i * DAY if i not in (7, 8) else BASE + 6.5 * DAY
        out.append((_message(headers, body), arrival))
    for k in range(len(MULTIPART) // 2):
        headers = [
            ("Subject", f"multipart {k}"),
            ("From", "mp@example.test"),
            ("MIME-Version", "1.0"),
            ("Content-Type", MULTIPART[2 * k]),
        ]
        out.append((_message(headers, MULTIPART[2 * k + 1]), BASE + (40 + k) * DAY))
    return out


def fill(store: MailStore) -> None:
    box = store.mailbox("INBOX")
    for message, arrival in corpus():
        box.append(message, [], arrival)


def random_corpus(count: int, seed: int) -> list[tuple[bytes, float]]:
    """`count` messages of a mailing list: few subjects (with Re:, Fwd: and [list] in any
    mix), replies to random earlier or later messages (References cut short, or only
    In-Reply-To), repeated and missing ids, dates that tie, arrive out of order or cannot
    be read. Deterministic for a seed."""
    import random

    rnd = random.Random(seed)
    bases = ["Plans", "plans", "Meeting", "Lunch?", "Release 1.0", "Bug #12", "Hi", ""]
    prefixes = ["", "", "Re: ", "RE: ", "Fwd: ", "[list] ", "[list] Re: ", "Re: Re: ", "Fw: "]
    people = ["Ann <ann@x.test>", "bob@x.test", "Carl <carl@x.test>", "dora@x.test", ""]
    parents: dict[int, list[str]] = {}
    out: list[tuple[bytes, float]] = []
    for n in range(count):
        headers = [("Subject", rnd.choice(prefixes) + rnd.choice(bases))]
        who = rnd.choice(people)
        if who:
            headers.append(("From", who))
        headers.append(("To", rnd.choice(people) or "list@x.test"))
        kind = rnd.random()
        if kind < 0.8:
            stamp = 1_500_000_000 + rnd.randrange(0, 50) * 3600  # many ties
            minute, hour = stamp // 60 % 60, stamp // 3600 % 24
            day = 1 + stamp // 86400 % 28
            headers.append(("Date", f"{day} Mar 2020 {hour:02d}:{minute:02d}:00 +0000"))
        elif kind < 0.9:
            headers.append(("Date", "not a date"))
        msgid = f"<m{rnd.randrange(count + count // 10)}@x.test>"  # some repeat
        if rnd.random() < 0.95:
            headers.append(("Message-ID", msgid))
        chain: list[str] = []
        if n and rnd.random() < 0.7:
            parent = rnd.randrange(count)  # earlier or later: the parent may come after
            chain = parents.get(parent, [f"<m{parent}@x.test>"])
            if rnd.random() < 0.3:
                chain = chain[-2:]  # a References cut short
            if rnd.random() < 0.2:
                headers.append(("In-Reply-To", chain[-1]))
            else:
                headers.append(("References", " ".join(chain)))
        parents[n] = [*chain, msgid]
        arrival = 1_600_000_000 + rnd.randrange(0, 40) * 60
        out.append((_message(headers, f"body {n}\r\n"), float(arrival)))
    return out


SORT_KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO")
