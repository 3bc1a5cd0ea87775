"""The HQ page's staff accounts: one file, one ``name:argon2-hash`` line each.

A file, not a table: the page then needs a database role that can only read the reports
(``GRANT SELECT``), and ``hotspotctl hq account`` manages accounts without a database.
Writes are atomic (a temporary file renamed over the old one) and keep the file 0640.
The same argon2 parameters as the librarian desk (argon2-cffi's defaults).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MAX_PASSWORD", "MIN_PASSWORD", "NAME", "StaffError", "StaffFile"]

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY = _hasher.hash("not-a-password-of-anyone")


class StaffError(ValueError):
    """A name or password that cannot be an account (the message says why)."""


class StaffFile:
    """The accounts in ``path`` (read afresh on every call: a removed account counts at once)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, str]:
        """Return name -> hash; no file means no accounts."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        found = {}
        for line in text.splitlines():
            name, sep, hashed = line.strip().partition(":")
            if sep and NAME.match(name) and hashed.startswith("$argon2"):
                found[name] = hashed
        return found

    def names(self) -> list[str]:
        return sorted(self.load())

    def add(self, name: str, password: str) -> bool:
        """Add ``name`` or set its password; return whether it is new."""
        if not NAME.match(name):
            raise StaffError(f'"{name}": a name is 1-64 of a-z 0-9 . _ - (starting with a letter or digit)')
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise StaffError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        accounts = self.load()
        new = name not in accounts
        accounts[name] = _hasher.hash(password)
        self._write(accounts)
        return new

    def remove(self, name: str) -> bool:
        """Remove ``name``; return whether it was there."""
        accounts = self.load()
        if accounts.pop(name, None) is None:
            return False
        self._write(accounts)
        return True

    def verify(self, name: str, password: str) -> bool:
        """Return whether ``password`` is ``name``'s (as slow for an unknown name)."""
        hashed = self.load().get(name)
        try:
            return _hasher.verify(hashed or _DUMMY, password[:MAX_PASSWORD]) and hashed is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def fingerprint(self, name: str) -> str | None:
        """Return a short tag of ``name``'s current hash (a sign-in carries it: a new password
        or a removed account ends every sign-in made before), or None if there is no such account."""
        hashed = self.load().get(name)
        return hashlib.sha256(hashed.encode()).hexdigest()[:16] if hashed else None

    def _write(self, accounts: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".staff-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write("# HQ page staff (hotspotctl hq account): name:argon2 hash\n")
                out.writelines(f"{name}:{hashed}\n" for name, hashed in sorted(accounts.items()))
            os.chmod(tmp, 0o640)
            if self.path.exists():
                stat = self.path.stat()
                os.chown(tmp, stat.st_uid, stat.st_gid)  # keep the group the page runs as
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
