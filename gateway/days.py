"""The library's calendar: which day a moment falls on, and when that day ends (pure).

Days are the library's (``library.timezone``), not UTC: a daily voucher ends at local
midnight, the free-session count, the survey and the session-log files roll over then.
One helper for all of them, so they cannot disagree about when a day starts. Ground
floor: the model, the daemon and the portal import it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["day_of", "end_of_day"]


def _zone(timezone: str | ZoneInfo) -> ZoneInfo:
    return timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)


def day_of(ts: float, timezone: str | ZoneInfo) -> date:
    """Return the library's calendar day at epoch ``ts`` in ``timezone`` (a name or a ZoneInfo)."""
    return datetime.fromtimestamp(ts, _zone(timezone)).date()


def end_of_day(ts: float, timezone: str | ZoneInfo) -> float:
    """Return the epoch of the next local midnight after ``ts`` (the end of its library day)."""
    tz = _zone(timezone)
    day = day_of(ts, tz) + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
