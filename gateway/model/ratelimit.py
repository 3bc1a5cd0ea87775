"""Failure-based rate limiting in Redis: N failures, then a wait that grows.

Used by the portal (wrong voucher codes, per device, per IP and library-wide) and the
desk (wrong passwords, per account and per address). Only failures count: a visitor who
types the right code is never slowed down. After ``max_failures`` failures within the
window a key is locked for ``lockout`` seconds; each further lockout of the same key
doubles (up to ``max_lockout``).

The voucher login uses the atomic pair :func:`acquire` / :func:`settle` (issue 16):

- :func:`acquire` checks every key's lock **and** reserves the attempt in one Lua
  script, so 64 guesses sent at once are 64 reservations against the same budget
  (check-then-record let ~10 of them through instead of 5);
- an attempt counts as a failure from the moment it is reserved; :func:`settle` with a
  success gives back only that attempt's own reservation. A success never clears
  earlier failures, so typing one's own valid code between guesses buys nothing;
- an optional library-wide bound (``per_minute``) counts every reserved attempt of the
  current minute whatever key it came from, so fresh MAC and IP addresses get no fresh
  budget past it. Attempts still being looked up count too (else a burst of parallel
  guesses from many made-up devices would all pass); when only those fill the bound,
  :func:`acquire` waits a moment for them to settle instead of refusing, so a class of
  40 typing right codes in the same second is not told "too many wrong codes".

The desk's password limit uses the same pair. :func:`check` tells a key's wait without
reserving anything; :func:`record_failure` and :func:`reset` are the older non-atomic
API, kept for admin tools and tests (no view uses them).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from gateway.model import keys

__all__ = ["Limit", "acquire", "check", "library_key", "record_failure", "reset", "settle"]


@dataclass(frozen=True)
class Limit:
    """``max_failures`` within ``window`` s lock a key for ``lockout`` s, doubling up to ``max_lockout``.

    ``per_minute`` (0 = none) bounds the failures of all keys of the scope together per
    wall-clock minute (used by :func:`acquire` only).
    """

    scope: str  # e.g. "voucher", "desk"
    max_failures: int = 5
    window: int = 600
    lockout: int = 60
    max_lockout: int = 3600
    per_minute: int = 0


def _keys(limit: Limit, who: str) -> tuple[str, str, str]:
    base = f"hs:rl:{limit.scope}:{who}"
    return f"{base}:fails", f"{base}:locked", f"{base}:strikes"


def library_key(limit: Limit, now: float) -> str:
    """Return the key counting the scope's failures (and attempts in flight) in the minute of ``now``."""
    return f"hs:rl:{limit.scope}:library:{int(now // 60)}"


def _wake_key(limit: Limit, now: float) -> str:
    return f"{library_key(limit, now)}:settled"


WAKE_EVERY = 0.05  # seconds an attempt waiting for the library-wide bound waits at most between looks


# Locks key i (fails KEYS[3i+1], locked KEYS[3i+2], strikes KEYS[3i+3]) with a doubling wait.
_LOCK = """
local function lock(i, lockout, max_lockout)
  local strike = redis.call('INCR', KEYS[3*i+3])
  redis.call('EXPIRE', KEYS[3*i+3], max_lockout * 4)
  local wait = math.min(max_lockout, lockout * 2 ^ (strike - 1))
  redis.call('SET', KEYS[3*i+2], '1', 'EX', wait)
  redis.call('DEL', KEYS[3*i+1])
  return wait
end
"""

# KEYS: 3 per key, then the library's counter, its in-flight counter, the count of attempts
# waiting for it and the list that wakes them (one item per settle while one waits).
# ARGV: n keys, max_failures, window, lockout, max_lockout, per_minute, seconds left in the minute.
# Returns {wait, why}: why 0 = may try (reserved), 1 = a key is locked, 2 = library-wide bound,
# 3 = the library-wide bound is full only of attempts still in flight (try again shortly).
_ACQUIRE = (
    _LOCK
    + """
local n, max_failures, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lockout, max_lockout = tonumber(ARGV[4]), tonumber(ARGV[5])
local per_minute, minute_left = tonumber(ARGV[6]), tonumber(ARGV[7])
local wait = 0
for i = 0, n - 1 do
  local ttl = redis.call('TTL', KEYS[3*i+2])
  if ttl > wait then wait = ttl end
end
if wait > 0 then return {wait, 1} end
for i = 0, n - 1 do
  if tonumber(redis.call('GET', KEYS[3*i+1]) or '0') >= max_failures then
    wait = math.max(wait, lock(i, lockout, max_lockout))
  end
end
if wait > 0 then return {wait, 1} end
local library, inflight, waiting = KEYS[3*n+1], KEYS[3*n+2], KEYS[3*n+3]
if per_minute > 0 then
  local reserved = tonumber(redis.call('GET', library) or '0')
  if reserved >= per_minute then
    if reserved - tonumber(redis.call('GET', inflight) or '0') >= per_minute then
      return {minute_left, 2}
    end
    -- full only of attempts in flight: the caller waits to be woken by a settle
    redis.call('INCR', waiting)
    redis.call('EXPIRE', waiting, 120)
    return {0, 3}
  end
end
for i = 0, n - 1 do
  if redis.call('INCR', KEYS[3*i+1]) == 1 then redis.call('EXPIRE', KEYS[3*i+1], window) end
end
if per_minute > 0 then
  redis.call('INCR', library)
  redis.call('EXPIRE', library, 120)
  redis.call('INCR', inflight)
  redis.call('EXPIRE', inflight, 120)
end
return {0, 0}
"""
)

# KEYS: as _ACQUIRE's, then the metrics counters' hash.
# ARGV: n keys, ok (1/0), max_failures, lockout, max_lockout, the counter to add one to (or '').
# Returns the wait a failure caused.
_SETTLE = (
    _LOCK
    + """
local n, ok, max_failures = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lockout, max_lockout = tonumber(ARGV[4]), tonumber(ARGV[5])
local library, inflight, waiting, wake = KEYS[3*n+1], KEYS[3*n+2], KEYS[3*n+3], KEYS[3*n+4]
if ARGV[6] ~= '' then redis.call('HINCRBY', KEYS[3*n+5], ARGV[6], 1) end
if tonumber(redis.call('GET', waiting) or '0') > 0 then
  -- an attempt waits for the bound (acquire's "try again shortly"): wake one
  redis.call('DECR', waiting)
  redis.call('RPUSH', wake, '1')
  redis.call('LTRIM', wake, -64, -1)
  redis.call('EXPIRE', wake, 120)
end
if tonumber(redis.call('GET', inflight) or '0') > 0 then redis.call('DECR', inflight) end
if ok == 1 then
  for i = 0, n - 1 do
    if tonumber(redis.call('GET', KEYS[3*i+1]) or '0') > 0 then redis.call('DECR', KEYS[3*i+1]) end
  end
  if tonumber(redis.call('GET', library) or '0') > 0 then redis.call('DECR', library) end
  return 0
end
local wait = 0
for i = 0, n - 1 do
  if redis.call('TTL', KEYS[3*i+2]) < 1
     and tonumber(redis.call('GET', KEYS[3*i+1]) or '0') >= max_failures then
    wait = math.max(wait, lock(i, lockout, max_lockout))
  end
end
return wait
"""
)


def _script_keys(limit: Limit, whos: Sequence[str], now: float) -> list[str]:
    per_who = [key for who in whos for key in _keys(limit, who)]
    library = library_key(limit, now)
    return [*per_who, library, f"{library}:inflight", f"{library}:waiting", _wake_key(limit, now)]


def acquire(
    r: redis.Redis, limit: Limit, whos: Sequence[str], now: float, *, patience: float = 2.0
) -> tuple[int, bool]:
    """Reserve one attempt for all of ``whos`` at once; return (seconds to wait, library-wide).

    ``(0, False)``: the attempt is reserved (counted as a failure until :func:`settle`
    says otherwise); evaluate it. Otherwise nothing was reserved and the caller must
    refuse: a key is locked, or (``True``) the library-wide bound of this minute is used up.
    While the bound is full only of attempts in flight, waits up to ``patience`` seconds
    for them to settle: each :func:`settle` while the bound is full wakes one waiter (a
    blocking pop on a Redis list, cooperative under the portal's gevent workers), which
    tries again at once. (Polling every 10 ms, a class of 40 typing right codes at the same
    instant made its last ten wait ~10-20 ms more each, and ask ~20 more times.)
    """
    minute_left = max(1, 60 - int(now % 60))
    args = (
        len(whos), limit.max_failures, limit.window, limit.lockout, limit.max_lockout,
        limit.per_minute, minute_left,
    )  # fmt: skip
    deadline = time.monotonic() + patience
    while True:
        wait, why = _run(r, _ACQUIRE, _script_keys(limit, whos, now), args)  # 3: it counted us waiting
        if int(why) != 3:
            return int(wait), int(why) == 2
        left = deadline - time.monotonic()
        if left <= 0:  # still full: as good as used up
            return minute_left, True
        # a settle wakes us; look again at least every 50 ms (one may have settled unseen,
        # e.g. into the next minute's keys)
        r.blpop([_wake_key(limit, now)], timeout=max(0.001, min(WAKE_EVERY, left)))


def settle(
    r: redis.Redis, limit: Limit, whos: Sequence[str], now: float, *, ok: bool, counter: str = ""
) -> int:
    """Settle an attempt :func:`acquire` reserved at ``now``; return the wait a failure caused.

    A success gives back its own reservation only (earlier failures stay counted); a
    failure stays counted and locks the keys that reached ``max_failures``. ``counter``:
    a metrics counter (``keys.COUNTERS``) to add one to in the same round trip (a login
    costs the portal one round trip fewer).
    """
    wait = _run(
        r, _SETTLE, [*_script_keys(limit, whos, now), keys.COUNTERS],
        (len(whos), 1 if ok else 0, limit.max_failures, limit.lockout, limit.max_lockout, counter),
    )  # fmt: skip
    return int(wait)


_SCRIPTS: dict[str, Script] = {}


def _run(r: redis.Redis, text: str, script_keys: Sequence[str], args: Sequence[object]) -> Any:
    """Run the Lua ``text`` by its digest (EVALSHA; loaded once per Redis, on the first NOSCRIPT).

    EVAL would send, and Redis hash, the whole script at every login.
    """
    script = _SCRIPTS.get(text)
    if script is None:
        script = _SCRIPTS[text] = r.register_script(text)
    return script(keys=list(script_keys), args=list(args), client=r)


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
    """Forget ``who``'s failures and lockouts (an admin's decision, never a login's)."""
    r.delete(*_keys(limit, who))
