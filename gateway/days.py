"""The library's calendar: which day a moment falls on, and when that day ends (pure).

Days are the library's (``library.timezone``), not UTC: a daily voucher ends at local
midnight, the free-session count, the survey and the session-log files roll over then.
One helper for all of them, so they cannot disagree about when a day starts. Reports
name their month as ``YYYY-MM`` (:func:`month_of`, :func:`next_month`). Ground floor:
the model, the daemon, the CLI, the portal and the HQ page import it.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["day_of", "end_of_day", "month_of", "next_month"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


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


def month_of(text: str) -> date | None:
    """Return the first day of the month written ``YYYY-MM`` (years 2000-2100), or None if
    ``text`` is not one (a report's month in a URL, an option or a database label)."""
    match = _MONTH.match(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1) if 1 <= month <= 12 and 2000 <= year <= 2100 else None


def next_month(day: date) -> date:
    """Return the first day of the month after ``day``'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
