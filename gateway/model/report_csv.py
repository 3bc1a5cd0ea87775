"""Reports as CSV for the program's partners: one row per hour (a day) or per day (a month).

The first column names the library (``library.id``) so files from many libraries can be
stacked in one spreadsheet; the last row is the whole period. Data is in megabytes
(10^6 bytes), time online in hours, both with two decimals. Unique devices of the
total row are counted over the whole period (a phone seen on three days counts once),
so they are not the sum of the rows above.
"""

from __future__ import annotations

import csv
import io

from gateway.model.reports import SURVEY_CATEGORIES, DayReport, MonthReport, Period, Totals

__all__ = ["COLUMNS", "day_csv", "month_csv", "row"]

COLUMNS = [
    "library", "period", "sessions", "voucher_sessions", "free_sessions", "unique_devices",
    "hours_online", "data_down_mb", "data_up_mb", "vouchers_issued", "vouchers_used",
    *[f"survey_{c}" for c in SURVEY_CATEGORIES],
]  # fmt: skip


def row(library: str, period: str, t: Totals, *, survey: bool = True) -> list[str]:
    """Return one CSV row of totals ``t`` (survey columns left empty when ``survey`` is false)."""
    values = [
        library, period, t.sessions, t.sessions_voucher, t.sessions_free, t.devices,
        f"{t.hours:.2f}", f"{t.bytes_down / 1e6:.2f}", f"{t.bytes_up / 1e6:.2f}",
        t.vouchers_issued, t.vouchers_used,
    ]  # fmt: skip
    values += [t.survey.get(c, 0) if survey else "" for c in SURVEY_CATEGORIES]
    return [str(v) for v in values]


def _write(library: str, rows: list[Period], total_label: str, total: Totals, hourly: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for period in rows:
        writer.writerow(row(library, period.label, period.totals, survey=not hourly))
    writer.writerow(row(library, total_label, total))
    return out.getvalue()


def day_csv(report: DayReport, library: str) -> str:
    """Return the day's report as CSV: one row per local hour, then the day."""
    day = report.day.isoformat()
    hours = [Period(f"{day} {p.label}", p.start, p.totals) for p in report.hours]
    return _write(library, hours, day, report.totals, hourly=True)


def month_csv(report: MonthReport, library: str) -> str:
    """Return the month's report as CSV: one row per day, then the month."""
    return _write(library, report.days, report.month, report.totals, hourly=False)
