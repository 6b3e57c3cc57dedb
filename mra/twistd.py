"""The twistd face of `mra serve`: the same listeners, as a Twisted service.

twistd owns the reactor, the signals and daemonising here, so this serves in one process
(`[server] workers` is for `mra serve`); privileges are dropped by twistd's own `--uid`/`--gid`
(or by `[server] user` after the ports are bound).
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    optParameters = [["config", "c", "/etc/mra/mra.toml", "configuration file"]]  # noqa: RUF012


class MraService(service.Service):
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.server: Any = None

    def startService(self) -> None:
        from mailstore.config import load_config
        from mra.net.server import Server, drop_privileges

        config = load_config(self.config_path)
        self.server = Server(config)
        drop_privileges(config.server.user)
        self.server.start_listening()
        super().startService()  # type: ignore[no-untyped-call]

    def stopService(self) -> None:
        super().stopService()  # type: ignore[no-untyped-call]
        if self.server is not None:
            for conn in list(self.server.connections):
                conn.shutdown()
            self.server.close_listeners()


@implementer(service.IServiceMaker, IPlugin)
class ServiceMaker:
    tapname = "mra"
    description = "POP3/IMAP server for Maildir++ stores"
    options = Options

    def makeService(self, options: Options) -> service.IService:
        return MraService(options["config"])  # type: ignore[return-value]


serviceMaker = ServiceMaker()
