"""The portal's one-question survey: why did the visitor come to the library today?

Answers are stored **anonymously**: one counter per day (in the library's time zone)
and purpose, in ``hs:survey:<YYYY-MM-DD>``. No MAC, session, voucher or time of day
is kept with an answer, so no report can tell who answered what. The only other key
is a short-lived "this session already answered" marker (``hs:survey:answered:<sid>``),
which holds no answer and expires with the session.

The program's reports (``gateway.model.reports``) read the counts with :func:`counts` or
:func:`totals`.
"""

from __future__ import annotations

from datetime import date, timedelta

import redis

from gateway.days import day_of
from gateway.model import keys

__all__ = ["PURPOSES", "answered", "counts", "day_of", "record", "totals"]

# The answers offered, in the order the portal shows them (labels live in the portal's catalog).
PURPOSES = ("study", "work", "school", "reading", "other")
KEEP_DAYS = 3 * 366  # counts are tiny; keep three years of program history


def record(r: redis.Redis, purpose: str, *, sid: str, now: float, timezone: str, ttl: int) -> bool:
    """Count one answer for ``purpose`` on today's date; return False if ``sid`` already answered.

    ``ttl`` (seconds, e.g. the session's time left) bounds how long the "answered"
    marker of ``sid`` lives. Raises ValueError for a purpose not in :data:`PURPOSES`.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not r.set(keys.survey_answered(sid), "1", nx=True, ex=max(60, int(ttl))):
        return False
    day_key = keys.survey_day(day_of(now, timezone).isoformat())
    with r.pipeline(transaction=True) as pipe:
        pipe.hincrby(day_key, purpose, 1)
        pipe.expire(day_key, KEEP_DAYS * 86400)
        pipe.execute()
    return True


def answered(r: redis.Redis, sid: str) -> bool:
    """Return whether session ``sid`` has answered the survey."""
    return bool(r.exists(keys.survey_answered(sid)))


def counts(r: redis.Redis, start: date, end: date) -> dict[date, dict[str, int]]:
    """Return ``{day: {purpose: count}}`` for every day from ``start`` to ``end`` (inclusive).

    Days without answers are present with zero counts, and every purpose is listed.
    """
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with r.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.survey_day(day.isoformat()))
        rows = pipe.execute()
    return {
        day: {purpose: int(row.get(purpose, 0)) for purpose in PURPOSES}
        for day, row in zip(days, rows, strict=True)
    }


def totals(r: redis.Redis, start: date, end: date) -> dict[str, int]:
    """Return the answers per purpose summed over ``start`` to ``end`` (inclusive)."""
    summed = dict.fromkeys(PURPOSES, 0)
    for day_counts in counts(r, start, end).values():
        for purpose, n in day_counts.items():
            summed[purpose] += n
    return summed
