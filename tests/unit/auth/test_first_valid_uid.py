"""System accounts below `[mail] first_valid_uid` cannot log in (the mail side: tests/mda)."""

from __future__ import annotations

from mailstore.userdb import User
from mra.auth.glue import ShadowUsers


class _System:
    def lookup(self, address: str, local_domains: object = ()) -> User | None:
        return User(address, address, "", "", 1500, 1500, "/home/x", "/home/x/Maildir", None)


def test_logins_follow_first_valid_uid() -> None:
    assert ShadowUsers(_System()).lookup("wendy") is not None  # 1000 by default
    assert ShadowUsers(_System(), first_valid_uid=1501).lookup("wendy") is None
    assert ShadowUsers(_System(), first_valid_uid=1500).lookup("wendy") is not None
