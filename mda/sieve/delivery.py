"""The delivery agent's side of Sieve: run a user's scripts for one delivery, then carry out
what they decided. `mda.deliver` calls `evaluate_for` and `perform`, in the child that runs
as the mailbox owner.

Layout, as Pigeonhole's default `sieve = file:~/sieve;active=~/.dovecot.sieve`: the active
script is `~/.dovecot.sieve`, usually a symbolic link to `~/sieve/NAME.sieve` (which
ManageSieve and Pigeonhole's managesieve maintain); `include :personal "x"` reads
`~/sieve/x.sieve`, `include :global "x"` reads `[sieve] global_dir/x.sieve` (a trusted file,
as the global sieve_before/sieve_after scripts). Compiled `.svbin` files that Pigeonhole
leaves next to scripts are never read; our own compiled form is cached beside each script
the user owns (`compiled.py`), and the text is parsed only when that is missing or stale.

Failures never lose mail (RFC 5228 section 2.10.6): a script that does not compile or fails
when it runs (a limit, the CPU time, an include that is missing) is reported on stderr and
the message goes to INBOX. What the scripts decided is then done in order: stores, redirects
(not to an address the message was already delivered to: a `Delivered-To` naming it means a
redirect loop, and the message is kept instead), rejections, vacation replies and
notifications (a failure to send those is reported, the message stays delivered). Duplicate
tracking is written last, once everything else succeeded.
"""

from __future__ import annotations

import os

from . import actions as act
from .cpulimit import cpu_limit
from .errors import Limits, SieveError, SieveRuntimeError
from .extensions import apply_extension_setting
from .interpreter import Context, Result, run_chain
from .message import SieveEnvelope, SieveMessage
from .nodes import Script

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from mailstore.config import Config
    from mailstore.store import MailStore
    from mda.message import Incoming, Payload
    from mda.resolve import MailboxTarget

    from .tracking import Tracker


def _say(line: str) -> None:
    from mda.deliver import say as deliver_say

    deliver_say(line)


def limits_of(config: Config) -> Limits:
    sieve = config.sieve
    return Limits(
        max_script_size=sieve.max_script_size,
        max_actions=sieve.max_actions,
        max_redirects=sieve.max_redirects,
        max_include_depth=sieve.max_include_depth,
        max_includes=sieve.max_includes,
        max_variable_size=sieve.max_variable_size,
        max_header_size=sieve.max_header_size,
    )


def extensions_for(config: Config) -> frozenset[str]:
    """The extensions scripts may require with this configuration: the default set changed
    by `[sieve] extensions`; spamtest and spamtestplus once their header is configured, and
    virustest once its own is (unless `extensions` says "-spamtest"...), never before."""
    words = tuple(config.sieve.extensions)
    enabled = set(apply_extension_setting(words))
    for names, header in (
        (("spamtest", "spamtestplus"), config.sieve.spamtest_status_header),
        (("virustest",), config.sieve.virustest_status_header),
    ):
        for name in names:
            if not header:
                enabled.discard(name)
            elif f"-{name}" not in words:
                enabled.add(name)
    return frozenset(enabled)


def _status_tests(config: Config) -> tuple[object, object]:
    sieve = config.sieve
    if not (sieve.spamtest_status_header or sieve.virustest_status_header):
        return None, None  # and spamtest is not imported: preload.py imports it only then
    from .spamtest import StatusTest

    spam = virus = None
    if sieve.spamtest_status_header:
        spam = StatusTest(
            virus=False,
            status_header=sieve.spamtest_status_header,
            status_type=sieve.spamtest_status_type,
            max_value=sieve.spamtest_max_value,
            max_header=sieve.spamtest_max_header,
            text_values=tuple(sieve.spamtest_text_values),
        )
    if sieve.virustest_status_header:
        virus = StatusTest(
            virus=True,
            status_header=sieve.virustest_status_header,
            status_type=sieve.virustest_status_type,
            max_value=sieve.virustest_max_value,
            max_header=sieve.virustest_max_header,
            text_values=tuple(sieve.virustest_text_values),
        )
    return spam, virus


class _Includes:
    """`load_include` for a user: personal scripts in ~/sieve, global ones in global_dir."""

    def __init__(self, home: str, config: Config, limits: Limits, extensions: frozenset[str]):
        self.home = home
        self.config = config
        self.limits = limits
        self.extensions = extensions
        self.cache: dict[tuple[bool, str], Script | None] = {}

    def __call__(self, is_global: bool, name: str) -> Script | None:
        key = (is_global, name)
        if key not in self.cache:
            self.cache[key] = self._load(is_global, name)
        return self.cache[key]

    def _load(self, is_global: bool, name: str) -> Script | None:
        if is_global:
            directory = self.config.sieve.global_dir
            if not directory:
                return None
            path = os.path.join(directory, name + ".sieve")
            if not os.path.isfile(path):
                return None
            from mda.maps.safefile import check as check_file
            from mda.maps.safefile import with_mail_user

            check_file(path, with_mail_user(self.config.mda.mail_uid))
        else:
            if not self.home:
                return None
            path = os.path.join(self.home, "sieve", name + ".sieve")
            if not os.path.isfile(path):
                return None
        from .compiled import load

        return load(path, self.limits, self.extensions, name=name)


class _LazyTracker:
    """The user's tracking file (`tracking.Tracker`), imported only by the scripts that use
    it (duplicate, vacation): most never do."""

    def __init__(self, mail_root: str) -> None:
        self.mail_root = mail_root
        self.tracker: object = None

    def get(self) -> Tracker:
        from .tracking import Tracker

        if self.tracker is None:
            self.tracker = Tracker(self.mail_root)
        assert isinstance(self.tracker, Tracker)
        return self.tracker

    def seen(self, key: bytes) -> bool:
        return self.get().seen(key)


class Outcome:
    """What a delivery's scripts decided, with what `perform` needs to carry it out."""

    __slots__ = ("actions", "message", "msg", "note", "recipient", "tracker", "tracks")

    def __init__(
        self,
        result: Result,
        msg: SieveMessage,
        message: Incoming,
        recipient: str,
        tracker: object,
        note: Callable[[str], None] = _say,
    ) -> None:
        self.actions = result.actions
        self.tracks = result.tracks
        self.msg = msg
        self.message = message
        self.recipient = recipient
        self.tracker = tracker
        self.note = note  # where what is not a failure is said (evaluate_for's `note`)


def evaluate_for(
    target: MailboxTarget,
    msg: Incoming,
    sender: str,
    paths: list[str],
    store: MailStore,
    config: Config,
    note: Callable[[str], None] | None = None,
) -> Outcome | None:
    """Run the scripts at `paths` (sieve_before..., the user's, sieve_after...) for this
    delivery; None (keep in INBOX) when there is none or they fail, with the reason said
    (to `note`: mda's stderr by default, the server's log for LMTP)."""
    if not paths:
        return None
    say = note or _say
    limits = limits_of(config)
    recipient = target.sieve_recipient()
    tracker = _LazyTracker(target.user.mail_root)
    try:
        extensions = extensions_for(config)
        spam, virus = _status_tests(config)
        with cpu_limit(config.sieve.max_cpu_time):
            from .compiled import load

            scripts = []
            for path in paths:
                try:
                    scripts.append(load(path, limits, extensions))
                except SieveError as exc:
                    raise SieveError(f"{path}: {exc}", exc.line) from None
            message = SieveMessage.from_bytes(msg.raw)
            context = Context(
                mailbox_exists=store.exists,
                duplicate_seen=tracker.seen,
                load_include=_Includes(target.user.home or "", config, limits, extensions),
                environment=_environment(recipient),
                spam=spam,
                virus=virus,
                limits=limits,
                duplicate_periods=(
                    config.sieve.duplicate_default_period,
                    config.sieve.duplicate_max_period,
                ),
            )
            result = run_chain(scripts, message, SieveEnvelope(sender, recipient), context)
    except SieveRuntimeError as exc:
        say(f"sieve: script failed at run time ({exc}); message kept in INBOX")
        return None
    except SieveError as exc:
        say(f"sieve script error ({exc}); message kept in INBOX")
        return None
    except OSError as exc:
        say(f"cannot read sieve script ({exc.strerror}); message kept in INBOX")
        return None
    return Outcome(result, message, msg, recipient, tracker, say)


def _environment(recipient: str) -> dict[str, str]:
    """RFC 5183 section 4's items that mean something here."""
    host = os.uname().nodename
    return {
        "domain": recipient.rpartition("@")[2] or host,
        "host": host,
        "location": "MDA",
        "name": "mra mda",
        "phase": "during",
        "version": "1",
    }


def _edited(data: Payload, message: Incoming, header: bytes | None) -> Payload:
    """The payload with the header editheader left, the trace lines we add kept on top."""
    if header is None:
        return data
    from mda.message import Payload as PayloadClass

    raw = message.raw
    end = raw.find(b"\n\n")
    end_crlf = raw.find(b"\r\n\r\n")
    ends = [e + 2 for e in (end,) if e >= 0] + [e + 4 for e in (end_crlf,) if e >= 0]
    body_start = min(ends) if ends else len(raw)
    if message.eol == b"\n":
        header = header.replace(b"\r\n", b"\n")
    return PayloadClass(data.head + header, bytes(raw[body_start:]))


def perform(
    outcome: Outcome,
    store: MailStore,
    default: str,
    data: Payload,
    sender: str,
    config: Config,
    folders: set[str],
    note: Callable[[str], None] | None = None,
) -> None:
    """Carry out what the scripts decided; `folders` collects the folders written to."""
    say = note or outcome.note
    delivered_to = {_bare(v).lower() for v in outcome.message.values("delivered-to")}
    kept = False
    for action in outcome.actions:
        if isinstance(action, act.Keep):
            payload = _edited(data, outcome.message, action.header)
            store.mailbox(default).append(payload.reader(), flags=sorted(action.flags))
            kept = True
        elif isinstance(action, act.FileInto):
            folder = action.mailbox
            if not store.exists(folder):
                if action.create:
                    folder = _created(store, folder, say)
                else:
                    say(f"fileinto {folder!r}: no such folder, kept in INBOX")
                    folder = "INBOX"
            folders.add(folder)
            payload = _edited(data, outcome.message, action.header)
            store.mailbox(folder).append(payload.reader(), flags=sorted(action.flags))
        elif isinstance(action, act.Redirect):
            if action.address.lower() in delivered_to:
                say(
                    f"redirect to {action.address}: the message was delivered there already "
                    "(Delivered-To), a loop; kept in INBOX instead"
                )
                if not kept:
                    store.mailbox(default).append(data.reader())
                    kept = True
                continue
            from mda.external import forward

            forward(config, sender, action.address, _edited(data, outcome.message, action.header))
        elif isinstance(action, act.Discard):
            say("discarded by sieve")
        elif isinstance(action, act.Reject):
            from .send import send_rejection

            send_rejection(action, outcome, sender, config)
    for action in outcome.actions:
        try:
            if isinstance(action, act.Vacation):
                from .send import send_vacation

                send_vacation(action, outcome, sender, config)
            elif isinstance(action, act.Notify):
                from .send import send_notification

                send_notification(action, outcome, config)
        except Exception as exc:  # the message is delivered; a reply that fails is reported
            if type(exc).__name__ == "Interrupted":
                raise
            say(f"sieve: {type(action).__name__.lower()} not sent: {exc}")
    if outcome.tracks and isinstance(outcome.tracker, _LazyTracker):
        outcome.tracker.get().remember([(t.key, t.seconds, t.last) for t in outcome.tracks])


def _created(store: MailStore, name: str, say: Callable[[str], None]) -> str:
    """`fileinto :create`: the folder made, or INBOX for a name no folder can have (a script
    error found only now: the mail is kept, RFC 5228 2.10.6)."""
    from mailstore.errors import InvalidName

    try:
        store.create_folder(name)
    except InvalidName as exc:
        say(f"fileinto {name!r}: {exc.message}, kept in INBOX")
        return "INBOX"
    return name


def _bare(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value
