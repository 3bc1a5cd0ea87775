"""Wrong-password limit of the HQ page: per account name and per address, in this process.

The page runs as ONE gunicorn worker process (threads inside it), so this counter is the
only one and exact; a restart forgets it (documented in docs/fleet.md). ``max_failures``
wrong passwords within ``window`` seconds lock the name (and the address) for ``lockout``
seconds, right password or not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    """Counts wrong passwords per key; :meth:`wait` says how long a key is locked."""

    def __init__(self, max_failures: int = 5, window: int = 900, lockout: int = 300, max_keys: int = 100_000):
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._locked: dict[str, float] = {}

    def wait(self, keys: Iterable[str], now: float) -> int:
        """Return the seconds until all ``keys`` may try again (0: now)."""
        with self._lock:
            until = max((self._locked.get(key, 0.0) for key in keys), default=0.0)
        return max(0, int(until - now + 0.999))

    def failed(self, keys: Iterable[str], now: float) -> int:
        """Count a wrong password for ``keys``; return the lockout it caused (0: none)."""
        caused = 0
        with self._lock:
            if len(self._failures) > self.max_keys:
                self._prune(now)
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window]
                recent.append(now)
                if len(recent) >= self.max_failures:
                    self._locked[key] = now + self.lockout
                    caused = self.lockout
                    recent = []
                self._failures[key] = recent
        return caused

    def succeeded(self, keys: Iterable[str]) -> None:
        """Forget ``keys``' wrong passwords (a right one)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _prune(self, now: float) -> None:
        self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < self.window}
        self._locked = {k: t for k, t in self._locked.items() if t > now}
