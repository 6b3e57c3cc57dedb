"""`mra user add|passwd|del|list`: edit a Dovecot passwd-file in place, safely.

Edits keep every other line (comments, other users, extra fields) byte for byte, happen under
a dot-lock, and replace the file atomically (temp file, fsync, rename) with its permissions, so
a running server, which re-reads the file when it changes, never sees half a file.
"""

from __future__ import annotations

import os

from mailstore.lock import DotLock


class PasswdEditor:
    def __init__(self, path: str) -> None:
        self.path = path

    def _lines(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    @staticmethod
    def _name(line: str) -> str | None:
        if not line.strip() or line.lstrip().startswith("#"):
            return None
        return line.split(":", 1)[0].strip()

    def names(self) -> list[str]:
        return [n for n in (self._name(line) for line in self._lines()) if n]

    def _write(self, lines: list[str]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
        try:
            mode = os.stat(self.path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(fd, "".join(f"{line}\n" for line in lines).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self.path)

    def add(self, name: str, stored: str) -> bool:
        if ":" in name or not name.strip() or any(c.isspace() for c in name):
            raise ValueError(f"invalid user name {name!r}")
        with DotLock(self.path):
            lines = self._lines()
            if any((self._name(line) or "").lower() == name.lower() for line in lines):
                return False
            self._write([*lines, f"{name}:{stored}::::::"])
        return True

    def set_password(self, name: str, stored: str) -> bool:
        with DotLock(self.path):
            lines = self._lines()
            for i, line in enumerate(lines):
                if (self._name(line) or "").lower() == name.lower():
                    fields = line.split(":")
                    fields[1] = stored
                    lines[i] = ":".join(fields)
                    self._write(lines)
                    return True
        return False

    def delete(self, name: str) -> bool:
        with DotLock(self.path):
            lines = self._lines()
            kept = [ln for ln in lines if (self._name(ln) or "").lower() != name.lower()]
            if len(kept) == len(lines):
                return False
            self._write(kept)
        return True
