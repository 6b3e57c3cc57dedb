"""One LMTP transaction (MAIL, RCPTs, DATA) and its work, done in the server's thread pool.

The protocol (session.py) only parses and answers; what reads files runs here, in a `Call`:
resolving a recipient (the access map, virtusertable, aliases, the user database: mda's
`Resolver`, the same code `mda -r` runs) when its RCPT comes, so that an unknown user is
refused then (550 5.1.1) and the MTA bounces that recipient alone; and delivering the message
once its data has come, to every recipient in turn, through mda's delivery library
(`mda.delivery.deliver_copy`: loop check, trace headers, duplicates, Sieve, quota, the durable
write). Each recipient gets its own outcome, so one over quota (452 4.2.2) or on a full disk
fails alone, and each reply is sent only after that recipient's copies are on disk, fsynced.

Two recipients that come to the same mailbox (an alias and its target) get one copy, and both
the outcome of that copy; a recipient whose alias expansion reaches several mailboxes gets the
worst outcome of its copies (a retry before a bounce, as `mda` exits with).

As whom: the server's own user (`[server] user`), for every user's mailbox: virtual users under
one uid, as Dovecot's lmtp delivers them. So the server never delivers as root: a recipient is
refused for now (451 4.3.5) while it runs as root, as `mda` refuses to write a mailbox as root.
Programs and mbox files of a (root-owned) aliases file run as that user too.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor  # not after the privilege drop: imported now

from mda.delivery import deliver_copy, sieve_scripts
from mda.errors import BadMessage, TempFailure, classify, worst_error
from mda.message import Incoming
from mda.resolve import MailboxTarget
from mra import log
from mra.lmtp.isolate import SLACK, in_child

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from mailstore.config import Config
    from mailstore.userdb import PasswdFile, SystemUsers
    from mda.delivery import Stores
    from mda.errors import DeliveryError
    from mda.resolve import Resolver, Target


# Seconds a process keeps its opened maps, the trust checks of their files and directories
# (mda.maps.safefile) and what recipients resolved to, when no file changed: a chmod of a
# directory, or an edited `:include:` list, is seen within this.
RECHECK = 10
KNOWN_MAX = 4096  # recipients whose resolution a process remembers (the most recent)


class LmtpService:
    """What every LMTP session of a process shares (`Services.shared`): the maps and the user
    database, opened and checked once and used by every transaction (`Resolver.fork`) as long
    as none of their files changed (inode, size, mtime, mode, owner) and for at most RECHECK
    seconds; then opened and checked again. `mda` opens them for each message: here that
    would be most of the work of a delivery.

    The same holds for what recipients resolved to: the last KNOWN_MAX accepted ones are
    remembered, so that a RCPT for a known recipient is answered on the reactor with a few
    stat() calls (the files above) rather than by a thread (`known`), a thread's hop less
    per message. Refusals are not remembered: they are resolved every time."""

    def __init__(self, config: Config, euid: int | None = None) -> None:
        """`euid`: the user deliveries run as (this process's, by default)."""
        self.config = config
        self.as_root = (os.geteuid() if euid is None else euid) == 0
        self._userdb: PasswdFile | SystemUsers | None = None
        self._resolver: Resolver | None = None
        self._stamp: tuple[object, ...] = ()
        self._known: OrderedDict[str, Recipient] = OrderedDict()
        self._threads = threading.local()  # each thread's mail stores (stores())
        self._known_stamp: tuple[object, ...] = ()
        self._paths = tuple(
            p
            for p in (
                config.maps.aliases,
                config.maps.virtusertable,
                config.maps.access,
                config.maps.local_domains,
                config.auth.passwd_file,
            )
            if p
        )

    def _files(self) -> tuple[object, ...]:
        stamp: list[object] = [int(time.monotonic() // RECHECK)]
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                stamp.append(None)
                continue
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode, st.st_uid))
        return tuple(stamp)

    def resolver(self) -> tuple[Resolver, tuple[object, ...]]:
        """A resolver for one transaction, and the state of the files it reads (a thread's
        work)."""
        from mda.resolve import Resolver

        if self._userdb is None:
            from mailstore.userdb import open_userdb

            self._userdb = open_userdb(self.config)
        stamp = self._files()
        shared = self._resolver
        if shared is None or stamp != self._stamp:
            shared = Resolver(self.config, userdb=self._userdb).warm()
            self._resolver, self._stamp = shared, stamp
        return shared.fork(), stamp

    def stores(self) -> Stores:
        """The calling thread's mail stores, kept between its deliveries (mda.delivery's
        `open_store`)."""
        try:
            stores: Stores = self._threads.stores
        except AttributeError:
            stores = self._threads.stores = {}
        return stores

    # -- on the reactor: recipients resolved before ----------------------------------------

    def known(self, address: str, sender_checked: bool) -> Recipient | None:
        """`address`'s resolution, if it was resolved since the files last changed; None
        otherwise, or while the sender still needs the access map's word."""
        stamp = self._files()
        if stamp != self._known_stamp:
            self._known.clear()
            self._known_stamp = stamp
            return None
        if not sender_checked and self._access_rules(stamp):
            return None
        found = self._known.get(address)
        if found is not None:
            self._known.move_to_end(address)
        return found

    def remember(self, address: str, recipient: Recipient, stamp: tuple[object, ...]) -> None:
        if stamp != self._known_stamp:
            return  # resolved with files that have changed since (or not looked at yet)
        self._known[address] = recipient
        if len(self._known) > KNOWN_MAX:
            self._known.popitem(last=False)

    def _access_rules(self, stamp: tuple[object, ...]) -> bool:
        """Whether the access map has anything in it (its entry in the stamp: no file, or
        size 0, is no map)."""
        if not self.config.maps.access:
            return False
        state = stamp[1 + self._paths.index(self.config.maps.access)]
        return isinstance(state, tuple) and state[1] != 0


class Recipient:
    """An accepted RCPT: the address as the client gave it, and where it goes (read-only:
    a remembered one serves other transactions too)."""

    __slots__ = ("address", "problems", "stamp", "targets")

    def __init__(
        self,
        address: str,
        targets: list[Target],
        problems: list[DeliveryError],
        stamp: tuple[object, ...] = (),
    ) -> None:
        self.address = address
        self.targets = targets
        self.problems = problems  # parts of its expansion that cannot be delivered
        self.stamp = stamp  # the files it was resolved with ((): not to be remembered)


class Transaction:
    """MAIL FROM and the recipients accepted since; what the threads work on. Only one Call
    of a session runs at a time, so its resolver is never used by two threads at once."""

    def __init__(self, service: LmtpService, sender: str, body: str, utf8: bool) -> None:
        self.service = service
        self.sender = sender
        self.body = body
        self.utf8 = utf8
        self.recipients: list[Recipient] = []
        self.attempted = 0  # RCPT commands, accepted or not (the max_recipients bound)
        self.discard = False  # the access map DISCARDs the sender: accepted, never stored
        self._resolver: Resolver | None = None
        self._stamp: tuple[object, ...] = ()
        self._sender_checked = False

    def known(self, address: str) -> Recipient | None:
        """On the reactor: `address` as resolved before, if the process remembers it."""
        if self.service.as_root or self.discard:
            return None
        found = self.service.known(address, self._sender_checked)
        if found is None:
            return None
        self._sender_checked = True  # no access map rules, or checked by an earlier RCPT
        return found

    # -- in a thread ------------------------------------------------------------------

    def resolve(self, address: str) -> Recipient:
        """Where `address` goes (a thread's work); raises a DeliveryError (or anything,
        which `classify` turns into one) when it cannot be accepted."""
        if self.service.as_root:
            raise TempFailure(
                "refusing to deliver as root: set [server] user to the mail user", dsn="4.3.5"
            )
        if self._resolver is None:
            self._resolver, self._stamp = self.service.resolver()
        resolver = self._resolver
        if not self._sender_checked:
            # The access map's From: rules, at the first RCPT rather than at MAIL: a thread's
            # hop less per message, and an MTA treats both refusals alike.
            self.discard = resolver.check_sender(self.sender) is not None
            self._sender_checked = True
        if self.discard:
            return Recipient(address, [], [])
        seen = len(resolver.problems)
        targets = resolver.resolve_address(address)
        return Recipient(address, targets, resolver.problems[seen:], self._stamp)

    def deliver(self, data: bytearray, trace: Trace) -> list[DeliveryError | None]:
        """Deliver the message to every accepted recipient; each one's outcome, in order
        (None: delivered, durably). A thread's work."""
        config = self.service.config
        if not data or data.isspace():
            empty = BadMessage("empty message", dsn="5.6.0")
            return [empty for _ in self.recipients]
        if self.discard:
            log.info("lmtp-discarded", sender=self.sender, reason="access map")
            return [None for _ in self.recipients]
        msg = Incoming(data, from_line=False)
        jobs: dict[tuple[str, str], tuple[Target, Recipient]] = {}
        for rcpt in self.recipients:
            for target in rcpt.targets:
                jobs.setdefault(target.key(), (target, rcpt))
        done = dict(
            zip(
                jobs,
                self._copies(list(jobs.values()), msg, config, trace),
                strict=True,
            )
        )
        outcomes: list[DeliveryError | None] = []
        for rcpt in self.recipients:
            results: list[DeliveryError | None] = list(rcpt.problems)
            for target in rcpt.targets:
                results.append(done[target.key()])
            outcome = worst_error(results)
            outcomes.append(outcome)
            log.info(
                "lmtp-delivery",
                conn=trace.conn_id,
                rcpt=rcpt.address,
                status=outcome.line() if outcome is not None else "delivered",
            )
        return outcomes

    def _copies(
        self, jobs: list[tuple[Target, Recipient]], msg: Incoming, config: Config, trace: Trace
    ) -> list[DeliveryError | None]:
        """Every copy of the message, each one's outcome in order. Copies to several
        mailboxes are made up to `[lmtp] parallel_copies` at a time: each still returns only
        once its file and its directory are fsynced, but their fsyncs are in flight together,
        and the file system commits them together (ext4's journal commits every fsync that
        waits at once in one transaction: group commit), so that a transaction to N mailboxes
        waits for about one pair of flushes rather than N in a row. Nothing is answered
        before every copy has returned, as before."""
        # The copies to one mailbox (its folders) stay one after the other, in order, as
        # before: the duplicate check of the second sees the first.
        groups: dict[object, list[int]] = {}
        for i, (target, _rcpt) in enumerate(jobs):
            where = target.user.mail_root if isinstance(target, MailboxTarget) else i
            groups.setdefault(where, []).append(i)
        outcomes: list[DeliveryError | None] = [None] * len(jobs)

        def run(indexes: list[int]) -> None:
            for i in indexes:
                target, rcpt = jobs[i]
                outcomes[i] = self._copy(target, msg, config, trace, rcpt)

        width = min(len(groups), config.lmtp.parallel_copies)
        if width <= 1:
            run(list(range(len(jobs))))
            return outcomes
        # This thread and width - 1 helpers take the mailboxes one by one until none is left.
        pending = iter(list(groups.values()))
        lock = threading.Lock()

        def drain() -> None:
            while True:
                with lock:
                    indexes = next(pending, None)
                if indexes is None:
                    return
                run(indexes)

        with ThreadPoolExecutor(width - 1, thread_name_prefix="lmtp-copy") as pool:
            helpers = [pool.submit(drain) for _ in range(width - 1)]
            drain()
            for helper in helpers:
                helper.result()  # _copy never raises: this only waits
        return outcomes

    def _copy(
        self, target: Target, msg: Incoming, config: Config, trace: Trace, rcpt: Recipient
    ) -> DeliveryError | None:
        """One copy, and its failure if it failed (never raises). A mailbox copy whose
        Sieve scripts run is made in a child process (isolate.py: their CPU bound)."""

        def note(text: str) -> None:
            log.info("lmtp-note", conn=trace.conn_id, rcpt=rcpt.address, note=text)

        received = trace.received(rcpt.address)
        sender = self.sender
        try:
            scripts = sieve_scripts(target, config) if isinstance(target, MailboxTarget) else []
            if not scripts:
                stores = self.service.stores()
                deliver_copy(target, msg, sender, config, note, received, scripts=[], stores=stores)
                return None

            def work(child_note: Callable[[str], None]) -> None:
                deliver_copy(
                    target,
                    msg,
                    sender,
                    config,
                    child_note,
                    received,
                    sole_writer=True,
                    scripts=scripts,
                )

            bound = config.sieve.max_cpu_time + config.mda.program_timeout + SLACK
            err, notes = in_child(work, config.mda.quota_bounce, bound)
            for text in notes:
                note(text)
        except Exception as exc:
            err = classify(exc, config.mda.quota_bounce)
        if err is not None and not err.address:
            err.address = rcpt.address
        return err


class Trace:
    """What our `Received:` line says (RFC 5321 4.4): who handed us the message, when."""

    def __init__(self, helo: str, peer: str, host: str, conn_id: str, utf8: bool) -> None:
        self.helo = helo
        self.peer = peer
        self.host = host
        self.conn_id = conn_id
        self.protocol = "UTF8LMTP" if utf8 else "LMTP"  # RFC 6531 4.3
        self.date = _date_now()

    def received(self, recipient: str) -> str:
        return (
            f"Received: from {self.helo} ({self.peer})\n\tby {self.host} with "
            f"{self.protocol} id {self.conn_id}\n\tfor <{recipient}>; {self.date}"
        )


_date: tuple[int, str] = (0, "")  # the last second a Received: date was made for, and it


def _date_now() -> str:
    """The Received: line's date (RFC 5322 3.3), local time, made once a second: a server
    taking a thousand messages a second would make the same string a thousand times."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        from email.utils import formatdate

        _date = (now, formatdate(now, localtime=True))
    return _date[1]
