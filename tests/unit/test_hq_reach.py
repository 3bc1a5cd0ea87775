"""The reach report's query and rows (pure); the lab test runs it against the real PostgreSQL."""

from __future__ import annotations

import pytest

from gateway.hq.reach import parse_rows, reach_sql


def test_query_groups_and_periods_come_from_fixed_tables():
    sql = reach_sql("province", "day")
    assert "l.province" in sql and "date_trunc('day'" in sql and "'YYYY-MM-DD'" in sql
    assert ":'since'" in sql and ":'until'" in sql and ":'tz'" in sql  # values travel as psql variables
    for by, per in (("library; DROP TABLE radacct", "day"), ("library", "week")):
        with pytest.raises(ValueError):
            reach_sql(by, per)


def test_rows_are_typed():
    text = (
        "period,group,sessions,devices,hours,bytes,central_accounts,voucher_sessions\n"
        "2026-12,lab,24,24,4.07,21474836480,0,7\n"
    )
    assert parse_rows(text) == [
        {"period": "2026-12", "group": "lab", "sessions": 24, "devices": 24, "hours": 4.07,
         "bytes": 21474836480, "central_accounts": 0, "voucher_sessions": 7},
    ]  # fmt: skip


def test_survey_query():
    from gateway.hq.reach import survey_sql

    sql = survey_sql("library", "month")
    assert "FROM survey_count s" in sql and "s.library" in sql and "'YYYY-MM'" in sql
    with pytest.raises(ValueError):
        survey_sql("district; --", "month")


def test_vouchers_query():
    from gateway.hq.reach import vouchers_sql

    sql = vouchers_sql("district", "day")
    # a local voucher's session by its User-Name, its plan from the Class in radacct.class
    assert "r.username LIKE 'voucher:%'" in sql and "r.class" in sql and "l.district" in sql
    assert ":'since'" in sql and ":'tz'" in sql
    with pytest.raises(ValueError):
        vouchers_sql("library", "year")


def test_unknown_report_kind_is_refused():
    from datetime import date

    from gateway.hq.reach import run_report

    with pytest.raises(ValueError):
        run_report("dbname=x", date(2026, 1, 1), date(2026, 2, 1), kind="everything")
