"""Failure-based rate limiting in Redis: N failures, then a wait that grows.

Used by the portal (wrong voucher codes, per device and per IP) and the desk (wrong
passwords, per account and per address). Only failures count: a visitor who types the
right code is never slowed down. After ``max_failures`` failures within the window the
key is locked for ``lockout`` seconds; each further lockout of the same key doubles
(up to ``max_lockout``), and a success clears it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

__all__ = ["Limit", "check", "record_failure", "reset"]


@dataclass(frozen=True)
class Limit:
    """``max_failures`` within ``window`` s lock a key for ``lockout`` s, doubling up to ``max_lockout``."""

    scope: str  # e.g. "voucher", "desk"
    max_failures: int = 5
    window: int = 600
    lockout: int = 60
    max_lockout: int = 3600


def _keys(limit: Limit, who: str) -> tuple[str, str, str]:
    base = f"hs:rl:{limit.scope}:{who}"
    return f"{base}:fails", f"{base}:locked", f"{base}:strikes"


def check(r: redis.Redis, limit: Limit, who: str) -> int:
    """Return how many seconds ``who`` must still wait (0 = may try now)."""
    _, locked, _ = _keys(limit, who)
    ttl = r.ttl(locked)
    return max(0, int(ttl)) if ttl and ttl > 0 else 0


def record_failure(r: redis.Redis, limit: Limit, who: str) -> int:
    """Count a failure for ``who``; return the wait in seconds it now faces (0 = none yet)."""
    fails, locked, strikes = _keys(limit, who)
    with r.pipeline(transaction=True) as pipe:
        pipe.incr(fails)
        pipe.expire(fails, limit.window, nx=True)
        count, _ = pipe.execute()
    if int(count) < limit.max_failures:
        return 0
    strike = int(r.incr(strikes))
    r.expire(strikes, limit.max_lockout * 4)
    wait = min(limit.max_lockout, limit.lockout * 2 ** (strike - 1))
    with r.pipeline(transaction=True) as pipe:
        pipe.set(locked, "1", ex=wait)
        pipe.delete(fails)
        pipe.execute()
    return wait


def reset(r: redis.Redis, limit: Limit, who: str) -> None:
    """Forget ``who``'s failures and lockouts (after a success)."""
    r.delete(*_keys(limit, who))
