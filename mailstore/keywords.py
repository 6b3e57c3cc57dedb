"""`dovecot-keywords`: which IMAP keyword each flag letter `a`..`z` of a folder stands for.

Format (Dovecot's maildir-keywords.c): one `<index> <keyword>` line per keyword, index 0 is the
letter `a`. A folder can thus hold 26 keywords in file names, as in Dovecot. The file is read
whenever it changed, written under `dovecot-keywords.lock` through a temporary file and rename(),
and entries are only ever added: a letter keeps its meaning for as long as any file name uses it.
"""

from __future__ import annotations

import os

from mailstore import log
from mailstore.errors import InvalidName, LimitExceeded, TemporaryFailure
from mailstore.filenames import KEYWORD_LETTERS
from mailstore.lock import DotLock
from mailstore.uidlist import replace_file

NAME = "dovecot-keywords"
MAX_KEYWORDS = len(KEYWORD_LETTERS)


def valid_keyword(word: str) -> bool:
    """An IMAP flag-keyword is an atom (RFC 3501 section 9): no specials, no `\\`."""
    if not word or len(word) > 128 or not word.isascii():
        return False
    return all(c > " " and c not in '(){%*"\\]\x7f' for c in word)


class Keywords:
    def __init__(self, path: str) -> None:
        self.path = path
        self.names: list[str | None] = [None] * MAX_KEYWORDS
        self._identity: tuple[int, int, int] | None = None

    def refresh(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            changed = self._identity is not None
            self.names = [None] * MAX_KEYWORDS
            self._identity = None
            return changed
        except OSError as exc:
            raise TemporaryFailure(f"cannot stat {NAME}: {exc.strerror}") from exc
        identity = (st.st_ino, st.st_size, st.st_mtime_ns)
        if identity == self._identity:
            return False
        self._identity = identity
        self.names = self._parse()
        return True

    def _parse(self) -> list[str | None]:
        names: list[str | None] = [None] * MAX_KEYWORDS
        try:
            with open(self.path, "rb") as f:
                data = f.read(1 << 16)
        except OSError as exc:
            log.warn("keywords-unreadable", path=self.path, error=exc.strerror)
            return names
        for line in data.decode("utf-8", "replace").splitlines():
            idx, _, word = line.partition(" ")
            word = word.strip()
            # ASCII digits: str.isdigit() is also true for "²", which int() refuses.
            if idx.isascii() and idx.isdigit() and int(idx) < MAX_KEYWORDS and valid_keyword(word):
                names[int(idx)] = word
            elif line.strip():
                log.warn("keywords-bad-line", path=self.path, line=line[:80])
        return names

    def letters_to_names(self, letters: str) -> list[str]:
        """The keywords named by the lowercase letters of a file name's flags."""
        out = []
        for ch in letters:
            if "a" <= ch <= "z":
                word = self.names[ord(ch) - 97]
                if word is not None:
                    out.append(word)
        return out

    def letter_for(self, word: str) -> str | None:
        folded = word.lower()
        for i, name in enumerate(self.names):
            if name is not None and name.lower() == folded:
                return KEYWORD_LETTERS[i]
        return None

    def letters_for(self, words: set[str] | frozenset[str], tmp_dir: str) -> str:
        """Letters for keywords, adding missing ones to the file (under its lock)."""
        letters = []
        missing = []
        for word in words:
            letter = self.letter_for(word)
            if letter is None:
                missing.append(word)
            else:
                letters.append(letter)
        if missing:
            for word in missing:
                if not valid_keyword(word):
                    raise InvalidName(f"invalid keyword {word!r}")
            with DotLock(self.path):
                self._identity = None
                self.refresh()
                added = False
                for word in sorted(missing):
                    letter = self.letter_for(word)
                    if letter is None:
                        try:
                            idx = self.names.index(None)
                        except ValueError:
                            raise LimitExceeded(
                                f"a folder holds at most {MAX_KEYWORDS} keywords"
                            ) from None
                        self.names[idx] = word
                        letter = KEYWORD_LETTERS[idx]
                        added = True
                    letters.append(letter)
                if added:
                    text = "".join(f"{i} {w}\n" for i, w in enumerate(self.names) if w is not None)
                    replace_file(self.path, text.encode(), tmp_dir)
                    self._identity = None
                    self.refresh()
        return "".join(letters)
