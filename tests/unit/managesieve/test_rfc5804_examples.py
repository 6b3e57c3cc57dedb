# ruff: noqa: E501  (protocol lines are long; they read best unbroken)
"""RFC 5804's examples, section by section, against the session (no sockets).

Where the RFC's server says something of its own (an implementation name, a text), ours says
its own too: the status, the response code and the data are what is checked. The scripts land
on disk in Pigeonhole's layout (tests/unit/managesieve/test_storage.py checks that layout).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from mda.sieve import EXTENSIONS
from tests.unit.managesieve._client import PLAIN, Client


@pytest.fixture
def c(tmp_path: Path) -> Client:
    return Client(tmp_path)


@pytest.fixture
def logged_in(c: Client) -> Client:
    c.login()
    return c


# --- 1.7 Capabilities -----------------------------------------------------------------------


def test_1_7_greeting_lists_the_capabilities_then_ok(c: Client) -> None:
    assert c.greeting[-1] == 'OK "mra ManageSieve ready."'
    names = c.capability_names(c.greeting)
    for required in ("IMPLEMENTATION", "SIEVE", "VERSION", "SASL"):
        assert required in names
    assert len(names) == len(set(names))  # "each capability name can appear at most once"
    assert '"VERSION" "1.0"' in c.greeting
    assert "OWNER" not in names  # "MUST NOT be returned in unauthenticated state"


def test_1_7_sieve_lists_exactly_what_require_accepts(c: Client) -> None:
    (line,) = [x for x in c.greeting if x.startswith('"SIEVE"')]
    assert set(line.split('"')[3].split()) == set(EXTENSIONS)
    assert '"MAXREDIRECTS" "4"' in c.greeting  # the engine's redirect limit


def test_1_7_after_authentication_owner_and_no_sasl(logged_in: Client) -> None:
    lines = logged_in.send("CAPABILITY\r\n")
    assert lines[-1] == 'OK "Capability completed."'
    names = logged_in.capability_names(lines)
    assert '"OWNER" "alice@example.test"' in lines
    assert "SASL" not in names and "STARTTLS" not in names
    assert {"IMPLEMENTATION", "SIEVE", "VERSION"} <= set(names)


# --- 2.1 AUTHENTICATE -----------------------------------------------------------------------


def test_2_1_plain_with_an_initial_response(c: Client) -> None:
    c.expect(f'Authenticate "PLAIN" "{PLAIN}"\r\n', 'OK "Logged in."')


def test_2_1_initial_response_as_a_literal(c: Client) -> None:
    c.expect(f'AUTHENTICATE "PLAIN" {{{len(PLAIN)}+}}\r\n{PLAIN}\r\n', 'OK "Logged in."')


def test_2_1_plain_without_initial_response_gets_an_empty_challenge(c: Client) -> None:
    c.expect('AUTHENTICATE "PLAIN"\r\n', '""')
    c.expect(f'"{PLAIN}"\r\n', 'OK "Logged in."')


def test_2_1_response_as_a_literal_and_login_mechanism(c: Client) -> None:
    """The second DIGEST-MD5 example's shape: challenges as strings, responses as literals."""
    user = base64.b64encode(b"alice@example.test").decode()
    password = base64.b64encode(b"pw").decode()
    c.expect('AUTHENTICATE "LOGIN"\r\n', f'"{base64.b64encode(b"Username:").decode()}"')
    c.expect(f"{{{len(user)}+}}\r\n{user}\r\n", f'"{base64.b64encode(b"Password:").decode()}"')
    c.expect(f'"{password}"\r\n', 'OK "Logged in."')


def test_2_1_star_cancels(c: Client) -> None:
    c.expect('AUTHENTICATE "PLAIN"\r\n', '""')
    c.expect('"*"\r\n', 'NO "Authentication cancelled."')
    c.login()


def test_2_1_failures_answer_no_and_the_session_goes_on(c: Client) -> None:
    bad = base64.b64encode(b"\0alice@example.test\0wrong").decode()
    c.expect(f'Authenticate "PLAIN" "{bad}"\r\n', 'NO "Authentication failed."')
    c.expect('AUTHENTICATE "GSSAPI"\r\n', 'NO "Unsupported authentication mechanism."')
    c.expect(
        'AUTHENTICATE "PLAIN" "not base64!"\r\n',
        'NO "Invalid response to the authentication challenge."',
    )
    c.login()


def test_2_1_no_reauthentication(logged_in: Client) -> None:
    logged_in.expect(f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n', 'NO "Already authenticated."')


def test_2_1_plaintext_needs_tls_off_loopback(tmp_path: Path) -> None:
    c = Client(tmp_path, peer="192.0.2.7", tls_available=True)
    # alice's password is stored in the clear, so the challenge-response mechanisms work
    assert '"SASL" "SCRAM-SHA-256 CRAM-MD5"' in c.greeting and '"STARTTLS"' in c.greeting
    c.expect(
        f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n',
        'NO (ENCRYPT-NEEDED) "Plaintext authentication disallowed on non-secure connections."',
    )


def test_2_1_an_account_without_a_home_has_no_scripts(tmp_path: Path) -> None:
    c = Client(tmp_path, home=False)
    c.expect(
        f'AUTHENTICATE "PLAIN" "{PLAIN}"\r\n',
        'NO "Sieve scripts are kept in the home directory, and this account has none."',
    )


# --- 2.2 STARTTLS, 2.3 LOGOUT, 2.4 CAPABILITY -----------------------------------------------


def test_2_2_starttls_then_the_capabilities_again_without_starttls(tmp_path: Path) -> None:
    c = Client(tmp_path, peer="192.0.2.7", tls_available=True)
    lines = c.send("StartTls\r\nCAPABILITY\r\n")  # pipelined plaintext after it is dropped
    assert c.tls_started
    assert lines[0] == 'OK "Begin TLS negotiation now."'
    assert lines[-1] == 'OK "TLS negotiation successful."'
    assert "STARTTLS" not in c.capability_names(lines)
    assert '"SASL" "SCRAM-SHA-256 CRAM-MD5 PLAIN LOGIN"' in lines  # PLAIN is allowed now
    c.expect("STARTTLS\r\n", 'NO "TLS is already active."')


def test_2_2_starttls_unavailable(c: Client) -> None:
    c.expect("STARTTLS\r\n", 'NO "TLS is not available on this server."')


def test_2_3_logout(c: Client) -> None:
    c.expect("Logout\r\nCAPABILITY\r\n", 'OK "Logout completed."')  # what follows is ignored
    assert c.closed


def test_2_4_capability(c: Client) -> None:
    lines = c.send("CAPABILITY\r\n")
    assert lines[:-1] == c.greeting[:-1]
    assert lines[-1] == 'OK "Capability completed."'


# --- 2.5 HAVESPACE --------------------------------------------------------------------------


def test_2_5_havespace(tmp_path: Path) -> None:
    c = Client(tmp_path, config="[managesieve]\nmax_script_size = 100000\n")
    c.login()
    c.expect(
        'HAVESPACE "myscript" 999999\r\n',
        'NO (QUOTA/MAXSIZE) "Script is too large, max 100000 bytes."',
    )
    c.expect('HAVESPACE "foobar" 435\r\n', 'OK "Putscript would succeed."')


# --- 2.6 PUTSCRIPT --------------------------------------------------------------------------

MYSIEVESCRIPT = 'require ["fileinto"];\r\n\r\nif envelope :contains "to" "tmartin+sent" {\r\n  fileinto "INBOX.sent";\r\n}'
MYFORWARDS = (
    'redirect "111@example.net";\r\n\r\nif size :under 10k {\r\n    redirect "mobile@cell.example.com";\r\n}\r\n\r\n'
    'if envelope :contains "to" "tmartin+lists" {\r\n    redirect "lists@groups.example.com";\r\n}'
)


def test_2_6_putscript_examples(logged_in: Client) -> None:
    c = logged_in
    (line,) = c.send('Putscript "foo" {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n')
    assert line.startswith('NO "line 3: error: ') and "invalidsievecommand" in line
    assert not (c.home / "sieve" / "foo.sieve").exists()  # "MUST NOT be stored"
    # The RFC's examples use envelope without requiring it; RFC 5228 5.4 says they must.
    c.expect(c.put_command("mysievescript", MYSIEVESCRIPT), 'NO "line 3: error: {any}"')
    c.expect(c.put_command("myforwards", MYFORWARDS), 'NO "line 7: error: {any}"')
    required = MYSIEVESCRIPT.replace('"fileinto"', '"fileinto", "envelope"')
    c.expect(c.put_command("mysievescript", required), 'OK "PUTSCRIPT completed."')
    c.expect(
        c.put_command("myforwards", 'require "envelope";\r\n' + MYFORWARDS),
        'OK "PUTSCRIPT completed."',
    )
    assert (
        (c.home / "sieve" / "myforwards.sieve").read_bytes().startswith(b'require "envelope";\r\n')
    )


def test_2_6_warnings_more_redirects_than_maxredirects(logged_in: Client) -> None:
    """RFC 5804 2.6's last example: the script is stored, and OK (WARNINGS) says which
    redirect is over the limit (ours is 4: when all five run, the script fails and keeps)."""
    c = logged_in
    script = "".join(
        f'if size :under {i}k {{ redirect "r{i}@example.net"; }}\r\n' for i in range(4)
    )
    script += (
        'redirect "r0@example.net";\r\n\r\nif true {\r\n  redirect "fifth@example.net";\r\n}\r\n'
    )
    (line,) = c.put("myforwards", script)
    assert line.startswith(
        'OK (WARNINGS) "line 8: warning: a message may be redirected to 4 addresses at most'
    )
    assert (c.home / "sieve" / "myforwards.sieve").exists()
    (line,) = c.send(b"CHECKSCRIPT {%d+}\r\n%s\r\n" % (len(script), script.encode()))
    assert line.startswith('OK (WARNINGS) "line 8: warning: ')
    (line,) = c.send('SETACTIVE "myforwards"\r\n')
    assert line.startswith('OK (WARNINGS) "line 8: warning: ')
    c.expect('SETACTIVE "myforwards"\r\n', 'OK "Script is already active."')
    four = script.replace("fifth@", "r1@")  # a duplicate address is one redirect
    c.expect(c.put_command("myforwards", four), 'OK "PUTSCRIPT completed."')


def test_2_6_putscript_replaces_and_a_failed_one_leaves_the_old(logged_in: Client) -> None:
    c = logged_in
    c.expect(c.put_command("s", "keep;"), 'OK "PUTSCRIPT completed."')
    c.expect(c.put_command("s", "discard;"), 'OK "PUTSCRIPT completed."')
    assert c.send(c.put_command("s", "bogus;"))[0].startswith("NO ")
    assert (c.home / "sieve" / "s.sieve").read_bytes() == b"discard;"
    c.expect('PUTSCRIPT "s" ""\r\n', 'NO "The script is empty."')


def test_2_6_a_script_over_the_limit_is_skipped_unread(tmp_path: Path) -> None:
    c = Client(tmp_path, config="[managesieve]\nmax_script_size = 10\n")
    c.login()
    c.expect(
        b'PUTSCRIPT "big" {11+}\r\nkeep; keep;\r\nNOOP\r\n',
        'NO (QUOTA/MAXSIZE) "Script is too large, max 10 bytes."',
        'OK "NOOP completed."',
    )
    c.expect(c.put_command("small", "keep;"), 'OK "PUTSCRIPT completed."')


# --- 2.7 LISTSCRIPTS ------------------------------------------------------------------------


def test_2_7_listscripts(logged_in: Client) -> None:
    c = logged_in
    for name in ("summer_script", "vacation_script", 'clever"script', "main_script"):
        c.expect(c.put_command(name, "keep;"), 'OK "PUTSCRIPT completed."')
    c.expect('SETACTIVE "main_script"\r\n', 'OK "Setactive completed."')
    c.expect(
        "Listscripts\r\n",
        '"clever\\"script"',
        '"main_script" ACTIVE',
        '"summer_script"',
        '"vacation_script"',
        'OK "Listscripts completed."',
    )


def test_2_7_a_name_with_a_line_break_cannot_exist(logged_in: Client) -> None:
    logged_in.expect("PUTSCRIPT {3+}\r\na\nb {5+}\r\nkeep;\r\n", 'NO "Invalid script name."')


# --- 2.8 SETACTIVE --------------------------------------------------------------------------


def test_2_8_setactive(logged_in: Client) -> None:
    c = logged_in
    c.expect(c.put_command("vacationscript", "keep;"), 'OK "PUTSCRIPT completed."')
    c.expect('Setactive "vacationscript"\r\n', 'OK "Setactive completed."')
    assert os.readlink(c.home / ".dovecot.sieve") == "sieve/vacationscript.sieve"
    c.expect('SETACTIVE "vacationscript"\r\n', 'OK "Script is already active."')
    c.expect('Setactive ""\r\n', 'OK "Sieve processing disabled."')
    assert not os.path.lexists(c.home / ".dovecot.sieve")
    c.expect('Setactive ""\r\n', 'OK "Sieve processing disabled."')  # "not an error"
    c.expect('Setactive "baz"\r\n', 'NO (NONEXISTENT) "There is no script by that name."')


def test_2_8_a_script_that_does_not_compile_is_not_activated(logged_in: Client) -> None:
    c = logged_in
    (c.home / "sieve").mkdir(exist_ok=True)
    (c.home / "sieve" / "broken.sieve").write_text('require "nosuchextension";\n')
    (line,) = c.send('SETACTIVE "broken"\r\n')
    assert line.startswith('NO "line 1: error: ') and "nosuchextension" in line
    assert not os.path.lexists(c.home / ".dovecot.sieve")


# --- 2.9 GETSCRIPT, 2.10 DELETESCRIPT, 2.11 RENAMESCRIPT ------------------------------------


def test_2_9_getscript(logged_in: Client) -> None:
    c = logged_in
    script = '#this is my wonderful script\r\nreject "I reject all";\r\n'
    (c.home / "sieve").mkdir()
    (c.home / "sieve" / "myscript.sieve").write_text(script, newline="")
    c.expect(
        'Getscript "myscript"\r\n',
        "{54}",
        "#this is my wonderful script",
        'reject "I reject all";',
        'OK "Getscript completed."',
    )
    c.expect('GETSCRIPT "nope"\r\n', 'NO (NONEXISTENT) "There is no script by that name."')


def test_2_10_deletescript(logged_in: Client) -> None:
    c = logged_in
    c.expect(
        c.put_command("foo", "keep;") + c.put_command("baz", "keep;"),
        'OK "PUTSCRIPT completed."',
        'OK "PUTSCRIPT completed."',
    )
    c.expect('SETACTIVE "baz"\r\n', 'OK "Setactive completed."')
    c.expect('Deletescript "foo"\r\n', 'OK "Deletescript completed."')
    c.expect(
        'Deletescript "baz"\r\n',
        'NO (ACTIVE) "You may not delete the active script; deactivate it first."',
    )
    c.expect('Deletescript "foo"\r\n', 'NO (NONEXISTENT) "There is no script by that name."')
    assert sorted(os.listdir(c.home / "sieve")) == ["baz.sieve", "tmp"]


def test_2_11_renamescript(logged_in: Client) -> None:
    c = logged_in
    c.expect(
        c.put_command("foo", "keep;") + c.put_command("baz", "discard;"),
        'OK "PUTSCRIPT completed."',
        'OK "PUTSCRIPT completed."',
    )
    c.expect('SETACTIVE "foo"\r\n', 'OK "Setactive completed."')
    c.expect('Renamescript "foo" "bar"\r\n', 'OK "Renamescript completed."')
    assert os.readlink(c.home / ".dovecot.sieve") == "sieve/bar.sieve"  # "remains active"
    c.expect(
        'Renamescript "baz" "bar"\r\n',
        'NO (ALREADYEXISTS) "A script with that name already exists."',
    )
    c.expect(
        'Renamescript "nope" "other"\r\n', 'NO (NONEXISTENT) "There is no script by that name."'
    )
    assert (c.home / "sieve" / "bar.sieve").read_bytes() == b"keep;"
    assert (c.home / "sieve" / "baz.sieve").read_bytes() == b"discard;"


# --- 2.12 CHECKSCRIPT, 2.13 NOOP, 2.14 UNAUTHENTICATE ---------------------------------------


def test_2_12_checkscript(tmp_path: Path) -> None:
    c = Client(tmp_path, config="[managesieve]\nmax_scripts = 1\n")
    c.login()
    (line,) = c.send("CheckScript {31+}\r\n#comment\r\nInvalidSieveCommand\r\n\r\n")
    assert line.startswith('NO "line 3: error: ')
    c.expect(c.put_command("one", "keep;"), 'OK "PUTSCRIPT completed."')
    # "MUST NOT check if the script will put the current user over its quota limit"
    c.expect("CHECKSCRIPT {5+}\r\nkeep;\r\n", 'OK "Script checked successfully."')
    assert sorted(os.listdir(c.home / "sieve")) == ["one.sieve", "tmp"]


def test_2_13_noop(c: Client) -> None:
    c.expect("NOOP\r\n", 'OK "NOOP completed."')
    c.expect('NOOP "STARTTLS-SYNC-42"\r\n', 'OK (TAG "STARTTLS-SYNC-42") "Done"')
    c.expect("NOOP {16+}\r\nSTARTTLS-SYNC-42\r\n", 'OK (TAG "STARTTLS-SYNC-42") "Done"')


def test_2_14_unauthenticate(logged_in: Client) -> None:
    c = logged_in
    c.expect("UNAUTHENTICATE\r\n", 'OK "Unauthenticate completed."')
    assert not c.session.authenticated
    c.expect("LISTSCRIPTS\r\n", 'NO "Authenticate first."')
    c.expect("UNAUTHENTICATE\r\n", 'NO "Not authenticated."')
    c.login()


# --- section 2: commands in the wrong state, unknown commands -------------------------------


def test_2_commands_before_login_are_refused_with_no(c: Client) -> None:
    for command in (
        "LISTSCRIPTS",
        'GETSCRIPT "a"',
        'PUTSCRIPT "a" {5+}\r\nkeep;',
        'HAVESPACE "a" 1',
    ):
        c.expect(command + "\r\n", 'NO "Authenticate first."')
    c.expect("FROBNICATE\r\n", 'NO "Unknown command."')
    c.login()
    c.expect("STARTTLS\r\n", 'NO "Already authenticated."')


def test_2_1_scram_sha_256_final_message_as_one_more_challenge(c: Client) -> None:
    """SCRAM's server-final-message goes out as a challenge and the client answers with an
    empty string, the shape of RFC 5804 2.1's second DIGEST-MD5 example."""
    from tests.unit.auth.test_sasl import ScramClient

    scram = ScramClient(b"alice@example.test", b"pw")
    first = base64.b64encode(scram.first()).decode()
    (challenge,) = c.send(f'AUTHENTICATE "SCRAM-SHA-256" "{first}"\r\n')
    server_first = base64.b64decode(challenge.strip('"'))
    final = base64.b64encode(scram.final(server_first)).decode()
    (challenge,) = c.send(f'"{final}"\r\n')
    assert base64.b64decode(challenge.strip('"')) == scram.expected_final
    c.expect('""\r\n', 'OK "Logged in."')
