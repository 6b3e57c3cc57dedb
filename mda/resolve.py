"""From a recipient to where the message goes: sendmail's order, with our user database.

For a full address (`-r`, Postfix's RECIPIENT): the `To:` access check, then virtusertable
(before aliases, as both sendmail and Postfix do), then aliases(5) for local names, then the
user database. For `-d USER` (sendmail's local mailer, Postfix's mailbox_command): the MTA has
already applied its aliases, so the user is looked up directly, as procmail and mail.local do.

A domain is ours when it is in `local_domains` (sendmail's local-host-names, plus `localhost`),
when the virtusertable has entries for it, or when the passwd-file has users of it. An address
in any other domain is somebody else's: handed back to the MTA when an alias or virtual entry
points there, and "user unknown" when we were asked to deliver to it directly.

Every step can be explained (`mda check ADDRESS`): each function takes an optional list that
collects what was looked up and why it matched.

Security (SECURITY.md, heading 5):

- Every address is put in its canonical spelling (`mda.address.normalize`) once, on the way
  in, so that the access map, the virtusertable, the aliases and the user database all see the
  same key: `"bob"@Example.TEST.` cannot slip past an entry for `bob@example.test`.
- Every file that steers resolution is trusted before it is read (`mda.maps.safefile`): the
  maps, `local_domains` and the `:include:` lists may belong to root, to the user mda runs as
  or to `[mda] mail_uid`; the user database, which picks the uid a mailbox is written as, only
  to root or the user mda runs as. A file that is not trusted is a temporary failure.
- An address whose expansion ends nowhere (an empty `:include:`, lists that only include each
  other) is an error, `5.4.6 aliasing/forwarding loop broken` (EX_CONFIG), never a silent
  success with the message delivered nowhere.
"""

from __future__ import annotations

import os

from mda.address import normalize, normalize_domain, split
from mda.errors import DeliveryError, Loop, NoMailbox, TempFailure, UnknownUser, refusal_error
from mda.maps.safefile import check as check_file
from mda.maps.safefile import default_trusted, with_mail_user

# Homes that say "this account has none": Debian Policy 9.2.2 gives system accounts that need
# no home `/nonexistent`, and some systems use /dev/null. Mail that would go below one can
# never be delivered, so it is refused for good rather than retried for days.
NO_HOME = ("/nonexistent", "/dev/null")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

    from mailstore.config import Config
    from mailstore.userdb import PasswdFile, SystemUsers, User
    from mda.maps.access import AccessMap
    from mda.maps.aliases import Aliases
    from mda.maps.virtusertable import VirtUserTable


class MailboxTarget:
    """A user's Maildir: `folder` None means INBOX or whatever the user's Sieve script says."""

    __slots__ = ("address", "chain", "detail", "envelope_to", "folder", "user")

    def __init__(
        self,
        user: User,
        address: str,
        detail: str = "",
        folder: str | None = None,
        chain: tuple[str, ...] = (),
    ) -> None:
        self.user = user
        self.address = address  # what Delivered-To says and Sieve's envelope "to" sees
        self.detail = detail
        self.folder = folder
        self.chain = chain
        # Sieve's envelope "to" when `address` is a bare local name (see resolve_user).
        self.envelope_to = address

    def sieve_recipient(self) -> str:
        """The envelope recipient Sieve tests: the address with its +detail (RFC 5233)."""
        recipient = self.envelope_to if "@" not in self.address else self.address
        if self.detail and "+" not in recipient.rpartition("@")[0]:
            local, at, domain = recipient.rpartition("@")
            recipient = f"{local}+{self.detail}{at}{domain}"
        return recipient

    def key(self) -> tuple[str, str]:
        return (self.user.mail_root, self.folder or "")

    def describe(self) -> str:
        where = self.user.mail_root + (f" folder {self.folder}" if self.folder else "")
        extra = f", detail {self.detail}" if self.detail else ""
        return f"mailbox of {self.user.name}: {where}{extra}"


class ForwardTarget:
    """An address elsewhere: handed back to the MTA."""

    __slots__ = ("address", "chain")

    def __init__(self, address: str, chain: tuple[str, ...] = ()) -> None:
        self.address = address
        self.chain = chain

    def key(self) -> tuple[str, str]:
        return ("forward", self.address.lower())

    def describe(self) -> str:
        return f"forward to {self.address} through the MTA"


class ProgramTarget:
    __slots__ = ("chain", "command")

    def __init__(self, command: str, chain: tuple[str, ...] = ()) -> None:
        self.command = command
        self.chain = chain

    def key(self) -> tuple[str, str]:
        return ("program", self.command)

    def describe(self) -> str:
        return f'pipe to program "{self.command}"'


class FileTarget:
    __slots__ = ("chain", "path")

    def __init__(self, path: str, chain: tuple[str, ...] = ()) -> None:
        self.path = path
        self.chain = chain

    def key(self) -> tuple[str, str]:
        return ("file", self.path)

    def describe(self) -> str:
        return f"append to mbox file {self.path}"


class DiscardTarget:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def key(self) -> tuple[str, str]:
        return ("discard", "")

    def describe(self) -> str:
        return f"discarded ({self.reason})"


if TYPE_CHECKING:
    Target = MailboxTarget | ForwardTarget | ProgramTarget | FileTarget | DiscardTarget


class Resolver:
    """Opens each map on first use: a delivery to `-d user` never reads the aliases."""

    def __init__(self, config: Config, userdb: PasswdFile | SystemUsers | None = None) -> None:
        """`userdb`: a user database kept by the caller across resolvers (the server's LMTP,
        which resolves many messages: a PasswdFile re-reads itself when the file changes);
        by default one is opened on first use."""
        self.config = config
        self._aliases: Aliases | None = None
        self._virtusers: VirtUserTable | None = None
        self._access: AccessMap | None = None
        self._shared_userdb = userdb
        self._userdb: PasswdFile | SystemUsers | None = None
        self._system: SystemUsers | None = None
        self._local_domains: frozenset[str] | None = None
        # Who may own the files that say where mail goes, and the ones that say as whom.
        self.trusted = with_mail_user(config.mda.mail_uid)
        self.identity_trusted = default_trusted()
        # Targets an expansion could not deliver to while others of it could: reported and
        # counted in the exit status, but they do not stop the rest.
        self.problems: list[DeliveryError] = []

    def warm(self) -> Resolver:
        """Open every map now (those that can be: one that cannot is left to fail when a
        resolution needs it) and return self: the process-long resolver that `fork`s share
        (the server's LMTP, which resolves many messages with the same files)."""
        for opener in (self.aliases, self.virtusers, self.access, self.userdb):
            try:
                opener()
            except Exception:
                pass
        return self

    def fork(self) -> Resolver:
        """A resolver for another message: the maps this one has open, problems of its own.
        The maps are read-only and read with pread(), so forks may run in several threads."""
        other = Resolver.__new__(Resolver)
        other.__dict__.update(self.__dict__)
        other.problems = []
        return other

    # -- maps, opened lazily ------------------------------------------------------------

    @property
    def local_domains(self) -> frozenset[str]:
        if self._local_domains is None:
            names = {"localhost"}
            path = self.config.maps.local_domains
            try:
                if os.path.exists(path):
                    check_file(path, self.trusted)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        word = normalize_domain(line.split("#", 1)[0])
                        if word:
                            names.add(word)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise TempFailure(f"cannot read {path}: {exc.strerror}", dsn="4.3.5") from exc
            self._local_domains = frozenset(names)
        return self._local_domains

    def aliases(self) -> Aliases | None:
        if self._aliases is None and os.path.exists(self.config.maps.aliases):
            from mda.maps.aliases import Aliases

            self._aliases = Aliases(
                self.config.maps.aliases, local_domains=self.local_domains, trusted=self.trusted
            )
        return self._aliases

    def virtusers(self) -> VirtUserTable | None:
        path = self.config.maps.virtusertable
        if self._virtusers is None and os.path.exists(path) and os.path.getsize(path) > 0:
            from mda.maps.virtusertable import VirtUserTable

            self._virtusers = VirtUserTable(path, trusted=self.trusted)
        return self._virtusers

    def access(self) -> AccessMap | None:
        path = self.config.maps.access
        # An empty access file (the usual state) is no map: spare the delivery its import.
        if self._access is None and os.path.exists(path) and os.path.getsize(path) > 0:
            from mda.maps.access import AccessMap

            self._access = AccessMap(path, trusted=self.trusted)
        return self._access

    def userdb(self) -> PasswdFile | SystemUsers:
        if self._userdb is None:
            from mailstore.userdb import open_userdb

            if self.config.auth.passwd_file:
                check_file(self.config.auth.passwd_file, self.identity_trusted)
            self._userdb = self._shared_userdb or open_userdb(self.config)
        return self._userdb

    def lookup(self, address: str, local_domains: Collection[str]) -> User | None:
        """The user database's entry for a canonical address. An internationalised domain is
        canonical in A-labels, but a passwd-file may spell it in UTF-8: that is tried next."""
        db = self.userdb()
        user = db.lookup(address, local_domains)
        local, at, domain = address.rpartition("@")
        if user is None and at and "xn--" in domain:
            try:
                unicode_domain = domain.encode("ascii").decode("idna")
            except UnicodeError:
                return None
            user = db.lookup(f"{local}@{unicode_domain}", local_domains)
        return user

    def find_user(self, name: str, domain: str = "") -> User | None:
        """A user by login or address: the passwd-file, then (for bare names) the system.

        A local name reached from an address of a domain (an alias target `alice` for mail to
        `list@virt.test`) is first tried as that domain's virtual user `alice@virt.test`.
        System accounts below `[mail] first_valid_uid` (daemon, bin...) never receive mail;
        an account whose mail would go below a home it does not have (`nobody`, home
        `/nonexistent`) is refused for good (NoMailbox), never retried.
        """
        user = self._find_user(name, domain)
        if user is not None:
            _check_home(user, name)
        return user

    def _find_user(self, name: str, domain: str) -> User | None:
        if domain and "@" not in name:
            user = self.lookup(f"{name}@{domain}", ())
            if user is not None and user.domain:
                return user
        if self.config.auth.passwd_file:
            user = self.lookup(name, self.local_domains)
            if user is not None or "@" in name:
                return user
            # `alice` in an aliases file for the virtual user alice@example.test of the one
            # local domain that has an alice.
            found = [
                u
                for d in sorted(self.local_domains)
                if (u := self.lookup(f"{name}@{d}", ())) is not None and u.domain
            ]
            if len(found) == 1:
                return found[0]
            from mailstore.userdb import SystemUsers

            if self._system is None:
                self._system = SystemUsers()
            user = self._system.lookup(name)
        else:
            user = self.lookup(name, self.local_domains)
        first = self.config.mail.first_valid_uid
        if user is not None and user.uid is not None and user.uid < first:
            return None  # root or a system account: their mail goes through an alias
        return user

    def default_domain(self) -> str:
        """The domain of a bare local name (`-d alice`): the one local domain, else the first
        in order, else localhost. Only for what Sieve sees as the envelope recipient."""
        domains = sorted(d for d in self.local_domains if d != "localhost")
        return domains[0] if domains else "localhost"

    def is_our_domain(self, domain: str) -> bool:
        domain = normalize_domain(domain)
        if not domain or domain in self.local_domains:
            return True
        virt = self.virtusers()
        if virt is not None and virt.map.get(f"@{domain}") is not None:
            return True
        db = self.userdb()
        users = getattr(db, "users", None)
        if users is not None and self.config.auth.passwd_file:
            return any(normalize_domain(u.domain) == domain for u in users())
        return False

    # -- resolution ---------------------------------------------------------------------

    def check_sender(self, sender: str, trace: list[str] | None = None) -> Target | None:
        """The access map's `From:` verdict on the envelope sender (None: carry on)."""
        access = self.access()
        if access is None or not sender:
            return None
        decision = access.check_sender(sender, trace=trace)
        return self._access_outcome(decision, sender)

    def _access_outcome(self, decision: object, address: str) -> Target | None:
        if decision is None:
            return None
        refusal = getattr(decision, "refusal", None)
        if refusal is not None:
            raise refusal_error(refusal, address)
        if getattr(decision, "action", "") == "DISCARD":
            return DiscardTarget(f"access map: {getattr(decision, 'key', '')} DISCARD")
        return None

    def resolve_user(self, name: str, detail: str = "", folder: str | None = None) -> Target:
        """`-d USER`: a local user, not aliased again (the MTA did that).

        sendmail's local mailer passes the bare user name (`$u`) and the detail apart (`-a
        $h`): what Sieve's `envelope "to"` sees is then the full address `user+detail@domain`
        (the user's own domain, else the local one), so that `:detail` and `:domain` match
        as they would for the address the mail was sent to. Delivered-To keeps the name the
        MTA gave."""
        name = normalize(name)
        user = self.find_user(name)
        if user is None:
            raise UnknownUser("user unknown", name)
        target = MailboxTarget(user, name, detail, folder)
        if "@" not in name:
            target.envelope_to = f"{name}@{user.domain or self.default_domain()}"
        return target

    def resolve_address(
        self, address: str, folder: str | None = None, trace: list[str] | None = None
    ) -> list[Target]:
        """A full address, through access, virtusertable, aliases and the user database."""
        addr = normalize(address)
        if not addr:
            raise UnknownUser("empty recipient address")
        note = trace.append if trace is not None else _ignore
        access = self.access()
        if access is not None:
            domain = addr.rpartition("@")[2] if "@" in addr else ""
            decision = access.check_recipient(addr, local=self.is_our_domain(domain), trace=trace)
            outcome = self._access_outcome(decision, addr)
            if outcome is not None:
                note(f"{addr}: {outcome.describe()}")
                return [outcome]
        local, at, domain = addr.rpartition("@")
        if at:
            virt = self.virtusers()
            hops = virt.resolve(addr) if virt is not None else []
            for hop in hops:
                note(hop.describe())
            if hops:
                last = hops[-1]
                if last.refusal is not None:
                    raise refusal_error(last.refusal, addr)
                if last.is_local:
                    return self._expand(last.result, addr, folder, trace)
                return self._address_target(normalize(last.result), addr, folder, trace)
            if not self.is_our_domain(domain):
                user = self.find_user(addr)
                if user is not None:
                    note(f"{addr}: virtual user {user.name}")
                    return [MailboxTarget(user, addr, folder=folder)]
                note(f"{addr}: {domain} is not a local domain and has no virtual users")
                raise UnknownUser("user unknown", addr)
            # A virtual user of a local domain is matched whole before aliasing a bare name.
            user = self.lookup(addr, ())
            if user is not None and user.domain:
                note(f"{addr}: virtual user {user.name}")
                return [MailboxTarget(user, addr, folder=folder)]
            return self._expand(local, addr, folder, trace)
        return self._expand(addr, addr, folder, trace)

    def _address_target(
        self, target: str, original: str, folder: str | None, trace: list[str] | None
    ) -> list[Target]:
        """A virtusertable result that is an address: ours (again) or somebody else's."""
        local, _, domain = target.rpartition("@")
        if self.is_our_domain(domain):
            user = self.lookup(target, ())
            if user is not None and user.domain:
                return [MailboxTarget(user, target, folder=folder)]
            return self._expand(local, target, folder, trace)
        user = self.find_user(target)
        if user is not None:
            return [MailboxTarget(user, target, folder=folder)]
        return [ForwardTarget(target, (original,))]

    def _expand(
        self, name: str, original: str, folder: str | None, trace: list[str] | None
    ) -> list[Target]:
        """Aliases for a local name, then the user database for each local result."""
        note = trace.append if trace is not None else _ignore
        aliases = self.aliases()
        if aliases is None:
            from mda.maps.aliases import Target as AliasTarget
            from mda.maps.aliases import split_detail

            user_part, detail, _ = split_detail(split(name)[0].lower())
            found = [AliasTarget("local", user_part, detail=detail)]
            note(f"{name}: no aliases file, local name")
        else:
            if trace is not None:
                trace.extend(aliases.explain(name)[1:])
            found = aliases.expand(name)
        if not found:
            # sendmail's recipient.c: an address whose expansion left nothing to deliver to.
            note(f"{name}: expands to no recipient")
            why = f"aliasing/forwarding loop broken ({name} expands to no recipient)"
            raise Loop(why, original)
        out: list[Target] = []
        errors: list[DeliveryError] = []
        for t in found:
            if t.kind == "local":
                domain = original.rpartition("@")[2] if "@" in original else ""
                user = self.find_user(t.value, domain)
                if user is None:
                    errors.append(UnknownUser("user unknown", t.address if t.chain else original))
                    continue
                address = original if not t.chain else _with_domain(t.value, original)
                out.append(MailboxTarget(user, address, t.detail, folder, t.chain))
            elif t.kind == "remote":
                out.append(ForwardTarget(t.value, t.chain))
            elif t.kind == "program":
                out.append(ProgramTarget(t.value, t.chain))
            elif t.kind == "file":
                out.append(FileTarget(t.value, t.chain))
            else:
                assert t.refusal is not None
                errors.append(refusal_error(t.refusal, original))
        if errors and not out:
            raise errors[0]
        for err in errors:
            note(f"not delivered: {err.line()}")
        self.problems.extend(errors)
        return out


def _check_home(user: User, name: str) -> None:
    """NoMailbox when the user's mail would go below a home the account does not have."""
    home = user.home.rstrip("/")
    if not home or not (user.mail_root == home or user.mail_root.startswith(home + "/")):
        return
    missing = home in NO_HOME or home.startswith(NO_HOME[0] + "/")
    if missing or (os.path.exists(home) and not os.path.isdir(home)):
        raise NoMailbox(f"mailbox unavailable: the account has no home directory ({home})", name)


def _with_domain(user: str, original: str) -> str:
    domain = original.rpartition("@")[2] if "@" in original else ""
    return f"{user}@{domain}" if domain else user


def _ignore(_: str) -> None:
    return None


def dedupe(targets: list[Target]) -> list[Target]:
    """One copy per mailbox (and per program, file or forward), in first-seen order."""
    seen = set()
    out = []
    for t in targets:
        k = t.key()
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out
