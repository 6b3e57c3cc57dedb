"""The TOML configuration: defaults, a full file, and every kind of problem with its line."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mailstore.config import (
    MIB,
    Config,
    ConfigError,
    ConfigProblem,
    Endpoint,
    check_config,
    load_config,
    parse_config,
    parse_endpoint,
)


def write(tmp_path: Path, text: str, name: str = "mra.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems(tmp_path: Path, text: str) -> list[ConfigProblem]:
    return check_config(write(tmp_path, text))


# --- defaults and a full file --------------------------------------------------------------------


def test_defaults_serve_nothing() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.path is None
    assert config.listen.enabled() == {}
    assert config.tls.cert == config.tls.key == ""
    assert config.auth.passwd_file == ""
    assert config.auth.allow_plaintext is False
    assert config.mail.location == "~/Maildir"
    assert config.mail.max_message_size == 50 * MIB == 52428800
    assert config.maps.aliases == "/etc/aliases"
    assert config.maps.virtusertable == "/etc/mail/virtusertable"
    assert config.maps.access == "/etc/mail/access"
    assert config.maps.local_domains == "/etc/mail/local-host-names"
    assert config.mda.sendmail == "/usr/sbin/sendmail"
    assert config.mda.quota_bounce is False
    assert config.mda.duplicate_window == 0
    assert config.mda.program_timeout == 60
    assert config.mda.mail_uid == ""
    assert config.server.workers == 1
    assert config.server.user == ""


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing here\n")
    assert load_config(path) == Config(path=path)
    assert check_config(path) == []


def test_sections_are_frozen() -> None:
    config = load_config(None)
    with pytest.raises(AttributeError):
        config.server.workers = 4  # type: ignore[misc]


FULL = """\
# A complete configuration.
[listen]
imap  = "127.0.0.1:143"
imaps = "[::1]:993"
pop3  = ":110"
pop3s = ""            # off

[tls]
cert = "/etc/mra/cert.pem"
key  = "/etc/mra/key.pem"

[auth]
passwd_file = "/etc/mra/passwd"
allow_plaintext = true

[mail]
location = "maildir:/var/vmail/%d/%n"
max_message_size = 1048576

[maps]
aliases = "/etc/aliases"
virtusertable = "/etc/mail/virtusertable"
access = "/etc/mail/access"
local_domains = "/etc/mail/local-host-names"

[mda]
sendmail = "/usr/lib/sendmail"
quota_bounce = true
duplicate_window = 3600
program_timeout = 30
mail_uid = "vmail"

[server]
workers = 4
user = "mra"
"""


def test_full_example(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config.path == path
    assert config.listen.imap == Endpoint("127.0.0.1", 143)
    assert config.listen.imaps == Endpoint("::1", 993)
    assert config.listen.pop3 == Endpoint("", 110)
    assert config.listen.pop3s is None
    assert config.listen.enabled() == {
        "imap": ("127.0.0.1", 143),
        "imaps": ("::1", 993),
        "pop3": ("", 110),
    }
    assert config.tls.cert == "/etc/mra/cert.pem"
    assert config.tls.key == "/etc/mra/key.pem"
    assert config.auth.passwd_file == "/etc/mra/passwd"
    assert config.auth.allow_plaintext is True
    # Dovecot's driver prefix is accepted and dropped: maildir is all there is.
    assert config.mail.location == "/var/vmail/%d/%n"
    assert config.mail.max_message_size == 1048576
    assert config.maps.local_domains == "/etc/mail/local-host-names"
    assert config.mda.sendmail == "/usr/lib/sendmail"
    assert config.mda.quota_bounce is True
    assert config.mda.duplicate_window == 3600
    assert config.mda.program_timeout == 30
    assert config.mda.mail_uid == "vmail"
    assert config.server.workers == 4
    assert config.server.user == "mra"
    assert check_config(path) == []


def test_numeric_users_are_kept_as_text(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[mda]\nmail_uid = 5000\n[server]\nuser = "65534"\n'))
    assert config.mda.mail_uid == "5000"
    assert config.server.user == "65534"


def test_endpoint_str_round_trips() -> None:
    for text in ("127.0.0.1:143", "[::1]:993", ":110", "mail.example.test:4190"):
        assert str(parse_endpoint(text)) == text


# --- endpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:143", ("127.0.0.1", 143)),
        ("[::1]:143", ("::1", 143)),
        ("[::]:993", ("::", 993)),
        (":143", ("", 143)),
        ("localhost:110", ("localhost", 110)),
        (" 0.0.0.0:995 ", ("0.0.0.0", 995)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),  # any free port, for tests
        ("127.0.0.1:65535", ("127.0.0.1", 65535)),
    ],
)
def test_parse_endpoint(text: str, expected: tuple[str, int]) -> None:
    endpoint = parse_endpoint(text)
    assert endpoint == expected
    assert (endpoint.host, endpoint.port) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:", "bad port ''"),
        ("127.0.0.1:65536", "bad port '65536'"),
        ("127.0.0.1:-1", "bad port '-1'"),
        ("127.0.0.1:imap", "bad port 'imap'"),
        ("127.0.0.1:1.5", "bad port '1.5'"),
        ("127.0.0.1:١٤٣", "bad port"),  # non-ASCII digits are not a port
        ("::1:143", "in brackets"),
        ("[::1:143", "missing ']'"),
        ("[::1]143", "expected ':PORT'"),
        ("[example]:143", "not an IPv6 address"),
        ("*:143", "bad host '*'"),
        ("bad host:143", "bad host"),
        ("", "expected HOST:PORT"),
    ],
)
def test_parse_endpoint_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_endpoint(text)


def test_bad_endpoint_in_file(tmp_path: Path) -> None:
    found = problems(tmp_path, '[listen]\nimap = "127.0.0.1:143"\npop3 = "127.0.0.1:99999"\n')
    assert found == [
        ConfigProblem(
            3,
            "[listen] pop3 = '127.0.0.1:99999': bad port '99999'"
            " (must be a number from 0 to 65535)",
        )
    ]


def test_tls_listener_needs_a_certificate(tmp_path: Path) -> None:
    found = problems(tmp_path, '[listen]\nimap = ":143"\nimaps = ":993"\npop3s = ":995"\n')
    assert found == [
        ConfigProblem(3, "[listen] imaps needs [tls] cert"),
        ConfigProblem(4, "[listen] pop3s needs [tls] cert"),
    ]


def test_key_defaults_to_the_certificate_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[tls]\ncert = "/etc/mra/both.pem"\n'))
    assert config.tls.key == "/etc/mra/both.pem"


def test_key_without_certificate(tmp_path: Path) -> None:
    assert problems(tmp_path, '[tls]\n\nkey = "/k.pem"\n') == [
        ConfigProblem(3, "[tls] key is set but cert is not")
    ]


def test_two_listeners_on_one_address(tmp_path: Path) -> None:
    found = problems(tmp_path, '[listen]\nimap = ":1143"\npop3 = ":1143"\n')
    assert found == [ConfigProblem(3, "[listen] pop3 uses :1143, as does imap")]


def test_port_zero_may_repeat(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[listen]\nimap = "127.0.0.1:0"\npop3 = "127.0.0.1:0"\n'))
    assert config.listen.imap == config.listen.pop3 == ("127.0.0.1", 0)


# --- relative paths ------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_directory(tmp_path: Path) -> None:
    conf_dir = tmp_path / "demo"
    conf_dir.mkdir()
    path = write(
        conf_dir,
        "[tls]\n"
        'cert = "certs/cert.pem"\n'
        'key = "./certs/../certs/key.pem"\n'
        '[auth]\npasswd_file = "passwd"\n'
        '[maps]\naliases = "../shared/aliases"\naccess = ""\n'
        '[mda]\nsendmail = "bin/fake-sendmail"\n'
        '[mail]\nlocation = "Maildir"\n',
    )
    config = load_config(path)
    assert config.tls.cert == str(conf_dir / "certs" / "cert.pem")
    assert config.tls.key == str(conf_dir / "certs" / "key.pem")
    assert config.auth.passwd_file == str(conf_dir / "passwd")
    assert config.maps.aliases == str(tmp_path / "shared" / "aliases")
    assert config.maps.access == ""  # "" stays off, not the directory
    assert config.maps.virtusertable == "/etc/mail/virtusertable"
    assert config.mda.sendmail == str(conf_dir / "bin" / "fake-sendmail")
    # The location is a per-user template: relative means relative to the home, not to us.
    assert config.mail.location == "Maildir"


def test_relative_config_path_still_gives_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[auth]\npasswd_file = "passwd"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config("mra.toml")
    assert config.auth.passwd_file == os.path.join(str(tmp_path), "passwd")


def test_tilde_in_a_path_is_a_problem(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[auth]\npasswd_file = "~/passwd"\n')
    assert problem.line == 2
    assert "'~' is not expanded here" in problem.message


# --- problems, one kind at a time ----------------------------------------------------------------


def test_missing_file_named_explicitly(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        ConfigProblem(None, "cannot read the configuration: No such file or directory")
    ]
    assert str(info.value) == f"{path}: cannot read the configuration: No such file or directory"


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[listen]\nimap = "127.0.0.1:143"\npop3 = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert problem.line == 3
    assert problem.message.startswith("TOML syntax error: ")
    assert "(column" in problem.message
    assert "at line" not in problem.message
    assert str(info.value).startswith(f"{path}:3: TOML syntax error: ")


def test_syntax_error_at_end_of_document(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[mail]\nlocation = "~/Maildir\n')
    assert problem.line == 2
    assert problem.message.startswith("TOML syntax error: ")


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, "[server]\nworkers = 1\nworkers = 2\n")
    assert problem.line == 3


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "mra.toml"
    path.write_bytes(b'[server]\nuser = "caf\xe9"\n')
    assert check_config(str(path)) == [ConfigProblem(2, "not valid UTF-8")]


def test_unknown_section(tmp_path: Path) -> None:
    assert problems(tmp_path, "[listen]\n\n[sever]\nworkers = 2\n") == [
        ConfigProblem(3, "unknown section [sever]; did you mean [server]?")
    ]
    assert problems(tmp_path, "[frobnicate]\n") == [
        ConfigProblem(1, "unknown section [frobnicate]")
    ]


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    assert problems(tmp_path, '[mail]\nmax_message_size = 10\nlocaton = "x"\n') == [
        ConfigProblem(3, "unknown key 'locaton' in [mail]; did you mean 'location'?")
    ]


def test_unknown_key_that_belongs_elsewhere(tmp_path: Path) -> None:
    assert problems(tmp_path, "[server]\nprogram_timeout = 5\n") == [
        ConfigProblem(2, "unknown key 'program_timeout' in [server]; it belongs in [mda]")
    ]


def test_key_outside_any_section(tmp_path: Path) -> None:
    assert problems(tmp_path, "workers = 2\n[server]\n") == [
        ConfigProblem(1, "unknown key 'workers' outside any section; it belongs in [server]")
    ]


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    assert problems(tmp_path, '\nmail = "~/Maildir"\n') == [
        ConfigProblem(2, "[mail] must be a table, not '~/Maildir'")
    ]


def test_subtable_is_an_unknown_key(tmp_path: Path) -> None:
    assert problems(tmp_path, '[mail]\nlocation = "~/M"\n[mail.extra]\nx = 1\n') == [
        ConfigProblem(3, "unknown key 'extra' in [mail]")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[server]\nworkers = "two"', "[server] workers must be an integer, not 'two'"),
        ("[server]\nworkers = true", "[server] workers must be an integer, not true"),
        ("[server]\nworkers = 1.5", "[server] workers must be an integer, not 1.5"),
        ("[auth]\nallow_plaintext = 1", "[auth] allow_plaintext must be true or false, not 1"),
        (
            '[mda]\nquota_bounce = "yes"',
            "[mda] quota_bounce must be true or false, not 'yes'",
        ),
        ("[auth]\npasswd_file = 5", "[auth] passwd_file must be a string (a path), not 5"),
        (
            '[listen]\nimap = ["a"]',
            "[listen] imap must be a string like '127.0.0.1:143' or 'unix:/run/mra/lmtp', "
            "or a table, not an array",
        ),
        (
            "[mail]\nlocation = { a = 1 }",
            "[mail] location must be a string like '~/Maildir', not a table",
        ),
        (
            "[server]\nuser = 2024-01-01",
            "[server] user must be a user name or number, not the date/time 2024-01-01",
        ),
        ("[mda]\nmail_uid = -1", "[mda] mail_uid must be a user name or number, not -1"),
    ],
)
def test_wrong_type(tmp_path: Path, text: str, message: str) -> None:
    assert problems(tmp_path, text + "\n") == [ConfigProblem(2, message)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nworkers = 0", "[server] workers must be at least 1, not 0"),
        ("[server]\nworkers = -3", "[server] workers must be at least 1, not -3"),
        (
            "[mail]\nmax_message_size = 0",
            "[mail] max_message_size must be at least 1, not 0",
        ),
        ("[mda]\nprogram_timeout = 0", "[mda] program_timeout must be at least 1, not 0"),
        ("[mda]\nduplicate_window = -1", "[mda] duplicate_window must be at least 0, not -1"),
        ("[index]\nsort_keys = 17", "[index] sort_keys must be at most 16, not 17"),
    ],
)
def test_out_of_range(tmp_path: Path, text: str, message: str) -> None:
    assert problems(tmp_path, text + "\n") == [ConfigProblem(2, message)]


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("/var/vmail/%d/%x", "unknown variable %x"),
        ("/var/vmail/100%", "a lone '%'"),
        ("", "must not be empty"),
        ("maildir:", "must not be empty"),
        ("mbox:~/mail", "only maildir is supported, not 'mbox'"),
        ("maildir:~/Maildir:INDEX=/var/idx/%u", "location options"),
    ],
)
def test_bad_location(tmp_path: Path, location: str, fragment: str) -> None:
    [problem] = problems(tmp_path, f'[mail]\nlocation = "{location}"\n')
    assert problem.line == 2
    assert problem.message.startswith("[mail] location ")
    assert fragment in problem.message


def test_location_variables_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '[mail]\nlocation = "/v/%Ld/%Ln/%u/%h/100%%"\n')
    assert load_config(path).mail.location == "/v/%Ld/%Ln/%u/%h/100%%"


def test_nul_in_a_path(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[maps]\naliases = "/etc/\\u0000aliases"\n')
    assert problem == ConfigProblem(2, "[maps] aliases must not contain a NUL character")


# --- several problems at once, and finding their lines -------------------------------------------

MANY = """\
[listen]
imap = "127.0.0.1:143"
pop3 = "127.0.0.1:99999"

[sever]
x = 1

[mail]
locaton = "~/Maildir"

[server]
workers = "two"
"""


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, MANY)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.line for p in info.value.problems] == [3, 5, 9, 12]
    assert str(info.value) == "\n".join(
        [
            f"{path}:3: [listen] pop3 = '127.0.0.1:99999': bad port '99999'"
            " (must be a number from 0 to 65535)",
            f"{path}:5: unknown section [sever]; did you mean [server]?",
            f"{path}:9: unknown key 'locaton' in [mail]; did you mean 'location'?",
            f"{path}:12: [server] workers must be an integer, not 'two'",
        ]
    )
    assert check_config(path) == info.value.problems


def test_lines_of_dotted_and_inline_keys(tmp_path: Path) -> None:
    text = (
        "# top\n"
        'mail.location = "%x"\n'  # line 2
        "server = { workers = 0 }\n"  # line 3: inline tables point at their own line
    )
    assert problems(tmp_path, text) == [
        ConfigProblem(
            2,
            "[mail] location = '%x': unknown variable %x"
            " (known: %u %n %d %h, %L to lowercase, %% for '%')",
        ),
        ConfigProblem(3, "[server] workers must be at least 1, not 0"),
    ]


def test_scanner_skips_multiline_strings_and_spacing(tmp_path: Path) -> None:
    text = (
        "[ server ]   # spaced header\n"
        'user = """\n'
        "workers = 1\n"  # inside the string: not the workers key
        '"""\n'
        "  workers   =   0\n"
    )
    assert problems(tmp_path, text) == [
        ConfigProblem(5, "[server] workers must be at least 1, not 0"),
    ]


def test_same_key_in_two_sections_gets_the_right_line(tmp_path: Path) -> None:
    text = '[server]\nuser = "mra"\n[mda]\nsendmail = "/x"\nuser = "bad"\n'
    assert problems(tmp_path, text) == [
        ConfigProblem(5, "unknown key 'user' in [mda]; it belongs in [server]")
    ]


def test_config_error_without_line_or_path() -> None:
    error = ConfigError([ConfigProblem(None, "a"), ConfigProblem(7, "b")])
    assert str(error) == "<config>: a\n<config>:7: b"


# --- location helpers and parsing bytes ---------------------------------------------------------


def test_location_helpers_are_reexported() -> None:
    from mailstore import config, location

    assert config.LOCATION_VARIABLES is location.LOCATION_VARIABLES
    assert config.check_location is location.check_location
    assert config.strip_location_prefix is location.strip_location_prefix


@pytest.mark.parametrize(
    "text",
    [
        "~/Maildir:INDEX=/x",
        "/m:LAYOUT=fs",
        "/m:A_B=1",
        "/m:_=1",
        "/m:=1",
        "/m:index=1",
        "/m:INDEX",
        "/m:INDEX:DIRNAME=x",
        "/m::INDEX=",
        "/m:IN DEX=",
        "/m:ÉTÉ=1",
        ":X=",
        "/m:",
    ],
)
def test_location_option_detection_matches_the_pattern(text: str) -> None:
    """Without `re` (the delivery agent checks locations), as r":[A-Z_]+=" did."""
    from mailstore.location import check_location

    expected = re.search(r":[A-Z_]+=", text) is not None
    assert ("location options" in (check_location(text) or "")) is expected


def test_parse_config_is_load_config_for_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    with open(path, "rb") as f:
        data = f.read()
    assert parse_config(data, path) == load_config(path)
    # The bytes are what counts, not the file; relative paths follow `path`.
    other = str(tmp_path / "sub" / "mra.toml")
    config = parse_config(b'[auth]\npasswd_file = "passwd"\n', other)
    assert config.path == other
    assert config.auth.passwd_file == str(tmp_path / "sub" / "passwd")
    with pytest.raises(ConfigError) as info:
        parse_config(b"[server]\nworkers = 0\n", path)
    assert str(info.value) == f"{path}:2: [server] workers must be at least 1, not 0"
