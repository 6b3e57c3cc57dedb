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
