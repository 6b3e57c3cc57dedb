"""The delivery library: one message, one resolved recipient, one copy made durable.

Shared by the `mda` command (mda/deliver.py: a process per message, started by the MTA) and by
LMTP in `mra serve` (mra/lmtp/: in the server's thread pool), as Dovecot's lib-lda is shared by
its `lda/` and `lmtp/`. What a copy goes through, in order:

1. the recipient is resolved beforehand (mda/resolve.py: access, virtusertable, aliases, the
   user database) into targets: a mailbox, a program, an mbox file, an address handed back to
   the MTA, or a discard;
2. for a mailbox: the loop check (`Delivered-To:` for this recipient already in the message),
   the trace header lines (`Return-Path:`, `Delivered-To:`, and for LMTP a `Received:` line),
   duplicate suppression (`[mda] duplicate_window`), the Sieve scripts (`sieve_before`, the
   user's `~/.dovecot.sieve`, `sieve_after`), the quota, and the write: to tmp/, fsync, link
   into new/, fsync of the directory (mailstore/adding.py). Only when `deliver_copy` returns is
   the copy durable, and only then may anyone say so to the MTA;
3. a failure is an exception. What it means is decided once, in mda/errors.py: `classify`
   turns anything into a `DeliveryError` with its DSN, whose `exit_code` is what `mda` exits
   with and whose `smtp_reply()` is what LMTP answers; `worst` makes one outcome of several.

Who runs this decides as whom it runs: `mda` started as root forks and drops to the mailbox
owner (or `[mda] mail_uid`) around each copy, and runs programs and mbox writes unprivileged;
the server is already its mail user, and delivers every copy as that user. Messages about a
copy that are not failures (a Sieve script that does not parse, a duplicate dropped, a
discard) go to the caller's `note` (stderr for mda, the server's log for LMTP).

Imports stay cheap: `mda` starts once per message (tests/unit/test_imports.py).
"""

from __future__ import annotations

import os

from mda.resolve import DiscardTarget, FileTarget, ForwardTarget, MailboxTarget, ProgramTarget

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from mailstore.config import Config
    from mailstore.mailbox import Mailbox
    from mailstore.store import MailStore
    from mda.message import Incoming, Payload
    from mda.resolve import Target

    Note = Callable[[str], None]
    # A thread's kept stores: (mail root, quota bytes) -> (store, its INBOX), oldest first.
    Stores = dict[tuple[str, int], tuple[MailStore, Mailbox]]

STORES_MAX = 256  # mail stores a thread of a long-lived process keeps (open_store)


def deliver_copy(
    target: Target,
    msg: Incoming,
    sender: str,
    config: Config,
    note: Note,
    received: str = "",
    sole_writer: bool = False,
    scripts: list[str] | None = None,
    stores: Stores | None = None,
) -> None:
    """Make one copy, as the user this process runs as; returns once it is durable (or
    handed over: a program, the MTA). `received`: a `Received:` field to put on top of a
    mailbox copy, after `Return-Path:` and `Delivered-To:` (LMTP's trace line).
    `sole_writer`: this process makes no other delivery meanwhile (`mda`; see
    `store_in_mailbox`). `scripts`: the Sieve scripts, when the caller found them already
    (`mda` does, as root, before it becomes the mailbox owner: `sieve_scripts`). `stores`:
    the calling thread's mail stores, kept between deliveries (LMTP: see `open_store`)."""
    if isinstance(target, DiscardTarget):
        note(f"discarded: {target.reason}")
        return
    if isinstance(target, MailboxTarget):
        if msg.values("delivered-to"):  # none, the usual case: no loop to look for
            _check_loop(msg, target)
        data = msg.for_delivery(sender, target.address, received)
        if scripts is None:
            scripts = sieve_scripts(target, config)
        store_in_mailbox(target, data, msg, sender, config, scripts, note, sole_writer, stores)
        return
    from mda.external import append_mbox, forward, run_program

    data = msg.for_delivery(sender, "")
    if isinstance(target, ForwardTarget):
        forward(config, sender, target.address, data)
    elif isinstance(target, ProgramTarget):
        run_program(config, target.command, data, sender)
    elif isinstance(target, FileTarget):
        append_mbox(target.path, data, sender)


def _check_loop(msg: Incoming, target: MailboxTarget) -> None:
    """Loop: the message has passed through this mailbox already (`Incoming.check_loop`)."""
    msg.check_loop(target.address)
    if target.envelope_to != target.address:
        # sendmail's `-d $u` names the user bare (`carol`), but a hop that writes the full
        # address (LMTP, Postfix, Dovecot) said `Delivered-To: carol@example.test`: the
        # same mailbox, so the same loop (RFC 9228 4).
        msg.check_loop(target.envelope_to)


def store_in_mailbox(
    target: MailboxTarget,
    data: Payload,
    msg: Incoming,
    sender: str,
    config: Config,
    scripts: list[str],
    note: Note,
    sole_writer: bool = False,
    stores: Stores | None = None,
) -> None:
    """File the copy in the user's Maildir: duplicates, Sieve, quota, the durable write.

    When it fails, the store has removed its own tmp/ file; a signal (mda's only) can land
    between two of the store's statements, so `mda`, whose process makes one delivery at a
    time (`sole_writer`), also removes whatever in tmp/ bears its pid. The server, which
    delivers in several threads at once, must not: those may be other threads' files."""
    from mailstore import adding

    user = target.user
    store, inbox = open_store(user.mail_root, user.quota_bytes, stores)
    if config.mda.duplicate_window and msg.message_id:
        from mda.dupes import Duplicates

        dupes = Duplicates(user.mail_root, config.mda.duplicate_window)
        if dupes.seen(msg.message_id):
            note(f"duplicate {msg.message_id} for {user.name} dropped")
            return
    else:
        dupes = None
    folders = {"INBOX"}  # whose tmp/ this delivery writes to
    try:
        default = _usable_folder(store, target.folder or "INBOX", note)
        folders.add(default)
        actions = sieve_actions(target, msg, sender, scripts, store, config, note)
        if actions is None:
            box = inbox if default == "INBOX" else store.mailbox(default)
            adding.append(box, _source(data), keep_lock=stores is not None)
        else:
            perform(actions, store, default, data, sender, config, folders, note)
        if dupes is not None:
            dupes.remember(msg.message_id)
    except BaseException:
        if sole_writer:
            _remove_own_tmp_files(store, folders)
        if stores is not None:
            # The next copy starts from a store made anew, which makes what is missing of
            # the Maildir (a tmp/ or new/ removed) before it writes.
            stores.pop((user.mail_root, user.quota_bytes or 0), None)
        raise


def open_store(
    root: str, quota_bytes: int | None, stores: Stores | None
) -> tuple[MailStore, Mailbox]:
    """The user's mail store, its Maildir made if missing, and its INBOX.

    `stores`, a long-lived process's (LMTP's: one per thread, for a MailStore is not
    thread-safe), keeps them from one delivery to the next: what a MailStore does when made
    (the Maildir's directories made or checked, six system calls) and its INBOX object are
    not redone for every message to the same mailbox. Nothing kept holds a descriptor or a
    parse: the INBOX of a delivery only opens its folder for each append (adding.py), so a
    Maildir replaced since is written where it now is; one removed since is made again. Two
    threads delivering to one mailbox each have their own, as two processes would, and the
    uidlist's dot-lock orders them. The most recent STORES_MAX are kept."""
    from mailstore.errors import MailError

    key = (root, quota_bytes or 0)
    if stores is not None:
        kept = stores.pop(key, None)
        if kept is not None:
            try:
                inbox = kept[0].mailbox("INBOX")  # one stat(): is the Maildir still there?
            except MailError:
                pass  # removed: made again below
            else:
                # A `maildirsize` that appeared since (Dovecot's, an admin's quota) is kept
                # up to date from now on, as by a store made for this message.
                if inbox.quota is not None or not os.path.exists(os.path.join(root, "maildirsize")):
                    stores[key] = kept  # the most recent last
                    return kept[0], inbox
    from mailstore.store import MailStore

    quota = None
    if quota_bytes:
        from mailstore.quota import QuotaLimit

        quota = QuotaLimit(bytes=quota_bytes, messages=None)
    store = MailStore(root, quota_limit=quota)
    inbox = store.mailbox("INBOX")
    if stores is not None:
        stores[key] = (store, inbox)
        while len(stores) > STORES_MAX:
            del stores[next(iter(stores))]
    return store, inbox


def _source(data: Payload) -> bytes | BinaryIO:
    """What the store's append takes: a message smaller than one of the reader's pieces as
    one bytes object (one write(), the copy no bigger than a piece would be), a bigger one
    piece by piece (never a second whole copy: SECURITY.md 5)."""
    from mda.message import CHUNK

    if len(data) <= CHUNK:
        return data.tobytes()
    return data.reader()


def _remove_own_tmp_files(store: MailStore, folders: set[str]) -> None:
    """After a failed or interrupted delivery, remove what this process left in tmp/.

    The store cleans up after itself, but a signal's exception can land between two of its
    statements (after a file is created, before the `try` that would remove it). Every name
    this process gives a file there carries its pid (`...P<pid>Q...`, mailstore.filenames), and
    nothing in tmp/ was acknowledged, so whatever bears it is garbage now.
    """
    mark = f"P{os.getpid()}Q"
    for folder in folders:
        try:
            tmp = os.path.join(store.path_of(folder), "tmp")
            names = [n for n in os.listdir(tmp) if mark in n]
        except Exception:
            continue
        for name in names:
            try:
                os.unlink(os.path.join(tmp, name))
            except OSError:
                pass


def _usable_folder(store: MailStore, name: str, note: Note) -> str:
    """The folder if it exists, else INBOX (dovecot-lda's behaviour for -m)."""
    from mailstore.errors import MailError

    if name == "INBOX":
        return name  # whether it exists or not: INBOX is where it would fall back to
    try:
        if store.exists(name):
            return name
    except MailError:
        pass
    if name != "INBOX":
        note(f"folder {name!r} does not exist, delivered to INBOX")
    return "INBOX"


def sieve_scripts(target: MailboxTarget, config: Config) -> list[str]:
    """The scripts that run for this delivery, in order. The global ones decide for every
    user, so they must be trusted files (`mda.maps.safefile`; else MapError, a temporary
    failure); the user's own `~/.dovecot.sieve` runs as the user, for the user's mail only."""
    from mda.maps.safefile import check as check_file
    from mda.maps.safefile import with_mail_user

    paths = []
    for path in (config.mda.sieve_before, config.mda.sieve_after):
        if path and os.path.isfile(path):
            check_file(path, with_mail_user(config.mda.mail_uid))
    if config.mda.sieve_before:
        paths.append(config.mda.sieve_before)
    home = target.user.home
    if home:
        paths.append(os.path.join(home, ".dovecot.sieve"))
    if config.mda.sieve_after:
        paths.append(config.mda.sieve_after)
    return [p for p in paths if os.path.isfile(p)]


def sieve_actions(
    target: MailboxTarget,
    msg: Incoming,
    sender: str,
    paths: list[str],
    store: MailStore,
    config: Config,
    note: Note,
) -> object | None:
    """What the Sieve scripts decided for this delivery, or None without a script. A broken
    script never loses mail: it is reported and the message is kept (RFC 5228 2.10.6). The
    work is `mda.sieve.delivery`'s."""
    if not paths:
        return None
    from mda.sieve.delivery import evaluate_for

    return evaluate_for(target, msg, sender, paths, store, config, note)


def perform(
    actions: object,
    store: MailStore,
    default: str,
    data: Payload,
    sender: str,
    config: Config,
    folders: set[str],
    note: Note,
) -> None:
    """Carry out Sieve's actions (`mda.sieve.delivery.perform`); `folders` collects the
    folders written to."""
    from mda.sieve.delivery import Outcome
    from mda.sieve.delivery import perform as perform_outcome

    assert isinstance(actions, Outcome)
    perform_outcome(actions, store, default, data, sender, config, folders, note)
