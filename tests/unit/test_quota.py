"""Maildir++ quota (`maildirsize`), with real files and real processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailstore.errors import ErrorKind, NoQuota, TemporaryFailure
from mailstore.quota import MAILDIRSIZE, MaildirQuota, QuotaLimit

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

# --- helpers ------------------------------------------------------------------------------------

_seq = 0


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def message_name(size: int | None, flags: str | None = "S") -> str:
    global _seq
    _seq += 1
    base = f"{1276528487 + _seq}.M{364837 + _seq}P9451.host"
    if size is not None:
        base += f",S={size},W={size + 45}"
    return base if flags is None else f"{base}:2,{flags}"


def put(maildir: Path, sub: str, size: int, *, named: bool = True, flags: str | None = "S") -> Path:
    """A message of `size` bytes; with `named` its size is only in the name (content is 1 byte),
    which proves the name is believed without a stat()."""
    path = maildir / sub / message_name(size if named else None, flags)
    path.write_bytes(b"x" if named else b"x" * size)
    return path


def read(root: Path) -> str:
    return (root / MAILDIRSIZE).read_text("ascii")


def write(root: Path, text: str, *, age: float = 0.0) -> None:
    path = root / MAILDIRSIZE
    path.write_text(text, "ascii")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_maildir(tmp_path / "Maildir")


# --- QuotaLimit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit_bytes", "limit_messages", "formatted"),
    [
        ("1000000S,1000C", 1000000, 1000, "1000000S,1000C"),
        ("1000C,1000000S", 1000000, 1000, "1000000S,1000C"),
        ("5000S", 5000, None, "5000S"),
        ("1000C", None, 1000, "1000C"),
        ("0S", None, None, "0S"),
        ("0C", None, None, "0S"),
        ("0S,0C", None, None, "0S"),
        ("0S,10C", None, 10, "10C"),
        ("18446744073709551615S", 18446744073709551615, None, "18446744073709551615S"),
    ],
)
def test_limit_parse_and_format(
    text: str, limit_bytes: int | None, limit_messages: int | None, formatted: str
) -> None:
    limit = QuotaLimit.parse(text)
    assert (limit.bytes, limit.messages) == (limit_bytes, limit_messages)
    assert str(limit) == formatted
    assert QuotaLimit.parse(str(limit)) == limit


@pytest.mark.parametrize(
    "text",
    [
        "",
        "S",
        "C",
        "10",
        "10X",
        "10s",
        "10S,",
        ",10S",
        "10 S",
        " 10S",
        "-1S",
        "1e3S",
        "1_000S",
        "10S,20S",
        "5C,6C",
        "10S;5C",
        "١٠S",  # Arabic-Indic digits: int() would take them, the format does not
    ],
)
def test_limit_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        QuotaLimit.parse(text)


def test_limit_zero_is_unlimited() -> None:
    assert QuotaLimit(0, 0) == QuotaLimit(None, None)
    assert QuotaLimit(0, 0).unlimited
    assert not QuotaLimit(1, None).unlimited
    assert str(QuotaLimit(None, None)) == "0S"
    with pytest.raises(ValueError):
        QuotaLimit(-1, None)


def test_exceeded_means_over_not_at() -> None:
    limit = QuotaLimit(100, 10)
    assert not limit.exceeded_by(100, 10)
    assert limit.exceeded_by(101, 0)
    assert limit.exceeded_by(0, 11)


# --- no quota -----------------------------------------------------------------------------------


def test_no_limit_and_no_file_means_no_quota(root: Path) -> None:
    put(root, "new", 1000)
    quota = MaildirQuota(str(root), None)
    assert quota.effective_limit().unlimited
    quota.check(10**15, 10**9)
    quota.add(1000, 1)
    assert not (root / MAILDIRSIZE).exists()
    assert quota.usage() == (1000, 1)  # summed on demand, but no file is made
    assert not (root / MAILDIRSIZE).exists()


def test_explicitly_unlimited_needs_no_file(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(None, None))
    quota.check(10**15)
    quota.add(5, 1)
    assert not (root / MAILDIRSIZE).exists()


# --- sums ---------------------------------------------------------------------------------------


def test_adds_are_appended_and_summed(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(1_000_000, 1000))
    assert quota.usage() == (0, 0)
    assert read(root) == "1000000S,1000C\n0 0\n"
    quota.add(1977, 1)
    quota.add(2500, 1)
    quota.add(30, 1)
    assert quota.usage() == (4507, 3)
    assert read(root) == "1000000S,1000C\n0 0\n1977 1\n2500 1\n30 1\n"
    quota.add(0, 0)  # nothing to record
    assert read(root).count("\n") == 5


def test_negative_deltas(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(1_000_000, None))
    quota.recalculate()
    quota.add(1000, 1)
    quota.add(2000, 1)
    quota.add(-1000, -1)
    assert quota.usage() == (2000, 1)
    assert read(root).endswith("\n-1000 -1\n")


def test_add_rebuilds_a_missing_file_without_double_counting(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(1_000_000, None))
    put(root, "new", 1234)  # delivered first, then recorded: the rebuild already sees it
    quota.add(1234, 1)
    assert read(root) == "1000000S\n1234 1\n"
    assert quota.usage() == (1234, 1)


def test_limit_from_existing_file_is_used(root: Path) -> None:
    write(root, "1000S,5C\n900 4\n")
    quota = MaildirQuota(str(root), None)
    assert quota.effective_limit() == QuotaLimit(1000, 5)
    quota.check(100)
    with pytest.raises(NoQuota):
        quota.check(101)
    quota.add(100, 1)
    assert read(root) == "1000S,5C\n900 4\n100 1\n"  # header kept, line appended


# --- check --------------------------------------------------------------------------------------


def test_check_bytes_at_the_limit(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(10_000, None))
    quota.recalculate()
    quota.add(9000, 9)
    quota.check(1000)  # reaching the limit exactly is allowed
    with pytest.raises(NoQuota, match="quota exceeded") as info:
        quota.check(1001)
    assert info.value.kind is ErrorKind.NO_QUOTA
    assert str(root) not in info.value.message  # safe to show a client
    quota.check(-500, -1)  # removing is always possible


def test_check_messages_at_the_limit(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(None, 3))
    quota.recalculate()
    quota.add(10, 1)
    quota.add(10, 1)
    quota.check(10**9)  # third message: bytes are unlimited
    quota.add(10, 1)
    with pytest.raises(NoQuota, match="messages"):
        quota.check(1)
    quota.check(1, 0)  # growing an existing message is only limited by bytes


def test_check_both_limits(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(100, 2))
    quota.recalculate()
    quota.add(50, 1)
    quota.check(50, 1)
    with pytest.raises(NoQuota, match="bytes"):
        quota.check(51, 1)
    with pytest.raises(NoQuota, match="messages"):
        quota.check(1, 2)


# --- recalculation ------------------------------------------------------------------------------


def test_recalculate_sums_every_folder_from_names(root: Path) -> None:
    put(root, "new", 1977, flags=None)
    put(root, "cur", 2022)
    make_maildir(root / ".Sent")
    put(root / ".Sent", "cur", 300)
    make_maildir(root / ".Trash")  # Dovecot counts Trash too
    put(root / ".Trash", "cur", 40, flags="ST")
    make_maildir(root / ".A.B")
    put(root / ".A.B", "new", 5)
    put(root, "tmp", 100_000)  # not delivered: not counted
    (root / "cur" / ".hidden").write_bytes(b"x" * 7)  # dot files are not messages
    (root / "dovecot-uidlist").write_bytes(b"x" * 50)  # control files are not messages
    quota = MaildirQuota(str(root), QuotaLimit(10**6, None))
    assert quota.recalculate() == (1977 + 2022 + 300 + 40 + 5, 5)
    assert read(root) == "1000000S\n4344 5\n"
    assert [n for n in os.listdir(root / "tmp") if MAILDIRSIZE in n] == []  # renamed away


def test_messages_without_size_in_name_are_stat_ed(root: Path) -> None:
    put(root, "new", 777, named=False, flags=None)
    put(root, "cur", 888, named=False)
    put(root, "cur", 1000)  # named: content is 1 byte, the name says 1000
    (root / "cur" / "1.M1P1.host,S=12x:2,S").write_bytes(b"x" * 9)  # malformed ,S=: stat
    quota = MaildirQuota(str(root), QuotaLimit(10**6, None))
    assert quota.recalculate() == (777 + 888 + 1000 + 9, 4)


def test_rebuild_when_missing(root: Path) -> None:
    put(root, "cur", 500)
    quota = MaildirQuota(str(root), QuotaLimit(10_000, 100))
    assert quota.usage() == (500, 1)
    assert read(root) == "10000S,100C\n500 1\n"
    assert os.listdir(root / "tmp") == []  # the temporary file was renamed away


def test_rebuild_when_too_large(root: Path) -> None:
    put(root, "cur", 500)
    lines = "1 0\n" * 1300  # wrong on purpose: 1300 bytes that are not on disk
    write(root, "10000S\n0 0\n" + lines)
    assert (root / MAILDIRSIZE).stat().st_size > 5120
    quota = MaildirQuota(str(root), None)  # the limit must survive from the old header
    assert quota.usage() == (500, 1)
    assert read(root) == "10000S\n500 1\n"


def test_rebuild_at_exactly_5120_bytes(root: Path) -> None:
    # Dovecot reads at most 5120 bytes and rebuilds when it got that many.
    header = "10000S\n0 0\n"
    write(root, header + "00 0\n" + "0 0\n" * 1276)
    assert (root / MAILDIRSIZE).stat().st_size == 5120
    put(root, "new", 42)
    assert MaildirQuota(str(root), None).usage() == (42, 1)
    assert read(root) == "10000S\n42 1\n"


def test_no_rebuild_under_5120_bytes(root: Path) -> None:
    put(root, "cur", 500)  # not in the file: proves the file is trusted
    write(root, "10000S\n0 0\n" + "1 0\n" * 1000)
    assert MaildirQuota(str(root), None).usage() == (1000, 0)


def test_rebuild_when_definition_changed(root: Path) -> None:
    put(root, "cur", 500)
    write(root, "5000S\n0 0\n")
    quota = MaildirQuota(str(root), QuotaLimit(10_000, 10))
    assert quota.usage() == (500, 1)
    assert read(root) == "10000S,10C\n500 1\n"


def test_same_definition_spelled_differently_is_not_a_change(root: Path) -> None:
    write(root, "10C,10000S\n7 1\n")
    assert MaildirQuota(str(root), QuotaLimit(10_000, 10)).usage() == (7, 1)
    assert read(root) == "10C,10000S\n7 1\n"


def test_over_quota_is_trusted_when_fresh(root: Path) -> None:
    write(root, "100S\n500 5\n")  # one summary line, just written
    quota = MaildirQuota(str(root), None)
    assert quota.usage() == (500, 5)
    with pytest.raises(NoQuota):
        quota.check(1)


def test_over_quota_and_older_than_15_minutes_is_rebuilt(root: Path) -> None:
    put(root, "cur", 50)
    write(root, "100S\n500 5\n", age=16 * 60)
    quota = MaildirQuota(str(root), None)
    assert quota.usage() == (50, 1)
    quota.check(50)
    assert read(root) == "100S\n50 1\n"


def test_under_quota_and_old_is_trusted(root: Path) -> None:
    put(root, "cur", 50)
    write(root, "1000S\n500 5\n", age=3600)
    assert MaildirQuota(str(root), None).usage() == (500, 5)


def test_over_quota_with_several_delta_lines_is_rebuilt(root: Path) -> None:
    # Dovecot's extra rule: an over-quota sum is only believed from a single summary line.
    put(root, "cur", 50)
    write(root, "100S\n60 1\n60 1\n")
    assert MaildirQuota(str(root), None).usage() == (50, 1)


@pytest.mark.parametrize(
    "content",
    [
        "",  # empty
        "10000S\n",  # header only
        "10000S\n0 0\ngarbage\n",
        "10000S\n0 0\n1\n",
        "10000S\n0 0\n\n",
        "10000S\n0 0\n1 1 1\n",
        "10000S\n0 0\n-10 -1\n",  # negative sums
        "10000S\n0 0\n1\x00 1\n",
        "10000S\n0 0\n\xe4 1\n",
    ],
)
def test_rebuild_when_broken(root: Path, content: str) -> None:
    put(root, "cur", 70)
    (root / MAILDIRSIZE).write_bytes(content.encode("latin-1"))
    assert MaildirQuota(str(root), QuotaLimit(10_000, None)).usage() == (70, 1)
    assert read(root) == "10000S\n70 1\n"


def test_incomplete_last_line_is_ignored(root: Path) -> None:
    write(root, "10000S\n10 1\n5 1")  # an append in progress, or a torn one
    assert MaildirQuota(str(root), None).usage() == (10, 1)


def test_tolerant_delta_spacing(root: Path) -> None:
    write(root, "10000S\n  10   1 \n5\t1\n")
    assert MaildirQuota(str(root), None).usage() == (15, 2)


def test_missing_tmp_is_recreated(root: Path) -> None:
    (root / "tmp").rmdir()
    put(root, "new", 9)
    assert MaildirQuota(str(root), QuotaLimit(100, None)).usage() == (9, 1)
    assert (root / "tmp").is_dir()


# --- errors -------------------------------------------------------------------------------------


def test_io_errors_are_temporary(root: Path) -> None:
    (root / MAILDIRSIZE).mkdir()  # a directory where the file should be: read() fails
    quota = MaildirQuota(str(root), QuotaLimit(100, None))
    with pytest.raises(TemporaryFailure) as info:
        quota.usage()
    assert info.value.kind is ErrorKind.TEMPORARY
    assert str(root) not in info.value.message
    with pytest.raises(TemporaryFailure):
        quota.add(1, 1)


def test_missing_root_is_temporary(tmp_path: Path) -> None:
    quota = MaildirQuota(str(tmp_path / "nowhere"), QuotaLimit(100, None))
    with pytest.raises(TemporaryFailure):
        quota.usage()
    assert not (tmp_path / "nowhere").exists()  # not created behind the caller's back


# --- concurrency --------------------------------------------------------------------------------

WORKERS = 8
ADDS = 60


def _adder(root: str, worker: int, start: Event) -> None:
    quota = MaildirQuota(root, QuotaLimit(10**12, 10**9))
    start.wait()
    for i in range(ADDS):
        quota.add(worker * 1000 + i, 1)


def test_concurrent_appends_are_exact(root: Path) -> None:
    quota = MaildirQuota(str(root), QuotaLimit(10**12, 10**9))
    quota.recalculate()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_adder, args=(str(root), w, start)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    expected_bytes = sum(w * 1000 + i for w in range(WORKERS) for i in range(ADDS))
    assert quota.usage() == (expected_bytes, WORKERS * ADDS)
    lines = read(root).splitlines()
    # Nothing interleaved or lost, and no rebuild happened in between (it would count 0 bytes).
    assert lines[:2] == ["1000000000000S,1000000000C", "0 0"]
    assert len(lines) == 2 + WORKERS * ADDS
    assert (root / MAILDIRSIZE).stat().st_size < 5120
