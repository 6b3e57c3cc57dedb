"""The Twisted side of the server: listeners, the per-connection adapter, TLS, timers.

Twisted's tcp module loads Twisted's own TLS whenever pyOpenSSL can be imported: pyOpenSSL and
the `cryptography` wheel with its own OpenSSL, about 13 MB of RSS in every server process (5 MB
of it private to each), for a TLS this server no longer uses (mra/net/tls.py uses the standard
library's). Marking pyOpenSSL absent, unless something imported it already, makes Twisted go
without it (twisted/internet/tcp.py catches the ImportError). Issue #16: the server's memory.
"""

import sys

if "OpenSSL" not in sys.modules:
    sys.modules["OpenSSL"] = None  # type: ignore[assignment]
