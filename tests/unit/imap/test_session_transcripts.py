# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""The IMAP session alone, no sockets: client lines in, server lines out, for every command.

Expected lines are regular expressions (`{n}` placeholders for values that change: UIDVALIDITY,
dates). Blocking work (password checks, SELECT) runs synchronously through `run_blocking`.
"""

from __future__ import annotations

import re
from pathlib import Path

from mailstore.config import load_config
from mailstore.store import MailStore
from mra.auth.glue import AuthService
from mra.context import Connection, Services
from mra.imap.session import ImapSession
from mra.session import Close, Send, StartTLS, run_blocking

MSG1 = b"From: Bob <bob@example.test>\nTo: alice@example.test\nSubject: Hello\n\nHi Alice!\n"
MSG2 = b"From: carol@example.test\r\nSubject: Report\r\n\r\nNumbers.\r\n"


class Client:
    """`config`: more TOML for the server; `userdb`: alice's passwd-file extra fields."""

    def __init__(
        self, tmp_path: Path, peer: str = "127.0.0.1", config: str = "", userdb: str = ""
    ) -> None:
        (tmp_path / "passwd").write_text(f"alice@example.test:{{PLAIN}}pw::::::{userdb}\n")
        (tmp_path / "mra.toml").write_text(
            f'[auth]\npasswd_file = "{tmp_path}/passwd"\n'
            f'[mail]\nlocation = "{tmp_path}/mail/%d/%n"\n' + config
        )
        config = load_config(str(tmp_path / "mra.toml"))
        self.store = MailStore(str(tmp_path / "mail/example.test/alice"))
        inbox = self.store.mailbox("INBOX")
        inbox.append(MSG1)
        inbox.append(MSG2, flags=["\\Seen"])
        self.session = ImapSession(Connection("imap", peer), Services(config, AuthService(config)))
        self.closed = False
        self.greeting = self._text(self.session.greeting())

    def _text(self, outputs: list[object]) -> str:
        done = run_blocking(outputs)  # type: ignore[arg-type]
        if any(isinstance(o, Close) for o in done):
            self.closed = True
        if any(isinstance(o, StartTLS) for o in done):
            done += run_blocking(self.session.tls_started())
        return b"".join(o.data for o in done if isinstance(o, Send)).decode("utf-8", "replace")

    def send(self, data: str | bytes) -> list[str]:
        raw = data.encode() if isinstance(data, str) else data
        text = self._text(self.session.data_received(raw))
        return [line for line in text.split("\r\n") if line]

    def expect(self, data: str | bytes, *patterns: str) -> list[str]:
        lines = self.send(data)
        assert len(lines) == len(patterns), lines
        for line, pattern in zip(lines, patterns, strict=True):
            regex = re.escape(pattern).replace(r"\{n\}", r"\S+").replace(r"\{any\}", ".*")
            assert re.fullmatch(regex, line), (line, pattern)
        return lines

    def login(self) -> None:
        self.expect("a LOGIN alice@example.test pw\r\n", "a OK [CAPABILITY {any}] Logged in")


def test_greeting_capability_noop_logout(c: Client) -> None:
    assert c.greeting.startswith("* OK [CAPABILITY IMAP4rev1 ")
    assert "AUTH=PLAIN" in c.greeting and "LOGINDISABLED" not in c.greeting
    c.expect("a CAPABILITY\r\n", "* CAPABILITY IMAP4rev1 {any}", "a OK CAPABILITY completed")
    c.expect("b NOOP\r\n", "b OK NOOP completed")
    c.expect("c ID NIL\r\n", '* ID ("name" "mra")', "c OK ID completed")
    c.expect("d LOGOUT\r\n", "* BYE Logging out", "d OK Logout completed")
    assert c.closed


def test_login_failures_and_state_rules(c: Client) -> None:
    c.expect("a SELECT INBOX\r\n", "a BAD SELECT is not valid before login")
    c.expect(
        "b LOGIN alice@example.test wrong\r\n", "b NO [AUTHENTICATIONFAILED] Authentication failed"
    )
    c.expect("c STARTTLS\r\n", "c BAD TLS is not available")
    c.login()
    c.expect("d LOGIN x y\r\n", "d BAD Already logged in")
    c.expect("e FETCH 1 FLAGS\r\n", "e BAD FETCH is not valid without a selected mailbox")


def test_plaintext_refused_off_loopback(tmp_path: Path) -> None:
    c = Client(tmp_path, peer="192.0.2.1")
    assert "LOGINDISABLED" in c.greeting and "AUTH=PLAIN" not in c.greeting
    c.expect(
        "a LOGIN alice@example.test pw\r\n",
        "a NO [PRIVACYREQUIRED] Plaintext authentication is disabled: use STARTTLS",
    )


def test_authenticate_plain_with_and_without_initial_response(c: Client) -> None:
    import base64

    token = base64.b64encode(b"\0alice@example.test\0pw").decode()
    c.expect("a AUTHENTICATE PLAIN\r\n", "+ ")
    c.expect(token + "\r\n", "a OK [CAPABILITY {any}] Logged in")


def test_authenticate_cancel_and_sasl_ir(tmp_path: Path) -> None:
    import base64

    c = Client(tmp_path)
    c.expect("a AUTHENTICATE PLAIN\r\n", "+ ")
    c.expect("*\r\n", "a BAD Authentication cancelled")
    token = base64.b64encode(b"\0alice@example.test\0pw").decode()
    c.expect(f"b AUTHENTICATE PLAIN {token}\r\n", "b OK [CAPABILITY {any}] Logged in")


def test_select_and_examine(c: Client) -> None:
    c.login()
    c.expect(
        "a SELECT INBOX\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
        "* 2 EXISTS",
        "* 1 RECENT",
        "* OK [UNSEEN 1] First unseen.",
        "* OK [UIDVALIDITY {n}] UIDs valid",
        "* OK [UIDNEXT 3] Predicted next UID",
        "* OK [HIGHESTMODSEQ {n}] Highest",
        "a OK [READ-WRITE] Select completed",
    )
    lines = c.send("b EXAMINE INBOX\r\n")
    assert lines[0] == "* OK [CLOSED] Previous mailbox closed."
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox." in lines
    assert lines[-1] == "b OK [READ-ONLY] Examine completed"
    c.expect(
        "c SELECT Nope\r\n",
        "* OK [CLOSED] Previous mailbox closed.",
        "c NO [NONEXISTENT] mailbox Nope does not exist",
    )


def test_create_delete_rename_subscribe_list_lsub_status(c: Client) -> None:
    c.login()
    c.expect("a CREATE Lists.python.\r\n", "a OK CREATE completed")
    c.expect(
        "b CREATE Lists.python\r\n", "b NO [ALREADYEXISTS] mailbox Lists.python already exists"
    )
    c.expect("c CREATE a/b\r\n", "c NO [CANNOT] invalid mailbox name: '/' is not allowed")
    # The default [mailboxes]: Drafts, Sent, Trash, Junk and Archive made at login.
    c.expect(
        'd LIST "" "*"\r\n',
        '* LIST (\\HasNoChildren) "." INBOX',
        '* LIST (\\HasNoChildren \\Archive) "." Archive',
        '* LIST (\\HasNoChildren \\Drafts) "." Drafts',
        '* LIST (\\HasNoChildren \\Junk) "." Junk',
        '* LIST (\\Noselect \\HasChildren) "." Lists',
        '* LIST (\\HasNoChildren) "." Lists.python',
        '* LIST (\\HasNoChildren \\Sent) "." Sent',
        '* LIST (\\HasNoChildren \\Trash) "." Trash',
        "d OK LIST completed",
    )
    c.expect(
        'e LIST "" "L%"\r\n',
        '* LIST (\\Noselect \\HasChildren) "." Lists',
        "e OK LIST completed",
    )
    c.expect('f LIST "" ""\r\n', '* LIST (\\Noselect) "." ""', "f OK LIST completed")
    c.expect("g RENAME Lists.python Lists.py\r\n", "g OK RENAME completed")
    c.expect("h SUBSCRIBE Lists.py\r\n", "h OK SUBSCRIBE completed")
    c.expect('i LSUB "" "L*"\r\n', '* LSUB () "." Lists.py', "i OK LSUB completed")
    c.expect("j UNSUBSCRIBE Lists.py\r\n", "j OK UNSUBSCRIBE completed")
    c.expect(
        "k STATUS INBOX (MESSAGES UNSEEN UIDNEXT RECENT)\r\n",
        "* STATUS INBOX (MESSAGES 2 RECENT 1 UIDNEXT 3 UNSEEN 1)",  # RFC 3501's order
        "k OK STATUS completed",
    )
    c.expect("l STATUS INBOX (BOGUS)\r\n", "l BAD STATUS: unknown STATUS item BOGUS")
    c.expect("m DELETE Lists.py\r\n", "m OK DELETE completed")
    c.expect("n DELETE INBOX\r\n", "n NO [CANNOT] INBOX cannot be deleted")
    c.expect("o NAMESPACE\r\n", '* NAMESPACE (("" ".")) NIL NIL', "o OK NAMESPACE completed")


def test_append_with_literal_flags_and_date(c: Client) -> None:
    c.login()
    c.expect('a APPEND INBOX (\\Flagged) "01-Jan-2024 12:00:00 +0000" {21}\r\n', "+ Ready")
    c.expect("Subject: new\r\n\r\nhi\r\n\r\n", "a OK [APPENDUID {n} 3] APPEND completed")
    c.expect("b APPEND Nope {1+}\r\nx\r\n", "b NO [TRYCREATE] Mailbox does not exist")
    c.expect("c APPEND INBOX {99999999999}\r\n", "c NO [TOOBIG] {any}")
    box = c.store.mailbox("INBOX")
    box.sync()
    assert box.get(3).flags == frozenset({"\\Flagged"})
    assert box.internaldate(box.get(3)) == 1704110400.0


def test_fetch_forms(selected: Client) -> None:
    c = selected
    c.expect(
        "a FETCH 1 (UID FLAGS RFC822.SIZE)\r\n",
        f"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {len(MSG1) + 5})",
        "a OK FETCH completed",
    )
    lines = c.send("b FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
    assert lines == [
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}",
        "Subject: Hello",
        ")",
        "b OK FETCH completed",
    ]
    lines = c.send("c UID FETCH 2 (BODY[]<0.8>)\r\n")
    assert lines[0] == "* 2 FETCH (UID 2 BODY[]<0> {8}" and lines[1].startswith("From: ca")
    c.expect(
        "d FETCH 1 ENVELOPE\r\n",
        '* 1 FETCH (ENVELOPE (NIL "Hello" (("Bob" NIL "bob" "example.test")) '
        '(("Bob" NIL "bob" "example.test")) (("Bob" NIL "bob" "example.test")) '
        '((NIL NIL "alice" "example.test")) NIL NIL NIL NIL))',
        "d OK FETCH completed",
    )
    c.expect(
        "e FETCH 1 BODYSTRUCTURE\r\n",
        '* 1 FETCH (BODYSTRUCTURE ("text" "plain" {any}))',
        "e OK FETCH completed",
    )
    lines = c.send("f FETCH 1 BODY[TEXT]\r\n")  # not PEEK: \Seen is set and reported
    assert lines[-1] == "f OK FETCH completed"
    assert lines[-2] == " FLAGS (\\Seen \\Recent))"
    c.expect(
        "g FETCH 1:* FAST\r\n",
        '* 1 FETCH (FLAGS (\\Seen \\Recent) INTERNALDATE "{any}" RFC822.SIZE {n})',
        '* 2 FETCH (FLAGS (\\Seen) INTERNALDATE "{any}" RFC822.SIZE {n})',
        "g OK FETCH completed",
    )
    c.expect(
        "h UID FETCH 3:* FLAGS\r\n", "* 2 FETCH (UID 2 FLAGS (\\Seen))", "h OK UID FETCH completed"
    )
    c.expect("i FETCH 9 FLAGS\r\n", "i BAD FETCH: {any}")
    c.expect("j FETCH 1 (BOGUS)\r\n", "j BAD FETCH: unknown FETCH item")


def test_store_search_copy_move_expunge(selected: Client) -> None:
    c = selected
    c.expect(
        "a STORE 1 +FLAGS ($Junk \\Flagged)\r\n",
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk \\*)] Flags permitted.",
        "* 1 FETCH (FLAGS (\\Flagged $Junk \\Recent))",
        "a OK STORE completed",
    )
    c.expect("b STORE 1 -FLAGS.SILENT ($Junk)\r\n", "b OK STORE completed")
    c.expect(
        "c UID STORE 2 FLAGS (\\Deleted)\r\n",
        "* 2 FETCH (UID 2 FLAGS (\\Deleted))",
        "c OK UID STORE completed",
    )
    c.expect("d SEARCH FLAGGED\r\n", "* SEARCH 1", "d OK SEARCH completed")
    c.expect("e UID SEARCH SUBJECT report\r\n", "* SEARCH 2", "e OK UID SEARCH completed")
    c.expect("f SEARCH CHARSET X-UNKNOWN ALL\r\n", "f NO [BADCHARSET (UTF-8 US-ASCII {any})] {any}")
    c.expect("g SEARCH NONSENSE\r\n", "g BAD SEARCH: {any}")
    c.send("h CREATE Archive\r\n")
    c.expect("i COPY 1 Archive\r\n", "i OK [COPYUID {n} 1 1] COPY completed")
    c.expect("j COPY 1 Nope\r\n", "j NO [TRYCREATE] Mailbox does not exist")
    c.expect("k EXPUNGE\r\n", "* 2 EXPUNGE", "k OK EXPUNGE completed")
    c.expect(
        "l UID MOVE 1 Archive\r\n",
        "* OK [COPYUID {n} 1 2] Moved",
        "* 1 EXPUNGE",
        "l OK UID MOVE completed",
    )
    c.expect("m CHECK\r\n", "m OK CHECK completed")
    c.expect("n UNSELECT\r\n", "n OK Unselect completed")
    c.expect("o SELECT Archive\r\n", *([r"{any}"] * 8), "o OK [READ-WRITE] Select completed")
    c.expect("p STORE 1 +FLAGS.SILENT (\\Deleted)\r\n", "p OK STORE completed")
    c.expect("q CLOSE\r\n", "q OK Close completed")
    archive = c.store.mailbox("Archive")
    archive.sync()
    assert archive.uids() == [2]


def test_expunge_by_another_session_waits_for_a_safe_command(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.login()
    c.send("s SELECT INBOX\r\n")
    other = MailStore(c.store.root).mailbox("INBOX")
    other.expunge([1])
    # FETCH must not renumber under the client: no EXPUNGE yet; message 1 is gone, and is
    # answered with what is still known of it (RFC 2180 4.1.1), as Dovecot answers.
    lines = c.send("a FETCH 1:2 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
    assert "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] NIL)" in lines
    assert "* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {19}" in lines
    assert not any(x.endswith(" EXPUNGE") for x in lines)
    assert lines[-1] == "a OK [EXPUNGEISSUED] Some messages were already expunged"
    c.expect("b NOOP\r\n", "* 1 EXPUNGE", "b OK NOOP completed")


def test_idle_pushes_changes_and_only_done_ends_it(selected: Client) -> None:
    c = selected
    c.expect("a IDLE\r\n", "+ idling")
    MailStore(c.store.root).mailbox("INBOX").append(b"Subject: new\n\nx\n")
    text = c._text(c.session.mailbox_changed())
    assert "* 3 EXISTS" in text
    c.expect("DONE\r\n", "a OK IDLE terminated")
    c.expect("b IDLE\r\n", "+ idling")
    c.expect("NOOP\r\n", "b BAD IDLE ended: expected DONE")


def test_bad_input_and_too_many_errors(c: Client) -> None:
    c.expect("\r\n")
    c.expect("a\r\n", "a BAD {any}")
    c.expect('b LOGIN "unterminated\r\n', "b BAD {any}")
    for i in range(7):
        c.send(f"x{i} BOGUS\r\n")
    lines = c.send("y BOGUS\r\n")
    assert lines[-1].startswith("* BYE") and c.closed


def test_starttls_drops_pipelined_commands(tmp_path: Path) -> None:
    c = Client(tmp_path)
    c.session.conn.tls_available = True
    lines = c.send("a STARTTLS\r\nb LOGIN alice@example.test pw\r\n")
    assert lines == ["a OK Begin TLS negotiation now"]
    c.expect("c NOOP\r\n", "c OK NOOP completed")  # b was never run
    assert c.session.state == "NOTAUTH"


def test_attack_literals_held_are_given_back(c: Client) -> None:
    """The process's literal budget (issue #17): a finished command gives back what its
    literals reserved, and a closed connection everything, half-sent literals included."""
    pool = c.session.literals
    c.login()
    c.expect("a APPEND INBOX {21}\r\n", "+ Ready")
    c.expect("Subject: new\r\n\r\nhi\r\n\r\n", "a OK [APPENDUID {n} 3] APPEND completed")
    c.expect("b APPEND Nope {1+}\r\nx\r\n", "b NO [TRYCREATE] Mailbox does not exist")
    c.send("d SELECT INBOX\r\n")
    c.expect("c SEARCH CHARSET UTF-8 TEXT {5+}\r\nhello\r\n", "* SEARCH 1", "c OK SEARCH completed")
    c.expect("d NOOP\r\n", "d OK NOOP completed")
    assert pool.held == 0
    c.send("e APPEND INBOX {100000+}\r\n" + "x" * 5000)
    assert pool.held == 100000
    c.session.connection_lost()
    assert pool.held == 0


def test_attack_search_literal_too_big_for_a_search(c: Client) -> None:
    c.login()
    c.send("s SELECT INBOX\r\n")
    c.expect("a SEARCH TEXT {70000}\r\n", "a BAD [TOOBIG] literal of 70000 octets is too large")
    assert c.session.literals.held == 0
