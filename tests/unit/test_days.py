"""The library's calendar (gateway.days): one helper for daily vouchers, free sessions, survey, log."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from gateway.days import day_of, end_of_day, month_of, next_month

JAKARTA = ZoneInfo("Asia/Jakarta")


def test_the_day_is_the_librarys_not_utcs():
    late = datetime(2026, 11, 24, 23, 30, tzinfo=JAKARTA).timestamp()  # 16:30 UTC
    early = datetime(2026, 11, 25, 0, 30, tzinfo=JAKARTA).timestamp()  # 17:30 UTC, still the 24th there
    assert day_of(late, "Asia/Jakarta") == date(2026, 11, 24)
    assert day_of(early, JAKARTA) == date(2026, 11, 25)
    assert day_of(early, "UTC") == date(2026, 11, 24)


def test_a_day_ends_at_the_next_local_midnight():
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=JAKARTA).timestamp()
    assert end_of_day(noon, "Asia/Jakarta") == datetime(2026, 11, 25, tzinfo=JAKARTA).timestamp()
    assert end_of_day(noon, JAKARTA) - noon == 12 * 3600
    # a 23-hour day where clocks go forward still ends at local midnight
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 29, 0, 30, tzinfo=berlin).timestamp()
    assert end_of_day(spring, berlin) - spring == 22.5 * 3600


def test_a_reports_month():
    assert month_of("2026-11") == date(2026, 11, 1)
    for bad in ("2026-13", "2026-00", "1999-12", "2101-01", "2026-1", "2026-11-03", " 2026-11", "nov"):
        assert month_of(bad) is None, bad
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert next_month(date(2026, 1, 31)) == date(2026, 2, 1)
