"""Reading and checking the configuration file (mailstore/config.py holds what it means).

From the TOML text to a `Config`: each section and key checked against the dataclasses of
config.py (their field metadata says the kind and bounds of each setting), values converted,
paths resolved against the file's directory, then the checks across sections. Every problem
is collected with its line (configlines.py) so that `check-config` reports them all in one
pass; a misspelt or misplaced key gets a suggestion.

Split from config.py so that the settings themselves read as one table there.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from typing import Any, Final

from mailstore.config import (
    _KEYS,
    _SECTIONS,
    Config,
    ConfigProblem,
    Endpoint,
    MailboxesConfig,
    MailboxSetting,
    UnixEndpoint,
    _Kind,
)
from mailstore.configlines import Lines
from mailstore.endpoints import parse_listener
from mailstore.errors import InvalidName
from mailstore.location import check_location, strip_location_prefix
from mailstore.names import validate_name
from mailstore.specialuse import AUTO_VALUES, parse_special_use

_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def load(path: str) -> tuple[Config | None, list[ConfigProblem]]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        return None, [ConfigProblem(None, f"cannot read the configuration: {e.strerror}")]
    return parse(raw, path)


def parse(raw: bytes, path: str) -> tuple[Config | None, list[ConfigProblem]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, [ConfigProblem(line, "not valid UTF-8")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return None, [_syntax_problem(e, text)]
    base_dir = os.path.dirname(os.path.abspath(path))
    config, problems = _build(data, Lines(text), base_dir)
    problems.sort(key=lambda p: (p.line is not None, p.line or 0))
    if problems:
        return None, problems
    return dataclasses.replace(config, path=path), []


def _syntax_problem(error: tomllib.TOMLDecodeError, text: str) -> ConfigProblem:
    message = str(error)
    match = _TOML_POSITION.search(message)
    if match is None:
        return ConfigProblem(None, f"TOML syntax error: {message}")
    message = message[: match.start()]
    if match.group(1) is None:
        # "at end of document": the last line is where the reader gave up.
        return ConfigProblem(max(1, len(text.splitlines())), f"TOML syntax error: {message}")
    return ConfigProblem(
        int(match.group(1)), f"TOML syntax error: {message} (column {match.group(2)})"
    )


def _show(value: object) -> str:
    """A value the way the administrator wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date/time {value.isoformat()}"
    return repr(value)


def _suggest(word: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return matches[0] if matches else None


def _home_of(key: str) -> str | None:
    """The section a misplaced key belongs to, when exactly one section has it."""
    homes = [section for section, keys in _KEYS.items() if key in keys]
    return homes[0] if len(homes) == 1 else None


def _build(data: dict[str, Any], lines: Lines, base_dir: str) -> tuple[Config, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    failed: set[tuple[str, str]] = set()  # settings already reported, not to be blamed twice
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in _SECTIONS:
            if isinstance(table, dict):
                message = f"unknown section [{name}]"
                if (close := _suggest(name, tuple(_SECTIONS))) is not None:
                    message += f"; did you mean [{close}]?"
                problems.append(ConfigProblem(lines.section(name), message))
            else:
                message = f"unknown key {name!r} outside any section"
                if (home := _home_of(name)) is not None:
                    message += f"; it belongs in [{home}]"
                problems.append(ConfigProblem(lines.key("", name), message))
            continue
        if not isinstance(table, dict):
            problems.append(
                ConfigProblem(lines.key("", name), f"[{name}] must be a table, not {_show(table)}")
            )
            continue
        if name == "mailboxes":
            sections[name] = _build_mailboxes(table, lines, problems)
            continue
        sections[name] = _build_section(name, table, lines, base_dir, problems, failed)
    config = Config(**sections)
    return _cross_check(config, lines, problems, failed), problems


def _build_section(
    name: str,
    table: dict[str, Any],
    lines: Lines,
    base_dir: str,
    problems: list[ConfigProblem],
    failed: set[tuple[str, str]],
) -> Any:
    cls = _SECTIONS[name]
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        line = lines.key(name, key)
        if key not in known:
            message = f"unknown key {key!r} in [{name}]"
            if (close := _suggest(key, tuple(known))) is not None:
                message += f"; did you mean {close!r}?"
            elif (home := _home_of(key)) is not None:
                message += f"; it belongs in [{home}]"
            problems.append(ConfigProblem(line, message))
            continue
        metadata = known[key].metadata
        converted, problem = _convert(
            value, metadata["kind"], metadata["min"], base_dir, metadata["max"]
        )
        if problem is not None:
            problems.append(ConfigProblem(line, f"[{name}] {key} {problem}"))
            failed.add((name, key))
        else:
            values[key] = converted
    return cls(**values)


_MAILBOX_KEYS: Final = ("special_use", "auto")


def _build_mailboxes(
    table: dict[str, Any], lines: Lines, problems: list[ConfigProblem]
) -> MailboxesConfig:
    """`[mailboxes]`: `NAME = { special_use = '\\Sent', auto = "subscribe" }` or a
    `[mailboxes.NAME]` table; each problem on the line of the folder or of its key."""
    folders: list[MailboxSetting] = []
    seen: set[str] = set()
    for name, entry in table.items():
        line = lines.key("mailboxes", name)
        where = f"[mailboxes] {name!r}"
        if not isinstance(entry, dict):
            problems.append(
                ConfigProblem(
                    line,
                    f"{where} must be a table like {{ special_use = '\\Sent', "
                    f'auto = "subscribe" }}, not {_show(entry)}',
                )
            )
            continue
        try:
            canonical = validate_name(name, create=True)
        except InvalidName as exc:
            problems.append(ConfigProblem(line, f"{where}: {exc.message}"))
            continue
        if canonical in seen:  # "inbox" and "INBOX"
            problems.append(ConfigProblem(line, f"{where} names a folder already listed"))
            continue
        seen.add(canonical)
        uses: tuple[str, ...] = ()
        auto = "no"
        for key, value in entry.items():
            key_line = lines.keys.get((f"mailboxes.{name}", key), line)
            if key == "special_use":
                if not isinstance(value, str):
                    problems.append(
                        ConfigProblem(
                            key_line,
                            f"{where} special_use must be a string like "
                            f"'\\Sent \\Archive', not {_show(value)}",
                        )
                    )
                    continue
                try:
                    uses = parse_special_use(value)
                except ValueError as exc:
                    problems.append(ConfigProblem(key_line, f"{where}: {exc}"))
            elif key == "auto":
                if value not in AUTO_VALUES:
                    choices = ", ".join(repr(v) for v in AUTO_VALUES[:-1])
                    choices += f" or {AUTO_VALUES[-1]!r}"
                    problems.append(
                        ConfigProblem(
                            key_line, f"{where} auto must be {choices}, not {_show(value)}"
                        )
                    )
                    continue
                auto = value
            else:
                message = f"unknown key {key!r} in {where}"
                if (close := _suggest(key, _MAILBOX_KEYS)) is not None:
                    message += f"; did you mean {close!r}?"
                problems.append(ConfigProblem(key_line, message))
        folders.append(MailboxSetting(canonical, uses, auto))
    return MailboxesConfig(tuple(folders))


def _convert(
    value: object, kind: _Kind, minimum: int | None, base_dir: str, maximum: int | None = None
) -> tuple[Any, str | None]:
    """The setting's value, or a problem phrased to follow "[section] key "."""
    wrong = f"must be {kind.value}, not {_show(value)}"
    if kind is _Kind.BOOL:
        return (value, None) if isinstance(value, bool) else (None, wrong)
    if kind is _Kind.INT:
        # bool is an int in Python, but `workers = true` is surely a mistake.
        if not isinstance(value, int) or isinstance(value, bool):
            return None, wrong
        if minimum is not None and value < minimum:
            return None, f"must be at least {minimum}, not {value}"
        if maximum is not None and value > maximum:
            return None, f"must be at most {maximum}, not {value}"
        return value, None
    if kind is _Kind.USER:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value), None
        return (value, None) if isinstance(value, str) else (None, wrong)
    if kind is _Kind.ENDPOINT and isinstance(value, dict):
        try:
            return parse_listener(value), None
        except ValueError as e:
            return None, f"table: {e}"
    if kind is _Kind.NUMBER:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None, wrong
        if minimum is not None and value < minimum:
            return None, f"must be at least {minimum}, not {value}"
        return float(value), None
    if kind is _Kind.WORDS:
        if isinstance(value, str):
            return tuple(value.split()), None  # Pigeonhole writes "+editheader -vacation"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, wrong
        return tuple(value), None
    if not isinstance(value, str):
        return None, wrong
    if "\0" in value:
        return None, "must not contain a NUL character"
    if kind is _Kind.TEXT:
        return value, None
    if kind is _Kind.ENDPOINT:
        try:
            return parse_listener(value), None
        except ValueError as e:
            return None, f"= {value!r}: {e}"
    if kind is _Kind.INDEX and value == "":
        return "", None
    if kind in (_Kind.LOCATION, _Kind.INDEX):
        location = strip_location_prefix(value)
        problem = check_location(location)
        return (location, None) if problem is None else (None, f"= {value!r}: {problem}")
    # _Kind.PATH
    if not value:
        return "", None
    if value.startswith("~"):
        return None, (
            f"= {value!r}: '~' is not expanded here; "
            "write an absolute path or one relative to the configuration file"
        )
    return os.path.normpath(os.path.join(base_dir, value)), None


_TLS_LISTENERS: Final = frozenset({"imaps", "pop3s"})


def _cross_check(
    config: Config,
    lines: Lines,
    problems: list[ConfigProblem],
    failed: set[tuple[str, str]],
) -> Config:
    """Problems only visible across settings; also fills in a key that lives in the cert."""
    tls = config.tls
    if tls.key and not tls.cert:
        problems.append(ConfigProblem(lines.key("tls", "key"), "[tls] key is set but cert is not"))
    if tls.cert and not tls.key:
        # One PEM file may hold both, as many certificate tools write it.
        config = dataclasses.replace(config, tls=dataclasses.replace(tls, key=tls.cert))
    seen: dict[str, str] = {}
    for name, endpoint in config.listen.enabled().items():
        line = lines.key("listen", name)
        if name in _TLS_LISTENERS and not config.tls.cert and ("tls", "cert") not in failed:
            problems.append(ConfigProblem(line, f"[listen] {name} needs [tls] cert"))
        where = str(endpoint)
        if isinstance(endpoint, Endpoint) and endpoint.port == 0:
            continue  # any free port: never the same twice
        if where in seen:
            problems.append(
                ConfigProblem(line, f"[listen] {name} uses {where}, as does {seen[where]}")
            )
        seen.setdefault(where, name)
    _check_sieve(config, lines, problems, failed)
    _check_log(config, lines, problems, failed)
    _check_cluster(config, lines, problems)
    return config


def _check_log(
    config: Config, lines: Lines, problems: list[ConfigProblem], failed: set[tuple[str, str]]
) -> None:
    """`[log]`'s words, and a path where the target is a file; the admin socket's kind."""
    from mailstore.log import FACILITIES, FORMATS, LEVELS, TARGETS

    log = config.log
    for key, choices in (
        ("target", TARGETS),
        ("format", FORMATS),
        ("level", tuple(LEVELS)),
        ("syslog_facility", tuple(FACILITIES)),
    ):
        value = getattr(log, key)
        if value not in choices and ("log", key) not in failed:
            words = ", ".join(repr(c) for c in choices)
            problems.append(
                ConfigProblem(lines.key("log", key), f"[log] {key} must be one of {words}")
            )
    if log.target == "file" and not log.path and ("log", "path") not in failed:
        problems.append(
            ConfigProblem(lines.key("log", "target"), '[log] target = "file" needs a path')
        )
    if config.listen.admin is not None and not isinstance(config.listen.admin, UnixEndpoint):
        problems.append(
            ConfigProblem(
                lines.key("listen", "admin"),
                "[listen] admin must be a unix socket, like 'unix:/run/mra/admin'",
            )
        )


def _check_cluster(config: Config, lines: Lines, problems: list[ConfigProblem]) -> None:
    cluster = config.cluster
    if cluster.nodes:  # imported only then: most configurations are read by mda and workers
        from mailstore.clusternodes import parse_node
    for text in cluster.nodes:
        try:
            parse_node(text, cluster.imap_port, cluster.pop3_port, cluster.lmtp_port)
        except ValueError as exc:
            problems.append(ConfigProblem(lines.key("cluster", "nodes"), f"[cluster] nodes: {exc}"))
    if cluster.auth_http is not None and not cluster.nodes:
        problems.append(
            ConfigProblem(lines.key("cluster", "auth_http"), "[cluster] auth_http needs nodes")
        )


_STATUS_TYPES: Final = ("score", "strlen", "text")


def _check_sieve(
    config: Config, lines: Lines, problems: list[ConfigProblem], failed: set[tuple[str, str]]
) -> None:
    """`[sieve]` values only the Sieve engine can judge: extension names, status types, the
    scanner header's regular expression."""
    sieve = config.sieve
    if sieve.extensions and ("sieve", "extensions") not in failed:
        from mda.sieve.parser import apply_extension_setting

        try:
            apply_extension_setting(sieve.extensions)
        except ValueError as exc:
            problems.append(ConfigProblem(lines.key("sieve", "extensions"), f"[sieve] {exc}"))
    for test in ("spamtest", "virustest"):
        key = f"{test}_status_type"
        if getattr(sieve, key) not in _STATUS_TYPES and ("sieve", key) not in failed:
            problems.append(
                ConfigProblem(
                    lines.key("sieve", key),
                    f"[sieve] {key} must be 'score', 'strlen' or 'text', "
                    f"not {getattr(sieve, key)!r}",
                )
            )
        for header_key in (f"{test}_status_header", f"{test}_max_header"):
            spec = getattr(sieve, header_key)
            if ":" in spec:
                from mda.sieve.errors import RegexError
                from mda.sieve.regex import compile_regex

                try:
                    compile_regex(spec.partition(":")[2].strip().encode(), ignore_case=True)
                except RegexError as exc:
                    problems.append(
                        ConfigProblem(
                            lines.key("sieve", header_key),
                            f"[sieve] {header_key}: invalid regular expression: {exc}",
                        )
                    )
