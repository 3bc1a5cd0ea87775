"""Free mode: a "free N minutes" session without a voucher, limited per device per day.

The library names a plan for it (``portal.free_plan``, e.g. "gratis": 30 minutes,
a small quota, a low cap) and how many free sessions one device gets per day
(``portal.free_per_day``, days in ``library.timezone``). The count and the session
start are one Redis transaction, so two taps at once cannot both get in over the limit.

The per-day limit is per MAC address, and a phone can make up a new MAC for every
connection (issue 16: 8 free sessions from one phone took 7.6 of 10 Mbit/s). Two
library-wide bounds no MAC game beats:

- ``per_hour`` (``portal.free_per_hour``): free sessions started by all devices together
  in one clock hour, counted in the same transaction as the session start;
- bandwidth: every free session's tc class sits under one shared class capped at
  ``portal.free_share`` of the uplink (:mod:`gateway.shaping.plan`), so eight made-up
  MACs share the cap one phone would have had with the other free visitors.
"""

from __future__ import annotations

import redis

from gateway.config import Plan
from gateway.days import day_of, end_of_day
from gateway.model import keys
from gateway.model.sessions import Session, new_session, normalize_mac, queue_start, session_for_mac

__all__ = ["FreeHourFull", "FreeLimitReached", "free_left", "start_free_session"]


class FreeLimitReached(Exception):
    """The device has used its ``per_day`` free sessions today."""

    def __init__(self, per_day: int):
        super().__init__(f"{per_day} free session(s) a day already used")
        self.per_day = per_day


class FreeHourFull(Exception):
    """The library has started its ``per_hour`` free sessions this hour (all devices together)."""

    def __init__(self, per_hour: int, retry_after: int):
        super().__init__(f"{per_hour} free session(s) this hour already started")
        self.per_hour = per_hour
        self.retry_after = retry_after


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
    per_hour: int = 0,
) -> Session:
    """Start a free session of ``plan`` for the device and return it.

    A device that is already online keeps (and gets back) the session it has, without
    using a free one. Raises :class:`FreeLimitReached` when today's are used up, and
    :class:`FreeHourFull` when the library's ``per_hour`` (0 = no bound) are.
    """
    mac = normalize_mac(mac)
    existing = session_for_mac(r, mac)
    if existing is not None:
        return existing
    used_key = _used_key(mac, now, timezone)
    hour_key = keys.free_hour(int(now // 3600))
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
        if per_hour and int(pipe.get(hour_key) or 0) >= per_hour:
            raise FreeHourFull(per_hour, max(1, 3600 - int(now % 3600)))
        session = new_session(
            mac=mac, ip=ip, kind="free", plan=plan.name, now=now, expires_at=expires,
            down=plan.down, up=plan.up, weight=plan.weight, quota=plan.quota,
        )  # fmt: skip
        pipe.multi()
        pipe.incr(used_key)
        pipe.expire(used_key, 2 * 86400)
        pipe.incr(hour_key)
        pipe.expire(hour_key, 7200)
        queue_start(pipe, session)
        return session

    return r.transaction(attempt, used_key, hour_key, keys.session_by_mac(mac), value_from_callable=True)
