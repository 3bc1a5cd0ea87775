"""Reports at the desk: a day (by hour) and a month (by day), as pages and as CSV downloads.

The numbers are :mod:`gateway.model.reports`' (sessions, unique devices, hours online, data,
vouchers issued and used, survey answers); the CSV is :mod:`gateway.model.report_csv`'s, the
same file ``hotspotctl report --csv`` writes.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Response, abort, render_template, request
from flask_babel import gettext as _

from gateway.days import day_of, month_of
from gateway.model.report_csv import day_csv, month_csv
from gateway.model.reports import DayReport, MonthReport, day_report, month_report
from gateway.model.sessions import online_sessions
from portal.desk import bp
from portal.desk.auth import desk_formatter, login_required
from portal.desk.render import usage_chart
from portal.survey_text import survey_table
from portal.web import get_redis, hotspot

__all__ = ["report_day", "report_month"]


def _today(tz: ZoneInfo) -> date:
    return day_of(time.time(), tz)


def _day_arg(tz: ZoneInfo) -> date:
    text = request.args.get("day")
    if not text:
        return _today(tz)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        abort(400)
    if day.year < 2000 or day > _today(tz) + timedelta(days=366):
        abort(400)
    return day


def _month_arg(tz: ZoneInfo) -> tuple[int, int]:
    text = request.args.get("month")
    if not text:
        today = _today(tz)
        return today.year, today.month
    first = month_of(text)
    if first is None:
        abort(400)
    return first.year, first.month


def _excel() -> bool:
    """Whether the CSV is for a spreadsheet on an Indonesian PC (``?excel=1``: BOM, ``;``, decimal commas)."""
    return request.args.get("excel") == "1"


def _csv(text: str, filename: str) -> Response:
    if _excel():
        filename = filename.replace(".csv", "-excel.csv")
    return Response(
        text, mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )  # fmt: skip


def _the_day() -> DayReport:
    """Return the report of the day the request asks for (``?day=``, default today)."""
    tz = ZoneInfo(hotspot().library.timezone)
    r = get_redis()
    questions = hotspot().portal.survey.questions
    return day_report(r, _day_arg(tz), tz, now=time.time(), online=online_sessions(r), questions=questions)


def _the_month() -> MonthReport:
    """Return the report of the month the request asks for (``?month=``, default this month)."""
    tz = ZoneInfo(hotspot().library.timezone)
    year, month = _month_arg(tz)
    r = get_redis()
    questions = hotspot().portal.survey.questions
    return month_report(r, year, month, tz, now=time.time(), online=online_sessions(r), questions=questions)


@bp.get("/reports/day")
@login_required
def report_day():
    """The report of one day (``?day=YYYY-MM-DD``, default today), hour by hour."""
    report = _the_day()
    day, now = report.day, time.time()
    chart = usage_chart(
        [h.label for h in report.hours], [h.totals.bytes_total for h in report.hours],
        [h.totals.seconds / 3600 if h.start <= now else None for h in report.hours], title=day.isoformat(),
        data_label=_("data"), devices_label=_("devices online (average)"), size_text=desk_formatter().size,
    )  # fmt: skip
    return render_template(
        "desk/report_day.html", report=report, chart=chart, survey=survey_table(report.totals.survey),
        prev=(day - timedelta(days=1)).isoformat(), next=(day + timedelta(days=1)).isoformat(),
        is_today=day == _today(ZoneInfo(hotspot().library.timezone)),
    )  # fmt: skip


@bp.get("/reports/day.csv")
@login_required
def report_day_csv():
    """The day's report as CSV (one row per hour, then the day)."""
    report, library = _the_day(), hotspot().library.id
    return _csv(day_csv(report, library, excel=_excel()), f"{library}-{report.day.isoformat()}.csv")


@bp.get("/reports/month")
@login_required
def report_month():
    """The report of one month (``?month=YYYY-MM``, default this month), day by day."""
    report = _the_month()
    first = date.fromisoformat(report.month + "-01")
    prev = first - timedelta(days=1)
    nxt = first + timedelta(days=32)
    now = time.time()
    days = [d for d in report.days if d.start <= now]  # days still to come are not listed
    chart = usage_chart(
        [d.label[8:10] for d in days], [d.totals.bytes_total for d in days],
        [float(d.totals.devices) for d in days], title=report.month, data_label=_("data"),
        devices_label=_("devices"), size_text=desk_formatter().size, label_every=5,
    ) if days else None  # fmt: skip
    return render_template(
        "desk/report_month.html", report=report, days=days, chart=chart,
        survey=survey_table(report.totals.survey),
        prev=f"{prev.year:04d}-{prev.month:02d}", next=f"{nxt.year:04d}-{nxt.month:02d}",
    )  # fmt: skip


@bp.get("/reports/month.csv")
@login_required
def report_month_csv():
    """The month's report as CSV (one row per day, then the month)."""
    report, library = _the_month(), hotspot().library.id
    return _csv(month_csv(report, library, excel=_excel()), f"{library}-{report.month}.csv")
