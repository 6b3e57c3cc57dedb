"""The Twisted reactor, installed on first use rather than on import.

`mra serve` with `workers = N` binds its sockets and forks before serving; a reactor created
in the parent (an epoll instance) would be shared by every worker, which then fight over it.
So nothing here touches the reactor until a process actually serves.
"""

from __future__ import annotations

from typing import Any

# Looked up on every command (the idle deadline): kept once found, the import machinery of
# `from twisted.internet import reactor` being most of a lookup's cost. The global reactor,
# once made, is the process's for good (Twisted refuses to install another).
_KEPT = frozenset({"seconds", "callLater"})


class _Reactor:
    def __getattr__(self, name: str) -> Any:
        from twisted.internet import reactor

        value = getattr(reactor, name)
        if name in _KEPT:
            setattr(self, name, value)
        return value


# Typed as Any: Twisted's global reactor is a module to type checkers, an IReactorCore,
# IReactorTime, IReactorSocket... at run time.
reactor: Any = _Reactor()


def install() -> None:
    """Install the serving process's reactor: Twisted's epoll reactor (its default on Linux),
    whose loop hands each ready descriptor to its handler directly. Twisted's wraps every
    call in `log.callWithLogger`, which sets up a logging context of the descriptor's log
    prefix for Twisted's own legacy log, which we do not use (mra/log.py): 7 microseconds
    of a 70-microsecond command, per event (measured under load; about 3 on a quiet
    machine). Errors are still caught per descriptor and logged by Twisted, as there.
    Elsewhere than Linux, Twisted's default reactor."""
    try:
        from twisted.internet import epollreactor
    except ImportError:
        from twisted.internet import default

        default.install()
        return
    import errno

    from twisted.internet.main import installReactor
    from twisted.python import log as twisted_log

    class DirectEPollReactor(epollreactor.EPollReactor):
        def doPoll(self, timeout: float | None) -> None:
            this: Any = self  # Twisted's private attributes, untyped
            try:
                events = this._poller.poll(
                    -1 if timeout is None else timeout, len(this._selectables)
                )
            except OSError as err:
                if err.errno == errno.EINTR:
                    return
                raise
            handle = this._doReadOrWrite
            selectables = this._selectables
            for fd, event in events:
                selectable = selectables.get(fd)
                if selectable is None:
                    continue
                try:
                    handle(selectable, fd, event)
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    twisted_log.err()  # type: ignore[no-untyped-call]  # as callWithLogger did

        doIteration = doPoll

    install_reactor: Any = installReactor  # Twisted's stubs leave both untyped
    make: Any = DirectEPollReactor
    install_reactor(make())
