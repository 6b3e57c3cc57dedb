"""End to end: mail over SMTP into a real Postfix, delivered by our ``mda`` into Maildirs.

One private Postfix instance serves the whole module (see ``tests/interop/postfix.py``),
delivering through ``mda`` in both ways Postfix offers:

* local(8) with ``mailbox_command = mda --config system.toml`` for ``@local.test``: the
  recipients are throw-away unix users (``useradd``/``userdel``), mail goes to
  ``~/Maildir``, and local(8) runs ``mda`` as the recipient, prepending ``From ``,
  ``Return-Path:``, ``X-Original-To:`` and ``Delivered-To:`` itself;
* a pipe(8) transport ``mda`` (``flags=Rhu user=nobody``, one recipient per run) for the
  virtual domain ``virt.test``: users from a Dovecot passwd-file, Maildirs below
  ``vmail/%d/%n`` owned by ``nobody``, our own ``virtusertable`` and ``aliases``.

Each test checks the Maildir files themselves and the trace headers of what was stored:
exactly one ``Return-Path:`` (the envelope sender) and exactly one ``Delivered-To:``,
whoever of Postfix and ``mda`` added them.

Without Postfix (or without root, which Postfix and ``useradd`` need) the module is skipped
on a developer's machine and FAILS under CI (``CI`` set).  ``POSTFIX_KEEP=1`` keeps the
temporary tree (configs, Maildirs, maillog) for inspection; ``POSTFIX_TEST_MDA=/path``
runs another delivery command in place of ``mda`` (to debug the harness itself).
"""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import pytest

from tests.interop.postfix import (
    INSTALL_HINT,
    PostfixInstance,
    check_runnable_as,
    create_system_user,
    make_message,
    postfix_available,
    remove_system_user,
    remove_tree,
    run_as,
    running_as_root,
    traversable_tempdir,
    unique_name,
)

pytestmark = [pytest.mark.interop, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOCAL_DOMAIN = "local.test"
VIRTUAL_DOMAIN = "virt.test"
HOSTNAME = f"mx.{LOCAL_DOMAIN}"
SENDER = "sender@example.org"
MAIL_USER = "nobody"  # pipe(8) runs mda as this user; it owns the virtual Maildirs
DETAIL = "lists"
VIRTUAL_USERS = ("alice", "bob", "carol")  # carol: the deferral test makes hers unwritable
LIST = f"list@{VIRTUAL_DOMAIN}"
LIST_ALIAS = "virtlist"
EX_USAGE = 64
DELIVERY_TIMEOUT = 60.0


# --------------------------------------------------------------------------------------
# The mail system under test
# --------------------------------------------------------------------------------------


@dataclass
class MailSystem:
    postfix: PostfixInstance
    base: Path
    mda: str  # the command Postfix runs
    mda_note: str  # how that command was chosen
    system_user: pwd.struct_passwd
    vmail: Path
    virtual_uid: int

    @property
    def system_address(self) -> str:
        return f"{self.system_user.pw_name}@{LOCAL_DOMAIN}"

    @property
    def system_maildir(self) -> Path:
        return Path(self.system_user.pw_dir) / "Maildir"

    def virtual_maildir(self, user: str) -> Path:
        return self.vmail / VIRTUAL_DOMAIN / user

    def all_maildirs(self) -> list[Path]:
        return [self.system_maildir] + [self.virtual_maildir(u) for u in VIRTUAL_USERS]

    def diagnostics(self) -> str:
        """What to show when a delivery went wrong: the command and Postfix's log."""
        tail = "\n".join(self.postfix.log().splitlines()[-40:])
        return f"delivery command: {self.mda} ({self.mda_note})\n--- maillog ---\n{tail}"


def _missing(reason: str) -> None:
    message = f"{reason}: install the Debian package postfix ({INSTALL_HINT})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def make_maildir(root: Path, uid: int, gid: int, *, folder: bool = False) -> Path:
    """An empty Maildir (a Maildir++ folder if ``folder``) owned by uid:gid, mode 0700."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    if folder:
        (root / "maildirfolder").touch()
    for path in [root, *root.iterdir()]:
        os.chown(path, uid, gid)
    return root


def write_file(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def resolve_mda(base: Path) -> tuple[str, str]:
    """The delivery command for Postfix: ``.venv/bin/mda`` when its interpreter can be run
    by an unprivileged user, else a launcher that runs that same script with the system's
    CPython of the same version.  (A venv made from an interpreter below /root, as with
    pyenv here, cannot be run by ``nobody`` or by a recipient.)  Fails if neither runs."""
    override = os.environ.get("POSTFIX_TEST_MDA")
    if override:
        return override, "POSTFIX_TEST_MDA"
    entry = Path(sys.executable).parent / "mda"
    if not entry.exists():
        entry = REPO / ".venv" / "bin" / "mda"
    if not entry.exists():
        pytest.fail(f"the mda entry point is missing ({entry}): run `make .venv/.installed`")
    shebang = entry.read_bytes().split(b"\n", 1)[0]
    words = shebang[2:].decode().split() if shebang.startswith(b"#!") else []
    problem = check_runnable_as(MAIL_USER, [words[0], "-c", "pass"]) if words else "no #! line"
    if not problem:
        return str(entry), "the venv's entry point"
    system_python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system_python.exists():
        pytest.fail(
            f"{MAIL_USER} cannot run {entry} ({problem}) and there is no {system_python} "
            "to run it with instead"
        )
    # Install a copy of the packages where every user can read them, as a real installation
    # under /usr/local would be (the checkout itself may be below /root), and run it with
    # the system's interpreter, as mda.launcher's script does.
    lib = base / "lib"
    for package in ("mailstore", "mda"):
        shutil.copytree(REPO / package, lib / package, ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _dirnames, filenames in os.walk(lib):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    launcher = base / "bin" / "mda"
    launcher.parent.mkdir(mode=0o755)
    write_file(
        launcher,
        f"#!{system_python} -IS\n"
        f"# {MAIL_USER} cannot run {entry}: {problem.splitlines()[0]}\n"
        f"import sys\nsys.path.insert(0, {str(lib)!r})\n"
        "from mda.cli import main\nsys.exit(main())\n",
        0o755,
    )
    # An unknown option gets mda's usage message and EX_USAGE: it started and parsed.
    status, output = run_as(MAIL_USER, [str(launcher), "--no-such-option"])
    if status != EX_USAGE:
        pytest.fail(
            f"{MAIL_USER} can run neither {entry} ({problem}) nor {launcher}: "
            f"exit {status}: {output}"
        )
    return str(launcher), f"{system_python} runs it: {MAIL_USER} cannot run {words[0]}"


def write_mda_configs(base: Path, vmail: Path, virtual_uid: int, virtual_gid: int) -> Path:
    """system.toml (local(8), system users) and virtual.toml (pipe(8), passwd-file users,
    our maps) in ``base/mda``; returns that directory."""
    conf = base / "mda"
    conf.mkdir(mode=0o755)
    # Remote targets must never reach a real MTA: a stub records them instead.
    outbound = base / "outbound"
    outbound.mkdir()
    outbound.chmod(0o1777)
    sendmail = write_file(
        conf / "sendmail",
        f'#!/bin/sh\n{{ echo "sendmail $*"; cat; }} >> "{outbound}/sendmail.$$"\n',
        0o755,
    )
    write_file(conf / "access", "")
    write_file(conf / "local-host-names", f"{LOCAL_DOMAIN}\n{HOSTNAME}\nlocalhost\n")
    write_file(conf / "virtual-domains", f"{VIRTUAL_DOMAIN}\n")
    write_file(conf / "system-aliases", "")
    write_file(
        conf / "passwd",
        "".join(
            f"{u}@{VIRTUAL_DOMAIN}:{{PLAIN}}secret-{u}:{virtual_uid}:{virtual_gid}::"
            f"{vmail / VIRTUAL_DOMAIN / u}::\n"
            for u in VIRTUAL_USERS
        ),
    )
    write_file(conf / "aliases", f"{LIST_ALIAS}: alice@{VIRTUAL_DOMAIN}, bob@{VIRTUAL_DOMAIN}\n")
    write_file(conf / "virtusertable", f"{LIST}\t{LIST_ALIAS}\n")
    write_file(
        conf / "system.toml",
        f"""\
[auth]
passwd_file = ""

[maps]
aliases = "{conf / "system-aliases"}"
virtusertable = "{conf / "virtusertable"}"
access = "{conf / "access"}"
local_domains = "{conf / "local-host-names"}"

[mda]
sendmail = "{sendmail}"
""",
    )
    write_file(
        conf / "virtual.toml",
        f"""\
[auth]
passwd_file = "{conf / "passwd"}"

[mail]
location = "{vmail}/%d/%n"

[maps]
aliases = "{conf / "aliases"}"
virtusertable = "{conf / "virtusertable"}"
access = "{conf / "access"}"
local_domains = "{conf / "virtual-domains"}"

[mda]
sendmail = "{sendmail}"
mail_uid = "{MAIL_USER}"
""",
    )
    return conf


def postfix_settings(mda: str, conf: Path) -> tuple[dict[str, str], list[str]]:
    """(main.cf additions, master.cf additions) that route mail into ``mda``."""
    main_cf = {
        "mydestination": f"$myhostname, localhost, {LOCAL_DOMAIN}",
        # local(8): every local recipient goes through mda, run as that user.
        "mailbox_command": f"{mda} --config {conf / 'system.toml'}",
        # The virtual domain goes to the pipe(8) transport below.  With
        # virtual_mailbox_maps empty smtpd accepts any local part there: unknown users
        # are mda's to refuse (exit 67), and Postfix's to bounce.
        "virtual_mailbox_domains": VIRTUAL_DOMAIN,
        "virtual_mailbox_maps": "",
        "virtual_transport": "mda",
        # One recipient per run: ${recipient} is then one address.
        "mda_destination_recipient_limit": "1",
    }
    master_cf = [
        "mda unix - n n - - pipe",
        # R: Postfix prepends Return-Path; no D: mda adds Delivered-To itself;
        # h/u: ${recipient} folded to lower case.
        f"  flags=Rhu user={MAIL_USER} argv={mda} --config {conf / 'virtual.toml'}"
        " -f ${sender} -r ${recipient}",
    ]
    return main_cf, master_cf


@pytest.fixture(scope="module")
def mail_system() -> Iterator[MailSystem]:
    if not postfix_available():
        _missing("Postfix 3.4 or newer is not installed (/usr/sbin/postfix, postconf, ...)")
    if not running_as_root():
        _missing("Postfix and useradd must be run as root")
    for tool in ("useradd", "userdel"):
        if shutil.which(tool) is None:
            _missing(f"{tool} is missing (Debian package passwd)")
    try:
        nobody = pwd.getpwnam(MAIL_USER)
    except KeyError:
        _missing(f"the user {MAIL_USER!r} does not exist")

    base = traversable_tempdir("postfix-mda-")
    users: list[str] = []
    postfix: PostfixInstance | None = None
    try:
        mda, note = resolve_mda(base)
        name = unique_name("mdapf")
        users.append(name)
        user = create_system_user(name, base / "home" / name)
        make_maildir(Path(user.pw_dir) / "Maildir", user.pw_uid, user.pw_gid)
        make_maildir(
            Path(user.pw_dir) / "Maildir" / f".{DETAIL}", user.pw_uid, user.pw_gid, folder=True
        )

        vmail = base / "vmail"
        vmail.mkdir(mode=0o755)
        os.chown(vmail, nobody.pw_uid, nobody.pw_gid)
        for u in VIRTUAL_USERS:
            make_maildir(vmail / VIRTUAL_DOMAIN / u, nobody.pw_uid, nobody.pw_gid)
        os.chown(vmail / VIRTUAL_DOMAIN, nobody.pw_uid, nobody.pw_gid)

        conf = write_mda_configs(base, vmail, nobody.pw_uid, nobody.pw_gid)
        main_cf, master_cf = postfix_settings(mda, conf)
        postfix = PostfixInstance(
            base / "postfix",
            main_cf=main_cf,
            master_cf=master_cf,
            hostname=HOSTNAME,
            timeout=DELIVERY_TIMEOUT,
        )
        postfix.start()
        yield MailSystem(
            postfix=postfix,
            base=base,
            mda=mda,
            mda_note=note,
            system_user=user,
            vmail=vmail,
            virtual_uid=nobody.pw_uid,
        )
    finally:
        if postfix is not None:
            postfix.stop()
        keep = bool(os.environ.get("POSTFIX_KEEP"))
        for name in users:
            remove_system_user(name, remove_home=not keep)
        if keep:
            print(f"\nPOSTFIX_KEEP: kept {base}", file=sys.stderr)
        else:
            remove_tree(base)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def new_message(tag: str, to: str) -> tuple[EmailMessage, str]:
    """A message carrying a unique marker (in Message-ID, Subject and body)."""
    marker = f"mdatest-{tag}-{uuid.uuid4().hex}"
    msg = make_message(
        sender=SENDER,
        to=to,
        subject=f"test {marker}",
        body=f"Hello from the Postfix interop test.\n{marker}\n",
        message_id=f"<{marker}@client.test>",
    )
    return msg, marker


def stored(
    maildirs: Iterable[Path], marker: str, subdirs: Iterable[str] = ("new", "cur")
) -> list[Path]:
    """Message files holding ``marker`` in ``subdirs`` of the Maildirs and their folders."""
    found = []
    wanted = marker.encode()
    names = tuple(subdirs)
    for root in maildirs:
        folders = [root] + [p for p in root.glob(".*") if p.is_dir()]
        for folder in folders:
            for sub in names:
                directory = folder / sub
                if not directory.is_dir():
                    continue
                for path in directory.iterdir():
                    if path.is_file() and wanted in path.read_bytes():
                        found.append(path)
    return sorted(found)


def headers_of(path: Path) -> Message:
    with path.open("rb") as f:
        return BytesHeaderParser(policy=compat32).parse(f)


def values(msg: Message, name: str) -> list[str]:
    return [" ".join(str(v).split()) for v in msg.get_all(name, [])]


def assert_trace_headers(path: Path, *, sender: str, delivered_to: Iterable[str]) -> None:
    """The stored message starts with a header (not an mbox ``From `` line), and has
    exactly one Return-Path (the envelope sender) and one Delivered-To (one of
    ``delivered_to``)."""
    data = path.read_bytes()
    assert not data.startswith(b"From "), f"mbox From_ line kept in {path}:\n{data[:200]!r}"
    msg = headers_of(path)
    assert values(msg, "Return-Path") == [f"<{sender}>"], (
        f"Return-Path of {path}: {values(msg, 'Return-Path')}"
    )
    allowed = {a.lower() for a in delivered_to}
    got = [v.lower() for v in values(msg, "Delivered-To")]
    assert len(got) == 1 and got[0] in allowed, f"Delivered-To of {path}: {got}, want {allowed}"
    assert values(msg, "Message-ID"), f"Message-ID lost in {path}"


def deliver(system: MailSystem, rcpt: str, tag: str) -> tuple[str, str]:
    """Send a fresh message to ``rcpt``; return (queue id, marker)."""
    msg, marker = new_message(tag, rcpt)
    return system.postfix.send(SENDER, rcpt, msg), marker


def assert_sent(system: MailSystem, queue_id: str, rcpt: str) -> None:
    entry = system.postfix.wait_for_status(queue_id, rcpt, timeout=DELIVERY_TIMEOUT)
    assert entry.status == "sent", f"{entry.line}\n{system.diagnostics()}"
    system.postfix.wait_until_gone(queue_id, timeout=DELIVERY_TIMEOUT)


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_postfix_instance_is_private_and_sends_nothing_out(mail_system: MailSystem) -> None:
    postfix = mail_system.postfix
    assert postfix.postconf("inet_interfaces") == "127.0.0.1"
    assert postfix.postconf("queue_directory") == str(postfix.queue_dir)
    assert postfix.postconf("default_transport").startswith("error:")
    msg, _ = new_message("outbound", "someone@example.com")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        postfix.send(SENDER, "someone@example.com", msg)
    code, reply = refused.value.recipients["someone@example.com"]
    assert code == 550 and b"outbound mail disabled" in reply


def test_system_user_via_mailbox_command(mail_system: MailSystem) -> None:
    rcpt = mail_system.system_address
    queue_id, marker = deliver(mail_system, rcpt, "system")
    assert_sent(mail_system, queue_id, rcpt)
    entry = mail_system.postfix.deliveries(rcpt, queue_id=queue_id, status="sent")[0]
    assert entry.relay == "local", entry.line

    files = stored([mail_system.system_maildir], marker)
    assert [f.parent for f in files] == [mail_system.system_maildir / "new"], (
        f"{files}\n{mail_system.diagnostics()}"
    )
    # local(8) ran mda as the recipient.
    assert files[0].stat().st_uid == mail_system.system_user.pw_uid
    assert_trace_headers(files[0], sender=SENDER, delivered_to=[rcpt])


def test_detail_address_via_mailbox_command(mail_system: MailSystem) -> None:
    user = mail_system.system_user.pw_name
    rcpt = f"{user}+{DETAIL}@{LOCAL_DOMAIN}"
    queue_id, marker = deliver(mail_system, rcpt, "detail")
    assert_sent(mail_system, queue_id, rcpt)

    maildir = mail_system.system_maildir
    files = stored([maildir], marker)
    # As dovecot-lda does by default: INBOX, even though a .lists folder exists; the detail is
    # for the user's Sieve script (`envelope :detail "to"`) to act on.
    assert len(files) == 1, f"{files}\n{mail_system.diagnostics()}"
    assert files[0].parent == maildir / "new", files
    assert files[0].stat().st_uid == mail_system.system_user.pw_uid
    assert_trace_headers(files[0], sender=SENDER, delivered_to=[rcpt, mail_system.system_address])


def test_virtual_user_via_pipe(mail_system: MailSystem) -> None:
    rcpt = f"alice@{VIRTUAL_DOMAIN}"
    queue_id, marker = deliver(mail_system, rcpt, "virtual")
    assert_sent(mail_system, queue_id, rcpt)
    entry = mail_system.postfix.deliveries(rcpt, queue_id=queue_id, status="sent")[0]
    assert entry.relay == "mda", entry.line

    alice = mail_system.virtual_maildir("alice")
    files = stored(mail_system.all_maildirs(), marker)
    assert [f.parent for f in files] == [alice / "new"], f"{files}\n{mail_system.diagnostics()}"
    assert files[0].stat().st_uid == mail_system.virtual_uid
    assert_trace_headers(files[0], sender=SENDER, delivered_to=[rcpt])


def test_alias_via_virtusertable_and_aliases(mail_system: MailSystem) -> None:
    queue_id, marker = deliver(mail_system, LIST, "alias")
    assert_sent(mail_system, queue_id, LIST)

    for member in ("alice", "bob"):
        maildir = mail_system.virtual_maildir(member)
        files = stored([maildir], marker)
        assert [f.parent for f in files] == [maildir / "new"], (
            f"{member}: {files}\n{mail_system.diagnostics()}"
        )
        assert files[0].stat().st_uid == mail_system.virtual_uid
        assert_trace_headers(
            files[0], sender=SENDER, delivered_to=[LIST, f"{member}@{VIRTUAL_DOMAIN}"]
        )
    # Nobody else got a copy.
    others = [mail_system.system_maildir, mail_system.virtual_maildir("carol")]
    assert stored(others, marker) == []


def test_unknown_virtual_user_bounces(mail_system: MailSystem) -> None:
    rcpt = f"nosuchuser@{VIRTUAL_DOMAIN}"
    queue_id, marker = deliver(mail_system, rcpt, "unknown")
    entry = mail_system.postfix.wait_for_status(queue_id, rcpt, timeout=DELIVERY_TIMEOUT)
    assert entry.status == "bounced", f"{entry.line}\n{mail_system.diagnostics()}"
    bounces = mail_system.postfix.bounces_for(rcpt, queue_id=queue_id)
    assert bounces and bounces[0].relay == "mda", bounces
    # pipe(8) takes the leading "5.1.1" of mda's output as the DSN status (and drops it
    # from the text): "dsn=5.1.1, status=bounced (<addr>: user unknown )".
    assert entry.dsn == "5.1.1", entry.line
    assert "dsn=5.1.1" in entry.line, entry.line
    assert "user unknown" in entry.text.lower() and rcpt in entry.text.lower(), entry.line
    mail_system.postfix.wait_until_gone(queue_id, timeout=DELIVERY_TIMEOUT)
    assert stored(mail_system.all_maildirs(), marker, ("new", "cur", "tmp")) == []


def test_unwritable_maildir_defers_then_delivers(mail_system: MailSystem) -> None:
    postfix = mail_system.postfix
    rcpt = f"carol@{VIRTUAL_DOMAIN}"
    maildir = mail_system.virtual_maildir("carol")
    new = maildir / "new"
    queue_id = ""
    new.chmod(0o500)  # mda runs as nobody, who owns it: root's override does not apply
    try:
        queue_id, marker = deliver(mail_system, rcpt, "defer")
        entry = postfix.wait_for_status(queue_id, rcpt, timeout=DELIVERY_TIMEOUT)
        assert entry.status == "deferred", f"{entry.line}\n{mail_system.diagnostics()}"
        assert entry.dsn.startswith("4."), entry.line
        assert not postfix.bounces_for(rcpt, queue_id=queue_id)

        def in_deferred_queue() -> bool:
            return any(
                m["queue_id"] == queue_id and m["queue_name"] == "deferred" for m in postfix.queue()
            )

        postfix.wait_until(in_deferred_queue, f"{queue_id} in the deferred queue")
        # Nothing stored, and no half-written file left behind in tmp/.
        assert stored([maildir], marker, ("new", "cur", "tmp")) == []

        # Once the Maildir is writable again, the retry delivers it, once.
        new.chmod(0o700)
        postfix.flush(queue_id)
        entry = postfix.wait_for_status(queue_id, rcpt, ("sent",), timeout=DELIVERY_TIMEOUT)
        postfix.wait_until_gone(queue_id, timeout=DELIVERY_TIMEOUT)
        files = stored(mail_system.all_maildirs(), marker)
        assert [f.parent for f in files] == [new], f"{files}\n{mail_system.diagnostics()}"
        assert_trace_headers(files[0], sender=SENDER, delivered_to=[rcpt])
    finally:
        new.chmod(0o700)
        if queue_id and queue_id in postfix.queue_ids():
            postfix.delete(queue_id)  # do not leave it to be retried during later tests
