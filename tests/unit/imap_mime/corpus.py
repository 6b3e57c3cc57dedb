# ruff: noqa: W291
"""Messages for the MIME/ENVELOPE/BODYSTRUCTURE/SEARCH tests.

Each entry is stored as given (some LF-only, some CRLF); IMAP serves them with CRLF.  The
expected answers in ``golden.py`` were produced by Dovecot 2.3 from exactly these bytes (see
``capture_dovecot.py``).
"""

from __future__ import annotations


def lf(text: str) -> bytes:
    """A message written with bare LF line ends (as an MTA pipes it in)."""
    return text.encode("utf-8")


def crlf(text: str) -> bytes:
    """The same text with CRLF line ends (as an IMAP APPEND stores it)."""
    return text.replace("\n", "\r\n").encode("utf-8")


PLAIN = lf(
    """\
Return-Path: <alice@example.org>
Received: from mx.example.org (mx.example.org [192.0.2.1])
\tby mail.example.com with ESMTP id 4F3A2
\tfor <bob@example.com>; Mon, 6 May 2024 10:15:02 +0200
Date: Mon, 6 May 2024 10:15:00 +0200
From: Alice Example <alice@example.org>
To: Bob <bob@example.com>, carol@example.net
Cc: "Dave, the Reviewer" <dave@example.net>
Subject: Quarterly report
Message-ID: <20240506101500.GA1234@example.org>
In-Reply-To: <prev-1@example.com>
References: <prev-0@example.com> <prev-1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Hi Bob,

please find the quarterly numbers below.  Revenue is up.

-- 
Alice
"""
)

ALTERNATIVE = crlf(
    """\
Date: Tue, 7 May 2024 08:00:00 -0400
From: "Newsletter" <news@shop.example>
To: subscriber@example.com
Subject: =?UTF-8?B?U3BlY2lhbCBvZmZlciDigJMgMjAlIG9mZg==?=
Message-ID: <nl-2024-05@shop.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_alt_boundary_42"

This is a multi-part message in MIME format.

--=_alt_boundary_42
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Special offer =E2=80=93 twenty percent off everything in the caf=C3=A9 this=
 week.
--=_alt_boundary_42
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Special offer =E2=80=93 <b>20% off</b> in the caf=C3=A9.</p></body></html>

--=_alt_boundary_42--

Epilogue text that nobody reads.
"""
)

MIXED = lf(
    """\
Date: Wed, 8 May 2024 16:20:31 +0000
From: Erin <erin@example.org>
Sender: Mailing List <list-bounces@lists.example.org>
Reply-To: team@lists.example.org
To: team@lists.example.org
Bcc: archive@example.org
Subject: Fwd: contract draft and the original thread
Message-ID: <mixed-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"
Content-Language: en

preamble line

--outer
Content-Type: text/plain; charset=utf-8; format=flowed
Content-Transfer-Encoding: 8bit
Content-Language: en-GB, de

See the attached contract.  Grüße, Erin

--outer
Content-Type: application/pdf; name="contract draft.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="contract draft.pdf"; size=37
Content-Description: The contract
Content-ID: <part2.contract@example.org>
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Location: http://example.org/contract.pdf

JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCg==
--outer
Content-Type: message/rfc822
Content-Disposition: inline

Date: Thu, 2 May 2024 09:00:00 +0200
From: Frank <frank@example.com>
To: Erin <erin@example.org>
Subject: Original thread
Message-ID: <orig-7@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

The original plain text.
--inner
Content-Type: text/html

<p>The original <i>HTML</i>.</p>
--inner--
--outer--
"""
)

ENCODED_WORDS = lf(
    """\
Date: Fri, 10 May 2024 12:00:00 +0200
From: =?ISO-8859-1?Q?J=F6rg_M=FCller?= <joerg@example.de>
To: =?utf-8?q?Bj=C3=B6rn?= <bjoern@example.se>, "=?utf-8?B?w4lsb2RpZQ==?=" <elodie@example.fr>
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?= und =?ISO-8859-1?Q?Z=FCrich?=
 =?UTF-8?B?IOKAkyBuZXh0IHdlZWs=?=
Message-ID: <enc-1@example.de>
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Sch=F6ne Gr=FC=DFe aus K=F6ln!
"""
)

GROUPS = lf(
    """\
Date: Sat, 11 May 2024 07:30:00 +0000
From: Grace <grace@example.org>
To: undisclosed-recipients:;
Cc: Project Team: heidi@example.org, "Ivan I." <ivan@example.org>;, judy@example.org
Bcc: (a comment only) kim@example.org (Kim K.)
Subject: Group addresses
Message-ID: <groups@example.org>

Body.
"""
)

MISSING_HEADERS = lf(
    """\
Subject: no date, no from, no message-id
X-Mailer: handwritten

Just a body
without a final newline"""
)

NO_BODY = lf(
    """\
From: Leo <leo@example.org>
Subject: headers only, no blank line
"""
)

MALFORMED = (
    b"From nobody Mon May 13 00:00:00 2024\n"
    b" leading continuation line\n"
    b"Subject: Caf\xc3\xa9 \xe2\x80\x93 raw UTF-8 subject\n"
    b"From: M\xfcller <mueller@example.de>\n"
    b"this line has no colon at all\n"
    b'To: <>, @route-only, broken@, "unterminated <x@y>\n'
    b"Content-Type: text/plain; charset=\n"
    b"Date: not a date\n"
    b"Subject: second subject\n"
    b"\n"
    b"Body with \x00 NUL byte and \xff octet.\n"
)

NO_BOUNDARY = crlf(
    """\
From: Mallory <mallory@example.org>
Subject: multipart without a boundary
MIME-Version: 1.0
Content-Type: multipart/mixed

--whatever
Content-Type: text/plain

text
--whatever--
"""
)

EMPTY_MULTIPART = crlf(
    """\
From: Nina <nina@example.org>
Subject: multipart that ends at once
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b1

--b1--
"""
)

UNCLOSED = lf(
    """\
From: Oscar <oscar@example.org>
Subject: boundary never closed, headers cut by boundary
MIME-Version: 1.0
Content-Type: multipart/related; boundary="rel"; type="text/html"

--rel
Content-Type: text/html; charset=us-ascii
--rel
Content-Type: image/png
Content-Transfer-Encoding: base64
Content-ID: <img1>

iVBORw0KGgo=
--rel
"""
)

DIGEST = lf(
    """\
From: Digest <digest@lists.example.org>
Subject: List digest, Vol 1, Issue 2
MIME-Version: 1.0
Content-Type: multipart/digest; boundary="dig"

--dig

From: Pat <pat@example.org>
Subject: first

first message
--dig
Content-Type: message/rfc822

From: Quinn <quinn@example.org>
Subject: second
Content-Type: text/plain; charset=utf-8

second message
--dig
Content-Type: text/plain

not a message
--dig--
"""
)

RFC2231 = lf(
    """\
From: Rita <rita@example.org>
Subject: RFC 2231 parameters
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="p"

--p
Content-Type: application/octet-stream;
 name*0*=utf-8''%E2%82%AC%20rates;
 name*1*=%20and%20fees.txt
Content-Disposition: attachment;
 filename*0="long file name ";
 filename*1="continued.txt"
Content-Transfer-Encoding: BASE64

cmF0ZXM=
--p
Content-Type: TEXT/PLAIN; CHARSET=ISO-8859-1; Format="Flowed"

upper case
--p--
"""
)

FOLDED = lf(
    """\
Date: Sun, 12 May 2024
  21:05:00 +0100
From: "Sam \\"the man\\" Smith" <sam@example.org>
To: Terry
 <terry@example.org>,
 Uma <uma@example.org>
Subject: a folded
\tsubject with  double  spaces and "quotes" and \\backslash\\
Message-ID:
 <folded@example.org>
In-Reply-To: <a@example.org> (comment)

body
"""
)

QUOTES = lf(
    """\
From: "a\\"b" <ab@example.org>
Subject: "q" "u" "o" "t" "e" "s"
Message-ID: <"weird\\"id"@example.org>

.
"""
)

TOP_RFC822 = lf(
    """\
From: Victor <victor@example.org>
Subject: the whole message is message/rfc822
MIME-Version: 1.0
Content-Type: message/rfc822

From: Wendy <wendy@example.org>
Subject: inner
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=x

--x
Content-Type: text/plain

inner part one
--x
Content-Type: text/plain

inner part two
--x--
"""
)

NESTED = crlf(
    """\
From: Xavier <xavier@example.org>
To: Yolanda <yolanda@example.org>
Subject: nested multiparts
Date: Mon, 13 May 2024 23:59:59 -1200
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="L1"

--L1
Content-Type: multipart/alternative; boundary="L1-alt"

--L1-alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

SGVsbG8gd29ybGQsIGNhZsOpIG9uIHRoZSBjb3JuZXIu
--L1-alt
Content-Type: multipart/related; boundary="L1"

--L1
Content-Type: text/html

<b>same boundary as the outer one</b>
--L1-alt--
--L1
Content-Type: application/zip
Content-Disposition: attachment; filename=a.zip

PK
--L1--
"""
)

CONTENT_ONLY_NO_MIME = lf(
    """\
From: Zed <zed@example.org>
Subject: Content-Transfer-Encoding without MIME-Version
Content-Transfer-Encoding: base64
Content-Description: ignored without MIME

aGVsbG8=
"""
)

ODD_CONTENT_TYPE = lf(
    """\
From: Zoe <zoe@example.org>
Subject: broken content type
MIME-Version: 1.0
Content-Type: garbage
Content-Transfer-Encoding: x-uuencode

body
"""
)

EMPTY_BODY = crlf(
    """\
From: Abe <abe@example.org>
Subject: empty body
Content-Type: text/plain

"""
)

CORPUS: dict[str, bytes] = {
    "plain": PLAIN,
    "alternative": ALTERNATIVE,
    "mixed": MIXED,
    "encoded_words": ENCODED_WORDS,
    "groups": GROUPS,
    "missing_headers": MISSING_HEADERS,
    "no_body": NO_BODY,
    "malformed": MALFORMED,
    "no_boundary": NO_BOUNDARY,
    "empty_multipart": EMPTY_MULTIPART,
    "unclosed": UNCLOSED,
    "digest": DIGEST,
    "rfc2231": RFC2231,
    "folded": FOLDED,
    "quotes": QUOTES,
    "top_rfc822": TOP_RFC822,
    "nested": NESTED,
    "content_only_no_mime": CONTENT_ONLY_NO_MIME,
    "odd_content_type": ODD_CONTENT_TYPE,
    "empty_body": EMPTY_BODY,
}

# Section specifiers fetched for every message (BODY.PEEK[<spec>]); partials are added in
# the capture as BODY.PEEK[<spec>]<origin.count>.
SECTIONS: list[str] = [
    "",
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (SUBJECT FROM)",
    "HEADER.FIELDS (to cc x-nonexistent)",
    "HEADER.FIELDS.NOT (SUBJECT FROM RECEIVED)",
    "1",
    "1.MIME",
    "1.HEADER",
    "1.TEXT",
    "1.1",
    "1.2",
    "2",
    "2.MIME",
    "2.HEADER",
    "2.TEXT",
    "2.HEADER.FIELDS (SUBJECT)",
    "2.1",
    "2.1.MIME",
    "2.2",
    "2.1.1",
    "3",
    "3.MIME",
    "3.HEADER",
    "3.TEXT",
    "3.1",
    "3.2",
    "3.1.MIME",
    "3.2.MIME",
    "3.HEADER.FIELDS (Subject Date)",
    "3.HEADER.FIELDS.NOT (Subject Date)",
    "4",
    "9",
    "1.9",
]

PARTIALS: list[tuple[str, int, int]] = [
    ("", 0, 10),
    ("", 5, 0),
    ("HEADER", 3, 7),
    ("TEXT", 2, 100000),
    ("1", 1, 5),
    ("2", 10000, 5),
]

# SEARCH set-up: flags, keywords and INTERNALDATE (epoch seconds, UTC) per message.  Every
# message is delivered into new/, so Dovecot also reports \Recent for all of them.
SEARCH_STATE: dict[str, tuple[tuple[str, ...], int]] = {
    "plain": (("\\Seen", "\\Answered"), 1714983302),  # 2024-05-06 08:15:02
    "alternative": (("\\Seen", "$Label1"), 1715083200),  # 2024-05-07 12:00:00
    "mixed": (("\\Flagged", "Work"), 1715185231),  # 2024-05-08 16:20:31
    "encoded_words": (("\\Seen", "\\Flagged"), 1715335199),  # 2024-05-10 09:59:59
    "groups": (("\\Deleted",), 1715412600),  # 2024-05-11 07:30:00
    "missing_headers": (("\\Draft",), 1715472000),  # 2024-05-12 00:00:00
    "no_body": ((), 1715558399),  # 2024-05-12 23:59:59
    "malformed": (("\\Seen", "$label1"), 1715558400),  # 2024-05-13 00:00:00
    "no_boundary": (("\\Seen",), 1700000000),
    "empty_multipart": (("\\Answered", "\\Deleted"), 1700000000),
    "unclosed": ((), 1700000000),
    "digest": (("\\Seen",), 1700000000),
    "rfc2231": (("\\Seen", "Work"), 1700000000),
    "folded": ((), 1715548000),
    "quotes": (("\\Flagged",), 1700000000),
    "top_rfc822": ((), 1700000000),
    "nested": (("\\Seen", "\\Draft"), 1715700000),
    "content_only_no_mime": ((), 1700000000),
    "odd_content_type": ((), 1700000000),
    "empty_body": (("\\Seen",), 1700000000),
}

# SEARCH programs run against the corpus (as sent on the wire, after "UID SEARCH ").
# {n+} literals carry the 8-bit strings.
SEARCHES: list[str] = [
    "ALL",
    "ANSWERED",
    "UNANSWERED",
    "DELETED",
    "UNDELETED",
    "DRAFT",
    "UNDRAFT",
    "FLAGGED",
    "UNFLAGGED",
    "SEEN",
    "UNSEEN",
    "RECENT",
    "NEW",
    "OLD",
    "KEYWORD $Label1",
    "UNKEYWORD $Label1",
    "KEYWORD work",
    "KEYWORD Work",
    "KEYWORD nosuchkeyword",
    "LARGER 700",
    "SMALLER 150",
    "LARGER 1463",
    "BEFORE 12-May-2024",
    "ON 12-May-2024",
    "SINCE 12-May-2024",
    "ON 13-May-2024",
    "SENTBEFORE 8-May-2024",
    "SENTON 12-May-2024",
    "SENTSINCE 10-May-2024",
    "SENTON 13-May-2024",
    "SENTBEFORE 1-Jan-1971",
    "FROM alice",
    "FROM example.org",
    'FROM "Alice Example"',
    "FROM joerg@example.de",
    "TO bob",
    "TO undisclosed",
    "CC dave",
    'CC "Ivan I."',
    "BCC archive",
    "BCC kim",
    "SUBJECT report",
    "SUBJECT REPORT",
    "SUBJECT {5+}\r\nK\u00f6ln",
    "CHARSET UTF-8 SUBJECT {7+}\r\nGr\u00fc\u00dfe",
    "SUBJECT {1+}\r\nZ",
    'SUBJECT "special offer"',
    'SUBJECT "a folded"',
    'HEADER X-Mailer "handwritten"',
    'HEADER Message-ID ""',
    'HEADER References "prev-0"',
    'HEADER Content-Type "multipart"',
    "BODY quarterly",
    "BODY {5+}\r\ncaf\u00e9",
    "CHARSET UTF-8 BODY {7+}\r\nSch\u00f6ne",
    "BODY rates",
    "BODY Catalog",
    'BODY "original plain"',
    'BODY "Special offer"',
    "BODY subject",
    'BODY "hello world"',
    'BODY "first message"',
    'TEXT "Original thread"',
    "TEXT alice",
    "TEXT quarterly",
    'TEXT "multipart/mixed"',
    "NOT SEEN",
    "OR SEEN FLAGGED",
    "(SEEN FLAGGED)",
    "NOT (SEEN FLAGGED)",
    "OR (DELETED DRAFT) KEYWORD Work",
    "UID 1:3",
    "2:4",
    "*",
    "UID *",
    "1,3,5:6",
    "SEEN NOT FROM alice",
    "OR BODY quarterly SUBJECT nested",
    "CHARSET US-ASCII FROM alice",
]

# Short malformed or unusual messages: each one pins down a parser rule that Dovecot 2.3
# follows (boundaries, Content-Type fallbacks, address syntax errors, folding, NULs).
EDGE_CASES: list[bytes] = [
    # address lists
    b"From: Grp: a@b\nFrom: c@d\nSubject: two From fields\n\nx\n",
    b'To: a..b@c, .a@b, a.@b, "x"@y, a@b.c., <a@b> (comment after)\n\nx\n',
    b"To: a@b.c.\nCc: a@b. c\nBcc: a @ b . c, <a . b @ c . d>\n\nx\n",
    b"From: (c1) name (c2) <a@b>\nTo: a@b (c3), c@d (c4) (c5)\n"
    b"Cc: <@a:b@c>, <@a,@b c@d>, <@a b@c>\n\nx\n",
    b'To: a@b (Comment Name), "Quoted Name" <c@d>, Name With Dots J. R. <e@f>, '
    b'<@route1,@route2:g@h>, i@[1.2.3.4], "j k"@l, m.n @ o . p, Group: ;, <q@r> trailing junk, s\n'
    b'Cc: Grp: a@b, c@d\nFrom: "" <e@f>, "  spaced   name " <g@h>\n\nx\n',
    b"From: =?utf-8?q?a?= <x@y>\nSubject: tab\there   and  \t spaces  \nTo: Foo Bar\n <foo@bar>\n"
    b"Cc: a@b c@d\nBcc: foo bar baz\n\nx\n",
    b"To: (only a comment)\nCc: <>\nFrom: undisclosed-recipients: ;\nReply-To: a@b, \n"
    b"Sender: <a@b>, c\n\nx\n",
    b'From: "Sam \\"the man\\" Smith" [<sam@example.org>\nTo: "unterminated\n'
    b'Cc: x "a\\b\n \nBcc: a@b(@x.y@N N\\\n \nReply-To: bob((c)\\example.org(c)\\\n N N\n\nx\n',
    b'From: "a\n b" <x@y>\nTo: "a\n\tb"@y\nCc: N N"a\\"b\nBcc: (co\n mment) a@b\n\nx\n',
    # header values
    b"Subject: a\n\nMessage-ID: <x>\n \nIn-Reply-To: <y>\n \n z\n\nb\n",
    b"Subject:\nFrom:\nTo:   \nCc: ,\nBcc: ,,a@b,,\nMessage-ID:   <x>  \nDate:\n  \n\n",
    b"Subject: nul\x00here\ttab\xe9\n\nx\n",
    b"Date: x\n\ty\nMessage-ID: <a>\n\t<b>\nSubject: s\nMIME-Version: 1.0\n"
    b"Content-Description: first\n\tsecond\n  third\nContent-ID: <id>\n\t(c)\n\nb\n",
    b"Date: real\nDate\nSubject\nSubject: s\nTo\n\nb\n",
    b"Subject : spaced colon\nFROM : A <a@b>\n\nx\n",
    b'Subject:  "\\\\\\\\\\"\nIn-Reply-To: x\n  y\nMessage-ID: a\\b"c\\d"e\\f\n\nx\n',
    # Content-Type and friends
    b"MIME-Version: 1.0\nContent-Type: text/plain foo\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: text/plain:\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: text/\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: /plain\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: text\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: multipart\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: message\n\nbody\n",
    b"MIME-Version: 1.0\nContent-Type: text/plain; charset=x garbage; format=flowed\n\nb\n",
    b"Content-Type: Text/Plain (comment); charset=utf-8 (c)\n\nb\n",
    b'Content-Type: text/plain; charset="a\\"b"\n\nb\n',
    b"Content-Type: application/x; name*0=a; name*2=b; x*=utf-8''%41; y=1\n\nx\n",
    b'Content-Type: application/x; name="caf\xc3\xa9"\n\nx\n',
    b'Content-Type: application/x; name="\\"\\"\\"\\"\\""\n\nx\n',
    b"Content-Type: image/png; name=a.png\nContent-Type: text/plain\n\nx\n",
    b"Content-Type: text/plain\nContent-Transfer-Encoding: base64 junk\n\nx\n",
    b"Content-Type: text/plain\nContent-Transfer-Encoding:  QUOTED-PRINTABLE \n\nx\n",
    b"Content-Type: text/plain\nContent-Disposition: inline\n"
    b"Content-Disposition: attachment; filename=x\n\nx\n",
    b"MIME-Version: 1.0\nContent-Disposition: attachment; filename=x\n"
    b"Content-Language: en, , fr\nContent-Location: a\n b\n\nbody\n",
    b"Content-Disposition: attachment; filename=x\nContent-Language: en\n\nno MIME-Version\n",
    b"Content-Type\nSubject: Content-Type without a colon\n\nbody\n",
    # boundaries
    b'Content-Type: multipart/mixed; boundary=""\n\n--\nContent-Type: text/plain\n\nx\n----\n',
    b"Content-Type: multipart/mixed; boundary=b\n\n--b  junk after\n\nx\n--b-- trailing\nepi\n",
    b"Content-Type: multipart/mixed; boundary=abc\n\n--abcdef\n\nx\n--abc--\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\n--x\n\n--x\nA: b\n--x--",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nB: c\n\n--x\n\n--x\nA: b\n--x--",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--x\n\nbody\n--x--",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nB: c\n\n\n--x--\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n--x--\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\n"
    b"Content-Type: multipart/mixed; boundary=y\n\n--x--\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n"
    b"Subject: s\n\n--x--\n",
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n"
    b"Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeA==\n--a--\n",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nno end",
    b"Content-Type: multipart/mixed; boundary=x\n\n--x",
    b"Content-Type: multipart/mixed; boundary=x\n\n\n\n--x\n\n\n\n--x--\n\n",
    b'Content-Type: multipart/alternative; boundary="b"\n\n--b\r\nContent-Type: text/plain\r\n'
    b"\r\nmixed line ends\n--b\nContent-Type: text/html\n\n<p>\r\n--b--\r\n",
    b"MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in digest\n"
    b"\nbody\n--d\nContent-Type: multipart/digest; boundary=e\n\n--e\n\nSubject: deep\n\nx\n--e--\n"
    b"--d--\n",
    b"Content-Type: message/rfc822\n\nFrom: a@b\nFrom: c@d\nSubject: one\nSubject: two\n"
    b"To: x@y\nTo: z@w\n\ninner\n",
    # degenerate messages
    b"\n\nbody only, empty header\n",
    b"X",
    b"Subject: x\r\n\r\n",
    b"Received: a\n\tb\n c\nSubject: with\n  folding\nTo: <a@b>,\n\t<c@d>\n\nbody\n",
    b"Subject: " + b"x" * 5000 + b"\n\nlong\n",
    # past Dovecot's bounds (issue #17): nesting, boundary length, parameters, names
    b"".join(b"Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n" % (i, i) for i in range(110))
    + b"Subject: 110 deep\n\nleaf\n",
    b"Content-Type: message/rfc822\n\n" * 110 + b"Subject: 110 deep\n\nleaf\n",
    b"Content-Type: multipart/mixed; boundary="
    + b"q" * 100
    + b"\n\n--"
    + b"q" * 100
    + b"\n\nA\n--"
    + b"q" * 80
    + b"-junk\n\nB\n--"
    + b"q" * 79
    + b"\n\nC\n",
    b"Content-Type: text/plain" + b"".join(b"; p%d=v" % i for i in range(140)) + b"\n\nx\n",
    b"Content-Type: multipart/mixed"
    + b"".join(b"; p%d=v" % i for i in range(128))
    + b"; boundary=x\n\n--x\n\nA\n--x--\n",
    b"Content-Type: text/plain"
    + b"; =" * 100
    + b"".join(b"; p%d=v" % i for i in range(40))
    + b"\nContent-Disposition: inline; f*0=a; f*"
    + b"9" * 40
    + b"=b\n\nx\n",
    b"X" * 1001 + b": v\nSubject: s\n" + b"Y" * 1000 + b": w\n\nbody\n",
    b'Content-Type: multipart/mixed; boundary="x\r"\r\n\r\n--x\rA\r\n\r\n--x\r\n--x\r\n',
    b"Content-Type: multipart/mixed; boundary=foo--\n\n--foo--\n"
    b"Content-Type: multipart/mixed; boundary=foo\n\n--foo\n\nA\n--foo--\nB\n--foo----\n",
]

EDGE_SECTIONS: list[str] = [
    "HEADER",
    "TEXT",
    "1",
    "1.MIME",
    "2",
    "2.MIME",
    "3.MIME",
    "1.1",
    "1.HEADER",
    "1.TEXT",
    "HEADER.FIELDS (SUBJECT FROM TO)",
    "HEADER.FIELDS.NOT (SUBJECT)",
]
