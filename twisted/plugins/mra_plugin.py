"""twistd plugin: `twistd -n mra --config /etc/mra/mra.toml` runs the same server as `mra serve`.

Twisted finds plugins in `twisted/plugins/` directories on sys.path, so with the checkout in
/opt/mra: `PYTHONPATH=/opt/mra twistd -n mra --config /etc/mra/mra.toml`. (This directory has
no `__init__.py` on purpose: it must not shadow Twisted's own package.)
"""

from mra.twistd import serviceMaker

__all__ = ["serviceMaker"]
