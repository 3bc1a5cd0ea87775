"""Free mode: a "free N minutes" session without a voucher, limited per device per day.

The library names a plan for it (``portal.free_plan``, e.g. "gratis": 30 minutes,
a small quota, a low cap) and how many free sessions one device gets per day
(``portal.free_per_day``, days in ``library.timezone``). The count and the session
start are one Redis transaction, so two taps at once cannot both get in over the limit.

The limit is per MAC address: a phone that randomizes its MAC for every connection
(not the default on Android or iOS, which keep one per network) could start more.
That is acceptable for a few free minutes; vouchers are the real access control.
"""

from __future__ import annotations

import redis

from gateway.config import Plan
from gateway.days import day_of, end_of_day
from gateway.model import keys
from gateway.model.sessions import Session, new_session, normalize_mac, queue_start, session_for_mac

__all__ = ["FreeLimitReached", "free_left", "start_free_session"]


class FreeLimitReached(Exception):
    """The device has used its ``per_day`` free sessions today."""

    def __init__(self, per_day: int):
        super().__init__(f"{per_day} free session(s) a day already used")
        self.per_day = per_day


def _used_key(mac: str, now: float, timezone: str) -> str:
    return keys.free_used(day_of(now, timezone).isoformat(), mac)


def free_left(r: redis.Redis, mac: str, *, per_day: int, now: float, timezone: str) -> int:
    """Return how many free sessions the device ``mac`` may still start today."""
    used = r.get(_used_key(normalize_mac(mac), now, timezone))
    return max(0, per_day - int(used or 0))


def start_free_session(
    r: redis.Redis,
    plan: Plan,
    *,
    mac: str,
    ip: str,
    per_day: int,
    now: float,
    timezone: str,
) -> Session:
    """Start a free session of ``plan`` for the device and return it.

    A device that is already online keeps (and gets back) the session it has, without
    using a free one. Raises :class:`FreeLimitReached` when today's are used up.
    """
    mac = normalize_mac(mac)
    existing = session_for_mac(r, mac)
    if existing is not None:
        return existing
    used_key = _used_key(mac, now, timezone)
    expires = now + plan.duration
    if not plan.multi_day:
        expires = min(expires, end_of_day(now, timezone))

    def attempt(pipe: redis.client.Pipeline) -> Session:
        # read the count before the device's session: a racing tap that started the session
        # between the two reads is then seen as online, never as "limit reached"
        used = int(pipe.get(used_key) or 0)
        current = session_for_mac(pipe, mac)
        if current is not None:  # a second tap raced the first one: it is online already
            return current
        if used >= per_day:
            raise FreeLimitReached(per_day)
        session = new_session(
            mac=mac, ip=ip, kind="free", plan=plan.name, now=now, expires_at=expires,
            down=plan.down, up=plan.up, weight=plan.weight, quota=plan.quota,
        )  # fmt: skip
        pipe.multi()
        pipe.incr(used_key)
        pipe.expire(used_key, 2 * 86400)
        queue_start(pipe, session)
        return session

    return r.transaction(attempt, used_key, keys.session_by_mac(mac), value_from_callable=True)
